//! Workers: classify, probe and hash one file at a time.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::MetadataExt;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth_media::MediaError;
use sha2::{Digest, Sha256};

use super::{FileResult, Job, Message, Outcome};

/// Jobs a worker has started and not yet finished, with their deadlines.
pub(crate) type InFlight = Arc<Mutex<std::collections::HashMap<u64, (Instant, Job)>>>;

/// Hashing is allowed this many bytes per second on top of the probe timeout
/// before the watchdog gives up (a slow USB disk reads about 20 MB/s).
const MIN_READ_RATE: u64 = 20_000_000;
/// Slack on top of the probe timeout for the rest of the work.
const DEADLINE_SLACK: Duration = Duration::from_secs(30);

/// Starts one worker thread that takes jobs until the queue closes.
pub(crate) fn spawn(
    jobs: Arc<Mutex<Receiver<Job>>>,
    messages: Sender<Message>,
    in_flight: InFlight,
    probe_timeout: Duration,
) -> std::io::Result<()> {
    std::thread::Builder::new().name("hearth-scan".into()).spawn(move || {
        loop {
            let job = {
                let queue = jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                match queue.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            };

            let deadline = Instant::now() + probe_timeout + DEADLINE_SLACK + Duration::from_secs(job.size / MIN_READ_RATE);
            lock(&in_flight).insert(job.seq, (deadline, job.clone()));

            let outcome = process(job, probe_timeout);

            // The watchdog removes a job it gave up on; its late result is dropped.
            let still_ours = lock(&in_flight).remove(&outcome.job.seq).is_some();
            if still_ours && messages.send(Message::Done(outcome)).is_err() {
                return;
            }
        }
    })?;
    Ok(())
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads one file: probe, hash, and check that it did not change meanwhile.
fn process(job: Job, probe_timeout: Duration) -> Outcome {
    let name_warning = non_utf8_warning(&job);
    let result = classify(&job, probe_timeout);
    Outcome { job, result, name_warning }
}

fn classify(job: &Job, probe_timeout: Duration) -> FileResult {
    let looks_like_media = hearth_media::kind_from_extension(&job.abs_path).is_some();
    if job.size == 0 {
        return if looks_like_media {
            problem("empty", "empty file (0 bytes); the copy or download was probably interrupted".into())
        } else {
            FileResult::Ignored
        };
    }

    let probe = match hearth_media::probe(&job.abs_path, probe_timeout) {
        Ok(probe) => probe,
        Err(MediaError::NotMedia { .. }) if !looks_like_media => return FileResult::Ignored,
        Err(err) => return problem(media_category(&err), err.to_string()),
    };

    let sha256 = match hash_file(job) {
        Ok(hash) => hash,
        Err(err) if err.kind() == ErrorKind::NotFound => {
            return problem("vanished", format!("{} vanished during the scan", job.abs_path.display()));
        }
        Err(err) => return problem("unreadable", format!("cannot read {}: {err}", job.abs_path.display())),
    };

    match std::fs::metadata(&job.abs_path) {
        Ok(after) if after.len() == job.size && after.mtime() * 1_000_000_000 + after.mtime_nsec() == job.mtime_ns => {
            FileResult::Item { sha256, probe: Box::new(probe) }
        }
        Ok(_) => problem("changed", "file changed while it was being scanned; it will be scanned again".into()),
        Err(_) => problem("vanished", format!("{} vanished during the scan", job.abs_path.display())),
    }
}

/// Streams the file through SHA-256 and checks that exactly `job.size` bytes
/// were read.
fn hash_file(job: &Job) -> std::io::Result<String> {
    let mut file = File::open(&job.abs_path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    if total != job.size {
        return Err(std::io::Error::other(format!("read {total} bytes, expected {}", job.size)));
    }
    Ok(hex::encode(hasher.finalize()))
}

fn problem(category: &'static str, reason: String) -> FileResult {
    FileResult::Problem { category, reason }
}

fn media_category(err: &MediaError) -> &'static str {
    match err {
        MediaError::Io { source, .. } if source.kind() == ErrorKind::NotFound => "vanished",
        MediaError::Io { .. } => "unreadable",
        MediaError::Empty { .. } => "empty",
        MediaError::NotMedia { .. } => "not_media",
        MediaError::Corrupt { .. } => "corrupt",
        MediaError::Timeout { .. } => "timeout",
        MediaError::Unsupported { .. } => "unsupported",
        _ => "media_error",
    }
}

fn non_utf8_warning(job: &Job) -> Option<String> {
    if std::str::from_utf8(&job.rel_path).is_ok() {
        return None;
    }
    Some(format!(
        "file name is not valid UTF-8; indexed and shown as \"{}\"; rename it to UTF-8 to show it correctly",
        String::from_utf8_lossy(&job.rel_path)
    ))
}
