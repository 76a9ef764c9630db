//! The ETSI GS QKD 014 client against the test KME over mutual TLS.

mod common;

use common::{SAE_A, SAE_B, SAE_C, raw_client, start_kme};
use hearth_pqc::qkd::{QkdError, QkdKeySource};
use hearth_qkd::api::KeyRequest;
use hearth_qkd::test_kme::{TestKme, TestKmeConfig};

#[test]
fn status_reports_the_kme_limits() {
    let kme = start_kme();
    let client = kme.client(SAE_A).unwrap();

    let status = client.status(SAE_B).unwrap();

    assert_eq!(status.source_KME_ID, "hearth-test-kme");
    assert_eq!(status.target_KME_ID, "hearth-test-kme");
    assert_eq!(status.master_SAE_ID, SAE_A);
    assert_eq!(status.slave_SAE_ID, SAE_B);
    assert_eq!(status.key_size, 256);
    assert_eq!(status.stored_key_count, 1024);
    assert_eq!(status.max_key_count, 1024);
    assert_eq!(status.max_key_per_request, 128);
    assert_eq!(status.max_key_size, 1024);
    assert_eq!(status.min_key_size, 64);
    assert_eq!(status.max_SAE_ID_count, 2);
}

#[test]
fn status_json_uses_the_standard_field_names() {
    let kme = start_kme();
    let http = raw_client(&kme, Some(SAE_A));

    let response = http.get(format!("{}/api/v1/keys/{SAE_B}/status", kme.base_url())).send().unwrap();
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = response.json().unwrap();

    let mut fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "key_size",
            "master_SAE_ID",
            "max_SAE_ID_count",
            "max_key_count",
            "max_key_per_request",
            "max_key_size",
            "min_key_size",
            "slave_SAE_ID",
            "source_KME_ID",
            "stored_key_count",
            "target_KME_ID",
        ]
    );
}

#[test]
fn enc_keys_then_dec_keys_give_identical_keys() {
    let kme = start_kme();
    let master = kme.client(SAE_A).unwrap();
    let slave = kme.client(SAE_B).unwrap();

    let sent = master.enc_keys(SAE_B, 3, 256).unwrap();
    let ids: Vec<String> = sent.iter().map(|key| key.key_id.clone()).collect();
    let received = slave.dec_keys(SAE_A, &ids).unwrap();

    assert_eq!(sent.len(), 3);
    assert_eq!(received.len(), 3);
    for (sent, received) in sent.iter().zip(&received) {
        assert_eq!(sent.key_id, received.key_id);
        assert_eq!(sent.key.len(), 32);
        assert_eq!(*sent.key, *received.key);
    }
    assert_ne!(*sent[0].key, *sent[1].key, "two keys from one request are equal");
}

#[test]
fn pending_keys_lower_stored_key_count() {
    let kme = start_kme();
    let master = kme.client(SAE_A).unwrap();
    let slave = kme.client(SAE_B).unwrap();

    let keys = master.enc_keys(SAE_B, 2, 128).unwrap();
    let while_pending = master.status(SAE_B).unwrap().stored_key_count;
    let ids: Vec<String> = keys.iter().map(|key| key.key_id.clone()).collect();
    slave.dec_keys(SAE_A, &ids).unwrap();
    let after_delivery = master.status(SAE_B).unwrap().stored_key_count;

    assert_eq!(while_pending, 1022);
    assert_eq!(after_delivery, 1024);
}

#[test]
fn key_id_cannot_be_fetched_twice() {
    let kme = start_kme();
    let master = kme.client(SAE_A).unwrap();
    let slave = kme.client(SAE_B).unwrap();
    let ids = vec![master.enc_keys(SAE_B, 1, 256).unwrap()[0].key_id.clone()];

    slave.dec_keys(SAE_A, &ids).unwrap();
    let again = slave.dec_keys(SAE_A, &ids);

    match again {
        Err(QkdError::UnknownKeyId { key_id, .. }) => assert_eq!(key_id, ids[0]),
        other => panic!("expected UnknownKeyId, got {other:?}"),
    }
}

