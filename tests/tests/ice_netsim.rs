//! The ICE agent across simulated networks: same LAN, NATs with a STUN server, a
//! symmetric NAT, two paths of different latency, role conflicts, consent loss.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use floe_ice::{Agent, AgentConfig, CandidateKind, ConnectionState, Event, Role};
use floe_netsim::{LinkConfig, NatConfig, NetId, NodeId, Simulator};
use floe_sim::world::{add_agent, gathered, internet_with_server, TwoHomes, SERVER};
use floe_sim::TurnServerNode;
use floe_tests::ice_nodes::{exchange_candidates, run_until_connected, AgentNode};

const TURN_USER: &str = "ice";
const TURN_PASSWORD: &str = "relay-password";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn config() -> AgentConfig {
    let mut c = AgentConfig::default();
    c.stun_servers = vec![SERVER];
    c
}

/// The two homes behind NATs, with the STUN/TURN server, that most cells use.
fn homes(seed: u64, a: NatConfig, b: NatConfig) -> TwoHomes {
    TwoHomes::new(seed, TURN_USER, TURN_PASSWORD, a, b)
}

/// Like [`agent`], with a relayed candidate from the STUN/TURN server too.
fn agent_with_relay(
    sim: &mut Simulator,
    net: NetId,
    ip_addr: &str,
    role: Role,
    seed: u64,
) -> NodeId {
    let id = agent(sim, net, ip_addr, role, seed);
    let local = SocketAddr::new(ip(ip_addr), 5000);
    sim.with_node(id, |n: &mut AgentNode, now| {
        n.agent
            .add_turn_server(now, local, SERVER, TURN_USER, TURN_PASSWORD);
    });
    id
}

/// Adds an agent on `net` at `ip:5000`, registers its host socket and lets it gather.
fn agent(sim: &mut Simulator, net: NetId, ip_addr: &str, role: Role, seed: u64) -> NodeId {
    add_agent(sim, net, ip(ip_addr), config(), role, seed)
}

fn gather(sim: &mut Simulator, ids: &[NodeId]) {
    assert!(
        gathered(sim, ids, Duration::from_secs(5)),
        "gathering did not complete"
    );
}

fn selected(sim: &Simulator, id: NodeId) -> floe_ice::SelectedPair {
    sim.node::<AgentNode>(id)
        .agent
        .selected_pair()
        .expect("a selected pair")
}

fn exchange_data(sim: &mut Simulator, a: NodeId, b: NodeId) {
    sim.node_mut::<AgentNode>(a).send(b"ping");
    sim.node_mut::<AgentNode>(b).send(b"pong");
    sim.run_for(Duration::from_millis(500));
    assert!(sim
        .node::<AgentNode>(b)
        .received
        .iter()
        .any(|r| r.2 == b"ping"));
    assert!(sim
        .node::<AgentNode>(a)
        .received
        .iter()
        .any(|r| r.2 == b"pong"));
}

#[test]
fn two_agents_on_one_lan_connect_over_host_candidates() {
    let mut sim = internet_with_server(1, TURN_USER, TURN_PASSWORD);
    let (_, lan) = sim.add_nat(
        sim.internet(),
        ip("203.0.113.1"),
        NatConfig::port_restricted_cone(),
    );
    let a = agent(&mut sim, lan, "192.168.1.2", Role::Controlling, 1);
    let b = agent(&mut sim, lan, "192.168.1.3", Role::Controlled, 2);
    gather(&mut sim, &[a, b]);
    exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(1));
    let s = selected(&sim, a);
    assert_eq!(
        (s.local_kind, s.remote_kind),
        (CandidateKind::Host, CandidateKind::Host)
    );
    assert!(s.nominated);
    assert_eq!(
        sim.node::<AgentNode>(b).agent.connection_state(),
        ConnectionState::Completed
    );
    exchange_data(&mut sim, a, b);
}

#[test]
fn port_restricted_nats_connect_directly_through_server_reflexive_candidates() {
    let TwoHomes {
        mut sim,
        lan_a,
        lan_b,
        ..
    } = homes(
        2,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let a = agent(&mut sim, lan_a, "192.168.1.2", Role::Controlling, 3);
    let b = agent(&mut sim, lan_b, "192.168.1.2", Role::Controlled, 4);
    gather(&mut sim, &[a, b]);
    let srflx = sim
        .node::<AgentNode>(a)
        .agent
        .local_candidates()
        .filter(|c| c.kind == CandidateKind::ServerReflexive)
        .count();
    assert_eq!(
        srflx, 1,
        "a server-reflexive candidate from the STUN server"
    );
    let start = exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    let connected = sim
        .node::<AgentNode>(a)
        .reached(ConnectionState::Connected)
        .unwrap();
    // Host-to-host RTT here is 8 ms (4 links of 1 ms each way).
    assert!(
        connected - start <= Duration::from_millis(2 * 8 + 50 + 50),
        "connected after {:?}",
        connected - start
    );
    sim.run_for(Duration::from_secs(1));
    let s = selected(&sim, a);
    assert_eq!(s.remote_kind, CandidateKind::ServerReflexive);
    assert!(s.nominated);
    exchange_data(&mut sim, a, b);
}

#[test]
fn symmetric_nat_against_full_cone_connects_through_a_peer_reflexive_candidate() {
    let TwoHomes {
        mut sim,
        lan_a,
        lan_b,
        ..
    } = homes(3, NatConfig::symmetric(), NatConfig::full_cone());
    let a = agent(&mut sim, lan_a, "192.168.1.2", Role::Controlling, 5);
    let b = agent(&mut sim, lan_b, "192.168.1.2", Role::Controlled, 6);
    gather(&mut sim, &[a, b]);
    exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(1));
    // B sees A's checks from a mapping A's STUN server never saw: peer-reflexive.
    assert_eq!(selected(&sim, b).remote_kind, CandidateKind::PeerReflexive);
    exchange_data(&mut sim, a, b);
}

