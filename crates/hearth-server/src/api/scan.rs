//! Scan control, progress stream and problem report.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures_util::stream::{self, Stream, StreamExt};
use hearth_catalog::{Catalog, Problem};
use tokio_stream::wrappers::BroadcastStream;

use crate::api::require_admin;
use crate::auth::Role;
use crate::error::ApiError;
use crate::state::{AppState, ScanEvents};

/// `POST /api/v1/scan`: starts a rescan of every library in the background
/// (admin only). 202 when started, 409 when a scan is already running.
pub async fn start(State(state): State<AppState>, Extension(role): Extension<Role>) -> Result<impl IntoResponse, ApiError> {
    require_admin(role)?;
    if !spawn_scan(Arc::clone(&state.catalog), state.scan_events.clone()) {
        return Ok((StatusCode::CONFLICT, Json(serde_json::json!({ "error": "a scan is already running" }))));
    }
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "status": "started" }))))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ScanStatus {
    running: bool,
    latest: Option<hearth_catalog::ScanProgress>,
    /// The latest report of each library scanned since the server started.
    libraries: Vec<hearth_catalog::ScanProgress>,
}

/// `GET /api/v1/scan`: whether a scan runs, and its latest progress report.
pub async fn status(State(state): State<AppState>) -> impl IntoResponse {
    let (_, latest) = state.scan_events.subscribe();
    Json(ScanStatus { running: state.scan_events.is_running(), latest, libraries: state.scan_events.libraries() })
}

/// Runs a scan of all libraries on a blocking thread, publishing progress.
/// Returns false when a scan is already running.
pub fn spawn_scan(catalog: Arc<Catalog>, events: ScanEvents) -> bool {
    if !events.try_start() {
        return false;
    }
    tokio::task::spawn_blocking(move || {
        let publish = |p: &hearth_catalog::ScanProgress| events.publish(p);
        if let Err(err) = catalog.scan_all(&publish) {
            tracing::error!(error = %err, "scan failed");
        }
        events.finish();
    });
    true
}

/// `GET /api/v1/scan/events`: server-sent events, one `progress` event per
/// report (JSON of `ScanProgress`), starting with the latest report.
pub async fn events(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (receiver, latest) = state.scan_events.subscribe();
    let first = stream::iter(latest.into_iter().map(|p| Ok(progress_event(&p))));
    // A lagging subscriber skips the reports it missed.
    let rest = BroadcastStream::new(receiver).filter_map(|item| async move { item.ok().map(|p| Ok(progress_event(&p))) });
    Sse::new(first.chain(rest)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// `GET /api/v1/scan/problems`: every entry the scanner could not index,
/// with its reason.
pub async fn problems(State(state): State<AppState>) -> Result<Json<Vec<Problem>>, ApiError> {
    let catalog = Arc::clone(&state.catalog);
    let problems = tokio::task::spawn_blocking(move || catalog.problems()).await??;
    Ok(Json(problems))
}

fn progress_event(progress: &hearth_catalog::ScanProgress) -> Event {
    let json = serde_json::to_string(progress).expect("scan progress serialises: plain strings and numbers");
    Event::default().event("progress").data(json)
}
