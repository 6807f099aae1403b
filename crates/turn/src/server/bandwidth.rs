//! Bandwidth caps per allocation and per user (coturn's `max-bps` and
//! `user-quota`-style bandwidth, floe's `--max-bps` and `--user-max-bps`): token buckets
//! over relayed payload bytes in both directions. A packet over the cap is dropped and
//! counted, never queued, so a cap costs no memory.
//!
//! A user's bucket is shared by all the user's allocations on every worker of the
//! process ([`SharedUserBuckets`]): each allocation holds the bucket itself, so the
//! packet path takes only that user's lock, never a global one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// The bucket of one user, held by each of the user's allocations.
pub(crate) type UserBucket = Arc<Mutex<Bucket>>;

/// Locks a user's bucket. A worker that panicked holding it ends the process (floe
/// serve's backstop); the bucket is consistent between statements.
pub(crate) fn lock(b: &UserBucket) -> MutexGuard<'_, Bucket> {
    b.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The users' buckets of one server process (`user_max_bps`), shared through an `Arc`
/// by every worker's [`Server`](super::Server)
/// ([`ServerConfig::user_buckets`](super::ServerConfig::user_buckets)). The map's lock
/// is taken when an allocation is made, never on the packet path; a bucket lives as
/// long as one of the user's allocations holds it.
#[derive(Debug, Default)]
pub struct SharedUserBuckets {
    inner: Mutex<HashMap<String, Weak<Mutex<Bucket>>>>,
}

impl SharedUserBuckets {
    /// No buckets.
    pub fn new() -> SharedUserBuckets {
        SharedUserBuckets::default()
    }

    /// The bucket of `user`, made full at `bits_per_second` if none is live.
    pub(crate) fn get(&self, user: &str, bits_per_second: u64, now: Instant) -> UserBucket {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = map.get(user).and_then(Weak::upgrade) {
            return b;
        }
        // Forget users without allocations now and then: the map stays within about
        // twice the users that have allocations.
        if map.len() >= 64 && map.len().is_power_of_two() {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let b = Arc::new(Mutex::new(Bucket::new(bits_per_second, now)));
        map.insert(user.to_owned(), Arc::downgrade(&b));
        b
    }

    /// Users with a live bucket.
    pub fn users(&self) -> usize {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.values().filter(|w| w.strong_count() > 0).count()
    }
}

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
    fn a_users_bucket_is_one_while_an_allocation_holds_it_and_the_map_stays_bounded() {
        let now = Instant::now();
        let shared = SharedUserBuckets::new();
        let a = shared.get("alice", 8_000, now);
        let b = shared.get("alice", 8_000, now);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(lock(&a).fits(now, 1000));
        lock(&a).take(1000);
        assert!(
            !lock(&b).fits(now, 1),
            "taken through one, gone for the other"
        );
        drop((a, b));
        assert_eq!(shared.users(), 0);
        assert!(
            lock(&shared.get("alice", 8_000, now)).fits(now, 1000),
            "a new bucket"
        );
        for i in 0..10_000 {
            drop(shared.get(&format!("u{i}"), 8_000, now));
        }
        let len = shared.inner.lock().unwrap().len();
        assert!(len <= 8_192, "{len} entries for no live user");
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
