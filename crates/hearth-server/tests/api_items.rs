//! The item API of a running server on real sample media: listing,
//! thumbnails cached on disk, play state, scan progress events.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{SAMPLES, SOUNDS, Server, require_samples};
use hearth_pqc::KeyExchangePolicy;

fn sample_server() -> Server {
    require_samples();
    let server = Server::start(&[Path::new(SAMPLES), Path::new(SOUNDS)]);
    server.wait_for_scan();
    server
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
    let server = sample_server();
    let items = server.items();
    let client = server.client(KeyExchangePolicy::HybridPreferred);
    let cases = [
        (find(&items, "video/mp4", "movie-hello"), true),
        (find(&items, "image/jpeg", "IMG 1054"), true),
        // Plain Ogg Vorbis without cover art has nothing to show.
        (find(&items, "audio/ogg", "bell"), false),
    ];

    for (id, has_picture) in cases {
        let url = server.url(&format!("/api/v1/items/{id}/thumbnail"));
        let response = client.get(&url).bearer_auth(&server.admin_token).send().unwrap();
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
    let server = sample_server();

    let all = server.get_json("/api/v1/items?limit=500");
    let page = server.get_json("/api/v1/items?limit=5&offset=5&sort=size&order=desc");
    let videos = server.get_json("/api/v1/items?kind=video&limit=500");
    let search = server.get_json("/api/v1/items?q=hello&limit=500");

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
    let server = sample_server();
    let client = server.client(KeyExchangePolicy::HybridPreferred);

    for path in ["/api/v1/items/0123456789abcdef0123456789abcdef", "/api/v1/items/..%2f..%2fetc%2fpasswd/stream", "/api/v1/items/1/thumbnail"] {
        let response = client.get(server.url(path)).bearer_auth(&server.admin_token).send().unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[test]
fn play_state_round_trips() {
    let server = sample_server();
    let id = find(&server.items(), "video/mp4", "movie-hello");
    let client = server.client(KeyExchangePolicy::HybridPreferred);

    let stored = client
        .put(server.url(&format!("/api/v1/items/{id}/play-state")))
        .bearer_auth(&server.member_token)
        .json(&serde_json::json!({ "position_ms": 3500, "completed": false }))
        .send()
        .unwrap();
    let item = server.get_json(&format!("/api/v1/items/{id}"));

    assert_eq!(stored.status(), 204);
    assert_eq!(item["play_state"]["position_ms"], 3500);
    assert_eq!(item["play_state"]["completed"], false);
}

#[test]
fn rescan_streams_progress_events() {
    let server = sample_server();
    let client = server.client(KeyExchangePolicy::HybridPreferred);
    let events = client.get(server.url("/api/v1/scan/events")).bearer_auth(&server.admin_token).send().unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");

    let started = client.post(server.url("/api/v1/scan")).bearer_auth(&server.admin_token).send().unwrap();
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
    let server = sample_server();
    let client = server.client(KeyExchangePolicy::HybridPreferred);

    for (path, token) in [("/", Some(&server.admin_token)), ("/login", None), ("/api/v1/items", None)] {
        let mut request = client.get(server.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().unwrap();
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
    server.wait_for_scan();
    let id = server.items()[0]["id"].as_str().unwrap().to_owned();

    // Swap the indexed file for a named pipe; without the watcher the item
    // stays listed, and opening the pipe for reading would block forever.
    std::fs::remove_file(&film).unwrap();
    let fifo = std::ffi::CString::new(film.to_str().unwrap()).unwrap();
    // SAFETY: `fifo` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let started = Instant::now();
    let response = server
        .client(KeyExchangePolicy::HybridPreferred)
        .get(server.url(&format!("/api/v1/items/{id}/stream")))
        .bearer_auth(&server.admin_token)
        .timeout(Duration::from_secs(10))
        .send()
        .expect("stream request must not hang on a FIFO");

    assert_eq!(response.status(), 404);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn zero_limit_is_rejected() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);

    let response = server
        .client(KeyExchangePolicy::HybridPreferred)
        .get(server.url("/api/v1/items?limit=0"))
        .bearer_auth(&server.admin_token)
        .send()
        .unwrap();

    assert_eq!(response.status(), 400);
}
