//! Sealed key store: private keys encrypted at rest under a key-encryption
//! key (KEK).
//!
//! Each version of a key (the server's signing key, the TLS leaf key) is one
//! file `NAME.vVERSION.sealed` in the store's folder, sealed with
//! XChaCha20-Poly1305 under a 256-bit KEK. The file's header (magic, format
//! version, AEAD id, key name, key version, creation time) is the AEAD's
//! associated data (the `format` submodule documents the layout). Rotation
//! adds a version and keeps the old ones readable, so signatures made with
//! them still verify.
//!
//! The KEK comes from a [`KekSource`]. [`default_kek`] uses the OS keyring
//! ([`OsKeyringKek`], the Secret Service on a Linux desktop) where one is
//! reachable, and otherwise a file `kek` with mode 0600 in the store's folder
//! ([`FileKek`]).
//!
//! # What this protects against
//!
//! - A copy of the sealed files without the KEK cannot be opened
//!   (`keystore_kek::copied_file_fails_without_kek`). Such copies are backups
//!   or synced folders that leave out the `kek` file, and disk images when
//!   the KEK is in the OS keyring.
//! - Edits to a sealed file, including its name, version and time, and a file
//!   renamed over another version: opening fails with an error that names the
//!   file (`keystore_tamper`).
//! - A crash mid-write: files are written once, through a synced temporary
//!   file and a link, so earlier versions are never touched
//!   (`keystore_roundtrip::crash_leftovers_do_not_hide_versions`).
//! - A quantum attacker holding the sealed files: a 256-bit symmetric key
//!   keeps about 128-bit security against Grover's search.
//!
//! # What this does not protect against
//!
//! - Root, or anyone who runs code as the Hearth user on the live system:
//!   they can read the KEK file or ask the unlocked keyring for the entry, and
//!   so open every key. The file KEK only protects copies of the key files
//!   that leave it out; a backup of the whole folder carries the KEK along.
//! - Deletion and rollback: whoever can write the folder can delete the
//!   newest version so that an older one becomes current, or delete them all.
//! - Secrets copied out of this module: returned secrets are zeroized when
//!   dropped, but `Zeroizing`'s own `Debug` prints its contents, so callers
//!   must never format a secret with `{:?}`.

mod error;
mod file_kek;
mod files;
mod format;
mod kek;
mod os_keyring;
mod store;

pub use error::KeyStoreError;
pub use file_kek::FileKek;
pub use kek::{KekSource, default_kek};
pub use os_keyring::{KEYRING_SERVICE, OsKeyringKek};
pub use store::{KeyVersion, KeyVersionInfo, SealedKeyStore};
/// The wrapper that zeroizes returned secrets and KEKs on drop.
pub use zeroize::Zeroizing;

/// The file KEK's name inside the store's folder.
const KEK_FILE: &str = "kek";
/// The file that binds the store's folder to an OS keyring entry.
const BINDING_FILE: &str = "kek.keyring";
