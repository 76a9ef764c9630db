//! The guard's admin API: alerts, bans, forensic records, and lifting or
//! setting a ban by hand. `hearth guard` calls it over the admin socket.
//!
//! - `GET /api/v1/admin/guard/alerts`: alerts, newest first.
//! - `GET|POST /api/v1/admin/guard/bans`, `DELETE /api/v1/admin/guard/bans/{source}`.
//! - `GET /api/v1/admin/guard/records` and `/records/{id}`.

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::connection::ConnectionInfo;
use crate::error::ApiError;
use crate::guard::{AlertView, BanView, ForensicRecord};
use crate::state::AppState;

/// Longest ban an admin can set: 30 days.
const MAX_BAN_MINUTES: u64 = 30 * 24 * 60;

/// The guard's alerts and its mode.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertsView {
    /// `enforce`, `observe` or `off`.
    mode: String,
    /// The latest alerts (at most 1000), newest first.
    alerts: Vec<AlertView>,
}

/// `GET /api/v1/admin/guard/alerts`.
pub async fn alerts(State(state): State<AppState>) -> Json<AlertsView> {
    let mode = serde_json::to_value(state.guard.mode()).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    Json(AlertsView { mode, alerts: state.guard.alerts() })
}

/// `GET /api/v1/admin/guard/bans`: bans in force, soonest to end first.
pub async fn bans(State(state): State<AppState>) -> Json<Vec<BanView>> {
    Json(state.guard.bans())
}

/// Body of `POST /api/v1/admin/guard/bans`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanBody {
    /// The address to ban.
    #[schema(value_type = String, example = "192.168.1.66")]
    source: String,
    /// Length of the ban in minutes, 1 to 43200 (default 60).
    minutes: Option<u64>,
    /// Why, for the list and the log.
    reason: Option<String>,
}

/// `POST /api/v1/admin/guard/bans`: bans an address by hand. The caller's
/// own address is refused, so an admin cannot lock themselves out.
pub async fn ban(
    State(state): State<AppState>,
    connection: Option<axum::extract::Extension<ConnectionInfo>>,
    Json(body): Json<BanBody>,
) -> Result<(StatusCode, Json<Vec<BanView>>), ApiError> {
    let source = parse_source(&body.source)?;
    let minutes = body.minutes.unwrap_or(60);
    if !(1..=MAX_BAN_MINUTES).contains(&minutes) {
        return Err(ApiError::BadRequest(format!("minutes is {minutes}; give 1 to {MAX_BAN_MINUTES}")));
    }
    if connection.is_some_and(|info| info.peer.ip() == source) {
        return Err(ApiError::BadRequest(format!("{source} is the address of this request; banning it would lock you out")));
    }
    let reason = body.reason.unwrap_or_else(|| "banned by an admin".to_owned());
    if reason.chars().count() > 200 {
        return Err(ApiError::BadRequest("the reason is longer than 200 characters; shorten it".to_owned()));
    }
    state.guard.ban(source, Duration::from_secs(minutes * 60), &reason);
    tracing::warn!(source = %source, minutes, reason = %reason, "address banned by an admin");
    Ok((StatusCode::CREATED, Json(state.guard.bans())))
}

/// `DELETE /api/v1/admin/guard/bans/{source}`: lifts a ban or rate limit.
pub async fn unban(State(state): State<AppState>, Path(source): Path<String>) -> Result<Response, ApiError> {
    let source = parse_source(&source)?;
    if state.guard.unban(source) {
        tracing::warn!(source = %source, "ban lifted by an admin");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Ok(not_found(format!("{source} is neither banned nor rate limited")))
    }
}

/// `GET /api/v1/admin/guard/records`: forensic records, newest first, without their requests.
pub async fn records(State(state): State<AppState>) -> Result<Json<Vec<ForensicRecord>>, ApiError> {
    let guard = std::sync::Arc::clone(&state.guard);
    Ok(Json(tokio::task::spawn_blocking(move || guard.records()).await?))
}

/// `GET /api/v1/admin/guard/records/{id}`: one record with the requests that led to it.
pub async fn record(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let guard = std::sync::Arc::clone(&state.guard);
    let lookup = id.clone();
    match tokio::task::spawn_blocking(move || guard.record_by_id(&lookup)).await? {
        Some(record) => Ok(Json(record).into_response()),
        None => Ok(not_found(format!("no forensic record {id:?}; list them with GET /api/v1/admin/guard/records"))),
    }
}

fn not_found(message: String) -> Response {
    (StatusCode::NOT_FOUND, Json(serde_json::json!({ "error": message }))).into_response()
}

fn parse_source(text: &str) -> Result<IpAddr, ApiError> {
    text.trim().parse().map_err(|_| ApiError::BadRequest(format!("{text:?} is not an IP address such as 192.168.1.66 or fd00::5")))
}
