//! Property tests of content-key wrapping and X-Wing decoding.

use std::sync::OnceLock;

use proptest::prelude::*;

use hearth_pqc::kem::{
    WrappedKey, XWingCiphertext, XWingPublicKey, XWingSecretKey, unwrap_content_key,
    wrap_content_key,
};

const CONTEXT: &[u8] = b"hearth/media/segment-key/v1";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_content_key_and_context_round_trip(
        content_key in proptest::collection::vec(any::<u8>(), 0..128),
        context in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let sk = shared_secret_key();

        let wrapped = wrap_content_key(&sk.public_key(), &content_key, &context);
        let decoded = WrappedKey::from_bytes(&wrapped.to_bytes()).expect("wrapped key decodes");
        let unwrapped = unwrap_content_key(sk, &decoded, &context).expect("unwraps");

        prop_assert_eq!(unwrapped.as_slice(), content_key.as_slice());
    }

    #[test]
    fn any_bit_flip_fails_unwrap(bit in 0usize..(1 + 1120 + 32 + 16) * 8) {
        let sk = shared_secret_key();
        let mut bytes = shared_wrapped_key().to_bytes();
        bytes[bit / 8] ^= 1 << (bit % 8);

        // A flip in the version byte fails decoding. Any other flip decodes
        // and fails authentication.
        let unwrapped = WrappedKey::from_bytes(&bytes)
            .is_ok_and(|wrapped| unwrap_content_key(sk, &wrapped, CONTEXT).is_ok());

        prop_assert!(!unwrapped, "bit {} flipped and still unwrapped", bit);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = WrappedKey::from_bytes(&bytes);
        let _ = XWingPublicKey::from_bytes(&bytes);
        let _ = XWingCiphertext::from_bytes(&bytes);
        let _ = XWingSecretKey::from_bytes(&bytes);
    }

    #[test]
    fn full_length_public_key_has_no_length_error(
        bytes in proptest::collection::vec(any::<u8>(), 1216),
    ) {
        // Random bytes almost always hold a 12-bit coefficient of at least
        // q = 3329, so the FIPS 203 modulus check rejects them.
        let result = XWingPublicKey::from_bytes(&bytes);
        prop_assert!(
            matches!(result, Ok(_) | Err(hearth_pqc::kem::KemError::InvalidPublicKey)),
            "{:?}",
            result
        );
    }
}

/// Returns one secret key shared by the cases of this file.
fn shared_secret_key() -> &'static XWingSecretKey {
    static SHARED: OnceLock<XWingSecretKey> = OnceLock::new();
    SHARED.get_or_init(XWingSecretKey::generate)
}

/// Returns one 32-byte content key wrapped to [`shared_secret_key`].
fn shared_wrapped_key() -> &'static WrappedKey {
    static SHARED: OnceLock<WrappedKey> = OnceLock::new();
    SHARED.get_or_init(|| wrap_content_key(&shared_secret_key().public_key(), &[0x5a; 32], CONTEXT))
}
