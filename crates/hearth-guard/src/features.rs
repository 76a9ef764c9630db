//! Feature vectors of requests, as the scorer reads them.
//!
//! [`encode_window`] turns a source's latest [`WINDOW`] requests into a
//! `WINDOW × FEATURES` matrix, one row a request, oldest first. The rows
//! are right-aligned: the newest request is always the last row, and a
//! source with fewer requests gets rows of zeros in front. Every value lies
//! in `[0, 1]`; counts and sizes are log-scaled by [`log_scaled`] against
//! the maximum given below, and clamp there.
//!
//! | index | name | value |
//! | --- | --- | --- |
//! | 0 | `present` | 1 for a request, 0 for a padding row |
//! | 1-4 | `method_get`, `method_head`, `method_post`, `method_other` | one-hot of the HTTP method |
//! | 5-8 | `status_2xx`, `status_3xx`, `status_4xx`, `status_5xx` | one-hot of the status class (1xx sets none) |
//! | 9-12 | `status_401`, `status_403`, `status_404`, `status_429` | the status codes that attacks provoke most |
//! | 13 | `bytes_out` | body bytes sent, log-scaled up to 1 GiB |
//! | 14 | `duration` | milliseconds to the response head, log-scaled up to 60 s |
//! | 15 | `gap` | milliseconds since the source's previous request, log-scaled up to 1 h; 1 when no previous request is known |
//! | 16 | `new_connection` | 1 when the TLS connection differs from the previous request's, or no previous request is known |
//! | 17 | `path_depth` | `/` characters in the path, divided by 16 |
//! | 18 | `path_length` | bytes of the raw path, log-scaled up to 4096 |
//! | 19 | `query_length` | bytes of the raw query, log-scaled up to 4096; 0 without a query |
//! | 20 | `non_alphanumeric` | share of the target's bytes that are neither ASCII letters, digits nor `/` |
//! | 21 | `traversal` | dot segments or system paths after percent-decoding |
//! | 22 | `sensitive` | a secret, repository, backup or database path |
//! | 23 | `injection` | an SQL injection or script probe in the query |
//! | 24 | `scanner_agent` | the user agent names a scanning tool |
//! | 25 | `route_matched` | the server matched a route |
//! | 26-31 | `family_api`, `family_media`, `family_hls`, `family_ui`, `family_static`, `family_other` | one-hot of the path's family (see below) |
//! | 32-36 | `agent_browser`, `agent_player`, `agent_script`, `agent_missing`, `agent_other` | one-hot of the user-agent class (see below) |
//! | 37 | `header_bytes` | bytes of the header block, log-scaled up to 64 KiB |
//! | 38-41 | `auth_none`, `auth_accepted`, `auth_rejected`, `auth_failed_login` | one-hot of [`AuthOutcome`] |
//! | 42 | `paired_device` | a paired device proved its key |
//! | 43 | `distinct_paths` | distinct paths among the window's requests up to this one, divided by their count |
//!
//! The TLS key exchange group and ALPN of each request are recorded but not
//! features. In the training data only Chromium negotiates ML-KEM and HTTP/2,
//! so a model that read them learned "post-quantum means benign", which an
//! attacker with a post-quantum client (Node.js 26, oha) would exploit.
//!
//! The path family comes from the percent-decoded, lowercase path, whether
//! a route matched or not, so a probe of `/api/v2/users` still counts as
//! `api`. The families are checked in this order:
//!
//! - `hls`: `/hls/…` and `/api/v1/hls/…`;
//! - `media`: `/media/…` and the item stream and thumbnail routes;
//! - `api`: the rest of `/api/…`;
//! - `static`: a last segment ending in `.js`, `.mjs`, `.css`, `.map`, an image or a font;
//! - `ui`: `/`, `/login`, `/pair` and `/ui…`;
//! - `other`: everything else.
//!
//! The user-agent classes, checked in this order, are `missing` (absent or
//! empty), `script` (curl, Wget, python, Go-http-client, libwww-perl,
//! Java, okhttp, node-fetch, axios), `player` (Lavf/FFmpeg, mpv, VLC,
//! GStreamer, Kodi, ExoPlayer, AppleCoreMedia), `browser` (`Mozilla/5.0`
//! with a rendering engine's or browser's token) and `other`.
//!
//! Each request costs one percent-decoding of its target and a lowercase
//! copy of its user agent for the scanner check, and no regex: about 4 µs
//! on the 2-core development machine (`cargo bench -p hearth-guard --bench scorer`).

