//! Sealed key store: the file KEK, and what happens to sealed files that meet
//! another KEK.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use hearth_pqc::keystore::{
    FileKek, KekSource, KeyStoreError, KeyVersion, SealedKeyStore, Zeroizing, default_kek,
};

/// A KEK source that returns a fixed key, standing in for a second machine's KEK.
struct FixedKek([u8; 32]);

impl KekSource for FixedKek {
    fn name(&self) -> &'static str {
        "fixed"
    }

    fn load_or_create(&self) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
        Ok(Zeroizing::new(self.0))
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn open_with_file_kek(dir: &Path) -> Result<SealedKeyStore, KeyStoreError> {
    SealedKeyStore::open(dir, Box::new(FileKek::in_dir(dir)))
}

#[test]
fn file_kek_is_created_with_mode_0600() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("keys");
    let kek = FileKek::in_dir(&dir);

    let key = kek.load_or_create().unwrap();

    assert_eq!(kek.path(), dir.join("kek"));
    assert_eq!(mode(kek.path()), 0o600);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(fs::read(kek.path()).unwrap(), key.as_slice());
    assert_ne!(*key, [0u8; 32]);
}

#[test]
fn file_kek_reload_returns_same_key() {
    let dir = tempfile::tempdir().unwrap();

    let first = FileKek::in_dir(dir.path()).load_or_create().unwrap();
    let second = FileKek::in_dir(dir.path()).load_or_create().unwrap();

    assert_eq!(*first, *second);
}

#[test]
fn file_kek_readable_by_others_is_rejected() {
    for loose_mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o660] {
        let dir = tempfile::tempdir().unwrap();
        let kek = FileKek::in_dir(dir.path());
        kek.load_or_create().unwrap();
        let before = fs::read(kek.path()).unwrap();
        fs::set_permissions(kek.path(), fs::Permissions::from_mode(loose_mode)).unwrap();

        let error = kek.load_or_create().unwrap_err();

        assert!(
            matches!(&error, KeyStoreError::InsecurePermissions { path, mode } if path == kek.path() && *mode == loose_mode),
            "mode {loose_mode:o}: {error}"
        );
        let message = error.to_string();
        assert!(message.contains(&format!("{loose_mode:04o}")), "{message}");
        assert!(message.contains("chmod 600"), "{message}");
        assert_eq!(fs::read(kek.path()).unwrap(), before, "the rejected file was changed");
        assert_eq!(mode(kek.path()), loose_mode, "the rejected file's mode was changed");
    }
}

#[test]
fn store_with_loose_kek_file_fails_to_open() {
    let dir = tempfile::tempdir().unwrap();
    open_with_file_kek(dir.path()).unwrap();
    fs::set_permissions(dir.path().join("kek"), fs::Permissions::from_mode(0o644)).unwrap();

    let result = open_with_file_kek(dir.path());

    assert!(matches!(result, Err(KeyStoreError::InsecurePermissions { .. })));
}

#[test]
fn file_kek_of_wrong_length_is_rejected() {
    for len in [0usize, 16, 31, 33, 64] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        fs::write(&path, vec![7u8; len]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

        let error = FileKek::new(&path).load_or_create().unwrap_err();

        assert!(
            matches!(error, KeyStoreError::InvalidKekFile { len: found, .. } if found == len as u64),
            "length {len}: {error}"
        );
        assert_eq!(fs::read(&path).unwrap().len(), len, "the rejected file was replaced");
    }
}

#[test]
fn concurrent_file_kek_creation_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("kek"));

    let handles: Vec<_> = (0..8)
        .map(|_| {
            let path = Arc::clone(&path);
            std::thread::spawn(move || *FileKek::new(path.as_path()).load_or_create().unwrap())
        })
        .collect();
    let keys: Vec<[u8; 32]> = handles.into_iter().map(|handle| handle.join().unwrap()).collect();

    assert!(keys.iter().all(|key| *key == keys[0]), "racing creators got different KEKs");
    assert_eq!(fs::read(path.as_path()).unwrap(), keys[0]);
}

#[test]
fn copied_file_fails_without_kek() {
    let original = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(original.path()).unwrap();
    store.put("server-signing", b"signing key").unwrap();
    let copy = tempfile::tempdir().unwrap();
    let copied = copy.path().join("server-signing.v1.sealed");

    // Only the sealed file travels, as in a backup that leaves out `kek`.
    fs::copy(original.path().join("server-signing.v1.sealed"), &copied).unwrap();
    let error = open_with_file_kek(copy.path()).unwrap_err();

    assert!(matches!(&error, KeyStoreError::KekMissing { kek: "file", .. }), "{error}");
    assert!(error.to_string().contains(&copy.path().display().to_string()), "{error}");
    assert!(!copy.path().join("kek").exists(), "a new KEK file was created");
}

