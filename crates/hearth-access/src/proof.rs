//! Request proof of possession: the device signs each request.
//!
//! Every request carries a signature by the device key over the request's
//! method and target, a timestamp, a fresh nonce, the session id and a
//! value exported from the TLS connection (RFC 8446 §7.5 keying material
//! exporter, RFC 5705 interface). The server rebuilds the signed string from
//! the request it received and the connection it received it on. A proof
//! copied from one request therefore does not verify for another method,
//! path, session or TLS connection, and a stolen session id is useless
//! without the device key.
//!
//! # Signed string
//!
//! Seven lines joined by `\n` (no trailing newline), ASCII only:
//!
//! ```text
//! hearth-request-proof/v1
//! <method>            uppercase HTTP method token, such as GET
//! <path and query>    the request target exactly as sent, such as /items/42?t=3
//! <timestamp>         Unix seconds, decimal, no sign or leading zeros
//! <nonce>             22 to 64 base64url characters (at least 128 random bits)
//! <exporter>          base64url (no padding) of the 32-byte TLS exporter value
//! <session id>        base64url session id; empty before a session exists
//! ```
//!
//! No field may contain a newline or any byte outside printable ASCII, so
//! the string splits back into its fields in one way only.
//!
//! # TLS exporter
//!
//! The server derives 32 bytes with label [`EXPORTER_LABEL`] and no context
//! (rustls `ConnectionCommon::export_keying_material`). A CLI client derives
//! the same bytes from its side of the connection. Browsers cannot read TLS
//! exporter values, so the server sends its value over the same connection
//! and the browser signs what it receives. The crate documentation says what
//! that still protects.
//!
//! NOTE: a browser cannot choose which connection `fetch` uses. The server
//! must answer a proof signed for another connection with the current
//! connection's value so the browser can sign again.
//!
//! # Replay
//!
//! A proof is accepted when its timestamp is within [`ProofLimits::max_skew`]
//! of the server clock and its nonce has not been seen for that device while
//! the timestamp is in that window. The nonce cache forgets a nonce once its
//! timestamp has left the window, because the proof is stale from then on.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_pqc::sign::HybridSigner;

use crate::clock::Clock;
use crate::device_key::{DeviceKey, DeviceKeyError};

/// TLS exporter label of request proofs (RFC 8446 §7.5; the `EXPORTER-`
/// prefix marks a label outside the IANA registry).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-hearth-request-proof";

/// Length of the exported value in bytes.
pub const EXPORTER_LEN: usize = 32;

/// First line of every signed string.
const PROOF_LABEL: &str = "hearth-request-proof/v1";

/// Hybrid signing context of request proofs from CLI devices.
pub const PROOF_CONTEXT: &[u8] = b"hearth/request-proof/v1";

/// Nonce length bounds in base64url characters: 22 characters hold 128 bits.
const MIN_NONCE_LEN: usize = 22;
const MAX_NONCE_LEN: usize = 64;

/// Maximum method token length.
const MAX_METHOD_LEN: usize = 16;

/// Maximum request target length, in bytes.
const MAX_TARGET_LEN: usize = 8 * 1024;

/// Maximum session id length, in base64url characters.
const MAX_SESSION_ID_LEN: usize = 64;

/// Request data the server observed itself, independent of the client's claims.
#[derive(Debug, Clone, Copy)]
pub struct RequestBinding<'a> {
    /// HTTP method as received.
    pub method: &'a str,
    /// Request target (path and query) as received, before any decoding.
    pub path_and_query: &'a str,
    /// The connection's TLS exporter value, [`EXPORTER_LEN`] bytes.
    pub exporter: &'a [u8],
    /// The session id the request names; empty before a session exists.
    pub session_id: &'a str,
}

/// The parts of a proof that the client sends.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestProof {
    /// Unix seconds at signing time.
    pub timestamp: i64,
    /// Fresh random value, base64url.
    pub nonce: String,
    /// The device's signature over the signed string.
    pub signature: Vec<u8>,
}

/// Bounds of the proof checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofLimits {
    /// Largest accepted difference between a proof's timestamp and the
    /// server clock, in seconds, in either direction.
    pub max_skew: i64,
    /// Most nonces remembered in total.
    pub max_nonces: usize,
    /// Most nonces remembered for one device.
    pub max_nonces_per_device: usize,
}

