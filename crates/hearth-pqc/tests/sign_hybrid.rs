//! Behaviour of hybrid Ed25519 + ML-DSA-65 signatures and their encodings.

use std::sync::OnceLock;

use hearth_pqc::sign::{
    HybridSignature, HybridSigner as _, HybridSigningKey, HybridVerifier as _, HybridVerifyingKey,
    SignatureError,
};

const CONTEXT: &[u8] = b"hearth/credential/v1";
const MESSAGE: &[u8] = b"device 7 may play rated PG at any time";

/// Offsets in an encoded signature: header (3 bytes), Ed25519 length field,
/// Ed25519 signature, ML-DSA-65 length field, ML-DSA-65 signature.
const ED25519_LENGTH_FIELD: usize = 3;
const ED25519_PART: usize = 5;
const ML_DSA_LENGTH_FIELD: usize = 69;
const ML_DSA_PART: usize = 71;
const SIGNATURE_LEN: usize = 3380;

#[test]
fn round_trip_verifies() {
    let (key, signature) = shared_signature();

    let decoded = HybridSignature::from_bytes(&signature.to_bytes()).expect("signature decodes");

    key.verifying_key()
        .verify(CONTEXT, MESSAGE, &decoded)
        .expect("signature verifies");
}

#[test]
fn signature_layout_has_header_and_lengths() {
    let (_, signature) = shared_signature();
    let bytes = signature.to_bytes();

    assert_eq!(bytes.len(), SIGNATURE_LEN);
    assert_eq!(&bytes[..3], &[1, 0x00, 0x01]);
    assert_eq!(
        &bytes[ED25519_LENGTH_FIELD..ED25519_PART],
        &64u16.to_be_bytes()
    );
    assert_eq!(
        &bytes[ML_DSA_LENGTH_FIELD..ML_DSA_PART],
        &3309u16.to_be_bytes()
    );
}

#[test]
fn ml_dsa_part_broken_is_rejected() {
    let (key, signature) = shared_signature();

    for index in [
        ML_DSA_PART,
        ML_DSA_PART + 1000,
        SIGNATURE_LEN - 100,
        SIGNATURE_LEN - 1,
    ] {
        let broken = flip_bit(signature, index);

        let result = key.verifying_key().verify(CONTEXT, MESSAGE, &broken);
        assert!(
            matches!(result, Err(SignatureError::MlDsaInvalid)),
            "bit flip at byte {index}: {result:?}"
        );
    }
}

#[test]
fn ed25519_part_broken_is_rejected() {
    let (key, signature) = shared_signature();

    for index in [
        ED25519_PART,
        ED25519_PART + 31,
        ED25519_PART + 32,
        ML_DSA_LENGTH_FIELD - 1,
    ] {
        let broken = flip_bit(signature, index);

        let result = key.verifying_key().verify(CONTEXT, MESSAGE, &broken);
        assert!(
            matches!(result, Err(SignatureError::Ed25519Invalid)),
            "bit flip at byte {index}: {result:?}"
        );
    }
}

#[test]
fn both_parts_broken_are_rejected() {
    let (key, signature) = shared_signature();
    let broken = flip_bit(signature, ED25519_PART);
    let broken = flip_bit(&broken, ML_DSA_PART + 10);

    let result = key.verifying_key().verify(CONTEXT, MESSAGE, &broken);

    assert!(
        matches!(result, Err(SignatureError::BothInvalid)),
        "{result:?}"
    );
}

#[test]
fn other_context_is_rejected() {
    let (key, signature) = shared_signature();

    for context in [&b"hearth/tree-head/v1"[..], b"", b"hearth/credential/v2"] {
        let result = key.verifying_key().verify(context, MESSAGE, signature);
        assert!(
            matches!(result, Err(SignatureError::BothInvalid)),
            "context {:?}: {result:?}",
            String::from_utf8_lossy(context)
        );
    }
}

