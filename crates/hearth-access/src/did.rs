//! `did:key` identifiers (W3C did:key method) for Ed25519 and P-256 keys.
//!
//! A did:key is `did:key:` followed by a multibase string: the letter `z`
//! (base58btc, Bitcoin alphabet), then the base58 encoding of the
//! multicodec code of the key type as an unsigned varint, followed by the
//! public key bytes:
//!
//! | key type | multicodec code | varint bytes | key bytes |
//! |----------|-----------------|--------------|-----------|
//! | Ed25519  | `0xed`          | `ed 01`      | 32, the RFC 8032 encoding |
//! | P-256    | `0x1200`        | `80 24`      | 33, the SEC 1 compressed point |
//!
//! [`Did::parse`] accepts only these two key types and only the canonical
//! encoding: a key that is not a valid curve point, an Ed25519 point of
//! small order, an uncompressed P-256 point, a longer varint for the same
//! code, or a DID URL with a path, query or fragment are all rejected.

use std::fmt;
use std::str::FromStr;

/// Prefix of every did:key.
const DID_KEY_PREFIX: &str = "did:key:";

/// Multibase prefix of base58btc, the only base did:key allows.
const BASE58BTC_PREFIX: char = 'z';

/// Multicodec code of an Ed25519 public key (`ed25519-pub`).
const ED25519_PUB: u64 = 0xed;

/// Multicodec code of a compressed P-256 public key (`p256-pub`).
const P256_PUB: u64 = 0x1200;

/// Length of an Ed25519 public key.
const ED25519_KEY_LEN: usize = 32;

/// Length of a compressed SEC 1 P-256 point.
const P256_KEY_LEN: usize = 33;

/// Maximum did:key length. The two supported types give 56 (Ed25519) and
/// 57 (P-256) characters; the bound stops a long input from reaching the
/// base58 decoder, whose cost grows with the square of the length.
const MAX_DID_LEN: usize = 128;

/// Maximum multicodec varint length: both supported codes fit in two bytes.
const MAX_VARINT_LEN: usize = 3;

/// A did:key identifier of a user or device, with its decoded public key.
///
/// Two `Did`s are equal when their keys are equal; the text form is
/// canonical, so equal keys also have equal text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Did {
    key: DidKey,
    text: String,
}

/// The public key a did:key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DidKey {
    /// An Ed25519 public key (RFC 8032 encoding).
    Ed25519([u8; ED25519_KEY_LEN]),
    /// A P-256 public key as a SEC 1 compressed point.
    P256([u8; P256_KEY_LEN]),
}

impl Did {
    /// Parses and validates a did:key string.
    ///
    /// # Errors
    ///
    /// Returns a [`DidError`] that names the first problem found: length,
    /// prefix, DID URL parts, multibase, base58, multicodec, key length or
    /// key validity.
    pub fn parse(text: &str) -> Result<Self, DidError> {
        if text.len() > MAX_DID_LEN {
            return Err(DidError::TooLong {
                len: text.len(),
                max: MAX_DID_LEN,
            });
        }

        let Some(multibase) = text.strip_prefix(DID_KEY_PREFIX) else {
            return Err(DidError::MissingPrefix {
                found: text.to_owned(),
            });
        };
        if let Some(position) = multibase.find(['#', '?', '/']) {
            return Err(DidError::DidUrl {
                character: multibase[position..].chars().next().unwrap_or('#'),
            });
        }

        let mut chars = multibase.chars();
        match chars.next() {
            Some(BASE58BTC_PREFIX) => {}
            Some(other) => return Err(DidError::UnsupportedMultibase { prefix: other }),
            None => return Err(DidError::Empty),
        }
        let bytes = bs58::decode(chars.as_str())
            .into_vec()
            .map_err(DidError::Base58)?;

        let (code, varint_len) = decode_varint(&bytes)?;
        let key_bytes = &bytes[varint_len..];
        let key = match code {
            ED25519_PUB => DidKey::Ed25519(fixed_key("Ed25519", key_bytes)?),
            P256_PUB => DidKey::P256(fixed_key("P-256", key_bytes)?),
            other => return Err(DidError::UnsupportedKeyType { code: other }),
        };
        let did = Self::from_key(key)?;

        // base58 and the varint have one encoding per value once the checks
        // above pass, so a mismatch here means a bug, not a hostile input;
        // rejecting keeps the text form canonical either way.
        if did.text != text {
            return Err(DidError::NonCanonical {
                found: text.to_owned(),
                canonical: did.text,
            });
        }
        Ok(did)
    }

