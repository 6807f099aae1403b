//! floe-turn's client and server as floe-netsim nodes.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use floe_netsim::{Node, StreamCommand, StreamEvent, StreamId, Transmit};
use floe_stun::framing::{Framing, StreamDecoder};
use floe_turn::client::{Client, Event};
use floe_turn::server::{PortPool, Server, ServerConfig};
use floe_turn::Transport;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A TURN server on a simulated host: datagrams to `listen` and TCP streams to the same
/// address and port are client traffic (TLS is modelled as TCP); anything else arriving at
/// the host is for a relayed address.
#[derive(Debug)]
pub struct TurnServerNode {
    /// The server core.
    pub server: Server<PortPool<ChaCha8Rng>>,
    listen: SocketAddr,
    streams: HashMap<StreamId, StreamDecoder>,
    commands: VecDeque<StreamCommand>,
}

impl TurnServerNode {
    /// A server listening on `listen`, relaying from `listen`'s IP in 49152-65535.
    pub fn new(
        listen: SocketAddr,
        config: ServerConfig,
        now: Instant,
        seed: u64,
    ) -> TurnServerNode {
        let pool = PortPool::new(
            Some(listen.ip()).filter(IpAddr::is_ipv4),
            Some(listen.ip()).filter(IpAddr::is_ipv6),
            49_152..=65_535,
            ChaCha8Rng::seed_from_u64(seed),
        );
        TurnServerNode {
            server: Server::new(config, pool, now, seed),
            listen,
            streams: HashMap::new(),
            commands: VecDeque::from([StreamCommand::Listen(listen)]),
        }
    }

    /// Frames from one client stream, fed to the server; a corrupt stream is reset.
    fn stream_data(&mut self, now: Instant, id: StreamId, bytes: &[u8]) {
        let Some(decoder) = self.streams.get_mut(&id) else {
            return;
        };
        let mut frames = Vec::new();
        let ok = decoder.extend(bytes).is_ok() && {
            loop {
                match decoder.next_frame() {
                    Ok(Some((_, frame))) => frames.push(frame.to_vec()),
                    Ok(None) => break true,
                    Err(_) => break false,
                }
            }
        };
        for frame in frames {
            self.server
                .handle_client(now, Transport::Tcp, id.local, id.remote, &frame);
        }
        if !ok {
            self.streams.remove(&id);
            self.server
                .handle_connection_closed(now, id.local, id.remote);
            self.commands.push_back(StreamCommand::Reset(id));
        }
    }
}

impl Node for TurnServerNode {
    fn handle_receive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        if local == self.listen {
            self.server
                .handle_client(now, Transport::Udp, local, remote, bytes);
        } else {
            self.server.handle_peer(now, local, remote, bytes);
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        while let Some(t) = self.server.poll_transmit() {
            if t.transport == Transport::Udp {
                return Some(Transmit {
                    source: t.source,
                    destination: t.destination,
                    bytes: t.data,
                });
            }
            let id = StreamId::new(t.source, t.destination);
            if self.streams.contains_key(&id) {
                self.commands.push_back(StreamCommand::Send(id, t.data));
            }
        }
        None
    }

    fn poll_stream_command(&mut self) -> Option<StreamCommand> {
        self.commands.pop_front()
    }

    fn handle_stream_event(&mut self, now: Instant, event: StreamEvent) {
        match event {
            StreamEvent::Accepted(id) => {
                self.streams
                    .insert(id, StreamDecoder::new(Framing::StunTurn));
            }
            StreamEvent::Data(id, bytes) => self.stream_data(now, id, &bytes),
            StreamEvent::Closed(id) | StreamEvent::Reset(id)
                if self.streams.remove(&id).is_some() =>
            {
                self.server
                    .handle_connection_closed(now, id.local, id.remote);
            }
            _ => {}
        }
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.server.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.server.handle_timeout(now);
    }
}

/// A TURN client (UDP) on a simulated host, keeping its events and the data peers sent.
#[derive(Debug)]
pub struct TurnClientNode {
    /// The client.
    pub client: Client,
    /// Everything the client reported.
    pub events: Vec<Event>,
    /// Data relayed from peers: (when, peer, bytes).
    pub data: Vec<(Instant, SocketAddr, Vec<u8>)>,
    outbox: VecDeque<Transmit>,
}

impl TurnClientNode {
    /// Wraps a UDP client.
    pub fn new(client: Client) -> TurnClientNode {
        TurnClientNode {
            client,
            events: Vec::new(),
            data: Vec::new(),
            outbox: VecDeque::new(),
        }
    }

    /// Sends `data` to `peer` through the relay.
    pub fn send_to(&mut self, peer: SocketAddr, data: &[u8]) {
        let Ok(t) = self.client.send_to(peer, data) else {
            return;
        };
        self.outbox.push_back(Transmit {
            source: t.source,
            destination: t.destination,
            bytes: t.data,
        });
    }

    /// Whether an event matching `f` was reported.
    pub fn saw(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(f)
    }

    fn collect(&mut self) {
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
    }
}

impl Node for TurnClientNode {
    fn handle_receive(
        &mut self,
        now: Instant,
        _local: SocketAddr,
        _remote: SocketAddr,
        bytes: &[u8],
    ) {
        let data = &mut self.data;
        self.client
            .handle_receive(now, bytes, |peer, d| data.push((now, peer, d.to_vec())));
        self.collect();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.collect();
        if let Some(t) = self.outbox.pop_front() {
            return Some(t);
        }
        self.client.poll_transmit().map(|t| Transmit {
            source: t.source,
            destination: t.destination,
            bytes: t.data,
        })
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.client.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.client.handle_timeout(now);
        self.collect();
    }
}
