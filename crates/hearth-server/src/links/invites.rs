//! One-time invitations that let another node run one link handshake with
//! this one, in place of a standing admin credential.
//!
//! An admin on this node creates an invitation (`hearth link-invite` on the
//! host, or `POST /api/v1/admin/link-invites`) and hands it to the admin of
//! the other node, who passes it to `hearth link --peer-invite`. The master
//! node sends it in the `Hearth-Link-Invite` header of the three slave
//! requests (node, offer, finish). It is valid for 10 minutes and ends when
//! a link key is stored with it. Only a SHA-256 hash of each invitation is
//! kept, in memory, so a restart voids every open invitation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Request header that carries an invitation.
pub const INVITE_HEADER: &str = "hearth-link-invite";
/// How long an invitation stays valid.
pub const INVITE_TTL: Duration = Duration::from_secs(600);
/// Most open invitations kept; creating more drops the oldest.
const MAX_INVITES: usize = 32;

/// Open invitations by the hash of their secret.
#[derive(Default)]
pub struct LinkInvites {
    open: Mutex<HashMap<[u8; 32], Instant>>,
}

/// An accepted invitation, carried in the request extensions so that the
/// finish step can end it.
#[derive(Debug, Clone)]
pub struct AcceptedInvite(pub String);

impl LinkInvites {
    /// Creates an invitation and returns it with its expiry in Unix seconds.
    pub fn create(&self) -> (String, u64) {
        // Hex, so that no invitation starts with '-' and looks like a
        // command-line option.
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, expires| *expires > now);
        if open.len() >= MAX_INVITES
            && let Some(oldest) = open.iter().min_by_key(|(_, expires)| **expires).map(|(hash, _)| *hash)
        {
            open.remove(&oldest);
        }
        open.insert(hash(&secret), now + INVITE_TTL);
        let expires_at = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + INVITE_TTL.as_secs();
        (secret, expires_at)
    }

    /// Returns whether `secret` is an open, unexpired invitation.
    pub fn is_open(&self, secret: &str) -> bool {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&hash(secret)).is_some_and(|expires| *expires > Instant::now())
    }

    /// Ends an invitation after a link key was stored with it.
    pub fn close(&self, secret: &str) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(&hash(secret));
    }
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_opens_until_closed() {
        let invites = LinkInvites::default();
        let (secret, _) = invites.create();

        assert!(invites.is_open(&secret));
        assert!(!invites.is_open("not-an-invitation"));
        invites.close(&secret);
        assert!(!invites.is_open(&secret));
    }

    #[test]
    fn oldest_invites_dropped_at_limit() {
        let invites = LinkInvites::default();
        let (first, _) = invites.create();
        for _ in 0..MAX_INVITES {
            invites.create();
        }

        assert!(!invites.is_open(&first));
    }
}
