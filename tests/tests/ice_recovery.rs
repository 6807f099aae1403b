//! Calls that survive the network changing under them (the recovery ladder): a NAT that
//! rebinds every mapping, a NAT that reboots onto a new address, the selected interface
//! going down while a second one stays up, a host moving to another NAT. Data streams
//! both ways every 20 ms of virtual time; after the change, each direction must deliver
//! data sent after the change within 2 s, with no application call beyond what a runtime
//! does on its own (telling the agent about addresses, and signalling the ICE restart an
//! agent asks for when a new address can reach the peer no other way, as floe-peer does).
//! The times are printed and recorded in docs/nat-matrix.md.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use floe_ice::{
    Agent, AgentConfig, Candidate, CandidateKind, ConnectionState, Event, GatheringState, Recovery,
    Role,
};
use floe_netsim::{LinkConfig, NatConfig, NetId, NodeId, PortAssignment, RouterId, Simulator};
use floe_sim::world::{add_agent, gathered, TwoHomes, AGENT_PORT, SERVER};
use floe_tests::ice_nodes::{exchange_candidates, run_until_connected, AgentNode};

const TURN_USER: &str = "ice";
const TURN_PASSWORD: &str = "relay-password";
const TICK: Duration = Duration::from_millis(20);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn config() -> AgentConfig {
    let mut c = AgentConfig::default();
    c.stun_servers = vec![SERVER];
    c
}

/// A call between `a` and `b`: each sends a datagram holding its send time (ms since
/// the simulation began) every tick. `restarts` counts the ICE restarts signalled.
struct Call {
    sim: Simulator,
    a: NodeId,
    b: NodeId,
    start: Instant,
    restarts: usize,
    /// A restart is under way: exchange the new candidates once both have gathered.
    restarting: bool,
    /// Whether the signalling channel works (restarts are signalled).
    signalling: bool,
    /// Withdrawn candidates forwarded so far, per side (a, b).
    removals_told: [usize; 2],
}

impl Call {
    fn connect(mut sim: Simulator, a: NodeId, b: NodeId) -> Call {
        assert!(gathered(&mut sim, &[a, b], Duration::from_secs(5)));
        exchange_candidates(&mut sim, a, b);
        assert!(
            run_until_connected(&mut sim, a, b, Duration::from_secs(5)),
            "seed {}: not connected",
            sim.seed()
        );
        let start = sim.now().checked_sub(sim.elapsed()).unwrap();
        let mut call = Call {
            sim,
            a,
            b,
            start,
            restarts: 0,
            restarting: false,
            signalling: true,
            removals_told: [0, 0],
        };
        call.stream(Duration::from_secs(2));
        call
    }

    /// What floe-peer's signalling does: when an agent asks for an ICE restart
    /// ([`Recovery::RestartNeeded`]), it restarts and offers new credentials and
    /// candidates; the peer restarts too and answers (RFC 8445 §9).
    fn signal_restarts(&mut self) {
        self.signal_removals();
        let asked = [self.a, self.b].into_iter().any(|id| {
            let events = &self.sim.node::<AgentNode>(id).events;
            events
                .iter()
                .filter(|(_, e)| *e == Event::Recovery(Recovery::RestartNeeded))
                .count()
                > self.restarts
        });
        if asked && !self.restarting && self.signalling {
            self.restarts += 1;
            self.restarting = true;
            for id in [self.a, self.b] {
                self.sim.with_node(id, |n: &mut AgentNode, now| {
                    n.set_now(now);
                    n.agent.restart(now);
                });
            }
        }
        let gathered = [self.a, self.b].into_iter().all(|id| {
            self.sim.node::<AgentNode>(id).agent.gathering_state() == GatheringState::Complete
        });
        if self.restarting && gathered {
            self.restarting = false;
            exchange_candidates(&mut self.sim, self.a, self.b);
        }
    }

