//! The household certificate authority and the server certificate.
//!
//! On first run Hearth makes a CA (ECDSA P-256, ten years) and a server leaf
//! signed by it for the host's names and addresses. Clients pin the CA, not
//! the leaf, because webpki rejects a self-signed leaf and because the leaf is
//! reissued whenever the host gains a name or address.
//!
//! Both private keys live in the sealed key store ([`crate::keystore`]) as
//! PKCS#8 DER: the CA key as [`CA_KEY_NAME`] and the leaf key as
//! [`LEAF_KEY_NAME`], which gets a new version on every reissue. Only the
//! certificates are files here (`ca.pem`, `server.pem`, mode 0600 in a
//! folder with mode 0700). Data folders of earlier releases kept the keys as
//! plaintext PEM files (`ca-key.pem`, `server-key.pem`). The first start of
//! this release imports them into the store and deletes them. It keeps the
//! CA certificate, so clients that pinned it keep working.

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, pem::PemObject};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;
use zeroize::Zeroizing;

use crate::PqcError;
use crate::keystore::{KekSource, KeyStoreError, KeyVersion, SealedKeyStore};

/// Name of the household CA's private key in the sealed key store.
pub const CA_KEY_NAME: &str = "household-ca";
/// Name of the TLS server leaf's private key in the sealed key store.
pub const LEAF_KEY_NAME: &str = "tls-leaf";

const CA_CERT_FILE: &str = "ca.pem";
const SERVER_CERT_FILE: &str = "server.pem";
/// Plaintext CA key of releases before the sealed key store.
const LEGACY_CA_KEY_FILE: &str = "ca-key.pem";
/// Plaintext leaf key of releases before the sealed key store.
const LEGACY_SERVER_KEY_FILE: &str = "server-key.pem";
/// Temporary files that those releases' atomic writes of the two keys could
/// leave behind after a crash, holding a whole or partial plaintext key.
const LEGACY_TEMP_FILES: [&str; 2] = ["ca-key.tmp", "server-key.tmp"];

/// Validity of the household CA.
const CA_VALIDITY: Duration = Duration::days(3650);
/// Validity of a server leaf. Apple platforms reject leaves valid for longer
/// than 398 days, so the leaf stays under that.
const LEAF_VALIDITY: Duration = Duration::days(397);
/// A leaf this close to expiry is reissued at start.
const LEAF_RENEW_BEFORE: Duration = Duration::days(30);

/// The household CA certificate alone, for commands that only hand it out or
/// trust it and so must work without the key-encryption key.
pub struct CaCertificate {
    path: PathBuf,
    pem: String,
}

/// The household CA: its certificate from one folder and its signing key
/// from the sealed key store.
pub struct HouseholdCa {
    dir: PathBuf,
    cert: CaCertificate,
    /// PKCS#8 DER of the CA key, zeroized on drop.
    key_der: Zeroizing<Vec<u8>>,
}

/// The server's certificate chain and private key, ready for rustls.
pub struct ServerIdentity {
    /// Leaf first, then the CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (PKCS#8).
    ///
    /// NOTE: this is a plain copy of the sealed key. rustls takes it by value
    /// and does not zeroize it on drop, so it stays in freed memory until
    /// reused.
    pub key: PrivateKeyDer<'static>,
    /// Whether this call made a new leaf (first run, new names, renewal, a
    /// certificate that does not match the sealed key, or an emergency
    /// rotation).
    pub reissued: bool,
}

/// Opens the sealed key store in `dir` that contains the CA and leaf keys.
///
/// Failure to open it, most often a KEK that does not match the keys (a data
/// folder copied to another machine without its KEK), is reported as
/// [`PqcError::KeyStoreUnavailable`] with what to restore.
pub fn open_key_store(dir: &Path, kek: Box<dyn KekSource>) -> Result<SealedKeyStore, PqcError> {
    SealedKeyStore::open(dir, kek).map_err(|source| PqcError::KeyStoreUnavailable { dir: dir.to_owned(), source: Box::new(source) })
}

