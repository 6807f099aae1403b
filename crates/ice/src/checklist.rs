//! The checklist (RFC 8445 §6.1.2): the candidate pairs, keyed by `PairId`, their
//! states, and the order checks go out in: the triggered-check queue (§7.3.1.4), pacing by
//! Ta (§6.1.4.2), unfreezing (§6.1.2.6, §7.2.5.3.3), the pair limit (§6.1.2.5) and
//! pruning once a pair is nominated (§8.1.2).
//!
//! The checklist knows nothing of STUN: the agent sends the check it picks
//! (`Checklist::next_due`) and tells it what became of it.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_stun::TransactionId;

use crate::candidate::{CandidateKind, TransportProtocol};

/// Names a pair for as long as it is in the checklist. Ids are never reused: a pair that
/// replaces another at the pair limit gets a new one, and pruning renumbers nothing, so an
/// id held elsewhere (a transaction, the selected pair) either still names its pair or
/// names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PairId(u64);

#[cfg(test)]
impl PairId {
    /// An id for tests of other parts.
    pub(crate) fn for_test(n: u64) -> PairId {
        PairId(n)
    }
}

impl fmt::Display for PairId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

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
    /// Check requests sent (including retransmissions; not consent checks).
    pub requests_sent: u64,
    /// Consent and liveness checks sent (RFC 7675; including retransmissions).
    pub consent_requests_sent: u64,
    /// Check requests received.
    pub requests_received: u64,
    /// Success responses received, to checks and consent checks (each gives an RTT
    /// sample: `total_round_trip_time / responses_received` is the mean RTT).
    pub responses_received: u64,
    /// Success responses sent.
    pub responses_sent: u64,
    /// Application bytes sent.
    pub bytes_sent: u64,
    /// Application bytes received.
    pub bytes_received: u64,
    /// Application datagrams sent through the agent.
    pub packets_sent: u64,
    /// Application datagrams received through the agent.
    pub packets_received: u64,
    /// When the agent last sent application data on the pair.
    pub last_packet_sent: Option<Instant>,
    /// When the agent last received application data on the pair.
    pub last_packet_received: Option<Instant>,
    /// The sum of every RTT sample (W3C totalRoundTripTime).
    pub total_round_trip_time: Duration,
    /// Whether the pair is nominated (by this side as the controlling agent, or by the
    /// peer).
    pub nominated: bool,
    /// Latest RTT sample.
    pub current_rtt: Option<Duration>,
    /// Smoothed RTT.
    pub smoothed_rtt: Option<Duration>,
    /// ICMP errors a TURN server relayed for this pair's peer (RFC 8656 §11.6).
    pub icmp_errors: u64,
}

/// A candidate pair.
#[derive(Debug)]
pub(crate) struct Pair {
    pub(crate) id: PairId,
    /// Index of the local candidate (its base sends).
    pub(crate) local: usize,
    /// Index of the remote candidate.
    pub(crate) remote: usize,
    pub(crate) base: SocketAddr,
    pub(crate) remote_addr: SocketAddr,
    pub(crate) local_kind: CandidateKind,
    pub(crate) remote_kind: CandidateKind,
    /// UDP, or ICE-TCP (RFC 6544): checks and data go on a TCP connection.
    pub(crate) transport: TransportProtocol,
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
    /// When the pair was last heard: an authenticated check or answer on it, or data from
    /// its remote address ([`crate::liveness`]).
    pub(crate) last_heard: Option<Instant>,
    /// When its first check went out, and that check's retransmission timeout.
    pub(crate) first_check: Option<(Instant, Duration)>,
    pub(crate) stats: PairStats,
}

impl Pair {
    /// Whether this is an ICE-TCP pair.
    pub(crate) fn is_tcp(&self) -> bool {
        self.transport == TransportProtocol::Tcp
    }

    /// Whether neither side is relayed.
    pub(crate) fn is_direct(&self) -> bool {
        !self.local_kind.is_relayed() && !self.remote_kind.is_relayed()
    }

    /// Folds an RTT sample into the smoothed RTT (RFC 6298 style, α = 1/8).
    pub(crate) fn sample_rtt(&mut self, rtt: Duration) {
        self.stats.current_rtt = Some(rtt);
        self.stats.total_round_trip_time += rtt;
        self.stats.smoothed_rtt = Some(match self.stats.smoothed_rtt {
            None => rtt,
            Some(s) => (s * 7 + rtt) / 8,
        });
    }
}

