//! The security center's session list against a running server: each
//! signed-in device with its user and the key exchange of its latest
//! connection, a classical connection flagged, and an admin ending a
//! session, which stops that device's next request.

mod common;

use common::Server;
use hearth_access::Role;
use hearth_pqc::KeyExchangePolicy;
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn sessions(admin: &common::device::TestDevice) -> Vec<Value> {
    let response = admin.request(Method::GET, "/api/v1/admin/sessions", None);
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Vec<Value>>().expect("session list")
}

#[test]
fn sessions_show_key_exchange_and_can_end() {
    let library = tempfile::tempdir().expect("library");
    let server = Server::start(&[library.path()]);
    let admin = server.admin_device();
    let teen = server.signed_in_device(Role::Teen);
    // The teen's latest request travels on a classical X25519 connection.
    let old_client = teen.on_new_client(&server, KeyExchangePolicy::ClassicalOnly);
    assert_eq!(old_client.request(Method::GET, "/api/v1/session", None).status(), StatusCode::OK);

    let list = sessions(&admin);
    let own = list.iter().find(|s| s["current"] == true).expect("the admin's own session is marked");
    assert_eq!(own["key_exchange_group"], "X25519MLKEM768", "{own}");
    assert_eq!(own["post_quantum"], true);
    assert_eq!(own["role"], "admin");
    let teens: Vec<&Value> = list.iter().filter(|s| s["role"] == "teen").collect();
    assert_eq!(teens.len(), 1, "{list:#?}");
    let teen_session = teens[0];
    assert_eq!(teen_session["key_exchange_group"], "X25519", "the classical connection is shown: {teen_session}");
    assert_eq!(teen_session["post_quantum"], false);
    assert!(teen_session["user"]["name"].as_str().is_some_and(|name| name.starts_with("teen-")), "{teen_session}");
    assert!(teen_session["device"]["name"].as_str().is_some_and(|name| !name.is_empty()), "{teen_session}");
    let listed = serde_json::to_string(&list).expect("JSON");
    let teen_id = teen.session_id().expect("the teen is signed in");
    assert!(!listed.contains(&teen_id), "the list shows a session id");

    // A member may not read the list.
    let member = server.adult_device();
    assert_eq!(member.request(Method::GET, "/api/v1/admin/sessions", None).status(), StatusCode::FORBIDDEN);

    // Ending the teen's session stops its next request; the device stays paired.
    let handle = teen_session["handle"].as_str().expect("handle");
    let ended = admin.request(Method::POST, &format!("/api/v1/admin/sessions/{handle}/end"), None);
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    assert_eq!(teen.request(Method::GET, "/api/v1/session", None).status(), StatusCode::UNAUTHORIZED);
    assert!(sessions(&admin).iter().all(|s| s["handle"] != handle), "the ended session is still listed");
    let again = admin.request(Method::POST, &format!("/api/v1/admin/sessions/{handle}/end"), None);
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    for bad in ["..%2f..%2fetc", "short", "AAAAAAAAAAAAAAAA%00"] {
        let response = admin.request(Method::POST, &format!("/api/v1/admin/sessions/{bad}/end"), None);
        assert!(response.status().is_client_error(), "{bad}: {}", response.status());
    }
}
