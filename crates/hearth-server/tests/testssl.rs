//! testssl.sh 3.2 against a running server in its default hybrid mode: no
//! finding at severity LOW or above, other than the ones listed in
//! [`BY_DESIGN`], and X25519MLKEM768 among the KEMs it reports.
//!
//! A full testssl.sh run (every check but `-E` and `-g`) took 43 to 84 s
//! in the runs here, on 2 shared cores. testssl.sh 3.0 does not know ML-KEM, so the test requires 3.2
//! or newer.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Server, output_within};

#[test]
fn testssl_reports_no_issue_and_hybrid_kem() {
    let testssl = find_testssl();
    require_version(&testssl);
    let library = tempfile::tempdir().expect("temporary library folder");
    let server = Server::start(&[library.path()]);
    let report = tempfile::tempdir().expect("temporary folder for the report");
    let json_file = report.path().join("testssl.json");

    let mut command = Command::new(&testssl);
    command
        .args(["--quiet", "--warnings", "off", "--color", "0"])
        // No DNS lookups and no CRL or OCSP fetches: the test talks only to
        // 127.0.0.1.
        .args(["--nodns", "none", "--ip", "127.0.0.1"])
        .args(["--connect-timeout", "10", "--openssl-timeout", "10"])
        .arg("--jsonfile")
        .arg(&json_file)
        .arg("--add-ca")
        .arg(server.ca_file())
        .arg(server.addr.to_string());
    // The exit status is not checked, because testssl.sh 3.2.1 exits with 1
    // when its session-resumption check loses a race. That check closes
    // `openssl s_client` right after the handshake, often before the
    // server's TLS 1.3 session ticket arrives, and then reports a connect
    // problem as a WARN. Here `s_client -sess_out` saved no ticket in 41 of
    // 100 tries against a release build of Hearth and in 17 of 100 against
    // `openssl s_server`. The findings below decide the test.
    let output = output_within(&mut command, TESTSSL_TIMEOUT, "testssl.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);

    let text = std::fs::read_to_string(&json_file).unwrap_or_else(|err| {
        panic!(
            "failed to read {}: {err}; testssl.sh exited with {}; stdout:\n{stdout}",
            json_file.display(),
            output.status
        )
    });
    let findings: Vec<serde_json::Value> =
        serde_json::from_str(&text).expect("testssl.sh JSON file is an array of findings");
    let field = |finding: &serde_json::Value, name: &str| finding[name].as_str().unwrap_or_default().to_owned();

    // A run cut short still writes what it found so far.
    for id in ["TLS1_3", "FS_KEMs", "cert_chain_of_trust", "heartbleed", "overall_grade"] {
        assert!(
            findings.iter().any(|finding| field(finding, "id") == id),
            "testssl.sh reported no {id} finding, so its run did not finish; it exited with {}; stdout:\n{stdout}",
            output.status
        );
    }

    let problems: Vec<String> = findings
        .iter()
        .filter(|finding| field(finding, "id") == "scanProblem")
        .map(|finding| format!("{}: {}", field(finding, "severity"), field(finding, "finding")))
        .collect();
    assert!(problems.is_empty(), "testssl.sh could not run all checks: {problems:?}");

    let issues: Vec<String> = findings
        .iter()
        .filter(|finding| FAILING_SEVERITIES.contains(&field(finding, "severity").as_str()))
        .filter(|finding| {
            let (id, text) = (field(finding, "id"), field(finding, "finding"));
            !BY_DESIGN.iter().any(|expected| expected.id == id && expected.finding == text)
        })
        .map(|finding| {
            format!("{} {}: {}", field(finding, "severity"), field(finding, "id"), field(finding, "finding"))
        })
        .collect();
    assert!(issues.is_empty(), "testssl.sh findings at LOW or above: {issues:#?}");

    let kems = findings
        .iter()
        .find(|finding| field(finding, "id") == "FS_KEMs")
        .map(|finding| field(finding, "finding"))
        .unwrap_or_default();
    assert!(
        kems.split_whitespace().any(|kem| kem == "X25519MLKEM768"),
        "testssl.sh KEMs offered: {kems:?}, expected X25519MLKEM768"
    );
}

/// Finds testssl.sh on PATH: `testssl.sh` as upstream names it, or `testssl`
/// as Debian's package does. `TESTSSL` overrides the search.
fn find_testssl() -> PathBuf {
    if let Some(path) = std::env::var_os("TESTSSL") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "TESTSSL is {}, which is not a file: {INSTALL_HINT}", path.display());
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| ["testssl.sh", "testssl"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("testssl.sh not found on PATH: {INSTALL_HINT}"))
}

/// Fails unless `testssl --version` reports 3.2 or newer.
fn require_version(testssl: &PathBuf) {
    let output = output_within(Command::new(testssl).arg("--version"), Duration::from_secs(30), "testssl.sh --version");
    let banner = strip_ansi(&String::from_utf8_lossy(&output.stdout));
    let version = banner
        .split_once(" version ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no version in the output of {} --version:\n{banner}", testssl.display()))
        .to_owned();

    let mut parts = version.split('.').map(|part| part.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    assert!(
        (major, minor) >= (3, 2),
        "{} is testssl.sh {version}, which does not know ML-KEM; 3.2 or newer is needed: {INSTALL_HINT}",
        testssl.display()
    );
}

/// Removes ANSI SGR sequences (`ESC [ ... m`), which testssl.sh prints in
/// its banner even with `--color 0`.
fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// A finding that testssl.sh reports at LOW or above but that Hearth accepts
/// on purpose.
struct ExpectedFinding {
    id: &'static str,
    finding: &'static str,
}

/// testssl.sh rates a leaf certificate without a CRL or OCSP URL as HIGH.
/// The household CA is private to one server and publishes neither, so
/// revoking the server certificate means replacing the CA on each device.
/// NOTE: a leaked server key therefore stays usable by an attacker on the LAN
/// until the certificate expires, 397 days after it was issued
/// (`LEAF_VALIDITY` in hearth-pqc's `ca.rs`).
const BY_DESIGN: &[ExpectedFinding] =
    &[ExpectedFinding { id: "cert_revocation", finding: "Neither CRL nor OCSP URI provided" }];

/// testssl.sh severities that fail the test. It also writes DEBUG, INFO, OK
/// and WARN (a note about the scan, not about the server).
const FAILING_SEVERITIES: &[&str] = &["LOW", "MEDIUM", "HIGH", "CRITICAL", "FATAL"];
/// A full run took 43 to 84 s here on 2 shared cores. The margin covers a
/// slower machine or a busy test run.
const TESTSSL_TIMEOUT: Duration = Duration::from_secs(300);
const INSTALL_HINT: &str = "apt-get install -t bookworm-backports testssl.sh (scripts/install-deps --test does)";
