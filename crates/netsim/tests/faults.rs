//! Faults during a run: NAT reboot, interface down, link cut, host move, path changes.

mod common;

use std::time::Duration;

use common::*;
use floe_netsim::nodes::Peer;
use floe_netsim::{DropReason, LinkConfig, LinkId, NatConfig};

#[test]
fn nat_reboot_loses_every_mapping_so_replies_are_dropped() {
    let mut t = Topology::new(NatConfig::full_cone());
    let mapped = t.binding(CLIENT, STUN1).unwrap();
    t.sim.reboot_nat(t.nat, None);
    assert!(t.sim.nat_mappings(t.nat).is_empty());
    assert!(!t.unsolicited(t.stun1, STUN1, mapped));
    assert_eq!(t.sim.nat_stats(t.nat).reboots, 1);
    // The client's next packet creates a fresh mapping.
    assert_eq!(t.binding(CLIENT, STUN1), Some(mapped));
    assert_eq!(t.sim.nat_stats(t.nat).mappings_created, 2);
}

#[test]
fn nat_reboot_with_a_new_public_address_changes_the_reflexive_address() {
    let mut t = Topology::new(NatConfig::full_cone());
    let before = t.binding(CLIENT, STUN1).unwrap();
    t.sim.reboot_nat(t.nat, Some(ip("203.0.113.99")));
    let after = t.binding(CLIENT, STUN1).unwrap();
    assert_eq!(before, sa("203.0.113.1:5000"));
    assert_eq!(after, sa("203.0.113.99:5000"));
    // The old address no longer routes anywhere.
    assert!(!t.unsolicited(t.stun1, STUN1, before));
    assert_eq!(t.sim.stats().dropped(DropReason::NoRoute), 1);
}

#[test]
fn interface_down_drops_traffic_both_ways_and_up_restores_it() {
    let mut t = Topology::new(NatConfig::full_cone());
    let mapped = t.binding(CLIENT, STUN1).unwrap();
    t.sim.set_interface_up(t.client, 0, false);
    assert_eq!(t.binding(CLIENT, STUN1), None);
    assert!(!t.unsolicited(t.stun1, STUN1, mapped));
    t.sim.set_interface_up(t.client, 0, true);
    assert_eq!(t.binding(CLIENT, STUN1), Some(mapped));
    assert_eq!(t.sim.stats().dropped(DropReason::InterfaceDown), 2);
}

#[test]
fn a_cut_link_drops_everything_until_it_is_restored() {
    let mut t = Topology::new(NatConfig::full_cone());
    t.sim.set_link_up(LinkId::Router(t.nat), false);
    assert_eq!(t.binding(CLIENT, STUN1), None);
    assert_eq!(t.sim.stats().dropped(DropReason::LinkDown), 1);
    t.sim.set_link_up(LinkId::Router(t.nat), true);
    assert!(t.binding(CLIENT, STUN1).is_some());
}

#[test]
fn a_host_moving_to_another_network_gets_a_new_reflexive_address() {
    let mut t = Topology::new(NatConfig::full_cone());
    let internet = t.sim.internet();
    let (_, mobile) = t
        .sim
        .add_nat(internet, ip("203.0.113.50"), NatConfig::symmetric());
    let home = t.binding(CLIENT, STUN1).unwrap();
    t.sim.move_interface(t.client, 0, mobile, ip("10.20.0.5"));
    let away = t.binding("10.20.0.5:5000", STUN1).unwrap();
    assert_eq!(home.ip(), ip("203.0.113.1"));
    assert_eq!(away.ip(), ip("203.0.113.50"));
}

#[test]
fn link_delay_can_change_mid_run_per_direction() {
    let mut t = Topology::new(NatConfig::full_cone());
    // Defaults: 1 ms per link; client link + NAT link + server link each way = 6 ms RTT.
    let rtt = |t: &mut Topology| {
        let start = t.sim.now();
        t.binding(CLIENT, STUN1).unwrap();
        t.sim.node::<Peer>(t.client).received.last().unwrap().at - start
    };
    assert_eq!(rtt(&mut t), Duration::from_millis(6));
    t.sim.link_mut(LinkId::Router(t.nat)).up.config =
        LinkConfig::with_delay(Duration::from_millis(50));
    assert_eq!(rtt(&mut t), Duration::from_millis(55));
    t.sim.set_link(
        LinkId::Router(t.nat),
        &LinkConfig::with_delay(Duration::from_millis(10)),
    );
    assert_eq!(rtt(&mut t), Duration::from_millis(24));
}
