//! Link keys between two nodes, master `sae-a` and slave `sae-b`, with QKD
//! keys from the test KME.

mod common;

use common::{LogBuffer, SAE_A, SAE_B, start_kme};
use hearth_pqc::kem::XWingSecretKey;
use hearth_pqc::qkd::{LinkError, LinkKey, LinkPeers, QkdError, QkdFallback, QkdKeySource, accept, initiate};

fn peers() -> LinkPeers {
    LinkPeers { master_sae_id: SAE_A.to_owned(), slave_sae_id: SAE_B.to_owned() }
}

/// Runs the three messages between master and slave.
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
fn nodes_derive_identical_keys_with_qkd() {
    let kme = start_kme();
    let master_kme = kme.client(SAE_A).unwrap();
    let slave_kme = kme.client(SAE_B).unwrap();
    let secret_key = XWingSecretKey::generate();

    let (master, slave) = handshake(&secret_key, Some(&master_kme), Some(&slave_kme)).unwrap();

    assert_eq!(master.as_bytes(), slave.as_bytes());
    assert!(master.qkd_used());
    assert!(slave.qkd_used());
    assert_eq!(master.qkd_key_id(), slave.qkd_key_id());
    assert_eq!(master.fallback(), None);
    assert_eq!(slave.fallback(), None);
}

#[test]
fn qkd_changes_what_the_slave_derives() {
    let kme = start_kme();
    let master_kme = kme.client(SAE_A).unwrap();
    let slave_kme = kme.client(SAE_B).unwrap();
    let secret_key = XWingSecretKey::generate();
    let (offer, master) = initiate(&peers(), &secret_key.public_key(), Some(&master_kme)).unwrap();
    let mut xwing_only_offer = offer.clone();
    xwing_only_offer.qkd_key_id = None;

    // Same ciphertext, so the same X-Wing secret, with and without the QKD key.
    let (with_qkd, _) = accept(&peers(), &secret_key, &offer, Some(&slave_kme)).unwrap();
    let (without_qkd, _) = accept(&peers(), &secret_key, &xwing_only_offer, None).unwrap();

    assert_ne!(with_qkd.confirmation, without_qkd.confirmation);
    assert!(matches!(master.confirm(&without_qkd), Err(LinkError::ConfirmationMismatch { .. })));
}

#[test]
fn link_down_falls_back_to_xwing() {
    let kme = start_kme();
    let master_kme = kme.client(SAE_A).unwrap();
    let slave_kme = kme.client(SAE_B).unwrap();
    let secret_key = XWingSecretKey::generate();
    let logs = LogBuffer::default();

    kme.set_link_down(true);
    let (master, slave) = tracing::subscriber::with_default(logs.subscriber(), || {
        handshake(&secret_key, Some(&master_kme), Some(&slave_kme)).unwrap()
    });

    assert_eq!(master.as_bytes(), slave.as_bytes());
    assert!(!master.qkd_used());
    assert!(!slave.qkd_used());
    assert_eq!(master.fallback(), Some(QkdFallback::KmeUnavailable));
    assert_eq!(slave.fallback(), Some(QkdFallback::NotOffered));
    let text = logs.text();
    assert!(text.contains("link key uses X-Wing alone"), "{text}");
    assert!(text.contains("reason=KME unavailable"), "{text}");
    assert!(text.contains("reason=master offered no QKD key"), "{text}");
}

#[test]
fn unknown_key_id_forces_xwing_retry() {
    let kme = start_kme();
    let master_kme = kme.client(SAE_A).unwrap();
    let slave_kme = kme.client(SAE_B).unwrap();
    let secret_key = XWingSecretKey::generate();
    let logs = LogBuffer::default();
    let (mut offer, master) = initiate(&peers(), &secret_key.public_key(), Some(&master_kme)).unwrap();
    offer.qkd_key_id = Some("3f1e0d5c-0000-4000-8000-000000000000".to_owned());

    let (rejected, keys) = tracing::subscriber::with_default(logs.subscriber(), || {
        let rejected = accept(&peers(), &secret_key, &offer, Some(&slave_kme));
        let (offer, master) = master.retry_without_qkd().unwrap();
        let (reply, slave) = accept(&peers(), &secret_key, &offer, Some(&slave_kme)).unwrap();
        let (finish, master_key) = master.confirm(&reply).unwrap();
        (rejected, (master_key, slave.finish(&finish).unwrap()))
    });

    match rejected {
        Err(LinkError::QkdKeyUnavailable { source: Some(QkdError::UnknownKeyId { .. }), .. }) => {}
        other => panic!("expected QkdKeyUnavailable from UnknownKeyId, got {other:?}"),
    }
    let (master_key, slave_key) = keys;
    assert_eq!(master_key.as_bytes(), slave_key.as_bytes());
    assert_eq!(master_key.fallback(), Some(QkdFallback::SlaveKeyUnavailable));
    assert!(!slave_key.qkd_used());
    let text = logs.text();
    // NOTE: the slave's own warning ("QKD key in link offer unavailable")
    // was missed here once in a fresh-clone run: a thread-scoped tracing
    // subscriber can lose a call site that a test on another thread hit
    // first. hearth-server/node_link checks that line in a real server's log.
    assert!(text.contains("reason=slave could not obtain the QKD key"), "{text}");
}

#[test]
fn substituted_key_id_fails_confirmation() {
    let kme = start_kme();
    let master_kme = kme.client(SAE_A).unwrap();
    let slave_kme = kme.client(SAE_B).unwrap();
    let secret_key = XWingSecretKey::generate();
    let (mut offer, master) = initiate(&peers(), &secret_key.public_key(), Some(&master_kme)).unwrap();

    // Another key that sae-a shares with sae-b: the slave obtains it without
    // error, so only key confirmation can notice the substitution.
    let other = master_kme.enc_keys(SAE_B, 1, 256).unwrap().remove(0);
    offer.qkd_key_id = Some(other.key_id.clone());
    let (reply, _) = accept(&peers(), &secret_key, &offer, Some(&slave_kme)).unwrap();

    let result = master.confirm(&reply);

    assert!(matches!(result, Err(LinkError::ConfirmationMismatch { peer: "slave", .. })), "{result:?}");
}

#[test]
fn slave_cannot_reuse_a_consumed_key() {
    let kme = start_kme();
    let master_kme = kme.client(SAE_A).unwrap();
    let slave_kme = kme.client(SAE_B).unwrap();
    let secret_key = XWingSecretKey::generate();
    let (offer, _) = initiate(&peers(), &secret_key.public_key(), Some(&master_kme)).unwrap();

    let first = accept(&peers(), &secret_key, &offer, Some(&slave_kme));
    let replayed = accept(&peers(), &secret_key, &offer, Some(&slave_kme));

    assert!(first.is_ok(), "{first:?}");
    assert!(matches!(replayed, Err(LinkError::QkdKeyUnavailable { .. })), "{replayed:?}");
}
