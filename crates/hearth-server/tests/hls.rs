//! HLS against a running server with real tools: ffprobe reads the
//! playlists and the decrypted segments, openssl decrypts them with the key
//! from the signed key endpoint, curl walks away mid-transcode, and twenty
//! viewers at once meet the concurrency limit. Hostile values in every
//! parameter are refused before any pipeline starts.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::device::TestDevice;
use common::{SAMPLES, Server};
use hearth_pqc::KeyExchangePolicy;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Returns the capabilities Debian's Chromium reports: H.264, VP8/9 and AV1,
/// AAC, MP3, Opus, Vorbis and FLAC, MP4, WebM and Ogg, and HLS through MSE.
fn chromium_caps() -> Value {
    json!({
        "video_codecs": ["h264", "vp8", "vp9", "av1"],
        "audio_codecs": ["aac", "mp3", "opus", "vorbis", "flac", "pcm"],
        "containers": ["mp4", "webm", "ogg", "mp3", "flac", "wav"],
        "hls": "mse"
    })
}

fn item_with_mime(device: &TestDevice, mime: &str) -> String {
    let items = device.items();
    let item = items.iter().find(|item| item["mime"] == mime).unwrap_or_else(|| panic!("no {mime} item in {items:#?}"));
    item["id"].as_str().expect("id").to_owned()
}

fn start_playback(device: &TestDevice, item: &str, body: &Value) -> (StatusCode, Value) {
    let response = device.request(Method::POST, &format!("/api/v1/items/{item}/playback"), Some(body));
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

/// Fetches a grant URL without signing, as hls.js does.
fn fetch(server: &Server, path: &str) -> (StatusCode, Vec<u8>) {
    let response = server.client(KeyExchangePolicy::HybridPreferred).get(server.url(path)).send().expect("GET");
    let status = response.status();
    (status, response.bytes().expect("body").to_vec())
}

fn transcodes(server: &Server) -> Value {
    server.get_json("/api/v1/admin/transcodes")
}

fn temp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Decrypts `cipher` with the openssl command line, AES-128-CBC, IV = `sequence`.
fn openssl_decrypt(key: &[u8], sequence: u64, cipher: &[u8]) -> Result<Vec<u8>, String> {
    let input = temp(&format!("segment-{sequence}-{}.enc", std::process::id()));
    std::fs::write(&input, cipher).expect("write cipher text");
    let output = Command::new("openssl")
        .args(["enc", "-d", "-aes-128-cbc", "-K", &hex::encode(key), "-iv", &format!("{sequence:032x}"), "-in"])
        .arg(&input)
        .output()
        .expect("openssl runs");
    if output.status.success() { Ok(output.stdout) } else { Err(String::from_utf8_lossy(&output.stderr).into_owned()) }
}

fn ffprobe(path: &Path, args: &[&str]) -> Value {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-allowed_extensions", "ALL"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe runs: install ffmpeg");
    assert!(output.status.success(), "ffprobe failed on {}: {}", path.display(), String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("ffprobe JSON")
}

#[test]
fn playback_decides_direct_or_hls_per_client() {
    common::require_samples();
    let server = Server::start(&[Path::new(SAMPLES)]);
    server.wait_for_scan();
    let device = server.adult_device();
    let mp4 = item_with_mime(&device, "video/mp4");
    let avi = item_with_mime(&device, "video/x-msvideo");

    let (status, answer) = start_playback(&device, &mp4, &json!({ "capabilities": chromium_caps() }));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["mode"], "direct");
    assert!(answer["url"].as_str().is_some_and(|url| url.starts_with("/media/") && url.ends_with("/stream")), "{answer}");

    // H.264 in AVI: Chromium decodes the video but cannot open the file,
    // so the video is copied (the original) next to smaller transcoded rungs.
    let (status, answer) = start_playback(&device, &avi, &json!({ "capabilities": chromium_caps() }));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["mode"], "hls");
    assert_eq!((&answer["video"], &answer["audio"]), (&json!("direct"), &json!("transcode")), "{answer}");
    assert_eq!(answer["renditions"], json!(["original", "480p", "360p"]), "a 1024x576 source gets no 720p rung");
    assert_eq!(answer["encoder"], "x264enc");

    // MPEG-2 video is transcoded.
    let mpeg = item_with_mime(&device, "video/mpeg");
    let (status, answer) = start_playback(&device, &mpeg, &json!({ "capabilities": chromium_caps() }));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["video"], "transcode", "{answer}");
    assert_eq!(answer["renditions"], json!(["480p", "360p"]), "{answer}");

    // A client that plays neither the AVI nor HLS gets a clear refusal.
    let no_hls = json!({ "capabilities": { "video_codecs": ["h264"], "audio_codecs": ["aac"], "containers": ["mp4"], "hls": "none" } });
    let (status, answer) = start_playback(&device, &avi, &no_hls);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("does not play HLS")), "{answer}");
}

