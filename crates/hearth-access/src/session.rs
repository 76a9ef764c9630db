//! Short sessions, renewed by request proofs, and immediate revocation.
//!
//! A session ties a user to one device key. It lives [`SessionLimits::ttl`]
//! (5 minutes by default) after its last verified request and at most
//! [`SessionLimits::max_lifetime`] after it was opened. Every request must
//! carry a proof signed by the session's device key (see [`crate::proof`]),
//! so the session id alone grants nothing.
//!
//! # Revocation
//!
//! [`RevocationRegistry`] keeps a generation number per user and per device.
//! A session records both generations when it opens, and every request
//! compares them with the current ones, so a revocation takes effect on the
//! next request with no database read (test `revoking_device_ends_session_on_next_request`).
//! Revoking a user also blocks new sessions until
//! [`RevocationRegistry::unblock_user`]; a revoked device stays blocked.
//! Sessions live in memory only: a restart ends all of them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clock::Clock;
use crate::device_key::DeviceKey;
use crate::did::Did;
use crate::proof::{ProofError, ProofVerifier, RequestBinding, RequestProof};
use crate::role::Role;
use crate::users::{Device, DeviceId, User, UserId};

/// Lifetimes and bounds of sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Seconds a session stays valid after its last verified request.
    pub ttl: i64,
    /// Seconds after opening when a session ends regardless of use.
    pub max_lifetime: i64,
    /// Most open sessions in total; opening more fails.
    pub max_sessions: usize,
}

impl Default for SessionLimits {
    /// 5 minutes idle, 12 hours in total, 10,000 sessions.
    fn default() -> Self {
        Self {
            ttl: 5 * 60,
            max_lifetime: 12 * 60 * 60,
            max_sessions: 10_000,
        }
    }
}

/// An authenticated session, as returned to request handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Random id, 32 bytes in base64url.
    pub id: String,
    /// The user.
    pub user_id: UserId,
    /// The user's did:key.
    pub user_did: Did,
    /// The user's role when the session opened; a role change ends the session.
    pub role: Role,
    /// The device.
    pub device_id: DeviceId,
    /// The device's did:key.
    pub device_did: Did,
    /// Opening time in Unix seconds.
    pub opened_at: i64,
    /// Expiry time in Unix seconds, moved forward by each verified request.
    pub expires_at: i64,
}

/// Opens, authenticates and ends sessions.
pub struct SessionManager {
    clock: Arc<dyn Clock>,
    limits: SessionLimits,
    proofs: ProofVerifier,
    revocations: Arc<RevocationRegistry>,
    sessions: RwLock<HashMap<String, Entry>>,
}

struct Entry {
    session: Session,
    key: DeviceKey,
    user_generation: u64,
    device_generation: u64,
}

impl SessionManager {
    /// Creates a manager that verifies proofs with `proofs` and checks
    /// revocations in `revocations`.
    pub fn new(
        clock: Arc<dyn Clock>,
        limits: SessionLimits,
        proofs: ProofVerifier,
        revocations: Arc<RevocationRegistry>,
    ) -> Self {
        Self {
            clock,
            limits,
            proofs,
            revocations,
            sessions: RwLock::new(HashMap::new()),
        }
    }

    /// Opens a session for `user` on `device`, after checking a proof that
    /// the device signed this request with an empty session id.
    ///
    /// The caller has authenticated the user (password or passkey) and read
    /// both rows from the database for this request.
    ///
    /// # Errors
    ///
    /// Returns [`SessionError::DeviceNotUsable`] or [`SessionError::UserDisabled`]
    /// from the rows, [`SessionError::Revoked`] when a revocation blocks
    /// either, [`SessionError::Proof`] for a bad proof and
    /// [`SessionError::TooManySessions`] at the limit.
    pub fn open(
        &self,
        user: &User,
        device: &Device,
        binding: &RequestBinding<'_>,
        proof: &RequestProof,
    ) -> Result<Session, SessionError> {
        check_rows(user, device)?;
        self.verify_device_proof(device, binding, proof)?;
        self.open_verified(user, device)
    }

