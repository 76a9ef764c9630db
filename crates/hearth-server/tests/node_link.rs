//! Link keys between two real `hearth serve` processes, master `node-a` and
//! slave `node-b`, with QKD keys from the test KME and without them.

mod common;

use std::path::Path;
use std::process::Command;

use common::Server;
use hearth_pqc::KeyExchangePolicy;
use hearth_pqc::keystore::{SealedKeyStore, default_kek};
use hearth_pqc::qkd::{LinkPeers, initiate};
use hearth_qkd::test_kme::{TestKme, TestKmeConfig};
use hearth_server::links::records::key_name;
use hearth_server::links::wire::{FinishBody, NodeInfo, OfferBody, ReplyBody};
use serde_json::{Value, json};

const MASTER: &str = "node-a";
const SLAVE: &str = "node-b";

/// A test KME for both nodes, with each node's credentials in PEM files.
struct Kme {
    kme: TestKme,
    files: tempfile::TempDir,
}

impl Kme {
    fn start() -> Self {
        let config = TestKmeConfig { sae_ids: vec![MASTER.to_owned(), SLAVE.to_owned()], ..TestKmeConfig::default() };
        let kme = TestKme::start(config).expect("test KME starts");
        let files = tempfile::tempdir().unwrap();
        std::fs::write(files.path().join("kme-ca.pem"), kme.ca_pem()).unwrap();
        for sae_id in [MASTER, SLAVE] {
            let credentials = kme.credentials(sae_id).unwrap();
            std::fs::write(files.path().join(format!("{sae_id}.pem")), &credentials.cert_pem).unwrap();
            std::fs::write(files.path().join(format!("{sae_id}-key.pem")), credentials.key_pem.as_bytes()).unwrap();
        }
        Self { kme, files }
    }

    /// Returns the `[qkd]` table for `sae_id`.
    fn qkd_table(&self, sae_id: &str) -> String {
        let dir = self.files.path();
        format!(
            "[qkd]\nkme_url = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\nkme_ca = \"{}\"\n",
            self.kme.base_url(),
            dir.join(format!("{sae_id}.pem")).display(),
            dir.join(format!("{sae_id}-key.pem")).display(),
            dir.join("kme-ca.pem").display()
        )
    }
}

/// Starts a node named `sae_id`, with the KME when `kme` is given.
fn start_node(sae_id: &str, kme: Option<&Kme>) -> Server {
    let library = tempfile::tempdir().unwrap();
    let qkd = kme.map(|kme| kme.qkd_table(sae_id)).unwrap_or_default();
    let config = format!("watch = false\n\n[node]\nsae_id = \"{sae_id}\"\n\n{qkd}");
    Server::start_with_config(&[library.path()], &[], &config)
}

/// Creates a link invitation on `server` with `hearth link-invite`.
fn invite(server: &Server) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .env("HEARTH_CONFIG", "/dev/null")
        .args(["link-invite", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "hearth link-invite failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Invite:").map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no invitation printed:\n{stdout}"))
}

/// Asks `master`, over its admin socket as `hearth link` does, to link with
/// `slave`.
fn request_link(master: &Server, slave: &Server, peer_invite: &str, peer_ca_pem: &str) -> (u16, Value) {
    let body = json!({ "peer_url": slave.url(""), "peer_ca_pem": peer_ca_pem, "peer_invite": peer_invite });
    hearth_server::admin_socket::request(&master.data_dir.join("admin.sock"), "POST", "/api/v1/admin/links", Some(&body))
        .expect("link request over the admin socket")
}

/// Links `master` with `slave` with a fresh invitation and the right CA,
/// and returns the master's view of the link.
fn link(master: &Server, slave: &Server) -> Value {
    let ca = std::fs::read_to_string(slave.ca_file()).unwrap();
    let (status, body) = request_link(master, slave, &invite(slave), &ca);
    assert_eq!(status, 200, "link failed: {body}\nmaster log:\n{}\nslave log:\n{}", master.log_text(), slave.log_text());
    body["link"].clone()
}

/// Returns the links a node lists.
fn links(server: &Server) -> Vec<Value> {
    server.get_json("/api/v1/admin/links")["links"].as_array().expect("links array").clone()
}

/// Returns the one link a node lists, checking that it is with `peer`.
fn only_link(server: &Server, peer: &str) -> Value {
    let links = links(server);
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0]["peer_sae_id"], peer);
    links[0].clone()
}

/// Reads the current link key with `peer` from the node's sealed key store.
fn stored_key(server: &Server, peer: &str) -> Vec<u8> {
    let dir = server.data_dir.join("keys");
    let store = SealedKeyStore::open(&dir, default_kek(&dir)).expect("open the node's key store");
    let (_, secret) = store.current(&key_name(peer)).unwrap().expect("link key stored");
    secret[..32].to_vec()
}

