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
//!
//! With a [`scorer::Scorer`] ([`Guard::with_scorer`]) the guard also reads
//! each source's latest requests as a sequence, every few requests and on
//! every high-severity finding about a paired device. When the model
//! confirms such a finding, the device is banned and its sessions end. The
//! model also raises alerts of its own when it is sure across two readings
//! in a row. Those rate limit an unpaired source and only warn about a
//! paired one, so the model alone never bans.

mod buckets;
pub mod features;
mod patterns;
mod rules;
pub mod scorer;

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
    Ban {
        /// Length of the ban.
        seconds: u64,
        /// End the sessions of the paired device that made the requests.
        end_sessions: bool,
        /// Rotate the server's TLS certificate and signing key at once.
        rotate_keys: bool,
    },
}

/// How a connection ended, as the accept loop reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnectionEnd {
    /// The client sent at least one complete request.
    Served,
    /// A timeout closed it before a complete request: the TLS handshake
    /// or the request header took too long.
    Stalled {
        /// How long it was open.
        seconds: u64,
    },
}

/// Whether a new connection from a source may proceed to TLS.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Go on; report its end with [`Guard::connection_closed`].
    Admitted,
    /// The source is banned: close it.
    Banned,
    /// The source holds too many connections: close it. Carries the alert
    /// when this refusal raised one.
    TooMany(Vec<Alert>),
}

/// The scorer's reading that an alert relied on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ModelOpinion {
    /// Probability in `[0, 1]` that the source is not a household client.
    pub anomaly: f32,
    /// The category the model chose.
    pub category: scorer::Category,
}

/// One rule's finding about one source.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// The attack category the rule points at (see [`RuleId::category`]).
    pub category: &'static str,
    /// Requests the source had made when the alert was raised, this one
    /// included.
    pub requests_seen: u64,
    /// The scorer's reading of the source's latest requests, when the
    /// guard has a scorer and read them for this decision.
    pub model: Option<ModelOpinion>,
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

/// High findings a paired device must have had, with the scorer agreeing,
/// before it is banned. One odd request (an admin trying a bad link, a
/// client bug) then only rate limits it, whatever the model reads into the
/// requests around it, because an attack tool repeats itself.
const PAIRED_HIGH_FINDINGS: u32 = 3;

/// Most requests kept per source for forensic records.
const RECENT_PER_SOURCE: usize = 32;

/// Per-source state: the rules' buckets and the latest requests.
#[derive(Debug, Default)]
struct SourceState {
    buckets: rules::Buckets,
    recent: VecDeque<RequestEvent>,
    limited_until_ms: u64,
    last_seen_ms: u64,
    requests: u64,
    /// Readings in a row in which the scorer judged the source hostile.
    hostile_readings: u32,
    /// The paired device that last proved its key from this address.
    device: Option<String>,
    /// High-severity findings about this address since it was last seen
    /// fresh or unbanned.
    high_findings: u32,
}

