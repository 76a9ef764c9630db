//! The test KME's HTTP endpoints, as ETSI GS QKD 014 v1.1.1 section 5 names
//! them. Every response other than 200 carries an ETSI 014 Error body.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hearth_pqc::qkd::QkdKey;
use serde::de::DeserializeOwned;

use super::kme::{Kme, Rejection};
use crate::api::{ErrorBody, KeyContainer, KeyEntry, KeyIds, KeyRequest, Status};

/// The SAE id from the caller's verified client certificate, set per
/// connection by the TLS accept loop.
#[derive(Debug, Clone)]
pub(super) struct CallerSae(pub String);

/// Builds the KME's router: status, enc_keys and dec_keys, behind the
/// link-down switch.
pub(super) fn routes(kme: Arc<Kme>) -> Router {
    Router::new()
        .route("/api/v1/keys/{slave_sae_id}/status", get(status))
        .route("/api/v1/keys/{slave_sae_id}/enc_keys", get(enc_keys_get).post(enc_keys_post))
        .route("/api/v1/keys/{master_sae_id}/dec_keys", get(dec_keys_get).post(dec_keys_post))
        .layer(middleware::from_fn_with_state(Arc::clone(&kme), reject_when_link_down))
        .with_state(kme)
}

async fn reject_when_link_down(State(kme): State<Arc<Kme>>, request: Request, next: Next) -> Response {
    if kme.is_link_down() {
        return Rejection::Unavailable("QKD link is down (test switch)".to_owned()).into_response();
    }
    next.run(request).await
}

async fn status(
    State(kme): State<Arc<Kme>>,
    Extension(caller): Extension<CallerSae>,
    Path(slave): Path<String>,
) -> Result<Json<Status>, Rejection> {
    kme.status(&caller.0, &slave).map(Json)
}

/// `GET .../enc_keys?number=N&size=S`.
async fn enc_keys_get(
    State(kme): State<Arc<Kme>>,
    Extension(caller): Extension<CallerSae>,
    Path(slave): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<KeyContainer>, Rejection> {
    let request = KeyRequest {
        number: query_number(&query, "number")?,
        size: query_number(&query, "size")?,
        ..KeyRequest::default()
    };
    let keys = kme.enc_keys(&caller.0, &slave, &request)?;
    Ok(Json(container(keys)))
}

/// `POST .../enc_keys` with a Key request body; an empty body means all
/// defaults.
async fn enc_keys_post(
    State(kme): State<Arc<Kme>>,
    Extension(caller): Extension<CallerSae>,
    Path(slave): Path<String>,
    body: Bytes,
) -> Result<Json<KeyContainer>, Rejection> {
    let request: KeyRequest = if body.is_empty() { KeyRequest::default() } else { parse_body(&body)? };
    let keys = kme.enc_keys(&caller.0, &slave, &request)?;
    Ok(Json(container(keys)))
}

/// `GET .../dec_keys?key_ID=ID`: one key.
async fn dec_keys_get(
    State(kme): State<Arc<Kme>>,
    Extension(caller): Extension<CallerSae>,
    Path(master): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<KeyContainer>, Rejection> {
    let Some(key_id) = query.get("key_ID") else {
        return Err(Rejection::BadRequest {
            message: "query parameter key_ID is missing".to_owned(),
            key_ids: Vec::new(),
        });
    };
    let keys = kme.dec_keys(&caller.0, &master, std::slice::from_ref(key_id))?;
    Ok(Json(container(keys)))
}

/// `POST .../dec_keys` with a Key IDs body.
async fn dec_keys_post(
    State(kme): State<Arc<Kme>>,
    Extension(caller): Extension<CallerSae>,
    Path(master): Path<String>,
    body: Bytes,
) -> Result<Json<KeyContainer>, Rejection> {
    let request: KeyIds = parse_body(&body)?;
    let key_ids: Vec<String> = request.key_IDs.into_iter().map(|entry| entry.key_ID).collect();
    let keys = kme.dec_keys(&caller.0, &master, &key_ids)?;
    Ok(Json(container(keys)))
}

fn container(keys: Vec<QkdKey>) -> KeyContainer {
    let keys = keys.into_iter().map(|key| KeyEntry::new(key.key_id, BASE64.encode(key.key.as_slice()))).collect();
    KeyContainer { keys, key_container_extension: None }
}

fn query_number(query: &HashMap<String, String>, name: &str) -> Result<Option<u32>, Rejection> {
    let Some(text) = query.get(name) else {
        return Ok(None);
    };
    text.parse().map(Some).map_err(|_| Rejection::BadRequest {
        message: format!("query parameter {name}={text:?} is not a non-negative integer"),
        key_ids: Vec::new(),
    })
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Rejection> {
    serde_json::from_slice(body).map_err(|err| Rejection::BadRequest {
        message: format!("request body is not valid JSON for this endpoint: {err}"),
        key_ids: Vec::new(),
    })
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Rejection::BadRequest { message, key_ids } => {
                let details = key_ids.into_iter().map(|id| serde_json::json!({ "key_ID": id })).collect();
                (StatusCode::BAD_REQUEST, ErrorBody { message, details })
            }
            Rejection::Unauthorized(message) => (StatusCode::UNAUTHORIZED, ErrorBody { message, details: Vec::new() }),
            Rejection::Unavailable(message) => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorBody { message, details: Vec::new() })
            }
        };
        tracing::debug!(status = status.as_u16(), message = %body.message, "test KME rejected a request");
        (status, Json(body)).into_response()
    }
}
