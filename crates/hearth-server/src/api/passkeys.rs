//! Passkey (WebAuthn) registration and sign-in. docs/access.md, "Passkeys",
//! is the protocol.
//!
//! A passkey signs in only on a paired device of its own user: both sign-in
//! steps carry the device's request proof like the password sign-in, and
//! the assertion's credential must belong to the device's user. The
//! relying party id is the host name the browser used, so a passkey works
//! under the name it was registered with and no other.
//!
//! The WebAuthn library's types stay in this file; `hearth_access` stores
//! the credential as opaque text ([`hearth_access::passkeys`]).

#![allow(
    clippy::result_large_err,
    reason = "helpers return the finished HTTP error response; it is built once per failed request"
)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_access::users::{Device, DeviceId, UserId};
use hearth_access::{AuditEvent, Clock, Did, NewPasskey, PasskeyError, PasskeyId, PasskeyStore, Session, StoredPasskey, User};
use hearth_store::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid,
    Webauthn, WebauthnBuilder,
};

use crate::access::{AuthFailure, DEVICE_HEADER, ProofInput, forbidden, session_failure, source_address, unauthorized};
use crate::api::account::{DeviceSummary, LoginAnswer, UserSummary};
use crate::connection::TlsBinding;
use crate::error::ApiError;
use crate::state::AppState;

/// How long a registration or sign-in challenge stays valid, in seconds.
pub const CHALLENGE_LIFETIME: i64 = 120;
/// Most challenges kept at once per kind; the oldest go first. Only paired
/// devices can start one, one each.
const MAX_PENDING: usize = 1024;
/// Largest sign-in body: a WebAuthn assertion is well under 4 KiB.
const MAX_ASSERTION_BODY: usize = 16 * 1024;
/// Name shown by authenticators.
const RP_NAME: &str = "Hearth";

/// The passkeys table and the challenges in flight.
pub struct Passkeys {
    store: PasskeyStore,
    registrations: Pending<Registration>,
    sign_ins: Pending<SignIn>,
}

impl Passkeys {
    /// Opens the passkeys table in `store`.
    ///
    /// # Errors
    ///
    /// Returns [`PasskeyError::Store`] when the migration fails.
    pub fn open(store: Arc<Store>, clock: Arc<dyn Clock>) -> Result<Self, PasskeyError> {
        Ok(Self { store: PasskeyStore::open(store, clock)?, registrations: Pending::default(), sign_ins: Pending::default() })
    }

    /// The passkeys table.
    pub fn store(&self) -> &PasskeyStore {
        &self.store
    }
}

/// A registration in flight, for the device that started it.
struct Registration {
    state: PasskeyRegistration,
    party: RelyingParty,
    user_id: UserId,
}

/// A sign-in in flight, for the device that started it.
struct SignIn {
    state: PasskeyAuthentication,
    party: RelyingParty,
    user_id: UserId,
}

/// Body of `POST /api/v1/passkeys/register/finish`.
#[derive(Deserialize)]
pub struct RegisterFinish {
    name: String,
    credential: RegisterPublicKeyCredential,
}

/// A passkey as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PasskeyView {
    id: i64,
    name: String,
    credential_id: String,
    created_at: i64,
    last_used: Option<i64>,
    counter: u32,
}

impl From<&StoredPasskey> for PasskeyView {
    fn from(passkey: &StoredPasskey) -> Self {
        Self {
            id: passkey.id.0,
            name: passkey.name.clone(),
            credential_id: URL_SAFE_NO_PAD.encode(&passkey.credential_id),
            created_at: passkey.created_at,
            last_used: passkey.last_used,
            counter: passkey.counter,
        }
    }
}