impl CaCertificate {
    /// Loads `ca.pem` from the CA's folder `dir`; see [`HouseholdCa::load_certificate`].
    fn load(dir: &Path) -> Result<Self, PqcError> {
        let path = dir.join(CA_CERT_FILE);
        if !path.exists() {
            return Err(PqcError::MissingCa { dir: dir.to_owned() });
        }

        let pem = read_to_string(&path)?;
        let cert = Self { path, pem };
        cert.der()?;
        Ok(cert)
    }

    /// Returns the certificate in PEM form, for `hearth ca export` and clients.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Decodes the certificate to DER.
    pub fn der(&self) -> Result<CertificateDer<'static>, PqcError> {
        CertificateDer::from_pem_slice(self.pem.as_bytes())
            .map_err(|e| PqcError::InvalidCaCertificate { path: self.path.clone(), reason: e.to_string() })
    }
}

impl HouseholdCa {
    /// Loads the CA from its folder `dir` and the sealed key store `keys`, or
    /// creates one if `dir` has no CA certificate yet.
    ///
    /// Plaintext key files left by earlier releases are imported into `keys`
    /// and deleted first. A CA certificate whose key is missing from the
    /// store, or does not match, is an error rather than a reason to make a
    /// new CA, because clients pin the CA certificate. So is a sealed CA key
    /// whose certificate is missing.
    pub fn load_or_create(dir: &Path, keys: &SealedKeyStore) -> Result<Self, PqcError> {
        create_private_dir(dir)?;
        import_legacy_keys(dir, keys)?;

        if dir.join(CA_CERT_FILE).exists() {
            return Self::load_with_key(dir, keys);
        }
        if keys.current(CA_KEY_NAME).map_err(sealed_key_error(CA_KEY_NAME))?.is_some() {
            return Err(PqcError::MissingCaCertificate { cert: dir.join(CA_CERT_FILE) });
        }
        Self::create(dir, keys)
    }

    /// Loads only the CA certificate from the CA's folder `dir`, failing
    /// when there is none and creating nothing, so that a mistyped folder
    /// never produces a CA the server does not use. Needs neither the key
    /// store nor its key-encryption key, so `hearth ca export` works on a copy
    /// of `dir` alone.
    pub fn load_certificate(dir: &Path) -> Result<CaCertificate, PqcError> {
        CaCertificate::load(dir)
    }

    /// Returns the CA certificate.
    pub fn certificate(&self) -> &CaCertificate {
        &self.cert
    }

    /// Returns the CA certificate in PEM form, for `hearth ca export` and clients.
    pub fn cert_pem(&self) -> &str {
        self.cert.pem()
    }