#[test]
fn hls_playlists_and_decrypted_segments_pass_ffprobe() {
    common::require_samples();
    let server = Server::start(&[Path::new(SAMPLES)]);
    server.wait_for_scan();
    let device = server.adult_device();
    let avi = item_with_mime(&device, "video/x-msvideo");
    let (_, answer) = start_playback(&device, &avi, &json!({ "capabilities": chromium_caps(), "quality": "480p" }));
    let master_url = answer["url"].as_str().expect("url");
    let base = master_url.trim_end_matches("master.m3u8");

    let (status, master) = fetch(&server, master_url);
    assert_eq!(status, StatusCode::OK);
    let master = String::from_utf8(master).expect("UTF-8 playlist");
    assert!(master.contains("RESOLUTION=852x480"), "{master}");
    let (status, media) = fetch(&server, &format!("{base}480p/index.m3u8"));
    assert_eq!(status, StatusCode::OK);
    let media = String::from_utf8(media).expect("UTF-8 playlist");
    let key_line = media.lines().find(|line| line.starts_with("#EXT-X-KEY")).expect("EXT-X-KEY");
    assert!(key_line.contains("METHOD=AES-128"), "{key_line}");
    let segments: Vec<&str> = media.lines().filter(|line| line.ends_with(".m4s")).collect();
    assert_eq!(segments, ["0.m4s", "1.m4s", "2.m4s"]);

    // The key comes only to a signed request of the session.
    let key_path = answer["key_url"].as_str().expect("key_url");
    let (status, _) = fetch(&server, key_path);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an unsigned key request");
    let key = device.request(Method::GET, key_path, None);
    assert_eq!(key.status(), StatusCode::OK);
    let key = key.bytes().expect("key").to_vec();
    assert_eq!(key.len(), 16);

    // A local copy of the playlist with decrypted segments, read by ffprobe.
    let folder = temp(&format!("hls-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("folder");
    let (status, init) = fetch(&server, &format!("{base}480p/init.mp4"));
    assert_eq!(status, StatusCode::OK);
    std::fs::write(folder.join("init.mp4"), &init).expect("write init");
    for (sequence, name) in segments.iter().enumerate() {
        let (status, cipher) = fetch(&server, &format!("{base}480p/{name}"));
        assert_eq!(status, StatusCode::OK, "{name}");
        assert!(!cipher.windows(4).any(|w| w == b"moof"), "{name} travels in the clear");
        let plain = openssl_decrypt(&key, sequence as u64, &cipher).unwrap_or_else(|e| panic!("openssl could not decrypt {name}: {e}"));
        assert!(plain.windows(4).any(|w| w == b"moof"), "{name} is not an fMP4 fragment after decryption");
        let wrong = openssl_decrypt(&[0x55; 16], sequence as u64, &cipher);
        assert!(wrong.as_ref().map_or(true, |bytes| !bytes.windows(4).any(|w| w == b"moof")), "{name} decrypts with a wrong key");
        std::fs::write(folder.join(name), plain).expect("write segment");
    }
    let clear = media.lines().filter(|line| !line.starts_with("#EXT-X-KEY")).collect::<Vec<_>>().join("\n");
    let playlist = folder.join("index.m3u8");
    std::fs::write(&playlist, clear).expect("write playlist");
    let probe = ffprobe(&playlist, &["-show_format", "-show_streams"]);
    let streams = probe["streams"].as_array().expect("streams");
    let video = streams.iter().find(|s| s["codec_type"] == "video").expect("video stream");
    assert_eq!((video["codec_name"].as_str(), video["width"].as_u64(), video["height"].as_u64()), (Some("h264"), Some(852), Some(480)));
    assert!(streams.iter().any(|s| s["codec_type"] == "audio" && s["codec_name"] == "aac"), "{probe:#}");
    let duration: f64 = probe["format"]["duration"].as_str().and_then(|d| d.parse().ok()).expect("duration");
    assert!((duration - 8.36).abs() < 0.3, "the playlist lasts {duration} s, the AVI 8.36 s");

    // The admin sees who plays what.
    let status = transcodes(&server);
    let playback = status["playbacks"].as_array().expect("playbacks").iter().find(|p| p["item_id"] == avi.as_str()).cloned();
    let playback = playback.unwrap_or_else(|| panic!("the playback is not listed: {status:#}"));
    assert_eq!(playback["renditions"], json!(["480p"]), "{playback}");
    assert!(playback["user"].as_str().is_some_and(|user| user.starts_with("adult-")), "{playback}");
    assert_eq!(playback["video"], "transcode", "asking for one transcoded rung copies nothing: {playback}");
    assert_eq!(answer["video"], "transcode", "{answer}");
    assert_eq!(status["encoder"], "x264enc", "the counters stay at the top level: {status}");

    // Another signed-in device may not take this playback's key.
    let other = server.adult_device();
    assert_eq!(other.request(Method::GET, key_path, None).status(), StatusCode::FORBIDDEN);
}

#[test]
fn original_rendition_copies_the_source_video() {
    common::require_samples();
    let server = Server::start(&[Path::new(SAMPLES)]);
    server.wait_for_scan();
    let device = server.adult_device();
    let avi = item_with_mime(&device, "video/x-msvideo");
    let (_, answer) = start_playback(&device, &avi, &json!({ "capabilities": chromium_caps(), "quality": "original" }));
    assert_eq!(answer["renditions"], json!(["original"]), "{answer}");
    let base = answer["url"].as_str().expect("url").trim_end_matches("master.m3u8").to_owned();
    let key = device.request(Method::GET, answer["key_url"].as_str().expect("key_url"), None).bytes().expect("key").to_vec();

    let (_, master) = fetch(&server, &format!("{base}master.m3u8"));
    let master = String::from_utf8(master).expect("UTF-8 playlist");
    assert!(master.contains("RESOLUTION=1024x576,CODECS=\"avc1.64001f,mp4a.40.2\""), "the source's own profile and level: {master}");
    let (_, media) = fetch(&server, &format!("{base}original/index.m3u8"));
    let media = String::from_utf8(media).expect("UTF-8 playlist");
    let segments: Vec<&str> = media.lines().filter(|line| line.ends_with(".m4s")).collect();
    let folder = temp(&format!("original-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("folder");
    let (status, init) = fetch(&server, &format!("{base}original/init.mp4"));
    assert_eq!(status, StatusCode::OK);
    std::fs::write(folder.join("init.mp4"), &init).expect("write init");
    for (sequence, name) in segments.iter().enumerate() {
        let (status, cipher) = fetch(&server, &format!("{base}original/{name}"));
        assert_eq!(status, StatusCode::OK, "{name}");
        let plain = openssl_decrypt(&key, sequence as u64, &cipher).unwrap_or_else(|e| panic!("openssl could not decrypt {name}: {e}"));
        std::fs::write(folder.join(name), plain).expect("write segment");
    }
    let clear = media.lines().filter(|line| !line.starts_with("#EXT-X-KEY")).collect::<Vec<_>>().join("\n");
    std::fs::write(folder.join("index.m3u8"), clear).expect("write playlist");
    let probe = ffprobe(&folder.join("index.m3u8"), &["-show_format", "-show_streams"]);
    let streams = probe["streams"].as_array().expect("streams");
    let video = streams.iter().find(|s| s["codec_type"] == "video").expect("video stream");
    assert_eq!(
        (video["codec_name"].as_str(), video["profile"].as_str(), video["width"].as_u64(), video["height"].as_u64()),
        (Some("h264"), Some("High"), Some(1024), Some(576)),
        "the original keeps the source's High profile and size: {video:#}"
    );
    let duration: f64 = probe["format"]["duration"].as_str().and_then(|d| d.parse().ok()).expect("duration");
    assert!((duration - 8.36).abs() < 0.3, "the playlist lasts {duration} s, the AVI 8.36 s");

    // The key frame index is kept in the data folder for the next start.
    let indexes: Vec<_> = std::fs::read_dir(server.data_dir.join("cache/keyframes")).expect("keyframes folder").flatten().collect();
    assert_eq!(indexes.len(), 1, "one index file: {indexes:?}");
}

#[test]
fn native_players_get_transport_streams_and_a_grant_key() {
    common::require_samples();
    let server = Server::start(&[Path::new(SAMPLES)]);
    server.wait_for_scan();
    let device = server.adult_device();
    let avi = item_with_mime(&device, "video/x-msvideo");
    // A TV or Safari: MP4 with H.264 and AAC, and its own HLS player.
    let native = json!({ "video_codecs": ["h264"], "audio_codecs": ["aac"], "containers": ["mp4"], "hls": "native" });
    let (status, answer) = start_playback(&device, &avi, &json!({ "capabilities": native, "quality": "original" }));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["segments"], "ts", "{answer}");
    let key_url = answer["key_url"].as_str().expect("key_url").to_owned();
    let base = answer["url"].as_str().expect("url").trim_end_matches("master.m3u8").to_owned();
    assert_eq!(key_url, format!("{base}key"), "a native player fetches the key on the grant");

    let (_, media) = fetch(&server, &format!("{base}original/index.m3u8"));
    let media = String::from_utf8(media).expect("UTF-8 playlist");
    assert!(!media.contains("EXT-X-MAP"), "a transport stream playlist has no init segment: {media}");
    assert!(media.contains(&format!("URI=\"{key_url}\"")), "the key is on the grant: {media}");
    let segments: Vec<&str> = media.lines().filter(|line| line.ends_with(".ts")).collect();
    assert!(!segments.is_empty(), "{media}");
    assert_eq!(fetch(&server, &format!("{base}original/init.mp4")).0, StatusCode::NOT_FOUND);
    assert_eq!(fetch(&server, &format!("{base}original/0.m4s")).0, StatusCode::NOT_FOUND);

    let (status, key) = fetch(&server, &key_url);
    assert_eq!((status, key.len()), (StatusCode::OK, 16), "the grant holder gets the key");
    let mut joined = Vec::new();
    for (sequence, name) in segments.iter().enumerate() {
        let (status, cipher) = fetch(&server, &format!("{base}original/{name}"));
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_ne!(cipher.first(), Some(&0x47), "{name} travels in the clear");
        joined.extend(openssl_decrypt(&key, sequence as u64, &cipher).unwrap_or_else(|e| panic!("openssl could not decrypt {name}: {e}")));
    }
    let path = temp(&format!("native-{}.ts", std::process::id()));
    std::fs::write(&path, joined).expect("write");
    let probe = ffprobe(&path, &["-show_format", "-show_streams"]);
    assert_eq!(probe["format"]["format_name"], "mpegts");
    let streams = probe["streams"].as_array().expect("streams");
    let video = streams.iter().find(|s| s["codec_type"] == "video").expect("video stream");
    assert_eq!((video["codec_name"].as_str(), video["width"].as_u64()), (Some("h264"), Some(1024)), "{video:#}");
    assert!(streams.iter().any(|s| s["codec_type"] == "audio" && s["codec_name"] == "aac"), "{probe:#}");

    // A script player's playback keeps its key off the grant.
    let (_, answer) = start_playback(&device, &avi, &json!({ "capabilities": chromium_caps() }));
    let grant_key = answer["url"].as_str().expect("url").replace("master.m3u8", "key");
    assert_eq!(fetch(&server, &grant_key).0, StatusCode::NOT_FOUND);
    assert_eq!(answer["segments"], "fmp4");
}

#[test]
fn sparse_key_frames_and_bad_indexes_fall_back_safely() {
    let library = tempfile::tempdir().expect("library");
    // 30 s with one key frame: a copy would be one 30 s segment.
    let sparse = library.path().join("screen-recording.mkv");
    let status = Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "num-buffers=750", "pattern=ball", "!", "video/x-raw,width=320,height=240,framerate=25/1"])
        .args(["!", "x264enc", "key-int-max=100000", "!", "matroskamux", "!", "filesink"])
        .arg(format!("location={}", sparse.display()))
        .status()
        .expect("gst-launch-1.0 runs");
    assert!(status.success());
    common::require_samples();
    std::fs::copy(Path::new(SAMPLES).join("movie2/movie-hello.avi"), library.path().join("hello.avi")).expect("copy the AVI");
    let server = Server::start(&[library.path()]);
    server.wait_for_scan();
    let device = server.adult_device();

    let item = item_with_mime(&device, "video/x-matroska");
    let (status, answer) = start_playback(&device, &item, &json!({ "capabilities": chromium_caps() }));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["video"], "transcode", "key frames 30 s apart are transcoded, not copied: {answer}");
    assert!(!answer["renditions"].as_array().expect("renditions").contains(&json!("original")), "{answer}");

    // A damaged index file in the data folder is ignored and made again.
    let avi = item_with_mime(&device, "video/x-msvideo");
    let sha = server.get_json(&format!("/api/v1/items/{avi}"))["sha256"].as_str().expect("sha256").to_owned();
    let folder = server.data_dir.join("cache/keyframes");
    std::fs::create_dir_all(&folder).expect("folder");
    let poisoned = r#"{"keyframes_ns":[18446744073709551615,5,3,0],"avc_profile":[100,0,30],"width":0,"height":0,"video_bytes":18446744073709551615}"#;
    std::fs::write(folder.join(format!("{sha}.json")), poisoned).expect("write");
    let (status, answer) = start_playback(&device, &avi, &json!({ "capabilities": chromium_caps() }));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["video"], "direct", "{answer}");
    let (status, master) = fetch(&server, answer["url"].as_str().expect("url"));
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&master).contains("avc1.64001f"), "the index was made again from the file");
    let rewritten = std::fs::read_to_string(folder.join(format!("{sha}.json"))).expect("index file");
    assert_ne!(rewritten, poisoned, "the damaged index file was kept");
}

