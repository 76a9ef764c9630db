//! Sealed key store: modified, truncated and swapped files fail with an error
//! that names the file, and never panic.

use std::fs;
use std::path::{Path, PathBuf};

use hearth_pqc::keystore::{FileKek, KeyStoreError, KeyVersion, SealedKeyStore};

/// Offsets in a sealed file of key "tls-leaf" (8-byte name).
const MAGIC_OFFSET: usize = 0;
const FORMAT_VERSION_OFFSET: usize = 8;
const AEAD_ID_OFFSET: usize = 9;
const NAME_LEN_OFFSET: usize = 10;
const NAME_OFFSET: usize = 11;
const VERSION_OFFSET: usize = 19;
const CREATED_AT_OFFSET: usize = 23;
const NONCE_OFFSET: usize = 31;
const CIPHERTEXT_OFFSET: usize = 55;

struct Fixture {
    _dir: tempfile::TempDir,
    store: SealedKeyStore,
    path: PathBuf,
    original: Vec<u8>,
}

/// A store with two versions of "tls-leaf"; `path` is version 1's file.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SealedKeyStore::open(dir.path(), Box::new(FileKek::in_dir(dir.path()))).unwrap();
    store.put("tls-leaf", b"version one secret").unwrap();
    store.put("tls-leaf", b"version two secret").unwrap();
    let path = dir.path().join("tls-leaf.v1.sealed");
    let original = fs::read(&path).unwrap();
    Fixture { _dir: dir, store, path, original }
}

impl Fixture {
    fn flip(&self, offset: usize) {
        let mut bytes = self.original.clone();
        bytes[offset] ^= 0x01;
        fs::write(&self.path, bytes).unwrap();
    }

    fn read_v1(&self) -> Result<Option<hearth_pqc::keystore::Zeroizing<Vec<u8>>>, KeyStoreError> {
        self.store.get("tls-leaf", KeyVersion::new(1))
    }
}

fn error_path(error: &KeyStoreError) -> Option<&Path> {
    match error {
        KeyStoreError::Decrypt { path, .. } | KeyStoreError::Malformed { path, .. } => Some(path),
        _ => None,
    }
}

fn assert_rejected(fixture: &Fixture, case: &str) {
    let error = match fixture.read_v1() {
        Ok(_) => panic!("{case}: the modified file was accepted"),
        Err(error) => error,
    };
    assert_eq!(error_path(&error), Some(fixture.path.as_path()), "{case}: {error}");
    assert!(
        error.to_string().contains(&fixture.path.display().to_string()),
        "{case}: message does not name the file: {error}"
    );
}

#[test]
fn fixture_offsets_match_file() {
    let fixture = fixture();

    assert_eq!(&fixture.original[MAGIC_OFFSET..8], b"HEARTHSK");
    assert_eq!(&fixture.original[NAME_OFFSET..VERSION_OFFSET], b"tls-leaf");
    assert_eq!(&fixture.original[VERSION_OFFSET..CREATED_AT_OFFSET], &1u32.to_be_bytes());
    assert_eq!(fixture.original.len(), CIPHERTEXT_OFFSET + b"version one secret".len() + 16);
}

#[test]
fn flipped_ciphertext_byte_fails_to_decrypt() {
    let fixture = fixture();

    fixture.flip(CIPHERTEXT_OFFSET + 3);

    assert_rejected(&fixture, "ciphertext");
    assert!(matches!(fixture.read_v1(), Err(KeyStoreError::Decrypt { .. })));
}

#[test]
fn flipped_tag_byte_fails_to_decrypt() {
    let fixture = fixture();

    fixture.flip(fixture.original.len() - 1);

    assert!(matches!(fixture.read_v1(), Err(KeyStoreError::Decrypt { .. })));
}

#[test]
fn flipped_nonce_byte_fails_to_decrypt() {
    let fixture = fixture();

    fixture.flip(NONCE_OFFSET);

    assert!(matches!(fixture.read_v1(), Err(KeyStoreError::Decrypt { .. })));
}

#[test]
fn flipped_key_name_byte_fails() {
    let fixture = fixture();

    // "tls-leaf" becomes "uls-leaf": still a valid name, so only the
    // associated data catches it.
    fixture.flip(NAME_OFFSET);

    assert_rejected(&fixture, "key name");
    assert!(matches!(fixture.read_v1(), Err(KeyStoreError::Decrypt { .. })));
}

