use std::path::PathBuf;

/// Errors from building a KME client out of its configuration. Errors of the
/// requests themselves are [`hearth_pqc::qkd::QkdError`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The KME base URL does not parse.
    #[error("invalid KME URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// The parser's error.
        #[source]
        source: url::ParseError,
    },
    /// The KME base URL is not an https URL; ETSI GS QKD 014 requires TLS.
    #[error("KME URL {url} must use https")]
    NotHttps {
        /// The URL as configured.
        url: String,
    },
    /// A certificate or key file could not be read.
    #[error("failed to read {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// PEM input contains a malformed certificate or key.
    #[error("invalid PEM in the {input}: {source}")]
    InvalidPem {
        /// Name of the input: "client certificate", "client key" or "KME CA certificate".
        input: &'static str,
        /// The PEM parser's error.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// PEM input contains no certificate or key of the expected kind.
    #[error("no {input} found in its PEM input")]
    MissingPem {
        /// Name of the input: "client certificate", "client key" or "KME CA certificate".
        input: &'static str,
    },
    /// rustls rejected a certificate or key (a CA that does not parse, or a
    /// key that does not match the client certificate).
    #[error("invalid TLS configuration for the KME client: {0}")]
    Tls(#[from] rustls::Error),
    /// The HTTP client could not be built.
    #[error("failed to build the HTTP client for the KME: {0}")]
    HttpClient(#[source] reqwest::Error),
}
