//! Sign-in with a device proof, media grants, and the admin's views of
//! devices, users and the audit log. docs/access.md is the protocol.

#![allow(
    clippy::result_large_err,
    reason = "helpers return the finished HTTP error response; it is built once per failed request"
)]

use std::sync::Arc;

use futures_util::StreamExt;

use axum::Json;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hearth_access::users::{Device, DeviceId, LoginError, UserId};
use hearth_access::{AuditQuery, Did, Session};
use serde::{Deserialize, Serialize};

use crate::access::{
    AuthFailure, DEVICE_HEADER, ProofInput, forbidden, session_failure, source_address, unauthorized,
};
use crate::admin_socket::HostAdmin;
use crate::auth::Role;
use crate::connection::TlsBinding;
use crate::error::ApiError;
use crate::state::AppState;

/// Maximum size of a sign-in body, in bytes.
const MAX_LOGIN_BODY: usize = 4096;

/// Body of a proof-based sign-in.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct LoginBody {
    name: String,
    password: String,
}

/// A user as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    id: i64,
    did: String,
    name: String,
    role: &'static str,
    disabled: bool,
    created_at: i64,
}

impl From<&hearth_access::User> for UserView {
    fn from(user: &hearth_access::User) -> Self {
        Self {
            id: user.id.0,
            did: user.did.to_string(),
            name: user.name.clone(),
            role: user.role.as_str(),
            disabled: user.disabled,
            created_at: user.created_at,
        }
    }
}

/// A device as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    id: i64,
    did: String,
    name: String,
    user_id: i64,
    approved: bool,
    created_at: i64,
    revoked_at: Option<i64>,
    last_seen: Option<i64>,
}

impl From<&Device> for DeviceView {
    fn from(device: &Device) -> Self {
        Self {
            id: device.id.0,
            did: device.key.did().to_string(),
            name: device.name.clone(),
            user_id: device.user_id.0,
            approved: device.approved,
            created_at: device.created_at,
            revoked_at: device.revoked_at,
            last_seen: device.last_seen,
        }
    }
}

/// Response to a successful sign-in, with a password or a passkey.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct LoginAnswer {
    pub(crate) session_id: String,
    pub(crate) expires_at: i64,
    pub(crate) user: UserSummary,
    pub(crate) device: DeviceSummary,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AccountUser)]
pub(crate) struct UserSummary {
    pub(crate) name: String,
    pub(crate) role: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AccountDevice)]
pub(crate) struct DeviceSummary {
    pub(crate) did: String,
    pub(crate) name: String,
}