    /// Decodes the CA certificate to DER.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, PqcError> {
        self.cert.der()
    }

    /// Loads the server leaf and its sealed key, reissuing both when the key
    /// is missing, the certificate is missing or does not match the key, does
    /// not cover every name in `dns_names` and `ips`, or expires within 30
    /// days.
    pub fn server_identity(
        &self,
        keys: &SealedKeyStore,
        dns_names: &[String],
        ips: &[IpAddr],
    ) -> Result<ServerIdentity, PqcError> {
        let cert_path = self.dir.join(SERVER_CERT_FILE);
        let expected = expected_names(dns_names, ips);

        let current = keys.current(LEAF_KEY_NAME).map_err(sealed_key_error(LEAF_KEY_NAME))?;
        if let Some((version, key_der)) = current
            && let Some(leaf) = current_leaf(&cert_path, &key_der, version, &expected)
        {
            let chain = vec![leaf, self.cert_der()?];
            return Ok(ServerIdentity { chain, key: pkcs8_key(&key_der), reissued: false });
        }

        self.issue_leaf(keys, dns_names, ips)
    }

    /// Issues a new server leaf with a new key now, whatever the state of
    /// the stored one: the emergency rotation after a suspected key leak. The
    /// key becomes a new version of [`LEAF_KEY_NAME`].
    pub fn reissue_server_identity(
        &self,
        keys: &SealedKeyStore,
        dns_names: &[String],
        ips: &[IpAddr],
    ) -> Result<ServerIdentity, PqcError> {
        self.issue_leaf(keys, dns_names, ips)
    }

    /// Loads an existing CA: the certificate from `dir`, the key from `keys`.
    fn load_with_key(dir: &Path, keys: &SealedKeyStore) -> Result<Self, PqcError> {
        let cert = CaCertificate::load(dir)?;

        let current = keys
            .current(CA_KEY_NAME)
            .map_err(|source| PqcError::CaKeyUnavailable { cert: cert.path.clone(), source: Box::new(source) })?;
        let Some((version, key_der)) = current else {
            return Err(PqcError::MissingCaKey { cert: cert.path.clone() });
        };

        let key = key_pair(&key_der, || format!("sealed key {CA_KEY_NAME} {version}"))?;
        if !cert_matches_key(&cert.der()?, &key) {
            return Err(PqcError::CaKeyMismatch { cert: cert.path, key: format!("sealed key {CA_KEY_NAME} {version}") });
        }
        Issuer::from_ca_cert_pem(cert.pem(), &key)
            .map_err(|e| PqcError::InvalidCaCertificate { path: cert.path.clone(), reason: e.to_string() })?;

        tracing::debug!(path = %cert.path.display(), key_version = %version, "household CA loaded");
        Ok(Self { dir: dir.to_owned(), cert, key_der })
    }

    /// Creates a CA: seals a new key in `keys`, then writes the certificate.
    /// A crash between the two leaves a key version without a certificate,
    /// which the next start refuses as [`PqcError::MissingCaCertificate`].
    /// NOTE: that error's advice (delete the household-ca key files) is the
    /// way out after such a crash on a first start.
    fn create(dir: &Path, keys: &SealedKeyStore) -> Result<Self, PqcError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|source| PqcError::Generate { what: "CA key", source })?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "Hearth household");
        params.distinguished_name.push(DnType::CommonName, ca_common_name());
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + CA_VALIDITY;
        let cert = params
            .self_signed(&key)
            .map_err(|source| PqcError::Generate { what: "CA certificate", source })?;

        let key_der = Zeroizing::new(key.serialize_der());
        let version = keys.put(CA_KEY_NAME, &key_der).map_err(sealed_key_error(CA_KEY_NAME))?;
        let cert_path = dir.join(CA_CERT_FILE);
        write_atomically(&cert_path, cert.pem().as_bytes())?;

        tracing::info!(path = %cert_path.display(), key = CA_KEY_NAME, key_version = %version, "household CA created");
        let cert = CaCertificate { path: cert_path, pem: cert.pem() };
        Ok(Self { dir: dir.to_owned(), cert, key_der })
    }

    /// Makes a leaf key, seals it as a new version of [`LEAF_KEY_NAME`], then
    /// writes the certificate. A crash between the two leaves a certificate
    /// that does not match the current key, which the next start reissues.
    fn issue_leaf(&self, keys: &SealedKeyStore, dns_names: &[String], ips: &[IpAddr]) -> Result<ServerIdentity, PqcError> {
        let ca_key = key_pair(&self.key_der, || format!("sealed key {CA_KEY_NAME}"))?;
        let issuer = Issuer::from_ca_cert_pem(self.cert.pem(), &ca_key)
            .map_err(|e| PqcError::InvalidCaCertificate { path: self.cert.path.clone(), reason: e.to_string() })?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|source| PqcError::Generate { what: "server key", source })?;

        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, dns_names.first().map(String::as_str).unwrap_or("hearth"));
        for name in dns_names {
            let name = name.clone().try_into().map_err(|source| PqcError::Generate { what: "server name", source })?;
            params.subject_alt_names.push(SanType::DnsName(name));
        }
        for ip in ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + LEAF_VALIDITY;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|source| PqcError::Generate { what: "server certificate", source })?;

        let key_der = Zeroizing::new(key.serialize_der());
        let version = keys.put(LEAF_KEY_NAME, &key_der).map_err(sealed_key_error(LEAF_KEY_NAME))?;
        let cert_path = self.dir.join(SERVER_CERT_FILE);
        write_atomically(&cert_path, cert.pem().as_bytes())?;

        tracing::info!(
            path = %cert_path.display(),
            key = LEAF_KEY_NAME,
            key_version = %version,
            names = ?dns_names,
            addresses = ?ips,
            "server certificate issued"
        );
        let chain = vec![cert.der().clone(), self.cert_der()?];
        Ok(ServerIdentity { chain, key: pkcs8_key(&key_der), reissued: true })
    }
}

