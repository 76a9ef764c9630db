//! Property tests of hybrid signature decoding and verification.

use std::sync::OnceLock;

use proptest::prelude::*;

use hearth_pqc::sign::{
    HybridSignature, HybridSigner as _, HybridSigningKey, HybridVerifier as _, HybridVerifyingKey,
};

const CONTEXT: &[u8] = b"hearth/tree-head/v1";
const MESSAGE: &[u8] = b"tree size 4096, root 7f3a";

proptest! {
    // Each case signs with ML-DSA-65, so keep the case count moderate.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_context_and_message_round_trip(
        context in proptest::collection::vec(any::<u8>(), 0..64),
        message in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let (key, _) = shared_signature();

        let signature = key.sign(&context, &message);
        let decoded = HybridSignature::from_bytes(&signature.to_bytes());

        prop_assert!(decoded.is_ok());
        prop_assert!(key.verifying_key().verify(&context, &message, &signature).is_ok());
    }

    #[test]
    fn moving_the_context_boundary_fails(split in 0..=CONTEXT.len() + MESSAGE.len()) {
        let (key, signature) = shared_signature();
        let joined = [CONTEXT, MESSAGE].concat();
        prop_assume!(split != CONTEXT.len());

        let (context, message) = joined.split_at(split);

        prop_assert!(key.verifying_key().verify(context, message, signature).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn signature_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4000)) {
        let _ = HybridSignature::from_bytes(&bytes);
    }

    #[test]
    fn key_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2100)) {
        let _ = HybridVerifyingKey::from_bytes(&bytes);
        let _ = HybridSigningKey::from_bytes(&bytes);
    }

    #[test]
    fn any_bit_flip_is_rejected(bit in 0usize..3380 * 8) {
        let (key, signature) = shared_signature();
        let mut bytes = signature.to_bytes();
        bytes[bit / 8] ^= 1 << (bit % 8);

        // A flip in the header or a length field fails decoding. Any other
        // flip decodes and fails verification.
        let verified = HybridSignature::from_bytes(&bytes)
            .is_ok_and(|flipped| key.verifying_key().verify(CONTEXT, MESSAGE, &flipped).is_ok());

        prop_assert!(!verified, "bit {} flipped and still verified", bit);
    }
}

/// Returns one key and its signature over `MESSAGE` under `CONTEXT`.
fn shared_signature() -> &'static (HybridSigningKey, HybridSignature) {
    static SHARED: OnceLock<(HybridSigningKey, HybridSignature)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let key = HybridSigningKey::generate();
        let signature = key.sign(CONTEXT, MESSAGE);
        (key, signature)
    })
}
