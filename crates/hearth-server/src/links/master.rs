//! The master's side of a link: fetch the peer's public key, send the
//! offer, retry without QKD when the peer requests it, confirm, send the finish
//! message, store the key.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use hearth_pqc::KeyExchangePolicy;
use hearth_pqc::qkd::{LinkOffer, LinkPeers, initiate};
use reqwest::Url;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::error_text;
use super::invites::INVITE_HEADER;
use super::records::key_check;
use super::wire::{
    ErrorBody, FinishBody, LinkResult, LinkRequest, NodeInfo, OfferBody, QKD_KEY_UNAVAILABLE, ReplyBody, peer_text,
};
use super::{LinkInfo, LinkRole, LinkServiceError, NodeLinks};
use crate::config::{ConfigError, MAX_SAE_ID_LEN, validate_sae_id};
use crate::error::ApiError;

/// Time one request to the peer may take, TLS handshake included. The
/// offer can wait on the peer's KME, whose client allows 10 s.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);
/// Maximum response body read from the peer, in bytes. Every response of
/// the protocol is under 4 KiB.
const MAX_PEER_BODY: usize = 64 * 1024;
/// Maximum size of `peer_ca_pem`, in bytes.
const MAX_CA_PEM: usize = 64 * 1024;

/// Paths of the peer's link endpoints.
const NODE_PATH: &str = "/api/v1/admin/node";
const OFFER_PATH: &str = "/api/v1/admin/links/offer";
const FINISH_PATH: &str = "/api/v1/admin/links/finish";

/// Links this node, as master, with the peer in `request` and stores the
/// confirmed key. QKD calls run on blocking threads.
pub async fn link_with_peer(links: Arc<NodeLinks>, request: LinkRequest) -> Result<LinkInfo, LinkServiceError> {
    let peer = PeerClient::new(&request)?;

    let node: NodeInfo = peer.get(NODE_PATH, "the node description request").await?;
    let slave_public_key = node.public_key().map_err(|err| peer.answer_error(NODE_PATH, error_text(&err)))?;
    check_peer_sae_id(&peer, &node.sae_id, links.sae_id())?;
    let peers = LinkPeers { master_sae_id: links.sae_id().to_owned(), slave_sae_id: node.sae_id.clone() };
    tracing::info!(
        peer = %peer.base,
        slave_sae = %node.sae_id,
        qkd_configured = links.qkd().is_some(),
        "link setup started as master"
    );

    let initiated = {
        let links = Arc::clone(&links);
        let peers = peers.clone();
        tokio::task::spawn_blocking(move || initiate(&peers, &slave_public_key, links.qkd())).await?
    };
    let (offer, handshake) = initiated.map_err(LinkServiceError::Master)?;

    let (reply, handshake) = match peer.send_offer(&offer).await? {
        OfferAnswer::Accepted(reply) => (reply, handshake),
        OfferAnswer::QkdKeyUnavailable(message) if handshake.qkd_key_id().is_some() => {
            tracing::warn!(slave_sae = %node.sae_id, peer_error = %message, "slave rejected the QKD key of the link offer");
            let (offer, handshake) = handshake.retry_without_qkd().map_err(LinkServiceError::Master)?;
            match peer.send_offer(&offer).await? {
                OfferAnswer::Accepted(reply) => (reply, handshake),
                OfferAnswer::QkdKeyUnavailable(message) => return Err(peer.qkd_rejection(message)),
            }
        }
        OfferAnswer::QkdKeyUnavailable(message) => return Err(peer.qkd_rejection(message)),
    };

    let link_reply = reply.to_reply().map_err(|err| peer.answer_error(OFFER_PATH, error_text(&err)))?;
    let (finish, key) = handshake.confirm(&link_reply).map_err(LinkServiceError::Master)?;
    let finish_body = FinishBody::new(reply.handshake_id, &finish);
    let slave_result: LinkResult = peer.post(FINISH_PATH, "the link finish message", &finish_body).await?;

    let ours = key_check(key.as_bytes());
    if slave_result.link.key_check != ours {
        tracing::error!(slave_sae = %node.sae_id, ours = %ours, theirs = %slave_result.link.key_check, "link key check values differ");
        return Err(LinkServiceError::KeyCheckMismatch { peer_sae_id: node.sae_id, ours, theirs: slave_result.link.key_check });
    }

    let slave_sae_id = node.sae_id.clone();
    let info = tokio::task::spawn_blocking(move || links.store_link(&slave_sae_id, LinkRole::Master, &key)).await??;
    tracing::info!(
        peer_sae = %info.peer_sae_id,
        role = LinkRole::Master.as_str(),
        key_version = info.key_version,
        qkd_key_id = info.qkd_key_id.as_deref().unwrap_or("none"),
        fallback = info.fallback.as_deref().unwrap_or("none"),
        key_check = %info.key_check,
        "link key stored"
    );
    Ok(info)
}

