//! Real TLS handshakes over loopback TCP between rustls clients and the
//! Hearth server configuration.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use hearth_pqc::keystore::{FileKek, SealedKeyStore};
use hearth_pqc::{HouseholdCa, KeyExchangePolicy, client_config, group_name, server_config};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, RootCertStore, ServerConnection, StreamOwned};

/// Opens a sealed key store in `data/keys` with a file KEK, as a data folder has.
fn key_store(data: &std::path::Path) -> SealedKeyStore {
    let keys = data.join("keys");
    SealedKeyStore::open(&keys, Box::new(FileKek::in_dir(&keys))).unwrap()
}

struct Outcome {
    client_group: Result<String, String>,
    server_group: Option<String>,
}

/// Runs one handshake and echo between a server with `server_policy` and a
/// client with `client_policy`, returning the group each side saw.
fn handshake(server_policy: KeyExchangePolicy, client_policy: KeyExchangePolicy) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let keys = key_store(dir.path());
    let ca = HouseholdCa::load_or_create(&dir.path().join("tls"), &keys).unwrap();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let identity = ca.server_identity(&keys, &["localhost".to_owned()], &[ip]).unwrap();
    let server = server_config(identity.chain, identity.key, server_policy).unwrap();

    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().unwrap()).unwrap();
    let client = client_config(roots, client_policy, &[b"http/1.1"]).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server_thread = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let conn = ServerConnection::new(Arc::clone(&server)).unwrap();
        let mut tls = StreamOwned::new(conn, tcp);
        let mut buf = [0u8; 4];
        if tls.read_exact(&mut buf).is_err() {
            return None;
        }
        tls.write_all(&buf).unwrap();
        tls.flush().unwrap();
        tls.conn.negotiated_key_exchange_group().map(|g| group_name(g.name()))
    });

    let tcp = TcpStream::connect(addr).unwrap();
    let conn = ClientConnection::new(client, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    let client_group = tls
        .write_all(b"ping")
        .and_then(|()| {
            let mut echo = [0u8; 4];
            tls.read_exact(&mut echo)?;
            assert_eq!(&echo, b"ping");
            Ok(())
        })
        .map(|()| group_name(tls.conn.negotiated_key_exchange_group().unwrap().name()))
        .map_err(|e| e.to_string());
    drop(tls);

    Outcome { client_group, server_group: server_thread.join().unwrap() }
}

#[test]
fn hybrid_client_negotiates_x25519mlkem768() {
    let outcome = handshake(KeyExchangePolicy::HybridPreferred, KeyExchangePolicy::HybridPreferred);

    assert_eq!(outcome.client_group.unwrap(), "X25519MLKEM768");
    assert_eq!(outcome.server_group.as_deref(), Some("X25519MLKEM768"));
}

#[test]
fn classical_client_falls_back_to_x25519() {
    let outcome = handshake(KeyExchangePolicy::HybridPreferred, KeyExchangePolicy::ClassicalOnly);

    assert_eq!(outcome.client_group.unwrap(), "X25519");
    assert_eq!(outcome.server_group.as_deref(), Some("X25519"));
}

#[test]
fn pq_only_rejects_x25519_client() {
    let outcome = handshake(KeyExchangePolicy::PqOnly, KeyExchangePolicy::ClassicalOnly);

    assert!(outcome.client_group.is_err(), "classical client connected to a pq-only server");
    assert_eq!(outcome.server_group, None);
}

#[test]
fn client_without_household_ca_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let keys = key_store(dir.path());
    let ca = HouseholdCa::load_or_create(&dir.path().join("tls"), &keys).unwrap();
    let identity = ca.server_identity(&keys, &["localhost".to_owned()], &[]).unwrap();
    let server = server_config(identity.chain, identity.key, KeyExchangePolicy::HybridPreferred).unwrap();

    // A client that trusts a different household's CA.
    let other_dir = tempfile::tempdir().unwrap();
    let other_keys = key_store(other_dir.path());
    let other = HouseholdCa::load_or_create(&other_dir.path().join("tls"), &other_keys).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(other.cert_der().unwrap()).unwrap();
    let client = client_config(roots, KeyExchangePolicy::HybridPreferred, &[]).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server_thread = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut tls = StreamOwned::new(ServerConnection::new(server).unwrap(), tcp);
        let mut buf = [0u8; 1];
        tls.read(&mut buf).is_ok()
    });
    let tcp = TcpStream::connect(addr).unwrap();
    let conn = ClientConnection::new(client, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    let err = tls.write_all(b"x").and_then(|()| tls.flush()).and_then(|()| tls.read(&mut [0u8; 1]));

    assert!(err.is_err(), "client accepted a certificate from another CA");
    let _ = server_thread.join();
}
