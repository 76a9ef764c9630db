//! A library built from real sample media plus hostile entries: every good
//! file is indexed with the metadata ffprobe reports, every bad entry is
//! reported with its reason, and the scan completes.

mod common;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{SAMPLES, SOUNDS, Server, require_samples};

/// Good files: (path in the library, sample it is copied from).
const GOOD: &[(&str, &str)] = &[
    ("films/movie-hello.mp4", "movie2/movie-hello.mp4"),
    ("films/movie-hello.avi", "movie2/movie-hello.avi"),
    ("films/movie-hello.mpeg", "movie2/movie-hello.mpeg"),
    ("films/movie-hello.ogg", "movie2/movie-hello.ogg"),
    ("films/phone.mp4", "movie1/VID_20191220_170832.mp4"),
    ("music/debian.mp3", "audio1/debian.mp3"),
    ("music/debian.ogg", "audio1/debian.ogg"),
    ("music/debian.wav", "audio1/debian.wav"),
    ("photos/IMG_1054.JPG", "pic1/IMG_1054.JPG"),
    ("photos/IMG_20200827_231612.jpg", "pic1/IMG_20200827_231612.jpg"),
    ("photos/debian.png", "pic1/debian.png"),
];

/// Builds the library and returns its root inside `dir`.
fn hostile_library(dir: &Path) -> PathBuf {
    require_samples();
    let root = dir.join("library");
    for (target, source) in GOOD {
        let target = root.join(target);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(SAMPLES).join(source), target).unwrap();
    }
    std::fs::copy(Path::new(SOUNDS).join("bell.oga"), root.join("music/bell.oga")).unwrap();

    // A symlink loop: films/loop points back at the library root.
    symlink("..", root.join("films/loop")).unwrap();
    // Two symlinks pointing at each other.
    symlink("ping.mp4", root.join("films/pong.mp4")).unwrap();
    symlink("pong.mp4", root.join("films/ping.mp4")).unwrap();
    // A named pipe posing as a film: opening it would block a reader forever.
    let fifo = std::ffi::CString::new(root.join("films/pipe.mp4").as_os_str().as_bytes()).unwrap();
    // SAFETY: `fifo` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "mkfifo failed");
    // A dangling symlink with a media name.
    symlink("/nonexistent/holiday.mp4", root.join("films/dangling.mp4")).unwrap();
    // A name that is not valid UTF-8 (byte 0x85), holding a real photo.
    let latin1 = root.join(OsStr::from_bytes(b"photos/caf\x85.jpg"));
    std::fs::copy(Path::new(SAMPLES).join("pic1/debian_logo.jpg"), latin1).unwrap();
    // A zero-byte video, a truncated Matroska file, a text file posing as video.
    std::fs::write(root.join("films/empty.mp4"), b"").unwrap();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/truncated.mkv"), root.join("films/truncated.mkv")).unwrap();
    std::fs::write(root.join("films/fake.mp4"), b"this is a shopping list, not a film\n").unwrap();
    // An unreadable video.
    let secret = root.join("films/secret.mp4");
    std::fs::copy(Path::new(SAMPLES).join("movie2/movie-hello.mp4"), &secret).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Not media and not named like media: ignored without a report.
    std::fs::write(root.join("notes.txt"), b"remember the popcorn\n").unwrap();
    root
}

/// Runs `hearth scan --report --json`. As root, the scan runs without
/// CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (setpriv from util-linux), so a
/// mode-000 file is as unreadable as it is for the service user.
fn scan_cli(library: &Path, data_dir: &Path) -> serde_json::Value {
    let hearth = env!("CARGO_BIN_EXE_hearth");
    let mut command = if unsafe_is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--bounding-set", "-dac_override,-dac_read_search", "--", hearth]);
        c
    } else {
        Command::new(hearth)
    };
    let output = command
        .env("HEARTH_CONFIG", "/dev/null")
        .args(["scan", "--report", "--json", "--probe-timeout", "20", "--library"])
        .arg(library)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run hearth scan");
    assert!(output.status.success(), "hearth scan failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON report")
}

fn unsafe_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

#[test]
fn hostile_entries_are_reported_and_scan_completes() {
    let dir = tempfile::tempdir().unwrap();
    let library = hostile_library(dir.path());

    let report = scan_cli(&library, &dir.path().join("data"));

    let problems: HashMap<String, (String, String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let field = |name: &str| p[name].as_str().unwrap().to_owned();
            (field("path"), (field("category"), field("severity"), field("reason")))
        })
        .collect();
    let expect = |path: &str, category: &str, severity: &str| {
        let Some((found, found_severity, reason)) = problems.get(path) else {
            panic!("no problem reported for {path}; report: {problems:#?}");
        };
        assert_eq!(found, category, "{path}: {reason}");
        assert_eq!(found_severity, severity, "{path}: {reason}");
        assert!(!reason.is_empty());
    };
    expect("films/loop", "symlink_loop", "error");
    expect("films/dangling.mp4", "dangling_symlink", "error");
    expect("films/empty.mp4", "empty", "error");
    expect("films/truncated.mkv", "corrupt", "error");
    expect("films/fake.mp4", "not_media", "error");
    expect("films/secret.mp4", "unreadable", "error");
    expect("photos/caf\u{fffd}.jpg", "name_not_utf8", "warning");
    expect("films/ping.mp4", "symlink_loop", "error");
    expect("films/pong.mp4", "symlink_loop", "error");
    expect("films/pipe.mp4", "not_regular_file", "error");
    assert_eq!(problems.len(), 10, "unexpected problems: {problems:#?}");

    let summary = &report["summary"];
    // 11 good files, the bell and the photo with the Latin-1 name.
    assert_eq!(summary["added"], 13);
    assert_eq!(summary["ignored"], 1, "notes.txt is ignored silently");
}

