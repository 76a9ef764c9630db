//! Helpers shared by the integration tests: a test KME with three SAEs, raw
//! HTTP clients for it, and a log buffer.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_qkd::test_kme::{TestKme, TestKmeConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub const SAE_A: &str = "sae-a";
pub const SAE_B: &str = "sae-b";
pub const SAE_C: &str = "sae-c";

/// Starts a test KME with the SAEs `sae-a`, `sae-b` and `sae-c`.
pub fn start_kme() -> TestKme {
    let config = TestKmeConfig {
        sae_ids: vec![SAE_A.to_owned(), SAE_B.to_owned(), SAE_C.to_owned()],
        ..TestKmeConfig::default()
    };
    TestKme::start(config).expect("test KME starts")
}

/// Builds a plain reqwest client that trusts the KME's CA and presents the client
/// certificate of `sae_id`, or none when `sae_id` is `None`.
pub fn raw_client(kme: &TestKme, sae_id: Option<&str>) -> reqwest::blocking::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(kme.ca_pem().as_bytes()).unwrap()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);

    let tls = match sae_id {
        Some(sae_id) => {
            let credentials = kme.credentials(sae_id).expect("SAE known to the KME");
            let chain = vec![CertificateDer::from_pem_slice(credentials.cert_pem.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(credentials.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };

    reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A `tracing` writer that keeps everything written to it.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Builds a subscriber that writes WARN and above to this buffer, without colour.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
