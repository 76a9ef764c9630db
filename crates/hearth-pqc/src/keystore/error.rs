use std::path::PathBuf;

/// Errors from the sealed key store and its KEK sources.
///
/// No variant carries secret bytes: keyring errors that could hold a secret
/// are cleared before they are stored here (see `os_keyring::scrub`).
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// A file or folder of the store could not be read, written or created.
    #[error("failed to {action} {path}: {source}")]
    Io {
        /// The operation that failed, such as "read" or "create".
        action: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A key name is not 1 to 64 characters from `a-z`, `0-9` and `-`.
    #[error(
        "invalid key name {name:?}: {reason}; expected 1 to 64 characters from a-z, 0-9 and '-'"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
        /// The rule the name breaks.
        reason: String,
    },

    /// A secret to seal is empty or larger than the store accepts.
    #[error("invalid secret for key {name:?}: {len} bytes, expected 1 to {max} bytes")]
    InvalidSecret {
        /// The key the secret was meant for.
        name: String,
        /// The secret's length in bytes.
        len: usize,
        /// The largest secret the store accepts, in bytes.
        max: usize,
    },

    /// A KEK file or keyring binding file can be read or written by group or others.
    #[error(
        "{path} has mode {mode:04o}, which lets other users read or replace it: run \
         `chmod 600 {path}`, and if another user may have copied it, treat every key sealed \
         under this store's KEK as exposed"
    )]
    InsecurePermissions {
        /// The file with the loose mode.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// A KEK file does not contain exactly 32 bytes.
    #[error(
        "invalid KEK file {path}: {len} bytes, expected 32; restore the original from a \
         backup, because the sealed keys cannot be opened without it"
    )]
    InvalidKekFile {
        /// The KEK file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },

    /// The OS keyring cannot be reached: no Secret Service, no session bus, or no access.
    #[error(
        "OS keyring {backend} is unavailable: {source}; use the file KEK (FileKek) or start \
         and unlock the keyring service"
    )]
    KeyringUnavailable {
        /// The keyring backend, such as "secret-service".
        backend: &'static str,
        /// The error from the keyring store.
        #[source]
        source: keyring_core::Error,
    },

    /// Reading or writing the KEK entry in the OS keyring failed.
    #[error("OS keyring {backend} failed to {action} entry service=hearth user={user}: {source}")]
    Keyring {
        /// The keyring backend.
        backend: &'static str,
        /// The operation that failed, such as "read" or "store".
        action: &'static str,
        /// The entry's user field, which identifies the store's folder.
        user: String,
        /// The error from the keyring store.
        #[source]
        source: keyring_core::Error,
    },

    /// The OS keyring has no KEK entry for a store that is bound to it.
    #[error(
        "OS keyring {backend} has no KEK entry service=hearth user={user}, which {binding} \
         names: unlock or restore that keyring, because the sealed keys in this folder cannot \
         be opened without the entry"
    )]
    KeyringEntryMissing {
        /// The keyring backend.
        backend: &'static str,
        /// The entry's user field.
        user: String,
        /// The binding file that names the entry.
        binding: PathBuf,
    },

    /// An OS keyring entry contains a value that is not a 32-byte KEK.
    #[error(
        "OS keyring {backend} entry service=hearth user={user} holds {len} bytes, expected a \
         32-byte KEK; restore the entry from a backup"
    )]
    InvalidKeyringEntry {
        /// The keyring backend.
        backend: &'static str,
        /// The entry's user field.
        user: String,
        /// The length of the stored value in bytes.
        len: usize,
    },

    /// The file that binds a store's folder to an OS keyring entry is invalid.
    #[error("invalid keyring binding file {path}: {reason}")]
    InvalidBinding {
        /// The binding file.
        path: PathBuf,
        /// The problem with the file and the fix.
        reason: String,
    },

    /// A sealed file failed authentication: it was sealed under another KEK, or modified.
    #[error(
        "failed to decrypt {path}: the KEK from {kek} is not the one the file was sealed with, \
         or the file was modified; restore the matching KEK or the file from a backup"
    )]
    Decrypt {
        /// The sealed file.
        path: PathBuf,
        /// The name of the KEK source in use.
        kek: &'static str,
    },

    /// A sealed file is not in the sealed key format, or its header contradicts its file name.
    #[error("invalid sealed key file {path}: {reason}; restore it from a backup")]
    Malformed {
        /// The sealed file.
        path: PathBuf,
        /// The part of the format the file breaks.
        reason: String,
    },

    /// The KEK does not match the one the keys in the store's folder were sealed with.
    #[error(
        "the KEK from {kek} fails to open {check}, so either it is not the KEK the keys in {dir} \
         were sealed with or that file was modified; restore the original KEK, because keys \
         sealed under this one would not open together with the others"
    )]
    KekMismatch {
        /// The name of the KEK source in use.
        kek: &'static str,
        /// The store's folder.
        dir: PathBuf,
        /// The KEK check file that failed to open.
        check: PathBuf,
    },

    /// The store's folder holds sealed keys, but the KEK source has no KEK.
    #[error(
        "{dir} holds sealed keys, but the KEK from {kek} is missing (no `kek` file, or no OS \
         keyring entry named by a `kek.keyring` file): restore the original KEK; no new one was \
         created, because it could open none of these keys"
    )]
    KekMissing {
        /// The name of the KEK source in use.
        kek: &'static str,
        /// The store's folder.
        dir: PathBuf,
    },

    /// The operating system's random number generator failed.
    #[error("failed to read random bytes from the operating system: {source}")]
    Random {
        /// The error from getrandom.
        #[source]
        source: getrandom::Error,
    },

    /// The system clock reads a time before 1970-01-01.
    #[error("system clock reads a time before 1970-01-01; set the clock and retry")]
    ClockBeforeEpoch,

    /// A key has reached the largest version number.
    #[error("key {name:?} has reached the maximum version {max}; store it under a new name")]
    VersionOverflow {
        /// The key name.
        name: String,
        /// The largest version number.
        max: u32,
    },
}