    /// What floe-peer's signalling also does: a side's withdrawn candidates
    /// (`Event::LocalCandidatesRemoved`) are told to the other, which stops checking them
    /// and recovers at once if its path used one.
    fn signal_removals(&mut self) {
        if !self.signalling {
            return;
        }
        for (i, (from, to)) in [(self.a, self.b), (self.b, self.a)].into_iter().enumerate() {
            let removed: Vec<Candidate> = self
                .sim
                .node::<AgentNode>(from)
                .events
                .iter()
                .filter_map(|(_, e)| match e {
                    Event::LocalCandidatesRemoved(cs) => Some(cs.clone()),
                    _ => None,
                })
                .skip(self.removals_told[i])
                .flatten()
                .collect();
            let batches = self
                .sim
                .node::<AgentNode>(from)
                .events
                .iter()
                .filter(|(_, e)| matches!(e, Event::LocalCandidatesRemoved(_)))
                .count();
            self.removals_told[i] = batches;
            if removed.is_empty() {
                continue;
            }
            self.sim.with_node(to, |n: &mut AgentNode, now| {
                n.set_now(now);
                for c in &removed {
                    n.agent.remove_remote_candidate(now, c);
                }
            });
        }
    }

    /// Streams both ways for `duration`, signalling restarts as they are asked for.
    fn stream(&mut self, duration: Duration) {
        let end = self.sim.now() + duration;
        while self.sim.now() < end {
            let stamp = (self.sim.now() - self.start).as_millis() as u64;
            for id in [self.a, self.b] {
                self.sim.with_node(id, |n: &mut AgentNode, now| {
                    n.set_now(now);
                    n.send(&stamp.to_be_bytes());
                });
            }
            self.sim.run_for(TICK);
            self.signal_restarts();
        }
    }

    /// How long after `cut` node `id` first received data sent at or after `cut`.
    fn resumed(&self, id: NodeId, cut: Instant) -> Option<Duration> {
        let cut_ms = (cut - self.start).as_millis() as u64;
        self.sim
            .node::<AgentNode>(id)
            .received
            .iter()
            .find(|(_, _, d)| {
                d.len() == 8 && u64::from_be_bytes(d[..8].try_into().unwrap()) >= cut_ms
            })
            .map(|(t, _, _)| *t - cut)
    }

