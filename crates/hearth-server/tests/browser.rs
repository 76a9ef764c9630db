//! Debian's Chromium, driven by Playwright from `tests/e2e/play.mjs`, signs
//! in, plays the H.264 sample to past one second, and negotiates
//! X25519MLKEM768 on every connection it opens.
//!
//! Needs `/usr/bin/chromium`, node, `certutil` (libnss3-tools) and
//! `npm ci --prefix tests/e2e` for playwright-core.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{SAMPLES, SOUNDS, Server};

/// The Playwright script, relative to the workspace root.
const PLAY_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/play.mjs");
/// The script's dependencies, installed by `npm ci --prefix tests/e2e`.
const PLAYWRIGHT_CORE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/node_modules/playwright-core");
/// Limit of the whole browser run: start, sign-in, playback and shutdown.
/// A passing run takes seconds, and the margin covers a loaded CI runner.
const BROWSER_RUN_LIMIT: Duration = Duration::from_secs(180);
/// Limit of each browser step inside the script, in milliseconds.
const STEP_LIMIT_MS: &str = "60000";

#[test]
fn chromium_plays_video_over_x25519mlkem768() {
    play_and_check(&[], "browser-play.png");
}

#[test]
fn chromium_still_plays_in_pq_only_mode() {
    play_and_check(&["--pq-only"], "browser-play-pq-only.png");
}

/// Starts a server with `extra` arguments, plays the sample in Chromium and
/// checks playback and the key exchange of every browser connection.
fn play_and_check(extra: &[&str], screenshot_name: &str) {
    common::require_samples();
    assert!(
        Path::new(PLAYWRIGHT_CORE).is_dir(),
        "{PLAYWRIGHT_CORE} is missing: run `npm ci --prefix tests/e2e` (scripts/test does)"
    );
    let server = Server::start_with(&[Path::new(SAMPLES), Path::new(SOUNDS)], extra);
    server.wait_for_scan();
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join(screenshot_name);

    let before = server.connection_mark();
    let output = common::output_within(
        Command::new("node")
            .arg(PLAY_SCRIPT)
            .env("HEARTH_URL", server.url(""))
            .env("HEARTH_TOKEN", &server.admin_token)
            .env("HEARTH_CA", server.ca_file())
            .env("HEARTH_SCREENSHOT", &screenshot)
            .env("HEARTH_TIMEOUT_MS", STEP_LIMIT_MS),
        BROWSER_RUN_LIMIT,
        "node tests/e2e/play.mjs (apt-get install nodejs)",
    );
    let after = server.connection_mark();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "play.mjs failed with {}:\n{stderr}\nserver log:\n{}", output.status, server.log_text());
    let line = stdout.lines().rev().find(|line| !line.trim().is_empty()).expect("play.mjs printed a JSON line");
    println!("play.mjs: {line}");
    println!("screenshot: {}", screenshot.display());
    let result: serde_json::Value = serde_json::from_str(line).expect("play.mjs output is JSON");

    assert_eq!(result["key_exchange_group"], "X25519MLKEM768", "group seen by the page's fetch");
    assert_eq!(result["post_quantum"], true);
    assert_eq!(result["badge_group"], "X25519MLKEM768", "group shown by the #connection badge");
    assert_eq!(result["element"], "video");
    let current_time = result["current_time"].as_f64().expect("current_time is a number");
    assert!(current_time > 1.0, "video played only to {current_time} s");
    assert_eq!(result["video_width"], 1280);
    assert_eq!(result["video_height"], 720);

    let item = expected_item(&server, result["item_id"].as_str().expect("item_id"));
    let expected_seconds = item["duration_ms"].as_f64().expect("duration_ms") / 1000.0;
    let duration = result["duration"].as_f64().expect("duration is a number");
    assert!(
        (duration - expected_seconds).abs() < 0.1,
        "browser reports {duration} s, the catalog {expected_seconds} s"
    );

    // The page loads no favicon and asks for thumbnails only where the
    // catalog says one exists, so a clean load logs no error at all.
    let errors = result["console_errors"].as_array().expect("console_errors array");
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    let connections = server.connections_between(before, after);
    assert!(!connections.is_empty(), "no connection logged between marks {before} and {after}");
    for connection in &connections {
        assert_eq!(connection["key_exchange_group"], "X25519MLKEM768", "Chromium connection {connection}");
    }
}

/// The catalog entry of the item the browser played, which must be the
/// H.264 sample the script looks for.
fn expected_item(server: &Server, id: &str) -> serde_json::Value {
    let item = server
        .items()
        .into_iter()
        .find(|item| item["id"] == id)
        .unwrap_or_else(|| panic!("played item {id} is not in the catalog"));
    assert_eq!(item["title"], "movie-hello");
    assert_eq!(item["mime"], "video/mp4");
    item
}

