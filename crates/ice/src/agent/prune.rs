//! Forgetting what a connected agent no longer needs, so that an idle agent stays small.

use super::{Agent, Purpose};
use crate::checklist::{Pair, PairState};
use crate::config::Role;

impl Agent {
    /// RFC 8445 §8.1.2: once a pair is nominated, Waiting and Frozen pairs leave the
    /// checklist and In-Progress checks stop. floe forgets every pair but the selected one
    /// (and, when it renominates as the controlling agent, the three fastest other direct
    /// pairs, which it keeps measuring), drops their transactions and gives back the
    /// capacity of its queues. Requests that arrive later on forgotten pairs are still
    /// answered, but only a nomination recreates a pair (see `handle_request`).
    pub(super) fn prune_after_nomination(&mut self) {
        self.prune_pending = false;
        let Some(selected) = self.selected else {
            return;
        };
        let mut keep = vec![selected];
        keep.extend(self.measured_pairs(selected));
        keep.extend(self.nominated);
        keep.extend(self.nominating);
        keep.sort_unstable();
        keep.dedup();
        keep.retain(|&i| i < self.pairs.len());
        // map[old index] = the new index of a kept pair.
        let mut map = vec![None; self.pairs.len()];
        for (new, &old) in keep.iter().enumerate() {
            if let Some(slot) = map.get_mut(old) {
                *slot = Some(new);
            }
        }
        let pairs = std::mem::take(&mut self.pairs);
        self.pairs = pairs
            .into_iter()
            .zip(&map)
            .filter_map(|(p, new)| new.map(|_| p))
            .collect();
        let remap = |i: usize| map.get(i).copied().flatten();
        self.selected = self.selected.and_then(remap);
        self.nominated = self.nominated.and_then(remap);
        self.nominating = self.nominating.and_then(remap);
        self.triggered = self.triggered.iter().filter_map(|&p| remap(p)).collect();
        self.transactions.retain(|_, o| match &mut o.purpose {
            Purpose::Check(p) | Purpose::Consent(p) | Purpose::CancelledCheck(p) => {
                match remap(*p) {
                    Some(n) => {
                        *p = n;
                        true
                    }
                    None => false,
                }
            }
            Purpose::Gather { .. } => true,
        });
        self.pruned = true;
        self.pairs.shrink_to_fit();
        self.triggered.shrink_to_fit();
        self.transactions.shrink_to_fit();
        self.remotes.shrink_to_fit();
        self.locals.shrink_to_fit();
        self.shrink_idle_queues();
    }

    /// When renominating as the controlling agent: the three fastest succeeded direct pairs
    /// other than `selected`, which the consent checks keep measuring.
    pub(super) fn measured_pairs(&self, selected: usize) -> Vec<usize> {
        if !(self.renominate && self.role == Role::Controlling) {
            return Vec::new();
        }
        let mut others: Vec<(usize, &Pair)> = self
            .pairs
            .iter()
            .enumerate()
            .filter(|&(q, p)| q != selected && p.state == PairState::Succeeded && p.is_direct())
            .collect();
        others.sort_by_key(|(_, p)| p.stats.smoothed_rtt);
        others.truncate(3);
        others.into_iter().map(|(q, _)| q).collect()
    }

    /// Gives back the capacity of empty event and transmit queues (a burst at start-up
    /// leaves them large).
    pub(super) fn shrink_idle_queues(&mut self) {
        if self.events.is_empty() && self.events.capacity() > 4 {
            self.events.shrink_to_fit();
        }
        if self.transmits.is_empty() && self.transmits.capacity() > 4 {
            self.transmits.shrink_to_fit();
        }
    }
}
