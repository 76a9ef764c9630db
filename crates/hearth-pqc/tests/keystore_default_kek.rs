//! Sealed key store: without a reachable Secret Service, `default_kek` falls
//! back to the KEK file and logs that choice.
//!
//! This binary points D-Bus at a socket that does not exist, so the fallback
//! runs even on a developer's desktop, and no test here touches a real keyring.

use std::io;
use std::sync::{Arc, Mutex, Once};

use hearth_pqc::keystore::{KekSource, KeyStoreError, OsKeyringKek, SealedKeyStore, default_kek};

fn without_session_bus() {
    static SET: Once = Once::new();
    SET.call_once(|| {
        // SAFETY: set_var races only with other threads that read or write the
        // environment. Every test in this binary calls this function before it
        // does anything else, and `Once` blocks the others until it returns.
        unsafe {
            std::env::set_var("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/hearth-test-bus");
        }
    });
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

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[test]
fn default_kek_logs_file_fallback() {
    without_session_bus();
    let dir = tempfile::tempdir().unwrap();
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();

    let kek = tracing::subscriber::with_default(subscriber, || default_kek(dir.path()));
    let store = SealedKeyStore::open(dir.path(), kek);

    let text = logs.text();
    assert!(text.contains("no OS keyring available"), "{text}");
    assert!(text.contains("key store KEK source chosen"), "{text}");
    assert!(text.contains("kek=\"file\"") || text.contains("kek=file"), "{text}");
    store.unwrap().put("tls-leaf", b"leaf").unwrap();
    assert!(dir.path().join("kek").exists(), "the fallback did not create the KEK file");
    assert_eq!(default_kek(dir.path()).name(), "file");
}

#[test]
fn secret_service_without_bus_is_unavailable() {
    without_session_bus();
    let dir = tempfile::tempdir().unwrap();
    let kek = OsKeyringKek::secret_service(dir.path());

    let probed = kek.probe();
    let loaded = kek.load_or_create();

    assert!(matches!(probed, Err(KeyStoreError::KeyringUnavailable { .. })), "{probed:?}");
    let error = loaded.unwrap_err();
    assert!(
        matches!(error, KeyStoreError::KeyringUnavailable { backend: "secret-service", .. }),
        "{error}"
    );
    assert!(error.to_string().contains("FileKek"), "{error}");
    assert!(!kek.binding_path().exists(), "a binding was written although the keyring failed");
}