#[test]
fn seek_to_middle_matches_timestamps() {
    let library = tempfile::tempdir().expect("library");
    synthesize(&library.path().join("long.mkv"), 60);
    let server = Server::start(&[library.path()]);
    server.wait_for_scan();
    let device = server.adult_device();
    let item = item_with_mime(&device, "video/x-matroska");
    let (_, answer) = start_playback(&device, &item, &json!({ "capabilities": chromium_caps(), "quality": "360p" }));
    let base = answer["url"].as_str().expect("url").trim_end_matches("master.m3u8").to_owned();
    let key = device.request(Method::GET, answer["key_url"].as_str().expect("key_url"), None).bytes().expect("key").to_vec();

    // The middle of 60 s: after the 2 s first segment, segment 8 covers 30-34 s.
    let middle = 8u64;
    let (status, cipher) = fetch(&server, &format!("{base}360p/{middle}.m4s"));
    assert_eq!(status, StatusCode::OK);
    let (_, init) = fetch(&server, &format!("{base}360p/init.mp4"));
    let mut file = init;
    file.extend(openssl_decrypt(&key, middle, &cipher).expect("decrypt"));
    let path = temp(&format!("seek-{}.mp4", std::process::id()));
    std::fs::write(&path, file).expect("write");
    let probe = ffprobe(&path, &["-select_streams", "v:0", "-show_packets", "-show_entries", "packet=pts_time,flags"]);
    let packets = probe["packets"].as_array().expect("packets");
    let first = &packets[0];
    let pts: f64 = first["pts_time"].as_str().and_then(|t| t.parse().ok()).expect("pts_time");
    assert!((pts - 30.0).abs() < 0.05, "the segment for 30 s starts at {pts} s");
    assert!(first["flags"].as_str().is_some_and(|f| f.starts_with('K')), "it starts with a keyframe");
    let last: f64 = packets.last().and_then(|p| p["pts_time"].as_str()).and_then(|t| t.parse().ok()).expect("pts");
    assert!(last < 34.0, "the segment runs past 34 s: {last} s");
    assert!(last > 33.8, "the segment ends early, at {last} s");
    assert_eq!(transcodes(&server)["started_total"], 1, "one pipeline, started at the seek");
}

