//! Errors that keep [`serve_file`](super::serve_file) and
//! [`serve_file_patched`](super::serve_file_patched) from building a response,
//! and the errors of finding the patches that remove a file's location.

use std::io;
use std::path::PathBuf;

use axum::http::header::InvalidHeaderValue;

/// Failure to serve a file, before any response header is built.
///
/// Everything about the request itself, such as an unsatisfiable range or a
/// failed precondition, is an HTTP response and not one of these errors.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The path does not exist, or one of its parent components is not a directory.
    #[error("file not found: {}", path.display())]
    NotFound {
        /// The path that was requested.
        path: PathBuf,
        /// The error returned by the open call.
        #[source]
        source: io::Error,
    },

    /// The path exists but names a directory or another non-regular file.
    #[error("not a regular file: {}", path.display())]
    NotAFile {
        /// The path that was requested.
        path: PathBuf,
    },

    /// The file exists but could not be opened, for example for lack of permission.
    #[error("failed to open {} for reading", path.display())]
    Open {
        /// The path that was requested.
        path: PathBuf,
        /// The error returned by the open call.
        #[source]
        source: io::Error,
    },

    /// The size or modification time of the open file could not be read.
    #[error("failed to read the metadata of {}", path.display())]
    Metadata {
        /// The path that was requested.
        path: PathBuf,
        /// The error returned by the metadata call.
        #[source]
        source: io::Error,
    },

    /// The location metadata of the file could not be found, so the file
    /// cannot be sent without it.
    // The source names the file and the reason, which the log needs.
    #[error("failed to find the location metadata to remove: {source}")]
    Location {
        /// The path that was requested.
        path: PathBuf,
        /// The error from reading the metadata, boxed because it is large.
        #[source]
        source: Box<hearth_media::MediaError>,
    },

    /// The file changed between finding its location metadata and opening
    /// it, so the patches may not fit the bytes that would be sent.
    #[error("{} changed while its location metadata was being removed; retry the request", path.display())]
    ChangedDuringPatching {
        /// The path that was requested.
        path: PathBuf,
    },

    /// The content type passed by the caller cannot be sent as a header value.
    #[error("invalid content type {content_type:?}: expected visible ASCII, spaces and tabs")]
    InvalidContentType {
        /// The content type as passed by the caller.
        content_type: String,
        /// The error from building the header value.
        #[source]
        source: InvalidHeaderValue,
    },
}
