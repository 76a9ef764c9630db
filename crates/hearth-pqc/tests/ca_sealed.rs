//! The household CA and the TLS leaf with their private keys in the sealed
//! key store. The tests cover round trips through real files and the upgrade
//! from the plaintext layout of earlier releases. They also cover a data
//! folder moved to a machine with another KEK, and reissue.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hearth_pqc::ca::{CA_KEY_NAME, LEAF_KEY_NAME, open_key_store};
use hearth_pqc::keystore::{FileKek, KekSource, KeyStoreError, KeyVersion, SealedKeyStore, Zeroizing};
use hearth_pqc::{HouseholdCa, KeyExchangePolicy, PqcError, server_config};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

/// A KEK source with a fixed key, standing in for one machine's KEK.
struct FixedKek([u8; 32]);

impl KekSource for FixedKek {
    fn name(&self) -> &'static str {
        "fixed"
    }

    fn load_or_create(&self) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
        Ok(Zeroizing::new(self.0))
    }
}

/// A data folder with `tls` and `keys` inside, as `hearth serve` lays it out.
struct DataFolder {
    root: tempfile::TempDir,
}

impl DataFolder {
    fn new() -> Self {
        Self { root: tempfile::tempdir().unwrap() }
    }

    fn tls(&self) -> PathBuf {
        self.root.path().join("tls")
    }

    fn keys(&self) -> PathBuf {
        self.root.path().join("keys")
    }

    fn open_file_kek(&self) -> SealedKeyStore {
        SealedKeyStore::open(&self.keys(), Box::new(FileKek::in_dir(&self.keys()))).unwrap()
    }
}

fn names() -> (Vec<String>, Vec<IpAddr>) {
    (vec!["localhost".to_owned()], vec!["127.0.0.1".parse().unwrap()])
}

/// Lists the file names in `dir`, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

/// Asserts that no file under `dir` contains a PEM private key or `secret`.
fn assert_no_plaintext_key(dir: &Path, secret: &[u8]) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_no_plaintext_key(&path, secret);
            continue;
        }
        let bytes = fs::read(&path).unwrap();
        assert!(!contains(&bytes, b"PRIVATE KEY"), "{} holds a PEM private key", path.display());
        assert!(!contains(&bytes, secret), "{} holds the key's DER bytes", path.display());
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// The files an earlier release wrote: a CA and a leaf for localhost and
/// 127.0.0.1, with both keys as plaintext PEM.
struct LegacyLayout {
    ca_pem: String,
    ca_key_der: Vec<u8>,
    leaf_der: Vec<u8>,
    leaf_key_der: Vec<u8>,
}

fn write_legacy_layout(tls: &Path) -> LegacyLayout {
    fs::create_dir_all(tls).unwrap();

    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params.distinguished_name.push(DnType::CommonName, "Hearth household CA (old release)");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();

    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf_params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let issuer = Issuer::from_ca_cert_pem(&ca_cert.pem(), &ca_key).unwrap();
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    fs::write(tls.join("ca.pem"), ca_cert.pem()).unwrap();
    fs::write(tls.join("ca-key.pem"), ca_key.serialize_pem()).unwrap();
    fs::write(tls.join("server.pem"), leaf_cert.pem()).unwrap();
    fs::write(tls.join("server-key.pem"), leaf_key.serialize_pem()).unwrap();
    LegacyLayout {
        ca_pem: ca_cert.pem(),
        ca_key_der: ca_key.serialize_der(),
        leaf_der: leaf_cert.der().to_vec(),
        leaf_key_der: leaf_key.serialize_der(),
    }
}

