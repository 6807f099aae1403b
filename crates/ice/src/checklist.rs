//! Candidate pairs and their states (RFC 8445 §6.1.2).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_stun::TransactionId;

use crate::candidate::CandidateKind;

/// A pair's state (RFC 8445 §6.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairState {
    /// Not checked yet, waiting for its foundation to unfreeze.
    Frozen,
    /// Ready to be checked.
    Waiting,
    /// A check is in flight.
    InProgress,
    /// A check succeeded: the pair is valid.
    Succeeded,
    /// Checks failed.
    Failed,
}

/// Per-pair counters, in the spirit of RTCIceCandidatePairStats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PairStats {
    /// Check requests sent (including retransmissions).
    pub requests_sent: u64,
    /// Check requests received.
    pub requests_received: u64,
    /// Success responses received.
    pub responses_received: u64,
    /// Success responses sent.
    pub responses_sent: u64,
    /// Application bytes sent.
    pub bytes_sent: u64,
    /// Application bytes received.
    pub bytes_received: u64,
    /// Latest RTT sample.
    pub current_rtt: Option<Duration>,
    /// Smoothed RTT.
    pub smoothed_rtt: Option<Duration>,
}

/// A candidate pair.
#[derive(Debug)]
pub(crate) struct Pair {
    /// Index of the local candidate (its base sends).
    pub(crate) local: usize,
    /// Index of the remote candidate.
    pub(crate) remote: usize,
    pub(crate) base: SocketAddr,
    pub(crate) remote_addr: SocketAddr,
    pub(crate) local_kind: CandidateKind,
    pub(crate) remote_kind: CandidateKind,
    pub(crate) foundation: (String, String),
    pub(crate) priority: u64,
    pub(crate) state: PairState,
    /// The check in flight and whether it carries USE-CANDIDATE.
    pub(crate) check: Option<(TransactionId, bool)>,
    /// The controlled side got USE-CANDIDATE for it (RFC 8445 §7.3.1.5).
    pub(crate) nominated: bool,
    /// USE-CANDIDATE arrived before the pair succeeded: nominate once it does.
    pub(crate) nominate_on_success: bool,
    /// A check request arrived on it (the other direction works).
    pub(crate) received_request: bool,
    pub(crate) last_response: Option<Instant>,
    /// When its first check went out, and that check's retransmission timeout.
    pub(crate) first_check: Option<(Instant, Duration)>,
    pub(crate) stats: PairStats,
}

impl Pair {
    /// Whether neither side is relayed.
    pub(crate) fn is_direct(&self) -> bool {
        !self.local_kind.is_relayed() && !self.remote_kind.is_relayed()
    }

    /// Folds an RTT sample into the smoothed RTT (RFC 6298 style, α = 1/8).
    pub(crate) fn sample_rtt(&mut self, rtt: Duration) {
        self.stats.current_rtt = Some(rtt);
        self.stats.smoothed_rtt = Some(match self.stats.smoothed_rtt {
            None => rtt,
            Some(s) => (s * 7 + rtt) / 8,
        });
    }
}

/// RFC 8445 §6.1.2.3: `2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0)`, G the controlling
/// agent's candidate priority.
pub(crate) fn pair_priority(controlling: u32, controlled: u32) -> u64 {
    // Candidate priorities are at most 2^31 - 1 (RFC 8445 §5.1.2.1); a hostile PRIORITY
    // attribute above that is clamped so the formula cannot overflow.
    const MAX: u32 = (1 << 31) - 1;
    let (g, d) = (
        u64::from(controlling.min(MAX)),
        u64::from(controlled.min(MAX)),
    );
    (g.min(d) << 32) + 2 * g.max(d) + u64::from(g > d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_priority_matches_rfc_8445_formula() {
        assert_eq!(pair_priority(10, 20), (10 << 32) + 40);
        assert_eq!(pair_priority(20, 10), (10 << 32) + 40 + 1);
        let max = (1u32 << 31) - 1;
        assert!(pair_priority(max, max) > pair_priority(max, max - 1));
        // Hostile priorities above 2^31 - 1 are clamped instead of overflowing.
        assert_eq!(pair_priority(u32::MAX, u32::MAX), pair_priority(max, max));
    }
}
