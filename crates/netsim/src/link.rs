//! Links: one-way delay, jitter, random and bursty loss, rate limit with a bounded queue.
//!
//! Every host interface and every router's external side is attached to its network by a
//! [`Link`]. A link has two independent [`LinkConfig`]s, one per [`Direction`], which a test
//! can change at any time during a run to make a path worse or better.
//!
//! ```
//! use std::time::Duration;
//! use floe_netsim::{LinkConfig, LinkId, LossModel, nodes::Peer, Simulator};
//!
//! let mut sim = Simulator::new(1);
//! let internet = sim.internet();
//! // A mobile uplink: 40 ms +- 10 ms, 1 % loss, 2 Mbit/s with a 32 KiB queue.
//! let mobile = LinkConfig::with_delay(Duration::from_millis(40))
//!     .jitter(Duration::from_millis(10))
//!     .random_loss(0.01)
//!     .rate_limit(2_000_000, 32 * 1024);
//! let phone = sim.add_host_with_link(internet, "198.51.100.7".parse().unwrap(), mobile, Peer::new());
//! // Later, the uplink degrades into bursty loss (mean burst of 5 packets).
//! sim.link_mut(LinkId::Interface(phone, 0)).up.config.loss = Some(LossModel::GilbertElliott {
//!     p_good_to_bad: 0.01,
//!     p_bad_to_good: 0.2,
//!     loss_in_good: 0.0,
//!     loss_in_bad: 0.9,
//! });
//! ```

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::trace::DropReason;

/// The two directions of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the host (or router) into the network it is attached to.
    Up,
    /// From the network to the host (or router).
    Down,
}

/// How packets are lost on a link direction.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum LossModel {
    /// Each packet is lost independently with probability `p` (0.0 ..= 1.0).
    Random(f64),
    /// Bursty loss, the Gilbert-Elliott two-state Markov model. Before each packet the
    /// state moves Good -> Bad with probability `p_good_to_bad` and Bad -> Good with
    /// `p_bad_to_good`; the packet is then lost with `loss_in_good` or `loss_in_bad`.
    /// The mean burst length is `1 / p_bad_to_good` packets.
    GilbertElliott {
        /// Probability of entering the bad state, per packet.
        p_good_to_bad: f64,
        /// Probability of leaving the bad state, per packet.
        p_bad_to_good: f64,
        /// Loss probability while in the good state.
        loss_in_good: f64,
        /// Loss probability while in the bad state.
        loss_in_bad: f64,
    },
}

impl LossModel {
    /// The long-run fraction of packets this model loses.
    pub fn mean_loss(&self) -> f64 {
        match *self {
            LossModel::Random(p) => p,
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_in_good,
                loss_in_bad,
            } => {
                let total = p_good_to_bad + p_bad_to_good;
                if total == 0.0 {
                    return loss_in_good;
                }
                let bad = p_good_to_bad / total;
                bad * loss_in_bad + (1.0 - bad) * loss_in_good
            }
        }
    }
}

/// Settings of one direction of a link.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LinkConfig {
    /// Fixed one-way propagation delay. Default 1 ms.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per packet (may reorder packets).
    /// Default zero.
    pub jitter: Duration,
    /// Loss. Default none.
    pub loss: Option<LossModel>,
    /// Serialisation rate in bits per second; `None` (the default) is unlimited.
    pub rate_bps: Option<u64>,
    /// With a rate limit: the most bytes that may wait in the queue; a packet that would
    /// exceed it is dropped (tail drop). Default 64 KiB.
    pub queue_bytes: usize,
    /// Whether the link carries packets at all; `false` models a cut cable. Default `true`.
    pub up: bool,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            delay: Duration::from_millis(1),
            jitter: Duration::ZERO,
            loss: None,
            rate_bps: None,
            queue_bytes: 64 * 1024,
            up: true,
        }
    }
}

impl LinkConfig {
    /// A link direction with the given one-way delay and otherwise default settings.
    pub fn with_delay(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    /// Sets the jitter.
    #[must_use]
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets independent random loss with probability `p`.
    #[must_use]
    pub fn random_loss(mut self, p: f64) -> Self {
        self.loss = Some(LossModel::Random(p));
        self
    }

    /// Sets a loss model.
    #[must_use]
    pub fn loss(mut self, loss: LossModel) -> Self {
        self.loss = Some(loss);
        self
    }

    /// Sets a rate limit (bits per second) and a queue bound (bytes).
    #[must_use]
    pub fn rate_limit(mut self, rate_bps: u64, queue_bytes: usize) -> Self {
        self.rate_bps = Some(rate_bps);
        self.queue_bytes = queue_bytes;
        self
    }
}

/// Counters of one link direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Packets offered to the link.
    pub offered: u64,
    /// Packets that made it onto the wire.
    pub sent: u64,
    /// Packets lost by the loss model.
    pub lost: u64,
    /// Packets dropped because the queue was full.
    pub queue_drops: u64,
    /// Packets dropped because the link was down.
    pub down_drops: u64,
    /// Bytes that made it onto the wire.
    pub bytes: u64,
}

/// One direction of a link: its settings and its state.
#[derive(Debug, Clone, Default)]
pub struct LinkDirection {
    /// Current settings; change them at any time.
    pub config: LinkConfig,
    /// Counters.
    pub stats: LinkStats,
    busy_until: Duration,
    in_bad_state: bool,
}

