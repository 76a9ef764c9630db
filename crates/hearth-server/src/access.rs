//! Zero-trust request authentication: every request outside the short
//! public list carries a session id and a proof that the session's device
//! signed it over this TLS connection (`hearth_access::proof`), and the
//! household policy must allow the route's action. docs/access.md is the
//! wire protocol.
//!
//! The middleware [`authenticate`] runs before every handler. It returns
//! 401 without a valid proof, 403 when the policy denies, and records the
//! caller's [`Session`] and legacy [`Role`] in the request extensions. It
//! also sends the connection's `Hearth-Binding` on every response, because
//! browsers cannot compute the TLS exporter value they must sign.

#![allow(
    clippy::result_large_err,
    reason = "helpers return the finished HTTP error response; it is built once per failed request"
)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hearth_access::pairing::{PairingError, PairingService};
use hearth_access::proof::RequestBinding;
use hearth_access::session::SessionLimits;
use hearth_access::users::DeviceId;
use hearth_access::{
    Action, AuditEvent, Clock, ContentRating, PasswordHasher, Policy, PolicyEngine, ProofVerifier, RequestContext, RequestProof, RevocationRegistry,
    Session, SessionError, SessionManager, SystemClock, UserStore,
};
use hearth_store::Store;

use crate::admin_socket::HostAdmin;
use crate::auth::Role;
use crate::config::AccessSection;
use crate::links::invites::{AcceptedInvite, INVITE_HEADER};
use crate::connection::{ConnectionInfo, TlsBinding};
use crate::routes::{Guard, guard_of};
use crate::state::AppState;

/// Header that carries the connection's TLS exporter value, both ways.
pub const BINDING_HEADER: &str = "hearth-binding";
/// Request header with the session id.
pub const SESSION_HEADER: &str = "hearth-session";
/// Request header with the device's did:key, at sign-in.
pub const DEVICE_HEADER: &str = "hearth-device";
/// Request header with the request proof.
pub const PROOF_HEADER: &str = "hearth-proof";

/// Maximum lifetime of a media grant in seconds.
pub const GRANT_LIFETIME: i64 = 4 * 3600;
/// Most live grants kept; the oldest go first.
const MAX_GRANTS: usize = 50_000;

/// Errors from opening the access tables.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The users, devices or audit tables failed.
    #[error(transparent)]
    Users(#[from] hearth_access::UserError),
    /// The pairing offers table failed.
    #[error(transparent)]
    Pairing(#[from] PairingError),
    /// The passkeys table failed.
    #[error(transparent)]
    Passkeys(#[from] hearth_access::PasskeyError),
}

/// The household's users, sessions, policy and media grants.
pub struct Access {
    /// Users, devices, the login throttle and the audit table.
    pub users: Arc<UserStore>,
    /// Pairing offers and pairings in progress.
    pub pairing: PairingService,
    /// Open sessions and the request-proof verifier.
    pub sessions: SessionManager,
    /// Deny-by-default policy; records every decision.
    pub policy: PolicyEngine,
    /// Revocation generations shared by users and sessions.
    pub revocations: Arc<RevocationRegistry>,
    /// Grants for media elements that cannot send headers.
    pub grants: MediaGrants,
    /// The clock every check uses.
    pub clock: Arc<dyn Clock>,
    /// Passkeys and the WebAuthn challenges in flight.
    pub passkeys: crate::api::passkeys::Passkeys,
    /// The connection each session used last, for the security center.
    pub activity: SessionActivity,
}

/// The latest connection of each session: its address and TLS key
/// exchange, and when it was used.
#[derive(Default)]
pub struct SessionActivity {
    latest: Mutex<HashMap<String, SessionSeen>>,
}

/// One session's latest request.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SessionSeen {
    /// Unix seconds of the request.
    pub last_seen: i64,
    /// The client's address.
    #[schema(value_type = Option<String>, example = "192.168.1.20:50112")]
    pub peer: Option<std::net::SocketAddr>,
    /// IANA name of the connection's key-exchange group.
    pub key_exchange_group: Option<String>,
    /// Whether that key exchange resists a quantum attacker.
    pub post_quantum: bool,
}

impl SessionActivity {
    /// Records a verified request of session `id` at `now` over `connection`.
    pub fn record(&self, id: &str, now: i64, connection: Option<&ConnectionInfo>) {
        /// Entries beyond which those older than the longest session are dropped.
        const CROWDED: usize = 4096;
        /// The longest a session lives, in seconds (12 h).
        const SESSION_MAX_SECS: i64 = 12 * 3600;
        let seen = SessionSeen {
            last_seen: now,
            peer: connection.map(|info| info.peer),
            key_exchange_group: connection.and_then(|info| info.key_exchange_group.clone()),
            post_quantum: connection.is_some_and(|info| info.post_quantum),
        };
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest.insert(id.to_owned(), seen);
        // The list only prunes when an admin opens it, so ended sessions are
        // also dropped here once the map grows.
        if latest.len() > CROWDED {
            latest.retain(|_, seen| now - seen.last_seen < SESSION_MAX_SECS);
        }
    }

    /// Returns the latest request of session `id`.
    pub fn get(&self, id: &str) -> Option<SessionSeen> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Forgets sessions that are not in `open`.
    pub fn retain(&self, open: &[String]) {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).retain(|id, _| open.contains(id));
    }
}

