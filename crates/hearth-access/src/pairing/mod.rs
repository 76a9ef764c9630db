//! Pairing a device with a one-time code: the server side of "Pairing a
//! device" in docs/access.md.
//!
//! An admin creates an offer ([`PairingService::create_offer`]): a random
//! offer id and an 8-character code, valid for 10 minutes. The person at
//! the new device enters the code there. The device sends its key, its name
//! and its SPAKE2 share to [`PairingService::start`], then its confirmation
//! MAC to [`PairingService::finish`]. Only after checking that MAC does the
//! server add the user and device and return its own MAC and a household
//! credential for the device.
//!
//! Offers live in the `pairing_offers` table, so `hearth pair` on the host
//! and the server share them. Started pairings live in memory for 2 minutes.
//!
//! Each offer checks at most [`MAX_FAILED_ATTEMPTS`] confirmations that turn
//! out wrong, then burns itself. A confirmation counts as an attempt before
//! it is checked, so confirmations sent at the same time cannot test more
//! codes between them. An attacker who guesses therefore wins with a
//! probability of at most 5 in 2^40 per offer
//! (`tests::ten_thousand_guesses_never_succeed`).

mod code;
mod error;
mod offers;
mod pending;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_pqc::sign::{HybridSigner, HybridVerifyingKey};
use hearth_store::Store;
use tracing::{error, info, warn};
use zeroize::Zeroizing;

pub use self::code::{CODE_ALPHABET, CODE_LEN, PairingCode};
pub use self::error::{PairingError, PairingErrorKind};
pub use self::offers::{Offer, OfferCreator, OfferKind};
use self::pending::{PendingPairing, PendingPairings};
use crate::clock::Clock;
use crate::credential::{Credential, CredentialClaims, MAX_DEVICE_NAME_LEN};
use crate::device_key::{DeviceKey, DeviceKeyError};
use crate::pake::{MAC_LEN, PasswordScalar, Role as PakeRole, Spake2};
use crate::role::Role;
use crate::schema;
use crate::users::{Device, NewUser, User, UserError, UserId, UserStore};

/// How long an offer stays valid: 10 minutes, in seconds.
pub const OFFER_TTL_SECS: i64 = 600;

/// Failed confirmations after which an offer burns itself.
pub const MAX_FAILED_ATTEMPTS: u32 = 5;

/// How long a started pairing waits for its finish: 2 minutes, in seconds.
pub const PENDING_TTL_SECS: i64 = 120;

/// Maximum number of pairings between start and finish, across all offers.
pub const MAX_PENDING: usize = 64;

/// Validity of the credential issued to a paired device: 365 days, in
/// seconds. Revoking the device in the database stops it before then.
pub const DEVICE_CREDENTIAL_TTL_SECS: i64 = 365 * 86_400;

/// SPAKE2 identity A, the device.
pub const IDENTITY_DEVICE: &[u8] = b"hearth device";

/// SPAKE2 identity B, the server.
pub const IDENTITY_SERVER: &[u8] = b"hearth server";

/// Maximum length of the base64url device key: a hybrid key is 1,987
/// bytes, 2,650 characters.
const MAX_DEVICE_KEY_CHARS: usize = 4096;

/// A new offer and its code, which is shown once and never stored in clear
/// anywhere but the offers table.
#[derive(Debug, Clone)]
pub struct CreatedOffer {
    /// The stored offer.
    pub offer: Offer,
    /// The code to show as `XXXX-XXXX` or to put in the link.
    pub code: PairingCode,
}

/// The server's response to a pairing start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingStart {
    /// Id of the pending pairing, 16 random bytes in base64url.
    pub pairing_id: String,
    /// The server's SPAKE2 share `pB`, in base64url.
    pub share: String,
}

/// The account that a new-user offer creates, as the person pairing chose it.
#[derive(Clone, Copy)]
pub struct NewAccount<'a> {
    /// The user name; must match the offer's name when the offer has one.
    pub name: &'a str,
    /// The initial password.
    pub password: &'a str,
}

