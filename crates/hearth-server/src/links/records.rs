//! Link keys and the node's X-Wing key in the sealed key store.
//!
//! A link key is sealed as `link-<peer SAE id>` (see [`key_name`]); each
//! link set up with the same peer adds a version. The sealed secret is the
//! 32-byte key followed by a JSON record of how it was made, so the record
//! is encrypted and authenticated along with the key. The key store cannot
//! list its key names, so an index, `links-index`, contains the SAE ids of
//! every linked peer. A third record, `links-seen-offers`, holds the
//! fingerprints of the last [`MAX_SEEN_OFFERS`] X-Wing ciphertexts accepted
//! as a slave, so that a replayed offer is refused.

use std::time::{Duration, SystemTime};

use hearth_pqc::kem::XWingSecretKey;
use hearth_pqc::keystore::{SealedKeyStore, Zeroizing};
use hearth_pqc::qkd::LinkKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::LinkServiceError;

/// Name of the node's X-Wing secret key in the key store.
pub const NODE_KEM_KEY: &str = "node-kem";
/// Prefix of every link key name.
const LINK_KEY_PREFIX: &str = "link-";
/// Name of the index of linked peers. It cannot clash with a link key name,
/// because it does not start with [`LINK_KEY_PREFIX`].
const INDEX_KEY: &str = "links-index";
/// Name of the record of X-Wing ciphertexts that this node accepted as a
/// slave, by [`offer_fingerprint`]. It cannot clash with a link key name.
const SEEN_OFFERS_KEY: &str = "links-seen-offers";
/// Number of accepted offers remembered; the oldest are forgotten first. An
/// offer older than the last 256 could be replayed, but only by a caller
/// with the admin token, who can link a key of its own choosing anyway.
pub const MAX_SEEN_OFFERS: usize = 256;
/// Domain-separation label of the offer fingerprint.
const OFFER_FINGERPRINT_LABEL: &[u8] = b"hearth/link-offer-seen/v1";
/// Maximum key name length of the key store.
const MAX_KEY_NAME_LEN: usize = 64;
/// Hex digits of the SHA-256 tag that [`key_name`] appends to an SAE id it
/// had to change.
const NAME_TAG_HEX: usize = 8;
/// Domain-separation label of the key check value.
const KEY_CHECK_LABEL: &[u8] = b"hearth/link-key-check/v1";
/// Bytes of the key check value.
const KEY_CHECK_BYTES: usize = 8;
/// Version of the JSON record sealed after the key.
const RECORD_VERSION: u32 = 1;
/// Length of a link key in bytes.
const KEY_LEN: usize = 32;

/// Role of this node in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkRole {
    /// This node started the handshake and obtained the QKD key.
    Master,
    /// This node accepted the handshake.
    Slave,
}

impl LinkRole {
    /// Returns `master` or `slave`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Slave => "slave",
        }
    }
}

/// The current link key with one peer, as listed to admins. It never
/// contains the key, only a check value that both sides can compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    /// SAE id of the peer.
    pub peer_sae_id: String,
    /// This node's role in the handshake.
    pub role: LinkRole,
    /// Version of the link key in the key store; each re-link adds one.
    pub key_version: u32,
    /// When the key was stored, seconds since the Unix epoch.
    pub created_at: u64,
    /// Whether a QKD key was mixed into the X-Wing secret.
    pub qkd_used: bool,
    /// Id of the QKD key mixed in, if any.
    pub qkd_key_id: Option<String>,
    /// Reason the key uses X-Wing alone, or `None` when QKD was used.
    pub fallback: Option<String>,
    /// First 8 bytes of SHA-256 over a label and the key, in hex
    /// ([`key_check`]). Equal on both sides exactly when the keys match.
    pub key_check: String,
}

/// Origin of a link key (peer, role, QKD key id, fallback), sealed after the key.
#[derive(Serialize, Deserialize)]
struct Record {
    version: u32,
    peer_sae_id: String,
    role: LinkRole,
    qkd_key_id: Option<String>,
    fallback: Option<String>,
}

/// Loads the node's X-Wing secret key, generating and sealing one when the
/// store has none.
pub fn load_or_create_node_key(store: &SealedKeyStore) -> Result<XWingSecretKey, LinkServiceError> {
    // The node key is not rotated on a schedule: peers fetch it afresh for
    // every link, and a maximum age of `Duration::MAX` is never reached.
    let created = store.rotate_if_due(NODE_KEM_KEY, Duration::MAX, false, || {
        Ok(Zeroizing::new(XWingSecretKey::generate().to_bytes().to_vec()))
    })?;
    if let Some(version) = created {
        tracing::info!(key = NODE_KEM_KEY, version = %version, "node X-Wing key created");
    }

    let (_, secret) = store.current(NODE_KEM_KEY)?.ok_or_else(|| LinkServiceError::Record {
        name: NODE_KEM_KEY.to_owned(),
        reason: "no version found right after creating it".to_owned(),
    })?;
    XWingSecretKey::from_bytes(&secret).map_err(|source| LinkServiceError::NodeKey { source })
}

