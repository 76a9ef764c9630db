//! Web hardening against a real server: cross-site request forgery is
//! rejected before authentication, every response carries the isolation
//! headers, and forwarded-address headers do not change who the server
//! thinks it is talking to.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::Server;
use hearth_pqc::KeyExchangePolicy;
use reqwest::StatusCode;
use reqwest::blocking::Client;

/// Builds a client that trusts the household CA and does not follow
/// redirects, so a test gets the sign-in response itself.
fn no_redirect_client(server: &Server) -> Client {
    let tls = hearth_pqc::client_config(server.household_roots(), KeyExchangePolicy::HybridPreferred, &[b"h2", b"http/1.1"])
        .expect("client TLS config");
    Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// Content type of an HTML form post; the tokens are hex, so the bodies
/// need no escaping.
const FORM: &str = "application/x-www-form-urlencoded";

fn empty_server() -> (Server, tempfile::TempDir) {
    let library = tempfile::tempdir().expect("library folder");
    let server = Server::start_with(&[library.path()], &["--no-watch"]);
    (server, library)
}

fn signing_key_versions(server: &Server) -> usize {
    server.get_json("/api/v1/keys").as_array().expect("array of key versions").len()
}

#[test]
fn cross_site_login_rejected() {
    let (server, _library) = empty_server();
    let client = no_redirect_client(&server);
    let form = format!("token={}", server.admin_token);

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
        let response = client.post(server.url("/api/v1/login")).header(header, &value).header("content-type", FORM).body(form.clone()).send().expect("request");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{header}: {value}");
        assert!(response.headers().get("set-cookie").is_none(), "{header}: {value} got a session cookie");
        let body: serde_json::Value = response.json().expect("JSON error body");
        assert!(body["error"].as_str().unwrap_or("").contains("cross-site request rejected"), "{body}");
    }

    let log = server.log_text();
    assert!(log.contains("cross-site request rejected"), "no log line for the refused requests:\n{log}");
}

#[test]
fn same_origin_login_accepted() {
    let (server, _library) = empty_server();
    let client = no_redirect_client(&server);

    let response = client
        .post(server.url("/api/v1/login"))
        .header("origin", server.url(""))
        .header("sec-fetch-site", "same-origin")
        .header("content-type", FORM)
        .body(format!("token={}", server.admin_token))
        .send()
        .expect("request");

    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // Chromium's own form post under Referrer-Policy: no-referrer.
    let chromium = client
        .post(server.url("/api/v1/login"))
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .header("content-type", FORM)
        .body(format!("token={}", server.admin_token))
        .send()
        .expect("request");
    assert_eq!(chromium.status(), StatusCode::SEE_OTHER, "Chromium's same-origin form post was rejected");
    let cookie = response.headers().get("set-cookie").expect("session cookie").to_str().unwrap();
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[test]
fn forged_admin_action_rejected() {
    let (server, _library) = empty_server();
    let client = server.client(KeyExchangePolicy::HybridPreferred);
    let before = signing_key_versions(&server);

    // Even with a valid admin credential (a browser that sends the cookie
    // despite SameSite), a cross-site request must not rotate keys.
    let response = client
        .post(server.url("/api/v1/admin/rotate-keys"))
        .bearer_auth(&server.admin_token)
        .header("origin", "https://evil.example")
        .json(&serde_json::json!({ "reason": "forged" }))
        .send()
        .expect("request");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(signing_key_versions(&server), before, "a forged request rotated the signing key");

    // The same request without a browser's Origin (the CLI) still works.
    let response = client
        .post(server.url("/api/v1/admin/rotate-keys"))
        .bearer_auth(&server.admin_token)
        .json(&serde_json::json!({ "reason": "test" }))
        .send()
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(signing_key_versions(&server), before + 1);
}

#[test]
fn http1_origin_checked_against_host() {
    let (server, _library) = empty_server();
    let send = |origin: &str| -> String {
        let mut stream = server.tls_stream();
        let request = format!(
            "POST /api/v1/logout HTTP/1.1\r\nHost: {}\r\nOrigin: {origin}\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            server.addr, server.admin_token
        );
        stream.write_all(request.as_bytes()).expect("write request");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.lines().next().unwrap_or("").to_owned()
    };

    assert!(send(&server.url("")).contains(" 204 "), "same origin over HTTP/1.1 was refused");
    assert!(send("https://evil.example").contains(" 403 "), "another origin over HTTP/1.1 was accepted");
}

#[test]
fn isolation_headers_on_every_response() {
    let (server, _library) = empty_server();
    let client = server.client(KeyExchangePolicy::HybridPreferred);

    let cases = [
        ("/api/v1/health", None, StatusCode::OK),
        ("/api/v1/items", None, StatusCode::UNAUTHORIZED),
        ("/no/such/route", Some(server.admin_token.as_str()), StatusCode::NOT_FOUND),
        ("/api/v1/connections", Some(server.member_token.as_str()), StatusCode::FORBIDDEN),
        ("/", Some(server.admin_token.as_str()), StatusCode::OK),
    ];
    for (path, token, status) in cases {
        let mut request = client.get(server.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().expect("request");
        assert_eq!(response.status(), status, "{path}");
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
    let client = server.client(KeyExchangePolicy::HybridPreferred);

    let response = client
        .get(server.url("/api/v1/connection"))
        .bearer_auth(&server.admin_token)
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-real-ip", "203.0.113.7")
        .header("forwarded", "for=203.0.113.7;proto=https")
        .send()
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let info: serde_json::Value = response.json().expect("JSON body");
    let peer = info["peer"].as_str().expect("peer address");
    assert!(peer.starts_with("127.0.0.1:"), "server took a forwarded address as the peer: {peer}");
    assert!(!server.log_text().contains("203.0.113.7"), "the forwarded address reached the log");
}