/// What the agent knows of a pair it wants in the checklist.
#[derive(Debug)]
pub(crate) struct NewPair {
    pub(crate) local: usize,
    pub(crate) remote: usize,
    pub(crate) base: SocketAddr,
    pub(crate) remote_addr: SocketAddr,
    pub(crate) local_kind: CandidateKind,
    pub(crate) remote_kind: CandidateKind,
    pub(crate) transport: TransportProtocol,
    pub(crate) foundation: (String, String),
    pub(crate) priority: u64,
}

/// The pair whose check is due now ([`Checklist::next_due`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Due {
    pub(crate) pair: PairId,
    /// A check in flight on the pair that this one replaces (a nomination does not wait
    /// behind a plain check): the agent stops retransmitting it.
    pub(crate) cancelled: Option<TransactionId>,
}

/// The checklist of the one data stream and component floe checks.
#[derive(Debug)]
pub(crate) struct Checklist {
    /// In the order pairs were formed (a replacement takes its victim's place), which
    /// breaks ties between pairs of equal priority.
    pairs: Vec<Pair>,
    next_id: u64,
    /// Triggered checks, first out first (RFC 8445 §7.3.1.4).
    triggered: VecDeque<PairId>,
    /// When the next check may go out (Ta pacing, §6.1.4.2); `None` when nothing waits.
    next_check: Option<Instant>,
    /// When checking started.
    started: Option<Instant>,
    /// A pair was nominated: prune the others at the next timer.
    prune_pending: bool,
    /// Pairs were pruned: only nominations create new pairs.
    pruned: bool,
    ta: Duration,
    max_pairs: usize,
}

impl Checklist {
    /// An empty checklist, paced by `ta`, of at most `max_pairs` pairs.
    pub(crate) fn new(ta: Duration, max_pairs: usize) -> Checklist {
        Checklist {
            pairs: Vec::new(),
            next_id: 0,
            triggered: VecDeque::new(),
            next_check: None,
            started: None,
            prune_pending: false,
            pruned: false,
            ta,
            max_pairs,
        }
    }

    pub(crate) fn get(&self, id: PairId) -> Option<&Pair> {
        self.pairs.iter().find(|p| p.id == id)
    }