#[test]
fn symmetric_against_port_restricted_fails_without_a_relay() {
    let TwoHomes {
        mut sim,
        lan_a,
        lan_b,
        ..
    } = homes(4, NatConfig::symmetric(), NatConfig::port_restricted_cone());
    let a = agent(&mut sim, lan_a, "192.168.1.2", Role::Controlling, 7);
    let b = agent(&mut sim, lan_b, "192.168.1.2", Role::Controlled, 8);
    gather(&mut sim, &[a, b]);
    exchange_candidates(&mut sim, a, b);
    assert!(!run_until_connected(
        &mut sim,
        a,
        b,
        Duration::from_secs(60)
    ));
    assert_eq!(
        sim.node::<AgentNode>(a).agent.connection_state(),
        ConnectionState::Failed
    );
}

#[test]
fn of_two_direct_paths_the_lower_latency_one_is_chosen() {
    // A has two interfaces on two LANs reaching B: 40 ms and 5 ms one way. The 40 ms one
    // ranks first by RFC 8421 local preference; latency must win anyway.
    let mut sim = internet_with_server(5, TURN_USER, TURN_PASSWORD);
    let internet = sim.internet();
    let now = sim.now();
    let mut slow = LinkConfig::default();
    slow.delay = Duration::from_millis(40);
    let mut fast = LinkConfig::default();
    fast.delay = Duration::from_millis(5);
    let a = sim.add_host_with_link(
        internet,
        ip("192.0.2.10"),
        slow,
        AgentNode::new(Agent::new(config(), Role::Controlling, now, 9), now),
    );
    sim.add_interface_with_link(a, internet, ip("192.0.2.11"), fast);
    let b = sim.add_host(
        internet,
        ip("192.0.2.20"),
        AgentNode::new(Agent::new(config(), Role::Controlled, now, 10), now),
    );
    sim.with_node(a, |n: &mut AgentNode, now| {
        n.agent.add_host(now, addr("192.0.2.10:5000"), 0);
        n.agent.add_host(now, addr("192.0.2.11:5000"), 1);
    });
    sim.with_node(b, |n: &mut AgentNode, now| {
        n.agent.add_host(now, addr("192.0.2.20:5000"), 0);
    });
    gather(&mut sim, &[a, b]);
    exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(2));
    let s = selected(&sim, a);
    assert!(s.nominated);
    assert_eq!(s.local, addr("192.0.2.11:5000"), "the 5 ms interface");
    assert_eq!(selected(&sim, b).remote, addr("192.0.2.11:5000"));
}

#[test]
fn two_controlling_agents_repair_the_role_conflict() {
    let mut sim = internet_with_server(6, TURN_USER, TURN_PASSWORD);
    let internet = sim.internet();
    let (_, lan) = sim.add_nat(internet, ip("203.0.113.1"), NatConfig::full_cone());
    let a = agent(&mut sim, lan, "192.168.1.2", Role::Controlling, 11);
    let b = agent(&mut sim, lan, "192.168.1.3", Role::Controlling, 12);
    gather(&mut sim, &[a, b]);
    exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    let roles = (
        sim.node::<AgentNode>(a).agent.role(),
        sim.node::<AgentNode>(b).agent.role(),
    );
    assert!(
        roles == (Role::Controlling, Role::Controlled)
            || roles == (Role::Controlled, Role::Controlling),
        "{roles:?}"
    );
    sim.run_for(Duration::from_secs(1));
    exchange_data(&mut sim, a, b);
}