#[test]
fn hostile_parameters_are_refused_before_any_pipeline() {
    common::require_samples();
    let server = Server::start_unguarded(&[Path::new(SAMPLES)]);
    server.wait_for_scan();
    let device = server.adult_device();
    let avi = item_with_mime(&device, "video/x-msvideo");

    let hostile_bodies = [
        json!({ "capabilities": chromium_caps(), "quality": "720p ! filesink location=/tmp/pwned" }),
        json!({ "capabilities": chromium_caps(), "quality": "1080p" }),
        json!({ "capabilities": chromium_caps(), "audio_track": 16 }),
        json!({ "capabilities": chromium_caps(), "audio_track": -1 }),
        json!({ "capabilities": chromium_caps(), "audio_track": "0; rm -rf /" }),
        json!({ "capabilities": chromium_caps(), "bitrate": "999999999" }),
        json!({ "capabilities": chromium_caps(), "start": "00:00:00 -vf drawtext" }),
        json!({ "capabilities": { "video_codecs": ["h264 ! fakesink"], "hls": "mse" } }),
        json!({ "capabilities": { "hls": "mse", "containers": ["avi\"; x264enc option-string=\""] } }),
        json!({ "capabilities": { "hls": "mse", "extra": 1 } }),
        json!({ "capabilities": chromium_caps(), "quality": 720 }),
    ];
    for body in &hostile_bodies {
        let (status, answer) = start_playback(&device, &avi, body);
        assert!(status.is_client_error(), "{body} was accepted: {status} {answer}");
        assert!(answer["error"].is_string(), "{body}: the refusal says why: {answer}");
    }

    let (_, answer) = start_playback(&device, &avi, &json!({ "capabilities": chromium_caps() }));
    let base = answer["url"].as_str().expect("url").trim_end_matches("master.m3u8").to_owned();
    let hostile_paths = [
        "720p/0.m4s",
        "480p%20!%20filesink%20location=x/0.m4s",
        "480p/-1.m4s",
        "480p/3.m4s",
        "480p/999999.m4s",
        "480p/1234567.m4s",
        "480p/1e3.m4s",
        "480p/0x1.m4s",
        "480p/0.m4s%00.mp4",
        "480p/..%2f..%2f..%2fetc%2fpasswd",
        "480p/%30.m4s%20",
        "480p/init.mp4%3Bx264enc",
        "audio/0.m4s",
        "480P/index.m3u8",
    ];
    for path in hostile_paths {
        let (status, body) = fetch(&server, &format!("{base}{path}"));
        assert!(status.is_client_error(), "{path} was answered {status}");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("error"), "{path}: the refusal says why: {text}");
    }
    assert_eq!(transcodes(&server)["started_total"], 0, "a hostile request started a pipeline");
}

