//! The running server negotiates X25519MLKEM768 with a post-quantum client
//! and X25519 with a classical one, and reports to each client which it got.

mod common;

use std::path::Path;

use common::Server;
use common::device::TestDevice;
use hearth_pqc::KeyExchangePolicy;
use reqwest::Method;

/// Sends GET `/api/v1/connection`, signed by `device`, from a new client
/// that offers the groups of `policy`, and returns the JSON response.
fn negotiated_group(server: &Server, device: &TestDevice, policy: KeyExchangePolicy) -> serde_json::Value {
    let response = device.on_new_client(server, policy).request(Method::GET, "/api/v1/connection", None);
    assert_eq!(response.status(), 200);
    response.json().expect("connection JSON")
}

#[test]
fn hybrid_client_sees_x25519mlkem768() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    let admin = server.admin_device();

    let info = negotiated_group(&server, &admin, KeyExchangePolicy::HybridPreferred);

    assert_eq!(info["key_exchange_group"], "X25519MLKEM768");
    assert_eq!(info["post_quantum"], true);
    assert_eq!(info["protocol"], "TLSv1_3");
    assert_eq!(info["alpn"], "h2");
}

#[test]
fn classical_client_falls_back_and_is_flagged() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    let admin = server.admin_device();

    let info = negotiated_group(&server, &admin, KeyExchangePolicy::ClassicalOnly);

    assert_eq!(info["key_exchange_group"], "X25519");
    assert_eq!(info["post_quantum"], false);
    assert!(server.log_text().contains("group=\"X25519\""), "connection group missing from log");
}

#[test]
fn pq_only_server_rejects_classical_client() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start_with(&[library.path()], &["--pq-only"]);
    let admin = server.admin_device();

    let classical = server
        .client(KeyExchangePolicy::ClassicalOnly)
        .get(server.url("/api/v1/health"))
        .send();
    let hybrid = negotiated_group(&server, &admin, KeyExchangePolicy::HybridPreferred);

    assert!(classical.is_err(), "classical client connected to a pq-only server");
    assert_eq!(hybrid["key_exchange_group"], "X25519MLKEM768");
}

/// curl cannot sign requests, so it fetches a media grant's URL. The
/// server's connection log, read between two marks, shows the group of
/// curl's connection.
#[test]
fn curl_with_openssl_uses_x25519_fallback() {
    common::require_samples();
    let library = tempfile::tempdir().unwrap();
    std::fs::copy(Path::new(common::SOUNDS).join("bell.oga"), library.path().join("bell.oga")).unwrap();
    let server = Server::start_with(&[library.path()], &["--no-watch"]);
    let admin = server.admin_device();
    admin.wait_for_scan(&server);
    let item = admin.items()[0]["id"].as_str().expect("item id").to_owned();
    let grant = admin.grant(&item);
    let stream_url = server.url(grant["stream_url"].as_str().expect("stream_url"));

    let before = admin.connection_mark(&server);
    let output = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--output", "/dev/null", "--cacert"])
        .arg(server.ca_file())
        .arg(&stream_url)
        .output()
        .expect("curl is installed (apt-get install curl)");
    let after = admin.connection_mark(&server);

    assert!(output.status.success(), "curl failed: {}", String::from_utf8_lossy(&output.stderr));
    let connections = admin.connections_between(before, after);
    assert!(!connections.is_empty(), "no connection logged between marks {before} and {after}");
    for connection in &connections {
        assert_eq!(connection["key_exchange_group"], "X25519", "curl connection {connection}");
    }
}

#[test]
fn config_file_sets_libraries_and_pq_only() {
    common::require_samples();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hearth.toml");
    std::fs::write(&config, format!("libraries = [\"{}\"]\npq_only = true\nwatch = false\n", common::SOUNDS)).unwrap();

    let server = Server::start_with(&[], &["--config", config.to_str().unwrap()]);
    let admin = server.admin_device();
    admin.wait_for_scan(&server);
    let classical = server.client(KeyExchangePolicy::ClassicalOnly).get(server.url("/api/v1/health")).send();

    assert!(!admin.items().is_empty(), "library from the config file was not scanned");
    assert!(classical.is_err(), "pq_only from the config file was not applied");
}

#[test]
fn pq_only_refuses_curl_and_logs_offered_groups() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start_with(&[library.path()], &["--pq-only"]);

    let output = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--cacert"])
        .arg(server.ca_file())
        .arg(server.url("/api/v1/health"))
        .output()
        .expect("curl is installed (apt-get install curl)");

    assert!(!output.status.success(), "curl with OpenSSL 3.0 connected to a pq-only server");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("alert") || stderr.contains("handshake"), "curl error is not a TLS failure: {stderr}");
    let log = server.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("offers no accepted key-exchange group"))
        .unwrap_or_else(|| panic!("no rejection logged:\n{log}"));
    assert!(line.contains("offered="), "{line}");
    assert!(line.contains("X25519"), "{line}");
    assert!(line.contains("accepted=X25519MLKEM768"), "{line}");
}
