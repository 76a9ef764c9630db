//! The writer: runs a library scan and stores what the workers find.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_store::Store;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::walk::{StoredStat, walk};
use super::worker::{self, InFlight, lock};
use super::{FileResult, Job, Message, Outcome, ScanConfig, ScanPhase, ScanProgress, ScanSummary};
use crate::CatalogError;
use crate::id::new_item_id;

/// Outcomes stored per transaction.
const BATCH_SIZE: usize = 256;
/// Maximum time an outcome waits before its batch is committed.
const BATCH_INTERVAL: Duration = Duration::from_millis(500);
/// Items with the same content considered as the old side of one move.
const MAX_MOVE_CANDIDATES: i64 = 64;
/// Minimum time between two progress reports.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Scans one library and returns its totals.
pub(crate) fn scan_library(
    store: &Store,
    library_id: i64,
    root: &Path,
    config: &ScanConfig,
    on_progress: &(dyn Fn(&ScanProgress) + Sync),
) -> Result<ScanSummary, CatalogError> {
    let started = Instant::now();
    let generation = generation_now();
    let mut conn = store.get()?;
    let known = load_known(&conn, library_id)?;

    let (messages_tx, messages) = mpsc::channel::<Message>();
    let (jobs_tx, jobs) = mpsc::sync_channel::<Job>(config.workers * 4);
    let jobs = Arc::new(Mutex::new(jobs));
    let in_flight = InFlight::default();
    for _ in 0..config.workers.max(1) {
        worker::spawn(Arc::clone(&jobs), messages_tx.clone(), Arc::clone(&in_flight), config.probe_timeout)
            .map_err(CatalogError::Thread)?;
    }
    let walk_root = root.to_owned();
    let walk_tx = messages_tx.clone();
    std::thread::Builder::new()
        .name("hearth-walk".into())
        .spawn(move || walk(&walk_root, &known, jobs_tx, walk_tx))
        .map_err(CatalogError::Thread)?;

    let mut state = ScanState::new(library_id, root, generation);
    let mut walk_finished = false;
    let mut last_commit = Instant::now();
    let mut last_progress = Instant::now() - PROGRESS_INTERVAL;
    loop {
        match messages.recv_timeout(Duration::from_millis(200)) {
            Ok(Message::Unchanged { rel_path }) => state.pending.push(Pending::Touch(rel_path)),
            Ok(Message::Queued) => state.progress.queued += 1,
            Ok(Message::Done(outcome)) => state.pending.push(Pending::Outcome(outcome)),
            Ok(Message::WalkProblem { rel_path, category, reason }) => {
                state.pending.push(Pending::Problem { rel_path, category, reason });
            }
            Ok(Message::WalkFinished) => walk_finished = true,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }

        for job in expired_jobs(&in_flight) {
            tracing::warn!(path = %job.abs_path.display(), "scan worker timed out, starting a replacement");
            let reason = format!(
                "reading the file did not finish in time (probe timeout {} s); the file may be pathological or on a stalled disk",
                config.probe_timeout.as_secs()
            );
            let result = FileResult::Problem { category: "timeout", reason };
            state.pending.push(Pending::Outcome(Outcome { job, result, name_warning: None }));
            worker::spawn(Arc::clone(&jobs), messages_tx.clone(), Arc::clone(&in_flight), config.probe_timeout)
                .map_err(CatalogError::Thread)?;
        }

        let done = walk_finished && state.progress.processed + pending_outcomes(&state) >= state.progress.queued;
        if state.pending.len() >= BATCH_SIZE || last_commit.elapsed() >= BATCH_INTERVAL || done {
            state.flush(&mut conn)?;
            last_commit = Instant::now();
        }
        if last_progress.elapsed() >= PROGRESS_INTERVAL {
            on_progress(&state.progress);
            last_progress = Instant::now();
        }
        if done {
            break;
        }
    }

    state.progress.phase = ScanPhase::Finishing;
    on_progress(&state.progress);
    state.finish(&mut conn)?;

    state.progress.problems = state.summary.problems;
    state.summary.discovered = state.progress.unchanged + state.progress.queued;
    state.summary.unchanged = state.progress.unchanged;
    state.summary.elapsed_ms = started.elapsed().as_millis() as u64;
    state.progress.phase = ScanPhase::Done;
    on_progress(&state.progress);
    Ok(state.summary)
}

