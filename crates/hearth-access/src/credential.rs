//! Household-signed credentials for users and devices.
//!
//! The household signing key (a [`hearth_pqc::sign`] hybrid key, Ed25519 +
//! ML-DSA-65) vouches for a subject's did:key, its kind and, for a user, its
//! role. A device credential names the device and its owner. Verification
//! needs only the household's verifying key, so another Hearth node or an
//! offline check can trust a credential without the database.
//!
//! # Encoding
//!
//! A fixed-order, length-prefixed byte string; every integer is big-endian:
//!
//! ```text
//! version          u8       1
//! algorithm id     u16      0x0001 (Ed25519 + ML-DSA-65, hearth-pqc)
//! issuer key id    16 bytes first 16 bytes of SHA-256 of the household verifying key
//! credential id    16 bytes random
//! kind             u8       1 user, 2 device
//! role             u8       0 none (devices), 1 admin, 2 adult, 3 teen, 4 child
//! issued at        i64      Unix seconds
//! expires at       i64      Unix seconds, after "issued at"
//! subject          u16 length + UTF-8 did:key
//! owner            u16 length + UTF-8 did:key of the owning user (empty for users)
//! device name      u16 length + UTF-8 (empty for users)
//! signature        hearth-pqc hybrid signature encoding (3,380 bytes), to the end
//! ```
//!
//! The signature covers every byte before it, under the hybrid signing
//! context `hearth/credential/v1`. Each field has one encoding (fixed width
//! or a length prefix, did:keys in canonical form), so two different
//! credentials never share signed bytes. Decoding rejects unknown versions,
//! algorithms, kinds and roles, a role on a device or none on a user,
//! invalid UTF-8 or did:keys, and truncated or extended input.

use hearth_pqc::sign::{
    ALG_ED25519_ML_DSA_65, FORMAT_VERSION, HybridSignature, HybridSigner, HybridVerifier as _,
    HybridVerifyingKey, SignatureError,
};

use crate::did::{Did, DidError};
use crate::role::Role;

/// Version byte of the credential encoding.
pub const CREDENTIAL_VERSION: u8 = 1;

/// Hybrid signing context of credentials, so that no other signed Hearth
/// object verifies as a credential.
pub const CREDENTIAL_CONTEXT: &[u8] = b"hearth/credential/v1";

/// Length of a credential id and of an issuer key id.
const ID_LEN: usize = 16;

/// Maximum device name length, in bytes.
pub const MAX_DEVICE_NAME_LEN: usize = 128;

/// A credential's statements, before signing or after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialClaims {
    /// Random identifier, for revocation lists and audit records.
    pub id: [u8; ID_LEN],
    /// Whether the subject is a user or a device.
    pub kind: CredentialKind,
    /// The did:key of the user or device.
    pub subject: Did,
    /// The user's role; `None` for devices.
    pub role: Option<Role>,
    /// The did:key of the user who owns the device; `None` for users.
    pub owner: Option<Did>,
    /// The device's display name; `None` for users.
    pub device_name: Option<String>,
    /// Issue time in Unix seconds.
    pub issued_at: i64,
    /// Expiry time in Unix seconds; the credential is invalid from this second on.
    pub expires_at: i64,
}

/// The kind of subject a credential describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A household member.
    User,
    /// A paired device.
    Device,
}

/// A signed credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    claims: CredentialClaims,
    issuer_key_id: [u8; ID_LEN],
    signature: HybridSignature,
}