#[test]
fn third_sae_cannot_fetch_the_key() {
    let kme = start_kme();
    let master = kme.client(SAE_A).unwrap();
    let intruder = kme.client(SAE_C).unwrap();
    let slave = kme.client(SAE_B).unwrap();
    let ids = vec![master.enc_keys(SAE_B, 1, 256).unwrap()[0].key_id.clone()];

    let stolen = intruder.dec_keys(SAE_A, &ids);
    let delivered = slave.dec_keys(SAE_A, &ids);

    assert!(matches!(stolen, Err(QkdError::Unauthorized { .. })), "{stolen:?}");
    assert!(delivered.is_ok(), "the refused fetch must leave the key for the slave: {delivered:?}");
}

#[test]
fn master_cannot_fetch_its_key_as_slave() {
    let kme = start_kme();
    let master = kme.client(SAE_A).unwrap();
    let ids = vec![master.enc_keys(SAE_B, 1, 256).unwrap()[0].key_id.clone()];

    let result = master.dec_keys(SAE_A, &ids);

    assert!(matches!(result, Err(QkdError::Unauthorized { .. })), "{result:?}");
}

#[test]
fn dec_keys_naming_wrong_master_is_unauthorized() {
    let kme = start_kme();
    let master = kme.client(SAE_A).unwrap();
    let slave = kme.client(SAE_B).unwrap();
    let ids = vec![master.enc_keys(SAE_B, 1, 256).unwrap()[0].key_id.clone()];

    let result = slave.dec_keys(SAE_C, &ids);

    assert!(matches!(result, Err(QkdError::Unauthorized { .. })), "{result:?}");
}

#[test]
fn unregistered_slave_is_unauthorized() {
    let kme = start_kme();
    let master = kme.client(SAE_A).unwrap();

    let result = master.enc_keys("sae-nobody", 1, 256);

    assert!(matches!(result, Err(QkdError::Unauthorized { .. })), "{result:?}");
}

#[test]
fn wrong_sizes_are_bad_requests() {
    let kme = start_kme();
    let master = kme.client(SAE_A).unwrap();

    for size in [100, 32, 2048, 0] {
        let result = master.enc_keys(SAE_B, 1, size);
        match result {
            Err(QkdError::BadRequest { message, .. }) => assert!(message.contains("size"), "size {size}: {message}"),
            other => panic!("size {size}: expected BadRequest, got {other:?}"),
        }
    }
}

#[test]
fn too_many_keys_is_a_bad_request() {
    let kme = start_kme();
    let master = kme.client(SAE_A).unwrap();

    let too_many = master.enc_keys(SAE_B, 129, 256);
    let none = master.enc_keys(SAE_B, 0, 256);

    assert!(matches!(too_many, Err(QkdError::BadRequest { .. })), "{too_many:?}");
    assert!(matches!(none, Err(QkdError::BadRequest { .. })), "{none:?}");
}

#[test]
fn link_down_answers_unavailable() {
    let kme = start_kme();
    let master = kme.client(SAE_A).unwrap();
    let slave = kme.client(SAE_B).unwrap();
    let ids = vec![master.enc_keys(SAE_B, 1, 256).unwrap()[0].key_id.clone()];

    kme.set_link_down(true);
    let status = master.status(SAE_B);
    let enc = master.enc_keys(SAE_B, 1, 256);
    let dec = slave.dec_keys(SAE_A, &ids);
    kme.set_link_down(false);
    let dec_after = slave.dec_keys(SAE_A, &ids);

    assert!(matches!(status, Err(QkdError::Unavailable { .. })), "{status:?}");
    assert!(matches!(enc, Err(QkdError::Unavailable { .. })), "{enc:?}");
    assert!(matches!(dec, Err(QkdError::Unavailable { .. })), "{dec:?}");
    assert!(dec_after.is_ok(), "{dec_after:?}");
}

#[test]
fn client_without_certificate_fails_the_handshake() {
    let kme = start_kme();
    let http = raw_client(&kme, None);

    let result = http.get(format!("{}/api/v1/keys/{SAE_B}/status", kme.base_url())).send();

    let err = result.expect_err("the KME must reject a client without certificate");
    let chain = error_chain(&err);
    assert!(is_rejected_handshake(&chain), "{chain}");
}