/// Time limit for stopping a hung-up client's pipeline. The server stops
/// it 2 s after the cancelled request (a player that seeks requests again
/// at once); the reaper looks every 0.5 s.
const FREED_WITHIN: Duration = Duration::from_secs(6);

#[test]
fn hung_up_client_frees_pipeline() {
    let library = tempfile::tempdir().expect("library");
    synthesize(&library.path().join("long.mkv"), 60);
    let server = Server::start(&[library.path()]);
    server.wait_for_scan();
    let device = server.adult_device();
    let item = item_with_mime(&device, "video/x-matroska");
    let (_, answer) = start_playback(&device, &item, &json!({ "capabilities": chromium_caps(), "quality": "360p" }));
    let segment = format!("{}360p/5.m4s", answer["url"].as_str().expect("url").trim_end_matches("master.m3u8"));

    // curl requests a segment and hangs up after 0.3 s, mid-transcode.
    let status = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "0.3", "--cacert"])
        .arg(server.ca_file())
        .arg(server.url(&segment))
        .status()
        .expect("curl runs");
    assert_eq!(status.code(), Some(28), "curl gave up on its time limit");
    let running = transcodes(&server)["running"].as_u64();
    assert_eq!(running, Some(1), "the transcode was running when the client left");

    let left = Instant::now();
    while transcodes(&server)["running"] != 0 && left.elapsed() < FREED_WITHIN {
        std::thread::sleep(Duration::from_millis(250));
    }
    let freed_after = left.elapsed();
    assert_eq!(transcodes(&server)["running"], 0, "the pipeline still runs {FREED_WITHIN:?} after its client left");
    println!("pipeline freed {:.1} s after the client left", freed_after.as_secs_f64());
}

