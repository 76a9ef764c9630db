//! The built web UI served from `HEARTH_UI_DIR`: the old pages send
//! browsers to it, client routes get its start page, hashed assets are
//! cached for good, and no request path leaves its folder.

mod common;

use common::Server;
use hearth_pqc::KeyExchangePolicy;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};

#[test]
fn ui_folder_is_served_and_old_pages_redirect() {
    let ui = tempfile::tempdir().expect("UI folder");
    std::fs::create_dir(ui.path().join("assets")).expect("assets folder");
    std::fs::write(ui.path().join("index.html"), "<!doctype html><title>Hearth UI</title>").expect("index.html");
    std::fs::write(ui.path().join("assets/index-3f2a.js"), "export {};").expect("script");
    // A secret beside the folder, which no path may reach.
    std::fs::write(ui.path().parent().expect("parent").join("ui-secret.txt"), "secret").ok();
    let library = tempfile::tempdir().expect("library");
    let server = Server::start_with_ui_unguarded(&[library.path()], ui.path());
    let client = reqwest::blocking::Client::builder()
        .tls_backend_preconfigured((*hearth_pqc::client_config(server.household_roots(), KeyExchangePolicy::HybridPreferred, &[b"http/1.1"]).expect("TLS")).clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let get = |path: &str| client.get(server.url(path)).send().expect("GET");

    for (old, new) in [("/", "/ui/"), ("/pair", "/ui/pair"), ("/login", "/ui/login")] {
        let response = get(old);
        assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT, "{old}");
        assert_eq!(response.headers()[LOCATION], new, "{old}");
    }

    for route in ["/ui/", "/ui", "/ui/household", "/ui/item/0123456789abcdef0123456789abcdef"] {
        let response = get(route);
        assert_eq!(response.status(), StatusCode::OK, "{route}");
        assert!(response.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"), "{route}");
        assert!(response.headers().contains_key(CONTENT_SECURITY_POLICY), "{route} has no CSP");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-cache", "{route}");
        assert!(response.text().unwrap().contains("Hearth UI"), "{route}");
    }
    let asset = get("/ui/assets/index-3f2a.js");
    assert_eq!(asset.status(), StatusCode::OK);
    assert!(asset.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    assert!(asset.headers()[CACHE_CONTROL].to_str().unwrap().contains("immutable"));

    for hostile in ["/ui/../ui-secret.txt", "/ui/%2e%2e/ui-secret.txt", "/ui/assets/..%2f..%2fui-secret.txt", "/ui/.hidden.js", "/ui/assets/missing.js", "/ui/a%5cb.js"] {
        // A path the client normalises out of /ui/ meets the session check (401).
        let response = get(hostile);
        assert!(matches!(response.status(), StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED), "{hostile}: {}", response.status());
        assert!(!response.text().unwrap().contains("secret"), "{hostile} leaked the file");
    }
}