#[test]
fn rescan_of_hostile_tree_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let library = hostile_library(dir.path());
    let data = dir.path().join("data");
    let first = scan_cli(&library, &data);

    let second = scan_cli(&library, &data);

    assert_eq!(second["summary"]["added"], 0);
    assert_eq!(second["summary"]["unchanged"], first["summary"]["discovered"]);
    assert_eq!(second["problems"].as_array().unwrap().len(), first["problems"].as_array().unwrap().len());
}

/// ffprobe's view of a file: (duration s, width, height, channels, sample rate).
fn ffprobe(path: &Path) -> serde_json::Value {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams"])
        .arg(path)
        .output()
        .expect("ffprobe is installed (apt-get install ffmpeg)");
    assert!(output.status.success(), "ffprobe failed on {}", path.display());
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn indexed_metadata_matches_ffprobe() {
    let dir = tempfile::tempdir().unwrap();
    let library = hostile_library(dir.path());
    let server = Server::start(&[&library]);
    let admin = server.admin_device();
    admin.wait_for_scan(&server);

    let items = admin.items();
    let by_path: HashMap<String, serde_json::Value> = items
        .iter()
        .map(|item| {
            let detail = admin.get_json(&format!("/api/v1/items/{}", item["id"].as_str().unwrap()));
            (detail["path"].as_str().unwrap().to_owned(), detail)
        })
        .collect();

    for (path, _) in GOOD {
        let item = by_path.get(*path).unwrap_or_else(|| panic!("{path} was not indexed"));
        let reference = ffprobe(&library.join(path));
        let streams = reference["streams"].as_array().unwrap();
        let video = streams.iter().find(|s| s["codec_type"] == "video");
        let audio = streams.iter().find(|s| s["codec_type"] == "audio");

        if item["kind"] == "image" {
            let video = video.unwrap();
            assert_eq!(item["width"], video["width"], "{path} width");
            assert_eq!(item["height"], video["height"], "{path} height");
            continue;
        }

        let expected_ms = reference["format"]["duration"].as_str().unwrap().parse::<f64>().unwrap() * 1000.0;
        let found_ms = item["duration_ms"].as_f64().unwrap();
        // GStreamer measures MPEG program streams by their video track, which
        // ends about 150 ms before ffprobe's container duration.
        let tolerance = if path.ends_with(".mpeg") { 200.0 } else { 60.0 };
        assert!((found_ms - expected_ms).abs() <= tolerance, "{path}: duration {found_ms} ms, ffprobe {expected_ms} ms");

        if let Some(video) = video {
            assert_eq!(item["kind"], "video", "{path}");
            assert_eq!(item["width"], video["width"], "{path} width");
            assert_eq!(item["height"], video["height"], "{path} height");
        }
        if let Some(audio) = audio {
            let probe_audio = &item["probe"]["audio"];
            assert_eq!(probe_audio["channels"], audio["channels"], "{path} channels");
            let rate: u64 = audio["sample_rate"].as_str().unwrap().parse().unwrap();
            assert_eq!(probe_audio["sample_rate"].as_u64(), Some(rate), "{path} sample rate");
        }
    }
}

#[test]
fn gps_is_sent_to_admin_only() {
    require_samples();
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("photos");
    std::fs::create_dir_all(&library).unwrap();
    // This phone photo carries GPS coordinates in its EXIF data.
    std::fs::copy(Path::new(SAMPLES).join("pic1/IMG_20200827_231612.jpg"), library.join("walk.jpg")).unwrap();
    let server = Server::start(&[&library]);
    let admin_device = server.admin_device();
    let adult_device = server.adult_device();
    admin_device.wait_for_scan(&server);
    let id = admin_device.items()[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/items/{id}");

    let admin: serde_json::Value = admin_device.get_json(&path);
    let member_response = adult_device.request(reqwest::Method::GET, &path, None);
    assert_eq!(member_response.status(), 200, "GET {path} as an adult");
    let member_body = member_response.text().unwrap();
    let member: serde_json::Value = serde_json::from_str(&member_body).unwrap();

    assert!(admin["probe"]["image"]["exif"]["gps"]["latitude"].is_number(), "admin sees the location: {admin}");
    assert!(member["probe"]["image"]["exif"]["gps"].is_null(), "member must not see the location");
    assert_eq!(member["probe"]["image"]["exif"]["camera_model"], admin["probe"]["image"]["exif"]["camera_model"]);
    let latitude = admin["probe"]["image"]["exif"]["gps"]["latitude"].as_f64().unwrap().to_string();
    assert!(!member_body.contains(&latitude[..6]), "latitude leaked into the member's response");
}