    pub(crate) fn get_mut(&mut self, id: PairId) -> Option<&mut Pair> {
        self.pairs.iter_mut().find(|p| p.id == id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Pair> + Clone {
        self.pairs.iter()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Pair> {
        self.pairs.iter_mut()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pair from local `base` to `remote`.
    pub(crate) fn find(&self, base: SocketAddr, remote: SocketAddr) -> Option<PairId> {
        self.pairs
            .iter()
            .find(|p| p.base == base && p.remote_addr == remote)
            .map(|p| p.id)
    }

    /// When checking started.
    pub(crate) fn started(&self) -> Option<Instant> {
        self.started
    }

    /// Starts checking at `now`; whether it was not started yet.
    pub(crate) fn start(&mut self, now: Instant) -> bool {
        if self.started.is_some() {
            return false;
        }
        self.started = Some(now);
        true
    }

    /// Whether pairs were pruned after a nomination.
    pub(crate) fn is_pruned(&self) -> bool {
        self.pruned
    }

    /// Adds a pair, or finds the one with the same base and remote address.
    ///
    /// RFC 8445 §6.1.2.5: at the limit, keep the highest-priority pairs. The new pair
    /// takes the place of the lowest-priority pair that has not been checked yet (Frozen,
    /// or Waiting and not queued for a triggered check; never `protected`, the selected
    /// pair), if it ranks above it; otherwise it is dropped.
    ///
    /// RFC 8445 §6.1.2.6: the first pair of a foundation starts Waiting, the rest Frozen.
    pub(crate) fn insert(&mut self, new: NewPair, protected: Option<PairId>) -> Option<PairId> {
        if let Some(id) = self.find(new.base, new.remote_addr) {
            return Some(id);
        }
        let mut replace = None;
        if self.pairs.len() >= self.max_pairs {
            let lowest = self
                .pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    p.check.is_none()
                        && !p.nominated
                        && protected != Some(p.id)
                        && (p.state == PairState::Frozen
                            || (p.state == PairState::Waiting && !self.triggered.contains(&p.id)))
                })
                .min_by_key(|(_, p)| p.priority)
                .map(|(i, p)| (i, p.priority));
            match lowest {
                Some((i, lowest)) if lowest < new.priority => replace = Some(i),
                _ => return None,
            }
        }
        let state = if self
            .pairs
            .iter()
            .enumerate()
            .any(|(i, p)| p.foundation == new.foundation && Some(i) != replace)
        {
            PairState::Frozen
        } else {
            PairState::Waiting
        };
        let id = PairId(self.next_id);
        self.next_id += 1;
        let pair = Pair {
            id,
            local: new.local,
            remote: new.remote,
            base: new.base,
            remote_addr: new.remote_addr,
            local_kind: new.local_kind,
            remote_kind: new.remote_kind,
            transport: new.transport,
            foundation: new.foundation,
            priority: new.priority,
            state,
            check: None,
            nominated: false,
            nominate_on_success: false,
            received_request: false,
            last_response: None,
            last_heard: None,
            first_check: None,
            stats: PairStats::default(),
        };
        match replace.and_then(|i| self.pairs.get_mut(i)) {
            Some(slot) => *slot = pair,
            None => self.pairs.push(pair),
        }
        Some(id)
    }

    /// Sets every pair's priority again (the role changed, or a candidate's priority).
    pub(crate) fn recompute_priorities(&mut self, priority: impl Fn(&Pair) -> Option<u64>) {
        for p in &mut self.pairs {
            if let Some(priority) = priority(p) {
                p.priority = priority;
            }
        }
    }

    /// Makes sure the check timer runs (checks stay paced by Ta).
    pub(crate) fn schedule(&mut self, now: Instant) {
        if self.started.is_some() && self.next_check.is_none() {
            self.next_check = Some(now);
        }
    }

    /// RFC 8445 §7.3.1.4: a check request arrived on the pair: check it back in the next
    /// Ta slot (a triggered check) unless it already works. A plain check in flight on it
    /// is cancelled (returned: no more retransmissions; a late answer still counts) so
    /// that the new one goes out at once instead of waiting for a retransmission.
    pub(crate) fn trigger(&mut self, now: Instant, id: PairId) -> Option<TransactionId> {
        let p = self.get_mut(id)?;
        let mut cancelled = None;
        if p.state == PairState::InProgress && p.check.is_some_and(|c| !c.1) {
            cancelled = p.check.take().map(|(tid, _)| tid);
            p.state = PairState::Waiting;
        }
        match p.state {
            PairState::Frozen | PairState::Waiting | PairState::Failed => {
                p.state = PairState::Waiting;
                if !self.triggered.contains(&id) {
                    self.triggered.push_back(id);
                }
                self.schedule(now);
            }
            PairState::InProgress | PairState::Succeeded => {}
        }
        cancelled
    }

    /// RFC 8445 §7.2.5.1: after a 487 (role conflict) the pair is checked again.
    pub(crate) fn retry(&mut self, now: Instant, id: PairId) {
        if let Some(p) = self.get_mut(id) {
            p.state = PairState::Waiting;
        }
        self.triggered.push_back(id);
        self.schedule(now);
    }

    /// The nominating check goes out before anything else.
    pub(crate) fn trigger_first(&mut self, now: Instant, id: PairId) {
        self.triggered.retain(|q| *q != id);
        self.triggered.push_front(id);
        self.schedule(now);
    }

    /// RFC 8445 §6.1.4.2: if Ta has passed, the pair to check now: a triggered check
    /// first, then the highest-priority Waiting pair, then the best Frozen one (unfrozen
    /// by its check). `nominating` is the pair whose next check carries USE-CANDIDATE.
    pub(crate) fn next_due(&mut self, now: Instant, nominating: Option<PairId>) -> Option<Due> {
        if self.next_check.is_some_and(|t| t > now) {
            return None;
        }
        let next = loop {
            match self.triggered.pop_front() {
                Some(p)
                    if nominating == Some(p)
                        || self.get(p).is_some_and(|q| {
                            q.check.is_none() && q.state != PairState::Succeeded
                        }) =>
                {
                    break Some(p)
                }
                Some(_) => {}
                None => break None,
            }
        };
        let next = next
            .or_else(|| self.best_in(PairState::Waiting))
            .or_else(|| self.best_in(PairState::Frozen));
        let Some(id) = next else {
            self.next_check = None;
            return None;
        };
        self.next_check = Some(now + self.ta);
        let pair = self.get_mut(id)?;
        let mut cancelled = None;
        if pair.check.is_some() {
            if nominating != Some(id) {
                return None;
            }
            // The nomination must not wait for (or be lost behind) a plain check in
            // flight on the same pair: cancel that one.
            cancelled = pair.check.take().map(|(tid, _)| tid);
        }
        Some(Due {
            pair: id,
            cancelled,
        })
    }

    fn best_in(&self, state: PairState) -> Option<PairId> {
        self.pairs
            .iter()
            .filter(|p| p.state == state)
            .max_by_key(|p| p.priority)
            .map(|p| p.id)
    }

    /// RFC 8445 §14.3: RTO = MAX(500 ms, Ta * (Waiting + In-Progress pairs)), with
    /// `min_rto` for the 500 ms.
    pub(crate) fn rto(&self, min_rto: Duration) -> Duration {
        let active = self
            .pairs
            .iter()
            .filter(|q| matches!(q.state, PairState::Waiting | PairState::InProgress))
            .count() as u32;
        min_rto.max(self.ta * active)
    }

    /// A check went out on the pair (§7.2.4: it is In-Progress unless it already works).
    pub(crate) fn check_sent(
        &mut self,
        id: PairId,
        now: Instant,
        tid: TransactionId,
        use_candidate: bool,
        rto: Duration,
    ) {
        if let Some(pair) = self.get_mut(id) {
            if pair.state != PairState::Succeeded {
                pair.state = PairState::InProgress;
            }
            pair.first_check.get_or_insert((now, rto));
            pair.check = Some((tid, use_candidate));
        }
    }

    /// The pair's check failed (timeout, error response, non-symmetric addresses).
    pub(crate) fn fail(&mut self, id: PairId) {
        if let Some(pair) = self.get_mut(id) {
            pair.check = None;
            pair.state = PairState::Failed;
        }
    }

    /// The pairs from local `base` fail (its relayed candidate is gone).
    pub(crate) fn fail_base(&mut self, base: SocketAddr) {
        for p in self.pairs.iter_mut().filter(|p| p.base == base) {
            p.state = PairState::Failed;
            p.check = None;
        }
    }

    /// The peer withdrew the remote address `addr`: its pairs leave, except `keep` (the
    /// selected pair, which stays, failed, until recovery moves away from it).
    pub(crate) fn remove_remote(&mut self, addr: SocketAddr, keep: Option<PairId>) {
        self.pairs
            .retain(|p| p.remote_addr != addr || Some(p.id) == keep);
        self.fail_remote(addr);
        let pairs = &self.pairs;
        self.triggered
            .retain(|id| pairs.iter().any(|p| p.id == *id));
    }

    /// Every pair with the remote address `addr` fails (the peer withdrew it).
    pub(crate) fn fail_remote(&mut self, addr: SocketAddr) {
        for p in self.pairs.iter_mut().filter(|p| p.remote_addr == addr) {
            p.state = PairState::Failed;
            p.check = None;
        }
    }

    /// RFC 8445 §7.2.5.3.3: a success unfreezes the pairs of the same foundation.
    pub(crate) fn unfreeze(&mut self, foundation: &(String, String)) {
        for q in &mut self.pairs {
            if q.state == PairState::Frozen && q.foundation == *foundation {
                q.state = PairState::Waiting;
            }
        }
    }

    /// Whether every pair failed (and there is at least one).
    pub(crate) fn all_failed(&self) -> bool {
        !self.pairs.is_empty() && self.pairs.iter().all(|p| p.state == PairState::Failed)
    }

    /// Recovery (the selected pair went quiet): the checklist is no longer pruned, so
    /// checks on forgotten pairs recreate them, and every pair that neither works nor is
    /// being checked is checked again (the agent probes the succeeded ones with consent
    /// checks, which keeps them usable meanwhile).
    pub(crate) fn reopen(&mut self, now: Instant) {
        self.pruned = false;
        self.prune_pending = false;
        for p in self
            .pairs
            .iter_mut()
            .filter(|p| p.check.is_none() && p.state != PairState::Succeeded)
        {
            p.state = PairState::Waiting;
        }
        self.schedule(now);
    }

    /// Whether a check carrying USE-CANDIDATE is in flight.
    pub(crate) fn nominating_check_in_flight(&self) -> bool {
        self.pairs.iter().any(|p| p.check.is_some_and(|c| c.1))
    }

    /// When the next check may go out, once checking started.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.started.and(self.next_check)
    }

    /// A pair was nominated: prune at the next timer ([`Checklist::take_prune_request`]).
    pub(crate) fn request_prune(&mut self) {
        self.prune_pending = true;
    }

    /// Whether pruning was requested (and forgets the request).
    pub(crate) fn take_prune_request(&mut self) -> bool {
        std::mem::take(&mut self.prune_pending)
    }

    /// RFC 8445 §8.1.2: once a pair is nominated, Waiting and Frozen pairs leave the
    /// checklist and In-Progress checks stop. floe keeps only the pairs in `keep` (the
    /// selected one, and those it keeps measuring to renominate) and gives back the
    /// queues' capacity. Requests that arrive later on forgotten pairs are still answered,
    /// but only a nomination recreates a pair ([`Checklist::is_pruned`]).
    pub(crate) fn prune(&mut self, keep: &[PairId]) {
        self.pairs.retain(|p| keep.contains(&p.id));
        let pairs = &self.pairs;
        self.triggered
            .retain(|id| pairs.iter().any(|p| p.id == *id));
        self.pruned = true;
        self.pairs.shrink_to_fit();
        self.triggered.shrink_to_fit();
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

    fn new_pair(remote_port: u16, foundation: &str, priority: u64) -> NewPair {
        NewPair {
            local: 0,
            remote: usize::from(remote_port),
            base: "192.0.2.1:5000".parse().unwrap(),
            remote_addr: SocketAddr::from(([198, 51, 100, 7], remote_port)),
            local_kind: CandidateKind::Host,
            remote_kind: CandidateKind::Host,
            transport: TransportProtocol::Udp,
            foundation: ("1".into(), foundation.into()),
            priority,
        }
    }

    fn state(list: &Checklist, id: PairId) -> PairState {
        list.get(id).unwrap().state
    }

    #[test]
    fn pair_ids_survive_pruning_and_a_replacement_gets_a_new_one() {
        let ta = Duration::from_millis(50);
        let mut list = Checklist::new(ta, 3);
        let a = list.insert(new_pair(1, "a", 10), None).unwrap();
        let b = list.insert(new_pair(2, "b", 30), None).unwrap();
        let c = list.insert(new_pair(3, "c", 20), None).unwrap();
        assert_eq!(
            list.insert(new_pair(2, "b", 30), None),
            Some(b),
            "same pair"
        );
        // Full: a higher-priority pair takes the place of the lowest (a), with a new id.
        let d = list.insert(new_pair(4, "d", 40), None).unwrap();
        assert!(![a, b, c].contains(&d));
        assert!(list.get(a).is_none());
        assert_eq!(
            list.insert(new_pair(5, "e", 1), None),
            None,
            "ranks below all"
        );
        list.prune(&[d, b]);
        assert!(list.is_pruned());
        assert!(list.get(c).is_none());
        assert_eq!(list.get(b).unwrap().priority, 30);
        assert_eq!(list.get(d).unwrap().priority, 40);
    }

    #[test]
    fn checks_are_paced_by_ta_triggered_first_then_by_priority() {
        let ta = Duration::from_millis(50);
        let now = Instant::now();
        let mut list = Checklist::new(ta, 100);
        let low = list.insert(new_pair(1, "a", 10), None).unwrap();
        let high = list.insert(new_pair(2, "b", 30), None).unwrap();
        let frozen = list.insert(new_pair(3, "a", 50), None).unwrap();
        assert_eq!(
            state(&list, frozen),
            PairState::Frozen,
            "second of foundation a"
        );
        assert!(list.start(now));
        list.schedule(now);
        assert_eq!(list.trigger(now, low), None);
        let due = list.next_due(now, None).unwrap();
        assert_eq!(due.pair, low, "the triggered check first");
        list.check_sent(low, now, TransactionId([1; 12]), false, ta);
        assert!(
            list.next_due(now + ta / 2, None).is_none(),
            "one check per Ta"
        );
        assert_eq!(list.poll_timeout(), Some(now + ta));
        assert_eq!(list.next_due(now + ta, None).unwrap().pair, high);
        list.check_sent(high, now + ta, TransactionId([2; 12]), false, ta);
        // A request on a pair with a plain check in flight cancels that check (§7.3.1.4).
        assert_eq!(list.trigger(now + ta, low), Some(TransactionId([1; 12])));
        assert_eq!(state(&list, low), PairState::Waiting);
        list.unfreeze(&("1".into(), "a".into()));
        assert_eq!(state(&list, frozen), PairState::Waiting);
    }

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
