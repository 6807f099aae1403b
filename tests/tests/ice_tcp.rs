//! ICE-TCP (RFC 6544) across simulated networks: peers whose UDP between them is
//! blocked, with no TURN server, connect over TCP candidates (active to passive, §6.2),
//! checks and data framed per RFC 4571; and where UDP works too, UDP is chosen (§4.2).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use floe_ice::{Agent, AgentConfig, ConnectionState, Role, Transport};
use floe_netsim::{Firewall, NatConfig, NetId, NodeId, RouterConfig, SimConfig, Simulator};
use floe_tests::ice_nodes::{exchange_candidates, run_until_connected, AgentNode};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An ICE-TCP agent at `ip`: a UDP host socket on port 5000 and a TCP listener on 5001.
fn agent(sim: &mut Simulator, net: NetId, at: &str, role: Role, seed: u64) -> NodeId {
    let mut config = AgentConfig::default();
    config.ice_tcp = true;
    let now = sim.now();
    let id = sim.add_host(
        net,
        ip(at),
        AgentNode::new(Agent::new(config, role, now, seed), now),
    );
    sim.with_node(id, |n: &mut AgentNode, now| {
        n.set_now(now);
        n.agent.add_host(now, SocketAddr::new(ip(at), 5000), 0);
        n.listen_tcp(SocketAddr::new(ip(at), 5001));
    });
    id
}

fn selected_transport(sim: &Simulator, id: NodeId) -> Transport {
    sim.node::<AgentNode>(id)
        .agent
        .selected_pair()
        .expect("a selected pair")
        .transport
}

fn exchange_data(sim: &mut Simulator, a: NodeId, b: NodeId) {
    sim.node_mut::<AgentNode>(a).send(b"ping over tcp");
    sim.node_mut::<AgentNode>(b).send(b"pong over tcp");
    sim.run_for(Duration::from_millis(500));
    let got = |id: NodeId, what: &[u8]| {
        sim.node::<AgentNode>(id)
            .received
            .iter()
            .any(|r| r.2 == what)
    };
    assert!(got(b, b"ping over tcp"), "seed {}", sim.seed());
    assert!(got(a, b"pong over tcp"), "seed {}", sim.seed());
}

/// A public host and a guest behind a NAT whose firewall drops all UDP (a hotel, a
/// corporate network), no TURN server: only the guest's active candidate reaching the
/// public host's passive one works.
fn udp_blocked(seed: u64, guest_role: Role) -> (Simulator, NodeId, NodeId) {
    let mut sim = Simulator::with_config(SimConfig::from_env_or(seed));
    let internet = sim.internet();
    let router = RouterConfig::nat(ip("203.0.113.1"), NatConfig::symmetric())
        .with_firewall(Firewall::block_udp());
    let (_, lan) = sim.add_router(internet, router);
    let other = match guest_role {
        Role::Controlling => Role::Controlled,
        Role::Controlled => Role::Controlling,
    };
    let public = agent(&mut sim, internet, "198.51.100.20", other, 1);
    let guest = agent(&mut sim, lan, "10.0.0.2", guest_role, 2);
    (sim, public, guest)
}

#[test]
fn peers_whose_udp_is_blocked_connect_over_ice_tcp_in_either_role() {
    for (seed, role) in [(11, Role::Controlling), (12, Role::Controlled)] {
        let (mut sim, public, guest) = udp_blocked(seed, role);
        exchange_candidates(&mut sim, public, guest);
        assert!(
            run_until_connected(&mut sim, public, guest, Duration::from_secs(5)),
            "not connected over ICE-TCP; seed {}",
            sim.seed()
        );
        // Nomination waits for the UDP pairs to have had their chance (§4.2).
        sim.run_for(Duration::from_secs(2));
        for id in [public, guest] {
            assert_eq!(
                selected_transport(&sim, id),
                Transport::Tcp,
                "seed {}",
                sim.seed()
            );
            assert_eq!(
                sim.node::<AgentNode>(id).agent.connection_state(),
                ConnectionState::Completed,
                "seed {}",
                sim.seed()
            );
        }
        // The guest connected out from its active candidate to the public passive one.
        let s = sim.node::<AgentNode>(guest).agent.selected_pair().unwrap();
        assert_eq!(s.local.port(), 9, "seed {}", sim.seed());
        assert_eq!(s.remote, "198.51.100.20:5001".parse().unwrap());
        exchange_data(&mut sim, public, guest);
        // Consent freshness runs over the TCP connection too (RFC 7675): still up later.
        sim.run_for(Duration::from_secs(40));
        for id in [public, guest] {
            assert_eq!(
                sim.node::<AgentNode>(id).agent.connection_state(),
                ConnectionState::Completed,
                "seed {}",
                sim.seed()
            );
        }
        exchange_data(&mut sim, public, guest);
    }
}

#[test]
fn udp_is_chosen_where_udp_and_tcp_both_work() {
    let mut sim = Simulator::with_config(SimConfig::from_env_or(21));
    let internet = sim.internet();
    let (_, lan) = sim.add_nat(
        internet,
        ip("203.0.113.1"),
        NatConfig::port_restricted_cone(),
    );
    let a = agent(&mut sim, lan, "192.168.1.2", Role::Controlling, 1);
    let b = agent(&mut sim, lan, "192.168.1.3", Role::Controlled, 2);
    exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(2));
    for id in [a, b] {
        assert_eq!(
            selected_transport(&sim, id),
            Transport::Udp,
            "seed {}",
            sim.seed()
        );
    }
    // RFC 6544 §8: once a UDP pair is nominated, the TCP connections ICE opened are
    // closed (both agents opened one to the other's passive candidate).
    for id in [a, b] {
        let closed = sim
            .node::<AgentNode>(id)
            .events
            .iter()
            .filter(|(_, e)| matches!(e, floe_ice::Event::CloseTcp { .. }))
            .count();
        assert!(closed >= 1, "no TCP connection closed; seed {}", sim.seed());
    }
    let tcp_pairs = sim
        .node::<AgentNode>(a)
        .agent
        .local_candidates()
        .filter(|c| floe_ice::Candidate::is_tcp(c))
        .count();
    assert_eq!(tcp_pairs, 2, "a passive and an active TCP candidate");
}

#[test]
fn without_ice_tcp_configured_tcp_candidates_are_not_used() {
    let (mut sim, public, guest) = udp_blocked(31, Role::Controlling);
    // The public agent does not do ICE-TCP: the guest's TCP candidates are ignored there,
    // and nothing else can work.
    sim.with_node(public, |n: &mut AgentNode, _| {
        assert!(n.agent.local_candidates().any(floe_ice::Candidate::is_tcp));
    });
    let mut config = AgentConfig::default();
    config.ice_tcp = false;
    let now = sim.now();
    let plain = sim.add_host(
        sim.internet(),
        ip("198.51.100.30"),
        AgentNode::new(Agent::new(config, Role::Controlled, now, 3), now),
    );
    sim.with_node(plain, |n: &mut AgentNode, now| {
        n.agent
            .add_host(now, "198.51.100.30:5000".parse().unwrap(), 0);
        n.listen_tcp("198.51.100.30:5001".parse().unwrap());
        assert!(!n.agent.local_candidates().any(floe_ice::Candidate::is_tcp));
    });
    exchange_candidates(&mut sim, plain, guest);
    assert!(!run_until_connected(
        &mut sim,
        plain,
        guest,
        Duration::from_secs(3)
    ));
}
