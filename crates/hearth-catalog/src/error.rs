use std::path::PathBuf;

/// Errors from the catalog. Per-file scan problems are not errors: they are
/// recorded as [`crate::Problem`]s and the scan goes on.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] hearth_store::StoreError),
    /// A query failed.
    #[error("catalog query failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A library folder is missing or is not a folder.
    #[error("library folder {path} is not usable: {reason}; check the path and its permissions")]
    BadLibrary {
        /// The folder given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// GStreamer could not be initialised.
    #[error(transparent)]
    Media(#[from] hearth_media::MediaError),
    /// The filesystem watcher could not be started.
    #[error("failed to watch {path}: {source}")]
    Watch {
        /// The library folder.
        path: PathBuf,
        /// The error from notify.
        #[source]
        source: notify::Error,
    },
    /// A stored probe result could not be decoded.
    #[error("stored metadata of item {id} is invalid: {source}; rescan the library")]
    BadProbe {
        /// The item.
        id: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A worker thread could not be started.
    #[error("failed to start a scan worker: {0}")]
    Thread(#[source] std::io::Error),
}