enum Pending {
    Touch(Vec<u8>),
    Outcome(Outcome),
    Problem { rel_path: Vec<u8>, category: &'static str, reason: String },
}

struct ScanState {
    library_id: i64,
    root: PathBuf,
    generation: i64,
    pending: Vec<Pending>,
    progress: ScanProgress,
    summary: ScanSummary,
    /// Hashes known to have no move candidate in this scan. The candidate
    /// set only shrinks while a scan runs (except when an item goes missing,
    /// which clears this set), so thousands of identical new files cost one
    /// query, not one each.
    no_move_candidates: std::collections::HashSet<String>,
}

impl ScanState {
    fn new(library_id: i64, root: &Path, generation: i64) -> Self {
        let progress = ScanProgress {
            library: root.display().to_string(),
            phase: ScanPhase::Scanning,
            discovered: 0,
            queued: 0,
            processed: 0,
            unchanged: 0,
            problems: 0,
            current: None,
        };
        Self {
            library_id,
            root: root.to_owned(),
            generation,
            pending: Vec::new(),
            progress,
            summary: ScanSummary::default(),
            no_move_candidates: std::collections::HashSet::new(),
        }
    }

    /// Stores every pending outcome in one transaction.
    fn flush(&mut self, conn: &mut Connection) -> Result<(), CatalogError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let tx = conn.transaction()?;
        for item in pending {
            match item {
                Pending::Touch(rel_path) => {
                    self.touch(&tx, &rel_path)?;
                    self.progress.unchanged += 1;
                }
                Pending::Problem { rel_path, category, reason } => {
                    self.record_problem(&tx, &rel_path, category, "error", &reason)?;
                }
                Pending::Outcome(outcome) => {
                    self.progress.current = Some(String::from_utf8_lossy(&outcome.job.rel_path).into_owned());
                    self.store_outcome(&tx, outcome)?;
                    self.progress.processed += 1;
                }
            }
        }
        self.progress.discovered = self.progress.unchanged + self.progress.queued;
        tx.commit()?;
        Ok(())
    }

    /// Marks files that were not seen in this scan: their items become
    /// missing, their rows and stale problems go.
    fn finish(&mut self, conn: &mut Connection) -> Result<(), CatalogError> {
        let tx = conn.transaction()?;
        let missing = tx.execute(
            "UPDATE items SET missing = 1, updated_at = unixepoch()
             WHERE missing = 0 AND id IN (
                 SELECT item_id FROM files
                 WHERE library_id = ?1 AND scan_generation < ?2 AND item_id IS NOT NULL)",
            params![self.library_id, self.generation],
        )?;
        tx.execute(
            "DELETE FROM files WHERE library_id = ?1 AND scan_generation < ?2",
            params![self.library_id, self.generation],
        )?;
        tx.execute(
            "DELETE FROM problems WHERE library_id = ?1 AND scan_generation < ?2",
            params![self.library_id, self.generation],
        )?;
        // Items whose path no longer has a file row (deleted while the server
        // was down and never re-found) are missing too.
        let orphaned = tx.execute(
            "UPDATE items SET missing = 1, updated_at = unixepoch()
             WHERE library_id = ?1 AND missing = 0 AND NOT EXISTS (
                 SELECT 1 FROM files f WHERE f.item_id = items.id)",
            params![self.library_id],
        )?;
        self.summary.problems = tx.query_row(
            "SELECT COUNT(*) FROM problems WHERE library_id = ?1",
            [self.library_id],
            |row| row.get::<_, i64>(0),
        )? as u64;
        tx.commit()?;
        self.summary.missing = (missing + orphaned) as u64;
        Ok(())
    }

    fn touch(&self, tx: &Transaction, rel_path: &[u8]) -> Result<(), CatalogError> {
        tx.execute(
            "UPDATE files SET scan_generation = ?3 WHERE library_id = ?1 AND rel_path = ?2",
            params![self.library_id, rel_path, self.generation],
        )?;
        tx.execute(
            "UPDATE problems SET scan_generation = ?3, last_seen = unixepoch() WHERE library_id = ?1 AND rel_path = ?2",
            params![self.library_id, rel_path, self.generation],
        )?;
        Ok(())
    }

