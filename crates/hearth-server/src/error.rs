//! The one error type at the HTTP boundary.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error returned to a client. 4xx variants are the client's fault and
/// are not logged as errors; 5xx variants send a generic body and are logged
/// once, with the cause, by [`crate::middleware::log_server_errors`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a parameter is out of range.
    #[error("{0}")]
    BadRequest(String),
    /// No valid token was presented.
    #[error("authentication required: send the token printed by `hearth serve` as a Bearer header or sign in at /login")]
    Unauthorized,
    /// The token is valid but its role may not do this.
    #[error("forbidden: this action needs the admin token")]
    Forbidden,
    /// The resource does not exist (or the caller may not know it exists).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The catalog failed.
    #[error("catalog failure: {0}")]
    Catalog(#[from] hearth_catalog::CatalogError),
    /// Streaming a file failed.
    #[error("stream failure: {0}")]
    Stream(#[from] crate::stream::StreamError),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// Rotating or listing keys failed.
    #[error("key rotation failure: {0}")]
    Rotation(String),
    /// Making or caching a thumbnail failed.
    #[error("thumbnail failure: {0}")]
    Thumbnail(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

/// Marker put in the extensions of a 5xx response, carrying the cause for
/// the logging middleware.
#[derive(Clone, Debug)]
pub struct ServerErrorCause(pub String);

impl ApiError {
    /// Returns the status code sent for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Catalog(_) | Self::Stream(_) | Self::Join(_) | Self::Thumbnail(_) | Self::Rotation(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            let mut response = (status, Json(ErrorBody { error: "internal server error; see the server log" })).into_response();
            response.extensions_mut().insert(ServerErrorCause(self.to_string()));
            return response;
        }

        let message = self.to_string();
        let mut response = (status, Json(ErrorBody { error: &message })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer realm=\"hearth\""));
        }
        response
    }
}
