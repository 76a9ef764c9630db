//! Sealed key store: key names are checked so that none can become a path.

use std::fs;
use std::time::Duration;

use hearth_pqc::keystore::{FileKek, KeyStoreError, KeyVersion, SealedKeyStore};
use zeroize::Zeroizing;

const INVALID_NAMES: [&str; 12] = [
    "../x",
    "a/b",
    "",
    "Tls-Leaf",
    "UPPER",
    ".",
    "..",
    "a.v1",
    "a b",
    "tls_leaf",
    "\u{e9}t\u{e9}",
    "a\0b",
];

fn is_invalid_name(result: Result<impl Sized, KeyStoreError>) -> bool {
    matches!(result, Err(KeyStoreError::InvalidName { .. }))
}

#[test]
fn invalid_names_are_rejected_everywhere() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("keys");
    let store = SealedKeyStore::open(&dir, Box::new(FileKek::in_dir(&dir))).unwrap();
    let too_long = "a".repeat(65);
    let make = || Ok(Zeroizing::new(b"secret".to_vec()));

    for name in INVALID_NAMES.iter().copied().chain([too_long.as_str()]) {
        assert!(is_invalid_name(store.put(name, b"secret")), "put accepted {name:?}");
        assert!(is_invalid_name(store.current(name)), "current accepted {name:?}");
        assert!(is_invalid_name(store.get(name, KeyVersion::new(1))), "get accepted {name:?}");
        assert!(is_invalid_name(store.versions(name)), "versions accepted {name:?}");
        assert!(
            is_invalid_name(store.rotate_if_due(name, Duration::ZERO, true, make)),
            "rotate_if_due accepted {name:?}"
        );
    }

    let outside: Vec<_> =
        fs::read_dir(parent.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside, ["keys"], "a file was written outside the store's folder");
}

#[test]
fn invalid_name_error_names_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = SealedKeyStore::open(dir.path(), Box::new(FileKek::in_dir(dir.path()))).unwrap();

    let message = store.put("../x", b"secret").unwrap_err().to_string();

    assert!(message.contains("\"../x\""), "{message}");
    assert!(message.contains("a-z, 0-9 and '-'"), "{message}");
}

#[test]
fn valid_names_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = SealedKeyStore::open(dir.path(), Box::new(FileKek::in_dir(dir.path()))).unwrap();
    let longest = "z".repeat(64);

    for name in ["a", "0", "-", "server-signing", "tls-leaf", "kek", "kek-check", longest.as_str()]
    {
        let version = store.put(name, b"secret").unwrap();
        assert_eq!(version, KeyVersion::new(1), "name {name:?}");
        assert_eq!(store.current(name).unwrap().unwrap().1.as_slice(), b"secret", "name {name:?}");
    }
}
