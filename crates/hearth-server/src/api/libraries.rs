//! Library folders for the first-run wizard and the admin screen:
//! `GET|POST /api/v1/admin/libraries` and `DELETE
//! /api/v1/admin/libraries/{id}`.
//!
//! A folder is added by its path on the server's host. The scanner indexes
//! only media by content, but a folder that holds the server's own data
//! (keys, database) or a whole system tree is refused anyway, so a slip of
//! the admin's hand cannot put them in the library.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// Longest path accepted, in bytes.
const MAX_PATH_BYTES: usize = 4096;

/// Folders that are never a library, nor inside one.
const SYSTEM_FOLDERS: [&str; 6] = ["/proc", "/sys", "/dev", "/etc", "/boot", "/run"];

/// One library folder.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LibraryView {
    id: i64,
    path: String,
    /// Items present in it now.
    items: u64,
    /// Whether the folder is there (a disk may be unmounted).
    available: bool,
}

/// `GET /api/v1/admin/libraries`: every library folder.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<LibraryView>>, ApiError> {
    let catalog = Arc::clone(&state.catalog);
    let views = tokio::task::spawn_blocking(move || -> Result<Vec<LibraryView>, hearth_catalog::CatalogError> {
        let counts = catalog.library_item_counts()?;
        Ok(catalog
            .libraries()?
            .into_iter()
            .map(|library| LibraryView {
                id: library.id,
                path: library.root.display().to_string(),
                items: counts.get(&library.id).copied().unwrap_or(0),
                available: library.root.is_dir(),
            })
            .collect())
    })
    .await??;
    Ok(Json(views))
}

/// Body of `POST /api/v1/admin/libraries`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    path: String,
}

/// `POST /api/v1/admin/libraries`: adds a folder (by its path on the host)
/// and starts a scan. Adding a folder again returns it unchanged.
pub async fn add(State(state): State<AppState>, Json(body): Json<AddBody>) -> Result<(StatusCode, Json<LibraryView>), ApiError> {
    if body.path.len() > MAX_PATH_BYTES || body.path.contains('\0') {
        return Err(ApiError::BadRequest(format!("the path is longer than {MAX_PATH_BYTES} bytes or contains a NUL byte")));
    }
    let requested = PathBuf::from(body.path.trim());
    if !requested.is_absolute() {
        return Err(ApiError::BadRequest(format!("{} is not an absolute path: give the folder's full path, such as /home/sam/Videos", requested.display())));
    }
    let canonical = requested
        .canonicalize()
        .map_err(|error| ApiError::BadRequest(format!("{} cannot be opened ({error}): check that the folder exists", requested.display())))?;
    if let Some(reason) = refusal(&canonical, &state) {
        return Err(ApiError::BadRequest(format!("{} cannot be a library: {reason}", canonical.display())));
    }
    let catalog = Arc::clone(&state.catalog);
    let library = tokio::task::spawn_blocking(move || catalog.add_library(&canonical))
        .await?
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    tracing::info!(library = %library.root.display(), "library added");
    crate::api::scan::spawn_scan(Arc::clone(&state.catalog), state.scan_events.clone());
    let view = LibraryView { id: library.id, path: library.root.display().to_string(), items: 0, available: true };
    Ok((StatusCode::CREATED, Json(view)))
}

/// Returns why `folder` (canonical) cannot be a library, if it cannot.
fn refusal(folder: &Path, state: &AppState) -> Option<String> {
    if folder == Path::new("/") {
        return Some("the whole file system is too much; choose the folder that holds the media".to_owned());
    }
    if let Some(system) = SYSTEM_FOLDERS.iter().find(|system| folder.starts_with(system)) {
        return Some(format!("it is inside the system folder {system}"));
    }
    let data = state.catalog.store().path().parent().map(Path::to_path_buf);
    if let Some(data) = data.and_then(|data| data.canonicalize().ok())
        && (folder.starts_with(&data) || data.starts_with(folder))
    {
        return Some(format!("it holds or is inside Hearth's data folder {}, with its keys and database", data.display()));
    }
    None
}

/// `DELETE /api/v1/admin/libraries/{id}`: forgets a library folder, its
/// items and their play state. The files stay where they are.
pub async fn remove(State(state): State<AppState>, UrlPath(id): UrlPath<String>) -> Result<StatusCode, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::BadRequest(format!("library id {id:?} is invalid: use an id from GET /api/v1/admin/libraries")))?;
    let catalog = Arc::clone(&state.catalog);
    let removed = tokio::task::spawn_blocking(move || catalog.remove_library(id)).await??;
    if !removed {
        return Err(ApiError::NotFound("library"));
    }
    tracing::warn!(library = id, "library removed");
    Ok(StatusCode::NO_CONTENT)
}
