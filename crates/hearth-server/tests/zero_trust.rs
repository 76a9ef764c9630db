//! Zero trust against a real server: signed requests from a device
//! session work, and captured, replayed, unsigned or revoked ones do not.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::Server;
use common::device::{PASSWORD, TestDevice};
use hearth_access::Role;
use reqwest::{Method, StatusCode};

fn empty_server() -> (Server, tempfile::TempDir) {
    let library = tempfile::tempdir().expect("library folder");
    let server = Server::start_with(&[library.path()], &["--no-watch"]);
    (server, library)
}

/// Like [`empty_server`] with the guard off, for attacks on the access
/// layer itself, which the guard would stop first.
fn unguarded_server() -> (Server, tempfile::TempDir) {
    let library = tempfile::tempdir().expect("library folder");
    let server = Server::start_unguarded(&[library.path()]);
    (server, library)
}

/// Sends raw HTTP/1.1 on a fresh TLS connection and returns the status line.
fn send_on_new_connection(server: &Server, head: &str) -> String {
    let mut stream = server.tls_stream();
    stream.write_all(head.as_bytes()).expect("write request");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.lines().next().unwrap_or("").to_owned()
}

#[test]
fn signed_session_reaches_api() {
    let (server, _library) = empty_server();
    let admin = TestDevice::new(&server);
    admin.enroll(&server, "alice", Role::Admin);

    let answer = admin.sign_in("alice");
    let session = admin.get_json("/api/v1/session");
    let items = admin.request(Method::GET, "/api/v1/items", None);

    assert_eq!(answer["user"]["role"], "admin");
    assert_eq!(session["user_role"], "admin");
    assert_eq!(session["device"], admin.did.as_str());
    assert_eq!(items.status(), StatusCode::OK);
}

#[test]
fn unsigned_requests_rejected() {
    let (server, _library) = empty_server();
    let admin = TestDevice::new(&server);
    admin.enroll(&server, "alice", Role::Admin);
    admin.sign_in("alice");
    let client = server.client(hearth_pqc::KeyExchangePolicy::HybridPreferred);
    let session = admin.session_id().unwrap();

    let bare = client.get(server.url("/api/v1/items")).send().unwrap();
    let session_only = client.get(server.url("/api/v1/items")).header("hearth-session", &session).send().unwrap();
    let garbage = client
        .get(server.url("/api/v1/items"))
        .header("hearth-session", &session)
        .header("hearth-proof", "v1;t=1;n=AAAAAAAAAAAAAAAAAAAAAA;s=AAAA")
        .send()
        .unwrap();

    for (name, response) in [("no headers", bare), ("session only", session_only), ("garbage proof", garbage)] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("HearthProof"), "{name}: {challenge}");
        assert!(response.headers().get("hearth-binding").is_some(), "{name}: no binding to sign with");
    }
}

#[test]
fn replayed_request_rejected() {
    let (server, _library) = empty_server();
    let admin = TestDevice::new(&server);
    admin.enroll(&server, "alice", Role::Admin);
    admin.sign_in("alice");
    let session = admin.session_id().unwrap();
    let signed = admin.sign(&Method::GET, "/api/v1/items", &session);
    let head = |binding: &str| {
        format!(
            "GET /api/v1/items HTTP/1.1\r\nHost: {}\r\nHearth-Session: {}\r\nHearth-Proof: {}\r\nHearth-Binding: {binding}\r\nConnection: close\r\n\r\n",
            server.addr, signed.session, signed.proof
        )
    };

    // Another TLS connection, with the binding header as captured and without it.
    let with_binding = send_on_new_connection(&server, &head(&signed.binding));
    let without_binding = send_on_new_connection(&server, &head(&signed.binding).replace(&format!("Hearth-Binding: {}\r\n", signed.binding), ""));

    assert!(with_binding.contains(" 401 "), "captured request replayed on another connection: {with_binding}");
    assert!(without_binding.contains(" 401 "), "captured request replayed without its binding header: {without_binding}");
    assert!(server.log_text().contains("request proof rejected"), "no log line for the rejected proof");
}