/// Seals `key` as a new version of the link with `peer_sae_id` and adds the
/// peer to the index. The caller serialises calls.
pub fn store_link(store: &SealedKeyStore, peer_sae_id: &str, role: LinkRole, key: &LinkKey) -> Result<LinkInfo, LinkServiceError> {
    let name = key_name(peer_sae_id);
    if let Some(existing) = current_record(store, &name)?
        && existing.peer_sae_id != peer_sae_id
    {
        return Err(LinkServiceError::NameClash {
            name,
            stored_peer: existing.peer_sae_id,
            new_peer: peer_sae_id.to_owned(),
        });
    }

    let record = Record {
        version: RECORD_VERSION,
        peer_sae_id: peer_sae_id.to_owned(),
        role,
        qkd_key_id: key.qkd_key_id().map(str::to_owned),
        fallback: key.fallback().map(|fallback| fallback.as_str().to_owned()),
    };
    let mut secret = Zeroizing::new(key.as_bytes().to_vec());
    let record_json = serde_json::to_vec(&record).map_err(|err| LinkServiceError::Record { name: name.clone(), reason: err.to_string() })?;
    secret.extend_from_slice(&record_json);
    store.put(&name, &secret)?;
    add_to_index(store, peer_sae_id)?;

    let info = read_link(store, peer_sae_id)?.ok_or_else(|| LinkServiceError::Record {
        name,
        reason: "no version found right after storing it".to_owned(),
    })?;
    Ok(info)
}

/// Lists the current link with every peer in the index, sorted by SAE id.
pub fn list_links(store: &SealedKeyStore) -> Result<Vec<LinkInfo>, LinkServiceError> {
    let mut links = Vec::new();
    for peer in read_index(store)? {
        if let Some(info) = read_link(store, &peer)? {
            links.push(info);
        }
    }
    Ok(links)
}

/// Returns the fingerprint of an offer's X-Wing ciphertext: the first 16
/// bytes of SHA-256(`hearth/link-offer-seen/v1` || ciphertext), in hex.
pub fn offer_fingerprint(ciphertext: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(OFFER_FINGERPRINT_LABEL);
    hasher.update(ciphertext);
    hex::encode(&hasher.finalize()[..16])
}

/// Returns whether an offer with `fingerprint` was accepted before.
pub fn offer_seen(store: &SealedKeyStore, fingerprint: &str) -> Result<bool, LinkServiceError> {
    Ok(read_seen_offers(store)?.iter().any(|seen| seen == fingerprint))
}

/// Records `fingerprint` as accepted, forgetting the oldest beyond
/// [`MAX_SEEN_OFFERS`]. Returns false, recording nothing, when it was there
/// already. The caller serialises calls.
pub fn remember_offer(store: &SealedKeyStore, fingerprint: &str) -> Result<bool, LinkServiceError> {
    let mut seen = read_seen_offers(store)?;
    if seen.iter().any(|known| known == fingerprint) {
        return Ok(false);
    }
    seen.push(fingerprint.to_owned());
    let excess = seen.len().saturating_sub(MAX_SEEN_OFFERS);
    seen.drain(..excess);

    let json = serde_json::to_vec(&seen)
        .map_err(|err| LinkServiceError::Record { name: SEEN_OFFERS_KEY.to_owned(), reason: err.to_string() })?;
    store.put(SEEN_OFFERS_KEY, &json)?;
    Ok(true)
}

/// Reads the fingerprints of accepted offers, oldest first.
fn read_seen_offers(store: &SealedKeyStore) -> Result<Vec<String>, LinkServiceError> {
    let Some((_, secret)) = store.current(SEEN_OFFERS_KEY)? else {
        return Ok(Vec::new());
    };
    serde_json::from_slice(&secret).map_err(|err| LinkServiceError::Record {
        name: SEEN_OFFERS_KEY.to_owned(),
        reason: format!("invalid fingerprint list: {err}"),
    })
}

