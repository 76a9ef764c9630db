//! Time limits for the public entry points.
//!
//! Each entry point runs its work on a helper thread and waits for it at most
//! until the deadline, so a caller gets [`MediaError::Timeout`] on time even
//! while the work is stuck in a blocking read or a decoder. The work itself
//! also checks the same deadline wherever it waits (GStreamer buses and main
//! contexts) so that it stops soon after.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::MediaError;

/// A point in time after which work on one file must stop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    start: Instant,
    limit: Duration,
}

impl Deadline {
    /// Starts a deadline `limit` from now.
    pub(crate) fn after(limit: Duration) -> Self {
        Deadline {
            start: Instant::now(),
            limit,
        }
    }

    /// Returns the time left, or `None` once the deadline has passed.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        let left = self.limit.checked_sub(self.start.elapsed())?;
        if left.is_zero() { None } else { Some(left) }
    }

    /// Returns the time left, or the timeout error for `path` once the deadline has passed.
    pub(crate) fn remaining_or_timeout(&self, path: &Path) -> Result<Duration, MediaError> {
        self.remaining().ok_or_else(|| self.timeout_error(path))
    }

    /// Returns the time left as a GStreamer clock time, or the timeout error.
    pub(crate) fn remaining_clock_time(
        &self,
        path: &Path,
    ) -> Result<gstreamer::ClockTime, MediaError> {
        let left = self.remaining_or_timeout(path)?;
        Ok(gstreamer::ClockTime::from_nseconds(
            u64::try_from(left.as_nanos()).unwrap_or(u64::MAX),
        ))
    }

    /// Builds the error reported when this deadline passes.
    pub(crate) fn timeout_error(&self, path: &Path) -> MediaError {
        MediaError::Timeout {
            path: path.to_path_buf(),
            after: self.limit,
        }
    }
}

/// Runs `work` on a helper thread and returns its result, or
/// [`MediaError::Timeout`] when it does not finish within `timeout`.
///
/// NOTE: work that is still running at the deadline is not killed. GStreamer
/// steps notice the shared deadline and stop soon after, but an image decode
/// already under way runs to its end on the helper thread and its result is
/// dropped.
pub(crate) fn run_with_deadline<T, F>(
    path: &Path,
    timeout: Duration,
    work: F,
) -> Result<T, MediaError>
where
    T: Send + 'static,
    F: FnOnce(PathBuf, Deadline) -> Result<T, MediaError> + Send + 'static,
{
    let deadline = Deadline::after(timeout);
    let owned_path = path.to_path_buf();
    let (sender, receiver) = mpsc::sync_channel(1);

    let spawned = thread::Builder::new()
        .name("hearth-media".to_owned())
        .spawn(move || {
            let result = work(owned_path, deadline);
            // The receiver is gone when the caller already timed out; the
            // result is then dropped on purpose.
            let _ = sender.send(result);
        });

    if let Err(source) = spawned {
        return Err(MediaError::Io {
            path: path.to_path_buf(),
            source,
        });
    }

    let wait = deadline.remaining().unwrap_or(Duration::ZERO);
    match receiver.recv_timeout(wait) {
        // A result that only arrives after the deadline counts as a timeout,
        // so the outcome does not depend on how the threads were scheduled.
        Ok(_) if deadline.remaining().is_none() => Err(deadline.timeout_error(path)),
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(deadline.timeout_error(path)),
        // The helper thread panicked before it could send its result.
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(MediaError::Corrupt {
            path: path.to_path_buf(),
            reason: "reading it crashed the reader thread (a bug in hearth-media or in a decoder)"
                .to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_work_times_out_on_time() {
        let started = Instant::now();
        let result = run_with_deadline(Path::new("/x"), Duration::from_millis(50), |_, _| {
            thread::sleep(Duration::from_secs(2));
            Ok(())
        });
        assert!(
            matches!(result, Err(MediaError::Timeout { .. })),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn fast_work_returns_its_value() {
        let result = run_with_deadline(Path::new("/x"), Duration::from_secs(5), |_, _| Ok(7));
        assert_eq!(result.unwrap(), 7);
    }

    #[test]
    fn zero_limit_has_no_time_left() {
        let deadline = Deadline::after(Duration::ZERO);
        assert_eq!(deadline.remaining(), None);
    }
}
