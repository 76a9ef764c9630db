//! X-Wing keys and ciphertexts in the encodings of the X-Wing draft.

use getrandom_sys_rng::SysRng;
use rand_core::{CryptoRng, UnwrapErr};
use x_wing::{
    CIPHERTEXT_SIZE, DECAPSULATION_KEY_SIZE, DecapsulationKeyRejectNonContrib, Decapsulator as _,
    ENCAPSULATION_KEY_SIZE, EncapsulationKey, KeyExport as _,
};
use zeroize::Zeroizing;

use super::KemError;

/// An X-Wing secret (decapsulation) key.
///
/// It contains the 32-byte seed from which the ML-KEM-768 and X25519 keys
/// are derived. The seed is overwritten with zeros when the key is dropped,
/// and [`Debug`](std::fmt::Debug) never prints it.
pub struct XWingSecretKey {
    inner: DecapsulationKeyRejectNonContrib,
}

impl XWingSecretKey {
    /// Generates a key from the operating system's random number generator.
    ///
    /// # Panics
    ///
    /// Panics if the operating system's random number generator fails.
    pub fn generate() -> Self {
        Self::generate_with_rng(&mut UnwrapErr(SysRng))
    }

    /// Generates a key from `rng`, which must be a cryptographically secure
    /// generator: a predictable one gives a predictable key.
    pub fn generate_with_rng<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; DECAPSULATION_KEY_SIZE]);
        rng.fill_bytes(seed.as_mut_slice());

        Self {
            inner: DecapsulationKeyRejectNonContrib::from(*seed),
        }
    }

    /// Decodes the 32-byte secret key of the X-Wing draft.
    ///
    /// # Errors
    ///
    /// Returns [`KemError::Length`] unless `bytes` is 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KemError> {
        let seed: [u8; DECAPSULATION_KEY_SIZE] =
            bytes.try_into().map_err(|_| KemError::Length {
                item: "X-Wing secret key",
                actual: bytes.len(),
                expected: DECAPSULATION_KEY_SIZE,
            })?;
        let seed = Zeroizing::new(seed);

        Ok(Self {
            inner: DecapsulationKeyRejectNonContrib::from(*seed),
        })
    }

    /// Encodes the key as the 32-byte secret key of the X-Wing draft.
    pub fn to_bytes(&self) -> Zeroizing<[u8; DECAPSULATION_KEY_SIZE]> {
        let mut seed = self.inner.to_bytes();
        let bytes = Zeroizing::new(seed.0);
        zeroize::Zeroize::zeroize(&mut seed.0);
        bytes
    }

    /// Returns the public key that encapsulates to this key.
    pub fn public_key(&self) -> XWingPublicKey {
        XWingPublicKey {
            inner: self.inner.encapsulation_key().clone(),
        }
    }

    /// Returns the wrapped x-wing key.
    pub(super) fn inner(&self) -> &DecapsulationKeyRejectNonContrib {
        &self.inner
    }
}

impl std::fmt::Debug for XWingSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XWingSecretKey").finish_non_exhaustive()
    }
}

/// An X-Wing public (encapsulation) key: an ML-KEM-768 encapsulation key
/// followed by an X25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct XWingPublicKey {
    inner: EncapsulationKey,
}

impl XWingPublicKey {
    /// Decodes the 1216-byte public key of the X-Wing draft.
    ///
    /// # Errors
    ///
    /// Returns [`KemError::Length`] unless `bytes` is 1216 bytes long, and
    /// [`KemError::InvalidPublicKey`] when the ML-KEM-768 part fails the
    /// FIPS 203 modulus check.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KemError> {
        if bytes.len() != ENCAPSULATION_KEY_SIZE {
            return Err(KemError::Length {
                item: "X-Wing public key",
                actual: bytes.len(),
                expected: ENCAPSULATION_KEY_SIZE,
            });
        }

        // With the length checked, the only remaining failure is the
        // ML-KEM-768 modulus check.
        let inner = EncapsulationKey::try_from(bytes).map_err(|_| KemError::InvalidPublicKey)?;
        Ok(Self { inner })
    }

    /// Encodes the key as the 1216-byte public key of the X-Wing draft.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.to_bytes().to_vec()
    }

    /// Returns the wrapped x-wing key.
    pub(super) fn inner(&self) -> &EncapsulationKey {
        &self.inner
    }
}

impl std::fmt::Debug for XWingPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = self.to_bytes();
        f.debug_struct("XWingPublicKey")
            .field(
                "x25519",
                &hex::encode(&bytes[ENCAPSULATION_KEY_SIZE - 32..]),
            )
            .finish_non_exhaustive()
    }
}

/// An X-Wing ciphertext: an ML-KEM-768 ciphertext followed by an ephemeral
/// X25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct XWingCiphertext {
    inner: x_wing::Ciphertext,
}

impl XWingCiphertext {
    /// Wraps a ciphertext made by x-wing.
    pub(super) fn from_inner(inner: x_wing::Ciphertext) -> Self {
        Self { inner }
    }

    /// Decodes the 1120-byte ciphertext of the X-Wing draft.
    ///
    /// # Errors
    ///
    /// Returns [`KemError::Length`] unless `bytes` is 1120 bytes long. Every
    /// string of that length is a ciphertext, and a forged one decapsulates to
    /// an unrelated secret.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KemError> {
        let inner = x_wing::Ciphertext::try_from(bytes).map_err(|_| KemError::Length {
            item: "X-Wing ciphertext",
            actual: bytes.len(),
            expected: CIPHERTEXT_SIZE,
        })?;
        Ok(Self { inner })
    }

    /// Encodes the ciphertext as the 1120 bytes of the X-Wing draft.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.to_vec()
    }

    /// Returns the encoded ciphertext.
    pub(super) fn as_bytes(&self) -> &[u8] {
        self.inner.as_slice()
    }

    /// Returns the wrapped x-wing ciphertext.
    pub(super) fn inner(&self) -> &x_wing::Ciphertext {
        &self.inner
    }
}

impl std::fmt::Debug for XWingCiphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XWingCiphertext")
            .field("len", &self.inner.len())
            .finish_non_exhaustive()
    }
}