#[test]
fn context_and_message_boundary_is_signed() {
    let (key, signature) = shared_signature();

    // Same concatenation of context and message, split at another byte.
    let mut shifted_context = CONTEXT.to_vec();
    shifted_context.push(MESSAGE[0]);
    let result = key
        .verifying_key()
        .verify(&shifted_context, &MESSAGE[1..], signature);

    assert!(
        matches!(result, Err(SignatureError::BothInvalid)),
        "{result:?}"
    );
}

#[test]
fn other_message_is_rejected() {
    let (key, signature) = shared_signature();

    let result =
        key.verifying_key()
            .verify(CONTEXT, b"device 7 may play rated R at any time", signature);

    assert!(
        matches!(result, Err(SignatureError::BothInvalid)),
        "{result:?}"
    );
}

#[test]
fn other_key_is_rejected() {
    let (_, signature) = shared_signature();
    let other = HybridSigningKey::generate();

    let result = other.verifying_key().verify(CONTEXT, MESSAGE, signature);

    assert!(
        matches!(result, Err(SignatureError::BothInvalid)),
        "{result:?}"
    );
}

#[test]
fn truncated_signature_is_rejected() {
    let (_, signature) = shared_signature();
    let bytes = signature.to_bytes();

    for length in [0, 2, 3, 5, 69, 71, SIGNATURE_LEN - 1] {
        let result = HybridSignature::from_bytes(&bytes[..length]);
        assert_length_error(result, length, SIGNATURE_LEN);
    }
}

#[test]
fn extended_signature_is_rejected() {
    let (_, signature) = shared_signature();
    let mut bytes = signature.to_bytes();
    bytes.push(0);

    let result = HybridSignature::from_bytes(&bytes);

    assert_length_error(result, SIGNATURE_LEN + 1, SIGNATURE_LEN);
}

#[test]
fn unknown_version_is_rejected() {
    let (_, signature) = shared_signature();

    for version in [0u8, 2, 0xff] {
        let mut bytes = signature.to_bytes();
        bytes[0] = version;

        let result = HybridSignature::from_bytes(&bytes);
        assert!(
            matches!(result, Err(SignatureError::UnsupportedVersion { found }) if found == version),
            "version {version}: {result:?}"
        );
    }
}

#[test]
fn unknown_algorithm_is_rejected() {
    let (_, signature) = shared_signature();

    for alg in [0x0000u16, 0x0002, 0x0100, 0xffff] {
        let mut bytes = signature.to_bytes();
        bytes[1..3].copy_from_slice(&alg.to_be_bytes());

        let result = HybridSignature::from_bytes(&bytes);
        assert!(
            matches!(result, Err(SignatureError::UnknownAlgorithm { found }) if found == alg),
            "algorithm 0x{alg:04x}: {result:?}"
        );
    }
}

#[test]
fn wrong_part_length_field_is_rejected() {
    let (_, signature) = shared_signature();
    let cases = [
        (ED25519_LENGTH_FIELD, 63u16, "Ed25519", 64),
        (ED25519_LENGTH_FIELD, 65, "Ed25519", 64),
        (ML_DSA_LENGTH_FIELD, 3308, "ML-DSA-65", 3309),
        (ML_DSA_LENGTH_FIELD, 0, "ML-DSA-65", 3309),
    ];

    for (offset, field, expected_part, expected_len) in cases {
        let mut bytes = signature.to_bytes();
        bytes[offset..offset + 2].copy_from_slice(&field.to_be_bytes());

        match HybridSignature::from_bytes(&bytes) {
            Err(SignatureError::PartLength {
                part,
                actual,
                expected,
            }) => {
                assert_eq!(part, expected_part);
                assert_eq!(actual, usize::from(field));
                assert_eq!(expected, expected_len);
            }
            other => panic!("field {field} at {offset}: expected PartLength, got {other:?}"),
        }
    }
}

