//! The guard in the request path: the second of the three gates, after TLS
//! and before access control (ARCHITECTURE.md).
//!
//! [`GuardService`] wraps [`hearth_guard::Guard`] for the server. The accept
//! loop asks it about every new connection before TLS ([`GuardService::admit`])
//! and reports how the connection ended; the [`inspect`] layer asks about
//! every request (ban, rate limit with tarpit), then reports the answered
//! request with its status, size, duration, TLS group and the outcome of
//! authentication. What the guard decides is carried out here: open
//! connections of a banned address close, a paired device's sessions end
//! when the scorer agrees with a rule, keys rotate after an exploitation
//! attempt from a paired device, and each ban leaves a forensic record
//! (the source's latest requests and the decision) in `guard/records/`.
//!
//! Requests that did not come over the network (the host admin socket, the
//! desktop window, in-process tests) carry no [`ConnectionInfo`] and are not
//! inspected: they come from the host itself.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hearth_guard::scorer::Scorer;
use hearth_guard::{Action, Admission, Alert, AuthOutcome, Ban, ConnectionEnd, Guard, RequestEvent, RuleSettings, Verdict};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, broadcast};

use crate::connection::ConnectionInfo;
use crate::state::AppState;

/// How the guard acts on what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardMode {
    /// Ban, rate limit and end sessions (the default).
    #[default]
    Enforce,
    /// Raise alerts and keep records, but act on nothing: for a first week
    /// on a new network, or to collect traffic for the scorer.
    Observe,
    /// Inspect nothing.
    Off,
}

impl std::str::FromStr for GuardMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "enforce" => Ok(Self::Enforce),
            "observe" => Ok(Self::Observe),
            "off" => Ok(Self::Off),
            other => Err(format!("guard mode {other:?} is not one of enforce, observe, off")),
        }
    }
}

/// A response the guard asks for but cannot carry out itself.
pub trait Responder: Send + Sync {
    /// Ends every session of the paired device `device` (`device-N`).
    fn end_sessions(&self, device: &str);
    /// Rotates the TLS certificate and signing key now.
    fn rotate_keys(&self, reason: &str);
}

/// Time a rate-limited request is held before its 429, which slows a tool
/// that ignores Retry-After without tying up the server.
const TARPIT_DELAY: Duration = Duration::from_secs(2);
/// Requests held in the tarpit at once; beyond them, 429 answers at once.
const TARPIT_SLOTS: usize = 32;
/// Forensic records kept; the oldest are removed beyond this.
const RECORDS_KEPT: usize = 500;
/// Time a client has to send a request's whole body once its header is in.
/// Every body Hearth accepts is a small JSON document, which a phone on
/// weak Wi-Fi sends in well under a second; a slow-body attack holds the
/// connection by sending a byte every few seconds.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Routes where a refused answer is a failed sign-in or pairing code.
const SIGN_IN_ROUTES: [&str; 4] = ["/api/v1/login", "/api/v1/passkeys/login/finish", "/api/v1/pair/start", "/api/v1/pair/finish"];

/// The server's guard: rules, bans, records and the responses.
pub struct GuardService {
    guard: Mutex<Guard>,
    mode: GuardMode,
    epoch: Instant,
    recorder: Option<Mutex<std::io::LineWriter<std::fs::File>>>,
    banned: broadcast::Sender<IpAddr>,
    folder: Option<PathBuf>,
    tarpit: Semaphore,
    responder: Mutex<Option<Arc<dyn Responder>>>,
    /// The nftables sets that mirror the bans, with `[guard] nftables = true`.
    firewall: std::sync::OnceLock<crate::firewall::Firewall>,
}

impl std::fmt::Debug for GuardService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardService").field("mode", &self.mode).field("folder", &self.folder).finish_non_exhaustive()
    }
}

/// A ban as stored in `guard/bans.json`, with wall-clock times so that it
/// survives a restart.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BanView {
    /// The banned address.
    #[schema(value_type = String, example = "192.168.1.66")]
    pub source: IpAddr,
    /// When the ban ends, in seconds since the Unix epoch.
    pub until: u64,
    /// The rule that caused it; absent for an admin's ban.
    pub rule: Option<String>,
    /// Why, in words.
    pub reason: String,
}

