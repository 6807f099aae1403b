//! The selected pair through the agent: before nomination the best usable pair carries
//! data; the controlling agent nominates (RFC 8445 §8.1.1) when the nomination
//! [`Policy`] says so, the controlled one when the peer does (§7.3.1.5); then the other pairs
//! are pruned (§8.1.2) and consent freshness (RFC 7675) takes over.

use std::net::SocketAddr;
use std::time::Instant;

use super::Agent;
use crate::checklist::PairId;
use crate::config::Role;
use crate::event::{ConnectionState, Event, SelectedPair};
use crate::nomination::Policy;

impl Agent {
    pub(super) fn policy(&self) -> Policy<'_> {
        Policy {
            checklist: &self.checklist,
            role: self.role,
            config: &self.config,
        }
    }

    pub(super) fn select(&mut self, now: Instant, id: PairId) {
        if self.selected == Some(id) {
            return;
        }
        let Some(described) = self.describe(id) else {
            return;
        };
        self.selected = Some(id);
        if let Some(p) = self.checklist.get_mut(id) {
            p.last_heard.get_or_insert(now);
        }
        // Consent is per pair (RFC 7675 §5.1): the new pair's latest response counts.
        self.consent.refreshed(
            self.checklist
                .get(id)
                .and_then(|q| q.last_response)
                .unwrap_or(now),
        );
        tracing::info!(pair = %id, local = %described.local, remote = %described.remote, rtt_ms = ?described.rtt.map(|r| r.as_millis()), "selected pair");
        self.events.push_back(Event::SelectedPair(described));
    }

    pub(super) fn describe(&self, id: PairId) -> Option<SelectedPair> {
        let pair = self.checklist.get(id)?;
        Some(SelectedPair {
            local: pair.base,
            remote: pair.remote_addr,
            local_kind: pair.local_kind,
            remote_kind: pair.remote_kind,
            rtt: pair.stats.smoothed_rtt,
            nominated: self.nominations.nominated == Some(id),
            turn_transport: self.gathering.relay_transport(pair.base),
            transport: if pair.is_tcp() {
                floe_stun::Transport::Tcp
            } else {
                floe_stun::Transport::Udp
            },
        })
    }

    /// The pair is nominated (RFC 8445 §8.1.1 as the controlling agent, §7.3.1.5 as the
    /// controlled one): it is selected, the others are pruned at the next timer, and the
    /// controlling agent starts its consent checks.
    pub(super) fn nominate(&mut self, now: Instant, id: PairId) {
        if let Some(pair) = self.checklist.get_mut(id) {
            pair.nominated = true;
        }
        self.nominations.nominated = Some(id);
        self.checklist.request_prune();
        let already = self.selected == Some(id);
        self.select(now, id);
        if already {
            // Same pair, now final: say so.
            if let Some(described) = self.describe(id) {
                self.events.push_back(Event::SelectedPair(described));
            }
        }
        self.set_state(ConnectionState::Completed);
        if self.role == Role::Controlling {
            self.consent
                .start_randomized(now, &self.config, &mut self.rng);
        }
    }

    /// Before nomination, data goes on the best usable pair (lowest RTT among direct pairs,
    /// else relayed); the controlling side nominates once the choice is settled
    /// (`Policy::choice`), and renominates a clearly better pair (`Policy::better_than`).
    pub(super) fn update_selection(&mut self, now: Instant) {
        self.recovery_progress(now);
        // While recovering, the ladder (`recovery`) chooses: only live pairs count.
        if self.nominations.nominated.is_none() && !self.liveness.is_recovering() {
            if let Some(best) = self.policy().best_usable() {
                if self.selected != Some(best) {
                    self.select(now, best);
                }
                self.set_state(ConnectionState::Connected);
                self.consent.start(now, &self.config);
            }
        }
        if self.role != Role::Controlling || self.nominations.nominating.is_some() {
            return;
        }
        let next = match self.nominations.nominated {
            None => (!self.checklist.nominating_check_in_flight())
                .then(|| {
                    self.policy()
                        .choice(now, self.nominations.first_direct_success)
                })
                .flatten(),
            Some(_) if self.liveness.is_recovering() => None,
            Some(nominated) => {
                let better = self
                    .renominate
                    .then(|| self.policy().better_than(nominated))
                    .flatten();
                if let Some(p) = better {
                    self.nominations.counter += 1;
                    tracing::info!(pair = %p, "renominating a better pair");
                }
                better
            }
        };
        if let Some(p) = next {
            self.nominations.nominating = Some(p);
            self.checklist.trigger_first(now, p);
        }
    }

    /// Drops the pairs a nomination made useless (`Checklist::prune`) and their
    /// transactions, and gives back the capacity of idle queues.
    pub(super) fn prune_after_nomination(&mut self) {
        let Some(selected) = self.selected else {
            return;
        };
        let mut keep = vec![selected];
        keep.extend(self.policy().measured(selected, self.renominate));
        keep.extend(self.nominations.nominated);
        keep.extend(self.nominations.nominating);
        // RFC 6544 §8: the TCP connections of the pairs pruned are closed; one a kept
        // pair still uses stays.
        let kept = |b: SocketAddr, r: SocketAddr| {
            self.checklist
                .iter()
                .any(|q| keep.contains(&q.id) && q.base == b && q.remote_addr == r)
        };
        let close: Vec<(SocketAddr, SocketAddr)> = self
            .checklist
            .iter()
            .filter(|p| p.is_tcp() && !keep.contains(&p.id) && !kept(p.base, p.remote_addr))
            .map(|p| (p.base, p.remote_addr))
            .collect();
        for (local, remote) in close {
            self.events.push_back(Event::CloseTcp { local, remote });
        }
        self.checklist.prune(&keep);
        let checklist = &self.checklist;
        self.transactions
            .retain(|o| o.purpose.pair().is_none_or(|p| checklist.get(p).is_some()));
        self.remotes.shrink_to_fit();
        self.locals.shrink_to_fit();
        self.shrink_idle_queues();
    }
}
