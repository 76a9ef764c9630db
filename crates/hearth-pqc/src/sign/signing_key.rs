//! The hybrid signing key: an Ed25519 secret key and an ML-DSA-65 seed.

use ed25519_dalek::Signer as _;
use getrandom_sys_rng::SysRng;
use ml_dsa::{ExpandedSigningKey, MlDsa65};
use rand_core::{CryptoRng, UnwrapErr};
use tracing::warn;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::signature::{ED25519_SIGNATURE_LEN, ML_DSA_65_SIGNATURE_LEN};
use super::{
    HEADER_LEN, HybridSignature, HybridSigner, HybridVerifyingKey, ML_DSA_CONTEXT, SignatureError,
    check_header, header, signed_message,
};

/// Length of an Ed25519 secret key and of an ML-DSA seed ξ.
const SEED_LEN: usize = 32;

/// Length of an encoded signing key in the current format.
const ENCODED_LEN: usize = HEADER_LEN + SEED_LEN + SEED_LEN;

/// A private key that signs with Ed25519 and ML-DSA-65.
///
/// Both secret parts are overwritten with zeros when the key is dropped, and
/// [`Debug`](std::fmt::Debug) prints only the key id of the public key.
pub struct HybridSigningKey {
    ed25519: ed25519_dalek::SigningKey,
    ml_dsa_seed: Zeroizing<[u8; SEED_LEN]>,
    ml_dsa: ExpandedSigningKey<MlDsa65>,
    verifying_key: HybridVerifyingKey,
}

impl HybridSigningKey {
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
        let mut ed25519_secret = Zeroizing::new([0u8; SEED_LEN]);
        let mut ml_dsa_seed = Zeroizing::new([0u8; SEED_LEN]);
        rng.fill_bytes(ed25519_secret.as_mut_slice());
        rng.fill_bytes(ml_dsa_seed.as_mut_slice());

        Self::from_secrets(&ed25519_secret, ml_dsa_seed)
    }

    /// Decodes a key written by [`Self::to_bytes`].
    ///
    /// # Errors
    ///
    /// Returns [`SignatureError::UnsupportedVersion`] or
    /// [`SignatureError::UnknownAlgorithm`] for another format, and
    /// [`SignatureError::Length`] for a truncated or extended encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignatureError> {
        check_header(bytes, "hybrid signing key", ENCODED_LEN)?;

        let (ed25519_secret, ml_dsa_seed) = bytes[HEADER_LEN..].split_at(SEED_LEN);
        let ed25519_secret = Zeroizing::new(
            <[u8; SEED_LEN]>::try_from(ed25519_secret)
                .expect("check_header verified the total length, so the Ed25519 part is 32 bytes"),
        );
        let ml_dsa_seed = Zeroizing::new(
            <[u8; SEED_LEN]>::try_from(ml_dsa_seed)
                .expect("check_header verified the total length, so the ML-DSA seed is 32 bytes"),
        );

        Ok(Self::from_secrets(&ed25519_secret, ml_dsa_seed))
    }

    /// Encodes the key: header, Ed25519 secret key, ML-DSA-65 seed.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(ENCODED_LEN));
        bytes.extend_from_slice(&header());
        bytes.extend_from_slice(self.ed25519.as_bytes());
        bytes.extend_from_slice(self.ml_dsa_seed.as_slice());
        bytes
    }

    /// Expands both secrets and derives the public key.
    fn from_secrets(
        ed25519_secret: &[u8; SEED_LEN],
        ml_dsa_seed: Zeroizing<[u8; SEED_LEN]>,
    ) -> Self {
        let ed25519 = ed25519_dalek::SigningKey::from_bytes(ed25519_secret);
        let ml_dsa = ExpandedSigningKey::<MlDsa65>::from_seed(&(*ml_dsa_seed).into());
        let verifying_key =
            HybridVerifyingKey::from_parts(ed25519.verifying_key(), ml_dsa.verifying_key());

        Self {
            ed25519,
            ml_dsa_seed,
            ml_dsa,
            verifying_key,
        }
    }

    /// Signs `signed` with ML-DSA-65, hedged with fresh randomness when the
    /// operating system provides it.
    fn sign_ml_dsa(&self, signed: &[u8]) -> ml_dsa::Signature<MlDsa65> {
        match self
            .ml_dsa
            .sign_randomized(signed, ML_DSA_CONTEXT, &mut SysRng)
        {
            Ok(signature) => signature,
            Err(error) => {
                // The context is empty, so the failure is either the random
                // number generator or the rejection loop giving up (below).
                warn!(%error, "hedged ML-DSA signing failed; signing deterministically");
                self.ml_dsa
                    .sign_deterministic(signed, ML_DSA_CONTEXT)
                    .expect(
                        "ML-DSA-65 signing with an empty context fails only when the rejection \
                         loop exceeds 13,107 rounds, where about 5 are expected",
                    )
            }
        }
    }
}

impl HybridSigner for HybridSigningKey {
    fn sign(&self, context: &[u8], message: &[u8]) -> HybridSignature {
        let signed = signed_message(context, message);

        let ed25519: [u8; ED25519_SIGNATURE_LEN] = self.ed25519.sign(&signed).to_bytes();
        let ml_dsa: [u8; ML_DSA_65_SIGNATURE_LEN] = self.sign_ml_dsa(&signed).encode().into();

        HybridSignature::from_parts(ed25519, Box::new(ml_dsa))
    }

    fn verifying_key(&self) -> HybridVerifyingKey {
        self.verifying_key.clone()
    }
}

impl std::fmt::Debug for HybridSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridSigningKey")
            .field("key_id", &self.verifying_key.key_id())
            .finish_non_exhaustive()
    }
}

// Each secret field zeroizes itself on drop: ed25519-dalek's SigningKey and
// ml-dsa's ExpandedSigningKey with their `zeroize` features, the seed through
// `Zeroizing`.
impl ZeroizeOnDrop for HybridSigningKey {}
