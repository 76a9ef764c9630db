//! Each rule against a short sequence shaped like its attack, and all of
//! them against a family evening: a browser loading the library and
//! playing a film with seeks. The sequences are built here; recordings of
//! real tools against a running server come with the server's guard layer.

use std::net::IpAddr;

use hearth_guard::{Action, AuthOutcome, Guard, RequestEvent, RuleId, RuleSettings, Severity, Verdict};

const ATTACKER: &str = "192.168.1.66";
const TV: &str = "192.168.1.20";
const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";

fn event(at_ms: u64, source: &str, method: &str, target: &str, status: u16) -> RequestEvent {
    RequestEvent {
        at_ms,
        source: source.parse::<IpAddr>().unwrap(),
        device: None,
        method: method.to_owned(),
        target: target.to_owned(),
        route: None,
        status,
        bytes_out: 512,
        user_agent: Some(CHROME.to_owned()),
        header_bytes: 900,
        auth: AuthOutcome::None,
        duration_ms: 3,
        connection: 1,
        tls_group: Some("X25519MLKEM768".to_owned()),
        alpn: Some("h2".to_owned()),
    }
}

/// Feeds `events` and returns the rules that fired, in order.
fn fired(guard: &mut Guard, events: Vec<RequestEvent>) -> Vec<(RuleId, Severity, Action)> {
    events.into_iter().flat_map(|event| guard.observe(event)).map(|alert| (alert.rule, alert.severity, alert.action)).collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn directory_scan_is_banned() {
    let mut guard = Guard::new(RuleSettings::default());
    let words = ["admin", "login", "api", "backup2", "old", "test", "dev", "console", "manager", "private", "uploads", "tmp", "cgi-bin",
        "includes", "assets2", "static2", "shell", "debug", "status2", "metrics", "graphql", "v2"];
    let events = words.iter().enumerate().map(|(i, word)| event(i as u64 * 50, ATTACKER, "GET", &format!("/{word}"), 404)).collect();
    let alerts = fired(&mut guard, events);
    let probing: Vec<Severity> = alerts.iter().filter(|(rule, _, _)| *rule == RuleId::Probing).map(|(_, severity, _)| *severity).collect();
    assert!(probing.contains(&Severity::High), "{alerts:?}");
    assert_eq!(guard.check_source(ip(ATTACKER), 2_000), Verdict::Banned);
}

#[test]
fn traversal_and_scanner_agents_ban_at_once() {
    let mut guard = Guard::new(RuleSettings::default());
    let alerts = fired(&mut guard, vec![event(0, ATTACKER, "GET", "/media/%2e%2e/%2e%2e/etc/passwd", 401)]);
    assert_eq!(alerts[0].0, RuleId::Traversal);
    assert_eq!(guard.check_source(ip(ATTACKER), 1), Verdict::Banned);

    let mut guard = Guard::new(RuleSettings::default());
    let mut probe = event(0, ATTACKER, "GET", "/", 200);
    probe.user_agent = Some("Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)".to_owned());
    let alerts = fired(&mut guard, vec![probe]);
    assert_eq!((alerts[0].0, alerts[0].1), (RuleId::ScannerAgent, Severity::High));
}

#[test]
fn sensitive_files_forgive_one_look() {
    let mut guard = Guard::new(RuleSettings::default());
    let first = fired(&mut guard, vec![event(0, ATTACKER, "GET", "/.env", 401)]);
    assert_eq!(first[0].1, Severity::Low, "one look is an alert, not a ban");
    assert_eq!(guard.check_source(ip(ATTACKER), 1), Verdict::Allow);
    fired(&mut guard, vec![event(10, ATTACKER, "GET", "/.git/config", 401)]);
    let third = fired(&mut guard, vec![event(20, ATTACKER, "GET", "/hearth.sqlite3", 401)]);
    assert_eq!(third[0].1, Severity::High);
    assert_eq!(guard.check_source(ip(ATTACKER), 30), Verdict::Banned);
}

#[test]
fn password_guessing_is_banned_and_a_typo_is_not() {
    let mut guard = Guard::new(RuleSettings::default());
    let mut attempts = Vec::new();
    for i in 0..6 {
        let mut login = event(i * 200, ATTACKER, "POST", "/api/v1/login", 401);
        login.auth = AuthOutcome::FailedLogin;
        attempts.push(login);
    }
    let alerts = fired(&mut guard, attempts);
    assert!(alerts.iter().any(|(rule, _, _)| *rule == RuleId::BruteForce), "{alerts:?}");
    assert_eq!(guard.check_source(ip(ATTACKER), 2_000), Verdict::Banned);

    // A parent who mistypes twice, then signs in.
    let mut guard = Guard::new(RuleSettings::default());
    let mut tries = Vec::new();
    for i in 0..2 {
        let mut login = event(i * 5_000, TV, "POST", "/api/v1/login", 401);
        login.auth = AuthOutcome::FailedLogin;
        tries.push(login);
    }
    tries.push(event(12_000, TV, "POST", "/api/v1/login", 200));
    assert!(fired(&mut guard, tries).is_empty());
}

#[test]
fn injection_probes_escalate_and_searches_do_not() {
    let mut guard = Guard::new(RuleSettings::default());
    let search = fired(&mut guard, vec![event(0, TV, "GET", "/api/v1/items?q=Select+Comedies", 200)]);
    assert!(search.is_empty(), "{search:?}");
    let probes: Vec<RequestEvent> = ["%27%20or%201%3D1--", "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "1%27%20UNION%20SELECT%20password%20FROM%20users"]
        .iter()
        .enumerate()
        .map(|(i, q)| event(100 + i as u64, ATTACKER, "GET", &format!("/api/v1/items?q={q}"), 401))
        .collect();
    let alerts = fired(&mut guard, probes);
    let severities: Vec<Severity> = alerts.iter().filter(|(rule, _, _)| *rule == RuleId::Injection).map(|(_, s, _)| *s).collect();
    assert_eq!(severities, [Severity::Medium, Severity::Medium, Severity::High]);
}

#[test]
fn unusual_methods_and_huge_headers() {
    let mut guard = Guard::new(RuleSettings::default());
    let alerts = fired(&mut guard, vec![event(0, ATTACKER, "TRACE", "/", 405)]);
    assert_eq!(alerts[0].0, RuleId::UnusualMethod);
    let mut guard = Guard::new(RuleSettings::default());
    let mut big = event(0, ATTACKER, "GET", "/api/v1/health", 200);
    big.header_bytes = 12_000;
    let alerts = fired(&mut guard, vec![big]);
    assert_eq!((alerts[0].0, alerts[0].1), (RuleId::OversizedHeaders, Severity::Medium));
    assert!(matches!(guard.check_source(ip(ATTACKER), 10), Verdict::RateLimited { retry_after_secs: 30 }));
}

/// Builds a family evening on the TV: the library with 300 thumbnails, a film
/// played with three seeks (a 4 s segment every 4 s at 5 Mbit/s for an
/// hour), the play state saved every 10 s, a mistyped search.
fn evening(device: Option<&str>) -> Vec<RequestEvent> {
    let mut events = Vec::new();
    let mut at = 0;
    let mut push = |at: u64, method: &str, target: String, status: u16, bytes: u64| {
        let mut e = event(at, TV, method, &target, status);
        e.device = device.map(str::to_owned);
        e.bytes_out = bytes;
        e.auth = AuthOutcome::Accepted;
        e.route = Some("/api/v1/items".to_owned());
        events.push(e);
    };
    push(at, "GET", "/api/v1/items?kind=video&limit=500".to_owned(), 200, 200_000);
    for i in 0..300 {
        at += 5;
        push(at, "GET", format!("/media/g{i}/thumbnail"), 200, 20_000);
    }
    push(at + 10, "GET", "/api/v1/items?q=frozn".to_owned(), 200, 300);
    push(at + 20, "GET", "/api/v1/items/0123/trickplay/sheet-9.jpg".to_owned(), 404, 60);
    at += 1_000;
    push(at, "POST", "/api/v1/items/0123/playback".to_owned(), 200, 900);
    let mut segment = 0;
    for second in (0..3600).step_by(4) {
        at += 4_000;
        // Three seeks: a burst of requests for segments far ahead.
        if [600, 1800, 3000].contains(&second) {
            segment += 150;
            for extra in 0..3 {
                push(at + extra, "GET", format!("/hls/g/720p/{}.m4s", segment + extra), 200, 2_500_000);
            }
        }
        push(at, "GET", format!("/hls/g/720p/{segment}.m4s"), 200, 2_500_000);
        segment += 1;
        if second % 12 == 0 {
            push(at + 1, "PUT", "/api/v1/items/0123/play-state".to_owned(), 204, 0);
        }
    }
    events
}

#[test]
fn a_family_evening_raises_nothing() {
    for device in [None, Some("did:key:zDnaTV")] {
        let mut guard = Guard::new(RuleSettings::default());
        let alerts = fired(&mut guard, evening(device));
        assert!(alerts.is_empty(), "a film night raised {alerts:?}");
        assert_eq!(guard.check_source(ip(TV), 4_000_000), Verdict::Allow);
    }
}

#[test]
fn a_paired_device_is_never_banned_by_one_rule() {
    let mut guard = Guard::new(RuleSettings::default());
    let mut traversal = event(0, TV, "GET", "/media/..%2f..%2fetc/passwd", 401);
    traversal.device = Some("did:key:zDnaTV".to_owned());
    let alerts = fired(&mut guard, vec![traversal]);
    assert_eq!(alerts[0].1, Severity::High);
    assert!(matches!(alerts[0].2, Action::RateLimit { .. }), "a paired device was banned: {alerts:?}");
    assert!(matches!(guard.check_source(ip(TV), 1), Verdict::RateLimited { .. }));
    assert!(guard.bans(1).is_empty());
}

#[test]
fn bans_hold_until_they_end_or_an_admin_lifts_them() {
    let mut guard = Guard::new(RuleSettings::default());
    fired(&mut guard, vec![event(0, ATTACKER, "DEBUG", "/", 405)]);
    // Every new connection is refused while the ban lasts.
    for reconnect_ms in [10, 60_000, 3_599_000] {
        assert_eq!(guard.check_source(ip(ATTACKER), reconnect_ms), Verdict::Banned, "at {reconnect_ms} ms");
    }
    assert_eq!(guard.check_source(ip(ATTACKER), 3_600_001), Verdict::Allow, "the ban ends after an hour");

    fired(&mut guard, vec![event(4_000_000, ATTACKER, "DEBUG", "/", 405)]);
    let bans = guard.bans(4_000_001);
    assert_eq!(bans.len(), 1);
    assert!(bans[0].reason.contains("DEBUG"), "{:?}", bans[0].reason);
    assert!(guard.unban(ip(ATTACKER)));
    assert_eq!(guard.check_source(ip(ATTACKER), 4_000_002), Verdict::Allow);
    assert!(!guard.unban(ip(ATTACKER)), "nothing left to lift");
    assert_eq!(guard.recent(ip(ATTACKER)).len(), 2, "the forensic record keeps the source's requests");
}

#[test]
fn a_flood_of_addresses_stays_bounded() {
    let mut guard = Guard::new(RuleSettings::default());
    for n in 0..150_000u32 {
        let source = IpAddr::from([0xfd00, 0, 0, 0, 0, 0, (n >> 16) as u16, n as u16]);
        let mut probe = event(u64::from(n), ATTACKER, "GET", "/.env", 401);
        probe.source = source;
        guard.observe(probe);
    }
    assert!(guard.tracked_sources() <= 65_537, "{} sources kept", guard.tracked_sources());
}

#[test]
fn copying_the_library_is_slowed() {
    let mut guard = Guard::new(RuleSettings::default());
    // 200 files of 100 MB at 100 MB/s.
    let events = (0..200).map(|i| {
        let mut e = event(i * 1_000, ATTACKER, "GET", &format!("/media/g{i}/stream"), 200);
        e.bytes_out = 100 * 1024 * 1024;
        e.auth = AuthOutcome::Accepted;
        e
    });
    let alerts = fired(&mut guard, events.collect());
    assert!(alerts.iter().any(|(rule, _, _)| *rule == RuleId::MassDownload), "{alerts:?}");
}

#[test]
fn connection_flood_and_stalled_connections_ban() {
    use hearth_guard::{Admission, ConnectionEnd};
    let settings = RuleSettings::default();
    let limit = settings.max_connections_per_source;
    let mut guard = Guard::new(settings);
    for n in 0..limit {
        assert_eq!(guard.admit(ip(ATTACKER), n as u64), Admission::Admitted, "connection {n}");
    }
    // A TV next door is not held back by the flood.
    assert_eq!(guard.admit(ip(TV), 10), Admission::Admitted);
    let Admission::TooMany(alerts) = guard.admit(ip(ATTACKER), 100) else { panic!("connection {limit} + 1 admitted") };
    assert_eq!(alerts[0].rule, RuleId::ConnectionFlood);
    assert_eq!(alerts[0].category, "denial_of_service");
    assert_eq!(guard.admit(ip(ATTACKER), 200), Admission::Banned);

    // Closing connections frees their places.
    let mut guard = Guard::new(RuleSettings::default());
    for n in 0..200 {
        assert_eq!(guard.admit(ip(TV), n), Admission::Admitted, "sequential connection {n}");
        assert!(guard.connection_closed(ip(TV), n, ConnectionEnd::Served).is_empty());
    }
    assert_eq!(guard.open_connections(ip(TV)), 0);

    // Stalled connections: four are forgiven, the fifth in minutes bans.
    let mut fired = Vec::new();
    for n in 0..5 {
        assert_eq!(guard.admit(ip(ATTACKER), n * 1000), Admission::Admitted);
        fired.extend(guard.connection_closed(ip(ATTACKER), n * 1000 + 20_000, ConnectionEnd::Stalled { seconds: 20 }));
        if n < 4 {
            assert!(fired.is_empty(), "stalled connection {n} fired");
        }
    }
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].rule, RuleId::SlowClient);
    assert_eq!(guard.check_source(ip(ATTACKER), 30_000), Verdict::Banned);
    // One a few minutes is a phone on weak Wi-Fi.
    let mut guard = Guard::new(RuleSettings::default());
    for n in 0..10 {
        assert!(guard.connection_closed(ip(TV), n * 120_000, ConnectionEnd::Stalled { seconds: 10 }).is_empty(), "stall {n}");
    }
}

#[test]
fn alerts_count_the_requests_before_them() {
    let mut guard = Guard::new(RuleSettings::default());
    for n in 0..4 {
        assert!(guard.observe(event(n * 100, ATTACKER, "GET", "/", 200)).is_empty());
    }
    let alerts = guard.observe(event(500, ATTACKER, "TRACE", "/", 405));
    assert_eq!(alerts[0].requests_seen, 5);
    assert_eq!(alerts[0].category, "reconnaissance");
}
