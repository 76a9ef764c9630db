//! The hybrid signature value and its byte encoding.

use super::{HEADER_LEN, SignatureError, check_header, header};

/// Length of an Ed25519 signature (RFC 8032).
pub(super) const ED25519_SIGNATURE_LEN: usize = 64;

/// Length of an ML-DSA-65 signature (FIPS 204, Table 2).
pub(super) const ML_DSA_65_SIGNATURE_LEN: usize = 3309;

/// Length of each part's length field.
const PART_LENGTH_LEN: usize = 2;

/// Length of an encoded hybrid signature in the current format.
const ENCODED_LEN: usize = HEADER_LEN
    + PART_LENGTH_LEN
    + ED25519_SIGNATURE_LEN
    + PART_LENGTH_LEN
    + ML_DSA_65_SIGNATURE_LEN;

/// An Ed25519 signature and an ML-DSA-65 signature over the same message.
///
/// Decoding checks the format and lengths only. Whether each part is a
/// valid signature is decided by [`HybridVerifier::verify`](super::HybridVerifier::verify).
#[derive(Clone, PartialEq, Eq)]
pub struct HybridSignature {
    ed25519: [u8; ED25519_SIGNATURE_LEN],
    ml_dsa: Box<[u8; ML_DSA_65_SIGNATURE_LEN]>,
}

impl HybridSignature {
    /// Combines the encoded signature parts.
    pub(super) fn from_parts(
        ed25519: [u8; ED25519_SIGNATURE_LEN],
        ml_dsa: Box<[u8; ML_DSA_65_SIGNATURE_LEN]>,
    ) -> Self {
        Self { ed25519, ml_dsa }
    }

    /// Decodes a signature written by [`Self::to_bytes`].
    ///
    /// # Errors
    ///
    /// Returns [`SignatureError::UnsupportedVersion`] or
    /// [`SignatureError::UnknownAlgorithm`] for another format,
    /// [`SignatureError::Length`] for a truncated or extended encoding, and
    /// [`SignatureError::PartLength`] when a length field is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignatureError> {
        check_header(bytes, "hybrid signature", ENCODED_LEN)?;
        let rest = &bytes[HEADER_LEN..];

        let (ed25519, rest) = split_part(rest, "Ed25519", ED25519_SIGNATURE_LEN)?;
        let (ml_dsa, _) = split_part(rest, "ML-DSA-65", ML_DSA_65_SIGNATURE_LEN)?;

        let ed25519 = ed25519
            .try_into()
            .expect("split_part returned exactly ED25519_SIGNATURE_LEN bytes");
        let ml_dsa = Box::new(
            ml_dsa
                .try_into()
                .expect("split_part returned exactly ML_DSA_65_SIGNATURE_LEN bytes"),
        );
        Ok(Self { ed25519, ml_dsa })
    }

    /// Encodes the signature: header, then each part with its length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(ENCODED_LEN);
        bytes.extend_from_slice(&header());
        push_part(&mut bytes, &self.ed25519);
        push_part(&mut bytes, self.ml_dsa.as_slice());
        bytes
    }

    /// Returns the encoded Ed25519 part.
    pub(super) fn ed25519(&self) -> &[u8; ED25519_SIGNATURE_LEN] {
        &self.ed25519
    }

    /// Returns the encoded ML-DSA-65 part.
    pub(super) fn ml_dsa(&self) -> &[u8; ML_DSA_65_SIGNATURE_LEN] {
        &self.ml_dsa
    }
}

impl std::fmt::Debug for HybridSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridSignature")
            .field("ed25519", &hex::encode(self.ed25519))
            .field("ml_dsa_len", &self.ml_dsa.len())
            .finish()
    }
}

/// Splits one length-prefixed part of `expected` bytes off the front of `bytes`.
///
/// The caller has checked the total length, so only the length field can be wrong.
fn split_part<'a>(
    bytes: &'a [u8],
    part: &'static str,
    expected: usize,
) -> Result<(&'a [u8], &'a [u8]), SignatureError> {
    let length_field = bytes
        .first_chunk::<PART_LENGTH_LEN>()
        .map_or(0, |field| usize::from(u16::from_be_bytes(*field)));

    if length_field != expected {
        return Err(SignatureError::PartLength {
            part,
            actual: length_field,
            expected,
        });
    }

    Ok(bytes[PART_LENGTH_LEN..].split_at(expected))
}

/// Appends a 2-byte big-endian length and the part.
fn push_part(bytes: &mut Vec<u8>, part: &[u8]) {
    let length = u16::try_from(part.len()).expect("signature parts are shorter than 65,536 bytes");
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(part);
}