impl Default for ProofLimits {
    /// ±60 s of clock skew. At most 200,000 nonces in total (about 20 MB),
    /// and 20,000 per device: over the 121-second window that allows a
    /// device about 165 requests per second.
    fn default() -> Self {
        Self {
            max_skew: 60,
            max_nonces: 200_000,
            max_nonces_per_device: 20_000,
        }
    }
}

/// Verifies request proofs and remembers their nonces.
pub struct ProofVerifier {
    clock: Arc<dyn Clock>,
    limits: ProofLimits,
    seen: Mutex<NonceCache>,
}

impl ProofVerifier {
    /// Creates a verifier with [`ProofLimits::default`].
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_limits(clock, ProofLimits::default())
    }

    /// Creates a verifier with `limits`.
    pub fn with_limits(clock: Arc<dyn Clock>, limits: ProofLimits) -> Self {
        Self {
            clock,
            limits,
            seen: Mutex::new(NonceCache::default()),
        }
    }

    /// Verifies that `key` signed `proof` for the request in `binding`.
    ///
    /// The checks run cheapest first: field syntax, timestamp window, then
    /// the signature, and the nonce is recorded only after the signature
    /// verifies, so unsigned requests cannot fill the nonce cache.
    ///
    /// # Errors
    ///
    /// Returns the [`ProofError`] of the first failed check.
    pub fn verify(
        &self,
        key: &DeviceKey,
        binding: &RequestBinding<'_>,
        proof: &RequestProof,
    ) -> Result<(), ProofError> {
        let now = self.clock.now();
        let message = signed_string(binding, proof.timestamp, &proof.nonce)?;

        let skew = now.abs_diff(proof.timestamp);
        if skew > self.limits.max_skew.unsigned_abs() {
            return Err(ProofError::Stale {
                timestamp: proof.timestamp,
                now,
                max_skew: self.limits.max_skew,
            });
        }

        key.verify(PROOF_CONTEXT, message.as_bytes(), &proof.signature)
            .map_err(ProofError::Signature)?;

        let expires_at = proof.timestamp + self.limits.max_skew;
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.insert(
            key.did().as_str(),
            &proof.nonce,
            expires_at,
            now,
            &self.limits,
        )
    }

    /// Returns how many nonces are remembered.
    pub fn remembered_nonces(&self) -> usize {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.prune(self.clock.now());
        seen.expiry.len()
    }
}

impl std::fmt::Debug for ProofVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofVerifier")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl RequestProof {
    /// Parses the proof header value `v1;t=<timestamp>;n=<nonce>;s=<signature>`,
    /// with the signature in base64url without padding.
    ///
    /// # Errors
    ///
    /// Returns [`ProofError::MalformedHeader`] naming the first bad part.
    pub fn from_header(value: &str) -> Result<Self, ProofError> {
        let malformed = |problem| ProofError::MalformedHeader { problem };

        let mut parts = value.split(';');
        if parts.next() != Some("v1") {
            return Err(malformed("expected version \"v1\" first"));
        }
        let timestamp = parts
            .next()
            .and_then(|part| part.strip_prefix("t="))
            .ok_or(malformed("missing t="))?;
        let nonce = parts
            .next()
            .and_then(|part| part.strip_prefix("n="))
            .ok_or(malformed("missing n="))?;
        let signature = parts
            .next()
            .and_then(|part| part.strip_prefix("s="))
            .ok_or(malformed("missing s="))?;
        if parts.next().is_some() {
            return Err(malformed("unexpected part after s="));
        }

        let timestamp =
            parse_timestamp(timestamp).ok_or(malformed("t= is not a decimal Unix time"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| malformed("s= is not base64url"))?;
        Ok(Self {
            timestamp,
            nonce: nonce.to_owned(),
            signature,
        })
    }

    /// Formats the proof as a header value for [`RequestProof::from_header`].
    pub fn to_header(&self) -> String {
        format!(
            "v1;t={};n={};s={}",
            self.timestamp,
            self.nonce,
            URL_SAFE_NO_PAD.encode(&self.signature)
        )
    }

    /// Signs a request with a hybrid device key, as a CLI client does.
    ///
    /// # Errors
    ///
    /// Returns [`ProofError::InvalidField`] when a field of `binding` or
    /// `nonce` cannot be part of a signed string.
    pub fn sign_hybrid<S: HybridSigner + ?Sized>(
        signer: &S,
        binding: &RequestBinding<'_>,
        timestamp: i64,
        nonce: &str,
    ) -> Result<Self, ProofError> {
        let message = signed_string(binding, timestamp, nonce)?;
        let signature = signer.sign(PROOF_CONTEXT, message.as_bytes()).to_bytes();
        Ok(Self {
            timestamp,
            nonce: nonce.to_owned(),
            signature,
        })
    }

    /// Returns a fresh nonce: 16 random bytes in base64url.
    ///
    /// # Errors
    ///
    /// Returns [`ProofError::Random`] if the operating system's random
    /// number generator fails.
    pub fn new_nonce() -> Result<String, ProofError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(ProofError::Random)?;
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }
}

