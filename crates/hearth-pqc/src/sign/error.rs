//! Errors of hybrid signature decoding and verification.

/// Error from decoding or verifying a hybrid key or signature.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The Ed25519 part does not verify, and the ML-DSA-65 part does.
    #[error("invalid hybrid signature: the Ed25519 part does not verify")]
    Ed25519Invalid,

    /// The ML-DSA-65 part does not decode or does not verify, and the
    /// Ed25519 part does.
    #[error("invalid hybrid signature: the ML-DSA-65 part does not verify")]
    MlDsaInvalid,

    /// Neither part verifies.
    #[error("invalid hybrid signature: neither the Ed25519 nor the ML-DSA-65 part verifies")]
    BothInvalid,

    /// The encoding starts with a format version this build does not read.
    #[error("unsupported hybrid encoding version {found}: this build reads version 1")]
    UnsupportedVersion {
        /// Version byte found in the encoding.
        found: u8,
    },

    /// The encoding names an algorithm combination this build does not know.
    #[error(
        "unknown hybrid algorithm id 0x{found:04x}: this build supports 0x0001 (Ed25519 + ML-DSA-65)"
    )]
    UnknownAlgorithm {
        /// Algorithm id found in the encoding.
        found: u16,
    },

    /// The encoding is truncated or has trailing bytes.
    #[error("malformed {item}: {actual} bytes, expected {expected}")]
    Length {
        /// Encoding that was decoded, such as "hybrid signature".
        item: &'static str,
        /// Length of the input in bytes.
        actual: usize,
        /// Length of a well-formed encoding in bytes.
        expected: usize,
    },

    /// A length field inside a signature encoding has the wrong value.
    #[error("malformed hybrid signature: {part} length field is {actual}, expected {expected}")]
    PartLength {
        /// Signature part whose length field is wrong.
        part: &'static str,
        /// Value of the length field.
        actual: usize,
        /// Length of that part in the current format.
        expected: usize,
    },

    /// The Ed25519 public key is not the encoding of a curve point.
    #[error("invalid Ed25519 public key in hybrid verifying key")]
    InvalidEd25519Key(#[source] ed25519_dalek::SignatureError),

    /// The Ed25519 public key is a point of small order, for which signatures
    /// can be forged.
    #[error("invalid Ed25519 public key in hybrid verifying key: the point has small order")]
    WeakEd25519Key,
}