impl CredentialClaims {
    /// Builds the claims of a user credential with a fresh random id.
    ///
    /// # Errors
    ///
    /// Returns [`CredentialError::Random`] if the operating system's random
    /// number generator fails.
    pub fn user(
        subject: Did,
        role: Role,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<Self, CredentialError> {
        Ok(Self {
            id: random_id()?,
            kind: CredentialKind::User,
            subject,
            role: Some(role),
            owner: None,
            device_name: None,
            issued_at,
            expires_at,
        })
    }

    /// Builds the claims of a device credential with a fresh random id.
    ///
    /// # Errors
    ///
    /// Returns [`CredentialError::Random`] if the operating system's random
    /// number generator fails.
    pub fn device(
        subject: Did,
        owner: Did,
        device_name: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<Self, CredentialError> {
        Ok(Self {
            id: random_id()?,
            kind: CredentialKind::Device,
            subject,
            role: None,
            owner: Some(owner),
            device_name: Some(device_name.to_owned()),
            issued_at,
            expires_at,
        })
    }

    /// Checks the combination of fields that the encoding requires.
    fn check(&self) -> Result<(), CredentialError> {
        match self.kind {
            CredentialKind::User if self.role.is_none() => Err(CredentialError::Inconsistent {
                problem: "a user credential needs a role",
            }),
            CredentialKind::User if self.owner.is_some() || self.device_name.is_some() => {
                Err(CredentialError::Inconsistent {
                    problem: "a user credential has no owner or device name",
                })
            }
            CredentialKind::Device if self.role.is_some() => Err(CredentialError::Inconsistent {
                problem: "a device credential has no role",
            }),
            CredentialKind::Device if self.owner.is_none() => Err(CredentialError::Inconsistent {
                problem: "a device credential needs an owner",
            }),
            CredentialKind::Device if self.device_name.as_deref().is_none_or(str::is_empty) => {
                Err(CredentialError::Inconsistent {
                    problem: "a device credential needs a device name",
                })
            }
            _ => Ok(()),
        }?;

        if let Some(name) = &self.device_name
            && name.len() > MAX_DEVICE_NAME_LEN
        {
            return Err(CredentialError::FieldTooLong {
                field: "device name",
                len: name.len(),
                max: MAX_DEVICE_NAME_LEN,
            });
        }
        if self.expires_at <= self.issued_at {
            return Err(CredentialError::InvalidValidity {
                issued_at: self.issued_at,
                expires_at: self.expires_at,
            });
        }
        Ok(())
    }
}

impl Credential {
    /// Signs `claims` with the household key.
    ///
    /// # Errors
    ///
    /// Returns [`CredentialError::Inconsistent`], [`CredentialError::FieldTooLong`]
    /// or [`CredentialError::InvalidValidity`] for claims that cannot be encoded.
    pub fn issue<S: HybridSigner + ?Sized>(
        household: &S,
        claims: CredentialClaims,
    ) -> Result<Self, CredentialError> {
        claims.check()?;

        let issuer_key_id = key_id_bytes(&household.verifying_key());
        let body = encode_body(&claims, &issuer_key_id);
        let signature = household.sign(CREDENTIAL_CONTEXT, &body);

        Ok(Self {
            claims,
            issuer_key_id,
            signature,
        })
    }

    /// Decodes and verifies a credential against the household verifying
    /// key, at time `now` (Unix seconds).
    ///
    /// # Errors
    ///
    /// Returns a decoding error for malformed input,
    /// [`CredentialError::WrongIssuer`] or [`CredentialError::Signature`] when
    /// the household key did not sign it, and [`CredentialError::Expired`]
    /// or [`CredentialError::NotYetValid`] outside its validity.
    pub fn verify(
        bytes: &[u8],
        household: &HybridVerifyingKey,
        now: i64,
    ) -> Result<CredentialClaims, CredentialError> {
        let credential = Self::decode(bytes)?;

        let expected_issuer = key_id_bytes(household);
        if credential.issuer_key_id != expected_issuer {
            return Err(CredentialError::WrongIssuer {
                expected: hex(&expected_issuer),
                found: hex(&credential.issuer_key_id),
            });
        }

        let body = &bytes[..bytes.len() - credential.signature.to_bytes().len()];
        household
            .verify(CREDENTIAL_CONTEXT, body, &credential.signature)
            .map_err(CredentialError::Signature)?;

        if now >= credential.claims.expires_at {
            return Err(CredentialError::Expired {
                expires_at: credential.claims.expires_at,
                now,
            });
        }
        if now < credential.claims.issued_at {
            return Err(CredentialError::NotYetValid {
                issued_at: credential.claims.issued_at,
                now,
            });
        }
        Ok(credential.claims)
    }

    /// Decodes a credential without checking its signature or validity.
    /// Use [`Credential::verify`] to trust one.
    ///
    /// # Errors
    ///
    /// Returns the first encoding problem found.
    pub fn decode(bytes: &[u8]) -> Result<Self, CredentialError> {
        let mut reader = Reader { bytes, offset: 0 };

        let version = reader.u8("version")?;
        if version != CREDENTIAL_VERSION {
            return Err(CredentialError::UnsupportedVersion { found: version });
        }
        let algorithm = reader.u16("algorithm id")?;
        if algorithm != ALG_ED25519_ML_DSA_65 {
            return Err(CredentialError::UnknownAlgorithm { found: algorithm });
        }

        let issuer_key_id = reader.array::<ID_LEN>("issuer key id")?;
        let id = reader.array::<ID_LEN>("credential id")?;
        let kind = match reader.u8("kind")? {
            1 => CredentialKind::User,
            2 => CredentialKind::Device,
            other => return Err(CredentialError::UnknownKind { found: other }),
        };
        let role = match reader.u8("role")? {
            0 => None,
            byte => {
                Some(Role::from_byte(byte).ok_or(CredentialError::UnknownRole { found: byte })?)
            }
        };
        let issued_at = i64::from_be_bytes(reader.array("issued at")?);
        let expires_at = i64::from_be_bytes(reader.array("expires at")?);
        let subject =
            Did::parse(reader.text("subject")?).map_err(|source| CredentialError::InvalidDid {
                field: "subject",
                source,
            })?;
        let owner = match reader.text("owner")? {
            "" => None,
            text => Some(
                Did::parse(text).map_err(|source| CredentialError::InvalidDid {
                    field: "owner",
                    source,
                })?,
            ),
        };
        let device_name = match reader.text("device name")? {
            "" => None,
            name => Some(name.to_owned()),
        };

        let signature =
            HybridSignature::from_bytes(reader.rest()).map_err(CredentialError::Signature)?;
        let claims = CredentialClaims {
            id,
            kind,
            subject,
            role,
            owner,
            device_name,
            issued_at,
            expires_at,
        };
        claims.check()?;

        Ok(Self {
            claims,
            issuer_key_id,
            signature,
        })
    }

    /// Encodes the credential (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = encode_body(&self.claims, &self.issuer_key_id);
        bytes.extend_from_slice(&self.signature.to_bytes());
        bytes
    }

    /// Returns the claims, which are trustworthy only if this value came
    /// from [`Credential::issue`]; decoded credentials go through
    /// [`Credential::verify`].
    pub fn claims(&self) -> &CredentialClaims {
        &self.claims
    }
}

/// Error from issuing, decoding or verifying a credential.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The input ends inside a field.
    #[error("truncated credential: the {field} field ends past byte {len}")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Length of the input.
        len: usize,
    },

    /// The credential format version is not 1.
    #[error("unsupported credential version {found}: this build reads version 1")]
    UnsupportedVersion {
        /// Version byte found.
        found: u8,
    },

    /// The signature algorithm id is not Ed25519 + ML-DSA-65.
    #[error(
        "unknown credential signature algorithm 0x{found:04x}: expected 0x0001 (Ed25519 + ML-DSA-65)"
    )]
    UnknownAlgorithm {
        /// Algorithm id found.
        found: u16,
    },

    /// The kind byte is neither user nor device.
    #[error("unknown credential kind {found}: expected 1 (user) or 2 (device)")]
    UnknownKind {
        /// Kind byte found.
        found: u8,
    },

    /// The role byte is not a known role.
    #[error("unknown role byte {found} in credential: expected 0 to 4")]
    UnknownRole {
        /// Role byte found.
        found: u8,
    },

    /// A text field is not UTF-8.
    #[error("invalid credential: the {field} field is not UTF-8")]
    InvalidUtf8 {
        /// The field.
        field: &'static str,
    },

    /// A did:key field does not parse.
    #[error("invalid credential: the {field} field is not a valid did:key")]
    InvalidDid {
        /// The field.
        field: &'static str,
        /// The parse error.
        #[source]
        source: DidError,
    },

    /// A text field is longer than the encoding allows.
    #[error("invalid credential: the {field} field is {len} bytes, at most {max} allowed")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// The fields do not fit the kind (a role on a device, no owner, …).
    #[error("invalid credential: {problem}")]
    Inconsistent {
        /// The rule broken.
        problem: &'static str,
    },

    /// The credential expires at or before its issue time.
    #[error(
        "invalid credential validity: expires at {expires_at}, not after issue time {issued_at}"
    )]
    InvalidValidity {
        /// Issue time.
        issued_at: i64,
        /// Expiry time.
        expires_at: i64,
    },

    /// The signature is malformed or does not verify.
    #[error("invalid credential signature")]
    Signature(#[source] SignatureError),

    /// Another household key issued the credential.
    #[error("credential issued by key {found}, expected the household key {expected}")]
    WrongIssuer {
        /// Key id of the trusted household key (hex).
        expected: String,
        /// Key id named in the credential (hex).
        found: String,
    },

    /// The credential's expiry time has passed.
    #[error("credential expired at {expires_at} (now {now})")]
    Expired {
        /// Expiry time.
        expires_at: i64,
        /// Time of the check.
        now: i64,
    },

    /// The credential's issue time is in the future.
    #[error("credential not valid before {issued_at} (now {now}); check the clocks")]
    NotYetValid {
        /// Issue time.
        issued_at: i64,
        /// Time of the check.
        now: i64,
    },

    /// The operating system's random number generator failed.
    #[error("failed to generate a credential id")]
    Random(#[source] getrandom::Error),
}

/// Encodes every field before the signature.
fn encode_body(claims: &CredentialClaims, issuer_key_id: &[u8; ID_LEN]) -> Vec<u8> {
    let [alg_high, alg_low] = ALG_ED25519_ML_DSA_65.to_be_bytes();
    debug_assert_eq!(
        FORMAT_VERSION, 1,
        "credential v1 assumes hybrid encoding v1"
    );

    let mut body = Vec::with_capacity(160);
    body.extend_from_slice(&[CREDENTIAL_VERSION, alg_high, alg_low]);
    body.extend_from_slice(issuer_key_id);
    body.extend_from_slice(&claims.id);
    body.push(match claims.kind {
        CredentialKind::User => 1,
        CredentialKind::Device => 2,
    });
    body.push(claims.role.map_or(0, Role::to_byte));
    body.extend_from_slice(&claims.issued_at.to_be_bytes());
    body.extend_from_slice(&claims.expires_at.to_be_bytes());
    push_text(&mut body, claims.subject.as_str());
    push_text(&mut body, claims.owner.as_ref().map_or("", Did::as_str));
    push_text(&mut body, claims.device_name.as_deref().unwrap_or(""));
    body
}

/// Appends a u16 length and the text. Callers bound the length: did:keys
/// are at most 128 bytes and device names at most [`MAX_DEVICE_NAME_LEN`].
fn push_text(body: &mut Vec<u8>, text: &str) {
    let len = u16::try_from(text.len()).expect("credential text fields are checked to be short");
    body.extend_from_slice(&len.to_be_bytes());
    body.extend_from_slice(text.as_bytes());
}

/// Returns the 16-byte key id of a household verifying key.
fn key_id_bytes(key: &HybridVerifyingKey) -> [u8; ID_LEN] {
    let hex_id = key.key_id();
    let mut id = [0u8; ID_LEN];
    for (index, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex_id[2 * index..2 * index + 2], 16)
            .expect("HybridVerifyingKey::key_id returns 32 hex digits");
    }
    id
}

