//! Runs the browser's SPAKE2 module (`src/web/spake2.js`) under Node
//! against the RFC 9382 test vectors and the cross-language check in
//! `tests/e2e/spake2_vectors.mjs`, and the pairing page's protocol logic
//! against a simulated server in `tests/e2e/pair_protocol.mjs`.

mod common;

use std::process::Command;
use std::time::Duration;

const VECTOR_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/spake2_vectors.mjs");

#[test]
fn browser_spake2_matches_rfc_vectors() {
    let output = common::output_within(
        Command::new("node").arg(VECTOR_SCRIPT),
        Duration::from_secs(60),
        "node tests/e2e/spake2_vectors.mjs (apt-get install nodejs)",
    );

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "spake2_vectors.mjs failed with {}:\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("4 RFC 9382 vectors"), "unexpected output:\n{stdout}");
}

const PAIRING_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/pair_protocol.mjs");

#[test]
fn pairing_page_protocol_checks_pass() {
    let output = common::output_within(
        Command::new("node").arg(PAIRING_SCRIPT),
        Duration::from_secs(60),
        "node tests/e2e/pair_protocol.mjs (apt-get install nodejs)",
    );

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "pair_protocol.mjs failed with {}:\n{stdout}\n{stderr}", output.status);
}
