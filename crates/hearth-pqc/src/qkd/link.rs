//! The link-key handshake: X-Wing encapsulation, an optional QKD key, and
//! key confirmation in both directions. The module documentation of
//! [`crate::qkd`] describes the message flow.

use std::fmt;

use subtle::ConstantTimeEq;

use super::error::{LinkError, QkdError};
use super::source::{QkdKey, QkdKeySource};
use crate::kem::{self, SharedSecret, XWingCiphertext, XWingPublicKey, XWingSecretKey};

/// Size of the QKD key mixed into a link key, in bits.
pub const QKD_KEY_BITS: u32 = 256;

/// Prefix of every derivation context, naming this protocol and its version.
const CONTEXT_LABEL: &[u8] = b"hearth/qkd-link/v1";

/// Purpose of a derivation. Each purpose yields an independent key.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Purpose {
    LinkKey = 1,
    SlaveConfirmation = 2,
    MasterConfirmation = 3,
}

/// The two ends of a link, named by their SAE ids. The master starts the
/// handshake and obtains the QKD key; the slave accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPeers {
    /// SAE id of the node that starts the handshake.
    pub master_sae_id: String,
    /// SAE id of the node that accepts it.
    pub slave_sae_id: String,
}

/// Message 1, master to slave: the X-Wing ciphertext and the id of the QKD
/// key mixed in, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkOffer {
    /// SAE id of the master.
    pub master_sae_id: String,
    /// SAE id of the slave.
    pub slave_sae_id: String,
    /// X-Wing ciphertext for the slave's public key.
    pub ciphertext: XWingCiphertext,
    /// Id of the QKD key the master mixed in; `None` when it used X-Wing alone.
    pub qkd_key_id: Option<String>,
}

/// Message 2, slave to master: proof that the slave derived the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkReply {
    /// The slave's key-confirmation tag.
    pub confirmation: [u8; 32],
}

/// Message 3, master to slave: proof that the master derived the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFinish {
    /// The master's key-confirmation tag.
    pub confirmation: [u8; 32],
}

/// Reason a link key uses X-Wing alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkdFallback {
    /// This node has no QKD key source configured.
    NotConfigured,
    /// The master's KME was unavailable (503 or a transport failure).
    KmeUnavailable,
    /// The slave could not obtain the QKD key the master offered, so the
    /// master started over without QKD.
    SlaveKeyUnavailable,
    /// The master's offer carried no QKD key id (seen by the slave).
    NotOffered,
}

impl QkdFallback {
    /// Returns a short description for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotConfigured => "no QKD key source configured",
            Self::KmeUnavailable => "KME unavailable",
            Self::SlaveKeyUnavailable => "slave could not obtain the QKD key",
            Self::NotOffered => "master offered no QKD key",
        }
    }
}

impl fmt::Display for QkdFallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A confirmed link key and how it was made.
pub struct LinkKey {
    key: SharedSecret,
    qkd_key_id: Option<String>,
    fallback: Option<QkdFallback>,
}

impl LinkKey {
    /// Returns the 32-byte key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// Returns whether a QKD key was mixed into the X-Wing secret.
    pub fn qkd_used(&self) -> bool {
        self.qkd_key_id.is_some()
    }

    /// Id of the QKD key mixed in, if any.
    pub fn qkd_key_id(&self) -> Option<&str> {
        self.qkd_key_id.as_deref()
    }

    /// Returns the reason the key uses X-Wing alone, or `None` when a QKD
    /// key was mixed in.
    pub fn fallback(&self) -> Option<QkdFallback> {
        self.fallback
    }
}

impl fmt::Debug for LinkKey {
    /// Prints how the key was made, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkKey")
            .field("qkd_key_id", &self.qkd_key_id)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

/// The master's state between the offer and the slave's reply.
pub struct MasterHandshake {
    peers: LinkPeers,
    slave_public_key: XWingPublicKey,
    key: LinkKey,
    slave_confirmation: SharedSecret,
    master_confirmation: SharedSecret,
}

/// The slave's state between its reply and the master's finish.
pub struct SlaveHandshake {
    peers: LinkPeers,
    key: LinkKey,
    master_confirmation: SharedSecret,
}

impl fmt::Debug for MasterHandshake {
    /// Prints the peers and the key's origin, never a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterHandshake").field("peers", &self.peers).field("key", &self.key).finish_non_exhaustive()
    }
}