/// `POST /api/v1/login` with a JSON body: signs in on a paired device.
///
/// The device's proof is checked before the password, so password guesses
/// need the device key; the login throttle then counts every guess.
pub async fn login_with_proof(State(state): State<AppState>, request: Request) -> Response {
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        let body = serde_json::json!({ "error": "sign-in takes a JSON body {\"name\", \"password\"} from a paired device; the token form of the first release is gone" });
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(body)).into_response();
    }
    let source = source_address(&request);
    let binding = request.extensions().get::<TlsBinding>().copied();
    let (parts, body) = request.into_parts();
    let input = match ProofInput::read(&parts.method, &parts.uri, &parts.headers, binding) {
        Ok(input) => input,
        Err(response) => return response,
    };
    let Some(did) = parts.headers.get(DEVICE_HEADER).and_then(|v| v.to_str().ok()) else {
        return unauthorized(AuthFailure::Missing, "sign-in needs the Hearth-Device header with the device's did:key");
    };
    let Ok(did) = Did::parse(did) else {
        return unauthorized(AuthFailure::Invalid, "the Hearth-Device header is not a did:key");
    };
    let body = match axum::body::to_bytes(body, MAX_LOGIN_BODY).await {
        Ok(body) => body,
        Err(_) => return ApiError::BadRequest(format!("sign-in body is larger than {MAX_LOGIN_BODY} bytes")).into_response(),
    };
    let Ok(login) = serde_json::from_slice::<LoginBody>(&body) else {
        return ApiError::BadRequest("sign-in body must be JSON {\"name\": ..., \"password\": ...}".into()).into_response();
    };

    let access = Arc::clone(&state.access);
    let result = tokio::task::spawn_blocking(move || -> Result<LoginAnswer, Response> {
        let device = match access.users.device_by_did(&did) {
            Ok(Some(device)) => device,
            Ok(None) => return Err(unauthorized(AuthFailure::Invalid, "this device is not paired; pair it first (see docs/access.md)")),
            Err(error) => {
                tracing::error!(error = %error, "failed to look up a device at sign-in");
                return Err(ApiError::Rotation("device lookup failed".into()).into_response());
            }
        };
        if let Err(error) = access.sessions.verify_device_proof(&device, &input.binding(""), &input.proof) {
            tracing::info!(device = device.id.0, error = %error, "sign-in proof rejected");
            return Err(session_failure(&error));
        }
        // A device signs in only its own user. Checking that before the
        // password keeps a paired device from testing other users'
        // passwords; the answer is the one a wrong password gets.
        match access.users.user_by_name(&login.name) {
            Ok(Some(named)) if named.id != device.user_id => {
                tracing::info!(device = device.id.0, "sign-in for a user the device does not belong to");
                let event = hearth_access::AuditEvent {
                    time: access.clock.now(),
                    subject: Some(named.did.to_string()),
                    device: Some(device.key.did().to_string()),
                    action: "login".to_owned(),
                    resource: "password".to_owned(),
                    allowed: false,
                    reason: "the device belongs to another user".to_owned(),
                    source,
                };
                if let Err(error) = access.users.audit().record(&event) {
                    tracing::error!(error = %error, "failed to record a refused sign-in");
                }
                return Err(login_failure(&LoginError::InvalidCredentials));
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(error = %error, "failed to look up a user at sign-in");
                return Err(ApiError::Rotation("user lookup failed".into()).into_response());
            }
        }
        let user = match access.users.login(&login.name, &login.password, source) {
            Ok(user) => user,
            Err(error) => return Err(login_failure(&error)),
        };
        let session = access.sessions.open_verified(&user, &device).map_err(|error| session_failure(&error))?;
        if let Err(error) = access.users.touch_device(device.id) {
            tracing::warn!(device = device.id.0, error = %error, "failed to record device activity");
        }
        tracing::info!(user = %user.name, device = device.id.0, "signed in");
        Ok(LoginAnswer {
            session_id: session.id,
            expires_at: session.expires_at,
            user: UserSummary { name: user.name, role: user.role.as_str() },
            device: DeviceSummary { did: device.key.did().to_string(), name: device.name },
        })
    })
    .await;

    match result {
        Ok(Ok(answer)) => Json(answer).into_response(),
        Ok(Err(response)) => response,
        Err(error) => ApiError::Join(error).into_response(),
    }
}

