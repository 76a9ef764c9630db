//! Pairing a device with a one-time code (docs/access.md, "Pairing a
//! device"): the two public steps and the admin's offer creation.

#![allow(
    clippy::result_large_err,
    reason = "helpers return the finished HTTP error response; it is built once per failed request"
)]

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_access::pairing::{CreatedOffer, NewAccount, OfferCreator, OfferKind, PairingError, PairingErrorKind};
use hearth_access::{Role, Session};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// Maximum size of a pairing request body, in bytes.
const MAX_BODY: usize = 16 * 1024;

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct StartBody {
    offer_id: String,
    device_key: String,
    device_name: String,
    share: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct StartResponse {
    pairing_id: String,
    share: String,
    needs_account: bool,
    account_name: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct AccountBody {
    #[serde(default)]
    name: Option<String>,
    password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct FinishBody {
    pairing_id: String,
    confirmation: String,
    #[serde(default)]
    account: Option<AccountBody>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct FinishResponse {
    confirmation: String,
    device: DeviceSummary,
    user: UserSummary,
    credential: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PairedDevice)]
pub(crate) struct DeviceSummary {
    did: String,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PairedUser)]
pub(crate) struct UserSummary {
    name: String,
    role: &'static str,
}

/// `POST /api/v1/pair/start` (public): the device's key, name and SPAKE2
/// share for an offer; returns the server's share.
pub async fn start(State(state): State<AppState>, body: Bytes) -> Response {
    let body: StartBody = match parse(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let access = Arc::clone(&state.access);
    let result = tokio::task::spawn_blocking(move || {
        let offer = access.pairing.offer(&body.offer_id)?;
        let started = access.pairing.start(&body.offer_id, &body.device_key, &body.device_name, &body.share)?;
        let (needs_account, account_name) = match offer.map(|offer| offer.kind) {
            Some(OfferKind::NewUser { name, .. }) => (true, name),
            _ => (false, None),
        };
        Ok::<_, PairingError>(StartResponse { pairing_id: started.pairing_id, share: started.share, needs_account, account_name })
    })
    .await;
    match result {
        Ok(Ok(response)) => Json(response).into_response(),
        Ok(Err(error)) => pairing_failure(&error),
        Err(error) => ApiError::Join(error).into_response(),
    }
}

/// `POST /api/v1/pair/finish` (public): the device's confirmation and, for
/// a new-user offer, the account; returns the server's confirmation and the
/// device's household credential.
pub async fn finish(State(state): State<AppState>, body: Bytes) -> Response {
    let body: FinishBody = match parse(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(rotation) = state.rotation.clone() else {
        return ApiError::NotFound("pairing (this server runs without signing keys)").into_response();
    };
    let access = Arc::clone(&state.access);
    let result = tokio::task::spawn_blocking(move || {
        let signer = rotation.signing_key().map_err(|error| {
            tracing::error!(error = %error, "failed to load the household signing key for pairing");
            None
        })?;
        let name = body.account.as_ref().and_then(|account| account.name.clone()).unwrap_or_default();
        let account = body.account.as_ref().map(|account| NewAccount { name: &name, password: &account.password });
        access.pairing.finish(&body.pairing_id, &body.confirmation, account, &signer).map_err(Some)
    })
    .await;
    match result {
        Ok(Ok(paired)) => {
            tracing::info!(device = paired.device.id.0, user = %paired.user.name, "device paired");
            Json(FinishResponse {
                confirmation: paired.confirmation,
                device: DeviceSummary { did: paired.device.key.did().to_string(), name: paired.device.name },
                user: UserSummary { name: paired.user.name, role: paired.user.role.as_str() },
                credential: URL_SAFE_NO_PAD.encode(paired.credential.to_bytes()),
            })
            .into_response()
        }
        Ok(Err(Some(error))) => pairing_failure(&error),
        Ok(Err(None)) => ApiError::Rotation("the household signing key is unavailable".into()).into_response(),
        Err(error) => ApiError::Join(error).into_response(),
    }
}

/// Body of `POST /api/v1/admin/pairing-offers`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct OfferBody {
    #[serde(default)]
    new_user: Option<NewUserBody>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct NewUserBody {
    name: String,
    role: String,
}

/// A created offer as the admin sees it, with the code: the only time the
/// code leaves the server.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OfferView {
    offer_id: String,
    code: String,
    expires_at: i64,
    link: String,
    qr_svg: String,
}

impl OfferView {
    /// Builds the view, with a link for `authority` (`host:port`).
    pub fn new(created: &CreatedOffer, authority: &str) -> Self {
        let link = created.link(authority).to_string();
        Self {
            offer_id: created.offer.id.clone(),
            code: created.code.display_form().to_string(),
            expires_at: created.offer.expires_at,
            qr_svg: qr_svg(&link),
            link,
        }
    }
}

/// `POST /api/v1/admin/pairing-offers`: a new offer for a new user
/// (`{"new_user": {"name", "role"}}`) or for an existing one (`{"user"}`).
pub async fn create_offer(
    State(state): State<AppState>,
    session: Option<Extension<Session>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let body: OfferBody = match parse(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let creator = match session {
        Some(Extension(session)) => OfferCreator::User(session.user_id),
        None => OfferCreator::HostCli,
    };
    let authority = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_else(|| "localhost".to_owned());
    let access = Arc::clone(&state.access);
    let result = tokio::task::spawn_blocking(move || -> Result<CreatedOffer, Response> {
        let kind = match (body.new_user, body.user) {
            (Some(new_user), None) => {
                let role: Role = new_user
                    .role
                    .parse()
                    .map_err(|_| bad_request(format!("role must be admin, adult, teen or child, not {:?}", new_user.role)))?;
                OfferKind::NewUser { name: Some(new_user.name), role }
            }
            (None, Some(name)) => {
                let user = access
                    .users
                    .user_by_name(&name)
                    .map_err(|error| bad_request(error.to_string()))?
                    .ok_or_else(|| bad_request(format!("no user named {name:?}; create one with a new_user offer")))?;
                OfferKind::ExistingUser { user: user.id }
            }
            _ => return Err(bad_request("send either {\"new_user\": {\"name\", \"role\"}} or {\"user\": name}".into())),
        };
        access.pairing.create_offer(kind, creator).map_err(|error| pairing_failure(&error))
    })
    .await;
    match result {
        Ok(Ok(created)) => {
            tracing::info!(offer = %created.offer.id, "pairing offer created");
            Json(OfferView::new(&created, &authority)).into_response()
        }
        Ok(Err(response)) => response,
        Err(error) => ApiError::Join(error).into_response(),
    }
}

/// Renders `text` as an SVG QR code.
pub fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build(),
        Err(error) => {
            tracing::warn!(error = %error, "failed to render a QR code");
            String::new()
        }
    }
}

/// Renders `text` as a QR code for a terminal, two rows per line.
pub fn qr_terminal(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code.render::<qrcode::render::unicode::Dense1x2>().quiet_zone(true).build(),
        Err(_) => String::new(),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    if body.len() > MAX_BODY {
        return Err(bad_request(format!("request body is larger than {MAX_BODY} bytes")));
    }
    serde_json::from_slice(body).map_err(|error| bad_request(format!("invalid JSON body: {error}")))
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": message, "code": "bad_request" }))).into_response()
}

/// Maps a pairing error to its status and `{"error", "code",
/// "attempts_left"}` body (docs/access.md).
fn pairing_failure(error: &PairingError) -> Response {
    let (status, code) = match (error.kind(), error) {
        (PairingErrorKind::BadRequest, PairingError::AccountRequired { .. })
        | (PairingErrorKind::BadRequest, PairingError::AccountNotAllowed { .. })
        | (PairingErrorKind::BadRequest, PairingError::AccountNameMismatch { .. }) => (StatusCode::BAD_REQUEST, "account"),
        (PairingErrorKind::BadRequest, _) => (StatusCode::BAD_REQUEST, "bad_request"),
        (PairingErrorKind::Forbidden, PairingError::WrongCode { .. }) => (StatusCode::FORBIDDEN, "wrong_code"),
        (PairingErrorKind::Forbidden, _) => (StatusCode::FORBIDDEN, "forbidden"),
        (PairingErrorKind::NotFound, _) => (StatusCode::NOT_FOUND, "not_found"),
        (PairingErrorKind::Conflict, _) => (StatusCode::CONFLICT, "used"),
        (PairingErrorKind::Expired, _) => (StatusCode::GONE, "expired"),
        (PairingErrorKind::Burned, _) => (StatusCode::TOO_MANY_REQUESTS, "burned"),
        (PairingErrorKind::Unavailable, _) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        (PairingErrorKind::Internal, _) => {
            tracing::error!(error = %error, "pairing failed");
            let body = serde_json::json!({ "error": "pairing failed; see the server log", "code": "internal" });
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
        }
    };
    let attempts_left = match error {
        PairingError::WrongCode { attempts_left, .. } => Some(*attempts_left),
        _ => None,
    };
    let body = serde_json::json!({ "error": error.to_string(), "code": code, "attempts_left": attempts_left });
    (status, Json(body)).into_response()
}
