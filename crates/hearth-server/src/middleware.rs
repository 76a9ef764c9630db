//! Layers applied to every response.

use axum::Json;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::error::ServerErrorCause;

/// Content Security Policy of every page: scripts, media and connections
/// only from this origin, no framing. Inline styles are allowed for the
/// sign-in page, which has no script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Browser features pages may use. Camera and microphone stay available to
/// this origin for biometric unlock; everything else is off.
const PERMISSIONS_POLICY: &str = "camera=(self), microphone=(self), geolocation=(), payment=(), usb=(), \
     serial=(), bluetooth=(), hid=(), midi=(), interest-cohort=()";

/// Adds security headers to every response.
///
/// Besides the CSP, they turn off MIME sniffing, framing and referrers and
/// set HSTS. COOP gives the page a browsing context of its own, so other
/// sites' windows cannot script it. CORP `same-origin` stops another site
/// from embedding our media, images or JSON with `<video>`, `<img>` or
/// `<script>` tags.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 8] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
        (HeaderName::from_static("permissions-policy"), PERMISSIONS_POLICY),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Rejects state-changing requests that a browser sent on behalf of another
/// site (cross-site request forgery), before authentication runs.
///
/// A request with a method other than GET, HEAD or OPTIONS is rejected with
/// 403 when its `Sec-Fetch-Site` header says `cross-site` or `same-site`,
/// or, from a browser that sends no `Sec-Fetch-Site`, when its `Origin`
/// header names another origin than the one the request was sent to. Clients that send neither header (curl, the CLI, native
/// apps) pass, because a third-party page cannot make them send a request. The session cookie is also
/// SameSite=Strict; this check covers browsers that ignore that attribute
/// and sign-in forms, which carry no cookie yet.
pub async fn reject_cross_site(request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && let Some(reason) = cross_site_reason(request.headers(), request.uri()) {
        tracing::warn!(
            method = %request.method(),
            path = request.uri().path(),
            reason = %reason,
            "cross-site request rejected"
        );
        let body = serde_json::json!({
            "error": format!("cross-site request rejected: {reason}; send state-changing requests from the Hearth page itself")
        });
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    next.run(request).await
}

/// Returns why a request looks cross-site, or `None` when it does not.
fn cross_site_reason(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    // Pages cannot set Sec-Fetch-Site, so a browser that sends it is
    // believed. Chromium sends `Origin: null` on same-origin form posts
    // under `Referrer-Policy: no-referrer`, so Origin is checked only
    // without it.
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        return match site {
            "same-origin" | "none" => None,
            _ => Some(format!("Sec-Fetch-Site is {site:?}")),
        };
    }

    let origin = headers.get(header::ORIGIN)?;
    let Ok(origin) = origin.to_str() else {
        return Some("the Origin header is not ASCII".to_owned());
    };
    // HTTP/1.1 names the target in Host. HTTP/2 names it in :authority,
    // which hyper puts in the URI.
    let target = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|authority| authority.as_str().to_owned()));
    let Some(target) = target else {
        return Some(format!("Origin {origin:?} with no Host to compare it with"));
    };
    let expected = format!("https://{}", target.to_ascii_lowercase());
    if origin.to_ascii_lowercase() == expected {
        None
    } else {
        Some(format!("Origin {origin:?} is not {expected:?}"))
    }
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

/// Largest plain-text error body that [`json_errors`] rewrites.
const MAX_TEXT_ERROR: usize = 4096;

/// Gives every 4xx response a JSON body `{"error": "..."}`, as docs/api.md
/// promises. axum's own rejections (a body over its limit, a query string
/// that does not parse) answer in plain text, and an unknown path answers
/// with an empty body; both are rewritten here.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let head = request.method() == Method::HEAD;
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // A HEAD answer has no body, and a 416 keeps the range code's own.
    if !status.is_client_error() || is_json || head || status == StatusCode::RANGE_NOT_SATISFIABLE {
        return response;
    }

    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_TEXT_ERROR).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).trim().to_owned(),
        _ => status.canonical_reason().unwrap_or("request failed").to_lowercase(),
    };
    let body = serde_json::json!({ "error": text }).to_string();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}
