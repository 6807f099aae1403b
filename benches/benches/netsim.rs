//! floe-netsim throughput: simulated datagrams delivered per second of wall time through a
//! two-NAT topology (two hosts, each behind its own port-restricted-cone NAT, bouncing a
//! window of datagrams between them over their server-reflexive addresses).
//!
//! Target (issue: floe-netsim): >= 1 M packets/s. Results: docs/benchmarks.md.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::collections::VecDeque;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use floe_netsim::{Capture, NatConfig, Node, NodeId, Simulator, Transmit};

/// Sends its initial datagrams, then bounces every datagram back to its sender.
#[derive(Default)]
struct PingPong {
    out: VecDeque<Transmit>,
}

impl Node for PingPong {
    fn handle_receive(
        &mut self,
        _now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        self.out.push_back(Transmit {
            source: local,
            destination: remote,
            bytes: bytes.to_vec(),
        });
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Two hosts behind two NATs with `window` datagrams of `size` bytes in flight.
fn two_nat_topology(window: usize, size: usize) -> (Simulator, NodeId) {
    let mut sim = Simulator::new(1);
    let internet = sim.internet();
    let (_, lan_a) = sim.add_nat(
        internet,
        "203.0.113.1".parse().unwrap(),
        NatConfig::port_restricted_cone(),
    );
    let (_, lan_b) = sim.add_nat(
        internet,
        "203.0.113.2".parse().unwrap(),
        NatConfig::port_restricted_cone(),
    );
    let a = sim.add_host(lan_a, "192.168.1.2".parse().unwrap(), PingPong::default());
    let b = sim.add_host(lan_b, "192.168.1.2".parse().unwrap(), PingPong::default());
    // Hole punching: B opens its filter towards A (A's NAT drops this one), then A sends.
    let (a_local, b_local) = (sa("192.168.1.2:5000"), sa("192.168.1.2:6000"));
    let (a_public, b_public) = (sa("203.0.113.1:5000"), sa("203.0.113.2:6000"));
    sim.node_mut::<PingPong>(b).out.push_back(Transmit {
        source: b_local,
        destination: a_public,
        bytes: vec![0; size],
    });
    sim.run_for(Duration::from_millis(100));
    for _ in 0..window {
        sim.node_mut::<PingPong>(a).out.push_back(Transmit {
            source: a_local,
            destination: b_public,
            bytes: vec![0; size],
        });
    }
    sim.run_for(Duration::from_millis(100));
    (sim, a)
}

fn delivered_in(sim: &mut Simulator, span: Duration) -> u64 {
    let before = sim.stats().datagrams_delivered;
    sim.run_for(span);
    sim.stats().datagrams_delivered - before
}

fn bench(c: &mut Criterion) {
    let span = Duration::from_secs(1);
    let mut group = c.benchmark_group("netsim");
    for (window, size, capture) in [(64, 100, false), (1024, 100, false), (64, 100, true)] {
        let (mut probe, _) = two_nat_topology(window, size);
        let per_iter = delivered_in(&mut probe, span);
        group.throughput(Throughput::Elements(per_iter));
        let name = format!(
            "two_nats_window{window}_{size}B{}",
            if capture { "_pcap" } else { "" }
        );
        let (mut sim, _) = two_nat_topology(window, size);
        if capture {
            sim.enable_pcap(Capture::All);
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                if capture {
                    // Keep the in-memory capture from growing without bound.
                    sim.enable_pcap(Capture::All);
                }
                black_box(delivered_in(&mut sim, span))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
