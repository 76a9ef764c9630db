//! The rules, their buckets per source, and their defaults with reasons.

use std::time::Duration;

use serde::Serialize;

use crate::buckets::LeakyBucket;
use crate::patterns;
use crate::{AuthOutcome, RequestEvent, Severity};

/// The rules, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    /// Many answers of 400 to 404 on distinct paths.
    Probing,
    /// Requests for secrets, repositories, backups and databases.
    SensitiveFile,
    /// Dot segments and system paths, in any encoding.
    Traversal,
    /// Failed sign-ins, passkey sign-ins and pairing codes.
    BruteForce,
    /// A scanning tool's user agent.
    ScannerAgent,
    /// More requests than any household client makes.
    Crawling,
    /// SQL injection and script probes in the query.
    Injection,
    /// TRACE, TRACK, DEBUG and other methods no client sends.
    UnusualMethod,
    /// Request headers far beyond a browser's.
    OversizedHeaders,
    /// One source downloading much faster than it could watch.
    MassDownload,
    /// Connections that time out before sending a complete request
    /// (slowloris and slow-body attacks).
    SlowClient,
    /// More connections open at once than any household client holds.
    ConnectionFlood,
    /// The neural scorer, on its own, reads the source's latest requests
    /// as an attack; the alert's category is the model's.
    Scorer,
}

impl RuleId {
    /// The attack category the rule points at, named as the scorer names
    /// its classes: `reconnaissance`, `brute_force`, `exploitation`,
    /// `denial_of_service` or `abuse`.
    pub fn category(self) -> &'static str {
        match self {
            RuleId::Probing | RuleId::SensitiveFile | RuleId::ScannerAgent | RuleId::UnusualMethod | RuleId::Crawling => "reconnaissance",
            RuleId::Traversal | RuleId::Injection | RuleId::OversizedHeaders => "exploitation",
            RuleId::BruteForce => "brute_force",
            RuleId::SlowClient | RuleId::ConnectionFlood => "denial_of_service",
            RuleId::MassDownload => "abuse",
            // The alert names the model's category; this is its fallback.
            RuleId::Scorer => "reconnaissance",
        }
    }
}

/// Thresholds of the rules. [`RuleSettings::default`] documents each choice.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSettings {
    /// Distinct paths answered 400-404 before a ban, and how fast the count drains a second.
    pub probing: (f64, f64),
    /// Sensitive-file requests before a ban.
    pub sensitive_files: f64,
    /// Failed sign-ins before a ban, and the drain a second.
    pub failed_logins: (f64, f64),
    /// Requests before a rate limit, and the drain a second.
    pub requests: (f64, f64),
    /// Injection probes before a ban (the first ones rate limit).
    pub injections: f64,
    /// Header bytes above which a request counts as oversized.
    pub max_header_bytes: usize,
    /// Bytes sent before a rate limit, and the drain a second.
    pub download: (f64, f64),
    /// Connections that stalled before a complete request, before a ban,
    /// and the drain a second.
    pub stalled_connections: (f64, f64),
    /// Connections one source may hold open at once.
    pub max_connections_per_source: usize,
    /// How long a ban lasts.
    pub ban_duration: Duration,
    /// How long a rate limit lasts.
    pub rate_limit_duration: Duration,
    /// The scorer reads a source's window on every this many requests of it.
    pub scorer_every: u64,
    /// Anomaly score at or above which the scorer's reading counts as hostile.
    pub scorer_threshold: f32,
}

impl Default for RuleSettings {
    fn default() -> Self {
        RuleSettings {
            // A player asks for known paths; a mistyped link or a stale
            // bookmark gives a few 404s. Twenty distinct misses, refilled
            // at one every 10 s, is a directory scan.
            probing: (20.0, 0.1),
            // Hearth serves no such file, so one request is a probe; three
            // leave no doubt and still forgive a curious guest's one try.
            sensitive_files: 2.0,
            // Five wrong passwords or codes, one forgiven a minute: more
            // than a family member mistypes, fewer than a guesser needs.
            failed_logins: (5.0, 1.0 / 60.0),
            // The library page loads up to a few hundred thumbnails at once
            // and a player a segment every few seconds; 600 in a burst,
            // draining 20 a second, is a crawler.
            requests: (600.0, 20.0),
            // A search for "Select Comedies" matches nothing; a probe such
            // as "' or 1=1" twice rate limits, a third bans.
            injections: 2.0,
            // Browsers send 1-4 KiB of headers; the server refuses 16 KiB.
            max_header_bytes: 8 * 1024,
            // 10 GiB ahead of 2.5 MB/s (20 Mbit/s, above a 4K stream):
            // watching never fills it, copying the library at LAN speed does.
            download: (10.0 * 1024.0 * 1024.0 * 1024.0, 2.5 * 1024.0 * 1024.0),
            // A phone on weak Wi-Fi may lose a handshake now and then. Five
            // connections that never finish a request within minutes are
            // a slowloris or slow-body attack keeping sockets open.
            stalled_connections: (4.0, 1.0 / 60.0),
            // A browser opens at most six HTTP/1.1 connections to a host
            // and one for HTTP/2; a TV or phone one or two. 64 leaves room
            // for a busy household behind one address (NAT) and stops one
            // source from taking the server's 512.
            max_connections_per_source: 64,
            // An hour: long enough to stop a tool, short enough that a
            // mistaken ban of a guest's laptop ends by itself.
            ban_duration: Duration::from_secs(3600),
            rate_limit_duration: Duration::from_secs(30),
            // A reading costs about 0.3 ms on a 2-core machine (`cargo
            // bench -p hearth-guard`). Every fourth request keeps the mean
            // near 90 µs a request and still reads a scanner within its
            // first dozen requests.
            scorer_every: 4,
            // The model's own alerts need it to be sure: household traffic
            // in the held-out data stays far below (models/guard-scorer).
            scorer_threshold: 0.9,
        }
    }
}