/// Imports the plaintext key files of earlier releases from the CA's folder
/// `dir` into `keys` and deletes them. Files that are absent are skipped, so
/// this does nothing on a folder that was already upgraded.
fn import_legacy_keys(dir: &Path, keys: &SealedKeyStore) -> Result<(), PqcError> {
    let ca_cert = dir.join(CA_CERT_FILE);
    let ca_cert = ca_cert.exists().then_some(ca_cert);
    import_legacy_key(&dir.join(LEGACY_CA_KEY_FILE), CA_KEY_NAME, keys, ca_cert.as_deref())?;
    import_legacy_key(&dir.join(LEGACY_SERVER_KEY_FILE), LEAF_KEY_NAME, keys, None)?;

    for name in LEGACY_TEMP_FILES {
        let path = dir.join(name);
        check_sole_copy(&path)?;
        if remove_plaintext_key(&path)? {
            tracing::info!(path = %path.display(), "deleted temporary plaintext key file left by an earlier release");
        }
    }
    Ok(())
}

/// Seals the plaintext PEM key at `path` as a version of key `name`, reads
/// the sealed copy back, and deletes `path` once the copy matches. When
/// `must_match` names a certificate, a key that does not match it is
/// rejected and the file kept.
///
/// A start that was interrupted after sealing finds the same key already
/// current and only deletes the file, so no duplicate version is made.
fn import_legacy_key(
    path: &Path,
    name: &'static str,
    keys: &SealedKeyStore,
    must_match: Option<&Path>,
) -> Result<(), PqcError> {
    check_sole_copy(path)?;
    let pem = match fs::read_to_string(path) {
        Ok(pem) => Zeroizing::new(pem),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(PqcError::Io { path: path.to_owned(), source }),
    };
    let key = KeyPair::from_pem(&pem)
        .map_err(|e| PqcError::InvalidPem { path: path.to_owned(), reason: e.to_string() })?;
    let key_der = Zeroizing::new(key.serialize_der());

    if let Some(cert_path) = must_match {
        let cert = CertificateDer::from_pem_slice(read_to_string(cert_path)?.as_bytes())
            .map_err(|e| PqcError::InvalidPem { path: cert_path.to_owned(), reason: e.to_string() })?;
        if !cert_matches_key(&cert, &key) {
            return Err(PqcError::CaKeyMismatch { cert: cert_path.to_owned(), key: path.display().to_string() });
        }
    }

    let current = keys.current(name).map_err(sealed_key_error(name))?;
    let version = match current {
        Some((version, sealed)) if sealed == key_der => version,
        _ => keys.put(name, &key_der).map_err(sealed_key_error(name))?,
    };
    let reopened = keys.get(name, version).map_err(sealed_key_error(name))?;
    if reopened.as_ref().map(|secret| secret.as_slice()) != Some(key_der.as_slice()) {
        return Err(PqcError::ImportNotVerified { path: path.to_owned(), name, version });
    }

    remove_plaintext_key(path)?;
    tracing::info!(
        path = %path.display(),
        key = name,
        key_version = %version,
        "imported plaintext private key into the sealed key store and deleted the file"
    );
    Ok(())
}

