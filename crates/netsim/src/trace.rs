//! The in-memory packet log: what happened to every packet at every hop.
//!
//! Enable it with [`Simulator::enable_trace`](crate::Simulator::enable_trace). Each
//! [`TraceEntry`] records the virtual time, the hop, the addresses before and after the hop
//! (they differ where a NAT translated them) and the [`Verdict`]. Two runs with the same seed
//! produce equal traces.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::packet::Protocol;
use crate::topology::{NetId, NodeId, RouterId};

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// The link's loss model lost it.
    Loss,
    /// The link's rate-limit queue was full.
    QueueFull,
    /// The link was cut ([`LinkConfig::up`](crate::LinkConfig::up) is false).
    LinkDown,
    /// The sending or receiving interface was down.
    InterfaceDown,
    /// The source address is not one of the sending node's interfaces.
    NoSuchInterface,
    /// No host, router or route for the destination address.
    NoRoute,
    /// A NAT received it on its external side and had no mapping for the destination.
    NoMapping,
    /// A NAT's filtering behaviour (RFC 4787 §5) refused it.
    Filtered,
    /// Sent to the NAT's own external address from inside with hairpinning off (RFC 4787 §6).
    HairpinDisabled,
    /// A firewall rule refused it.
    Firewall,
    /// The NAT had no free external port left.
    PortsExhausted,
    /// The packet crossed too many routers (a routing loop).
    HopLimit,
}

/// What happened to a packet at a hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// A node handed it to the simulator.
    Sent,
    /// A NAT rewrote its addresses and passed it on.
    Translated,
    /// A router passed it on unchanged.
    Forwarded,
    /// It reached the destination node.
    Delivered,
    /// It was dropped.
    Dropped(DropReason),
}

/// Where a trace entry was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hop {
    /// At the sending node.
    Node(NodeId),
    /// Crossing a link of a node's interface (`iface` is the interface index).
    Interface {
        /// The node.
        node: NodeId,
        /// The interface index.
        iface: usize,
    },
    /// Inside a network (routing).
    Network(NetId),
    /// At a router (NAT and/or firewall), including its external link.
    Router(RouterId),
}

/// One record of the packet log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// Virtual time since the start of the run.
    pub time: Duration,
    /// The packet's id, unique per run and in send order.
    pub packet: u64,
    /// The hop.
    pub hop: Hop,
    /// UDP or TCP.
    pub protocol: Protocol,
    /// Source before the hop.
    pub src: SocketAddr,
    /// Destination before the hop.
    pub dst: SocketAddr,
    /// Source after the hop (differs when a NAT translated it).
    pub src_after: SocketAddr,
    /// Destination after the hop.
    pub dst_after: SocketAddr,
    /// Payload length in bytes.
    pub len: usize,
    /// What happened.
    pub verdict: Verdict,
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>12.6}s #{:<6} {:?} {} {} -> {}",
            self.time.as_secs_f64(),
            self.packet,
            self.hop,
            self.protocol,
            self.src,
            self.dst
        )?;
        if self.src != self.src_after || self.dst != self.dst_after {
            write!(f, " => {} -> {}", self.src_after, self.dst_after)?;
        }
        write!(f, " len={} {:?}", self.len, self.verdict)
    }
}
