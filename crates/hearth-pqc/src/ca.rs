//! The household certificate authority and the server certificate.
//!
//! On first run Hearth makes a CA (ECDSA P-256, ten years) and a server leaf
//! signed by it for the host's names and addresses. Clients pin the CA, not
//! the leaf, because webpki rejects a self-signed leaf and because the leaf is
//! reissued whenever the host gains a name or address. Private keys are
//! written with mode 0600 in a folder with mode 0700.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use crate::PqcError;

const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
const SERVER_CERT_FILE: &str = "server.pem";
const SERVER_KEY_FILE: &str = "server-key.pem";

/// Validity of the household CA.
const CA_VALIDITY: Duration = Duration::days(3650);
/// Validity of a server leaf. Apple platforms reject leaves valid for longer
/// than 398 days, so the leaf stays under that.
const LEAF_VALIDITY: Duration = Duration::days(397);
/// A leaf this close to expiry is reissued at start.
const LEAF_RENEW_BEFORE: Duration = Duration::days(30);

/// The household CA: its certificate and signing key, stored in one folder.
pub struct HouseholdCa {
    dir: PathBuf,
    cert_pem: String,
    key: KeyPair,
}

/// The server's certificate chain and private key, ready for rustls.
pub struct ServerIdentity {
    /// Leaf first, then the CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// Whether this run made a new leaf (first run, new names, or renewal).
    pub reissued: bool,
}

impl HouseholdCa {
    /// Loads the CA from `dir`, failing when there is none, so that a
    /// mistyped folder never produces a CA the server does not use.
    pub fn load(dir: &Path) -> Result<Self, PqcError> {
        if !dir.join(CA_CERT_FILE).exists() || !dir.join(CA_KEY_FILE).exists() {
            return Err(PqcError::MissingCa { dir: dir.to_owned() });
        }
        Self::load_or_create(dir)
    }

    /// Loads the CA from `dir`, or creates one there if none exists yet.
    pub fn load_or_create(dir: &Path) -> Result<Self, PqcError> {
        create_private_dir(dir)?;
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);

        if cert_path.exists() && key_path.exists() {
            let cert_pem = read_to_string(&cert_path)?;
            let key_pem = read_to_string(&key_path)?;
            let key = KeyPair::from_pem(&key_pem).map_err(|e| PqcError::InvalidPem {
                path: key_path.clone(),
                reason: e.to_string(),
            })?;
            Issuer::from_ca_cert_pem(&cert_pem, &key).map_err(|e| PqcError::InvalidPem {
                path: cert_path.clone(),
                reason: e.to_string(),
            })?;
            tracing::debug!(path = %cert_path.display(), "household CA loaded");
            return Ok(Self { dir: dir.to_owned(), cert_pem, key });
        }

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

        write_private(&key_path, key.serialize_pem().as_bytes())?;
        write_private(&cert_path, cert.pem().as_bytes())?;
        tracing::info!(path = %cert_path.display(), "household CA created");
        Ok(Self { dir: dir.to_owned(), cert_pem: cert.pem(), key })
    }

    /// Returns the CA certificate in PEM form, for `hearth ca export` and clients.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Decodes the CA certificate to DER.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, PqcError> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).map_err(|e| PqcError::InvalidPem {
            path: self.dir.join(CA_CERT_FILE),
            reason: e.to_string(),
        })
    }

    /// Loads the server leaf, reissuing it when it is missing, does not cover
    /// every name in `dns_names` and `ips`, or expires within 30 days.
    pub fn server_identity(&self, dns_names: &[String], ips: &[IpAddr]) -> Result<ServerIdentity, PqcError> {
        let cert_path = self.dir.join(SERVER_CERT_FILE);
        let key_path = self.dir.join(SERVER_KEY_FILE);
        let expected = expected_names(dns_names, ips);

        let mut reissued = false;
        if !leaf_is_current(&cert_path, &key_path, &expected) {
            self.issue_leaf(&cert_path, &key_path, dns_names, ips)?;
            reissued = true;
        }

        let leaf = CertificateDer::from_pem_file(&cert_path).map_err(|e| PqcError::InvalidPem {
            path: cert_path.clone(),
            reason: e.to_string(),
        })?;
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| PqcError::InvalidPem {
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
        Ok(ServerIdentity { chain: vec![leaf, self.cert_der()?], key, reissued })
    }

    /// Issues a new server leaf with a new key now, whatever the state of
    /// the stored one: the emergency rotation after a suspected key leak.
    pub fn reissue_server_identity(&self, dns_names: &[String], ips: &[IpAddr]) -> Result<ServerIdentity, PqcError> {
        let cert_path = self.dir.join(SERVER_CERT_FILE);
        let key_path = self.dir.join(SERVER_KEY_FILE);
        self.issue_leaf(&cert_path, &key_path, dns_names, ips)?;
        self.server_identity(dns_names, ips)
            .map(|identity| ServerIdentity { reissued: true, ..identity })
    }

    fn issue_leaf(&self, cert_path: &Path, key_path: &Path, dns_names: &[String], ips: &[IpAddr]) -> Result<(), PqcError> {
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).map_err(|e| PqcError::InvalidPem {
            path: self.dir.join(CA_CERT_FILE),
            reason: e.to_string(),
        })?;
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

        write_private(key_path, key.serialize_pem().as_bytes())?;
        write_private(cert_path, cert.pem().as_bytes())?;
        tracing::info!(path = %cert_path.display(), names = ?dns_names, addresses = ?ips, "server certificate issued");
        Ok(())
    }
}