#[test]
fn consent_loss_fails_the_connection_within_30_seconds() {
    let TwoHomes {
        mut sim,
        nat_a: nat,
        lan_a,
        lan_b,
        ..
    } = homes(
        7,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let a = agent(&mut sim, lan_a, "192.168.1.2", Role::Controlling, 13);
    let b = agent(&mut sim, lan_b, "192.168.1.2", Role::Controlled, 14);
    gather(&mut sim, &[a, b]);
    exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    // Consent checks keep the NAT mappings alive for minutes of silence.
    sim.run_for(Duration::from_secs(600));
    assert_eq!(
        sim.node::<AgentNode>(a).agent.connection_state(),
        ConnectionState::Completed
    );
    exchange_data(&mut sim, a, b);
    // The path breaks (A's NAT reboots and loses every mapping, with a new address).
    let cut = sim.now();
    sim.reboot_nat(nat, Some(ip("203.0.113.9")));
    sim.run_for(Duration::from_secs(40));
    let failed = sim
        .node::<AgentNode>(a)
        .reached(ConnectionState::Failed)
        .expect("consent lost");
    assert!(
        failed - cut <= Duration::from_secs(31),
        "failed after {:?}",
        failed - cut
    );
    assert!(
        sim.node_mut::<AgentNode>(a).agent.send(b"x").is_err(),
        "no sending without consent"
    );
    let events = &sim.node::<AgentNode>(a).events;
    assert!(events
        .iter()
        .any(|(_, e)| matches!(e, Event::SelectedPair(_))));
}

#[test]
fn symmetric_against_port_restricted_connects_through_the_relay() {
    let TwoHomes {
        mut sim,
        lan_a,
        lan_b,
        ..
    } = homes(8, NatConfig::symmetric(), NatConfig::port_restricted_cone());
    let a = agent_with_relay(&mut sim, lan_a, "192.168.1.2", Role::Controlling, 15);
    let b = agent_with_relay(&mut sim, lan_b, "192.168.1.2", Role::Controlled, 16);
    gather(&mut sim, &[a, b]);
    let relayed = sim
        .node::<AgentNode>(a)
        .agent
        .local_candidates()
        .filter(|c| c.kind == CandidateKind::Relayed)
        .count();
    assert_eq!(relayed, 1);
    let start = exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(3));
    let s = selected(&sim, a);
    assert!(s.nominated, "{s:?}");
    assert!(
        s.local_kind == CandidateKind::Relayed || s.remote_kind == CandidateKind::Relayed,
        "{s:?}"
    );
    let done = sim
        .node::<AgentNode>(a)
        .reached(ConnectionState::Completed)
        .unwrap();
    assert!(
        done - start <= Duration::from_millis(1600),
        "relay nominated after {:?}",
        done - start
    );
    exchange_data(&mut sim, a, b);
}

#[test]
fn relay_candidates_do_not_win_where_a_direct_path_works() {
    let TwoHomes {
        mut sim,
        lan_a,
        lan_b,
        ..
    } = homes(
        9,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let a = agent_with_relay(&mut sim, lan_a, "192.168.1.2", Role::Controlling, 17);
    let b = agent_with_relay(&mut sim, lan_b, "192.168.1.2", Role::Controlled, 18);
    gather(&mut sim, &[a, b]);
    exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(3));
    let s = selected(&sim, a);
    assert!(s.nominated);
    assert_eq!(
        (s.local_kind, s.remote_kind),
        (CandidateKind::Host, CandidateKind::ServerReflexive)
    );
    exchange_data(&mut sim, a, b);
}

/// Builds a two-NAT cell whose access links lose `loss` of packets, gathers, exchanges
/// candidates and reports the selected pair kind once nominated.
fn lossy_cell(
    seed: u64,
    a_nat: NatConfig,
    b_nat: NatConfig,
    loss: f64,
) -> Option<(CandidateKind, CandidateKind)> {
    let TwoHomes {
        mut sim,
        lan_a,
        lan_b,
        ..
    } = homes(seed, a_nat, b_nat);
    let mut link = LinkConfig::default();
    link.delay = Duration::from_millis(10);
    link.loss = Some(floe_netsim::LossModel::Random(loss));
    let now = sim.now();
    let mut ids = Vec::new();
    for (net, role, s) in [(lan_a, Role::Controlling, 1), (lan_b, Role::Controlled, 2)] {
        let host = ip("192.168.1.2");
        let id = sim.add_host_with_link(
            net,
            host,
            link.clone(),
            AgentNode::new(Agent::new(config(), role, now, seed * 10 + s), now),
        );
        let local = SocketAddr::new(host, 5000);
        sim.with_node(id, |n: &mut AgentNode, now| {
            n.agent.add_host(now, local, 0);
            n.agent
                .add_turn_server(now, local, SERVER, TURN_USER, TURN_PASSWORD);
        });
        ids.push(id);
    }
    let (a, b) = (ids[0], ids[1]);
    sim.run_until_condition(Duration::from_secs(60), |s| {
        [a, b].iter().all(|id| {
            s.node::<AgentNode>(*id).agent.gathering_state() == floe_ice::GatheringState::Complete
        })
    });
    exchange_candidates(&mut sim, a, b);
    if !run_until_connected(&mut sim, a, b, Duration::from_secs(30)) {
        return None;
    }
    sim.run_until_condition(Duration::from_secs(10), |s| {
        s.node::<AgentNode>(a)
            .agent
            .selected_pair()
            .is_some_and(|p| p.nominated)
    });
    sim.node::<AgentNode>(a)
        .agent
        .selected_pair()
        .map(|p| (p.local_kind, p.remote_kind))
}

#[test]
fn with_five_percent_loss_every_cell_connects_over_twenty_seeds() {
    let cells = [
        (
            "port-restricted/port-restricted",
            NatConfig::port_restricted_cone(),
            NatConfig::port_restricted_cone(),
        ),
        (
            "symmetric/full-cone",
            NatConfig::symmetric(),
            NatConfig::full_cone(),
        ),
        (
            "symmetric/port-restricted",
            NatConfig::symmetric(),
            NatConfig::port_restricted_cone(),
        ),
    ];
    for (name, a, b) in cells {
        for seed in 1..=20 {
            let got = lossy_cell(seed, a.clone(), b.clone(), 0.05);
            assert!(got.is_some(), "{name}: seed {seed} did not connect");
        }
    }
}

