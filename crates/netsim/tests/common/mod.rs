//! Helpers shared by the integration tests: addresses, a STUN Binding responder built with
//! floe-stun, and a standard topology.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use floe_netsim::nodes::Peer;
use floe_netsim::{NatConfig, Node, NodeId, RouterId, Simulator, Transmit};
use floe_stun::attributes::XorMappedAddress;
use floe_stun::{Message, MessageBuilder, MessageType, TransactionId};

pub const SEED: u64 = 0x5eed_f10e;

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A STUN Binding responder (RFC 8489 §7.3.1) built with floe-stun: answers every Binding
/// request with the source address it saw in XOR-MAPPED-ADDRESS.
#[derive(Debug, Default)]
pub struct StunServer {
    pub requests: u64,
    out: VecDeque<Transmit>,
}

impl Node for StunServer {
    fn handle_receive(
        &mut self,
        _now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        let Ok(request) = Message::parse(bytes) else {
            return;
        };
        if request.message_type() != MessageType::BINDING_REQUEST {
            return;
        }
        self.requests += 1;
        let mut buf = [0u8; 128];
        let mut builder = MessageBuilder::new(
            &mut buf,
            MessageType::BINDING_SUCCESS,
            request.transaction_id(),
        )
        .unwrap();
        builder.add(&XorMappedAddress(remote)).unwrap();
        self.out.push_back(Transmit {
            source: local,
            destination: remote,
            bytes: builder.finish().to_vec(),
        });
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }
}

/// A Binding request with transaction id `[n; 12]`.
pub fn binding_request(n: u8) -> Vec<u8> {
    let mut buf = [0u8; 64];
    MessageBuilder::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([n; 12]),
    )
    .unwrap()
    .finish()
    .to_vec()
}

/// The XOR-MAPPED-ADDRESS of a Binding success response.
pub fn mapped_address(response: &[u8]) -> SocketAddr {
    let message = Message::parse(response).unwrap();
    assert_eq!(message.message_type(), MessageType::BINDING_SUCCESS);
    message.get::<XorMappedAddress>().unwrap().unwrap().0
}

/// Server-reflexive addresses a peer has learned, in order of arrival.
pub fn reflexive(sim: &Simulator, peer: NodeId) -> Vec<SocketAddr> {
    sim.node::<Peer>(peer)
        .received
        .iter()
        .map(|r| mapped_address(&r.bytes))
        .collect()
}

/// The internet with two STUN servers on different addresses (each listening on every
/// port), and one host behind a NAT.
pub struct Topology {
    pub sim: Simulator,
    pub nat: RouterId,
    pub client: NodeId,
    pub stun1: NodeId,
    pub stun2: NodeId,
}

pub const CLIENT: &str = "192.168.1.2:5000";
pub const NAT_IP: &str = "203.0.113.1";
pub const STUN1: &str = "198.51.100.1:3478";
pub const STUN1_ALT_PORT: &str = "198.51.100.1:3479";
pub const STUN2: &str = "198.51.100.2:3478";

impl Topology {
    pub fn new(nat: NatConfig) -> Self {
        Self::with_seed(nat, SEED)
    }

    pub fn with_seed(nat: NatConfig, seed: u64) -> Self {
        let mut sim = Simulator::new(seed);
        let internet = sim.internet();
        let stun1 = sim.add_host(internet, ip("198.51.100.1"), StunServer::default());
        let stun2 = sim.add_host(internet, ip("198.51.100.2"), StunServer::default());
        let (nat, lan) = sim.add_nat(internet, ip(NAT_IP), nat);
        let client = sim.add_host(lan, ip("192.168.1.2"), Peer::new());
        Self {
            sim,
            nat,
            client,
            stun1,
            stun2,
        }
    }

    /// Sends a Binding request from `from` to `to`, runs 1 s, and returns the mapped
    /// address if a response came back.
    pub fn binding(&mut self, from: &str, to: &str) -> Option<SocketAddr> {
        let before = self.sim.node::<Peer>(self.client).received.len();
        self.sim.node_mut::<Peer>(self.client).send(
            sa(from),
            sa(to),
            binding_request(before as u8),
        );
        self.sim.run_for(Duration::from_secs(1));
        let received = &self.sim.node::<Peer>(self.client).received;
        received.get(before).map(|r| mapped_address(&r.bytes))
    }

    /// Has `server` send a datagram from `from` to `to`; returns whether the client got it.
    pub fn unsolicited(&mut self, server: NodeId, from: &str, to: SocketAddr) -> bool {
        let before = self.sim.node::<Peer>(self.client).received.len();
        self.sim.with_node::<StunServer, _>(server, |s, _| {
            s.out.push_back(Transmit {
                source: sa(from),
                destination: to,
                bytes: b"unsolicited".to_vec(),
            });
        });
        self.sim.run_for(Duration::from_secs(1));
        self.sim.node::<Peer>(self.client).received.len() > before
    }
}