/// A finished pairing.
#[derive(Debug, Clone)]
pub struct PairedDevice {
    /// The server's confirmation MAC `cB`, in base64url, which the device
    /// checks before it trusts the rest of the response.
    pub confirmation: String,
    /// The device, registered and approved.
    pub device: Device,
    /// The user who owns the device, created for a new-user offer.
    pub user: User,
    /// The household's credential for the device.
    pub credential: Credential,
}

/// Creates offers and runs the server side of pairings.
pub struct PairingService {
    store: Arc<Store>,
    users: Arc<UserStore>,
    clock: Arc<dyn Clock>,
    pending: PendingPairings,
}

impl CreatedOffer {
    /// Returns the pairing link for the server at `authority` (host and
    /// port). The offer id and code go after `#`, so they never reach a
    /// server log.
    pub fn link(&self, authority: &str) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "https://{authority}/pair#offer={}&code={}",
            self.offer.id,
            self.code.as_str()
        ))
    }
}

impl PairingService {
    /// Runs the access migrations on `store`, which must be the database
    /// that `users` uses.
    ///
    /// # Errors
    ///
    /// Returns [`PairingError::Store`] when a migration fails.
    pub fn open(
        store: Arc<Store>,
        users: Arc<UserStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, PairingError> {
        store.migrate(schema::DOMAIN, schema::MIGRATIONS)?;
        Ok(Self {
            store,
            users,
            clock,
            pending: PendingPairings::new(MAX_PENDING),
        })
    }

    /// Creates an offer that is valid for [`OFFER_TTL_SECS`].
    ///
    /// # Errors
    ///
    /// Returns [`PairingError::UserUnavailable`] when the user of an
    /// existing-user offer is disabled or missing, a
    /// [`UserError::NameTaken`] when a new-user offer names a user who
    /// exists, [`PairingError::InvalidField`] for a first-run offer that is
    /// not for a new admin, or a database or random generator error.
    pub fn create_offer(
        &self,
        kind: OfferKind,
        created_by: OfferCreator,
    ) -> Result<CreatedOffer, PairingError> {
        match &kind {
            OfferKind::ExistingUser { user } => {
                self.user_for_device(*user)?;
            }
            OfferKind::NewUser {
                name: Some(name), ..
            } => {
                if self.users.user_by_name(name)?.is_some() {
                    return Err(UserError::NameTaken { name: name.clone() }.into());
                }
            }
            OfferKind::NewUser { name: None, .. } => {}
        }
        let first_run_admin = matches!(
            kind,
            OfferKind::NewUser {
                role: Role::Admin,
                ..
            }
        );
        if created_by == OfferCreator::FirstRun && !first_run_admin {
            return Err(PairingError::InvalidField {
                field: "kind",
                problem: "a first-run offer must create an admin",
            });
        }

        let now = self.clock.now();
        let offer = Offer {
            id: code::random_id("offer id")?,
            kind,
            created_by,
            created_at: now,
            expires_at: now + OFFER_TTL_SECS,
            attempts: 0,
            used_at: None,
        };
        let code = PairingCode::generate()?;

        let conn = self.store.get()?;
        offers::prune(&conn, now)?;
        offers::insert(&conn, &offer, &code)?;

        info!(offer = %offer.id, created_by = ?offer.created_by, "pairing offer created");
        Ok(CreatedOffer { offer, code })
    }

    /// Creates a first-run offer for a new admin, whose name the person
    /// pairing chooses, when the household has no users. Returns `None`
    /// when it has some.
    ///
    /// # Errors
    ///
    /// As [`PairingService::create_offer`].
    pub fn setup_offer_if_no_users(&self) -> Result<Option<CreatedOffer>, PairingError> {
        if !self.users.users()?.is_empty() {
            return Ok(None);
        }

        let kind = OfferKind::NewUser {
            name: None,
            role: Role::Admin,
        };
        self.create_offer(kind, OfferCreator::FirstRun).map(Some)
    }

    /// Starts pairing a device with offer `offer_id`: checks the offer and
    /// the device key, runs SPAKE2 as party B, and keeps the exchange until
    /// [`PairingService::finish`]. `device_key` and `share` are base64url,
    /// and `device_key` is the raw P-256 point of a browser or the hybrid
    /// verifying key of a command-line client.
    ///
    /// The SPAKE2 additional data is `<offer_id>\n<device_key>\n<device_name>`,
    /// with `device_key` exactly as sent, so the confirmation fails if any of
    /// them differs from what the device used.
    ///
    /// # Errors
    ///
    /// Returns [`PairingError::InvalidField`], [`PairingError::InvalidDeviceKey`]
    /// or [`PairingError::InvalidShare`] for a malformed request,
    /// [`PairingError::OfferNotFound`], [`PairingError::OfferExpired`],
    /// [`PairingError::OfferUsed`] or [`PairingError::OfferBurned`] for an
    /// offer that cannot pair, [`PairingError::DeviceAlreadyPaired`],
    /// [`PairingError::UserUnavailable`], or
    /// [`PairingError::TooManyPending`].
    pub fn start(
        &self,
        offer_id: &str,
        device_key: &str,
        device_name: &str,
        share: &str,
    ) -> Result<PairingStart, PairingError> {
        let result = self.start_pairing(offer_id, device_key, device_name, share);

        match &result {
            Ok(started) => info!(
                offer = %offer_id,
                pairing = %started.pairing_id,
                "pairing started"
            ),
            Err(error) => log_failure(loggable_id(offer_id), error, "pairing start rejected"),
        }
        result
    }

    /// Finishes a pairing: checks the device's confirmation MAC, then adds
    /// the user (for a new-user offer) and the approved device, marks the
    /// offer used and issues the device credential, signed by `household`.
    ///
    /// `account` is required for a new-user offer and rejected for an
    /// existing-user offer. These checks keep the pairing pending, so the
    /// device can send a corrected request. A wrong confirmation ends the
    /// pairing and counts a failed attempt on the offer.
    ///
    /// # Errors
    ///
    /// Returns [`PairingError::PairingNotFound`],
    /// [`PairingError::AccountRequired`], [`PairingError::AccountNotAllowed`],
    /// [`PairingError::AccountNameMismatch`], [`PairingError::WrongCode`],
    /// an offer error as from [`PairingService::start`], and
    /// [`PairingError::Users`] when the user or device cannot be added (the
    /// offer can then be used again).
    pub fn finish(
        &self,
        pairing_id: &str,
        confirmation: &str,
        account: Option<NewAccount<'_>>,
        household: &dyn HybridSigner,
    ) -> Result<PairedDevice, PairingError> {
        let now = self.clock.now();
        let pending = self.take_pending(pairing_id, confirmation, account.as_ref(), now);
        let (pending, mac) = match pending {
            Ok(found) => found,
            Err(error) => {
                warn!(pairing = %loggable_id(pairing_id), error = %error, "pairing finish rejected");
                return Err(error);
            }
        };

        let result = self.confirm_and_pair(&pending, &mac, account, household, now);

        match &result {
            Ok(paired) => info!(
                offer = %pending.offer_id,
                device = paired.device.id.0,
                user = paired.user.id.0,
                did = %paired.device.key.did(),
                "device paired"
            ),
            Err(error) => log_failure(&pending.offer_id, error, "pairing finish rejected"),
        }
        result
    }

    /// Returns the offer with `offer_id`, without its code.
    ///
    /// # Errors
    ///
    /// Returns a database error or [`PairingError::CorruptOffer`].
    pub fn offer(&self, offer_id: &str) -> Result<Option<Offer>, PairingError> {
        let conn = self.store.get()?;
        Ok(offers::load(&conn, offer_id)?.map(|(offer, _)| offer))
    }

    /// Deletes the codes of expired offers and the offers that expired more
    /// than a day ago. Returns the number of offers deleted. Creating an
    /// offer and starting a pairing also prune.
    ///
    /// # Errors
    ///
    /// Returns a database error.
    pub fn prune_offers(&self) -> Result<usize, PairingError> {
        let conn = self.store.get()?;
        offers::prune(&conn, self.clock.now())
    }

    fn start_pairing(
        &self,
        offer_id: &str,
        device_key: &str,
        device_name: &str,
        share: &str,
    ) -> Result<PairingStart, PairingError> {
        code::check_id("offer_id", offer_id)?;
        check_device_name(device_name)?;
        let key = parse_device_key(device_key)?;
        let peer_share = decode_b64u("share", share)?;
        let now = self.clock.now();

        let conn = self.store.get()?;
        offers::prune(&conn, now)?;
        let loaded = offers::load(&conn, offer_id)?;
        drop(conn);

        let Some((offer, code)) = loaded else {
            return Err(PairingError::OfferNotFound {
                offer_id: offer_id.to_owned(),
            });
        };
        if let Some(error) = offer.unusable_at(now) {
            return Err(error);
        }
        // Codes are deleted only from offers that can no longer pair.
        let code = code.ok_or_else(|| PairingError::CorruptOffer {
            offer_id: offer_id.to_owned(),
            column: "code",
        })?;

        if let OfferKind::ExistingUser { user } = &offer.kind {
            self.user_for_device(*user)?;
        }
        if self.users.device_by_did(key.did())?.is_some() {
            return Err(PairingError::DeviceAlreadyPaired {
                did: key.did().to_string(),
            });
        }

        let w = PasswordScalar::from_code(code.as_str(), offer_id.as_bytes());
        let additional_data = format!("{offer_id}\n{device_key}\n{device_name}");
        let server = Spake2::start(
            PakeRole::B,
            &w,
            IDENTITY_DEVICE,
            IDENTITY_SERVER,
            additional_data.as_bytes(),
        );
        let server_share = URL_SAFE_NO_PAD.encode(server.share());
        let exchange = server
            .finish(&peer_share)
            .map_err(PairingError::InvalidShare)?;

        let pairing_id = code::random_id("pairing id")?;
        let pending = PendingPairing {
            offer_id: offer.id,
            kind: offer.kind,
            first_run: offer.created_by == OfferCreator::FirstRun,
            device_key: key,
            device_name: device_name.to_owned(),
            exchange,
            expires_at: now + PENDING_TTL_SECS,
        };
        self.pending.insert(pairing_id.clone(), pending, now)?;

        Ok(PairingStart {
            pairing_id,
            share: server_share,
        })
    }

    /// Decodes the confirmation and takes the pending pairing, if the
    /// account fits its offer.
    fn take_pending(
        &self,
        pairing_id: &str,
        confirmation: &str,
        account: Option<&NewAccount<'_>>,
        now: i64,
    ) -> Result<(PendingPairing, Vec<u8>), PairingError> {
        code::check_id("pairing_id", pairing_id)?;
        let mac = decode_b64u("confirmation", confirmation)?;
        if mac.len() != MAC_LEN {
            return Err(PairingError::InvalidField {
                field: "confirmation",
                problem: "expected a 32-byte HMAC-SHA256",
            });
        }

        let pending = self
            .pending
            .take_if(pairing_id, now, |pending| check_account(pending, account))?;
        Ok((pending, mac))
    }

    /// Counts the attempt, checks the MAC and, when it is right, claims the
    /// offer and adds the user and device.
    fn confirm_and_pair(
        &self,
        pending: &PendingPairing,
        mac: &[u8],
        account: Option<NewAccount<'_>>,
        household: &dyn HybridSigner,
        now: i64,
    ) -> Result<PairedDevice, PairingError> {
        let offer_id = pending.offer_id.as_str();
        let conn = self.store.get()?;

        let attempts = begin_attempt(&conn, offer_id, now)?;
        if pending.exchange.verify_peer(mac).is_err() {
            if attempts >= MAX_FAILED_ATTEMPTS {
                offers::forget_code(&conn, offer_id)?;
                warn!(offer = %offer_id, attempts, "pairing offer burned");
            }
            return Err(PairingError::WrongCode {
                offer_id: offer_id.to_owned(),
                attempts_left: MAX_FAILED_ATTEMPTS.saturating_sub(attempts),
            });
        }
        if !offers::claim(&conn, offer_id, now)? {
            return Err(PairingError::OfferUsed {
                offer_id: offer_id.to_owned(),
            });
        }

        match self.add_user_and_device(pending, account, household, now) {
            Ok(paired) => {
                // The device is paired and the offer used, so a failure here
                // only keeps the code, which can no longer pair, until the
                // first prune after the offer expires.
                if let Err(forget_error) = offers::forget_code(&conn, offer_id) {
                    error!(
                        offer = %offer_id,
                        error = %error_chain(&forget_error),
                        "failed to delete the code of a used pairing offer"
                    );
                }
                Ok(paired)
            }
            Err(error) => {
                if let Err(release_error) = offers::release(&conn, offer_id, now) {
                    error!(
                        offer = %offer_id,
                        error = %error_chain(&release_error),
                        "failed to release a pairing offer after a failed pairing"
                    );
                }
                Err(error)
            }
        }
    }

    /// Issues the device credential, then creates the user of a new-user
    /// offer, and registers and approves the device.
    ///
    /// NOTE: `UserStore` writes the user, the device and the approval in
    /// separate transactions. A failure between them (a database error, or
    /// another pairing of the same key at the same moment) leaves a user
    /// without a device or an unapproved device, and a retry of the same
    /// key then gets `DeviceAlreadyPaired`.
    fn add_user_and_device(
        &self,
        pending: &PendingPairing,
        account: Option<NewAccount<'_>>,
        household: &dyn HybridSigner,
        now: i64,
    ) -> Result<PairedDevice, PairingError> {
        let did = pending.device_key.did();

        let owner = match &pending.kind {
            OfferKind::NewUser { name, role } => {
                let account = account.ok_or_else(|| PairingError::AccountRequired {
                    offer_id: pending.offer_id.clone(),
                })?;
                let name = name.as_deref().unwrap_or(account.name);
                Owner::New(NewUser {
                    name,
                    did: did.clone(),
                    role: *role,
                    password: Some(account.password),
                })
            }
            OfferKind::ExistingUser { user } => Owner::Existing(self.user_for_device(*user)?),
        };

        // The user's did:key is known before the user exists (a new user
        // takes the device's), so the credential is issued first and a
        // signing failure leaves nothing behind.
        let owner_did = match &owner {
            Owner::New(new) => new.did.clone(),
            Owner::Existing(user) => user.did.clone(),
        };
        let claims = CredentialClaims::device(
            did.clone(),
            owner_did,
            &pending.device_name,
            now,
            now + DEVICE_CREDENTIAL_TTL_SECS,
        )?;
        let credential = Credential::issue(household, claims)?;

        let user = match owner {
            Owner::New(new) if pending.first_run => {
                let password = new.password.ok_or_else(|| PairingError::AccountRequired {
                    offer_id: pending.offer_id.clone(),
                })?;
                self.users.create_first_admin(new.name, new.did, password)?
            }
            Owner::New(new) => self.users.create_user(&new)?,
            Owner::Existing(user) => user,
        };
        let mut device =
            self.users
                .register_device(user.id, &pending.device_name, &pending.device_key)?;
        self.users.approve_device(device.id)?;
        device.approved = true;

        Ok(PairedDevice {
            confirmation: URL_SAFE_NO_PAD.encode(pending.exchange.confirmation()),
            device,
            user,
            credential,
        })
    }

    /// Returns the user of an existing-user offer if it can get a device.
    fn user_for_device(&self, id: UserId) -> Result<User, PairingError> {
        match self.users.user(id)? {
            Some(user) if !user.disabled => Ok(user),
            _ => Err(PairingError::UserUnavailable { id }),
        }
    }
}

impl std::fmt::Debug for PairingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairingService")
            .field("database", &self.store.path())
            .finish_non_exhaustive()
    }
}

