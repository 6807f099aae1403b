//! The recovery ladder through the agent, when the selected pair goes quiet mid-call
//! ([`crate::liveness`] keeps the timers):
//!
//! 0. quiet for a liveness interval: a consent check probes the selected pair;
//! 1. quiet past the limit: [`ConnectionState::Disconnected`]; if another pair is live
//!    (heard within the interval, usable both ways), data moves to it at once; the
//!    controlling agent renominates it when the peer supports renomination;
//! 2. otherwise every pair is checked again, including pairs from the locals and remotes
//!    that pruning had forgotten and from peer-reflexive candidates learned meanwhile (a
//!    NAT that rebound: RFC 8445 §7.3.1.3); server-reflexive candidates are gathered again
//!    and TURN allocations refreshed, so a new public address reaches the peer by trickle;
//! 3. nothing within [`AgentConfig::recovery_timeout`]: the application is asked for an
//!    ICE restart (RFC 8445 §9).
//!
//! Every step is an [`Event::Recovery`]. A pair heard again ends recovery.
//!
//! [`AgentConfig::recovery_timeout`]: crate::AgentConfig::recovery_timeout

use std::time::Instant;

use super::Agent;
use crate::candidate::CandidateKind;
use crate::checklist::{PairId, PairState};
use crate::config::Role;
use crate::event::{ConnectionState, Event, Recovery};
use crate::liveness::Liveness;

impl Agent {
    /// The liveness timers of the selected pair (after selection and nomination ran).
    pub(super) fn liveness_timeout(&mut self, now: Instant) {
        if self.config.lite
            || matches!(
                self.connection_state,
                ConnectionState::Failed | ConnectionState::Closed
            )
        {
            return;
        }
        let Some((sel, heard, srtt)) = self.selected.and_then(|id| {
            let p = self.checklist.get(id)?;
            Some((id, p.last_heard.unwrap_or(now), p.stats.smoothed_rtt))
        }) else {
            return;
        };
        if self.liveness.is_recovering() {
            if self.recovery_progress(now) {
                return;
            }
            if self.liveness.take_restart_due(now, &self.config) {
                tracing::warn!("recovery found no working pair: an ICE restart is needed");
                self.events
                    .push_back(Event::Recovery(Recovery::RestartNeeded));
            }
        } else if Liveness::is_quiet(now, heard, srtt, &self.config) {
            self.start_recovery(now, now.saturating_duration_since(heard));
        }
        // The selected pair may have changed: probe the one data goes on now.
        let (sel, heard) = self
            .selected
            .and_then(|id| Some((id, self.checklist.get(id)?.last_heard.unwrap_or(now))))
            .unwrap_or((sel, heard));
        if self.liveness.probe_due(now, heard, &self.config) {
            self.send_consent(now, sel);
            self.liveness.probed(now, &self.config);
        }
    }

    /// A lite agent sends no checks and so cannot probe: the peer's checks arriving on
    /// pair `id` while the selected pair has been quiet past the limit (the peer's NAT
    /// rebound, or it moved) move data to `id`.
    pub(super) fn lite_follow(&mut self, now: Instant, id: PairId) {
        let quiet = self
            .selected
            .and_then(|s| self.checklist.get(s))
            .is_some_and(|s| {
                Liveness::is_quiet(
                    now,
                    s.last_heard.unwrap_or(now),
                    s.stats.smoothed_rtt,
                    &self.config,
                )
            });
        if quiet {
            tracing::info!(pair = %id, "selected pair quiet: following the peer's checks");
            self.select(now, id);
            self.events.push_back(Event::Recovery(Recovery::Switched));
        }
    }

    /// While recovering, after anything was heard: the selected pair live again ends
    /// recovery, else a live pair to switch to does. Whether recovery ended.
    pub(super) fn recovery_progress(&mut self, now: Instant) -> bool {
        if !self.liveness.is_recovering() {
            return false;
        }
        // A failed pair (its local address went away) is not live, however recent.
        let heard = self
            .selected
            .and_then(|id| self.checklist.get(id))
            .filter(|p| p.state != PairState::Failed)
            .and_then(|p| p.last_heard);
        if Liveness::is_live(now, heard, &self.config) || self.switch_to_live_pair(now) {
            self.end_recovery(now);
            return true;
        }
        false
    }

    /// When the liveness timers of the selected pair run out next.
    pub(super) fn liveness_poll_timeout(&self) -> Option<Instant> {
        if self.config.lite
            || matches!(
                self.connection_state,
                ConnectionState::Failed | ConnectionState::Closed
            )
        {
            return None;
        }
        let p = self.checklist.get(self.selected?)?;
        let heard = p.last_heard?;
        Some(
            self.liveness
                .poll_timeout(heard, p.stats.smoothed_rtt, &self.config),
        )
    }

    /// The selected pair is known dead (its local address went away): recovery starts
    /// now rather than once the pair has been quiet for the limit.
    pub(super) fn recover_now(&mut self, now: Instant) {
        if self.config.lite
            || self.liveness.is_recovering()
            || !matches!(
                self.connection_state,
                ConnectionState::Connected | ConnectionState::Completed
            )
        {
            return;
        }
        let quiet_for = self
            .selected
            .and_then(|id| self.checklist.get(id)?.last_heard)
            .map_or(std::time::Duration::ZERO, |h| {
                now.saturating_duration_since(h)
            });
        self.start_recovery(now, quiet_for);
    }

