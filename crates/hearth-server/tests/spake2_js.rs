//! Runs the browser's SPAKE2 module (`src/web/spake2.js`) under Node
//! against the RFC 9382 test vectors and the cross-language check in
//! `tests/e2e/spake2_vectors.mjs`.

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
