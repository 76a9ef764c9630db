//! The minimal browser page: sign-in form, item list and players.
//!
//! Text shown to people lives in the `MESSAGES` catalog at the top of
//! `app.js` (and in `login.html`), so a translation adds a catalog without
//! touching code.

use axum::extract::Query;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde::Deserialize;

const INDEX_HTML: &str = include_str!("index.html");
const LOGIN_HTML: &str = include_str!("login.html");
const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

/// Query of the sign-in page.
#[derive(Deserialize)]
pub struct LoginQuery {
    failed: Option<String>,
}

/// `GET /login`: the sign-in form (public).
pub async fn login_page(Query(query): Query<LoginQuery>) -> Html<String> {
    let notice = if query.failed.is_some() {
        r#"<p class="error" role="alert">That token is not valid. Copy it again from the output of hearth serve.</p>"#
    } else {
        ""
    };
    Html(LOGIN_HTML.replace("<!--notice-->", notice))
}

/// `GET /`: the library page.
pub async fn index_page() -> Html<&'static str> {
    Html(INDEX_HTML)
}

/// `GET /app.js`: the page's script.
pub async fn app_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS)
}

/// `GET /app.css`: the page's style sheet.
pub async fn app_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
}