/// `POST /api/v1/passkeys/register/start` (session): creation options for
/// a new passkey of the session's user.
pub async fn register_start(
    State(state): State<AppState>,
    session: Option<Extension<Session>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(Extension(session)) = session else {
        return Ok(forbidden("passkeys are registered in a signed-in device session"));
    };
    let party = match RelyingParty::from_request(&uri, &headers) {
        Ok(party) => party,
        Err(error) => return Err(ApiError::BadRequest(error)),
    };

    let access = Arc::clone(&state.access);
    tokio::task::spawn_blocking(move || {
        let user = access.users.user(session.user_id).map_err(internal)?.ok_or(ApiError::NotFound("user"))?;
        let existing = access.passkeys.store.list(user.id).map_err(internal)?;
        let exclude = existing.into_iter().map(|passkey| passkey.credential_id).collect();

        let webauthn = party.webauthn()?;
        let (options, registration) = webauthn
            .start_passkey_registration(user_handle(&user.did), &user.name, &user.name, Some(exclude))
            .map_err(|error| internal(format!("failed to start a passkey registration: {error}")))?;
        let pending = Registration { state: registration, party, user_id: user.id };
        access.passkeys.registrations.insert(session.device_id, pending, access.clock.now());
        Ok(Json(options).into_response())
    })
    .await?
}

/// `POST /api/v1/passkeys/register/finish` (session): checks the new
/// credential against the challenge this device started and stores it.
pub async fn register_finish(
    State(state): State<AppState>,
    session: Option<Extension<Session>>,
    Json(body): Json<RegisterFinish>,
) -> Result<Response, ApiError> {
    let Some(Extension(session)) = session else {
        return Ok(forbidden("passkeys are registered in a signed-in device session"));
    };

    let access = Arc::clone(&state.access);
    tokio::task::spawn_blocking(move || {
        let registration = access
            .passkeys
            .registrations
            .take(session.device_id, access.clock.now())
            .map_err(|error| ApiError::BadRequest(format!("{error}; start the registration again")))?;
        if registration.user_id != session.user_id {
            return Err(ApiError::BadRequest("the registration was started by another user; start again".into()));
        }

        let webauthn = registration.party.webauthn()?;
        let passkey = webauthn
            .finish_passkey_registration(&body.credential, &registration.state)
            .map_err(|error| ApiError::BadRequest(format!("passkey registration rejected: {error}")))?;
        let serialized = serde_json::to_string(&passkey).map_err(|error| internal(format!("failed to serialise a passkey: {error}")))?;
        let new = NewPasskey {
            user_id: session.user_id,
            credential_id: passkey.cred_id().as_slice(),
            passkey: &serialized,
            name: body.name.trim(),
            counter: 0,
        };
        let stored = access.passkeys.store.add(&new).map_err(client_or_internal)?;
        tracing::info!(user = session.user_id.0, passkey = stored.id.0, "passkey added");
        Ok((StatusCode::CREATED, Json(PasskeyView::from(&stored))).into_response())
    })
    .await?
}

/// `GET /api/v1/passkeys` (session): the session user's passkeys.
pub async fn list(State(state): State<AppState>, session: Option<Extension<Session>>) -> Result<Response, ApiError> {
    let Some(Extension(session)) = session else {
        return Ok(forbidden("passkeys are listed in a signed-in device session"));
    };
    let access = Arc::clone(&state.access);
    let passkeys = tokio::task::spawn_blocking(move || access.passkeys.store.list(session.user_id)).await?.map_err(internal)?;
    Ok(Json(passkeys.iter().map(PasskeyView::from).collect::<Vec<_>>()).into_response())
}