/// Rejects a plaintext key file that is a symbolic link or has more than one
/// hard link, because deleting its name would leave the key readable under
/// the other. A missing file passes.
fn check_sole_copy(path: &Path) -> Result<(), PqcError> {
    use std::os::unix::fs::MetadataExt;

    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(PqcError::Io { path: path.to_owned(), source }),
    };
    let link = if metadata.file_type().is_symlink() {
        let target = fs::read_link(path).map_err(|source| PqcError::Io { path: path.to_owned(), source })?;
        format!("a symbolic link to {}", target.display())
    } else if metadata.nlink() > 1 {
        format!("a file with {} hard links", metadata.nlink())
    } else {
        return Ok(());
    };
    Err(PqcError::PlaintextKeyLinked { path: path.to_owned(), link })
}

/// Deletes a plaintext key file and syncs its folder, so the deletion
/// survives a crash. Returns whether a file was there.
///
/// NOTE: deleting a file does not guarantee that its bytes are gone. SSDs
/// remap writes, and copy-on-write filesystems (btrfs, ZFS) and snapshots
/// keep old blocks, so the key may stay readable on the raw device until
/// those blocks are reused. Overwriting the file first would not change
/// that, so it is not done.
fn remove_plaintext_key(path: &Path) -> Result<bool, PqcError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(PqcError::Io { path: path.to_owned(), source }),
    }

    let dir = path.parent().unwrap_or(Path::new("."));
    let sync = fs::File::open(dir).and_then(|folder| folder.sync_all());
    sync.map_err(|source| PqcError::Io { path: dir.to_owned(), source })?;
    Ok(true)
}

/// Returns the stored leaf when it parses, matches the sealed leaf key,
/// covers every expected name and is not close to expiry. `None` means the
/// leaf must be reissued.
fn current_leaf(
    cert_path: &Path,
    key_der: &[u8],
    version: KeyVersion,
    expected: &[String],
) -> Option<CertificateDer<'static>> {
    let pem = fs::read_to_string(cert_path).ok()?;
    let Ok(der) = CertificateDer::from_pem_slice(pem.as_bytes()) else {
        tracing::warn!(path = %cert_path.display(), "stored server certificate is unreadable, reissuing");
        return None;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        tracing::warn!(path = %cert_path.display(), "stored server certificate does not parse, reissuing");
        return None;
    };
    let Ok(key) = key_pair(key_der, String::new) else {
        tracing::warn!(key = LEAF_KEY_NAME, key_version = %version, "sealed leaf key does not parse, reissuing");
        return None;
    };
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        tracing::info!(
            path = %cert_path.display(),
            key = LEAF_KEY_NAME,
            key_version = %version,
            "stored server certificate does not match the sealed leaf key, reissuing"
        );
        return None;
    }

    let not_after = cert.validity().not_after.to_datetime();
    if not_after - OffsetDateTime::now_utc() < LEAF_RENEW_BEFORE {
        return None;
    }

    let mut present: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => present.push(dns.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        present.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    expected.iter().all(|name| present.contains(name)).then_some(der)
}

/// Checks whether the certificate's subject public key is the public half of `key`.
fn cert_matches_key(cert_der: &[u8], key: &KeyPair) -> bool {
    match x509_parser::parse_x509_certificate(cert_der) {
        Ok((_, cert)) => cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw(),
        Err(_) => false,
    }
}

/// Parses a sealed PKCS#8 key; `describe` names it in the error.
///
/// NOTE: rcgen's `KeyPair` keeps its own copy of the DER, which it zeroizes
/// only with rcgen's `zeroize` feature, and the workspace does not enable
/// that feature. Callers therefore build a `KeyPair` only for the moment
/// they sign and keep the long-lived copy in `Zeroizing`.
fn key_pair(key_der: &[u8], describe: impl FnOnce() -> String) -> Result<KeyPair, PqcError> {
    KeyPair::try_from(key_der).map_err(|source| PqcError::InvalidSealedKey { key: describe(), source })
}

fn pkcs8_key(key_der: &[u8]) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.to_vec()))
}

fn sealed_key_error(name: &'static str) -> impl FnOnce(KeyStoreError) -> PqcError {
    move |source| PqcError::SealedKey { name, source: Box::new(source) }
}