#[test]
fn signing_key_round_trip_verifies_old_signatures() {
    let (key, signature) = shared_signature();

    let restored = HybridSigningKey::from_bytes(&key.to_bytes()).expect("signing key decodes");

    assert_eq!(restored.verifying_key(), key.verifying_key());
    restored
        .verifying_key()
        .verify(CONTEXT, MESSAGE, signature)
        .expect("old signature verifies under the restored key");
    key.verifying_key()
        .verify(CONTEXT, MESSAGE, &restored.sign(CONTEXT, MESSAGE))
        .expect("new signature verifies under the old key");
}

#[test]
fn verifying_key_round_trip_verifies_old_signatures() {
    let (key, signature) = shared_signature();

    let bytes = key.verifying_key().to_bytes();
    let restored = HybridVerifyingKey::from_bytes(&bytes).expect("verifying key decodes");

    assert_eq!(bytes.len(), 1987);
    assert_eq!(restored, key.verifying_key());
    assert_eq!(restored.key_id(), key.verifying_key().key_id());
    restored
        .verify(CONTEXT, MESSAGE, signature)
        .expect("old signature verifies under the restored key");
}

#[test]
fn signing_key_encoding_is_strict() {
    let (key, _) = shared_signature();
    let bytes = key.to_bytes();
    assert_eq!(bytes.len(), 67);

    assert_length_error(HybridSigningKey::from_bytes(&bytes[..66]), 66, 67);
    assert_length_error(
        HybridSigningKey::from_bytes(&[bytes.as_slice(), &[0]].concat()),
        68,
        67,
    );
    assert_length_error(HybridSigningKey::from_bytes(&[]), 0, 67);

    let mut other_version = bytes.to_vec();
    other_version[0] = 2;
    let result = HybridSigningKey::from_bytes(&other_version);
    assert!(
        matches!(result, Err(SignatureError::UnsupportedVersion { found: 2 })),
        "{result:?}"
    );

    let mut other_alg = bytes.to_vec();
    other_alg[2] = 2;
    let result = HybridSigningKey::from_bytes(&other_alg);
    assert!(
        matches!(result, Err(SignatureError::UnknownAlgorithm { found: 2 })),
        "{result:?}"
    );
}

#[test]
fn verifying_key_encoding_is_strict() {
    let (key, _) = shared_signature();
    let bytes = key.verifying_key().to_bytes();

    assert_length_error(HybridVerifyingKey::from_bytes(&bytes[..1986]), 1986, 1987);
    assert_length_error(
        HybridVerifyingKey::from_bytes(&[bytes.as_slice(), &[0]].concat()),
        1988,
        1987,
    );

    let mut other_version = bytes.clone();
    other_version[0] = 0;
    let result = HybridVerifyingKey::from_bytes(&other_version);
    assert!(
        matches!(result, Err(SignatureError::UnsupportedVersion { found: 0 })),
        "{result:?}"
    );

    let mut other_alg = bytes.clone();
    other_alg[1] = 1;
    let result = HybridVerifyingKey::from_bytes(&other_alg);
    assert!(
        matches!(
            result,
            Err(SignatureError::UnknownAlgorithm { found: 0x0101 })
        ),
        "{result:?}"
    );
}

#[test]
fn verifying_key_rejects_bad_ed25519_keys() {
    let (key, _) = shared_signature();
    let bytes = key.verifying_key().to_bytes();

    // y = 2 is not the y-coordinate of a point on edwards25519.
    let mut not_a_point = bytes.clone();
    not_a_point[3..35].copy_from_slice(&y_coordinate(2));
    let result = HybridVerifyingKey::from_bytes(&not_a_point);
    assert!(
        matches!(result, Err(SignatureError::InvalidEd25519Key(_))),
        "{result:?}"
    );

    // y = 1 is the identity point, which has small order.
    let mut identity = bytes.clone();
    identity[3..35].copy_from_slice(&y_coordinate(1));
    let result = HybridVerifyingKey::from_bytes(&identity);
    assert!(
        matches!(result, Err(SignatureError::WeakEd25519Key)),
        "{result:?}"
    );
}

