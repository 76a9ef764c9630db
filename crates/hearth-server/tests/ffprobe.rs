//! Debian's ffprobe reads a stream over HTTPS with the household CA and a
//! media grant's URL, since it cannot sign requests. Its TLS comes from
//! GnuTLS, which in Debian 12 (3.7.9) has no ML-KEM, so the server must fall
//! back to X25519 for it.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::device::{TestDevice, assert_proof_challenge};
use common::{SAMPLES, SOUNDS, Server};
use hearth_pqc::KeyExchangePolicy;

/// The H.264/AAC sample, 1280x720, 8.3 s.
const MOVIE: &str = "movie2/movie-hello.mp4";
/// Limit of one ffprobe run. A run against the local server takes well under a second.
const FFPROBE_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn ffprobe_reads_stream_over_x25519_fallback() {
    common::require_samples();
    let server = Server::start(&[Path::new(SAMPLES), Path::new(SOUNDS)]);
    let admin = server.admin_device();
    admin.wait_for_scan(&server);
    let grant = admin.grant(&movie_id(&admin));
    let url = server.url(grant["stream_url"].as_str().expect("stream_url"));
    let local = probe_json(&ffprobe(&[Path::new(SAMPLES).join(MOVIE).to_str().expect("UTF-8 sample path")]));

    let before = admin.connection_mark(&server);
    let output = ffprobe(&["-ca_file", server.ca_file().to_str().expect("UTF-8 CA path"), "-tls_verify", "1", &url]);
    let after = admin.connection_mark(&server);
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

    let connections = admin.connections_between(before, after);
    assert!(!connections.is_empty(), "no connection logged between marks {before} and {after}");
    for connection in &connections {
        assert_eq!(connection["key_exchange_group"], "X25519", "ffprobe connection {connection}");
        assert_eq!(connection["post_quantum"], false, "ffprobe connection {connection}");
    }
}

#[test]
fn ffprobe_without_session_or_grant_gets_401() {
    common::require_samples();
    let server = Server::start(&[Path::new(SAMPLES), Path::new(SOUNDS)]);
    let admin = server.admin_device();
    admin.wait_for_scan(&server);
    let item_url = server.url(&format!("/api/v1/items/{}/stream", movie_id(&admin)));
    // The length of a real grant id (32 bytes, b64u), but never issued.
    let forged_url = server.url(&format!("/media/{}/stream", "A".repeat(43)));
    let client = server.client(KeyExchangePolicy::HybridPreferred);

    for (what, url) in [("unsigned item stream", &item_url), ("unknown grant", &forged_url)] {
        let output = ffprobe(&["-ca_file", server.ca_file().to_str().expect("UTF-8 CA path"), "-tls_verify", "1", url]);
        let unsigned = client.get(url).send().expect("request");

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "ffprobe read the {what} without a session");
        assert!(stderr.contains("401 Unauthorized"), "{what}: ffprobe stderr lacks the 401: {stderr}");
        assert_proof_challenge(&unsigned, what);
    }
}

/// The id of the H.264 sample. Its folder also contains Theora, MPEG-1 and AVI
/// files with the same title, so the MIME type picks it.
fn movie_id(device: &TestDevice) -> String {
    let videos = device.get_json("/api/v1/items?kind=video&limit=500");
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
