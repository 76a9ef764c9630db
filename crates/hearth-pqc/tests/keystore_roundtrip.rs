//! Sealed key store: storing, reading and listing key versions in real folders.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use hearth_pqc::keystore::{FileKek, KeyStoreError, KeyVersion, SealedKeyStore, default_kek};

fn open_with_file_kek(dir: &Path) -> SealedKeyStore {
    SealedKeyStore::open(dir, Box::new(FileKek::in_dir(dir))).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn put_then_current_and_get_return_secret() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(dir.path());

    let version = store.put("server-signing", b"signing key bytes").unwrap();
    let (current_version, current_secret) = store.current("server-signing").unwrap().unwrap();
    let fetched = store.get("server-signing", version).unwrap().unwrap();

    assert_eq!(version, KeyVersion::new(1));
    assert_eq!(current_version, version);
    assert_eq!(current_secret.as_slice(), b"signing key bytes");
    assert_eq!(fetched.as_slice(), b"signing key bytes");
}

#[test]
fn new_put_becomes_current() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(dir.path());

    let first = store.put("tls-leaf", b"first").unwrap();
    let second = store.put("tls-leaf", b"second").unwrap();
    let (current_version, current_secret) = store.current("tls-leaf").unwrap().unwrap();

    assert_eq!(first, KeyVersion::new(1));
    assert_eq!(second, KeyVersion::new(2));
    assert_eq!(current_version, second);
    assert_eq!(current_secret.as_slice(), b"second");
    assert_eq!(store.get("tls-leaf", first).unwrap().unwrap().as_slice(), b"first");
}

#[test]
fn versions_lists_each_version_with_retirement() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(dir.path());
    for secret in [b"one", b"two", b"thr"] {
        store.put("tls-leaf", secret).unwrap();
    }

    let versions = store.versions("tls-leaf").unwrap();

    let numbers: Vec<u32> = versions.iter().map(|info| info.version.number()).collect();
    assert_eq!(numbers, [1, 2, 3]);
    let current: Vec<bool> = versions.iter().map(|info| info.current).collect();
    assert_eq!(current, [false, false, true]);
    assert_eq!(versions[0].retired_at, Some(versions[1].created_at));
    assert_eq!(versions[1].retired_at, Some(versions[2].created_at));
    assert_eq!(versions[2].retired_at, None);
    assert!(versions[0].created_at <= versions[1].created_at);
    assert!(versions[1].created_at <= versions[2].created_at);
}

#[test]
fn missing_key_and_version_return_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(dir.path());
    store.put("tls-leaf", b"one").unwrap();

    assert!(store.current("server-signing").unwrap().is_none());
    assert!(store.versions("server-signing").unwrap().is_empty());
    assert!(store.get("server-signing", KeyVersion::new(1)).unwrap().is_none());
    assert!(store.get("tls-leaf", KeyVersion::new(0)).unwrap().is_none());
    assert!(store.get("tls-leaf", KeyVersion::new(2)).unwrap().is_none());
}

#[test]
fn keys_keep_separate_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(dir.path());

    store.put("tls-leaf", b"leaf one").unwrap();
    store.put("tls-leaf", b"leaf two").unwrap();
    let signing = store.put("server-signing", b"signing one").unwrap();
    // A name that is a prefix of another must not pick up the other's files.
    store.put("tls", b"tls one").unwrap();

    assert_eq!(signing, KeyVersion::new(1));
    assert_eq!(store.versions("tls-leaf").unwrap().len(), 2);
    assert_eq!(store.versions("tls").unwrap().len(), 1);
    assert_eq!(store.current("tls").unwrap().unwrap().1.as_slice(), b"tls one");
    assert_eq!(store.current("server-signing").unwrap().unwrap().1.as_slice(), b"signing one");
}

#[test]
fn reopened_store_reads_existing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(dir.path());
    store.put("tls-leaf", b"one").unwrap();
    store.put("tls-leaf", b"two").unwrap();
    drop(store);

    let reopened = open_with_file_kek(dir.path());
    let through_default = SealedKeyStore::open(dir.path(), default_kek(dir.path())).unwrap();

    assert_eq!(reopened.current("tls-leaf").unwrap().unwrap().1.as_slice(), b"two");
    assert_eq!(reopened.get("tls-leaf", KeyVersion::new(1)).unwrap().unwrap().as_slice(), b"one");
    assert_eq!(through_default.current("tls-leaf").unwrap().unwrap().1.as_slice(), b"two");
}

