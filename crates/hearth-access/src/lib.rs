//! Zero-trust access control for a Hearth household.
//!
//! No request is trusted for where it comes from. Each one must come from a
//! paired device that proves possession of its key, in a short session of an
//! authenticated user, and must be allowed by an explicit policy rule. Every
//! decision is recorded.
//!
//! # Model
//!
//! - **Identities** ([`did`]): users and devices are named by did:key
//!   identifiers (Ed25519 or P-256).
//! - **Credentials** ([`credential`]): the household's hybrid signing key
//!   (Ed25519 + ML-DSA-65, from `hearth_pqc::sign`) signs statements about a
//!   subject: its kind, its role or its owner, and a validity period.
//! - **Users and devices** ([`users`]): SQLite tables on `hearth-store`, with
//!   Argon2id passwords ([`password`]) as the fallback to passkeys and a
//!   persisted login throttle. Browsers hold a non-extractable WebCrypto
//!   ECDSA P-256 key; command-line clients may hold a hybrid key
//!   ([`device_key`]).
//! - **Passkeys** ([`passkeys`]): each user's WebAuthn credentials, stored
//!   as the server's WebAuthn library serialises them, found by credential
//!   id at sign-in. A passkey signs in only on a paired device of its user.
//! - **Request proofs** ([`proof`]): the device signs the method, the request
//!   target, a timestamp, a nonce, the session id and a TLS exporter value of
//!   the connection.
//! - **Sessions** ([`session`]): 5 minutes idle and 12 hours at most,
//!   renewed by each verified proof. Revoking a device or disabling a user
//!   ends its sessions on their next request.
//! - **Pairing** ([`pake`]): a device proves knowledge of a short one-time
//!   code with SPAKE2 (RFC 9382, P-256), so a recorded exchange cannot be
//!   used to guess the code offline. The browser runs the same suite.
//!   [`pairing`] runs the server side: one-time offers in SQLite (10
//!   minutes, single use, burned after 5 failed confirmations), then a
//!   registered and approved device, a new user for new-user offers, and a
//!   household credential for the device.
//! - **Policy** ([`policy`]): deny by default. Allow rules match role and
//!   action, with conditions on device, source network, local time of day
//!   and item rating. [`policy::PolicyEngine`] writes each decision and its
//!   reason to the audit table ([`audit`]).
//!
//! A request handler runs, in order: [`SessionManager::authenticate`] with
//! the request's method, target, session id and the connection's exporter
//! value, then [`PolicyEngine::decide`] with the session's user and device.
//! Any error from either means deny.
//!
//! # What the tests show
//!
//! - 10,000 password guesses at one account, one a second, reach the
//!   password check 8 times and never succeed
//!   (`users::tests::ten_thousand_guesses_never_succeed`); the throttle
//!   survives a restart (`lockout_survives_restart`).
//! - A proof is rejected when replayed (`replayed_proof_rejected`), when
//!   presented on another TLS connection
//!   (`proof_from_other_tls_connection_rejected`), when stale, for another
//!   method, path or session (`other_method_path_or_session_rejected`), or
//!   signed by another device.
//! - A credential with any field changed, expired, or signed by another
//!   household key is rejected (`credential::tests`).
//! - Revocation ends a session on the very next request
//!   (`revoking_device_ends_session_on_next_request`).
//! - SPAKE2 matches the four RFC 9382 vectors, and a wrong code, other
//!   additional data, a truncated MAC, an off-curve share or one that gives
//!   the identity point fail (`pake::tests`).
//! - A pairing offer checks at most 5 confirmations, so 10,000 random code
//!   guesses never pair (`pairing::tests::ten_thousand_guesses_never_succeed`);
//!   it pairs one device even when two finish at once
//!   (`concurrent_finishes_pair_once`), and a device key or name changed
//!   between start and finish fails the confirmation
//!   (`changed_device_name_or_key_fails`).
//! - Children cannot play R-rated items, teens are denied after curfew,
//!   unknown devices and non-admins are denied admin actions, and every
//!   decision is audited with its reason (`policy::tests`).
//!
//! # What this does not protect against
//!
//! - **Code running in the browser.** Browsers cannot read TLS exporter
//!   values, so the server sends its value over the connection and the
//!   browser signs it. A proof then still works on one connection only, but
//!   script injected into the page (XSS) can ask the non-extractable key to
//!   sign any request. The key cannot be copied out, so the attack ends when
//!   the page does.
//! - **A stolen household signing key**: it issues any credential.
//! - **Write access to the database**: a process that can write it can add
//!   users, approve devices or clear the throttle. Tampered device keys are
//!   detected (`tampered_device_row_is_reported`); other rows are not.
//! - **Denial of service by lockout**: anyone on the LAN can lock an account
//!   out of password login for a while. Passkeys, once added, are not
//!   throttled this way.
//! - **Timing, in full**: unknown users cost one Argon2 verification like
//!   known ones, but database lookups still differ by microseconds.
//! - **More than one process**: sessions, revocation generations and the
//!   nonce cache live in one process's memory. A restart ends every session.
//! - **A server clock set back** by more than the ±60 s proof window lets an
//!   old proof's nonce be forgotten while its timestamp is valid again.
//! - **Hybrid device names**: the did:key of a hybrid device key names only
//!   its Ed25519 part, because no multicodec exists for the pair. Proofs
//!   still verify both parts against the stored key.

pub mod audit;
pub mod clock;
pub mod credential;
pub mod device_key;
pub mod did;
pub mod pairing;
pub mod pake;
pub mod passkeys;
pub mod password;
pub mod policy;
pub mod proof;
pub mod role;
pub mod schema;
pub mod session;
pub mod users;

pub use audit::{AuditError, AuditEvent, AuditLog, AuditPage, AuditQuery, AuditRecord};
pub use clock::{Clock, ManualClock, SystemClock};
pub use credential::{Credential, CredentialClaims, CredentialError, CredentialKind};
pub use device_key::{DeviceKey, DeviceKeyError, KeyAlgorithm};
pub use did::{Did, DidError, DidKey};
pub use pairing::{
    CreatedOffer, NewAccount, Offer, OfferCreator, OfferKind, PairedDevice, PairingCode,
    PairingError, PairingErrorKind, PairingService, PairingStart,
};
pub use passkeys::{NewPasskey, PasskeyError, PasskeyId, PasskeyStore, StoredPasskey};
pub use password::{PasswordError, PasswordHasher, PasswordParams};
pub use policy::{
    Action, ContentRating, Decision, DeviceContext, IpNetwork, Policy, PolicyEngine,
    RequestContext, Rule, TimeWindow,
};
pub use proof::{ProofError, ProofLimits, ProofVerifier, RequestBinding, RequestProof};
pub use role::{Role, UnknownRole};
pub use session::{RevocationRegistry, Session, SessionError, SessionLimits, SessionManager};
pub use users::{
    Device, DeviceId, LoginError, NewUser, ThrottlePolicy, ThrottleRule, User, UserError, UserId,
    UserStore,
};
