//! Hybrid signatures: Ed25519 (RFC 8032) and ML-DSA-65 (FIPS 204) over the
//! same message.
//!
//! A signature made today must stay unforgeable after a large quantum
//! computer exists, because Hearth keeps signed credentials and signed
//! tree heads for years. ML-DSA-65 resists the quantum attacker, and Ed25519
//! covers a flaw found in the young ML-DSA standard or its implementation.
//! A [`HybridSignature`] carries one signature of each kind, and
//! [`HybridVerifier::verify`] accepts it only when both verify, so a forger
//! has to break both schemes. The tests `ed25519_part_broken_is_rejected` and
//! `ml_dsa_part_broken_is_rejected` in `tests/sign_hybrid.rs` back that claim.
//!
//! # What both parts sign
//!
//! Both parts sign the same byte string:
//!
//! ```text
//! "hearth/hybrid-signature" || version (1 byte) || algorithm id (2 bytes, big-endian)
//!     || context length (8 bytes, big-endian) || context || message
//! ```
//!
//! The caller's context (for example `b"hearth/credential/v1"`) separates
//! purposes: a signature made for one context does not verify under another,
//! so a signed credential cannot be replayed as a signed tree head. The
//! version and algorithm id are inside the signed bytes too, so a signature
//! cannot be relabelled as another format. ML-DSA signs this string with an
//! empty FIPS 204 context string, and Ed25519 is pure Ed25519, not Ed25519ph.
//! The message is copied once into that string, so callers sign a SHA-256
//! digest of large files rather than the files themselves.
//!
//! # Encodings
//!
//! Every encoding starts with a format version byte ([`FORMAT_VERSION`]) and
//! a 2-byte algorithm id ([`ALG_ED25519_ML_DSA_65`]), so the format can change
//! later without ambiguity. Decoders reject other versions and ids, wrong
//! lengths and trailing bytes.
//!
//! - Signing key: header, Ed25519 secret key (32 bytes), ML-DSA-65 seed ξ
//!   (32 bytes): 67 bytes. The seed regenerates the whole ML-DSA key
//!   (FIPS 204, `ML-DSA.KeyGen_internal`), so it is the stored form.
//! - Verifying key: header, Ed25519 public key (32 bytes), ML-DSA-65 public
//!   key (1952 bytes): 1987 bytes.
//! - Signature: header, then each part as a 2-byte big-endian length and the
//!   signature (64 bytes for Ed25519, 3309 bytes for ML-DSA-65): 3380 bytes.
//!
//! # Randomness
//!
//! Ed25519 signing is deterministic. ML-DSA signing is hedged, the FIPS 204
//! default: 32 random bytes from the operating system go into each
//! signature, so that fault and side-channel attacks cannot rely on the same
//! message always giving the same signing computation. If the operating
//! system's generator fails, signing falls back to the deterministic variant
//! of FIPS 204 (random bytes all zero), which is still a valid ML-DSA
//! signature, and logs a warning.
//!
//! # Why not Falcon (FN-DSA)
//!
//! FN-DSA (Falcon, to become FIPS 206) is left out. Its standard is not final,
//! so there are no final known-answer vectors to test against. Its signing
//! also samples from a discrete Gaussian with floating-point arithmetic, and
//! making that run in time independent of the secret key is hard on
//! general-purpose CPUs. ML-DSA signing uses only integer arithmetic.
//!
//! # What this does not protect against
//!
//! A stolen signing key: both parts come from one key file. Verification also
//! does not bind the signer's identity beyond the verifying key the caller
//! chose to trust.

mod error;
mod signature;
mod signing_key;
mod verifying_key;

pub use error::SignatureError;
pub use signature::HybridSignature;
pub use signing_key::HybridSigningKey;
pub use verifying_key::HybridVerifyingKey;

/// A key that makes hybrid signatures.
pub trait HybridSigner {
    /// Signs `message` for the purpose named by `context`, with both the
    /// Ed25519 and the ML-DSA-65 part.
    fn sign(&self, context: &[u8], message: &[u8]) -> HybridSignature;

