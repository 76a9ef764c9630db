//! Errors of X-Wing decoding, decapsulation and content-key unwrapping.

/// Error from decoding or opening an X-Wing key, ciphertext or wrapped key.
#[derive(Debug, thiserror::Error)]
pub enum KemError {
    /// The input has the wrong length for its encoding.
    #[error("malformed {item}: {actual} bytes, expected {expected}")]
    Length {
        /// Encoding that was decoded, such as "X-Wing public key".
        item: &'static str,
        /// Length of the input in bytes.
        actual: usize,
        /// Length of a well-formed encoding in bytes.
        expected: usize,
    },

    /// The input is shorter than the shortest well-formed encoding.
    #[error("malformed {item}: {actual} bytes, expected at least {minimum}")]
    TooShort {
        /// Encoding that was decoded, such as "wrapped content key".
        item: &'static str,
        /// Length of the input in bytes.
        actual: usize,
        /// Length of the shortest well-formed encoding in bytes.
        minimum: usize,
    },

    /// The ML-KEM-768 part of a public key has a coefficient that is not
    /// reduced modulo q, which the FIPS 203 input check (section 7.2) rejects.
    #[error("invalid X-Wing public key: the ML-KEM-768 part fails the FIPS 203 modulus check")]
    InvalidPublicKey,

    /// The X25519 part of the ciphertext is a point of small order, so the
    /// X25519 shared secret would be all zeros.
    #[error("X-Wing decapsulation rejected: the X25519 part of the ciphertext has small order")]
    NonContributory,

    /// A wrapped content key starts with a format version this build does not read.
    #[error("unsupported wrapped content key version {found}: this build reads version 1")]
    UnsupportedVersion {
        /// Version byte found in the encoding.
        found: u8,
    },

    /// The content key did not authenticate: the wrapped key was modified,
    /// or the secret key or the context differs from the ones used to wrap it.
    #[error(
        "content key unwrap failed: the wrapped key was modified, or the secret key or context \
         does not match the ones used to wrap it"
    )]
    UnwrapFailed(#[source] chacha20poly1305::Error),
}