/// Rejects a peer SAE id that breaks the naming rules or equals this node's.
fn check_peer_sae_id(peer: &PeerClient, peer_sae_id: &str, own_sae_id: &str) -> Result<(), LinkServiceError> {
    if let Err(ConfigError::InvalidSaeId { reason, .. }) = validate_sae_id(peer_sae_id) {
        let start: String = peer_sae_id.chars().take(MAX_SAE_ID_LEN).collect();
        return Err(peer.answer_error(
            NODE_PATH,
            format!("the peer reports the invalid SAE id {start:?}: {reason}; fix `[node] sae_id` on the peer"),
        ));
    }
    if peer_sae_id == own_sae_id {
        return Err(ApiError::BadRequest(format!(
            "peer {} has the SAE id {peer_sae_id:?}, the same as this node; give each node its own [node] sae_id",
            peer.base
        ))
        .into());
    }
    Ok(())
}

/// The slave's response to an offer.
enum OfferAnswer {
    /// The slave accepted and sent its confirmation.
    Accepted(ReplyBody),
    /// The slave could not obtain the offered QKD key; its error message.
    QkdKeyUnavailable(String),
}

/// An HTTPS client for one peer: its CA as the only root, its invitation.
struct PeerClient {
    base: Url,
    invite: String,
    http: reqwest::Client,
}

impl PeerClient {
    /// Checks the request's fields and builds the client.
    fn new(request: &LinkRequest) -> Result<Self, LinkServiceError> {
        let base = Url::parse(request.peer_url.trim())
            .map_err(|err| bad_request(format!("invalid peer_url {:?}: {err}; expected https://HOST:PORT", request.peer_url)))?;
        if base.scheme() != "https" || base.host().is_none() {
            return Err(bad_request(format!("invalid peer_url {:?}: expected https://HOST:PORT", request.peer_url)));
        }

        let invite = request.peer_invite.trim();
        let printable = invite.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if invite.is_empty() || invite.len() > 128 || !printable {
            return Err(bad_request(
                "invalid peer_invite: expected the invitation that `hearth link-invite` printed on the peer".to_owned(),
            ));
        }

        let roots = peer_roots(&request.peer_ca_pem)?;
        let tls = hearth_pqc::client_config(roots, KeyExchangePolicy::HybridPreferred, &[b"h2", b"http/1.1"])?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PEER_TIMEOUT)
            .build()
            .map_err(|err| bad_request(format!("failed to build the HTTP client for peer_url: {}", error_text(&err))))?;

