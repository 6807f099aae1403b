//! Packets as they travel through the simulated network.

use std::fmt;
use std::net::SocketAddr;

use crate::stream::StreamId;
use crate::topology::NodeId;

/// The transport protocol of a simulated packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// A UDP datagram.
    Udp,
    /// A segment of a simulated TCP-like byte stream (see [`crate::stream`]).
    Tcp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
        })
    }
}

/// TCP-like control flags carried by stream segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[allow(clippy::struct_excessive_bools)] // one bool per TCP header flag bit
pub struct TcpFlags {
    /// Connection request.
    pub syn: bool,
    /// Acknowledgement (set on everything but the first SYN).
    pub ack: bool,
    /// Orderly close.
    pub fin: bool,
    /// Abortive close.
    pub rst: bool,
}

impl TcpFlags {
    /// The TCP header flag byte for these flags (PSH is added for segments with data).
    pub fn bits(self, has_data: bool) -> u8 {
        u8::from(self.fin)
            | u8::from(self.syn) << 1
            | u8::from(self.rst) << 2
            | u8::from(has_data) << 3
            | u8::from(self.ack) << 4
    }
}

/// Stream segment metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) flags: TcpFlags,
    /// Sequence number: bytes sent before this segment's payload (SYN and FIN count as one).
    pub(crate) seq: u32,
    /// Cumulative acknowledgement number, for the pcap header only.
    pub(crate) ack: u32,
    /// The sending endpoint, so that a segment dropped in the network can abort it.
    pub(crate) origin: (NodeId, StreamId),
}

/// A packet in flight.
#[derive(Debug, Clone)]
pub(crate) struct Packet {
    /// Unique, in send order; ties trace entries of one packet together.
    pub(crate) id: u64,
    /// The node that sent it (for per-node drop counters).
    pub(crate) origin: NodeId,
    pub(crate) protocol: Protocol,
    /// Routers it may still cross (IP TTL / hop limit).
    pub(crate) ttl: u8,
    pub(crate) src: SocketAddr,
    pub(crate) dst: SocketAddr,
    pub(crate) payload: Vec<u8>,
    /// Boxed: stream segments are rare next to datagrams, and this keeps events small.
    pub(crate) segment: Option<Box<Segment>>,
}

impl Packet {
    /// The size counted against links' rate limits and queues: payload plus IP and
    /// transport headers.
    pub(crate) fn wire_len(&self) -> usize {
        let ip = if self.src.is_ipv4() { 20 } else { 40 };
        let transport = match self.protocol {
            Protocol::Udp => 8,
            Protocol::Tcp => 20,
        };
        ip + transport + self.payload.len()
    }
}
