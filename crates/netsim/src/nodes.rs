//! Ready-made nodes for tests: a UDP echo server and a scriptable peer.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use crate::node::{Node, Transmit};
use crate::stream::{StreamCommand, StreamEvent};

/// Sends every datagram back to where it came from, from the address it arrived on; echoes
/// stream data too, on every stream it accepts (after a [`StreamCommand::Listen`] given to
/// [`UdpEcho::listen`]).
#[derive(Debug, Default)]
pub struct UdpEcho {
    /// Datagrams echoed.
    pub echoed: u64,
    pending: VecDeque<Transmit>,
    commands: VecDeque<StreamCommand>,
}

impl UdpEcho {
    /// An echo server.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also accepts streams on `addr` and echoes their bytes.
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.commands.push_back(StreamCommand::Listen(addr));
        self
    }
}

impl Node for UdpEcho {
    fn handle_receive(
        &mut self,
        _now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        self.echoed += 1;
        self.pending.push_back(Transmit {
            source: local,
            destination: remote,
            bytes: bytes.to_vec(),
        });
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.pending.pop_front()
    }

    fn handle_stream_event(&mut self, _now: Instant, event: StreamEvent) {
        match event {
            StreamEvent::Data(id, bytes) => self.commands.push_back(StreamCommand::Send(id, bytes)),
            StreamEvent::Closed(id) => self.commands.push_back(StreamCommand::Close(id)),
            _ => {}
        }
    }

    fn poll_stream_command(&mut self) -> Option<StreamCommand> {
        self.commands.pop_front()
    }
}

/// A datagram a [`Peer`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// When it arrived.
    pub at: Instant,
    /// The local address it arrived on.
    pub local: SocketAddr,
    /// Who sent it (as seen after any NAT).
    pub remote: SocketAddr,
    /// The payload.
    pub bytes: Vec<u8>,
}

/// A scriptable endpoint: sends what the test queues (now or at a set time), records what
/// it receives, and does the same for streams.
#[derive(Debug, Default)]
pub struct Peer {
    /// Every datagram received, in order.
    pub received: Vec<Received>,
    /// Every stream event, in order.
    pub stream_events: Vec<(Instant, StreamEvent)>,
    outbox: VecDeque<Transmit>,
    scheduled: BTreeMap<(Instant, u64), Transmit>,
    scheduled_seq: u64,
    commands: VecDeque<StreamCommand>,
}

impl Peer {
    /// A peer with nothing to send.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a datagram to send as soon as the simulator polls the node.
    pub fn send(&mut self, source: SocketAddr, destination: SocketAddr, bytes: impl Into<Vec<u8>>) {
        self.outbox.push_back(Transmit {
            source,
            destination,
            bytes: bytes.into(),
        });
    }

    /// Queues a datagram to send at `at`.
    pub fn send_at(
        &mut self,
        at: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: impl Into<Vec<u8>>,
    ) {
        self.scheduled_seq += 1;
        self.scheduled.insert(
            (at, self.scheduled_seq),
            Transmit {
                source,
                destination,
                bytes: bytes.into(),
            },
        );
    }

    /// Queues a stream command.
    pub fn command(&mut self, command: StreamCommand) {
        self.commands.push_back(command);
    }

    /// All stream data received, concatenated, on any stream.
    pub fn stream_bytes(&self) -> Vec<u8> {
        self.stream_events
            .iter()
            .filter_map(|(_, e)| match e {
                StreamEvent::Data(_, bytes) => Some(bytes.as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }

    /// The remote addresses datagrams came from, in order.
    pub fn remotes(&self) -> Vec<SocketAddr> {
        self.received.iter().map(|r| r.remote).collect()
    }
}

impl Node for Peer {
    fn handle_receive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        self.received.push(Received {
            at: now,
            local,
            remote,
            bytes: bytes.to_vec(),
        });
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.scheduled.keys().next().map(|(at, _)| *at)
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some(entry) = self.scheduled.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let transmit = entry.remove();
            self.outbox.push_back(transmit);
        }
    }

    fn handle_stream_event(&mut self, now: Instant, event: StreamEvent) {
        self.stream_events.push((now, event));
    }

    fn poll_stream_command(&mut self) -> Option<StreamCommand> {
        self.commands.pop_front()
    }
}