fn random_id() -> Result<[u8; ID_LEN], CredentialError> {
    let mut id = [0u8; ID_LEN];
    getrandom::fill(&mut id).map_err(CredentialError::Random)?;
    Ok(id)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A cursor over the credential bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, len: usize) -> Result<&'a [u8], CredentialError> {
        let end = self
            .offset
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(CredentialError::Truncated {
                field,
                len: self.bytes.len(),
            });
        };
        let slice = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], CredentialError> {
        Ok(self
            .take(field, N)?
            .try_into()
            .expect("take returned N bytes"))
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, CredentialError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, CredentialError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    fn text(&mut self, field: &'static str) -> Result<&'a str, CredentialError> {
        let len = usize::from(self.u16(field)?);
        let bytes = self.take(field, len)?;
        std::str::from_utf8(bytes).map_err(|_| CredentialError::InvalidUtf8 { field })
    }

    fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.offset..];
        self.offset = self.bytes.len();
        rest
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use hearth_pqc::sign::HybridSigningKey;

    use super::*;
    use crate::device_key::tests::p256_signing_key;

    const NOW: i64 = 1_750_000_000;
    const DAY: i64 = 86_400;

    /// Generating ML-DSA keys is the slow part; tests share two.
    fn household() -> &'static HybridSigningKey {
        static KEY: OnceLock<HybridSigningKey> = OnceLock::new();
        KEY.get_or_init(HybridSigningKey::generate)
    }

    fn other_household() -> &'static HybridSigningKey {
        static KEY: OnceLock<HybridSigningKey> = OnceLock::new();
        KEY.get_or_init(HybridSigningKey::generate)
    }

    fn device_did(seed: u8) -> Did {
        Did::from_p256(p256_signing_key(seed).verifying_key())
    }

    fn user_claims() -> CredentialClaims {
        CredentialClaims::user(device_did(10), Role::Teen, NOW, NOW + 30 * DAY).unwrap()
    }

    fn device_claims() -> CredentialClaims {
        CredentialClaims::device(
            device_did(11),
            device_did(10),
            "living room TV",
            NOW,
            NOW + 365 * DAY,
        )
        .unwrap()
    }

    /// Re-encodes `claims` with the signature of `original`, as an attacker
    /// who edits fields of a valid credential would.
    fn splice(original: &Credential, claims: &CredentialClaims) -> Vec<u8> {
        let mut bytes = encode_body(claims, &original.issuer_key_id);
        bytes.extend_from_slice(&original.signature.to_bytes());
        bytes
    }

    #[test]
    fn user_credential_round_trips() {
        let credential = Credential::issue(household(), user_claims()).unwrap();

        let claims = Credential::verify(
            &credential.to_bytes(),
            &household().verifying_key(),
            NOW + 1,
        )
        .unwrap();

        assert_eq!(&claims, credential.claims());
        assert_eq!(claims.role, Some(Role::Teen));
    }

    #[test]
    fn device_credential_round_trips() {
        let credential = Credential::issue(household(), device_claims()).unwrap();

        let claims =
            Credential::verify(&credential.to_bytes(), &household().verifying_key(), NOW).unwrap();

        assert_eq!(claims.device_name.as_deref(), Some("living room TV"));
        assert_eq!(claims.owner, Some(device_did(10)));
    }

    #[test]
    fn encoding_layout_is_fixed() {
        let claims = user_claims();
        let credential = Credential::issue(household(), claims.clone()).unwrap();
        let bytes = credential.to_bytes();

        assert_eq!(&bytes[..3], &[1, 0x00, 0x01], "version and algorithm id");
        assert_eq!(&bytes[19..35], &claims.id);
        assert_eq!(bytes[35], 1, "kind user");
        assert_eq!(bytes[36], 3, "role teen");
        assert_eq!(&bytes[37..45], &NOW.to_be_bytes());
        let subject_len = usize::from(u16::from_be_bytes([bytes[53], bytes[54]]));
        assert_eq!(
            &bytes[55..55 + subject_len],
            claims.subject.as_str().as_bytes()
        );
        assert_eq!(bytes.len(), 55 + subject_len + 2 + 2 + 3380);
    }

    #[test]
    fn every_tampered_field_rejected() {
        let original = Credential::issue(household(), device_claims()).unwrap();
        let key = household().verifying_key();
        let base = original.claims().clone();

        let tampered: Vec<(&str, CredentialClaims)> = vec![
            (
                "id",
                CredentialClaims {
                    id: [0xff; 16],
                    ..base.clone()
                },
            ),
            (
                "subject",
                CredentialClaims {
                    subject: device_did(12),
                    ..base.clone()
                },
            ),
            (
                "owner",
                CredentialClaims {
                    owner: Some(device_did(13)),
                    ..base.clone()
                },
            ),
            (
                "device name",
                CredentialClaims {
                    device_name: Some("living room tv".into()),
                    ..base.clone()
                },
            ),
            (
                "issued at",
                CredentialClaims {
                    issued_at: base.issued_at - 1,
                    ..base.clone()
                },
            ),
            (
                "expires at",
                CredentialClaims {
                    expires_at: base.expires_at + 1,
                    ..base.clone()
                },
            ),
            (
                "kind and role",
                CredentialClaims {
                    kind: CredentialKind::User,
                    role: Some(Role::Admin),
                    owner: None,
                    device_name: None,
                    ..base.clone()
                },
            ),
        ];

        for (field, claims) in tampered {
            let bytes = splice(&original, &claims);
            let err = Credential::verify(&bytes, &key, NOW).unwrap_err();
            assert!(
                matches!(err, CredentialError::Signature(_)),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn role_escalation_rejected() {
        let original = Credential::issue(household(), user_claims()).unwrap();
        let escalated = CredentialClaims {
            role: Some(Role::Admin),
            ..original.claims().clone()
        };

        let err = Credential::verify(
            &splice(&original, &escalated),
            &household().verifying_key(),
            NOW,
        )
        .unwrap_err();

        assert!(matches!(err, CredentialError::Signature(_)), "{err}");
    }

    #[test]
    fn every_flipped_byte_rejected() {
        let credential = Credential::issue(household(), user_claims()).unwrap();
        let key = household().verifying_key();
        let bytes = credential.to_bytes();
        let body_len = bytes.len() - 3380;

        // Every body byte, and a sample of signature bytes in both parts.
        let positions =
            (0..body_len).chain([body_len + 5, body_len + 40, body_len + 100, bytes.len() - 1]);
        for position in positions {
            let mut tampered = bytes.clone();
            tampered[position] ^= 0x01;
            assert!(
                Credential::verify(&tampered, &key, NOW).is_err(),
                "flipping byte {position} was accepted"
            );
        }
    }

    #[test]
    fn expired_credential_rejected() {
        let credential = Credential::issue(household(), user_claims()).unwrap();
        let expires_at = credential.claims().expires_at;

        let err = Credential::verify(
            &credential.to_bytes(),
            &household().verifying_key(),
            expires_at,
        )
        .unwrap_err();
        assert!(matches!(err, CredentialError::Expired { .. }), "{err}");

        Credential::verify(
            &credential.to_bytes(),
            &household().verifying_key(),
            expires_at - 1,
        )
        .unwrap();
    }

    #[test]
    fn future_credential_rejected() {
        let credential = Credential::issue(household(), user_claims()).unwrap();

        let err = Credential::verify(
            &credential.to_bytes(),
            &household().verifying_key(),
            NOW - 1,
        )
        .unwrap_err();

        assert!(matches!(err, CredentialError::NotYetValid { .. }), "{err}");
    }

    #[test]
    fn other_household_key_rejected() {
        let credential = Credential::issue(other_household(), user_claims()).unwrap();

        let err = Credential::verify(&credential.to_bytes(), &household().verifying_key(), NOW)
            .unwrap_err();

        assert!(matches!(err, CredentialError::WrongIssuer { .. }), "{err}");
    }

    #[test]
    fn forged_issuer_id_rejected() {
        // The attacker signs with their own key but writes our key id.
        let claims = user_claims();
        let our_id = key_id_bytes(&household().verifying_key());
        let body = encode_body(&claims, &our_id);
        let mut forged = body.clone();
        forged.extend_from_slice(&other_household().sign(CREDENTIAL_CONTEXT, &body).to_bytes());

        let err = Credential::verify(&forged, &household().verifying_key(), NOW).unwrap_err();

        assert!(matches!(err, CredentialError::Signature(_)), "{err}");
    }

    #[test]
    fn signature_for_other_context_rejected() {
        let claims = user_claims();
        let body = encode_body(&claims, &key_id_bytes(&household().verifying_key()));
        let mut forged = body.clone();
        forged.extend_from_slice(&household().sign(b"hearth/other-purpose", &body).to_bytes());

        let err = Credential::verify(&forged, &household().verifying_key(), NOW).unwrap_err();

        assert!(matches!(err, CredentialError::Signature(_)), "{err}");
    }

    #[test]
    fn truncated_and_extended_input_rejected() {
        let bytes = Credential::issue(household(), user_claims())
            .unwrap()
            .to_bytes();
        let key = household().verifying_key();

        for len in [0, 1, 3, 35, 54, 100, bytes.len() - 1] {
            assert!(
                Credential::verify(&bytes[..len], &key, NOW).is_err(),
                "accepted {len} bytes"
            );
        }

        let mut extended = bytes.clone();
        extended.push(0);
        assert!(matches!(
            Credential::verify(&extended, &key, NOW),
            Err(CredentialError::Signature(_))
        ));
    }

    #[test]
    fn unknown_header_bytes_rejected() {
        let bytes = Credential::issue(household(), user_claims())
            .unwrap()
            .to_bytes();
        let cases: [(usize, u8, &str); 4] = [
            (0, 2, "version"),
            (2, 2, "algorithm"),
            (35, 3, "kind"),
            (36, 9, "role"),
        ];

        for (position, value, field) in cases {
            let mut tampered = bytes.clone();
            tampered[position] = value;
            let err = Credential::decode(&tampered).unwrap_err();
            let expected = match field {
                "version" => matches!(err, CredentialError::UnsupportedVersion { found: 2 }),
                "algorithm" => matches!(err, CredentialError::UnknownAlgorithm { found: 2 }),
                "kind" => matches!(err, CredentialError::UnknownKind { found: 3 }),
                _ => matches!(err, CredentialError::UnknownRole { found: 9 }),
            };
            assert!(expected, "{field}: {err}");
        }
    }

    #[test]
    fn inconsistent_claims_not_issued() {
        let no_role = CredentialClaims {
            role: None,
            ..user_claims()
        };
        let role_on_device = CredentialClaims {
            role: Some(Role::Admin),
            ..device_claims()
        };
        let unnamed_device = CredentialClaims {
            device_name: Some(String::new()),
            ..device_claims()
        };
        let backwards = CredentialClaims {
            expires_at: NOW,
            ..user_claims()
        };

        for claims in [no_role, role_on_device, unnamed_device, backwards] {
            assert!(
                Credential::issue(household(), claims.clone()).is_err(),
                "issued {claims:?}"
            );
        }
    }

    #[test]
    fn credential_ids_are_random() {
        assert_ne!(user_claims().id, user_claims().id);
    }
}