/// An alert as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    /// When, in seconds since the Unix epoch.
    pub time: u64,
    /// The source address.
    #[schema(value_type = String)]
    pub source: IpAddr,
    /// The paired device, when the requests proved one.
    pub device: Option<String>,
    /// The rule that fired.
    pub rule: String,
    /// `low`, `medium` or `high`.
    pub severity: String,
    /// What the guard did: `allow`, `rate_limit` or `ban`, with details.
    #[schema(value_type = Object)]
    pub action: serde_json::Value,
    /// Why, in words.
    pub reason: String,
    /// `reconnaissance`, `brute_force`, `exploitation`, `denial_of_service` or `abuse`.
    pub category: String,
    /// Requests the source had made when the alert was raised.
    pub requests_seen: u64,
    /// The neural scorer's reading of the source's latest requests, when
    /// it was consulted for this decision.
    pub model: Option<ModelView>,
    /// Milliseconds on the server's clock, for ordering.
    pub at_ms: u64,
}

/// The neural scorer's reading attached to an alert.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelView {
    /// Probability from 0 to 1 that the source is not a household client.
    pub anomaly: f32,
    /// `benign`, `reconnaissance`, `brute_force`, `exploitation`, `denial_of_service` or `abuse`.
    pub category: String,
}

/// A forensic record: the decision and the requests that led to it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ForensicRecord {
    /// File name of the record, its id in the API.
    pub id: String,
    /// When, in seconds since the Unix epoch.
    pub time: u64,
    /// The source address.
    #[schema(value_type = String)]
    pub source: IpAddr,
    /// The alert that led to the decision.
    #[schema(value_type = Object)]
    pub alert: serde_json::Value,
    /// The source's latest requests, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub requests: Vec<serde_json::Value>,
}