/// `DELETE /api/v1/passkeys/{id}` (session): deletes one of the session
/// user's passkeys.
pub async fn delete(
    State(state): State<AppState>,
    session: Option<Extension<Session>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(Extension(session)) = session else {
        return Ok(forbidden("passkeys are deleted in a signed-in device session"));
    };
    let id = id
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::BadRequest(format!("passkey id must be a positive number, not {id:?}")))?;
    let access = Arc::clone(&state.access);
    tokio::task::spawn_blocking(move || access.passkeys.store.delete(session.user_id, PasskeyId(id)))
        .await?
        .map_err(client_or_internal)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/passkeys/login/start` (public, device proof with an empty
/// session id and `Hearth-Device`): request options for the passkeys of
/// the device's user.
pub async fn login_start(State(state): State<AppState>, request: Request) -> Response {
    if let Err(response) = require_json(request.headers()) {
        return response;
    }
    let source = source_address(&request);
    let binding = request.extensions().get::<TlsBinding>().copied();
    let (parts, _body) = request.into_parts();
    let party = match RelyingParty::from_request(&parts.uri, &parts.headers) {
        Ok(party) => party,
        Err(error) => return ApiError::BadRequest(error).into_response(),
    };

    let access = Arc::clone(&state.access);
    let result = tokio::task::spawn_blocking(move || -> Result<Response, Response> {
        let device = signing_device(&access, &parts, binding)?;
        let user = usable_user(&access, &device)?;
        let passkeys: Vec<Passkey> = access
            .passkeys
            .store
            .list(user.id)
            .map_err(|error| internal(error).into_response())?
            .iter()
            .filter_map(parse_passkey)
            .collect();
        if passkeys.is_empty() {
            audit(&access, &user_or_none(Some(&user)), &device, source, false, "passkey sign-in: the user has no passkey");
            return Err(ApiError::BadRequest(format!(
                "{} has no passkey; sign in with the password and add one",
                user.name
            ))
            .into_response());
        }

        let webauthn = party.webauthn().map_err(IntoResponse::into_response)?;
        let (options, authentication) = webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|error| internal(format!("failed to start a passkey sign-in: {error}")).into_response())?;
        let pending = SignIn { state: authentication, party, user_id: user.id };
        access.passkeys.sign_ins.insert(device.id, pending, access.clock.now());
        Ok(Json(options).into_response())
    })
    .await;

    match result {
        Ok(Ok(response) | Err(response)) => response,
        Err(error) => ApiError::Join(error).into_response(),
    }
}

/// `POST /api/v1/passkeys/login/finish` (public, device proof as for
/// `login/start`): checks the assertion against the challenge this device
/// started and opens a session, answering as `POST /api/v1/login` does.
///
/// Failures are not throttled like passwords, because an assertion cannot
/// be guessed; each one is audited and logged.
pub async fn login_finish(State(state): State<AppState>, request: Request) -> Response {
    if let Err(response) = require_json(request.headers()) {
        return response;
    }
    let source = source_address(&request);
    let binding = request.extensions().get::<TlsBinding>().copied();
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_ASSERTION_BODY).await {
        Ok(body) => body,
        Err(_) => return ApiError::BadRequest(format!("passkey sign-in body is larger than {MAX_ASSERTION_BODY} bytes")).into_response(),
    };
    let credential = match serde_json::from_slice::<PublicKeyCredential>(&body) {
        Ok(credential) => credential,
        Err(error) => return ApiError::BadRequest(format!("passkey sign-in body is not a WebAuthn assertion: {error}")).into_response(),
    };

    let access = Arc::clone(&state.access);
    let result = tokio::task::spawn_blocking(move || -> Result<LoginAnswer, Response> {
        let device = signing_device(&access, &parts, binding)?;
        let reject = |user: Option<&User>, reason: &str| {
            audit(&access, &user_or_none(user), &device, source, false, &format!("passkey rejected: {reason}"));
            tracing::warn!(device = device.id.0, source = %source, reason, "passkey sign-in failed");
            unauthorized(AuthFailure::Invalid, &format!("passkey sign-in failed: {reason}"))
        };

        // Taken first, so that a challenge answers one attempt, good or bad.
        let sign_in = match access.passkeys.sign_ins.take(device.id, access.clock.now()) {
            Ok(sign_in) => sign_in,
            Err(error) => return Err(reject(None, &error.to_string())),
        };
        let stored = match access.passkeys.store.by_credential_id(&credential.raw_id) {
            Ok(Some(stored)) => stored,
            Ok(None) => return Err(reject(None, "unknown passkey")),
            Err(error) => return Err(internal(error).into_response()),
        };
        let user = usable_user(&access, &device)?;
        if stored.user_id != device.user_id || sign_in.user_id != device.user_id {
            return Err(reject(Some(&user), "the passkey belongs to another user than this device"));
        }
        let Some(mut passkey) = parse_passkey(&stored) else {
            return Err(internal(format!("stored passkey {} is unreadable", stored.id.0)).into_response());
        };

        let webauthn = sign_in.party.webauthn().map_err(IntoResponse::into_response)?;
        let result = match webauthn.finish_passkey_authentication(&credential, &sign_in.state) {
            Ok(result) => result,
            Err(error) => return Err(reject(Some(&user), &format!("assertion not verified ({error})"))),
        };
        passkey.update_credential(&result);
        let serialized = serde_json::to_string(&passkey).map_err(|error| internal(format!("failed to serialise a passkey: {error}")).into_response())?;
        access.passkeys.store.record_use(stored.id, &serialized, result.counter()).map_err(|error| client_or_internal(error).into_response())?;

        let session = access.sessions.open_verified(&user, &device).map_err(|error| session_failure(&error))?;
        let reason = format!("passkey {} verified", stored.id.0);
        if !audit(&access, &user_or_none(Some(&user)), &device, source, true, &reason) {
            access.sessions.close(&session.id);
            return Err(forbidden("the sign-in could not be recorded"));
        }
        if let Err(error) = access.users.touch_device(device.id) {
            tracing::warn!(device = device.id.0, error = %error, "failed to record device activity");
        }
        tracing::info!(user = %user.name, device = device.id.0, passkey = stored.id.0, "signed in with a passkey");
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

/// The relying party of one request: its id is the host name the browser
/// used, its origin `https://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RelyingParty {
    id: String,
    origin: Url,
}

