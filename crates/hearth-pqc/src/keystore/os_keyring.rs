//! The KEK in the operating system's keyring, through keyring-core stores.
//!
//! The keyring crate's 4.x line moved its backends into separate store
//! crates behind the keyring-core API; this module uses those directly so it
//! can pick the backend per call instead of one process-wide default.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};
use zeroize::{Zeroize, Zeroizing};

use super::files;
use super::{BINDING_FILE, KekSource, KeyStoreError};

/// The keyring entry's service field for every Hearth store.
pub const KEYRING_SERVICE: &str = "hearth";

/// Backend name of the freedesktop.org Secret Service (GNOME Keyring, KWallet).
const SECRET_SERVICE: &str = "secret-service";
/// Backend name of the Linux kernel key retention service.
const KERNEL_KEYUTILS: &str = "kernel-keyutils";
/// The largest binding file read; real ones are under 100 bytes.
const MAX_BINDING_LEN: u64 = 4096;
/// The user field of the entry that [`OsKeyringKek::probe`] reads. It is never
/// written, so a probe finds no entry on a working keyring.
const PROBE_USER: &str = "probe";

/// A KEK kept as an entry (service "hearth", user = the store's id) in an OS
/// keyring.
///
/// A store's folder is bound to its entry by the file `kek.keyring` in the
/// folder, which names the backend and the entry's user field (a random id
/// made on first use). Once bound, a missing entry is an error rather than a
/// reason to create a new KEK, because a new KEK would leave the existing
/// sealed keys unreadable.
pub struct OsKeyringKek {
    backend: &'static str,
    connector: Connector,
    binding: PathBuf,
}

/// How to reach the keyring store. Connecting is deferred to first use, so
/// the constructors do no I/O.
enum Connector {
    Open(fn() -> keyring_core::Result<Arc<CredentialStore>>),
    Store(Arc<CredentialStore>),
}

/// The contents of a `kek.keyring` file.
struct Binding {
    backend: String,
    user: String,
}

impl OsKeyringKek {
    /// Creates a source for the store in `dir` that keeps the KEK in the
    /// Secret Service on the session D-Bus.
    ///
    /// It needs a desktop session with GNOME Keyring or KWallet; a headless
    /// daemon has neither, and loading then fails with
    /// [`KeyStoreError::KeyringUnavailable`]. Calls block while the keyring
    /// prompts the user to unlock it, so async callers should use
    /// `spawn_blocking`.
    #[cfg(target_os = "linux")]
    pub fn secret_service(dir: &Path) -> Self {
        fn open() -> keyring_core::Result<Arc<CredentialStore>> {
            let store: Arc<CredentialStore> = zbus_secret_service_keyring_store::Store::new()?;
            Ok(store)
        }
        Self::with_connector(dir, SECRET_SERVICE, Connector::Open(open))
    }

    /// Creates a source for the store in `dir` that keeps the KEK in the Linux
    /// kernel key retention service (keyutils).
    ///
    /// Entries live in kernel memory only: they vanish at reboot, and after the
    /// per-user persistent keyring's expiry without use
    /// (`/proc/sys/kernel/keys/persistent_keyring_expiry`, three days by
    /// default). After that the store fails to open with
    /// [`KeyStoreError::KeyringEntryMissing`] until the operator puts the KEK
    /// back, so use this only where the KEK is provisioned from elsewhere at
    /// each boot. [`default_kek`](super::default_kek) never picks it.
    #[cfg(target_os = "linux")]
    pub fn kernel_keyutils(dir: &Path) -> Self {
        fn open() -> keyring_core::Result<Arc<CredentialStore>> {
            let store: Arc<CredentialStore> = linux_keyutils_keyring_store::Store::new()?;
            Ok(store)
        }
        Self::with_connector(dir, KERNEL_KEYUTILS, Connector::Open(open))
    }

    /// Creates a source for the store in `dir` that keeps the KEK in any
    /// keyring-core store, logged and bound under the name `backend`. Other
    /// platforms' keyrings and test stores plug in here.
    pub fn with_store(dir: &Path, backend: &'static str, store: Arc<CredentialStore>) -> Self {
        Self::with_connector(dir, backend, Connector::Store(store))
    }

    fn with_connector(dir: &Path, backend: &'static str, connector: Connector) -> Self {
        Self { backend, connector, binding: dir.join(BINDING_FILE) }
    }

