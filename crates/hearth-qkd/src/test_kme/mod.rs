//! A key management entity (KME) for tests, written from ETSI GS QKD 014
//! v1.1.1.
//!
//! It takes the place of QKD hardware that Hearth's developers and CI do not
//! have. Its keys come from a CSPRNG (`rand`'s thread generator), not from
//! quantum physics, so it proves nothing about key secrecy: it exercises
//! the protocol, the mutual TLS and the error paths.
//!
//! [`TestKme::start`] serves HTTPS on 127.0.0.1 at a free port from a
//! background thread, with its own CA, a server certificate for 127.0.0.1
//! and `localhost`, and a client certificate per SAE whose common name is
//! the SAE id. The TLS layer rejects a client without a certificate from
//! that CA; the KME identifies the calling SAE by the certificate.
//!
//! Endpoints and rules:
//! - `GET /api/v1/keys/{slave_SAE_ID}/status`: the Status of the pair, with
//!   `stored_key_count` = `max_key_count` minus the keys the caller obtained
//!   that this slave has not fetched yet.
//! - `GET|POST /api/v1/keys/{slave_SAE_ID}/enc_keys`: new keys from the
//!   CSPRNG, put in the pool for the slave and any
//!   `additional_slave_SAE_IDs`. 400 when `number` is 0 or above
//!   `max_key_per_request`, when `size` is not a multiple of 8 or lies
//!   outside `min_key_size..=max_key_size`, when more additional slaves than
//!   `max_SAE_ID_count` are named, or when `extension_mandatory` is not
//!   empty. 401 for an unregistered slave SAE. 503 when the pool is full.
//! - `GET|POST /api/v1/keys/{master_SAE_ID}/dec_keys`: each key once to each
//!   of its slaves, then gone. 401 when the caller is not a slave of the key
//!   or the URL names another master. 400, with `{"key_ID": ...}` objects in
//!   `details`, for key ids that are unknown or already delivered to the
//!   caller. One bad id fails the whole request and delivers nothing.
//! - [`TestKme::set_link_down`] makes every endpoint return 503, as a KME
//!   does when its QKD link is down.

mod certs;
mod kme;
mod routes;
mod server;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

pub use certs::SaeCredentials;

use crate::{ConfigError, EtsiQkdClient, KmeClientConfig};
use kme::Kme;

/// The test KME's identity and limits. Sizes are in bits.
#[derive(Debug, Clone)]
pub struct TestKmeConfig {
    /// SAEs that get a client certificate and may call the KME.
    /// Default: `sae-a` and `sae-b`.
    pub sae_ids: Vec<String>,
    /// The KME id reported as both `source_KME_ID` and `target_KME_ID`,
    /// because one process plays both KMEs. Default: `hearth-test-kme`.
    pub kme_id: String,
    /// Default key size. Default: 256.
    pub key_size: u32,
    /// Minimum key size. Default: 64.
    pub min_key_size: u32,
    /// Maximum key size. Default: 1024.
    pub max_key_size: u32,
    /// Maximum keys per request. Default: 128.
    pub max_key_per_request: u32,
    /// Maximum keys waiting for one slave from one master. Default: 1024.
    pub max_key_count: u32,
    /// Maximum additional slave SAEs per request. Default: 2.
    pub max_sae_id_count: u32,
}

impl Default for TestKmeConfig {
    fn default() -> Self {
        Self {
            sae_ids: vec!["sae-a".to_owned(), "sae-b".to_owned()],
            kme_id: "hearth-test-kme".to_owned(),
            key_size: 256,
            min_key_size: 64,
            max_key_size: 1024,
            max_key_per_request: 128,
            max_key_count: 1024,
            max_sae_id_count: 2,
        }
    }
}

/// A running test KME. Dropping it stops the server and waits for its
/// thread.
pub struct TestKme {
    addr: SocketAddr,
    ca_pem: String,
    saes: std::collections::HashMap<String, SaeCredentials>,
    kme: Arc<Kme>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestKme {
    /// Generates the PKI, binds 127.0.0.1 on a free port and serves from a
    /// background thread with its own tokio runtime.
    pub fn start(config: TestKmeConfig) -> Result<Self, TestKmeError> {
        let pki = certs::Pki::generate(&config.sae_ids)?;
        let tls = pki.server_config()?;

        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;

        let kme = Arc::new(Kme::new(config));
        let app = routes::routes(Arc::clone(&kme));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let (shutdown, shutdown_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("test-kme".to_owned())
            .spawn(move || runtime.block_on(server::serve(listener, tls, app, shutdown_rx)))?;

        tracing::info!(addr = %addr, "test KME started");
        Ok(Self { addr, ca_pem: pki.ca_pem, saes: pki.saes, kme, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// Switches the simulated QKD link: while down, every endpoint returns 503.
    pub fn set_link_down(&self, down: bool) {
        self.kme.set_link_down(down);
    }

    /// Returns the base URL, `https://127.0.0.1:{port}`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Returns the address the KME listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the KME's CA certificate in PEM form; it signed the server and all
    /// SAE certificates.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Returns the client certificate and key of `sae_id`, if the KME made one.
    pub fn credentials(&self, sae_id: &str) -> Option<&SaeCredentials> {
        self.saes.get(sae_id)
    }

    /// Builds a client configuration for `sae_id` with its certificate and this
    /// KME's CA.
    pub fn client_config(&self, sae_id: &str) -> Result<KmeClientConfig, TestKmeError> {
        let credentials = self.credentials(sae_id).ok_or_else(|| TestKmeError::UnknownSae(sae_id.to_owned()))?;
        let config = KmeClientConfig::from_pem(
            &self.base_url(),
            sae_id,
            credentials.cert_pem.as_bytes(),
            credentials.key_pem.as_bytes(),
            self.ca_pem.as_bytes(),
        )?;
        Ok(config)
    }

    /// Builds a client for `sae_id`, configured as by [`Self::client_config`].
    pub fn client(&self, sae_id: &str) -> Result<EtsiQkdClient, TestKmeError> {
        Ok(EtsiQkdClient::new(self.client_config(sae_id)?)?)
    }
}

impl Drop for TestKme {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The server may already have stopped; then nothing listens.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(addr = %self.addr, "test KME thread panicked");
        }
    }
}

/// Errors from starting the test KME or configuring a client for it.
#[derive(Debug, thiserror::Error)]
pub enum TestKmeError {
    /// A certificate or key could not be generated.
    #[error("failed to generate the test KME's certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls rejected the server configuration.
    #[error("invalid TLS configuration for the test KME: {0}")]
    Tls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("failed to build the test KME's client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// Binding the port, starting the runtime or the thread failed.
    #[error("failed to start the test KME: {0}")]
    Io(#[from] std::io::Error),
    /// No client certificate was made for this SAE id.
    #[error("the test KME has no SAE {0:?}; add it to TestKmeConfig::sae_ids")]
    UnknownSae(String),
    /// The client configuration for an SAE was rejected.
    #[error("failed to configure a client for the test KME: {0}")]
    Client(#[from] ConfigError),
}
