//! A NAT traversal matrix: two hosts behind every pair of NAT types learn their
//! server-reflexive addresses from a STUN server (floe-stun), exchange them, and punch
//! holes ICE-style (checks to the peer's reflexive address, answers to wherever a check came
//! from, peer-reflexive learning). The outcome must match RFC 4787 theory.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use floe_netsim::{NatConfig, Node, Simulator, Transmit};

/// A minimal connectivity-check engine.
struct Puncher {
    local: SocketAddr,
    reflexive: Option<SocketAddr>,
    targets: Vec<SocketAddr>,
    heard_from_peer: bool,
    next: Option<Instant>,
    rounds: u32,
    out: VecDeque<Transmit>,
}

impl Puncher {
    fn new(local: &str) -> Self {
        Self {
            local: sa(local),
            reflexive: None,
            targets: Vec::new(),
            heard_from_peer: false,
            next: None,
            rounds: 0,
            out: VecDeque::from([Transmit {
                source: sa(local),
                destination: sa(STUN1),
                bytes: binding_request(1),
            }]),
        }
    }

    fn start(&mut self, now: Instant, peer_reflexive: SocketAddr) {
        self.targets.push(peer_reflexive);
        self.next = Some(now);
    }
}

impl Node for Puncher {
    fn handle_receive(&mut self, _: Instant, _: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        if remote == sa(STUN1) {
            self.reflexive = Some(mapped_address(bytes));
            return;
        }
        self.heard_from_peer = true;
        if bytes == b"check" {
            // Answer where the check came from, and check back there too (peer-reflexive).
            self.out.push_back(Transmit {
                source: self.local,
                destination: remote,
                bytes: b"ack".to_vec(),
            });
            if !self.targets.contains(&remote) {
                self.targets.push(remote);
            }
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.next
    }

    fn handle_timeout(&mut self, now: Instant) {
        for target in &self.targets {
            self.out.push_back(Transmit {
                source: self.local,
                destination: *target,
                bytes: b"check".to_vec(),
            });
        }
        self.rounds += 1;
        self.next = (self.rounds < 20).then(|| now + Duration::from_millis(50));
    }
}

fn connects(a: &NatConfig, b: &NatConfig) -> bool {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    sim.add_host(internet, ip("198.51.100.1"), StunServer::default());
    let (_, lan_a) = sim.add_nat(internet, ip("203.0.113.1"), a.clone());
    let (_, lan_b) = sim.add_nat(internet, ip("203.0.113.2"), b.clone());
    let pa = sim.add_host(lan_a, ip("192.168.1.2"), Puncher::new("192.168.1.2:5000"));
    let pb = sim.add_host(lan_b, ip("192.168.1.2"), Puncher::new("192.168.1.2:5000"));
    sim.run_for(Duration::from_millis(100));
    // Signalling: swap the server-reflexive candidates.
    let ra = sim.node::<Puncher>(pa).reflexive.unwrap();
    let rb = sim.node::<Puncher>(pb).reflexive.unwrap();
    let now = sim.now();
    sim.node_mut::<Puncher>(pa).start(now, rb);
    sim.node_mut::<Puncher>(pb).start(now, ra);
    sim.run_for(Duration::from_secs(2));
    sim.node::<Puncher>(pa).heard_from_peer && sim.node::<Puncher>(pb).heard_from_peer
}

#[test]
fn hole_punching_works_exactly_where_rfc_4787_says_it_can() {
    let nats = [
        ("full cone", NatConfig::full_cone()),
        ("restricted cone", NatConfig::restricted_cone()),
        ("port-restricted cone", NatConfig::port_restricted_cone()),
        ("symmetric", NatConfig::symmetric()),
    ];
    let wall = Instant::now();
    let mut failures = Vec::new();
    let mut connected = 0;
    for (name_a, a) in &nats {
        for (name_b, b) in &nats {
            let symmetric = |n: &str| n == "symmetric";
            // A symmetric NAT's check leaves from a new port: only a peer whose filter
            // ignores ports (endpoint-independent or address-dependent) lets it in.
            let expected = !(symmetric(name_a)
                && (symmetric(name_b) || *name_b == "port-restricted cone")
                || symmetric(name_b) && *name_a == "port-restricted cone");
            let works = connects(a, b);
            connected += usize::from(works);
            if works != expected {
                failures.push(format!("{name_a} <-> {name_b}: expected {expected}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Everything but port-restricted/symmetric (both ways) and symmetric/symmetric.
    assert_eq!(connected, 13);
    // 16 pairs, ~2 s of simulated time each.
    assert!(
        wall.elapsed() < Duration::from_secs(5),
        "{:?}",
        wall.elapsed()
    );
}
