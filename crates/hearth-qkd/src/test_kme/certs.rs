//! The test KME's own PKI: a CA, the server certificate for 127.0.0.1, and
//! one client certificate per SAE with the SAE id as its common name.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::TestKmeError;
use hearth_pqc::KeyExchangePolicy;

/// A client certificate and key for one SAE, in PEM form.
pub struct SaeCredentials {
    /// The SAE id, which is also the certificate's common name.
    pub sae_id: String,
    /// The client certificate.
    pub cert_pem: String,
    /// The client certificate's private key (PKCS#8), wiped when dropped.
    pub key_pem: Zeroizing<String>,
}

/// Everything the test KME's TLS needs, made fresh for each KME.
pub(super) struct Pki {
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    pub server_cert: CertificateDer<'static>,
    pub server_key_der: Zeroizing<Vec<u8>>,
    pub saes: HashMap<String, SaeCredentials>,
}

impl Pki {
    /// Generates the CA, the server certificate and a client certificate for
    /// each of `sae_ids`. All keys are ECDSA P-256.
    pub fn generate(sae_ids: &[String]) -> Result<Self, TestKmeError> {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut ca_params = cert_params("Hearth test KME CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;

        let server_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut server_params = cert_params("Hearth test KME");
        server_params.subject_alt_names =
            vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)), SanType::DnsName("localhost".try_into()?)];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &ca)?;

        let mut saes = HashMap::new();
        for sae_id in sae_ids {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let mut params = cert_params(sae_id);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params.signed_by(&key, &ca)?;
            let credentials = SaeCredentials {
                sae_id: sae_id.clone(),
                cert_pem: cert.pem(),
                key_pem: Zeroizing::new(key.serialize_pem()),
            };
            saes.insert(sae_id.clone(), credentials);
        }

        Ok(Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            server_cert: server_cert.der().clone(),
            server_key_der: Zeroizing::new(server_key.serialize_der()),
            saes,
        })
    }

    /// Builds the server's rustls configuration: TLS 1.3, hybrid key exchange
    /// preferred, and a client certificate signed by this CA required.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TestKmeError> {
        let provider = Arc::new(CryptoProvider {
            kx_groups: KeyExchangePolicy::HybridPreferred.groups(),
            ..aws_lc_rs::default_provider()
        });
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone())?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider)).build()?;

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.to_vec()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.server_cert.clone(), self.ca_der.clone()], key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Certificate parameters with `common_name`, valid from an hour ago for a
/// day: long enough for any test run.
fn cert_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.use_authority_key_identifier_extension = true;

    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(1);
    params
}

/// Returns the SAE id in a verified client certificate, which is its
/// subject's common name.
pub(super) fn sae_id_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let common_name = parsed.subject().iter_common_name().next()?;
    common_name.as_str().ok().map(str::to_owned)
}
