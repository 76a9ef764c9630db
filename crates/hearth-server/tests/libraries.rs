//! Library folders through the admin API, as the first-run wizard adds
//! them: a folder is added and scanned at once, system folders and
//! Hearth's own data folder are refused with a reason, and a removed
//! folder takes its items with it but leaves the files.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{SAMPLES, Server};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn libraries(admin: &common::device::TestDevice) -> Vec<Value> {
    let response = admin.request(Method::GET, "/api/v1/admin/libraries", None);
    assert_eq!(response.status(), StatusCode::OK);
    response.json().expect("library list")
}

#[test]
fn wizard_adds_and_removes_folders() {
    common::require_samples();
    let server = Server::start(&[]);
    let admin = server.admin_device();
    assert_eq!(libraries(&admin), Vec::<Value>::new());

    let films = tempfile::tempdir().expect("folder");
    let film = films.path().join("film.mp4");
    std::fs::copy(Path::new(SAMPLES).join("movie2/movie-hello.mp4"), &film).expect("copy the sample");
    let path = films.path().to_str().expect("UTF-8 path");
    let added = admin.request(Method::POST, "/api/v1/admin/libraries", Some(&json!({ "path": path })));
    assert_eq!(added.status(), StatusCode::CREATED);
    let added: Value = added.json().expect("library");
    let id = added["id"].as_i64().expect("id");

    // The scan starts by itself.
    let deadline = Instant::now() + Duration::from_secs(60);
    while libraries(&admin)[0]["items"] != 1 {
        assert!(Instant::now() < deadline, "the new folder was not scanned: {:?}", libraries(&admin));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(libraries(&admin)[0]["available"], true);
    let scan_deadline = Instant::now() + Duration::from_secs(30);
    let reported = loop {
        let status = admin.get_json("/api/v1/scan");
        let done = status["libraries"].as_array().expect("libraries").iter().any(|p| p["library"] == added["path"] && p["phase"] == "done");
        if done || Instant::now() > scan_deadline {
            break done;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(reported, "GET /api/v1/scan lists the folder's finished scan");
    let again = admin.request(Method::POST, "/api/v1/admin/libraries", Some(&json!({ "path": format!("{path}/") })));
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(libraries(&admin).len(), 1, "the same folder twice is one library");

    let data_dir = server.data_dir.to_str().expect("UTF-8 path").to_owned();
    let keys = format!("{data_dir}/keys");
    for (bad, expected) in [
        ("relative/folder", "not an absolute path"),
        ("/", "whole file system"),
        ("/etc", "system folder /etc"),
        ("/proc/self", "system folder /proc"),
        (data_dir.as_str(), "data folder"),
        (keys.as_str(), "data folder"),
        ("/nonexistent/hearth-folder", "cannot be opened"),
    ] {
        let refused = admin.request(Method::POST, "/api/v1/admin/libraries", Some(&json!({ "path": bad })));
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = refused.json().expect("error body");
        assert!(body["error"].as_str().is_some_and(|e| e.contains(expected)), "{bad}: {body}");
    }
    let extra = admin.request(Method::POST, "/api/v1/admin/libraries", Some(&json!({ "path": path, "scan": false })));
    assert!(extra.status().is_client_error(), "an unknown field was accepted");
    let member = server.adult_device();
    let forbidden = member.request(Method::POST, "/api/v1/admin/libraries", Some(&json!({ "path": "/tmp" })));
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);

    // Removing the folder forgets its items; the file stays.
    assert_eq!(admin.request(Method::DELETE, &format!("/api/v1/admin/libraries/{id}"), None).status(), StatusCode::NO_CONTENT);
    assert_eq!(libraries(&admin), Vec::<Value>::new());
    assert!(admin.items().is_empty(), "items of a removed folder are still listed");
    assert!(film.is_file(), "removing a library deleted a file");
    assert_eq!(admin.request(Method::DELETE, &format!("/api/v1/admin/libraries/{id}"), None).status(), StatusCode::NOT_FOUND);
    assert_eq!(admin.request(Method::DELETE, "/api/v1/admin/libraries/abc", None).status(), StatusCode::BAD_REQUEST);
}