    /// Builds the did:key of `key` after checking that it is a valid public key.
    ///
    /// # Errors
    ///
    /// Returns [`DidError::InvalidKey`] for bytes that are not a curve point
    /// and [`DidError::WeakKey`] for an Ed25519 point of small order.
    pub fn from_key(key: DidKey) -> Result<Self, DidError> {
        validate_key(&key)?;

        let (code, key_bytes): (u64, &[u8]) = match &key {
            DidKey::Ed25519(bytes) => (ED25519_PUB, bytes),
            DidKey::P256(bytes) => (P256_PUB, bytes),
        };
        let mut multicodec = encode_varint(code);
        multicodec.extend_from_slice(key_bytes);

        let text = format!(
            "{DID_KEY_PREFIX}{BASE58BTC_PREFIX}{}",
            bs58::encode(multicodec).into_string()
        );
        Ok(Self { key, text })
    }

    /// Returns the did:key of an Ed25519 public key.
    ///
    /// # Errors
    ///
    /// As [`Did::from_key`].
    pub fn from_ed25519(public_key: &[u8; ED25519_KEY_LEN]) -> Result<Self, DidError> {
        Self::from_key(DidKey::Ed25519(*public_key))
    }

    /// Returns the did:key of a P-256 public key.
    pub fn from_p256(public_key: &p256::ecdsa::VerifyingKey) -> Self {
        let point = public_key.to_sec1_point(true);
        let compressed: [u8; P256_KEY_LEN] = point
            .as_bytes()
            .try_into()
            .expect("a compressed SEC 1 P-256 point is 33 bytes");

        Self::from_key(DidKey::P256(compressed)).expect("a p256 VerifyingKey is a valid point")
    }

    /// Returns the public key this DID names.
    pub fn key(&self) -> &DidKey {
        &self.key
    }

    /// Returns the canonical text form, `did:key:z…`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Did").field(&self.text).finish()
    }
}

impl FromStr for Did {
    type Err = DidError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Error from parsing or building a did:key.
#[derive(Debug, thiserror::Error)]
pub enum DidError {
    /// The input is longer than any supported did:key.
    #[error("invalid did:key: {len} characters, at most {max} expected")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
        /// Longest accepted length.
        max: usize,
    },

    /// The input does not start with `did:key:`.
    #[error("invalid did:key {found:?}: expected the prefix \"did:key:\"")]
    MissingPrefix {
        /// The input.
        found: String,
    },

    /// Nothing follows `did:key:`.
    #[error("invalid did:key: nothing follows \"did:key:\"")]
    Empty,

    /// The input is a DID URL (path, query or fragment), not a bare DID.
    #[error(
        "invalid did:key: found {character:?}; pass the bare DID without a path, query or fragment"
    )]
    DidUrl {
        /// The first `/`, `?` or `#` found.
        character: char,
    },

    /// The multibase prefix is not `z` (base58btc).
    #[error("unsupported multibase prefix {prefix:?} in did:key: did:key requires 'z' (base58btc)")]
    UnsupportedMultibase {
        /// The prefix found.
        prefix: char,
    },

    /// The multibase value is not valid base58 (Bitcoin alphabet).
    #[error("invalid base58btc in did:key")]
    Base58(#[source] bs58::decode::Error),

    /// The multicodec varint is missing, too long or not minimally encoded.
    #[error("invalid multicodec prefix in did:key: {problem}")]
    Varint {
        /// Description of the varint problem.
        problem: &'static str,
    },

    /// The multicodec names a key type this crate does not support.
    #[error("unsupported did:key key type 0x{code:x}: expected 0xed (Ed25519) or 0x1200 (P-256)")]
    UnsupportedKeyType {
        /// The multicodec code found.
        code: u64,
    },

    /// The key has the wrong length for its type.
    #[error("invalid {key_type} key in did:key: {actual} bytes, expected {expected}")]
    KeyLength {
        /// The key type named by the multicodec.
        key_type: &'static str,
        /// Length found.
        actual: usize,
        /// Length of a valid key of that type.
        expected: usize,
    },

    /// The key bytes are not a valid public key of their type.
    #[error("invalid {key_type} key in did:key: not a point on the curve in the expected encoding")]
    InvalidKey {
        /// The key type named by the multicodec.
        key_type: &'static str,
    },

    /// The Ed25519 key is a point of small order, for which signatures can be forged.
    #[error("invalid Ed25519 key in did:key: the point has small order")]
    WeakKey,

    /// The input decodes to a valid key but is not its canonical text form.
    #[error("non-canonical did:key {found:?}: the canonical form is {canonical:?}")]
    NonCanonical {
        /// The input.
        found: String,
        /// The canonical text of the same key.
        canonical: String,
    },
}

