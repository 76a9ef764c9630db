//! The Hearth server: the HTTP API, the streaming endpoints, the browser
//! page and the TLS listener, wired from the domain crates.
//!
//! Every request passes TLS (hybrid post-quantum key exchange, see
//! [`tls_server`]) and then token authentication ([`auth`]) before any
//! handler runs. The only routes served without a token are listed in
//! [`routes::PUBLIC_ROUTES`].

pub mod api;
pub mod auth;
pub mod config;
pub mod connection;
pub mod error;
pub mod links;
pub mod middleware;
pub mod rotation;
pub mod routes;
pub mod state;
pub mod stream;
pub mod thumbnails;
pub mod tls_server;
pub mod web;

use axum::Router;

use crate::state::AppState;

/// Builds the full application: routes, authentication, security headers
/// and error logging. Authentication wraps the whole router, so unknown
/// paths are rejected like known ones.
pub fn app(state: AppState) -> Router {
    routes::router()
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        .layer(axum::middleware::from_fn(middleware::reject_cross_site))
        .layer(axum::middleware::from_fn(middleware::log_server_errors))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .with_state(state)
}