#[test]
fn flipped_key_version_byte_fails() {
    let fixture = fixture();

    fixture.flip(VERSION_OFFSET + 3);

    assert_rejected(&fixture, "key version");
    assert!(matches!(fixture.read_v1(), Err(KeyStoreError::Decrypt { .. })));
}

#[test]
fn flipped_created_at_byte_fails() {
    let fixture = fixture();

    fixture.flip(CREATED_AT_OFFSET + 7);

    assert_rejected(&fixture, "creation time");
    assert!(fixture.store.versions("tls-leaf").is_err(), "versions listed a forged time");
}

#[test]
fn flipped_format_fields_are_malformed() {
    let fixture = fixture();

    for (offset, case) in [
        (MAGIC_OFFSET, "magic"),
        (FORMAT_VERSION_OFFSET, "format version"),
        (AEAD_ID_OFFSET, "AEAD id"),
        (NAME_LEN_OFFSET, "name length"),
    ] {
        fixture.flip(offset);
        assert_rejected(&fixture, case);
    }
    fixture.flip(MAGIC_OFFSET);
    assert!(matches!(fixture.read_v1(), Err(KeyStoreError::Malformed { .. })));
}

#[test]
fn truncated_file_fails_at_every_length() {
    let fixture = fixture();

    for len in 0..fixture.original.len() {
        fs::write(&fixture.path, &fixture.original[..len]).unwrap();
        assert_rejected(&fixture, &format!("truncated to {len} bytes"));
    }
}

#[test]
fn appended_bytes_fail() {
    let fixture = fixture();
    let mut longer = fixture.original.clone();
    longer.extend_from_slice(b"extra");

    fs::write(&fixture.path, longer).unwrap();

    assert_rejected(&fixture, "appended bytes");
}

#[test]
fn oversized_file_is_rejected_before_reading() {
    let fixture = fixture();

    fs::write(&fixture.path, vec![0u8; 2 << 20]).unwrap();

    assert_rejected(&fixture, "oversized file");
    assert!(matches!(fixture.read_v1(), Err(KeyStoreError::Malformed { .. })));
}

#[test]
fn version_renamed_over_newer_one_fails() {
    let fixture = fixture();
    let newer = fixture.path.with_file_name("tls-leaf.v2.sealed");

    // Rolling the current key back by copying the old file over the new one.
    fs::copy(&fixture.path, &newer).unwrap();
    let error = fixture.store.current("tls-leaf").unwrap_err();

    assert!(matches!(&error, KeyStoreError::Malformed { path, .. } if *path == newer), "{error}");
    assert!(error.to_string().contains("renamed or copied"), "{error}");
}

#[test]
fn file_of_other_key_renamed_fails() {
    let fixture = fixture();
    fixture.store.put("server-signing", b"signing").unwrap();
    let signing = fixture.path.with_file_name("server-signing.v1.sealed");

    fs::copy(&fixture.path, &signing).unwrap();
    let error = fixture.store.current("server-signing").unwrap_err();

    assert!(matches!(error, KeyStoreError::Malformed { .. }), "{error}");
}

#[test]
fn tampered_newest_version_is_not_replaced_by_older() {
    let fixture = fixture();
    let newer = fixture.path.with_file_name("tls-leaf.v2.sealed");
    let mut bytes = fs::read(&newer).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;

    fs::write(&newer, bytes).unwrap();

    assert!(matches!(fixture.store.current("tls-leaf"), Err(KeyStoreError::Decrypt { .. })));
    assert_eq!(
        fixture.read_v1().unwrap().unwrap().as_slice(),
        b"version one secret",
        "an intact older version became unreadable"
    );
}

#[test]
fn tampered_check_file_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    SealedKeyStore::open(dir.path(), Box::new(FileKek::in_dir(dir.path()))).unwrap();
    let check = dir.path().join("kek.check");
    let mut bytes = fs::read(&check).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&check, bytes).unwrap();

    let error =
        SealedKeyStore::open(dir.path(), Box::new(FileKek::in_dir(dir.path()))).unwrap_err();

    assert!(
        matches!(&error, KeyStoreError::KekMismatch { check: path, .. } if *path == check),
        "{error}"
    );
}
