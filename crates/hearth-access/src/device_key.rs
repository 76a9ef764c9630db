//! Public keys of paired devices and the signatures they make.
//!
//! Browsers hold a non-extractable WebCrypto key pair and sign with ECDSA
//! P-256 and SHA-256, the one WebCrypto signature algorithm every browser
//! supports. WebCrypto returns the signature as the raw 64-byte `r || s`
//! (IEEE P1363), not DER, so that is the encoding accepted here. Command-line
//! clients may instead hold a hybrid key (Ed25519 + ML-DSA-65, from
//! [`hearth_pqc::sign`]), whose signatures resist a quantum attacker.

use hearth_pqc::sign::{HybridSignature, HybridVerifier as _, HybridVerifyingKey, SignatureError};
use p256::ecdsa::signature::Verifier as _;

use crate::did::{Did, DidError};

/// Length of a WebCrypto ECDSA P-256 signature: `r || s`, 32 bytes each.
const P256_SIGNATURE_LEN: usize = 64;

/// Offset and length of the Ed25519 public key inside a hybrid verifying key
/// encoding: after the version byte and the 2-byte algorithm id.
const HYBRID_ED25519_RANGE: std::ops::Range<usize> = 3..35;

/// A device's public key, with the did:key that identifies the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKey {
    did: Did,
    key: Key,
}

/// The signature algorithm of a device key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256 (WebCrypto).
    P256,
    /// Ed25519 + ML-DSA-65 (hearth-pqc hybrid).
    Hybrid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    P256(p256::ecdsa::VerifyingKey),
    Hybrid(Box<HybridVerifyingKey>),
}

impl DeviceKey {
    /// Decodes a P-256 public key in SEC 1 form: the 65-byte uncompressed
    /// point that WebCrypto's `exportKey("raw", …)` returns, or the 33-byte
    /// compressed point.
    ///
    /// # Errors
    ///
    /// Returns [`DeviceKeyError::InvalidP256`] when the bytes are not a point
    /// on P-256.
    pub fn from_p256_sec1(bytes: &[u8]) -> Result<Self, DeviceKeyError> {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
            .map_err(|_| DeviceKeyError::InvalidP256 { len: bytes.len() })?;
        Ok(Self::from_p256(key))
    }

    /// Wraps a decoded P-256 public key.
    pub fn from_p256(key: p256::ecdsa::VerifyingKey) -> Self {
        Self {
            did: Did::from_p256(&key),
            key: Key::P256(key),
        }
    }

    /// Wraps a hybrid verifying key.
    ///
    /// The did:key of a hybrid key names its Ed25519 part, because no
    /// multicodec code exists for the Ed25519 + ML-DSA-65 pair. Signatures
    /// are still checked against both parts.
    ///
    /// # Errors
    ///
    /// Returns [`DeviceKeyError::Did`] if the Ed25519 part cannot be named
    /// by a did:key (hearth-pqc rejects such keys when decoding, so this
    /// means the two crates disagree about the encoding).
    pub fn from_hybrid(key: HybridVerifyingKey) -> Result<Self, DeviceKeyError> {
        let encoded = key.to_bytes();
        let ed25519: [u8; 32] = encoded[HYBRID_ED25519_RANGE]
            .try_into()
            .expect("the Ed25519 range is 32 bytes long");
        let did = Did::from_ed25519(&ed25519)?;

        Ok(Self {
            did,
            key: Key::Hybrid(Box::new(key)),
        })
    }

    /// Decodes a key stored by [`Self::to_stored`].
    ///
    /// # Errors
    ///
    /// Returns [`DeviceKeyError::UnknownAlgorithm`] for an unknown name and
    /// the decoding error of the named algorithm otherwise.
    pub fn from_stored(algorithm: &str, bytes: &[u8]) -> Result<Self, DeviceKeyError> {
        match algorithm {
            "p256" => Self::from_p256_sec1(bytes),
            "hybrid" => Self::from_hybrid(
                HybridVerifyingKey::from_bytes(bytes).map_err(DeviceKeyError::InvalidHybrid)?,
            ),
            other => Err(DeviceKeyError::UnknownAlgorithm {
                found: other.to_owned(),
            }),
        }
    }