/// The owner of the device being paired, before a new user is created.
enum Owner<'a> {
    New(NewUser<'a>),
    Existing(User),
}

/// Counts an attempt on the offer, or returns why the offer cannot pair.
fn begin_attempt(
    conn: &rusqlite::Connection,
    offer_id: &str,
    now: i64,
) -> Result<u32, PairingError> {
    // A retry is needed only when other confirmations for the same offer
    // finish between the UPDATE and the read that explains its failure.
    for _ in 0..3 {
        if let Some(attempts) = offers::begin_attempt(conn, offer_id, now)? {
            return Ok(attempts);
        }
        let Some((offer, _)) = offers::load(conn, offer_id)? else {
            return Err(PairingError::OfferNotFound {
                offer_id: offer_id.to_owned(),
            });
        };
        if let Some(error) = offer.unusable_at(now) {
            return Err(error);
        }
    }

    // Five other confirmations for this offer keep being checked at once.
    Err(PairingError::OfferBurned {
        offer_id: offer_id.to_owned(),
        attempts: MAX_FAILED_ATTEMPTS,
    })
}

/// Checks that the account fits the offer of a pending pairing.
fn check_account(
    pending: &PendingPairing,
    account: Option<&NewAccount<'_>>,
) -> Result<(), PairingError> {
    let offer_id = || pending.offer_id.clone();

    match (&pending.kind, account) {
        (OfferKind::NewUser { .. }, None) => Err(PairingError::AccountRequired {
            offer_id: offer_id(),
        }),
        (OfferKind::ExistingUser { .. }, Some(_)) => Err(PairingError::AccountNotAllowed {
            offer_id: offer_id(),
        }),
        (
            OfferKind::NewUser {
                name: Some(expected),
                ..
            },
            Some(account),
        ) if expected.to_lowercase() != account.name.to_lowercase() => {
            Err(PairingError::AccountNameMismatch {
                offer_id: offer_id(),
                expected: expected.clone(),
                found: account.name.to_owned(),
            })
        }
        _ => Ok(()),
    }
}

