//! State shared by every request handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hearth_catalog::{Catalog, ScanProgress};
use tokio::sync::broadcast;

use crate::connection::ConnectionLog;
use crate::thumbnails::ThumbnailCache;

/// Progress reports buffered per slow subscriber before it skips ahead.
const PROGRESS_BUFFER: usize = 256;

/// Everything a handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The media library.
    pub catalog: Arc<Catalog>,
    /// Recent TLS connections.
    pub connections: Arc<ConnectionLog>,
    /// Scan progress reports, from whichever scan runs.
    pub scan_events: ScanEvents,
    /// Thumbnails cached on disk.
    pub thumbnails: Arc<ThumbnailCache>,
    /// TLS certificate and signing keys, rotated without a restart. None in
    /// in-process tests that run without TLS.
    pub rotation: Option<Arc<crate::rotation::KeyRotation>>,
    /// This node's X-Wing key and its link keys with other nodes. None in
    /// in-process tests without a key store; the link routes then answer 404.
    pub links: Option<Arc<crate::links::NodeLinks>>,
    /// Users, devices, sessions, policy and media grants.
    pub access: Arc<crate::access::Access>,
    /// HLS playbacks and their transcoders.
    pub playbacks: Arc<crate::api::playback::Playbacks>,
    /// Trickplay sprite sheets.
    pub trickplay: Arc<crate::trickplay::Trickplay>,
    /// The intrusion guard.
    pub guard: Arc<crate::guard::GuardService>,
}

/// Fan-out of scan progress to API subscribers, plus the latest report for
/// subscribers that join mid-scan.
#[derive(Clone)]
pub struct ScanEvents {
    sender: broadcast::Sender<ScanProgress>,
    latest: Arc<Mutex<Option<ScanProgress>>>,
    /// The latest report of each library, by its root.
    per_library: Arc<Mutex<std::collections::BTreeMap<String, ScanProgress>>>,
    running: Arc<AtomicBool>,
}

impl Default for ScanEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl ScanEvents {
    /// Creates an empty channel.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(PROGRESS_BUFFER);
        Self { sender, latest: Arc::new(Mutex::new(None)), per_library: Arc::default(), running: Arc::new(AtomicBool::new(false)) }
    }

    /// Publishes one report.
    pub fn publish(&self, progress: &ScanProgress) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(progress.clone());
        self.per_library.lock().unwrap_or_else(|p| p.into_inner()).insert(progress.library.clone(), progress.clone());
        // A send error only means there are no subscribers right now.
        let _ = self.sender.send(progress.clone());
    }

    /// Subscribes, returning the receiver and the latest report so far.
    pub fn subscribe(&self) -> (broadcast::Receiver<ScanProgress>, Option<ScanProgress>) {
        let receiver = self.sender.subscribe();
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (receiver, latest)
    }

    /// Returns the latest report of every library scanned since start, by root.
    pub fn libraries(&self) -> Vec<ScanProgress> {
        self.per_library.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Marks a scan as started; false when one is already running.
    pub fn try_start(&self) -> bool {
        self.running.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Marks the running scan as finished.
    pub fn finish(&self) {
        self.running.store(false, Ordering::Release);
    }

    /// Returns whether a scan started through [`Self::try_start`] is running.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}
