//! One allocation's state (RFC 8656 §6): relayed addresses, expiry, permissions (§9) and
//! channels (§12).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use floe_stun::TransactionId;

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

#[derive(Debug)]
pub(crate) struct Allocation {
    pub(crate) username: String,
    pub(crate) relayed: Vec<SocketAddr>,
    pub(crate) expires: Instant,
    /// Permissions by peer IP; the port is not part of a permission (§9).
    pub(crate) permissions: HashMap<IpAddr, Instant>,
    pub(crate) channels: HashMap<u16, Channel>,
    pub(crate) channel_by_peer: HashMap<SocketAddr, u16>,
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
}

/// A change in an allocation's life; each gets one `info` log line with the same
/// fields (user, 5-tuple, relayed addresses, bytes each way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Allocate succeeded, for this lifetime.
    Created(Duration),
    /// Refresh succeeded, for this lifetime.
    Refreshed(Duration),
    /// The lifetime ran out.
    Expired,
    /// The client ended it (the reason: `refresh` or `connection closed`).
    Deleted(&'static str),
}

/// Relayed addresses, comma-separated, for logs.
struct Relayed<'a>(&'a [SocketAddr]);

impl fmt::Display for Relayed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// One lifecycle log line: the shared fields, then the event's own, then the message.
/// Usernames are logged (they are authenticated, so the operator's or their REST
/// issuer's); passwords, keys and nonces never are.
macro_rules! lifecycle {
    ($a:expr, $ft:expr, $msg:literal $(, $field:ident = $value:expr)*) => {
        tracing::info!(
            user = %$a.username,
            transport = %$ft.transport.as_str(),
            client = %$ft.client,
            server = %$ft.server,
            relayed = %Relayed(&$a.relayed),
            bytes_to_peers = $a.bytes_to_peers,
            bytes_to_clients = $a.bytes_to_clients,
            $($field = $value,)*
            $msg
        )
    };
}

impl Allocation {
    /// Logs a change in the allocation's life.
    pub(crate) fn log(&self, ft: &FiveTuple, event: Lifecycle) {
        match event {
            Lifecycle::Created(l) => {
                lifecycle!(self, ft, "allocation created", lifetime_s = l.as_secs());
            }
            Lifecycle::Refreshed(l) => {
                lifecycle!(self, ft, "allocation refreshed", lifetime_s = l.as_secs());
            }
            Lifecycle::Expired => lifecycle!(self, ft, "allocation expired"),
            Lifecycle::Deleted(reason) => {
                lifecycle!(
                    self,
                    ft,
                    "allocation deleted",
                    reason = tracing::field::display(reason)
                );
            }
        }
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
        for n in dead {
            if let Some(c) = self.channels.remove(&n) {
                self.channel_by_peer.remove(&c.peer);
            }
        }
    }
}
