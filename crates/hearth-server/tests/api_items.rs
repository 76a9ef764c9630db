//! The item API of a running server on real sample media: listing,
//! thumbnails cached on disk, play state, scan progress events.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use common::device::{TestDevice, assert_proof_challenge};
use common::{SAMPLES, SOUNDS, Server, require_samples};
use hearth_pqc::KeyExchangePolicy;
use reqwest::Method;

/// Starts a server on the sample and sound libraries, signs in an admin
/// device and waits for the scan.
fn sample_server() -> (Server, TestDevice) {
    require_samples();
    let server = Server::start(&[Path::new(SAMPLES), Path::new(SOUNDS)]);
    let admin = server.admin_device();
    admin.wait_for_scan(&server);
    (server, admin)
}

fn find(items: &[serde_json::Value], mime: &str, title: &str) -> String {
    items
        .iter()
        .find(|i| i["mime"] == mime && i["title"] == title)
        .unwrap_or_else(|| panic!("no {mime} item titled {title}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn thumbnails_for_each_kind_are_cached() {
    let (server, admin) = sample_server();
    let items = admin.items();
    let cases = [
        (find(&items, "video/mp4", "movie-hello"), true),
        (find(&items, "image/jpeg", "IMG 1054"), true),
        // Plain Ogg Vorbis without cover art has nothing to show.
        (find(&items, "audio/ogg", "bell"), false),
    ];

    for (id, has_picture) in cases {
        let response = admin.request(Method::GET, &format!("/api/v1/items/{id}/thumbnail"), None);
        if !has_picture {
            assert_eq!(response.status(), 404, "{id}");
            continue;
        }
        assert_eq!(response.status(), 200, "{id}");
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        let bytes = response.bytes().unwrap();
        let picture = image::load_from_memory(&bytes).expect("thumbnail decodes");
        assert!(picture.width().max(picture.height()) <= 320);
    }
    let cached = std::fs::read_dir(server.data_dir.join("cache/thumbnails")).unwrap().count();
    assert_eq!(cached, 2, "one cached JPEG per item with a picture");
}

#[test]
fn listing_pages_searches_and_filters() {
    let (_server, admin) = sample_server();

    let all = admin.get_json("/api/v1/items?limit=500");
    let page = admin.get_json("/api/v1/items?limit=5&offset=5&sort=size&order=desc");
    let videos = admin.get_json("/api/v1/items?kind=video&limit=500");
    let search = admin.get_json("/api/v1/items?q=hello&limit=500");

    let total = all["total"].as_u64().unwrap();
    assert!(total >= 50, "expected the sample and sound libraries, got {total} items");
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let sizes: Vec<u64> = page["items"].as_array().unwrap().iter().map(|i| i["size"].as_u64().unwrap()).collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    assert!(videos["items"].as_array().unwrap().iter().all(|i| i["kind"] == "video"));
    assert_eq!(videos["total"], 5);
    assert!(search["items"].as_array().unwrap().iter().all(|i| i["title"].as_str().unwrap().contains("hello")));
}

#[test]
fn unknown_and_malformed_ids_answer_404() {
    // Traversal in an id is the guard's to rate limit first; here the
    // handlers' own answers are checked.
    require_samples();
    let server = Server::start_unguarded(&[Path::new(SAMPLES), Path::new(SOUNDS)]);
    let admin = server.admin_device();
    admin.wait_for_scan(&server);

    for path in ["/api/v1/items/0123456789abcdef0123456789abcdef", "/api/v1/items/..%2f..%2fetc%2fpasswd/stream", "/api/v1/items/1/thumbnail"] {
        let response = admin.request(Method::GET, path, None);
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[test]
fn play_state_round_trips() {
    let (server, admin) = sample_server();
    let adult = server.adult_device();
    let id = find(&admin.items(), "video/mp4", "movie-hello");

    let body = serde_json::json!({ "position_ms": 3500, "completed": false });
    let stored = adult.request(Method::PUT, &format!("/api/v1/items/{id}/play-state"), Some(&body));
    let item = adult.get_json(&format!("/api/v1/items/{id}"));
    let admins_view = admin.get_json(&format!("/api/v1/items/{id}"));

    assert_eq!(stored.status(), 204);
    assert_eq!(item["play_state"]["position_ms"], 3500);
    assert_eq!(item["play_state"]["completed"], false);
    assert!(admins_view["play_state"].is_null(), "play state is per user: {}", admins_view["play_state"]);
}

#[test]
fn continue_watching_follows_the_user() {
    let (server, admin) = sample_server();
    let phone = server.adult_device();
    let mp4 = find(&admin.items(), "video/mp4", "movie-hello");
    let ogg = find(&admin.items(), "video/ogg", "movie-hello");
    let avi = find(&admin.items(), "video/x-msvideo", "movie-hello");
    for (id, position, completed) in [(&mp4, 3500, false), (&ogg, 1200, false), (&avi, 8000, true)] {
        let body = serde_json::json!({ "position_ms": position, "completed": completed });
        assert_eq!(phone.request(Method::PUT, &format!("/api/v1/items/{id}/play-state"), Some(&body)).status(), 204);
        // Updates are stamped to the second: space them so the order is certain.
        std::thread::sleep(Duration::from_millis(1100));
    }

    // The same user's second device sees both unfinished items, latest first.
    let tv = common::device::TestDevice::new(&server);
    let users = admin.get_json("/api/v1/admin/users");
    let phone_user = users.as_array().expect("users").iter().rev().find(|u| u["role"] == "adult").expect("the phone's user");
    let user_name = phone_user["name"].as_str().expect("name");
    tv.enroll_for(&server, user_name);
    tv.sign_in(user_name);
    let started = tv.get_json("/api/v1/items/in-progress");
    let ids: Vec<&str> = started["items"].as_array().expect("items").iter().filter_map(|item| item["id"].as_str()).collect();
    assert_eq!(ids, [ogg.as_str(), mp4.as_str()], "the finished AVI is left out: {started:#}");
    assert_eq!(started["items"][1]["play_state"]["position_ms"], 3500);
    assert!(started["items"][0]["title"].is_string(), "each entry is a full item summary");

    // Another user has nothing in progress.
    assert_eq!(admin.get_json("/api/v1/items/in-progress")["items"], serde_json::json!([]));
    let refused = tv.request(Method::GET, "/api/v1/items/in-progress?limit=abc", None);
    assert_eq!(refused.status(), 400);
}

#[test]
fn year_and_genre_filter_the_listing() {
    let library = tempfile::tempdir().expect("library");
    for (name, genre, date) in [("blue.mp3", "Jazz", "1959"), ("giant.mp3", "jazz", "1960"), ("bolero.mp3", "Classical", "1928-11-22"), ("plain.mp3", "", "")] {
        let mut command = std::process::Command::new("ffmpeg");
        command.args(["-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "libmp3lame"]);
        command.args(["-metadata", &format!("title={name}"), "-metadata", &format!("genre={genre}"), "-metadata", &format!("date={date}")]);
        let status = command.arg(library.path().join(name)).status().expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg could not make {name}");
    }
    let server = Server::start(&[library.path()]);
    let admin = server.admin_device();
    admin.wait_for_scan(&server);

    let facets = admin.get_json("/api/v1/items/facets");
    assert_eq!(facets["years"], serde_json::json!([1960, 1959, 1928]), "{facets}");
    assert_eq!(facets["genres"].as_array().map(Vec::len), Some(2), "Jazz and jazz are one genre: {facets}");
    let titles = |query: &str| -> Vec<String> {
        let page = admin.get_json(&format!("/api/v1/items?{query}"));
        let mut titles: Vec<String> = page["items"].as_array().expect("items").iter().map(|i| i["title"].as_str().unwrap().to_owned()).collect();
        titles.sort();
        titles
    };
    assert_eq!(titles("genre=JAZZ"), ["blue.mp3", "giant.mp3"]);
    assert_eq!(titles("year=1928"), ["bolero.mp3"]);
    assert_eq!(titles("genre=jazz&year=1960"), ["giant.mp3"]);
    let page = admin.get_json("/api/v1/items?year=1928");
    assert_eq!((&page["items"][0]["year"], &page["items"][0]["genre"]), (&serde_json::json!(1928), &serde_json::json!("Classical")));
    for bad in ["year=abc", "year=99999", "year=1799"] {
        assert_eq!(admin.request(Method::GET, &format!("/api/v1/items?{bad}"), None).status(), 400, "{bad}");
    }
}

#[test]
fn rescan_streams_progress_events() {
    let (_server, admin) = sample_server();
    let events = admin.request(Method::GET, "/api/v1/scan/events", None);
    assert_eq!(events.headers()["content-type"], "text/event-stream");

    let started = admin.request(Method::POST, "/api/v1/scan", None);
    assert_eq!(started.status(), 202);

    // Read events until a library reports done after the rescan started.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut saw_scanning = false;
    let mut reader = BufReader::new(events);
    let mut line = String::new();
    loop {
        assert!(Instant::now() < deadline, "no progress events within 60 s");
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("event stream ended");
        }
        let Some(data) = line.strip_prefix("data: ") else { continue };
        let progress: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
        if progress["phase"] == "scanning" {
            saw_scanning = true;
        }
        if saw_scanning && progress["phase"] == "done" {
            assert!(progress["unchanged"].as_u64().unwrap() > 0, "{progress}");
            break;
        }
    }
}

#[test]
fn security_headers_on_every_response() {
    let (server, admin) = sample_server();
    let client = server.client(KeyExchangePolicy::HybridPreferred);

    for (path, signed) in [("/", true), ("/login", false), ("/api/v1/items", false)] {
        let response = if signed { admin.request(Method::GET, path, None) } else { client.get(server.url(path)).send().unwrap() };
        if path == "/api/v1/items" {
            assert_proof_challenge(&response, "unsigned item list");
        }
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"), "{path}");
    }
}

#[test]
fn fifo_swapped_for_indexed_file_fails_fast() {
    require_samples();
    let library = tempfile::tempdir().unwrap();
    let film = library.path().join("film.mp4");
    std::fs::copy(Path::new(SAMPLES).join("movie2/movie-hello.mp4"), &film).unwrap();
    let server = Server::start_with(&[library.path()], &["--no-watch"]);
    let admin = server.admin_device();
    admin.wait_for_scan(&server);
    let id = admin.items()[0]["id"].as_str().unwrap().to_owned();

    // Swap the indexed file for a named pipe; without the watcher the item
    // stays listed, and opening the pipe for reading would block forever.
    std::fs::remove_file(&film).unwrap();
    let fifo = std::ffi::CString::new(film.to_str().unwrap()).unwrap();
    // SAFETY: `fifo` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let started = Instant::now();
    // The device's client gives up after 60 s, so a hang fails the test.
    let response = admin.request(Method::GET, &format!("/api/v1/items/{id}/stream"), None);

    assert_eq!(response.status(), 404);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn zero_limit_is_rejected() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    let admin = server.admin_device();

    let response = admin.request(Method::GET, "/api/v1/items?limit=0", None);

    assert_eq!(response.status(), 400);
}
