//! Debian's ffprobe reads a stream over HTTPS with the household CA and a
//! bearer token. Its TLS comes from GnuTLS, which in Debian 12 (3.7.9) has no
//! ML-KEM, so the server must fall back to X25519 for it.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{SAMPLES, SOUNDS, Server};

/// The H.264/AAC sample, 1280x720, 8.3 s.
const MOVIE: &str = "movie2/movie-hello.mp4";
/// Limit of one ffprobe run. A run against the local server takes well under a second.
const FFPROBE_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn ffprobe_reads_stream_over_x25519_fallback() {
    common::require_samples();
    let server = Server::start(&[Path::new(SAMPLES), Path::new(SOUNDS)]);
    server.wait_for_scan();
    let url = server.url(&format!("/api/v1/items/{}/stream", movie_id(&server)));
    let local = probe_json(&ffprobe(&[Path::new(SAMPLES).join(MOVIE).to_str().expect("UTF-8 sample path")]));

    let before = server.connection_mark();
    let headers = format!("Authorization: Bearer {}\r\n", server.admin_token);
    let output = ffprobe(&["-ca_file", server.ca_file().to_str().expect("UTF-8 CA path"), "-tls_verify", "1", "-headers", &headers, &url]);
    let after = server.connection_mark();
    let remote = probe_json(&output);

    let local_duration = duration_seconds(&local);
    let remote_duration = duration_seconds(&remote);
    assert!(
        (remote_duration - local_duration).abs() < 0.1,
        "duration over HTTPS {remote_duration} s, local file {local_duration} s"
    );
    let local_video = video_stream(&local);
    let remote_video = video_stream(&remote);
    assert_eq!(remote_video["codec_name"], "h264");
    assert_eq!(remote_video["codec_name"], local_video["codec_name"]);
    assert_eq!(remote_video["width"], local_video["width"]);
    assert_eq!(remote_video["height"], local_video["height"]);

    let connections = server.connections_between(before, after);
    assert!(!connections.is_empty(), "no connection logged between marks {before} and {after}");
    for connection in &connections {
        assert_eq!(connection["key_exchange_group"], "X25519", "ffprobe connection {connection}");
        assert_eq!(connection["post_quantum"], false, "ffprobe connection {connection}");
    }
}

#[test]
fn ffprobe_without_token_gets_401() {
    common::require_samples();
    let server = Server::start(&[Path::new(SAMPLES), Path::new(SOUNDS)]);
    server.wait_for_scan();
    let url = server.url(&format!("/api/v1/items/{}/stream", movie_id(&server)));

    let output = ffprobe(&["-ca_file", server.ca_file().to_str().expect("UTF-8 CA path"), "-tls_verify", "1", &url]);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "ffprobe read the stream without a token");
    assert!(stderr.contains("401 Unauthorized"), "ffprobe stderr lacks the 401: {stderr}");
}

/// The id of the H.264 sample. Its folder also contains Theora, MPEG-1 and AVI
/// files with the same title, so the MIME type picks it.
fn movie_id(server: &Server) -> String {
    let videos = server.get_json("/api/v1/items?kind=video&limit=500");
    let matches: Vec<&serde_json::Value> = videos["items"]
        .as_array()
        .expect("items array")
        .iter()
        .filter(|item| item["title"] == "movie-hello" && item["mime"] == "video/mp4")
        .collect();
    assert_eq!(matches.len(), 1, "expected one video/mp4 item titled movie-hello: {videos}");
    matches[0]["id"].as_str().expect("item id").to_owned()
}

/// Runs `ffprobe -v error -print_format json -show_format -show_streams`
/// with `args` (options, then the input).
fn ffprobe(args: &[&str]) -> Output {
    let mut command = Command::new("ffprobe");
    command.args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams"]).args(args);
    common::output_within(&mut command, FFPROBE_LIMIT, "ffprobe (apt-get install ffmpeg)")
}

fn probe_json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "ffprobe failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("ffprobe JSON output")
}

/// `format.duration`, which ffprobe prints as a decimal string.
fn duration_seconds(probe: &serde_json::Value) -> f64 {
    let text = probe["format"]["duration"].as_str().expect("format.duration");
    text.parse().unwrap_or_else(|err| panic!("format.duration {text:?} is not a number: {err}"))
}

fn video_stream(probe: &serde_json::Value) -> &serde_json::Value {
    probe["streams"]
        .as_array()
        .expect("streams array")
        .iter()
        .find(|stream| stream["codec_type"] == "video")
        .expect("a video stream")
}