/// Checks that neither node's log contains the link key in hex or base64.
fn assert_key_not_logged(master: &Server, slave: &Server) {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    let key = stored_key(master, SLAVE);
    assert_eq!(key, stored_key(slave, MASTER), "stored link keys differ");
    let encodings = [hex::encode(&key), hex::encode_upper(&key), STANDARD.encode(&key), URL_SAFE_NO_PAD.encode(&key)];
    for (name, log) in [("master", master.log_text()), ("slave", slave.log_text())] {
        for encoding in &encodings {
            assert!(!log.contains(&encoding[..16]), "{name} log contains the link key ({encoding})");
        }
    }
}

#[test]
fn link_with_qkd_gives_matching_keys() {
    let kme = Kme::start();
    let master = start_node(MASTER, Some(&kme));
    let slave = start_node(SLAVE, Some(&kme));

    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .env("HEARTH_CONFIG", "/dev/null")
        .args(["link", "--peer", &slave.url(""), "--peer-ca"])
        .arg(slave.ca_file())
        .args(["--peer-invite", &invite(&slave), "--data-dir"])
        .arg(&master.data_dir)
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "hearth link failed: {}\nmaster log:\n{}", String::from_utf8_lossy(&output.stderr), master.log_text());
    let on_master = only_link(&master, SLAVE);
    let on_slave = only_link(&slave, MASTER);
    assert_eq!(on_master["role"], "master");
    assert_eq!(on_slave["role"], "slave");
    assert_eq!(on_master["qkd_used"], true);
    assert_eq!(on_slave["qkd_used"], true);
    assert!(on_master["qkd_key_id"].is_string(), "{on_master}");
    assert_eq!(on_master["qkd_key_id"], on_slave["qkd_key_id"]);
    assert_eq!(on_master["fallback"], Value::Null);
    assert_eq!(on_slave["fallback"], Value::Null);
    assert_eq!(on_master["key_check"], on_slave["key_check"]);
    assert!(stdout.contains("QKD:        used"), "{stdout}");
    assert!(stdout.contains(on_master["key_check"].as_str().unwrap()), "{stdout}");
    assert_key_not_logged(&master, &slave);
}

#[test]
fn kme_down_falls_back_to_xwing() {
    let kme = Kme::start();
    let master = start_node(MASTER, Some(&kme));
    let slave = start_node(SLAVE, Some(&kme));
    let first = link(&master, &slave);

    kme.kme.set_link_down(true);
    let relinked = link(&master, &slave);

    let on_master = only_link(&master, SLAVE);
    let on_slave = only_link(&slave, MASTER);
    assert_eq!(first["qkd_used"], true);
    assert_eq!(relinked, on_master);
    assert_eq!(on_master["key_version"], 2);
    assert_eq!(on_slave["key_version"], 2);
    assert_eq!(on_master["qkd_used"], false);
    assert_eq!(on_slave["qkd_used"], false);
    assert_eq!(on_master["fallback"], "KME unavailable");
    assert_eq!(on_slave["fallback"], "master offered no QKD key");
    assert_eq!(on_master["key_check"], on_slave["key_check"]);
    assert_ne!(on_master["key_check"], first["key_check"]);
    let master_log = master.log_text();
    assert!(master_log.contains("link key uses X-Wing alone"), "{master_log}");
    assert!(master_log.contains("reason=KME unavailable"), "{master_log}");
    assert_key_not_logged(&master, &slave);
}

#[test]
fn slave_without_kme_forces_retry_without_qkd() {
    let kme = Kme::start();
    let master = start_node(MASTER, Some(&kme));
    let slave = start_node(SLAVE, None);

    link(&master, &slave);

    let on_master = only_link(&master, SLAVE);
    let on_slave = only_link(&slave, MASTER);
    assert_eq!(on_master["qkd_used"], false);
    assert_eq!(on_master["qkd_key_id"], Value::Null);
    assert_eq!(on_master["fallback"], "slave could not obtain the QKD key");
    assert_eq!(on_slave["qkd_used"], false);
    assert_eq!(on_master["key_check"], on_slave["key_check"]);
    let master_log = master.log_text();
    let slave_log = slave.log_text();
    assert!(master_log.contains("reason=slave could not obtain the QKD key"), "{master_log}");
    assert!(slave_log.contains("QKD key in link offer unavailable"), "{slave_log}");
    assert_key_not_logged(&master, &slave);
}