/// Returns the key store name of the link with `peer_sae_id`: `link-` and
/// the id when the id already follows the store's rules (1 to 64 characters
/// from `a-z`, `0-9`, `-`). Otherwise the id is lowercased, other
/// characters become `-`, it is cut to fit, and `-` with 8 hex digits of
/// its SHA-256 is appended, so that ids differing only in case or
/// punctuation get different names.
pub fn key_name(peer_sae_id: &str) -> String {
    let fits = LINK_KEY_PREFIX.len() + peer_sae_id.len() <= MAX_KEY_NAME_LEN;
    let allowed = !peer_sae_id.is_empty() && peer_sae_id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'));
    if fits && allowed {
        return format!("{LINK_KEY_PREFIX}{peer_sae_id}");
    }

    let sanitized: String = peer_sae_id
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let room = MAX_KEY_NAME_LEN - LINK_KEY_PREFIX.len() - 1 - NAME_TAG_HEX;
    let shortened: String = sanitized.chars().take(room).collect();
    let tag = hex::encode(Sha256::digest(peer_sae_id.as_bytes()));
    format!("{LINK_KEY_PREFIX}{shortened}-{}", &tag[..NAME_TAG_HEX])
}

/// Returns the key check value of a link key: the first 8 bytes of
/// SHA-256(`hearth/link-key-check/v1` || key), in hex. Admins compare it
/// between the two nodes. It reveals nothing usable about the key, because
/// SHA-256 is one-way and 8 bytes leave the other 24 unknown.
pub fn key_check(key: &[u8; KEY_LEN]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(KEY_CHECK_LABEL);
    hasher.update(key);
    hex::encode(&hasher.finalize()[..KEY_CHECK_BYTES])
}

/// Reads the current version of the link with `peer_sae_id`.
fn read_link(store: &SealedKeyStore, peer_sae_id: &str) -> Result<Option<LinkInfo>, LinkServiceError> {
    let name = key_name(peer_sae_id);
    let Some(current) = store.versions(&name)?.pop() else {
        return Ok(None);
    };
    let Some(secret) = store.get(&name, current.version)? else {
        return Ok(None);
    };

    let (key, record) = split_record(&name, &secret)?;
    Ok(Some(LinkInfo {
        peer_sae_id: record.peer_sae_id,
        role: record.role,
        key_version: current.version.number(),
        created_at: unix_seconds(current.created_at),
        qkd_used: record.qkd_key_id.is_some(),
        qkd_key_id: record.qkd_key_id,
        fallback: record.fallback,
        key_check: key_check(&key),
    }))
}

/// Reads the record of the current version of link key `name`, if any.
fn current_record(store: &SealedKeyStore, name: &str) -> Result<Option<Record>, LinkServiceError> {
    let Some((_, secret)) = store.current(name)? else {
        return Ok(None);
    };
    let (_, record) = split_record(name, &secret)?;
    Ok(Some(record))
}

/// Splits a sealed link secret into the key and its record.
fn split_record(name: &str, secret: &[u8]) -> Result<(Zeroizing<[u8; KEY_LEN]>, Record), LinkServiceError> {
    let malformed = |reason: String| LinkServiceError::Record { name: name.to_owned(), reason };

    if secret.len() <= KEY_LEN {
        return Err(malformed(format!("{} bytes, expected a 32-byte key and a record", secret.len())));
    }
    let (key_bytes, record_json) = secret.split_at(KEY_LEN);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(key_bytes);

    let record: Record = serde_json::from_slice(record_json).map_err(|err| malformed(format!("invalid record: {err}")))?;
    if record.version != RECORD_VERSION {
        return Err(malformed(format!("record version {}, expected {RECORD_VERSION}", record.version)));
    }
    Ok((key, record))
}

/// Reads the SAE ids of every linked peer, sorted.
fn read_index(store: &SealedKeyStore) -> Result<Vec<String>, LinkServiceError> {
    let Some((_, secret)) = store.current(INDEX_KEY)? else {
        return Ok(Vec::new());
    };
    serde_json::from_slice(&secret)
        .map_err(|err| LinkServiceError::Record { name: INDEX_KEY.to_owned(), reason: format!("invalid peer list: {err}") })
}