/// Decodes a device key as sent at pairing start: a 65-byte uncompressed
/// (or 33-byte compressed) P-256 point, or a hearth-pqc hybrid verifying key.
fn parse_device_key(text: &str) -> Result<DeviceKey, PairingError> {
    if text.len() > MAX_DEVICE_KEY_CHARS {
        return Err(PairingError::InvalidField {
            field: "device_key",
            problem: "longer than 4096 characters",
        });
    }
    let bytes = decode_b64u("device_key", text)?;

    let key = match bytes.len() {
        33 | 65 => DeviceKey::from_p256_sec1(&bytes),
        _ => HybridVerifyingKey::from_bytes(&bytes)
            .map_err(DeviceKeyError::InvalidHybrid)
            .and_then(DeviceKey::from_hybrid),
    };
    key.map_err(PairingError::InvalidDeviceKey)
}

/// Checks a device name by the rules of the devices table, before it goes
/// into the SPAKE2 additional data.
fn check_device_name(name: &str) -> Result<(), PairingError> {
    let invalid = |problem| PairingError::InvalidField {
        field: "device_name",
        problem,
    };

    if name.trim().is_empty() {
        return Err(invalid("empty"));
    }
    if name.len() > MAX_DEVICE_NAME_LEN {
        return Err(invalid("longer than 128 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("contains a control character"));
    }
    Ok(())
}

fn decode_b64u(field: &'static str, text: &str) -> Result<Vec<u8>, PairingError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| PairingError::InvalidField {
            field,
            problem: "not base64url without padding",
        })
}

/// Returns `id` if it is well formed, so that logs carry no arbitrary input.
fn loggable_id(id: &str) -> &str {
    if code::check_id("id", id).is_ok() {
        id
    } else {
        "(malformed)"
    }
}

/// Logs a failed pairing step once: a client error as a warning, a server
/// failure as an error with its causes. Neither the code nor the password is
/// in any error message.
///
/// NOTE: repeated failures are not rate-limited. An offer gets at most
/// [`MAX_FAILED_ATTEMPTS`] confirmations checked, but every rejected start
/// for a burned or expired offer logs a line.
fn log_failure(offer_id: &str, error: &PairingError, message: &'static str) {
    if error.kind() == PairingErrorKind::Internal {
        error!(offer = %offer_id, error = %error_chain(error), "{message}");
    } else {
        warn!(offer = %offer_id, error = %error, "{message}");
    }
}

/// Formats an error with its sources, separated by ": ".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