impl std::fmt::Debug for RequestProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestProof")
            .field("timestamp", &self.timestamp)
            .field("nonce", &self.nonce)
            .field("signature_len", &self.signature.len())
            .finish()
    }
}

/// Builds the string a device signs (see the module documentation).
///
/// # Errors
///
/// Returns [`ProofError::InvalidField`] when a field breaks its syntax, and
/// [`ProofError::ExporterLength`] when the exporter value is not 32 bytes.
pub fn signed_string(
    binding: &RequestBinding<'_>,
    timestamp: i64,
    nonce: &str,
) -> Result<String, ProofError> {
    check_field("method", binding.method, 1, MAX_METHOD_LEN, |byte| {
        byte.is_ascii_uppercase()
    })?;
    check_field(
        "path and query",
        binding.path_and_query,
        1,
        MAX_TARGET_LEN,
        |byte| byte.is_ascii_graphic(),
    )?;
    if !binding.path_and_query.starts_with('/') {
        return Err(ProofError::InvalidField {
            field: "path and query",
            problem: "must start with '/'",
        });
    }
    check_field("nonce", nonce, MIN_NONCE_LEN, MAX_NONCE_LEN, is_base64url)?;
    check_field(
        "session id",
        binding.session_id,
        0,
        MAX_SESSION_ID_LEN,
        is_base64url,
    )?;
    if binding.exporter.len() != EXPORTER_LEN {
        return Err(ProofError::ExporterLength {
            actual: binding.exporter.len(),
        });
    }
    if timestamp < 0 {
        return Err(ProofError::InvalidField {
            field: "timestamp",
            problem: "must not be negative",
        });
    }

    let exporter = URL_SAFE_NO_PAD.encode(binding.exporter);
    Ok([
        PROOF_LABEL,
        binding.method,
        binding.path_and_query,
        &timestamp.to_string(),
        nonce,
        &exporter,
        binding.session_id,
    ]
    .join("\n"))
}

/// Error from parsing or verifying a request proof.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The proof header does not have the expected form.
    #[error("malformed request proof header: {problem}")]
    MalformedHeader {
        /// Description of the problem.
        problem: &'static str,
    },

    /// A field cannot be part of a signed string.
    #[error("invalid request proof {field}: {problem}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Description of the problem.
        problem: &'static str,
    },

    /// The TLS exporter value has the wrong length.
    #[error("invalid TLS exporter value: {actual} bytes, expected 32")]
    ExporterLength {
        /// Length given.
        actual: usize,
    },

    /// The timestamp is outside the accepted window.
    #[error(
        "stale request proof: timestamp {timestamp} is more than {max_skew} s from server time {now}; check the device clock"
    )]
    Stale {
        /// Timestamp in the proof.
        timestamp: i64,
        /// Server time.
        now: i64,
        /// Accepted difference in seconds.
        max_skew: i64,
    },

    /// The signature does not verify: another device, request, connection
    /// or session.
    #[error("request proof signature does not verify for this device, request and connection")]
    Signature(#[source] DeviceKeyError),

    /// The nonce was already used in a valid proof by this device.
    #[error("replayed request proof: nonce already used by this device")]
    Replay,

    /// The nonce cache for this device or in total is full.
    #[error("too many requests: {scope} nonce limit of {limit} in the last {window} s reached")]
    TooManyNonces {
        /// "device" or "total".
        scope: &'static str,
        /// The limit reached.
        limit: usize,
        /// Window length in seconds.
        window: i64,
    },

    /// The operating system's random number generator failed.
    #[error("failed to generate a nonce")]
    Random(#[source] getrandom::Error),
}

/// Checks length and allowed bytes of a signed-string field.
fn check_field(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
    allowed: impl Fn(u8) -> bool,
) -> Result<(), ProofError> {
    if value.len() < min {
        return Err(ProofError::InvalidField {
            field,
            problem: "too short",
        });
    }
    if value.len() > max {
        return Err(ProofError::InvalidField {
            field,
            problem: "too long",
        });
    }
    if !value.bytes().all(allowed) {
        return Err(ProofError::InvalidField {
            field,
            problem: "contains a character outside its alphabet",
        });
    }
    Ok(())
}

fn is_base64url(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// Parses a canonical decimal timestamp: digits only, no leading zeros.
fn parse_timestamp(text: &str) -> Option<i64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return None;
    }
    text.parse().ok()
}

