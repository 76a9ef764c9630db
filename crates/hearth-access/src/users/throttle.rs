//! Login throttling: exponential back-off, then lockout, per account name
//! and per source address, persisted in the `login_throttle` table.
//!
//! Each key (an account name, or a source address) has a failure count and
//! the time of the last failure. After `f` failures a new attempt must wait:
//!
//! - for `f` below [`ThrottleRule::lockout_after`]: back-off of
//!   `backoff_base × 2^(f-1)` seconds, at most `backoff_max`;
//! - from `lockout_after` on: lockout of `lockout × 2^(f-lockout_after)`
//!   seconds, at most `lockout_max`.
//!
//! A key whose last failure is [`ThrottlePolicy::reset_after`] old starts
//! over. The defaults ([`ThrottlePolicy::default`]):
//!
//! | key | back-off | lockout after | lockout |
//! |-----|----------|---------------|---------|
//! | account name | 1, 2, 4, 8 s | 5 failures | 15 min, doubling per failure, at most 24 h |
//! | source (IPv4 address or IPv6 /64) | 1 s doubling, at most 60 s | 20 failures | same |
//!
//! An attacker who guesses once a second gets 8 password checks in 10,000
//! attempts (test `ten_thousand_guesses_never_succeed`). One who waits out
//! every lockout gets 11 in the first 24 hours and about 6 a day after that
//! (test `patient_attacker_gets_few_guesses`).
//!
//! An attempt counts as a failure before the password is checked, and a
//! success then clears it. Parallel attempts therefore cannot all pass the
//! throttle check before any failure is written. Unknown account names are
//! throttled the same way as real ones, so the throttle does not reveal
//! which names exist.

use std::net::IpAddr;

use rusqlite::{OptionalExtension as _, TransactionBehavior, params};

use super::UserError;

/// Back-off and lockout of one kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Failures after which the key is locked out rather than backed off.
    pub lockout_after: u32,
    /// Back-off after the first failure, in seconds.
    pub backoff_base: i64,
    /// Maximum back-off, in seconds.
    pub backoff_max: i64,
    /// Lockout after `lockout_after` failures, in seconds.
    pub lockout: i64,
    /// Maximum lockout, in seconds.
    pub lockout_max: i64,
}

/// Throttle rules for account names and source addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Rule per account name.
    pub account: ThrottleRule,
    /// Rule per source address (IPv4) or /64 prefix (IPv6).
    pub source: ThrottleRule,
    /// Seconds after the last failure when a key's count starts over.
    pub reset_after: i64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        const MINUTE: i64 = 60;
        const DAY: i64 = 24 * 60 * MINUTE;
        Self {
            account: ThrottleRule {
                lockout_after: 5,
                backoff_base: 1,
                backoff_max: MINUTE,
                lockout: 15 * MINUTE,
                lockout_max: DAY,
            },
            source: ThrottleRule {
                lockout_after: 20,
                backoff_base: 1,
                backoff_max: MINUTE,
                lockout: 15 * MINUTE,
                lockout_max: DAY,
            },
            reset_after: DAY,
        }
    }
}

impl ThrottleRule {
    /// Returns the wait in seconds after `failures` failures.
    pub fn delay(&self, failures: u32) -> i64 {
        if failures == 0 {
            return 0;
        }
        if failures < self.lockout_after {
            return doubled(self.backoff_base, failures - 1).min(self.backoff_max);
        }
        doubled(self.lockout, failures - self.lockout_after).min(self.lockout_max)
    }
}

/// Reason an attempt may not proceed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// Back-off: retry after this many seconds.
    Throttled(i64),
    /// Lockout: retry after this many seconds.
    Locked(i64),
}

