//! Link-key handshake against an in-memory key source. The tests in
//! `crates/hearth-qkd/tests/link_key.rs` repeat the main cases over HTTPS
//! against the test KME.

use std::collections::HashMap;
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::link::derive_all;
use super::*;
use crate::kem::{self, XWingSecretKey};

/// How the in-memory KME behaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Honest,
    /// `enc_keys` returns the 503 error of a KME with its link down.
    Outage,
    /// `enc_keys` returns a 401 error.
    Refuse,
    /// `dec_keys` hands the slave other bytes than the master got.
    Corrupt,
    /// `enc_keys` returns 128-bit keys whatever was requested.
    ShortKeys,
}

/// A KME in memory: `enc_keys` stores the key, `dec_keys` hands it out once.
struct MemoryKme {
    behaviour: Behaviour,
    keys: Mutex<HashMap<String, Vec<u8>>>,
    next_id: Mutex<u32>,
}

impl MemoryKme {
    fn new(behaviour: Behaviour) -> Self {
        Self { behaviour, keys: Mutex::new(HashMap::new()), next_id: Mutex::new(0) }
    }
}

impl QkdKeySource for MemoryKme {
    fn enc_keys(&self, _slave_sae_id: &str, number: u32, size_bits: u32) -> Result<Vec<QkdKey>, QkdError> {
        let url = "memory://kme".to_owned();
        match self.behaviour {
            Behaviour::Outage => return Err(QkdError::Unavailable { url, message: "link down".to_owned() }),
            Behaviour::Refuse => return Err(QkdError::Unauthorized { url, message: "unknown SAE".to_owned() }),
            _ => {}
        }
        let size_bytes = if self.behaviour == Behaviour::ShortKeys { 16 } else { size_bits as usize / 8 };

        let mut keys = Vec::new();
        for _ in 0..number {
            let mut next_id = self.next_id.lock().unwrap();
            *next_id += 1;
            let key_id = format!("key-{next_id}");
            let mut bytes = vec![0u8; size_bytes];
            getrandom::fill(&mut bytes).unwrap();
            self.keys.lock().unwrap().insert(key_id.clone(), bytes.clone());
            keys.push(QkdKey { key_id, key: Zeroizing::new(bytes) });
        }
        Ok(keys)
    }

    fn dec_keys(&self, _master_sae_id: &str, key_ids: &[String]) -> Result<Vec<QkdKey>, QkdError> {
        let mut keys = Vec::new();
        for key_id in key_ids {
            let Some(mut bytes) = self.keys.lock().unwrap().remove(key_id) else {
                return Err(QkdError::UnknownKeyId {
                    url: "memory://kme".to_owned(),
                    key_id: key_id.clone(),
                    message: "not found".to_owned(),
                });
            };
            if self.behaviour == Behaviour::Corrupt {
                bytes[0] ^= 1;
            }
            keys.push(QkdKey { key_id: key_id.clone(), key: Zeroizing::new(bytes) });
        }
        Ok(keys)
    }
}

fn peers() -> LinkPeers {
    LinkPeers { master_sae_id: "node-a".to_owned(), slave_sae_id: "node-b".to_owned() }
}

/// Runs all three messages and returns both sides' keys.
fn handshake(
    secret_key: &XWingSecretKey,
    master_kme: Option<&dyn QkdKeySource>,
    slave_kme: Option<&dyn QkdKeySource>,
) -> Result<(LinkKey, LinkKey), LinkError> {
    let (offer, master) = initiate(&peers(), &secret_key.public_key(), master_kme)?;
    let (reply, slave) = accept(&peers(), secret_key, &offer, slave_kme)?;
    let (finish, master_key) = master.confirm(&reply)?;
    let slave_key = slave.finish(&finish)?;
    Ok((master_key, slave_key))
}

#[test]
fn qkd_link_keys_match_on_both_sides() {
    let kme = MemoryKme::new(Behaviour::Honest);
    let secret_key = XWingSecretKey::generate();

    let (master, slave) = handshake(&secret_key, Some(&kme), Some(&kme)).unwrap();

    assert_eq!(master.as_bytes(), slave.as_bytes());
    assert!(master.qkd_used());
    assert!(slave.qkd_used());
    assert_eq!(master.qkd_key_id(), Some("key-1"));
    assert_eq!(slave.qkd_key_id(), Some("key-1"));
    assert_eq!(master.fallback(), None);
}

#[test]
fn qkd_key_changes_the_link_key() {
    let secret_key = XWingSecretKey::generate();
    let (ciphertext, xwing_secret) = kem::encapsulate(&secret_key.public_key());
    let offer = LinkOffer {
        master_sae_id: "node-a".to_owned(),
        slave_sae_id: "node-b".to_owned(),
        ciphertext,
        qkd_key_id: Some("key-1".to_owned()),
    };
    let qkd_one = QkdKey { key_id: "key-1".to_owned(), key: Zeroizing::new(vec![1; 32]) };
    let qkd_two = QkdKey { key_id: "key-1".to_owned(), key: Zeroizing::new(vec![2; 32]) };

    let with_one = derive_all(&xwing_secret, Some(&qkd_one), &offer);
    let with_two = derive_all(&xwing_secret, Some(&qkd_two), &offer);
    let without = derive_all(&xwing_secret, None, &offer);

    assert_ne!(*with_one.link_key, *without.link_key);
    assert_ne!(*with_one.link_key, *with_two.link_key);
    assert_ne!(*with_one.link_key, *with_one.slave_confirmation);
    assert_ne!(*with_one.slave_confirmation, *with_one.master_confirmation);
}