/// Maps a failed password check to 401, or 429 with `Retry-After`.
fn login_failure(error: &LoginError) -> Response {
    match error {
        LoginError::Throttled { retry_after } | LoginError::Locked { retry_after } => {
            let mut response =
                (StatusCode::TOO_MANY_REQUESTS, Json(serde_json::json!({ "error": error.to_string() }))).into_response();
            if let Ok(value) = retry_after.to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        LoginError::InvalidCredentials => unauthorized(AuthFailure::Invalid, &error.to_string()),
        other => {
            tracing::error!(error = %other, "sign-in failed");
            (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": "sign-in failed; see the server log" }))).into_response()
        }
    }
}

/// Response to `POST /api/v1/items/{id}/grant`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct GrantAnswer {
    stream_url: String,
    thumbnail_url: String,
    expires_at: i64,
}

/// `POST /api/v1/items/{id}/grant`: a capability URL for `<video src>` and
/// `<img src>`, bound to the caller's session.
pub async fn grant(
    State(state): State<AppState>,
    session: Option<Extension<Session>>,
    host: Option<Extension<HostAdmin>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let session = session.map(|Extension(session)| session);
    if session.is_none() && host.is_none() {
        return Ok(forbidden("media grants need a signed-in device session"));
    }
    let catalog = Arc::clone(&state.catalog);
    let item = id.clone();
    tokio::task::spawn_blocking(move || catalog.media_file(&item)).await??.ok_or(ApiError::NotFound("item"))?;
    match state.access.grants.issue(&state.access, session.as_ref(), &id) {
        Ok((grant, expires_at)) => Ok(Json(GrantAnswer {
            stream_url: format!("/media/{grant}/stream"),
            thumbnail_url: format!("/media/{grant}/thumbnail"),
            expires_at,
        })
        .into_response()),
        Err(error) => Ok(session_failure(&error)),
    }
}

/// `GET /media/{grant}/stream`: the item of a live grant, as
/// `/api/v1/items/{id}/stream` serves it to the grant's session.
pub async fn grant_stream(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(grant): Path<String>,
) -> Result<Response, ApiError> {
    let grant = match state.access.grants.check(&state.access, &grant) {
        Ok(grant) => grant,
        Err((failure, reason)) => return Ok(unauthorized(failure, reason)),
    };
    let admin = grant.session.as_ref().is_none_or(|session| session.role == hearth_access::Role::Admin);
    let role = if admin { Role::Admin } else { Role::Member };
    let access = Arc::clone(&state.access);
    let grant_id = grant.id.clone();
    let response = crate::api::items::stream(State(state), Extension(role), method, headers, Path(grant.item_id)).await?;

    // A long response (a film loaded in one request) must stop too when the
    // device or user is revoked, not only the next request: each chunk
    // checks the grant first, and a revoked grant aborts the body.
    let (parts, body) = response.into_parts();
    let checked = body.into_data_stream().map(move |chunk| match access.grants.check(&access, &grant_id) {
        Ok(_) => chunk.map_err(std::io::Error::other),
        Err((_, reason)) => {
            tracing::info!(reason, "media stream stopped mid-response");
            Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, reason))
        }
    });
    Ok(Response::from_parts(parts, axum::body::Body::from_stream(checked)))
}

/// `GET /media/{grant}/thumbnail`: the thumbnail of a live grant's item.
pub async fn grant_thumbnail(State(state): State<AppState>, Path(grant): Path<String>) -> Result<Response, ApiError> {
    let grant = match state.access.grants.check(&state.access, &grant) {
        Ok(grant) => grant,
        Err((failure, reason)) => return Ok(unauthorized(failure, reason)),
    };
    crate::api::items::thumbnail(State(state), Path(grant.item_id)).await
}

/// `GET /api/v1/admin/devices`: every paired device.
pub async fn devices(State(state): State<AppState>) -> Result<Json<Vec<DeviceView>>, ApiError> {
    let access = Arc::clone(&state.access);
    let devices = tokio::task::spawn_blocking(move || -> Result<Vec<DeviceView>, hearth_access::UserError> {
        let mut all = Vec::new();
        for user in access.users.users()? {
            all.extend(access.users.devices_of(user.id)?.iter().map(DeviceView::from));
        }
        Ok(all)
    })
    .await?
    .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    Ok(Json(devices))
}