#[test]
fn ca_and_leaf_round_trip_through_store() {
    let data = DataFolder::new();
    let (dns, ips) = names();
    let keys = data.open_file_kek();
    let ca = HouseholdCa::load_or_create(&data.tls(), &keys).unwrap();
    let first = ca.server_identity(&keys, &dns, &ips).unwrap();
    let ca_pem = ca.cert_pem().to_owned();
    drop((ca, keys));

    let keys = data.open_file_kek();
    let ca = HouseholdCa::load_or_create(&data.tls(), &keys).unwrap();
    let second = ca.server_identity(&keys, &dns, &ips).unwrap();

    assert_eq!(ca.cert_pem(), ca_pem);
    assert!(!second.reissued, "a reopened store did not return the same leaf");
    assert_eq!(second.chain, first.chain);
    assert_eq!(second.key.secret_der(), first.key.secret_der());
    let (leaf_version, leaf_key) = keys.current(LEAF_KEY_NAME).unwrap().unwrap();
    assert_eq!(leaf_version, KeyVersion::new(1));
    assert_eq!(leaf_key.as_slice(), second.key.secret_der());
    assert!(keys.current(CA_KEY_NAME).unwrap().is_some());
    assert_eq!(file_names(&data.tls()), ["ca.pem", "server.pem"]);
    assert_no_plaintext_key(data.root.path(), second.key.secret_der());
    server_config(second.chain, second.key, KeyExchangePolicy::HybridPreferred).unwrap();
}

#[test]
fn plaintext_upgrade_imports_and_removes_pem_keys() {
    let data = DataFolder::new();
    let (dns, ips) = names();
    let legacy = write_legacy_layout(&data.tls());
    // A crashed write of an earlier release could leave a key in this file.
    fs::write(data.tls().join("server-key.tmp"), "-----BEGIN PRIVATE KEY-----\n").unwrap();
    let keys = data.open_file_kek();

    let ca = HouseholdCa::load_or_create(&data.tls(), &keys).unwrap();
    let identity = ca.server_identity(&keys, &dns, &ips).unwrap();

    assert_eq!(fs::read_to_string(data.tls().join("ca.pem")).unwrap(), legacy.ca_pem, "CA certificate changed");
    assert_eq!(ca.cert_pem(), legacy.ca_pem);
    assert_eq!(file_names(&data.tls()), ["ca.pem", "server.pem"]);
    let (ca_version, ca_key) = keys.current(CA_KEY_NAME).unwrap().unwrap();
    assert_eq!(ca_version, KeyVersion::new(1));
    assert_eq!(ca_key.as_slice(), legacy.ca_key_der);
    let (leaf_version, leaf_key) = keys.current(LEAF_KEY_NAME).unwrap().unwrap();
    assert_eq!(leaf_version, KeyVersion::new(1));
    assert_eq!(leaf_key.as_slice(), legacy.leaf_key_der);
    assert!(!identity.reissued, "the imported leaf still matched and should have been kept");
    assert_eq!(identity.chain[0].as_ref(), legacy.leaf_der);
    assert_no_plaintext_key(data.root.path(), &legacy.ca_key_der);
    assert_no_plaintext_key(data.root.path(), &legacy.leaf_key_der);

    let again = HouseholdCa::load_or_create(&data.tls(), &keys).unwrap();
    assert_eq!(again.cert_pem(), legacy.ca_pem);
    assert_eq!(keys.versions(CA_KEY_NAME).unwrap().len(), 1, "a second start imported again");
}

#[test]
fn interrupted_upgrade_does_not_seal_twice() {
    let data = DataFolder::new();
    let legacy = write_legacy_layout(&data.tls());
    let keys = data.open_file_kek();
    // The previous start sealed the CA key, then stopped before deleting the file.
    keys.put(CA_KEY_NAME, &legacy.ca_key_der).unwrap();

    HouseholdCa::load_or_create(&data.tls(), &keys).unwrap();

    assert_eq!(keys.versions(CA_KEY_NAME).unwrap().len(), 1);
    assert!(!data.tls().join("ca-key.pem").exists());
    assert!(!data.tls().join("server-key.pem").exists());
}