/// The SAN entries a leaf must carry, as strings comparable with what
/// x509-parser reports.
fn expected_names(dns_names: &[String], ips: &[IpAddr]) -> Vec<String> {
    let mut names: Vec<String> = dns_names.iter().map(|n| n.to_ascii_lowercase()).collect();
    names.extend(ips.iter().map(IpAddr::to_string));
    names
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn ca_common_name() -> String {
    let host = fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    if host.is_empty() { "Hearth household CA".to_owned() } else { format!("Hearth household CA ({host})") }
}

fn read_to_string(path: &Path) -> Result<String, PqcError> {
    fs::read_to_string(path).map_err(|source| PqcError::Io { path: path.to_owned(), source })
}

fn create_private_dir(dir: &Path) -> Result<(), PqcError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

    let io_err = |source| PqcError::Io { path: dir.to_owned(), source };
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err)
}

/// Writes a certificate file with mode 0600 through a temporary file and a
/// rename, so a crash mid-write never leaves a truncated file behind.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), PqcError> {
    use std::os::unix::fs::OpenOptionsExt;

    let io_err = |source| PqcError::Io { path: path.to_owned(), source };
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err)?;
    file.write_all(contents).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    fs::rename(&tmp, path).map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::Zeroizing;
    use std::os::unix::fs::PermissionsExt;

    /// A KEK source with a fixed key, so a test needs no keyring or KEK file.
    struct FixedKek;

    impl KekSource for FixedKek {
        fn name(&self) -> &'static str {
            "fixed"
        }

        fn load_or_create(&self) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
            Ok(Zeroizing::new([7; 32]))
        }
    }

    /// A CA folder and a key store folder side by side, as in a data folder.
    struct Folders {
        _root: tempfile::TempDir,
        tls: PathBuf,
        keys: SealedKeyStore,
    }

    fn folders() -> Folders {
        let root = tempfile::tempdir().unwrap();
        let tls = root.path().join("tls");
        let keys = SealedKeyStore::open(&root.path().join("keys"), Box::new(FixedKek)).unwrap();
        Folders { _root: root, tls, keys }
    }

    fn names() -> (Vec<String>, Vec<IpAddr>) {
        (vec!["localhost".into(), "hearth.local".into()], vec!["127.0.0.1".parse().unwrap()])
    }

    fn version_count(keys: &SealedKeyStore, name: &str) -> usize {
        keys.versions(name).unwrap().len()
    }

    #[test]
    fn ca_folder_holds_private_certificates_only_and_is_reused() {
        let f = folders();
        let (dns, ips) = names();

        let ca = HouseholdCa::load_or_create(&f.tls, &f.keys).unwrap();
        let first = ca.server_identity(&f.keys, &dns, &ips).unwrap();
        assert!(first.reissued);
        let mut files: Vec<String> =
            fs::read_dir(&f.tls).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        files.sort();
        assert_eq!(files, [CA_CERT_FILE, SERVER_CERT_FILE]);
        for file in [CA_CERT_FILE, SERVER_CERT_FILE] {
            let mode = fs::metadata(f.tls.join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file} has mode {mode:o}");
        }

        let again = HouseholdCa::load_or_create(&f.tls, &f.keys).unwrap();
        assert_eq!(again.cert_pem(), ca.cert_pem());
        let second = again.server_identity(&f.keys, &dns, &ips).unwrap();
        assert!(!second.reissued);
        assert_eq!(second.chain[0], first.chain[0]);
        assert_eq!(second.key.secret_der(), first.key.secret_der());
        assert_eq!(version_count(&f.keys, CA_KEY_NAME), 1);
        assert_eq!(version_count(&f.keys, LEAF_KEY_NAME), 1);
    }

    #[test]
    fn new_address_reissues_leaf_under_same_ca() {
        let f = folders();
        let (dns, mut ips) = names();
        let ca = HouseholdCa::load_or_create(&f.tls, &f.keys).unwrap();
        let first = ca.server_identity(&f.keys, &dns, &ips).unwrap();

        ips.push("192.0.2.7".parse().unwrap());
        let second = ca.server_identity(&f.keys, &dns, &ips).unwrap();

        assert!(second.reissued);
        assert_ne!(second.chain[0], first.chain[0]);
        assert_eq!(second.chain[1], first.chain[1]);
        assert_eq!(version_count(&f.keys, LEAF_KEY_NAME), 2);
    }

    #[test]
    fn leaf_not_matching_sealed_key_is_reissued() {
        let f = folders();
        let (dns, ips) = names();
        let ca = HouseholdCa::load_or_create(&f.tls, &f.keys).unwrap();
        let first = ca.server_identity(&f.keys, &dns, &ips).unwrap();
        // A newer key version than the certificate, as after a crash between
        // sealing the key and writing server.pem.
        let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        f.keys.put(LEAF_KEY_NAME, &other.serialize_der()).unwrap();

        let second = ca.server_identity(&f.keys, &dns, &ips).unwrap();

        assert!(second.reissued);
        assert_ne!(second.chain[0], first.chain[0]);
        assert_eq!(version_count(&f.keys, LEAF_KEY_NAME), 3);
        let (_, current) = f.keys.current(LEAF_KEY_NAME).unwrap().unwrap();
        assert_eq!(second.key.secret_der(), current.as_slice());
        let served = KeyPair::try_from(current.as_slice()).unwrap();
        assert!(cert_matches_key(&second.chain[0], &served));
    }

    #[test]
    fn missing_leaf_key_reissues_leaf() {
        let root = tempfile::tempdir().unwrap();
        let tls = root.path().join("tls");
        let (dns, ips) = names();
        let keys = SealedKeyStore::open(&root.path().join("keys"), Box::new(FixedKek)).unwrap();
        let ca = HouseholdCa::load_or_create(&tls, &keys).unwrap();
        let first = ca.server_identity(&keys, &dns, &ips).unwrap();
        fs::remove_file(root.path().join("keys/tls-leaf.v1.sealed")).unwrap();

        let second = ca.server_identity(&keys, &dns, &ips).unwrap();

        assert!(second.reissued);
        assert_ne!(second.chain[0], first.chain[0]);
        assert_eq!(second.chain[1], first.chain[1]);
    }

    #[test]
    fn certificate_load_without_ca_fails_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");

        let err = HouseholdCa::load_certificate(&tls).err().expect("missing CA must fail");

        assert!(matches!(err, PqcError::MissingCa { .. }), "{err}");
        assert!(!tls.exists(), "load created the folder");
    }

    #[test]
    fn ca_certificate_without_sealed_key_is_rejected() {
        let f = folders();
        let other = folders();
        let ca = HouseholdCa::load_or_create(&f.tls, &f.keys).unwrap();

        let err = HouseholdCa::load_or_create(&f.tls, &other.keys).err().expect("missing CA key must fail");

        assert!(matches!(err, PqcError::MissingCaKey { .. }), "{err}");
        assert!(err.to_string().contains("restore the data folder's `keys` folder"), "{err}");
        assert_eq!(fs::read_to_string(f.tls.join(CA_CERT_FILE)).unwrap(), ca.cert_pem(), "CA certificate was replaced");
        assert_eq!(version_count(&other.keys, CA_KEY_NAME), 0);
    }

    #[test]
    fn corrupt_sealed_ca_key_is_reported_with_path() {
        let root = tempfile::tempdir().unwrap();
        let tls = root.path().join("tls");
        let keys = SealedKeyStore::open(&root.path().join("keys"), Box::new(FixedKek)).unwrap();
        HouseholdCa::load_or_create(&tls, &keys).unwrap();
        let sealed = root.path().join("keys/household-ca.v1.sealed");
        let mut bytes = fs::read(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::remove_file(&sealed).unwrap();
        fs::write(&sealed, bytes).unwrap();

        let err = HouseholdCa::load_or_create(&tls, &keys).err().expect("corrupt key must fail");

        assert!(matches!(err, PqcError::CaKeyUnavailable { .. }), "{err}");
        assert!(err.to_string().contains(&sealed.display().to_string()), "{err}");
    }
}
