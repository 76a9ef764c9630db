//! Pairing codes and offer ids.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use super::PairingError;

/// The code alphabet: digits and upper-case letters without I, L, O and U
/// (Crockford's base32), 5 bits per character.
pub const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters in a pairing code: 8 characters of 5 bits, 40 bits.
pub const CODE_LEN: usize = 8;

/// Random bytes in an offer id or a pairing id.
pub(super) const ID_BYTES: usize = 16;

/// Length of an offer id or a pairing id in base64url without padding.
pub(super) const ID_CHARS: usize = 22;

/// A one-time pairing code in its normalised form, such as `K7QF9M2D`.
///
/// `Debug` hides the value, so the code never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode(Zeroizing<String>);

impl PairingCode {
    /// Draws a code from the operating system's random number generator.
    ///
    /// Each of the 8 characters takes 5 of 40 random bits. The alphabet has
    /// exactly 32 characters, so every code is equally likely and no
    /// rejection sampling is needed.
    ///
    /// # Errors
    ///
    /// Returns [`PairingError::Random`] when the generator fails.
    pub fn generate() -> Result<Self, PairingError> {
        let mut bytes = Zeroizing::new([0u8; 5]);
        getrandom::fill(bytes.as_mut()).map_err(|source| PairingError::Random {
            item: "code",
            source,
        })?;

        let mut bits = Zeroizing::new(
            bytes
                .iter()
                .fold(0u64, |bits, byte| (bits << 8) | u64::from(*byte)),
        );
        let mut code = Zeroizing::new(String::with_capacity(CODE_LEN));
        for _ in 0..CODE_LEN {
            let index = usize::try_from(*bits >> 35).expect("a 5-bit value fits in usize");
            code.push(char::from(CODE_ALPHABET[index]));
            *bits = (*bits << 5) & ((1 << 40) - 1);
        }
        Ok(Self(code))
    }

    /// Wraps a stored code, which was normalised when it was generated.
    pub(super) fn from_stored(code: Zeroizing<String>) -> Self {
        Self(code)
    }

    /// Returns the normalised code, as stored and as used to derive `w`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the code as shown to people: `XXXX-XXXX`.
    pub fn display_form(&self) -> Zeroizing<String> {
        let (first, second) = self.0.split_at(CODE_LEN / 2);
        Zeroizing::new(format!("{first}-{second}"))
    }
}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingCode(..)")
    }
}

/// Returns a fresh random id (16 bytes, base64url) for an offer or a pairing.
pub(super) fn random_id(item: &'static str) -> Result<String, PairingError> {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).map_err(|source| PairingError::Random { item, source })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Checks that `id` has the form of an id from [`random_id`], so that only
/// well-formed ids reach the database and the logs.
pub(super) fn check_id(field: &'static str, id: &str) -> Result<(), PairingError> {
    let well_formed = id.len() == ID_CHARS
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if well_formed {
        Ok(())
    } else {
        Err(PairingError::InvalidField {
            field,
            problem: "expected 22 base64url characters",
        })
    }
}