#[test]
fn with_thirty_percent_loss_a_direct_cell_still_connects() {
    let connected = (1..=10)
        .filter(|seed| {
            lossy_cell(
                *seed,
                NatConfig::port_restricted_cone(),
                NatConfig::port_restricted_cone(),
                0.30,
            )
            .is_some()
        })
        .count();
    assert!(
        connected >= 9,
        "{connected}/10 seeds connected at 30 % loss"
    );
}

#[test]
fn relay_only_agents_connect_through_the_relay() {
    let TwoHomes {
        mut sim,
        lan_a,
        lan_b,
        ..
    } = homes(10, NatConfig::full_cone(), NatConfig::full_cone());
    let now = sim.now();
    let mut ids = Vec::new();
    for (net, role, seed) in [
        (lan_a, Role::Controlling, 19),
        (lan_b, Role::Controlled, 20),
    ] {
        let mut c = config();
        c.relay_only = true;
        let id = sim.add_host(
            net,
            ip("192.168.1.2"),
            AgentNode::new(Agent::new(c, role, now, seed), now),
        );
        let local = addr("192.168.1.2:5000");
        sim.with_node(id, |n: &mut AgentNode, now| {
            n.agent.add_host(now, local, 0);
            n.agent
                .add_turn_server(now, local, SERVER, TURN_USER, TURN_PASSWORD);
        });
        ids.push(id);
    }
    let (a, b) = (ids[0], ids[1]);
    gather(&mut sim, &[a, b]);
    let kinds: Vec<CandidateKind> = sim
        .node::<AgentNode>(a)
        .agent
        .local_candidates()
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds, [CandidateKind::Relayed]);
    exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(2));
    let s = selected(&sim, a);
    assert_eq!(s.local_kind, CandidateKind::Relayed);
    exchange_data(&mut sim, a, b);

    // RFC 8656 §11.6: an ICMP error the server relays for A's relayed traffic to B's
    // relayed address is counted against that pair and in the agent's stats.
    let server = sim
        .node_ids()
        .find(|id| sim.try_node::<TurnServerNode>(*id).is_some())
        .unwrap();
    let icmp = floe_stun::attributes::Icmp {
        icmp_type: 3,
        code: 1,
        error_data: 0,
    };
    sim.with_node(server, |n: &mut TurnServerNode, now| {
        n.server.handle_peer_icmp(now, s.local, s.remote, icmp);
    });
    sim.run_for(Duration::from_millis(200));
    let agent = &sim.node::<AgentNode>(a).agent;
    assert_eq!(agent.stats().icmp_errors, 1);
    let counted: Vec<u64> = agent
        .pair_stats()
        .filter(|(l, r, _, _)| *l == s.local && *r == s.remote)
        .map(|(_, _, _, st)| st.icmp_errors)
        .collect();
    assert_eq!(counted, [1]);
}

#[test]
fn a_check_that_arrives_before_its_candidate_is_peer_reflexive_until_the_candidate_is_signalled() {
    // RFC 8838 §11: B's checks reach A before B's candidates do.
    let mut sim = internet_with_server(11, TURN_USER, TURN_PASSWORD);
    let internet = sim.internet();
    let (_, lan) = sim.add_nat(internet, ip("203.0.113.1"), NatConfig::full_cone());
    let a = agent(&mut sim, lan, "192.168.1.2", Role::Controlling, 21);
    let b = agent(&mut sim, lan, "192.168.1.3", Role::Controlled, 22);
    gather(&mut sim, &[a, b]);
    let creds_a = sim.node::<AgentNode>(a).agent.local_credentials().clone();
    let creds_b = sim.node::<AgentNode>(b).agent.local_credentials().clone();
    let cands_a: Vec<_> = sim
        .node::<AgentNode>(a)
        .agent
        .local_candidates()
        .cloned()
        .collect();
    let cands_b: Vec<_> = sim
        .node::<AgentNode>(b)
        .agent
        .local_candidates()
        .cloned()
        .collect();
    // B learns everything; A only B's credentials.
    sim.with_node(b, |n: &mut AgentNode, now| {
        n.agent.set_remote_credentials(creds_a);
        for c in cands_a {
            n.agent.add_remote_candidate(now, c);
        }
    });
    sim.with_node(a, |n: &mut AgentNode, _| {
        n.agent.set_remote_credentials(creds_b);
    });
    sim.run_for(Duration::from_millis(300));
    // A answered B's check and learned B as peer-reflexive.
    let kinds: Vec<_> = sim
        .node::<AgentNode>(a)
        .agent
        .pair_stats()
        .map(|p| p.1)
        .collect();
    assert!(
        !kinds.is_empty(),
        "A paired with B's peer-reflexive address"
    );
    // The candidates arrive late; the pair becomes a host pair.
    sim.with_node(a, |n: &mut AgentNode, now| {
        for c in cands_b {
            n.agent.add_remote_candidate(now, c);
        }
    });
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(1));
    let s = selected(&sim, a);
    assert_eq!(s.remote_kind, CandidateKind::Host, "{s:?}");
}

