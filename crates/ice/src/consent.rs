//! Consent freshness (RFC 7675): once a pair is selected, a check goes out on it every
//! ~5 s (randomized, §5.1), and consent to send expires 30 s after the last answer (§5.1),
//! which fails the connection. A lite agent sends no checks: the peer's checks are its
//! consent (§4). The request itself is the check request ([`crate::binding::request`]).

use std::time::{Duration, Instant};

use floe_stun::transaction::TransactionConfig;
use rand::Rng;

use crate::config::AgentConfig;

/// The consent timers of the selected pair (an ICE restart starts fresh ones).
#[derive(Debug, Default)]
pub(crate) struct Consent {
    /// When the next consent check goes out; `None` until a pair works, and after expiry.
    next_at: Option<Instant>,
    /// The latest proof of consent on the selected pair.
    last: Option<Instant>,
}

impl Consent {
    /// RFC 7675 §5.1: the interval, randomized between 0.8 and 1.2 times.
    fn delay<R: Rng>(config: &AgentConfig, rng: &mut R) -> Duration {
        config.consent_interval.mul_f64(rng.gen_range(0.8..1.2))
    }

    /// A pair works: consent checks start after one interval (unless they run already).
    pub(crate) fn start(&mut self, now: Instant, config: &AgentConfig) {
        self.next_at.get_or_insert(now + config.consent_interval);
    }

    /// The controlling agent nominated: consent checks start after a randomized interval
    /// (unless they run already).
    pub(crate) fn start_randomized<R: Rng>(
        &mut self,
        now: Instant,
        config: &AgentConfig,
        rng: &mut R,
    ) {
        if self.next_at.is_none() {
            self.next_at = Some(now + Self::delay(config, rng));
        }
    }

    /// Whether the timers run.
    pub(crate) fn is_running(&self) -> bool {
        self.next_at.is_some()
    }

    /// Consent was shown at `at` (an authenticated answer, or the pair's latest response
    /// when it becomes the selected one: consent is per pair, §5.1).
    pub(crate) fn refreshed(&mut self, at: Instant) {
        self.last = Some(at);
    }

    /// Whether a consent check is due.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.next_at.is_some_and(|at| now >= at)
    }

    /// A consent check went out (or, for a lite agent, would have): the next one after a
    /// randomized interval.
    pub(crate) fn rearm<R: Rng>(&mut self, now: Instant, config: &AgentConfig, rng: &mut R) {
        self.next_at = Some(now + Self::delay(config, rng));
    }

    /// RFC 7675 §5.1: whether consent expired (no answer for `consent_timeout`).
    pub(crate) fn is_expired(&self, now: Instant, config: &AgentConfig) -> bool {
        self.last
            .is_some_and(|t| now.saturating_duration_since(t) >= config.consent_timeout)
    }

    /// When consent expires (or expired), if consent was ever shown.
    pub(crate) fn expires_at(&self, config: &AgentConfig) -> Option<Instant> {
        self.last.map(|t| t + config.consent_timeout)
    }

    /// Consent expired: no more consent checks.
    pub(crate) fn stop(&mut self) {
        self.next_at = None;
    }

    /// The next consent check, and (unless the connection already `failed`) when consent
    /// expires.
    pub(crate) fn poll_timeout(&self, failed: bool, config: &AgentConfig) -> Option<Instant> {
        let deadline = self
            .last
            .filter(|_| !failed)
            .map(|t| t + config.consent_timeout);
        self.next_at.into_iter().chain(deadline).min()
    }

    /// Consent checks are retransmitted less than connectivity checks: three
    /// transmissions, the last waiting two RTOs (RFC 7675 §5.1 leaves the schedule open;
    /// a lost consent check must not fail anything by itself).
    pub(crate) fn transaction_config() -> TransactionConfig {
        let mut tc = TransactionConfig::default();
        tc.rc = 3;
        tc.rm = 2;
        tc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn consent_checks_are_randomized_and_consent_expires_after_the_timeout() {
        let config = AgentConfig::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let now = Instant::now();
        let mut consent = Consent::default();
        assert_eq!(consent.poll_timeout(false, &config), None);
        consent.start(now, &config);
        consent.refreshed(now);
        assert!(consent.is_running() && !consent.is_due(now));
        let at = now + config.consent_interval;
        assert!(consent.is_due(at));
        for _ in 0..100 {
            consent.rearm(at, &config, &mut rng);
            let next = consent.poll_timeout(false, &config).unwrap();
            let gap = next - at;
            assert!(gap >= config.consent_interval.mul_f64(0.8));
            assert!(gap <= config.consent_interval.mul_f64(1.2));
        }
        assert!(!consent.is_expired(now + config.consent_timeout / 2, &config));
        assert!(consent.is_expired(now + config.consent_timeout, &config));
        consent.stop();
        assert!(!consent.is_running());
    }
}
