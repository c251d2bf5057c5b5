//! Per-connection rate limiting.

use std::time::{Duration, Instant};

/// A token bucket that starts full, holds `capacity` tokens and refills at
/// `per_second` tokens a second. Every client frame takes one token.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub fn new(per_second: u32, now: Instant) -> TokenBucket {
        let rate = f64::from(per_second.max(1));
        TokenBucket { capacity: rate, per_second: rate, tokens: rate, updated: now }
    }

    /// Takes one token, or says how long until the next one (at least 1 ms).
    ///
    /// # Errors
    /// The wait until a token is available, in milliseconds.
    pub fn take(&mut self, now: Instant) -> Result<(), u64> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait_secs = (1.0 - self.tokens) / self.per_second;
            Err(((wait_secs * 1000.0).ceil() as u64).max(1))
        }
    }
}

/// Counts rate-limited frames in a fixed window; too many means the client
/// ignores `retry_after_ms` and is closed with 1008.
#[derive(Debug, Clone)]
pub struct AbuseMeter {
    max_rejected: u32,
    window: Duration,
    window_start: Instant,
    rejected: u32,
}

impl AbuseMeter {
    pub fn new(max_rejected: u32, window: Duration, now: Instant) -> AbuseMeter {
        AbuseMeter { max_rejected, window, window_start: now, rejected: 0 }
    }

    /// Records one rejected frame; true when the client is over the limit.
    pub fn record(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.window_start) >= self.window {
            self.window_start = now;
            self.rejected = 0;
        }
        self.rejected += 1;
        self.rejected > self.max_rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_starts_full_and_refills() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(4, t0);
        for _ in 0..4 {
            assert!(bucket.take(t0).is_ok());
        }
        let wait = bucket.take(t0).unwrap_err();
        assert_eq!(wait, 250);
        assert!(bucket.take(t0 + Duration::from_millis(249)).is_err());
        assert!(bucket.take(t0 + Duration::from_millis(500)).is_ok());
        // Never more than the capacity after a long pause.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..4 {
            assert!(bucket.take(later).is_ok());
        }
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn abuse_meter_counts_per_window() {
        let t0 = Instant::now();
        let mut meter = AbuseMeter::new(2, Duration::from_secs(1), t0);
        assert!(!meter.record(t0));
        assert!(!meter.record(t0));
        assert!(meter.record(t0));
        let t1 = t0 + Duration::from_secs(1);
        assert!(!meter.record(t1), "a new window starts afresh");
    }
}