#[test]
fn proof_for_other_path_rejected() {
    let (server, _library) = empty_server();
    let admin = TestDevice::new(&server);
    admin.enroll(&server, "alice", Role::Admin);
    admin.sign_in("alice");
    let session = admin.session_id().unwrap();
    let signed = admin.sign(&Method::GET, "/api/v1/items", &session);
    let client = server.client(hearth_pqc::KeyExchangePolicy::HybridPreferred);

    let response = client
        .get(server.url("/api/v1/admin/users"))
        .header("hearth-session", &signed.session)
        .header("hearth-proof", &signed.proof)
        .send()
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn member_denied_admin_routes_and_audited() {
    let (server, _library) = empty_server();
    let admin = TestDevice::new(&server);
    admin.enroll(&server, "alice", Role::Admin);
    let adult = TestDevice::new(&server);
    adult.enroll(&server, "bob", Role::Adult);
    admin.sign_in("alice");
    adult.sign_in("bob");

    let denied = adult.request(Method::GET, "/api/v1/admin/users", None);
    let reason: serde_json::Value = denied.json().unwrap();
    let audit = admin.get_json("/api/v1/admin/audit?decision=deny");

    assert_eq!(reason["error"].as_str().map(|e| e.starts_with("forbidden")), Some(true), "{reason}");
    let records = audit["records"].as_array().unwrap();
    let record = records.iter().find(|r| r["action"] == "manage_users").expect("the denial is in the audit log");
    assert_eq!(record["allowed"], false);
    assert!(!record["reason"].as_str().unwrap().is_empty(), "{record}");
}

#[test]
fn wrong_password_locks_out_and_never_succeeds() {
    let (server, _library) = unguarded_server();
    let guesser = TestDevice::new(&server);
    guesser.enroll(&server, "alice", Role::Admin);
    let mut statuses = std::collections::BTreeMap::new();

    for guess in 0..10_000 {
        let response = guesser.sign_in_with("alice", &format!("guess number {guess:05}"));
        *statuses.entry(response.status().as_u16()).or_insert(0u32) += 1;
        assert_ne!(response.status(), StatusCode::OK, "guess {guess} signed in");
    }
    let correct = guesser.sign_in_with("alice", PASSWORD);

    let unauthorized = statuses.get(&401).copied().unwrap_or(0);
    assert!(unauthorized <= 8, "{unauthorized} guesses reached the password check: {statuses:?}");
    let errors: Vec<String> = server.log_text().lines().filter(|l| l.contains("ERROR")).take(3).map(str::to_owned).collect();
    assert!(statuses.get(&429).copied().unwrap_or(0) >= 9_990, "{statuses:?}; server errors: {errors:?}");
    assert_eq!(correct.status(), StatusCode::TOO_MANY_REQUESTS, "the locked account let the right password in");
}

#[test]
fn revoked_device_stops_mid_stream() {
    let samples = std::path::Path::new(common::SAMPLES);
    common::require_samples();
    let library = tempfile::tempdir().unwrap();
    std::fs::copy(samples.join("movie2/movie-hello.mp4"), library.path().join("film.mp4")).unwrap();
    let server = Server::start_with(&[library.path()], &["--no-watch"]);
    let admin = TestDevice::new(&server);
    admin.enroll(&server, "alice", Role::Admin);
    let viewer = TestDevice::new(&server);
    viewer.enroll(&server, "bob", Role::Adult);
    admin.sign_in("alice");
    admin.wait_for_scan(&server);
    viewer.sign_in("bob");
    let item = admin.get_json("/api/v1/items")["items"][0]["id"].as_str().unwrap().to_owned();
    let grant = viewer.request(Method::POST, &format!("/api/v1/items/{item}/grant"), None);
    assert_eq!(grant.status(), StatusCode::OK);
    let stream_url = server.url(grant.json::<serde_json::Value>().unwrap()["stream_url"].as_str().unwrap());
    let player = server.client(hearth_pqc::KeyExchangePolicy::HybridPreferred);
    let chunk = |offset: u64| player.get(&stream_url).header("range", format!("bytes={offset}-{}", offset + 65_535)).send().unwrap().status();
    assert_eq!(chunk(0), StatusCode::PARTIAL_CONTENT, "the grant does not play");

    let devices = admin.get_json("/api/v1/admin/devices");
    let bob_device = devices.as_array().unwrap().iter().find(|d| d["did"] == viewer.did.as_str()).unwrap()["id"].as_i64().unwrap();
    let revoked = admin.request(Method::POST, &format!("/api/v1/admin/devices/{bob_device}/revoke"), None);
    let revoked_at = Instant::now();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);

    let mut offset = 65_536;
    let status = loop {
        let status = chunk(offset);
        if status != StatusCode::PARTIAL_CONTENT || revoked_at.elapsed() > Duration::from_secs(5) {
            break status;
        }
        offset += 65_536;
    };
    let cut_off_after = revoked_at.elapsed();
    let api = viewer.request(Method::GET, "/api/v1/items", None);

    assert_eq!(status, StatusCode::UNAUTHORIZED, "the revoked device kept streaming");
    assert!(cut_off_after < Duration::from_secs(1), "cut off only after {cut_off_after:?}");
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert!(api.headers()["www-authenticate"].to_str().unwrap().contains("revoked"));
}

