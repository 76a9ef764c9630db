//! The `pairing_offers` table.
//!
//! Every change to an offer's state is one conditional UPDATE, so the
//! server and `hearth pair` on the host can share offers through the
//! database file without a lock of their own.

use rusqlite::{Connection, OptionalExtension as _, params};
use zeroize::Zeroizing;

use super::code::PairingCode;
use super::{MAX_FAILED_ATTEMPTS, PairingError};
use crate::role::Role;
use crate::users::UserId;

/// How long an expired offer stays in the table, so that its id still gets
/// "expired" rather than "not found": one day, in seconds.
const EXPIRED_RETENTION_SECS: i64 = 86_400;

/// The user a pairing offer adds a device for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferKind {
    /// Creates a user when the device pairs; the person pairing chooses the
    /// password.
    NewUser {
        /// The user's name. `None` lets the person pairing choose it, as in
        /// first-run setup.
        name: Option<String>,
        /// The user's role.
        role: Role,
    },
    /// Adds the device to a user who exists.
    ExistingUser {
        /// The user.
        user: UserId,
    },
}

/// The creator of an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferCreator {
    /// An admin, through the API.
    User(UserId),
    /// `hearth pair` on the server host.
    HostCli,
    /// The server at its first start, with no users yet. Such an offer
    /// creates an admin only while the household still has no users.
    FirstRun,
}

/// A pairing offer as stored, without its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The offer id: 16 random bytes, base64url.
    pub id: String,
    /// The user the offer is for.
    pub kind: OfferKind,
    /// The offer's creator.
    pub created_by: OfferCreator,
    /// Creation time in Unix seconds.
    pub created_at: i64,
    /// Expiry time in Unix seconds; the offer is invalid from this second on.
    pub expires_at: i64,
    /// Failed confirmations so far, plus any confirmation being checked.
    pub attempts: u32,
    /// Time the offer paired a device, in Unix seconds.
    pub used_at: Option<i64>,
}

impl Offer {
    /// Returns the error that stops this offer from pairing at `now`, if any.
    pub(super) fn unusable_at(&self, now: i64) -> Option<PairingError> {
        let offer_id = self.id.clone();
        if self.used_at.is_some() {
            Some(PairingError::OfferUsed { offer_id })
        } else if self.attempts >= MAX_FAILED_ATTEMPTS {
            Some(PairingError::OfferBurned {
                offer_id,
                attempts: self.attempts,
            })
        } else if now >= self.expires_at {
            Some(PairingError::OfferExpired {
                offer_id,
                expired_at: self.expires_at,
            })
        } else {
            None
        }
    }
}

/// Inserts a new offer with its code.
pub(super) fn insert(
    conn: &Connection,
    offer: &Offer,
    code: &PairingCode,
) -> Result<(), PairingError> {
    let (kind, name, role, user) = match &offer.kind {
        OfferKind::NewUser { name, role } => {
            ("new_user", name.as_deref(), Some(role.as_str()), None)
        }
        OfferKind::ExistingUser { user } => ("existing_user", None, None, Some(user.0)),
    };
    let (created_by, created_by_user) = match offer.created_by {
        OfferCreator::User(id) => ("user", Some(id.0)),
        OfferCreator::HostCli => ("host_cli", None),
        OfferCreator::FirstRun => ("first_run", None),
    };

    conn.execute(
        "INSERT INTO pairing_offers (id, code, kind, new_user_name, new_user_role, user_id, \
         created_by, created_by_user, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            offer.id,
            code.as_str(),
            kind,
            name,
            role,
            user,
            created_by,
            created_by_user,
            offer.created_at,
            offer.expires_at
        ],
    )?;
    Ok(())
}

/// Reads an offer and, while it has one, its code.
pub(super) fn load(
    conn: &Connection,
    offer_id: &str,
) -> Result<Option<(Offer, Option<PairingCode>)>, PairingError> {
    let row = conn
        .query_row(
            &format!("SELECT {OFFER_COLUMNS}, code FROM pairing_offers WHERE id = ?1"),
            [offer_id],
            |row| Ok((read_offer_row(row)?, row.get::<_, Option<String>>(11)?)),
        )
        .optional()?;
    let Some((row, code)) = row else {
        return Ok(None);
    };

    let code = code.map(|code| PairingCode::from_stored(Zeroizing::new(code)));
    Ok(Some((row.into_offer()?, code)))
}