impl fmt::Debug for SlaveHandshake {
    /// Prints the peers and the key's origin, never a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlaveHandshake").field("peers", &self.peers).field("key", &self.key).finish_non_exhaustive()
    }
}

/// Starts a handshake as the master: encapsulates to the slave's X-Wing
/// public key and, when `qkd` is set, obtains one 256-bit QKD key shared
/// with the slave.
///
/// Without a key source, or when the KME is unavailable (503, transport
/// failure), the offer uses X-Wing alone, and a warning names the reason.
/// Other key-source errors fail the handshake, because they mean a
/// misconfigured or misbehaving KME that an operator should fix.
pub fn initiate(
    peers: &LinkPeers,
    slave_public_key: &XWingPublicKey,
    qkd: Option<&dyn QkdKeySource>,
) -> Result<(LinkOffer, MasterHandshake), LinkError> {
    let qkd_key = match qkd {
        None => Err(QkdFallback::NotConfigured),
        Some(source) => fetch_master_key(peers, source)?,
    };

    match qkd_key {
        Ok(qkd_key) => start(peers, slave_public_key, Some(qkd_key), None),
        Err(fallback) => {
            tracing::warn!(
                master_sae = %peers.master_sae_id,
                slave_sae = %peers.slave_sae_id,
                reason = %fallback,
                "link key uses X-Wing alone"
            );
            start(peers, slave_public_key, None, Some(fallback))
        }
    }
}

impl MasterHandshake {
    /// Checks the slave's confirmation and returns the finish message for
    /// the slave with the confirmed link key.
    pub fn confirm(self, reply: &LinkReply) -> Result<(LinkFinish, LinkKey), LinkError> {
        let matches: bool = self.slave_confirmation.as_slice().ct_eq(&reply.confirmation).into();
        if !matches {
            tracing::error!(
                master_sae = %self.peers.master_sae_id,
                slave_sae = %self.peers.slave_sae_id,
                qkd_key_id = self.key.qkd_key_id().unwrap_or("none"),
                "slave key confirmation failed"
            );
            return Err(LinkError::ConfirmationMismatch {
                peer: "slave",
                master_sae_id: self.peers.master_sae_id.clone(),
                slave_sae_id: self.peers.slave_sae_id.clone(),
            });
        }

        let finish = LinkFinish { confirmation: *self.master_confirmation };
        Ok((finish, self.key))
    }

    /// Starts over with a fresh encapsulation and no QKD key, after the
    /// slave rejected the offer with [`LinkError::QkdKeyUnavailable`]. The QKD key of this
    /// handshake is discarded.
    pub fn retry_without_qkd(self) -> Result<(LinkOffer, MasterHandshake), LinkError> {
        let fallback = match self.key.fallback {
            Some(earlier) => earlier,
            None => QkdFallback::SlaveKeyUnavailable,
        };
        tracing::warn!(
            master_sae = %self.peers.master_sae_id,
            slave_sae = %self.peers.slave_sae_id,
            abandoned_qkd_key_id = self.key.qkd_key_id().unwrap_or("none"),
            reason = %fallback,
            "link key uses X-Wing alone"
        );
        start(&self.peers, &self.slave_public_key, None, Some(fallback))
    }

    /// Returns the id of the QKD key in this handshake's offer, if any.
    pub fn qkd_key_id(&self) -> Option<&str> {
        self.key.qkd_key_id()
    }
}

