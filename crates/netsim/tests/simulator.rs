//! The driving API: timers, stepping, predicates, node access, multi-homing, routing.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use floe_netsim::nodes::{Peer, UdpEcho};
use floe_netsim::{
    DropReason, Firewall, NatConfig, Node, RouterConfig, SimConfig, Simulator, Transmit,
};

/// A sans-IO keepalive sender: every `interval` it sends one datagram to `server`, the way
/// an ICE agent sends consent checks (RFC 7675).
struct Keepalive {
    local: SocketAddr,
    server: SocketAddr,
    interval: Duration,
    next: Option<Instant>,
    out: VecDeque<Transmit>,
    replies: usize,
}

impl Keepalive {
    fn new(local: &str, server: &str, interval: Duration) -> Self {
        Self {
            local: sa(local),
            server: sa(server),
            interval,
            next: None,
            out: VecDeque::new(),
            replies: 0,
        }
    }
}

impl Node for Keepalive {
    fn handle_receive(&mut self, _: Instant, _: SocketAddr, _: SocketAddr, _: &[u8]) {
        self.replies += 1;
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        self.next
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.out.push_back(Transmit {
            source: self.local,
            destination: self.server,
            bytes: b"keepalive".to_vec(),
        });
        self.next = Some(now + self.interval);
    }
}

#[test]
fn timers_fire_at_the_requested_virtual_instants_without_sleeping() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    sim.add_host(internet, ip("198.51.100.1"), UdpEcho::new());
    let node = sim.add_host(
        internet,
        ip("198.51.100.2"),
        Keepalive::new(
            "198.51.100.2:5000",
            "198.51.100.1:7",
            Duration::from_secs(5),
        ),
    );
    let start = sim.now();
    sim.node_mut::<Keepalive>(node).next = Some(start);
    let wall = Instant::now();
    sim.run_for(Duration::from_secs(3600));
    assert!(
        wall.elapsed() < Duration::from_secs(2),
        "an hour of virtual time is fast"
    );
    assert_eq!(sim.node::<Keepalive>(node).replies, 720);
    assert_eq!(sim.elapsed(), Duration::from_secs(3600));
}

#[test]
fn consent_keepalives_every_5s_keep_a_linux_conntrack_mapping_alive_and_silence_kills_it() {
    for (interval, expected_mappings) in [(5, 1), (40, 2)] {
        let mut t = Topology::new(NatConfig::linux_masquerade());
        let lan = t.sim.inner_net(t.nat);
        let node = t.sim.add_host(
            lan,
            ip("192.168.1.9"),
            Keepalive::new("192.168.1.9:5000", STUN1, Duration::from_secs(interval)),
        );
        let now = t.sim.now();
        t.sim.node_mut::<Keepalive>(node).next = Some(now);
        t.sim.run_for(Duration::from_secs(70));
        assert_eq!(
            t.sim.nat_stats(t.nat).mappings_created,
            expected_mappings,
            "keepalive every {interval} s against a 30 s conntrack timeout"
        );
    }
}

#[test]
fn step_processes_one_event_at_a_time_and_reports_idleness() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    sim.add_host(internet, ip("198.51.100.1"), UdpEcho::new());
    let peer = sim.add_host(internet, ip("198.51.100.2"), Peer::new());
    sim.node_mut::<Peer>(peer)
        .send(sa("198.51.100.2:1"), sa("198.51.100.1:7"), &b"x"[..]);
    let mut steps = 0;
    while sim.step() {
        steps += 1;
    }
    // Sender link, echo delivery, echo's link back, delivery.
    assert_eq!(steps, 4);
    assert_eq!(sim.elapsed(), Duration::from_millis(4));
    assert!(sim.run_until_idle(Duration::from_secs(1)));
}

#[test]
fn run_until_condition_stops_as_soon_as_it_holds_and_gives_up_at_the_limit() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    sim.add_host(internet, ip("198.51.100.1"), UdpEcho::new());
    let peer = sim.add_host(internet, ip("198.51.100.2"), Peer::new());
    sim.node_mut::<Peer>(peer)
        .send(sa("198.51.100.2:1"), sa("198.51.100.1:7"), &b"x"[..]);
    let got = |sim: &Simulator| !sim.node::<Peer>(peer).received.is_empty();
    assert!(sim.run_until_condition(Duration::from_secs(10), got));
    assert_eq!(sim.elapsed(), Duration::from_millis(4));
    assert!(!sim.run_until_condition(Duration::from_secs(10), |_| false));
    assert_eq!(sim.elapsed(), Duration::from_millis(10_004));
}

#[test]
fn nodes_can_be_inspected_and_driven_mid_run() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    let echo = sim.add_host(internet, ip("198.51.100.1"), UdpEcho::new());
    let peer = sim.add_host(internet, ip("198.51.100.2"), Peer::new());
    assert!(sim.try_node::<Peer>(echo).is_none());
    let now = sim.with_node::<Peer, _>(peer, |p, now| {
        p.send(sa("198.51.100.2:1"), sa("198.51.100.1:7"), &b"x"[..]);
        now
    });
    assert_eq!(now, sim.now());
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.node::<UdpEcho>(echo).echoed, 1);
    assert_eq!(sim.node_stats(peer).sent, 1);
    assert_eq!(sim.node_stats(peer).received, 1);
}

