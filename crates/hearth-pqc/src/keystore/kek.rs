//! Sources of the key-encryption key (KEK), and the choice of source for a
//! store's folder.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::file_kek::FileKek;
use super::os_keyring::{self, OsKeyringKek};
use super::{BINDING_FILE, KEK_FILE, KeyStoreError};

/// A place that keeps a store's 256-bit key-encryption key (KEK).
pub trait KekSource: Send + Sync {
    /// Short name for logs and errors, such as "file" or "secret-service".
    fn name(&self) -> &'static str;

    /// Loads the KEK, creating and storing a new random one on first use.
    fn load_or_create(&self) -> Result<Zeroizing<[u8; 32]>, KeyStoreError>;

    /// Loads the KEK without creating one; `None` when this source has none.
    /// The store calls this for a folder that already holds sealed keys, where
    /// a new KEK could open none of them.
    ///
    /// The default calls [`Self::load_or_create`], which suits sources that
    /// never create a key (a fixed test key). Sources that create one
    /// override it.
    fn load_existing(&self) -> Result<Option<Zeroizing<[u8; 32]>>, KeyStoreError> {
        self.load_or_create().map(Some)
    }
}

/// Picks the KEK source for the store in `dir` and logs the choice.
///
/// The choice is made once per folder and then kept, because a KEK left
/// behind in the other source would make every sealed key unreadable:
///
/// 1. A `kek` file in `dir` selects [`FileKek`].
/// 2. A `kek.keyring` binding file selects the OS keyring backend it names,
///    even when that keyring is unreachable now. Loading then fails with an
///    error that explains how to unlock it, instead of starting a new KEK.
/// 3. Otherwise, on Linux, the Secret Service is used when it is reachable
///    (a desktop session with GNOME Keyring or KWallet).
/// 4. Otherwise the `kek` file is created on first use.
///
/// The kernel keyutils keyring is never picked here because its entries
/// vanish at reboot (see [`OsKeyringKek::kernel_keyutils`]).
///
/// NOTE: on macOS and Windows no OS keyring backend is wired in yet, so the
/// file is used there.
pub fn default_kek(dir: &Path) -> Box<dyn KekSource> {
    let source = choose_kek(dir);
    tracing::info!(kek = source.name(), dir = %dir.display(), "key store KEK source chosen");
    source
}

fn choose_kek(dir: &Path) -> Box<dyn KekSource> {
    if dir.join(KEK_FILE).exists() {
        return Box::new(FileKek::in_dir(dir));
    }

    let binding = dir.join(BINDING_FILE);
    if binding.exists() {
        return match os_keyring::bound_backend(dir) {
            Ok(kek) => Box::new(kek),
            Err(reason) => Box::new(UnusableBinding { binding, reason }),
        };
    }

    #[cfg(target_os = "linux")]
    {
        let keyring = OsKeyringKek::secret_service(dir);
        match keyring.probe() {
            Ok(()) => return Box::new(keyring),
            Err(error) => tracing::info!(
                error = %error,
                "no OS keyring available; the KEK will be kept in a file beside the keys"
            ),
        }
    }

    Box::new(FileKek::in_dir(dir))
}

/// Stands in for a keyring binding that names no backend this build has, so
/// that loading fails with the reason instead of creating a second KEK.
struct UnusableBinding {
    binding: PathBuf,
    reason: String,
}

impl KekSource for UnusableBinding {
    fn name(&self) -> &'static str {
        "os-keyring"
    }

    fn load_or_create(&self) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
        Err(KeyStoreError::InvalidBinding {
            path: self.binding.clone(),
            reason: self.reason.clone(),
        })
    }
}