    /// Steps 1 and 2 of the ladder.
    fn start_recovery(&mut self, now: Instant, quiet_for: std::time::Duration) {
        tracing::info!(
            quiet_ms = quiet_for.as_millis() as u64,
            "selected pair quiet: recovering"
        );
        self.liveness.start_recovery(now);
        self.set_state(ConnectionState::Disconnected);
        self.events
            .push_back(Event::Recovery(Recovery::Started { quiet_for }));
        // The controlled side follows a new nomination from the peer (the old one named a
        // dead path).
        if self.role == Role::Controlled {
            self.nominations.nominated = None;
        }
        if self.switch_to_live_pair(now) {
            self.end_recovery(now);
            return;
        }
        self.check_everything_again(now);
    }

    /// Step 1: the best usable pair heard within the liveness interval, if it is not the
    /// selected one, carries data from now on. Whether one was found (recovery then
    /// ends: the pair is live).
    fn switch_to_live_pair(&mut self, now: Instant) -> bool {
        let policy = self.policy();
        let live = self
            .checklist
            .iter()
            .filter(|p| {
                Some(p.id) != self.selected
                    && policy.usable(p)
                    && Liveness::is_live(now, p.last_heard, &self.config)
            })
            .min_by_key(|p| {
                (
                    !p.is_direct(),
                    p.stats.smoothed_rtt,
                    std::cmp::Reverse(p.priority),
                )
            })
            .map(|p| p.id);
        let Some(id) = live else {
            return false;
        };
        // The quiet pair is dead: it must not win a later choice by its old RTT. A check
        // from the peer on it brings it back (a triggered check).
        if let Some(old) = self.selected {
            self.checklist.fail(old);
        }
        self.select(now, id);
        self.events.push_back(Event::Recovery(Recovery::Switched));
        if self.role == Role::Controlling && self.renominate {
            self.renominate_now(now, id);
        }
        true
    }

    /// The controlling agent nominates `id` again (renomination: a higher NOMINATION).
    fn renominate_now(&mut self, now: Instant, id: PairId) {
        self.nominations.counter += 1;
        self.nominations.nominating = Some(id);
        self.checklist.trigger_first(now, id);
    }

    /// Step 2: every pair is checked again, pairs are formed anew from every local and
    /// remote candidate, server-reflexive candidates are gathered again and TURN
    /// allocations refreshed.
    fn check_everything_again(&mut self, now: Instant) {
        self.checklist.reopen(now);
        let gone: Vec<_> = self
            .locals
            .iter()
            .filter(|l| l.gone)
            .map(|l| l.base)
            .collect();
        for base in gone {
            self.checklist.fail_base(base);
        }
        for addr in &self.withdrawn {
            self.checklist.fail_remote(*addr);
        }
        for local in 0..self.locals.len() {
            for remote in 0..self.remotes.len() {
                self.add_pair(local, remote);
            }
        }
        let succeeded: Vec<PairId> = self
            .checklist
            .iter()
            .filter(|p| p.state == PairState::Succeeded && p.check.is_none())
            .map(|p| p.id)
            .collect();
        for id in &succeeded {
            self.send_consent(now, *id);
        }
        let pairs = self
            .checklist
            .iter()
            .filter(|p| p.state != PairState::Failed)
            .count();
        self.events
            .push_back(Event::Recovery(Recovery::Checking { pairs }));
        self.gather_again(now);
    }

    /// Server-reflexive candidates again from every host base (a NAT that rebooted has a
    /// new public address; the new candidate is trickled), and a Refresh on every TURN
    /// allocation (a server that lost it answers 437 and the agent allocates again).
    fn gather_again(&mut self, now: Instant) {
        if self.config.relay_only {
            return;
        }
        let bases: Vec<_> = self
            .locals
            .iter()
            .filter(|l| l.candidate.kind == CandidateKind::Host && !l.gone)
            .map(|l| l.base)
            .collect();
        let servers = self.config.stun_servers.clone();
        for base in bases {
            for server in servers.iter().filter(|s| s.is_ipv4() == base.is_ipv4()) {
                self.gather_from(now, base, *server);
            }
        }
        for r in self.gathering.relays_mut() {
            if r.relayed.is_some() {
                r.client.refresh(now);
            }
        }
        self.drain_relays(now);
    }

    /// The selected pair is heard again: connected (completed if it is the nominated one),
    /// the extra pairs pruned again.
    fn end_recovery(&mut self, now: Instant) {
        let Some(after) = self.liveness.recovered(now) else {
            return;
        };
        tracing::info!(after_ms = after.as_millis() as u64, "recovered");
        let nominated = self.selected.is_some() && self.nominations.nominated == self.selected;
        self.set_state(if nominated {
            ConnectionState::Completed
        } else {
            ConnectionState::Connected
        });
        self.events
            .push_back(Event::Recovery(Recovery::Recovered { after }));
        if self.nominations.nominated.is_some() || self.role == Role::Controlling {
            self.checklist.request_prune();
        }
    }
}