#[test]
fn wrong_peer_invite_names_peer_401() {
    let master = start_node(MASTER, None);
    let slave = start_node(SLAVE, None);
    let ca = std::fs::read_to_string(slave.ca_file()).unwrap();

    let (status, body) = request_link(&master, &slave, "not-an-invitation", &ca);

    let error = body["error"].as_str().unwrap();
    assert_eq!(status, 502, "{body}");
    assert!(error.contains("401"), "{error}");
    assert!(error.contains(&slave.url("")), "{error}");
    assert!(error.contains("peer_invite"), "{error}");
    assert!(!master.log_text().contains("not-an-invitation"), "peer invitation logged");
    assert!(links(&master).is_empty());
    assert!(links(&slave).is_empty());
}

#[test]
fn untrusted_peer_ca_is_tls_error() {
    let master = start_node(MASTER, None);
    let slave = start_node(SLAVE, None);
    let wrong_ca = std::fs::read_to_string(master.ca_file()).unwrap();

    let (status, body) = request_link(&master, &slave, &invite(&slave), &wrong_ca);

    let error = body["error"].as_str().unwrap();
    assert_eq!(status, 502, "{body}");
    assert!(error.contains("failed to reach peer"), "{error}");
    assert!(error.contains("invalid peer certificate"), "{error}");
    assert!(error.contains("check that peer_ca_pem is the peer's household CA"), "{error}");
    assert!(links(&master).is_empty());
    assert!(links(&slave).is_empty());
}

#[test]
fn tampered_finish_is_rejected() {
    let slave = start_node(SLAVE, None);
    let client = slave.client(KeyExchangePolicy::HybridPreferred);
    let invitation = invite(&slave);
    let post = |path: &str, body: Value| {
        let response = client.post(slave.url(path)).header("hearth-link-invite", &invitation).json(&body).send().unwrap();
        (response.status().as_u16(), response.json::<Value>().unwrap())
    };
    let node: NodeInfo = serde_json::from_value(slave.get_json("/api/v1/admin/node")).unwrap();
    let peers = LinkPeers { master_sae_id: "intruder".to_owned(), slave_sae_id: node.sae_id.clone() };
    let (offer, master) = initiate(&peers, &node.public_key().unwrap(), None).unwrap();

    let (offer_status, reply) = post("/api/v1/admin/links/offer", serde_json::to_value(OfferBody::new(&offer)).unwrap());
    assert_eq!(offer_status, 200, "{reply}");
    let reply: ReplyBody = serde_json::from_value(reply).unwrap();
    let (mut finish, _) = master.confirm(&reply.to_reply().unwrap()).unwrap();
    let genuine = finish.clone();
    finish.confirmation[0] ^= 1;
    let (tampered_status, tampered) =
        post("/api/v1/admin/links/finish", serde_json::to_value(FinishBody::new(reply.handshake_id.clone(), &finish)).unwrap());
    let (replay_status, replay) =
        post("/api/v1/admin/links/finish", serde_json::to_value(FinishBody::new(reply.handshake_id, &genuine)).unwrap());

    assert_eq!(node.sae_id, SLAVE);
    assert_eq!(tampered_status, 400, "{tampered}");
    assert!(tampered["error"].as_str().unwrap().contains("master key confirmation failed"), "{tampered}");
    assert_eq!(replay_status, 404, "handshake must be discarded after a failed finish: {replay}");
    assert!(links(&slave).is_empty());
    assert!(slave.log_text().contains("master key confirmation failed"));
    assert!(!Path::new(&slave.data_dir.join("keys").join(format!("{}.v1.sealed", key_name("intruder")))).exists());
}

/// Posts `body` to `path` on `server` with a link invitation.
fn post_invited(server: &Server, invitation: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let response = server
        .client(KeyExchangePolicy::HybridPreferred)
        .post(server.url(path))
        .header("hearth-link-invite", invitation)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .expect("request to the slave");
    let status = response.status().as_u16();
    (status, response.json().expect("JSON body"))
}

/// Runs one handshake against `slave` as master `MASTER`, through the
/// slave's real endpoints, and returns the offer and finish bodies sent.
fn handshake_with(slave: &Server) -> (OfferBody, FinishBody) {
    let node: NodeInfo = serde_json::from_value(slave.get_json("/api/v1/admin/node")).unwrap();
    let peers = LinkPeers { master_sae_id: MASTER.to_owned(), slave_sae_id: node.sae_id.clone() };
    let (offer, master) = initiate(&peers, &node.public_key().unwrap(), None).unwrap();
    let offer_body = OfferBody::new(&offer);
    let invitation = invite(slave);

    let (status, reply) = post_invited(slave, &invitation, "/api/v1/admin/links/offer", &serde_json::to_vec(&offer_body).unwrap());
    assert_eq!(status, 200, "{reply}");
    let reply: ReplyBody = serde_json::from_value(reply).unwrap();
    let (finish, _) = master.confirm(&reply.to_reply().unwrap()).unwrap();
    let finish_body = FinishBody::new(reply.handshake_id, &finish);
    let (status, result) = post_invited(slave, &invitation, "/api/v1/admin/links/finish", &serde_json::to_vec(&finish_body).unwrap());
    assert_eq!(status, 200, "{result}");
    (offer_body, finish_body)
}

