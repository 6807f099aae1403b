//! Bandwidth caps per allocation and per user (coturn's `max-bps` and
//! `user-quota`-style bandwidth, floe's `--max-bps` and `--user-max-bps`): token buckets
//! over relayed payload bytes in both directions. A packet over the cap is dropped and
//! counted, never queued, so a cap costs no memory.

use std::time::{Duration, Instant};

/// A token bucket of `rate` bytes per second that holds at most one second's worth (the
/// burst a cap allows).
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    /// Bytes per second.
    rate: u64,
    /// Bytes that may pass now.
    tokens: u64,
    /// When `tokens` was last topped up.
    last: Instant,
}

impl Bucket {
    /// A full bucket for `bits_per_second`.
    pub(crate) fn new(bits_per_second: u64, now: Instant) -> Bucket {
        let rate = (bits_per_second / 8).max(1);
        Bucket {
            rate,
            tokens: rate,
            last: now,
        }
    }

    /// Tops the bucket up for the time since the last call.
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        if elapsed.is_zero() {
            return;
        }
        // Whole bytes only; the remainder of the time is kept for the next call.
        let earned = u128::from(self.rate) * elapsed.as_nanos() / 1_000_000_000;
        let earned = u64::try_from(earned).unwrap_or(u64::MAX);
        if earned == 0 {
            return;
        }
        self.tokens = self.tokens.saturating_add(earned).min(self.rate);
        let used = Duration::from_nanos(
            u64::try_from(u128::from(earned) * 1_000_000_000 / u128::from(self.rate))
                .unwrap_or(u64::MAX),
        );
        self.last = if self.tokens == self.rate {
            now
        } else {
            self.last + used
        };
    }

    /// Whether `bytes` fit now (after a top-up), without taking them.
    pub(crate) fn fits(&mut self, now: Instant, bytes: usize) -> bool {
        self.refill(now);
        self.tokens >= bytes as u64
    }

    /// Takes `bytes`; call after [`Bucket::fits`] said yes.
    pub(crate) fn take(&mut self, bytes: usize) {
        self.tokens = self.tokens.saturating_sub(bytes as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_passes_its_rate_and_one_second_of_burst() {
        let start = Instant::now();
        // 80 kbit/s = 10,000 bytes per second.
        let mut b = Bucket::new(80_000, start);
        let mut passed = 0usize;
        let mut now = start;
        // 1000-byte packets every millisecond for 3 s: 3 MB offered.
        for _ in 0..3000 {
            if b.fits(now, 1000) {
                b.take(1000);
                passed += 1000;
            }
            now += Duration::from_millis(1);
        }
        // One second of burst plus 3 s at the rate, within one packet.
        assert!((39_000..=40_000).contains(&passed), "{passed}");
    }

    #[test]
    fn an_idle_bucket_holds_no_more_than_one_second() {
        let start = Instant::now();
        let mut b = Bucket::new(8_000, start);
        let later = start + Duration::from_secs(3600);
        assert!(b.fits(later, 1000));
        assert!(!b.fits(later, 1001));
    }
}
