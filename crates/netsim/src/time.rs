//! Virtual time.
//!
//! The simulator keeps time as a [`Duration`] since the start of the run, and hands nodes a
//! [`std::time::Instant`] computed as `base + elapsed`, where `base` is the one real clock
//! reading taken when the [`Simulator`](crate::Simulator) is created. Nothing else reads the
//! clock, and nothing sleeps: a run of minutes of simulated time takes milliseconds.
//!
//! Everything the simulator records (traces, pcap timestamps, statistics) uses the elapsed
//! [`Duration`], so two runs with the same seed compare equal even though their `base`
//! instants differ.

use std::time::{Duration, Instant};

/// Converts between the simulator's elapsed [`Duration`] and the [`Instant`]s nodes see.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    now: Duration,
}

impl Clock {
    /// A clock at elapsed zero, anchored at `base`.
    pub fn new(base: Instant) -> Self {
        Self {
            base,
            now: Duration::ZERO,
        }
    }

    /// The instant that corresponds to elapsed zero.
    pub fn base(&self) -> Instant {
        self.base
    }

    /// Time elapsed since the start of the run.
    pub fn elapsed(&self) -> Duration {
        self.now
    }

    /// The current virtual time as an [`Instant`].
    pub fn now(&self) -> Instant {
        self.base + self.now
    }

    /// The [`Instant`] at `elapsed` into the run.
    pub fn instant(&self, elapsed: Duration) -> Instant {
        self.base + elapsed
    }

    /// The elapsed offset of `instant`; instants before the start map to zero.
    pub fn offset(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.base)
    }

    pub(crate) fn advance_to(&mut self, elapsed: Duration) {
        debug_assert!(elapsed >= self.now, "virtual time never goes backwards");
        self.now = elapsed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_through_offsets() {
        let clock = Clock::new(Instant::now());
        let t = clock.instant(Duration::from_millis(1500));
        assert_eq!(clock.offset(t), Duration::from_millis(1500));
        assert_eq!(clock.offset(clock.base()), Duration::ZERO);
    }
}