#[test]
fn an_unspecified_source_address_picks_the_interface_of_the_destinations_family() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    let echo = sim.add_host(internet, ip("198.51.100.1"), UdpEcho::new());
    sim.add_interface(echo, internet, ip("2001:db8::1"));
    let peer = sim.add_host(internet, ip("198.51.100.2"), Peer::new());
    let v6 = sim.add_interface(peer, internet, ip("2001:db8::2"));
    assert_eq!(v6, 1);
    let peer_node = sim.node_mut::<Peer>(peer);
    peer_node.send(sa("0.0.0.0:1000"), sa("198.51.100.1:7"), &b"4"[..]);
    peer_node.send(sa("[::]:1000"), sa("[2001:db8::1]:7"), &b"6"[..]);
    sim.run_for(Duration::from_secs(1));
    let locals: Vec<SocketAddr> = sim
        .node::<Peer>(peer)
        .received
        .iter()
        .map(|r| r.local)
        .collect();
    assert_eq!(locals, [sa("198.51.100.2:1000"), sa("[2001:db8::2]:1000")]);
}

#[test]
fn a_nat_with_an_ipv6_external_address_translates_ipv6_too() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    sim.add_host(internet, ip("2001:db8:ffff::1"), StunServer::default());
    let config = RouterConfig::nat(ip("203.0.113.1"), NatConfig::symmetric())
        .with_external(ip("2001:db8:aaaa::1"));
    let (nat, lan) = sim.add_router(internet, config);
    let client = sim.add_host(lan, ip("fd00::2"), Peer::new());
    sim.node_mut::<Peer>(client).send(
        sa("[fd00::2]:5000"),
        sa("[2001:db8:ffff::1]:3478"),
        binding_request(1),
    );
    sim.run_for(Duration::from_secs(1));
    assert_eq!(reflexive(&sim, client)[0].ip(), ip("2001:db8:aaaa::1"));
    assert_eq!(sim.nat_mappings(nat).len(), 1);
}

#[test]
fn a_firewall_can_allow_only_some_udp_ports() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    sim.add_host(internet, ip("198.51.100.1"), UdpEcho::new());
    let config = RouterConfig::nat(ip("203.0.113.1"), NatConfig::full_cone())
        .with_firewall(Firewall::allow_udp_ports(&[3478]));
    let (fw, lan) = sim.add_router(internet, config);
    let client = sim.add_host(lan, ip("192.168.1.2"), Peer::new());
    let peer = sim.node_mut::<Peer>(client);
    peer.send(
        sa("192.168.1.2:5000"),
        sa("198.51.100.1:3478"),
        &b"stun"[..],
    );
    peer.send(sa("192.168.1.2:5000"), sa("198.51.100.1:5004"), &b"rtp"[..]);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.node::<Peer>(client).received.len(), 1);
    assert_eq!(sim.router_stats(fw).dropped_firewall, 1);
    assert_eq!(sim.stats().dropped(DropReason::Firewall), 1);
}

#[test]
fn a_destination_nobody_has_is_dropped_as_no_route() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    let peer = sim.add_host(internet, ip("198.51.100.2"), Peer::new());
    sim.node_mut::<Peer>(peer)
        .send(sa("198.51.100.2:1"), sa("192.0.2.77:7"), &b"x"[..]);
    sim.node_mut::<Peer>(peer)
        .send(sa("198.51.100.99:1"), sa("192.0.2.77:7"), &b"x"[..]);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.stats().dropped(DropReason::NoRoute), 1);
    assert_eq!(sim.stats().dropped(DropReason::NoSuchInterface), 1);
    assert_eq!(sim.node_stats(peer).dropped.total(), 2);
}

#[test]
fn derived_seeds_are_reproducible() {
    let seeds = |seed| {
        let mut sim = Simulator::with_config(SimConfig::new(seed));
        (sim.derive_seed(), sim.derive_seed())
    };
    assert_eq!(seeds(5), seeds(5));
    assert_ne!(seeds(5), seeds(6));
}

/// A buggy node whose deadline never moves.
struct Spinner(Instant);

impl Node for Spinner {
    fn handle_receive(&mut self, _: Instant, _: SocketAddr, _: SocketAddr, _: &[u8]) {}
    fn poll_transmit(&mut self) -> Option<Transmit> {
        None
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        Some(self.0)
    }
}

#[test]
#[should_panic(expected = "poll_timeout must move past now")]
fn a_node_whose_timeout_never_moves_forward_fails_loudly_instead_of_hanging() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    let now = sim.now();
    sim.add_host(internet, ip("198.51.100.1"), Spinner(now));
    sim.run_for(Duration::from_secs(1));
}