#[test]
fn twenty_viewers_at_once_meet_the_concurrency_limit() {
    let library = tempfile::tempdir().expect("library");
    synthesize(&library.path().join("long.mkv"), 60);
    let server = Server::start_with_config(&[library.path()], &[], "[transcode]\nmax_concurrent = 2\nidle_stop_seconds = 2\n");
    server.wait_for_scan();
    // Four devices with five playbacks each: a session keeps at most eight.
    let devices: Vec<TestDevice> = (0..4).map(|_| server.adult_device()).collect();
    let item = item_with_mime(&devices[0], "video/x-matroska");
    let urls: Vec<String> = (0..20)
        .map(|index| {
            let device = &devices[index % devices.len()];
            let (status, answer) = start_playback(device, &item, &json!({ "capabilities": chromium_caps(), "quality": "360p" }));
            assert_eq!(status, StatusCode::OK, "{answer}");
            format!("{}360p/3.m4s", answer["url"].as_str().expect("url").trim_end_matches("master.m3u8"))
        })
        .collect();

    let client = server.client(KeyExchangePolicy::HybridPreferred);
    let viewers: Vec<_> = urls
        .into_iter()
        .map(|url| {
            let client = client.clone();
            let url = server.url(&url);
            std::thread::spawn(move || {
                let response = client.get(url).timeout(Duration::from_secs(120)).send().expect("GET segment");
                (response.status(), response.headers().get("retry-after").is_some())
            })
        })
        .collect();
    let mut peak_seen = 0;
    let mut queued_seen = 0;
    while !viewers.iter().all(|viewer| viewer.is_finished()) {
        let status = transcodes(&server);
        peak_seen = peak_seen.max(status["running"].as_u64().unwrap_or(0));
        queued_seen = queued_seen.max(status["queued"].as_u64().unwrap_or(0));
        std::thread::sleep(Duration::from_millis(100));
    }
    let answers: Vec<(StatusCode, bool)> = viewers.into_iter().map(|viewer| viewer.join().expect("viewer")).collect();
    for (status, retry_after) in &answers {
        let served_or_queued = *status == StatusCode::OK || (*status == StatusCode::SERVICE_UNAVAILABLE && *retry_after);
        assert!(served_or_queued, "a viewer got {status}");
    }
    let served = answers.iter().filter(|(status, _)| *status == StatusCode::OK).count();
    let status = transcodes(&server);
    println!("{served} of 20 served within the wait, peak {peak_seen}, queue up to {queued_seen}: {status}");
    assert!(served >= 2, "only {served} viewers were served");
    assert!(peak_seen <= 2, "{peak_seen} pipelines ran at once, limit 2");
    assert!(status["peak"].as_u64() <= Some(2), "{status}");
    assert!(queued_seen >= 10, "the queue held only {queued_seen} viewers");
}

