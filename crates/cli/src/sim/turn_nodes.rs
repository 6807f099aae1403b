//! floe-turn's client and server as floe-netsim nodes.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use floe_netsim::{Node, Transmit};
use floe_turn::client::{Client, Event};
use floe_turn::server::{PortPool, Server, ServerConfig};
use floe_turn::Transport;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A TURN server on a simulated host: datagrams to `listen` are client traffic, anything
/// else arriving at the host is for a relayed address.
#[derive(Debug)]
pub struct TurnServerNode {
    /// The server core.
    pub server: Server<PortPool<ChaCha8Rng>>,
    listen: SocketAddr,
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
        self.server.poll_transmit().map(|t| Transmit {
            source: t.source,
            destination: t.destination,
            bytes: t.data,
        })
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
        if let Some((peer, data)) = self.client.handle_datagram(now, bytes) {
            self.data.push((now, peer, data.to_vec()));
        }
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