/// Nonces seen in valid proofs, each until its proof's timestamp leaves the window.
#[derive(Default)]
struct NonceCache {
    /// (device did, nonce) → expiry time.
    entries: HashMap<(String, String), i64>,
    /// Ordered by expiry, for pruning.
    expiry: BTreeSet<(i64, String, String)>,
    /// Remembered nonces per device did.
    per_device: HashMap<String, usize>,
}

impl NonceCache {
    fn insert(
        &mut self,
        device: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
        limits: &ProofLimits,
    ) -> Result<(), ProofError> {
        self.prune(now);

        let key = (device.to_owned(), nonce.to_owned());
        if self.entries.contains_key(&key) {
            return Err(ProofError::Replay);
        }

        let window = 2 * limits.max_skew + 1;
        let device_count = self.per_device.get(device).copied().unwrap_or(0);
        if device_count >= limits.max_nonces_per_device {
            return Err(ProofError::TooManyNonces {
                scope: "device",
                limit: limits.max_nonces_per_device,
                window,
            });
        }
        if self.entries.len() >= limits.max_nonces {
            return Err(ProofError::TooManyNonces {
                scope: "total",
                limit: limits.max_nonces,
                window,
            });
        }

        self.expiry
            .insert((expires_at, key.0.clone(), key.1.clone()));
        self.entries.insert(key, expires_at);
        *self.per_device.entry(device.to_owned()).or_insert(0) += 1;
        Ok(())
    }