/// The buckets of one source.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    probing: Option<LeakyBucket>,
    sensitive: Option<LeakyBucket>,
    logins: Option<LeakyBucket>,
    requests: Option<LeakyBucket>,
    injections: Option<LeakyBucket>,
    download: Option<LeakyBucket>,
    stalled: Option<LeakyBucket>,
    /// Hashes of recent missed paths, so only distinct misses count.
    missed: std::collections::VecDeque<u64>,
}

/// One rule's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) rule: RuleId,
    pub(crate) severity: Severity,
    pub(crate) reason: String,
}

fn bucket(slot: &mut Option<LeakyBucket>, (capacity, leak): (f64, f64)) -> &mut LeakyBucket {
    slot.get_or_insert_with(|| LeakyBucket::new(capacity, leak))
}

fn finding(rule: RuleId, severity: Severity, reason: String) -> Finding {
    Finding { rule, severity, reason }
}

/// Runs every rule on `event` with the source's `buckets`.
pub(crate) fn evaluate(settings: &RuleSettings, buckets: &mut Buckets, event: &RequestEvent) -> Vec<Finding> {
    let now = event.at_ms;
    let normalised = patterns::normalise(&event.target);
    let (path, query) = normalised.split_once('?').unwrap_or((normalised.as_str(), ""));
    let mut found = Vec::new();

    if patterns::unusual_method(&event.method) {
        found.push(finding(RuleId::UnusualMethod, Severity::High, format!("method {} is not one a Hearth client sends", event.method)));
    }
    if let Some(agent) = event.user_agent.as_deref()
        && let Some(tool) = patterns::scanner(agent)
    {
        found.push(finding(RuleId::ScannerAgent, Severity::High, format!("the user agent names the scanning tool {tool}")));
    }
    if let Some(pattern) = patterns::traversal(&normalised) {
        found.push(finding(RuleId::Traversal, Severity::High, format!("path traversal ({pattern:?}) in {}", shown(&event.target))));
    }
    if let Some(pattern) = patterns::sensitive(path) {
        let overflow = bucket(&mut buckets.sensitive, (settings.sensitive_files, 0.0)).pour(1.0, now);
        let severity = if overflow { Severity::High } else { Severity::Low };
        found.push(finding(RuleId::SensitiveFile, severity, format!("request for a sensitive file ({pattern}): {}", shown(&event.target))));
    }
    if let Some(pattern) = patterns::injection(query) {
        let overflow = bucket(&mut buckets.injections, (settings.injections, 0.0)).pour(1.0, now);
        let severity = if overflow { Severity::High } else { Severity::Medium };
        found.push(finding(RuleId::Injection, severity, format!("injection probe ({pattern:?}) in the query of {}", shown(&event.target))));
    }
    if event.auth == AuthOutcome::FailedLogin && bucket(&mut buckets.logins, settings.failed_logins).pour(1.0, now) {
        let (capacity, _) = settings.failed_logins;
        found.push(finding(RuleId::BruteForce, Severity::High, format!("more than {capacity} failed sign-ins or pairing codes in a short time")));
    }
    if (400..=404).contains(&event.status) && event.auth != AuthOutcome::FailedLogin {
        let hash = fnv(path);
        if !buckets.missed.contains(&hash) {
            buckets.missed.push_back(hash);
            if buckets.missed.len() > 256 {
                buckets.missed.pop_front();
            }
            if bucket(&mut buckets.probing, settings.probing).pour(1.0, now) {
                let (capacity, _) = settings.probing;
                found.push(finding(RuleId::Probing, Severity::High, format!("more than {capacity} distinct paths answered {}–404", 400)));
            }
        }
    }
    if bucket(&mut buckets.requests, settings.requests).pour(1.0, now) {
        found.push(finding(RuleId::Crawling, Severity::Medium, format!("more than {} requests in a burst", settings.requests.0)));
    }
    if event.header_bytes > settings.max_header_bytes {
        found.push(finding(
            RuleId::OversizedHeaders,
            Severity::Medium,
            format!("{} bytes of request headers, more than {}", event.header_bytes, settings.max_header_bytes),
        ));
    }
    if event.bytes_out > 0 && bucket(&mut buckets.download, settings.download).pour(event.bytes_out as f64, now) {
        found.push(finding(RuleId::MassDownload, Severity::Medium, "downloading far faster than anyone watches".to_owned()));
    }
    found
}

/// Counts a connection that closed by a timeout before it sent a
/// complete request.
pub(crate) fn evaluate_stall(settings: &RuleSettings, buckets: &mut Buckets, now: u64, seconds: u64) -> Option<Finding> {
    let overflow = bucket(&mut buckets.stalled, settings.stalled_connections).pour(1.0, now);
    let (capacity, _) = settings.stalled_connections;
    overflow.then(|| {
        finding(
            RuleId::SlowClient,
            Severity::High,
            format!("more than {capacity} connections held open without a complete request (the last for {seconds} s)"),
        )
    })
}

/// Shortens a request target for a reason text.
fn shown(target: &str) -> String {
    let mut shown: String = target.chars().take(120).collect();
    if shown.len() < target.len() {
        shown.push('…');
    }
    shown
}

/// FNV-1a, for the set of missed paths.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}
