//! The route table: every route of the server, and the short list of routes
//! that are served without a token.
//!
//! The router is built only from [`table`], so a test that walks the table
//! walks every route the server has.

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post, put};

use crate::state::AppState;
use crate::{api, web};

/// Routes served without a token: the health check and the sign-in page
/// with its form target. Everything else needs a token.
pub const PUBLIC_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/api/v1/health"),
    (Method::GET, "/login"),
    (Method::POST, "/api/v1/login"),
];

/// One route: method, axum path template and handler.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path template, with `{id}` for an item id.
    pub path: &'static str,
    /// The handler.
    pub handler: MethodRouter<AppState>,
}

/// Lists every route of the server.
pub fn table() -> Vec<Route> {
    vec![
        route(Method::GET, "/api/v1/health", get(api::health)),
        route(Method::GET, "/login", get(web::login_page)),
        route(Method::POST, "/api/v1/login", post(api::login)),
        route(Method::POST, "/api/v1/logout", post(api::logout)),
        route(Method::GET, "/api/v1/session", get(api::session)),
        route(Method::GET, "/api/v1/connection", get(api::connection)),
        route(Method::GET, "/api/v1/connections", get(api::connections)),
        route(Method::GET, "/api/v1/items", get(api::items::list)),
        route(Method::GET, "/api/v1/items/{id}", get(api::items::show)),
        route(Method::GET, "/api/v1/items/{id}/thumbnail", get(api::items::thumbnail)),
        route(Method::GET, "/api/v1/items/{id}/stream", get(api::items::stream)),
        route(Method::PUT, "/api/v1/items/{id}/play-state", put(api::items::set_play_state)),
        route(Method::GET, "/api/v1/keys", get(api::keys::list)),
        route(Method::POST, "/api/v1/admin/rotate-keys", post(api::keys::rotate)),
        route(Method::GET, "/api/v1/admin/node", get(api::links::node)),
        route(Method::GET, "/api/v1/admin/links", get(api::links::list)),
        route(Method::POST, "/api/v1/admin/links", post(api::links::create)),
        route(Method::POST, "/api/v1/admin/links/offer", post(api::links::offer)),
        route(Method::POST, "/api/v1/admin/links/finish", post(api::links::finish)),
        route(Method::GET, "/api/v1/scan", get(api::scan::status)),
        route(Method::POST, "/api/v1/scan", post(api::scan::start)),
        route(Method::GET, "/api/v1/scan/events", get(api::scan::events)),
        route(Method::GET, "/api/v1/scan/problems", get(api::scan::problems)),
        route(Method::GET, "/", get(web::index_page)),
        route(Method::GET, "/app.js", get(web::app_js)),
        route(Method::GET, "/app.css", get(web::app_css)),
    ]
}

/// Builds the router from [`table`]. Routes on one path with different
/// methods are merged by axum.
pub fn router() -> Router<AppState> {
    table().into_iter().fold(Router::new(), |router, r| router.route(r.path, r.handler))
}

/// Returns whether `method` and `path` match a public route exactly. HEAD is
/// treated as GET, as axum serves it.
pub fn is_public(method: &Method, path: &str) -> bool {
    let method = if method == Method::HEAD { &Method::GET } else { method };
    PUBLIC_ROUTES.iter().any(|(m, p)| m == method && *p == path)
}

fn route(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route { method, path, handler }
}
