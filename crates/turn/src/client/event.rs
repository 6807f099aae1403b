//! What the client reports ([`Event`]) and where its allocation stands ([`ClientState`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use floe_stun::attributes::AddressFamily;

use super::TurnError;

/// What happened to the allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The allocation exists (RFC 8656 §7.3).
    Allocated {
        /// Relayed transport addresses (two for a dual allocation).
        relayed: Vec<SocketAddr>,
        /// The client's server-reflexive address (XOR-MAPPED-ADDRESS).
        mapped: Option<SocketAddr>,
        /// Granted lifetime.
        lifetime: Duration,
    },
    /// A dual allocation got only one family (ADDRESS-ERROR-CODE, §7.3).
    PartialAllocation {
        /// The family that failed.
        family: AddressFamily,
        /// 440 or 508.
        code: u16,
    },
    /// The Allocate failed; the client is done.
    AllocationFailed(TurnError),
    /// A Refresh succeeded.
    Refreshed {
        /// The new lifetime.
        lifetime: Duration,
    },
    /// The allocation is gone (refresh failed, or it expired); the client is done.
    AllocationLost(TurnError),
    /// A permission is installed (or refreshed for the first time after a failure).
    PermissionCreated(IpAddr),
    /// CreatePermission failed.
    PermissionFailed(IpAddr, TurnError),
    /// A channel is bound: data to `peer` now goes as ChannelData.
    ChannelBound {
        /// The peer.
        peer: SocketAddr,
        /// The channel number.
        channel: u16,
    },
    /// ChannelBind failed; data keeps going as Send indications.
    ChannelBindFailed(SocketAddr, TurnError),
    /// Deallocation finished (LIFETIME 0 acknowledged, or the allocation was already gone).
    Deallocated,
    /// A Connect succeeded (RFC 6062 §4.3): the server is connected to `peer`; open a
    /// new connection to the server and send [`Client::connection_bind`] on it within
    /// 30 s.
    ///
    /// [`Client::connection_bind`]: super::Client::connection_bind
    TcpConnected {
        /// The peer.
        peer: SocketAddr,
        /// The CONNECTION-ID to bind.
        id: u32,
    },
    /// A Connect failed (447: the server could not reach the peer; wait 10 s before
    /// trying the same peer again, §4.3).
    TcpConnectFailed(SocketAddr, TurnError),
    /// A peer with a permission connected to the relayed address (a ConnectionAttempt,
    /// RFC 6062 §4.4): to accept, bind `id` as for [`Event::TcpConnected`].
    ConnectionAttempt {
        /// The peer.
        peer: SocketAddr,
        /// The CONNECTION-ID to bind.
        id: u32,
    },
    /// The server relayed an ICMP error for data sent to `peer` (a Data indication with
    /// an ICMP attribute, RFC 8656 §11.6): the peer is unreachable, or the path's MTU is
    /// smaller (`error_data` then holds it). The port of `peer` is 0 when the server did
    /// not know it.
    IcmpReceived {
        /// The destination of the datagram that drew the error.
        peer: SocketAddr,
        /// The ICMP type and code, and the error data.
        icmp: floe_stun::attributes::Icmp,
    },
}

/// Where the allocation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientState {
    /// [`Client::allocate`](super::Client::allocate) not called yet.
    Idle,
    /// Allocate in flight.
    Allocating,
    /// Allocated; data can flow.
    Allocated,
    /// Deallocate in flight.
    Deallocating,
    /// Finished: failed, lost or deallocated.
    Closed,
}