#[test]
fn replayed_offer_cannot_roll_back_the_link_key() {
    let slave = start_node(SLAVE, None);
    let (old_offer, old_finish) = handshake_with(&slave);
    handshake_with(&slave);
    let current = only_link(&slave, MASTER);

    let invitation = invite(&slave);
    let (replay_status, replay) = post_invited(&slave, &invitation, "/api/v1/admin/links/offer", &serde_json::to_vec(&old_offer).unwrap());
    if let Some(id) = replay["handshake_id"].as_str() {
        // Without the fix the slave accepts the replay; finishing it with the
        // recorded confirmation would store the old key as version 3.
        let finish = FinishBody { handshake_id: id.to_owned(), ..old_finish };
        post_invited(&slave, &invitation, "/api/v1/admin/links/finish", &serde_json::to_vec(&finish).unwrap());
    }

    assert_eq!(replay_status, 409, "{replay}");
    assert!(replay["error"].as_str().unwrap().contains("accepted before"), "{replay}");
    let after = only_link(&slave, MASTER);
    assert_eq!(after["key_check"], current["key_check"]);
    assert_eq!(after["key_version"], 2);
    assert!(slave.log_text().contains("replayed link offer rejected"), "{}", slave.log_text());
}

#[test]
fn oversized_ids_and_bodies_are_rejected_without_echo() {
    let slave = start_node(SLAVE, None);
    let node: NodeInfo = serde_json::from_value(slave.get_json("/api/v1/admin/node")).unwrap();
    let peers = LinkPeers { master_sae_id: MASTER.to_owned(), slave_sae_id: node.sae_id.clone() };
    let (offer, _) = initiate(&peers, &node.public_key().unwrap(), None).unwrap();
    let long_id = "k".repeat(1_000_000);
    let mut offer_body = OfferBody::new(&offer);
    offer_body.qkd_key_id = Some(long_id.clone());
    let finish_body = json!({ "version": 1, "handshake_id": "h".repeat(1_000_000), "confirmation": "" });

    let invitation = invite(&slave);
    let (offer_status, offer_error) = post_invited(&slave, &invitation, "/api/v1/admin/links/offer", &serde_json::to_vec(&offer_body).unwrap());
    let (finish_status, finish_error) = post_invited(&slave, &invitation, "/api/v1/admin/links/finish", &serde_json::to_vec(&finish_body).unwrap());
    let (large_status, large_error) = post_invited(&slave, &invitation, "/api/v1/admin/links/offer", &vec![b' '; 3 * 1024 * 1024]);

    assert_eq!(offer_status, 400, "{offer_error}");
    assert!(offer_error["error"].as_str().unwrap().contains("qkd_key_id"), "{offer_error}");
    assert!(offer_error.to_string().len() < 400, "{offer_error}");
    assert_eq!(finish_status, 400, "{finish_error}");
    assert!(finish_error["error"].as_str().unwrap().contains("handshake_id"), "{finish_error}");
    assert!(finish_error.to_string().len() < 400, "{finish_error}");
    assert_eq!(large_status, 413, "{large_error}");
    assert!(large_error["error"].is_string(), "{large_error}");
    assert!(!slave.log_text().contains(&long_id[..100]), "the long key id was logged");
}

#[test]
fn invitation_opens_one_link_only() {
    let master = start_node(MASTER, None);
    let slave = start_node(SLAVE, None);
    let ca = std::fs::read_to_string(slave.ca_file()).unwrap();
    let invitation = invite(&slave);

    let (first, body) = request_link(&master, &slave, &invitation, &ca);
    let (second, again) = request_link(&master, &slave, &invitation, &ca);
    let client = slave.client(KeyExchangePolicy::HybridPreferred);
    let node = client.get(slave.url("/api/v1/admin/node")).header("hearth-link-invite", &invitation).send().unwrap();
    let users = client.get(slave.url("/api/v1/admin/users")).header("hearth-link-invite", invite(&slave)).send().unwrap();

    assert_eq!(first, 200, "{body}");
    assert_eq!(second, 502, "a used invitation linked again: {again}");
    assert_eq!(node.status().as_u16(), 401, "a used invitation still opens the node route");
    assert_eq!(users.status().as_u16(), 401, "an invitation opened a route outside the link handshake");
    assert_eq!(only_link(&slave, MASTER)["key_version"], 1);
}
