//! Errors of link setup, with the HTTP status of each.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hearth_pqc::kem::KemError;
use hearth_pqc::keystore::KeyStoreError;
use hearth_pqc::qkd::LinkError;

use super::wire::{ErrorBody, QKD_KEY_UNAVAILABLE, WireError};
use crate::error::{ApiError, ServerErrorCause};

/// An error of a link endpoint. A 4xx error is the caller's fault. A 502
/// means that the peer or the KME failed, and its body names the cause,
/// because the admin needs it to fix the setup. Other 5xx errors send a
/// generic body. Every 5xx is logged once by
/// [`crate::middleware::log_server_errors`].
///
/// NOTE: this lives beside [`ApiError`] rather than in it because link setup
/// needs 409 with a machine-readable code, 429 and 502, which `ApiError`
/// has no variants for.
#[derive(Debug, thiserror::Error)]
pub enum LinkServiceError {
    /// An error shared with the other endpoints (forbidden, not found, bad request).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A request body does not decode.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The slave's side of the handshake rejected the master's message.
    #[error(transparent)]
    Slave(LinkError),
    /// The master's side of the handshake failed: its KME rejected the key
    /// request, or the slave's confirmation does not match.
    #[error("link setup as master failed: {0}")]
    Master(#[source] LinkError),
    /// The peer returned an error status.
    #[error("peer {url} rejected {request} with {status}: {message}")]
    PeerStatus {
        /// The URL requested.
        url: String,
        /// The request, such as "the link offer".
        request: &'static str,
        /// The peer's status code.
        status: StatusCode,
        /// The peer's error message and what to do.
        message: String,
    },
    /// The request did not reach the peer, or its response did not arrive.
    #[error("failed to reach peer {url}: {reason}")]
    PeerTransport {
        /// The URL requested.
        url: String,
        /// The transport error and its causes, TLS errors included.
        reason: String,
    },
    /// The peer's response is not what the protocol expects.
    #[error("invalid response from peer {url}: {reason}")]
    PeerAnswer {
        /// The URL requested.
        url: String,
        /// The problem found in the response.
        reason: String,
    },
    /// Both sides confirmed the handshake but report different key check
    /// values, which a correct peer never does.
    #[error("peer {peer_sae_id} reports key check {theirs}, but this node derived {ours}; the link key was not stored")]
    KeyCheckMismatch {
        /// The peer's SAE id.
        peer_sae_id: String,
        /// This node's key check value.
        ours: String,
        /// The peer's key check value.
        theirs: String,
    },
    /// The handshake id is unknown or expired.
    #[error("no link handshake {id} is waiting: it is unknown, finished, or older than {ttl_secs} s; start the link again")]
    UnknownHandshake {
        /// The id from the finish message.
        id: String,
        /// Lifetime of a handshake, in seconds.
        ttl_secs: u64,
    },
    /// The offer's X-Wing ciphertext was accepted before: a replay, which
    /// would let a recorded handshake store an old key as the newest.
    #[error(
        "link offer from SAE {master_sae_id} repeats an X-Wing ciphertext that this node accepted \
         before (fingerprint {fingerprint}); a replayed offer is refused, start a new link"
    )]
    ReplayedOffer {
        /// The master SAE id the offer names.
        master_sae_id: String,
        /// The ciphertext's fingerprint, as logged.
        fingerprint: String,
    },
    /// The request body could not be read, or is larger than the limit.
    #[error("failed to read the request body: {message}")]
    Body {
        /// The status axum chose, such as 413.
        status: StatusCode,
        /// axum's description of the failure.
        message: String,
    },
    /// Too many handshakes wait for their finish message.
    #[error("too many link handshakes in progress (maximum {max}); retry within {ttl_secs} s")]
    TooManyHandshakes {
        /// The maximum.
        max: usize,
        /// Time after which waiting handshakes expire, in seconds.
        ttl_secs: u64,
    },
    /// Two peer SAE ids map to the same key store name.
    #[error("key store name {name} already holds the link with SAE {stored_peer}, so the link with SAE {new_peer} cannot use it; give one of the nodes another sae_id")]
    NameClash {
        /// The key store name.
        name: String,
        /// The peer whose link the name holds.
        stored_peer: String,
        /// The peer that would reuse it.
        new_peer: String,
    },
    /// The sealed key store failed.
    #[error("link key store failure: {0}")]
    KeyStore(#[from] KeyStoreError),
    /// A sealed link record is malformed.
    #[error("invalid sealed link record {name}: {reason}")]
    Record {
        /// The key name.
        name: String,
        /// The problem found in the record.
        reason: String,
    },
    /// The sealed node X-Wing key does not decode.
    #[error("invalid sealed node X-Wing key: {source}")]
    NodeKey {
        /// The decoding error.
        #[source]
        source: KemError,
    },
    /// The TLS client configuration for the peer could not be built.
    #[error("failed to build the TLS client for the peer: {0}")]
    Tls(#[from] hearth_pqc::PqcError),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl LinkServiceError {
    /// Returns the status code sent for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Api(err) => err.status(),
            Self::Wire(_) => StatusCode::BAD_REQUEST,
            Self::Slave(LinkError::QkdKeyUnavailable { .. }) => StatusCode::CONFLICT,
            Self::Slave(LinkError::WrongPeers { .. } | LinkError::Decapsulate(_) | LinkError::ConfirmationMismatch { .. }) => {
                StatusCode::BAD_REQUEST
            }
            Self::Slave(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Master(_) | Self::PeerStatus { .. } | Self::PeerTransport { .. } | Self::PeerAnswer { .. } => {
                StatusCode::BAD_GATEWAY
            }
            Self::KeyCheckMismatch { .. } => StatusCode::BAD_GATEWAY,
            Self::UnknownHandshake { .. } => StatusCode::NOT_FOUND,
            Self::TooManyHandshakes { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NameClash { .. } | Self::ReplayedOffer { .. } => StatusCode::CONFLICT,
            Self::Body { status, .. } => *status,
            Self::KeyStore(_) | Self::Record { .. } | Self::NodeKey { .. } | Self::Tls(_) | Self::Join(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for LinkServiceError {
    fn into_response(self) -> Response {
        if let Self::Api(err) = self {
            return err.into_response();
        }

        let status = self.status();
        let message = error_text(&self);
        let mut body = ErrorBody { error: message.clone(), code: None, qkd_key_id: None };
        if let Self::Slave(LinkError::QkdKeyUnavailable { key_id, .. }) = &self {
            body.error = format!("{message}; retry the link without QKD");
            body.code = Some(QKD_KEY_UNAVAILABLE.to_owned());
            body.qkd_key_id = Some(key_id.clone());
        }
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            body = ErrorBody { error: "internal server error; see the server log".to_owned(), code: None, qkd_key_id: None };
        }

        let mut response = (status, Json(body)).into_response();
        if status.is_server_error() {
            response.extensions_mut().insert(ServerErrorCause(message));
        }
        response
    }
}

/// Formats an error with its chain of sources, skipping a source whose
/// text the message already contains.
pub fn error_text(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
