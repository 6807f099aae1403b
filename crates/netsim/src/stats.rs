//! Simulator-wide counters.

use crate::trace::DropReason;

const REASONS: usize = 11;

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
    }
}

/// Counters for the whole simulation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
    dropped: [u64; REASONS],
}

impl SimStats {
    /// Packets (datagrams and segments) dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[index(reason)]
    }

    /// Packets dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.dropped[index(reason)] += 1;
    }
}