    /// Forgets nonces whose proofs are stale at `now`. A proof is accepted
    /// while `now <= timestamp + max_skew`, so an entry can go once
    /// `expires_at < now`.
    fn prune(&mut self, now: i64) {
        while let Some(first) = self.expiry.first() {
            if first.0 >= now {
                break;
            }
            let (_, device, nonce) = self.expiry.pop_first().expect("first() returned an entry");
            self.entries.remove(&(device.clone(), nonce));
            if let Some(count) = self.per_device.get_mut(&device) {
                *count -= 1;
                if *count == 0 {
                    self.per_device.remove(&device);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hearth_pqc::sign::HybridSigningKey;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer as _;

    use super::*;
    use crate::clock::ManualClock;
    use crate::device_key::tests::p256_signing_key;

    const NOW: i64 = 1_750_000_000;
    const EXPORTER_A: [u8; 32] = [0xa1; 32];
    const EXPORTER_B: [u8; 32] = [0xb2; 32];
    const SESSION: &str = "c2Vzc2lvbi1pZC1mb3ItdGVzdHMtb25seS0wMDAwMDA";

    fn binding<'a>(method: &'a str, path: &'a str, exporter: &'a [u8]) -> RequestBinding<'a> {
        RequestBinding {
            method,
            path_and_query: path,
            exporter,
            session_id: SESSION,
        }
    }

    fn sign_p256(
        key: &SigningKey,
        binding: &RequestBinding<'_>,
        timestamp: i64,
        nonce: &str,
    ) -> RequestProof {
        let message = signed_string(binding, timestamp, nonce).unwrap();
        let signature: p256::ecdsa::Signature = key.sign(message.as_bytes());
        RequestProof {
            timestamp,
            nonce: nonce.to_owned(),
            signature: signature.to_bytes().to_vec(),
        }
    }

    fn setup() -> (Arc<ManualClock>, ProofVerifier, SigningKey, DeviceKey) {
        let clock = Arc::new(ManualClock::new(NOW));
        let verifier = ProofVerifier::new(clock.clone());
        let signing = p256_signing_key(20);
        let key = DeviceKey::from_p256(*signing.verifying_key());
        (clock, verifier, signing, key)
    }

    fn nonce(n: u32) -> String {
        format!("nonce-{n:0>16}")
    }

    #[test]
    fn signed_string_has_fixed_layout() {
        let exporter = [0u8; 32];
        let binding = RequestBinding {
            method: "GET",
            path_and_query: "/items/42?t=3",
            exporter: &exporter,
            session_id: "",
        };

        let message = signed_string(&binding, 1_700_000_000, "AAAAAAAAAAAAAAAAAAAAAA").unwrap();

        assert_eq!(
            message,
            "hearth-request-proof/v1\nGET\n/items/42?t=3\n1700000000\nAAAAAAAAAAAAAAAAAAAAAA\n\
             AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
        );
    }

    #[test]
    fn valid_proof_accepted() {
        let (_, verifier, signing, key) = setup();
        let binding = binding("GET", "/items/42", &EXPORTER_A);

        verifier
            .verify(
                &key,
                &binding,
                &sign_p256(&signing, &binding, NOW, &nonce(1)),
            )
            .unwrap();
    }

    #[test]
    fn replayed_proof_rejected() {
        let (_, verifier, signing, key) = setup();
        let binding = binding("GET", "/items/42", &EXPORTER_A);
        let proof = sign_p256(&signing, &binding, NOW, &nonce(1));

        verifier.verify(&key, &binding, &proof).unwrap();
        let err = verifier.verify(&key, &binding, &proof).unwrap_err();

        assert!(matches!(err, ProofError::Replay), "{err}");
    }

    #[test]
    fn replay_rejected_until_proof_is_stale() {
        let (clock, verifier, signing, key) = setup();
        let binding = binding("GET", "/", &EXPORTER_A);
        let proof = sign_p256(&signing, &binding, NOW, &nonce(1));
        verifier.verify(&key, &binding, &proof).unwrap();

        // Every second of the window the replay is caught by the nonce
        // cache; after it, by the timestamp check.
        for _ in 0..=60 {
            clock.advance(1);
            let err = verifier.verify(&key, &binding, &proof).unwrap_err();
            assert!(
                matches!(err, ProofError::Replay | ProofError::Stale { .. }),
                "{err}"
            );
        }
        let err = verifier.verify(&key, &binding, &proof).unwrap_err();
        assert!(matches!(err, ProofError::Stale { .. }), "{err}");
    }

    #[test]
    fn proof_from_other_tls_connection_rejected() {
        let (_, verifier, signing, key) = setup();
        let on_a = binding("GET", "/items/42", &EXPORTER_A);
        let proof = sign_p256(&signing, &on_a, NOW, &nonce(1));

        let err = verifier
            .verify(&key, &binding("GET", "/items/42", &EXPORTER_B), &proof)
            .unwrap_err();

        assert!(matches!(err, ProofError::Signature(_)), "{err}");
    }

    #[test]
    fn stale_and_future_timestamps_rejected() {
        let (_, verifier, signing, key) = setup();
        let binding = binding("GET", "/", &EXPORTER_A);

        for (n, timestamp) in [(1, NOW - 61), (2, NOW + 61), (3, 0)] {
            let proof = sign_p256(&signing, &binding, timestamp, &nonce(n));
            let err = verifier.verify(&key, &binding, &proof).unwrap_err();
            assert!(
                matches!(err, ProofError::Stale { .. }),
                "{timestamp}: {err}"
            );
        }
        for (n, timestamp) in [(4, NOW - 60), (5, NOW + 60)] {
            verifier
                .verify(
                    &key,
                    &binding,
                    &sign_p256(&signing, &binding, timestamp, &nonce(n)),
                )
                .unwrap();
        }
    }

    #[test]
    fn other_method_path_or_session_rejected() {
        let (_, verifier, signing, key) = setup();
        let signed = binding("GET", "/items/42", &EXPORTER_A);
        let proof = sign_p256(&signing, &signed, NOW, &nonce(1));

        let others = [
            binding("DELETE", "/items/42", &EXPORTER_A),
            binding("GET", "/items/43", &EXPORTER_A),
            binding("GET", "/items/42?admin=1", &EXPORTER_A),
            binding("GET", "/items/42/", &EXPORTER_A),
            RequestBinding {
                session_id: "b3RoZXItc2Vzc2lvbg",
                ..signed
            },
            RequestBinding {
                session_id: "",
                ..signed
            },
        ];
        for other in others {
            let err = verifier.verify(&key, &other, &proof).unwrap_err();
            assert!(matches!(err, ProofError::Signature(_)), "{other:?}: {err}");
        }
    }

    #[test]
    fn signature_by_other_device_rejected() {
        let (_, verifier, _, key) = setup();
        let binding = binding("GET", "/", &EXPORTER_A);
        let proof = sign_p256(&p256_signing_key(21), &binding, NOW, &nonce(1));

        let err = verifier.verify(&key, &binding, &proof).unwrap_err();

        assert!(matches!(err, ProofError::Signature(_)), "{err}");
    }

    #[test]
    fn tampered_timestamp_or_nonce_rejected() {
        let (_, verifier, signing, key) = setup();
        let binding = binding("GET", "/", &EXPORTER_A);
        let proof = sign_p256(&signing, &binding, NOW, &nonce(1));

        let later = RequestProof {
            timestamp: NOW + 1,
            ..proof.clone()
        };
        let renonced = RequestProof {
            nonce: nonce(2),
            ..proof.clone()
        };
        for tampered in [later, renonced] {
            let err = verifier.verify(&key, &binding, &tampered).unwrap_err();
            assert!(matches!(err, ProofError::Signature(_)), "{err}");
        }
    }

    #[test]
    fn rejected_proof_does_not_consume_nonce() {
        let (_, verifier, signing, key) = setup();
        let binding = binding("GET", "/", &EXPORTER_A);
        let forged = sign_p256(&p256_signing_key(22), &binding, NOW, &nonce(1));
        assert!(verifier.verify(&key, &binding, &forged).is_err());

        verifier
            .verify(
                &key,
                &binding,
                &sign_p256(&signing, &binding, NOW, &nonce(1)),
            )
            .unwrap();
        assert_eq!(verifier.remembered_nonces(), 1);
    }

    #[test]
    fn same_nonce_from_two_devices_accepted() {
        let (_, verifier, signing, key) = setup();
        let other_signing = p256_signing_key(23);
        let other_key = DeviceKey::from_p256(*other_signing.verifying_key());
        let binding = binding("GET", "/", &EXPORTER_A);

        verifier
            .verify(
                &key,
                &binding,
                &sign_p256(&signing, &binding, NOW, &nonce(1)),
            )
            .unwrap();
        verifier
            .verify(
                &other_key,
                &binding,
                &sign_p256(&other_signing, &binding, NOW, &nonce(1)),
            )
            .unwrap();
    }

    #[test]
    fn nonce_cache_device_bound_and_expiry() {
        let clock = Arc::new(ManualClock::new(NOW));
        let limits = ProofLimits {
            max_skew: 60,
            max_nonces: 100,
            max_nonces_per_device: 5,
        };
        let verifier = ProofVerifier::with_limits(clock.clone(), limits);
        let signing = p256_signing_key(24);
        let key = DeviceKey::from_p256(*signing.verifying_key());
        let binding = binding("GET", "/", &EXPORTER_A);

        for n in 0..5 {
            verifier
                .verify(
                    &key,
                    &binding,
                    &sign_p256(&signing, &binding, NOW, &nonce(n)),
                )
                .unwrap();
        }
        let err = verifier
            .verify(
                &key,
                &binding,
                &sign_p256(&signing, &binding, NOW, &nonce(5)),
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                ProofError::TooManyNonces {
                    scope: "device",
                    ..
                }
            ),
            "{err}"
        );

        clock.advance(61);
        assert_eq!(verifier.remembered_nonces(), 0);
        verifier
            .verify(
                &key,
                &binding,
                &sign_p256(&signing, &binding, NOW + 61, &nonce(5)),
            )
            .unwrap();
    }

    #[test]
    fn nonce_cache_total_bound() {
        let clock = Arc::new(ManualClock::new(NOW));
        let limits = ProofLimits {
            max_skew: 60,
            max_nonces: 3,
            max_nonces_per_device: 10,
        };
        let verifier = ProofVerifier::with_limits(clock, limits);
        let binding = binding("GET", "/", &EXPORTER_A);

        for seed in 30..33 {
            let signing = p256_signing_key(seed);
            let key = DeviceKey::from_p256(*signing.verifying_key());
            verifier
                .verify(
                    &key,
                    &binding,
                    &sign_p256(&signing, &binding, NOW, &nonce(1)),
                )
                .unwrap();
        }
        let signing = p256_signing_key(33);
        let key = DeviceKey::from_p256(*signing.verifying_key());
        let err = verifier
            .verify(
                &key,
                &binding,
                &sign_p256(&signing, &binding, NOW, &nonce(1)),
            )
            .unwrap_err();

        assert!(
            matches!(err, ProofError::TooManyNonces { scope: "total", .. }),
            "{err}"
        );
    }

    #[test]
    fn fields_that_could_split_the_string_rejected() {
        let exporter = EXPORTER_A;
        let cases = [
            (
                RequestBinding {
                    method: "GET\n/",
                    ..binding("GET", "/", &exporter)
                },
                nonce(1),
            ),
            (
                RequestBinding {
                    method: "get",
                    ..binding("GET", "/", &exporter)
                },
                nonce(1),
            ),
            (binding("GET", "/a\nb", &exporter), nonce(1)),
            (binding("GET", "/a b", &exporter), nonce(1)),
            (binding("GET", "items", &exporter), nonce(1)),
            (binding("GET", "/", &exporter), "short".to_owned()),
            (binding("GET", "/", &exporter), format!("{}\nx", nonce(1))),
            (
                RequestBinding {
                    session_id: "a\nb",
                    ..binding("GET", "/", &exporter)
                },
                nonce(1),
            ),
        ];

        for (binding, nonce) in cases {
            let err = signed_string(&binding, NOW, &nonce).unwrap_err();
            assert!(
                matches!(err, ProofError::InvalidField { .. }),
                "{binding:?} {nonce:?}: {err}"
            );
        }
    }

    #[test]
    fn short_exporter_rejected() {
        let err = signed_string(&binding("GET", "/", &[0; 31]), NOW, &nonce(1)).unwrap_err();
        assert!(
            matches!(err, ProofError::ExporterLength { actual: 31 }),
            "{err}"
        );
    }

    #[test]
    fn hybrid_cli_proof_verifies_and_binds_connection() {
        let (_, verifier, _, _) = setup();
        let signing = HybridSigningKey::generate();
        let key = DeviceKey::from_hybrid(signing.verifying_key()).unwrap();
        let on_a = binding("POST", "/api/sessions", &EXPORTER_A);

        let proof = RequestProof::sign_hybrid(&signing, &on_a, NOW, &nonce(1)).unwrap();
        verifier.verify(&key, &on_a, &proof).unwrap();

        let proof = RequestProof::sign_hybrid(&signing, &on_a, NOW, &nonce(2)).unwrap();
        let err = verifier
            .verify(&key, &binding("POST", "/api/sessions", &EXPORTER_B), &proof)
            .unwrap_err();
        assert!(matches!(err, ProofError::Signature(_)), "{err}");
    }

    #[test]
    fn header_round_trips() {
        let proof = RequestProof {
            timestamp: NOW,
            nonce: nonce(7),
            signature: vec![1, 2, 3, 250],
        };

        let header = proof.to_header();

        assert_eq!(RequestProof::from_header(&header).unwrap(), proof);
    }

    #[test]
    fn malformed_headers_rejected() {
        for header in [
            "",
            "v2;t=1;n=abc;s=AA",
            "v1;n=abc;t=1;s=AA",
            "v1;t=01;n=abc;s=AA",
            "v1;t=-1;n=abc;s=AA",
            "v1;t=1;n=abc;s=A+/=",
            "v1;t=1;n=abc;s=AA;x=1",
        ] {
            let err = RequestProof::from_header(header).unwrap_err();
            assert!(
                matches!(err, ProofError::MalformedHeader { .. }),
                "{header:?}: {err}"
            );
        }
    }

    #[test]
    fn new_nonces_are_valid_and_distinct() {
        let first = RequestProof::new_nonce().unwrap();
        let second = RequestProof::new_nonce().unwrap();

        assert_ne!(first, second);
        signed_string(&binding("GET", "/", &EXPORTER_A), NOW, &first).unwrap();
    }
}