/// Adds `peer_sae_id` to the index unless it is there already.
fn add_to_index(store: &SealedKeyStore, peer_sae_id: &str) -> Result<(), LinkServiceError> {
    let mut peers = read_index(store)?;
    if peers.iter().any(|peer| peer == peer_sae_id) {
        return Ok(());
    }
    peers.push(peer_sae_id.to_owned());
    peers.sort();

    let json = serde_json::to_vec(&peers).map_err(|err| LinkServiceError::Record { name: INDEX_KEY.to_owned(), reason: err.to_string() })?;
    store.put(INDEX_KEY, &json)?;
    Ok(())
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use hearth_pqc::keystore::FileKek;
    use hearth_pqc::qkd::{LinkPeers, accept, initiate};

    use super::*;

    #[test]
    fn simple_sae_id_keeps_its_name() {
        assert_eq!(key_name("nas-1"), "link-nas-1");
    }

    #[test]
    fn changed_sae_ids_get_distinct_valid_names() {
        let names = [key_name("NAS.local"), key_name("nas.local"), key_name("nas-local"), key_name(&"x".repeat(64))];

        for name in &names {
            assert!(name.len() <= MAX_KEY_NAME_LEN, "{name}");
            assert!(name.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-')), "{name}");
        }
        assert_ne!(names[0], names[1]);
        assert_ne!(names[1], names[2]);
        assert_eq!(names[2], "link-nas-local");
    }

    #[test]
    fn key_check_is_label_bound_prefix() {
        let key = [7u8; 32];

        let check = key_check(&key);

        assert_eq!(check.len(), 16);
        assert_ne!(check, hex::encode(&Sha256::digest(key)[..8]));
        assert_ne!(check, key_check(&[8u8; 32]));
    }

    #[test]
    fn node_key_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let open = || SealedKeyStore::open(dir.path(), Box::new(FileKek::in_dir(dir.path()))).unwrap();

        let first = load_or_create_node_key(&open()).unwrap().public_key();
        let second = load_or_create_node_key(&open()).unwrap().public_key();

        assert_eq!(first, second);
    }

    #[test]
    fn both_ends_store_matching_links() {
        let master_dir = tempfile::tempdir().unwrap();
        let slave_dir = tempfile::tempdir().unwrap();
        let master_store = SealedKeyStore::open(master_dir.path(), Box::new(FileKek::in_dir(master_dir.path()))).unwrap();
        let slave_store = SealedKeyStore::open(slave_dir.path(), Box::new(FileKek::in_dir(slave_dir.path()))).unwrap();
        let slave_key = load_or_create_node_key(&slave_store).unwrap();
        let peers = LinkPeers { master_sae_id: "NAS.local".to_owned(), slave_sae_id: "desktop".to_owned() };

        let (offer, master) = initiate(&peers, &slave_key.public_key(), None).unwrap();
        let (reply, slave) = accept(&peers, &slave_key, &offer, None).unwrap();
        let (finish, master_link) = master.confirm(&reply).unwrap();
        let slave_link = slave.finish(&finish).unwrap();
        let stored_master = store_link(&master_store, "desktop", LinkRole::Master, &master_link).unwrap();
        let stored_slave = store_link(&slave_store, "NAS.local", LinkRole::Slave, &slave_link).unwrap();
        let relinked = store_link(&slave_store, "NAS.local", LinkRole::Slave, &slave_link).unwrap();

        assert_eq!(stored_master.key_check, stored_slave.key_check);
        assert_eq!(stored_master.fallback.as_deref(), Some("no QKD key source configured"));
        assert_eq!(stored_slave.fallback.as_deref(), Some("master offered no QKD key"));
        assert!(!stored_slave.qkd_used);
        assert_eq!(stored_slave.key_version, 1);
        assert_eq!(relinked.key_version, 2);
        let listed = list_links(&slave_store).unwrap();
        assert_eq!(listed, [relinked]);
        assert_eq!(listed[0].peer_sae_id, "NAS.local");
    }

    #[test]
    fn seen_offers_are_remembered_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = SealedKeyStore::open(dir.path(), Box::new(FileKek::in_dir(dir.path()))).unwrap();
        let first = offer_fingerprint(b"first");

        assert!(remember_offer(&store, &first).unwrap());
        assert!(!remember_offer(&store, &first).unwrap());
        assert!(offer_seen(&store, &first).unwrap());
        for n in 0..MAX_SEEN_OFFERS {
            remember_offer(&store, &offer_fingerprint(&n.to_be_bytes())).unwrap();
        }

        assert!(!offer_seen(&store, &first).unwrap(), "the oldest fingerprint was kept");
        assert_eq!(read_seen_offers(&store).unwrap().len(), MAX_SEEN_OFFERS);
    }

    #[test]
    fn empty_store_lists_no_links() {
        let dir = tempfile::tempdir().unwrap();
        let store = SealedKeyStore::open(dir.path(), Box::new(FileKek::in_dir(dir.path()))).unwrap();

        assert!(list_links(&store).unwrap().is_empty());
    }
}
