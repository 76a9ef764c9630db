//! The pairing error and its HTTP classes.

use hearth_store::StoreError;

use crate::credential::CredentialError;
use crate::device_key::DeviceKeyError;
use crate::pake::PakeError;
use crate::password::PasswordError;
use crate::users::{UserError, UserId};

/// Error from creating an offer or from a pairing step.
#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    /// A request field is malformed (bad base64url, wrong length, too long).
    #[error("invalid {field}: {problem}")]
    InvalidField {
        /// The request field.
        field: &'static str,
        /// The rule broken.
        problem: &'static str,
    },

    /// The device key is neither a P-256 point nor a hybrid verifying key.
    #[error("invalid device_key: expected a raw P-256 public key or a hybrid verifying key")]
    InvalidDeviceKey(#[source] DeviceKeyError),

    /// The device's SPAKE2 share is not a usable P-256 point.
    #[error(
        "invalid share: expected the device's SPAKE2 share, a 65-byte uncompressed P-256 point"
    )]
    InvalidShare(#[source] PakeError),

    /// No offer has this id, or it was pruned a day after it expired.
    #[error("pairing offer {offer_id} not found; check the link or ask an admin for a new code")]
    OfferNotFound {
        /// The offer id given.
        offer_id: String,
    },

    /// The offer's 10 minutes are over.
    #[error(
        "pairing offer {offer_id} expired at {expired_at} (Unix time); ask an admin for a new code"
    )]
    OfferExpired {
        /// The offer id.
        offer_id: String,
        /// Expiry time in Unix seconds.
        expired_at: i64,
    },

    /// The offer has already paired a device.
    #[error(
        "pairing offer {offer_id} was already used to pair a device; ask an admin for a new code"
    )]
    OfferUsed {
        /// The offer id.
        offer_id: String,
    },

    /// The offer burned itself after too many failed attempts.
    #[error(
        "pairing offer {offer_id} is burned after {attempts} failed attempts; ask an admin for a new code"
    )]
    OfferBurned {
        /// The offer id.
        offer_id: String,
        /// Failed attempts recorded.
        attempts: u32,
    },

    /// No pending pairing has this id: never started, already finished or
    /// failed, or older than 2 minutes.
    #[error("pairing {pairing_id} not found or expired; start pairing again")]
    PairingNotFound {
        /// The pairing id given.
        pairing_id: String,
    },

    /// The device's confirmation MAC is wrong: another code, or the device
    /// key, device name or offer id differs from what the device used.
    #[error(
        "pairing code does not match for offer {offer_id}, or the request was modified; {attempts_left} attempts left before the offer burns"
    )]
    WrongCode {
        /// The offer id.
        offer_id: String,
        /// Failed attempts the offer still accepts.
        attempts_left: u32,
    },

    /// A device with this key is already paired.
    #[error("device {did} is already paired; revoke it first or pair with a new key")]
    DeviceAlreadyPaired {
        /// The device's did:key.
        did: String,
    },

    /// A new-user offer was finished without an account.
    #[error(
        "pairing offer {offer_id} creates a new user; send an account with a name and a password"
    )]
    AccountRequired {
        /// The offer id.
        offer_id: String,
    },

    /// An existing-user offer was finished with an account.
    #[error("pairing offer {offer_id} adds a device to an existing user; send no account")]
    AccountNotAllowed {
        /// The offer id.
        offer_id: String,
    },

    /// The account name is not the one the offer was made for.
    #[error("pairing offer {offer_id} is for user {expected:?}, not {found:?}")]
    AccountNameMismatch {
        /// The offer id.
        offer_id: String,
        /// The name in the offer.
        expected: String,
        /// The name sent.
        found: String,
    },

    /// The user of an existing-user offer is disabled or no longer exists.
    #[error("user {id} cannot receive a device: the account is disabled or deleted", id = id.0)]
    UserUnavailable {
        /// The user.
        id: UserId,
    },

    /// Too many pairings are between start and finish.
    #[error("too many pairings in progress ({limit}); retry in a minute")]
    TooManyPending {
        /// The limit.
        limit: usize,
    },

    /// Creating the user or registering the device failed.
    #[error("failed to add the paired user or device")]
    Users(#[from] UserError),

    /// The device credential could not be issued.
    #[error("failed to issue the device credential")]
    Credential(#[from] CredentialError),

    /// The database could not be opened or migrated.
    #[error("failed to open or migrate the pairing offers table")]
    Store(#[from] StoreError),

    /// A query on the offers table failed.
    #[error("pairing offers query failed")]
    Sqlite(#[from] rusqlite::Error),

    /// A stored offer has a value this build cannot read.
    #[error("malformed pairing offer {offer_id}: invalid {column}")]
    CorruptOffer {
        /// The offer id.
        offer_id: String,
        /// The column with the bad value.
        column: &'static str,
    },

    /// The operating system's random number generator failed.
    #[error("failed to generate a random pairing {item}")]
    Random {
        /// The value being generated.
        item: &'static str,
        /// The generator's error.
        #[source]
        source: getrandom::Error,
    },
}

/// The class of a [`PairingError`], which decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingErrorKind {
    /// The request is malformed or breaks a rule on names or passwords (400).
    BadRequest,
    /// The confirmation is wrong, or the user cannot get devices (403).
    Forbidden,
    /// The offer or the pending pairing does not exist (404).
    NotFound,
    /// The offer or a name or key it needs is already taken (409).
    Conflict,
    /// The offer expired (410).
    Expired,
    /// The offer burned itself after failed attempts (410).
    Burned,
    /// The server is at its limit of pending pairings (503).
    Unavailable,
    /// A database, random generator or signing failure (500).
    Internal,
}

impl PairingError {
    /// Returns the class of the error, for the HTTP status.
    pub fn kind(&self) -> PairingErrorKind {
        use PairingErrorKind as Kind;
        match self {
            Self::InvalidField { .. }
            | Self::InvalidDeviceKey(_)
            | Self::InvalidShare(_)
            | Self::AccountRequired { .. }
            | Self::AccountNotAllowed { .. }
            | Self::AccountNameMismatch { .. } => Kind::BadRequest,
            Self::WrongCode { .. } | Self::UserUnavailable { .. } => Kind::Forbidden,
            Self::OfferNotFound { .. } | Self::PairingNotFound { .. } => Kind::NotFound,
            Self::OfferUsed { .. } | Self::DeviceAlreadyPaired { .. } => Kind::Conflict,
            Self::OfferExpired { .. } => Kind::Expired,
            Self::OfferBurned { .. } => Kind::Burned,
            Self::TooManyPending { .. } => Kind::Unavailable,
            Self::Users(error) => user_error_kind(error),
            Self::Credential(_)
            | Self::Store(_)
            | Self::Sqlite(_)
            | Self::CorruptOffer { .. }
            | Self::Random { .. } => Kind::Internal,
        }
    }
}

fn user_error_kind(error: &UserError) -> PairingErrorKind {
    match error {
        UserError::InvalidName { .. }
        | UserError::InvalidDeviceName { .. }
        | UserError::Password(PasswordError::TooShort { .. } | PasswordError::TooLong { .. }) => {
            PairingErrorKind::BadRequest
        }
        UserError::NameTaken { .. } | UserError::DidTaken { .. } | UserError::AlreadySetUp => {
            PairingErrorKind::Conflict
        }
        UserError::UserNotFound { .. } => PairingErrorKind::Forbidden,
        _ => PairingErrorKind::Internal,
    }
}