    /// Checks a sign-in proof: the device signed this request with an
    /// empty session id. A server calls this before it checks a password,
    /// so that guesses need the device key, then calls
    /// [`Self::open_verified`].
    ///
    /// # Errors
    ///
    /// Returns [`SessionError::Proof`] for a bad proof or a non-empty
    /// session id, and [`SessionError::DeviceNotUsable`] for a device that
    /// is not approved or is revoked.
    pub fn verify_device_proof(
        &self,
        device: &Device,
        binding: &RequestBinding<'_>,
        proof: &RequestProof,
    ) -> Result<(), SessionError> {
        check_device(device)?;
        if !binding.session_id.is_empty() {
            return Err(SessionError::Proof(ProofError::InvalidField {
                field: "session id",
                problem: "must be empty when opening a session",
            }));
        }
        self.proofs
            .verify(&device.key, binding, proof)
            .map_err(SessionError::Proof)
    }

    /// Opens a session for `user` on `device` whose sign-in proof
    /// [`Self::verify_device_proof`] has accepted.
    ///
    /// # Errors
    ///
    /// As [`Self::open`], without the proof check.
    pub fn open_verified(&self, user: &User, device: &Device) -> Result<Session, SessionError> {
        check_rows(user, device)?;

        let now = self.clock.now();
        let session = Session {
            id: new_session_id()?,
            user_id: user.id,
            user_did: user.did.clone(),
            role: user.role,
            device_id: device.id,
            device_did: device.key.did().clone(),
            opened_at: now,
            expires_at: now + self.limits.ttl,
        };

        let mut sessions = self
            .sessions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.retain(|_, entry| entry.session.expires_at > now);
        if sessions.len() >= self.limits.max_sessions {
            return Err(SessionError::TooManySessions {
                limit: self.limits.max_sessions,
            });
        }

        // Reading the generations after the database rows means a
        // revocation that raced with this call either blocks here or bumps
        // a generation that this session then no longer matches.
        let (user_generation, device_generation) =
            self.revocations.generations(user.id, device.id)?;
        sessions.insert(
            session.id.clone(),
            Entry {
                session: session.clone(),
                key: device.key.clone(),
                user_generation,
                device_generation,
            },
        );
        Ok(session)
    }

    /// Authenticates a request in a session: checks expiry and revocation,
    /// verifies the request proof with the session's device key, then
    /// renews the session.
    ///
    /// # Errors
    ///
    /// Returns [`SessionError::NotFound`], [`SessionError::Expired`],
    /// [`SessionError::Revoked`] or [`SessionError::Proof`].
    pub fn authenticate(
        &self,
        binding: &RequestBinding<'_>,
        proof: &RequestProof,
    ) -> Result<Session, SessionError> {
        let now = self.clock.now();
        let (key, user_id, device_id, user_generation, device_generation, expires_at) = {
            let sessions = self
                .sessions
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let entry = sessions
                .get(binding.session_id)
                .ok_or(SessionError::NotFound)?;
            (
                entry.key.clone(),
                entry.session.user_id,
                entry.session.device_id,
                entry.user_generation,
                entry.device_generation,
                entry.session.expires_at,
            )
        };

        if now >= expires_at {
            self.remove(binding.session_id);
            return Err(SessionError::Expired {
                expired_at: expires_at,
            });
        }
        if let Err(error) =
            self.revocations
                .check(user_id, device_id, user_generation, device_generation)
        {
            self.remove(binding.session_id);
            return Err(error);
        }
        self.proofs
            .verify(&key, binding, proof)
            .map_err(SessionError::Proof)?;

        // A close or prune may have removed the entry while the proof was checked.
        let mut sessions = self
            .sessions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = sessions
            .get_mut(binding.session_id)
            .ok_or(SessionError::NotFound)?;
        entry.session.expires_at =
            (now + self.limits.ttl).min(entry.session.opened_at + self.limits.max_lifetime);
        Ok(entry.session.clone())
    }

    /// Returns whether `session_id` names an open session that has not
    /// expired, without checking a proof or renewing it. Things bound to a
    /// session, such as media grants, end with it.
    pub fn is_live(&self, session_id: &str) -> bool {
        let now = self.clock.now();
        self.sessions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(session_id)
            .is_some_and(|entry| entry.session.expires_at > now)
    }

