//! Slave handshakes between the reply and the master's finish message,
//! kept in memory for [`HANDSHAKE_TTL`] and at most [`MAX_PENDING`] at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hearth_pqc::qkd::SlaveHandshake;

use super::LinkServiceError;

/// Time the master has to send the finish message after the reply.
pub const HANDSHAKE_TTL: Duration = Duration::from_secs(60);
/// Maximum handshakes waiting for a finish message at once. Linking is an
/// admin action, so a handful is plenty. The bound keeps a caller with the
/// admin token from filling memory or draining the KME with unfinished offers.
pub const MAX_PENDING: usize = 16;

/// The pending slave handshakes, by handshake id.
#[derive(Default)]
pub struct PendingHandshakes {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Places promised to offers that are still being accepted.
    reserved: usize,
}

struct Entry {
    master_sae_id: String,
    handshake: SlaveHandshake,
    started: Instant,
}

/// A place in the table, taken before the offer is accepted so that a full
/// table rejects the offer before it costs a QKD key. Dropping it unused
/// frees the place.
pub struct Reservation<'a> {
    table: &'a PendingHandshakes,
    used: bool,
}

impl PendingHandshakes {
    /// Reserves a place for one handshake, after dropping expired ones.
    pub fn reserve(&self) -> Result<Reservation<'_>, LinkServiceError> {
        let mut state = self.lock();
        let now = Instant::now();
        state.entries.retain(|_, entry| now.duration_since(entry.started) < HANDSHAKE_TTL);

        if state.entries.len() + state.reserved >= MAX_PENDING {
            return Err(LinkServiceError::TooManyHandshakes { max: MAX_PENDING, ttl_secs: HANDSHAKE_TTL.as_secs() });
        }
        state.reserved += 1;
        Ok(Reservation { table: self, used: false })
    }

    /// Removes the handshake `id` and returns it with the master's SAE id,
    /// or `None` when it is unknown or older than [`HANDSHAKE_TTL`].
    pub fn take(&self, id: &str) -> Option<(String, SlaveHandshake)> {
        let entry = self.lock().entries.remove(id)?;
        if entry.started.elapsed() >= HANDSHAKE_TTL {
            return None;
        }
        Some((entry.master_sae_id, entry.handshake))
    }

    /// Returns the number of handshakes waiting, expired ones included.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Returns whether no handshake is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Reservation<'_> {
    /// Stores `handshake` in the reserved place and returns its new id
    /// (32 random hex digits).
    pub fn insert(mut self, master_sae_id: String, handshake: SlaveHandshake) -> String {
        let id = hex::encode(rand::random::<[u8; 16]>());
        let entry = Entry { master_sae_id, handshake, started: Instant::now() };

        let mut state = self.table.lock();
        state.reserved -= 1;
        state.entries.insert(id.clone(), entry);
        self.used = true;
        id
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.used {
            self.table.lock().reserved -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use hearth_pqc::kem::XWingSecretKey;
    use hearth_pqc::qkd::{LinkPeers, accept, initiate};

    use super::*;

    fn slave_handshake() -> SlaveHandshake {
        let key = XWingSecretKey::generate();
        let peers = LinkPeers { master_sae_id: "a".to_owned(), slave_sae_id: "b".to_owned() };
        let (offer, _) = initiate(&peers, &key.public_key(), None).unwrap();
        accept(&peers, &key, &offer, None).unwrap().1
    }

    #[test]
    fn table_is_bounded_and_reservations_count() {
        let table = PendingHandshakes::default();

        let mut reservations: Vec<_> = (0..MAX_PENDING).map(|_| table.reserve().unwrap()).collect();
        let full = table.reserve();
        reservations.pop();
        let after_drop = table.reserve();

        assert!(matches!(full, Err(LinkServiceError::TooManyHandshakes { .. })));
        assert!(after_drop.is_ok());
    }

    #[test]
    fn handshake_is_taken_once() {
        let table = PendingHandshakes::default();
        let id = table.reserve().unwrap().insert("a".to_owned(), slave_handshake());

        let first = table.take(&id);
        let second = table.take(&id);

        assert_eq!(first.map(|(master, _)| master).as_deref(), Some("a"));
        assert!(second.is_none());
        assert!(table.is_empty());
    }
}