#[test]
fn wma_plays_as_aac() {
    let library = tempfile::tempdir().expect("library");
    let wma = library.path().join("tone.wma");
    let location = format!("location={}", wma.display());
    let status = Command::new("gst-launch-1.0")
        .args(["-q", "audiotestsrc", "num-buffers=500", "!", "audioconvert", "!", "avenc_wmav2", "!", "asfmux", "!", "filesink", &location])
        .status()
        .expect("gst-launch-1.0 runs");
    assert!(status.success(), "gst-launch-1.0 could not make the WMA file");
    let server = Server::start(&[library.path()]);
    server.wait_for_scan();
    let device = server.adult_device();
    let items = device.items();
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(items[0]["kind"], "audio", "{items:#?}");
    let item = items[0]["id"].as_str().expect("id");

    let (status, answer) = start_playback(&device, item, &json!({ "capabilities": chromium_caps() }));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["mode"], "hls", "{answer}");
    assert_eq!(answer["renditions"], json!(["audio"]));
    assert!(answer["video"].is_null(), "{answer}");
    let base = answer["url"].as_str().expect("url").trim_end_matches("master.m3u8").to_owned();
    let (_, master) = fetch(&server, &format!("{base}master.m3u8"));
    let master = String::from_utf8(master).expect("UTF-8");
    assert!(master.contains("CODECS=\"mp4a.40.2\""), "{master}");
    assert!(!master.contains("RESOLUTION"), "{master}");

    let key = device.request(Method::GET, answer["key_url"].as_str().expect("key_url"), None).bytes().expect("key").to_vec();
    let (_, index) = fetch(&server, &format!("{base}audio/index.m3u8"));
    let segments = String::from_utf8(index).expect("UTF-8").lines().filter(|line| line.ends_with(".m4s")).count() as u64;
    assert_eq!(segments, 4, "2 s and then 4 s segments for 11.6 s");
    let (_, mut file) = fetch(&server, &format!("{base}audio/init.mp4"));
    for sequence in 0..segments {
        let (status, cipher) = fetch(&server, &format!("{base}audio/{sequence}.m4s"));
        assert_eq!(status, StatusCode::OK, "segment {sequence}");
        file.extend(openssl_decrypt(&key, sequence, &cipher).expect("decrypt"));
    }
    let path = temp(&format!("tone-{}.mp4", std::process::id()));
    std::fs::write(&path, file).expect("write");
    let probe = ffprobe(&path, &["-show_format", "-show_streams"]);
    let streams = probe["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 1, "{probe:#}");
    assert_eq!(streams[0]["codec_name"], "aac");
    assert_eq!(streams[0]["sample_rate"], "48000");
    let duration: f64 = probe["format"]["duration"].as_str().and_then(|d| d.parse().ok()).expect("duration");
    assert!(duration > 11.0, "the segments hold {duration} s of the 11.6 s tone");
}

#[test]
fn bad_transcode_settings_stop_server() {
    let cases = [
        ("[transcode]\nencoder = \"ffmpeg -i x\"\n", "encoder = \"ffmpeg -i x\" is unknown"),
        ("[transcode]\nencoder = \"nvh264enc\"\n", "encoder = \"nvh264enc\" does not work on this machine"),
        ("[transcode]\nmax_concurrent = 0\n", "max_concurrent = 0 is out of range"),
        ("[transcode]\nidle_stop_seconds = 100000\n", "idle_stop_seconds = 100000 is out of range"),
    ];
    for (config, expected) in cases {
        let data = tempfile::tempdir().expect("data folder");
        let config_file = data.path().join("hearth.toml");
        std::fs::write(&config_file, config).expect("write config");
        let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["serve", "--listen", "127.0.0.1:0", "--no-watch", "--config"])
            .arg(&config_file)
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .expect("hearth runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "hearth started with {config:?}");
        assert!(stderr.contains(expected), "{config:?}: stderr does not say {expected:?}:\n{stderr}");
    }
}

/// `[access]` settings that put the household's local time at noon, inside
/// the default hours of teens and children.
fn noon_access() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let utc_minutes = ((now / 60) % (24 * 60)) as i64;
    let mut offset = 12 * 60 - utc_minutes;
    if offset > 12 * 60 {
        offset -= 24 * 60;
    }
    format!("[access]\nutc_offset_minutes = {offset}\n")
}

#[test]
fn teen_gets_key_of_rated_film() {
    common::require_samples();
    let server = Server::start_with_config(&[Path::new(SAMPLES)], &[], &noon_access());
    server.wait_for_scan();
    let admin = server.admin();
    let avi = item_with_mime(admin, "video/x-msvideo");
    let rated = admin.request(Method::PUT, &format!("/api/v1/items/{avi}/rating"), Some(&json!({ "rating": "PG" })));
    assert_eq!(rated.status(), StatusCode::NO_CONTENT);

    let teen = server.signed_in_device(hearth_access::Role::Teen);
    let (status, answer) = start_playback(&teen, &avi, &json!({ "capabilities": chromium_caps() }));
    assert_eq!(status, StatusCode::OK, "{answer}");
    let key_url = answer["key_url"].as_str().expect("key_url");
    let key = teen.request(Method::GET, key_url, None);
    assert_eq!(key.status(), StatusCode::OK, "the teen's own key: {:?}", key.text());
    let grant_path = key_url.trim_end_matches("/key");
    assert_eq!(teen.request(Method::DELETE, grant_path, None).status(), StatusCode::NO_CONTENT);
}