impl Access {
    /// Opens the access tables in `store` with the household default policy
    /// in the host's current UTC offset.
    /// `settings` is the `[access]` table of the configuration file.
    pub fn open(store: Arc<Store>, hasher: PasswordHasher, settings: &AccessSection) -> Result<Arc<Self>, AccessError> {
        let utc_offset_minutes = settings.utc_offset_minutes;
        let mut limits = SessionLimits::default();
        match settings.session_idle_seconds {
            Some(idle) if (5..=3600).contains(&idle) => limits.ttl = idle,
            Some(idle) => tracing::warn!(idle, default = limits.ttl, "[access] session_idle_seconds is outside 5..=3600; using the default"),
            None => {}
        }
        let offset = match utc_offset_minutes {
            Some(offset) if (-14 * 60..=14 * 60).contains(&offset) => offset,
            Some(offset) => {
                tracing::warn!(offset, "[access] utc_offset_minutes is outside -840..=840; using the host's time zone");
                local_utc_offset_minutes()
            }
            None => local_utc_offset_minutes(),
        };
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let revocations = Arc::new(RevocationRegistry::new());
        let users = Arc::new(UserStore::open(Arc::clone(&store), hasher, Arc::clone(&clock), Arc::clone(&revocations))?);
        let passkeys = crate::api::passkeys::Passkeys::open(Arc::clone(&store), Arc::clone(&clock))?;
        let pairing = PairingService::open(store, Arc::clone(&users), Arc::clone(&clock))?;
        let policy = PolicyEngine::new(Policy::household_default(offset), users.audit().clone(), Arc::clone(&clock));
        let sessions = SessionManager::new(
            Arc::clone(&clock),
            limits,
            ProofVerifier::new(Arc::clone(&clock)),
            Arc::clone(&revocations),
        );
        Ok(Arc::new(Self {
            users,
            pairing,
            sessions,
            policy,
            revocations,
            grants: MediaGrants::default(),
            clock,
            passkeys,
            activity: SessionActivity::default(),
        }))
    }

    /// Revokes a device and ends its sessions and grants at once.
    pub fn revoke_device(&self, id: DeviceId) -> Result<(), hearth_access::UserError> {
        self.users.revoke_device(id)
    }
}

/// Returns the host's offset from UTC in minutes, for the policy's time windows.
fn local_utc_offset_minutes() -> i32 {
    let now = libc::time_t::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
        .unwrap_or(0);
    // SAFETY: `tm` is plain data; localtime_r writes it and reads only `now`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let result = unsafe { libc::localtime_r(&now, &mut tm) };
    if result.is_null() {
        tracing::warn!("failed to read the local time zone; the access policy uses UTC for its time windows");
        return 0;
    }
    i32::try_from(tm.tm_gmtoff / 60).unwrap_or(0)
}