    /// Returns the public key that verifies this signer's signatures.
    fn verifying_key(&self) -> HybridVerifyingKey;
}

/// A key that checks hybrid signatures.
pub trait HybridVerifier {
    /// Verifies `signature` over `message` under `context`.
    ///
    /// # Errors
    ///
    /// Returns [`SignatureError::Ed25519Invalid`], [`SignatureError::MlDsaInvalid`]
    /// or [`SignatureError::BothInvalid`] for the part or parts that fail.
    fn verify(
        &self,
        context: &[u8],
        message: &[u8],
        signature: &HybridSignature,
    ) -> Result<(), SignatureError>;
}

/// Format version written at the start of every key and signature encoding.
pub const FORMAT_VERSION: u8 = 1;

/// Algorithm id of the Ed25519 + ML-DSA-65 combination.
pub const ALG_ED25519_ML_DSA_65: u16 = 0x0001;

/// Label that starts every signed byte string, so that no other protocol's
/// Ed25519 or ML-DSA signature over the same key verifies here by accident.
const DOMAIN_LABEL: &[u8] = b"hearth/hybrid-signature";

/// FIPS 204 context string for the ML-DSA part. It is empty because the
/// domain separation lives in the signed byte string, which has no length limit.
const ML_DSA_CONTEXT: &[u8] = b"";

/// Length of the version byte and the algorithm id.
const HEADER_LEN: usize = 3;

/// Builds the byte string that both signature parts sign.
fn signed_message(context: &[u8], message: &[u8]) -> Vec<u8> {
    let context_len = context.len() as u64;

    let mut signed =
        Vec::with_capacity(DOMAIN_LABEL.len() + HEADER_LEN + 8 + context.len() + message.len());
    signed.extend_from_slice(DOMAIN_LABEL);
    signed.extend_from_slice(&header());
    signed.extend_from_slice(&context_len.to_be_bytes());
    signed.extend_from_slice(context);
    signed.extend_from_slice(message);
    signed
}

/// Returns the version byte and the algorithm id of the current format.
fn header() -> [u8; HEADER_LEN] {
    let [alg_high, alg_low] = ALG_ED25519_ML_DSA_65.to_be_bytes();
    [FORMAT_VERSION, alg_high, alg_low]
}

/// Checks the version byte and algorithm id at the start of `bytes`.
///
/// `item` names the encoding in the error, and `expected_len` is its full
/// length, reported when `bytes` is too short to hold a header.
fn check_header(
    bytes: &[u8],
    item: &'static str,
    expected_len: usize,
) -> Result<(), SignatureError> {
    let Some(&[version, alg_high, alg_low]) = bytes.first_chunk::<HEADER_LEN>() else {
        return Err(SignatureError::Length {
            item,
            actual: bytes.len(),
            expected: expected_len,
        });
    };

    if version != FORMAT_VERSION {
        return Err(SignatureError::UnsupportedVersion { found: version });
    }

    let alg = u16::from_be_bytes([alg_high, alg_low]);
    if alg != ALG_ED25519_ML_DSA_65 {
        return Err(SignatureError::UnknownAlgorithm { found: alg });
    }

    if bytes.len() != expected_len {
        return Err(SignatureError::Length {
            item,
            actual: bytes.len(),
            expected: expected_len,
        });
    }

    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_message_prefixes_context_length() {
        let signed = signed_message(b"ctx", b"msg");

        let mut expected = b"hearth/hybrid-signature".to_vec();
        expected.extend_from_slice(&[1, 0x00, 0x01]);
        expected.extend_from_slice(&3u64.to_be_bytes());
        expected.extend_from_slice(b"ctxmsg");
        assert_eq!(signed, expected);
    }

    #[test]
    fn signed_message_separates_context_from_message() {
        assert_ne!(signed_message(b"ab", b"c"), signed_message(b"a", b"bc"));
    }
}
