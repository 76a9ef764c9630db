//! The committed scorer on windows cut from the recorded traffic it was
//! trained and tested on, the guard's decisions with it, and the errors for
//! damaged weight files.
//!
//! Each fixture in `tests/data/` holds consecutive requests of one source,
//! cut from the held-out (latest 20 %) part of that tool's recording by
//! `scripts/guard-campaign.d/cut-fixtures`, so the model never trained on
//! these windows.

use std::path::Path;

use hearth_guard::scorer::{Category, Scorer, ScorerError};
use hearth_guard::{Action, Alert, AuthOutcome, Guard, RequestEvent, RuleId, RuleSettings, Severity};

/// The weights that `Scorer::builtin` embeds.
const WEIGHTS: &[u8] = include_bytes!("../../../models/guard-scorer/model.safetensors");

fn fixture(name: &str) -> Vec<RequestEvent> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
    text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{name}: {error}: {line}"))).collect()
}

/// Scores every window of `events` that has a full [`hearth_guard::features::WINDOW`]
/// of requests, as the guard would after each request, and returns the scores.
fn scores(scorer: &Scorer, events: &[RequestEvent]) -> Vec<hearth_guard::scorer::Score> {
    let window = hearth_guard::features::WINDOW;
    (window..=events.len()).map(|end| scorer.score(&events[..end])).collect()
}

#[test]
fn builtin_weights_load() {
    let scorer = Scorer::builtin();
    let score = scorer.score(&fixture("chromium-playback.jsonl")[..1]);
    assert!((0.0..=1.0).contains(&score.anomaly), "{score:?}");
    let total: f32 = score.probabilities.iter().sum();
    assert!((total - 1.0).abs() < 1e-4, "{score:?}");
    assert!(Scorer::from_safetensors(WEIGHTS).is_ok());
}

#[test]
fn directory_scan_is_reconnaissance() {
    let scorer = Scorer::builtin();
    for score in scores(&scorer, &fixture("gobuster-directory-scan.jsonl")) {
        assert_eq!(score.category, Category::Reconnaissance, "{score:?}");
        assert!(score.anomaly >= 0.5, "{score:?}");
    }
}

#[test]
fn hydra_is_brute_force() {
    let scorer = Scorer::builtin();
    for score in scores(&scorer, &fixture("hydra-login-guessing.jsonl")) {
        assert_eq!(score.category, Category::BruteForce, "{score:?}");
        assert!(score.anomaly >= 0.5, "{score:?}");
    }
}

#[test]
fn sqlmap_is_exploitation() {
    let scorer = Scorer::builtin();
    for score in scores(&scorer, &fixture("sqlmap-injection.jsonl")) {
        assert_eq!(score.category, Category::Exploitation, "{score:?}");
        assert!(score.anomaly >= 0.5, "{score:?}");
    }
}

#[test]
fn chromium_playback_is_benign() {
    let scorer = Scorer::builtin();
    for score in scores(&scorer, &fixture("chromium-playback.jsonl")) {
        assert_eq!(score.category, Category::Benign, "{score:?}");
        assert!(score.anomaly < 0.2, "{score:?}");
    }
}

#[test]
fn one_request_is_enough() {
    let scorer = Scorer::builtin();
    let events = fixture("hydra-login-guessing.jsonl");
    let score = scorer.score(&events[..1]);
    assert!(score.anomaly.is_finite(), "{score:?}");
    let empty = scorer.score(&[]);
    assert!(empty.anomaly.is_finite(), "{empty:?}");
}