/// Accepts an offer as the slave: decapsulates, obtains the QKD key the
/// offer names, and returns the reply carrying the slave's confirmation.
///
/// `peers` is the link the slave expects: the master's SAE id and its own.
/// When the offer names a QKD key that the slave cannot obtain (no key
/// source, unknown key id, KME unavailable), this fails with
/// [`LinkError::QkdKeyUnavailable`] rather than deriving a key the master
/// does not have. The master then retries without QKD.
pub fn accept(
    peers: &LinkPeers,
    secret_key: &XWingSecretKey,
    offer: &LinkOffer,
    qkd: Option<&dyn QkdKeySource>,
) -> Result<(LinkReply, SlaveHandshake), LinkError> {
    if offer.master_sae_id != peers.master_sae_id || offer.slave_sae_id != peers.slave_sae_id {
        return Err(LinkError::WrongPeers {
            offered_master: offer.master_sae_id.clone(),
            offered_slave: offer.slave_sae_id.clone(),
            expected_master: peers.master_sae_id.clone(),
            expected_slave: peers.slave_sae_id.clone(),
        });
    }

    let xwing_secret = kem::decapsulate(secret_key, &offer.ciphertext)?;
    let qkd_key = match &offer.qkd_key_id {
        Some(key_id) => Some(fetch_slave_key(peers, key_id, qkd)?),
        None => {
            tracing::warn!(
                master_sae = %peers.master_sae_id,
                slave_sae = %peers.slave_sae_id,
                reason = %QkdFallback::NotOffered,
                "link key uses X-Wing alone"
            );
            None
        }
    };
    let fallback = if qkd_key.is_some() { None } else { Some(QkdFallback::NotOffered) };

    let secrets = derive_all(&xwing_secret, qkd_key.as_ref(), offer);
    let key = LinkKey { key: secrets.link_key, qkd_key_id: offer.qkd_key_id.clone(), fallback };
    let reply = LinkReply { confirmation: *secrets.slave_confirmation };
    let handshake = SlaveHandshake { peers: peers.clone(), key, master_confirmation: secrets.master_confirmation };
    Ok((reply, handshake))
}

impl SlaveHandshake {
    /// Checks the master's confirmation and returns the confirmed link key.
    pub fn finish(self, finish: &LinkFinish) -> Result<LinkKey, LinkError> {
        let matches: bool = self.master_confirmation.as_slice().ct_eq(&finish.confirmation).into();
        if !matches {
            tracing::error!(
                master_sae = %self.peers.master_sae_id,
                slave_sae = %self.peers.slave_sae_id,
                qkd_key_id = self.key.qkd_key_id().unwrap_or("none"),
                "master key confirmation failed"
            );
            return Err(LinkError::ConfirmationMismatch {
                peer: "master",
                master_sae_id: self.peers.master_sae_id,
                slave_sae_id: self.peers.slave_sae_id,
            });
        }
        Ok(self.key)
    }
}

/// Obtains the master's QKD key. `Ok(Err(fallback))` is an outage that
/// leads to X-Wing alone; `Err` fails the handshake.
fn fetch_master_key(peers: &LinkPeers, source: &dyn QkdKeySource) -> Result<Result<QkdKey, QkdFallback>, LinkError> {
    let keys = match source.enc_keys(&peers.slave_sae_id, 1, QKD_KEY_BITS) {
        Ok(keys) => keys,
        Err(err) if err.is_outage() => {
            tracing::warn!(slave_sae = %peers.slave_sae_id, error = %err, "QKD key request failed");
            return Ok(Err(QkdFallback::KmeUnavailable));
        }
        Err(source) => return Err(LinkError::Qkd { slave_sae_id: peers.slave_sae_id.clone(), source }),
    };

    let key = single_key(keys)?;
    Ok(Ok(key))
}

/// Obtains the QKD key with `key_id` as the slave; every failure becomes
/// [`LinkError::QkdKeyUnavailable`].
fn fetch_slave_key(peers: &LinkPeers, key_id: &str, qkd: Option<&dyn QkdKeySource>) -> Result<QkdKey, LinkError> {
    let unavailable = |reason: String, source: Option<QkdError>| {
        tracing::warn!(
            master_sae = %peers.master_sae_id,
            slave_sae = %peers.slave_sae_id,
            qkd_key_id = key_id,
            reason = %reason,
            error = source.as_ref().map(ToString::to_string),
            "QKD key in link offer unavailable; rejecting the offer so that the master retries without QKD"
        );
        LinkError::QkdKeyUnavailable { key_id: key_id.to_owned(), reason, source }
    };

    let Some(source) = qkd else {
        return Err(unavailable(QkdFallback::NotConfigured.to_string(), None));
    };
    let keys = match source.dec_keys(&peers.master_sae_id, &[key_id.to_owned()]) {
        Ok(keys) => keys,
        Err(err) => return Err(unavailable("the key source failed".to_owned(), Some(err))),
    };
    match single_key(keys) {
        Ok(key) if key.key_id == key_id => Ok(key),
        Ok(key) => Err(unavailable(format!("the key source returned key {} instead", key.key_id), None)),
        Err(err) => Err(unavailable(err.to_string(), None)),
    }
}