/// One media grant: which item, and the session it belongs to.
#[derive(Clone)]
pub struct Grant {
    /// The grant's id, as it appears in the media URL.
    pub id: String,
    /// The item the grant opens.
    pub item_id: String,
    /// The session that asked for it, or `None` for a host command on the
    /// admin socket.
    pub session: Option<Session>,
    /// Revocation generations of the session's user and device at issue.
    generations: (u64, u64),
    /// Expiry in Unix seconds.
    pub expires_at: i64,
}

/// Short-lived capabilities for `<video src>` and `<img src>`: one item,
/// one session, at most [`GRANT_LIFETIME`]. A grant ends with its session
/// (sign-out, idle expiry) and when its user or device is revoked.
#[derive(Default)]
pub struct MediaGrants {
    grants: Mutex<HashMap<String, Grant>>,
}

impl MediaGrants {
    /// Issues a grant for `item_id` in `session` (`None`: a host command on
    /// the admin socket, such as a benchmark) and returns its id.
    pub fn issue(&self, access: &Access, session: Option<&Session>, item_id: &str) -> Result<(String, i64), SessionError> {
        let now = access.clock.now();
        let (generations, expires_at) = match session {
            Some(session) => (
                access.revocations.generations(session.user_id, session.device_id)?,
                (now + GRANT_LIFETIME).min(session.opened_at + SessionLimits::default().max_lifetime),
            ),
            None => ((0, 0), now + GRANT_LIFETIME),
        };
        let id = random_id();
        let mut grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        grants.retain(|_, grant| grant.expires_at > now);
        if grants.len() >= MAX_GRANTS
            && let Some(oldest) = grants.iter().min_by_key(|(_, grant)| grant.expires_at).map(|(id, _)| id.clone())
        {
            grants.remove(&oldest);
        }
        grants.insert(id.clone(), Grant { id: id.clone(), item_id: item_id.to_owned(), session: session.cloned(), generations, expires_at });
        Ok((id, expires_at))
    }

    /// Returns the live grant `id`, or why it is not usable. A grant whose
    /// user or device was revoked is dropped here.
    pub fn check(&self, access: &Access, id: &str) -> Result<Grant, (AuthFailure, &'static str)> {
        let now = access.clock.now();
        let mut grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        let Some(grant) = grants.get(id).cloned() else {
            return Err((AuthFailure::Expired, "unknown or expired media grant; ask for a new one"));
        };
        if grant.expires_at <= now {
            grants.remove(id);
            return Err((AuthFailure::Expired, "media grant expired; ask for a new one"));
        }
        let (user_generation, device_generation) = grant.generations;
        let revoked = grant.session.as_ref().is_some_and(|session| {
            access.revocations.check(session.user_id, session.device_id, user_generation, device_generation).is_err()
        });
        if revoked {
            grants.remove(id);
            return Err((AuthFailure::Revoked, "media grant revoked with its device or user"));
        }
        let ended = grant.session.as_ref().is_some_and(|session| !access.sessions.is_live(&session.id));
        if ended {
            grants.remove(id);
            return Err((AuthFailure::Expired, "media grant ended with its session; sign in again"));
        }
        Ok(grant)
    }
}

/// 32 random bytes as base64url, for session-bound capability ids.
fn random_id() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Reason a request was not authenticated, sent as the `error` parameter
/// of `WWW-Authenticate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No session or proof.
    Missing,
    /// Signed for another TLS connection.
    Binding,
    /// The proof or session id is not valid.
    Invalid,
    /// The session expired.
    Expired,
    /// The device or user was revoked.
    Revoked,
}