/// Counts an attempt on an offer that can still pair, before its
/// confirmation is checked. Returns the attempts now recorded, or `None`
/// when the offer is missing, used, burned or expired.
///
/// Counting first means that concurrent confirmations for one offer cannot
/// test more than [`MAX_FAILED_ATTEMPTS`] codes between them.
pub(super) fn begin_attempt(
    conn: &Connection,
    offer_id: &str,
    now: i64,
) -> Result<Option<u32>, PairingError> {
    let attempts = conn
        .query_row(
            "UPDATE pairing_offers SET attempts = attempts + 1 \
             WHERE id = ?1 AND used_at IS NULL AND attempts < ?2 AND expires_at > ?3 \
             RETURNING attempts",
            params![offer_id, MAX_FAILED_ATTEMPTS, now],
            |row| row.get(0),
        )
        .optional()?;
    Ok(attempts)
}

/// Marks the offer used by the attempt that [`begin_attempt`] counted and
/// whose confirmation was right, which then no longer counts as failed.
/// Returns false when another attempt used the offer first.
pub(super) fn claim(conn: &Connection, offer_id: &str, now: i64) -> Result<bool, PairingError> {
    let changed = conn.execute(
        "UPDATE pairing_offers SET used_at = ?2, attempts = attempts - 1 \
         WHERE id = ?1 AND used_at IS NULL",
        params![offer_id, now],
    )?;
    Ok(changed == 1)
}

/// Undoes [`claim`] after the user or device could not be added, so that
/// the person pairing can try again with the same code.
pub(super) fn release(conn: &Connection, offer_id: &str, used_at: i64) -> Result<(), PairingError> {
    conn.execute(
        "UPDATE pairing_offers SET used_at = NULL WHERE id = ?1 AND used_at = ?2",
        params![offer_id, used_at],
    )?;
    Ok(())
}

/// Deletes the code of an offer that can no longer pair.
pub(super) fn forget_code(conn: &Connection, offer_id: &str) -> Result<(), PairingError> {
    conn.execute(
        "UPDATE pairing_offers SET code = NULL WHERE id = ?1",
        [offer_id],
    )?;
    Ok(())
}

/// Deletes the codes of expired offers, and offers that expired more than a
/// day ago. Returns the number of offers deleted.
pub(super) fn prune(conn: &Connection, now: i64) -> Result<usize, PairingError> {
    conn.execute(
        "UPDATE pairing_offers SET code = NULL WHERE code IS NOT NULL AND expires_at <= ?1",
        [now],
    )?;
    let deleted = conn.execute(
        "DELETE FROM pairing_offers WHERE expires_at <= ?1",
        [now - EXPIRED_RETENTION_SECS],
    )?;
    Ok(deleted)
}

/// Columns of an offer row, in [`read_offer_row`] order.
const OFFER_COLUMNS: &str = "id, kind, new_user_name, new_user_role, user_id, created_by, \
                             created_by_user, created_at, expires_at, attempts, used_at";

/// An offer row before its text columns are parsed.
struct OfferRow {
    id: String,
    kind: String,
    new_user_name: Option<String>,
    new_user_role: Option<String>,
    user_id: Option<i64>,
    created_by: String,
    created_by_user: Option<i64>,
    created_at: i64,
    expires_at: i64,
    attempts: i64,
    used_at: Option<i64>,
}

fn read_offer_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OfferRow> {
    Ok(OfferRow {
        id: row.get(0)?,
        kind: row.get(1)?,
        new_user_name: row.get(2)?,
        new_user_role: row.get(3)?,
        user_id: row.get(4)?,
        created_by: row.get(5)?,
        created_by_user: row.get(6)?,
        created_at: row.get(7)?,
        expires_at: row.get(8)?,
        attempts: row.get(9)?,
        used_at: row.get(10)?,
    })
}

impl OfferRow {
    fn into_offer(self) -> Result<Offer, PairingError> {
        let corrupt = |column| PairingError::CorruptOffer {
            offer_id: self.id.clone(),
            column,
        };

        let kind = match (
            self.kind.as_str(),
            self.new_user_role.as_deref(),
            self.user_id,
        ) {
            ("new_user", Some(role), None) => OfferKind::NewUser {
                name: self.new_user_name.clone(),
                role: role.parse().map_err(|_| corrupt("new_user_role"))?,
            },
            ("existing_user", None, Some(user)) => OfferKind::ExistingUser { user: UserId(user) },
            _ => return Err(corrupt("kind")),
        };
        let created_by = match (self.created_by.as_str(), self.created_by_user) {
            ("user", Some(user)) => OfferCreator::User(UserId(user)),
            ("host_cli", None) => OfferCreator::HostCli,
            ("first_run", None) => OfferCreator::FirstRun,
            _ => return Err(corrupt("created_by")),
        };
        let attempts = u32::try_from(self.attempts).map_err(|_| corrupt("attempts"))?;

        Ok(Offer {
            id: self.id,
            kind,
            created_by,
            created_at: self.created_at,
            expires_at: self.expires_at,
            attempts,
            used_at: self.used_at,
        })
    }
}
