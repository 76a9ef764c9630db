//! JSON handlers under /api/v1.

pub mod account;
pub mod guard;
pub mod items;
pub mod keys;
pub mod libraries;
pub mod pairing;
pub mod playback;
pub mod passkeys;
pub mod links;
pub mod scan;
pub mod sessions;

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::auth::Role;
use crate::connection::ConnectionInfo;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    status: &'static str,
}

/// `GET /api/v1/health`: public liveness check; reveals nothing about the
/// library.
pub async fn health() -> impl IntoResponse {
    Json(Health { status: "ok" })
}

/// `POST /api/v1/login`: signs in on a paired device with a request
/// proof and a password ([`account::login_with_proof`]).
pub async fn login(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    account::login_with_proof(State(state), request).await
}

/// `POST /api/v1/logout`: ends the caller's session.
pub async fn logout(State(state): State<AppState>, session: Option<Extension<hearth_access::Session>>) -> Response {
    if let Some(Extension(session)) = session {
        state.access.sessions.close(&session.id);
        tracing::info!(user = session.user_id.0, device = session.device_id.0, "signed out");
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SessionInfo)]
pub(crate) struct SessionView {
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

/// `GET /api/v1/session`: the caller's role and, in a device session, the
/// household role, the device and the session's expiry.
pub async fn session(Extension(role): Extension<Role>, session: Option<Extension<hearth_access::Session>>) -> impl IntoResponse {
    let session = session.map(|Extension(session)| session);
    Json(SessionView {
        role,
        user_role: session.as_ref().map(|s| s.role.as_str()),
        device: session.as_ref().map(|s| s.device_did.to_string()),
        expires_at: session.as_ref().map(|s| s.expires_at),
    })
}

/// `GET /api/v1/connection`: what the caller's own TLS connection
/// negotiated, so users and tests can see that their session is
/// post-quantum.
pub async fn connection(info: Option<Extension<ConnectionInfo>>) -> Result<Json<ConnectionInfo>, ApiError> {
    match info {
        Some(Extension(info)) => Ok(Json(info)),
        None => Err(ApiError::NotFound("TLS connection information")),
    }
}

/// `GET /api/v1/connections`: recent TLS connections (admin only).
pub async fn connections(State(state): State<AppState>, Extension(role): Extension<Role>) -> Result<Json<Vec<ConnectionInfo>>, ApiError> {
    require_admin(role)?;
    Ok(Json(state.connections.snapshot()))
}

/// Rejects callers that are not admins.
pub fn require_admin(role: Role) -> Result<(), ApiError> {
    match role {
        Role::Admin => Ok(()),
        Role::Member => Err(ApiError::Forbidden),
    }
}