#[test]
fn after_a_nat_reboot_the_relay_carries_the_call_and_an_ice_restart_goes_direct_again() {
    let TwoHomes {
        mut sim,
        nat_a: nat,
        lan_a,
        lan_b,
        ..
    } = homes(
        12,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let a = agent_with_relay(&mut sim, lan_a, "192.168.1.2", Role::Controlling, 23);
    let b = agent_with_relay(&mut sim, lan_b, "192.168.1.2", Role::Controlled, 24);
    gather(&mut sim, &[a, b]);
    exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(2));
    exchange_data(&mut sim, a, b);

    // A's NAT reboots onto a new public address: the direct path dies. Without any
    // signalling the agents recover through the TURN server (A's allocation is lost with
    // the mapping and made again; B learns A's new relayed address from A's checks).
    let cut = sim.now();
    sim.reboot_nat(nat, Some(ip("203.0.113.9")));
    sim.run_for(Duration::from_secs(3));
    for id in [a, b] {
        let n = sim.node::<AgentNode>(id);
        let recovered = n
            .events
            .iter()
            .find(|(t, e)| {
                *t >= cut && matches!(e, Event::Recovery(floe_ice::Recovery::Recovered { .. }))
            })
            .map(|(t, _)| *t - cut);
        assert!(
            recovered.is_some_and(|t| t <= Duration::from_secs(2)),
            "recovered after {recovered:?}"
        );
        assert_eq!(n.agent.connection_state(), ConnectionState::Connected);
        assert!(n.agent.selected_pair().unwrap().local_kind == CandidateKind::Relayed);
    }
    for id in [a, b] {
        sim.node_mut::<AgentNode>(id).received.clear();
    }
    exchange_data(&mut sim, a, b);

    // Both restart (new credentials, candidates gathered again) and signal anew.
    for id in [a, b] {
        sim.with_node(id, |n: &mut AgentNode, now| {
            n.set_now(now);
            n.agent.restart(now);
        });
    }
    gather(&mut sim, &[a, b]);
    let srflx: Vec<_> = sim
        .node::<AgentNode>(a)
        .agent
        .local_candidates()
        .filter(|c| c.kind == CandidateKind::ServerReflexive)
        .filter_map(floe_ice::Candidate::addr)
        .collect();
    assert_eq!(srflx.len(), 1);
    assert_eq!(
        srflx[0].ip(),
        ip("203.0.113.9"),
        "the new public address was gathered"
    );
    exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(2));
    let s = selected(&sim, a);
    assert!(s.nominated);
    assert_eq!(
        s.remote_kind,
        CandidateKind::ServerReflexive,
        "direct again, not the relay: {s:?}"
    );
    for id in [a, b] {
        sim.node_mut::<AgentNode>(id).received.clear();
    }
    exchange_data(&mut sim, a, b);
}

/// One cell of the wider matrix: how each side is attached, and what must be selected.
struct Cell {
    name: &'static str,
    build: fn(&mut Simulator) -> (NetId, &'static str, NetId, &'static str),
    relay_expected: bool,
}

fn behind(sim: &mut Simulator, parent: NetId, external: &str, nat: NatConfig) -> NetId {
    sim.add_nat(parent, ip(external), nat).1
}

fn wider_cells() -> Vec<Cell> {
    vec![
        Cell {
            name: "same home NAT, hairpinning off (Linux MASQUERADE): host candidates",
            build: |sim| {
                let lan = behind(
                    sim,
                    sim.internet(),
                    "203.0.113.1",
                    NatConfig::linux_masquerade(),
                );
                (lan, "192.168.1.2", lan, "192.168.1.3")
            },
            relay_expected: false,
        },
        Cell {
            name: "same home NAT, hairpinning on: still host candidates",
            build: |sim| {
                let lan = behind(
                    sim,
                    sim.internet(),
                    "203.0.113.1",
                    NatConfig::port_restricted_cone(),
                );
                (lan, "192.168.1.2", lan, "192.168.1.3")
            },
            relay_expected: false,
        },
        Cell {
            name: "home NAT behind an endpoint-independent carrier-grade NAT vs port-restricted",
            build: |sim| {
                let cgn = behind(
                    sim,
                    sim.internet(),
                    "203.0.113.100",
                    NatConfig::port_restricted_cone(),
                );
                let home = behind(sim, cgn, "100.64.0.10", NatConfig::port_restricted_cone());
                let b = behind(
                    sim,
                    sim.internet(),
                    "203.0.113.2",
                    NatConfig::port_restricted_cone(),
                );
                (home, "192.168.1.2", b, "192.168.1.2")
            },
            relay_expected: false,
        },
        Cell {
            name: "home NAT behind a symmetric carrier-grade NAT vs port-restricted: relay",
            build: |sim| {
                let cgn = behind(sim, sim.internet(), "203.0.113.100", NatConfig::symmetric());
                let home = behind(sim, cgn, "100.64.0.10", NatConfig::port_restricted_cone());
                let b = behind(
                    sim,
                    sim.internet(),
                    "203.0.113.2",
                    NatConfig::port_restricted_cone(),
                );
                (home, "192.168.1.2", b, "192.168.1.2")
            },
            relay_expected: true,
        },
        Cell {
            name: "two homes behind the same endpoint-independent carrier-grade NAT",
            build: |sim| {
                let cgn = behind(sim, sim.internet(), "203.0.113.100", NatConfig::full_cone());
                let a = behind(sim, cgn, "100.64.0.10", NatConfig::port_restricted_cone());
                let b = behind(sim, cgn, "100.64.0.20", NatConfig::port_restricted_cone());
                (a, "192.168.1.2", b, "192.168.1.2")
            },
            relay_expected: false,
        },
        Cell {
            name: "Linux MASQUERADE --random-fully vs Linux MASQUERADE: relay",
            build: |sim| {
                let a = behind(
                    sim,
                    sim.internet(),
                    "203.0.113.1",
                    NatConfig::linux_masquerade_random(),
                );
                let b = behind(
                    sim,
                    sim.internet(),
                    "203.0.113.2",
                    NatConfig::linux_masquerade(),
                );
                (a, "192.168.1.2", b, "192.168.1.2")
            },
            relay_expected: true,
        },
    ]
}

