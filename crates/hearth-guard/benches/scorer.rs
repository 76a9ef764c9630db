//! The neural scorer's cost per call on the CPU, with the committed
//! weights: a full window of 16 requests (a film playing), one request (a
//! new source), and, as the baseline in the same run, encoding the window's
//! features without the network. Goal: well under 1 ms per call.
//! Run: `cargo bench -p hearth-guard --bench scorer`.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use hearth_guard::features::{self, FEATURES, WINDOW, Window};
use hearth_guard::scorer::Scorer;
use hearth_guard::{AuthOutcome, RequestEvent};

fn segment_request(at_ms: u64, source: IpAddr, index: u64) -> RequestEvent {
    RequestEvent {
        at_ms,
        source,
        device: Some("did:key:zDnaeTV".to_owned()),
        method: "GET".to_owned(),
        target: format!("/hls/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/720p/{index}.m4s"),
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

fn scorer(c: &mut Criterion) {
    let tv: IpAddr = "192.168.1.20".parse().unwrap();
    let film: Vec<RequestEvent> = (0..32).map(|i| segment_request(i * 4_000, tv, i)).collect();
    let scorer = Scorer::builtin();

    let mut window: Window = [[0.0; FEATURES]; WINDOW];
    c.bench_function("baseline: encode 16 requests' features", |b| {
        b.iter(|| {
            features::encode_window(black_box(&film), &mut window);
            black_box(&window);
        })
    });

    c.bench_function("score 16 requests", |b| b.iter(|| black_box(scorer.score(black_box(&film)))));

    c.bench_function("score 1 request", |b| b.iter(|| black_box(scorer.score(black_box(&film[..1])))));
}

criterion_group!(benches, scorer);
criterion_main!(benches);
