//! `--self-check FILE`: proves that the window shows the library, for tests
//! under Xvfb where no person looks at the screen.
//!
//! Once a second the app runs a probe script in the window. The probe reads
//! what the page rendered: its address, title, visible elements and loaded
//! images, and whether a visible element shows the expected item title. It
//! then requests the items with that title through the window's own
//! `fetch`, so through the `hearth://` scheme and the in-process router,
//! calls the `server_status` and `create_pairing_offer` commands, and
//! posts all of it to [`REPORT_PATH`]. When every check passes, or when
//! the time is up, the app writes the last report to FILE. It exits 4 s later (time for a
//! screenshot): with 0 when the check passed, 1 when not.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager, Runtime};

/// Path the probe posts its report to. The scheme accepts it only in
/// self-check mode.
pub const REPORT_PATH: &str = "/__hearth-desktop/self-check";

/// The probe's view of the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PageReport {
    /// The page's address.
    pub url: String,
    /// The document's title.
    pub title: String,
    /// Characters of visible text.
    pub text_length: u64,
    /// Elements with a non-empty box.
    pub visible_elements: u64,
    /// Images that finished loading with a non-zero size.
    pub loaded_images: u64,
    /// Whether a visible element's own text contains the expected title.
    pub title_visible: bool,
    /// Status of `GET /api/v1/items?q=TITLE` through the scheme.
    pub api_status: u16,
    /// Titles in that response.
    pub api_titles: Vec<String>,
    /// The `state` that the `server_status` command returned.
    pub ipc_state: Option<String>,
    /// Origin and path of the link that the `create_pairing_offer` command
    /// returned, without the fragment that carries the code.
    pub offer_link: Option<String>,
    /// Whether that offer's code has the `XXXX-XXXX` form.
    pub offer_code_valid: bool,
    /// Errors the probe caught, if any.
    pub errors: Vec<String>,
}

/// The outcome written to FILE.
#[derive(Debug, Serialize)]
struct Outcome<'a> {
    passed: bool,
    expected_title: &'a str,
    waited_ms: u128,
    probes: u32,
    checks: Checks,
    page: Option<&'a PageReport>,
}

/// Each condition of a pass.
#[derive(Debug, Default, Serialize)]
struct Checks {
    /// The window shows the UI from `hearth://localhost/ui/`.
    ui_loaded: bool,
    /// The page rendered visible elements.
    rendered: bool,
    /// The API, reached in process from the page, lists the title.
    api_lists_title: bool,
    /// The `server_status` command returns "running".
    command_returns_running: bool,
    /// The `create_pairing_offer` command returns a link to this server's
    /// pairing page and a valid code.
    pairing_offer_created: bool,
    /// The title is visible in the rendered library.
    title_visible: bool,
}

impl Checks {
    fn of(report: &PageReport, expected: &str) -> Self {
        Self {
            ui_loaded: report.url.starts_with(crate::scheme::START_URL),
            rendered: report.visible_elements > 0 && report.text_length > 0,
            api_lists_title: report.api_titles.iter().any(|title| title.contains(expected)),
            command_returns_running: report.ipc_state.as_deref() == Some("running"),
            pairing_offer_created: report.offer_code_valid
                && report.offer_link.as_deref().is_some_and(|link| link.starts_with("https://") && link.ends_with("/pair")),
            title_visible: report.title_visible,
        }
    }

    fn all(&self) -> bool {
        self.ui_loaded
            && self.rendered
            && self.api_lists_title
            && self.command_returns_running
            && self.pairing_offer_created
            && self.title_visible
    }
}

/// A running self-check.
pub struct SelfCheck {
    file: PathBuf,
    expected: String,
    started: Instant,
    timeout: Duration,
    probes: AtomicU32,
    latest: Mutex<Option<PageReport>>,
    finished: AtomicBool,
}

impl SelfCheck {
    /// Creates a check that writes to `file` and passes when `expected` is
    /// shown within `timeout`.
    pub fn new(file: PathBuf, expected: String, timeout: Duration) -> Self {
        Self {
            file,
            expected,
            started: Instant::now(),
            timeout,
            probes: AtomicU32::new(0),
            latest: Mutex::new(None),
            finished: AtomicBool::new(false),
        }
    }

    /// Starts probing the main window once a second, on its own thread.
    pub fn spawn<R: Runtime>(self: &Arc<Self>, app: AppHandle<R>) {
        let check = Arc::clone(self);
        std::thread::spawn(move || {
            let script = probe_script(&check.expected);
            while !check.finished.load(Ordering::Acquire) {
                if check.started.elapsed() >= check.timeout {
                    check.finish(&app);
                    return;
                }
                std::thread::sleep(PROBE_INTERVAL);
                let probes = check.probes.fetch_add(1, Ordering::AcqRel) + 1;
                let Some(window) = app.get_webview_window(crate::MAIN_WINDOW) else {
                    continue;
                };
                // The library may have loaded before the scan indexed the
                // item; a reload now and then shows the new items.
                let listed_but_not_shown = check.latest().is_some_and(|r| !r.title_visible && !r.api_titles.is_empty());
                let script = if listed_but_not_shown && probes.is_multiple_of(RELOAD_EVERY) { "location.reload()" } else { script.as_str() };
                if let Err(error) = window.eval(script) {
                    tracing::warn!(error = %error, "self-check probe failed to run");
                }
            }
        });
    }

    /// Stores a report the probe posted, and finishes when it passes.
    pub fn record<R: Runtime>(&self, app: &AppHandle<R>, body: &[u8]) {
        let report = match serde_json::from_slice::<PageReport>(body) {
            Ok(report) => report,
            Err(error) => {
                tracing::warn!(error = %error, "self-check report does not parse");
                return;
            }
        };
        let passed = Checks::of(&report, &self.expected).all();
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
        if passed {
            self.finish(app);
        }
    }