#[test]
fn first_run_link_pairs_the_admin() {
    let (server, _library) = empty_server();
    let link = server.setup_link.clone().expect("a first run prints a pairing link");
    let device = TestDevice::new(&server);

    let paired = device.pair(&link, Some(("household", PASSWORD)));
    device.sign_in("household");
    let users = device.get_json("/api/v1/admin/users");

    assert_eq!(paired["user"]["role"], "admin");
    assert_eq!(users[0]["name"], "household");
    assert_eq!(users[0]["did"], device.did.as_str(), "the first device names the user");
}

#[test]
fn pairing_link_pairs_once() {
    let (server, _library) = empty_server();
    let link = server.pairing_offer(&["--new-user", "carol", "--role", "teen"]);
    let first = TestDevice::new(&server);
    let second = TestDevice::new(&server);

    let paired = first.pair(&link, Some(("carol", PASSWORD)));
    let (status, body) = second.try_pair(&link, Some(("carol", PASSWORD)));

    assert_eq!(paired["user"]["role"], "teen");
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "used");
}

#[test]
fn pairing_code_guesses_never_succeed() {
    let (server, _library) = unguarded_server();
    let link = server.pairing_offer(&["--new-user", "dave", "--role", "adult"]);
    let (offer_id, code) = common::device::parse_link(&link);
    let attacker = TestDevice::new(&server);
    let mut codes = std::collections::BTreeMap::new();

    for guess in 0..10_000u32 {
        let wrong = format!("{:08}", guess).replace('0', "Z");
        if wrong == code {
            continue;
        }
        let (status, body) = attacker.try_pair(&format!("https://x/pair#offer={offer_id}&code={wrong}"), Some(("dave", PASSWORD)));
        assert_ne!(status, StatusCode::OK, "guess {wrong} paired");
        *codes.entry(body["code"].as_str().unwrap_or("none").to_owned()).or_insert(0u32) += 1;
    }
    let (status, body) = attacker.try_pair(&link, Some(("dave", PASSWORD)));

    assert!(codes.get("wrong_code").copied().unwrap_or(0) <= 5, "{codes:?}");
    assert!(codes.get("burned").copied().unwrap_or(0) >= 9_990, "{codes:?}");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the burned offer still paired with the right code: {body}");
}

