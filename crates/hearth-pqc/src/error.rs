use std::path::PathBuf;

use crate::keystore::{KeyStoreError, KeyVersion};

/// The fix offered when this machine cannot open a data folder's sealed keys.
const RESTORE_KEK_HINT: &str = "if this data folder was copied from another machine or restored \
    from a backup without its KEK, restore that KEK (the `kek` file in the key store's folder, or \
    the OS keyring entry service=hearth that its `kek.keyring` file names) or move the data \
    folder back to the machine it came from";

/// Errors from certificate handling and TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum PqcError {
    /// A certificate or key file could not be read or written.
    #[error("failed to access {path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Certificate or key generation failed.
    #[error("failed to generate {what}: {source}")]
    Generate {
        /// Certificate or key that was being made.
        what: &'static str,
        /// The error from rcgen.
        #[source]
        source: rcgen::Error,
    },
    /// A stored PEM file contains no usable certificate or key.
    #[error("invalid PEM in {path}: {reason}; restore the file from a backup")]
    InvalidPem {
        /// The file that failed to parse.
        path: PathBuf,
        /// Parse error.
        reason: String,
    },
    /// The household CA certificate file does not parse.
    #[error(
        "invalid household CA certificate {path}: {reason}; restore it from a backup or from \
         `hearth ca export` output kept elsewhere. Replacing it with a new household CA (delete \
         it and the household-ca key files in the data folder's `keys` folder) means every \
         device must trust the new CA again"
    )]
    InvalidCaCertificate {
        /// The CA certificate file.
        path: PathBuf,
        /// Parse error.
        reason: String,
    },
    /// The sealed key store holds a household CA key, but its certificate
    /// file is missing.
    #[error(
        "the household CA certificate {} is missing, but the sealed key store holds the CA key \
         household-ca: restore {} from a backup or from `hearth ca export` output kept elsewhere. \
         No new CA was made, because every device that trusts this one would have to trust a \
         new one again; to start over with a new CA anyway, delete the household-ca key files \
         in the data folder's `keys` folder",
        cert.display(), cert.display()
    )]
    MissingCaCertificate {
        /// The CA certificate file that was expected.
        cert: PathBuf,
    },
    /// A plaintext key file of an earlier release has another name on disk,
    /// so deleting it after the import would leave the key readable.
    #[error(
        "refusing to import the plaintext key {}: it is {link}, so deleting it after sealing \
         would leave the key readable under the other name; replace it with a regular file that \
         has no other link (copy the key there and delete the other copy), then start again. \
         Nothing was sealed",
        path.display()
    )]
    PlaintextKeyLinked {
        /// The plaintext key file.
        path: PathBuf,
        /// What else points at the key: a link target or a link count.
        link: String,
    },
    /// No household CA exists in the folder.
    #[error("no household CA in {}: check --data-dir, or start `hearth serve` once to create one", dir.display())]
    MissingCa {
        /// The folder that was searched.
        dir: PathBuf,
    },
    /// The sealed key store that contains the CA and TLS keys could not be opened.
    ///
    /// Key store errors are boxed in this enum because they are large.
    #[error("failed to open the sealed key store in {}: {source}; {hint}", dir.display(), hint = RESTORE_KEK_HINT)]
    KeyStoreUnavailable {
        /// The key store's folder.
        dir: PathBuf,
        /// The error from the key store.
        #[source]
        source: Box<KeyStoreError>,
    },
    /// The sealed key store failed to open the household CA key.
    #[error("failed to open the household CA key for {}: {source}; {hint}", cert.display(), hint = RESTORE_KEK_HINT)]
    CaKeyUnavailable {
        /// The CA certificate whose key was being opened.
        cert: PathBuf,
        /// The error from the key store, which names the sealed file.
        #[source]
        source: Box<KeyStoreError>,
    },
    /// A CA certificate exists but the sealed key store has no CA key.
    #[error(
        "the household CA certificate {} exists but the sealed key store has no household-ca key: \
         restore the data folder's `keys` folder from the backup that {} came from, or delete {} \
         to create a new CA, which every client must then trust again",
        cert.display(), cert.display(), cert.display()
    )]
    MissingCaKey {
        /// The CA certificate.
        cert: PathBuf,
    },
    /// A CA key does not belong to the CA certificate.
    #[error(
        "the household CA key in {key} does not match the certificate {}: restore both from \
         the same backup",
        cert.display()
    )]
    CaKeyMismatch {
        /// The CA certificate.
        cert: PathBuf,
        /// The key: a plaintext file, or a sealed key and its version.
        key: String,
    },
    /// A key read from the sealed key store is not a usable PKCS#8 key.
    #[error("invalid {key}: {source}; restore the key store from a backup")]
    InvalidSealedKey {
        /// The sealed key and, where known, its version.
        key: String,
        /// The error from rcgen.
        #[source]
        source: rcgen::Error,
    },
    /// Reading or writing a key in the sealed key store failed.
    #[error("sealed key store failed on key {name:?}: {source}")]
    SealedKey {
        /// The key name, such as "tls-leaf".
        name: &'static str,
        /// The error from the key store.
        #[source]
        source: Box<KeyStoreError>,
    },
    /// A plaintext key imported into the sealed key store did not read back
    /// unchanged, so the plaintext file was kept.
    #[error(
        "sealed copy {version} of key {name:?} does not read back the same as {}; the file was kept, \
         start again to retry the import",
        path.display()
    )]
    ImportNotVerified {
        /// The plaintext key file.
        path: PathBuf,
        /// The key name it was sealed under.
        name: &'static str,
        /// The version that was sealed.
        version: KeyVersion,
    },
    /// rustls rejected the configuration.
    #[error("invalid TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}
