//! A paired device for end-to-end tests: an ECDSA P-256 key like a
//! browser's, a session, and requests signed over the connection's TLS
//! binding exactly as docs/access.md describes.

use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_access::pake::{PasswordScalar, Role as PakeRole, Spake2};
use hearth_access::{DeviceKey, Role};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use reqwest::blocking::{Client, Response};
use reqwest::{Method, StatusCode};

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
            client: server.client(hearth_pqc::KeyExchangePolicy::HybridPreferred),
            session: Mutex::new(None),
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
        self.ensure_binding();
        let body = serde_json::json!({ "name": name, "password": password }).to_string();
        let headers = self.sign(&Method::POST, "/api/v1/login", "");
        let response = self
            .client
            .post(format!("{}/api/v1/login", self.base_url))
            .header("content-type", "application/json")
            .header("hearth-device", &self.did)
            .header("hearth-proof", &headers.proof)
            .header("hearth-binding", &headers.binding)
            .body(body)
            .send()
            .expect("sign-in request");
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

    /// GET `path`, signed, and parse JSON; panics unless the status is 200.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.request(Method::GET, path, None);
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().expect("JSON body")
    }

    /// Builds the headers of a signed request without sending it.
    pub fn sign(&self, method: &Method, path: &str, session: &str) -> SignedHeaders {
        let binding = self.binding.lock().unwrap().clone().expect("a binding was received");
        let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let mut nonce = [0u8; 18];
        getrandom::fill(&mut nonce).expect("OS random numbers");
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let signed = ["hearth-request-proof/v1", method.as_str(), path, &timestamp.to_string(), &nonce, &binding, session].join("\n");
        let signature: Signature = self.key.sign(signed.as_bytes());
        let proof = format!("v1;t={timestamp};n={nonce};s={}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        SignedHeaders { session: session.to_owned(), proof, binding }
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