    /// Checks that the keyring is reachable by reading an entry that never exists.
    pub fn probe(&self) -> Result<(), KeyStoreError> {
        let store = self.connect()?;
        let entry = self.entry(&store, PROBE_USER)?;

        match entry.get_secret() {
            Ok(mut unexpected) => {
                unexpected.zeroize();
                Ok(())
            }
            Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(source) => Err(self.keyring_error("read", PROBE_USER, source)),
        }
    }

    /// Returns the path of the binding file `kek.keyring`, which ties the
    /// store's folder to its entry.
    pub fn binding_path(&self) -> &Path {
        &self.binding
    }

    fn connect(&self) -> Result<Arc<CredentialStore>, KeyStoreError> {
        match &self.connector {
            Connector::Store(store) => Ok(Arc::clone(store)),
            Connector::Open(open) => open().map_err(|source| KeyStoreError::KeyringUnavailable {
                backend: self.backend,
                source: scrub(source),
            }),
        }
    }

    fn entry(&self, store: &Arc<CredentialStore>, user: &str) -> Result<Entry, KeyStoreError> {
        Entry::new_in_store(store, KEYRING_SERVICE, user)
            .map_err(|source| self.keyring_error("open", user, source))
    }

    /// Reads the KEK entry for `user`, or `None` when the keyring has none.
    fn read_entry(
        &self,
        store: &Arc<CredentialStore>,
        user: &str,
    ) -> Result<Option<Zeroizing<[u8; 32]>>, KeyStoreError> {
        let entry = self.entry(store, user)?;
        let secret = match entry.get_secret() {
            Ok(secret) => Zeroizing::new(secret),
            Err(keyring_core::Error::NoEntry) => return Ok(None),
            Err(source) => return Err(self.keyring_error("read", user, source)),
        };

        let kek: Zeroizing<[u8; 32]> = match <[u8; 32]>::try_from(secret.as_slice()) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(_) => {
                return Err(KeyStoreError::InvalidKeyringEntry {
                    backend: self.backend,
                    user: user.to_owned(),
                    len: secret.len(),
                });
            }
        };
        Ok(Some(kek))
    }

    /// Creates a KEK entry under a new user id and binds the folder to it.
    /// Returns `None` when another process bound the folder first.
    fn create_entry(
        &self,
        store: &Arc<CredentialStore>,
    ) -> Result<Option<Zeroizing<[u8; 32]>>, KeyStoreError> {
        let user = format!("store-{}", files::random_hex(16)?);
        let kek = files::random_key()?;

        // The entry goes in before the binding: a crash in between leaves an
        // unused entry, never a binding that points at nothing.
        let entry = self.entry(store, &user)?;
        entry.set_secret(&kek[..]).map_err(|source| self.keyring_error("store", &user, source))?;
        match self.read_entry(store, &user)? {
            Some(stored) if stored == kek => {}
            _ => {
                let reason = "the entry read back differs from the KEK just stored".to_owned();
                return Err(self.keyring_error(
                    "verify",
                    &user,
                    keyring_core::Error::BadStoreFormat(reason),
                ));
            }
        }

        files::create_private_dir(files::parent_dir(&self.binding))?;
        let contents = format!("backend={}\nuser={user}\n", self.backend);
        if !files::create_file_once(&self.binding, contents.as_bytes())? {
            if let Err(err) = entry.delete_credential() {
                tracing::warn!(backend = self.backend, user = %user, error = %scrub(err),
                    "failed to delete unused keyring entry");
            }
            return Ok(None);
        }

        tracing::info!(backend = self.backend, user = %user, binding = %self.binding.display(),
            "created KEK in OS keyring");
        Ok(Some(kek))
    }

    /// Loads the KEK for an existing binding.
    fn load_bound(
        &self,
        store: &Arc<CredentialStore>,
        binding: &Binding,
    ) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
        if binding.backend != self.backend {
            return Err(KeyStoreError::InvalidBinding {
                path: self.binding.clone(),
                reason: format!(
                    "it binds this folder to the {} keyring, but {} was requested; open the \
                     store with that backend",
                    binding.backend, self.backend
                ),
            });
        }

        self.read_entry(store, &binding.user)?.ok_or_else(|| KeyStoreError::KeyringEntryMissing {
            backend: self.backend,
            user: binding.user.clone(),
            binding: self.binding.clone(),
        })
    }

    fn keyring_error(
        &self,
        action: &'static str,
        user: &str,
        source: keyring_core::Error,
    ) -> KeyStoreError {
        let source = scrub(source);
        match source {
            keyring_core::Error::NoStorageAccess(_) | keyring_core::Error::NoDefaultStore => {
                KeyStoreError::KeyringUnavailable { backend: self.backend, source }
            }
            source => KeyStoreError::Keyring {
                backend: self.backend,
                action,
                user: user.to_owned(),
                source,
            },
        }
    }
}

