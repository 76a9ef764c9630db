//! Leaky buckets: each event pours in, the bucket drains at a fixed rate,
//! and a bucket that overflows fires once and starts empty again.

/// A leaky bucket of `capacity` units draining `leak_per_sec` units a second.
#[derive(Debug, Clone, PartialEq)]
pub struct LeakyBucket {
    capacity: f64,
    leak_per_sec: f64,
    level: f64,
    last_ms: u64,
}

impl LeakyBucket {
    /// Creates an empty bucket.
    pub fn new(capacity: f64, leak_per_sec: f64) -> Self {
        LeakyBucket { capacity, leak_per_sec, level: 0.0, last_ms: 0 }
    }

    /// Pours `amount` in at `now_ms`. Returns true when that overflows the
    /// bucket, which then starts empty again.
    pub fn pour(&mut self, amount: f64, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.level = (self.level - elapsed * self.leak_per_sec).max(0.0) + amount;
        self.last_ms = now_ms;
        if self.level > self.capacity {
            self.level = 0.0;
            return true;
        }
        false
    }

    /// Returns the level at `now_ms`, after draining.
    pub fn level(&self, now_ms: u64) -> f64 {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        (self.level - elapsed * self.leak_per_sec).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflows_then_drains() {
        let mut bucket = LeakyBucket::new(3.0, 1.0);
        assert!(!bucket.pour(1.0, 0));
        assert!(!bucket.pour(1.0, 0));
        assert!(!bucket.pour(1.0, 0));
        assert!(bucket.pour(1.0, 0), "the fourth unit at once overflows");
        assert_eq!(bucket.level(0), 0.0, "it starts empty after firing");
        for second in 1..=10 {
            assert!(!bucket.pour(1.0, second * 1000), "one a second drains as fast as it fills");
        }
        assert!((bucket.level(10_000) - 1.0).abs() < 1e-9);
        assert_eq!(bucket.level(20_000), 0.0);
    }
}
