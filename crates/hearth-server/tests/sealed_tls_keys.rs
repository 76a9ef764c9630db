//! The household CA key and the TLS leaf key stay sealed on a running
//! server. No file of the data folder contains a private key, and emergency
//! rotation still serves a new certificate. `hearth ca export` works without
//! the key store. A data folder of an earlier release (plaintext PEM keys) is
//! upgraded without changing the CA that clients pinned.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Server;
use hearth_pqc::KeyExchangePolicy;
use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, ServerName};

/// Returns the certificates a fresh TLS connection to `addr` receives, leaf
/// first, trusting only the CA certificate in `ca_pem`.
fn served_chain(addr: SocketAddr, ca_pem: &[u8]) -> Vec<Vec<u8>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem).expect("CA certificate PEM")).expect("valid CA");
    let config = hearth_pqc::client_config(roots, KeyExchangePolicy::HybridPreferred, &[b"http/1.1"]).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);

    tls.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    tls.flush().unwrap();
    let certs = tls.conn.peer_certificates().expect("server sent certificates");
    certs.iter().map(|cert| cert.to_vec()).collect()
}

/// Lists every regular file under `dir`, recursively. Sockets, such as the
/// host admin socket, contain no data, and reading one fails with ENXIO.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else if path.is_file() {
            files.push(path);
        }
    }
    files
}

/// Asserts that no file under the data folder contains a PEM private key and
/// that `tls/` contains only `ca.pem` and `server.pem`, each holding only
/// certificates.
fn assert_keys_sealed(data_dir: &Path) {
    for path in files_under(data_dir) {
        let bytes = std::fs::read(&path).unwrap();
        let found = bytes.windows(b"PRIVATE KEY".len()).any(|window| window == b"PRIVATE KEY");
        assert!(!found, "{} contains a PEM private key", path.display());
    }

    let tls = data_dir.join("tls");
    let mut names: Vec<String> =
        std::fs::read_dir(&tls).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["ca.pem", "server.pem"], "unexpected files in {}", tls.display());
    for name in &names {
        let bytes = std::fs::read(tls.join(name)).unwrap();
        let sections: Vec<(SectionKind, Vec<u8>)> =
            <(SectionKind, Vec<u8>)>::pem_slice_iter(&bytes).collect::<Result<_, _>>().unwrap();
        assert!(!sections.is_empty(), "{name} holds no PEM section");
        for (kind, _) in &sections {
            assert_eq!(*kind, SectionKind::Certificate, "{name} holds a {kind:?} section");
        }
    }
}

#[test]
fn keys_stay_sealed_through_rotation() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    let ca_pem = std::fs::read(server.ca_file()).unwrap();
    let keys = server.data_dir.join("keys");

    let before = served_chain(server.addr, &ca_pem);
    assert_keys_sealed(&server.data_dir);
    assert!(keys.join("household-ca.v1.sealed").exists());
    assert!(keys.join("tls-leaf.v1.sealed").exists());
    let leaf_on_disk = CertificateDer::from_pem_file(server.data_dir.join("tls/server.pem")).unwrap();
    assert_eq!(before[0], leaf_on_disk.to_vec(), "the served leaf is not tls/server.pem");

    let admin = server.admin_device();
    let response = admin.request(reqwest::Method::POST, "/api/v1/admin/rotate-keys", Some(&serde_json::json!({ "reason": "sealed key test" })));
    assert!(response.status().is_success(), "rotation returned {}", response.status());
    let after = served_chain(server.addr, &ca_pem);

    assert_ne!(after[0], before[0], "new connections still get the old certificate");
    assert_eq!(after.last(), before.last(), "rotation changed the CA");
    assert!(keys.join("tls-leaf.v2.sealed").exists(), "rotation did not seal a new leaf key version");
    assert!(!keys.join("household-ca.v2.sealed").exists(), "rotation replaced the CA key");
    assert_keys_sealed(&server.data_dir);
}

#[test]
fn ca_export_works_without_key_store() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    let copy = tempfile::tempdir().unwrap();
    std::fs::create_dir(copy.path().join("tls")).unwrap();
    std::fs::copy(server.ca_file(), copy.path().join("tls/ca.pem")).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .env("HEARTH_CONFIG", "/dev/null")
        .args(["ca", "export", "--data-dir"])
        .arg(copy.path())
        .output()
        .unwrap();

    assert!(output.status.success(), "hearth ca export failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.stdout, std::fs::read(server.ca_file()).unwrap());
    assert!(!copy.path().join("keys").exists(), "ca export created a key store");
}

/// Writes the plaintext files an earlier release wrote in `tls/`: a CA and a
/// leaf for localhost and 127.0.0.1. Returns the CA certificate in PEM form.
fn write_legacy_tls(tls: &Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};

    std::fs::create_dir_all(tls).unwrap();
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params.distinguished_name.push(DnType::CommonName, "Hearth household CA (earlier release)");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();

    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf_params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let leaf_cert = leaf_params.signed_by(&leaf_key, &Issuer::from_ca_cert_pem(&ca_cert.pem(), &ca_key).unwrap()).unwrap();

    std::fs::write(tls.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(tls.join("ca-key.pem"), ca_key.serialize_pem()).unwrap();
    std::fs::write(tls.join("server.pem"), leaf_cert.pem()).unwrap();
    std::fs::write(tls.join("server-key.pem"), leaf_key.serialize_pem()).unwrap();
    ca_cert.pem()
}

/// `hearth serve` on a data folder the test prepared, killed on drop.
/// [`Server`] always starts on a fresh folder, so this starts its own.
struct ServeOn {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl ServeOn {
    fn start(data_dir: &Path, library: &Path, log: PathBuf) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["serve", "--listen", "127.0.0.1:0", "--no-watch", "--data-dir"])
            .arg(data_dir)
            .arg("--library")
            .arg(library)
            .env("RUST_LOG", "info")
            .env("HEARTH_CONFIG", "/dev/null")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start hearth serve");

        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("hearth serve exited early; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            };
            if let Some(rest) = line.trim().strip_prefix("Listening:") {
                break rest.trim().trim_start_matches("https://").parse().expect("listening address");
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, addr, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServeOn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_upgrades_plaintext_keys_and_keeps_ca() {
    let data = tempfile::tempdir().unwrap();
    let library = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let tls = data.path().join("tls");
    let ca_pem = write_legacy_tls(&tls);
    let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap().to_vec();

    let server = ServeOn::start(data.path(), library.path(), logs.path().join("server.log"));
    let chain = served_chain(server.addr, ca_pem.as_bytes());

    assert_eq!(chain.last(), Some(&ca_der), "the served chain does not end in the pinned CA");
    assert_eq!(std::fs::read_to_string(tls.join("ca.pem")).unwrap(), ca_pem, "ca.pem changed");
    assert!(!tls.join("ca-key.pem").exists(), "plaintext CA key is still there");
    assert!(!tls.join("server-key.pem").exists(), "plaintext leaf key is still there");
    assert!(data.path().join("keys/household-ca.v1.sealed").exists());
    assert!(data.path().join("keys/tls-leaf.v1.sealed").exists());
    let log = server.log_text();
    assert_eq!(log.matches("imported plaintext private key").count(), 2, "log:\n{log}");
    assert_keys_sealed(data.path());
}