#[test]
fn host_admin_socket_rotates_without_token() {
    use std::os::unix::fs::PermissionsExt;

    let (server, _library) = empty_server();
    let admin = TestDevice::new(&server);
    admin.enroll(&server, "alice", Role::Admin);
    admin.sign_in("alice");
    let socket = server.data_dir.join("admin.sock");
    let before = admin.get_json("/api/v1/keys").as_array().unwrap().len();

    let mode = std::fs::metadata(&socket).expect("the admin socket exists").permissions().mode() & 0o777;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["keys", "rotate", "--reason", "socket test", "--data-dir"])
        .arg(&server.data_dir)
        .env("HEARTH_CONFIG", "/dev/null")
        .env_remove("HEARTH_ADMIN_TOKEN")
        .output()
        .unwrap();
    let stranger = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        // Debian's curl, because another user cannot run the hearth binary
        // from root's build folder.
        .args(["/usr/bin/curl", "--silent", "--show-error", "--unix-socket"])
        .arg(&socket)
        .args(["-X", "POST", "http://localhost/api/v1/admin/rotate-keys"])
        .output()
        .unwrap();
    let audit = admin.get_json("/api/v1/admin/audit");

    assert_eq!(mode, 0o600, "admin socket mode {mode:o}");
    assert!(output.status.success(), "hearth keys rotate over the socket failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(admin.get_json("/api/v1/keys").as_array().unwrap().len(), before + 1);
    assert!(!stranger.status.success(), "another OS user connected to the admin socket");
    // curl exit status 7: it could not connect.
    assert_eq!(stranger.status.code(), Some(7), "{}", String::from_utf8_lossy(&stranger.stderr));
    let records = audit["records"].as_array().unwrap();
    assert!(records.iter().any(|r| r["subject"] == "host-admin" && r["action"] == "manage_server"), "{audit}");
}

/// `[access]` settings that put the household's local time at noon, so the
/// default policy's hours for teens and children allow viewing now.
fn noon_config() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let utc_minutes = ((now / 60) % (24 * 60)) as i64;
    let mut offset = 12 * 60 - utc_minutes;
    if offset > 12 * 60 {
        offset -= 24 * 60;
    }
    format!("watch = false\n\n[access]\nutc_offset_minutes = {offset}\n")
}

#[test]
fn child_sees_only_suitable_items() {
    common::require_samples();
    let server = Server::start_with_config(&[std::path::Path::new(common::SAMPLES)], &[], &noon_config());
    let admin = TestDevice::new(&server);
    admin.enroll(&server, "alice", Role::Admin);
    admin.sign_in("alice");
    admin.wait_for_scan(&server);
    let child = TestDevice::new(&server);
    child.enroll(&server, "kim", Role::Child);
    child.sign_in("kim");
    let everything = admin.get_json("/api/v1/items?limit=200")["items"].as_array().unwrap().clone();
    let videos: Vec<String> =
        everything.iter().filter(|item| item["kind"] == "video").map(|item| item["id"].as_str().unwrap().to_owned()).collect();
    assert!(videos.len() >= 2, "the samples hold several videos");
    let (family_film, teen_film) = (&videos[0], &videos[1]);
    let rate = |id: &str, rating: &str| admin.request(Method::PUT, &format!("/api/v1/items/{id}/rating"), Some(&serde_json::json!({ "rating": rating })));
    assert_eq!(rate(family_film, "G").status(), StatusCode::NO_CONTENT);
    assert_eq!(rate(teen_film, "PG-13").status(), StatusCode::NO_CONTENT);

    let listed = child.get_json("/api/v1/items?limit=200")["items"].as_array().unwrap().clone();
    let listed_videos: Vec<&str> = listed.iter().filter(|item| item["kind"] == "video").map(|item| item["id"].as_str().unwrap()).collect();
    let denied = child.request(Method::POST, &format!("/api/v1/items/{teen_film}/grant"), None);
    let denied_reason: serde_json::Value = denied.json().unwrap();
    let allowed = child.request(Method::POST, &format!("/api/v1/items/{family_film}/grant"), None);
    let unrated = child.request(Method::GET, &format!("/api/v1/items/{}", videos[2 % videos.len()]), None);
    let rerate = child.request(Method::PUT, &format!("/api/v1/items/{teen_film}/rating"), Some(&serde_json::json!({ "rating": "G" })));

    assert_eq!(listed_videos, [family_film.as_str()], "the child's listing holds only the G-rated video");
    assert!(listed.iter().any(|item| item["kind"] == "image"), "unrated photos stay visible to children");
    assert!(listed.iter().any(|item| item["kind"] == "audio"), "unrated music stays visible to children");
    assert_eq!(denied_reason["error"].as_str().map(|e| e.contains("13")), Some(true), "{denied_reason}");
    assert_eq!(allowed.status(), StatusCode::OK);
    if videos.len() > 2 {
        assert_eq!(unrated.status(), StatusCode::FORBIDDEN, "an unrated video reached a child");
    }
    assert_eq!(rerate.status(), StatusCode::FORBIDDEN, "a child changed a rating");
}