    /// Ends a session (logout). Ending an unknown session does nothing.
    pub fn close(&self, session_id: &str) {
        self.remove(session_id);
    }

    /// Drops expired and revoked sessions and returns how many remain.
    /// Requests already reject them; this only frees memory.
    pub fn prune(&self) -> usize {
        let now = self.clock.now();
        let mut sessions = self
            .sessions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.retain(|_, entry| {
            entry.session.expires_at > now
                && self
                    .revocations
                    .check(
                        entry.session.user_id,
                        entry.session.device_id,
                        entry.user_generation,
                        entry.device_generation,
                    )
                    .is_ok()
        });
        sessions.len()
    }

    /// Returns every open session, for an admin view.
    pub fn open_sessions(&self) -> Vec<Session> {
        let now = self.clock.now();
        let sessions = self.sessions.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut open: Vec<Session> = sessions
            .values()
            .filter(|entry| entry.session.expires_at > now)
            .filter(|entry| {
                self.revocations
                    .check(entry.session.user_id, entry.session.device_id, entry.user_generation, entry.device_generation)
                    .is_ok()
            })
            .map(|entry| entry.session.clone())
            .collect();
        open.sort_by_key(|session| session.opened_at);
        open
    }

    /// Returns the open sessions of `user`, for an admin view.
    pub fn sessions_of(&self, user: UserId) -> Vec<Session> {
        let now = self.clock.now();
        let sessions = self
            .sessions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions
            .values()
            .filter(|entry| entry.session.user_id == user && entry.session.expires_at > now)
            .map(|entry| entry.session.clone())
            .collect()
    }

    fn remove(&self, session_id: &str) {
        self.sessions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(session_id);
    }
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Generation numbers and blocks that end sessions of revoked users and devices.
///
/// Shared (in an `Arc`) by the user store, which revokes, and the session
/// manager, which checks.
#[derive(Debug, Default)]
pub struct RevocationRegistry {
    state: Mutex<RevocationState>,
}

#[derive(Debug, Default)]
struct RevocationState {
    user_generations: HashMap<UserId, u64>,
    device_generations: HashMap<DeviceId, u64>,
    blocked_users: HashSet<UserId>,
    blocked_devices: HashSet<DeviceId>,
}

impl RevocationRegistry {
    /// Creates an empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ends every session of `user` and blocks new ones until [`Self::unblock_user`].
    pub fn revoke_user(&self, user: UserId) {
        let mut state = self.lock();
        *state.user_generations.entry(user).or_insert(0) += 1;
        state.blocked_users.insert(user);
    }

    /// Ends every session of `device` and blocks new ones. Device revocation
    /// is permanent in the database, so there is no unblock.
    pub fn revoke_device(&self, device: DeviceId) {
        let mut state = self.lock();
        *state.device_generations.entry(device).or_insert(0) += 1;
        state.blocked_devices.insert(device);
    }

    /// Ends every session of `user` without blocking new ones, for a role change.
    pub fn end_sessions_of_user(&self, user: UserId) {
        *self.lock().user_generations.entry(user).or_insert(0) += 1;
    }

    /// Ends every session of `device` without blocking new ones: the device
    /// must sign in again (the guard's response to a suspected device).
    pub fn end_sessions_of_device(&self, device: DeviceId) {
        *self.lock().device_generations.entry(device).or_insert(0) += 1;
    }

    /// Allows new sessions for a user revoked earlier (re-enabled account).
    pub fn unblock_user(&self, user: UserId) {
        self.lock().blocked_users.remove(&user);
    }

    /// Returns the current generations, or the reason a new session is refused.
    pub fn generations(
        &self,
        user: UserId,
        device: DeviceId,
    ) -> Result<(u64, u64), SessionError> {
        let state = self.lock();
        if state.blocked_users.contains(&user) {
            return Err(SessionError::Revoked { what: "user" });
        }
        if state.blocked_devices.contains(&device) {
            return Err(SessionError::Revoked { what: "device" });
        }
        Ok((
            state.user_generations.get(&user).copied().unwrap_or(0),
            state.device_generations.get(&device).copied().unwrap_or(0),
        ))
    }