    /// Streams for 5 s after the change at `cut`; asserts both directions resumed within
    /// 2 s and returns the slower one.
    fn assert_recovers(&mut self, case: &str, cut: Instant) -> Duration {
        self.stream(Duration::from_secs(5));
        let seed = self.sim.seed();
        let (to_b, to_a) = (self.resumed(self.b, cut), self.resumed(self.a, cut));
        let events = |id| {
            self.sim
                .node::<AgentNode>(id)
                .events
                .iter()
                .filter(|(t, e)| {
                    *t >= cut
                        && matches!(
                            e,
                            Event::Recovery(_) | Event::ConnectionState(_) | Event::SelectedPair(_)
                        )
                })
                .map(|(t, e)| format!("{:?} {e:?}", *t - cut))
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        let (ea, eb) = (events(self.a), events(self.b));
        println!(
            "{case}: a->b resumed after {to_b:?}, b->a after {to_a:?}, {} restart(s) (seed {seed})",
            self.restarts
        );
        let worst = match (to_b, to_a) {
            (Some(x), Some(y)) => x.max(y),
            _ => panic!("{case}, seed {seed}: data did not resume (a->b {to_b:?}, b->a {to_a:?})\nA:\n  {ea}\nB:\n  {eb}"),
        };
        assert!(
            worst <= Duration::from_secs(2),
            "{case}, seed {seed}: resumed after {worst:?}\nA:\n  {ea}\nB:\n  {eb}"
        );
        for id in [self.a, self.b] {
            let state = self.sim.node::<AgentNode>(id).agent.connection_state();
            assert!(
                matches!(
                    state,
                    ConnectionState::Connected | ConnectionState::Completed
                ),
                "{case}, seed {seed}: {state:?}"
            );
        }
        worst
    }

    fn recovery_events(&self, id: NodeId) -> Vec<Recovery> {
        self.sim
            .node::<AgentNode>(id)
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Recovery(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }
}

fn homes(seed: u64, a: NatConfig, b: NatConfig) -> TwoHomes {
    TwoHomes::new(seed, TURN_USER, TURN_PASSWORD, a, b)
}

/// Two homes behind `nat_a` and `nat_b`, an agent in each (A controlling), connected and
/// streaming; returns the call and A's NAT.
fn call_between(seed: u64, nat_a: NatConfig, nat_b: NatConfig) -> (Call, RouterId) {
    let TwoHomes {
        mut sim,
        nat_a: router,
        lan_a,
        lan_b,
        ..
    } = homes(seed, nat_a, nat_b);
    let host = ip("192.168.1.2");
    let a = add_agent(&mut sim, lan_a, host, config(), Role::Controlling, seed * 2);
    let b = add_agent(
        &mut sim,
        lan_b,
        host,
        config(),
        Role::Controlled,
        seed * 2 + 1,
    );
    (Call::connect(sim, a, b), router)
}

fn random_ports(nat: NatConfig) -> NatConfig {
    nat.with_port_assignment(PortAssignment::Random)
}

#[test]
fn a_nat_that_rebinds_every_mapping_mid_stream_is_followed_without_signalling() {
    let (mut call, nat_a) = call_between(
        31,
        random_ports(NatConfig::port_restricted_cone()),
        NatConfig::restricted_cone(),
    );
    let b = call.b;
    let before = call.sim.node::<AgentNode>(b).agent.selected_pair().unwrap();
    // conntrack -F with --random-fully: every mapping is gone, new ones get new ports.
    let cut = call.sim.now();
    call.sim.reboot_nat(nat_a, None);
    call.assert_recovers("NAT rebinding", cut);
    let after = call.sim.node::<AgentNode>(b).agent.selected_pair().unwrap();
    assert_eq!(after.remote.ip(), before.remote.ip());
    assert_ne!(after.remote, before.remote, "B follows A's new mapping");
    assert_eq!(after.remote_kind, CandidateKind::PeerReflexive);
    assert!(!call.recovery_events(b).contains(&Recovery::RestartNeeded));
}

#[test]
fn a_rebinding_between_port_restricted_nats_recovers() {
    let (mut call, nat_a) = call_between(
        32,
        random_ports(NatConfig::port_restricted_cone()),
        NatConfig::port_restricted_cone(),
    );
    let a = call.a;
    let cut = call.sim.now();
    call.sim.reboot_nat(nat_a, None);
    call.assert_recovers("NAT rebinding, port-restricted peer", cut);
    assert!(call
        .recovery_events(a)
        .iter()
        .any(|r| matches!(r, Recovery::Checking { .. })));
}

#[test]
fn a_nat_reboot_onto_a_new_address_recovers_through_an_ice_restart() {
    let (mut call, nat_a) = call_between(
        33,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let b = call.b;
    let cut = call.sim.now();
    call.sim.reboot_nat(nat_a, Some(ip("203.0.113.9")));
    call.assert_recovers("NAT reboot, new address", cut);
    let s = call.sim.node::<AgentNode>(b).agent.selected_pair().unwrap();
    assert_eq!(s.remote.ip(), ip("203.0.113.9"));
}

/// A second home network for A (a phone's cellular side, say).
fn second_network(sim: &mut Simulator) -> NetId {
    let internet = sim.internet();
    sim.add_nat(
        internet,
        ip("203.0.113.7"),
        NatConfig::port_restricted_cone(),
    )
    .1
}

#[test]
fn the_selected_interface_going_down_moves_the_call_to_the_second_one() {
    let TwoHomes {
        mut sim,
        lan_a,
        lan_b,
        ..
    } = homes(
        34,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let cellular = second_network(&mut sim);
    let a = add_agent(
        &mut sim,
        lan_a,
        ip("192.168.1.2"),
        config(),
        Role::Controlling,
        7,
    );
    let second = sim.add_interface(a, cellular, ip("10.20.0.2"));
    sim.with_node(a, |n: &mut AgentNode, now| {
        n.agent
            .add_host(now, SocketAddr::new(ip("10.20.0.2"), AGENT_PORT), 1);
    });
    let b = add_agent(
        &mut sim,
        lan_b,
        ip("192.168.1.2"),
        config(),
        Role::Controlled,
        8,
    );
    let mut call = Call::connect(sim, a, b);
    let before = call.sim.node::<AgentNode>(a).agent.selected_pair().unwrap();
    let iface = usize::from(before.local.ip() != ip("192.168.1.2"));
    let cut = call.sim.now();
    // The interface goes down; the runtime's address watcher tells the agent.
    call.sim
        .set_interface_up(a, if iface == 0 { 0 } else { second }, false);
    call.sim.with_node(a, |n: &mut AgentNode, now| {
        n.set_now(now);
        n.agent.remove_host(now, before.local);
    });
    call.assert_recovers("interface down, second up", cut);

    let after = call.sim.node::<AgentNode>(a).agent.selected_pair().unwrap();
    assert_ne!(after.local, before.local);
    assert!(!call
        .sim
        .node::<AgentNode>(a)
        .agent
        .local_candidates()
        .any(|c| c.addr() == Some(before.local)));
}

#[test]
fn a_host_moving_to_another_nat_mid_stream_keeps_the_call() {
    let TwoHomes {
        mut sim,
        lan_a,
        lan_b,
        ..
    } = homes(
        35,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let cellular = second_network(&mut sim);
    let a = add_agent(
        &mut sim,
        lan_a,
        ip("192.168.1.2"),
        config(),
        Role::Controlling,
        9,
    );
    let b = add_agent(
        &mut sim,
        lan_b,
        ip("192.168.1.2"),
        config(),
        Role::Controlled,
        10,
    );
    let mut call = Call::connect(sim, a, b);
    let cut = call.sim.now();
    // Wi-Fi to cellular: the interface moves and gets a new address; the runtime's
    // address watcher withdraws the old one and registers the new one.
    call.sim.move_interface(a, 0, cellular, ip("10.20.0.2"));
    call.sim.with_node(a, |n: &mut AgentNode, now| {
        n.set_now(now);
        n.agent
            .remove_host(now, SocketAddr::new(ip("192.168.1.2"), AGENT_PORT));
        n.agent
            .add_host(now, SocketAddr::new(ip("10.20.0.2"), AGENT_PORT), 0);
    });
    call.assert_recovers("host moves to another NAT", cut);
    let s = call.sim.node::<AgentNode>(b).agent.selected_pair().unwrap();
    assert_eq!(s.remote.ip(), ip("203.0.113.7"));
}

#[test]
fn a_lost_path_with_nothing_to_move_to_asks_for_a_restart_and_fails_when_consent_would_expire() {
    let (mut call, nat_a) = call_between(
        36,
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let a = call.a;
    let cut = call.sim.now();
    // A new address and no signalling: nothing can reach the other side.
    call.signalling = false;
    call.sim.reboot_nat(nat_a, Some(ip("203.0.113.9")));
    call.stream(Duration::from_secs(8));
    let node = call.sim.node::<AgentNode>(a);
    let at = |want: &dyn Fn(&Event) -> bool| {
        node.events
            .iter()
            .find(|(t, e)| *t >= cut && want(e))
            .map(|(t, _)| *t - cut)
    };
    let disconnected =
        at(&|e| *e == Event::ConnectionState(ConnectionState::Disconnected)).expect("disconnected");
    assert!(
        disconnected <= Duration::from_millis(1100),
        "{disconnected:?}"
    );
    let restart = at(&|e| *e == Event::Recovery(Recovery::RestartNeeded)).expect("restart asked");
    assert!(restart <= Duration::from_millis(6200), "{restart:?}");
    assert_eq!(node.agent.connection_state(), ConnectionState::Disconnected);
    // The runtime restarts ICE (floe-peer does, on the controlling side); the peer never
    // gets the offer. The restarted agent fails when consent on the lost path would have
    // expired, not never.
    call.sim.with_node(a, |n: &mut AgentNode, now| {
        n.set_now(now);
        n.agent.restart(now);
    });
    call.sim.run_for(Duration::from_secs(30));
    let node = call.sim.node::<AgentNode>(a);
    assert_eq!(node.agent.connection_state(), ConnectionState::Failed);
    let failed = node
        .events
        .iter()
        .find(|(t, e)| *t >= cut && *e == Event::ConnectionState(ConnectionState::Failed))
        .map(|(t, _)| *t - cut)
        .unwrap();
    assert!(failed <= Duration::from_secs(31), "failed after {failed:?}");
}

/// A VPN-like interface comes up mid-call with a much faster path: with renomination
/// (which two floe peers agree on), the controlling side checks the new pairs and moves
/// the call there, with no restart and no gap.
#[test]
fn a_new_interface_with_a_better_path_takes_the_call_when_renominating() {
    let TwoHomes {
        mut sim,
        lan_a,
        lan_b,
        ..
    } = homes(
        37,
        NatConfig::port_restricted_cone(),
        NatConfig::full_cone(),
    );
    let mut config = config();
    config.renomination = true;
    // A's first interface is a slow one (satellite-like, 150 ms each way).
    let now = sim.now();
    let slow = LinkConfig::with_delay(Duration::from_millis(150));
    let agent = Agent::new(config.clone(), Role::Controlling, now, 13);
    let a = sim.add_host_with_link(lan_a, ip("192.168.1.2"), slow, AgentNode::new(agent, now));
    sim.with_node(a, |n: &mut AgentNode, now| {
        n.agent
            .add_host(now, SocketAddr::new(ip("192.168.1.2"), AGENT_PORT), 0);
    });
    let b = add_agent(
        &mut sim,
        lan_b,
        ip("192.168.1.2"),
        config,
        Role::Controlled,
        14,
    );
    for id in [a, b] {
        sim.with_node(id, |n: &mut AgentNode, _| {
            n.agent.set_remote_renomination(true);
        });
    }
    let mut call = Call::connect(sim, a, b);
    let before = call.sim.node::<AgentNode>(a).agent.selected_pair().unwrap();
    assert!(
        before.rtt.unwrap() >= Duration::from_millis(300),
        "{before:?}"
    );
    // The VPN comes up: its own NAT, a fast link; the runtime registers the address.
    let internet = call.sim.internet();
    let vpn = call
        .sim
        .add_nat(
            internet,
            ip("203.0.113.8"),
            NatConfig::port_restricted_cone(),
        )
        .1;
    call.sim.add_interface_with_link(
        a,
        vpn,
        ip("10.8.0.2"),
        LinkConfig::with_delay(Duration::from_millis(2)),
    );
    let cut = call.sim.now();
    call.sim.with_node(a, |n: &mut AgentNode, now| {
        n.set_now(now);
        n.agent
            .add_host(now, SocketAddr::new(ip("10.8.0.2"), AGENT_PORT), 0);
    });
    call.stream(Duration::from_secs(3));
    let after = call.sim.node::<AgentNode>(a).agent.selected_pair().unwrap();
    assert_eq!(after.local.ip(), ip("10.8.0.2"), "{after:?}");
    assert!(after.nominated && after.rtt.unwrap() < Duration::from_millis(100));
    let moved = call
        .sim
        .node::<AgentNode>(a)
        .events
        .iter()
        .find(|(t, e)| {
            *t >= cut && matches!(e, Event::SelectedPair(p) if p.local.ip() == ip("10.8.0.2"))
        })
        .map(|(t, _)| *t - cut)
        .unwrap();
    println!("new interface with a better path: moved after {moved:?}");
    assert!(moved <= Duration::from_secs(2), "{moved:?}");
    let b_sel = call.sim.node::<AgentNode>(b).agent.selected_pair().unwrap();
    assert_eq!(
        b_sel.remote.ip(),
        ip("203.0.113.8"),
        "B follows the renomination"
    );
    assert_eq!(call.restarts, 0);
    // No gap: B kept receiving throughout.
    let received: Vec<Instant> = call
        .sim
        .node::<AgentNode>(b)
        .received
        .iter()
        .map(|r| r.0)
        .filter(|t| *t >= cut)
        .collect();
    let gap = received.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(gap <= Duration::from_millis(100), "a gap of {gap:?}");
}
