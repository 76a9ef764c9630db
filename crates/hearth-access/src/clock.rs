//! Time source for expiry, back-off and audit timestamps.
//!
//! Every time-dependent part of the crate reads the time through [`Clock`],
//! so tests can move time forward without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in whole seconds since the Unix epoch (UTC).
pub trait Clock: Send + Sync {
    /// Returns the current time in seconds since 1970-01-01T00:00:00Z.
    fn now(&self) -> i64;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(elapsed) => i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
            // A clock set before 1970 is broken; report the epoch rather than
            // a negative time so that expiry checks fail closed.
            Err(_) => 0,
        }
    }
}

/// A clock that moves only on [`ManualClock::set`] or [`ManualClock::advance`], for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    /// Creates a clock that reads `now` seconds since the Unix epoch.
    pub fn new(now: i64) -> Self {
        Self {
            now: AtomicI64::new(now),
        }
    }

    /// Sets the time to `now` seconds since the Unix epoch.
    pub fn set(&self, now: i64) {
        self.now.store(now, Ordering::SeqCst);
    }

    /// Moves the time forward by `seconds` (backward when negative).
    pub fn advance(&self, seconds: i64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now(), 1_000);

        clock.advance(61);
        assert_eq!(clock.now(), 1_061);

        clock.set(5);
        assert_eq!(clock.now(), 5);
    }

    #[test]
    fn system_clock_is_after_2024() {
        // 2024-01-01T00:00:00Z; a smaller value means the conversion is wrong.
        assert!(SystemClock.now() > 1_704_067_200);
    }
}
