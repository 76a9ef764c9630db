//! Link keys between Hearth nodes: the slave's endpoints (`node`, `offer`,
//! `finish`) and the admin's (`create`, `list`). The protocol and its
//! storage are in [`crate::links`].
//!
//! Every endpoint needs the admin token, including the three that the
//! master node calls on the slave.
//! NOTE: node credentials from the zero-trust work will replace the peer's
//! admin token for the node-to-node calls.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use hearth_pqc::qkd::{LinkError, LinkPeers, accept};

use crate::api::require_admin;
use crate::auth::Role;
use crate::config::{ConfigError, validate_sae_id};
use crate::error::ApiError;
use crate::links::pending::HANDSHAKE_TTL;
use crate::links::wire::{self, FinishBody, LinkList, LinkRequest, LinkResult, NodeInfo, OfferBody, ReplyBody, WIRE_VERSION};
use crate::links::invites::AcceptedInvite;
use crate::links::{LinkRole, LinkServiceError, NodeLinks, master};
use crate::state::AppState;

/// `GET /api/v1/admin/node` (admin): this node's SAE id and X-Wing public key.
pub async fn node(Extension(role): Extension<Role>, State(state): State<AppState>) -> Result<Json<NodeInfo>, LinkServiceError> {
    require_admin(role)?;
    let links = node_links(&state)?;
    Ok(Json(links.node_info()))
}

/// `GET /api/v1/admin/links` (admin): the current link key with every peer,
/// described by a key check value and never by the key.
pub async fn list(Extension(role): Extension<Role>, State(state): State<AppState>) -> Result<Json<LinkList>, LinkServiceError> {
    require_admin(role)?;
    let links = node_links(&state)?;

    let sae_id = links.sae_id().to_owned();
    let listed = tokio::task::spawn_blocking(move || links.list_links()).await??;
    Ok(Json(LinkList { version: WIRE_VERSION, sae_id, links: listed }))
}

/// `POST /api/v1/admin/links` (admin): links this node as master with the
/// peer named in the body, and returns the stored link.
pub async fn create(
    Extension(role): Extension<Role>,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<LinkResult>, LinkServiceError> {
    require_admin(role)?;
    let links = node_links(&state)?;
    let request: LinkRequest = wire::parse(&read_body(body)?, "link request")?;

    let link = master::link_with_peer(links, request).await?;
    Ok(Json(LinkResult { version: WIRE_VERSION, link }))
}

/// `POST /api/v1/admin/links/offer` (admin, called by the master node):
/// accepts an offer and returns the slave's confirmation with a handshake
/// id. When the offer names a QKD key this node cannot obtain, returns 409
/// with code `qkd_key_unavailable`, and the master retries without QKD.
pub async fn offer(
    Extension(role): Extension<Role>,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ReplyBody>, LinkServiceError> {
    require_admin(role)?;
    let links = node_links(&state)?;
    let body: OfferBody = wire::parse(&read_body(body)?, "link offer")?;
    let offer = body.to_offer()?;
    if let Err(ConfigError::InvalidSaeId { reason, .. }) = validate_sae_id(&offer.master_sae_id) {
        return Err(ApiError::BadRequest(format!("invalid master_sae_id {:?}: {reason}", offer.master_sae_id)).into());
    }
    if offer.master_sae_id == links.sae_id() {
        return Err(ApiError::BadRequest(format!(
            "master_sae_id {:?} is this node's own SAE id; a node cannot link with itself",
            offer.master_sae_id
        ))
        .into());
    }

    let reservation = links.pending().reserve()?;
    let master_sae_id = offer.master_sae_id.clone();
    let accepted = {
        let links = Arc::clone(&links);
        let peers = LinkPeers { master_sae_id: master_sae_id.clone(), slave_sae_id: links.sae_id().to_owned() };
        tokio::task::spawn_blocking(move || {
            links.check_offer_unseen(&offer)?;
            let accepted = accept(&peers, links.secret_key(), &offer, links.qkd()).map_err(LinkServiceError::Slave)?;
            links.remember_offer(&offer)?;
            Ok::<_, LinkServiceError>(accepted)
        })
        .await?
    };
    let (reply, handshake) = match accepted {
        Ok(accepted) => accepted,
        Err(err) => {
            if let LinkServiceError::Slave(slave) = &err
                && !matches!(slave, LinkError::QkdKeyUnavailable { .. })
            {
                tracing::warn!(master_sae = %master_sae_id, error = %slave, "link offer rejected");
            }
            return Err(err);
        }
    };

    let handshake_id = reservation.insert(master_sae_id.clone(), handshake);
    tracing::info!(
        master_sae = %master_sae_id,
        handshake_id = %handshake_id,
        expires_in_secs = HANDSHAKE_TTL.as_secs(),
        "link offer accepted; waiting for the finish message"
    );
    Ok(Json(ReplyBody::new(handshake_id, &reply)))
}

/// `POST /api/v1/admin/links/finish` (admin, called by the master node):
/// checks the master's confirmation and stores the link key. A wrong
/// confirmation discards the handshake and stores nothing.
pub async fn finish(
    Extension(role): Extension<Role>,
    invite: Option<Extension<AcceptedInvite>>,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<LinkResult>, LinkServiceError> {
    require_admin(role)?;
    let links = node_links(&state)?;
    let body: FinishBody = wire::parse(&read_body(body)?, "link finish")?;
    let finish = body.to_finish()?;

    let Some((master_sae_id, handshake)) = links.pending().take(&body.handshake_id) else {
        return Err(LinkServiceError::UnknownHandshake { id: body.handshake_id, ttl_secs: HANDSHAKE_TTL.as_secs() });
    };
    let key = handshake.finish(&finish).map_err(LinkServiceError::Slave)?;

    let peer = master_sae_id.clone();
    let stored = Arc::clone(&links);
    let link = tokio::task::spawn_blocking(move || stored.store_link(&peer, LinkRole::Slave, &key)).await??;
    if let Some(Extension(AcceptedInvite(invite))) = invite {
        links.invites.close(&invite);
    }
    tracing::info!(
        peer_sae = %link.peer_sae_id,
        role = LinkRole::Slave.as_str(),
        key_version = link.key_version,
        qkd_key_id = link.qkd_key_id.as_deref().unwrap_or("none"),
        fallback = link.fallback.as_deref().unwrap_or("none"),
        key_check = %link.key_check,
        "link key stored"
    );
    Ok(Json(LinkResult { version: WIRE_VERSION, link }))
}

/// Turns a body that axum could not read (413 past the size limit) into a
/// JSON error like the others.
fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, LinkServiceError> {
    body.map_err(|rejection| LinkServiceError::Body { status: rejection.status(), message: rejection.body_text() })
}

fn node_links(state: &AppState) -> Result<Arc<NodeLinks>, ApiError> {
    state.links.clone().ok_or(ApiError::NotFound("node links (this server runs without a key store)"))
}

/// `POST /api/v1/admin/link-invites` (admin): a one-time invitation for
/// another node to link with this one as master, valid 10 minutes.
pub async fn create_invite(Extension(role): Extension<Role>, State(state): State<AppState>) -> Result<Json<serde_json::Value>, LinkServiceError> {
    require_admin(role)?;
    let links = node_links(&state)?;
    let (invite, expires_at) = links.invites.create();
    tracing::info!("link invitation created");
    Ok(Json(serde_json::json!({ "version": WIRE_VERSION, "sae_id": links.sae_id(), "invite": invite, "expires_at": expires_at })))
}