/// Writes a WAV file of `seconds` of 48 kHz stereo silence.
fn write_silence(path: &std::path::Path, seconds: u32) {
    let data_len = seconds * 48_000 * 4;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&2u16.to_le_bytes()); // channels
    wav.extend_from_slice(&48_000u32.to_le_bytes());
    wav.extend_from_slice(&(48_000u32 * 4).to_le_bytes());
    wav.extend_from_slice(&4u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    wav.resize(44 + data_len as usize, 0);
    std::fs::write(path, wav).unwrap();
}

#[test]
fn revoked_device_stops_response_in_flight() {
    let library = tempfile::tempdir().unwrap();
    let size = {
        let path = library.path().join("long silence.wav");
        write_silence(&path, 400);
        std::fs::metadata(&path).unwrap().len()
    };
    let server = Server::start_with(&[library.path()], &["--no-watch"]);
    let admin = TestDevice::new(&server);
    admin.enroll(&server, "alice", Role::Admin);
    admin.sign_in("alice");
    admin.wait_for_scan(&server);
    let listener = TestDevice::new(&server);
    listener.enroll(&server, "bob", Role::Adult);
    listener.sign_in("bob");
    let item = admin.get_json("/api/v1/items")["items"][0]["id"].as_str().unwrap().to_owned();
    let grant: serde_json::Value = listener.request(Method::POST, &format!("/api/v1/items/{item}/grant"), None).json().unwrap();
    let player = server.client(hearth_pqc::KeyExchangePolicy::HybridPreferred);
    let mut response = player.get(server.url(grant["stream_url"].as_str().unwrap())).send().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut first = vec![0u8; 256 * 1024];
    response.read_exact(&mut first).expect("the stream starts");

    let devices = admin.get_json("/api/v1/admin/devices");
    let bob_device = devices.as_array().unwrap().iter().find(|d| d["did"] == listener.did.as_str()).unwrap()["id"].as_i64().unwrap();
    assert_eq!(admin.request(Method::POST, &format!("/api/v1/admin/devices/{bob_device}/revoke"), None).status(), StatusCode::NO_CONTENT);
    let mut rest = Vec::new();
    let outcome = response.read_to_end(&mut rest);
    let received = first.len() as u64 + rest.len() as u64;

    assert!(outcome.is_err() || received < size, "the whole {size}-byte file arrived after the revocation");
    assert!(received < size, "received {received} of {size} bytes");
}

#[test]
fn adult_denied_every_admin_route() {
    use hearth_access::Action;
    use hearth_server::routes::{Guard, table};

    let (server, _library) = unguarded_server();
    let adult = TestDevice::new(&server);
    adult.enroll(&server, "bob", Role::Adult);
    adult.sign_in("bob");
    let mut checked = 0;

    for route in table() {
        let admin_only = match route.guard {
            Guard::Session(Some(action)) => !matches!(action, Action::BrowseLibrary | Action::ViewItem | Action::PlayItem),
            Guard::LinkInvite => true,
            _ => false,
        };
        if !admin_only {
            continue;
        }
        let path = route.path.replace("{id}", "1").replace("{handle}", "AAAAAAAAAAAAAAAA").replace("{source}", "192.0.2.7");
        let response = adult.request(route.method.clone(), &path, Some(&serde_json::json!({})));
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "an adult reached {} {}", route.method, route.path);
        checked += 1;
    }

    assert!(checked >= 10, "only {checked} admin routes in the table");
}

