//! JSON handlers under /api/v1.

pub mod items;
pub mod keys;
pub mod links;
pub mod scan;

use axum::extract::{Extension, Form, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::{Role, clear_cookie, session_cookie};
use crate::connection::ConnectionInfo;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

/// `GET /api/v1/health`: public liveness check; reveals nothing about the
/// library.
pub async fn health() -> impl IntoResponse {
    Json(Health { status: "ok" })
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /api/v1/login`: checks the token from the sign-in form and stores
/// it in an HttpOnly, Secure, SameSite=Strict cookie.
pub async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let token = form.token.trim();
    if state.tokens.role_of(token).is_none() {
        tracing::info!("sign-in with an invalid token");
        return Redirect::to("/login?failed=1").into_response();
    }
    ([(header::SET_COOKIE, session_cookie(token))], Redirect::to("/")).into_response()
}

/// `POST /api/v1/logout`: deletes the session cookie.
pub async fn logout() -> Response {
    ([(header::SET_COOKIE, clear_cookie())], StatusCode::NO_CONTENT).into_response()
}

#[derive(Serialize)]
struct Session {
    role: Role,
}

/// `GET /api/v1/session`: the caller's role.
pub async fn session(Extension(role): Extension<Role>) -> impl IntoResponse {
    Json(Session { role })
}

/// `GET /api/v1/connection`: what the caller's own TLS connection
/// negotiated, so users and tests can see that their session is
/// post-quantum.
pub async fn connection(info: Option<Extension<ConnectionInfo>>) -> Result<Json<ConnectionInfo>, ApiError> {
    match info {
        Some(Extension(info)) => Ok(Json(info)),
        None => Err(ApiError::NotFound("TLS connection information")),
    }
}

/// `GET /api/v1/connections`: recent TLS connections (admin only).
pub async fn connections(State(state): State<AppState>, Extension(role): Extension<Role>) -> Result<Json<Vec<ConnectionInfo>>, ApiError> {
    require_admin(role)?;
    Ok(Json(state.connections.snapshot()))
}

/// Rejects callers that are not admins.
pub fn require_admin(role: Role) -> Result<(), ApiError> {
    match role {
        Role::Admin => Ok(()),
        Role::Member => Err(ApiError::Forbidden),
    }
}