#[test]
fn hosts_behind_a_plain_router_are_reachable_from_the_internet() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    let outside = sim.add_host(internet, ip("198.51.100.1"), Peer::new());
    let (router, lan) = sim.add_router(internet, RouterConfig::plain());
    sim.add_host(lan, ip("192.0.2.10"), UdpEcho::new());
    sim.node_mut::<Peer>(outside)
        .send(sa("198.51.100.1:1"), sa("192.0.2.10:7"), &b"x"[..]);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.node::<Peer>(outside).remotes(), [sa("192.0.2.10:7")]);
    assert_eq!(sim.router_stats(router).inbound, 1);
    assert_eq!(sim.router_stats(router).outbound, 1);
}

#[test]
fn a_packet_to_a_plain_routers_own_address_is_dropped_not_looped() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    let outside = sim.add_host(internet, ip("198.51.100.1"), Peer::new());
    let config = RouterConfig::plain().with_external(ip("198.51.100.254"));
    sim.add_router(internet, config);
    sim.node_mut::<Peer>(outside)
        .send(sa("198.51.100.1:1"), sa("198.51.100.254:7"), &b"x"[..]);
    assert!(sim.run_until_idle(Duration::from_secs(1)));
    assert_eq!(sim.stats().dropped(DropReason::NoRoute), 1);
    assert_eq!(sim.node_stats(outside).dropped.get(DropReason::NoRoute), 1);
}

#[test]
fn a_linux_conntrack_mapping_lives_120s_once_replies_have_been_seen() {
    // Keepalives every 60 s: too slow for the 30 s timeout, fine for the 120 s one.
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    sim.add_host(internet, ip("198.51.100.1"), UdpEcho::new());
    sim.add_host(internet, ip("198.51.100.2"), Peer::new()); // silent: never answers
    let (nat, lan) = sim.add_nat(internet, ip(NAT_IP), NatConfig::linux_masquerade());
    let answered = sim.add_host(
        lan,
        ip("192.168.1.2"),
        Keepalive::new(
            "192.168.1.2:5000",
            "198.51.100.1:7",
            Duration::from_secs(60),
        ),
    );
    let unanswered = sim.add_host(
        lan,
        ip("192.168.1.3"),
        Keepalive::new(
            "192.168.1.3:5000",
            "198.51.100.2:7",
            Duration::from_secs(60),
        ),
    );
    let now = sim.now();
    sim.node_mut::<Keepalive>(answered).next = Some(now);
    sim.node_mut::<Keepalive>(unanswered).next = Some(now);
    sim.run_for(Duration::from_secs(250));
    let mappings = sim.nat_mappings(nat);
    let by_host = |host: &str| mappings.iter().filter(|m| m.internal == sa(host)).count();
    assert_eq!(by_host("192.168.1.2:5000"), 1);
    assert!(mappings
        .iter()
        .all(|m| m.internal != sa("192.168.1.2:5000") || m.bidirectional));
    // 5 keepalives, each 60 s after the last: every one needed a new mapping.
    assert_eq!(sim.nat_stats(nat).mappings_created, 1 + 5);
}

#[test]
fn a_stateful_ipv6_firewall_admits_only_replies() {
    use floe_netsim::FilteringBehavior;
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    let outside = sim.add_host(internet, ip("2001:db8:ffff::1"), Peer::new());
    // A home router: IPv4 NAT, IPv6 routed through an RFC 6092 stateful firewall.
    let config = RouterConfig::nat(ip("203.0.113.1"), NatConfig::port_restricted_cone())
        .with_firewall(Firewall::stateful(
            FilteringBehavior::AddressAndPortDependent,
        ));
    let (router, lan) = sim.add_router(internet, config);
    let inside = sim.add_host(lan, ip("2001:db8:1::2"), Peer::new());
    let (inside_addr, outside_addr) = (sa("[2001:db8:1::2]:5000"), sa("[2001:db8:ffff::1]:7000"));

    // Unsolicited: dropped.
    sim.node_mut::<Peer>(outside)
        .send(outside_addr, inside_addr, &b"knock"[..]);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.node::<Peer>(inside).received.is_empty());
    assert_eq!(sim.router_stats(router).dropped_firewall, 1);

    // After the inside host sends, the reply gets in, untranslated.
    sim.node_mut::<Peer>(inside)
        .send(inside_addr, outside_addr, &b"hello"[..]);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.node::<Peer>(outside).remotes(), [inside_addr]);
    sim.node_mut::<Peer>(outside)
        .send(outside_addr, inside_addr, &b"reply"[..]);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.node::<Peer>(inside).remotes(), [outside_addr]);
    // Another port of the same remote is still filtered.
    sim.node_mut::<Peer>(outside)
        .send(sa("[2001:db8:ffff::1]:7001"), inside_addr, &b"other"[..]);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.node::<Peer>(inside).received.len(), 1);
    assert_eq!(sim.router_stats(router).dropped_firewall, 2);
}
