//! The browser pages: pairing (`/pair`), sign-in (`/login`) and the library
//! with its players and admin section (`/`).
//!
//! The pages hold no household data. Their scripts pair the browser as a
//! device, sign in, and sign every API request with the device key
//! (`device.js`, docs/access.md). Media elements play through media grants.
//! Text shown to people lives in the `MESSAGES` catalogs at the top of
//! `app.js` and `pair.js`, so a translation adds a catalog without touching
//! code.

use axum::extract::Query;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde::Deserialize;

pub mod ui_dir;

const INDEX_HTML: &str = include_str!("index.html");
const LOGIN_HTML: &str = include_str!("login.html");
const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

/// The pairing page (`/pair`).
pub const PAIR_HTML: &str = include_str!("pair.html");
/// The pairing page's script: reads the offer, runs SPAKE2, stores the pairing.
pub const PAIR_JS: &str = include_str!("pair.js");
/// Device key, request proofs and sessions for every page that calls the API.
pub const DEVICE_JS: &str = include_str!("device.js");
/// SPAKE2 (RFC 9382) for the pairing page.
pub const SPAKE2_JS: &str = include_str!("spake2.js");
/// Passkey registration and sign-in with WebAuthn.
pub const PASSKEYS_JS: &str = include_str!("passkeys.js");
/// The player module: capabilities, playback decisions, hls.js set-up.
pub const PLAYBACK_JS: &str = include_str!("playback.js");
/// hls.js 1.7.4 from the npm registry (Apache-2.0); see vendor/README.md.
const HLS_JS: &str = include_str!("vendor/hls.min.mjs");

/// Query of the sign-in page.
#[derive(Deserialize)]
pub struct LoginQuery {
    failed: Option<String>,
}

/// `GET /login`: the sign-in page (public). `app.js` signs in with the
/// paired device key. `?failed` is where the old token form's post still
/// redirects a rejected token, so the page then explains that browsers pair
/// instead.
pub async fn login_page(Query(query): Query<LoginQuery>) -> axum::response::Response {
    if ui_dir::configured() {
        return axum::response::Redirect::temporary("/ui/login").into_response();
    }
    let notice = if query.failed.is_some() {
        r#"<p class="error" role="alert" data-i18n="tokenRetired"></p>"#
    } else {
        ""
    };
    Html(LOGIN_HTML.replace("<!--notice-->", notice)).into_response()
}

/// `GET /`: the library page (public, because it is a shell whose module
/// requests data with signed requests).
pub async fn index_page() -> axum::response::Response {
    if ui_dir::configured() {
        return axum::response::Redirect::temporary("/ui/").into_response();
    }
    Html(INDEX_HTML).into_response()
}

/// `GET /app.js`: the module of the sign-in and library pages.
pub async fn app_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS)
}

/// `GET /app.css`: the page's style sheet.
pub async fn app_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
}

/// `GET /pair`: the pairing page (public). The offer id and code travel in
/// the URL fragment, which the browser does not send to the server.
///
/// With the new UI configured, the page sends the browser to `/ui/pair`; a
/// redirect without a fragment keeps the link's own (RFC 9110, 10.2.2), so
/// the offer travels along and still never reaches the server.
pub async fn pair_page() -> axum::response::Response {
    if ui_dir::configured() {
        return axum::response::Redirect::temporary("/ui/pair").into_response();
    }
    Html(PAIR_HTML).into_response()
}

/// `GET /playback.js`: the player module (public).
pub async fn playback_js() -> impl IntoResponse {
    javascript(PLAYBACK_JS)
}

/// `GET /vendor/hls.min.mjs`: hls.js (public), cached for a day.
pub async fn hls_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")], HLS_JS)
}

/// `GET /pair.js`: the pairing page's module (public).
pub async fn pair_js() -> impl IntoResponse {
    javascript(PAIR_JS)
}

/// `GET /device.js`: the device key and request proof module (public, so
/// the pairing and sign-in pages can load it).
pub async fn device_js() -> impl IntoResponse {
    javascript(DEVICE_JS)
}

/// `GET /spake2.js`: the SPAKE2 module (public, for the pairing page).
pub async fn spake2_js() -> impl IntoResponse {
    javascript(SPAKE2_JS)
}

/// `GET /passkeys.js`: passkey registration and sign-in (public, so the
/// sign-in page can load it).
pub async fn passkeys_js() -> impl IntoResponse {
    javascript(PASSKEYS_JS)
}

fn javascript(source: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], source)
}
