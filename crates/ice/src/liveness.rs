//! Liveness of the selected pair and the timers of recovery: the part of the agent that
//! notices a path died seconds, not RFC 7675's 30 s, after it did.
//!
//! Every pair remembers when it was last heard (an authenticated check or answer, or data
//! from the remote address it vouches for). When the selected pair has been quiet for
//! [`AgentConfig::liveness_interval`] a consent check (RFC 7675 §5.1 allows more than the
//! minimum) goes out on it at once, and again each interval while it stays quiet. After
//! [`Liveness::quiet_limit`] the connection is disconnected (W3C
//! RTCIceConnectionState "disconnected") and the agent recovers: another live pair, else
//! the pairs checked again; after [`AgentConfig::recovery_timeout`] it asks for an ICE
//! restart (RFC 8445 §9). Consent expiry (30 s) still fails the connection.

use std::time::{Duration, Instant};

use crate::config::AgentConfig;

/// The longest timer floe arms (a year): larger configured durations (`Duration::MAX` to
/// turn liveness off) are clamped so that `Instant + Duration` cannot overflow.
const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);

fn interval(config: &AgentConfig) -> Duration {
    config.liveness_interval.min(LONGEST)
}

/// The liveness and recovery timers of one ICE session.
#[derive(Debug, Default)]
pub(crate) struct Liveness {
    /// The earliest time the next liveness probe may go out.
    next_probe: Option<Instant>,
    /// When recovery started; `None` while the selected pair is live.
    recovering_since: Option<Instant>,
    /// Recovery ran out of time and asked for an ICE restart.
    restart_asked: bool,
    /// A restart is wanted before the timeout ([`Liveness::unsignalled_address`]).
    restart_early: Option<Instant>,
    /// A local address appeared after nomination: the peer cannot learn it before an ICE
    /// restart (RFC 8838 §13), so recovery asks for one at once.
    unsignalled: bool,
}

impl Liveness {
    /// How long the selected pair may be quiet before the connection is disconnected:
    /// `disconnected_timeout`, but at least one liveness interval plus three smoothed RTTs,
    /// so that a probe on a slow path has time to be answered.
    pub(crate) fn quiet_limit(config: &AgentConfig, srtt: Option<Duration>) -> Duration {
        let srtt = srtt.unwrap_or(Duration::ZERO).min(LONGEST);
        config
            .disconnected_timeout
            .min(LONGEST)
            .max(interval(config) + srtt * 3)
    }

    /// Whether a pair last heard at `heard` has been quiet too long.
    pub(crate) fn is_quiet(
        now: Instant,
        heard: Instant,
        srtt: Option<Duration>,
        config: &AgentConfig,
    ) -> bool {
        now.saturating_duration_since(heard) >= Self::quiet_limit(config, srtt)
    }

    /// Whether a pair last heard at `heard` is live (heard within one liveness interval).
    pub(crate) fn is_live(now: Instant, heard: Option<Instant>, config: &AgentConfig) -> bool {
        heard.is_some_and(|h| now.saturating_duration_since(h) < interval(config))
    }

    /// When the next probe goes out for a pair last heard at `heard`.
    fn probe_at(&self, heard: Instant, config: &AgentConfig) -> Instant {
        let quiet = heard + interval(config);
        self.next_probe.map_or(quiet, |t| t.max(quiet))
    }

    /// Whether a liveness probe is due on a pair last heard at `heard`.
    pub(crate) fn probe_due(&self, now: Instant, heard: Instant, config: &AgentConfig) -> bool {
        now >= self.probe_at(heard, config)
    }

    /// A probe went out: the next one no sooner than an interval later.
    pub(crate) fn probed(&mut self, now: Instant, config: &AgentConfig) {
        self.next_probe = Some(now + interval(config));
    }

    /// Whether recovery is running.
    pub(crate) fn is_recovering(&self) -> bool {
        self.recovering_since.is_some()
    }

    /// Recovery starts at `now`.
    pub(crate) fn start_recovery(&mut self, now: Instant) {
        self.recovering_since = Some(now);
        self.restart_asked = false;
        self.restart_early = None;
        if self.unsignalled {
            self.restart_now();
        }
    }

    /// Recovery ended (the selected pair is heard again): how long it took.
    pub(crate) fn recovered(&mut self, now: Instant) -> Option<Duration> {
        self.restart_asked = false;
        self.restart_early = None;
        self.recovering_since
            .take()
            .map(|since| now.saturating_duration_since(since))
    }

    /// A new local address appeared after nomination, which only an ICE restart can
    /// signal (RFC 8838 §13: no trickle after nomination): recovery (now, or when it
    /// starts) asks for the restart at once rather than at the timeout.
    pub(crate) fn unsignalled_address(&mut self) {
        self.unsignalled = true;
        self.restart_now();
    }

    fn restart_now(&mut self) {
        if let Some(since) = self.recovering_since.filter(|_| !self.restart_asked) {
            self.restart_early = Some(since);
        }
    }

