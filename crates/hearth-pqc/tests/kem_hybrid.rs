//! Behaviour of the X-Wing wrapper, link-key derivation and content-key wrapping.

use hearth_pqc::kem::{
    KemError, SharedSecret, WrappedKey, XWingCiphertext, XWingPublicKey, XWingSecretKey,
    decapsulate, derive_link_key, encapsulate, unwrap_content_key, wrap_content_key,
};
use zeroize::Zeroizing;

const CONTEXT: &[u8] = b"hearth/media/segment-key/v1";

#[test]
fn round_trip_shares_secret() {
    let sk = XWingSecretKey::generate();

    let (ct, sent) = encapsulate(&sk.public_key());
    let received = decapsulate(&sk, &ct).expect("honest ciphertext decapsulates");

    assert_eq!(sent, received);
}

#[test]
fn encapsulations_are_fresh() {
    let pk = XWingSecretKey::generate().public_key();

    let (first_ct, first_secret) = encapsulate(&pk);
    let (second_ct, second_secret) = encapsulate(&pk);

    assert_ne!(first_ct, second_ct);
    assert_ne!(first_secret, second_secret);
}

#[test]
fn other_key_decapsulates_to_other_secret() {
    let sk = XWingSecretKey::generate();
    let other = XWingSecretKey::generate();

    let (ct, sent) = encapsulate(&sk.public_key());
    let received = decapsulate(&other, &ct).expect("implicit rejection returns a secret");

    assert_ne!(sent, received);
}

#[test]
fn modified_ciphertext_decapsulates_to_other_secret() {
    let sk = XWingSecretKey::generate();
    let (ct, sent) = encapsulate(&sk.public_key());

    // Byte 0 is in the ML-KEM-768 ciphertext, byte 1100 in the X25519 part.
    for index in [0, 500, 1087, 1100] {
        let mut bytes = ct.to_bytes();
        bytes[index] ^= 0x01;
        let modified = XWingCiphertext::from_bytes(&bytes).expect("length is unchanged");

        let received = decapsulate(&sk, &modified).expect("implicit rejection returns a secret");
        assert_ne!(sent, received, "bit flip at byte {index}");
    }
}

#[test]
fn small_order_x25519_part_is_rejected() {
    let sk = XWingSecretKey::generate();
    let (ct, _) = encapsulate(&sk.public_key());

    // u = 0 and u = 1 are points of small order on Curve25519 (RFC 7748).
    for small_order in [[0u8; 32], one_u_coordinate()] {
        let mut bytes = ct.to_bytes();
        bytes[1088..].copy_from_slice(&small_order);
        let ct = XWingCiphertext::from_bytes(&bytes).expect("length is unchanged");

        let result = decapsulate(&sk, &ct);
        assert!(
            matches!(result, Err(KemError::NonContributory)),
            "{result:?}"
        );
    }
}

#[test]
fn secret_key_round_trips() {
    let sk = XWingSecretKey::generate();
    let (ct, sent) = encapsulate(&sk.public_key());

    let restored =
        XWingSecretKey::from_bytes(sk.to_bytes().as_slice()).expect("32-byte key decodes");

    assert_eq!(restored.public_key(), sk.public_key());
    assert_eq!(decapsulate(&restored, &ct).expect("decapsulates"), sent);
}

#[test]
fn public_key_round_trips() {
    let sk = XWingSecretKey::generate();
    let pk = XWingPublicKey::from_bytes(&sk.public_key().to_bytes()).expect("public key decodes");

    let (ct, sent) = encapsulate(&pk);

    assert_eq!(pk.to_bytes().len(), 1216);
    assert_eq!(decapsulate(&sk, &ct).expect("decapsulates"), sent);
}

