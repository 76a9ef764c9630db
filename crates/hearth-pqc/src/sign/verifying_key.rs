//! The hybrid verifying key: an Ed25519 and an ML-DSA-65 public key.

use ml_dsa::{EncodedVerifyingKey, MlDsa65};
use sha2::{Digest, Sha256};

use super::{
    HEADER_LEN, HybridSignature, HybridVerifier, ML_DSA_CONTEXT, SignatureError, check_header,
    header, signed_message,
};

/// Length of an Ed25519 public key (RFC 8032).
const ED25519_KEY_LEN: usize = 32;

/// Length of an ML-DSA-65 public key (FIPS 204, Table 2).
const ML_DSA_65_KEY_LEN: usize = 1952;

/// Length of an encoded verifying key in the current format.
const ENCODED_LEN: usize = HEADER_LEN + ED25519_KEY_LEN + ML_DSA_65_KEY_LEN;

/// Number of SHA-256 bytes in a key id.
const KEY_ID_LEN: usize = 16;

/// A public key that verifies hybrid Ed25519 + ML-DSA-65 signatures.
#[derive(Clone)]
pub struct HybridVerifyingKey {
    ed25519: ed25519_dalek::VerifyingKey,
    ml_dsa: ml_dsa::VerifyingKey<MlDsa65>,
}

impl HybridVerifyingKey {
    /// Combines the public keys of both parts.
    pub(super) fn from_parts(
        ed25519: ed25519_dalek::VerifyingKey,
        ml_dsa: ml_dsa::VerifyingKey<MlDsa65>,
    ) -> Self {
        Self { ed25519, ml_dsa }
    }

    /// Decodes a key written by [`Self::to_bytes`].
    ///
    /// # Errors
    ///
    /// Returns [`SignatureError::UnsupportedVersion`] or
    /// [`SignatureError::UnknownAlgorithm`] for another format,
    /// [`SignatureError::Length`] for a truncated or extended encoding, and
    /// [`SignatureError::InvalidEd25519Key`] or
    /// [`SignatureError::WeakEd25519Key`] for an unusable Ed25519 key. Every
    /// 1952-byte string is a well-formed ML-DSA-65 public key (FIPS 204,
    /// Algorithm 23), so that part has no decoding error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignatureError> {
        check_header(bytes, "hybrid verifying key", ENCODED_LEN)?;
        let (ed25519, ml_dsa) = bytes[HEADER_LEN..].split_at(ED25519_KEY_LEN);

        let ed25519: &[u8; ED25519_KEY_LEN] = ed25519
            .try_into()
            .expect("check_header verified the total length, so the Ed25519 key is 32 bytes");
        let ed25519 = ed25519_dalek::VerifyingKey::from_bytes(ed25519)
            .map_err(SignatureError::InvalidEd25519Key)?;
        if ed25519.is_weak() {
            return Err(SignatureError::WeakEd25519Key);
        }

        let ml_dsa = EncodedVerifyingKey::<MlDsa65>::try_from(ml_dsa)
            .expect("check_header verified the total length, so the ML-DSA key is 1952 bytes");
        let ml_dsa = ml_dsa::VerifyingKey::<MlDsa65>::decode(&ml_dsa);

        Ok(Self { ed25519, ml_dsa })
    }

    /// Encodes the key: header, Ed25519 public key, ML-DSA-65 public key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(ENCODED_LEN);
        bytes.extend_from_slice(&header());
        bytes.extend_from_slice(self.ed25519.as_bytes());
        bytes.extend_from_slice(&self.ml_dsa.encode());
        bytes
    }

    /// Returns a stable identifier of this key: the lowercase hex of the first
    /// 16 bytes of the SHA-256 of [`Self::to_bytes`].
    pub fn key_id(&self) -> String {
        let digest = Sha256::digest(self.to_bytes());
        hex::encode(&digest[..KEY_ID_LEN])
    }

    /// Checks the Ed25519 part with ed25519-dalek's `verify_strict`, which
    /// also rejects weak public keys and small-order signature points.
    fn verify_ed25519(&self, signed: &[u8], signature: &HybridSignature) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature.ed25519());
        self.ed25519.verify_strict(signed, &signature).is_ok()
    }

    /// Checks the ML-DSA-65 part. A signature that does not decode fails.
    fn verify_ml_dsa(&self, signed: &[u8], signature: &HybridSignature) -> bool {
        let encoded = ml_dsa::EncodedSignature::<MlDsa65>::from(*signature.ml_dsa());
        let Some(signature) = ml_dsa::Signature::<MlDsa65>::decode(&encoded) else {
            return false;
        };
        self.ml_dsa
            .verify_with_context(signed, ML_DSA_CONTEXT, &signature)
    }
}

impl HybridVerifier for HybridVerifyingKey {
    fn verify(
        &self,
        context: &[u8],
        message: &[u8],
        signature: &HybridSignature,
    ) -> Result<(), SignatureError> {
        let signed = signed_message(context, message);

        // Both parts are checked even when the first fails, so the error
        // names every part that failed. Verification handles public data
        // only, so the extra time reveals nothing secret.
        let ed25519_valid = self.verify_ed25519(&signed, signature);
        let ml_dsa_valid = self.verify_ml_dsa(&signed, signature);

        match (ed25519_valid, ml_dsa_valid) {
            (true, true) => Ok(()),
            (false, true) => Err(SignatureError::Ed25519Invalid),
            (true, false) => Err(SignatureError::MlDsaInvalid),
            (false, false) => Err(SignatureError::BothInvalid),
        }
    }
}

impl PartialEq for HybridVerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

impl Eq for HybridVerifyingKey {}

impl std::fmt::Debug for HybridVerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridVerifyingKey")
            .field("key_id", &self.key_id())
            .finish()
    }
}
