//! A paired device for end-to-end tests: an ECDSA P-256 key like a
//! browser's, a session, and requests signed over the connection's TLS
//! binding exactly as docs/access.md describes.

use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_access::pake::{PasswordScalar, Role as PakeRole, Spake2};
use hearth_access::proof::{EXPORTER_LABEL, EXPORTER_LEN};
use hearth_access::{DeviceKey, Role};
use hearth_pqc::KeyExchangePolicy;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use reqwest::blocking::{Client, Response};
use reqwest::{Method, StatusCode};
use rustls::{ClientConnection, StreamOwned};

use super::Server;

/// Password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// One device with its key, its session and the last binding it saw.
pub struct TestDevice {
    key: SigningKey,
    /// The device's did:key.
    pub did: String,
    base_url: String,
    client: Client,
    session: Mutex<Option<String>>,
    binding: Mutex<Option<String>>,
}

/// The headers of one signed request, for replay tests.
#[derive(Clone, Debug)]
pub struct SignedHeaders {
    /// `Hearth-Session`.
    pub session: String,
    /// `Hearth-Proof`.
    pub proof: String,
    /// `Hearth-Binding` as signed.
    pub binding: String,
}

impl TestDevice {
    /// Makes a key and a client for `server`; the device is not paired yet.
    pub fn new(server: &Server) -> Self {
        let mut seed = [0u8; 32];
        let key = loop {
            getrandom::fill(&mut seed).expect("OS random numbers");
            if let Ok(key) = SigningKey::from_slice(&seed) {
                break key;
            }
        };
        let public = key.verifying_key().to_sec1_point(false);
        let did = DeviceKey::from_p256_sec1(public.as_bytes()).expect("valid P-256 key").did().to_string();
        Self {
            key,
            did,
            base_url: server.url(""),
            client: server.client(KeyExchangePolicy::HybridPreferred),
            session: Mutex::new(None),
            binding: Mutex::new(None),
        }
    }

    /// Returns this device, with its key and current session, on a client
    /// of its own that offers the key-exchange groups of `policy`. Its
    /// first request opens a new TLS connection, which later requests reuse.
    pub fn on_new_client(&self, server: &Server, policy: KeyExchangePolicy) -> Self {
        Self {
            key: self.key.clone(),
            did: self.did.clone(),
            base_url: self.base_url.clone(),
            client: server.client(policy),
            session: Mutex::new(self.session_id()),
            binding: Mutex::new(None),
        }
    }