    fn latest(&self) -> Option<PageReport> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Writes the outcome and exits the app, once.
    fn finish<R: Runtime>(&self, app: &AppHandle<R>) {
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        let latest = self.latest();
        let checks = latest.as_ref().map(|r| Checks::of(r, &self.expected)).unwrap_or_default();
        let passed = checks.all();
        let outcome = Outcome {
            passed,
            expected_title: &self.expected,
            waited_ms: self.started.elapsed().as_millis(),
            probes: self.probes.load(Ordering::Acquire),
            checks,
            page: latest.as_ref(),
        };
        let text = serde_json::to_string_pretty(&outcome).unwrap_or_else(|error| format!("{{\"passed\": false, \"error\": \"{error}\"}}"));
        if let Err(error) = std::fs::write(&self.file, text) {
            tracing::error!(path = %self.file.display(), error = %error, "failed to write the self-check result");
        }
        tracing::info!(passed, path = %self.file.display(), "self-check finished");
        // The window stays up a moment after the result is written, so a
        // test can photograph the screen.
        let app = app.clone();
        std::thread::spawn(move || {
            std::thread::sleep(HOLD_AFTER_RESULT);
            app.exit(if passed { 0 } else { 1 });
        });
    }
}

/// How long the window stays after the result is written.
const HOLD_AFTER_RESULT: Duration = Duration::from_secs(4);

/// Time between probes.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Probes between reloads while the API lists the title and the page does
/// not show it.
const RELOAD_EVERY: u32 = 10;

/// Builds the probe, which reads the rendered page, calls the API and two
/// commands, and posts the report. `expected` is embedded as a JSON string.
fn probe_script(expected: &str) -> String {
    let expected = serde_json::to_string(expected).expect("a string serializes to JSON");
    format!(
        r#"(async () => {{
  const expected = {expected};
  const report = {{ url: location.href, title: document.title, text_length: 0, visible_elements: 0,
    loaded_images: 0, title_visible: false, api_status: 0, api_titles: [], ipc_state: null,
    offer_link: null, offer_code_valid: false, errors: [] }};
  const shown = (element) => {{
    const box = element.getBoundingClientRect();
    const style = getComputedStyle(element);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && style.display !== "none";
  }};
  const elements = document.body ? Array.from(document.body.querySelectorAll("*")).filter(shown) : [];
  report.visible_elements = elements.length;
  report.text_length = document.body ? document.body.innerText.trim().length : 0;
  report.loaded_images = Array.from(document.images).filter((image) => image.complete && image.naturalWidth > 0).length;
  report.title_visible = elements.some((element) =>
    Array.from(element.childNodes).some((node) => node.nodeType === Node.TEXT_NODE && node.textContent.includes(expected))
    || (element.getAttribute("aria-label") || "").includes(expected));
  try {{
    const response = await fetch("/api/v1/items?q=" + encodeURIComponent(expected), {{ cache: "no-store" }});
    report.api_status = response.status;
    const page = await response.json();
    report.api_titles = (page.items || []).map((item) => String(item.title || ""));
  }} catch (error) {{ report.errors.push("api: " + error); }}
  try {{
    const status = await window.__TAURI_INTERNALS__.invoke("server_status");
    report.ipc_state = status.state;
  }} catch (error) {{ report.errors.push("command: " + error); }}
  // One offer per page load: each call stores a new offer.
  try {{
    window.__hearthSelfCheckOffer ??= window.__TAURI_INTERNALS__.invoke("create_pairing_offer",
      {{ offer: {{ new_user: {{ name: "self-check", role: "adult" }} }} }});
    const offer = await window.__hearthSelfCheckOffer;
    const link = new URL(offer.link);
    report.offer_link = link.origin + link.pathname;
    report.offer_code_valid = /^[A-Z0-9]{{4}}-[A-Z0-9]{{4}}$/.test(offer.code);
  }} catch (error) {{ report.errors.push("pairing offer: " + JSON.stringify(error)); }}
  await fetch("{REPORT_PATH}", {{ method: "POST", headers: {{ "content-type": "application/json" }}, body: JSON.stringify(report) }});
}})();"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passing() -> PageReport {
        PageReport {
            url: "hearth://localhost/ui/".to_owned(),
            title: "Library · Hearth".to_owned(),
            text_length: 120,
            visible_elements: 40,
            loaded_images: 3,
            title_visible: true,
            api_status: 200,
            api_titles: vec!["Family picnic".to_owned()],
            ipc_state: Some("running".to_owned()),
            offer_link: Some("https://192.0.2.2:8443/pair".to_owned()),
            offer_code_valid: true,
            errors: Vec::new(),
        }
    }

    #[test]
    fn passes_only_when_every_check_holds() {
        assert!(Checks::of(&passing(), "picnic").all());
        let hidden = PageReport { title_visible: false, ..passing() };
        assert!(!Checks::of(&hidden, "picnic").all());
        let elsewhere = PageReport { url: "https://example.org/".to_owned(), ..passing() };
        assert!(!Checks::of(&elsewhere, "picnic").all());
        let unlisted = PageReport { api_titles: Vec::new(), ..passing() };
        assert!(!Checks::of(&unlisted, "picnic").all());
        let no_offer = PageReport { offer_link: None, ..passing() };
        assert!(!Checks::of(&no_offer, "picnic").all());
    }

    #[test]
    fn probe_embeds_the_title_as_a_json_string() {
        let script = probe_script("a \"quoted\" </script> title");
        assert!(script.contains(r#"const expected = "a \"quoted\" </script> title";"#));
        assert!(script.contains(REPORT_PATH));
    }
}