#[test]
fn wider_matrix_cells_pick_direct_paths_where_rfc_4787_allows_in_both_roles() {
    for cell in wider_cells() {
        for controlling_first in [true, false] {
            let seed = 40 + u64::from(controlling_first);
            let mut sim = internet_with_server(seed, TURN_USER, TURN_PASSWORD);
            let (net_a, ip_a, net_b, ip_b) = (cell.build)(&mut sim);
            let (role_a, role_b) = if controlling_first {
                (Role::Controlling, Role::Controlled)
            } else {
                (Role::Controlled, Role::Controlling)
            };
            let a = agent_with_relay(&mut sim, net_a, ip_a, role_a, seed * 2);
            let b = agent_with_relay(&mut sim, net_b, ip_b, role_b, seed * 2 + 1);
            gather(&mut sim, &[a, b]);
            exchange_candidates(&mut sim, a, b);
            assert!(
                run_until_connected(&mut sim, a, b, Duration::from_secs(5)),
                "{}: not connected (seed {seed})",
                cell.name
            );
            let controlling = if controlling_first { a } else { b };
            sim.run_until_condition(Duration::from_secs(5), |s| {
                s.node::<AgentNode>(controlling)
                    .agent
                    .selected_pair()
                    .is_some_and(|p| p.nominated)
            });
            let s = selected(&sim, controlling);
            let relayed =
                s.local_kind == CandidateKind::Relayed || s.remote_kind == CandidateKind::Relayed;
            assert_eq!(
                relayed,
                cell.relay_expected,
                "{} (controlling {}): {s:?}, seed {seed}",
                cell.name,
                if controlling_first { "A" } else { "B" }
            );
            exchange_data(&mut sim, a, b);
        }
    }
}

fn renominating_config() -> AgentConfig {
    let mut c = config();
    c.renomination = true;
    c
}

#[test]
fn when_the_chosen_path_slows_down_the_agent_renominates_the_faster_one() {
    let (sim, a, b) = slowing_path(true);
    let s = selected(&sim, a);
    assert_eq!(
        s.local,
        addr("192.0.2.11:5000"),
        "moved to the 20 ms path: {s:?}"
    );
    assert!(s.nominated);
    assert_eq!(
        selected(&sim, b).remote,
        addr("192.0.2.11:5000"),
        "the controlled side followed"
    );
}

#[test]
fn without_the_peers_renomination_support_the_first_nomination_stands() {
    // RFC 8445 §8.1.1: one nomination, unless the peer signalled renomination.
    let (sim, a, b) = slowing_path(false);
    assert_eq!(selected(&sim, a).local, addr("192.0.2.10:5000"));
    assert_eq!(selected(&sim, b).remote, addr("192.0.2.10:5000"));
}