#[test]
fn store_files_have_private_modes() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("keys");
    let store = open_with_file_kek(&dir);
    store.put("tls-leaf", b"one").unwrap();

    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("kek")), 0o600);
    assert_eq!(mode(&dir.join("kek.check")), 0o600);
    assert_eq!(mode(&dir.join("tls-leaf.v1.sealed")), 0o600);
}

#[test]
fn open_tightens_existing_folder_mode() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("keys");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();

    open_with_file_kek(&dir);

    assert_eq!(mode(&dir), 0o700);
}

/// Collects log output in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn open_warns_about_group_writable_folder() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("keys");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();

    tracing::subscriber::with_default(subscriber, || open_with_file_kek(&dir));

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert!(text.contains("key store folder was open to other users"), "{text}");
    assert!(text.contains("old_mode=0770"), "{text}");
    assert!(text.contains(&dir.display().to_string()), "{text}");
}

#[test]
fn sealed_file_does_not_contain_secret() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(dir.path());
    let secret = b"a recognisable secret that must not be stored in clear";

    store.put("tls-leaf", secret).unwrap();

    let file = fs::read(dir.path().join("tls-leaf.v1.sealed")).unwrap();
    assert!(!file.windows(secret.len()).any(|window| window == secret));
}

#[test]
fn empty_and_oversized_secrets_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(dir.path());

    let empty = store.put("tls-leaf", b"");
    let oversized = store.put("tls-leaf", &vec![1u8; (1 << 20) + 1]);
    let largest = store.put("tls-leaf", &vec![1u8; 1 << 20]);

    assert!(matches!(empty, Err(KeyStoreError::InvalidSecret { len: 0, .. })));
    assert!(matches!(oversized, Err(KeyStoreError::InvalidSecret { .. })));
    assert_eq!(largest.unwrap(), KeyVersion::new(1));
    assert_eq!(store.current("tls-leaf").unwrap().unwrap().1.len(), 1 << 20);
}

#[test]
fn crash_leftovers_do_not_hide_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(dir.path());
    store.put("tls-leaf", b"one").unwrap();
    drop(store);
    // What a writer killed before its link leaves behind: a partial temporary
    // file for the next version.
    let leftover = dir.path().join(".tls-leaf.v2.sealed.tmp-0123456789abcdef");
    fs::write(&leftover, b"HEARTHSK\x01\x01\x08tls-l").unwrap();

    let store = open_with_file_kek(dir.path());
    let (version, secret) = store.current("tls-leaf").unwrap().unwrap();
    let next = store.put("tls-leaf", b"two").unwrap();

    assert!(!leftover.exists(), "open did not remove the stale temporary file");
    assert_eq!(version, KeyVersion::new(1));
    assert_eq!(secret.as_slice(), b"one");
    assert_eq!(next, KeyVersion::new(2));
}

#[test]
fn concurrent_puts_get_distinct_versions() {
    let dir = tempfile::tempdir().unwrap();
    open_with_file_kek(dir.path());
    let shared = Arc::new(open_with_file_kek(dir.path()));

    let handles: Vec<_> = (0..8u8)
        .map(|index| {
            let shared = Arc::clone(&shared);
            // Half the writers use their own store, so the lock is shared
            // between open files and not only inside one store value.
            let own = (index % 2 == 0).then(|| open_with_file_kek(dir.path()));
            std::thread::spawn(move || {
                let store = own.as_ref().unwrap_or(&shared);
                store.put("tls-leaf", &[index + 1; 4]).unwrap()
            })
        })
        .collect();
    let mut versions: Vec<u32> =
        handles.into_iter().map(|handle| handle.join().unwrap().number()).collect();
    versions.sort_unstable();

    assert_eq!(versions, (1..=8).collect::<Vec<u32>>());
    for info in shared.versions("tls-leaf").unwrap() {
        let secret = shared.get("tls-leaf", info.version).unwrap().unwrap();
        assert_eq!(secret.len(), 4, "version {} unreadable", info.version);
    }
}

#[test]
fn debug_output_omits_kek_and_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with_file_kek(dir.path());
    store.put("tls-leaf", b"one").unwrap();
    let kek = fs::read(dir.path().join("kek")).unwrap();
    let kek_hex: String = kek.iter().map(|byte| format!("{byte:02x}")).collect();
    let kek_list = format!("{:?}", kek);

    let printed = format!("{store:?} {:?}", FileKek::in_dir(dir.path()));

    assert!(printed.contains("SealedKeyStore"));
    assert!(!printed.contains(&kek_hex));
    assert!(!printed.contains(&kek_list[1..kek_list.len() - 1]));
}
