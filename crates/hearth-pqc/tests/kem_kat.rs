//! Known-answer tests of ML-KEM-768 (FIPS 203) and X-Wing.
//!
//! The vectors are published ones, copied into `tests/data/`, and the README
//! there names the source of each file. ML-KEM-768 is tested through the
//! `ml-kem` crate that X-Wing is built on, and X-Wing through this crate's
//! own API.

use std::convert::Infallible;
use std::path::Path;

#[allow(deprecated)]
use ml_kem::ExpandedKeyEncoding as _;
use ml_kem::kem::{Decapsulate as _, KeyExport as _};
use ml_kem::{DecapsulationKey, EncapsulationKey, MlKem768};
use rand_core::{TryCryptoRng, TryRng};
use serde::Deserialize;

use hearth_pqc::kem::{
    KemError, XWingCiphertext, XWingPublicKey, XWingSecretKey, decapsulate, encapsulate_with_rng,
};

#[test]
fn ml_kem_768_keygen_matches_wycheproof() {
    let file: WycheproofFile<KeygenTest> = load_json("ml_kem_768_keygen.json");

    let mut checked = 0;
    for group in &file.test_groups {
        assert_eq!(group.parameter_set, "ML-KEM-768");
        for test in &group.tests {
            let dk = DecapsulationKey::<MlKem768>::from_seed(array(&test.seed));

            assert_eq!(
                dk.encapsulation_key().to_bytes().as_slice(),
                test.ek.as_slice(),
                "encapsulation key of tcId {}",
                test.tc_id
            );
            #[allow(deprecated)]
            let expanded = dk.to_expanded_bytes();
            assert_eq!(
                expanded.as_slice(),
                test.dk.as_slice(),
                "expanded decapsulation key of tcId {}",
                test.tc_id
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 3);
}

#[test]
fn ml_kem_768_encapsulation_matches_wycheproof() {
    let file: WycheproofFile<EncapsTest> = load_json("ml_kem_768_encaps.json");

    let mut valid = 0;
    let mut invalid = 0;
    for group in &file.test_groups {
        assert_eq!(group.parameter_set, "ML-KEM-768");
        for test in &group.tests {
            let ek = EncapsulationKey::<MlKem768>::new(&array(&test.ek));

            if test.result == "invalid" {
                assert!(
                    ek.is_err(),
                    "tcId {} must fail the modulus check",
                    test.tc_id
                );
                invalid += 1;
                continue;
            }

            let ek = ek.unwrap_or_else(|_| panic!("tcId {} has a valid key", test.tc_id));
            let (c, k) = ek.encapsulate_deterministic(&array(&test.m));
            assert_eq!(
                c.as_slice(),
                test.c.as_slice(),
                "ciphertext of tcId {}",
                test.tc_id
            );
            assert_eq!(
                k.as_slice(),
                test.k.as_slice(),
                "shared key of tcId {}",
                test.tc_id
            );
            valid += 1;
        }
    }
    assert_eq!((valid, invalid), (3, 2));
}

#[test]
fn public_key_rejects_modulus_overflow() {
    let file: WycheproofFile<EncapsTest> = load_json("ml_kem_768_encaps.json");

    // An X-Wing public key is the ML-KEM-768 encapsulation key followed by an
    // X25519 public key. The X25519 part here is the base point (u = 9).
    let mut x25519 = [0u8; 32];
    x25519[0] = 9;

    for test in file.test_groups.iter().flat_map(|group| &group.tests) {
        let mut public_key = test.ek.clone();
        public_key.extend_from_slice(&x25519);
        let decoded = XWingPublicKey::from_bytes(&public_key);

        if test.result == "invalid" {
            assert!(
                matches!(decoded, Err(KemError::InvalidPublicKey)),
                "tcId {}: {decoded:?}",
                test.tc_id
            );
        } else {
            assert!(decoded.is_ok(), "tcId {}: {decoded:?}", test.tc_id);
        }
    }
}

#[test]
fn ml_kem_768_decapsulation_matches_wycheproof() {
    let file: WycheproofFile<DecapsTest> = load_json("ml_kem_768_decaps.json");

    let mut checked = 0;
    for group in &file.test_groups {
        assert_eq!(group.parameter_set, "ML-KEM-768");
        for test in &group.tests {
            assert_eq!(test.result, "valid", "tcId {}", test.tc_id);
            let dk = DecapsulationKey::<MlKem768>::from_seed(array(&test.seed));
            assert_eq!(
                dk.encapsulation_key().to_bytes().as_slice(),
                test.ek.as_slice(),
                "encapsulation key of tcId {}",
                test.tc_id
            );

            let k = dk.decapsulate(&array(&test.c));
            assert_eq!(
                k.as_slice(),
                test.k.as_slice(),
                "shared key of tcId {}",
                test.tc_id
            );
            checked += 1;
        }
    }
    // Two of these are modified ciphertexts that must take the implicit
    // rejection path, and one guards against a strcmp-style comparison.
    assert_eq!(checked, 6);
}

#[test]
fn x_wing_matches_draft_vectors() {
    let vectors: Vec<XWingVector> = load_json("x_wing.json");
    assert_eq!(vectors.len(), 3);

    for (index, vector) in vectors.iter().enumerate() {
        let sk = XWingSecretKey::generate_with_rng(&mut FixedBytesRng::new(&vector.seed));
        assert_eq!(
            sk.to_bytes().as_slice(),
            vector.sk.as_slice(),
            "secret key of vector {index}"
        );

        let pk = sk.public_key();
        assert_eq!(pk.to_bytes(), vector.pk, "public key of vector {index}");

        let decoded_pk = XWingPublicKey::from_bytes(&vector.pk).expect("draft public key decodes");
        let (ct, ss) = encapsulate_with_rng(&decoded_pk, &mut FixedBytesRng::new(&vector.eseed));
        assert_eq!(ct.to_bytes(), vector.ct, "ciphertext of vector {index}");
        assert_eq!(
            ss.as_slice(),
            vector.ss.as_slice(),
            "encapsulated secret of vector {index}"
        );

        let decoded_sk = XWingSecretKey::from_bytes(&vector.sk).expect("draft secret key decodes");
        let decoded_ct = XWingCiphertext::from_bytes(&vector.ct).expect("draft ciphertext decodes");
        let decapsulated =
            decapsulate(&decoded_sk, &decoded_ct).expect("draft ciphertext is contributory");
        assert_eq!(
            decapsulated.as_slice(),
            vector.ss.as_slice(),
            "decapsulated secret of vector {index}"
        );
    }
}

/// Random number generator that returns the given bytes in order, so that
/// key generation and encapsulation consume a vector's seeds. It panics when
/// the bytes run out, because a vector must provide all the randomness.
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
struct WycheproofFile<T> {
    test_groups: Vec<WycheproofGroup<T>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WycheproofGroup<T> {
    parameter_set: String,
    tests: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeygenTest {
    tc_id: u32,
    #[serde(deserialize_with = "hex_bytes")]
    seed: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    ek: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    dk: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncapsTest {
    tc_id: u32,
    #[serde(deserialize_with = "hex_bytes")]
    ek: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    m: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    c: Vec<u8>,
    #[serde(rename = "K", deserialize_with = "hex_bytes")]
    k: Vec<u8>,
    result: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DecapsTest {
    tc_id: u32,
    #[serde(deserialize_with = "hex_bytes")]
    seed: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    ek: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    c: Vec<u8>,
    #[serde(rename = "K", deserialize_with = "hex_bytes")]
    k: Vec<u8>,
    result: String,
}

#[derive(Deserialize)]
struct XWingVector {
    #[serde(deserialize_with = "hex_bytes")]
    seed: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    eseed: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    ss: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    sk: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    pk: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    ct: Vec<u8>,
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

/// Converts a vector field to the fixed-size array type the ml-kem API takes.
fn array<T: for<'a> TryFrom<&'a [u8]>>(bytes: &[u8]) -> T {
    T::try_from(bytes)
        .unwrap_or_else(|_| panic!("vector field has the wrong length: {} bytes", bytes.len()))
}