/// A has two interfaces to a public B: 5 ms and 20 ms one way. The 5 ms path is chosen;
/// then its delay rises to 80 ms and 90 s pass. Data still flows at the end.
fn slowing_path(peer_supports_renomination: bool) -> (Simulator, NodeId, NodeId) {
    let mut sim = internet_with_server(13, TURN_USER, TURN_PASSWORD);
    let internet = sim.internet();
    let now = sim.now();
    let mut fast = LinkConfig::default();
    fast.delay = Duration::from_millis(5);
    let mut steady = LinkConfig::default();
    steady.delay = Duration::from_millis(20);
    let a = sim.add_host_with_link(
        internet,
        ip("192.0.2.10"),
        fast,
        AgentNode::new(
            Agent::new(renominating_config(), Role::Controlling, now, 25),
            now,
        ),
    );
    sim.add_interface_with_link(a, internet, ip("192.0.2.11"), steady);
    let b = sim.add_host(
        internet,
        ip("192.0.2.20"),
        AgentNode::new(
            Agent::new(renominating_config(), Role::Controlled, now, 26),
            now,
        ),
    );
    sim.with_node(a, |n: &mut AgentNode, now| {
        n.agent.add_host(now, addr("192.0.2.10:5000"), 0);
        n.agent.add_host(now, addr("192.0.2.11:5000"), 1);
        n.agent.set_remote_renomination(peer_supports_renomination);
    });
    sim.with_node(b, |n: &mut AgentNode, now| {
        n.agent.add_host(now, addr("192.0.2.20:5000"), 0);
    });
    gather(&mut sim, &[a, b]);
    exchange_candidates(&mut sim, a, b);
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(2));
    assert_eq!(selected(&sim, a).local, addr("192.0.2.10:5000"));
    // The fast path degrades to 80 ms each way.
    let link = sim.link_mut(floe_netsim::LinkId::Interface(a, 0));
    link.up.config.delay = Duration::from_millis(80);
    link.down.config.delay = Duration::from_millis(80);
    sim.run_for(Duration::from_secs(90));
    for id in [a, b] {
        sim.node_mut::<AgentNode>(id).received.clear();
    }
    exchange_data(&mut sim, a, b);
    (sim, a, b)
}

#[test]
fn a_relayed_start_moves_to_a_direct_path_that_appears_later() {
    let TwoHomes {
        mut sim,
        lan_a,
        lan_b,
        ..
    } = homes(14, NatConfig::full_cone(), NatConfig::full_cone());
    let now = sim.now();
    let mut ids = Vec::new();
    for (net, role, seed) in [
        (lan_a, Role::Controlling, 27),
        (lan_b, Role::Controlled, 28),
    ] {
        let id = sim.add_host(
            net,
            ip("192.168.1.2"),
            AgentNode::new(Agent::new(renominating_config(), role, now, seed), now),
        );
        let local = addr("192.168.1.2:5000");
        sim.with_node(id, |n: &mut AgentNode, now| {
            n.agent.add_host(now, local, 0);
            n.agent
                .add_turn_server(now, local, SERVER, TURN_USER, TURN_PASSWORD);
        });
        ids.push(id);
    }
    let (a, b) = (ids[0], ids[1]);
    gather(&mut sim, &[a, b]);
    // First only the relayed candidates are signalled (the others trickle late).
    let cands = |sim: &Simulator, id, relayed: bool| -> Vec<floe_ice::Candidate> {
        sim.node::<AgentNode>(id)
            .agent
            .local_candidates()
            .filter(|c| (c.kind == CandidateKind::Relayed) == relayed)
            .cloned()
            .collect()
    };
    let (ca, cb) = (cands(&sim, a, true), cands(&sim, b, true));
    let (creds_a, creds_b) = (
        sim.node::<AgentNode>(a).agent.local_credentials().clone(),
        sim.node::<AgentNode>(b).agent.local_credentials().clone(),
    );
    sim.with_node(a, |n: &mut AgentNode, now| {
        n.agent.set_remote_credentials(creds_b);
        for c in cb {
            n.agent.add_remote_candidate(now, c);
        }
    });
    sim.with_node(b, |n: &mut AgentNode, now| {
        n.agent.set_remote_credentials(creds_a);
        for c in ca {
            n.agent.add_remote_candidate(now, c);
        }
    });
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(5)));
    sim.run_for(Duration::from_secs(3));
    let s = selected(&sim, a);
    assert!(
        s.local_kind == CandidateKind::Relayed || s.remote_kind == CandidateKind::Relayed,
        "{s:?}"
    );
    // The direct candidates arrive.
    let (da, db) = (cands(&sim, a, false), cands(&sim, b, false));
    sim.with_node(a, |n: &mut AgentNode, now| {
        for c in db {
            n.agent.add_remote_candidate(now, c);
        }
    });
    sim.with_node(b, |n: &mut AgentNode, now| {
        for c in da {
            n.agent.add_remote_candidate(now, c);
        }
    });
    sim.run_for(Duration::from_secs(3));
    let s = selected(&sim, a);
    assert!(s.nominated);
    assert!(
        s.local_kind != CandidateKind::Relayed && s.remote_kind != CandidateKind::Relayed,
        "moved to direct: {s:?}"
    );
    let sb = selected(&sim, b);
    assert!(
        sb.local_kind != CandidateKind::Relayed && sb.remote_kind != CandidateKind::Relayed,
        "the controlled side followed: {sb:?}"
    );
    exchange_data(&mut sim, a, b);
}

