//! Nomination (RFC 8445 §8): which valid pair the controlling agent nominates and when,
//! which nominations the controlled agent accepts, and renomination.
//!
//! [`Policy`] is pure: it reads the [`Checklist`], the role and the configuration and
//! answers questions ("which pair now?", "is there a clearly better one?"). [`Nominations`]
//! is the little state that outlives one question: the nominated pair, the pair being
//! nominated, the counters of renomination and when to look again. The agent acts on the
//! answers (sends the nominating check, selects the pair).

use std::time::{Duration, Instant};

use crate::checklist::{Checklist, Pair, PairId, PairState};
use crate::config::{AgentConfig, Nomination, Role};

/// The nomination questions, over a checklist as it is now.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy<'a> {
    pub(crate) checklist: &'a Checklist,
    pub(crate) role: Role,
    pub(crate) config: &'a AgentConfig,
}

impl<'a> Policy<'a> {
    /// A pair that works both ways: succeeded, and (for the controlled side) the peer's
    /// checks reach us on it.
    pub(crate) fn usable(&self, p: &Pair) -> bool {
        p.state == PairState::Succeeded && (self.role == Role::Controlling || p.received_request)
    }

    /// The usable pair, direct or relayed as asked, with the lowest smoothed RTT (the
    /// higher priority on a tie); a UDP pair before any ICE-TCP one (RFC 6544 §4.2: UDP
    /// is preferred for real-time data where both work).
    pub(crate) fn best_pair(&self, direct: bool) -> Option<&'a Pair> {
        let this = *self;
        self.checklist
            .iter()
            .filter(move |p| this.usable(p) && p.is_direct() == direct)
            .min_by_key(|p| {
                (
                    p.is_tcp(),
                    p.stats.smoothed_rtt.unwrap_or(Duration::MAX),
                    std::cmp::Reverse(p.priority),
                )
            })
    }

    /// The best usable pair: direct if one works, else relayed. Before nomination, data
    /// goes on it.
    pub(crate) fn best_usable(&self) -> Option<PairId> {
        self.best_pair(true)
            .or_else(|| self.best_pair(false))
            .map(|p| p.id)
    }

    /// RFC 8445 §8.1.1: which pair the controlling agent nominates now, if it is time.
    ///
    /// [`Nomination::Regular`]: the valid pair of highest priority, at once.
    /// [`Nomination::LowestLatency`]: the lowest-RTT direct pair once the settle window
    /// after the first direct success has passed (or no direct check is pending); a
    /// relayed pair once [`Policy::relay_deadline`] has passed.
    pub(crate) fn choice(
        &self,
        now: Instant,
        first_direct_success: Option<Instant>,
    ) -> Option<PairId> {
        let start = self.checklist.started()?;
        match self.config.nomination {
            Nomination::Regular => self
                .checklist
                .iter()
                .filter(|p| p.state == PairState::Succeeded)
                .max_by_key(|p| p.priority)
                .map(|p| p.id),
            Nomination::LowestLatency => {
                if let Some(pair) = self.best_pair(true) {
                    let first = first_direct_success?;
                    let rtt = pair.stats.smoothed_rtt.unwrap_or(Duration::ZERO);
                    // Settle: one more best RTT plus a Ta, so checks already in flight on
                    // faster paths can still answer; capped.
                    let settle = (rtt + self.config.ta).min(self.config.max_settle);
                    let direct_pending = self.checklist.iter().any(|p| {
                        p.is_direct()
                            && matches!(p.state, PairState::InProgress | PairState::Waiting)
                    });
                    if pair.is_tcp() {
                        // Only ICE-TCP works so far: UDP pairs still checking get the time a
                        // relay would give them (RFC 6544 §4.2 prefers UDP).
                        let deadline = self.fallback_deadline(start, pair, |p| !p.is_tcp());
                        return (now >= deadline.max(first + settle)).then_some(pair.id);
                    }
                    return (now >= first + settle || !direct_pending).then_some(pair.id);
                }
                let relay = self.best_pair(false)?;
                let deadline = self.relay_deadline(start)?;
                (now >= deadline).then_some(relay.id)
            }
        }
    }

    /// When the controlling agent may nominate a working relayed pair: once no direct pair
    /// can still succeed, or once every direct pair still alive has had time to answer its
    /// first check and one retransmission (that check's RTO, plus twice the relayed pair's
    /// RTT, since a direct path is rarely slower than the relay, plus a Ta of scheduling
    /// slack), and at the latest `relay_wait` after checks started. No fixed per-type wait
    /// (the issue with pion's 2 s).
    pub(crate) fn relay_deadline(&self, start: Instant) -> Option<Instant> {
        let relay = self.best_pair(false)?;
        Some(self.fallback_deadline(start, relay, |_| true))
    }

    /// When a working `fallback` pair (relayed, or ICE-TCP) may be nominated: the rule of
    /// [`Policy::relay_deadline`] over the direct pairs `better` says would beat it.
    fn fallback_deadline(
        &self,
        start: Instant,
        fallback: &Pair,
        better: impl Fn(&Pair) -> bool,
    ) -> Instant {
        let relay_rtt = fallback.stats.smoothed_rtt.unwrap_or(self.config.min_rto);
        let cap = start + self.config.relay_wait;
        let mut deadline = None::<Instant>;
        for p in self
            .checklist
            .iter()
            .filter(|p| p.is_direct() && p.id != fallback.id && better(p))
        {
            match (p.state, p.first_check) {
                (PairState::Failed | PairState::Succeeded, _) => {}
                (_, None) => return cap,
                (_, Some((sent, rto))) => {
                    let t = sent + rto + relay_rtt * 2 + self.config.ta;
                    deadline = Some(deadline.map_or(t, |d| d.max(t)));
                }
            }
        }
        deadline.map_or(start, |d| d.min(cap))
    }

    /// Renomination: a usable pair clearly better than the `nominated` one: direct where
    /// the nominated one is relayed, or an RTT lower by the hysteresis margin
    /// ([`AgentConfig::renomination_hysteresis`] and `renomination_min_gain`).
    pub(crate) fn better_than(&self, nominated: PairId) -> Option<PairId> {
        let cur = self.checklist.get(nominated)?;
        if cur.state == PairState::Failed {
            // The nominated pair is gone (its TURN allocation was lost): any working pair
            // is better, relayed ones included.
            return self.best_usable().filter(|&b| b != nominated);
        }
        let best = self.best_pair(true)?;
        if best.id == nominated {
            return None;
        }
        if !cur.is_direct() || cur.is_tcp() && !best.is_tcp() {
            return Some(best.id);
        }
        if best.is_tcp() && !cur.is_tcp() {
            return None;
        }
        let (Some(cur_rtt), Some(best_rtt)) = (cur.stats.smoothed_rtt, best.stats.smoothed_rtt)
        else {
            return None;
        };
        let threshold = cur_rtt
            .mul_f64(1.0 - self.config.renomination_hysteresis)
            .saturating_sub(self.config.renomination_min_gain);
        (best_rtt < threshold).then_some(best.id)
    }

    /// When renominating as the controlling agent: the three fastest succeeded direct pairs
    /// other than `selected`, which the consent checks keep measuring.
    pub(crate) fn measured(&self, selected: PairId, renominate: bool) -> Vec<PairId> {
        if !(renominate && self.role == Role::Controlling) {
            return Vec::new();
        }
        let mut others: Vec<&Pair> = self
            .checklist
            .iter()
            .filter(|p| p.id != selected && p.state == PairState::Succeeded && p.is_direct())
            .collect();
        others.sort_by_key(|p| p.stats.smoothed_rtt);
        others.truncate(3);
        others.into_iter().map(|p| p.id).collect()
    }
}

