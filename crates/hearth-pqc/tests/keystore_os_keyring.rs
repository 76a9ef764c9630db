//! Sealed key store: the KEK in an OS keyring, through keyring-core's
//! in-memory mock store and, where the kernel allows it, the real Linux
//! kernel keyring.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use hearth_pqc::keystore::{
    KEYRING_SERVICE, KekSource, KeyStoreError, OsKeyringKek, SealedKeyStore, default_kek,
};
use keyring_core::{CredentialStore, Entry};

fn mock_store() -> Arc<CredentialStore> {
    keyring_core::mock::Store::new().unwrap()
}

/// Returns the entry's user field written to the binding file in `dir`.
fn bound_user(dir: &Path) -> String {
    let binding = fs::read_to_string(dir.join("kek.keyring")).unwrap();
    binding.lines().find_map(|line| line.strip_prefix("user=")).unwrap().to_owned()
}

#[test]
fn mock_keyring_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = mock_store();
    let kek = OsKeyringKek::with_store(dir.path(), "mock", Arc::clone(&store));

    let created = kek.load_or_create().unwrap();
    let loaded =
        OsKeyringKek::with_store(dir.path(), "mock", Arc::clone(&store)).load_or_create().unwrap();

    assert_eq!(*created, *loaded);
    let binding = fs::read_to_string(kek.binding_path()).unwrap();
    assert!(binding.starts_with("backend=mock\nuser=store-"), "{binding}");
    let user = bound_user(dir.path());
    let entry = Entry::new_in_store(&store, KEYRING_SERVICE, &user).unwrap();
    assert_eq!(entry.get_secret().unwrap(), created.as_slice());
    assert!(!dir.path().join("kek").exists(), "a file KEK was written beside the keyring one");
}

#[test]
fn each_folder_gets_its_own_entry() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let store = mock_store();

    let first_kek = OsKeyringKek::with_store(first.path(), "mock", Arc::clone(&store))
        .load_or_create()
        .unwrap();
    let second_kek = OsKeyringKek::with_store(second.path(), "mock", Arc::clone(&store))
        .load_or_create()
        .unwrap();

    assert_ne!(bound_user(first.path()), bound_user(second.path()));
    assert_ne!(*first_kek, *second_kek);
}

#[test]
fn missing_entry_fails_without_new_kek() {
    let dir = tempfile::tempdir().unwrap();
    let store = mock_store();
    let kek = OsKeyringKek::with_store(dir.path(), "mock", Arc::clone(&store));
    kek.load_or_create().unwrap();
    let user = bound_user(dir.path());
    Entry::new_in_store(&store, KEYRING_SERVICE, &user).unwrap().delete_credential().unwrap();

    let error = kek.load_or_create().unwrap_err();

    assert!(
        matches!(&error, KeyStoreError::KeyringEntryMissing { user: missing, .. } if *missing == user),
        "{error}"
    );
    assert!(error.to_string().contains("kek.keyring"), "{error}");
    let entry = Entry::new_in_store(&store, KEYRING_SERVICE, &user).unwrap();
    assert!(
        matches!(entry.get_secret(), Err(keyring_core::Error::NoEntry)),
        "a new KEK was stored"
    );
}

#[test]
fn entry_of_wrong_length_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = mock_store();
    let kek = OsKeyringKek::with_store(dir.path(), "mock", Arc::clone(&store));
    kek.load_or_create().unwrap();
    let user = bound_user(dir.path());
    Entry::new_in_store(&store, KEYRING_SERVICE, &user).unwrap().set_secret(&[1; 16]).unwrap();

    let error = kek.load_or_create().unwrap_err();

    assert!(matches!(error, KeyStoreError::InvalidKeyringEntry { len: 16, .. }), "{error}");
}

#[test]
fn binding_for_other_backend_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    OsKeyringKek::with_store(dir.path(), "mock", mock_store()).load_or_create().unwrap();

    let error = OsKeyringKek::with_store(dir.path(), "other-mock", mock_store())
        .load_or_create()
        .unwrap_err();

    assert!(matches!(error, KeyStoreError::InvalidBinding { .. }), "{error}");
    assert!(error.to_string().contains("mock"), "{error}");
}

#[test]
fn store_opens_with_keyring_kek() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = mock_store();
    let kek = || Box::new(OsKeyringKek::with_store(dir.path(), "mock", Arc::clone(&keyring)));

    let store = SealedKeyStore::open(dir.path(), kek()).unwrap();
    store.put("server-signing", b"signing key").unwrap();
    drop(store);
    let reopened = SealedKeyStore::open(dir.path(), kek()).unwrap();

    assert_eq!(reopened.current("server-signing").unwrap().unwrap().1.as_slice(), b"signing key");
    assert!(format!("{:?}", kek()).contains("mock"));
}

/// Deletes the kernel keyring entry that a test created, so repeated runs do
/// not pile up entries in the user's persistent keyring.
#[cfg(target_os = "linux")]
fn delete_keyutils_entry(dir: &Path) {
    let store: Arc<CredentialStore> = linux_keyutils_keyring_store::Store::new().unwrap();
    let user = bound_user(dir);
    let entry = Entry::new_in_store(&store, KEYRING_SERVICE, &user).unwrap();
    if let Err(error) = entry.delete_credential() {
        eprintln!("failed to delete test keyring entry {user}: {error}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn kernel_keyring_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let kek = OsKeyringKek::kernel_keyutils(dir.path());
    if let Err(error) = kek.probe() {
        // Seccomp profiles of some container runtimes block the keyctl calls.
        eprintln!("skipping: the kernel keyring is not reachable here: {error}");
        return;
    }

    let created = kek.load_or_create().unwrap();
    let loaded = OsKeyringKek::kernel_keyutils(dir.path()).load_or_create();
    let through_default = default_kek(dir.path());
    let store = SealedKeyStore::open(dir.path(), through_default);
    delete_keyutils_entry(dir.path());
    let after_delete = OsKeyringKek::kernel_keyutils(dir.path()).load_or_create();

    assert_eq!(*created, *loaded.unwrap());
    assert_eq!(kek.name(), "kernel-keyutils");
    assert_eq!(store.unwrap().put("tls-leaf", b"leaf").unwrap().number(), 1);
    assert!(
        matches!(after_delete, Err(KeyStoreError::KeyringEntryMissing { .. })),
        "{after_delete:?}"
    );
}
