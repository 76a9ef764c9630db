//! The new web UI (`ui/`, built by Vite into `ui/dist`), served under `/ui/`
//! from the folder named by `HEARTH_UI_DIR` while it replaces the pages in
//! this module. Without the variable, `/ui/` returns 404.
//!
//! A request path is served only when every segment is a plain file name
//! (no `..`, no hidden names, no backslashes), so no request reaches outside
//! the folder. A path without a file extension is a client-side route and
//! gets `index.html`.

use std::path::{Path, PathBuf};

use axum::extract::Path as UrlPath;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Environment variable naming the built UI folder.
pub const UI_DIR_VAR: &str = "HEARTH_UI_DIR";

/// Returns whether a built UI is configured: `HEARTH_UI_DIR` names a folder
/// with an `index.html`. The old pages then send browsers to it.
pub fn configured() -> bool {
    std::env::var_os(UI_DIR_VAR).is_some_and(|dir| Path::new(&dir).join("index.html").is_file())
}

/// `GET /ui`: the UI's start page.
pub async fn ui_index() -> Response {
    serve("").await
}

/// `GET /ui/{*path}`: a file of the built UI, or its start page for a client route.
pub async fn ui_file(UrlPath(path): UrlPath<String>) -> Response {
    serve(&path).await
}

async fn serve(path: &str) -> Response {
    let Some(root) = std::env::var_os(UI_DIR_VAR).map(PathBuf::from) else {
        return not_found();
    };
    let Some(relative) = safe_relative(path) else {
        return not_found();
    };
    let is_asset = relative.extension().is_some();
    let file = if is_asset { root.join(&relative) } else { root.join("index.html") };
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&file)));
            // Vite names built assets by their hash, so they never change.
            let cache = if is_asset && relative.starts_with("assets") { "public, max-age=31536000, immutable" } else { "no-cache" };
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            response
        }
        Err(_) => not_found(),
    }
}

fn safe_relative(path: &str) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let plain = segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !plain || segment.starts_with('.') {
            return None;
        }
        relative.push(segment);
    }
    Some(relative)
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("woff2") => "font/woff2",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "error": "not found" }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_relative;

    #[test]
    fn only_plain_segments_pass() {
        assert_eq!(safe_relative("assets/app-1a2b.js").unwrap().to_str(), Some("assets/app-1a2b.js"));
        assert_eq!(safe_relative("").unwrap().to_str(), Some(""));
        for bad in ["../secret", "assets/../../etc/passwd", ".env", "a\\b", "a/.git/config", "%2e%2e/x", "a b"] {
            assert!(safe_relative(bad).is_none(), "{bad}");
        }
    }
}