use crate::patterns;
use crate::{AuthOutcome, RequestEvent};

/// Requests in one window: the scorer reads a source's latest 16.
pub const WINDOW: usize = 16;

/// Values per request.
pub const FEATURES: usize = 44;

/// One window: [`WINDOW`] rows of [`FEATURES`] values, oldest request first.
pub type Window = [[f32; FEATURES]; WINDOW];

/// Names of the features, by index, as the module documentation lists them.
pub const FEATURE_NAMES: [&str; FEATURES] = [
    "present",
    "method_get",
    "method_head",
    "method_post",
    "method_other",
    "status_2xx",
    "status_3xx",
    "status_4xx",
    "status_5xx",
    "status_401",
    "status_403",
    "status_404",
    "status_429",
    "bytes_out",
    "duration",
    "gap",
    "new_connection",
    "path_depth",
    "path_length",
    "query_length",
    "non_alphanumeric",
    "traversal",
    "sensitive",
    "injection",
    "scanner_agent",
    "route_matched",
    "family_api",
    "family_media",
    "family_hls",
    "family_ui",
    "family_static",
    "family_other",
    "agent_browser",
    "agent_player",
    "agent_script",
    "agent_missing",
    "agent_other",
    "header_bytes",
    "auth_none",
    "auth_accepted",
    "auth_rejected",
    "auth_failed_login",
    "paired_device",
    "distinct_paths",
];

/// Encodes the latest [`WINDOW`] requests of `recent` (oldest first) into
/// `out`. The request just before them, when `recent` has one, supplies the
/// first row's `gap` and `new_connection`. Rows without a request are zero.
pub fn encode_window(recent: &[RequestEvent], out: &mut Window) {
    let start = recent.len().saturating_sub(WINDOW);
    let window = &recent[start..];
    let padding = WINDOW - window.len();
    let mut previous = start.checked_sub(1).map(|index| &recent[index]);
    let mut path_hashes = [0u64; WINDOW];
    let mut distinct_paths = 0usize;

    for row in out.iter_mut().take(padding) {
        *row = [0.0; FEATURES];
    }
    for (i, event) in window.iter().enumerate() {
        let row = &mut out[padding + i];
        *row = [0.0; FEATURES];
        encode_request(event, previous, row);

        let path = event.target.split_once('?').map_or(event.target.as_str(), |(path, _)| path);
        path_hashes[i] = fnv(path);
        if !path_hashes[..i].contains(&path_hashes[i]) {
            distinct_paths += 1;
        }
        row[43] = distinct_paths as f32 / (i + 1) as f32;

        previous = Some(event);
    }
}

