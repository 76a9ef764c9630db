//! Errors of QKD key sources and of the link-key handshake.

use crate::kem::KemError;

use super::link::QKD_KEY_BITS;

/// Errors from a QKD key source.
///
/// The HTTP status codes are those of ETSI GS QKD 014 v1.1.1; other sources
/// map their failures to the nearest variant.
#[derive(Debug, thiserror::Error)]
pub enum QkdError {
    /// The KME returned 503: it has no key material now, or its QKD link is down.
    #[error("KME at {url} is unavailable (503): {message}")]
    Unavailable {
        /// The request URL.
        url: String,
        /// The `message` of the KME's error body.
        message: String,
    },
    /// The KME returned 401: this SAE may not make this request (unknown SAE,
    /// or an SAE that is not a party to the requested key).
    #[error("KME at {url} rejected this SAE as unauthorized (401): {message}")]
    Unauthorized {
        /// The request URL.
        url: String,
        /// The `message` of the KME's error body.
        message: String,
    },
    /// The KME returned 400: the request breaks its rules (size out of range,
    /// too many keys, malformed body).
    #[error("KME at {url} rejected the request as invalid (400): {message}")]
    BadRequest {
        /// The request URL.
        url: String,
        /// The `message` of the KME's error body.
        message: String,
    },
    /// The KME has no key with this id for this SAE: unknown, already
    /// delivered, or never shared with it.
    #[error("KME at {url} has no key with id {key_id} for this SAE: {message}")]
    UnknownKeyId {
        /// The request URL.
        url: String,
        /// The key id the KME could not deliver.
        key_id: String,
        /// The `message` of the KME's error body.
        message: String,
    },
    /// The request did not reach the KME, or its response did not arrive
    /// (connection refused, TLS handshake rejected, timeout).
    #[error("request to KME at {url} failed: {source}")]
    Transport {
        /// The request URL.
        url: String,
        /// The transport's error, boxed because this crate depends on no HTTP client.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The KME's response breaks ETSI 014 or does not match the request (wrong
    /// key count or length, invalid base64, unexpected status code).
    #[error("invalid response from KME at {url}: {reason}")]
    InvalidResponse {
        /// The request URL.
        url: String,
        /// The problem found in the response.
        reason: String,
    },
}

impl QkdError {
    /// Returns whether the failure is an outage (503 or transport failure)
    /// rather than a rejection or a broken response. Link-key setup falls
    /// back to X-Wing alone on an outage and fails on anything else.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Transport { .. })
    }
}

/// Errors of the link-key handshake.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The offer names other SAEs than the link the slave expects.
    #[error(
        "link offer from SAE {offered_master} to SAE {offered_slave} does not match the expected link \
         from {expected_master} to {expected_slave}"
    )]
    WrongPeers {
        /// Master SAE id in the offer.
        offered_master: String,
        /// Slave SAE id in the offer.
        offered_slave: String,
        /// Master SAE id the slave expects.
        expected_master: String,
        /// The slave's own SAE id.
        expected_slave: String,
    },
    /// The X-Wing ciphertext was rejected.
    #[error("link offer rejected: {0}")]
    Decapsulate(#[from] KemError),
    /// The master's KME rejected the key request or returned an invalid
    /// response. Only an outage (503, transport failure) leads to the
    /// X-Wing-only fallback.
    #[error("QKD key request for the link to SAE {slave_sae_id} failed: {source}")]
    Qkd {
        /// The slave SAE the key was for.
        slave_sae_id: String,
        /// The key source's error.
        #[source]
        source: QkdError,
    },
    /// The QKD key has the wrong size.
    #[error("QKD key {key_id} has {bits} bits, expected {QKD_KEY_BITS}")]
    QkdKeySize {
        /// Id of the key.
        key_id: String,
        /// Its size in bits.
        bits: usize,
    },
    /// The key source returned a number of keys other than one.
    #[error("QKD key source returned {count} keys for one requested")]
    QkdKeyCount {
        /// How many keys came back.
        count: usize,
    },
    /// The slave could not obtain the QKD key named in the offer. The slave's
    /// node sends this error to the master, which then calls
    /// [`MasterHandshake::retry_without_qkd`](super::MasterHandshake::retry_without_qkd).
    #[error("QKD key {key_id} named in the link offer is unavailable to this slave: {reason}")]
    QkdKeyUnavailable {
        /// Id of the key the offer named.
        key_id: String,
        /// Why, for people.
        reason: String,
        /// The key source's error; `None` when the slave has no key source.
        #[source]
        source: Option<QkdError>,
    },
    /// The peer's key-confirmation tag does not match: the two sides
    /// derived different keys (a different QKD key, or a modified message).
    #[error(
        "{peer} key confirmation failed for the link from SAE {master_sae_id} to {slave_sae_id}; discard the handshake"
    )]
    ConfirmationMismatch {
        /// Whose tag failed: "slave" or "master".
        peer: &'static str,
        /// SAE id of the master.
        master_sae_id: String,
        /// SAE id of the slave.
        slave_sae_id: String,
    },
}
