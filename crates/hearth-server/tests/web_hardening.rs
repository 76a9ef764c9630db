//! Web hardening against a real server: cross-site request forgery is
//! rejected before authentication, every response carries the isolation
//! headers, and forwarded-address headers do not change who the server
//! thinks it is talking to.

mod common;

use std::io::{Read, Write};

use common::Server;
use common::device::{PASSWORD, TestDevice, assert_proof_challenge, binding_of};
use hearth_access::Role;
use hearth_pqc::KeyExchangePolicy;
use reqwest::{Method, StatusCode};

fn empty_server() -> (Server, tempfile::TempDir) {
    let library = tempfile::tempdir().expect("library folder");
    let server = Server::start_with(&[library.path()], &["--no-watch"]);
    (server, library)
}

/// Like [`empty_server`] with the guard off, for attacks on the access
/// layer itself, which the guard would stop first.
fn unguarded_server() -> (Server, tempfile::TempDir) {
    let library = tempfile::tempdir().expect("library folder");
    let server = Server::start_unguarded(&[library.path()]);
    (server, library)
}

fn signing_key_versions(device: &TestDevice) -> usize {
    device.get_json("/api/v1/keys").as_array().expect("array of key versions").len()
}

#[test]
fn cross_site_login_rejected() {
    let (server, _library) = unguarded_server();
    let device = TestDevice::new(&server);
    device.enroll(&server, "alice", Role::Admin);

    for (header, value) in [
        ("origin", "https://evil.example".to_owned()),
        ("origin", "null".to_owned()),
        // Same host, other port: another origin.
        ("origin", format!("https://127.0.0.1:{}", server.addr.port() + 1)),
        // Plain HTTP is another origin too.
        ("origin", format!("http://{}", server.addr)),
        ("sec-fetch-site", "cross-site".to_owned()),
        ("sec-fetch-site", "same-site".to_owned()),
    ] {
        let response = device.sign_in_with_headers("alice", PASSWORD, &[(header, &value)]);
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{header}: {value}");
        assert!(response.headers().get("set-cookie").is_none(), "{header}: {value} got a session cookie");
        let body: serde_json::Value = response.json().expect("JSON error body");
        assert!(body["error"].as_str().unwrap_or("").contains("cross-site request rejected"), "{body}");
        assert!(body.get("session_id").is_none(), "{header}: {value} got a session: {body}");
    }

    let log = server.log_text();
    assert!(log.contains("cross-site request rejected"), "no log line for the refused requests:\n{log}");
}

#[test]
fn same_origin_login_accepted() {
    let (server, _library) = empty_server();
    let device = TestDevice::new(&server);
    device.enroll(&server, "alice", Role::Admin);
    let origin = server.url("");

    let response = device.sign_in_with_headers("alice", PASSWORD, &[("origin", &origin), ("sec-fetch-site", "same-origin")]);

    assert_eq!(response.status(), StatusCode::OK);
    // The session lives in signed headers, never in a cookie that another
    // site's request could carry.
    assert!(response.headers().get("set-cookie").is_none(), "device sign-in set a cookie");
    let answer: serde_json::Value = response.json().expect("JSON sign-in answer");
    assert!(answer["session_id"].is_string(), "{answer}");

    // Chromium's own POST under Referrer-Policy: no-referrer.
    let chromium = device.sign_in_with_headers("alice", PASSWORD, &[("origin", "null"), ("sec-fetch-site", "same-origin")]);
    assert_eq!(chromium.status(), StatusCode::OK, "Chromium's same-origin sign-in was rejected");
}

#[test]
fn forged_admin_action_rejected() {
    let (server, _library) = empty_server();
    let admin = server.admin_device();
    let before = signing_key_versions(&admin);

    // Even signed by an admin's device, a request that a browser marks as
    // sent from another site must not rotate keys.
    let response = admin.request_with_headers(
        Method::POST,
        "/api/v1/admin/rotate-keys",
        Some(&serde_json::json!({ "reason": "forged" })),
        &[("origin", "https://evil.example")],
    );
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(signing_key_versions(&admin), before, "a forged request rotated the signing key");

    // The same request without a browser's Origin (the CLI) still works.
    let response = admin.request(Method::POST, "/api/v1/admin/rotate-keys", Some(&serde_json::json!({ "reason": "test" })));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(signing_key_versions(&admin), before + 1);
}