/// Writes features 0-42 of `event` into `row`, which starts zeroed.
fn encode_request(event: &RequestEvent, previous: Option<&RequestEvent>, row: &mut [f32; FEATURES]) {
    row[0] = 1.0;

    let method = match event.method.as_str() {
        "GET" => 1,
        "HEAD" => 2,
        "POST" => 3,
        _ => 4,
    };
    row[method] = 1.0;

    if let Some(class) = match event.status / 100 {
        2 => Some(5),
        3 => Some(6),
        4 => Some(7),
        5 => Some(8),
        _ => None,
    } {
        row[class] = 1.0;
    }
    if let Some(code) = match event.status {
        401 => Some(9),
        403 => Some(10),
        404 => Some(11),
        429 => Some(12),
        _ => None,
    } {
        row[code] = 1.0;
    }

    row[13] = log_scaled(event.bytes_out as f64, 1024.0 * 1024.0 * 1024.0);
    row[14] = log_scaled(event.duration_ms as f64, 60_000.0);
    match previous {
        Some(previous) => {
            row[15] = log_scaled(event.at_ms.saturating_sub(previous.at_ms) as f64, 3_600_000.0);
            row[16] = flag(event.connection != previous.connection);
        }
        None => {
            row[15] = 1.0;
            row[16] = 1.0;
        }
    }

    let (raw_path, raw_query) = event.target.split_once('?').unwrap_or((event.target.as_str(), ""));
    row[17] = (raw_path.bytes().filter(|&byte| byte == b'/').count() as f32 / 16.0).min(1.0);
    row[18] = log_scaled(raw_path.len() as f64, 4096.0);
    row[19] = log_scaled(raw_query.len() as f64, 4096.0);
    row[20] = non_alphanumeric_share(&event.target);

    let normalised = patterns::normalise(&event.target);
    let (path, query) = normalised.split_once('?').unwrap_or((normalised.as_str(), ""));
    row[21] = flag(patterns::traversal(&normalised).is_some());
    row[22] = flag(patterns::sensitive(path).is_some());
    row[23] = flag(patterns::injection(query).is_some());
    row[24] = flag(event.user_agent.as_deref().and_then(patterns::scanner).is_some());

    row[25] = flag(event.route.is_some());
    row[26 + path_family(path) as usize] = 1.0;
    row[32 + agent_class(event.user_agent.as_deref()) as usize] = 1.0;
    row[37] = log_scaled(event.header_bytes as f64, 65_536.0);

    let auth = match event.auth {
        AuthOutcome::None => 38,
        AuthOutcome::Accepted => 39,
        AuthOutcome::Rejected => 40,
        AuthOutcome::FailedLogin => 41,
    };
    row[auth] = 1.0;
    row[42] = flag(event.device.is_some());
}

/// Families of paths, in the order of features 26-31.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathFamily {
    Api,
    Media,
    Hls,
    Ui,
    Static,
    Other,
}

/// Extensions of files that the web UI loads besides its pages.
const STATIC_EXTENSIONS: [&str; 13] =
    [".js", ".mjs", ".css", ".map", ".png", ".svg", ".ico", ".jpg", ".webp", ".woff", ".woff2", ".ttf", ".webmanifest"];

/// Classifies `path`, which is lowercase and percent-decoded.
fn path_family(path: &str) -> PathFamily {
    let last_segment = path.rsplit('/').next().unwrap_or("");
    if path.starts_with("/hls/") || path.starts_with("/api/v1/hls/") {
        PathFamily::Hls
    } else if path.starts_with("/media/")
        || (path.starts_with("/api/v1/items/") && (path.ends_with("/stream") || path.ends_with("/thumbnail")))
    {
        PathFamily::Media
    } else if path.starts_with("/api/") {
        PathFamily::Api
    } else if STATIC_EXTENSIONS.iter().any(|extension| last_segment.ends_with(extension)) {
        PathFamily::Static
    } else if matches!(path, "/" | "/login" | "/pair") || path.starts_with("/ui") {
        PathFamily::Ui
    } else {
        PathFamily::Other
    }
}

/// Classes of user agents, in the order of features 32-36.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentClass {
    Browser,
    Player,
    Script,
    Missing,
    Other,
}

/// Lowercase tokens of HTTP libraries and command-line tools.
const SCRIPT_AGENTS: [&str; 9] = ["curl/", "wget/", "python", "go-http-client", "libwww-perl", "java/", "okhttp", "node-fetch", "axios"];

/// Lowercase tokens of media players and their demuxers.
const PLAYER_AGENTS: [&str; 8] = ["lavf/", "ffmpeg", "mpv", "vlc/", "gstreamer", "kodi", "exoplayer", "applecoremedia"];

/// Lowercase tokens that a browser's `Mozilla/5.0` agent carries after the prefix.
const BROWSER_TOKENS: [&str; 5] = ["applewebkit/", "gecko/", "firefox/", "chrome/", "safari/"];

