//! The security center's list of signed-in devices: `GET
//! /api/v1/admin/sessions` and `POST /api/v1/admin/sessions/{handle}/end`.
//!
//! Each session shows its user, device and the TLS key exchange of the
//! connection it used last, so an admin sees which devices are not on a
//! post-quantum connection. A session is named by a handle derived from its
//! id (SHA-256, 16 characters of base64url). The id itself never leaves the
//! server in this list, although it alone would not let anyone act as the
//! session: every request also needs the device key's proof.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_access::Session;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::access::SessionSeen;
use crate::error::ApiError;
use crate::state::AppState;

/// One signed-in device in the security center.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SignedInSession)]
pub struct SessionView {
    /// Handle for ending the session.
    handle: String,
    user: PartyView,
    device: PartyView,
    role: &'static str,
    opened_at: i64,
    expires_at: i64,
    /// Whether this is the caller's own session.
    current: bool,
    /// The latest request's connection; absent before the first request
    /// after sign-in.
    #[serde(flatten)]
    seen: Option<SessionSeen>,
}

/// A user or device by id and name.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct PartyView {
    id: i64,
    name: String,
}

/// Returns the handle of session `id`.
fn handle(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    URL_SAFE_NO_PAD.encode(digest)[..16].to_owned()
}

/// `GET /api/v1/admin/sessions`: every open session, oldest first.
pub async fn list(State(state): State<AppState>, caller: Option<Extension<Session>>) -> Result<Json<Vec<SessionView>>, ApiError> {
    let access = Arc::clone(&state.access);
    let own = caller.map(|Extension(session)| session.id);
    let views = tokio::task::spawn_blocking(move || -> Result<Vec<SessionView>, hearth_access::UserError> {
        let open = access.sessions.open_sessions();
        access.activity.retain(&open.iter().map(|session| session.id.clone()).collect::<Vec<_>>());
        let mut users = HashMap::new();
        let mut devices = HashMap::new();
        for user in access.users.users()? {
            for device in access.users.devices_of(user.id)? {
                devices.insert(device.id, device.name.clone());
            }
            users.insert(user.id, user.name.clone());
        }
        Ok(open
            .into_iter()
            .map(|session| SessionView {
                handle: handle(&session.id),
                user: PartyView { id: session.user_id.0, name: users.get(&session.user_id).cloned().unwrap_or_default() },
                device: PartyView { id: session.device_id.0, name: devices.get(&session.device_id).cloned().unwrap_or_default() },
                role: session.role.as_str(),
                opened_at: session.opened_at,
                expires_at: session.expires_at,
                current: own.as_deref() == Some(session.id.as_str()),
                seen: access.activity.get(&session.id),
            })
            .collect())
    })
    .await?
    .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    Ok(Json(views))
}

/// `POST /api/v1/admin/sessions/{handle}/end`: signs a session out. The
/// device stays paired and can sign in again; revoke it to keep it out.
pub async fn end(State(state): State<AppState>, Path(wanted): Path<String>) -> Result<StatusCode, ApiError> {
    let plain = wanted.len() == 16 && wanted.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plain {
        return Err(ApiError::BadRequest(format!("session handle {wanted:?} is invalid: use a handle from GET /api/v1/admin/sessions")));
    }
    let found = state.access.sessions.open_sessions().into_iter().find(|session| handle(&session.id) == wanted);
    let Some(session) = found else {
        return Err(ApiError::NotFound("session"));
    };
    state.access.sessions.close(&session.id);
    tracing::warn!(user = session.user_id.0, device = session.device_id.0, "session ended by an admin");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::handle;

    #[test]
    fn handles_are_short_and_stable() {
        assert_eq!(handle("abc"), handle("abc"));
        assert_ne!(handle("abc"), handle("abd"));
        assert_eq!(handle("abc").len(), 16);
    }
}