impl RelyingParty {
    /// Reads the host from the request target (HTTP/2 `:authority`) or
    /// the `Host` header (HTTP/1.1). Fails for IP addresses, which WebAuthn
    /// does not accept as relying party ids.
    fn from_request(uri: &Uri, headers: &HeaderMap) -> Result<Self, String> {
        let authority = match uri.authority() {
            Some(authority) => authority.as_str().to_owned(),
            None => headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
                .ok_or("passkeys need the Host header")?,
        };
        if authority.contains(['@', '/', '?', '#']) {
            return Err(format!("invalid Host {authority:?}: expected HOST or HOST:PORT"));
        }
        let origin = Url::parse(&format!("https://{authority}"))
            .map_err(|error| format!("invalid Host {authority:?}: {error}"))?;
        let Some(domain) = origin.domain() else {
            return Err(format!(
                "passkeys need the server's host name, not the address {authority:?}: open Hearth by its name, such as https://hearth.local:PORT"
            ));
        };
        Ok(Self { id: domain.trim_end_matches('.').to_owned(), origin })
    }

    fn webauthn(&self) -> Result<Webauthn, ApiError> {
        WebauthnBuilder::new(&self.id, &self.origin)
            .and_then(|builder| builder.rp_name(RP_NAME).timeout(Duration::from_secs(CHALLENGE_LIFETIME as u64)).build())
            .map_err(|error| ApiError::BadRequest(format!("host {} cannot be a passkey relying party: {error}", self.id)))
    }
}

/// Challenges in flight, one per device: a new one replaces the device's
/// earlier one, each is taken once, and each expires after
/// [`CHALLENGE_LIFETIME`].
struct Pending<T> {
    entries: Mutex<HashMap<DeviceId, (i64, T)>>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self { entries: Mutex::new(HashMap::new()) }
    }
}

impl<T> Pending<T> {
    /// Stores `value` for `device`, dropping expired entries and, at
    /// [`MAX_PENDING`], the one that expires first.
    fn insert(&self, device: DeviceId, value: T, now: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|_, (expires_at, _)| *expires_at > now);
        if entries.len() >= MAX_PENDING
            && !entries.contains_key(&device)
            && let Some(oldest) = entries.iter().min_by_key(|(_, (expires_at, _))| *expires_at).map(|(id, _)| *id)
        {
            entries.remove(&oldest);
        }
        entries.insert(device, (now + CHALLENGE_LIFETIME, value));
    }

    /// Removes and returns the challenge of `device`.
    fn take(&self, device: DeviceId, now: i64) -> Result<T, PendingError> {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (expires_at, value) = entries.remove(&device).ok_or(PendingError::Missing)?;
        if expires_at <= now {
            return Err(PendingError::Expired);
        }
        Ok(value)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

/// Why no challenge was found for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum PendingError {
    /// None was started, or it was already used.
    #[error("no passkey challenge is pending for this device (never started, or already used)")]
    Missing,
    /// It is older than [`CHALLENGE_LIFETIME`].
    #[error("the passkey challenge expired after 120 s")]
    Expired,
}