    /// Returns the algorithm name and key bytes to store: `p256` with the
    /// compressed point, or `hybrid` with the hearth-pqc encoding.
    pub fn to_stored(&self) -> (&'static str, Vec<u8>) {
        match &self.key {
            Key::P256(key) => ("p256", key.to_sec1_point(true).as_bytes().to_vec()),
            Key::Hybrid(key) => ("hybrid", key.to_bytes()),
        }
    }

    /// Returns the did:key of the device.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// Returns the signature algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.key {
            Key::P256(_) => KeyAlgorithm::P256,
            Key::Hybrid(_) => KeyAlgorithm::Hybrid,
        }
    }

    /// Verifies `signature` over `message`.
    ///
    /// P-256 signatures are ECDSA with SHA-256 over `message` in the raw
    /// `r || s` encoding; both low and high `s` are accepted because
    /// WebCrypto does not normalise `s`. ECDSA has no separate context, so
    /// `message` itself must start with a label that names its purpose.
    /// Hybrid signatures are the hearth-pqc encoding and are checked under
    /// `hybrid_context`.
    ///
    /// # Errors
    ///
    /// Returns [`DeviceKeyError::InvalidSignature`] when the signature is
    /// malformed or does not verify.
    pub fn verify(
        &self,
        hybrid_context: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), DeviceKeyError> {
        match &self.key {
            Key::P256(key) => {
                if signature.len() != P256_SIGNATURE_LEN {
                    return Err(DeviceKeyError::InvalidSignature {
                        algorithm: "ECDSA P-256",
                        source: None,
                    });
                }
                let signature = p256::ecdsa::Signature::from_slice(signature).map_err(|_| {
                    DeviceKeyError::InvalidSignature {
                        algorithm: "ECDSA P-256",
                        source: None,
                    }
                })?;
                key.verify(message, &signature)
                    .map_err(|_| DeviceKeyError::InvalidSignature {
                        algorithm: "ECDSA P-256",
                        source: None,
                    })
            }
            Key::Hybrid(key) => {
                let invalid = |source| DeviceKeyError::InvalidSignature {
                    algorithm: "hybrid",
                    source: Some(source),
                };
                let signature = HybridSignature::from_bytes(signature).map_err(invalid)?;
                key.verify(hybrid_context, message, &signature)
                    .map_err(invalid)
            }
        }
    }
}

