//! Each RFC 4787 NAT behaviour, checked against its definition with a STUN Binding
//! responder (floe-stun) on the internet and a client behind the NAT.

mod common;

use std::time::Duration;

use common::*;
use floe_netsim::nodes::Peer;
use floe_netsim::{
    DropReason, FilteringBehavior, MappingBehavior, NatConfig, PortAssignment, Simulator,
};

fn nat(mapping: MappingBehavior, filtering: FilteringBehavior) -> NatConfig {
    NatConfig::new(mapping, filtering)
}

// ---- mapping (RFC 4787 §4.1) ----------------------------------------------------------

#[test]
fn endpoint_independent_mapping_gives_one_external_port_for_every_destination() {
    let mut t = Topology::new(nat(
        MappingBehavior::EndpointIndependent,
        FilteringBehavior::AddressAndPortDependent,
    ));
    let a = t.binding(CLIENT, STUN1).unwrap();
    let b = t.binding(CLIENT, STUN1_ALT_PORT).unwrap();
    let c = t.binding(CLIENT, STUN2).unwrap();
    assert_eq!(a, sa("203.0.113.1:5000"), "port preserved");
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(t.sim.nat_stats(t.nat).mappings_created, 1);
}

#[test]
fn address_dependent_mapping_gives_a_new_port_per_destination_address_only() {
    let mut t = Topology::new(nat(
        MappingBehavior::AddressDependent,
        FilteringBehavior::AddressDependent,
    ));
    let a = t.binding(CLIENT, STUN1).unwrap();
    let b = t.binding(CLIENT, STUN1_ALT_PORT).unwrap();
    let c = t.binding(CLIENT, STUN2).unwrap();
    assert_eq!(a, b, "same address, other port: same mapping");
    assert_ne!(a.port(), c.port(), "other address: new mapping");
    assert_eq!(a.ip(), c.ip(), "RFC 4787 REQ-2: paired address pooling");
}

#[test]
fn address_and_port_dependent_mapping_gives_a_new_external_port_per_destination() {
    let mut t = Topology::new(NatConfig::symmetric());
    let a = t.binding(CLIENT, STUN1).unwrap();
    let b = t.binding(CLIENT, STUN1_ALT_PORT).unwrap();
    let c = t.binding(CLIENT, STUN2).unwrap();
    assert_ne!(a.port(), b.port());
    assert_ne!(b.port(), c.port());
    assert_ne!(a.port(), c.port());
    assert_eq!(t.sim.nat_stats(t.nat).mappings_created, 3);
    // Repeating a destination reuses its mapping.
    assert_eq!(t.binding(CLIENT, STUN1).unwrap(), a);
}

// ---- filtering (RFC 4787 §5) ----------------------------------------------------------

#[test]
fn endpoint_independent_filtering_admits_anyone_once_a_mapping_exists() {
    let mut t = Topology::new(NatConfig::full_cone());
    let mapped = t.binding(CLIENT, STUN1).unwrap();
    assert!(t.unsolicited(t.stun2, "198.51.100.2:9999", mapped));
}

#[test]
fn no_mapping_means_no_way_in_even_with_endpoint_independent_filtering() {
    let mut t = Topology::new(NatConfig::full_cone());
    assert!(!t.unsolicited(t.stun1, STUN1, sa("203.0.113.1:5000")));
    assert_eq!(t.sim.nat_stats(t.nat).dropped_no_mapping, 1);
    assert_eq!(t.sim.stats().dropped(DropReason::NoMapping), 1);
}

#[test]
fn address_dependent_filtering_drops_a_new_address_but_not_a_new_port_of_a_known_address() {
    let mut t = Topology::new(NatConfig::restricted_cone());
    let mapped = t.binding(CLIENT, STUN1).unwrap();
    assert!(!t.unsolicited(t.stun2, STUN2, mapped), "new address");
    assert!(
        t.unsolicited(t.stun1, STUN1_ALT_PORT, mapped),
        "known address, new port"
    );
    assert_eq!(t.sim.nat_stats(t.nat).dropped_filtered, 1);
}

#[test]
fn address_and_port_dependent_filtering_drops_a_new_port_of_a_known_address() {
    let mut t = Topology::new(NatConfig::port_restricted_cone());
    let mapped = t.binding(CLIENT, STUN1).unwrap();
    assert!(
        !t.unsolicited(t.stun1, STUN1_ALT_PORT, mapped),
        "known address, new port"
    );
    assert!(!t.unsolicited(t.stun2, STUN2, mapped), "new address");
    assert!(
        t.unsolicited(t.stun1, STUN1, mapped),
        "the endpoint it sent to"
    );
    assert_eq!(t.sim.nat_stats(t.nat).dropped_filtered, 2);
}