#[test]
fn mismatched_plaintext_ca_key_is_kept() {
    let data = DataFolder::new();
    write_legacy_layout(&data.tls());
    let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    fs::write(data.tls().join("ca-key.pem"), other.serialize_pem()).unwrap();
    let keys = data.open_file_kek();

    let err = HouseholdCa::load_or_create(&data.tls(), &keys).err().expect("mismatched CA key must fail");

    assert!(matches!(err, PqcError::CaKeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("ca-key.pem"), "{err}");
    assert!(data.tls().join("ca-key.pem").exists(), "the only copy of a key was deleted");
    assert!(keys.current(CA_KEY_NAME).unwrap().is_none());
}

#[test]
fn copied_data_folder_with_other_kek_fails_clearly() {
    let original = DataFolder::new();
    let keys = SealedKeyStore::open(&original.keys(), Box::new(FixedKek([1; 32]))).unwrap();
    let ca = HouseholdCa::load_or_create(&original.tls(), &keys).unwrap();
    let (dns, ips) = names();
    ca.server_identity(&keys, &dns, &ips).unwrap();
    drop((ca, keys));

    let copy = DataFolder::new();
    for folder in ["tls", "keys"] {
        fs::create_dir(copy.root.path().join(folder)).unwrap();
        for name in file_names(&original.root.path().join(folder)) {
            fs::copy(original.root.path().join(folder).join(&name), copy.root.path().join(folder).join(&name))
                .unwrap();
        }
    }
    let err = open_key_store(&copy.keys(), Box::new(FixedKek([2; 32]))).expect_err("another KEK must fail");

    assert!(matches!(&err, PqcError::KeyStoreUnavailable { dir, .. } if *dir == copy.keys()), "{err}");
    let message = err.to_string();
    assert!(message.contains(&copy.keys().display().to_string()), "{message}");
    assert!(message.contains("restore that KEK"), "{message}");
    assert!(message.contains("move the data folder back"), "{message}");
    assert_eq!(file_names(&copy.tls()), ["ca.pem", "server.pem"]);
}

#[test]
fn sealed_ca_key_under_other_kek_fails_clearly() {
    let original = DataFolder::new();
    let keys = SealedKeyStore::open(&original.keys(), Box::new(FixedKek([1; 32]))).unwrap();
    HouseholdCa::load_or_create(&original.tls(), &keys).unwrap();
    drop(keys);
    // A store that already exists under another KEK, into which the CA's
    // files are copied: the store opens, the CA key does not.
    let copy = DataFolder::new();
    let other = SealedKeyStore::open(&copy.keys(), Box::new(FixedKek([2; 32]))).unwrap();
    fs::create_dir(copy.tls()).unwrap();
    fs::copy(original.tls().join("ca.pem"), copy.tls().join("ca.pem")).unwrap();
    let sealed = copy.keys().join("household-ca.v1.sealed");
    fs::copy(original.keys().join("household-ca.v1.sealed"), &sealed).unwrap();

    let err = HouseholdCa::load_or_create(&copy.tls(), &other).err().expect("another KEK must fail");

    assert!(matches!(err, PqcError::CaKeyUnavailable { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&sealed.display().to_string()), "{message}");
    assert!(message.contains(&copy.tls().join("ca.pem").display().to_string()), "{message}");
    assert!(message.contains("restore that KEK"), "{message}");
    assert!(!copy.keys().join("household-ca.v2.sealed").exists(), "a new CA key was sealed in its place");
}

#[test]
fn reissue_makes_new_leaf_version() {
    let data = DataFolder::new();
    let (dns, ips) = names();
    let keys = data.open_file_kek();
    let ca = HouseholdCa::load_or_create(&data.tls(), &keys).unwrap();
    let first = ca.server_identity(&keys, &dns, &ips).unwrap();

    let rotated = ca.reissue_server_identity(&keys, &dns, &ips).unwrap();

    assert!(rotated.reissued);
    assert_ne!(rotated.chain[0], first.chain[0]);
    assert_eq!(rotated.chain[1], first.chain[1], "reissue changed the CA");
    assert_ne!(rotated.key.secret_der(), first.key.secret_der());
    let versions = keys.versions(LEAF_KEY_NAME).unwrap();
    assert_eq!(versions.len(), 2);
    assert!(versions[1].current);
    let old = keys.get(LEAF_KEY_NAME, KeyVersion::new(1)).unwrap().unwrap();
    assert_eq!(old.as_slice(), first.key.secret_der(), "the old version must stay readable");
    let (_, current) = keys.current(LEAF_KEY_NAME).unwrap().unwrap();
    assert_eq!(current.as_slice(), rotated.key.secret_der());
    assert_eq!(keys.versions(CA_KEY_NAME).unwrap().len(), 1);

    let after_restart = ca.server_identity(&keys, &dns, &ips).unwrap();
    assert!(!after_restart.reissued);
    assert_eq!(after_restart.chain[0], rotated.chain[0]);
}

#[test]
fn certificate_loads_without_key_store() {
    let data = DataFolder::new();
    let keys = data.open_file_kek();
    let ca = HouseholdCa::load_or_create(&data.tls(), &keys).unwrap();
    drop(keys);
    fs::remove_dir_all(data.keys()).unwrap();

    let cert = HouseholdCa::load_certificate(&data.tls()).unwrap();

    assert_eq!(cert.pem(), ca.cert_pem());
    assert_eq!(cert.der().unwrap(), ca.cert_der().unwrap());
    assert!(!data.keys().exists(), "loading the certificate created the key store");
}

#[test]
fn missing_ca_certificate_with_sealed_key_is_refused() {
    let data = DataFolder::new();
    let keys = data.open_file_kek();
    HouseholdCa::load_or_create(&data.tls(), &keys).unwrap();
    fs::remove_file(data.tls().join("ca.pem")).unwrap();

    let err = HouseholdCa::load_or_create(&data.tls(), &keys).err().expect("a missing ca.pem must fail");

    let text = err.to_string();
    assert!(matches!(err, PqcError::MissingCaCertificate { .. }), "{text}");
    assert!(text.contains(&data.tls().join("ca.pem").display().to_string()), "{text}");
    assert!(text.contains("hearth ca export"), "{text}");
    assert!(!data.tls().join("ca.pem").exists(), "a new CA certificate was written");
    assert_eq!(keys.versions(CA_KEY_NAME).unwrap().len(), 1, "a new CA key was sealed");
}

#[test]
fn corrupt_ca_certificate_warns_that_a_new_ca_needs_trust_again() {
    let data = DataFolder::new();
    let keys = data.open_file_kek();
    HouseholdCa::load_or_create(&data.tls(), &keys).unwrap();
    fs::write(data.tls().join("ca.pem"), "not a certificate").unwrap();

    let err = HouseholdCa::load_or_create(&data.tls(), &keys).err().expect("a corrupt ca.pem must fail");

    let text = err.to_string();
    assert!(!text.contains("to have a new one generated"), "{text}");
    assert!(text.contains("every device must trust the new CA again"), "{text}");
}

#[test]
fn symlinked_plaintext_ca_key_is_not_imported() {
    let data = DataFolder::new();
    let legacy = write_legacy_layout(&data.tls());
    let elsewhere = data.root.path().join("backup-ca-key.pem");
    fs::rename(data.tls().join("ca-key.pem"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, data.tls().join("ca-key.pem")).unwrap();
    let keys = data.open_file_kek();

    let err = HouseholdCa::load_or_create(&data.tls(), &keys).err().expect("a symlinked key must be refused");

    let text = err.to_string();
    assert!(matches!(err, PqcError::PlaintextKeyLinked { .. }), "{text}");
    assert!(text.contains("ca-key.pem"), "{text}");
    assert!(text.contains(&elsewhere.display().to_string()), "{text}");
    assert!(keys.current(CA_KEY_NAME).unwrap().is_none(), "the key was sealed");
    assert!(data.tls().join("ca-key.pem").is_symlink());
    assert!(contains(&fs::read(&elsewhere).unwrap(), b"PRIVATE KEY"));
    assert_eq!(fs::read_to_string(data.tls().join("ca.pem")).unwrap(), legacy.ca_pem);
}

#[test]
fn hard_linked_plaintext_leaf_key_is_not_imported() {
    let data = DataFolder::new();
    write_legacy_layout(&data.tls());
    fs::hard_link(data.tls().join("server-key.pem"), data.root.path().join("server-key-copy.pem")).unwrap();
    let keys = data.open_file_kek();

    let err = HouseholdCa::load_or_create(&data.tls(), &keys).err().expect("a hard-linked key must be refused");

    let text = err.to_string();
    assert!(matches!(err, PqcError::PlaintextKeyLinked { .. }), "{text}");
    assert!(text.contains("server-key.pem"), "{text}");
    assert!(text.contains("2 hard links"), "{text}");
    assert!(keys.current(LEAF_KEY_NAME).unwrap().is_none(), "the key was sealed");
    assert!(data.tls().join("server-key.pem").exists());
}
