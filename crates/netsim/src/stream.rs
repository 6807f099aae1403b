//! Reliable, ordered byte streams between nodes: a minimal TCP.
//!
//! Streams exist so that a network that drops UDP can still be crossed the way TURN over
//! TCP or TLS crosses it. A stream's segments (SYN, data, FIN, RST) are real packets: they
//! cross links with their delay and rate limits, NATs map them in a TCP table of their own
//! (with the TCP mapping lifetime), and firewalls filter them by port. There is no
//! congestion control and no window; a segment the loss model hits is not dropped but
//! delayed by a retransmission timeout, and receivers reorder segments by sequence number.
//!
//! A stream is named by its [`StreamId`], the (local, remote) pair of socket addresses as
//! the node sees it, like a TCP 4-tuple. The connecting node picks its local port.
//!
//! The life of a stream, for the connecting node A and the listening node B:
//!
//! 1. B issues [`StreamCommand::Listen`] for its address and port.
//! 2. A issues [`StreamCommand::Connect`]; it may queue [`StreamCommand::Send`]s at once.
//! 3. B gets [`StreamEvent::Accepted`] (its `remote` is A's address as translated by any NAT
//!    in between); A gets [`StreamEvent::Connected`] when the SYN-ACK arrives, and its
//!    queued data flows.
//! 4. Either side sends; the other gets [`StreamEvent::Data`] in order.
//! 5. [`StreamCommand::Close`] sends a FIN: the peer gets [`StreamEvent::Closed`].
//!    [`StreamCommand::Reset`] sends a RST: the peer gets [`StreamEvent::Reset`].
//!
//! A connect to a port nobody listens on is answered with a RST. A connect whose SYN is
//! dropped (firewall, NAT filter) is reset after
//! [`SimConfig::stream_connect_timeout`](crate::SimConfig); an established stream one of
//! whose segments is dropped by a router is reset after
//! [`SimConfig::stream_abort_timeout`](crate::SimConfig), as TCP gives up retransmitting.
//!
//! # Example: only TCP gets out
//!
//! ```
//! use std::time::Duration;
//! use floe_netsim::nodes::{Peer, UdpEcho};
//! use floe_netsim::{Firewall, NatConfig, RouterConfig, Simulator, StreamCommand, StreamEvent, StreamId};
//!
//! let mut sim = Simulator::new(1);
//! let internet = sim.internet();
//! let relay = "198.51.100.1:443".parse().unwrap();
//! sim.add_host(internet, "198.51.100.1".parse().unwrap(), UdpEcho::new().listen(relay));
//! // A hotel network: NAT, and a firewall that drops all UDP.
//! let router = RouterConfig::nat("203.0.113.1".parse().unwrap(), NatConfig::symmetric())
//!     .with_firewall(Firewall::block_udp());
//! let (_, lan) = sim.add_router(internet, router);
//! let guest = sim.add_host(lan, "10.0.0.2".parse().unwrap(), Peer::new());
//!
//! let id = StreamId::new("10.0.0.2:50000".parse().unwrap(), relay);
//! let peer = sim.node_mut::<Peer>(guest);
//! peer.command(StreamCommand::Connect(id));
//! peer.command(StreamCommand::Send(id, b"TURN Allocate over TCP".to_vec()));
//! sim.run_for(Duration::from_secs(1));
//!
//! let peer = sim.node::<Peer>(guest);
//! assert_eq!(peer.stream_events[0].1, StreamEvent::Connected(id));
//! assert_eq!(peer.stream_bytes(), b"TURN Allocate over TCP");
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::packet::{Packet, Protocol, Segment, TcpFlags};
use crate::sim::{EventKind, Simulator};
use crate::topology::NodeId;
use crate::trace::{DropReason, Hop};

/// The largest payload of one segment (an Ethernet MSS).
pub const MSS: usize = 1460;

/// A stream as one node sees it: its own address and the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// This node's address and port.
    pub local: SocketAddr,
    /// The peer's address and port (as translated by NATs in between).
    pub remote: SocketAddr,
}

impl StreamId {
    /// A stream id.
    pub fn new(local: SocketAddr, remote: SocketAddr) -> Self {
        Self { local, remote }
    }
}

/// What a node asks the simulator to do with streams.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamCommand {
    /// Accept connections to this address and port (an unspecified IP listens on all of the
    /// node's addresses).
    Listen(SocketAddr),
    /// Open a stream from `local` (the node's address and a port it picks) to `remote`.
    Connect(StreamId),
    /// Send bytes; before the stream is connected they are queued.
    Send(StreamId, Vec<u8>),
    /// Close the sending direction (FIN).
    Close(StreamId),
    /// Abort the stream (RST).
    Reset(StreamId),
}

