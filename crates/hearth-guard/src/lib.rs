//! Guard: intrusion detection in the request path.
//!
//! Hearth terminates TLS itself, so it sees every request in plain form:
//! the server hands each one to [`Guard::observe`] as a [`RequestEvent`]
//! (source address, proven device, method, path, status, size, user agent,
//! header size, outcome of authentication). Rules in the spirit of
//! CrowdSec's HTTP scenarios fill leaky buckets per source and decide:
//! nothing, a rate limit, or a ban. [`Guard::check_source`] answers at
//! accept time whether a source is banned, so a banned address is cut off
//! before TLS.
//!
//! A paired device is never banned by one rule alone: its alerts rate limit
//! it and wait for the neural scorer's agreement or an admin, since a
//! household's TV must not lose a film to a false alarm. Every decision
//! carries a severity and a reason in words, and an admin can lift any ban.

mod buckets;
mod patterns;
mod rules;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use buckets::LeakyBucket;
pub use rules::{RuleId, RuleSettings};

/// Outcome of authentication for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthOutcome {
    /// A public route, or no authentication was tried.
    None,
    /// A valid session, proof or grant.
    Accepted,
    /// Missing or invalid session, proof or grant.
    Rejected,
    /// A failed sign-in (wrong name or password, passkey, pairing code).
    FailedLogin,
}

/// One request as the guard receives it, after the server replied.
///
/// The server can write these, one JSON object a line, to a file
/// (`[guard] record` in the configuration): that is how the scorer's
/// training data is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestEvent {
    /// Milliseconds on the server's monotonic clock.
    pub at_ms: u64,
    /// The TCP peer.
    pub source: IpAddr,
    /// The paired device that proved its key, if one did.
    pub device: Option<String>,
    /// HTTP method as sent.
    pub method: String,
    /// Path and query as sent, before any decoding.
    pub target: String,
    /// The route template matched, such as `/api/v1/items/{id}`; `None` for no route.
    pub route: Option<String>,
    /// Status code of the response.
    pub status: u16,
    /// Bytes of body sent to the client.
    pub bytes_out: u64,
    /// The User-Agent header.
    pub user_agent: Option<String>,
    /// Total bytes of the request's header block.
    pub header_bytes: usize,
    /// Outcome of authentication.
    pub auth: AuthOutcome,
    /// Milliseconds from the request's arrival to the response's head.
    #[serde(default)]
    pub duration_ms: u64,
    /// The TLS connection's sequence number, 0 where there is none.
    #[serde(default)]
    pub connection: u64,
    /// IANA name of the connection's key-exchange group.
    #[serde(default)]
    pub tls_group: Option<String>,
    /// Application protocol chosen by ALPN (`h2`, `http/1.1`).
    #[serde(default)]
    pub alpn: Option<String>,
}

/// Severity of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look; no action.
    Low,
    /// Rate limited.
    Medium,
    /// Banned, unless the source is a paired device.
    High,
}

/// Response of the server to a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Nothing.
    Allow,
    /// Reply 429 with `Retry-After` for this long.
    RateLimit { retry_after_secs: u64 },
    /// Refuse the source's connections before TLS until the ban ends.
    Ban { seconds: u64 },
}

/// One rule's finding about one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// Milliseconds on the server's monotonic clock.
    pub at_ms: u64,
    /// The source.
    pub source: IpAddr,
    /// The paired device, when the requests proved one.
    pub device: Option<String>,
    /// The rule that fired.
    pub rule: RuleId,
    /// Its severity.
    pub severity: Severity,
    /// The action the guard took.
    pub action: Action,
    /// The reason in words, naming what was seen.
    pub reason: String,
}

/// A ban in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ban {
    /// The banned address.
    pub source: IpAddr,
    /// When it ends, in milliseconds on the monotonic clock.
    pub until_ms: u64,
    /// The rule that caused it, or `None` for an admin's ban.
    pub rule: Option<RuleId>,
    /// Why, in words.
    pub reason: String,
}

/// Decision of [`Guard::check_source`] for a source's next connection or request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it.
    Allow,
    /// Answer 429 with this `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// Close the connection.
    Banned,
}

/// Most requests kept per source for forensic records.
const RECENT_PER_SOURCE: usize = 32;

/// Per-source state: the rules' buckets and the latest requests.
#[derive(Debug, Default)]
struct SourceState {
    buckets: rules::Buckets,
    recent: VecDeque<RequestEvent>,
    limited_until_ms: u64,
    last_seen_ms: u64,
}

/// The guard of one server.
#[derive(Debug)]
pub struct Guard {
    settings: RuleSettings,
    sources: HashMap<IpAddr, SourceState>,
    bans: HashMap<IpAddr, Ban>,
    alerts: VecDeque<Alert>,
    last_sweep_ms: u64,
}

/// Most alerts kept in memory.
const ALERTS_KEPT: usize = 1000;

/// A source silent this long is forgotten (its buckets have drained).
const FORGET_AFTER: Duration = Duration::from_secs(30 * 60);

/// How often silent sources and ended bans are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Most sources tracked at once. Beyond it (a flood from many addresses,
/// as IPv6 allows) the least recently seen half is forgotten, so memory and
/// the cost per request stay bounded.
const MAX_SOURCES: usize = 65_536;