/// Error from decoding a device key or checking its signature.
#[derive(Debug, thiserror::Error)]
pub enum DeviceKeyError {
    /// The bytes are not a SEC 1 encoded P-256 point.
    #[error(
        "invalid P-256 public key ({len} bytes): expected a 65-byte uncompressed or 33-byte compressed SEC 1 point"
    )]
    InvalidP256 {
        /// Length of the input.
        len: usize,
    },

    /// The bytes are not a hearth-pqc hybrid verifying key.
    #[error("invalid hybrid public key")]
    InvalidHybrid(#[source] SignatureError),

    /// The stored algorithm name is unknown.
    #[error("unknown device key algorithm {found:?}: expected \"p256\" or \"hybrid\"")]
    UnknownAlgorithm {
        /// The stored name.
        found: String,
    },

    /// The key cannot be named by a did:key.
    #[error("device key has no valid did:key")]
    Did(#[from] DidError),

    /// The signature is malformed or does not verify under the device key.
    #[error("invalid {algorithm} signature from device key")]
    InvalidSignature {
        /// Algorithm of the device key.
        algorithm: &'static str,
        /// The hybrid verifier's error, naming the failing part.
        #[source]
        source: Option<SignatureError>,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use hearth_pqc::sign::{HybridSigner as _, HybridSigningKey};
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer as _;

    use super::*;

    /// Returns a P-256 signing key derived from `seed` (tests only).
    pub(crate) fn p256_signing_key(seed: u8) -> SigningKey {
        let mut scalar = [0u8; 32];
        scalar[31] = seed.max(1);
        scalar[0] = 0x42;
        SigningKey::from_slice(&scalar).unwrap()
    }

    #[test]
    fn p256_signature_verifies_in_raw_encoding() {
        let signing = p256_signing_key(1);
        let key = DeviceKey::from_p256(*signing.verifying_key());
        let signature: p256::ecdsa::Signature = signing.sign(b"label: message");

        key.verify(b"unused", b"label: message", &signature.to_bytes())
            .unwrap();
    }

    #[test]
    fn p256_high_s_signature_accepted() {
        let signing = p256_signing_key(2);
        let key = DeviceKey::from_p256(*signing.verifying_key());
        let signature: p256::ecdsa::Signature = signing.sign(b"label: message");
        let (r, s) = signature.split_scalars();
        let high_s = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        assert_ne!(high_s, signature);

        key.verify(b"", b"label: message", &high_s.to_bytes())
            .unwrap();
    }

    #[test]
    fn p256_der_signature_rejected() {
        let signing = p256_signing_key(3);
        let key = DeviceKey::from_p256(*signing.verifying_key());
        let signature: p256::ecdsa::Signature = signing.sign(b"m");

        let der = signature.to_der();
        let err = key.verify(b"", b"m", der.as_bytes()).unwrap_err();
        assert!(
            matches!(err, DeviceKeyError::InvalidSignature { .. }),
            "{err}"
        );
    }

    #[test]
    fn p256_signature_over_other_message_rejected() {
        let signing = p256_signing_key(4);
        let key = DeviceKey::from_p256(*signing.verifying_key());
        let signature: p256::ecdsa::Signature = signing.sign(b"label: one");

        assert!(
            key.verify(b"", b"label: two", &signature.to_bytes())
                .is_err()
        );
    }

    #[test]
    fn raw_and_compressed_keys_same_did() {
        let verifying = *p256_signing_key(5).verifying_key();
        let raw = DeviceKey::from_p256_sec1(verifying.to_sec1_point(false).as_bytes()).unwrap();
        let compressed =
            DeviceKey::from_p256_sec1(verifying.to_sec1_point(true).as_bytes()).unwrap();

        assert_eq!(raw.did(), compressed.did());
        assert!(raw.did().as_str().starts_with("did:key:zDn"));
    }

    #[test]
    fn hybrid_key_verifies_with_context() {
        let signing = HybridSigningKey::generate();
        let key = DeviceKey::from_hybrid(signing.verifying_key()).unwrap();
        let signature = signing.sign(b"ctx", b"message").to_bytes();

        key.verify(b"ctx", b"message", &signature).unwrap();
        assert!(key.verify(b"other ctx", b"message", &signature).is_err());
        assert!(key.did().as_str().starts_with("did:key:z6Mk"));

        let (algorithm, bytes) = key.to_stored();
        assert_eq!(DeviceKey::from_stored(algorithm, &bytes).unwrap(), key);
    }

    #[test]
    fn stored_p256_round_trips() {
        let key = DeviceKey::from_p256(*p256_signing_key(6).verifying_key());
        let (algorithm, bytes) = key.to_stored();

        assert_eq!(algorithm, "p256");
        assert_eq!(bytes.len(), 33);
        assert_eq!(DeviceKey::from_stored(algorithm, &bytes).unwrap(), key);
    }

    #[test]
    fn unknown_stored_algorithm_rejected() {
        let err = DeviceKey::from_stored("rsa", &[1, 2, 3]).unwrap_err();
        assert!(
            matches!(err, DeviceKeyError::UnknownAlgorithm { .. }),
            "{err}"
        );
    }
}
