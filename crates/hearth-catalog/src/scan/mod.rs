//! The library scanner.
//!
//! A scan of one library runs three parts at once:
//!
//! - the walker ([`walk`]) visits every entry under the root, following
//!   symlinks, and sends each regular file whose size, mtime or inode changed
//!   since the last scan to the workers; unchanged files and broken entries
//!   (symlink loops, dangling symlinks, unreadable folders) go straight to
//!   the writer;
//! - a pool of workers ([`worker`]), one per core, classifies each file by
//!   content, probes it with a timeout and hashes it (SHA-256);
//! - the writer ([`writer`]), on the calling thread, stores outcomes in
//!   batched transactions, recognises moved files by hash, and at the end
//!   marks files that were not seen as missing.
//!
//! A watchdog in the writer gives up on a file whose worker has not finished
//! well past its deadline, records a timeout problem for it and starts a
//! replacement worker, so one pathological file cannot stall the scan.

mod progress;
mod walk;
mod worker;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

pub use progress::{ScanPhase, ScanProgress, ScanSummary};
pub(crate) use writer::scan_library;

/// Settings of a scan.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// Time allowed to probe one file with GStreamer (default 20 s).
    pub probe_timeout: Duration,
    /// Number of parallel workers (default: the number of cores).
    pub workers: usize,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            probe_timeout: Duration::from_secs(20),
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        }
    }
}

/// Message from the walker or a worker to the writer.
enum Message {
    /// A file that matches its stored stat fields.
    Unchanged { rel_path: Vec<u8> },
    /// A file handed to the workers; its outcome follows later.
    Queued,
    /// A worker's result for one file.
    Done(Outcome),
    /// An entry that could not be visited.
    WalkProblem { rel_path: Vec<u8>, category: &'static str, reason: String },
    /// The walk finished.
    WalkFinished,
}

/// A regular file that must be read.
#[derive(Debug, Clone)]
struct Job {
    seq: u64,
    rel_path: Vec<u8>,
    abs_path: PathBuf,
    size: u64,
    mtime_ns: i64,
    inode: u64,
}

/// The result of reading one file.
struct Outcome {
    job: Job,
    result: FileResult,
    /// Set when the file name is not valid UTF-8 (indexed with a warning).
    name_warning: Option<String>,
}

enum FileResult {
    Item { sha256: String, probe: Box<hearth_media::Probe> },
    Ignored,
    Problem { category: &'static str, reason: String },
}
