//! The location of the built web UI, and the pages shown instead of it.
//!
//! The server's `/ui/` route serves the folder named by `HEARTH_UI_DIR`
//! (`hearth_server::web::ui_dir`). The app sets that variable at start, in
//! this order of choice: its own value when given; the UI that the Debian
//! package installs (`share/hearth/ui` beside the executable's `bin/`);
//! `ui/dist` of this source tree, so a development build shows what
//! `npm run build` wrote. The LAN's browsers then get the same UI under
//! `/ui/`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hearth_server::web::ui_dir::UI_DIR_VAR;

use crate::server::ServerStatus;

static UI_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Finds the built UI and names it in `HEARTH_UI_DIR` for the server.
///
/// Call it first in `main`, before any thread starts: it changes the
/// process environment.
pub fn resolve() -> Option<PathBuf> {
    let chosen = std::env::var_os(UI_DIR_VAR)
        .map(PathBuf::from)
        .or_else(|| installed_dir().filter(|dir| has_index(dir)))
        .or_else(development_dir)
        .filter(|dir| has_index(dir));
    if let Some(dir) = &chosen {
        // SAFETY: called at the start of `main`, before the app starts any
        // thread, so no other thread reads the environment meanwhile.
        unsafe { std::env::set_var(UI_DIR_VAR, dir) };
    }
    UI_DIR.get_or_init(|| chosen.clone()).clone()
}

/// Returns whether a built UI was found at start.
pub fn is_built() -> bool {
    UI_DIR.get().is_some_and(Option::is_some)
}

/// `PREFIX/share/hearth/ui` for an executable in `PREFIX/bin`, where the
/// Debian package puts the built UI (`bundle.linux.deb.files` in
/// tauri.conf.json).
fn installed_dir() -> Option<PathBuf> {
    let executable = std::env::current_exe().ok()?;
    let prefix = executable.parent()?.parent()?;
    Some(prefix.join("share").join("hearth").join("ui"))
}

/// `ui/dist` of the source tree this app was built from, when it exists.
fn development_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.join("ui").join("dist");
    dir.is_dir().then_some(dir)
}

fn has_index(dir: &Path) -> bool {
    dir.join("index.html").is_file()
}

/// Returns the page shown instead of the UI when none is built.
pub fn missing_page() -> String {
    page(
        "The web UI is not built",
        &format!(
            "<p>Hearth is running, but this window has no UI to show.</p>\
             <p>Build it, then start the app again:</p>\
             <pre>cd ui\nnpm ci\nnpm run build</pre>\
             <p>or set <code>{UI_DIR_VAR}</code> to a folder that holds a built UI (its <code>index.html</code>).</p>"
        ),
    )
}

/// Returns the page shown while the server does not run.
pub fn stopped_page(status: &ServerStatus) -> String {
    let detail = match status {
        ServerStatus::Failed { reason } => format!("<p>It failed to start:</p><pre>{}</pre>", escape(reason)),
        _ => "<p>It was stopped from the tray menu.</p>".to_owned(),
    };
    page("The Hearth server is not running", &format!("{detail}<p>Start it from the tray menu, then reload this window (Ctrl+R).</p>"))
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;background:#15171c;color:#eceff4;margin:3rem auto;max-width:40rem;padding:0 1rem}}\
         pre{{background:#22252c;padding:1rem;border-radius:6px;white-space:pre-wrap}}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_page_says_how_to_build() {
        let page = missing_page();
        assert!(page.contains("npm run build"));
        assert!(page.contains(UI_DIR_VAR));
    }

    #[test]
    fn failure_reason_is_escaped() {
        let page = stopped_page(&ServerStatus::Failed { reason: "<script>x</script>".to_owned() });
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>"));
    }
}
