//! TURN transports in the ICE agent, in floe-netsim: UDP and TCP raced (Happy Eyeballs
//! style), losers cleaned up, unresponsive servers bounded, and re-allocation after the
//! TURN server restarts.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use floe_ice::{
    Agent, AgentConfig, CandidateKind, Event, GatheringState, Role, Transport, TurnServer,
};
use floe_netsim::{Firewall, NatConfig, NetId, NodeId, RouterConfig, RouterId, Simulator};
use floe_tests::ice_nodes::{exchange_candidates, run_until_connected, AgentNode};
use floe_tests::turn_nodes::TurnServerNode;
use floe_turn::server::ServerConfig;

const SERVER: &str = "198.51.100.1:3478";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn server_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.users.insert("ice".into(), "relay-password".into());
    config
}

fn turn_server(sim: &mut Simulator) -> NodeId {
    let internet = sim.internet();
    let now = sim.now();
    sim.add_host(
        internet,
        addr(SERVER).ip(),
        TurnServerNode::new(addr(SERVER), server_config(), now, 7),
    )
}

/// An agent behind its own NAT (with `firewall`), gathering from
/// `server` with UDP and TCP raced.
fn agent_behind(
    sim: &mut Simulator,
    (external, nat): (&str, NatConfig),
    firewall: Firewall,
    role: Role,
    seed: u64,
    server: SocketAddr,
) -> (NodeId, RouterId, NetId) {
    let config = RouterConfig::nat(ip(external), nat).with_firewall(firewall);
    let (router, lan) = sim.add_router(sim.internet(), config);
    let now = sim.now();
    let mut c = AgentConfig::default();
    c.stun_servers = vec![server];
    let id = sim.add_host(
        lan,
        ip("192.168.1.2"),
        AgentNode::new(Agent::new(c, role, now, seed), now),
    );
    let local = addr("192.168.1.2:5000");
    sim.with_node(id, |n: &mut AgentNode, now| {
        n.set_now(now);
        n.agent.add_host(now, local, 0);
        n.agent
            .add_turn_server_with(now, TurnServer::new(local, server, "ice", "relay-password"));
    });
    (id, router, lan)
}

/// The usual subject: a controlling agent behind a port-restricted home NAT with
/// `firewall`, gathering from the floe STUN/TURN server.
fn home_agent(sim: &mut Simulator, firewall: Firewall, seed: u64) -> (NodeId, RouterId, NetId) {
    agent_behind(
        sim,
        ("203.0.113.1", NatConfig::port_restricted_cone()),
        firewall,
        Role::Controlling,
        seed,
        addr(SERVER),
    )
}

fn events(sim: &Simulator, id: NodeId) -> Vec<(Instant, Event)> {
    sim.node::<AgentNode>(id).events.clone()
}

fn relay_allocated(sim: &Simulator, id: NodeId) -> Vec<(Instant, Transport)> {
    events(sim, id)
        .into_iter()
        .filter_map(|(t, e)| match e {
            Event::RelayAllocated { transport, .. } => Some((t, transport)),
            _ => None,
        })
        .collect()
}

fn gathered(sim: &mut Simulator, ids: &[NodeId], limit: Duration) -> bool {
    sim.run_until_condition(limit, |s| {
        ids.iter()
            .all(|id| s.node::<AgentNode>(*id).agent.gathering_state() == GatheringState::Complete)
    })
}

#[test]
fn where_udp_works_the_udp_allocation_wins_and_tcp_is_never_opened() {
    let mut sim = Simulator::new(1);
    let server = turn_server(&mut sim);
    let start = sim.now();
    let (a, _, _) = home_agent(&mut sim, Firewall::open(), 1);
    assert!(gathered(&mut sim, &[a], Duration::from_secs(2)));
    let won = relay_allocated(&sim, a);
    assert_eq!(won.len(), 1);
    assert_eq!(won[0].1, Transport::Udp);
    // Allocated before the 150 ms stagger ran out: TCP never started.
    assert!(won[0].0 - start < Duration::from_millis(150), "{won:?}");
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.node_stats(a).segments_sent, 0, "no TCP segment sent");
    assert_eq!(
        sim.node::<TurnServerNode>(server)
            .server
            .stats()
            .allocations,
        1
    );
}