impl AuthFailure {
    fn code(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Binding => "binding",
            Self::Invalid => "invalid",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// Builds a 401 response with `WWW-Authenticate: HearthProof` and a JSON body.
pub fn unauthorized(failure: AuthFailure, message: &str) -> Response {
    let challenge = format!("HearthProof realm=\"hearth\", error=\"{}\"", failure.code());
    let mut response = (StatusCode::UNAUTHORIZED, Json(serde_json::json!({ "error": message }))).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Builds a 403 response naming the policy's reason.
pub fn forbidden(reason: &str) -> Response {
    (StatusCode::FORBIDDEN, Json(serde_json::json!({ "error": format!("forbidden: {reason}") }))).into_response()
}

/// Maps a session error to its 401 response.
pub fn session_failure(error: &SessionError) -> Response {
    let failure = match error {
        SessionError::Expired { .. } | SessionError::NotFound => AuthFailure::Expired,
        SessionError::Revoked { .. } | SessionError::UserDisabled => AuthFailure::Revoked,
        SessionError::DeviceNotUsable { reason } if reason.contains("revoked") => AuthFailure::Revoked,
        _ => AuthFailure::Invalid,
    };
    unauthorized(failure, &error.to_string())
}

/// The request facts a proof is checked against.
pub struct ProofInput {
    /// The connection's exporter value.
    pub binding: TlsBinding,
    /// The parsed `Hearth-Proof` header.
    pub proof: RequestProof,
    /// Method as received.
    pub method: String,
    /// Path and query as received.
    pub target: String,
}

impl ProofInput {
    /// Reads the binding, the proof header and the request line, or returns
    /// the 401 response for what is missing or malformed.
    pub fn read(method: &Method, uri: &axum::http::Uri, headers: &HeaderMap, binding: Option<TlsBinding>) -> Result<Self, Response> {
        let Some(binding) = binding else {
            return Err(unauthorized(AuthFailure::Invalid, "request proofs need a TLS 1.3 connection"));
        };
        if let Some(signed) = headers.get(BINDING_HEADER).and_then(|v| v.to_str().ok())
            && signed != binding.to_header_value()
        {
            return Err(unauthorized(
                AuthFailure::Binding,
                "the proof was signed for another TLS connection; sign again with this response's Hearth-Binding",
            ));
        }
        let Some(proof) = headers.get(PROOF_HEADER).and_then(|v| v.to_str().ok()) else {
            return Err(unauthorized(AuthFailure::Missing, "authentication required: sign in on a paired device (see docs/access.md)"));
        };
        let proof = RequestProof::from_header(proof).map_err(|error| unauthorized(AuthFailure::Invalid, &error.to_string()))?;
        let target = uri.path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_else(|| uri.path().to_owned());
        Ok(Self { binding, proof, method: method.as_str().to_owned(), target })
    }

    /// Returns the binding for a request in `session_id` (empty at sign-in).
    pub fn binding<'a>(&'a self, session_id: &'a str) -> RequestBinding<'a> {
        RequestBinding { method: &self.method, path_and_query: &self.target, exporter: &self.binding.0, session_id }
    }
}

/// Address of the peer, from the TLS connection (never from forwarded
/// headers).
pub fn source_address(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectionInfo>()
        .map(|info| info.peer.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Authenticates every request that the route table does not mark public
/// or grant-based, checks the route's action against the policy, and adds the
/// connection's `Hearth-Binding` to the response.
pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let binding = request.extensions().get::<TlsBinding>().copied();
    let mut response = check(state, request, next).await;
    if let Some(binding) = binding
        && let Ok(value) = HeaderValue::from_str(&binding.to_header_value())
    {
        response.headers_mut().insert(HeaderName::from_static(BINDING_HEADER), value);
    }
    response
}

async fn check(state: AppState, mut request: Request, next: Next) -> Response {
    let template = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let mut guard = template.as_deref().map_or(Guard::Session(None), |path| guard_of(request.method(), path));
    if matches!(guard, Guard::Public | Guard::Grant) {
        return next.run(request).await;
    }
    if guard == Guard::LinkInvite {
        if let Some(invite) = request.headers().get(INVITE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned) {
            let open = state.links.as_ref().is_some_and(|links| links.invites.is_open(&invite));
            if !open {
                tracing::info!(route = template.as_deref().unwrap_or("unmatched"), "link invitation rejected");
                return unauthorized(AuthFailure::Invalid, "the link invitation is unknown, used or expired; ask for a new one");
            }
            request.extensions_mut().insert(AcceptedInvite(invite));
            request.extensions_mut().insert(Role::Admin);
            return next.run(request).await;
        }
        guard = Guard::Session(Some(Action::ManageServer));
    }

    // Commands on the server's host, authenticated by the socket's file
    // permissions.
    if request.extensions().get::<HostAdmin>().is_some() {
        let action = match guard {
            Guard::Session(Some(action)) => action.as_str(),
            _ => "host_admin",
        };
        let event = AuditEvent {
            time: state.access.clock.now(),
            subject: Some("host-admin".to_owned()),
            device: None,
            action: action.to_owned(),
            resource: request.uri().path().to_owned(),
            allowed: true,
            reason: "request on the host admin socket".to_owned(),
            source: IpAddr::from([127, 0, 0, 1]),
        };
        if let Err(error) = state.access.users.audit().record(&event) {
            tracing::error!(error = %error, "failed to record a host admin request; denying");
            return forbidden("the request could not be recorded");
        }
        request.extensions_mut().insert(Role::Admin);
        return next.run(request).await;
    }

    let Some(session_id) = request.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned) else {
        return unauthorized(AuthFailure::Missing, "authentication required: sign in on a paired device (see docs/access.md)");
    };
    let binding = request.extensions().get::<TlsBinding>().copied();
    let input = match ProofInput::read(request.method(), request.uri(), request.headers(), binding) {
        Ok(input) => input,
        Err(response) => return response,
    };
    let access = Arc::clone(&state.access);
    let session = match access.sessions.authenticate(&input.binding(&session_id), &input.proof) {
        Ok(session) => session,
        Err(error) => {
            tracing::info!(route = template.as_deref().unwrap_or("unmatched"), error = %error, "request proof rejected");
            return session_failure(&error);
        }
    };

    if let Guard::Session(Some(action)) = guard {
        let resource = request.uri().path().to_owned();
        let rating = if action.is_item_action() { item_rating(&state, &resource).await } else { None };
        let context = RequestContext::from_session(&session, action, resource, rating, source_address(&request));
        match access.policy.decide(&context) {
            Ok(decision) if decision.allowed => {}
            Ok(decision) => {
                let mut response = forbidden(&decision.reason);
                response.extensions_mut().insert(crate::guard::ProvenDevice(format!("device-{}", session.device_id.0)));
                return response;
            }
            Err(error) => {
                tracing::error!(error = %error, "failed to record a policy decision; denying");
                return forbidden("the decision could not be recorded");
            }
        }
    }

    access.activity.record(&session.id, access.clock.now(), request.extensions().get::<ConnectionInfo>());
    let device = session.device_id;
    let role = if session.role == hearth_access::Role::Admin { Role::Admin } else { Role::Member };
    request.extensions_mut().insert(role);
    request.extensions_mut().insert(session);
    let touch = Arc::clone(&access);
    tokio::task::spawn_blocking(move || {
        if let Err(error) = touch.users.touch_device(device) {
            tracing::warn!(device = device.0, error = %error, "failed to record device activity");
        }
    });
    let mut response = next.run(request).await;
    response.extensions_mut().insert(crate::guard::ProvenDevice(format!("device-{}", device.0)));
    response
}

/// Returns the rating the policy weighs for the item in `path`
/// (`/api/v1/items/{id}/...`, or the item of the grant in
/// `/api/v1/hls/{grant}/...`): the admin's rating, else G for unrated
/// photos and music, else `None` (unrated, which counts as adult).
async fn item_rating(state: &AppState, path: &str) -> Option<ContentRating> {
    let segment = path.split('/').nth(4)?;
    let id = if path.starts_with("/api/v1/hls/") {
        state.access.grants.check(&state.access, segment).ok()?.item_id
    } else {
        segment.to_owned()
    };
    let catalog = Arc::clone(&state.catalog);
    let found = tokio::task::spawn_blocking(move || catalog.item_rating(&id)).await.ok()?.ok()??;
    match found {
        (_, Some(label), _) => label.parse().ok(),
        (hearth_media::MediaKind::Video, None, _) => None,
        (_, None, _) => Some(ContentRating::G),
    }
}
