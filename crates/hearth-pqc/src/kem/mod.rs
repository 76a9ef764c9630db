//! Hybrid key encapsulation with X-Wing: X25519 and ML-KEM-768 (FIPS 203).
//!
//! An attacker can record a wrapped content key or a key exchange between
//! Hearth nodes today and decrypt it once a large quantum computer exists.
//! X-Wing mixes an ML-KEM-768 shared secret and an X25519 shared secret with
//! SHA3-256, so the result stays secret unless both ML-KEM-768 and X25519 are
//! broken. It is specified in the CFRG draft draft-connolly-cfrg-xwing-kem,
//! and this module uses the RustCrypto `x-wing` crate 0.1, which follows
//! draft version 06.
//! Keys and ciphertexts use the draft's encodings: a 32-byte secret key (the
//! seed that both component keys are derived from), a 1216-byte public key
//! and a 1120-byte ciphertext. `tests/kem_kat.rs` checks them against the
//! draft's test vectors.
//!
//! On top of X-Wing this module provides:
//!
//! - [`derive_link_key`], which turns an X-Wing shared secret into a key for
//!   a link between Hearth nodes and mixes in a quantum key distribution
//!   (QKD) key when one is configured. QKD key material is added to the
//!   X-Wing secret and never replaces it, so a broken or absent QKD link
//!   leaves the link key as strong as X-Wing alone.
//! - [`wrap_content_key`] and [`unwrap_content_key`], which seal a media
//!   content key to a recipient's public key with a fresh encapsulation each
//!   time, HKDF-SHA256 and ChaCha20-Poly1305 (RFC 8439).
//!
//! Decapsulation uses the implicit rejection of ML-KEM: a ciphertext that
//! was modified, or made for another key, yields an unrelated shared secret
//! rather than an error, so the caller learns nothing from the failure. One
//! case is rejected with an error: an X25519 ciphertext part that is a point
//! of small order, which gives an all-zero X25519 shared secret (RFC 7748,
//! section 6.1 allows rejecting it). An honest sender never produces one.
//! `tests/kem_hybrid.rs` backs these claims: `modified_ciphertext_decapsulates_to_other_secret`,
//! `small_order_x25519_part_is_rejected`, `tampered_wrapped_key_fails_unwrap`
//! and `wrong_context_fails_unwrap`.
//!
//! What this does not protect against: a substituted public key. The caller
//! must obtain the recipient's public key over an authenticated channel, for
//! example signed with a [`crate::sign`] hybrid signature.

mod error;
mod keys;
mod link;
mod wrap;

pub use error::KemError;
pub use keys::{XWingCiphertext, XWingPublicKey, XWingSecretKey};
pub use link::derive_link_key;
pub use wrap::{WrappedKey, unwrap_content_key, wrap_content_key};

use getrandom_sys_rng::SysRng;
use rand_core::{CryptoRng, UnwrapErr};
use x_wing::{Encapsulate as _, TryDecapsulate as _};
use zeroize::{Zeroize as _, Zeroizing};

/// A 32-byte shared secret, overwritten with zeros when dropped.
pub type SharedSecret = Zeroizing<[u8; 32]>;

/// Encapsulates a fresh shared secret to `pk`, with randomness from the
/// operating system.
///
/// Returns the ciphertext to send to the holder of the secret key and the
/// shared secret to keep.
///
/// # Panics
///
/// Panics if the operating system's random number generator fails.
pub fn encapsulate(pk: &XWingPublicKey) -> (XWingCiphertext, SharedSecret) {
    encapsulate_with_rng(pk, &mut UnwrapErr(SysRng))
}

/// Encapsulates a fresh shared secret to `pk` with 64 bytes drawn from `rng`.
///
/// `rng` must be a cryptographically secure generator: the shared secret is
/// only as unpredictable as its output. This form exists for known-answer
/// tests, and other callers use [`encapsulate`].
pub fn encapsulate_with_rng<R: CryptoRng + ?Sized>(
    pk: &XWingPublicKey,
    rng: &mut R,
) -> (XWingCiphertext, SharedSecret) {
    let (ciphertext, mut shared_key) = pk.inner().encapsulate_with_rng(rng);

    let shared_secret = Zeroizing::new(shared_key.0);
    shared_key.0.zeroize();

    (XWingCiphertext::from_inner(ciphertext), shared_secret)
}

/// Decapsulates `ct` with `sk` and returns the shared secret.
///
/// A ciphertext that was modified or made for another public key yields an
/// unrelated secret, not an error (implicit rejection).
///
/// # Errors
///
/// Returns [`KemError::NonContributory`] when the X25519 part of `ct` is a
/// point of small order.
// NOTE: X-Wing draft version 06 does not reject small-order X25519 points,
// so this check is stricter than the draft. The CFRG has yet to settle the
// behaviour for the final RFC (x-wing 0.1.1 documentation).
pub fn decapsulate(sk: &XWingSecretKey, ct: &XWingCiphertext) -> Result<SharedSecret, KemError> {
    let mut shared_key = sk
        .inner()
        .try_decapsulate(ct.inner())
        .map_err(|_| KemError::NonContributory)?;

    let shared_secret = Zeroizing::new(shared_key.0);
    shared_key.0.zeroize();

    Ok(shared_secret)
}