#[test]
fn where_udp_is_blocked_tcp_wins_after_the_stagger() {
    let mut sim = Simulator::new(2);
    let server = turn_server(&mut sim);
    let start = sim.now();
    let (a, _, _) = home_agent(&mut sim, Firewall::block_udp(), 2);
    assert!(gathered(&mut sim, &[a], Duration::from_secs(6)));
    let won = relay_allocated(&sim, a);
    assert_eq!(won.len(), 1, "{won:?}");
    assert_eq!(won[0].1, Transport::Tcp);
    // 150 ms stagger, a TCP handshake and two Allocate round trips (401, then success)
    // at 4 ms RTT.
    let took = won[0].0 - start;
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_millis(200),
        "{took:?}"
    );
    // The STUN server (same address) is unreachable over UDP: reported, not a hang.
    let failed: Vec<String> = events(&sim, a)
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::ServerFailed { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(failed, ["no response (timeout)"]);
    let complete = events(&sim, a)
        .into_iter()
        .find(|(_, e)| *e == Event::GatheringState(GatheringState::Complete))
        .unwrap()
        .0;
    assert!(complete - start <= Duration::from_secs(5) + Duration::from_millis(1));
    assert_eq!(
        sim.node::<TurnServerNode>(server)
            .server
            .stats()
            .allocations,
        1
    );
}

#[test]
fn a_udp_allocation_that_lands_after_tcp_won_is_deallocated() {
    let mut sim = Simulator::new(3);
    let server = turn_server(&mut sim);
    let (a, router, _) = home_agent(&mut sim, Firewall::block_udp(), 3);
    // UDP comes back after TCP won but before the UDP Allocate's first retransmission
    // (500 ms): that late allocation must not leak.
    sim.run_for(Duration::from_millis(300));
    assert_eq!(relay_allocated(&sim, a)[0].1, Transport::Tcp);
    sim.set_firewall(router, Firewall::open());
    sim.run_for(Duration::from_secs(10));
    let stats = sim.node::<TurnServerNode>(server).server.stats();
    assert_eq!(
        stats.allocations_created, 2,
        "the late UDP allocation happened"
    );
    assert_eq!(stats.allocations, 1, "and was freed at once");
    assert_eq!(relay_allocated(&sim, a).len(), 1);
}

#[test]
fn an_unresponsive_turn_server_delays_nothing_and_fails_within_the_gather_timeout() {
    let mut sim = Simulator::new(4);
    turn_server(&mut sim);
    // Nothing listens at this address: UDP goes unanswered, TCP SYNs too.
    let dead = addr("198.51.100.99:3478");
    let start = sim.now();
    let (a, _, _) = agent_behind(
        &mut sim,
        ("203.0.113.1", NatConfig::port_restricted_cone()),
        Firewall::open(),
        Role::Controlling,
        4,
        dead,
    );
    let (b, _, _) = agent_behind(
        &mut sim,
        // Full cone: A, which has only its host candidate, can reach B's srflx.
        ("203.0.113.2", NatConfig::full_cone()),
        Firewall::open(),
        Role::Controlled,
        5,
        addr(SERVER),
    );
    // A's STUN server is the dead one too: only its host candidate, at once.
    sim.run_for(Duration::from_millis(100));
    exchange_candidates(&mut sim, a, b);
    // Checks go on while A's gathering waits: B is reachable through its srflx.
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(2)));
    assert!(sim.now() - start < Duration::from_secs(1));
    assert_eq!(
        sim.node::<AgentNode>(a).agent.gathering_state(),
        GatheringState::Gathering
    );
    assert!(gathered(&mut sim, &[a], Duration::from_secs(10)));
    let failed: Vec<String> = events(&sim, a)
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::ServerFailed { server, reason } if server == dead => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed
        .iter()
        .any(|r| r.contains("udp: ") && r.contains("tcp: ")));
    let complete = events(&sim, a)
        .into_iter()
        .find(|(_, e)| *e == Event::GatheringState(GatheringState::Complete))
        .unwrap()
        .0;
    assert!(
        complete - start <= Duration::from_secs(5) + Duration::from_millis(200),
        "{:?}",
        complete - start
    );
}

