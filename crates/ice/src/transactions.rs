//! The STUN transactions the agent has in flight, by transaction id: connectivity checks,
//! consent checks and server-reflexive gathering, each retransmitted by floe-stun's
//! [`ClientTransaction`] (RFC 8489 §6.2.1). A response is tied back to its pair or server
//! through [`Purpose`]. The number in flight is bounded by the pairs (one check and a few
//! consent checks each) and the STUN servers times the host candidates.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use floe_stun::transaction::{ClientTransaction, TransactionState};
use floe_stun::TransactionId;

use crate::checklist::PairId;

/// What a transaction is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    /// A connectivity check on the pair (RFC 8445 §7.2.4).
    Check(PairId),
    /// A Binding request to a STUN server for a server-reflexive candidate (§5.1.1.2).
    Gather {
        base: SocketAddr,
        server: SocketAddr,
        /// `AgentConfig::gather_timeout` after the request.
        deadline: Instant,
    },
    /// A consent check on the pair (RFC 7675).
    Consent(PairId),
    /// A check cancelled by a triggered check on its pair (RFC 8445 §7.3.1.4): not
    /// retransmitted, its timeout fails nothing, a late success still counts.
    CancelledCheck(PairId),
}

impl Purpose {
    /// The pair it checks, if any.
    pub(crate) fn pair(self) -> Option<PairId> {
        match self {
            Purpose::Check(p) | Purpose::Consent(p) | Purpose::CancelledCheck(p) => Some(p),
            Purpose::Gather { .. } => None,
        }
    }
}

/// One transaction in flight.
#[derive(Debug)]
pub(crate) struct Outstanding {
    pub(crate) purpose: Purpose,
    pub(crate) transaction: ClientTransaction,
    pub(crate) source: SocketAddr,
    pub(crate) destination: SocketAddr,
}

/// A request (or retransmission) due now.
#[derive(Debug)]
pub(crate) struct Due {
    pub(crate) source: SocketAddr,
    pub(crate) destination: SocketAddr,
    pub(crate) data: Vec<u8>,
    /// What it is for (a check or consent check counts in its pair's stats).
    pub(crate) purpose: Purpose,
}

/// The transactions in flight.
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    map: HashMap<TransactionId, Outstanding>,
}

impl Transactions {
    pub(crate) fn insert(&mut self, tid: TransactionId, out: Outstanding) {
        self.map.insert(tid, out);
    }

    pub(crate) fn contains(&self, tid: &TransactionId) -> bool {
        self.map.contains_key(tid)
    }

    pub(crate) fn get(&self, tid: &TransactionId) -> Option<&Outstanding> {
        self.map.get(tid)
    }

    pub(crate) fn remove(&mut self, tid: &TransactionId) -> Option<Outstanding> {
        self.map.remove(tid)
    }

    /// The check `tid` on `pair` was cancelled (see [`Purpose::CancelledCheck`]).
    pub(crate) fn cancel(&mut self, tid: &TransactionId, pair: PairId) {
        if let Some(o) = self.map.get_mut(tid) {
            o.purpose = Purpose::CancelledCheck(pair);
        }
    }

    /// Keeps the transactions `keep` says yes to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Outstanding) -> bool) {
        self.map.retain(|_, o| keep(o));
        self.map.shrink_to_fit();
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    /// Requests and retransmissions due at `now` (cancelled checks are not retransmitted).
    pub(crate) fn poll_transmits(&mut self, now: Instant) -> Vec<Due> {
        let mut due = Vec::new();
        for out in self.map.values_mut() {
            if let Some(bytes) = out.transaction.poll_transmit(now) {
                if matches!(out.purpose, Purpose::CancelledCheck(_)) {
                    continue;
                }
                due.push(Due {
                    source: out.source,
                    destination: out.destination,
                    data: bytes.to_vec(),
                    purpose: out.purpose,
                });
            }
        }
        due
    }

    /// Advances the retransmission timers; removes and returns the transactions that
    /// timed out (and gathers past their deadline).
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<Outstanding> {
        let mut done = Vec::new();
        for (tid, out) in &mut self.map {
            out.transaction.handle_timeout(now);
            let late = matches!(out.purpose, Purpose::Gather { deadline, .. } if deadline <= now);
            if late || out.transaction.state() == TransactionState::TimedOut {
                done.push(*tid);
            }
        }
        done.into_iter()
            .filter_map(|tid| self.map.remove(&tid))
            .collect()
    }

    /// The next retransmission or gathering deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.map
            .values()
            .filter_map(|o| match o.purpose {
                Purpose::Gather { deadline, .. } => {
                    o.transaction.poll_timeout().map(|t| t.min(deadline))
                }
                _ => o.transaction.poll_timeout(),
            })
            .min()
    }
}