#[test]
fn missing_kek_file_is_not_recreated_beside_sealed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(dir.path()).unwrap();
    store.put("server-signing", b"signing key").unwrap();
    drop(store);
    fs::remove_file(dir.path().join("kek")).unwrap();
    let listing = |dir: &Path| {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    };
    let before = listing(dir.path());

    let error = open_with_file_kek(dir.path()).unwrap_err();

    assert!(matches!(&error, KeyStoreError::KekMissing { .. }), "{error}");
    assert!(error.to_string().contains("restore the original KEK"), "{error}");
    assert_eq!(listing(dir.path()), before, "opening changed the folder");
}

#[test]
fn copied_file_fails_in_opened_store() {
    let original = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(original.path()).unwrap();
    store.put("server-signing", b"signing key").unwrap();
    let copy = tempfile::tempdir().unwrap();
    let other = open_with_file_kek(copy.path()).unwrap();
    let copied = copy.path().join("server-signing.v1.sealed");

    fs::copy(original.path().join("server-signing.v1.sealed"), &copied).unwrap();
    let error = other.get("server-signing", KeyVersion::new(1)).unwrap_err();

    assert!(matches!(&error, KeyStoreError::Decrypt { path, .. } if *path == copied), "{error}");
    assert!(error.to_string().contains(&copied.display().to_string()), "{error}");
    assert!(matches!(other.current("server-signing"), Err(KeyStoreError::Decrypt { .. })));
}

#[test]
fn different_kek_fails_the_same_way() {
    let original = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(original.path()).unwrap();
    store.put("server-signing", b"signing key").unwrap();
    let copy = tempfile::tempdir().unwrap();
    let other = SealedKeyStore::open(copy.path(), Box::new(FixedKek([9; 32]))).unwrap();
    let copied = copy.path().join("server-signing.v1.sealed");

    fs::copy(original.path().join("server-signing.v1.sealed"), &copied).unwrap();
    let error = other.get("server-signing", KeyVersion::new(1)).unwrap_err();

    assert!(
        matches!(&error, KeyStoreError::Decrypt { path, kek: "fixed" } if *path == copied),
        "{error}"
    );
    assert!(error.to_string().contains(&copied.display().to_string()), "{error}");
}

#[test]
fn store_opened_with_different_kek_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(dir.path()).unwrap();
    store.put("server-signing", b"signing key").unwrap();
    drop(store);

    let error = SealedKeyStore::open(dir.path(), Box::new(FixedKek([9; 32]))).unwrap_err();

    let check = dir.path().join("kek.check");
    assert!(
        matches!(&error, KeyStoreError::KekMismatch { check: path, .. } if *path == check),
        "{error}"
    );
    assert!(error.to_string().contains("restore the original KEK"), "{error}");
    assert!(!dir.path().join("server-signing.v2.sealed").exists());
}

#[test]
fn missing_check_file_still_rejects_different_kek() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(dir.path()).unwrap();
    store.put("server-signing", b"signing key").unwrap();
    drop(store);
    fs::remove_file(dir.path().join("kek.check")).unwrap();

    let error = SealedKeyStore::open(dir.path(), Box::new(FixedKek([9; 32]))).unwrap_err();
    let reopened = open_with_file_kek(dir.path()).unwrap();

    assert!(matches!(error, KeyStoreError::KekMismatch { .. }), "{error}");
    assert_eq!(reopened.current("server-signing").unwrap().unwrap().1.as_slice(), b"signing key");
    assert!(dir.path().join("kek.check").exists(), "the right KEK did not recreate the check file");
}

#[test]
fn default_kek_keeps_existing_kek_file() {
    let dir = tempfile::tempdir().unwrap();
    FileKek::in_dir(dir.path()).load_or_create().unwrap();

    let kek = default_kek(dir.path());

    assert_eq!(kek.name(), "file");
}

#[test]
fn default_kek_follows_keyring_binding() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("kek.keyring"), "backend=kernel-keyutils\nuser=store-00\n").unwrap();

    let kek = default_kek(dir.path());

    assert_eq!(kek.name(), "kernel-keyutils");
    assert!(!dir.path().join("kek").exists());
}

#[test]
fn default_kek_with_unknown_binding_fails_to_load() {
    let dir = tempfile::tempdir().unwrap();
    let binding = dir.path().join("kek.keyring");
    fs::write(&binding, "backend=windows-credential-manager\nuser=store-00\n").unwrap();

    let kek = default_kek(dir.path());
    let error = kek.load_or_create().unwrap_err();

    assert!(
        matches!(&error, KeyStoreError::InvalidBinding { path, .. } if *path == binding),
        "{error}"
    );
    assert!(error.to_string().contains("windows-credential-manager"), "{error}");
    assert!(!dir.path().join("kek").exists(), "a file KEK was created beside the binding");
}

#[test]
fn default_kek_with_garbled_binding_fails_to_load() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("kek.keyring"), "nonsense\n").unwrap();

    let error = default_kek(dir.path()).load_or_create().unwrap_err();

    assert!(matches!(error, KeyStoreError::InvalidBinding { .. }), "{error}");
}