// ---- port assignment (RFC 4787 §4.2) --------------------------------------------------

#[test]
fn port_preservation_falls_back_to_another_port_when_the_port_is_taken() {
    let mut t = Topology::new(NatConfig::full_cone());
    let lan = t.sim.inner_net(t.nat);
    let second = t.sim.add_host(lan, ip("192.168.1.3"), Peer::new());
    let first = t.binding(CLIENT, STUN1).unwrap();
    t.sim
        .node_mut::<Peer>(second)
        .send(sa("192.168.1.3:5000"), sa(STUN1), binding_request(9));
    t.sim.run_for(Duration::from_secs(1));
    let other = reflexive(&t.sim, second)[0];
    assert_eq!(first.port(), 5000);
    assert_ne!(other.port(), 5000, "RFC 4787 REQ-3: no port overloading");
}

#[test]
fn sequential_port_assignment_hands_out_consecutive_ports() {
    let mut t = Topology::new(NatConfig::symmetric().with_port_range(20000, 20100));
    let a = t.binding(CLIENT, STUN1).unwrap();
    let b = t.binding(CLIENT, STUN2).unwrap();
    assert_eq!((a.port(), b.port()), (20000, 20001));
}

#[test]
fn random_port_assignment_depends_only_on_the_seed() {
    let ports = |seed: u64| {
        let config = NatConfig::symmetric().with_port_assignment(PortAssignment::Random);
        let mut t = Topology::with_seed(config, seed);
        (0..4)
            .map(|i| {
                let to = if i % 2 == 0 { STUN1 } else { STUN2 };
                let from = format!("192.168.1.2:{}", 5000 + i);
                t.binding(&from, to).unwrap().port()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(ports(1), ports(1));
    assert_ne!(ports(1), ports(2));
    assert!(ports(3).iter().all(|p| *p >= 1024));
}

// ---- hairpinning (RFC 4787 §6) --------------------------------------------------------

fn two_hosts_behind_one_nat(
    config: NatConfig,
) -> (
    Topology,
    floe_netsim::NodeId,
    std::net::SocketAddr,
    std::net::SocketAddr,
) {
    let mut t = Topology::new(config);
    let lan = t.sim.inner_net(t.nat);
    let other = t.sim.add_host(lan, ip("192.168.1.3"), Peer::new());
    let client_mapped = t.binding(CLIENT, STUN1).unwrap();
    t.sim
        .node_mut::<Peer>(other)
        .send(sa("192.168.1.3:6000"), sa(STUN1), binding_request(1));
    t.sim.run_for(Duration::from_secs(1));
    let other_mapped = reflexive(&t.sim, other)[0];
    (t, other, client_mapped, other_mapped)
}

#[test]
fn hairpinning_loops_a_packet_back_in_with_the_senders_external_address() {
    let (mut t, other, client_mapped, other_mapped) =
        two_hosts_behind_one_nat(NatConfig::full_cone().with_hairpinning(true));
    t.sim
        .node_mut::<Peer>(t.client)
        .send(sa(CLIENT), other_mapped, &b"via the NAT"[..]);
    t.sim.run_for(Duration::from_secs(1));
    let got = &t.sim.node::<Peer>(other).received;
    let last = got.last().unwrap();
    assert_eq!(last.bytes, b"via the NAT");
    // RFC 4787 REQ-9a: "External source IP address and port".
    assert_eq!(last.remote, client_mapped);
    assert_eq!(t.sim.nat_stats(t.nat).hairpinned, 1);
}

#[test]
fn hairpinning_off_drops_a_packet_to_the_nats_own_public_address() {
    let (mut t, other, _, other_mapped) =
        two_hosts_behind_one_nat(NatConfig::full_cone().with_hairpinning(false));
    let before = t.sim.node::<Peer>(other).received.len();
    t.sim
        .node_mut::<Peer>(t.client)
        .send(sa(CLIENT), other_mapped, &b"via the NAT"[..]);
    t.sim.run_for(Duration::from_secs(1));
    assert_eq!(t.sim.node::<Peer>(other).received.len(), before);
    assert_eq!(t.sim.nat_stats(t.nat).dropped_hairpin, 1);
    assert_eq!(t.sim.stats().dropped(DropReason::HairpinDisabled), 1);
}

#[test]
fn hosts_behind_the_same_nat_reach_each_other_over_the_lan_without_translation() {
    let (mut t, other, _, _) = two_hosts_behind_one_nat(NatConfig::linux_masquerade());
    t.sim
        .node_mut::<Peer>(t.client)
        .send(sa(CLIENT), sa("192.168.1.3:6000"), &b"lan"[..]);
    t.sim.run_for(Duration::from_secs(1));
    assert_eq!(
        t.sim.node::<Peer>(other).received.last().unwrap().remote,
        sa(CLIENT)
    );
}

// ---- mapping lifetime and refresh (RFC 4787 §4.3) -------------------------------------

#[test]
fn default_mapping_lifetime_is_the_rfc_4787_recommended_five_minutes() {
    assert_eq!(
        NatConfig::default().udp_mapping_lifetime,
        Duration::from_secs(300)
    );
    assert!(!NatConfig::default().inbound_refresh);
}

#[test]
fn mapping_expires_after_its_lifetime_without_traffic() {
    let mut t = Topology::new(NatConfig::full_cone());
    let mapped = t.binding(CLIENT, STUN1).unwrap();
    t.sim.run_for(Duration::from_secs(290));
    assert_eq!(
        t.sim.nat_mappings(t.nat).len(),
        1,
        "still alive before 5 min"
    );
    t.sim.run_for(Duration::from_secs(15));
    assert!(t.sim.nat_mappings(t.nat).is_empty());
    assert!(!t.unsolicited(t.stun1, STUN1, mapped));
    assert_eq!(t.sim.nat_stats(t.nat).mappings_expired, 1);
}

#[test]
fn outbound_traffic_refreshes_the_mapping() {
    let mut t =
        Topology::new(NatConfig::full_cone().with_udp_mapping_lifetime(Duration::from_secs(30)));
    let first = t.binding(CLIENT, STUN1).unwrap();
    for _ in 0..20 {
        t.sim.run_for(Duration::from_secs(20));
        assert_eq!(t.binding(CLIENT, STUN1).unwrap(), first);
    }
    assert_eq!(t.sim.nat_stats(t.nat).mappings_created, 1);
    assert_eq!(t.sim.nat_stats(t.nat).mappings_expired, 0);
}

#[test]
fn inbound_traffic_refreshes_the_mapping_only_when_configured() {
    for inbound_refresh in [false, true] {
        let config = NatConfig::full_cone()
            .with_udp_mapping_lifetime(Duration::from_secs(30))
            .with_inbound_refresh(inbound_refresh);
        let mut t = Topology::new(config);
        let mapped = t.binding(CLIENT, STUN1).unwrap();
        let mut delivered = 0;
        for _ in 0..5 {
            t.sim.run_for(Duration::from_secs(19));
            delivered += usize::from(t.unsolicited(t.stun1, STUN1, mapped));
        }
        let expected = if inbound_refresh { 5 } else { 1 };
        assert_eq!(delivered, expected, "inbound_refresh = {inbound_refresh}");
    }
}

// ---- 1:1 NAT, presets, nesting --------------------------------------------------------

#[test]
fn one_to_one_nat_admits_unsolicited_traffic_with_ports_unchanged() {
    let mut t = Topology::new(NatConfig::one_to_one(ip("192.168.1.2")));
    assert!(t.unsolicited(t.stun1, STUN1, sa("203.0.113.1:4444")));
    let mapped = t.binding("192.168.1.2:7777", STUN2).unwrap();
    assert_eq!(mapped, sa("203.0.113.1:7777"));
}

#[test]
fn presets_have_their_rfc_4787_behaviours() {
    use FilteringBehavior as F;
    use MappingBehavior as M;
    let cases = [
        (
            NatConfig::full_cone(),
            M::EndpointIndependent,
            F::EndpointIndependent,
        ),
        (
            NatConfig::restricted_cone(),
            M::EndpointIndependent,
            F::AddressDependent,
        ),
        (
            NatConfig::port_restricted_cone(),
            M::EndpointIndependent,
            F::AddressAndPortDependent,
        ),
        (
            NatConfig::symmetric(),
            M::AddressAndPortDependent,
            F::AddressAndPortDependent,
        ),
        (
            NatConfig::linux_masquerade(),
            M::EndpointIndependent,
            F::AddressAndPortDependent,
        ),
        (
            NatConfig::linux_masquerade_random(),
            M::AddressAndPortDependent,
            F::AddressAndPortDependent,
        ),
    ];
    for (config, mapping, filtering) in cases {
        assert_eq!(
            (config.mapping, config.filtering),
            (mapping, filtering),
            "{config:?}"
        );
    }
    assert!(!NatConfig::linux_masquerade().hairpinning);
    assert_eq!(
        NatConfig::linux_masquerade_random().port_assignment,
        PortAssignment::Random
    );
}

#[test]
fn a_home_nat_behind_a_carrier_grade_nat_translates_twice() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    let stun = sim.add_host(internet, ip("198.51.100.1"), StunServer::default());
    let (cgn, isp) = sim.add_nat(internet, ip("203.0.113.1"), NatConfig::symmetric());
    let (home, lan) = sim.add_nat(isp, ip("100.64.0.7"), NatConfig::port_restricted_cone());
    let client = sim.add_host(lan, ip("192.168.1.2"), Peer::new());
    sim.node_mut::<Peer>(client)
        .send(sa(CLIENT), sa(STUN1), binding_request(1));
    sim.run_for(Duration::from_secs(1));
    let mapped = reflexive(&sim, client)[0];
    assert_eq!(mapped.ip(), ip("203.0.113.1"));
    assert_eq!(sim.nat_mappings(home)[0].external, sa("100.64.0.7:5000"));
    assert_eq!(sim.nat_mappings(cgn)[0].internal, sa("100.64.0.7:5000"));
    assert_eq!(sim.node::<StunServer>(stun).requests, 1);
}

#[test]
fn ipv6_is_routed_unchanged_through_a_nat_with_only_an_ipv4_external_address() {
    let mut t = Topology::new(NatConfig::symmetric());
    let internet = t.sim.internet();
    let lan = t.sim.inner_net(t.nat);
    t.sim.add_interface(t.client, lan, ip("2001:db8:1::2"));
    let v6_server = t
        .sim
        .add_host(internet, ip("2001:db8:ffff::1"), StunServer::default());
    let mapped = t
        .binding("[2001:db8:1::2]:5000", "[2001:db8:ffff::1]:3478")
        .unwrap();
    assert_eq!(mapped, sa("[2001:db8:1::2]:5000"));
    assert_eq!(t.sim.node::<StunServer>(v6_server).requests, 1);
    assert!(t.sim.nat_mappings(t.nat).is_empty());
}

// ---- address pooling (RFC 4787 §4.1, REQ-2) -------------------------------------------

/// A carrier-grade NAT with two external addresses and two hosts behind it; returns the
/// external addresses each host's bindings were seen from.
fn pooled(pooling: floe_netsim::AddressPooling) -> (Vec<std::net::IpAddr>, Vec<std::net::IpAddr>) {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    sim.add_host(internet, ip("198.51.100.1"), StunServer::default());
    sim.add_host(internet, ip("198.51.100.2"), StunServer::default());
    let config = floe_netsim::RouterConfig::nat(
        ip("203.0.113.1"),
        NatConfig::symmetric().with_pooling(pooling),
    )
    .with_external(ip("203.0.113.2"));
    let (_, lan) = sim.add_router(internet, config);
    let hosts = [
        sim.add_host(lan, ip("100.64.0.2"), Peer::new()),
        sim.add_host(lan, ip("100.64.0.3"), Peer::new()),
    ];
    for (h, host) in hosts.iter().enumerate() {
        for i in 0..8u16 {
            let from = sa(&format!("100.64.0.{}:{}", h + 2, 5000 + i));
            let to = if i % 2 == 0 { STUN1 } else { STUN2 };
            sim.node_mut::<Peer>(*host)
                .send(from, sa(to), binding_request(i as u8));
        }
    }
    sim.run_for(Duration::from_secs(1));
    let seen = |host| {
        reflexive(&sim, host)
            .iter()
            .map(std::net::SocketAddr::ip)
            .collect()
    };
    (seen(hosts[0]), seen(hosts[1]))
}

#[test]
fn paired_pooling_gives_every_mapping_of_a_host_the_same_external_address() {
    let (first, second) = pooled(floe_netsim::AddressPooling::Paired);
    assert_eq!(first, vec![ip("203.0.113.1"); 8]);
    assert_eq!(
        second,
        vec![ip("203.0.113.2"); 8],
        "hosts spread over the pool"
    );
}

#[test]
fn arbitrary_pooling_can_show_one_host_from_several_external_addresses() {
    let (first, _) = pooled(floe_netsim::AddressPooling::Arbitrary);
    assert!(first.contains(&ip("203.0.113.1")) && first.contains(&ip("203.0.113.2")));
}