/// The SAN entries a leaf must carry, as strings comparable with what
/// x509-parser reports.
fn expected_names(dns_names: &[String], ips: &[IpAddr]) -> Vec<String> {
    let mut names: Vec<String> = dns_names.iter().map(|n| n.to_ascii_lowercase()).collect();
    names.extend(ips.iter().map(IpAddr::to_string));
    names
}

/// Checks whether the stored leaf exists, parses, covers every expected name and is
/// not close to expiry.
fn leaf_is_current(cert_path: &Path, key_path: &Path, expected: &[String]) -> bool {
    if !key_path.exists() {
        return false;
    }
    let Ok(pem) = fs::read_to_string(cert_path) else {
        return false;
    };
    let Ok(der) = CertificateDer::from_pem_slice(pem.as_bytes()) else {
        tracing::warn!(path = %cert_path.display(), "stored server certificate is unreadable, reissuing");
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        tracing::warn!(path = %cert_path.display(), "stored server certificate does not parse, reissuing");
        return false;
    };
    let not_after = cert.validity().not_after.to_datetime();
    if not_after - OffsetDateTime::now_utc() < LEAF_RENEW_BEFORE {
        return false;
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
    expected.iter().all(|name| present.contains(name))
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

/// Writes a file with mode 0600 through a temporary file and a rename, so a
/// crash mid-write never leaves a truncated key behind.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), PqcError> {
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
    use std::os::unix::fs::PermissionsExt;

    fn names() -> (Vec<String>, Vec<IpAddr>) {
        (vec!["localhost".into(), "hearth.local".into()], vec!["127.0.0.1".parse().unwrap()])
    }

    #[test]
    fn ca_files_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (dns, ips) = names();

        let ca = HouseholdCa::load_or_create(dir.path()).unwrap();
        let first = ca.server_identity(&dns, &ips).unwrap();
        assert!(first.reissued);
        for file in [CA_CERT_FILE, CA_KEY_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE] {
            let mode = fs::metadata(dir.path().join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file} has mode {mode:o}");
        }

        let again = HouseholdCa::load_or_create(dir.path()).unwrap();
        assert_eq!(again.cert_pem(), ca.cert_pem());
        let second = again.server_identity(&dns, &ips).unwrap();
        assert!(!second.reissued);
        assert_eq!(second.chain[0], first.chain[0]);
    }

    #[test]
    fn new_address_reissues_leaf_under_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let (dns, mut ips) = names();
        let ca = HouseholdCa::load_or_create(dir.path()).unwrap();
        let first = ca.server_identity(&dns, &ips).unwrap();

        ips.push("192.0.2.7".parse().unwrap());
        let second = ca.server_identity(&dns, &ips).unwrap();

        assert!(second.reissued);
        assert_ne!(second.chain[0], first.chain[0]);
        assert_eq!(second.chain[1], first.chain[1]);
    }

    #[test]
    fn load_without_ca_fails_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");

        let err = HouseholdCa::load(&tls).err().expect("missing CA must fail");

        assert!(matches!(err, PqcError::MissingCa { .. }), "{err}");
        assert!(!tls.exists(), "load created the folder");
    }

    #[test]
    fn corrupt_ca_key_is_reported_with_path() {
        let dir = tempfile::tempdir().unwrap();
        HouseholdCa::load_or_create(dir.path()).unwrap();
        fs::write(dir.path().join(CA_KEY_FILE), "not a key").unwrap();

        let err = HouseholdCa::load_or_create(dir.path()).err().expect("corrupt key must fail");
        assert!(err.to_string().contains(CA_KEY_FILE), "{err}");
    }
}