#[test]
fn wrong_lengths_are_rejected() {
    let sk = XWingSecretKey::generate();
    let pk = sk.public_key().to_bytes();
    let (ct, _) = encapsulate(&sk.public_key());
    let ct = ct.to_bytes();

    let cases: [(&str, Result<(), KemError>, usize, usize); 6] = [
        (
            "secret short",
            XWingSecretKey::from_bytes(&[7; 31]).map(drop),
            31,
            32,
        ),
        (
            "secret long",
            XWingSecretKey::from_bytes(&[7; 33]).map(drop),
            33,
            32,
        ),
        (
            "public short",
            XWingPublicKey::from_bytes(&pk[..1215]).map(drop),
            1215,
            1216,
        ),
        (
            "public long",
            XWingPublicKey::from_bytes(&[pk.as_slice(), &[0]].concat()).map(drop),
            1217,
            1216,
        ),
        (
            "ciphertext short",
            XWingCiphertext::from_bytes(&ct[..1119]).map(drop),
            1119,
            1120,
        ),
        (
            "ciphertext long",
            XWingCiphertext::from_bytes(&[ct.as_slice(), &[0]].concat()).map(drop),
            1121,
            1120,
        ),
    ];

    for (case, result, expected_actual, expected_len) in cases {
        match result {
            Err(KemError::Length {
                actual, expected, ..
            }) => {
                assert_eq!(actual, expected_actual, "{case}");
                assert_eq!(expected, expected_len, "{case}");
            }
            other => panic!("{case}: expected a length error, got {other:?}"),
        }
    }
}

#[test]
fn secret_key_debug_hides_seed() {
    let sk = XWingSecretKey::from_bytes(&[0xab; 32]).expect("32-byte key decodes");

    let printed = format!("{sk:?}");

    assert!(
        !printed.to_lowercase().contains(&hex::encode([0xab; 32])),
        "{printed}"
    );
    assert!(!printed.contains("171, 171"), "{printed}");
}

#[test]
fn link_key_differs_with_and_without_qkd() {
    let xwing_secret = secret(0x11);
    let qkd_key = [0x22u8; 32];

    let without = derive_link_key(&xwing_secret, None, CONTEXT);
    let with = derive_link_key(&xwing_secret, Some(&qkd_key), CONTEXT);
    let with_empty = derive_link_key(&xwing_secret, Some(&[]), CONTEXT);

    assert_ne!(without, with);
    assert_ne!(without, with_empty);
    assert_ne!(with, with_empty);
}

#[test]
fn link_key_differs_by_context() {
    let xwing_secret = secret(0x11);
    let qkd_key = [0x22u8; 32];

    assert_ne!(
        derive_link_key(&xwing_secret, None, b"hearth/link/a"),
        derive_link_key(&xwing_secret, None, b"hearth/link/b")
    );
    assert_ne!(
        derive_link_key(&xwing_secret, Some(&qkd_key), b"hearth/link/a"),
        derive_link_key(&xwing_secret, Some(&qkd_key), b"hearth/link/b")
    );
}

#[test]
fn link_key_depends_on_every_input() {
    let base = derive_link_key(&secret(0x11), Some(&[0x22; 32]), CONTEXT);

    assert_eq!(
        base,
        derive_link_key(&secret(0x11), Some(&[0x22; 32]), CONTEXT)
    );
    assert_ne!(
        base,
        derive_link_key(&secret(0x12), Some(&[0x22; 32]), CONTEXT)
    );
    assert_ne!(
        base,
        derive_link_key(&secret(0x11), Some(&[0x23; 32]), CONTEXT)
    );
    assert_ne!(
        base,
        derive_link_key(&secret(0x11), Some(&[0x22; 31]), CONTEXT)
    );
}

#[test]
fn link_key_is_not_the_xwing_secret() {
    let xwing_secret = secret(0x11);

    assert_ne!(derive_link_key(&xwing_secret, None, b""), xwing_secret);
}

#[test]
fn wrap_round_trip() {
    let sk = XWingSecretKey::generate();
    let content_key = [0x5a; 32];

    let wrapped = wrap_content_key(&sk.public_key(), &content_key, CONTEXT);
    let decoded = WrappedKey::from_bytes(&wrapped.to_bytes()).expect("wrapped key decodes");
    let unwrapped = unwrap_content_key(&sk, &decoded, CONTEXT).expect("unwraps");

    assert_eq!(unwrapped.as_slice(), content_key.as_slice());
}

#[test]
fn wrap_round_trips_empty_and_long_keys() {
    let sk = XWingSecretKey::generate();

    for content_key in [Vec::new(), vec![0x01; 16], vec![0x02; 4096]] {
        let wrapped = wrap_content_key(&sk.public_key(), &content_key, CONTEXT);
        assert_eq!(wrapped.to_bytes().len(), 1 + 1120 + content_key.len() + 16);

        let unwrapped = unwrap_content_key(&sk, &wrapped, CONTEXT).expect("unwraps");
        assert_eq!(unwrapped.as_slice(), content_key.as_slice());
    }
}