    fn store_outcome(&mut self, tx: &Transaction, outcome: Outcome) -> Result<(), CatalogError> {
        let Outcome { job, result, name_warning } = outcome;
        tx.execute("DELETE FROM problems WHERE library_id = ?1 AND rel_path = ?2", params![self.library_id, job.rel_path])?;

        let (state, item_id, mtime_ns) = match result {
            FileResult::Item { sha256, probe } => {
                let id = self.store_item(tx, &job, &sha256, &probe)?;
                if let Some(warning) = name_warning {
                    self.record_problem(tx, &job.rel_path, "name_not_utf8", "warning", &warning)?;
                }
                ("item", Some(id), job.mtime_ns)
            }
            FileResult::Ignored => {
                self.mark_path_missing(tx, &job.rel_path)?;
                self.summary.ignored += 1;
                ("ignored", None, job.mtime_ns)
            }
            FileResult::Problem { category, reason } => {
                self.mark_path_missing(tx, &job.rel_path)?;
                self.record_problem(tx, &job.rel_path, category, "error", &reason)?;
                // A file that changed mid-read is read again by the next scan.
                let mtime_ns = if category == "changed" { -1 } else { job.mtime_ns };
                ("problem", None, mtime_ns)
            }
        };

        tx.execute(
            "INSERT INTO files (library_id, rel_path, size, mtime_ns, inode, state, item_id, scan_generation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (library_id, rel_path) DO UPDATE SET
                 size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode,
                 state = excluded.state, item_id = excluded.item_id, scan_generation = excluded.scan_generation",
            params![self.library_id, job.rel_path, job.size as i64, mtime_ns, job.inode as i64, state, item_id, self.generation],
        )?;
        Ok(())
    }

    /// Inserts or updates the item for a media file and returns its id. A
    /// file at a known path keeps that item. Otherwise a missing item with
    /// the same content hash is taken over, so a move or rename keeps its id
    /// and play state. Only a file with new content gets a new id.
    fn store_item(&mut self, tx: &Transaction, job: &Job, sha256: &str, probe: &hearth_media::Probe) -> Result<String, CatalogError> {
        let probe_json = serde_json::to_string(probe).expect("a probe contains only strings and numbers, which always serialise");
        let display_path = String::from_utf8_lossy(&job.rel_path).into_owned();
        let title = probe.tags.title.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| title_from_path(&job.rel_path));
        let (width, height) = dimensions(probe);

        let at_path: Option<String> = tx
            .query_row(
                "SELECT id FROM items WHERE library_id = ?1 AND rel_path = ?2",
                params![self.library_id, job.rel_path],
                |row| row.get(0),
            )
            .optional()?;
        let (id, counter) = match at_path {
            Some(id) => (id, &mut self.summary.updated),
            None => match self.moved_item(tx, sha256, &job.rel_path)? {
                Some(id) => {
                    tx.execute("UPDATE files SET item_id = NULL WHERE item_id = ?1", [&id])?;
                    (id, &mut self.summary.moved)
                }
                None => {
                    let id = new_item_id();
                    tx.execute(
                        "INSERT INTO items (id, library_id, rel_path, display_path, title, kind, mime, size, sha256, probe)
                         VALUES (?1, ?2, ?3, '', '', 'video', '', 0, '', '{}')",
                        params![id, self.library_id, job.rel_path],
                    )?;
                    (id, &mut self.summary.added)
                }
            },
        };
        *counter += 1;