#[test]
fn certificate_from_another_ca_fails_the_handshake() {
    let kme = start_kme();
    let other = TestKme::start(TestKmeConfig::default()).unwrap();
    let mut config = other.client_config(SAE_A).unwrap();
    config.kme_url = kme.base_url();
    config.kme_ca_certs = kme.client_config(SAE_A).unwrap().kme_ca_certs;
    let client = hearth_qkd::EtsiQkdClient::new(config).unwrap();

    let result = client.status(SAE_B);

    match result {
        Err(QkdError::Transport { source, .. }) => {
            let chain = error_chain(source.as_ref());
            assert!(is_rejected_handshake(&chain), "{chain}");
        }
        other => panic!("expected Transport, got {other:?}"),
    }
}

#[test]
fn additional_slave_gets_the_same_key() {
    let kme = start_kme();
    let master = kme.client(SAE_A).unwrap();
    let request = KeyRequest {
        number: Some(1),
        size: Some(512),
        additional_slave_SAE_IDs: vec![SAE_C.to_owned()],
        ..KeyRequest::default()
    };

    let sent = master.get_keys(SAE_B, &request).unwrap();
    let ids = vec![sent[0].key_id.clone()];
    let for_b = kme.client(SAE_B).unwrap().dec_keys(SAE_A, &ids).unwrap();
    let for_c = kme.client(SAE_C).unwrap().dec_keys(SAE_A, &ids).unwrap();

    assert_eq!(sent[0].key.len(), 64);
    assert_eq!(*for_b[0].key, *sent[0].key);
    assert_eq!(*for_c[0].key, *sent[0].key);
}

#[test]
fn get_endpoints_serve_keys_too() {
    let kme = start_kme();
    let base = kme.base_url();
    let master = raw_client(&kme, Some(SAE_A));
    let slave = raw_client(&kme, Some(SAE_B));

    let sent: serde_json::Value =
        master.get(format!("{base}/api/v1/keys/{SAE_B}/enc_keys?number=1&size=128")).send().unwrap().json().unwrap();
    let key_id = sent["keys"][0]["key_ID"].as_str().unwrap();
    let received: serde_json::Value =
        slave.get(format!("{base}/api/v1/keys/{SAE_A}/dec_keys?key_ID={key_id}")).send().unwrap().json().unwrap();

    assert_eq!(sent["keys"].as_array().unwrap().len(), 1);
    assert_eq!(sent["keys"][0]["key"].as_str().unwrap().len(), 24, "128 bits are 24 base64 characters");
    assert_eq!(received["keys"][0]["key_ID"], sent["keys"][0]["key_ID"]);
    assert_eq!(received["keys"][0]["key"], sent["keys"][0]["key"]);
}

#[test]
fn mandatory_extension_is_rejected_with_error_body() {
    let kme = start_kme();
    let http = raw_client(&kme, Some(SAE_A));

    let response = http
        .post(format!("{}/api/v1/keys/{SAE_B}/enc_keys", kme.base_url()))
        .json(&serde_json::json!({"number": 1, "extension_mandatory": [{"abc_route_type": "direct"}]}))
        .send()
        .unwrap();

    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().unwrap();
    assert!(body["message"].as_str().unwrap().contains("mandatory extension"), "{body}");
}

#[test]
fn malformed_body_is_a_bad_request() {
    let kme = start_kme();
    let http = raw_client(&kme, Some(SAE_B));

    let response = http
        .post(format!("{}/api/v1/keys/{SAE_A}/dec_keys", kme.base_url()))
        .header("content-type", "application/json")
        .body("{\"key_IDs\": 5}")
        .send()
        .unwrap();

    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().unwrap();
    assert!(body["message"].is_string(), "{body}");
}

#[test]
fn unknown_key_id_names_the_id() {
    let kme = start_kme();
    let slave = kme.client(SAE_B).unwrap();
    let ids = vec!["3f1e0d5c-0000-4000-8000-000000000000".to_owned()];

    let result = slave.dec_keys(SAE_A, &ids);

    match result {
        Err(QkdError::UnknownKeyId { key_id, .. }) => assert_eq!(key_id, ids[0]),
        other => panic!("expected UnknownKeyId, got {other:?}"),
    }
}

/// Returns whether a client error chain shows the server ending the TLS
/// handshake.
/// In TLS 1.3 the client finishes its side before the server checks the
/// client certificate, so the client sees either the server's alert or,
/// when the close arrives first, only a closed connection.
fn is_rejected_handshake(chain: &str) -> bool {
    chain.contains("fatal alert") || chain.contains("connection closed")
}

/// Joins the error and all its sources, because reqwest keeps the TLS alert
/// in a source.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}
