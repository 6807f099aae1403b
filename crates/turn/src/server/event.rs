//! What the server core reports to its runtime ([`Server::poll_event`]): the life of each
//! allocation (RFC 8656 §7.2 created, §8 refreshed or deleted, §7 expired), with the
//! fields an operator logs or a fleet registry records. The core counts
//! ([`Server::stats`]); it does not log these itself.
//!
//! [`Server::poll_event`]: super::Server::poll_event
//! [`Server::stats`]: super::Server::stats

use std::net::SocketAddr;
use std::time::Duration;

use super::allocation::FiveTuple;

/// What happened in the server core.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An allocation was created, refreshed, expired or deleted.
    Allocation(AllocationEvent),
}

/// A change in one allocation's life, with who owns it and what it relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationEvent {
    /// The allocation's 5-tuple.
    pub five_tuple: FiveTuple,
    /// The authenticated user (a configured user or a TURN REST username; never a
    /// password, key or nonce).
    pub username: String,
    /// Its relayed transport addresses (two for a dual-stack allocation).
    pub relayed: Vec<SocketAddr>,
    /// What happened.
    pub change: AllocationChange,
    /// Payload bytes relayed to peers so far.
    pub bytes_to_peers: u64,
    /// Payload bytes relayed to the client so far.
    pub bytes_to_clients: u64,
}

/// What happened to an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllocationChange {
    /// Allocate succeeded, for this lifetime.
    Created(Duration),
    /// Refresh succeeded, for this lifetime.
    Refreshed(Duration),
    /// The lifetime ran out.
    Expired,
    /// The client ended it (the reason: `refresh` or `connection closed`).
    Deleted(&'static str),
}

/// Most events kept for a runtime that does not poll them; the oldest go first.
pub const MAX_EVENTS: usize = 1024;