#[test]
fn key_id_is_stable_and_distinct() {
    let (key, _) = shared_signature();
    let other = HybridSigningKey::generate();

    let key_id = key.verifying_key().key_id();

    assert_eq!(key_id.len(), 32);
    assert!(
        key_id.bytes().all(|byte| byte.is_ascii_hexdigit()),
        "{key_id}"
    );
    assert_eq!(key_id, key.verifying_key().key_id());
    assert_ne!(key_id, other.verifying_key().key_id());
}

#[test]
fn signing_key_debug_hides_secrets() {
    let mut encoded = vec![1, 0x00, 0x01];
    encoded.extend_from_slice(&[0xab; 32]);
    encoded.extend_from_slice(&[0xcd; 32]);
    let key = HybridSigningKey::from_bytes(&encoded).expect("signing key decodes");

    let printed = format!("{key:?}");

    assert!(printed.contains(&key.verifying_key().key_id()), "{printed}");
    for secret in [hex::encode([0xab; 32]), hex::encode([0xcd; 32])] {
        assert!(!printed.to_lowercase().contains(&secret), "{printed}");
    }
    for secret in ["171, 171", "205, 205"] {
        assert!(!printed.contains(secret), "{printed}");
    }
}

#[test]
fn generate_with_rng_is_reproducible() {
    let mut first_rng = CountingRng(0);
    let mut second_rng = CountingRng(0);

    let first = HybridSigningKey::generate_with_rng(&mut first_rng);
    let second = HybridSigningKey::generate_with_rng(&mut second_rng);
    let third = HybridSigningKey::generate_with_rng(&mut first_rng);

    assert_eq!(first.verifying_key(), second.verifying_key());
    assert_ne!(first.verifying_key(), third.verifying_key());
}

/// Returns one key and its signature over `MESSAGE` under `CONTEXT`, made
/// once for all tests in this file because ML-DSA key generation is slow in
/// debug builds.
fn shared_signature() -> &'static (HybridSigningKey, HybridSignature) {
    static SHARED: OnceLock<(HybridSigningKey, HybridSignature)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let key = HybridSigningKey::generate();
        let signature = key.sign(CONTEXT, MESSAGE);
        (key, signature)
    })
}

/// Returns `signature` with the lowest bit of byte `index` of its encoding flipped.
fn flip_bit(signature: &HybridSignature, index: usize) -> HybridSignature {
    let mut bytes = signature.to_bytes();
    bytes[index] ^= 0x01;
    HybridSignature::from_bytes(&bytes).expect("flipping a signature bit keeps the format")
}

/// Asserts that `result` is a length error with the given lengths.
fn assert_length_error<T: std::fmt::Debug>(
    result: Result<T, SignatureError>,
    expected_actual: usize,
    expected_len: usize,
) {
    match result {
        Err(SignatureError::Length {
            actual, expected, ..
        }) => {
            assert_eq!(actual, expected_actual);
            assert_eq!(expected, expected_len);
        }
        other => panic!("expected a length error for {expected_actual} bytes, got {other:?}"),
    }
}

/// Returns the compressed edwards25519 encoding of y with the sign bit clear.
fn y_coordinate(y: u8) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[0] = y;
    bytes
}

/// Predictable generator for reproducibility tests only: it returns 0, 1, 2, …
struct CountingRng(u8);

impl rand_core::TryRng for CountingRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut word = [0u8; 4];
        self.try_fill_bytes(&mut word)?;
        Ok(u32::from_le_bytes(word))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut word = [0u8; 8];
        self.try_fill_bytes(&mut word)?;
        Ok(u64::from_le_bytes(word))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for byte in dst {
            *byte = self.0;
            self.0 = self.0.wrapping_add(1);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for CountingRng {}