#[test]
fn truncated_weights_are_a_format_error() {
    let error = Scorer::from_safetensors(&WEIGHTS[..WEIGHTS.len() / 2]).unwrap_err();
    assert!(matches!(error, ScorerError::Format { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("not a readable safetensors file"), "{message}");
    assert!(message.contains("train_scorer"), "the message says how to fix it: {message}");

    let error = Scorer::from_safetensors(&[]).unwrap_err();
    assert!(matches!(error, ScorerError::Format { .. }), "{error:?}");
}

#[test]
fn corrupt_header_is_a_format_error() {
    let mut corrupt = WEIGHTS.to_vec();
    // The 8-byte length is followed by the JSON header; break its opening brace.
    corrupt[8] = b'#';
    let error = Scorer::from_safetensors(&corrupt).unwrap_err();
    assert!(matches!(error, ScorerError::Format { .. }), "{error:?}");
}

#[test]
fn load_names_the_file() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("model.safetensors");

    let error = Scorer::load(&path).unwrap_err();
    assert!(matches!(error, ScorerError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");

    std::fs::write(&path, &WEIGHTS[..100]).unwrap();
    let error = Scorer::load(&path).unwrap_err();
    assert!(matches!(error, ScorerError::Format { .. }), "{error:?}");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");

    std::fs::write(&path, WEIGHTS).unwrap();
    assert!(Scorer::load(&path).is_ok());
}

#[test]
fn missing_or_reshaped_tensor_is_named() {
    let device = candle_core::Device::Cpu;
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("model.safetensors");

    let mut tensors = candle_core::safetensors::load_buffer(WEIGHTS, &device).unwrap();
    tensors.remove("hidden.bias");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let error = Scorer::load(&path).unwrap_err();
    assert!(matches!(&error, ScorerError::MissingTensor { name, .. } if name == "hidden.bias"), "{error:?}");

    let mut tensors = candle_core::safetensors::load_buffer(WEIGHTS, &device).unwrap();
    tensors.insert("conv1.weight".to_owned(), candle_core::Tensor::zeros((24, 40), candle_core::DType::F32, &device).unwrap());
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let error = Scorer::load(&path).unwrap_err();
    assert!(matches!(&error, ScorerError::Mismatch { name, .. } if name == "conv1.weight"), "{error:?}");
    assert!(error.to_string().contains("[24, 40]"), "{error}");
}

const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";

/// Marks `events` as made by a paired device that proved its key.
fn from_paired_device(mut events: Vec<RequestEvent>) -> Vec<RequestEvent> {
    for event in &mut events {
        event.device = Some("did:key:zDnaeLivingRoomTv".to_owned());
        event.auth = AuthOutcome::Accepted;
    }
    events
}

fn observe_all(guard: &mut Guard, events: Vec<RequestEvent>) -> Vec<Alert> {
    events.into_iter().flat_map(|event| guard.observe(event)).collect()
}

fn is_ban(alert: &Alert) -> bool {
    matches!(alert.action, Action::Ban { .. })
}

#[test]
fn paired_attacker_banned_when_model_agrees() {
    let events = from_paired_device(fixture("sqlmap-injection.jsonl"));

    let mut rules_only = Guard::new(RuleSettings::default());
    let alerts = observe_all(&mut rules_only, events.clone());
    assert!(alerts.iter().any(|alert| alert.severity == Severity::High), "the rules find the attack: {alerts:#?}");
    assert!(!alerts.iter().any(is_ban), "one rule alone never bans a paired device: {alerts:#?}");

    let mut guard = Guard::with_scorer(RuleSettings::default(), Scorer::builtin());
    let alerts = observe_all(&mut guard, events);
    let highs: Vec<&Alert> = alerts.iter().filter(|alert| alert.severity == Severity::High).collect();
    assert!(highs.len() >= 3, "{alerts:#?}");
    assert!(!is_ban(highs[0]), "one high finding never bans a paired device: {highs:#?}");
    assert!(!is_ban(highs[1]), "two high findings never ban a paired device: {highs:#?}");
    let ban = alerts.iter().find(|alert| is_ban(alert)).unwrap_or_else(|| panic!("no ban: {alerts:#?}"));
    assert!(matches!(ban.action, Action::Ban { end_sessions: true, .. }), "{ban:#?}");
    assert!(ban.reason.contains("the scorer agrees"), "{}", ban.reason);
    let opinion = ban.model.expect("the ban carries the model's reading");
    assert_eq!(opinion.category, Category::Exploitation, "{ban:#?}");
    assert!(matches!(ban.action, Action::Ban { rotate_keys: true, .. }), "an exploitation attempt rotates the keys: {ban:#?}");
}

#[test]
fn playback_raises_nothing_with_model() {
    for events in [fixture("chromium-playback.jsonl"), from_paired_device(fixture("chromium-playback.jsonl"))] {
        let mut guard = Guard::with_scorer(RuleSettings::default(), Scorer::builtin());
        let alerts = observe_all(&mut guard, events);
        assert!(alerts.is_empty(), "{alerts:#?}");
    }
}

#[test]
fn model_alone_rate_limits_a_scan() {
    // A directory scan that hides its user agent, against rules that
    // cannot count its misses, so any alert is the model's.
    let blind = RuleSettings { probing: (1e9, 0.0), ..RuleSettings::default() };
    let mut scan = fixture("gobuster-directory-scan.jsonl");
    for event in &mut scan {
        event.user_agent = Some(CHROME.to_owned());
    }

    let mut guard = Guard::with_scorer(blind.clone(), Scorer::builtin());
    let alerts = observe_all(&mut guard, scan.clone());
    let alert = alerts.iter().find(|alert| alert.rule == RuleId::Scorer).unwrap_or_else(|| panic!("no scorer alert: {alerts:#?}"));
    assert_eq!(alert.severity, Severity::Medium, "{alert:#?}");
    assert!(matches!(alert.action, Action::RateLimit { .. }), "{alert:#?}");
    // NOTE: without the tool's user agent the model reads this scan as
    // exploitation (wapiti, which it trained on, sends a browser's agent),
    // so only "not benign" is checked here.
    assert_ne!(alert.category, "benign", "{alert:#?}");
    assert!(!alerts.iter().any(is_ban), "the model alone never bans: {alerts:#?}");

    // The same scan from a paired device is only reported. The model reads
    // it as abuse, since the only paired attacker it trained on copied the
    // library.
    let mut guard = Guard::with_scorer(blind, Scorer::builtin());
    let alerts = observe_all(&mut guard, from_paired_device(scan));
    let alert = alerts.iter().find(|alert| alert.rule == RuleId::Scorer).unwrap_or_else(|| panic!("no scorer alert: {alerts:#?}"));
    assert_eq!(alert.severity, Severity::Low, "{alert:#?}");
    assert_eq!(alert.action, Action::Allow, "the model alone only reports a paired device: {alert:#?}");
}

#[test]
fn model_reports_library_copying() {
    // A paired device pulling every file through media grants, too little
    // of it yet for the mass-download rule.
    // The device proved its key on the request that issued its grants; the
    // media requests that follow carry only the grant.
    let mut events = fixture("massdownload-library-copy.jsonl");
    events[0].device = Some("did:key:zDnaeLivingRoomTv".to_owned());

    let mut rules_only = Guard::new(RuleSettings::default());
    assert!(observe_all(&mut rules_only, events.clone()).is_empty(), "the rules alone stay quiet");

    let mut guard = Guard::with_scorer(RuleSettings::default(), Scorer::builtin());
    let alerts = observe_all(&mut guard, events);
    let alert = alerts.iter().find(|alert| alert.rule == RuleId::Scorer).unwrap_or_else(|| panic!("no scorer alert: {alerts:#?}"));
    assert_eq!(alert.category, "abuse", "{alert:#?}");
    assert_eq!(alert.device.as_deref(), Some("did:key:zDnaeLivingRoomTv"), "{alert:#?}");
    assert_eq!(alert.action, Action::Allow, "the model alone only reports a paired device: {alert:#?}");
}
