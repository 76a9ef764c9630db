//! The guard's cost per request: features and rules, for a household
//! request (a segment of a playing film) and for an attacker's (a traversal
//! probe that raises an alert), then the same film request with the
//! committed neural scorer reading every fourth request's window. Goal: 5 µs
//! median or less for features and rules. Run: `cargo bench -p hearth-guard`.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use hearth_guard::scorer::Scorer;
use hearth_guard::{AuthOutcome, Guard, RequestEvent, RuleSettings};

fn request(at_ms: u64, source: IpAddr, target: String) -> RequestEvent {
    RequestEvent {
        at_ms,
        source,
        device: Some("did:key:zDnaeTV".to_owned()),
        method: "GET".to_owned(),
        target,
        route: Some("/hls/{grant}/{rendition}/{file}".to_owned()),
        status: 200,
        bytes_out: 2_500_000,
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36".to_owned()),
        header_bytes: 900,
        auth: AuthOutcome::Accepted,
        duration_ms: 4,
        connection: 7,
        tls_group: Some("X25519MLKEM768".to_owned()),
        alpn: Some("h2".to_owned()),
    }
}

fn observe(c: &mut Criterion) {
    let tv: IpAddr = "192.168.1.20".parse().unwrap();
    // Baseline: the least any per-source state costs, one map update per request.
    let mut seen: std::collections::HashMap<IpAddr, u64> = std::collections::HashMap::new();
    let mut count = 0u64;
    c.bench_function("baseline: count a request per source", |b| {
        b.iter(|| {
            count += 1;
            *seen.entry(black_box(tv)).or_default() += black_box(count);
        })
    });

    let mut guard = Guard::new(RuleSettings::default());
    let mut at = 0u64;
    c.bench_function("observe a film segment request", |b| {
        b.iter(|| {
            at += 4_000;
            let event = request(at, tv, format!("/hls/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/720p/{}.m4s", at / 4_000));
            black_box(guard.observe(black_box(event)))
        })
    });

    let mut guard = Guard::new(RuleSettings::default());
    let mut n = 0u32;
    c.bench_function("observe a traversal probe", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            // A new source each time, so every probe runs the rules from scratch.
            let source = IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
            let mut event = request(u64::from(n), source, "/media/%2e%2e/%2e%2e/etc/passwd?x=%27%20or%201%3D1--".to_owned());
            event.device = None;
            event.status = 401;
            black_box(guard.observe(black_box(event)))
        })
    });

    let mut guard = Guard::with_scorer(RuleSettings::default(), Scorer::builtin());
    let mut at = 0u64;
    c.bench_function("observe a film segment request, with the scorer", |b| {
        b.iter(|| {
            at += 4_000;
            let event = request(at, tv, format!("/hls/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/720p/{}.m4s", at / 4_000));
            black_box(guard.observe(black_box(event)))
        })
    });
}

criterion_group!(benches, observe);
criterion_main!(benches);
