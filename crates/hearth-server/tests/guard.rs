//! The guard in a running server, attacked over real TLS connections: a
//! scanner is banned and then refused before TLS on every reconnect until
//! an admin lifts the ban with `hearth guard unban`; an injection probe
//! earns a 429 with Retry-After after a tarpit; a slowloris client and a
//! connection flood are banned; failed sign-ins are banned; a paired
//! device is rate limited, never banned, by one rule; and a household
//! browsing and watching a film raises no alert.
//!
//! Every client here connects from 127.0.0.1, the address the tests also
//! use to check results, so checks after a ban go through the host admin
//! socket (`hearth guard ... --data-dir`), as an admin on the host would.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{SAMPLES, Server};
use hearth_pqc::KeyExchangePolicy;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Runs `hearth guard ARGS --data-dir DATA` and returns its stdout.
fn guard_cli(server: &Server, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("guard")
        .args(args)
        .arg("--data-dir")
        .arg(&server.data_dir)
        .env("HEARTH_CONFIG", "/dev/null")
        .output()
        .expect("run hearth guard");
    assert!(
        output.status.success(),
        "hearth guard {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn guard_json(server: &Server, what: &str) -> Value {
    serde_json::from_str(&guard_cli(server, &[what, "--json"])).expect("JSON from hearth guard")
}

fn banned_sources(server: &Server) -> Vec<String> {
    guard_json(server, "bans").as_array().expect("ban list").iter().map(|ban| ban["source"].as_str().unwrap().to_owned()).collect()
}

fn alerts(server: &Server) -> Vec<Value> {
    guard_json(server, "alerts").as_array().expect("alert list").clone()
}

/// Whether a fresh TCP connection is closed by the server before any TLS
/// byte is exchanged. A server that admits the connection waits for the
/// ClientHello, so the read times out instead.
fn closed_before_tls(server: &Server) -> bool {
    let mut tcp = TcpStream::connect(server.addr).expect("TCP connect");
    tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut byte = [0u8; 1];
    match tcp.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => matches!(error.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted),
    }
}

/// A plain GET with a user agent, on a new connection.
fn get(server: &Server, path: &str, agent: &str) -> reqwest::Result<reqwest::blocking::Response> {
    server.client(KeyExchangePolicy::HybridPreferred).get(server.url(path)).header("user-agent", agent).send()
}

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";

#[test]
fn scanner_is_banned_before_tls_until_an_admin_lifts_it() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    assert!(!closed_before_tls(&server), "a fresh server refused a connection");
    assert_eq!(get(&server, "/api/v1/health", BROWSER).expect("health").status(), StatusCode::OK);

    // Nikto announces itself in its user agent.
    let _ = get(&server, "/", "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)");

    assert_eq!(banned_sources(&server), ["127.0.0.1"]);
    for attempt in 0..3 {
        assert!(closed_before_tls(&server), "reconnect {attempt} got past the accept-time ban");
        assert!(get(&server, "/api/v1/health", BROWSER).is_err(), "reconnect {attempt} was served");
    }
    let alert = &alerts(&server)[0];
    assert_eq!(alert["rule"], "scanner_agent");
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["category"], "reconnaissance");
    assert_eq!(alert["action"]["action"], "ban");
    assert!(alert["reason"].as_str().unwrap().contains("nikto"), "{alert}");

    // The forensic record keeps the requests that led to the ban.
    let records: Value = serde_json::from_str(&guard_cli(&server, &["records", "--json"])).unwrap();
    let id = records[0]["id"].as_str().expect("a record id").to_owned();
    let record: Value = serde_json::from_str(&guard_cli(&server, &["records", &id])).unwrap();
    let requests = record["requests"].as_array().expect("requests");
    assert!(requests.iter().any(|r| r["user_agent"].as_str().is_some_and(|ua| ua.contains("Nikto"))), "{record:#}");
    assert!(requests.iter().any(|r| r["target"] == "/api/v1/health" && r["status"] == 200), "{record:#}");

    guard_cli(&server, &["unban", "127.0.0.1"]);
    assert!(banned_sources(&server).is_empty());
    assert!(!closed_before_tls(&server), "the lifted ban still refuses connections");
    assert_eq!(get(&server, "/api/v1/health", BROWSER).expect("health after unban").status(), StatusCode::OK);
}