fn agent_class(user_agent: Option<&str>) -> AgentClass {
    let Some(agent) = user_agent.filter(|agent| !agent.trim().is_empty()) else {
        return AgentClass::Missing;
    };
    if SCRIPT_AGENTS.iter().any(|token| contains_ignore_case(agent, token)) {
        AgentClass::Script
    } else if PLAYER_AGENTS.iter().any(|token| contains_ignore_case(agent, token)) {
        AgentClass::Player
    } else if starts_with_ignore_case(agent, "mozilla/5.0 ") && BROWSER_TOKENS.iter().any(|token| contains_ignore_case(agent, token)) {
        AgentClass::Browser
    } else {
        AgentClass::Other
    }
}

/// Returns `ln(1 + value) / ln(1 + max)`, clamped to `[0, 1]`.
pub fn log_scaled(value: f64, max: f64) -> f32 {
    ((value.max(0.0).ln_1p() / max.ln_1p()) as f32).min(1.0)
}

fn flag(value: bool) -> f32 {
    if value { 1.0 } else { 0.0 }
}

fn non_alphanumeric_share(target: &str) -> f32 {
    if target.is_empty() {
        return 0.0;
    }
    let other = target.bytes().filter(|byte| !byte.is_ascii_alphanumeric() && *byte != b'/').count();
    other as f32 / target.len() as f32
}

/// Returns whether `haystack` contains `needle`, which must be lowercase ASCII.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let needle = needle.as_bytes();
    haystack.as_bytes().windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle))
}

