//! Password hashing with Argon2id.
//!
//! Passwords are the fallback to passkeys. They are stored as Argon2id PHC
//! strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) with a 16-byte random
//! salt and a 32-byte output, so each hash records its own parameters and
//! older hashes keep verifying after the defaults change.
//!
//! # Parameters
//!
//! [`PasswordParams::RECOMMENDED`] is m = 65,536 KiB (64 MiB), t = 3
//! passes, p = 4 lanes: the second recommended option of RFC 9106 §4, for
//! memory-constrained hosts. It is above the OWASP Password Storage Cheat
//! Sheet minimum for Argon2id (19 MiB, t = 2, p = 1). The argon2 crate
//! computes the lanes one after another, so one verification uses one core
//! and 64 MiB.
//!
//! At most [`DEFAULT_MAX_CONCURRENT`] hashes run at once (others wait), so
//! a flood of logins cannot make the process allocate more than 128 MiB for
//! Argon2. Hashing blocks the calling thread; async callers run it on a
//! blocking thread pool.

use std::sync::{Condvar, Mutex};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use zeroize::Zeroizing;

/// Minimum number of characters in a new password.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Most bytes a password may have. Argon2 accepts longer input, but no
/// person types more, and the bound keeps request bodies small.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Default number of Argon2 computations allowed at once.
pub const DEFAULT_MAX_CONCURRENT: usize = 2;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory per hash in KiB.
    pub memory_kib: u32,
    /// Number of passes over the memory.
    pub iterations: u32,
    /// Number of lanes.
    pub parallelism: u32,
}

impl PasswordParams {
    /// Production parameters (see the module documentation for the source).
    pub const RECOMMENDED: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 4,
    };

    /// Cheap parameters for tests only: 64 KiB, one pass, one lane.
    pub const INSECURE_FOR_TESTS: Self = Self {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
}

/// Hashes and verifies passwords with fixed Argon2id parameters.
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    params: PasswordParams,
    /// Hash of a random password, verified against when the user is
    /// unknown so that a login takes as long as for a real user.
    dummy_hash: String,
    permits: Permits,
}

