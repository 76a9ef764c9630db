//! The `hearth://` scheme: the window's only way to the server.
//!
//! WebKitGTK negotiates TLS with GnuTLS, which has no ML-KEM, so the window
//! does not connect to the server's socket. Each request of the page goes
//! to this handler instead, which passes it to the server's router in
//! process, marked as a host-admin request ([`crate::server::InProcess`]).
//! The built UI is served by the router's own `/ui/` route, from the folder
//! that `HEARTH_UI_DIR` names ([`crate::ui`]).
//!
//! A request whose `Origin` is not this scheme's is refused: only the
//! window's own pages may speak as the host admin.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use futures_util::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use tauri::{Manager, UriSchemeContext, UriSchemeResponder};

use crate::self_check::{REPORT_PATH, SelfCheck};
use crate::server::ServerControl;
use crate::ui;

/// Name of the scheme.
pub const SCHEME: &str = "hearth";

/// Origin of the window's pages on Linux and macOS. Windows and Android
/// would use `http://hearth.localhost`; the app is built for Linux only.
pub const ORIGIN: &str = "hearth://localhost";

/// The window's start page.
pub const START_URL: &str = "hearth://localhost/ui/";

/// Maximum size of a response body passed to the webview, in bytes. The
/// scheme responds with whole bodies, so media must be requested in ranges
/// (players request ranges), and a larger response fails with 502.
const MAX_BODY: usize = 256 * 1024 * 1024;

/// How long a server-sent event stream is read before the response is
/// sent. The scheme cannot stream, so the page gets the events that arrived
/// by then and reconnects.
const EVENT_STREAM_WINDOW: Duration = Duration::from_secs(2);

/// Handles one request of the webview; registered with
/// `register_asynchronous_uri_scheme_protocol`.
pub fn handle<R: tauri::Runtime>(context: UriSchemeContext<'_, R>, request: Request<Vec<u8>>, responder: UriSchemeResponder) {
    let app = context.app_handle();
    let control = Arc::clone(app.state::<Arc<ServerControl>>().inner());
    let self_check = app.try_state::<Arc<SelfCheck>>().map(|state| Arc::clone(state.inner()));

    if let Some(reason) = foreign_origin(&request) {
        tracing::warn!(path = request.uri().path(), reason = %reason, "hearth:// request rejected");
        responder.respond(text(StatusCode::FORBIDDEN, "text/plain; charset=utf-8", reason.into_bytes()));
        return;
    }

    let path = request.uri().path().to_owned();
    if path == REPORT_PATH && request.method() == Method::POST {
        let status = match self_check {
            Some(check) => {
                check.record(app, request.body());
                StatusCode::NO_CONTENT
            }
            None => StatusCode::NOT_FOUND,
        };
        responder.respond(text(status, "text/plain; charset=utf-8", Vec::new()));
        return;
    }
    if path == "/" {
        let mut response = text(StatusCode::FOUND, "text/plain; charset=utf-8", Vec::new());
        response.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/ui/"));
        responder.respond(response);
        return;
    }
    if (path == "/ui" || path.starts_with("/ui/")) && !ui::is_built() {
        responder.respond(text(StatusCode::OK, "text/html; charset=utf-8", ui::missing_page().into_bytes()));
        return;
    }

    let in_process = match control.in_process() {
        Ok(in_process) => in_process,
        Err(_) => {
            responder.respond(text(StatusCode::SERVICE_UNAVAILABLE, "text/html; charset=utf-8", ui::stopped_page(&control.status()).into_bytes()));
            return;
        }
    };
    tauri::async_runtime::spawn(async move {
        let response = match in_process.send(into_axum(request)).await {
            Some(response) => into_webview(response).await,
            None => text(StatusCode::SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", b"the server is stopping".to_vec()),
        };
        responder.respond(response);
    });
}

/// Returns why a request does not come from the window's own pages, or
/// `None` when it does. WebKit sends `Origin` on requests other than
/// plain navigations and GETs of the same origin.
fn foreign_origin(request: &Request<Vec<u8>>) -> Option<String> {
    let origin = request.headers().get(header::ORIGIN)?;
    match origin.to_str() {
        Ok(ORIGIN) => None,
        Ok(other) => Some(format!("origin {other:?} is not {ORIGIN:?}: only the Hearth window may call its server")),
        Err(_) => Some("the Origin header is not ASCII".to_owned()),
    }
}

/// Rebuilds the webview's request for the router: path and query only,
/// and without `Origin` and `Sec-Fetch-*`, which [`foreign_origin`]
/// has checked and which the router would compare with an HTTPS origin.
fn into_axum(request: Request<Vec<u8>>) -> Request<Body> {
    let (mut parts, body) = request.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    parts.uri = target.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
    parts.headers.remove(header::ORIGIN);
    for name in ["sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "sec-fetch-user"] {
        parts.headers.remove(name);
    }
    parts.headers.insert(header::HOST, HeaderValue::from_static("localhost"));
    Request::from_parts(parts, Body::from(body))
}

/// Reads the router's response into one body for the webview.
async fn into_webview(response: http::Response<Body>) -> Response<Cow<'static, [u8]>> {
    let (parts, body) = response.into_parts();
    let is_event_stream = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));

    let bytes = if is_event_stream {
        let mut collected = Vec::new();
        let mut stream = body.into_data_stream();
        let _ = tokio::time::timeout(EVENT_STREAM_WINDOW, async {
            while let Some(Ok(chunk)) = stream.next().await {
                collected.extend_from_slice(&chunk);
            }
        })
        .await;
        collected
    } else {
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(bytes) => bytes.to_vec(),
            Err(error) => {
                tracing::warn!(error = %error, limit = MAX_BODY, "response too large for the window");
                return text(StatusCode::BAD_GATEWAY, "text/plain; charset=utf-8", b"the response is too large for the desktop window".to_vec());
            }
        }
    };

    let mut response = Response::from_parts(parts, Cow::Owned(bytes));
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response.headers_mut().remove(header::TRANSFER_ENCODING);
    response
}

fn text(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Cow<'static, [u8]>> {
    let mut response = Response::new(Cow::Owned(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_origins_are_refused() {
        let own = Request::post("hearth://localhost/api/v1/scan").header(header::ORIGIN, ORIGIN).body(Vec::new()).unwrap();
        assert_eq!(foreign_origin(&own), None);
        let plain = Request::get("hearth://localhost/ui/").body(Vec::new()).unwrap();
        assert_eq!(foreign_origin(&plain), None);
        for other in ["https://evil.example", "null", "hearth://localhost.evil", "http://hearth.localhost"] {
            let request = Request::post("hearth://localhost/api/v1/scan").header(header::ORIGIN, other).body(Vec::new()).unwrap();
            assert!(foreign_origin(&request).is_some(), "{other}");
        }
    }

    #[test]
    fn router_request_keeps_path_and_query_only() {
        let request = Request::post("hearth://localhost/api/v1/items?q=a%20b")
            .header(header::ORIGIN, ORIGIN)
            .header("sec-fetch-site", "same-origin")
            .body(b"{}".to_vec())
            .unwrap();
        let converted = into_axum(request);
        assert_eq!(converted.uri().to_string(), "/api/v1/items?q=a%20b");
        assert!(converted.headers().get(header::ORIGIN).is_none());
        assert!(converted.headers().get("sec-fetch-site").is_none());
        assert_eq!(converted.headers()[header::HOST], "localhost");
    }
}
