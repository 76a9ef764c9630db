//! The server's signing keys and their emergency rotation.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use serde::Deserialize;

use crate::api::require_admin;
use crate::auth::Role;
use crate::error::ApiError;
use crate::rotation::{KeyRotation, PublishedKey, RotationReport};
use crate::state::AppState;

/// `GET /api/v1/keys`: every version of the server's hybrid verifying key,
/// so signatures made before a rotation stay verifiable.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<PublishedKey>>, ApiError> {
    let rotation = rotation(&state)?;
    let keys = tokio::task::spawn_blocking(move || rotation.published_keys()).await?.map_err(|e| ApiError::Rotation(e.to_string()))?;
    Ok(Json(keys))
}

/// Body of `POST /api/v1/admin/rotate-keys`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RotateBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/admin/rotate-keys` (admin): issues a new TLS certificate
/// and a new signing key version now, without a restart.
pub async fn rotate(
    State(state): State<AppState>,
    Extension(role): Extension<Role>,
    body: Option<Json<RotateBody>>,
) -> Result<Json<RotationReport>, ApiError> {
    require_admin(role)?;
    let rotation = rotation(&state)?;
    let reason = body.and_then(|Json(b)| b.reason).unwrap_or_else(|| "requested through the API".to_owned());
    if reason.len() > 500 {
        return Err(ApiError::BadRequest("reason is longer than 500 bytes".into()));
    }
    let report = tokio::task::spawn_blocking(move || rotation.rotate_now(&reason)).await?.map_err(|e| ApiError::Rotation(e.to_string()))?;
    Ok(Json(report))
}

fn rotation(state: &AppState) -> Result<Arc<KeyRotation>, ApiError> {
    state.rotation.clone().ok_or(ApiError::NotFound("key rotation (this server runs without TLS keys)"))
}