impl Guard {
    /// Creates a guard with `settings`.
    pub fn new(settings: RuleSettings) -> Self {
        Guard { settings, sources: HashMap::new(), bans: HashMap::new(), alerts: VecDeque::new(), last_sweep_ms: 0 }
    }

    /// Returns whether `source` may connect or be served at `now_ms`.
    pub fn check_source(&mut self, source: IpAddr, now_ms: u64) -> Verdict {
        if let Some(ban) = self.bans.get(&source) {
            if ban.until_ms > now_ms {
                return Verdict::Banned;
            }
            self.bans.remove(&source);
        }
        match self.sources.get(&source) {
            Some(state) if state.limited_until_ms > now_ms => {
                Verdict::RateLimited { retry_after_secs: (state.limited_until_ms - now_ms).div_ceil(1000) }
            }
            _ => Verdict::Allow,
        }
    }

    /// Takes in one answered request, runs the rules, applies their actions
    /// and returns the alerts it raised.
    pub fn observe(&mut self, event: RequestEvent) -> Vec<Alert> {
        let now = event.at_ms;
        let findings = {
            let state = self.sources.entry(event.source).or_default();
            state.last_seen_ms = now;
            state.recent.push_back(event.clone());
            if state.recent.len() > RECENT_PER_SOURCE {
                state.recent.pop_front();
            }
            rules::evaluate(&self.settings, &mut state.buckets, &event)
        };
        let mut raised = Vec::new();
        for finding in findings {
            let action = self.act(&event, &finding);
            let alert = Alert {
                at_ms: now,
                source: event.source,
                device: event.device.clone(),
                rule: finding.rule,
                severity: finding.severity,
                action,
                reason: finding.reason,
            };
            self.alerts.push_back(alert.clone());
            if self.alerts.len() > ALERTS_KEPT {
                self.alerts.pop_front();
            }
            raised.push(alert);
        }
        self.forget_idle(now);
        raised
    }

    /// Decides and applies the action for one finding. A paired device is
    /// rate limited instead of banned: one rule alone never bans it.
    fn act(&mut self, event: &RequestEvent, finding: &rules::Finding) -> Action {
        let now = event.at_ms;
        let ban_for = self.settings.ban_duration;
        let limit_for = self.settings.rate_limit_duration;
        match finding.severity {
            Severity::High if event.device.is_none() => {
                let until_ms = now + ban_for.as_millis() as u64;
                self.bans.insert(event.source, Ban { source: event.source, until_ms, rule: Some(finding.rule), reason: finding.reason.clone() });
                Action::Ban { seconds: ban_for.as_secs() }
            }
            Severity::High | Severity::Medium => {
                if let Some(state) = self.sources.get_mut(&event.source) {
                    state.limited_until_ms = state.limited_until_ms.max(now + limit_for.as_millis() as u64);
                }
                Action::RateLimit { retry_after_secs: limit_for.as_secs() }
            }
            Severity::Low => Action::Allow,
        }
    }

    fn forget_idle(&mut self, now_ms: u64) {
        let crowded = self.sources.len() > MAX_SOURCES;
        if !crowded && now_ms.saturating_sub(self.last_sweep_ms) < SWEEP_EVERY.as_millis() as u64 {
            return;
        }
        self.last_sweep_ms = now_ms;
        let horizon = FORGET_AFTER.as_millis() as u64;
        self.sources.retain(|_, state| now_ms.saturating_sub(state.last_seen_ms) < horizon);
        self.bans.retain(|_, ban| ban.until_ms > now_ms);
        if self.sources.len() > MAX_SOURCES {
            let mut seen: Vec<u64> = self.sources.values().map(|state| state.last_seen_ms).collect();
            let (_, median, _) = seen.select_nth_unstable(MAX_SOURCES / 2);
            let cutoff = *median;
            self.sources.retain(|_, state| state.last_seen_ms > cutoff);
        }
    }

    /// Bans `source` by an admin's decision for `duration`.
    pub fn ban(&mut self, source: IpAddr, now_ms: u64, duration: Duration, reason: &str) {
        let until_ms = now_ms + duration.as_millis() as u64;
        self.bans.insert(source, Ban { source, until_ms, rule: None, reason: reason.to_owned() });
    }

    /// Lifts the ban and rate limit of `source`; returns whether there was one.
    pub fn unban(&mut self, source: IpAddr) -> bool {
        let banned = self.bans.remove(&source).is_some();
        let limited = self.sources.get_mut(&source).is_some_and(|state| std::mem::take(&mut state.limited_until_ms) > 0);
        if let Some(state) = self.sources.get_mut(&source) {
            state.buckets = rules::Buckets::default();
        }
        banned || limited
    }

    /// Returns the bans in force at `now_ms`.
    pub fn bans(&self, now_ms: u64) -> Vec<Ban> {
        let mut bans: Vec<Ban> = self.bans.values().filter(|ban| ban.until_ms > now_ms).cloned().collect();
        bans.sort_by_key(|ban| ban.until_ms);
        bans
    }

    /// Returns the alerts raised so far, oldest first.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter()
    }

    /// Returns how many sources the guard tracks now.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// Returns the latest requests of `source`, for a forensic record.
    pub fn recent(&self, source: IpAddr) -> Vec<RequestEvent> {
        self.sources.get(&source).map(|state| state.recent.iter().cloned().collect()).unwrap_or_default()
    }
}
