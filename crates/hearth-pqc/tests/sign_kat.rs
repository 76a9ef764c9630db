//! Known-answer tests of ML-DSA-65 (FIPS 204) and Ed25519 (RFC 8032).
//!
//! The vectors are published ones, copied into `tests/data/`, and the README
//! there names the source of each file. The component schemes are tested
//! through the `ml-dsa` and `ed25519-dalek` calls that the hybrid signer
//! makes, and key generation also through this crate's key encoding.

use std::convert::Infallible;
use std::path::Path;

use ml_dsa::{EncodedVerifyingKey, ExpandedSigningKey, MlDsa65};
use rand_core::{TryCryptoRng, TryRng};
use serde::Deserialize;

use hearth_pqc::sign::{HybridSigner as _, HybridSigningKey};

/// Number of bytes before the ML-DSA-65 public key in a hybrid verifying key:
/// version, algorithm id and the Ed25519 public key.
const ML_DSA_KEY_OFFSET: usize = 3 + 32;

#[test]
fn ml_dsa_65_keygen_matches_wycheproof() {
    let file: SignFile = load_json("ml_dsa_65_sign.json");

    let mut checked = 0;
    for group in &file.test_groups {
        let seed: [u8; 32] = group
            .private_seed
            .as_slice()
            .try_into()
            .expect("32-byte seed");
        let key = ExpandedSigningKey::<MlDsa65>::from_seed(&seed.into());
        assert_eq!(
            key.verifying_key().encode().as_slice(),
            group.public_key.as_slice(),
            "public key of the group with seed {}",
            hex::encode(seed)
        );

        let mut encoded = vec![1, 0x00, 0x01];
        encoded.extend_from_slice(&[0u8; 32]);
        encoded.extend_from_slice(&seed);
        let hybrid = HybridSigningKey::from_bytes(&encoded).expect("hybrid key decodes");
        assert_eq!(
            &hybrid.verifying_key().to_bytes()[ML_DSA_KEY_OFFSET..],
            group.public_key.as_slice(),
            "hybrid public key of the group with seed {}",
            hex::encode(seed)
        );
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn ml_dsa_65_deterministic_signing_matches_wycheproof() {
    let file: SignFile = load_json("ml_dsa_65_sign.json");

    let mut valid = 0;
    let mut invalid = 0;
    for group in &file.test_groups {
        let key = signing_key(&group.private_seed);
        for test in group.tests.iter().filter(|test| test.rnd.is_none()) {
            let result = key.sign_deterministic(&test.msg, &test.ctx);

            if test.result == "invalid" {
                assert!(
                    result.is_err(),
                    "tcId {} ({}) must fail",
                    test.tc_id,
                    test.comment
                );
                invalid += 1;
                continue;
            }

            let signature = result.unwrap_or_else(|_| panic!("tcId {} signs", test.tc_id));
            assert_eq!(
                signature.encode().as_slice(),
                test.sig.as_slice(),
                "signature of tcId {} ({})",
                test.tc_id,
                test.comment
            );
            valid += 1;
        }
    }
    assert_eq!((valid, invalid), (10, 1));
}

#[test]
fn ml_dsa_65_hedged_signing_matches_wycheproof() {
    let file: SignFile = load_json("ml_dsa_65_sign.json");

    let mut checked = 0;
    for group in &file.test_groups {
        let key = signing_key(&group.private_seed);
        for test in &group.tests {
            let Some(rnd) = &test.rnd else { continue };

            // The hybrid signer makes this same call with the operating
            // system's generator. Here the generator returns the vector's rnd.
            let signature = key
                .sign_randomized(&test.msg, &test.ctx, &mut FixedBytesRng::new(rnd))
                .unwrap_or_else(|_| panic!("tcId {} signs", test.tc_id));
            assert_eq!(
                signature.encode().as_slice(),
                test.sig.as_slice(),
                "signature of tcId {}",
                test.tc_id
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 1);
}

#[test]
fn ml_dsa_65_verification_matches_wycheproof() {
    let file: VerifyFile = load_json("ml_dsa_65_verify.json");

    let mut checked = 0;
    for group in &file.test_groups {
        let encoded_key = EncodedVerifyingKey::<MlDsa65>::try_from(group.public_key.as_slice())
            .expect("the selected groups have 1952-byte keys");
        let key = ml_dsa::VerifyingKey::<MlDsa65>::decode(&encoded_key);

        for test in &group.tests {
            let verified = ml_dsa::Signature::<MlDsa65>::try_from(test.sig.as_slice())
                .is_ok_and(|signature| key.verify_with_context(&test.msg, &test.ctx, &signature));

            assert_eq!(
                verified,
                test.result == "valid",
                "tcId {} ({})",
                test.tc_id,
                test.comment
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
}

#[test]
fn ed25519_verification_matches_wycheproof() {
    let file: Ed25519File = load_json("ed25519_verify.json");

    let mut checked = 0;
    for group in &file.test_groups {
        let public_key: [u8; 32] = group
            .public_key
            .pk
            .as_slice()
            .try_into()
            .expect("32-byte key");
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public_key).expect("valid point");

        for test in &group.tests {
            let verified = <[u8; 64]>::try_from(test.sig.as_slice()).is_ok_and(|signature| {
                let signature = ed25519_dalek::Signature::from_bytes(&signature);
                key.verify_strict(&test.msg, &signature).is_ok()
            });

            assert_eq!(
                verified,
                test.result == "valid",
                "tcId {} ({})",
                test.tc_id,
                test.comment
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 5);
}

/// Expands a vector's 32-byte ML-DSA seed.
fn signing_key(seed: &[u8]) -> ExpandedSigningKey<MlDsa65> {
    let seed: [u8; 32] = seed.try_into().expect("32-byte seed");
    ExpandedSigningKey::from_seed(&seed.into())
}

/// Random number generator that returns the given bytes in order and panics
/// when they run out, because a vector must provide all the randomness.
struct FixedBytesRng {
    bytes: Vec<u8>,
    position: usize,
}

impl FixedBytesRng {
    fn new(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.to_vec(),
            position: 0,
        }
    }
}

impl TryRng for FixedBytesRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut word = [0u8; 4];
        self.try_fill_bytes(&mut word)?;
        Ok(u32::from_le_bytes(word))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut word = [0u8; 8];
        self.try_fill_bytes(&mut word)?;
        Ok(u64::from_le_bytes(word))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let end = self.position + dst.len();
        assert!(
            end <= self.bytes.len(),
            "test vector provides too few random bytes"
        );
        dst.copy_from_slice(&self.bytes[self.position..end]);
        self.position = end;
        Ok(())
    }
}

impl TryCryptoRng for FixedBytesRng {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignFile {
    test_groups: Vec<SignGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignGroup {
    #[serde(deserialize_with = "hex_bytes")]
    private_seed: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    public_key: Vec<u8>,
    tests: Vec<SignTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignTest {
    tc_id: u32,
    comment: String,
    #[serde(deserialize_with = "hex_bytes")]
    msg: Vec<u8>,
    #[serde(default, deserialize_with = "hex_bytes")]
    ctx: Vec<u8>,
    #[serde(default, deserialize_with = "optional_hex_bytes")]
    rnd: Option<Vec<u8>>,
    #[serde(deserialize_with = "hex_bytes")]
    sig: Vec<u8>,
    result: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyFile {
    test_groups: Vec<VerifyGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyGroup {
    #[serde(deserialize_with = "hex_bytes")]
    public_key: Vec<u8>,
    tests: Vec<VerifyTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyTest {
    tc_id: u32,
    comment: String,
    #[serde(deserialize_with = "hex_bytes")]
    msg: Vec<u8>,
    #[serde(default, deserialize_with = "hex_bytes")]
    ctx: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    sig: Vec<u8>,
    result: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ed25519File {
    test_groups: Vec<Ed25519Group>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ed25519Group {
    public_key: Ed25519PublicKey,
    tests: Vec<VerifyTest>,
}

#[derive(Deserialize)]
struct Ed25519PublicKey {
    #[serde(deserialize_with = "hex_bytes")]
    pk: Vec<u8>,
}

/// Reads and parses a JSON file from `tests/data/`.
fn load_json<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("parsing {}: {error}", path.display()))
}

/// Decodes a hex string field of a vector file.
fn hex_bytes<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(deserializer)?;
    hex::decode(&text).map_err(serde::de::Error::custom)
}

/// Decodes an optional hex string field of a vector file.
fn optional_hex_bytes<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<u8>>, D::Error> {
    hex_bytes(deserializer).map(Some)
}