#[test]
fn idle_session_expires_and_sign_in_renews() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(&[library.path()], &[], "watch = false\n\n[access]\nsession_idle_seconds = 5\n");
    let device = TestDevice::new(&server);
    device.enroll(&server, "alice", Role::Admin);
    device.sign_in("alice");
    let fresh = device.request(Method::GET, "/api/v1/items", None);

    std::thread::sleep(Duration::from_secs(7));
    let stale = device.request(Method::GET, "/api/v1/items", None);
    let challenge = stale.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    device.sign_in("alice");
    let renewed = device.request(Method::GET, "/api/v1/items", None);

    assert_eq!(fresh.status(), StatusCode::OK);
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED, "an idle session outlived its 5 s");
    assert!(challenge.contains("error=\"expired\""), "{challenge}");
    assert_eq!(renewed.status(), StatusCode::OK);
}

#[test]
fn disabled_user_is_cut_off() {
    let (server, _library) = empty_server();
    let admin = TestDevice::new(&server);
    admin.enroll(&server, "alice", Role::Admin);
    admin.sign_in("alice");
    let bob = TestDevice::new(&server);
    bob.enroll(&server, "bob", Role::Adult);
    bob.sign_in("bob");
    let users = admin.get_json("/api/v1/admin/users");
    let bob_id = users.as_array().unwrap().iter().find(|u| u["name"] == "bob").unwrap()["id"].as_i64().unwrap();

    let disabled = admin.request(Method::POST, &format!("/api/v1/admin/users/{bob_id}/disable"), None);
    let after = bob.request(Method::GET, "/api/v1/items", None);
    let sign_in = bob.sign_in_with("bob", common::device::PASSWORD);

    assert_eq!(disabled.status(), StatusCode::NO_CONTENT);
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED, "a disabled user kept their session");
    assert_ne!(sign_in.status(), StatusCode::OK, "a disabled user signed in again");
}

#[test]
fn admin_changes_roles_and_enables_users() {
    let (server, _library) = empty_server();
    let admin = TestDevice::new(&server);
    admin.enroll(&server, "alice", Role::Admin);
    admin.sign_in("alice");
    let kid = TestDevice::new(&server);
    kid.enroll(&server, "sam", Role::Child);
    kid.sign_in("sam");
    let users = admin.get_json("/api/v1/admin/users");
    let id_of = |name: &str| users.as_array().unwrap().iter().find(|u| u["name"] == name).unwrap()["id"].as_i64().unwrap();
    let (sam, alice) = (id_of("sam"), id_of("alice"));

    // A birthday: sam becomes a teen, and signs in again under the new role.
    let promoted = admin.request(Method::POST, &format!("/api/v1/admin/users/{sam}/role"), Some(&serde_json::json!({ "role": "teen" })));
    assert_eq!(promoted.status(), StatusCode::NO_CONTENT);
    assert_eq!(kid.request(Method::GET, "/api/v1/items", None).status(), StatusCode::UNAUTHORIZED, "the old role's session went on");
    kid.sign_in("sam");
    assert_eq!(kid.get_json("/api/v1/session")["user_role"], "teen");

    // A teen cannot change roles, not even their own.
    let own = kid.request(Method::POST, &format!("/api/v1/admin/users/{sam}/role"), Some(&serde_json::json!({ "role": "admin" })));
    assert_eq!(own.status(), StatusCode::FORBIDDEN);
    for body in [serde_json::json!({ "role": "root" }), serde_json::json!({ "role": "teen", "extra": 1 })] {
        let refused = admin.request(Method::POST, &format!("/api/v1/admin/users/{sam}/role"), Some(&body));
        assert!(refused.status().is_client_error(), "{body}: {}", refused.status());
    }
    let last_admin = admin.request(Method::POST, &format!("/api/v1/admin/users/{alice}/role"), Some(&serde_json::json!({ "role": "adult" })));
    assert_eq!(last_admin.status(), StatusCode::BAD_REQUEST, "the household lost its last admin");

    // Disabled, then enabled again: sam signs in once more.
    assert_eq!(admin.request(Method::POST, &format!("/api/v1/admin/users/{sam}/disable"), None).status(), StatusCode::NO_CONTENT);
    assert_ne!(kid.sign_in_with("sam", common::device::PASSWORD).status(), StatusCode::OK);
    assert_eq!(admin.request(Method::POST, &format!("/api/v1/admin/users/{sam}/enable"), None).status(), StatusCode::NO_CONTENT);
    // The refused sign-in counts as a failure, so the throttle asks for a pause first.
    let mut again = kid.sign_in_with("sam", common::device::PASSWORD);
    if again.status() == StatusCode::TOO_MANY_REQUESTS {
        let wait = again.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(1);
        assert!(wait <= 5, "one failure asks for a {wait} s pause");
        std::thread::sleep(std::time::Duration::from_secs(wait));
        again = kid.sign_in_with("sam", common::device::PASSWORD);
    }
    assert_eq!(again.status(), StatusCode::OK);
}