    /// Returns the public key as WebCrypto exports it (65 bytes), b64u.
    pub fn public_key_b64u(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_sec1_point(false).as_bytes())
    }

    /// Pairs this device as a new user `name` with `role` through the real
    /// flow: `hearth pair --new-user` on the host, then SPAKE2 over the API.
    pub fn enroll(&self, server: &Server, name: &str, role: Role) -> serde_json::Value {
        let link = server.pairing_offer(&["--new-user", name, "--role", role.as_str()]);
        self.pair(&link, Some((name, PASSWORD)))
    }

    /// Pairs this device for the existing user `name`.
    pub fn enroll_for(&self, server: &Server, name: &str) -> serde_json::Value {
        let link = server.pairing_offer(&["--user", name]);
        self.pair(&link, None)
    }

    /// Runs the pairing protocol of docs/access.md for `link`, as the
    /// browser's pairing page does, and checks the server's confirmation.
    pub fn pair(&self, link: &str, account: Option<(&str, &str)>) -> serde_json::Value {
        let (status, body) = self.try_pair(link, account);
        assert_eq!(status, StatusCode::OK, "pairing failed: {body}");
        body
    }

    /// Runs the pairing protocol and returns the status and JSON body of
    /// the finish step, or of the start step when that fails.
    pub fn try_pair(&self, link: &str, account: Option<(&str, &str)>) -> (StatusCode, serde_json::Value) {
        let (offer_id, code) = parse_link(link);
        let device_key = self.public_key_b64u();
        let device_name = "test device";
        let aad = format!("{offer_id}\n{device_key}\n{device_name}");
        let w = PasswordScalar::from_code(&code, offer_id.as_bytes());
        let spake = Spake2::start(PakeRole::A, &w, b"hearth device", b"hearth server", aad.as_bytes());

        let start = serde_json::json!({
            "offer_id": offer_id, "device_key": device_key, "device_name": device_name,
            "share": URL_SAFE_NO_PAD.encode(spake.share()),
        });
        let response = self.client.post(format!("{}/api/v1/pair/start", self.base_url)).json(&start).send().expect("pair/start");
        if response.status() != StatusCode::OK {
            return (response.status(), response.json().unwrap_or_default());
        }
        let started: serde_json::Value = response.json().expect("JSON");
        let server_share = URL_SAFE_NO_PAD.decode(started["share"].as_str().expect("share")).expect("b64u share");
        let output = spake.finish(&server_share).expect("SPAKE2 finish");

        let mut finish = serde_json::json!({
            "pairing_id": started["pairing_id"], "confirmation": URL_SAFE_NO_PAD.encode(output.confirmation()),
        });
        if let Some((name, password)) = account {
            finish["account"] = serde_json::json!({ "name": name, "password": password });
        }
        let response = self.client.post(format!("{}/api/v1/pair/finish", self.base_url)).json(&finish).send().expect("pair/finish");
        if response.status() != StatusCode::OK {
            return (response.status(), response.json().unwrap_or_default());
        }
        let paired: serde_json::Value = response.json().expect("JSON");
        let server_mac = URL_SAFE_NO_PAD.decode(paired["confirmation"].as_str().expect("confirmation")).expect("b64u");
        output.verify_peer(&server_mac).expect("the server proved it knows the code");
        assert_eq!(paired["device"]["did"], self.did.as_str());
        (StatusCode::OK, paired)
    }

    /// Signs in as `name` with [`PASSWORD`] and keeps the session.
    pub fn sign_in(&self, name: &str) -> serde_json::Value {
        let response = self.sign_in_with(name, PASSWORD);
        assert_eq!(response.status(), StatusCode::OK, "sign-in failed");
        let body: serde_json::Value = response.json().expect("JSON sign-in answer");
        *self.session.lock().unwrap() = Some(body["session_id"].as_str().expect("session id").to_owned());
        body
    }

    /// Sends a sign-in request and returns the raw response.
    pub fn sign_in_with(&self, name: &str, password: &str) -> Response {
        self.sign_in_with_headers(name, password, &[])
    }

    /// Sends a sign-in request with `extra` headers (such as `Origin`) and
    /// returns the raw response; the session is not kept.
    pub fn sign_in_with_headers(&self, name: &str, password: &str, extra: &[(&str, &str)]) -> Response {
        self.ensure_binding();
        let body = serde_json::json!({ "name": name, "password": password }).to_string();
        let headers = self.sign(&Method::POST, "/api/v1/login", "");
        let mut request = self
            .client
            .post(format!("{}/api/v1/login", self.base_url))
            .header("content-type", "application/json")
            .header("hearth-device", &self.did)
            .header("hearth-proof", &headers.proof)
            .header("hearth-binding", &headers.binding);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = request.body(body).send().expect("sign-in request");
        self.remember_binding(&response);
        response
    }

    /// Returns the current session id.
    pub fn session_id(&self) -> Option<String> {
        self.session.lock().unwrap().clone()
    }

    /// Sends a signed request, signing again once when the server answers
    /// that it arrived on another connection than the one signed for.
    pub fn request(&self, method: Method, path: &str, body: Option<&serde_json::Value>) -> Response {
        self.request_with_headers(method, path, body, &[])
    }

    /// Like [`TestDevice::request`], with `extra` headers (`Range`,
    /// `Origin`, ...) on each attempt.
    pub fn request_with_headers(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        extra: &[(&str, &str)],
    ) -> Response {
        self.ensure_binding();
        for attempt in 0..2 {
            let session = self.session_id().unwrap_or_default();
            let headers = self.sign(&method, path, &session);
            let mut request = self
                .client
                .request(method.clone(), format!("{}{path}", self.base_url))
                .header("hearth-session", &session)
                .header("hearth-proof", &headers.proof)
                .header("hearth-binding", &headers.binding);
            for (name, value) in extra {
                request = request.header(*name, *value);
            }
            if let Some(body) = body {
                request = request.header("content-type", "application/json").body(body.to_string());
            }
            let response = request.send().expect("signed request");
            let rebound = self.remember_binding(&response);
            if response.status() == StatusCode::UNAUTHORIZED && rebound && attempt == 0 {
                continue;
            }
            return response;
        }
        unreachable!("the loop returns on its second pass")
    }

    /// Sends one signed request without a body, with `extra` headers, and
    /// returns the transport's error instead of panicking, for a server that
    /// may close the connection (a ban).
    pub fn try_request(&self, method: Method, path: &str, extra: &[(&str, &str)]) -> reqwest::Result<Response> {
        self.ensure_binding();
        let session = self.session_id().unwrap_or_default();
        let headers = self.sign(&method, path, &session);
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .header("hearth-session", &session)
            .header("hearth-proof", &headers.proof)
            .header("hearth-binding", &headers.binding);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = request.send()?;
        self.remember_binding(&response);
        Ok(response)
    }

    /// GET `path`, signed, and parse JSON; panics unless the status is 200.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.request(Method::GET, path, None);
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().expect("JSON body")
    }

    /// Builds the headers of a signed request without sending it.
    pub fn sign(&self, method: &Method, path: &str, session: &str) -> SignedHeaders {
        let binding = self.binding.lock().unwrap().clone().expect("a binding was received");
        self.sign_for_binding(method, path, session, &binding)
    }

    /// Builds the headers of a request signed for the connection whose
    /// exporter value is `binding` (b64u), such as one from [`binding_of`].
    pub fn sign_for_binding(&self, method: &Method, path: &str, session: &str, binding: &str) -> SignedHeaders {
        let binding = binding.to_owned();
        let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let mut nonce = [0u8; 18];
        getrandom::fill(&mut nonce).expect("OS random numbers");
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let signed = ["hearth-request-proof/v1", method.as_str(), path, &timestamp.to_string(), &nonce, &binding, session].join("\n");
        let signature: Signature = self.key.sign(signed.as_bytes());
        let proof = format!("v1;t={timestamp};n={nonce};s={}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        SignedHeaders { session: session.to_owned(), proof, binding }
    }

    /// Requests a media grant on `item` in this device's session and
    /// returns the JSON response: `stream_url`, `thumbnail_url`, `expires_at`.
    pub fn grant(&self, item: &str) -> serde_json::Value {
        let response = self.request(Method::POST, &format!("/api/v1/items/{item}/grant"), None);
        assert_eq!(response.status(), StatusCode::OK, "grant for item {item}");
        response.json().expect("JSON grant response")
    }

    /// Waits until the scan that `server` started at launch has finished.
    pub fn wait_for_scan(&self, server: &Server) {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let status = self.get_json("/api/v1/scan");
            let done = status["running"] == false && status["latest"]["phase"] == "done";
            if done {
                return;
            }
            assert!(Instant::now() < deadline, "scan did not finish in 180 s; log:\n{}", server.log_text());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Lists every item of the library as this device's user sees it.
    pub fn items(&self) -> Vec<serde_json::Value> {
        self.get_json("/api/v1/items?limit=500")["items"].as_array().expect("items array").clone()
    }

    /// Opens a new TLS connection to `server` and returns its id. The server
    /// numbers handshakes in order, so two marks bracket the connections
    /// that other clients made between them.
    pub fn connection_mark(&self, server: &Server) -> u64 {
        let fresh = self.on_new_client(server, KeyExchangePolicy::HybridPreferred);
        fresh.get_json("/api/v1/connection")["id"].as_u64().expect("connection id in /api/v1/connection")
    }

    /// Fetches the connection log (an admin's view) and keeps the entries
    /// with an id strictly between `start` and `end`, two values of
    /// [`TestDevice::connection_mark`].
    ///
    /// NOTE: the server keeps only its most recent 256 connections, so a
    /// window with more handshakes than that loses its oldest entries.
    pub fn connections_between(&self, start: u64, end: u64) -> Vec<serde_json::Value> {
        let log = self.get_json("/api/v1/connections");
        let connections = log.as_array().expect("connections array");
        connections
            .iter()
            .filter(|connection| {
                let id = connection["id"].as_u64().expect("connection id in /api/v1/connections");
                start < id && id < end
            })
            .cloned()
            .collect()
    }

    /// Records the response's binding; returns whether it changed.
    fn remember_binding(&self, response: &Response) -> bool {
        let Some(value) = response.headers().get("hearth-binding").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let mut binding = self.binding.lock().unwrap();
        let changed = binding.as_deref() != Some(value);
        *binding = Some(value.to_owned());
        changed
    }

    fn ensure_binding(&self) {
        if self.binding.lock().unwrap().is_some() {
            return;
        }
        let response = self.client.get(format!("{}/api/v1/health", self.base_url)).send().expect("health request");
        assert!(self.remember_binding(&response), "the health answer carried no Hearth-Binding header");
    }
}

/// Finishes the handshake of a raw TLS stream (from [`Server::tls_stream`])
/// and returns its exporter value as b64u: the binding that a request sent
/// on that connection signs.
pub fn binding_of(stream: &mut StreamOwned<ClientConnection, TcpStream>) -> String {
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).expect("TLS handshake");
    }
    let exporter = stream.conn.export_keying_material([0u8; EXPORTER_LEN], EXPORTER_LABEL, None).expect("TLS 1.3 exporter value");
    URL_SAFE_NO_PAD.encode(exporter)
}

/// Asserts that `response` is a 401 with the `HearthProof` challenge of
/// docs/access.md, and returns the challenge's `error` code.
/// `request_name` names the request in failure messages.
pub fn assert_proof_challenge(response: &Response, request_name: &str) -> String {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{request_name}");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("{request_name}: 401 without WWW-Authenticate"))
        .to_str()
        .expect("ASCII challenge")
        .to_owned();
    assert!(challenge.starts_with("HearthProof realm=\"hearth\""), "{request_name}: challenge {challenge}");
    challenge
        .split_once("error=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(code, _)| code.to_owned())
        .unwrap_or_else(|| panic!("{request_name}: challenge without an error code: {challenge}"))
}

/// Splits a pairing link into its offer id and code.
pub fn parse_link(link: &str) -> (String, String) {
    let fragment = link.split_once('#').expect("pairing link has a fragment").1;
    let field = |name: &str| {
        fragment
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("pairing link without {name}: {link}"))
            .to_owned()
    };
    (field("offer"), field("code"))
}
