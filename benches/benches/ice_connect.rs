//! ICE connection set-up in floe-netsim: wall time to connect one pair of agents through
//! two NATs (with a STUN/TURN server), and 1,000 pairs connecting in one simulation.
//! The simulated time to connect, in RTTs, is printed once (it does not vary between
//! iterations: the run is deterministic). Results: docs/benchmarks.md.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use floe_ice::{Agent, AgentConfig, ConnectionState, Role};
use floe_netsim::{LinkConfig, NatConfig, Simulator};
use floe_sim::{exchange_candidates, run_until_connected, AgentNode, TurnServerNode};
use floe_turn::server::ServerConfig;

const SERVER: &str = "198.51.100.1:3478";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Two agents behind port-restricted NATs, 10 ms access links (RTT 44 ms); returns the
/// simulated time from candidate exchange to Connected.
fn one_pair(seed: u64) -> Duration {
    let mut sim = Simulator::new(seed);
    let internet = sim.internet();
    let now = sim.now();
    let server: SocketAddr = SERVER.parse().unwrap();
    sim.add_host(
        internet,
        server.ip(),
        TurnServerNode::new(server, ServerConfig::default(), now, seed),
    );
    let mut config = AgentConfig::default();
    config.stun_servers = vec![server];
    let mut link = LinkConfig::default();
    link.delay = Duration::from_millis(10);
    let mut ids = Vec::new();
    for (i, role) in [Role::Controlling, Role::Controlled]
        .into_iter()
        .enumerate()
    {
        let lan = sim
            .add_nat(
                internet,
                ip(&format!("203.0.113.{}", i + 1)),
                NatConfig::port_restricted_cone(),
            )
            .1;
        let host = ip("192.168.1.2");
        let id = sim.add_host_with_link(
            lan,
            host,
            link.clone(),
            AgentNode::new(Agent::new(config.clone(), role, now, seed + i as u64), now),
        );
        sim.with_node(id, |n: &mut AgentNode, now| {
            n.agent.add_host(now, SocketAddr::new(host, 5000), 0);
        });
        ids.push(id);
    }
    let (a, b) = (ids[0], ids[1]);
    sim.run_until_condition(Duration::from_secs(5), |s| {
        [a, b].iter().all(|id| {
            s.node::<AgentNode>(*id).agent.gathering_state() == floe_ice::GatheringState::Complete
        })
    });
    let start = exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.node::<AgentNode>(a)
        .reached(ConnectionState::Connected)
        .unwrap()
        - start
}

/// `n` pairs of agents on one LAN each, all connecting at once; returns how many
/// connected.
fn many_pairs(n: usize, seed: u64) -> usize {
    let mut sim = Simulator::new(seed);
    let internet = sim.internet();
    let now = sim.now();
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        let lan = sim
            .add_nat(
                internet,
                IpAddr::from([100, 64, (i / 250) as u8, (i % 250 + 1) as u8]),
                NatConfig::full_cone(),
            )
            .1;
        let mut ids = Vec::new();
        for (j, role) in [Role::Controlling, Role::Controlled]
            .into_iter()
            .enumerate()
        {
            let host = IpAddr::from([192, 168, 1, 2 + j as u8]);
            let id = sim.add_host(
                lan,
                host,
                AgentNode::new(
                    Agent::new(AgentConfig::default(), role, now, seed + (2 * i + j) as u64),
                    now,
                ),
            );
            sim.with_node(id, |node: &mut AgentNode, now| {
                node.agent.add_host(now, SocketAddr::new(host, 5000), 0);
            });
            ids.push(id);
        }
        exchange_candidates(&mut sim, ids[0], ids[1]);
        pairs.push((ids[0], ids[1]));
    }
    sim.run_for(Duration::from_secs(2));
    pairs
        .iter()
        .filter(|(a, _)| {
            matches!(
                sim.node::<AgentNode>(*a).agent.connection_state(),
                ConnectionState::Completed | ConnectionState::Connected
            )
        })
        .count()
}

fn bench(c: &mut Criterion) {
    let t = one_pair(1);
    println!(
        "simulated time to Connected through two NATs: {t:?} = {:.2} RTT (RTT 44 ms)",
        t.as_secs_f64() / 0.044
    );
    let mut g = c.benchmark_group("ice_connect");
    g.bench_function("one_pair_two_nats_wall_time", |b| b.iter(|| one_pair(1)));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("one_thousand_pairs_one_simulation", |b| {
        b.iter(|| {
            let connected = many_pairs(1000, 7);
            assert_eq!(connected, 1000);
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