/// The guard of one server.
#[derive(Debug)]
pub struct Guard {
    settings: RuleSettings,
    sources: HashMap<IpAddr, SourceState>,
    bans: HashMap<IpAddr, Ban>,
    alerts: VecDeque<Alert>,
    last_sweep_ms: u64,
    /// Open connections per source; kept apart from `sources`, which
    /// forgets idle sources while a long download keeps its connection.
    open: HashMap<IpAddr, usize>,
    scorer: Option<scorer::Scorer>,
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
        Guard {
            settings,
            sources: HashMap::new(),
            bans: HashMap::new(),
            alerts: VecDeque::new(),
            last_sweep_ms: 0,
            open: HashMap::new(),
            scorer: None,
        }
    }

    /// Creates a guard with `settings` that also consults `scorer`.
    pub fn with_scorer(settings: RuleSettings, scorer: scorer::Scorer) -> Self {
        Guard { scorer: Some(scorer), ..Guard::new(settings) }
    }

    /// Returns whether the guard consults a scorer.
    pub fn has_scorer(&self) -> bool {
        self.scorer.is_some()
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

    /// Takes in one answered request, runs the rules and, when due, the
    /// scorer, applies their actions and returns the alerts it raised.
    pub fn observe(&mut self, event: RequestEvent) -> Vec<Alert> {
        let now = event.at_ms;
        let (findings, opinion, device) = {
            let state = self.sources.entry(event.source).or_default();
            // A request refused before authentication (a rate limit) proves
            // no device. The address's paired device is assumed, so that
            // such requests cannot get it banned by the rules alone.
            if event.device.is_some() {
                state.device = event.device.clone();
            }
            let device = event.device.clone().or_else(|| state.device.clone());
            let paired = device.is_some();
            state.last_seen_ms = now;
            state.requests += 1;
            state.recent.push_back(event.clone());
            if state.recent.len() > RECENT_PER_SOURCE {
                state.recent.pop_front();
            }
            let findings = rules::evaluate(&self.settings, &mut state.buckets, &event);
            let confirm = paired && findings.iter().any(|finding| finding.severity == Severity::High);
            let due = state.requests % self.settings.scorer_every.max(1) == 0;
            let opinion = match &self.scorer {
                Some(scorer) if confirm || due => {
                    let score = scorer.score(state.recent.make_contiguous());
                    Some(ModelOpinion { anomaly: score.anomaly, category: score.category })
                }
                _ => None,
            };
            (findings, opinion, device)
        };
        let paired = device.is_some();
        let hostile = opinion.filter(|opinion| self.is_hostile(opinion));
        let mut raised: Vec<Alert> = findings.into_iter().map(|finding| self.raise(now, event.source, device.clone(), finding, opinion)).collect();

        if let Some(opinion) = opinion {
            let state = self.sources.entry(event.source).or_default();
            if hostile.is_none() {
                state.hostile_readings = 0;
            } else if raised.is_empty() {
                state.hostile_readings += 1;
                // Two readings in a row, so one odd window is not enough.
                if state.hostile_readings >= 2 && state.limited_until_ms <= now {
                    state.hostile_readings = 0;
                    // A paired device is only reported: the model's benign
                    // data is thin (models/guard-scorer/MODEL_CARD.md), and a
                    // household with many players behind one address reads
                    // like a library copy to it.
                    let severity = if paired { Severity::Low } else { Severity::Medium };
                    let finding = rules::Finding {
                        rule: RuleId::Scorer,
                        severity,
                        reason: format!(
                            "the scorer reads the latest requests as {} (anomaly {:.2}) twice in a row",
                            opinion.category.as_str().replace('_', " "),
                            opinion.anomaly
                        ),
                    };
                    raised.push(self.raise(now, event.source, device, finding, Some(opinion)));
                }
            }
        }
        self.forget_idle(now);
        raised
    }

    /// Returns whether the scorer's `opinion` counts as hostile.
    fn is_hostile(&self, opinion: &ModelOpinion) -> bool {
        opinion.category != scorer::Category::Benign && opinion.anomaly >= self.settings.scorer_threshold
    }

    /// Decides and applies the action for one finding, and keeps the alert.
    /// A paired device is rate limited instead of banned unless it has had
    /// [`PAIRED_HIGH_FINDINGS`] high findings and the scorer's `opinion`
    /// agrees that its requests are hostile. Its ban then also ends its
    /// sessions, and rotates the server's keys when the model reads an
    /// exploitation attempt.
    fn raise(&mut self, now: u64, source: IpAddr, device: Option<String>, finding: rules::Finding, opinion: Option<ModelOpinion>) -> Alert {
        let ban_for = self.settings.ban_duration;
        let limit_for = self.settings.rate_limit_duration;
        let mut reason = finding.reason;
        let high_findings = {
            let state = self.sources.entry(source).or_default();
            if finding.severity == Severity::High {
                state.high_findings += 1;
            }
            state.high_findings
        };
        let agreed = opinion
            .filter(|opinion| self.is_hostile(opinion) && finding.rule != RuleId::Scorer && high_findings >= PAIRED_HIGH_FINDINGS);
        let action = match finding.severity {
            Severity::High if device.is_none() || agreed.is_some() => {
                let paired = device.is_some();
                if let Some(opinion) = agreed.filter(|_| paired) {
                    reason = format!(
                        "{reason}; the scorer agrees ({}, anomaly {:.2})",
                        opinion.category.as_str().replace('_', " "),
                        opinion.anomaly
                    );
                }
                let rotate_keys = paired && agreed.is_some_and(|opinion| opinion.category == scorer::Category::Exploitation);
                let until_ms = now + ban_for.as_millis() as u64;
                self.bans.insert(source, Ban { source, until_ms, rule: Some(finding.rule), reason: reason.clone() });
                Action::Ban { seconds: ban_for.as_secs(), end_sessions: paired, rotate_keys }
            }
            Severity::High | Severity::Medium => {
                if finding.severity == Severity::High {
                    reason = format!("{reason}; a paired device, so rate limited until the scorer or an admin confirms");
                }
                let state = self.sources.entry(source).or_default();
                state.limited_until_ms = state.limited_until_ms.max(now + limit_for.as_millis() as u64);
                Action::RateLimit { retry_after_secs: limit_for.as_secs() }
            }
            Severity::Low => Action::Allow,
        };
        let requests_seen = self.sources.get(&source).map_or(0, |state| state.requests);
        let category = match (finding.rule, opinion) {
            (RuleId::Scorer, Some(opinion)) => opinion.category.as_str(),
            _ => finding.rule.category(),
        };
        let alert = Alert {
            at_ms: now,
            source,
            device,
            rule: finding.rule,
            severity: finding.severity,
            action,
            reason,
            category,
            requests_seen,
            model: opinion,
        };
        self.alerts.push_back(alert.clone());
        if self.alerts.len() > ALERTS_KEPT {
            self.alerts.pop_front();
        }
        alert
    }

    /// Keeps `event` in its source's recent requests without running the
    /// rules: for what the server notes itself, such as a connection that
    /// timed out before it sent a request, so the scorer sees it.
    pub fn remember(&mut self, event: RequestEvent) {
        let state = self.sources.entry(event.source).or_default();
        state.last_seen_ms = state.last_seen_ms.max(event.at_ms);
        state.recent.push_back(event);
        if state.recent.len() > RECENT_PER_SOURCE {
            state.recent.pop_front();
        }
    }

    /// Decides whether a new connection from `source` may go on to TLS,
    /// and counts it as open when it may.
    pub fn admit(&mut self, source: IpAddr, now_ms: u64) -> Admission {
        if self.check_source(source, now_ms) == Verdict::Banned {
            return Admission::Banned;
        }
        let open = self.open.entry(source).or_insert(0);
        if *open >= self.settings.max_connections_per_source {
            let limit = self.settings.max_connections_per_source;
            // One alert per flood: the first refusal raises it and bans.
            let finding = rules::Finding {
                rule: RuleId::ConnectionFlood,
                severity: Severity::High,
                reason: format!("more than {limit} connections open at once from one address"),
            };
            self.sources.entry(source).or_default().last_seen_ms = now_ms;
            return Admission::TooMany(vec![self.raise(now_ms, source, None, finding, None)]);
        }
        *open += 1;
        Admission::Admitted
    }

    /// Reports the end of a connection that [`Guard::admit`] admitted, and
    /// returns the alerts it raised.
    pub fn connection_closed(&mut self, source: IpAddr, now_ms: u64, end: ConnectionEnd) -> Vec<Alert> {
        if let Some(open) = self.open.get_mut(&source) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                self.open.remove(&source);
            }
        }
        match end {
            ConnectionEnd::Stalled { seconds } => self.stalled(source, now_ms, seconds),
            ConnectionEnd::Served => Vec::new(),
        }
    }

    /// Counts a request that `source` left unfinished for `seconds` until a
    /// timeout ended it (a request header or body sent too slowly), and
    /// returns the alerts it raised.
    pub fn stalled(&mut self, source: IpAddr, now_ms: u64, seconds: u64) -> Vec<Alert> {
        let state = self.sources.entry(source).or_default();
        state.last_seen_ms = now_ms;
        let finding = rules::evaluate_stall(&self.settings, &mut state.buckets, now_ms, seconds);
        finding.into_iter().map(|finding| self.raise(now_ms, source, None, finding, None)).collect()
    }

    /// Returns how many connections `source` holds open.
    pub fn open_connections(&self, source: IpAddr) -> usize {
        self.open.get(&source).copied().unwrap_or(0)
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
            state.high_findings = 0;
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