/// Checks both keys and, when neither blocks, counts the attempt as a
/// failure of each, in one immediate transaction.
pub(crate) fn begin_attempt(
    conn: &mut rusqlite::Connection,
    policy: &ThrottlePolicy,
    account_key: &str,
    source_key: &str,
    now: i64,
) -> Result<Option<Blocked>, UserError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;

    let oldest_relevant =
        now - policy.reset_after - policy.account.lockout_max.max(policy.source.lockout_max);
    tx.execute(
        "DELETE FROM login_throttle WHERE last_failure < ?1",
        [oldest_relevant],
    )?;

    let mut blocked = None;
    for (key, rule) in [(account_key, &policy.account), (source_key, &policy.source)] {
        let failures = current_failures(&tx, policy, key, now)?;
        let Some((failures, last_failure)) = failures else {
            continue;
        };

        let until = last_failure + rule.delay(failures);
        if until > now {
            let wait = until - now;
            let this = if failures >= rule.lockout_after {
                Blocked::Locked(wait)
            } else {
                Blocked::Throttled(wait)
            };
            blocked = Some(longer(blocked, this));
        }
    }
    if blocked.is_some() {
        return Ok(blocked);
    }

    for key in [account_key, source_key] {
        let failures = current_failures(&tx, policy, key, now)?.map_or(0, |(failures, _)| failures);
        tx.execute(
            "INSERT INTO login_throttle (key, failures, last_failure) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_failure = excluded.last_failure",
            params![key, failures + 1, now],
        )?;
    }
    tx.commit()?;
    Ok(None)
}

/// Undoes the failure counted by [`begin_attempt`] after a correct password:
/// the account starts over, and the source keeps its earlier failures.
pub(crate) fn record_success(
    conn: &rusqlite::Connection,
    account_key: &str,
    source_key: &str,
) -> Result<(), UserError> {
    conn.execute("DELETE FROM login_throttle WHERE key = ?1", [account_key])?;
    conn.execute(
        "UPDATE login_throttle SET failures = MAX(failures - 1, 0) WHERE key = ?1",
        [source_key],
    )?;
    Ok(())
}

/// Returns the throttle key of an account name.
pub(crate) fn account_key(name_key: &str) -> String {
    format!("account:{name_key}")
}

/// Returns the throttle key of a source address: the IPv4 address, or the
/// /64 prefix of an IPv6 address, because one host commonly uses a whole /64.
pub(crate) fn source_key(source: IpAddr) -> String {
    match source.to_canonical() {
        IpAddr::V4(v4) => format!("source:{v4}"),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("source:{}/64", std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// Reads a key's failure count, treating a count older than `reset_after` as zero.
fn current_failures(
    tx: &rusqlite::Transaction<'_>,
    policy: &ThrottlePolicy,
    key: &str,
    now: i64,
) -> Result<Option<(u32, i64)>, UserError> {
    let row: Option<(u32, i64)> = tx
        .query_row(
            "SELECT failures, last_failure FROM login_throttle WHERE key = ?1",
            [key],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;

    Ok(row.filter(|&(failures, last_failure)| {
        failures > 0 && now - last_failure < policy.reset_after
    }))
}

fn longer(current: Option<Blocked>, new: Blocked) -> Blocked {
    let wait = |blocked: Blocked| match blocked {
        Blocked::Throttled(wait) | Blocked::Locked(wait) => wait,
    };
    match current {
        Some(current) if wait(current) >= wait(new) => current,
        _ => new,
    }
}

/// Returns `base × 2^exponent`, saturating instead of overflowing.
fn doubled(base: i64, exponent: u32) -> i64 {
    if exponent >= 62 {
        return i64::MAX;
    }
    base.saturating_mul(1i64 << exponent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_delays_back_off_then_lock() {
        let rule = ThrottlePolicy::default().account;
        let delays: Vec<i64> = (0..=9).map(|failures| rule.delay(failures)).collect();

        assert_eq!(delays, [0, 1, 2, 4, 8, 900, 1800, 3600, 7200, 14_400]);
        assert_eq!(rule.delay(12), 86_400);
        assert_eq!(rule.delay(u32::MAX), 86_400);
    }

    #[test]
    fn source_back_off_is_capped_before_lockout() {
        let rule = ThrottlePolicy::default().source;

        assert_eq!(rule.delay(7), 60);
        assert_eq!(rule.delay(19), 60);
        assert_eq!(rule.delay(20), 900);
    }

    #[test]
    fn ipv6_sources_group_by_64_prefix() {
        let a = source_key("2001:db8:1:2::1".parse().unwrap());
        let b = source_key("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap());
        let c = source_key("2001:db8:1:3::1".parse().unwrap());

        assert_eq!(a, "source:2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn ipv4_mapped_source_matches_ipv4() {
        assert_eq!(
            source_key("::ffff:192.168.1.9".parse().unwrap()),
            source_key("192.168.1.9".parse().unwrap())
        );
    }
}
