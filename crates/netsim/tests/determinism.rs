//! Same seed, same run, bit for bit; different seeds differ where randomness is involved.

mod common;

use std::time::Duration;

use common::*;
use floe_netsim::nodes::{Peer, UdpEcho};
use floe_netsim::{Capture, LinkConfig, NatConfig, PortAssignment, Simulator, TraceEntry};

/// Two NATed clients with random ports behind lossy, jittery links talk to an echo server.
fn run(seed: u64) -> (Vec<TraceEntry>, Vec<u8>) {
    let mut sim = Simulator::new(seed);
    sim.enable_trace();
    sim.enable_pcap(Capture::All);
    let internet = sim.internet();
    sim.add_host(internet, ip("198.51.100.1"), UdpEcho::new());
    let lossy = LinkConfig::with_delay(Duration::from_millis(20))
        .jitter(Duration::from_millis(10))
        .random_loss(0.05);
    let nat = NatConfig::symmetric().with_port_assignment(PortAssignment::Random);
    let mut clients = Vec::new();
    for i in 0..2u8 {
        let (_, lan) = sim.add_nat(internet, ip(&format!("203.0.113.{}", i + 1)), nat.clone());
        let client = sim.add_host_with_link(lan, ip("10.0.0.2"), lossy.clone(), Peer::new());
        clients.push(client);
    }
    let start = sim.now();
    for (i, client) in clients.iter().enumerate() {
        for n in 0..200u64 {
            let at = start + Duration::from_millis(n * 5 + i as u64);
            let port = 4000 + (n % 7) as u16;
            sim.node_mut::<Peer>(*client).send_at(
                at,
                sa(&format!("10.0.0.2:{port}")),
                sa("198.51.100.1:7"),
                n.to_be_bytes().to_vec(),
            );
        }
    }
    sim.run_for(Duration::from_secs(5));
    (sim.trace().to_vec(), sim.pcap_bytes())
}

#[test]
fn the_same_seed_gives_identical_traces_and_captures() {
    let (trace_a, pcap_a) = run(SEED);
    let (trace_b, pcap_b) = run(SEED);
    assert!(trace_a.len() > 1000);
    assert_eq!(trace_a, trace_b);
    assert_eq!(pcap_a, pcap_b);
}

#[test]
fn different_seeds_give_different_traces() {
    let (trace_a, _) = run(SEED);
    let (trace_b, _) = run(SEED + 1);
    assert_ne!(trace_a, trace_b);
}

#[test]
fn a_run_without_randomness_does_not_depend_on_the_seed() {
    let run = |seed| {
        let mut t = Topology::with_seed(NatConfig::symmetric(), seed);
        t.sim.enable_trace();
        t.binding(CLIENT, STUN1);
        t.binding(CLIENT, STUN2);
        t.sim.trace().to_vec()
    };
    assert_eq!(run(1), run(2));
}
