//! Counters: packets dropped per reason, and simulator-wide totals.

use std::fmt;

use crate::trace::DropReason;

const REASONS: usize = 12;

const ALL: [DropReason; REASONS] = [
    DropReason::Loss,
    DropReason::QueueFull,
    DropReason::LinkDown,
    DropReason::InterfaceDown,
    DropReason::NoSuchInterface,
    DropReason::NoRoute,
    DropReason::NoMapping,
    DropReason::Filtered,
    DropReason::HairpinDisabled,
    DropReason::Firewall,
    DropReason::PortsExhausted,
    DropReason::HopLimit,
];

fn index(reason: DropReason) -> usize {
    match reason {
        DropReason::Loss => 0,
        DropReason::QueueFull => 1,
        DropReason::LinkDown => 2,
        DropReason::InterfaceDown => 3,
        DropReason::NoSuchInterface => 4,
        DropReason::NoRoute => 5,
        DropReason::NoMapping => 6,
        DropReason::Filtered => 7,
        DropReason::HairpinDisabled => 8,
        DropReason::Firewall => 9,
        DropReason::PortsExhausted => 10,
        DropReason::HopLimit => 11,
    }
}

/// Packets dropped, counted per [`DropReason`].
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts([u64; REASONS]);

impl DropCounts {
    /// Packets dropped for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[index(reason)]
    }

    /// Packets dropped for any reason.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    pub(crate) fn count(&mut self, reason: DropReason) {
        self.0[index(reason)] += 1;
    }
}

impl fmt::Debug for DropCounts {
    /// Only the non-zero counts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                ALL.iter()
                    .filter(|r| self.get(**r) > 0)
                    .map(|r| (r, self.get(*r))),
            )
            .finish()
    }
}

/// Counters for the whole simulation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimStats {
    /// Events processed.
    pub events: u64,
    /// Datagrams sent by nodes.
    pub datagrams_sent: u64,
    /// Datagrams delivered to nodes.
    pub datagrams_delivered: u64,
    /// Stream segments sent (SYN, data, FIN, RST).
    pub segments_sent: u64,
    /// Stream segments delivered.
    pub segments_delivered: u64,
    /// Packets (datagrams and segments) dropped, per reason.
    pub drops: DropCounts,
}

impl SimStats {
    /// Packets (datagrams and segments) dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops.get(reason)
    }

    /// Packets dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.drops.total()
    }
}