/// What the simulator tells a node about its streams.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// A peer connected to one of the node's listening addresses.
    Accepted(StreamId),
    /// A stream the node opened is now connected.
    Connected(StreamId),
    /// Bytes arrived, in order.
    Data(StreamId, Vec<u8>),
    /// The peer closed its sending direction.
    Closed(StreamId),
    /// The stream was reset (by the peer, because nobody listened, or after a timeout).
    Reset(StreamId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Established,
}

/// One node's end of a stream.
#[derive(Debug)]
pub(crate) struct Endpoint {
    state: State,
    send_seq: u32,
    recv_next: u32,
    reorder: BTreeMap<u32, (TcpFlags, Vec<u8>)>,
    queued: Vec<Vec<u8>>,
    close_queued: bool,
    fin_sent: bool,
    fin_received: bool,
}

impl Endpoint {
    fn new(state: State, recv_next: u32) -> Self {
        Self {
            state,
            send_seq: 0,
            recv_next,
            reorder: BTreeMap::new(),
            queued: Vec::new(),
            close_queued: false,
            fin_sent: false,
            fin_received: false,
        }
    }
}

const SYN: TcpFlags = TcpFlags {
    syn: true,
    ack: false,
    fin: false,
    rst: false,
};
const SYN_ACK: TcpFlags = TcpFlags {
    syn: true,
    ack: true,
    fin: false,
    rst: false,
};
const ACK: TcpFlags = TcpFlags {
    syn: false,
    ack: true,
    fin: false,
    rst: false,
};
const FIN: TcpFlags = TcpFlags {
    syn: false,
    ack: true,
    fin: true,
    rst: false,
};
const RST: TcpFlags = TcpFlags {
    syn: false,
    ack: true,
    fin: false,
    rst: true,
};

impl Simulator {
    pub(crate) fn stream_command(&mut self, node: NodeId, command: StreamCommand) {
        let host = &mut self.hosts[node.0 as usize];
        match command {
            StreamCommand::Listen(addr) => {
                if !host.listeners.contains(&addr) {
                    host.listeners.push(addr);
                }
            }
            StreamCommand::Connect(id) => {
                if host.streams.contains_key(&id) {
                    return;
                }
                host.streams.insert(id, Endpoint::new(State::Connecting, 0));
                self.send_segment(node, id, SYN, Vec::new());
                let at = self.clock.elapsed() + self.config.stream_connect_timeout;
                self.schedule(at, EventKind::StreamConnectTimeout(node, Box::new(id)));
            }
            StreamCommand::Send(id, bytes) => match host.streams.get_mut(&id) {
                None => self.notify(node, vec![crate::StreamEvent::Reset(id)]),
                Some(ep) if ep.fin_sent || ep.close_queued => {}
                Some(ep) if ep.state == State::Connecting => ep.queued.push(bytes),
                Some(_) => self.send_data(node, id, &bytes),
            },
            StreamCommand::Close(id) => match host.streams.get_mut(&id) {
                None => {}
                Some(ep) if ep.state == State::Connecting => ep.close_queued = true,
                Some(_) => self.send_fin(node, id),
            },
            StreamCommand::Reset(id) => {
                if host.streams.remove(&id).is_some() {
                    self.send_raw(node, id, RST, 0, Vec::new());
                }
            }
        }
    }

    fn send_data(&mut self, node: NodeId, id: StreamId, bytes: &[u8]) {
        for chunk in bytes.chunks(MSS) {
            self.send_segment(node, id, ACK, chunk.to_vec());
        }
    }

    fn send_fin(&mut self, node: NodeId, id: StreamId) {
        let host = &mut self.hosts[node.0 as usize];
        let Some(ep) = host.streams.get_mut(&id) else {
            return;
        };
        if ep.fin_sent {
            return;
        }
        ep.fin_sent = true;
        let done = ep.fin_received;
        self.send_segment(node, id, FIN, Vec::new());
        if done {
            self.hosts[node.0 as usize].streams.remove(&id);
        }
    }

    /// Sends a segment of an existing endpoint, advancing its sequence number.
    fn send_segment(&mut self, node: NodeId, id: StreamId, flags: TcpFlags, payload: Vec<u8>) {
        let Some(ep) = self.hosts[node.0 as usize].streams.get_mut(&id) else {
            return;
        };
        let seq = ep.send_seq;
        let consumed = payload.len() as u32 + u32::from(flags.syn) + u32::from(flags.fin);
        ep.send_seq = ep.send_seq.wrapping_add(consumed);
        self.send_raw(node, id, flags, seq, payload);
    }