        tx.execute(
            "UPDATE items SET library_id = ?2, rel_path = ?3, display_path = ?4, title = ?5, kind = ?6, mime = ?7,
                 size = ?8, sha256 = ?9, duration_ms = ?10, width = ?11, height = ?12, artist = ?13, album = ?14,
                 probe = ?15, missing = 0, updated_at = unixepoch()
             WHERE id = ?1",
            params![
                id,
                self.library_id,
                job.rel_path,
                display_path,
                title,
                probe.kind.as_str(),
                probe.mime,
                job.size as i64,
                sha256,
                probe.duration_ms.map(|d| d as i64),
                width,
                height,
                probe.tags.artist,
                probe.tags.album,
                probe_json,
            ],
        )?;
        Ok(id)
    }

    /// Finds an item with this content whose file is gone: missing already, or its
    /// recorded path no longer exists on disk (the move was seen from the
    /// new side first).
    fn moved_item(&mut self, tx: &Transaction, sha256: &str, new_rel_path: &[u8]) -> Result<Option<String>, CatalogError> {
        if self.no_move_candidates.contains(sha256) {
            return Ok(None);
        }

        // Items already seen in this scan are still in place, so they cannot
        // be the old side of a move. Leaving them out keeps a library with
        // thousands of identical files from turning quadratic.
        let mut stmt = tx.prepare_cached(
            "SELECT i.id, i.missing, l.root, i.rel_path FROM items i JOIN libraries l ON l.id = i.library_id
             WHERE i.sha256 = ?1
               AND (i.missing = 1 OR NOT EXISTS (
                   SELECT 1 FROM files f WHERE f.item_id = i.id AND f.scan_generation >= ?2))
             ORDER BY i.missing DESC
             LIMIT ?3",
        )?;
        let candidates = stmt
            .query_map(params![sha256, self.generation, MAX_MOVE_CANDIDATES], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?, row.get::<_, Vec<u8>>(2)?, row.get::<_, Vec<u8>>(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;

        let gone: Vec<(String, Vec<u8>)> = candidates
            .into_iter()
            .filter(|(_, missing, root, rel_path)| {
                let old_path = Path::new(OsStr::from_bytes(root)).join(OsStr::from_bytes(rel_path));
                *missing || std::fs::symlink_metadata(&old_path).is_err()
            })
            .map(|(id, _, _, rel_path)| (id, rel_path))
            .collect();

        // Several identical copies moved together: pair each new path with
        // the old one of the same file name first, so ids and play states do
        // not swap between copies.
        let new_name = Path::new(OsStr::from_bytes(new_rel_path)).file_name();
        let same_name = gone.iter().find(|(_, rel_path)| Path::new(OsStr::from_bytes(rel_path)).file_name() == new_name);
        let chosen = same_name.or(gone.first()).map(|(id, _)| id.clone());
        if chosen.is_none() {
            self.no_move_candidates.insert(sha256.to_owned());
        }
        Ok(chosen)
    }

    fn mark_path_missing(&mut self, tx: &Transaction, rel_path: &[u8]) -> Result<(), CatalogError> {
        self.no_move_candidates.clear();
        tx.execute(
            "UPDATE items SET missing = 1, updated_at = unixepoch() WHERE library_id = ?1 AND rel_path = ?2 AND missing = 0",
            params![self.library_id, rel_path],
        )?;
        Ok(())
    }

    fn record_problem(
        &mut self,
        tx: &Transaction,
        rel_path: &[u8],
        category: &str,
        severity: &str,
        reason: &str,
    ) -> Result<(), CatalogError> {
        let display_path = String::from_utf8_lossy(rel_path);
        tracing::debug!(library = %self.root.display(), path = %display_path, category, reason, "scan problem recorded");
        tx.execute(
            "INSERT INTO problems (library_id, rel_path, display_path, category, severity, reason, scan_generation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (library_id, rel_path, category) DO UPDATE SET
                 severity = excluded.severity, reason = excluded.reason,
                 scan_generation = excluded.scan_generation, last_seen = unixepoch()",
            params![self.library_id, rel_path, display_path, category, severity, reason, self.generation],
        )?;
        self.progress.problems += 1;
        Ok(())
    }
}

fn pending_outcomes(state: &ScanState) -> u64 {
    state.pending.iter().filter(|p| matches!(p, Pending::Outcome(_))).count() as u64
}

/// Removes and returns the jobs whose deadline has passed.
fn expired_jobs(in_flight: &InFlight) -> Vec<Job> {
    let now = Instant::now();
    let mut map = lock(in_flight);
    let expired: Vec<u64> = map.iter().filter(|(_, (deadline, _))| *deadline < now).map(|(seq, _)| *seq).collect();
    expired.into_iter().filter_map(|seq| map.remove(&seq)).map(|(_, job)| job).collect()
}

fn load_known(conn: &Connection, library_id: i64) -> Result<HashMap<Vec<u8>, StoredStat>, CatalogError> {
    let mut stmt = conn.prepare("SELECT rel_path, size, mtime_ns, inode FROM files WHERE library_id = ?1")?;
    let rows = stmt.query_map([library_id], |row| {
        let stat = StoredStat {
            size: row.get::<_, i64>(1)? as u64,
            mtime_ns: row.get(2)?,
            inode: row.get::<_, i64>(3)? as u64,
        };
        Ok((row.get::<_, Vec<u8>>(0)?, stat))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Returns a scan generation: milliseconds since the epoch, so later scans compare
/// greater.
fn generation_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn title_from_path(rel_path: &[u8]) -> String {
    let path = Path::new(OsStr::from_bytes(rel_path));
    let stem = path.file_stem().unwrap_or(path.as_os_str());
    String::from_utf8_lossy(stem.as_bytes()).replace(['_', '.'], " ").trim().to_owned()
}

fn dimensions(probe: &hearth_media::Probe) -> (Option<u32>, Option<u32>) {
    if let Some(image) = &probe.image {
        return (Some(image.width), Some(image.height));
    }
    match &probe.video {
        Some(video) => (video.width, video.height),
        None => (None, None),
    }
}