impl PasswordHasher {
    /// Creates a hasher with `params`, allowing `max_concurrent` hashes at once.
    ///
    /// # Errors
    ///
    /// Returns [`PasswordError::Params`] for parameters argon2 rejects, and
    /// [`PasswordError::Random`] if the dummy password cannot be generated.
    pub fn new(params: PasswordParams, max_concurrent: usize) -> Result<Self, PasswordError> {
        let argon2_params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(32),
        )
        .map_err(PasswordError::Params)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params);

        let mut dummy_password = Zeroizing::new([0u8; 32]);
        getrandom::fill(dummy_password.as_mut_slice()).map_err(PasswordError::Random)?;
        let dummy_hash = argon2
            .hash_password(dummy_password.as_slice())
            .map_err(PasswordError::Hash)?
            .to_string();

        Ok(Self {
            argon2,
            params,
            dummy_hash,
            permits: Permits::new(max_concurrent.max(1)),
        })
    }

    /// Creates a hasher with [`PasswordParams::RECOMMENDED`].
    ///
    /// # Errors
    ///
    /// As [`PasswordHasher::new`].
    pub fn recommended() -> Result<Self, PasswordError> {
        Self::new(PasswordParams::RECOMMENDED, DEFAULT_MAX_CONCURRENT)
    }

    /// Checks a new password against the length rules and hashes it.
    ///
    /// # Errors
    ///
    /// Returns [`PasswordError::TooShort`] or [`PasswordError::TooLong`], or
    /// [`PasswordError::Hash`] if hashing fails.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let chars = password.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort {
                chars,
                min: MIN_PASSWORD_CHARS,
            });
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong {
                bytes: password.len(),
                max: MAX_PASSWORD_BYTES,
            });
        }

        let _permit = self.permits.acquire();
        let hash = self
            .argon2
            .hash_password(password.as_bytes())
            .map_err(PasswordError::Hash)?;
        Ok(hash.to_string())
    }

    /// Verifies `password` against a stored PHC string, with the parameters
    /// recorded in it. The output comparison is constant-time (argon2 crate).
    ///
    /// # Errors
    ///
    /// Returns [`PasswordError::StoredHash`] when `stored` is not an Argon2
    /// PHC string; a wrong password is `Ok(false)`.
    pub fn verify(&self, password: &str, stored: &str) -> Result<bool, PasswordError> {
        let stored = PasswordHash::new(stored).map_err(PasswordError::StoredHash)?;
        if password.len() > MAX_PASSWORD_BYTES {
            // Hash anyway so the time does not tell the length check apart.
            self.verify_dummy(password);
            return Ok(false);
        }

        let _permit = self.permits.acquire();
        match self.argon2.verify_password(password.as_bytes(), &stored) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(other) => Err(PasswordError::Hash(other)),
        }
    }

    /// Verifies `password` against a hash of a random password, which never
    /// matches, with the same cost as a real verification.
    pub fn verify_dummy(&self, password: &str) {
        let truncated = &password.as_bytes()[..password.len().min(MAX_PASSWORD_BYTES)];
        let stored = PasswordHash::new(&self.dummy_hash)
            .expect("the dummy hash is a PHC string made by argon2");

        let _permit = self.permits.acquire();
        let matched = self.argon2.verify_password(truncated, &stored).is_ok();
        debug_assert!(!matched, "a random 32-byte password was guessed");
    }

    /// Returns whether `stored` was made with other parameters than this
    /// hasher's, so a successful login should replace it.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(stored) = PasswordHash::new(stored) else {
            return true;
        };
        let Ok(params) = Params::try_from(&stored) else {
            return true;
        };

        stored.algorithm.as_str() != "argon2id"
            || params.m_cost() != self.params.memory_kib
            || params.t_cost() != self.params.iterations
            || params.p_cost() != self.params.parallelism
    }

    /// Returns the parameters new hashes use.
    pub fn params(&self) -> PasswordParams {
        self.params
    }
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// Error from hashing or verifying a password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The new password is shorter than the minimum.
    #[error("password too short: {chars} characters, at least {min} required")]
    TooShort {
        /// Characters in the password.
        chars: usize,
        /// Minimum.
        min: usize,
    },

    /// The new password is longer than the maximum.
    #[error("password too long: {bytes} bytes, at most {max} allowed")]
    TooLong {
        /// Bytes in the password.
        bytes: usize,
        /// Maximum.
        max: usize,
    },

    /// argon2 rejected the cost parameters.
    #[error("invalid Argon2id parameters")]
    Params(#[source] argon2::Error),

    /// The stored value is not a PHC string.
    #[error("invalid stored password hash: not a PHC string")]
    StoredHash(#[source] argon2::password_hash::phc::Error),

    /// Hashing failed.
    #[error("failed to hash password")]
    Hash(#[source] argon2::password_hash::Error),

    /// The operating system's random number generator failed.
    #[error("failed to generate random bytes for the dummy password")]
    Random(#[source] getrandom::Error),
}

/// A counting semaphore that bounds concurrent Argon2 computations.
struct Permits {
    available: Mutex<usize>,
    released: Condvar,
}

struct Permit<'a>(&'a Permits);

impl Permits {
    fn new(count: usize) -> Self {
        Self {
            available: Mutex::new(count),
            released: Condvar::new(),
        }
    }

    fn acquire(&self) -> Permit<'_> {
        let mut available = self
            .available
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while *available == 0 {
            available = self
                .released
                .wait(available)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        *available -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut available = self
            .0
            .available
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *available += 1;
        self.0.released.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(PasswordParams::INSECURE_FOR_TESTS, 2).unwrap()
    }

    #[test]
    fn hash_verifies_only_the_same_password() {
        let hasher = hasher();
        let stored = hasher.hash("correct horse battery").unwrap();

        assert!(
            stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{stored}"
        );
        assert!(hasher.verify("correct horse battery", &stored).unwrap());
        assert!(!hasher.verify("correct horse batterY", &stored).unwrap());
        assert!(!hasher.verify("", &stored).unwrap());
    }

    #[test]
    fn same_password_gets_different_salts() {
        let hasher = hasher();
        assert_ne!(
            hasher.hash("correct horse battery").unwrap(),
            hasher.hash("correct horse battery").unwrap()
        );
    }

    #[test]
    fn recommended_params_meet_owasp_minimum() {
        let params = PasswordParams::RECOMMENDED;
        assert!(params.memory_kib >= 19 * 1024);
        assert!(params.iterations >= 2);
        assert!(params.parallelism >= 1);
    }

    #[test]
    fn short_and_long_passwords_rejected() {
        let hasher = hasher();

        let err = hasher.hash("elevenchars").unwrap_err();
        assert!(
            matches!(err, PasswordError::TooShort { chars: 11, min: 12 }),
            "{err}"
        );

        let err = hasher
            .hash(&"a".repeat(MAX_PASSWORD_BYTES + 1))
            .unwrap_err();
        assert!(matches!(err, PasswordError::TooLong { .. }), "{err}");
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // 12 characters, 24 bytes.
        hasher().hash("éééééééééééé").unwrap();
    }

    #[test]
    fn old_params_verify_and_need_rehash() {
        let old = PasswordHasher::new(
            PasswordParams {
                memory_kib: 128,
                iterations: 2,
                parallelism: 1,
            },
            1,
        )
        .unwrap();
        let stored = old.hash("correct horse battery").unwrap();
        let current = hasher();

        assert!(current.verify("correct horse battery", &stored).unwrap());
        assert!(current.needs_rehash(&stored));
        assert!(!old.needs_rehash(&stored));
    }

    #[test]
    fn malformed_stored_hash_is_an_error() {
        let err = hasher()
            .verify("correct horse battery", "plaintext")
            .unwrap_err();
        assert!(matches!(err, PasswordError::StoredHash(_)), "{err}");
    }

    #[test]
    fn dummy_verification_never_matches() {
        let hasher = hasher();
        hasher.verify_dummy("");
        hasher.verify_dummy("correct horse battery");
    }

    #[test]
    fn concurrent_hashes_are_bounded() {
        let permits = Arc::new(Permits::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));

        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (permits, running, peak) = (permits.clone(), running.clone(), peak.clone());
                std::thread::spawn(move || {
                    let _permit = permits.acquire();
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }

        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