    /// Checks that generations taken with [`Self::generations`] are still
    /// current, so that something bound to a session (a media grant) ends
    /// with it.
    pub fn check(
        &self,
        user: UserId,
        device: DeviceId,
        user_generation: u64,
        device_generation: u64,
    ) -> Result<(), SessionError> {
        let state = self.lock();
        if state.device_generations.get(&device).copied().unwrap_or(0) != device_generation {
            return Err(SessionError::Revoked { what: "device" });
        }
        if state.user_generations.get(&user).copied().unwrap_or(0) != user_generation {
            return Err(SessionError::Revoked { what: "user" });
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RevocationState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Error from opening or authenticating a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No open session has this id (never opened, closed, or pruned).
    #[error("session not found; open a new session")]
    NotFound,

    /// The session's expiry time has passed.
    #[error("session expired at {expired_at}; open a new session")]
    Expired {
        /// Expiry time in Unix seconds.
        expired_at: i64,
    },

    /// The user or device was revoked after the session opened, or is blocked.
    #[error("session ended: the {what} was revoked")]
    Revoked {
        /// "user" or "device".
        what: &'static str,
    },

    /// The device cannot open sessions.
    #[error("device cannot open a session: {reason}")]
    DeviceNotUsable {
        /// Why.
        reason: &'static str,
    },

    /// The user account is disabled.
    #[error("user account is disabled")]
    UserDisabled,

    /// The request proof failed.
    #[error("request proof rejected")]
    Proof(#[source] ProofError),

    /// The session table is full.
    #[error("too many open sessions (limit {limit}); try again later")]
    TooManySessions {
        /// The limit.
        limit: usize,
    },

    /// The operating system's random number generator failed.
    #[error("failed to generate a session id")]
    Random(#[source] getrandom::Error),
}

fn new_session_id() -> Result<String, SessionError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(SessionError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}


/// Checks that `device` belongs to `user` and that both may open sessions.
fn check_rows(user: &User, device: &Device) -> Result<(), SessionError> {
    if device.user_id != user.id {
        return Err(SessionError::DeviceNotUsable {
            reason: "the device belongs to another user",
        });
    }
    check_device(device)?;
    if user.disabled {
        return Err(SessionError::UserDisabled);
    }
    Ok(())
}

/// Checks that `device` is approved and not revoked.
fn check_device(device: &Device) -> Result<(), SessionError> {
    if !device.approved {
        return Err(SessionError::DeviceNotUsable {
            reason: "the device is not approved",
        });
    }
    if device.revoked_at.is_some() {
        return Err(SessionError::DeviceNotUsable {
            reason: "the device is revoked",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer as _;

    use super::*;
    use crate::clock::ManualClock;
    use crate::device_key::tests::p256_signing_key;
    use crate::proof::signed_string;

    const NOW: i64 = 1_750_000_000;
    const EXPORTER: [u8; 32] = [7; 32];

    struct Fixture {
        clock: Arc<ManualClock>,
        revocations: Arc<RevocationRegistry>,
        sessions: SessionManager,
        signing: SigningKey,
        user: User,
        device: Device,
        nonce: std::cell::Cell<u32>,
    }

    impl Fixture {
        fn new() -> Self {
            let clock = Arc::new(ManualClock::new(NOW));
            let revocations = Arc::new(RevocationRegistry::new());
            let proofs = ProofVerifier::new(clock.clone());
            let sessions = SessionManager::new(
                clock.clone(),
                SessionLimits::default(),
                proofs,
                revocations.clone(),
            );
            let signing = p256_signing_key(40);
            let key = DeviceKey::from_p256(*signing.verifying_key());
            let user = User {
                id: UserId(1),
                did: Did::from_p256(p256_signing_key(41).verifying_key()),
                name: "Sam".into(),
                role: Role::Teen,
                created_at: NOW,
                disabled: false,
            };
            let device = Device {
                id: DeviceId(7),
                key,
                name: "phone".into(),
                user_id: UserId(1),
                approved: true,
                created_at: NOW,
                revoked_at: None,
                last_seen: None,
            };
            Self {
                clock,
                revocations,
                sessions,
                signing,
                user,
                device,
                nonce: std::cell::Cell::new(0),
            }
        }

        fn proof(&self, binding: &RequestBinding<'_>) -> RequestProof {
            self.nonce.set(self.nonce.get() + 1);
            let nonce = format!("session-test-nonce-{:0>8}", self.nonce.get());
            let timestamp = self.clock.now();
            let message = signed_string(binding, timestamp, &nonce).unwrap();
            let signature: p256::ecdsa::Signature = self.signing.sign(message.as_bytes());
            RequestProof {
                timestamp,
                nonce,
                signature: signature.to_bytes().to_vec(),
            }
        }

        fn open(&self) -> Session {
            let binding = RequestBinding {
                method: "POST",
                path_and_query: "/api/sessions",
                exporter: &EXPORTER,
                session_id: "",
            };
            self.sessions
                .open(&self.user, &self.device, &binding, &self.proof(&binding))
                .unwrap()
        }

        fn request(&self, session_id: &str) -> Result<Session, SessionError> {
            let binding = RequestBinding {
                method: "GET",
                path_and_query: "/api/items",
                exporter: &EXPORTER,
                session_id,
            };
            self.sessions.authenticate(&binding, &self.proof(&binding))
        }
    }

    #[test]
    fn opened_session_authenticates_requests() {
        let fixture = Fixture::new();
        let session = fixture.open();

        let authenticated = fixture.request(&session.id).unwrap();

        assert_eq!(authenticated.user_id, UserId(1));
        assert_eq!(authenticated.device_id, DeviceId(7));
        assert_eq!(authenticated.role, Role::Teen);
        assert_eq!(session.id.len(), 43);
    }

    #[test]
    fn session_expires_after_five_idle_minutes() {
        let fixture = Fixture::new();
        let session = fixture.open();

        fixture.clock.advance(5 * 60);
        let err = fixture.request(&session.id).unwrap_err();

        assert!(matches!(err, SessionError::Expired { .. }), "{err}");
        assert!(matches!(
            fixture.request(&session.id),
            Err(SessionError::NotFound)
        ));
    }

    #[test]
    fn renewal_stops_at_max_lifetime() {
        let fixture = Fixture::new();
        let session = fixture.open();

        // A request every 4 minutes keeps the session alive...
        for _ in 0..(12 * 60 / 4 - 1) {
            fixture.clock.advance(4 * 60);
            fixture.request(&session.id).unwrap();
        }
        // ...until 12 hours after it opened.
        fixture.clock.set(session.opened_at + 12 * 60 * 60);
        let err = fixture.request(&session.id).unwrap_err();
        assert!(matches!(err, SessionError::Expired { .. }), "{err}");
    }

    #[test]
    fn stolen_session_id_rejected() {
        let fixture = Fixture::new();
        let session = fixture.open();
        let thief = p256_signing_key(42);
        let binding = RequestBinding {
            method: "GET",
            path_and_query: "/api/items",
            exporter: &EXPORTER,
            session_id: &session.id,
        };
        let nonce = "thief-nonce-00000000000000";
        let message = signed_string(&binding, NOW, nonce).unwrap();
        let signature: p256::ecdsa::Signature = thief.sign(message.as_bytes());
        let proof = RequestProof {
            timestamp: NOW,
            nonce: nonce.into(),
            signature: signature.to_bytes().to_vec(),
        };

        let err = fixture.sessions.authenticate(&binding, &proof).unwrap_err();

        assert!(
            matches!(err, SessionError::Proof(ProofError::Signature(_))),
            "{err}"
        );
    }

    #[test]
    fn revoking_device_ends_session_on_next_request() {
        let fixture = Fixture::new();
        let session = fixture.open();
        fixture.request(&session.id).unwrap();

        // No clock movement: the very next request fails.
        fixture.revocations.revoke_device(DeviceId(7));
        let err = fixture.request(&session.id).unwrap_err();

        assert!(
            matches!(err, SessionError::Revoked { what: "device" }),
            "{err}"
        );
        assert!(matches!(
            fixture.request(&session.id),
            Err(SessionError::NotFound)
        ));
    }

    #[test]
    fn revoked_user_sessions_end_and_block() {
        let fixture = Fixture::new();
        let first = fixture.open();
        let second = fixture.open();

        fixture.revocations.revoke_user(UserId(1));

        for session in [first, second] {
            let err = fixture.request(&session.id).unwrap_err();
            assert!(
                matches!(err, SessionError::Revoked { what: "user" }),
                "{err}"
            );
        }
        let binding = RequestBinding {
            method: "POST",
            path_and_query: "/api/sessions",
            exporter: &EXPORTER,
            session_id: "",
        };
        let err = fixture
            .sessions
            .open(
                &fixture.user,
                &fixture.device,
                &binding,
                &fixture.proof(&binding),
            )
            .unwrap_err();
        assert!(
            matches!(err, SessionError::Revoked { what: "user" }),
            "{err}"
        );

        fixture.revocations.unblock_user(UserId(1));
        let session = fixture.open();
        fixture.request(&session.id).unwrap();
    }

    #[test]
    fn revocation_visible_across_threads() {
        let fixture = Fixture::new();
        let session = fixture.open();
        let revocations = fixture.revocations.clone();

        let started = std::time::Instant::now();
        std::thread::spawn(move || revocations.revoke_device(DeviceId(7)))
            .join()
            .unwrap();
        let err = fixture.request(&session.id).unwrap_err();

        assert!(matches!(err, SessionError::Revoked { .. }), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn role_change_ends_sessions_without_blocking() {
        let fixture = Fixture::new();
        let session = fixture.open();

        fixture.revocations.end_sessions_of_user(UserId(1));

        assert!(matches!(
            fixture.request(&session.id),
            Err(SessionError::Revoked { what: "user" })
        ));
        let reopened = fixture.open();
        fixture.request(&reopened.id).unwrap();
    }

    #[test]
    fn other_users_sessions_survive_revocation() {
        let fixture = Fixture::new();
        let session = fixture.open();

        fixture.revocations.revoke_user(UserId(2));
        fixture.revocations.revoke_device(DeviceId(8));

        fixture.request(&session.id).unwrap();
    }

    #[test]
    fn unusable_devices_and_users_cannot_open() {
        let fixture = Fixture::new();
        let binding = RequestBinding {
            method: "POST",
            path_and_query: "/api/sessions",
            exporter: &EXPORTER,
            session_id: "",
        };

        let unapproved = Device {
            approved: false,
            ..fixture.device.clone()
        };
        let revoked = Device {
            revoked_at: Some(NOW - 1),
            ..fixture.device.clone()
        };
        let someone_elses = Device {
            user_id: UserId(2),
            ..fixture.device.clone()
        };
        for device in [unapproved, revoked, someone_elses] {
            let err = fixture
                .sessions
                .open(&fixture.user, &device, &binding, &fixture.proof(&binding))
                .unwrap_err();
            assert!(matches!(err, SessionError::DeviceNotUsable { .. }), "{err}");
        }

        let disabled = User {
            disabled: true,
            ..fixture.user.clone()
        };
        let err = fixture
            .sessions
            .open(
                &disabled,
                &fixture.device,
                &binding,
                &fixture.proof(&binding),
            )
            .unwrap_err();
        assert!(matches!(err, SessionError::UserDisabled), "{err}");
    }

    #[test]
    fn open_requires_valid_proof() {
        let fixture = Fixture::new();
        let binding = RequestBinding {
            method: "POST",
            path_and_query: "/api/sessions",
            exporter: &EXPORTER,
            session_id: "",
        };
        let mut proof = fixture.proof(&binding);
        proof.signature[10] ^= 1;

        let err = fixture
            .sessions
            .open(&fixture.user, &fixture.device, &binding, &proof)
            .unwrap_err();

        assert!(matches!(err, SessionError::Proof(_)), "{err}");
    }

    #[test]
    fn closed_session_rejected() {
        let fixture = Fixture::new();
        let session = fixture.open();

        fixture.sessions.close(&session.id);

        assert!(matches!(
            fixture.request(&session.id),
            Err(SessionError::NotFound)
        ));
    }

    #[test]
    fn prune_drops_expired_and_revoked() {
        let fixture = Fixture::new();
        fixture.open();
        fixture.open();
        assert_eq!(fixture.sessions.sessions_of(UserId(1)).len(), 2);

        fixture.revocations.revoke_device(DeviceId(7));

        assert_eq!(fixture.sessions.prune(), 0);
    }
}
