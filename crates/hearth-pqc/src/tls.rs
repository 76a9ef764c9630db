//! rustls configurations with hybrid post-quantum key exchange.

use std::sync::Arc;

use rustls::crypto::{CryptoProvider, SupportedKxGroup, aws_lc_rs};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, NamedGroup, RootCertStore, ServerConfig};

use crate::PqcError;

/// ALPN protocols the server offers, in preference order.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Set of key-exchange groups a configuration offers or accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyExchangePolicy {
    /// X25519MLKEM768 first, X25519 as the fallback for clients without ML-KEM.
    #[default]
    HybridPreferred,
    /// ML-KEM groups only (X25519MLKEM768, SECP256R1MLKEM768, ML-KEM-1024,
    /// ML-KEM-768): a client that cannot do ML-KEM fails the handshake.
    PqOnly,
    /// X25519 only. Servers never use it; tests use it to play an old client.
    ClassicalOnly,
}

impl KeyExchangePolicy {
    /// Returns the aws-lc-rs groups for this policy, most preferred first.
    pub fn groups(self) -> Vec<&'static dyn SupportedKxGroup> {
        match self {
            Self::HybridPreferred => vec![aws_lc_rs::kx_group::X25519MLKEM768, aws_lc_rs::kx_group::X25519],
            // Hybrids first; pure ML-KEM only for clients that offer nothing else.
            Self::PqOnly => vec![
                aws_lc_rs::kx_group::X25519MLKEM768,
                aws_lc_rs::kx_group::SECP256R1MLKEM768,
                aws_lc_rs::kx_group::MLKEM1024,
                aws_lc_rs::kx_group::MLKEM768,
            ],
            Self::ClassicalOnly => vec![aws_lc_rs::kx_group::X25519],
        }
    }
}

/// Builds the server configuration: TLS 1.3 only, the policy's groups, ALPN
/// h2 then http/1.1, and the given certificate chain (leaf first).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    policy: KeyExchangePolicy,
) -> Result<Arc<ServerConfig>, PqcError> {
    let mut config = ServerConfig::builder_with_provider(provider(policy))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;

    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Builds a client configuration that trusts `roots` (normally the household
/// CA) and offers the policy's groups. `alpn` lists the protocols to offer.
pub fn client_config(
    roots: RootCertStore,
    policy: KeyExchangePolicy,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, PqcError> {
    let mut config = ClientConfig::builder_with_provider(provider(policy))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();

    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Returns the IANA name of a key-exchange group, as logs and the API show it.
pub fn group_name(group: NamedGroup) -> String {
    match group {
        NamedGroup::X25519MLKEM768 => "X25519MLKEM768".to_owned(),
        NamedGroup::X25519 => "X25519".to_owned(),
        NamedGroup::secp256r1MLKEM768 => "SecP256r1MLKEM768".to_owned(),
        NamedGroup::MLKEM768 => "MLKEM768".to_owned(),
        NamedGroup::MLKEM1024 => "MLKEM1024".to_owned(),
        NamedGroup::X448 => "X448".to_owned(),
        NamedGroup::secp521r1 => "secp521r1".to_owned(),
        NamedGroup::secp256r1 => "secp256r1".to_owned(),
        NamedGroup::secp384r1 => "secp384r1".to_owned(),
        other => format!("0x{:04x}", u16::from(other)),
    }
}

/// Returns whether a group resists a quantum attacker who records the handshake.
pub fn is_post_quantum(group: NamedGroup) -> bool {
    matches!(
        group,
        NamedGroup::X25519MLKEM768 | NamedGroup::secp256r1MLKEM768 | NamedGroup::MLKEM768 | NamedGroup::MLKEM1024
    )
}

fn provider(policy: KeyExchangePolicy) -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        kx_groups: policy.groups(),
        ..aws_lc_rs::default_provider()
    })
}