#[test]
fn injection_probe_is_rate_limited_with_retry_after() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    let probe = get(&server, "/api/v1/items?q=%27%20or%201%3D1--", BROWSER).expect("probe");
    assert_eq!(probe.status(), StatusCode::UNAUTHORIZED, "the probe itself is answered");

    let started = Instant::now();
    let limited = get(&server, "/api/v1/health", BROWSER).expect("next request");
    let held = started.elapsed();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    assert!(held >= Duration::from_millis(1500), "the tarpit held the answer only {held:?}");
    let body: Value = limited.json().unwrap();
    assert!(body["error"].as_str().unwrap().contains("wait"), "{body}");
    assert!(banned_sources(&server).is_empty(), "one probe must not ban");

    guard_cli(&server, &["unban", "127.0.0.1"]);
    assert_eq!(get(&server, "/api/v1/health", BROWSER).unwrap().status(), StatusCode::OK);
}

#[test]
fn failed_sign_ins_are_banned() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    let client = server.client(KeyExchangePolicy::HybridPreferred);
    let mut answered = 0;
    for attempt in 0..12 {
        // Hydra's form post, which Hearth refuses.
        let response = client
            .post(server.url("/api/v1/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("name=admin&password=guess{attempt}"))
            .send();
        match response {
            Ok(response) => {
                assert!(response.status().is_client_error(), "attempt {attempt}: {}", response.status());
                answered += 1;
            }
            Err(_) => break,
        }
    }
    assert!(answered <= 6, "{answered} failed sign-ins were answered before the ban");
    assert_eq!(banned_sources(&server), ["127.0.0.1"]);
    assert_eq!(alerts(&server)[0]["rule"], "brute_force");
}

#[test]
fn slowloris_connections_are_banned() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    // Five connections that never finish their request header; the server
    // cuts each at its header timeout, and the fifth overflows the rule.
    let stalled: Vec<_> = (0..5)
        .map(|_| {
            let mut tls = server.tls_stream();
            tls.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n").unwrap();
            tls.flush().unwrap();
            tls
        })
        .collect();
    for mut tls in stalled {
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while banned_sources(&server).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(banned_sources(&server), ["127.0.0.1"]);
    let alert = &alerts(&server)[0];
    assert_eq!(alert["rule"], "slow_client");
    assert_eq!(alert["category"], "denial_of_service");
}

#[test]
fn slow_bodies_are_cut_off_and_banned() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    // Five sign-in attempts whose JSON body trickles in a byte at a time:
    // each gets 408 at the body timeout, and the fifth overflows the rule.
    let started = Instant::now();
    let slow: Vec<_> = (0..5)
        .map(|_| {
            std::thread::spawn({
                let mut tls = server.tls_stream();
                move || {
                    tls.write_all(b"POST /api/v1/pair/start HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 8192\r\n\r\n{").unwrap();
                    tls.flush().unwrap();
                    let mut answer = Vec::new();
                    tls.sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                    for _ in 0..30 {
                        std::thread::sleep(Duration::from_millis(400));
                        if tls.write_all(b" ").and_then(|()| tls.flush()).is_err() {
                            break;
                        }
                        let mut chunk = [0u8; 512];
                        match tls.read(&mut chunk) {
                            Ok(0) => break,
                            Ok(n) => answer.extend_from_slice(&chunk[..n]),
                            Err(_) => {}
                        }
                        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    String::from_utf8_lossy(&answer).into_owned()
                }
            })
        })
        .collect();
    let answers: Vec<String> = slow.into_iter().map(|thread| thread.join().unwrap()).collect();
    let cut_off = started.elapsed();
    // The ban closes the source's other connections at once, so one of
    // them may end before its 408 is written.
    let timed_out = answers.iter().filter(|answer| answer.starts_with("HTTP/1.1 408")).count();
    assert!(timed_out >= 4, "expected 408 at the body timeout: {answers:?}");
    assert!(answers.iter().all(|answer| answer.is_empty() || answer.starts_with("HTTP/1.1 408")), "{answers:?}");
    assert!(cut_off < Duration::from_secs(14), "the body timeout took {cut_off:?}");
    assert_eq!(banned_sources(&server), ["127.0.0.1"]);
    let found = alerts(&server);
    assert!(found.iter().any(|alert| alert["rule"] == "slow_client"), "{found:#?}");
}

/// A network namespace of this test process, deleted on drop.
struct Netns(String);

impl Netns {
    fn create(name: &str) -> Netns {
        let name = format!("{name}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let added = Command::new("ip").args(["netns", "add", &name]).status().expect("run ip netns add (package iproute2)");
        assert!(added.success(), "ip netns add {name} failed");
        let netns = Netns(name);
        assert!(netns.run(&["ip", "link", "set", "lo", "up"]).status.success());
        netns
    }

    fn run(&self, argv: &[&str]) -> std::process::Output {
        Command::new("ip").args(["netns", "exec", &self.0]).args(argv).output().expect("run ip netns exec")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Whether a TCP connection to `port` inside `netns` completes within 3 s.
fn tcp_connects(netns: &Netns, port: u16) -> bool {
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
    netns.run(&["timeout", "3", "bash", "-c", &script]).status.success()
}

#[test]
fn nftables_drops_banned_source_before_tcp() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("nft").arg("--version").output().is_err() {
        // NOTE: this test needs root and nftables; scripts/install-deps
        // --test installs nftables, and CI runs as root.
        eprintln!("skipped: needs root and the nft command");
        return;
    }
    let netns = Netns::create("hearth-nft");
    let library = tempfile::tempdir().unwrap();
    let server = Server::start_in_netns(&[library.path()], "[guard]\nnftables = true\n", &netns.0);
    let port = server.addr.port();
    let list_set = || String::from_utf8(netns.run(&["nft", "list", "set", "inet", "hearth_guard", "banned4"]).stdout).unwrap();
    assert!(!list_set().contains("127.0.0.1"), "{}", list_set());
    assert!(tcp_connects(&netns, port));

    // A scanner's user agent bans the address; the kernel then drops its
    // packets, so even the TCP handshake never completes.
    let url = format!("https://127.0.0.1:{port}/api/v1/health");
    netns.run(&["curl", "-sk", "--max-time", "5", "-A", "sqlmap/1.8 (https://sqlmap.org)", &url]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !list_set().contains("127.0.0.1") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(list_set().contains("127.0.0.1"), "the ban is not in the nftables set: {}", list_set());
    assert!(!tcp_connects(&netns, port), "a banned source still completes the TCP handshake");

    // Lifting the ban with the CLI removes it from the set.
    guard_cli(&server, &["unban", "127.0.0.1"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while list_set().contains("127.0.0.1") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!list_set().contains("127.0.0.1"), "the lifted ban stays in the set: {}", list_set());
    assert!(tcp_connects(&netns, port));
}

#[test]
fn connection_flood_is_banned() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    // Raw TCP connections that never start TLS, more than one source may hold.
    let held: Vec<TcpStream> = (0..70).map(|_| TcpStream::connect(server.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(banned_sources(&server), ["127.0.0.1"]);
    assert_eq!(alerts(&server)[0]["rule"], "connection_flood");
    drop(held);
    assert!(closed_before_tls(&server), "the flood's source still connects");
}

/// The guard with its rules alone, without the neural scorer.
const RULES_ONLY: &str = "[guard]\nscorer = false\n";

#[test]
fn paired_device_is_rate_limited_not_banned() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start_with_config(&[library.path()], &[], RULES_ONLY);
    let device = server.adult_device();
    // A path traversal in a search, from a paired and signed-in device: a
    // high finding, which alone would ban an unknown source.
    let response = device.request(Method::GET, "/api/v1/items?q=..%2F..%2Fetc%2Fpasswd", None);
    assert_eq!(response.status(), StatusCode::OK);

    let found = alerts(&server);
    let alert = found.iter().find(|alert| alert["rule"] == "traversal").unwrap_or_else(|| panic!("no traversal alert: {found:#?}"));
    assert!(alert["device"].as_str().is_some_and(|device| device.starts_with("device-")), "{alert}");
    assert_eq!(alert["action"]["action"], "rate_limit", "{alert}");
    assert!(banned_sources(&server).is_empty(), "a paired device was banned by one rule");
    assert!(!closed_before_tls(&server));

    let limited = device.request(Method::GET, "/api/v1/items", None);
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    guard_cli(&server, &["unban", "127.0.0.1"]);
    assert_eq!(device.request(Method::GET, "/api/v1/items", None).status(), StatusCode::OK);
}

/// The requests of a recorded sqlmap run, as (user agent, target), cut by
/// scripts/guard-campaign.d/cut-fixtures for the scorer's tests.
fn recorded_sqlmap_requests() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hearth-guard/tests/data/sqlmap-injection.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
    text.lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            (event["user_agent"].as_str().unwrap().to_owned(), event["target"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn paired_attacker_banned_once_model_agrees() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    let device = server.adult_device();
    assert_eq!(device.request(Method::GET, "/api/v1/items", None).status(), StatusCode::OK);

    // The paired device runs sqlmap with its session: the recorded
    // requests, signed by the device, until the guard closes the
    // connection. The first findings only rate limit it (429).
    let mut statuses = Vec::new();
    for (agent, target) in recorded_sqlmap_requests() {
        match device.try_request(Method::GET, &target, &[("user-agent", &agent)]) {
            Ok(response) => statuses.push(response.status().as_u16()),
            Err(_) => break,
        }
    }
    assert!(statuses.contains(&429), "rate limited before the ban: {statuses:?}");
    let found = alerts(&server);
    let ban = found
        .iter()
        .find(|alert| alert["action"]["action"] == "ban")
        .unwrap_or_else(|| panic!("no ban; statuses {statuses:?}, alerts {found:#?}"));
    assert!(ban["device"].as_str().is_some_and(|device| device.starts_with("device-")), "{ban}");
    assert_eq!(ban["action"]["end_sessions"], true, "{ban}");
    assert!(ban["reason"].as_str().unwrap().contains("the scorer agrees"), "{ban}");
    assert_ne!(ban["model"]["category"], "benign", "{ban}");
    assert_eq!(banned_sources(&server), ["127.0.0.1"]);
    assert!(closed_before_tls(&server));

    // Lifting the ban lets the address in again, but the device's session
    // is over: it has to sign in anew.
    guard_cli(&server, &["unban", "127.0.0.1"]);
    let after = device.try_request(Method::GET, "/api/v1/items", &[]).expect("connects after the unban");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED, "the device's session survived the ban");
}

#[test]
fn admin_bans_and_unbans_through_the_api() {
    let library = tempfile::tempdir().unwrap();
    let server = Server::start(&[library.path()]);
    let admin = server.admin();
    // The admin's own address is refused, so nobody locks themselves out.
    let own = admin.request(Method::POST, "/api/v1/admin/guard/bans", Some(&json!({ "source": "127.0.0.1" })));
    assert_eq!(own.status(), StatusCode::BAD_REQUEST);
    let bad = admin.request(Method::POST, "/api/v1/admin/guard/bans", Some(&json!({ "source": "the neighbour" })));
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().unwrap().contains("the neighbour"));

    let banned = admin.request(Method::POST, "/api/v1/admin/guard/bans", Some(&json!({ "source": "192.0.2.7", "minutes": 5, "reason": "lodger's laptop" })));
    assert_eq!(banned.status(), StatusCode::CREATED);
    let bans = admin.get_json("/api/v1/admin/guard/bans");
    assert_eq!(bans[0]["source"], "192.0.2.7");
    assert_eq!(bans[0]["reason"], "lodger's laptop");
    assert_eq!(admin.request(Method::DELETE, "/api/v1/admin/guard/bans/192.0.2.7", None).status(), StatusCode::NO_CONTENT);
    assert_eq!(admin.request(Method::DELETE, "/api/v1/admin/guard/bans/192.0.2.7", None).status(), StatusCode::NOT_FOUND);

    // Members cannot read or change the guard.
    let member = server.adult_device();
    assert_eq!(member.request(Method::GET, "/api/v1/admin/guard/alerts", None).status(), StatusCode::FORBIDDEN);
    assert_eq!(member.request(Method::DELETE, "/api/v1/admin/guard/bans/192.0.2.7", None).status(), StatusCode::FORBIDDEN);
}

#[test]
fn household_browsing_and_watching_raises_no_alert() {
    common::require_samples();
    let server = Server::start(&[Path::new(SAMPLES)]);
    server.wait_for_scan();
    let device = server.adult_device();
    let items = device.items();
    for item in &items {
        let id = item["id"].as_str().unwrap();
        device.get_json(&format!("/api/v1/items/{id}"));
        let _ = device.request(Method::GET, &format!("/api/v1/items/{id}/thumbnail"), None);
    }
    device.get_json("/api/v1/items/in-progress");
    device.get_json("/api/v1/items/facets");

    // Watch a film through HLS with seeks, as hls.js does: playlists, the
    // key, and segments fetched out of order.
    let film = items.iter().find(|item| item["mime"] == "video/x-msvideo").expect("the AVI sample");
    let id = film["id"].as_str().unwrap();
    let caps = json!({
        "video_codecs": ["h264"], "audio_codecs": ["aac"], "containers": ["mp4"], "hls": "mse"
    });
    let answer: Value = device.request(Method::POST, &format!("/api/v1/items/{id}/playback"), Some(&json!({ "capabilities": caps, "quality": "480p" }))).json().unwrap();
    let master = answer["url"].as_str().expect("HLS url").to_owned();
    let base = master.trim_end_matches("master.m3u8").to_owned();
    let fetch = |path: &str| {
        let response = get(&server, path, BROWSER).expect("grant request");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.bytes().unwrap()
    };
    fetch(&master);
    let playlist = String::from_utf8(fetch(&format!("{base}480p/index.m3u8")).to_vec()).unwrap();
    assert_eq!(device.request(Method::GET, answer["key_url"].as_str().unwrap(), None).status(), StatusCode::OK);
    fetch(&format!("{base}480p/init.mp4"));
    let segments: Vec<&str> = playlist.lines().filter(|line| line.ends_with(".m4s")).collect();
    for name in segments.iter().chain(segments.iter().rev()) {
        fetch(&format!("{base}480p/{name}"));
    }
    for position in [1000, 3500, 6000] {
        let saved = device.request(Method::PUT, &format!("/api/v1/items/{id}/play-state"), Some(&json!({ "position_ms": position, "completed": false })));
        assert!(saved.status().is_success(), "{}", saved.status());
    }
    // A mistyped address now and then is no attack.
    assert!(get(&server, "/favicon.ico", BROWSER).unwrap().status().is_client_error());

    // NOTE: this script fetches every segment forward and back at once, which
    // the scorer sometimes reads as a library copy (anomaly near its 0.9
    // threshold, seen under load). About a paired device it only reports,
    // so a low scorer report is allowed here; any other alert is not. Real
    // players raised none in the campaign (docs/benchmarks.md).
    let raised = alerts(&server);
    let acted: Vec<&Value> = raised.iter().filter(|alert| !(alert["rule"] == "scorer" && alert["severity"] == "low")).collect();
    assert!(acted.is_empty(), "alerts on a household evening: {raised:#?}");
    for report in &raised {
        assert_eq!(report["action"]["action"], "allow", "a scorer report acted: {report}");
    }
    assert!(banned_sources(&server).is_empty());
}
