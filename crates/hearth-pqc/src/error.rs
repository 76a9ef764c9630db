use std::path::PathBuf;

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
    #[error("invalid PEM in {path}: {reason}; delete the file to have a new one generated")]
    InvalidPem {
        /// The file that failed to parse.
        path: PathBuf,
        /// Parse error.
        reason: String,
    },
    /// No household CA exists in the folder.
    #[error("no household CA in {}: check --data-dir, or start `hearth serve` once to create one", dir.display())]
    MissingCa {
        /// The folder that was searched.
        dir: PathBuf,
    },
    /// rustls rejected the configuration.
    #[error("invalid TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}
