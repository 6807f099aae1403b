//! The [`Node`] trait: how a sans-IO state machine plugs into the simulator.
//!
//! A node is anything that takes inputs with the current time and hands out outputs when
//! polled, in the style of quinn-proto and str0m: an ICE agent, a STUN or TURN server, a UDP
//! echo. The simulator owns the node, feeds it, and after every input drains it in this
//! order: [`poll_transmit`](Node::poll_transmit) until `None`,
//! [`poll_stream_command`](Node::poll_stream_command) until `None`, then
//! [`poll_timeout`](Node::poll_timeout) once.
//!
//! A node owns every port on each of its interfaces' addresses: a datagram sent to any port
//! of one of its addresses is handed to [`handle_receive`](Node::handle_receive) with the
//! `local` address it arrived on. A [`Transmit`]'s `source` picks the interface; an
//! unspecified source IP (`0.0.0.0` or `::`) picks the first interface of the destination's
//! address family.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Instant;
//! use floe_netsim::{Node, Transmit};
//!
//! /// Wraps a sans-IO protocol state machine.
//! struct Wrapper { replies: Vec<Transmit> }
//!
//! impl Node for Wrapper {
//!     fn handle_receive(&mut self, _now: Instant, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
//!         self.replies.push(Transmit { source: local, destination: remote, bytes: bytes.to_vec() });
//!     }
//!     fn poll_transmit(&mut self) -> Option<Transmit> {
//!         self.replies.pop()
//!     }
//! }
//! ```

use std::any::Any;
use std::net::SocketAddr;
use std::time::Instant;

use crate::stream::{StreamCommand, StreamEvent};

/// A datagram a node wants to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local address to send from; its IP picks the interface.
    pub source: SocketAddr,
    /// Where to.
    pub destination: SocketAddr,
    /// The UDP payload.
    pub bytes: Vec<u8>,
}

/// A sans-IO state machine driven by the simulator.
///
/// Only [`handle_receive`](Node::handle_receive) and [`poll_transmit`](Node::poll_transmit)
/// are required; timers and streams have no-op defaults.
pub trait Node: 'static {
    /// A UDP datagram from `remote` arrived on the local address `local` at `now`.
    fn handle_receive(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, bytes: &[u8]);

    /// The next datagram to send, if any. Called until it returns `None` after every input.
    fn poll_transmit(&mut self) -> Option<Transmit>;

    /// When [`handle_timeout`](Node::handle_timeout) should next be called, if ever.
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    /// The time returned by [`poll_timeout`](Node::poll_timeout) has come.
    fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
    }

    /// Something happened on one of the node's streams (see [`crate::stream`]).
    fn handle_stream_event(&mut self, now: Instant, event: StreamEvent) {
        let _ = (now, event);
    }

    /// The next stream operation (listen, connect, send, close, reset), if any.
    fn poll_stream_command(&mut self) -> Option<StreamCommand> {
        None
    }
}

/// A [`Node`] that can be downcast to its concrete type.
pub(crate) trait DynNode: Node {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Node> DynNode for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Counters of one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Datagrams the node sent.
    pub sent: u64,
    /// Datagrams delivered to the node.
    pub received: u64,
    /// Bytes of datagram payload sent.
    pub bytes_sent: u64,
    /// Bytes of datagram payload received.
    pub bytes_received: u64,
    /// Packets (datagrams and segments) the node sent that were dropped on the way, per
    /// reason (loss, filter, firewall...).
    pub dropped: crate::stats::DropCounts,
    /// Stream segments sent.
    pub segments_sent: u64,
    /// Stream segments received.
    pub segments_received: u64,
}
