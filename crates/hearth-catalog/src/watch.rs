//! Rescans libraries when their files change while the server runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::event::{MetadataKind, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::{Catalog, CatalogError, Library, ScanProgress, ScanSummary};

/// Quiet time after the last change before a rescan starts, so a file being
/// copied is scanned once, after the copy.
const DEBOUNCE: Duration = Duration::from_secs(2);
/// Maximum wait for quiet while changes keep coming.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Called with each progress report of a watcher-triggered scan.
pub type ProgressCallback = Arc<dyn Fn(&ScanProgress) + Send + Sync>;
/// Called after each watcher-triggered scan with its totals.
pub type SummaryCallback = Arc<dyn Fn(&Library, &ScanSummary) + Send + Sync>;

/// Watches every library folder; dropping it stops the watching.
pub struct LibraryWatcher {
    _watcher: RecommendedWatcher,
}

impl LibraryWatcher {
    /// Starts watching all libraries of `catalog` recursively.
    pub fn start(catalog: Arc<Catalog>, on_progress: ProgressCallback, on_scan: SummaryCallback) -> Result<Self, CatalogError> {
        let libraries = catalog.libraries()?;
        let (tx, rx) = mpsc::channel::<PathBuf>();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) => {
                // Reads by the scanner itself (and by players) raise access
                // events; only changes to the library matter.
                if !changes_content(&event.kind) {
                    return;
                }
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
            Err(err) => tracing::warn!(error = %err, "filesystem watcher error"),
        })
        .map_err(|source| CatalogError::Watch { path: PathBuf::new(), source })?;

        for library in &libraries {
            watcher
                .watch(&library.root, RecursiveMode::Recursive)
                .map_err(|source| CatalogError::Watch { path: library.root.clone(), source })?;
        }

        std::thread::Builder::new()
            .name("hearth-watch".into())
            .spawn(move || debounce_loop(&catalog, &libraries, &rx, &on_progress, &on_scan))
            .map_err(CatalogError::Thread)?;
        Ok(Self { _watcher: watcher })
    }
}

/// Returns whether an event may change the library's contents.
fn changes_content(kind: &EventKind) -> bool {
    !matches!(kind, EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)))
}

/// Collects changed paths until the libraries are quiet, then rescans the
/// libraries they belong to. Ends when the watcher is dropped.
fn debounce_loop(
    catalog: &Catalog,
    libraries: &[Library],
    rx: &mpsc::Receiver<PathBuf>,
    on_progress: &ProgressCallback,
    on_scan: &SummaryCallback,
) {
    while let Ok(first) = rx.recv() {
        let mut changed = vec![first];
        let started = Instant::now();
        loop {
            match rx.recv_timeout(DEBOUNCE) {
                Ok(path) => changed.push(path),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if started.elapsed() >= MAX_DELAY {
                break;
            }
        }

        for library in libraries.iter().filter(|lib| changed.iter().any(|path| path.starts_with(&lib.root))) {
            let progress = |p: &ScanProgress| on_progress(p);
            match catalog.scan_library(library, &progress) {
                Ok(summary) => on_scan(library, &summary),
                Err(err) => tracing::error!(library = %library.root.display(), error = %err, "rescan after change failed"),
            }
        }
    }
}