/// `POST /api/v1/admin/devices/{id}/revoke`: revokes a device; its
/// sessions and media grants stop at their next request.
pub async fn revoke_device(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = parse_row_id(&id, "device")?;
    let access = Arc::clone(&state.access);
    tokio::task::spawn_blocking(move || access.revoke_device(DeviceId(id)))
        .await?
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    tracing::warn!(device = id, "device revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/admin/devices/{id}/rename`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RenameBody {
    name: String,
}

/// `POST /api/v1/admin/devices/{id}/rename`: gives a device a new name.
pub async fn rename_device(State(state): State<AppState>, Path(id): Path<String>, Json(body): Json<RenameBody>) -> Result<StatusCode, ApiError> {
    let id = parse_row_id(&id, "device")?;
    let access = Arc::clone(&state.access);
    tokio::task::spawn_blocking(move || access.users.rename_device(DeviceId(id), body.name.trim()))
        .await?
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/admin/users`: every user.
pub async fn users(State(state): State<AppState>) -> Result<Json<Vec<UserView>>, ApiError> {
    let access = Arc::clone(&state.access);
    let users = tokio::task::spawn_blocking(move || access.users.users())
        .await?
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

/// `POST /api/v1/admin/users/{id}/disable`: disables a user and ends
/// their sessions.
pub async fn disable_user(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = parse_row_id(&id, "user")?;
    let access = Arc::clone(&state.access);
    tokio::task::spawn_blocking(move || access.users.disable_user(UserId(id)))
        .await?
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    tracing::warn!(user = id, "user disabled");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/admin/users/{id}/enable`: lets a disabled user sign in again.
pub async fn enable_user(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = parse_row_id(&id, "user")?;
    let access = Arc::clone(&state.access);
    tokio::task::spawn_blocking(move || access.users.enable_user(UserId(id)))
        .await?
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    tracing::warn!(user = id, "user enabled");
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/admin/users/{id}/role`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    role: String,
}

/// `POST /api/v1/admin/users/{id}/role`: gives a user another role. The
/// user's sessions end, so the new role's limits apply from the next
/// sign-in; the last enabled admin cannot be demoted.
pub async fn set_role(State(state): State<AppState>, Path(id): Path<String>, Json(body): Json<RoleBody>) -> Result<StatusCode, ApiError> {
    let id = parse_row_id(&id, "user")?;
    let role: hearth_access::Role = body
        .role
        .parse()
        .map_err(|error: hearth_access::UnknownRole| ApiError::BadRequest(error.to_string()))?;
    let access = Arc::clone(&state.access);
    tokio::task::spawn_blocking(move || access.users.set_role(UserId(id), role))
        .await?
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    tracing::warn!(user = id, role = role.as_str(), "user role changed by an admin");
    Ok(StatusCode::NO_CONTENT)
}

/// Filters of `GET /api/v1/admin/audit`.
#[derive(Deserialize)]
pub struct AuditParams {
    subject: Option<String>,
    decision: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    before: Option<i64>,
    limit: Option<u32>,
}

/// One audit record as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AuditView {
    id: i64,
    time: i64,
    subject: Option<String>,
    device: Option<String>,
    action: String,
    resource: String,
    allowed: bool,
    reason: String,
    source: String,
}

/// `GET /api/v1/admin/audit`: decisions, newest first, with paging.
pub async fn audit(State(state): State<AppState>, Query(params): Query<AuditParams>) -> Result<Response, ApiError> {
    let allowed = match params.decision.as_deref() {
        None => None,
        Some("allow") => Some(true),
        Some("deny") => Some(false),
        Some(other) => return Err(ApiError::BadRequest(format!("decision must be allow or deny, not {other:?}"))),
    };
    let query = AuditQuery {
        subject: params.subject,
        allowed,
        since: params.since,
        until: params.until,
        before_id: params.before,
        limit: params.limit.unwrap_or(100),
    };
    let access = Arc::clone(&state.access);
    let page = tokio::task::spawn_blocking(move || access.users.audit().query(&query))
        .await?
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    let records: Vec<AuditView> = page
        .records
        .into_iter()
        .map(|record| AuditView {
            id: record.id,
            time: record.event.time,
            subject: record.event.subject,
            device: record.event.device,
            action: record.event.action,
            resource: record.event.resource,
            allowed: record.event.allowed,
            reason: record.event.reason,
            source: record.event.source.to_string(),
        })
        .collect();
    Ok(Json(AuditPageView { records, next_before: page.next_before_id }).into_response())
}

/// One page of the audit log, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AuditPageView {
    records: Vec<AuditView>,
    /// Pass as `before` for the next, older page; absent on the last page.
    next_before: Option<i64>,
}

fn parse_row_id(text: &str, what: &'static str) -> Result<i64, ApiError> {
    text.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| ApiError::BadRequest(format!("{what} id must be a positive number, not {text:?}")))
}
