//! Trickplay sprite sheets, made in the background after import.
//!
//! A worker thread at low CPU priority walks the library's videos and makes
//! the sheets of each one that has none yet, one video at a time, in
//! `cache/trickplay/<item>-<hash>/` (the hash is the start of the file's
//! SHA-256, so a changed file gets new sheets). A video that fails gets a
//! `.failed` marker with the reason and is not tried again until its file
//! changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hearth_catalog::{Catalog, ItemQuery};
use hearth_media::MediaKind;
use hearth_media::trickplay::{self, INDEX_FILE, TrickplaySpec};

/// Pause between two passes over the library.
const PASS_INTERVAL: Duration = Duration::from_secs(30);
/// Pause before the first pass, so start-up and the first scan go first.
const FIRST_PASS_DELAY: Duration = Duration::from_secs(2);
/// Nice value of the worker thread and of the GStreamer threads it starts.
const WORKER_NICE: i32 = 10;
/// Items per catalog page while walking the library.
const PAGE: u32 = 200;

/// The trickplay folder and its worker.
pub struct Trickplay {
    root: PathBuf,
}

impl Trickplay {
    /// Uses `root` (created when needed) for the sheets.
    pub fn new(root: PathBuf) -> Self {
        Trickplay { root }
    }

    /// Returns the folder of an item's sheets when they are complete.
    pub fn existing(&self, item_id: &str, sha256: &str) -> Option<PathBuf> {
        let folder = self.folder(item_id, sha256);
        folder.join(INDEX_FILE).is_file().then_some(folder)
    }

    fn folder(&self, item_id: &str, sha256: &str) -> PathBuf {
        let hash: String = sha256.chars().take(16).collect();
        self.root.join(format!("{item_id}-{hash}"))
    }

    /// Starts the worker thread; it runs until the process ends.
    pub fn spawn_worker(self: &Arc<Self>, catalog: Arc<Catalog>) {
        let trickplay = Arc::clone(self);
        let spawned = std::thread::Builder::new().name("hearth-trickplay".into()).spawn(move || {
            lower_priority();
            std::thread::sleep(FIRST_PASS_DELAY);
            loop {
                trickplay.pass(&catalog);
                std::thread::sleep(PASS_INTERVAL);
            }
        });
        if let Err(error) = spawned {
            tracing::error!(%error, "could not start the trickplay worker; scrubbing previews stay off");
        }
    }

    /// Makes the sheets of every video that has none.
    fn pass(&self, catalog: &Catalog) {
        let mut offset = 0;
        loop {
            let query = ItemQuery { kind: Some(MediaKind::Video), offset, limit: PAGE, ..ItemQuery::default() };
            let page = match catalog.items(&query) {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "trickplay pass could not list videos");
                    return;
                }
            };
            for item in &page.items {
                self.make_if_missing(catalog, &item.id);
            }
            if page.items.len() < PAGE as usize {
                return;
            }
            offset += PAGE;
        }
    }

    fn make_if_missing(&self, catalog: &Catalog, item_id: &str) {
        let Ok(Some(file)) = catalog.media_file(item_id) else { return };
        let folder = self.folder(item_id, &file.sha256);
        let failed = failure_marker(&folder);
        if folder.join(INDEX_FILE).is_file() || failed.is_file() {
            return;
        }
        let Some(duration_ms) = file.probe.duration_ms.filter(|ms| *ms > 0) else { return };
        if file.probe.video.is_none() {
            return;
        }
        if let Err(error) = std::fs::create_dir_all(&self.root) {
            tracing::warn!(%error, path = %self.root.display(), "cannot create the trickplay folder");
            return;
        }
        // Decoding runs at several times real time; a film gets half its
        // length, at least two minutes.
        let limit = Duration::from_millis(duration_ms / 2).max(Duration::from_secs(120));
        match trickplay::generate(&file.path, duration_ms, &folder, &TrickplaySpec::default(), limit) {
            Ok(index) => tracing::info!(item = item_id, tiles = index.tiles, "trickplay sheets made"),
            Err(error) => {
                tracing::warn!(item = item_id, %error, "trickplay sheets not made");
                if let Err(write_error) = std::fs::write(&failed, error.to_string()) {
                    tracing::warn!(%write_error, path = %failed.display(), "cannot record the trickplay failure");
                }
            }
        }
    }
}

fn failure_marker(folder: &Path) -> PathBuf {
    let mut name = folder.file_name().map(|name| name.to_os_string()).unwrap_or_default();
    name.push(".failed");
    folder.with_file_name(name)
}

/// Lowers this thread's CPU priority; threads it starts inherit it.
fn lower_priority() {
    // SAFETY: gettid has no preconditions; setpriority on this thread's own
    // id changes only this thread's nice value.
    let result = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, u32::try_from(tid).unwrap_or(0), WORKER_NICE)
    };
    if result != 0 {
        tracing::debug!("trickplay worker keeps normal priority");
    }
}
