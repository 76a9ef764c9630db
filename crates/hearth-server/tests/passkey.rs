//! Passkey sign-in (docs/access.md, "Passkeys"): Debian's Chromium with a
//! Chrome DevTools virtual authenticator registers a passkey and signs in
//! with it through `tests/e2e/passkey.mjs`; the failures are refused and
//! audited. The other tests send the sign-in steps by hand.
//!
//! The Chromium test needs `/usr/bin/chromium`, node, `certutil`
//! (libnss3-tools) and `npm ci --prefix tests/e2e` for playwright-core.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Server;
use common::device::{PASSWORD, TestDevice};
use hearth_pqc::KeyExchangePolicy;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};

/// The Playwright script, relative to the workspace root.
const PASSKEY_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/passkey.mjs");
/// The script's dependencies, installed by `npm ci --prefix tests/e2e`.
const PLAYWRIGHT_CORE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/node_modules/playwright-core");
/// Limit of the whole browser run: two pairings, the sign-ins, shutdown.
const BROWSER_RUN_LIMIT: Duration = Duration::from_secs(180);
/// Limit of each browser step inside the script, in milliseconds.
const STEP_LIMIT_MS: &str = "60000";
/// Account the browser chooses for the first-run admin offer.
const FIRST_USER: &str = "admin";
/// Account of the second browser.
const SECOND_USER: &str = "bob";

const LOGIN_START: &str = "/api/v1/passkeys/login/start";
const LOGIN_FINISH: &str = "/api/v1/passkeys/login/finish";

#[test]
fn chromium_signs_in_with_a_passkey() {
    assert!(
        Path::new(PLAYWRIGHT_CORE).is_dir(),
        "{PLAYWRIGHT_CORE} is missing: run `npm ci --prefix tests/e2e` (scripts/test does)"
    );
    let library = tempfile::tempdir().expect("empty library folder");
    let server = Server::start(&[library.path()]);
    let first_link = on_localhost(&server, server.setup_link.as_deref().expect("a new server prints a first-run pairing link"));
    let second_link = on_localhost(&server, &server.pairing_offer(&["--new-user", SECOND_USER, "--role", "adult"]));

    let output = common::output_within(
        Command::new("node")
            .arg(PASSKEY_SCRIPT)
            .env("HEARTH_URL", localhost_url(&server, ""))
            .env("HEARTH_CA", server.ca_file())
            .env("HEARTH_PAIR_LINK", &first_link)
            .env("HEARTH_SECOND_PAIR_LINK", &second_link)
            .env("HEARTH_USER", FIRST_USER)
            .env("HEARTH_SECOND_USER", SECOND_USER)
            .env("HEARTH_PASSWORD", PASSWORD)
            .env("HEARTH_TIMEOUT_MS", STEP_LIMIT_MS),
        BROWSER_RUN_LIMIT,
        "node tests/e2e/passkey.mjs (apt-get install nodejs)",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "passkey.mjs failed with {}:\n{stderr}\nserver log:\n{}", output.status, server.log_text());
    let line = stdout.lines().rev().find(|line| !line.trim().is_empty()).expect("passkey.mjs printed a JSON line");
    println!("passkey.mjs: {line}");
    let result: serde_json::Value = serde_json::from_str(line).expect("passkey.mjs output is JSON");

    // Registered and listed for the first user.
    let passkey_id = result["registered"]["id"].as_i64().expect("registered passkey id");
    assert_eq!(result["registered"]["name"], "virtual authenticator");
    assert_eq!(result["listed"].as_array().map(Vec::len), Some(1), "listed: {}", result["listed"]);

    // The passkey opened a session, and a signed request in it works.
    let session = &result["passkey_session"];
    assert!(session["session_id"].as_str().is_some_and(|id| !id.is_empty()), "passkey sign-in: {session}");
    assert_eq!(session["user"]["name"], FIRST_USER);
    assert_eq!(result["session_check"]["status"], 200, "GET /api/v1/session: {}", result["session_check"]);
    assert_eq!(result["session_check"]["body"]["device"], session["device"]["did"]);
    assert_eq!(result["session_check"]["body"]["user_role"], "admin");

    // A challenge answers one assertion.
    assert_eq!(result["replay"]["first"]["status"], 200, "first finish: {}", result["replay"]["first"]);
    assert_eq!(result["replay"]["second"]["status"], 401, "replayed finish: {}", result["replay"]["second"]);

    // The first user's assertion on the second user's browser.
    assert_eq!(result["other_user"]["start"], 200, "second user's login/start: {}", result["other_user"]);
    assert_eq!(result["other_user"]["status"], 401, "foreign assertion: {}", result["other_user"]);
    assert_error_mentions(&result["other_user"], "another user");

    // Deleted between start and finish, then gone for good.
    assert_eq!(result["deleted_meanwhile"]["status"], 401, "deleted passkey: {}", result["deleted_meanwhile"]);
    assert_error_mentions(&result["deleted_meanwhile"], "unknown passkey");
    assert_eq!(result["remaining"].as_array().map(Vec::len), Some(0));
    assert_eq!(result["after_delete"]["status"], 400, "sign-in after delete: {}", result["after_delete"]);

    // The refused steps log their failed loads; nothing else may go wrong.
    let errors = result["console_errors"].as_array().expect("console_errors array");
    let unexpected: Vec<_> =
        errors.iter().filter(|error| !error.as_str().unwrap_or_default().starts_with("Failed to load resource")).collect();
    assert!(unexpected.is_empty(), "console errors: {unexpected:#?}");

    // Each outcome is in the audit table.
    let reasons = login_audit(&server);
    let verified = format!("allow passkey {passkey_id} verified");
    assert_eq!(reasons.iter().filter(|reason| **reason == verified).count(), 2, "audit: {reasons:#?}");
    for expected in [
        "deny passkey rejected: no passkey challenge is pending",
        "deny passkey rejected: the passkey belongs to another user than this device",
        "deny passkey rejected: unknown passkey",
        "deny passkey sign-in: the user has no passkey",
    ] {
        assert!(reasons.iter().any(|reason| reason.starts_with(expected)), "no audit record {expected:?} in {reasons:#?}");
    }
}

