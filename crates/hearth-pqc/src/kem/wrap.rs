//! Content-key wrapping for the media pipeline: a fresh X-Wing encapsulation
//! per wrap, HKDF-SHA256 and ChaCha20-Poly1305.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use x_wing::CIPHERTEXT_SIZE;
use zeroize::Zeroizing;

use super::{
    KemError, SharedSecret, XWingCiphertext, XWingPublicKey, XWingSecretKey, decapsulate,
    encapsulate,
};

/// Format version of the wrapped-key encoding.
const WRAP_VERSION: u8 = 1;

/// HKDF info label of the ChaCha20-Poly1305 key that seals a content key.
const WRAP_KEY_LABEL: &[u8] = b"hearth/content-key-wrap/v1";

/// Label that starts the associated data.
const WRAP_AAD_LABEL: &[u8] = b"hearth/content-key-wrap/v1/aad";

/// Length of the Poly1305 tag.
const TAG_LEN: usize = 16;

/// Length of the shortest wrapped key: version, ciphertext and the tag of an
/// empty content key.
const MIN_ENCODED_LEN: usize = 1 + CIPHERTEXT_SIZE + TAG_LEN;

/// A content key sealed to an X-Wing public key.
///
/// Encoded as a version byte (1), the 1120-byte X-Wing ciphertext, and the
/// ChaCha20-Poly1305 ciphertext of the content key with its 16-byte tag.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    ciphertext: XWingCiphertext,
    sealed: Vec<u8>,
}

impl WrappedKey {
    /// Decodes a wrapped key written by [`Self::to_bytes`].
    ///
    /// # Errors
    ///
    /// Returns [`KemError::TooShort`] for an input shorter than a wrapped
    /// empty key, and [`KemError::UnsupportedVersion`] for another format.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KemError> {
        let Some((&version, rest)) = bytes.split_first() else {
            return Err(too_short(bytes));
        };
        if version != WRAP_VERSION {
            return Err(KemError::UnsupportedVersion { found: version });
        }
        if bytes.len() < MIN_ENCODED_LEN {
            return Err(too_short(bytes));
        }

        let (ciphertext, sealed) = rest.split_at(CIPHERTEXT_SIZE);
        Ok(Self {
            ciphertext: XWingCiphertext::from_bytes(ciphertext)?,
            sealed: sealed.to_vec(),
        })
    }

    /// Encodes the wrapped key: version, X-Wing ciphertext, sealed content key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(1 + CIPHERTEXT_SIZE + self.sealed.len());
        bytes.push(WRAP_VERSION);
        bytes.extend_from_slice(self.ciphertext.as_bytes());
        bytes.extend_from_slice(&self.sealed);
        bytes
    }
}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedKey")
            .field("sealed_len", &self.sealed.len())
            .finish_non_exhaustive()
    }
}

/// Seals `content_key` to `pk` for the purpose named by `context`.
///
/// Each call encapsulates a fresh X-Wing shared secret, derives a
/// ChaCha20-Poly1305 key from it with HKDF-SHA256, and seals the content key
/// with the X-Wing ciphertext and `context` as associated data. Because every
/// sealing key is new and used once, the nonce is fixed at zero.
///
/// # Panics
///
/// Panics if the operating system's random number generator fails, or if
/// `content_key` is longer than the 256 GiB that ChaCha20-Poly1305 can seal.
pub fn wrap_content_key(pk: &XWingPublicKey, content_key: &[u8], context: &[u8]) -> WrappedKey {
    let (ciphertext, shared_secret) = encapsulate(pk);
    let cipher = sealing_cipher(&shared_secret);
    let aad = associated_data(&ciphertext, context);

    let payload = Payload {
        msg: content_key,
        aad: &aad,
    };
    let sealed = cipher
        .encrypt(&Nonce::default(), payload)
        .expect("ChaCha20-Poly1305 seals up to 256 GiB, far more than a content key");

    WrappedKey { ciphertext, sealed }
}

/// Opens a content key sealed by [`wrap_content_key`].
///
/// # Errors
///
/// Returns [`KemError::UnwrapFailed`] when the wrapped key was modified or
/// `sk` or `context` differ from the ones used to wrap it, and
/// [`KemError::NonContributory`] for a ciphertext with a small-order X25519 part.
pub fn unwrap_content_key(
    sk: &XWingSecretKey,
    wrapped: &WrappedKey,
    context: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KemError> {
    let shared_secret = decapsulate(sk, &wrapped.ciphertext)?;
    let cipher = sealing_cipher(&shared_secret);
    let aad = associated_data(&wrapped.ciphertext, context);

    let payload = Payload {
        msg: &wrapped.sealed,
        aad: &aad,
    };
    let content_key = cipher
        .decrypt(&Nonce::default(), payload)
        .map_err(KemError::UnwrapFailed)?;

    Ok(Zeroizing::new(content_key))
}

/// Derives the single-use ChaCha20-Poly1305 key from an X-Wing secret.
fn sealing_cipher(shared_secret: &SharedSecret) -> ChaCha20Poly1305 {
    let hkdf = Hkdf::<Sha256>::new(None, shared_secret.as_slice());

    let mut key = Zeroizing::new([0u8; 32]);
    hkdf.expand(WRAP_KEY_LABEL, key.as_mut_slice())
        .expect("HKDF-SHA256 outputs up to 8160 bytes, and a ChaCha20 key is 32");

    ChaCha20Poly1305::new(&(*key).into())
}

/// Builds the associated data: label, version, X-Wing ciphertext, the
/// 8-byte big-endian length of `context`, and `context`.
fn associated_data(ciphertext: &XWingCiphertext, context: &[u8]) -> Vec<u8> {
    let context_len = context.len() as u64;

    let mut aad =
        Vec::with_capacity(WRAP_AAD_LABEL.len() + 1 + CIPHERTEXT_SIZE + 8 + context.len());
    aad.extend_from_slice(WRAP_AAD_LABEL);
    aad.push(WRAP_VERSION);
    aad.extend_from_slice(ciphertext.as_bytes());
    aad.extend_from_slice(&context_len.to_be_bytes());
    aad.extend_from_slice(context);
    aad
}

/// Builds the error for an input shorter than a wrapped empty key.
fn too_short(bytes: &[u8]) -> KemError {
    KemError::TooShort {
        item: "wrapped content key",
        actual: bytes.len(),
        minimum: MIN_ENCODED_LEN,
    }
}