#[test]
fn http1_origin_checked_against_host() {
    let (server, _library) = empty_server();
    let admin = server.admin_device();
    let session = admin.session_id().expect("the admin device is signed in");
    // Signs a sign-out for a new raw HTTP/1.1 connection and returns the status line.
    let send = |origin: &str| -> String {
        let mut stream = server.tls_stream();
        let signed = admin.sign_for_binding(&Method::POST, "/api/v1/logout", &session, &binding_of(&mut stream));
        let request = format!(
            "POST /api/v1/logout HTTP/1.1\r\nHost: {}\r\nOrigin: {origin}\r\nHearth-Session: {}\r\nHearth-Proof: {}\r\nHearth-Binding: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            server.addr, signed.session, signed.proof, signed.binding
        );
        stream.write_all(request.as_bytes()).expect("write request");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.lines().next().unwrap_or("").to_owned()
    };

    // The forged sign-out goes first: it must leave the session open.
    let forged = send("https://evil.example");
    let still_signed_in = admin.request(Method::GET, "/api/v1/session", None).status();
    let same_origin = send(&server.url(""));
    let signed_out = admin.request(Method::GET, "/api/v1/session", None);

    assert!(forged.contains(" 403 "), "another origin over HTTP/1.1 was accepted: {forged}");
    assert_eq!(still_signed_in, StatusCode::OK, "the refused sign-out ended the session");
    assert!(same_origin.contains(" 204 "), "same origin over HTTP/1.1 was refused: {same_origin}");
    assert_eq!(assert_proof_challenge(&signed_out, "session after sign-out"), "expired");
}

#[test]
fn isolation_headers_on_every_response() {
    let (server, _library) = empty_server();
    let admin = server.admin_device();
    let adult = server.adult_device();
    let client = server.client(KeyExchangePolicy::HybridPreferred);

    let cases = [
        ("/api/v1/health", None, StatusCode::OK),
        ("/api/v1/items", None, StatusCode::UNAUTHORIZED),
        ("/no/such/route", Some(&admin), StatusCode::NOT_FOUND),
        ("/api/v1/connections", Some(&adult), StatusCode::FORBIDDEN),
        ("/", Some(&admin), StatusCode::OK),
    ];
    for (path, device, status) in cases {
        let response = match device {
            Some(device) => device.request(Method::GET, path, None),
            None => client.get(server.url(path)).send().expect("request"),
        };
        assert_eq!(response.status(), status, "{path}");
        if status == StatusCode::UNAUTHORIZED {
            assert_proof_challenge(&response, path);
        }
        let headers = response.headers();
        assert_eq!(headers["cross-origin-opener-policy"], "same-origin", "{path}");
        assert_eq!(headers["cross-origin-resource-policy"], "same-origin", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert!(headers["strict-transport-security"].to_str().unwrap().starts_with("max-age="), "{path}");
        let permissions = headers["permissions-policy"].to_str().unwrap();
        assert!(permissions.contains("geolocation=()"), "{path}: {permissions}");
        assert!(headers.get("access-control-allow-origin").is_none(), "{path} allows cross-origin reads");
    }
}

#[test]
fn forwarded_address_headers_are_ignored() {
    let (server, _library) = empty_server();
    let admin = server.admin_device();

    let response = admin.request_with_headers(
        Method::GET,
        "/api/v1/connection",
        None,
        &[("x-forwarded-for", "203.0.113.7"), ("x-real-ip", "203.0.113.7"), ("forwarded", "for=203.0.113.7;proto=https")],
    );
    assert_eq!(response.status(), StatusCode::OK);
    let info: serde_json::Value = response.json().expect("JSON body");
    let peer = info["peer"].as_str().expect("peer address");
    assert!(peer.starts_with("127.0.0.1:"), "server took a forwarded address as the peer: {peer}");
    assert!(!server.log_text().contains("203.0.113.7"), "the forwarded address reached the log");
}

#[test]
fn client_errors_have_json_bodies() {
    let (server, _library) = empty_server();
    let admin = server.admin_device();
    let client = server.client(KeyExchangePolicy::HybridPreferred);

    let too_large = client
        .post(server.url("/api/v1/pair/start"))
        .header("content-type", "application/json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .expect("request");
    let bad_query = admin.request(reqwest::Method::GET, "/api/v1/admin/audit?since=abc", None);
    let unknown = admin.request(reqwest::Method::GET, "/api/v1/nothing-here", None);

    for (name, response) in [("413", too_large), ("bad query", bad_query), ("unknown path", unknown)] {
        let status = response.status();
        assert!(status.is_client_error(), "{name}: {status}");
        let body: serde_json::Value = response.json().unwrap_or_else(|e| panic!("{name}: body is not JSON: {e}"));
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{name}: {body}");
    }
}