fn starts_with_ignore_case(haystack: &str, prefix: &str) -> bool {
    haystack.len() >= prefix.len() && haystack.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// FNV-1a, to compare paths without keeping them.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";

    fn event(at_ms: u64, target: &str) -> RequestEvent {
        RequestEvent {
            at_ms,
            source: "192.168.1.20".parse().unwrap(),
            device: None,
            method: "GET".to_owned(),
            target: target.to_owned(),
            route: Some("/hls/{grant}/{rendition}/{file}".to_owned()),
            status: 200,
            bytes_out: 2_000_000,
            user_agent: Some(CHROME.to_owned()),
            header_bytes: 900,
            auth: AuthOutcome::None,
            duration_ms: 4,
            connection: 7,
            tls_group: Some("X25519MLKEM768".to_owned()),
            alpn: Some("h2".to_owned()),
        }
    }

    fn index(name: &str) -> usize {
        FEATURE_NAMES.iter().position(|candidate| *candidate == name).unwrap()
    }

    fn encode(events: &[RequestEvent]) -> Window {
        let mut window = [[f32::NAN; FEATURES]; WINDOW];
        encode_window(events, &mut window);
        window
    }

    #[test]
    fn names_are_unique() {
        for (i, name) in FEATURE_NAMES.iter().enumerate() {
            assert_eq!(index(name), i, "{name}");
        }
    }

    #[test]
    fn one_request_is_the_last_row() {
        let window = encode(&[event(1_000, "/hls/abc/720p/3.m4s")]);
        for row in &window[..WINDOW - 1] {
            assert!(row.iter().all(|value| *value == 0.0), "padding rows are zero");
        }
        let row = &window[WINDOW - 1];
        assert_eq!(row[index("present")], 1.0);
        assert_eq!(row[index("method_get")], 1.0);
        assert_eq!(row[index("status_2xx")], 1.0);
        assert_eq!(row[index("gap")], 1.0, "no previous request");
        assert_eq!(row[index("family_hls")], 1.0);
        assert_eq!(row[index("agent_browser")], 1.0);
        assert_eq!(row[index("distinct_paths")], 1.0);
    }

    #[test]
    fn values_stay_in_unit_range() {
        let mut events = Vec::new();
        for i in 0..40u64 {
            let mut request = event(i * 10, "/media/%2e%2e/%2e%2e/etc/passwd?q=%27%20or%201%3D1--");
            request.bytes_out = u64::MAX;
            request.duration_ms = u64::MAX;
            request.header_bytes = usize::MAX;
            request.method = "PROPFIND".to_owned();
            events.push(request);
        }
        for row in encode(&events) {
            for (i, value) in row.iter().enumerate() {
                assert!((0.0..=1.0).contains(value), "{} = {value}", FEATURE_NAMES[i]);
            }
        }
    }

    #[test]
    fn window_keeps_the_latest_requests() {
        let events: Vec<RequestEvent> = (0..20u64).map(|i| event(i * 1_000, &format!("/hls/abc/720p/{i}.m4s"))).collect();
        let window = encode(&events);
        assert!(window.iter().all(|row| row[index("present")] == 1.0));
        let expected_gap = log_scaled(1_000.0, 3_600_000.0);
        assert_eq!(window[0][index("gap")], expected_gap, "the request before the window gives the first gap");
        assert_eq!(window[0][index("new_connection")], 0.0);
    }

    #[test]
    fn attack_patterns_are_flagged() {
        let mut request = event(0, "/api/v1/items/..%2f..%2f.env?q=1%27%20union%20select%20password");
        request.route = None;
        request.status = 404;
        request.user_agent = Some("sqlmap/1.8 (https://sqlmap.org)".to_owned());
        let row = encode(&[request])[WINDOW - 1];
        assert_eq!(row[index("traversal")], 1.0);
        assert_eq!(row[index("sensitive")], 1.0);
        assert_eq!(row[index("injection")], 1.0);
        assert_eq!(row[index("scanner_agent")], 1.0);
        assert_eq!(row[index("route_matched")], 0.0);
        assert_eq!(row[index("status_404")], 1.0);
        assert_eq!(row[index("agent_other")], 1.0);
    }

    #[test]
    fn distinct_paths_counts_repeats_once() {
        let events = [event(0, "/a"), event(1, "/b?x=1"), event(2, "/a"), event(3, "/b")];
        let window = encode(&events);
        let values: Vec<f32> = window[WINDOW - 4..].iter().map(|row| row[index("distinct_paths")]).collect();
        assert_eq!(values, [1.0, 1.0, 2.0 / 3.0, 0.5]);
    }

    #[test]
    fn path_families() {
        let cases = [
            ("/hls/g/720p/1.m4s", PathFamily::Hls),
            ("/api/v1/hls/g/key", PathFamily::Hls),
            ("/media/g/stream", PathFamily::Media),
            ("/api/v1/items/7/thumbnail", PathFamily::Media),
            ("/api/v1/items", PathFamily::Api),
            ("/api/v2/users", PathFamily::Api),
            ("/app.js", PathFamily::Static),
            ("/ui/assets/index-3f.css", PathFamily::Static),
            ("/", PathFamily::Ui),
            ("/ui/library", PathFamily::Ui),
            ("/wp-login.php", PathFamily::Other),
        ];
        for (path, family) in cases {
            assert_eq!(path_family(path), family, "{path}");
        }
    }

    #[test]
    fn agent_classes() {
        let cases = [
            (Some(CHROME), AgentClass::Browser),
            (Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"), AgentClass::Browser),
            (Some("Lavf/61.1.100"), AgentClass::Player),
            (Some("libmpv"), AgentClass::Player),
            (Some("VLC/3.0.20 LibVLC/3.0.20"), AgentClass::Player),
            (Some("curl/8.5.0"), AgentClass::Script),
            (Some("python-requests/2.31.0"), AgentClass::Script),
            (Some("Go-http-client/1.1"), AgentClass::Script),
            (Some("Wget/1.21.4"), AgentClass::Script),
            (Some("Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"), AgentClass::Other),
            (Some("gobuster/3.6"), AgentClass::Other),
            (Some(""), AgentClass::Missing),
            (None, AgentClass::Missing),
        ];
        for (agent, class) in cases {
            assert_eq!(agent_class(agent), class, "{agent:?}");
        }
    }
}
