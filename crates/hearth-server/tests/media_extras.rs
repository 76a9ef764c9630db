//! Subtitles, tracks and trickplay through a running server: a sidecar SRT
//! in windows-1252 and an SRT track inside Matroska reach the player as
//! WebVTT, the item's audio tracks are listed with their languages, and the
//! background worker makes trickplay sheets after import.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{SAMPLES, Server};
use hearth_pqc::KeyExchangePolicy;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Time limit for the background worker's first sheets.
const TRICKPLAY_WITHIN: Duration = Duration::from_secs(90);

fn chromium_caps() -> Value {
    json!({ "video_codecs": ["h264", "vp8", "vp9"], "audio_codecs": ["aac", "mp3", "opus", "vorbis"], "containers": ["mp4", "webm", "ogg"], "hls": "mse" })
}

fn fetch(server: &Server, path: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let response = server.client(KeyExchangePolicy::HybridPreferred).get(server.url(path)).send().expect("GET");
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, content_type, response.bytes().expect("body").to_vec())
}

#[test]
fn tracks_listed_before_playback() {
    let library = tempfile::tempdir().expect("library");
    let film = library.path().join("Two voices.mkv");
    let made = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=3:size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-f", "lavfi", "-i", "sine=frequency=660:duration=3"])
        .args(["-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-c:a", "aac", "-ac:a:1", "2"])
        .args(["-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra", "-metadata:s:a:1", "title=Commentary"])
        .arg(&film)
        .status()
        .expect("ffmpeg runs");
    assert!(made.success(), "ffmpeg could not make the film");
    std::fs::write(library.path().join("Two voices.de.srt"), "1\n00:00:00,500 --> 00:00:02,000\nHallo\n").expect("sidecar");

    let server = Server::start(&[library.path()]);
    server.wait_for_scan();
    let device = server.adult_device();
    let film = device.items().into_iter().find(|item| item["kind"] == "video").expect("the film is indexed");
    let id = film["id"].as_str().expect("id");
    let tracks = device.get_json(&format!("/api/v1/items/{id}/tracks"));
    let audio = tracks["audio"].as_array().expect("audio");
    assert_eq!(audio.len(), 2, "{tracks:#}");
    assert_eq!((&audio[0]["index"], &audio[0]["language"]), (&json!(0), &json!("en")), "{tracks:#}");
    assert_eq!((&audio[1]["index"], &audio[1]["language"]), (&json!(1), &json!("fr")), "{tracks:#}");
    assert_eq!(audio[1]["title"], "Commentary");
    assert_eq!(audio[1]["channels"], 2);
    let subtitles = tracks["subtitles"].as_array().expect("subtitles");
    assert_eq!(subtitles.len(), 1, "{tracks:#}");
    assert_eq!((&subtitles[0]["language"], &subtitles[0]["convertible"]), (&json!("de"), &json!(true)));

    // The second audio track plays: its index is the playback's audio_track.
    let body = json!({ "capabilities": chromium_caps(), "audio_track": 1 });
    let answer: Value = device.request(Method::POST, &format!("/api/v1/items/{id}/playback"), Some(&body)).json().expect("JSON");
    assert_eq!(answer["mode"], "hls", "{answer:#}");
    let unknown = device.request(Method::GET, "/api/v1/items/0123456789abcdef0123456789abcdef/tracks", None);
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[test]
fn subtitles_served_as_webvtt() {
    let library = tempfile::tempdir().expect("library");
    let srt = library.path().join("embedded.srt");
    std::fs::write(&srt, "1\n00:00:01,000 --> 00:00:02,500\nInside the film\n\n2\n00:00:03,000 --> 00:00:04,000\nSecond line\n").expect("srt");
    let film = library.path().join("Film.mkv");
    let made = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=5:size=320x240:rate=25", "-i"])
        .arg(&srt)
        .args(["-c:v", "libx264", "-c:s", "srt", "-metadata:s:s:0", "language=eng"])
        .arg(&film)
        .status()
        .expect("ffmpeg runs");
    assert!(made.success(), "ffmpeg could not make the film");
    std::fs::remove_file(&srt).expect("remove the source SRT");
    // "Déjà vu, ça va." in windows-1252, as old subtitle sites serve it.
    let sidecar: Vec<u8> = b"1\r\n00:00:00,500 --> 00:00:02,000\r\nD\xe9j\xe0 vu, \xe7a va.\r\n".to_vec();
    std::fs::write(library.path().join("Film.fr.srt"), sidecar).expect("sidecar");

    let server = Server::start_unguarded(&[library.path()]);
    server.wait_for_scan();
    let device = server.adult_device();
    let items = device.items();
    let film = items.iter().find(|item| item["kind"] == "video").expect("the film is indexed");
    let path = format!("/api/v1/items/{}/playback", film["id"].as_str().expect("id"));
    let answer: Value = device.request(Method::POST, &path, Some(&json!({ "capabilities": chromium_caps() }))).json().expect("JSON");
    let subtitles = answer["subtitles"].as_array().expect("subtitles");
    assert_eq!(subtitles.len(), 2, "{answer:#}");

    let embedded = subtitles.iter().find(|s| s["codec"] == "subrip" && s["url"].as_str().is_some_and(|u| u.ends_with("/0"))).expect("embedded track first");
    let (status, content_type, body) = fetch(&server, embedded["url"].as_str().expect("url"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("text/vtt; charset=utf-8"));
    let text = String::from_utf8(body).expect("UTF-8");
    assert!(text.starts_with("WEBVTT"), "{text}");
    assert!(text.contains("00:00:01.000 --> 00:00:02.500\nInside the film"), "{text}");

    let french = subtitles.iter().find(|s| s["language"] == "fr").expect("the French sidecar");
    let (status, _, body) = fetch(&server, french["url"].as_str().expect("url"));
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).expect("UTF-8");
    assert!(text.contains("Déjà vu, ça va."), "the windows-1252 text is decoded: {text}");

    let base = french["url"].as_str().expect("url").rsplit_once('/').expect("slash").0.to_owned();
    for bad in ["9", "-1", "1000", "0x1", "..%2f..%2fetc%2fpasswd", "1%00"] {
        let (status, _, _) = fetch(&server, &format!("{base}/{bad}"));
        assert_eq!(status, StatusCode::NOT_FOUND, "subtitle {bad}");
    }
}

#[test]
fn trickplay_made_after_import() {
    common::require_samples();
    let server = Server::start_unguarded(&[Path::new(SAMPLES)]);
    server.wait_for_scan();
    let device = server.adult_device();
    let avi = device.items().into_iter().find(|item| item["mime"] == "video/x-msvideo").expect("the AVI sample");
    let path = format!("/api/v1/items/{}/playback", avi["id"].as_str().expect("id"));

    let started = Instant::now();
    let answer = loop {
        let answer: Value = device.request(Method::POST, &path, Some(&json!({ "capabilities": chromium_caps() }))).json().expect("JSON");
        if answer["trickplay"].is_string() || started.elapsed() > TRICKPLAY_WITHIN {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let index = answer["trickplay"].as_str().unwrap_or_else(|| panic!("no trickplay after {TRICKPLAY_WITHIN:?}: {answer:#}"));
    println!("trickplay ready {:.1} s after the scan", started.elapsed().as_secs_f64());

    let (status, content_type, body) = fetch(&server, index);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("text/vtt; charset=utf-8"));
    let vtt = String::from_utf8(body).expect("UTF-8");
    let cues: Vec<&str> = vtt.lines().filter(|line| line.starts_with("sheet-")).collect();
    assert_eq!(cues.len(), 1, "an 8.36 s film at 10 s a tile: {vtt}");
    assert!(cues[0].starts_with("sheet-0.jpg#xywh=0,0,160,"), "{vtt}");

    let sheet = index.replace("index.vtt", "sheet-0.jpg");
    let (status, content_type, body) = fetch(&server, &sheet);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(&body[..3], &[0xff, 0xd8, 0xff], "a JPEG");
    for bad in ["sheet-1.jpg", "sheet-0.jpg%00", "index.vtt.bak", "..%2findex.vtt", "sheet-%2e%2e.jpg"] {
        let (status, _, _) = fetch(&server, &index.replace("index.vtt", bad));
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
    // A path with more segments matches no route: the unknown path needs a session.
    let (status, _, _) = fetch(&server, &index.replace("index.vtt", "sheet-../x.jpg"));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