/// A bidirectional link between a host interface (or a router) and its network.
#[derive(Debug, Clone, Default)]
pub struct Link {
    /// Towards the network.
    pub up: LinkDirection,
    /// From the network.
    pub down: LinkDirection,
}

impl Link {
    /// A link with the same settings in both directions.
    pub fn symmetric(config: LinkConfig) -> Self {
        Self {
            up: LinkDirection::new(config.clone()),
            down: LinkDirection::new(config),
        }
    }

    /// The given direction.
    pub fn direction(&self, direction: Direction) -> &LinkDirection {
        match direction {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    /// The given direction, mutably.
    pub fn direction_mut(&mut self, direction: Direction) -> &mut LinkDirection {
        match direction {
            Direction::Up => &mut self.up,
            Direction::Down => &mut self.down,
        }
    }
}

impl LinkDirection {
    /// A link direction with these settings.
    pub fn new(config: LinkConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Offers a packet of `len` bytes at `now`. Returns the time it arrives at the far end,
    /// or why it was dropped. `reliable` packets (stream segments) are never lost: a loss
    /// costs them a retransmission timeout instead, like TCP.
    pub(crate) fn transmit(
        &mut self,
        now: Duration,
        len: usize,
        reliable: bool,
        rng: &mut ChaCha8Rng,
    ) -> Result<Duration, DropReason> {
        self.stats.offered += 1;
        if !self.config.up {
            self.stats.down_drops += 1;
            return Err(DropReason::LinkDown);
        }
        let mut extra = Duration::ZERO;
        // Draw the loss decision before queueing so a rate-limited link spends no capacity
        // on a packet that is lost upstream of it.
        while self.is_lost(rng) {
            self.stats.lost += 1;
            if !reliable {
                return Err(DropReason::Loss);
            }
            // A retransmission after an RTO of 200 ms plus the round trip, as TCP would.
            extra += Duration::from_millis(200) + self.config.delay * 2;
        }
        let mut depart = now + extra;
        if let Some(rate) = self.config.rate_bps.filter(|r| *r > 0) {
            let start = self.busy_until.max(depart);
            let backlog = start.saturating_sub(depart);
            let queued_bytes = backlog.as_nanos() * u128::from(rate) / 8 / 1_000_000_000;
            if !reliable && queued_bytes + len as u128 > self.config.queue_bytes as u128 {
                self.stats.queue_drops += 1;
                return Err(DropReason::QueueFull);
            }
            let serialise = Duration::from_nanos(
                u64::try_from(len as u128 * 8 * 1_000_000_000 / u128::from(rate))
                    .unwrap_or(u64::MAX),
            );
            depart = start + serialise;
            self.busy_until = depart;
        }
        let jitter = if self.config.jitter.is_zero() {
            Duration::ZERO
        } else {
            let max = u64::try_from(self.config.jitter.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(rng.gen_range(0..=max))
        };
        self.stats.sent += 1;
        self.stats.bytes += len as u64;
        Ok(depart + self.config.delay + jitter)
    }

    fn is_lost(&mut self, rng: &mut ChaCha8Rng) -> bool {
        match self.config.loss {
            None => false,
            Some(LossModel::Random(p)) => p > 0.0 && rng.gen_bool(p.clamp(0.0, 1.0)),
            Some(LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_in_good,
                loss_in_bad,
            }) => {
                let flip = if self.in_bad_state {
                    p_bad_to_good
                } else {
                    p_good_to_bad
                };
                if rng.gen_bool(flip.clamp(0.0, 1.0)) {
                    self.in_bad_state = !self.in_bad_state;
                }
                let p = if self.in_bad_state {
                    loss_in_bad
                } else {
                    loss_in_good
                };
                rng.gen_bool(p.clamp(0.0, 1.0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn rate_limit_spaces_packets_by_serialisation_time() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut dir = LinkDirection::new(
            LinkConfig::with_delay(Duration::from_millis(10)).rate_limit(8_000_000, 10_000),
        );
        // 1000 bytes at 8 Mbit/s take 1 ms on the wire.
        let a = dir.transmit(Duration::ZERO, 1000, false, &mut rng).unwrap();
        let b = dir.transmit(Duration::ZERO, 1000, false, &mut rng).unwrap();
        assert_eq!(a, Duration::from_millis(11));
        assert_eq!(b, Duration::from_millis(12));
    }

    #[test]
    fn full_queue_drops_the_tail() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut dir = LinkDirection::new(LinkConfig::default().rate_limit(8_000, 3_000));
        let verdicts: Vec<_> = (0..5)
            .map(|_| dir.transmit(Duration::ZERO, 1000, false, &mut rng).is_ok())
            .collect();
        assert_eq!(verdicts, [true, true, true, false, false]);
        assert_eq!(dir.stats.queue_drops, 2);
    }

    #[test]
    fn reliable_packets_are_delayed_instead_of_lost() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut dir = LinkDirection::new(LinkConfig::default().random_loss(0.5));
        let mut delayed = 0;
        for _ in 0..100 {
            let at = dir.transmit(Duration::ZERO, 100, true, &mut rng).unwrap();
            if at > Duration::from_millis(1) {
                delayed += 1;
            }
        }
        assert!(delayed > 20, "delayed {delayed}");
    }

    #[test]
    fn gilbert_elliott_mean_loss_is_the_stationary_mix() {
        let model = LossModel::GilbertElliott {
            p_good_to_bad: 0.01,
            p_bad_to_good: 0.09,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        };
        assert!((model.mean_loss() - 0.1).abs() < 1e-9);
    }
}