    /// Whether recovery ran out of time and should ask for a restart now (once).
    pub(crate) fn take_restart_due(&mut self, now: Instant, config: &AgentConfig) -> bool {
        let due = !self.restart_asked
            && (self.restart_early.take().is_some()
                || self
                    .recovering_since
                    .is_some_and(|since| now >= since + config.recovery_timeout.min(LONGEST)));
        self.restart_asked |= due;
        due
    }

    /// The next liveness deadline for a selected pair last heard at `heard`: the next
    /// probe, disconnection, or the restart deadline while recovering.
    pub(crate) fn poll_timeout(
        &self,
        heard: Instant,
        srtt: Option<Duration>,
        config: &AgentConfig,
    ) -> Instant {
        let probe = self.probe_at(heard, config);
        if let Some(at) = self.restart_early {
            return at;
        }
        match self.recovering_since {
            None => probe.min(heard + Self::quiet_limit(config, srtt)),
            Some(since) if !self.restart_asked => {
                probe.min(since + config.recovery_timeout.min(LONGEST))
            }
            Some(_) => probe,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_quiet_pair_is_probed_each_interval_then_disconnected() {
        let config = AgentConfig::default();
        let t0 = Instant::now();
        let mut l = Liveness::default();
        assert!(!l.probe_due(t0 + ms(499), t0, &config));
        assert!(l.probe_due(t0 + ms(500), t0, &config));
        assert_eq!(l.poll_timeout(t0, None, &config), t0 + ms(500));
        l.probed(t0 + ms(500), &config);
        assert!(!l.probe_due(t0 + ms(999), t0, &config), "one per interval");
        assert!(l.probe_due(t0 + ms(1000), t0, &config));
        // Heard again: the next probe waits for a quiet interval.
        assert!(!l.probe_due(t0 + ms(1000), t0 + ms(900), &config));
        assert!(!Liveness::is_quiet(t0 + ms(999), t0, None, &config));
        assert!(Liveness::is_quiet(t0 + ms(1000), t0, None, &config));
        assert!(Liveness::is_live(t0 + ms(499), Some(t0), &config));
        assert!(!Liveness::is_live(t0 + ms(500), Some(t0), &config));
        assert!(!Liveness::is_live(t0, None, &config));
    }

    #[test]
    fn a_slow_path_gets_three_round_trips_before_it_counts_as_quiet() {
        let config = AgentConfig::default();
        assert_eq!(Liveness::quiet_limit(&config, Some(ms(50))), ms(1000));
        assert_eq!(Liveness::quiet_limit(&config, Some(ms(400))), ms(1700));
    }

    #[test]
    fn a_new_address_asks_for_the_restart_at_once() {
        let config = AgentConfig::default();
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.unsignalled_address();
        assert!(!l.take_restart_due(t0, &config), "not recovering: nothing");
        // Recovery that starts later asks at once, for the address seen before.
        l.start_recovery(t0);
        assert_eq!(l.poll_timeout(t0, None, &config), t0);
        assert!(l.take_restart_due(t0 + ms(10), &config));
        assert!(!l.take_restart_due(t0 + config.recovery_timeout, &config));
        // And one found during a later recovery asks at once too.
        l.recovered(t0 + ms(20));
        l.start_recovery(t0 + ms(30));
        assert!(l.take_restart_due(t0 + ms(30), &config));
    }

    #[test]
    fn liveness_can_be_turned_off_without_overflow() {
        let config = AgentConfig {
            liveness_interval: Duration::MAX,
            disconnected_timeout: Duration::MAX,
            recovery_timeout: Duration::MAX,
            ..AgentConfig::default()
        };
        let t0 = Instant::now();
        let mut l = Liveness::default();
        assert!(!l.probe_due(t0 + ms(3_600_000), t0, &config));
        assert!(!Liveness::is_quiet(
            t0 + ms(3_600_000),
            t0,
            Some(ms(10)),
            &config
        ));
        l.start_recovery(t0);
        assert!(l.poll_timeout(t0, None, &config) > t0 + ms(3_600_000));
    }

    #[test]
    fn recovery_asks_for_a_restart_once_after_its_timeout() {
        let config = AgentConfig::default();
        let t0 = Instant::now();
        let mut l = Liveness::default();
        assert!(!l.is_recovering());
        l.start_recovery(t0);
        assert!(l.is_recovering());
        assert_eq!(
            l.poll_timeout(t0, None, &config),
            t0 + config.liveness_interval
        );
        l.probed(t0 + ms(500), &config);
        assert!(!l.take_restart_due(t0 + ms(4999), &config));
        assert!(l.take_restart_due(t0 + config.recovery_timeout, &config));
        assert!(!l.take_restart_due(t0 + ms(9000), &config), "once");
        l.unsignalled_address();
        assert!(!l.take_restart_due(t0 + ms(9000), &config), "still once");
        assert_eq!(l.recovered(t0 + ms(6000)), Some(ms(6000)));
        assert!(!l.is_recovering());
        assert_eq!(l.recovered(t0 + ms(7000)), None);
    }
}