/// Checks the sign-in proof of the device named by `Hearth-Device`, as
/// `POST /api/v1/login` does, and returns the device.
fn signing_device(access: &crate::access::Access, parts: &Parts, binding: Option<TlsBinding>) -> Result<Device, Response> {
    let input = ProofInput::read(&parts.method, &parts.uri, &parts.headers, binding)?;
    let Some(did) = parts.headers.get(DEVICE_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(unauthorized(AuthFailure::Missing, "passkey sign-in needs the Hearth-Device header with the device's did:key"));
    };
    let Ok(did) = Did::parse(did) else {
        return Err(unauthorized(AuthFailure::Invalid, "the Hearth-Device header is not a did:key"));
    };
    let device = match access.users.device_by_did(&did) {
        Ok(Some(device)) => device,
        Ok(None) => return Err(unauthorized(AuthFailure::Invalid, "this device is not paired; pair it first (see docs/access.md)")),
        Err(error) => return Err(internal(error).into_response()),
    };
    if let Err(error) = access.sessions.verify_device_proof(&device, &input.binding(""), &input.proof) {
        tracing::info!(device = device.id.0, error = %error, "passkey sign-in proof rejected");
        return Err(session_failure(&error));
    }
    Ok(device)
}

/// Returns the device's user, or the 401 for a missing or disabled one.
fn usable_user(access: &crate::access::Access, device: &Device) -> Result<User, Response> {
    match access.users.user(device.user_id) {
        Ok(Some(user)) if !user.disabled => Ok(user),
        Ok(_) => Err(unauthorized(AuthFailure::Revoked, "the account of this device is disabled")),
        Err(error) => Err(internal(error).into_response()),
    }
}

/// Writes a passkey sign-in decision to the audit table; returns whether it was recorded.
fn audit(
    access: &crate::access::Access,
    user: &(Option<String>, String),
    device: &Device,
    source: IpAddr,
    allowed: bool,
    reason: &str,
) -> bool {
    let (subject, resource) = user.clone();
    let event = AuditEvent {
        time: access.clock.now(),
        subject,
        device: Some(device.key.did().to_string()),
        action: "login".to_owned(),
        resource,
        allowed,
        reason: reason.to_owned(),
        source,
    };
    match access.users.audit().record(&event) {
        Ok(_) => true,
        Err(error) => {
            tracing::error!(error = %error, "failed to record a passkey sign-in");
            false
        }
    }
}

/// The audit subject and resource for `user`, as password sign-ins write them.
fn user_or_none(user: Option<&User>) -> (Option<String>, String) {
    match user {
        Some(user) => (Some(user.did.to_string()), format!("user:{}", user.name)),
        None => (None, "user:(unknown)".to_owned()),
    }
}

/// Reads a stored credential; an unreadable one is logged and skipped.
fn parse_passkey(stored: &StoredPasskey) -> Option<Passkey> {
    match serde_json::from_str(&stored.passkey) {
        Ok(passkey) => Some(passkey),
        Err(error) => {
            tracing::error!(passkey = stored.id.0, error = %error, "stored passkey is unreadable; skipping it");
            None
        }
    }
}

/// Derives the WebAuthn user handle of a user: 16 bytes of SHA-256 over the
/// user's did:key, stable for the user and meaningless to anyone else.
fn user_handle(did: &Did) -> Uuid {
    let digest = Sha256::new().chain_update(b"hearth/passkey-user/v1\n").chain_update(did.as_str()).finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// Rejects a body that is not declared as JSON, before any other check.
fn require_json(headers: &HeaderMap) -> Result<(), Response> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if json {
        return Ok(());
    }
    Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(serde_json::json!({ "error": "send Content-Type: application/json" }))).into_response())
}