#[test]
fn after_the_turn_server_restarts_the_agent_allocates_again() {
    let mut sim = Simulator::new(5);
    let server = turn_server(&mut sim);
    let (a, _, _) = home_agent(&mut sim, Firewall::open(), 6);
    assert!(gathered(&mut sim, &[a], Duration::from_secs(2)));
    let first = sim
        .node::<AgentNode>(a)
        .agent
        .local_candidates()
        .find(|c| c.kind == CandidateKind::Relayed)
        .unwrap()
        .addr()
        .unwrap();
    // The server restarts: every allocation is gone.
    let now = sim.now();
    sim.node_mut::<TurnServerNode>(server).server =
        TurnServerNode::new(addr(SERVER), server_config(), now, 99).server;
    // The next refresh (a minute before the 10-minute lifetime ends) gets 437.
    sim.run_for(Duration::from_secs(600));
    let relays: Vec<_> = sim
        .node::<AgentNode>(a)
        .agent
        .local_candidates()
        .filter(|c| c.kind == CandidateKind::Relayed)
        .filter_map(floe_ice::Candidate::addr)
        .collect();
    assert_eq!(relays.len(), 2, "a new relayed candidate: {relays:?}");
    assert_ne!(relays[1], first);
    assert!(events(&sim, a).iter().any(|(_, e)| matches!(
        e,
        Event::ServerFailed { reason, .. } if reason.contains("allocation lost")
    )));
    assert_eq!(
        sim.node::<TurnServerNode>(server)
            .server
            .stats()
            .allocations,
        1
    );
}

#[test]
fn relayed_peers_recover_from_a_turn_server_restart_through_an_ice_restart_on_new_relays() {
    let mut sim = Simulator::new(8);
    let server = turn_server(&mut sim);
    let mut ids = Vec::new();
    for (i, role) in [Role::Controlling, Role::Controlled]
        .into_iter()
        .enumerate()
    {
        let config = RouterConfig::nat(
            ip(&format!("203.0.113.{}", i + 1)),
            NatConfig::port_restricted_cone(),
        );
        let (_, lan) = sim.add_router(sim.internet(), config);
        let now = sim.now();
        let mut c = AgentConfig::default();
        c.relay_only = true;
        c.renomination = true;
        let id = sim.add_host(
            lan,
            ip("192.168.1.2"),
            AgentNode::new(Agent::new(c, role, now, 80 + i as u64), now),
        );
        let local = addr("192.168.1.2:5000");
        sim.with_node(id, |n: &mut AgentNode, now| {
            n.set_now(now);
            n.agent.add_host(now, local, 0);
            n.agent.add_turn_server_with(
                now,
                TurnServer::new(local, addr(SERVER), "ice", "relay-password"),
            );
        });
        ids.push(id);
    }
    let (a, b) = (ids[0], ids[1]);
    assert!(gathered(&mut sim, &[a, b], Duration::from_secs(2)));
    exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(2));
    let before = sim.node::<AgentNode>(a).agent.selected_pair().unwrap();
    assert!(before.nominated);
    // The TURN server restarts and forgets every allocation.
    let now = sim.now();
    sim.node_mut::<TurnServerNode>(server).server =
        TurnServerNode::new(addr(SERVER), server_config(), now, 99).server;
    // A consent check through the dead relay goes unanswered; the agent asks the server
    // with a Refresh, gets 437 and allocates again (well before the 540 s refresh).
    let restarted = sim.now();
    let both_reallocated = sim.run_until_condition(Duration::from_secs(20), |s| {
        [a, b].iter().all(|&id| relay_allocated(s, id).len() == 2)
    });
    assert!(both_reallocated);
    assert!(sim.now() - restarted < Duration::from_secs(12));
    // The new relayed addresses cannot be trickled after nomination (RFC 8838 §13), and
    // the peer would ignore them after end-of-candidates (§14): recovery asks for an ICE
    // restart at once, and the application (as floe-peer does) restarts and signals.
    let asked = sim.run_until_condition(Duration::from_secs(5), |s| {
        s.node::<AgentNode>(a)
            .events
            .iter()
            .any(|(_, e)| *e == Event::Recovery(floe_ice::Recovery::RestartNeeded))
    });
    assert!(asked, "{:?}", sim.node::<AgentNode>(a).events);
    for id in [a, b] {
        sim.with_node(id, |n: &mut AgentNode, now| {
            n.set_now(now);
            n.agent.restart(now);
        });
    }
    assert!(gathered(&mut sim, &[a, b], Duration::from_secs(2)));
    exchange_candidates(&mut sim, a, b);
    // Both sides on the new relays, well before consent (30 s) would have run out.
    let moved = sim.run_until_condition(Duration::from_secs(10), |s| {
        s.node::<AgentNode>(a)
            .agent
            .selected_pair()
            .is_some_and(|p| p.nominated && p.local != before.local && p.remote != before.remote)
    });
    assert!(
        moved,
        "{:?}",
        sim.node::<AgentNode>(a).agent.selected_pair()
    );
    assert!(sim.now() - restarted < Duration::from_secs(20));
    sim.run_for(Duration::from_secs(1));
    for id in [a, b] {
        assert_eq!(
            sim.node::<AgentNode>(id).agent.connection_state(),
            floe_ice::ConnectionState::Completed
        );
    }
    sim.node_mut::<AgentNode>(a).send(b"after the restart");
    sim.node_mut::<AgentNode>(b).send(b"still here");
    sim.run_for(Duration::from_millis(500));
    assert!(sim
        .node::<AgentNode>(b)
        .received
        .iter()
        .any(|r| r.2 == b"after the restart"));
    assert!(sim
        .node::<AgentNode>(a)
        .received
        .iter()
        .any(|r| r.2 == b"still here"));
}