impl GuardService {
    /// Creates the service. `folder` (`DATA/guard`) holds the persisted
    /// bans and the forensic records; `None` keeps everything in memory.
    /// `record` names a file that receives every request event as a JSON
    /// line (for training the scorer).
    pub fn new(mode: GuardMode, guard: Guard, folder: Option<PathBuf>, record: Option<&Path>) -> std::io::Result<Arc<Self>> {
        let recorder = match record {
            Some(path) => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|error| {
                    std::io::Error::new(error.kind(), format!("cannot open the guard's record file {}: {error}", path.display()))
                })?;
                Some(Mutex::new(std::io::LineWriter::new(file)))
            }
            None => None,
        };
        if let Some(folder) = &folder {
            std::fs::create_dir_all(folder.join("records"))?;
        }
        let (banned, _) = broadcast::channel(64);
        let service = Arc::new(Self {
            guard: Mutex::new(guard),
            mode,
            epoch: Instant::now(),
            recorder,
            banned,
            folder,
            tarpit: Semaphore::new(TARPIT_SLOTS),
            responder: Mutex::new(None),
            firewall: std::sync::OnceLock::new(),
        });
        service.load_bans();
        Ok(service)
    }

    /// Creates a guard in memory with default rules and the committed
    /// scorer, for in-process tests.
    pub fn in_memory() -> Arc<Self> {
        let guard = Guard::with_scorer(RuleSettings::default(), Scorer::builtin());
        Self::new(GuardMode::Enforce, guard, None, None).expect("no files to open")
    }

    /// Mirrors the bans into `firewall` from now on, starting with those in
    /// force.
    pub fn set_firewall(&self, firewall: crate::firewall::Firewall) {
        let now = self.now_ms();
        for ban in self.lock().bans(now) {
            firewall.ban(ban.source, Duration::from_millis(ban.until_ms - now));
        }
        let _ = self.firewall.set(firewall);
    }

    /// Sets who ends sessions and rotates keys.
    pub fn set_responder(&self, responder: Arc<dyn Responder>) {
        *self.responder.lock().unwrap_or_else(|p| p.into_inner()) = Some(responder);
    }

    /// Returns the mode.
    pub fn mode(&self) -> GuardMode {
        self.mode
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Guard> {
        self.guard.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Milliseconds on the guard's monotonic clock.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn to_unix(&self, at_ms: u64) -> u64 {
        let now_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let now_ms = self.now_ms();
        if at_ms >= now_ms { now_unix + (at_ms - now_ms) / 1000 } else { now_unix.saturating_sub((now_ms - at_ms) / 1000) }
    }

    /// Decides at accept time whether a connection from `source` goes on
    /// to TLS. An admitted connection must be reported with [`Self::closed`].
    pub fn admit(&self, source: IpAddr) -> bool {
        if self.mode == GuardMode::Off {
            return true;
        }
        let now = self.now_ms();
        let admission = self.lock().admit(source, now);
        match admission {
            Admission::Admitted => true,
            Admission::Banned => self.mode == GuardMode::Observe,
            Admission::TooMany(alerts) => {
                self.carry_out(&alerts);
                self.mode == GuardMode::Observe
            }
        }
    }

    /// Reports the end of an admitted connection.
    pub fn closed(&self, source: IpAddr, end: ConnectionEnd) {
        if self.mode == GuardMode::Off {
            return;
        }
        let now = self.now_ms();
        if let ConnectionEnd::Stalled { seconds } = end {
            // A stalled connection never sent a request; the scorer sees it
            // as one that timed out (408), so slow attacks show in its window.
            let event = RequestEvent {
                at_ms: now,
                source,
                device: None,
                method: "-".to_owned(),
                target: String::new(),
                route: None,
                status: 408,
                bytes_out: 0,
                user_agent: None,
                header_bytes: 0,
                auth: AuthOutcome::None,
                duration_ms: seconds * 1000,
                connection: 0,
                tls_group: None,
                alpn: None,
            };
            self.record(&event);
            let mut guard = self.lock();
            guard.remember(event);
            let alerts = guard.connection_closed(source, now, end);
            drop(guard);
            self.carry_out(&alerts);
        } else {
            self.lock().connection_closed(source, now, end);
        }
    }

    /// Counts a request whose body did not arrive in time, and carries out
    /// what the slow-client rule decides.
    pub fn stalled(&self, source: IpAddr, seconds: u64) -> Vec<Alert> {
        let alerts = self.lock().stalled(source, self.now_ms(), seconds);
        self.carry_out(&alerts);
        alerts
    }

    /// Returns a receiver of newly banned addresses, so that a connection
    /// from one closes at once.
    pub fn subscribe_bans(&self) -> broadcast::Receiver<IpAddr> {
        self.banned.subscribe()
    }

    /// Returns whether `source` is banned now (and the mode enforces).
    pub fn is_banned(&self, source: IpAddr) -> bool {
        self.mode == GuardMode::Enforce && self.lock().check_source(source, self.now_ms()) == Verdict::Banned
    }

    fn record(&self, event: &RequestEvent) {
        if let Some(recorder) = &self.recorder
            && let Ok(line) = serde_json::to_string(event)
        {
            let mut file = recorder.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(error) = writeln!(file, "{line}") {
                tracing::warn!(error = %error, "failed to write to the guard's record file");
            }
        }
    }

    /// Takes in an answered request and carries out what the rules decide.
    pub fn observe(&self, event: RequestEvent) -> Vec<Alert> {
        self.record(&event);
        let alerts = self.lock().observe(event);
        self.carry_out(&alerts);
        alerts
    }

    /// Logs alerts and carries out their actions.
    fn carry_out(&self, alerts: &[Alert]) {
        for alert in alerts {
            match alert.severity {
                hearth_guard::Severity::Low => {
                    tracing::info!(source = %alert.source, rule = ?alert.rule, reason = %alert.reason, "guard alert")
                }
                _ => tracing::warn!(source = %alert.source, rule = ?alert.rule, action = ?alert.action, reason = %alert.reason, "guard alert"),
            }
            if self.mode != GuardMode::Enforce {
                continue;
            }
            if let Action::Ban { seconds, end_sessions, rotate_keys } = alert.action {
                let _ = self.banned.send(alert.source);
                if let Some(firewall) = self.firewall.get() {
                    firewall.ban(alert.source, Duration::from_secs(seconds));
                }
                self.write_record(alert);
                self.save_bans();
                let responder = self.responder.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some(responder) = responder {
                    if end_sessions && let Some(device) = &alert.device {
                        responder.end_sessions(device);
                    }
                    if rotate_keys {
                        responder.rotate_keys(&format!("guard: {}", alert.reason));
                    }
                }
            }
        }
    }

    /// Returns the alerts kept, newest first.
    pub fn alerts(&self) -> Vec<AlertView> {
        let guard = self.lock();
        let mut views: Vec<AlertView> = guard.alerts().map(|alert| self.alert_view(alert)).collect();
        views.reverse();
        views
    }

    fn alert_view(&self, alert: &Alert) -> AlertView {
        let value = serde_json::to_value(alert).unwrap_or_default();
        let text = |key: &str| value.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        AlertView {
            time: self.to_unix(alert.at_ms),
            source: alert.source,
            device: alert.device.clone(),
            rule: text("rule"),
            severity: text("severity"),
            action: value.get("action").cloned().unwrap_or_default(),
            reason: alert.reason.clone(),
            category: alert.category.to_owned(),
            requests_seen: alert.requests_seen,
            model: alert.model.map(|opinion| ModelView { anomaly: opinion.anomaly, category: opinion.category.as_str().to_owned() }),
            at_ms: alert.at_ms,
        }
    }

    /// Returns the bans in force.
    pub fn bans(&self) -> Vec<BanView> {
        let now = self.now_ms();
        let bans = self.lock().bans(now);
        bans.iter().map(|ban| self.ban_view(ban)).collect()
    }

    fn ban_view(&self, ban: &Ban) -> BanView {
        let rule = ban.rule.and_then(|rule| serde_json::to_value(rule).ok()).and_then(|v| v.as_str().map(str::to_owned));
        BanView { source: ban.source, until: self.to_unix(ban.until_ms), rule, reason: ban.reason.clone() }
    }

    /// Bans `source` by an admin's decision.
    pub fn ban(&self, source: IpAddr, duration: Duration, reason: &str) {
        let now = self.now_ms();
        self.lock().ban(source, now, duration, reason);
        if self.mode == GuardMode::Enforce {
            let _ = self.banned.send(source);
            if let Some(firewall) = self.firewall.get() {
                firewall.ban(source, duration);
            }
        }
        self.save_bans();
    }

    /// Lifts a ban or rate limit; returns whether there was one.
    pub fn unban(&self, source: IpAddr) -> bool {
        let lifted = self.lock().unban(source);
        if let Some(firewall) = self.firewall.get() {
            firewall.unban(source);
        }
        self.save_bans();
        lifted
    }

    fn bans_file(&self) -> Option<PathBuf> {
        self.folder.as_ref().map(|folder| folder.join("bans.json"))
    }

    /// Writes the bans in force to `bans.json`, through a temporary file
    /// and a rename, so a crash leaves the old list or the new one.
    fn save_bans(&self) {
        let Some(path) = self.bans_file() else { return };
        let bans = self.bans();
        let result = serde_json::to_vec_pretty(&bans).map_err(std::io::Error::other).and_then(|bytes| write_atomically(&path, &bytes));
        if let Err(error) = result {
            tracing::warn!(path = %path.display(), error = %error, "failed to save the guard's bans");
        }
    }

    /// Restores bans saved by an earlier run that have not ended.
    fn load_bans(&self) {
        let Some(path) = self.bans_file() else { return };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %error, "failed to read the guard's bans; starting without them");
                return;
            }
        };
        let bans: Vec<BanView> = match serde_json::from_slice(&bytes) {
            Ok(bans) => bans,
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %error, "the guard's ban list is not valid JSON; starting without it (remove the file to silence this)");
                return;
            }
        };
        let now_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let now = self.now_ms();
        let mut guard = self.lock();
        for ban in bans.into_iter().filter(|ban| ban.until > now_unix) {
            guard.ban(ban.source, now, Duration::from_secs(ban.until - now_unix), &ban.reason);
        }
    }

    fn write_record(&self, alert: &Alert) {
        let Some(folder) = &self.folder else { return };
        let requests = self.lock().recent(alert.source);
        let time = self.to_unix(alert.at_ms);
        let source_name = alert.source.to_string().replace(':', "-");
        let id = format!("{time}-{source_name}-{}.json", alert.at_ms);
        let record = ForensicRecord {
            id: id.clone(),
            time,
            source: alert.source,
            alert: serde_json::to_value(self.alert_view(alert)).unwrap_or_default(),
            requests: requests.iter().filter_map(|event| serde_json::to_value(event).ok()).collect(),
        };
        let records = folder.join("records");
        let result = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other).and_then(|bytes| write_atomically(&records.join(&id), &bytes));
        if let Err(error) = result {
            tracing::warn!(folder = %records.display(), error = %error, "failed to write a forensic record");
            return;
        }
        // Keep the newest records only.
        if let Ok(entries) = std::fs::read_dir(&records) {
            let mut names: Vec<String> =
                entries.filter_map(|entry| entry.ok()?.file_name().into_string().ok()).filter(|name| name.ends_with(".json")).collect();
            if names.len() > RECORDS_KEPT {
                names.sort_by_key(|name| record_order(name));
                for name in &names[..names.len() - RECORDS_KEPT] {
                    let _ = std::fs::remove_file(records.join(name));
                }
            }
        }
    }

    /// Returns the forensic records, newest first, without their requests.
    pub fn records(&self) -> Vec<ForensicRecord> {
        let Some(folder) = &self.folder else { return Vec::new() };
        let Ok(entries) = std::fs::read_dir(folder.join("records")) else { return Vec::new() };
        let mut records: BTreeMap<(u64, u64), ForensicRecord> = BTreeMap::new();
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else { continue };
            if let Some(mut record) = self.record_by_id(&name) {
                record.requests.clear();
                records.insert(record_order(&name), record);
            }
        }
        records.into_values().rev().collect()
    }

    /// Returns one forensic record by its id, or `None`.
    pub fn record_by_id(&self, id: &str) -> Option<ForensicRecord> {
        let valid = id.ends_with(".json") && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid || id.starts_with('.') {
            return None;
        }
        let folder = self.folder.as_ref()?;
        let bytes = std::fs::read(folder.join("records").join(id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Sort key of a record file name: its time, then its clock reading.
fn record_order(name: &str) -> (u64, u64) {
    let stem = name.trim_end_matches(".json");
    let time = stem.split('-').next().and_then(|t| t.parse().ok()).unwrap_or(0);
    let at = stem.rsplit('-').next().and_then(|t| t.parse().ok()).unwrap_or(0);
    (time, at)
}

/// Writes `bytes` to `path` through a temporary file in the same folder
/// and a rename, so a crash leaves the old file or the new one, never half.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = path.with_extension(format!("{}-{serial}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all()).and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Total size of the request line and header block, as the client sent them.
fn header_bytes(request: &Request) -> usize {
    let line = request.method().as_str().len() + request.uri().to_string().len() + 12;
    request.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>() + line
}

/// The paired device that proved its key on a request, set by
/// [`crate::access::authenticate`] on the response.
#[derive(Debug, Clone)]
pub struct ProvenDevice(pub String);

/// Inspects every request from the network: refuses banned sources, holds
/// and refuses rate-limited ones, and reports the answered request.
pub async fn inspect(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let service = Arc::clone(&state.guard);
    let Some(info) = request.extensions().get::<ConnectionInfo>().cloned() else {
        return next.run(request).await;
    };
    if service.mode == GuardMode::Off {
        return next.run(request).await;
    }
    let source = info.peer.ip();
    // A rate-limited request is refused but still goes to the rules and
    // the scorer: a source that keeps attacking while limited shows it.
    let mut refused = None;
    if service.mode == GuardMode::Enforce {
        let verdict = service.lock().check_source(source, service.now_ms());
        match verdict {
            Verdict::Allow => {}
            Verdict::Banned => return banned_response(source),
            Verdict::RateLimited { retry_after_secs } => {
                if let Ok(_slot) = service.tarpit.try_acquire() {
                    tokio::time::sleep(TARPIT_DELAY).await;
                }
                refused = Some(rate_limited_response(retry_after_secs));
            }
        }
    }

    let started = Instant::now();
    let at_ms = service.now_ms();
    let method = request.method().as_str().to_owned();
    let target = request.uri().path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_else(|| request.uri().path().to_owned());
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let user_agent = request.headers().get(header::USER_AGENT).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let header_bytes = header_bytes(&request);

    let mut slow_body = None;
    let response = match refused {
        Some(response) => response,
        None => {
            let (request, expired) = with_body_deadline(request);
            let response = next.run(request).await;
            if expired.is_some_and(|expired| expired.load(std::sync::atomic::Ordering::Relaxed)) {
                slow_body = Some(BODY_TIMEOUT.as_secs());
                body_timeout_response()
            } else {
                response
            }
        }
    };

    let status = response.status().as_u16();
    let bytes_out = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or_else(|| hyper::body::Body::size_hint(response.body()).exact())
        .unwrap_or(0);
    let device = response.extensions().get::<ProvenDevice>().map(|device| device.0.clone());
    let sign_in = route.as_deref().is_some_and(|route| SIGN_IN_ROUTES.contains(&route));
    // Any refusal on a sign-in route counts: a guesser that sends forms
    // (415) or no device proof (401) is guessing all the same.
    let auth = if sign_in && (400..500).contains(&status) {
        AuthOutcome::FailedLogin
    } else if status == 401 {
        AuthOutcome::Rejected
    } else if device.is_some() || (status < 400 && route.as_deref().is_some_and(|r| r.contains("{grant}"))) {
        AuthOutcome::Accepted
    } else {
        AuthOutcome::None
    };
    let event = RequestEvent {
        at_ms,
        source,
        device,
        method,
        target,
        route,
        status,
        bytes_out,
        user_agent,
        header_bytes,
        auth,
        duration_ms: started.elapsed().as_millis() as u64,
        connection: info.id,
        tls_group: info.key_exchange_group.clone(),
        alpn: info.alpn.clone(),
    };
    let mut alerts = service.observe(event);
    if let Some(seconds) = slow_body {
        alerts.extend(service.stalled(source, seconds));
    }
    let mut response = response;
    if service.mode == GuardMode::Enforce && alerts.iter().any(|alert| matches!(alert.action, Action::Ban { .. })) {
        // HTTP/1.1 closes after this answer; HTTP/2 connections close on
        // the ban broadcast.
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that fails once [`BODY_TIMEOUT`] has passed since the
/// request arrived, so a client cannot hold a connection and a handler by
/// trickling it. The body streams through unbuffered; a handler that never
/// reads it (a request refused by access control) never waits for it.
struct DeadlineBody {
    inner: axum::body::Body,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    expired: Arc<std::sync::atomic::AtomicBool>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, axum::Error>>> {
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(context) {
            std::task::Poll::Pending => {
                if this.deadline.as_mut().poll(context).is_ready() {
                    this.expired.store(true, std::sync::atomic::Ordering::Relaxed);
                    let message = format!("the request body did not arrive within {} s", BODY_TIMEOUT.as_secs());
                    return std::task::Poll::Ready(Some(Err(axum::Error::new(message))));
                }
                std::task::Poll::Pending
            }
            ready => ready,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Puts a [`DeadlineBody`] in `request` and returns the flag it sets when
/// the deadline passes. A request without a body passes through untouched.
fn with_body_deadline(request: Request) -> (Request, Option<Arc<std::sync::atomic::AtomicBool>>) {
    if hyper::body::Body::size_hint(request.body()).exact() == Some(0) {
        return (request, None);
    }
    let expired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (parts, inner) = request.into_parts();
    let body = DeadlineBody { inner, deadline: Box::pin(tokio::time::sleep(BODY_TIMEOUT)), expired: Arc::clone(&expired) };
    (Request::from_parts(parts, axum::body::Body::new(body)), Some(expired))
}

fn body_timeout_response() -> Response {
    let body = serde_json::json!({
        "error": format!("the request body did not arrive within {} s; send it at once", BODY_TIMEOUT.as_secs())
    });
    let mut response = (StatusCode::REQUEST_TIMEOUT, Json(body)).into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn banned_response(source: IpAddr) -> Response {
    let body = serde_json::json!({
        "error": format!("the address {source} is banned by the guard; an admin can lift it in the security center or with `hearth guard unban {source}`")
    });
    let mut response = (StatusCode::FORBIDDEN, Json(body)).into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn rate_limited_response(retry_after_secs: u64) -> Response {
    let body = serde_json::json!({
        "error": format!("too many requests from this address; wait {retry_after_secs} s and try again")
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Ends sessions through the access layer and rotates keys through the
/// key rotation, for the guard's responses.
pub struct ServerResponder {
    /// Users, devices and sessions.
    pub access: Arc<crate::access::Access>,
    /// The TLS certificate and signing key, when the server has them.
    pub rotation: Option<Arc<crate::rotation::KeyRotation>>,
}

impl Responder for ServerResponder {
    fn end_sessions(&self, device: &str) {
        let Some(id) = device.strip_prefix("device-").and_then(|id| id.parse().ok()) else {
            tracing::warn!(device, "guard asked to end the sessions of a device it cannot name");
            return;
        };
        self.access.revocations.end_sessions_of_device(hearth_access::DeviceId(id));
        tracing::warn!(device, "guard ended the device's sessions; it must sign in again");
    }

    fn rotate_keys(&self, reason: &str) {
        let Some(rotation) = self.rotation.clone() else { return };
        let reason = reason.to_owned();
        // Rotation writes keys to disk; keep it off the request's thread.
        std::thread::spawn(move || match rotation.rotate_now(&reason) {
            Ok(_) => tracing::warn!(reason, "guard rotated the server's keys"),
            Err(error) => tracing::error!(error = %error, "guard's key rotation failed"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(folder: &Path) -> Arc<GuardService> {
        GuardService::new(GuardMode::Enforce, Guard::new(RuleSettings::default()), Some(folder.to_owned()), None).unwrap()
    }

    #[test]
    fn bans_survive_a_restart_and_a_damaged_list_is_ignored() {
        let data = tempfile::tempdir().unwrap();
        let source: IpAddr = "192.0.2.9".parse().unwrap();
        let first = service(data.path());
        first.ban(source, Duration::from_secs(600), "testing");
        drop(first);

        let second = service(data.path());
        let bans = second.bans();
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].source, source);
        assert!(second.is_banned(source));
        assert!(!second.admit(source), "a restored ban refuses at accept time");
        assert!(second.unban(source));
        drop(second);
        assert!(service(data.path()).bans().is_empty(), "the lifted ban came back after a restart");

        std::fs::write(data.path().join("bans.json"), b"[{\"source\": \"192.0.2.9\", \"unt").unwrap();
        assert!(service(data.path()).bans().is_empty());
    }

    #[test]
    fn observe_mode_records_alerts_but_refuses_nobody() {
        let data = tempfile::tempdir().unwrap();
        let record = data.path().join("events.jsonl");
        let service = GuardService::new(GuardMode::Observe, Guard::new(RuleSettings::default()), None, Some(&record)).unwrap();
        let source: IpAddr = "192.0.2.10".parse().unwrap();
        for n in 0..3 {
            let alerts = service.observe(RequestEvent {
                at_ms: n,
                source,
                device: None,
                method: "TRACE".to_owned(),
                target: "/".to_owned(),
                route: None,
                status: 405,
                bytes_out: 0,
                user_agent: None,
                header_bytes: 40,
                auth: AuthOutcome::None,
                duration_ms: 0,
                connection: 1,
                tls_group: None,
                alpn: None,
            });
            assert_eq!(alerts.len(), 1);
        }
        assert!(service.admit(source), "observe mode refused a connection");
        assert!(!service.is_banned(source));
        let lines = std::fs::read_to_string(&record).unwrap();
        let events: Vec<RequestEvent> = lines.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(events.len(), 3);
        assert_eq!(events[2].method, "TRACE");
    }

    #[test]
    fn record_ids_cannot_leave_the_folder() {
        let data = tempfile::tempdir().unwrap();
        let service = service(data.path());
        std::fs::write(data.path().join("secret.json"), b"{}").unwrap();
        for id in ["../secret.json", "..json", ".json", "a/b.json", "records"] {
            assert!(service.record_by_id(id).is_none(), "{id}");
        }
    }
}