#[test]
fn passkey_sign_in_needs_a_device_proof() {
    let library = tempfile::tempdir().expect("empty library folder");
    let server = Server::start(&[library.path()]);
    let client = localhost_client(&server);

    let start = client
        .post(localhost_url(&server, LOGIN_START))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .expect("login/start");

    assert_eq!(start.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge_code(&start), Some("missing".to_owned()));
}

#[test]
fn passkeys_need_a_host_name() {
    let library = tempfile::tempdir().expect("empty library folder");
    let server = Server::start(&[library.path()]);

    let start = server
        .client(KeyExchangePolicy::HybridPreferred)
        .post(server.url(LOGIN_START))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .expect("login/start");

    assert_eq!(start.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = start.json().expect("JSON error");
    assert!(body["error"].as_str().is_some_and(|error| error.contains("host name")), "{body}");
}

#[test]
fn sign_in_without_a_passkey_is_refused_and_audited() {
    let library = tempfile::tempdir().expect("empty library folder");
    let server = Server::start(&[library.path()]);
    let device = server.adult_device();
    let signer = ProofClient::new(&server);

    let start = signer.send(&device, LOGIN_START, "{}");

    assert_eq!(start.status(), StatusCode::BAD_REQUEST);
    let reasons = login_audit(&server);
    assert!(reasons.iter().any(|reason| reason == "deny passkey sign-in: the user has no passkey"), "{reasons:#?}");
}

#[test]
fn assertion_without_a_challenge_is_refused_and_audited() {
    let library = tempfile::tempdir().expect("empty library folder");
    let server = Server::start(&[library.path()]);
    let device = server.adult_device();
    let signer = ProofClient::new(&server);

    let finish = signer.send(&device, LOGIN_FINISH, &made_up_assertion());

    assert_eq!(finish.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge_code(&finish), Some("invalid".to_owned()));
    let reasons = login_audit(&server);
    assert!(
        reasons.iter().any(|reason| reason.starts_with("deny passkey rejected: no passkey challenge is pending")),
        "{reasons:#?}"
    );
}

#[test]
fn malformed_assertion_is_a_bad_request() {
    let library = tempfile::tempdir().expect("empty library folder");
    let server = Server::start(&[library.path()]);
    let device = server.adult_device();
    let signer = ProofClient::new(&server);

    let finish = signer.send(&device, LOGIN_FINISH, r#"{"id": "not an assertion"}"#);

    assert_eq!(finish.status(), StatusCode::BAD_REQUEST);
}

/// Sends sign-in requests signed by a test device over a client of its own
/// that reaches the server as `localhost`, the relying party id.
struct ProofClient {
    client: Client,
    base: String,
}

impl ProofClient {
    fn new(server: &Server) -> Self {
        Self { client: localhost_client(server), base: localhost_url(server, "") }
    }

    /// POSTs `body` to `path` with `Hearth-Device` and a proof signed with
    /// an empty session id for this client's connection, signing again once
    /// when the server names another binding.
    fn send(&self, device: &TestDevice, path: &str, body: &str) -> Response {
        let health = self.client.get(format!("{}/api/v1/health", self.base)).send().expect("health check");
        let mut binding = binding_header(&health).expect("the health check sends Hearth-Binding");
        for attempt in 0..2 {
            let headers = device.sign_for_binding(&reqwest::Method::POST, path, "", &binding);
            let response = self
                .client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .header("hearth-device", &device.did)
                .header("hearth-proof", &headers.proof)
                .header("hearth-binding", &headers.binding)
                .body(body.to_owned())
                .send()
                .expect("signed sign-in request");
            match binding_header(&response) {
                Some(new) if new != binding && attempt == 0 && response.status() == StatusCode::UNAUTHORIZED => binding = new,
                _ => return response,
            }
        }
        unreachable!("the loop returns on its second pass")
    }
}

/// A client that trusts the household CA and resolves `localhost` to the
/// server's address.
fn localhost_client(server: &Server) -> Client {
    let tls = hearth_pqc::client_config(server.household_roots(), KeyExchangePolicy::HybridPreferred, &[b"h2", b"http/1.1"])
        .expect("client TLS config");
    Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .resolve("localhost", server.addr)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// `https://localhost:PORT` followed by `path`.
fn localhost_url(server: &Server, path: &str) -> String {
    format!("https://localhost:{}{path}", server.addr.port())
}

/// The pairing link with its origin replaced by `https://localhost:PORT`.
fn on_localhost(server: &Server, link: &str) -> String {
    let start = link.find("/pair#").unwrap_or_else(|| panic!("not a pairing link: {}", link.split('#').next().unwrap_or("")));
    localhost_url(server, &link[start..])
}

fn binding_header(response: &Response) -> Option<String> {
    response.headers().get("hearth-binding").and_then(|value| value.to_str().ok()).map(str::to_owned)
}

/// The `error` parameter of a `WWW-Authenticate: HearthProof` challenge.
fn challenge_code(response: &Response) -> Option<String> {
    let challenge = response.headers().get("www-authenticate")?.to_str().ok()?;
    let rest = challenge.split("error=\"").nth(1)?;
    Some(rest.split('"').next()?.to_owned())
}

/// Builds a well-formed assertion that no authenticator made: fixed bytes
/// for the credential id, client data and signature.
fn made_up_assertion() -> String {
    serde_json::json!({
        "id": "AAAAAAAAAAAAAAAAAAAAAA",
        "rawId": "AAAAAAAAAAAAAAAAAAAAAA",
        "type": "public-key",
        "response": {
            "authenticatorData": "AAAA",
            "clientDataJSON": "e30",
            "signature": "AAAA",
            "userHandle": null
        },
        "extensions": {}
    })
    .to_string()
}

/// The sign-in records of the audit table as "allow|deny REASON", oldest first.
fn login_audit(server: &Server) -> Vec<String> {
    let page = server.get_json("/api/v1/admin/audit?limit=500");
    let records = page["records"].as_array().expect("audit records");
    let mut reasons: Vec<String> = records
        .iter()
        .filter(|record| record["action"] == "login")
        .map(|record| {
            let decision = if record["allowed"] == true { "allow" } else { "deny" };
            format!("{decision} {}", record["reason"].as_str().unwrap_or_default())
        })
        .collect();
    reasons.reverse();
    reasons
}

fn assert_error_mentions(answer: &serde_json::Value, text: &str) {
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.contains(text), "expected an error mentioning {text:?}: {answer}");
}