#[test]
fn no_key_source_uses_xwing_alone() {
    let secret_key = XWingSecretKey::generate();

    let (master, slave) = handshake(&secret_key, None, None).unwrap();

    assert_eq!(master.as_bytes(), slave.as_bytes());
    assert!(!master.qkd_used());
    assert_eq!(master.fallback(), Some(QkdFallback::NotConfigured));
    assert_eq!(slave.fallback(), Some(QkdFallback::NotOffered));
}

#[test]
fn kme_outage_falls_back_to_xwing() {
    let kme = MemoryKme::new(Behaviour::Outage);
    let secret_key = XWingSecretKey::generate();

    let (master, slave) = handshake(&secret_key, Some(&kme), Some(&kme)).unwrap();

    assert_eq!(master.as_bytes(), slave.as_bytes());
    assert!(!master.qkd_used());
    assert_eq!(master.fallback(), Some(QkdFallback::KmeUnavailable));
    assert_eq!(slave.fallback(), Some(QkdFallback::NotOffered));
}

#[test]
fn kme_refusal_fails_the_handshake() {
    let kme = MemoryKme::new(Behaviour::Refuse);
    let secret_key = XWingSecretKey::generate();

    let result = initiate(&peers(), &secret_key.public_key(), Some(&kme));

    assert!(matches!(result, Err(LinkError::Qkd { source: QkdError::Unauthorized { .. }, .. })));
}

#[test]
fn short_qkd_key_fails_the_handshake() {
    let kme = MemoryKme::new(Behaviour::ShortKeys);
    let secret_key = XWingSecretKey::generate();

    let result = initiate(&peers(), &secret_key.public_key(), Some(&kme));

    assert!(matches!(result, Err(LinkError::QkdKeySize { bits: 128, .. })));
}

#[test]
fn slave_rejection_then_retry_agrees() {
    let kme = MemoryKme::new(Behaviour::Honest);
    let secret_key = XWingSecretKey::generate();
    let (offer, master) = initiate(&peers(), &secret_key.public_key(), Some(&kme)).unwrap();

    let rejected = accept(&peers(), &secret_key, &offer, None);
    assert!(matches!(&rejected, Err(LinkError::QkdKeyUnavailable { source: None, .. })), "{rejected:?}");

    let (offer, master) = master.retry_without_qkd().unwrap();
    assert_eq!(offer.qkd_key_id, None);
    let (reply, slave) = accept(&peers(), &secret_key, &offer, None).unwrap();
    let (finish, master_key) = master.confirm(&reply).unwrap();
    let slave_key = slave.finish(&finish).unwrap();

    assert_eq!(master_key.as_bytes(), slave_key.as_bytes());
    assert_eq!(master_key.fallback(), Some(QkdFallback::SlaveKeyUnavailable));
    assert!(!slave_key.qkd_used());
}

#[test]
fn different_qkd_bytes_fail_slave_confirmation() {
    let kme = MemoryKme::new(Behaviour::Corrupt);
    let secret_key = XWingSecretKey::generate();

    let result = handshake(&secret_key, Some(&kme), Some(&kme));

    assert!(matches!(result, Err(LinkError::ConfirmationMismatch { peer: "slave", .. })), "{result:?}");
}

#[test]
fn modified_finish_fails_master_confirmation() {
    let secret_key = XWingSecretKey::generate();
    let (offer, master) = initiate(&peers(), &secret_key.public_key(), None).unwrap();
    let (reply, slave) = accept(&peers(), &secret_key, &offer, None).unwrap();
    let (mut finish, _) = master.confirm(&reply).unwrap();

    finish.confirmation[31] ^= 0x80;
    let result = slave.finish(&finish);

    assert!(matches!(result, Err(LinkError::ConfirmationMismatch { peer: "master", .. })), "{result:?}");
}

#[test]
fn removed_key_id_fails_slave_confirmation() {
    let kme = MemoryKme::new(Behaviour::Honest);
    let secret_key = XWingSecretKey::generate();
    let (mut offer, master) = initiate(&peers(), &secret_key.public_key(), Some(&kme)).unwrap();

    offer.qkd_key_id = None;
    let (reply, _) = accept(&peers(), &secret_key, &offer, Some(&kme)).unwrap();

    assert!(matches!(master.confirm(&reply), Err(LinkError::ConfirmationMismatch { .. })));
}

#[test]
fn offer_for_another_slave_is_rejected() {
    let secret_key = XWingSecretKey::generate();
    let (offer, _) = initiate(&peers(), &secret_key.public_key(), None).unwrap();
    let other = LinkPeers { master_sae_id: "node-a".to_owned(), slave_sae_id: "node-c".to_owned() };

    let result = accept(&other, &secret_key, &offer, None);

    assert!(matches!(result, Err(LinkError::WrongPeers { .. })), "{result:?}");
}

#[test]
fn link_key_debug_hides_key() {
    let secret_key = XWingSecretKey::generate();
    let (master, _) = handshake(&secret_key, None, None).unwrap();

    let printed = format!("{master:?}");

    assert!(printed.contains("NotConfigured"), "{printed}");
    assert!(!printed.contains(&format!("{:?}", master.as_bytes())), "{printed}");
}