/// Nomination state of one ICE session (an ICE restart starts a fresh one).
#[derive(Debug)]
pub(crate) struct Nominations {
    /// The nominated pair (RFC 8445 §8.1.1: final unless renominating).
    pub(crate) nominated: Option<PairId>,
    /// The pair whose next check carries USE-CANDIDATE.
    pub(crate) nominating: Option<PairId>,
    /// When the first direct pair succeeded (the settle window starts).
    pub(crate) first_direct_success: Option<Instant>,
    /// Renomination: the next NOMINATION value we send, and the highest we received.
    pub(crate) counter: u32,
    remote_counter: u32,
    /// When the controlling agent should look at nominating again (end of the settle
    /// window, or of the relay wait).
    at: Option<Instant>,
}

impl Default for Nominations {
    fn default() -> Self {
        Nominations {
            nominated: None,
            nominating: None,
            first_direct_success: None,
            counter: 1,
            remote_counter: 0,
            at: None,
        }
    }
}

impl Nominations {
    /// Checks started: look again once the relay wait is over.
    pub(crate) fn checks_started(&mut self, now: Instant, config: &AgentConfig) {
        self.at = Some(now + config.relay_wait);
    }

    /// A direct pair succeeded with `rtt`: the first one opens the settle window of one
    /// RTT plus Ta, at most [`AgentConfig::max_settle`].
    pub(crate) fn direct_success(
        &mut self,
        now: Instant,
        rtt: Option<Duration>,
        config: &AgentConfig,
    ) {
        if self.first_direct_success.is_none() {
            self.first_direct_success = Some(now);
            let rtt = rtt.unwrap_or(Duration::ZERO);
            self.at = Some(now + (rtt + config.ta).min(config.max_settle));
        }
    }

    /// RFC 8445 §8.1.1 on the controlled side: the first nomination stands; a later one
    /// counts only with a higher NOMINATION value (renomination). Whether a check with
    /// `use_candidate` and NOMINATION `value` nominates its pair.
    pub(crate) fn accept_remote(&mut self, use_candidate: bool, value: Option<u32>) -> bool {
        let renominated = value.is_some_and(|n| n > self.remote_counter);
        if let Some(n) = value.filter(|_| renominated) {
            self.remote_counter = n;
        }
        use_candidate && (self.nominated.is_none() || renominated)
    }

    /// When the controlling agent looks at nominating again.
    pub(crate) fn poll_timeout(&self, policy: &Policy<'_>, clock: Instant) -> Option<Instant> {
        self.at
            .into_iter()
            .chain(
                policy
                    .checklist
                    .started()
                    .and_then(|s| policy.relay_deadline(s))
                    .filter(|t| *t > clock),
            )
            .min()
            .filter(|_| policy.role == Role::Controlling && self.nominated.is_none())
    }

    /// The nomination timer fired.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.at.is_some_and(|t| t <= now) {
            self.at = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_nomination_stands_unless_a_higher_nomination_value_comes() {
        let mut n = Nominations::default();
        assert!(!n.accept_remote(false, None));
        assert!(n.accept_remote(true, None));
        n.nominated = Some(PairId::for_test(0));
        assert!(!n.accept_remote(true, None), "RFC 8445 §8.1.1: once");
        assert!(n.accept_remote(true, Some(2)), "renomination");
        assert!(!n.accept_remote(true, Some(2)), "not the same value twice");
        assert!(!n.accept_remote(true, Some(1)));
    }
}
