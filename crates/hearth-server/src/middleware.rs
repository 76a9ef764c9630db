//! Layers applied to every response.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::error::ServerErrorCause;

/// Content Security Policy of every page: scripts, media and connections
/// only from this origin, no framing. Inline styles are allowed for the
/// sign-in page, which has no script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; media-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Adds security headers to every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Runs each request in a span with its method and matched route, and logs
/// every 5xx once with its cause.
pub async fn log_server_errors(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!("request", method = %request.method(), route = %route);

    async move {
        let response = next.run(request).await;
        if response.status().is_server_error() {
            let cause = response.extensions().get::<ServerErrorCause>().map(|c| c.0.as_str()).unwrap_or("unknown");
            tracing::error!(status = %response.status(), error = cause, "request failed");
        }
        response
    }
    .instrument(span)
    .await
}