/// A floe TURN server on `at` that is draining and sends new Allocates to `alternate`
/// (300 Try Alternate, RFC 8489 §10), or a plain one.
fn turn_server_at(sim: &mut Simulator, at: &str, alternate: Option<&str>) -> NodeId {
    let internet = sim.internet();
    let now = sim.now();
    let mut config = server_config();
    config.alternate_server = alternate.map(addr);
    let mut node = TurnServerNode::new(addr(at), config, now, 9);
    if alternate.is_some() {
        node.server.drain(now);
    }
    sim.add_host(internet, addr(at).ip(), node)
}

/// RFC 8489 §10: a 300 Try Alternate is followed with the same transport and credentials;
/// the relayed candidate comes from the alternate server.
#[test]
fn a_300_try_alternate_is_followed_to_the_alternate_server() {
    let mut sim = Simulator::new(71);
    turn_server_at(&mut sim, "198.51.100.1:3478", Some("198.51.100.2:3478"));
    let alternate = turn_server_at(&mut sim, "198.51.100.2:3478", None);
    let (a, _, _) = home_agent(&mut sim, Firewall::open(), 72);
    assert!(sim.run_until_condition(Duration::from_secs(5), |s| {
        s.node::<AgentNode>(a).agent.gathering_state() == GatheringState::Complete
    }));
    let n = sim.node::<AgentNode>(a);
    let relays: Vec<_> = n.agent.relays().collect();
    assert_eq!(relays.len(), 1, "{:?}", n.events);
    assert_eq!(
        relays[0].0,
        addr("198.51.100.2:3478"),
        "allocated on the alternate"
    );
    // The runtime is told first (over TLS it needs the alternate's certificate name).
    assert!(n.events.iter().any(|(_, e)| *e
        == Event::TurnRedirected {
            server: addr("198.51.100.1:3478"),
            alternate: addr("198.51.100.2:3478"),
            transport: Transport::Udp,
            domain: None,
        }));
    assert!(n
        .agent
        .local_candidates()
        .any(|c| c.kind == CandidateKind::Relayed));
    assert_eq!(
        sim.node::<TurnServerNode>(alternate)
            .server
            .stats()
            .allocations,
        1
    );
}

/// Two servers that send each other's clients back and forth: the loop is cut (a server
/// already tried is not tried again) and the server is reported failed.
#[test]
fn redirects_that_loop_end_in_a_failure_not_a_loop() {
    let mut sim = Simulator::new(73);
    turn_server_at(&mut sim, "198.51.100.1:3478", Some("198.51.100.2:3478"));
    turn_server_at(&mut sim, "198.51.100.2:3478", Some("198.51.100.1:3478"));
    let (a, _, _) = home_agent(&mut sim, Firewall::open(), 74);
    assert!(sim.run_until_condition(Duration::from_secs(10), |s| {
        s.node::<AgentNode>(a).agent.gathering_state() == GatheringState::Complete
    }));
    let n = sim.node::<AgentNode>(a);
    assert_eq!(n.agent.relays().count(), 0);
    let failed: Vec<_> = n
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ServerFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert!(
        failed.iter().any(|r| r.contains("300 Try Alternate")),
        "{failed:?}"
    );
}