#[test]
fn closed_player_frees_slot() {
    let library = tempfile::tempdir().expect("library");
    synthesize(&library.path().join("long.mkv"), 60);
    let server = Server::start_with_config(&[library.path()], &[], "[transcode]\nmax_concurrent = 1\n");
    server.wait_for_scan();
    let device = server.adult_device();
    let item = item_with_mime(&device, "video/x-matroska");
    let (_, answer) = start_playback(&device, &item, &json!({ "capabilities": chromium_caps(), "quality": "360p" }));
    let base = answer["url"].as_str().expect("url").trim_end_matches("master.m3u8").to_owned();
    let grant_path = answer["key_url"].as_str().expect("key_url").trim_end_matches("/key").to_owned();

    let client = server.client(KeyExchangePolicy::HybridPreferred);
    let segment_url = server.url(&format!("{base}360p/10.m4s"));
    let pending = std::thread::spawn(move || client.get(segment_url).send().map(|response| response.status()));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(device.request(Method::DELETE, &grant_path, None).status(), StatusCode::NO_CONTENT);
    let pending = pending.join().expect("request thread").expect("response");
    assert_ne!(pending, StatusCode::OK, "the segment of a closed playback was still served");

    let freed = Instant::now();
    while transcodes(&server)["running"] != 0 && freed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(transcodes(&server)["running"], 0, "the closed playback kept its slot");
    let (_, answer) = start_playback(&device, &item, &json!({ "capabilities": chromium_caps(), "quality": "360p" }));
    let (status, _) = fetch(&server, &format!("{}360p/0.m4s", answer["url"].as_str().expect("url").trim_end_matches("master.m3u8")));
    assert_eq!(status, StatusCode::OK, "the next playback got its segment");
}

#[test]
fn two_requests_far_apart_are_both_served() {
    let library = tempfile::tempdir().expect("library");
    synthesize(&library.path().join("long.mkv"), 60);
    let server = Server::start_with_config(&[library.path()], &[], "[transcode]\nmax_concurrent = 2\n");
    server.wait_for_scan();
    let device = server.adult_device();
    let item = item_with_mime(&device, "video/x-matroska");
    let (_, answer) = start_playback(&device, &item, &json!({ "capabilities": chromium_caps(), "quality": "360p" }));
    let base = answer["url"].as_str().expect("url").trim_end_matches("master.m3u8").to_owned();

    let requests: Vec<_> = [3, 12]
        .into_iter()
        .map(|n| {
            let client = server.client(KeyExchangePolicy::HybridPreferred);
            let url = server.url(&format!("{base}360p/{n}.m4s"));
            std::thread::spawn(move || client.get(url).send().map(|response| response.status()))
        })
        .collect();
    for request in requests {
        assert_eq!(request.join().expect("thread").expect("response"), StatusCode::OK);
    }
    let started = transcodes(&server)["started_total"].as_u64().expect("started_total");
    assert!(started <= 3, "{started} pipelines started for two segments");
}

#[test]
fn missing_audio_track_is_400() {
    common::require_samples();
    let server = Server::start(&[Path::new(SAMPLES)]);
    server.wait_for_scan();
    let device = server.adult_device();
    let avi = item_with_mime(&device, "video/x-msvideo");
    let (_, answer) = start_playback(&device, &avi, &json!({ "capabilities": chromium_caps(), "audio_track": 5 }));
    let base = answer["url"].as_str().expect("url").trim_end_matches("master.m3u8").to_owned();
    let asked = Instant::now();
    let (status, body) = fetch(&server, &format!("{base}480p/0.m4s"));
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("has 1 audio track(s): audio_track 5 does not exist"), "{body}");
    assert!(!body.contains("/usr/share"), "the answer names a server path: {body}");
    assert!(asked.elapsed() < Duration::from_secs(10), "the answer took {:?}", asked.elapsed());
}

/// Writes a `seconds` long 640×360 H.264/MP3 Matroska file with GStreamer's
/// test sources: long enough to seek in, quick to transcode.
fn synthesize(path: &Path, seconds: u32) {
    let location = format!("location={}", path.display());
    let frames = format!("num-buffers={}", seconds * 25);
    let audio_buffers = format!("num-buffers={}", seconds * 44_100 / 1024 + 1);
    let status = Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", &frames, "pattern=ball", "!", "video/x-raw,width=640,height=360,framerate=25/1"])
        .args(["!", "x264enc", "key-int-max=50", "!", "queue", "!", "mux."])
        .args(["audiotestsrc", &audio_buffers, "samplesperbuffer=1024", "!", "audio/x-raw,rate=44100", "!", "lamemp3enc"])
        .args(["!", "queue", "!", "mux.", "matroskamux", "name=mux", "!", "filesink", &location])
        .status()
        .expect("gst-launch-1.0 runs: install gstreamer1.0-tools");
    assert!(status.success(), "gst-launch-1.0 could not make {}", path.display());
}