        Ok(Self { base, invite: invite.to_owned(), http })
    }

    /// Sends the offer; a 409 with the QKD code becomes
    /// [`OfferAnswer::QkdKeyUnavailable`].
    async fn send_offer(&self, offer: &LinkOffer) -> Result<OfferAnswer, LinkServiceError> {
        let url = self.url(OFFER_PATH);
        let response = self.http.post(&url).header(INVITE_HEADER, &self.invite).json(&OfferBody::new(offer)).send().await;
        let (status, body) = self.read(&url, response).await?;

        if status == StatusCode::CONFLICT {
            let error: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
            if error.code.as_deref() == Some(QKD_KEY_UNAVAILABLE) {
                return Ok(OfferAnswer::QkdKeyUnavailable(peer_text(&error.error)));
            }
        }
        let reply = self.decode(&url, "the link offer", status, &body)?;
        Ok(OfferAnswer::Accepted(reply))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, request: &'static str) -> Result<T, LinkServiceError> {
        let url = self.url(path);
        let response = self.http.get(&url).header(INVITE_HEADER, &self.invite).send().await;
        let (status, body) = self.read(&url, response).await?;
        self.decode(&url, request, status, &body)
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, request: &'static str, body: &B) -> Result<T, LinkServiceError> {
        let url = self.url(path);
        let response = self.http.post(&url).header(INVITE_HEADER, &self.invite).json(body).send().await;
        let (status, body) = self.read(&url, response).await?;
        self.decode(&url, request, status, &body)
    }

    /// Reads the status and at most [`MAX_PEER_BODY`] bytes of the body.
    async fn read(
        &self,
        url: &str,
        response: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<(StatusCode, Vec<u8>), LinkServiceError> {
        let transport = |err: reqwest::Error| LinkServiceError::PeerTransport { url: url.to_owned(), reason: transport_reason(&err) };

        let mut response = response.map_err(transport)?;
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_PEER_BODY {
                return Err(self.answer_error(url, format!("the body is larger than {MAX_PEER_BODY} bytes")));
            }
        }
        Ok((status, body))
    }

    /// Decodes a 200 response, or turns another status into
    /// [`LinkServiceError::PeerStatus`] with the peer's message.
    fn decode<T: DeserializeOwned>(&self, url: &str, request: &'static str, status: StatusCode, body: &[u8]) -> Result<T, LinkServiceError> {
        if status != StatusCode::OK {
            let peer_message = serde_json::from_slice::<ErrorBody>(body).map(|e| peer_text(&e.error)).unwrap_or_default();
            let message = match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => format!(
                    "{peer_message}; check peer_invite: create a new one with `hearth link-invite` on the peer (one use, 10 minutes)"
                ),
                _ if peer_message.is_empty() => "no error message".to_owned(),
                _ => peer_message,
            };
            return Err(LinkServiceError::PeerStatus { url: url.to_owned(), request, status, message });
        }
        serde_json::from_slice(body).map_err(|err| self.answer_error(url, format!("invalid JSON: {err}")))
    }

    fn qkd_rejection(&self, message: String) -> LinkServiceError {
        LinkServiceError::PeerStatus {
            url: self.url(OFFER_PATH),
            request: "the link offer",
            status: StatusCode::CONFLICT,
            message: format!("{message}; the offer carried no QKD key, so the peer should not ask for a retry"),
        }
    }

    fn answer_error(&self, path_or_url: &str, reason: String) -> LinkServiceError {
        let url = if path_or_url.starts_with('/') { self.url(path_or_url) } else { path_or_url.to_owned() };
        LinkServiceError::PeerAnswer { url, reason: peer_text(&reason) }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }
}

/// Describes a transport error with its causes, and with a hint when the
/// peer's certificate did not verify against `peer_ca_pem`.
fn transport_reason(err: &reqwest::Error) -> String {
    let mut reason = error_text(err);
    // NOTE: matched on rustls 0.23's text for `Error::InvalidCertificate`,
    // because reqwest's chain hides the rustls error from `downcast_ref`.
    if reason.contains("invalid peer certificate") {
        reason.push_str("; check that peer_ca_pem is the peer's household CA (`hearth ca export` on the peer)");
    }
    reason
}

/// Parses `peer_ca_pem` into the only roots trusted for the peer.
fn peer_roots(pem: &str) -> Result<rustls::RootCertStore, LinkServiceError> {
    const HINT: &str = "paste the peer's household CA certificate (`hearth ca export` on the peer)";

    if pem.len() > MAX_CA_PEM {
        return Err(bad_request(format!("invalid peer_ca_pem: {} bytes, more than {MAX_CA_PEM}; {HINT}", pem.len())));
    }
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|err| bad_request(format!("invalid peer_ca_pem: {err}; {HINT}")))?;
    if certificates.is_empty() {
        return Err(bad_request(format!("invalid peer_ca_pem: no certificate found; {HINT}")));
    }

    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|err| bad_request(format!("invalid peer_ca_pem: {err}; {HINT}")))?;
    }
    Ok(roots)
}

fn bad_request(message: String) -> LinkServiceError {
    ApiError::BadRequest(message).into()
}
