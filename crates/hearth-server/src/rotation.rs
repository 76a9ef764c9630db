//! Key rotation without a restart: the server's TLS certificate and its
//! hybrid signing key.
//!
//! The signing key (Ed25519 + ML-DSA-65), the household CA key and the TLS
//! leaf key live in the sealed key store under the data folder. The signing
//! key rotates every [`SIGNING_KEY_MAX_AGE`]. An emergency
//! rotation (API `POST /api/v1/admin/rotate-keys`, CLI `hearth keys
//! rotate`) issues a new TLS leaf with a new key and a new signing key
//! version at once. New connections get the new certificate immediately;
//! open connections keep the old one until they close. Old signing key
//! versions stay listed at `GET /api/v1/keys`, so signatures made before a
//! rotation remain verifiable.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use hearth_pqc::keystore::{KeyStoreError, SealedKeyStore, Zeroizing, default_kek};
use hearth_pqc::sign::{HybridSigner, HybridSigningKey};
use hearth_pqc::{HouseholdCa, KeyExchangePolicy, PqcError};
use rustls::ServerConfig;
use serde::Serialize;

use crate::config::DataPaths;

/// Name of the server's signing key in the sealed key store.
pub const SIGNING_KEY_NAME: &str = "server-signing";
/// Age at which the signing key is rotated at start.
pub const SIGNING_KEY_MAX_AGE: Duration = Duration::from_secs(90 * 24 * 3600);

/// Errors from key rotation.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The certificate authority or the TLS configuration failed.
    #[error(transparent)]
    Pqc(#[from] PqcError),
    /// The sealed key store failed.
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    /// The key store lists no current signing key after a rotation.
    #[error("no current {SIGNING_KEY_NAME} key in the key store after rotation")]
    NoSigningKey,
    /// A stored signing key does not decode.
    #[error("stored signing key {version} is invalid: {source}")]
    BadSigningKey {
        /// The version that failed.
        version: String,
        /// The decoding error.
        #[source]
        source: hearth_pqc::sign::SignatureError,
    },
}

/// The TLS configuration new connections use; replaced on rotation.
pub struct TlsCell {
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsCell {
    /// Creates a cell holding `config`.
    pub fn new(config: Arc<ServerConfig>) -> Arc<Self> {
        Arc::new(Self { current: RwLock::new(config) })
    }

    /// Returns the configuration for a new connection.
    pub fn get(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn set(&self, config: Arc<ServerConfig>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
    }
}

/// One version of the server's signing key, as published to clients.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublishedKey {
    /// Version number in the key store.
    pub version: u32,
    /// Stable id of the verifying key (hex).
    pub key_id: String,
    /// Encoded hybrid verifying key (hex).
    pub verifying_key: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
    /// When a newer version replaced it, seconds since the Unix epoch.
    pub retired_at: Option<u64>,
    /// Whether new signatures use this version.
    pub current: bool,
}

/// Summary of an emergency rotation: the new certificate and key.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RotationReport {
    /// SHA-256 of the new TLS leaf certificate (hex).
    pub tls_certificate_sha256: String,
    /// The new signing key version.
    pub signing_key: PublishedKey,
}

/// Owns the CA, the TLS cell and the signing keys.
pub struct KeyRotation {
    ca: HouseholdCa,
    dns_names: Vec<String>,
    addresses: Vec<IpAddr>,
    policy: KeyExchangePolicy,
    tls: Arc<TlsCell>,
    keys: SealedKeyStore,
    /// Serialises rotations so two admins cannot interleave them.
    rotating: Mutex<()>,
}

impl KeyRotation {
    /// Sets up TLS from the household CA and makes sure a signing key exists
    /// and is younger than [`SIGNING_KEY_MAX_AGE`].
    pub fn start(paths: &DataPaths, dns_names: Vec<String>, addresses: Vec<IpAddr>, policy: KeyExchangePolicy) -> Result<Self, RotationError> {
        let keys = hearth_pqc::ca::open_key_store(&paths.keys, default_kek(&paths.keys))?;
        let ca = HouseholdCa::load_or_create(&paths.tls, &keys)?;
        let identity = ca.server_identity(&keys, &dns_names, &addresses)?;
        let tls = TlsCell::new(hearth_pqc::server_config(identity.chain, identity.key, policy)?);

        let rotation = Self { ca, dns_names, addresses, policy, tls, keys, rotating: Mutex::new(()) };
        if let Some(version) = rotation.keys.rotate_if_due(SIGNING_KEY_NAME, SIGNING_KEY_MAX_AGE, false, new_signing_key)? {
            tracing::info!(version = %version, "server signing key created or rotated on schedule");
        }
        Ok(rotation)
    }

    /// Returns the TLS configuration cell the listener reads.
    pub fn tls(&self) -> Arc<TlsCell> {
        Arc::clone(&self.tls)
    }

    /// Rotates the TLS leaf and the signing key now.
    pub fn rotate_now(&self, reason: &str) -> Result<RotationReport, RotationError> {
        let _guard = self.rotating.lock().unwrap_or_else(|p| p.into_inner());
        tracing::warn!(reason, "emergency key rotation started");

        let identity = self.ca.reissue_server_identity(&self.keys, &self.dns_names, &self.addresses)?;
        let fingerprint = sha256_hex(identity.chain[0].as_ref());
        self.tls.set(hearth_pqc::server_config(identity.chain, identity.key, self.policy)?);
        self.keys.rotate_if_due(SIGNING_KEY_NAME, SIGNING_KEY_MAX_AGE, true, new_signing_key)?;

        let signing_key = self.published_keys()?.into_iter().find(|k| k.current).ok_or(RotationError::NoSigningKey)?;
        tracing::warn!(tls_certificate_sha256 = %fingerprint, signing_key_version = signing_key.version, "emergency key rotation finished");
        Ok(RotationReport { tls_certificate_sha256: fingerprint, signing_key })
    }

    /// Returns the current household signing key, which signs device
    /// credentials.
    pub fn signing_key(&self) -> Result<HybridSigningKey, RotationError> {
        let (version, secret) = self.keys.current(SIGNING_KEY_NAME)?.ok_or(RotationError::NoSigningKey)?;
        HybridSigningKey::from_bytes(&secret).map_err(|source| RotationError::BadSigningKey { version: version.to_string(), source })
    }

    /// Every version of the signing key's public half, oldest first.
    pub fn published_keys(&self) -> Result<Vec<PublishedKey>, RotationError> {
        let mut published = Vec::new();
        for info in self.keys.versions(SIGNING_KEY_NAME)? {
            let Some(secret) = self.keys.get(SIGNING_KEY_NAME, info.version)? else {
                continue;
            };
            let key = HybridSigningKey::from_bytes(&secret)
                .map_err(|source| RotationError::BadSigningKey { version: info.version.to_string(), source })?;
            let verifying = key.verifying_key();
            published.push(PublishedKey {
                version: info.version.number(),
                key_id: verifying.key_id(),
                verifying_key: hex::encode(verifying.to_bytes()),
                created_at: unix_seconds(info.created_at),
                retired_at: info.retired_at.map(unix_seconds),
                current: info.current,
            });
        }
        Ok(published)
    }

    /// Returns the sealed key store, which also contains the node's X-Wing
    /// key and its link keys (`crate::links`).
    pub fn key_store(&self) -> &SealedKeyStore {
        &self.keys
    }
}

fn new_signing_key() -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
    Ok(HybridSigningKey::generate().to_bytes())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