impl KekSource for OsKeyringKek {
    fn name(&self) -> &'static str {
        self.backend
    }

    /// Loads the KEK entry named by the folder's binding file, or creates the
    /// entry and the binding file on first use.
    fn load_or_create(&self) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
        let store = self.connect()?;

        if let Some(binding) = read_binding(&self.binding)? {
            return self.load_bound(&store, &binding);
        }
        if let Some(kek) = self.create_entry(&store)? {
            return Ok(kek);
        }

        // Another process bound the folder between the read and the link.
        let binding =
            read_binding(&self.binding)?.ok_or_else(|| KeyStoreError::InvalidBinding {
                path: self.binding.clone(),
                reason: "it vanished right after another process created it".to_owned(),
            })?;
        self.load_bound(&store, &binding)
    }

    /// Loads the KEK that the binding file names; `None` when there is no
    /// binding file, without connecting to the keyring.
    fn load_existing(&self) -> Result<Option<Zeroizing<[u8; 32]>>, KeyStoreError> {
        let Some(binding) = read_binding(&self.binding)? else {
            return Ok(None);
        };
        let store = self.connect()?;
        self.load_bound(&store, &binding).map(Some)
    }
}

impl fmt::Debug for OsKeyringKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OsKeyringKek")
            .field("backend", &self.backend)
            .field("binding", &self.binding)
            .finish_non_exhaustive()
    }
}

/// Returns the keyring source named by the binding file in `dir`, or the
/// reason none can be built.
pub(super) fn bound_backend(dir: &Path) -> Result<OsKeyringKek, String> {
    let path = dir.join(BINDING_FILE);
    let binding = match read_binding(&path) {
        Ok(Some(binding)) => binding,
        Ok(None) => return Err("the file vanished while it was being read".to_owned()),
        Err(KeyStoreError::InvalidBinding { reason, .. }) => return Err(reason),
        Err(err) => return Err(err.to_string()),
    };

    match binding.backend.as_str() {
        #[cfg(target_os = "linux")]
        SECRET_SERVICE => Ok(OsKeyringKek::secret_service(dir)),
        #[cfg(target_os = "linux")]
        KERNEL_KEYUTILS => Ok(OsKeyringKek::kernel_keyutils(dir)),
        other => Err(format!(
            "it names keyring backend {other:?}, which this build of Hearth does not support; \
             open the store where it was created, with that backend"
        )),
    }
}

/// Reads a binding file: `backend=NAME` and `user=ID` lines.
fn read_binding(path: &Path) -> Result<Option<Binding>, KeyStoreError> {
    let invalid = |reason: String| KeyStoreError::InvalidBinding { path: path.to_owned(), reason };

    let too_long = |len| invalid(format!("{len} bytes, expected at most {MAX_BINDING_LEN}"));
    let Some(bytes) = files::read_limited(path, MAX_BINDING_LEN, too_long)? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes).map_err(|_| invalid("not UTF-8".to_owned()))?;

    let mut backend = None;
    let mut user = None;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("backend", value)) => backend = Some(value.to_owned()),
            Some(("user", value)) => user = Some(value.to_owned()),
            _ => return Err(invalid(format!("unexpected line {line:?}"))),
        }
    }

    match (backend, user) {
        (Some(backend), Some(user)) if !user.is_empty() => Ok(Some(Binding { backend, user })),
        _ => Err(invalid(
            "expected a backend=NAME line and a user=ID line; restore the file from a backup"
                .to_owned(),
        )),
    }
}

/// Clears secret bytes that keyring-core errors may carry, so that formatting
/// a [`KeyStoreError`] with `{:?}` cannot print a KEK.
fn scrub(error: keyring_core::Error) -> keyring_core::Error {
    match error {
        keyring_core::Error::BadEncoding(mut bytes) => {
            bytes.zeroize();
            keyring_core::Error::BadEncoding(Vec::new())
        }
        keyring_core::Error::BadDataFormat(mut bytes, source) => {
            bytes.zeroize();
            keyring_core::Error::BadDataFormat(Vec::new(), source)
        }
        other => other,
    }
}