#[test]
fn play_state_is_per_user() {
    common::require_samples();
    let library = tempfile::tempdir().unwrap();
    std::fs::copy(std::path::Path::new(common::SAMPLES).join("movie2/movie-hello.mp4"), library.path().join("film.mp4")).unwrap();
    let server = Server::start_with(&[library.path()], &["--no-watch"]);
    let alice = TestDevice::new(&server);
    alice.enroll(&server, "alice", Role::Adult);
    alice.sign_in("alice");
    alice.wait_for_scan(&server);
    let bob = TestDevice::new(&server);
    bob.enroll(&server, "bob", Role::Adult);
    bob.sign_in("bob");
    let item = alice.items()[0]["id"].as_str().unwrap().to_owned();

    let saved = alice.request(Method::PUT, &format!("/api/v1/items/{item}/play-state"), Some(&serde_json::json!({ "position_ms": 4321, "completed": false })));
    let alices = alice.get_json(&format!("/api/v1/items/{item}"));
    let bobs = bob.get_json(&format!("/api/v1/items/{item}"));

    assert_eq!(saved.status(), StatusCode::NO_CONTENT);
    assert_eq!(alices["play_state"]["position_ms"], 4321);
    assert!(bobs["play_state"].is_null(), "bob sees alice's position: {}", bobs["play_state"]);
}

#[test]
fn credentials_never_reach_the_log() {
    common::require_samples();
    let library = tempfile::tempdir().unwrap();
    std::fs::copy(std::path::Path::new(common::SAMPLES).join("movie2/movie-hello.mp4"), library.path().join("film.mp4")).unwrap();
    let server = Server::start_with(&[library.path()], &["--no-watch"]);
    let link = server.pairing_offer(&["--new-user", "alice", "--role", "adult"]);
    let (_, code) = common::device::parse_link(&link);
    let device = TestDevice::new(&server);
    device.pair(&link, Some(("alice", PASSWORD)));
    device.sign_in("alice");
    device.wait_for_scan(&server);
    let item = device.items()[0]["id"].as_str().unwrap().to_owned();
    let grant = device.grant(&item);
    let player = server.client(hearth_pqc::KeyExchangePolicy::HybridPreferred);
    let stream_url = grant["stream_url"].as_str().unwrap().to_owned();
    assert_eq!(player.get(server.url(&stream_url)).send().unwrap().status(), StatusCode::OK);
    let wrong = device.sign_in_with("alice", "not the password at all");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let session = device.session_id().unwrap();
    let signed = device.sign(&Method::GET, "/api/v1/items", &session);

    let log = server.log_text();
    let grant_id = stream_url.trim_start_matches("/media/").trim_end_matches("/stream");
    for (name, secret) in [
        ("session id", session.as_str()),
        ("media grant", grant_id),
        ("pairing code", code.as_str()),
        ("password", PASSWORD),
        ("wrong password", "not the password at all"),
        ("binding", signed.binding.as_str()),
    ] {
        assert!(!log.contains(secret), "the server log contains the {name}");
    }
}

