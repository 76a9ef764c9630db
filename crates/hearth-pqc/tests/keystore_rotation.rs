//! Sealed key store: scheduled and forced rotation keep old versions readable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use hearth_pqc::keystore::{FileKek, KeyStoreError, KeyVersion, SealedKeyStore, Zeroizing};

const HOUR: Duration = Duration::from_secs(3600);
const YEAR: Duration = Duration::from_secs(365 * 86_400);

fn open(dir: &std::path::Path) -> SealedKeyStore {
    SealedKeyStore::open(dir, Box::new(FileKek::in_dir(dir))).unwrap()
}

fn secret(bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
    Ok(Zeroizing::new(bytes.to_vec()))
}

#[test]
fn scheduled_rotation_skips_young_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put("server-signing", b"one").unwrap();
    let calls = AtomicUsize::new(0);

    let rotated = store
        .rotate_if_due("server-signing", HOUR, false, || {
            calls.fetch_add(1, Ordering::SeqCst);
            secret(b"two")
        })
        .unwrap();

    assert_eq!(rotated, None);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "make ran although no rotation was due");
    assert_eq!(store.versions("server-signing").unwrap().len(), 1);
}

#[test]
fn scheduled_rotation_replaces_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put("server-signing", b"one").unwrap();
    // Generous margins: on a loaded machine two calls can be far apart. The
    // unit tests beside the store check the boundary to the millisecond.
    let max_age = Duration::from_secs(1);

    let too_early = store.rotate_if_due("server-signing", max_age, false, || secret(b"x")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let due = store.rotate_if_due("server-signing", max_age, false, || secret(b"two")).unwrap();
    let right_after =
        store.rotate_if_due("server-signing", max_age, false, || secret(b"x")).unwrap();

    assert_eq!(too_early, None);
    assert_eq!(due, Some(KeyVersion::new(2)));
    assert_eq!(right_after, None, "the new version was rotated again at once");
    assert_eq!(store.current("server-signing").unwrap().unwrap().1.as_slice(), b"two");
}

#[test]
fn zero_max_age_is_always_due() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put("tls-leaf", b"one").unwrap();

    let rotated =
        store.rotate_if_due("tls-leaf", Duration::ZERO, false, || secret(b"two")).unwrap();

    assert_eq!(rotated, Some(KeyVersion::new(2)));
}

#[test]
fn forced_rotation_always_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put("server-signing", b"v1").unwrap();

    let rotations: Vec<_> = [b"v2", b"v3", b"v4"]
        .into_iter()
        .map(|bytes| store.rotate_if_due("server-signing", YEAR, true, || secret(bytes)).unwrap())
        .collect();

    assert_eq!(
        rotations,
        [Some(KeyVersion::new(2)), Some(KeyVersion::new(3)), Some(KeyVersion::new(4))]
    );
    assert_eq!(store.current("server-signing").unwrap().unwrap().1.as_slice(), b"v4");
}

#[test]
fn rotation_keeps_old_versions_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put("server-signing", b"v1").unwrap();
    store.rotate_if_due("server-signing", YEAR, true, || secret(b"v2")).unwrap();
    store.rotate_if_due("server-signing", Duration::ZERO, false, || secret(b"v3")).unwrap();
    drop(store);

    let store = open(dir.path());
    let versions = store.versions("server-signing").unwrap();

    for (number, expected) in [(1, b"v1"), (2, b"v2"), (3, b"v3")] {
        let secret = store.get("server-signing", KeyVersion::new(number)).unwrap().unwrap();
        assert_eq!(secret.as_slice(), expected, "version {number}");
    }
    let retired: Vec<bool> = versions.iter().map(|info| info.retired_at.is_some()).collect();
    assert_eq!(retired, [true, true, false]);
    assert!(versions[2].current);
}

#[test]
fn first_rotation_creates_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());

    let rotated = store.rotate_if_due("tls-leaf", YEAR, false, || secret(b"first")).unwrap();

    assert_eq!(rotated, Some(KeyVersion::new(1)));
    assert_eq!(store.current("tls-leaf").unwrap().unwrap().1.as_slice(), b"first");
}

#[test]
fn failed_make_creates_no_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put("tls-leaf", b"one").unwrap();

    let result = store.rotate_if_due("tls-leaf", YEAR, true, || {
        Err(KeyStoreError::InvalidSecret { name: "tls-leaf".to_owned(), len: 0, max: 1 })
    });

    assert!(matches!(result, Err(KeyStoreError::InvalidSecret { .. })));
    assert_eq!(store.versions("tls-leaf").unwrap().len(), 1);
    assert_eq!(store.current("tls-leaf").unwrap().unwrap().1.as_slice(), b"one");
}

#[test]
fn empty_new_secret_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put("tls-leaf", b"one").unwrap();

    let result = store.rotate_if_due("tls-leaf", YEAR, true, || secret(b""));

    assert!(matches!(result, Err(KeyStoreError::InvalidSecret { len: 0, .. })));
    assert_eq!(store.versions("tls-leaf").unwrap().len(), 1);
}

#[test]
fn concurrent_scheduled_rotation_rotates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().to_owned());
    open(&path).put("tls-leaf", b"old").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let barrier = Arc::new(Barrier::new(6));

    let handles: Vec<_> = (0..6)
        .map(|_| {
            let path = Arc::clone(&path);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let store = open(&path);
                barrier.wait();
                store
                    .rotate_if_due("tls-leaf", Duration::from_secs(1), false, || secret(b"new"))
                    .unwrap()
            })
        })
        .collect();
    let rotated: Vec<_> = handles.into_iter().filter_map(|handle| handle.join().unwrap()).collect();

    assert_eq!(rotated, [KeyVersion::new(2)], "expected exactly one rotation");
    assert_eq!(open(&path).versions("tls-leaf").unwrap().len(), 2);
}