/// Checks that `key` decodes to a usable public key.
fn validate_key(key: &DidKey) -> Result<(), DidError> {
    match key {
        DidKey::Ed25519(bytes) => {
            let key = ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| {
                DidError::InvalidKey {
                    key_type: "Ed25519",
                }
            })?;
            if key.is_weak() {
                return Err(DidError::WeakKey);
            }
        }
        DidKey::P256(bytes) => {
            // from_sec1_bytes also accepts uncompressed points; the array
            // length already limits this to the 33-byte compressed form.
            p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                .map_err(|_| DidError::InvalidKey { key_type: "P-256" })?;
        }
    }
    Ok(())
}

/// Copies `bytes` into an array of the key type's length.
fn fixed_key<const N: usize>(key_type: &'static str, bytes: &[u8]) -> Result<[u8; N], DidError> {
    bytes.try_into().map_err(|_| DidError::KeyLength {
        key_type,
        actual: bytes.len(),
        expected: N,
    })
}

/// Decodes the unsigned LEB128 varint at the start of `bytes` (multiformats
/// unsigned-varint) and returns the value and the number of bytes read.
fn decode_varint(bytes: &[u8]) -> Result<(u64, usize), DidError> {
    let mut value = 0u64;

    for (index, &byte) in bytes.iter().enumerate().take(MAX_VARINT_LEN) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            // A last byte of zero after other bytes encodes the same value
            // in more bytes than needed, which multiformats forbids.
            if byte == 0 && index > 0 {
                return Err(DidError::Varint {
                    problem: "not minimally encoded",
                });
            }
            return Ok((value, index + 1));
        }
    }

    if bytes.len() < MAX_VARINT_LEN {
        Err(DidError::Varint {
            problem: "truncated",
        })
    } else {
        Err(DidError::Varint {
            problem: "longer than 3 bytes",
        })
    }
}

