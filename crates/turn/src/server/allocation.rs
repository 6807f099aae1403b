//! One allocation's state (RFC 8656 §6): relayed addresses, expiry, permissions (§9) and
//! channels (§12).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use floe_stun::TransactionId;

use super::event::{AllocationChange, AllocationEvent, Event};
use super::stats::AllocationKind;
use crate::Transport;

/// The 5-tuple that names an allocation (RFC 8656 §2): transport, client address (as the
/// server sees it) and server address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiveTuple {
    /// UDP or TCP.
    pub transport: Transport,
    /// The client's address as seen by the server.
    pub client: SocketAddr,
    /// The server address the client talks to.
    pub server: SocketAddr,
}

/// A channel binding (RFC 8656 §12).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Channel {
    pub(crate) peer: SocketAddr,
    pub(crate) expires: Instant,
}

/// How long an expired channel's number and peer stay reserved (RFC 8656 §12).
pub(crate) const CHANNEL_QUARANTINE: std::time::Duration = std::time::Duration::from_secs(300);
/// Most expired bindings remembered per allocation (beyond the bound channels' count).
const MAX_QUARANTINE: usize = 64;

#[derive(Debug)]
pub(crate) struct Allocation {
    pub(crate) username: String,
    pub(crate) relayed: Vec<SocketAddr>,
    pub(crate) expires: Instant,
    /// Permissions by peer IP; the port is not part of a permission (§9).
    pub(crate) permissions: HashMap<IpAddr, Instant>,
    pub(crate) channels: HashMap<u16, Channel>,
    pub(crate) channel_by_peer: HashMap<SocketAddr, u16>,
    /// Expired bindings (number, peer, until): for 5 minutes neither may be bound to
    /// anything else (RFC 8656 §12). At most as many as channels may be bound.
    pub(crate) quarantine: Vec<(u16, SocketAddr, Instant)>,
    /// The transaction that created the allocation (retransmissions get the same answer,
    /// §7.2 note).
    pub(crate) created_by: TransactionId,
    pub(crate) reservation: Option<[u8; 8]>,
    pub(crate) address_error: Option<(floe_stun::attributes::AddressFamily, u16)>,
    /// The allocation's bandwidth cap, when configured.
    pub(crate) bucket: Option<super::bandwidth::Bucket>,
    /// The user's bucket (`user_max_bps`), shared with the user's other allocations.
    pub(crate) user_bucket: Option<super::bandwidth::UserBucket>,
    /// Its kind, for the counters by kind.
    pub(crate) kind: AllocationKind,
    /// Payload bytes relayed to peers, for the log line at its end.
    pub(crate) bytes_to_peers: u64,
    /// Payload bytes relayed to the client.
    pub(crate) bytes_to_clients: u64,
    /// Holds a place in the fleet's quota ([`super::ServerConfig::fleet_quota`]),
    /// given back when it ends.
    pub(crate) fleet: bool,
    /// A TURN-TCP allocation (RFC 6062): its relayed address is a TCP listener.
    pub(crate) tcp: bool,
}

impl Allocation {
    /// The event that reports `change` to the runtime.
    pub(crate) fn event(&self, ft: &FiveTuple, change: AllocationChange) -> Event {
        Event::Allocation(AllocationEvent {
            five_tuple: *ft,
            username: self.username.clone(),
            relayed: self.relayed.clone(),
            change,
            bytes_to_peers: self.bytes_to_peers,
            bytes_to_clients: self.bytes_to_clients,
        })
    }

    /// The relayed address that talks to `peer` (same family), if any.
    pub(crate) fn relayed_for(&self, peer: &SocketAddr) -> Option<SocketAddr> {
        self.relayed
            .iter()
            .copied()
            .find(|r| r.is_ipv4() == peer.is_ipv4())
    }

    pub(crate) fn permitted(&self, now: Instant, ip: IpAddr) -> bool {
        self.permissions.get(&ip).is_some_and(|t| *t > now)
    }

    pub(crate) fn channel_for_peer(&self, now: Instant, peer: &SocketAddr) -> Option<u16> {
        let ch = *self.channel_by_peer.get(peer)?;
        self.channels
            .get(&ch)
            .filter(|c| c.expires > now)
            .map(|_| ch)
    }

    pub(crate) fn expire(&mut self, now: Instant) {
        self.permissions.retain(|_, t| *t > now);
        let dead: Vec<u16> = self
            .channels
            .iter()
            .filter(|(_, c)| c.expires <= now)
            .map(|(n, _)| *n)
            .collect();
        self.quarantine.retain(|(_, _, until)| *until > now);
        for n in dead {
            if let Some(c) = self.channels.remove(&n) {
                self.channel_by_peer.remove(&c.peer);
                self.quarantine
                    .push((n, c.peer, c.expires + CHANNEL_QUARANTINE));
            }
        }
        // Bounded: a binding lives at least its lifetime, so this rarely trims.
        let max = self.channels.len().max(MAX_QUARANTINE);
        if self.quarantine.len() > max {
            let excess = self.quarantine.len() - max;
            self.quarantine.drain(..excess);
        }
    }

    /// Whether binding `number` to `peer` would rebind, within 5 minutes of its
    /// expiry, a channel number to another peer or a peer to another number (§12).
    pub(crate) fn quarantined(&self, now: Instant, number: u16, peer: SocketAddr) -> bool {
        self.quarantine
            .iter()
            .any(|(n, p, until)| *until > now && ((*n == number) != (*p == peer)))
    }
}
