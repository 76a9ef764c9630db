//! Pairings between start and finish, kept in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use super::PairingError;
use super::offers::OfferKind;
use crate::device_key::DeviceKey;
use crate::pake::Spake2Output;

/// The server's half of a started pairing.
pub(super) struct PendingPairing {
    pub(super) offer_id: String,
    pub(super) kind: OfferKind,
    /// Whether the offer is a first-run offer, which creates an admin only
    /// while the household has no users.
    pub(super) first_run: bool,
    pub(super) device_key: DeviceKey,
    pub(super) device_name: String,
    /// The finished SPAKE2 exchange; its MACs cover the offer id, the
    /// device key and the device name.
    pub(super) exchange: Spake2Output,
    /// Time in Unix seconds from which finish rejects the pairing.
    pub(super) expires_at: i64,
}

/// Most pairings one offer may have between start and finish.
pub(super) const PER_OFFER: usize = 4;

/// A bounded map from pairing id to pending pairing.
pub(super) struct PendingPairings {
    limit: usize,
    entries: Mutex<HashMap<String, PendingPairing>>,
}

impl PendingPairings {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Adds a pairing after dropping expired ones.
    ///
    /// # Errors
    ///
    /// Returns [`PairingError::TooManyPending`] when `limit` pairings that
    /// have not expired are pending.
    pub(super) fn insert(
        &self,
        pairing_id: String,
        pending: PendingPairing,
        now: i64,
    ) -> Result<(), PairingError> {
        let mut entries = self.lock();
        entries.retain(|_, entry| entry.expires_at > now);
        // One offer holds at most PER_OFFER pairings, dropping its oldest,
        // so that starts against one known offer id cannot fill the table
        // for every other offer.
        let of_offer: Vec<(&String, i64)> =
            entries.iter().filter(|(_, entry)| entry.offer_id == pending.offer_id).map(|(id, entry)| (id, entry.expires_at)).collect();
        if of_offer.len() >= PER_OFFER
            && let Some(oldest) = of_offer.iter().min_by_key(|(_, expires)| *expires).map(|(id, _)| (*id).clone())
        {
            entries.remove(&oldest);
        }
        if entries.len() >= self.limit {
            return Err(PairingError::TooManyPending { limit: self.limit });
        }

        entries.insert(pairing_id, pending);
        Ok(())
    }

    /// Removes and returns the pairing when `check` accepts it. An expired
    /// pairing is removed and reported as not found; one that `check`
    /// rejects stays, so the device can send a corrected request.
    pub(super) fn take_if(
        &self,
        pairing_id: &str,
        now: i64,
        check: impl FnOnce(&PendingPairing) -> Result<(), PairingError>,
    ) -> Result<PendingPairing, PairingError> {
        let mut entries = self.lock();
        let not_found = || PairingError::PairingNotFound {
            pairing_id: pairing_id.to_owned(),
        };

        let entry = entries.get(pairing_id).ok_or_else(not_found)?;
        if entry.expires_at <= now {
            entries.remove(pairing_id);
            return Err(not_found());
        }
        check(entry)?;

        Ok(entries
            .remove(pairing_id)
            .expect("the entry was found under the same lock"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingPairing>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
