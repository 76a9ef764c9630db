//! Emergency key rotation on a running server: a new TLS certificate for new
//! connections and a new signing key version, with the old one still
//! published, and no restart.

mod common;

use std::io::Write;
use std::process::Command;

use common::Server;
use common::device::TestDevice;
use reqwest::Method;

/// Fetches the leaf certificate of a fresh TLS connection, verified against
/// the household CA.
fn leaf_certificate(server: &Server) -> Vec<u8> {
    let mut tls = server.tls_stream();
    tls.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    tls.flush().unwrap();
    tls.conn.peer_certificates().expect("server sent certificates")[0].to_vec()
}

fn keys(device: &TestDevice) -> Vec<serde_json::Value> {
    device.get_json("/api/v1/keys").as_array().expect("key list").clone()
}

#[test]
fn cli_rotation_replaces_certificate_and_signing_key() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    let admin = server.admin_device();
    let old_leaf = leaf_certificate(&server);
    let old_keys = keys(&admin);
    assert_eq!(old_keys.len(), 1, "{old_keys:?}");

    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .env("HEARTH_CONFIG", "/dev/null")
        .args(["keys", "rotate", "--reason", "test leak", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();

    assert!(output.status.success(), "hearth keys rotate failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let new_leaf = leaf_certificate(&server);
    assert_ne!(new_leaf, old_leaf, "new connections still get the old certificate");
    let fingerprint = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&new_leaf))
    };
    assert_eq!(report["tls_certificate_sha256"], fingerprint);

    let new_keys = keys(&admin);
    assert_eq!(new_keys.len(), 2);
    assert_eq!(new_keys[0]["key_id"], old_keys[0]["key_id"], "old verifying key must stay published");
    assert_eq!(new_keys[0]["current"], false);
    assert!(new_keys[0]["retired_at"].is_u64());
    assert_eq!(new_keys[1]["current"], true);
    assert_ne!(new_keys[1]["key_id"], new_keys[0]["key_id"]);
    assert_eq!(report["signing_key"]["key_id"], new_keys[1]["key_id"]);
    assert!(server.log_text().contains("emergency key rotation finished"));
}

#[test]
fn member_cannot_rotate_keys() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    let adult = server.adult_device();

    let response = adult.request(Method::POST, "/api/v1/admin/rotate-keys", None);

    assert_eq!(response.status(), 403);
    assert_eq!(keys(&adult).len(), 1);
}