/// Checks that a key-source response contains exactly one 256-bit key and
/// returns it.
fn single_key(mut keys: Vec<QkdKey>) -> Result<QkdKey, LinkError> {
    if keys.len() != 1 {
        return Err(LinkError::QkdKeyCount { count: keys.len() });
    }
    let key = keys.remove(0);
    if key.key.len() * 8 != QKD_KEY_BITS as usize {
        return Err(LinkError::QkdKeySize { key_id: key.key_id, bits: key.key.len() * 8 });
    }
    Ok(key)
}

/// Encapsulates, derives the keys and builds the master's offer and state.
fn start(
    peers: &LinkPeers,
    slave_public_key: &XWingPublicKey,
    qkd_key: Option<QkdKey>,
    fallback: Option<QkdFallback>,
) -> Result<(LinkOffer, MasterHandshake), LinkError> {
    let (ciphertext, xwing_secret) = kem::encapsulate(slave_public_key);
    let offer = LinkOffer {
        master_sae_id: peers.master_sae_id.clone(),
        slave_sae_id: peers.slave_sae_id.clone(),
        ciphertext,
        qkd_key_id: qkd_key.as_ref().map(|key| key.key_id.clone()),
    };

    let secrets = derive_all(&xwing_secret, qkd_key.as_ref(), &offer);
    let key = LinkKey { key: secrets.link_key, qkd_key_id: offer.qkd_key_id.clone(), fallback };
    let handshake = MasterHandshake {
        peers: peers.clone(),
        slave_public_key: slave_public_key.clone(),
        key,
        slave_confirmation: secrets.slave_confirmation,
        master_confirmation: secrets.master_confirmation,
    };
    Ok((offer, handshake))
}

/// The three values derived from one handshake's secrets.
pub(super) struct DerivedSecrets {
    pub link_key: SharedSecret,
    pub slave_confirmation: SharedSecret,
    pub master_confirmation: SharedSecret,
}

/// Derives the link key and both confirmation tags from the X-Wing secret,
/// the QKD key and the offer, with a distinct context per purpose.
pub(super) fn derive_all(xwing_secret: &SharedSecret, qkd_key: Option<&QkdKey>, offer: &LinkOffer) -> DerivedSecrets {
    let qkd_bytes = qkd_key.map(|key| key.key.as_slice());
    let derive = |purpose| kem::derive_link_key(xwing_secret, qkd_bytes, &context(purpose, offer));

    DerivedSecrets {
        link_key: derive(Purpose::LinkKey),
        slave_confirmation: derive(Purpose::SlaveConfirmation),
        master_confirmation: derive(Purpose::MasterConfirmation),
    }
}

/// Builds the derivation context: the protocol label, the purpose byte,
/// then the master SAE id, the slave SAE id, the X-Wing ciphertext and the
/// QKD key id (empty when none). Each field is preceded by its length as an
/// 8-byte big-endian number, so no two different offers encode alike.
/// Whether a QKD key is mixed in at all is bound by the mode byte of
/// `derive_link_key`.
fn context(purpose: Purpose, offer: &LinkOffer) -> Vec<u8> {
    let ciphertext = offer.ciphertext.to_bytes();
    let key_id = offer.qkd_key_id.as_deref().unwrap_or("");
    let fields: [&[u8]; 4] =
        [offer.master_sae_id.as_bytes(), offer.slave_sae_id.as_bytes(), &ciphertext, key_id.as_bytes()];

    let mut context = Vec::with_capacity(CONTEXT_LABEL.len() + 1 + fields.iter().map(|f| 8 + f.len()).sum::<usize>());
    context.extend_from_slice(CONTEXT_LABEL);
    context.push(purpose as u8);
    for field in fields {
        context.extend_from_slice(&(field.len() as u64).to_be_bytes());
        context.extend_from_slice(field);
    }
    context
}
