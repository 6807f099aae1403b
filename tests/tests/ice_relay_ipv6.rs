//! IPv6 relays through ICE (RFC 8656 §7.2): an agent with an IPv6 host address asks its
//! TURN server for an IPv6 relayed address as well (ADDITIONAL-ADDRESS-FAMILY; a server
//! without IPv4 relays is asked for the IPv6 one alone), and pairs relayed candidates of
//! both families.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use floe_ice::{Agent, AgentConfig, CandidateKind, Role, TurnServer};
use floe_netsim::{Firewall, PortPolicy, RouterConfig, Simulator};
use floe_sim::TurnServerNode;
use floe_tests::ice_nodes::{exchange_candidates, run_until_connected, AgentNode};
use floe_turn::server::ServerConfig;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Two IPv6-only hosts, each behind a firewall that lets UDP through only to and from
/// the TURN server's port: the only path between them is the relay, and the TURN server
/// (reached over IPv6) relays IPv6 only. Without an IPv6 relay there is no path at all
/// (the default IPv4 Allocate is refused with 440).
#[test]
fn ipv6_only_peers_whose_only_path_is_the_relay_connect_through_ipv6_relays() {
    let mut sim = Simulator::new(61);
    let internet = sim.internet();
    let server: SocketAddr = "[2001:db8::1]:3478".parse().unwrap();
    let now = sim.now();
    let mut config = ServerConfig::default();
    config.users.insert("ice".into(), "relay-password".into());
    let srv = sim.add_host(
        internet,
        server.ip(),
        TurnServerNode::new(server, config, now, 61),
    );
    let only_turn = Firewall::new(PortPolicy::AllowOnly(vec![3478]), PortPolicy::DenyAll);
    let mut agents = Vec::new();
    for (i, (host, role)) in [
        ("2001:db8:a::2", Role::Controlling),
        ("2001:db8:b::2", Role::Controlled),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, lan) = sim.add_router(internet, RouterConfig::firewall(only_turn.clone()));
        let now = sim.now();
        let agent = Agent::new(AgentConfig::default(), role, now, 62 + i as u64);
        let id = sim.add_host(lan, ip(host), AgentNode::new(agent, now));
        let local = SocketAddr::new(ip(host), 5000);
        sim.with_node(id, |n: &mut AgentNode, now| {
            n.agent.add_host(now, local, 0);
            n.agent
                .add_turn_server_with(now, TurnServer::new(local, server, "ice", "relay-password"));
        });
        agents.push(id);
    }
    let (a, b) = (agents[0], agents[1]);
    assert!(floe_sim::world::gathered(
        &mut sim,
        &[a, b],
        Duration::from_secs(5)
    ));
    for id in [a, b] {
        let relayed: Vec<_> = sim
            .node::<AgentNode>(id)
            .agent
            .local_candidates()
            .filter(|c| c.kind == CandidateKind::Relayed)
            .filter_map(floe_ice::Candidate::addr)
            .collect();
        assert_eq!(relayed.len(), 1, "{relayed:?}");
        assert!(relayed[0].is_ipv6(), "an IPv6 relay: {relayed:?}");
    }
    exchange_candidates(&mut sim, a, b);
    assert!(
        run_until_connected(&mut sim, a, b, Duration::from_secs(5)),
        "seed {}",
        sim.seed()
    );
    sim.run_for(Duration::from_secs(1));
    let s = sim.node::<AgentNode>(a).agent.selected_pair().unwrap();
    assert_eq!(s.local_kind, CandidateKind::Relayed, "{s:?}");
    assert!(s.local.is_ipv6() && s.remote.is_ipv6(), "{s:?}");
    sim.node_mut::<AgentNode>(a).send(b"over ipv6 relays");
    sim.node_mut::<AgentNode>(b).send(b"and back");
    sim.run_for(Duration::from_millis(500));
    assert!(
        sim.node::<TurnServerNode>(srv)
            .server
            .stats()
            .packets_to_peers
            > 0
    );
    assert!(sim
        .node::<AgentNode>(b)
        .received
        .iter()
        .any(|r| r.2 == b"over ipv6 relays"));
    assert!(sim
        .node::<AgentNode>(a)
        .received
        .iter()
        .any(|r| r.2 == b"and back"));
}