#[test]
fn a_full_agent_behind_a_nat_connects_to_an_ice_lite_server() {
    let mut sim = internet_with_server(70, TURN_USER, TURN_PASSWORD);
    let internet = sim.internet();
    let (_, lan) = sim.add_nat(
        internet,
        ip("203.0.113.1"),
        NatConfig::port_restricted_cone(),
    );
    // The full agent offers as controlled; learning that the peer is lite makes it
    // controlling (RFC 8445 §6.1.1).
    let full = agent(&mut sim, lan, "192.168.1.2", Role::Controlled, 71);
    let now = sim.now();
    let mut lite_config = config();
    lite_config.lite = true;
    let lite = sim.add_host(
        internet,
        ip("198.51.100.20"),
        AgentNode::new(Agent::new(lite_config, Role::Controlling, now, 72), now),
    );
    sim.with_node(lite, |n: &mut AgentNode, now| {
        n.agent.add_host(now, addr("198.51.100.20:5000"), 0);
        // Ignored by a lite agent: host candidates only.
        n.agent.add_turn_server(
            now,
            addr("198.51.100.20:5000"),
            SERVER,
            TURN_USER,
            TURN_PASSWORD,
        );
    });
    gather(&mut sim, &[full, lite]);
    assert_eq!(
        sim.node::<AgentNode>(lite).agent.role(),
        Role::Controlled,
        "a lite agent is always controlled"
    );
    assert_eq!(
        sim.node::<AgentNode>(lite)
            .agent
            .local_candidates()
            .map(|c| c.kind)
            .collect::<Vec<_>>(),
        [CandidateKind::Host]
    );
    sim.with_node(full, |n: &mut AgentNode, _| n.agent.set_remote_lite(true));
    assert_eq!(sim.node::<AgentNode>(full).agent.role(), Role::Controlling);
    let start = exchange_candidates(&mut sim, full, lite);
    assert!(run_until_connected(
        &mut sim,
        full,
        lite,
        Duration::from_secs(2)
    ));
    sim.run_until_condition(Duration::from_secs(2), |s| {
        s.node::<AgentNode>(lite).agent.connection_state() == ConnectionState::Completed
    });
    let completed = sim
        .node::<AgentNode>(lite)
        .reached(ConnectionState::Completed)
        .expect("the lite side follows the nomination");
    assert!(completed - start < Duration::from_millis(500));
    let s = selected(&sim, full);
    assert_eq!(
        (s.local_kind, s.remote_kind),
        (CandidateKind::Host, CandidateKind::Host)
    );
    assert!(selected(&sim, lite).nominated);
    exchange_data(&mut sim, full, lite);
    // The lite side never sent a check, and it keeps consent from the full agent's
    // checks: still connected a minute later.
    sim.run_for(Duration::from_secs(60));
    let lite_node = sim.node::<AgentNode>(lite);
    assert!(lite_node
        .agent
        .pair_stats()
        .all(|(_, _, _, stats)| stats.requests_sent == 0));
    assert_eq!(
        lite_node.agent.connection_state(),
        ConnectionState::Completed
    );
    exchange_data(&mut sim, full, lite);
}

#[test]
fn an_mdns_host_candidate_is_resolved_by_the_caller_and_used() {
    let mut sim = internet_with_server(80, TURN_USER, TURN_PASSWORD);
    let (_, lan) = sim.add_nat(
        sim.internet(),
        ip("203.0.113.1"),
        NatConfig::port_restricted_cone(),
    );
    let a = agent(&mut sim, lan, "192.168.1.2", Role::Controlling, 81);
    let b = agent(&mut sim, lan, "192.168.1.3", Role::Controlled, 82);
    gather(&mut sim, &[a, b]);
    let name = "6c4c6a0e-2f5a-4d1e-9a53-6f4f1f1a2b3c.local";
    // B hides its host address behind an mDNS name, as browsers do.
    let hidden: Vec<floe_ice::Candidate> = sim
        .node::<AgentNode>(b)
        .agent
        .local_candidates()
        .map(|c| {
            let mut c = c.clone();
            if c.kind == CandidateKind::Host {
                c.address = floe_ice::CandidateAddress::Mdns {
                    name: name.into(),
                    port: 5000,
                };
                c.related = None;
            }
            c
        })
        .collect();
    let creds_a = sim.node::<AgentNode>(a).agent.local_credentials().clone();
    let creds_b = sim.node::<AgentNode>(b).agent.local_credentials().clone();
    let ca: Vec<_> = sim
        .node::<AgentNode>(a)
        .agent
        .local_candidates()
        .cloned()
        .collect();
    sim.with_node(a, |n: &mut AgentNode, now| {
        n.set_now(now);
        n.agent.set_remote_credentials(creds_b);
        for c in hidden {
            assert!(n.agent.add_remote_candidate(now, c));
        }
        n.agent.handle_end_of_remote_candidates(now);
    });
    sim.with_node(b, |n: &mut AgentNode, now| {
        n.set_now(now);
        n.agent.set_remote_credentials(creds_a);
        for c in ca {
            n.agent.add_remote_candidate(now, c);
        }
        n.agent.handle_end_of_remote_candidates(now);
    });
    sim.run_for(Duration::from_millis(1));
    let asked: Vec<String> = sim
        .node::<AgentNode>(a)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ResolveMdns { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked, [name]);
    sim.with_node(a, |n: &mut AgentNode, now| {
        n.set_now(now);
        n.agent
            .handle_mdns_resolved(now, name, Some(ip("192.168.1.3")));
    });
    assert!(run_until_connected(&mut sim, a, b, Duration::from_secs(2)));
    sim.run_for(Duration::from_secs(1));
    let s = selected(&sim, a);
    assert_eq!(s.remote, addr("192.168.1.3:5000"));
    assert_eq!(s.remote_kind, CandidateKind::Host);
    exchange_data(&mut sim, a, b);
}
