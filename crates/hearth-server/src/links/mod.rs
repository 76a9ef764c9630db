//! Link keys between two Hearth nodes (a NAS and a desktop, say), set up
//! over HTTPS with the handshake of [`hearth_pqc::qkd`].
//!
//! Each node has an SAE id (`[node] sae_id`, default the host name) and an
//! X-Wing key pair, sealed in the key store as [`records::NODE_KEM_KEY`] and
//! created at first start. An admin starts a link on one node, the master,
//! towards another, the slave (`POST /api/v1/admin/links`, CLI `hearth link`). The
//! master fetches the slave's public key, sends an offer with an X-Wing
//! ciphertext and, when this node has a KME (`[qkd]`), the id of a QKD key
//! shared with the slave. Both sides confirm the key before either stores
//! it, sealed as `link-<peer SAE id>`; re-linking adds a version.
//!
//! Without a KME, with a KME that is down, or when the slave cannot obtain
//! the QKD key, the link key uses X-Wing alone, and both the log and
//! `GET /api/v1/admin/links` say why.
//!
//! The master authenticates to the slave with a one-time invitation that
//! the slave's admin created ([`invites`]), and trusts only the slave's
//! household CA for TLS. The slave's public key
//! arrives over that TLS connection, which is what authenticates it.
//! An invitation opens only the slave's three link routes, for 10 minutes,
//! and ends when a key is stored with it.
//!
//! Files: [`wire`] (JSON bodies), [`records`] (sealed storage),
//! [`pending`] (slave handshakes in progress), [`master`] (the master's
//! side against a peer), [`error`]. The HTTP handlers are in
//! `crate::api::links`.

pub mod error;
pub mod invites;
pub mod master;
pub mod pending;
pub mod records;
pub mod wire;

use std::sync::{Arc, Mutex};

use hearth_pqc::kem::{XWingPublicKey, XWingSecretKey};
use hearth_pqc::keystore::SealedKeyStore;
use hearth_pqc::qkd::{LinkKey, LinkOffer, QkdKeySource};

use crate::rotation::KeyRotation;

pub use error::LinkServiceError;
pub use records::{LinkInfo, LinkRole};

use pending::PendingHandshakes;
use wire::{NodeInfo, WIRE_VERSION, encode_bytes};

/// The sealed key store that link keys live in.
pub enum KeyStoreHandle {
    /// The store the server's [`KeyRotation`] opened.
    Rotation(Arc<KeyRotation>),
    /// A store opened for this purpose alone (tests).
    Own(SealedKeyStore),
}

impl KeyStoreHandle {
    fn get(&self) -> &SealedKeyStore {
        match self {
            Self::Rotation(rotation) => rotation.key_store(),
            Self::Own(store) => store,
        }
    }
}

/// This node's identity, its X-Wing key pair, its KME client and the
/// handshakes it is in the middle of as a slave.
pub struct NodeLinks {
    sae_id: String,
    secret_key: XWingSecretKey,
    public_key: XWingPublicKey,
    keys: KeyStoreHandle,
    qkd: Option<Arc<dyn QkdKeySource>>,
    pending: PendingHandshakes,
    /// Serialises writes of link keys, so that two links set up at once
    /// cannot lose each other's entry in the link index.
    writing: Mutex<()>,
    /// Serialises the check and update of the accepted-offer record, so that
    /// two copies of one offer sent at once cannot both pass.
    offers: Mutex<()>,
    /// One-time invitations for other nodes to link with this one.
    pub invites: invites::LinkInvites,
}

impl NodeLinks {
    /// Loads this node's X-Wing key from `keys`, creating it on first start.
    /// `qkd` is this node's KME client, if configured. Blocks on file I/O.
    pub fn open(sae_id: String, keys: KeyStoreHandle, qkd: Option<Arc<dyn QkdKeySource>>) -> Result<Self, LinkServiceError> {
        let secret_key = records::load_or_create_node_key(keys.get())?;
        let public_key = secret_key.public_key();
        Ok(Self {
            sae_id,
            secret_key,
            public_key,
            keys,
            qkd,
            pending: PendingHandshakes::default(),
            writing: Mutex::new(()),
            offers: Mutex::new(()),
            invites: invites::LinkInvites::default(),
        })
    }

    /// Seals a confirmed link key for `peer_sae_id` as a new version and
    /// returns its summary. Blocks on file I/O.
    pub fn store_link(&self, peer_sae_id: &str, role: LinkRole, key: &LinkKey) -> Result<LinkInfo, LinkServiceError> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        records::store_link(self.keys.get(), peer_sae_id, role, key)
    }

    /// Fails with [`LinkServiceError::ReplayedOffer`] when an offer with
    /// this X-Wing ciphertext was accepted before. Blocks on file I/O.
    pub fn check_offer_unseen(&self, offer: &LinkOffer) -> Result<(), LinkServiceError> {
        let fingerprint = records::offer_fingerprint(&offer.ciphertext.to_bytes());
        if records::offer_seen(self.keys.get(), &fingerprint)? {
            return Err(replayed(offer, fingerprint));
        }
        Ok(())
    }

    /// Records the offer's X-Wing ciphertext as accepted, failing with
    /// [`LinkServiceError::ReplayedOffer`] when it was already recorded. The
    /// record survives restarts. Blocks on file I/O.
    pub fn remember_offer(&self, offer: &LinkOffer) -> Result<(), LinkServiceError> {
        let _offers = self.offers.lock().unwrap_or_else(|p| p.into_inner());
        let fingerprint = records::offer_fingerprint(&offer.ciphertext.to_bytes());
        if !records::remember_offer(self.keys.get(), &fingerprint)? {
            return Err(replayed(offer, fingerprint));
        }
        Ok(())
    }

    /// Returns this node's SAE id.
    pub fn sae_id(&self) -> &str {
        &self.sae_id
    }

    /// Returns what a peer needs to link with this node.
    pub fn node_info(&self) -> NodeInfo {
        NodeInfo {
            version: WIRE_VERSION,
            sae_id: self.sae_id.clone(),
            xwing_public_key: encode_bytes(&self.public_key.to_bytes()),
            qkd_configured: self.qkd.is_some(),
        }
    }

    /// Returns this node's KME client, if one is configured.
    pub fn qkd(&self) -> Option<&dyn QkdKeySource> {
        self.qkd.as_deref()
    }

    /// Returns this node's X-Wing secret key.
    pub fn secret_key(&self) -> &XWingSecretKey {
        &self.secret_key
    }

    /// Returns the slave handshakes waiting for the master's finish message.
    pub fn pending(&self) -> &PendingHandshakes {
        &self.pending
    }

    /// Lists the current link key of every peer, by peer SAE id. Blocks on
    /// file I/O.
    pub fn list_links(&self) -> Result<Vec<LinkInfo>, LinkServiceError> {
        records::list_links(self.keys.get())
    }
}

/// Logs a replayed offer and returns its error.
fn replayed(offer: &LinkOffer, fingerprint: String) -> LinkServiceError {
    tracing::warn!(
        master_sae = %offer.master_sae_id,
        offer_fingerprint = %fingerprint,
        "replayed link offer rejected: its X-Wing ciphertext was accepted before"
    );
    LinkServiceError::ReplayedOffer { master_sae_id: offer.master_sae_id.clone(), fingerprint }
}