#[test]
fn wraps_of_one_key_differ() {
    let pk = XWingSecretKey::generate().public_key();

    let first = wrap_content_key(&pk, &[0x5a; 32], CONTEXT);
    let second = wrap_content_key(&pk, &[0x5a; 32], CONTEXT);

    assert_ne!(first.to_bytes(), second.to_bytes());
}

#[test]
fn wrong_context_fails_unwrap() {
    let sk = XWingSecretKey::generate();
    let wrapped = wrap_content_key(&sk.public_key(), &[0x5a; 32], CONTEXT);

    // The first context has the same length as CONTEXT.
    for context in [
        &b"hearth/media/segment-key/v2"[..],
        b"hearth/media/thumbnail-key/v1",
        b"",
    ] {
        let result = unwrap_content_key(&sk, &wrapped, context);
        assert!(
            matches!(result, Err(KemError::UnwrapFailed(_))),
            "context {:?}: {result:?}",
            String::from_utf8_lossy(context)
        );
    }
}

#[test]
fn wrong_secret_key_fails_unwrap() {
    let sk = XWingSecretKey::generate();
    let wrapped = wrap_content_key(&sk.public_key(), &[0x5a; 32], CONTEXT);

    let result = unwrap_content_key(&XWingSecretKey::generate(), &wrapped, CONTEXT);

    assert!(
        matches!(result, Err(KemError::UnwrapFailed(_))),
        "{result:?}"
    );
}

#[test]
fn tampered_wrapped_key_fails_unwrap() {
    let sk = XWingSecretKey::generate();
    let bytes = wrap_content_key(&sk.public_key(), &[0x5a; 32], CONTEXT).to_bytes();

    // Bytes 1..1121 are the X-Wing ciphertext, then the sealed key, then the tag.
    for index in [1, 600, 1089, 1120, 1121, 1140, bytes.len() - 1] {
        let mut tampered = bytes.clone();
        tampered[index] ^= 0x80;
        let wrapped = WrappedKey::from_bytes(&tampered).expect("length and version are unchanged");

        let result = unwrap_content_key(&sk, &wrapped, CONTEXT);
        assert!(
            matches!(result, Err(KemError::UnwrapFailed(_))),
            "bit flip at byte {index}: {result:?}"
        );
    }
}

#[test]
fn wrapped_key_with_other_version_is_rejected() {
    let sk = XWingSecretKey::generate();
    let mut bytes = wrap_content_key(&sk.public_key(), &[0x5a; 32], CONTEXT).to_bytes();
    bytes[0] = 2;

    let result = WrappedKey::from_bytes(&bytes);

    assert!(
        matches!(result, Err(KemError::UnsupportedVersion { found: 2 })),
        "{result:?}"
    );
}

#[test]
fn truncated_wrapped_key_is_rejected() {
    let sk = XWingSecretKey::generate();
    let bytes = wrap_content_key(&sk.public_key(), &[0x5a; 32], CONTEXT).to_bytes();

    for length in [0, 1, 1120, 1136] {
        let result = WrappedKey::from_bytes(&bytes[..length]);
        match result {
            Err(KemError::TooShort {
                actual, minimum, ..
            }) => {
                assert_eq!(actual, length);
                assert_eq!(minimum, 1137);
            }
            other => panic!("length {length}: expected TooShort, got {other:?}"),
        }
    }
}

#[test]
fn truncated_sealed_key_fails_unwrap() {
    let sk = XWingSecretKey::generate();
    let bytes = wrap_content_key(&sk.public_key(), &[0x5a; 32], CONTEXT).to_bytes();

    let wrapped = WrappedKey::from_bytes(&bytes[..bytes.len() - 1]).expect("still long enough");
    let result = unwrap_content_key(&sk, &wrapped, CONTEXT);

    assert!(
        matches!(result, Err(KemError::UnwrapFailed(_))),
        "{result:?}"
    );
}

/// Returns the little-endian encoding of the u-coordinate 1.
fn one_u_coordinate() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[0] = 1;
    bytes
}

/// Returns a shared secret of 32 equal bytes.
fn secret(byte: u8) -> SharedSecret {
    Zeroizing::new([byte; 32])
}
