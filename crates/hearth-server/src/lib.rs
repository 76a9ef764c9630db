//! The Hearth server: the HTTP API, the streaming endpoints, the browser
//! page and the TLS listener, wired from the domain crates.
//!
//! Every request passes TLS (hybrid post-quantum key exchange, see
//! [`tls_server`]), then the intrusion guard ([`guard::inspect`]), and then
//! [`access::authenticate`] before any handler runs: a session with a request proof bound to the connection, and the
//! policy's decision on the route's action. Each route's guard is declared
//! in [`routes::table`].

pub mod access;
pub mod admin_socket;
pub mod api;
pub mod auth;
pub mod config;
pub mod connection;
pub mod embed;
pub mod error;
pub mod firewall;
pub mod guard;
pub mod links;
pub mod middleware;
pub mod openapi;
pub mod rotation;
pub mod routes;
pub mod state;
pub mod stream;
pub mod thumbnails;
pub mod tls_server;
pub mod trickplay;
pub mod web;

use axum::Router;

use crate::state::AppState;

/// Builds the full application: routes, authentication, security headers
/// and error logging. Authentication wraps the whole router, so unknown
/// paths are rejected like known ones.
pub fn app(state: AppState) -> Router {
    routes::router()
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::authenticate))
        .layer(axum::middleware::from_fn(middleware::reject_cross_site))
        .layer(axum::middleware::from_fn(middleware::json_errors))
        .layer(axum::middleware::from_fn(middleware::log_server_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::inspect))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .with_state(state)
}