#[test]
fn admin_renames_devices() {
    let (server, _library) = empty_server();
    let admin = TestDevice::new(&server);
    admin.enroll(&server, "alice", Role::Admin);
    admin.sign_in("alice");
    let id = admin.get_json("/api/v1/admin/devices")[0]["id"].as_i64().unwrap();

    let renamed = admin.request(Method::POST, &format!("/api/v1/admin/devices/{id}/rename"), Some(&serde_json::json!({ "name": "living room TV" })));
    let empty = admin.request(Method::POST, &format!("/api/v1/admin/devices/{id}/rename"), Some(&serde_json::json!({ "name": "" })));
    let devices = admin.get_json("/api/v1/admin/devices");

    assert_eq!(renamed.status(), StatusCode::NO_CONTENT);
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert_eq!(devices[0]["name"], "living room TV");
}

#[test]
fn host_admin_gets_media_grants() {
    common::require_samples();
    let library = tempfile::tempdir().unwrap();
    std::fs::copy(std::path::Path::new(common::SAMPLES).join("movie2/movie-hello.mp4"), library.path().join("film.mp4")).unwrap();
    let server = Server::start_with(&[library.path()], &["--no-watch"]);
    let socket = server.data_dir.join("admin.sock");
    let item = loop {
        let (_, items) = hearth_server::admin_socket::request(&socket, "GET", "/api/v1/items", None).unwrap();
        if let Some(id) = items["items"][0]["id"].as_str() {
            break id.to_owned();
        }
        std::thread::sleep(Duration::from_millis(200));
    };

    let (status, grant) = hearth_server::admin_socket::request(&socket, "POST", &format!("/api/v1/items/{item}/grant"), None).unwrap();
    let player = server.client(hearth_pqc::KeyExchangePolicy::HybridPreferred);
    let stream = player.get(server.url(grant["stream_url"].as_str().unwrap())).header("range", "bytes=0-9").send().unwrap();

    assert_eq!(status, 200, "{grant}");
    assert_eq!(stream.status(), StatusCode::PARTIAL_CONTENT);
}

#[test]
fn device_cannot_test_other_users_password() {
    let (server, _library) = empty_server();
    let admin = TestDevice::new(&server);
    admin.enroll(&server, "alice", Role::Admin);
    let bob = TestDevice::new(&server);
    bob.enroll(&server, "bob", Role::Adult);

    let wrong = admin.sign_in_with("bob", "not bob's password");
    let wrong_body: serde_json::Value = wrong.json().unwrap();
    let right = admin.sign_in_with("bob", PASSWORD);
    let right_body: serde_json::Value = right.json().unwrap();

    assert_eq!(right_body["error"], wrong_body["error"], "the answers tell a right password from a wrong one");
    assert_eq!(right_body["error"], "invalid name or password");
}

#[test]
fn grant_ends_with_its_session() {
    common::require_samples();
    let library = tempfile::tempdir().unwrap();
    std::fs::copy(std::path::Path::new(common::SAMPLES).join("movie2/movie-hello.mp4"), library.path().join("film.mp4")).unwrap();
    let server = Server::start_with(&[library.path()], &["--no-watch"]);
    let viewer = TestDevice::new(&server);
    viewer.enroll(&server, "bob", Role::Adult);
    viewer.sign_in("bob");
    viewer.wait_for_scan(&server);
    let item = viewer.items()[0]["id"].as_str().unwrap().to_owned();
    let grant = viewer.grant(&item);
    let url = server.url(grant["stream_url"].as_str().unwrap());
    let player = server.client(hearth_pqc::KeyExchangePolicy::HybridPreferred);
    let before = player.get(&url).header("range", "bytes=0-9").send().unwrap().status();

    let logout = viewer.request(Method::POST, "/api/v1/logout", None);
    let after = player.get(&url).header("range", "bytes=0-9").send().unwrap();

    assert_eq!(before, StatusCode::PARTIAL_CONTENT);
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED, "the grant outlived sign-out");
}
