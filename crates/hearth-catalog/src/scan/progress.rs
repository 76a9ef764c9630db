use serde::Serialize;

/// Where a scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ScanPhase {
    /// Walking folders and probing files.
    Scanning,
    /// Marking files that were not seen as missing.
    Finishing,
    /// The library scan is complete.
    Done,
}

/// A snapshot of a running scan, sent to the command line and the API.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanProgress {
    /// The library root, as text.
    pub library: String,
    /// Current phase.
    pub phase: ScanPhase,
    /// Regular files found so far.
    pub discovered: u64,
    /// Files handed to the workers (new or changed).
    pub queued: u64,
    /// Files the workers finished.
    pub processed: u64,
    /// Files skipped because their size, mtime and inode are unchanged.
    pub unchanged: u64,
    /// Problems recorded so far (broken entries and unreadable media).
    pub problems: u64,
    /// The file most recently finished, relative to the library root.
    pub current: Option<String>,
}

/// Totals of a finished scan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanSummary {
    /// Regular files found.
    pub discovered: u64,
    /// Files skipped because they had not changed.
    pub unchanged: u64,
    /// New items.
    pub added: u64,
    /// Existing items whose file changed and was probed again.
    pub updated: u64,
    /// Items recognised by hash at a new path (id and play state kept).
    pub moved: u64,
    /// Items whose file disappeared in this scan.
    pub missing: u64,
    /// Files that are not media and were skipped without a report.
    pub ignored: u64,
    /// Problems recorded (errors and warnings).
    pub problems: u64,
    /// Wall time of the scan in milliseconds.
    pub elapsed_ms: u64,
}

impl ScanSummary {
    /// Adds another library's totals to this one.
    pub fn absorb(&mut self, other: &ScanSummary) {
        self.discovered += other.discovered;
        self.unchanged += other.unchanged;
        self.added += other.added;
        self.updated += other.updated;
        self.moved += other.moved;
        self.missing += other.missing;
        self.ignored += other.ignored;
        self.problems += other.problems;
        self.elapsed_ms += other.elapsed_ms;
    }
}