    fn send_raw(
        &mut self,
        node: NodeId,
        id: StreamId,
        flags: TcpFlags,
        seq: u32,
        payload: Vec<u8>,
    ) {
        let ack = self.hosts[node.0 as usize]
            .streams
            .get(&id)
            .map_or(0, |ep| ep.recv_next);
        self.next_packet += 1;
        let packet = Packet {
            id: self.next_packet,
            origin: node,
            protocol: Protocol::Tcp,
            ttl: crate::forward::TTL,
            src: id.local,
            dst: id.remote,
            payload,
            segment: Some(Box::new(Segment {
                flags,
                seq,
                ack,
                origin: (node, id),
            })),
        };
        self.stats.segments_sent += 1;
        let host = &mut self.hosts[node.0 as usize];
        host.stats.segments_sent += 1;
        match host.iface_for(id.local.ip(), id.remote.ip()) {
            Some(iface) => self.send_on_interface(node, iface, packet),
            None => self.drop_packet(Hop::Node(node), &packet, DropReason::NoSuchInterface),
        }
    }

    /// A segment reached `node`.
    pub(crate) fn receive_segment(&mut self, node: NodeId, packet: Packet) {
        let Some(segment) = packet.segment.as_deref().copied() else {
            return;
        };
        let id = StreamId::new(packet.dst, packet.src);
        let flags = segment.flags;
        let host = &mut self.hosts[node.0 as usize];
        let mut events = Vec::new();
        let mut flush_queued = None;
        if let Some(ep) = host.streams.get_mut(&id) {
            if flags.rst {
                host.streams.remove(&id);
                events.push(crate::StreamEvent::Reset(id));
            } else if !flags.syn || flags.ack {
                if segment.seq.wrapping_sub(ep.recv_next) < u32::MAX / 2 {
                    ep.reorder.insert(segment.seq, (flags, packet.payload));
                }
                while let Some((flags, payload)) = ep.reorder.remove(&ep.recv_next) {
                    if flags.syn {
                        ep.recv_next = ep.recv_next.wrapping_add(1);
                        if ep.state == State::Connecting {
                            ep.state = State::Established;
                            events.push(crate::StreamEvent::Connected(id));
                            flush_queued = Some((std::mem::take(&mut ep.queued), ep.close_queued));
                        }
                    }
                    if !payload.is_empty() {
                        ep.recv_next = ep.recv_next.wrapping_add(payload.len() as u32);
                        events.push(crate::StreamEvent::Data(id, payload));
                    }
                    if flags.fin {
                        ep.recv_next = ep.recv_next.wrapping_add(1);
                        ep.fin_received = true;
                        events.push(crate::StreamEvent::Closed(id));
                    }
                }
                if ep.fin_received && ep.fin_sent {
                    host.streams.remove(&id);
                }
            }
        } else if flags.syn && !flags.ack && is_listening(&host.listeners, packet.dst) {
            host.streams
                .insert(id, Endpoint::new(State::Established, 1));
            self.send_segment(node, id, SYN_ACK, Vec::new());
            events.push(crate::StreamEvent::Accepted(id));
        } else if !flags.rst {
            // Nobody here: answer with a reset, as TCP does.
            self.send_raw(node, id, RST, 0, Vec::new());
        }
        if let Some((queued, close)) = flush_queued {
            for bytes in queued {
                self.send_data(node, id, &bytes);
            }
            if close {
                self.send_fin(node, id);
            }
        }
        self.notify(node, events);
    }

    /// Hands stream events to a node and drains its output.
    fn notify(&mut self, node: NodeId, events: Vec<crate::StreamEvent>) {
        if events.is_empty() {
            return;
        }
        let now = self.clock.now();
        for event in events {
            self.hosts[node.0 as usize]
                .node
                .handle_stream_event(now, event);
        }
        self.drain(node);
    }

    /// A router dropped a segment: the sender gives up after the abort timeout.
    pub(crate) fn segment_dropped(&mut self, segment: &Segment) {
        if segment.flags.rst {
            return;
        }
        let (node, id) = segment.origin;
        let at = self.clock.elapsed() + self.config.stream_abort_timeout;
        self.schedule(at, EventKind::StreamAbort(node, Box::new(id)));
    }

    pub(crate) fn stream_timeout(&mut self, node: NodeId, id: StreamId, abort: bool) {
        let streams = &mut self.hosts[node.0 as usize].streams;
        let expired = streams
            .get(&id)
            .is_some_and(|ep| abort || ep.state == State::Connecting);
        if expired {
            streams.remove(&id);
            self.notify(node, vec![crate::StreamEvent::Reset(id)]);
        }
    }
}

fn is_listening(listeners: &[SocketAddr], local: SocketAddr) -> bool {
    listeners
        .iter()
        .any(|l| l.port() == local.port() && (l.ip() == local.ip() || l.ip().is_unspecified()))
}