/// Encodes `value` as an unsigned LEB128 varint.
fn encode_varint(mut value: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(MAX_VARINT_LEN);
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(low);
            return bytes;
        }
        bytes.push(low | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    // Ed25519 vectors from the did:key specification's test suite:
    // https://github.com/w3c-ccg/did-method-key/blob/main/test-vectors/ed25519-x25519.json
    // Each entry: secret seed (hex), publicKeyBase58, did.
    const ED25519_VECTORS: [(&str, &str, &str); 5] = [
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
            "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000001",
            "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
            "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000002",
            "8pM1DN3RiT8vbom5u1sNryaNT1nyL8CTTW3b5PwWXRBH",
            "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000003",
            "HPYVwAQmskwT1qEEeRzhoomyfyupJGASQQtCXSNG8XS2",
            "did:key:z6MkvqoYXQfDDJRv8L4wKzxYeuKyVZBfi9Qo6Ro8MiLH3kDQ",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000004",
            "J3qYF7YJMKCqQke47UQwiHizgFUXapHxRxKmxbkar89x",
            "did:key:z6MkwW6aqMnjgrhJXFUko3NnZPGzVpkNzhYK7yEhnsibmLwL",
        ),
    ];

    // P-256 vectors from the did:key specification's test suite:
    // https://github.com/w3c-ccg/did-method-key/blob/main/test-vectors/nist-curves.json
    // Each entry: JWK x, JWK y (base64url), did.
    const P256_VECTORS: [(&str, &str, &str); 2] = [
        (
            "igrFmi0whuihKnj9R3Om1SoMph72wUGeFaBbzG2vzns",
            "efsX5b10x8yjyrj4ny3pGfLcY7Xby1KzgqOdqnsrJIM",
            "did:key:zDnaerx9CtbPJ1q36T5Ln5wYt3MQYeGRG5ehnPAmxcf5mDZpv",
        ),
        (
            "fyNYMN0976ci7xqiSdag3buk-ZCwgXU4kz9XNkBlNUI",
            "hW2ojTNfH7Jbi8--CJUo3OCbH3y5n91g-IMA9MLMbTU",
            "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169",
        ),
    ];

    fn p256_from_jwk(x: &str, y: &str) -> p256::ecdsa::VerifyingKey {
        let mut uncompressed = vec![0x04];
        uncompressed.extend(URL_SAFE_NO_PAD.decode(x).unwrap());
        uncompressed.extend(URL_SAFE_NO_PAD.decode(y).unwrap());
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&uncompressed).unwrap()
    }

    #[test]
    fn ed25519_spec_vectors_encode() {
        for (seed_hex, public_base58, expected) in ED25519_VECTORS {
            let seed: [u8; 32] = hex_decode(seed_hex).try_into().unwrap();
            let public = ed25519_dalek::SigningKey::from_bytes(&seed)
                .verifying_key()
                .to_bytes();
            let listed = bs58::decode(public_base58).into_vec().unwrap();
            assert_eq!(public.as_slice(), listed.as_slice(), "seed {seed_hex}");

            let did = Did::from_ed25519(&public).unwrap();

            assert_eq!(did.as_str(), expected);
        }
    }

    #[test]
    fn ed25519_spec_vectors_parse() {
        for (_, public_base58, text) in ED25519_VECTORS {
            let did = Did::parse(text).unwrap();

            let listed: [u8; 32] = bs58::decode(public_base58)
                .into_vec()
                .unwrap()
                .try_into()
                .unwrap();
            assert_eq!(did.key(), &DidKey::Ed25519(listed));
            assert_eq!(did.to_string(), text);
        }
    }

    #[test]
    fn p256_spec_vectors_encode() {
        for (x, y, expected) in P256_VECTORS {
            let did = Did::from_p256(&p256_from_jwk(x, y));

            assert_eq!(did.as_str(), expected);
        }
    }

    #[test]
    fn p256_spec_vectors_parse() {
        for (x, y, text) in P256_VECTORS {
            let did = Did::parse(text).unwrap();

            let DidKey::P256(compressed) = did.key() else {
                panic!("{text} parsed as {:?}", did.key())
            };
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(compressed).unwrap();
            assert_eq!(key, p256_from_jwk(x, y));
        }
    }

    #[test]
    fn p256_prefix_is_varint_of_0x1200() {
        assert_eq!(encode_varint(P256_PUB), [0x80, 0x24]);
        assert_eq!(encode_varint(ED25519_PUB), [0xed, 0x01]);
        assert_eq!(decode_varint(&[0x80, 0x24, 0xff]).unwrap(), (0x1200, 2));
    }

    #[test]
    fn missing_prefix_rejected() {
        let err =
            Did::parse("did:web:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp").unwrap_err();
        assert!(matches!(err, DidError::MissingPrefix { .. }), "{err}");

        let err =
            Did::parse("DID:KEY:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp").unwrap_err();
        assert!(matches!(err, DidError::MissingPrefix { .. }), "{err}");
    }

    #[test]
    fn empty_method_specific_id_rejected() {
        assert!(matches!(Did::parse("did:key:"), Err(DidError::Empty)));
    }

    #[test]
    fn other_multibase_rejected() {
        // 'u' is base64url in multibase; did:key allows only base58btc.
        let err = Did::parse("did:key:u7QGMmr3KfCMHk1r5fVyzjD0v8cGyrxNLUcEX2TdcY4").unwrap_err();
        assert!(
            matches!(err, DidError::UnsupportedMultibase { prefix: 'u' }),
            "{err}"
        );
    }

    #[test]
    fn did_url_rejected() {
        let url = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
        let err = Did::parse(url).unwrap_err();
        assert!(matches!(err, DidError::DidUrl { character: '#' }), "{err}");

        let err = Did::parse("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp/path")
            .unwrap_err();
        assert!(matches!(err, DidError::DidUrl { character: '/' }), "{err}");
    }

    #[test]
    fn invalid_base58_character_rejected() {
        // '0', 'O', 'I' and 'l' are not in the Bitcoin alphabet.
        let err =
            Did::parse("did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDoo0p").unwrap_err();
        assert!(matches!(err, DidError::Base58(_)), "{err}");
    }

    #[test]
    fn overlong_input_rejected_before_decoding() {
        let long = format!("did:key:z{}", "1".repeat(500));
        let err = Did::parse(&long).unwrap_err();
        assert!(
            matches!(err, DidError::TooLong { len: 509, max: 128 }),
            "{err}"
        );
    }

    #[test]
    fn unsupported_key_type_rejected() {
        // secp256k1-pub (0xe7) with a 33-byte key, encoded by hand.
        let mut bytes = encode_varint(0xe7);
        bytes.extend_from_slice(&[2; 33]);
        let text = format!("did:key:z{}", bs58::encode(bytes).into_string());

        let err = Did::parse(&text).unwrap_err();
        assert!(
            matches!(err, DidError::UnsupportedKeyType { code: 0xe7 }),
            "{err}"
        );
    }

    #[test]
    fn truncated_and_extended_keys_rejected() {
        let valid = Did::parse(ED25519_VECTORS[0].2).unwrap();
        let DidKey::Ed25519(key) = *valid.key() else {
            unreachable!()
        };

        for len in [0, 31, 33] {
            let mut bytes = encode_varint(ED25519_PUB);
            bytes.extend(key.iter().copied().cycle().take(len));
            let text = format!("did:key:z{}", bs58::encode(bytes).into_string());

            let err = Did::parse(&text).unwrap_err();
            assert!(
                matches!(err, DidError::KeyLength { actual, expected: 32, .. } if actual == len),
                "{len}: {err}"
            );
        }
    }

    #[test]
    fn uncompressed_p256_point_rejected() {
        let (x, y, _) = P256_VECTORS[0];
        let uncompressed = p256_from_jwk(x, y).to_sec1_point(false);
        let mut bytes = encode_varint(P256_PUB);
        bytes.extend_from_slice(uncompressed.as_bytes());
        let text = format!("did:key:z{}", bs58::encode(bytes).into_string());

        let err = Did::parse(&text).unwrap_err();
        assert!(
            matches!(
                err,
                DidError::KeyLength {
                    actual: 65,
                    expected: 33,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn p256_point_off_curve_rejected() {
        // About half of all x coordinates have no point on P-256; search
        // for one instead of hard-coding it.
        let off_curve = (0u8..=255)
            .map(|last| {
                let mut point = [0u8; 33];
                point[0] = 0x02;
                point[32] = last;
                point
            })
            .find(|point| p256::ecdsa::VerifyingKey::from_sec1_bytes(point).is_err())
            .expect("some small x is not on P-256");

        let err = Did::from_key(DidKey::P256(off_curve)).unwrap_err();
        assert!(
            matches!(err, DidError::InvalidKey { key_type: "P-256" }),
            "{err}"
        );
    }

    #[test]
    fn small_order_ed25519_key_rejected() {
        // The identity point (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;

        let err = Did::from_ed25519(&identity).unwrap_err();
        assert!(matches!(err, DidError::WeakKey), "{err}");
    }

    #[test]
    fn non_minimal_varint_rejected() {
        // 0xed encoded in three bytes: ed 81 00.
        let mut bytes = vec![0xed, 0x81, 0x00];
        bytes.extend_from_slice(&[0x11; 32]);
        let text = format!("did:key:z{}", bs58::encode(bytes).into_string());

        let err = Did::parse(&text).unwrap_err();
        assert!(
            matches!(
                err,
                DidError::Varint {
                    problem: "not minimally encoded"
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn leading_zero_byte_rejected() {
        // A leading '1' in base58 decodes to a zero byte, which is varint 0.
        let text = ED25519_VECTORS[0].2.replacen("z6Mk", "z16Mk", 1);

        let err = Did::parse(&text).unwrap_err();
        assert!(
            matches!(err, DidError::UnsupportedKeyType { code: 0 }),
            "{err}"
        );
    }

    #[test]
    fn single_character_changes_never_alias() {
        let original = Did::parse(P256_VECTORS[0].2).unwrap();
        let alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

        for position in "did:key:z".len()..original.as_str().len() {
            for replacement in alphabet.chars() {
                let mut text = original.as_str().to_owned();
                text.replace_range(position..position + 1, &replacement.to_string());
                if text == original.as_str() {
                    continue;
                }
                if let Ok(other) = Did::parse(&text) {
                    assert_ne!(other, original, "{text} parsed as the original key");
                }
            }
        }
    }

    fn hex_decode(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }
}