/// Maps a table error to 400 or 404 where the client caused it, else 500.
fn client_or_internal(error: PasskeyError) -> ApiError {
    match error {
        PasskeyError::NotFound { .. } => ApiError::NotFound("passkey"),
        PasskeyError::InvalidName { .. }
        | PasskeyError::InvalidCredentialId { .. }
        | PasskeyError::CredentialTaken
        | PasskeyError::TooMany { .. } => ApiError::BadRequest(error.to_string()),
        other => internal(other),
    }
}

/// Wraps a server-side failure; the cause goes to the log, not to the client.
// NOTE: `ApiError` has no general 500 variant, so this borrows `Rotation`
// as `account.rs` does; the log line then starts "key rotation failure".
fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::Rotation(format!("passkeys: {error}"))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn challenge_is_taken_once() {
        let pending = Pending::default();
        pending.insert(DeviceId(1), "challenge", 1000);

        assert_eq!(pending.take(DeviceId(1), 1001), Ok("challenge"));
        assert_eq!(pending.take(DeviceId(1), 1002), Err(PendingError::Missing));
    }

    #[test]
    fn challenge_expires_after_two_minutes() {
        let pending = Pending::default();
        pending.insert(DeviceId(1), "early", 1000);
        pending.insert(DeviceId(2), "late", 1000);

        assert_eq!(pending.take(DeviceId(1), 1000 + CHALLENGE_LIFETIME - 1), Ok("early"));
        assert_eq!(pending.take(DeviceId(2), 1000 + CHALLENGE_LIFETIME), Err(PendingError::Expired));
    }

    #[test]
    fn new_challenge_replaces_the_devices_earlier_one() {
        let pending = Pending::default();
        pending.insert(DeviceId(1), "first", 1000);
        pending.insert(DeviceId(1), "second", 1001);

        assert_eq!(pending.len(), 1);
        assert_eq!(pending.take(DeviceId(1), 1002), Ok("second"));
    }

    #[test]
    fn challenges_are_bounded_and_the_oldest_goes() {
        let pending = Pending::default();
        pending.insert(DeviceId(0), 0, 1000);
        for device in 1..MAX_PENDING as i64 {
            pending.insert(DeviceId(device), device, 1001);
        }

        pending.insert(DeviceId(-1), -1, 1002);

        assert_eq!(pending.len(), MAX_PENDING);
        assert_eq!(pending.take(DeviceId(0), 1002), Err(PendingError::Missing));
        assert_eq!(pending.take(DeviceId(1), 1002), Ok(1));
        assert_eq!(pending.take(DeviceId(-1), 1002), Ok(-1));
    }

    fn host(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn relying_party_is_the_host_the_browser_used() {
        let uri: Uri = "/api/v1/passkeys/login/start".parse().unwrap();

        let party = RelyingParty::from_request(&uri, &host("Hearth.Local:8443")).unwrap();

        assert_eq!(party.id, "hearth.local");
        assert_eq!(party.origin.as_str(), "https://hearth.local:8443/");
        assert!(party.webauthn().is_ok());
    }

    #[test]
    fn http2_authority_wins_over_the_host_header() {
        let uri: Uri = "https://localhost:8443/api/v1/passkeys/login/start".parse().unwrap();

        let party = RelyingParty::from_request(&uri, &host("other.example:1")).unwrap();

        assert_eq!(party.id, "localhost");
        assert_eq!(party.origin.port(), Some(8443));
    }

    #[test]
    fn ip_addresses_and_odd_hosts_are_not_relying_parties() {
        let uri: Uri = "/".parse().unwrap();

        for value in ["127.0.0.1:8443", "[::1]:8443", "user@hearth.local", "hearth.local/path"] {
            let result = RelyingParty::from_request(&uri, &host(value));
            assert!(result.is_err(), "{value} accepted: {result:?}");
        }
        assert!(RelyingParty::from_request(&uri, &HeaderMap::new()).is_err());
    }

    #[test]
    fn user_handle_is_stable_per_user() {
        let did = |seed: u8| Did::from_p256(p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap().verifying_key());
        let (alice, bob) = (did(1), did(2));

        assert_eq!(user_handle(&alice), user_handle(&alice));
        assert_ne!(user_handle(&alice), user_handle(&bob));
    }
}
