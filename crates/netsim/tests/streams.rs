//! Reliable ordered byte streams through NATs and firewalls (what TURN over TCP/TLS needs).

mod common;

use std::time::Duration;

use common::*;
use floe_netsim::nodes::{Peer, UdpEcho};
use floe_netsim::{
    DropReason, Firewall, LinkConfig, NatConfig, NodeId, RouterConfig, Simulator, StreamCommand,
    StreamEvent, StreamId,
};

const RELAY: &str = "198.51.100.9:443";

fn events(sim: &Simulator, node: NodeId) -> Vec<StreamEvent> {
    sim.node::<Peer>(node)
        .stream_events
        .iter()
        .map(|(_, e)| e.clone())
        .collect()
}

/// A client behind `router` and a stream echo server on the internet.
fn setup(router: RouterConfig, link: LinkConfig) -> (Simulator, NodeId, floe_netsim::RouterId) {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    sim.add_host_with_link(
        internet,
        ip("198.51.100.9"),
        link.clone(),
        UdpEcho::new().listen(sa(RELAY)),
    );
    let (router, lan) = sim.add_router(internet, router);
    let client = sim.add_host_with_link(lan, ip("192.168.1.2"), link, Peer::new());
    (sim, client, router)
}

#[test]
fn a_stream_through_a_nat_delivers_every_byte_in_order_despite_jitter_and_loss() {
    let link = LinkConfig::with_delay(Duration::from_millis(10))
        .jitter(Duration::from_millis(30))
        .random_loss(0.1);
    let (mut sim, client, nat) = setup(RouterConfig::nat(ip(NAT_IP), NatConfig::symmetric()), link);
    let id = StreamId::new(sa("192.168.1.2:40000"), sa(RELAY));
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let peer = sim.node_mut::<Peer>(client);
    peer.command(StreamCommand::Connect(id));
    for chunk in data.chunks(7_000) {
        peer.command(StreamCommand::Send(id, chunk.to_vec()));
    }
    let done = sim.run_until_condition(Duration::from_secs(60), |sim| {
        sim.node::<Peer>(client).stream_bytes().len() == data.len()
    });
    assert!(done);
    assert_eq!(sim.node::<Peer>(client).stream_bytes(), data);
    assert_eq!(events(&sim, client)[0], StreamEvent::Connected(id));
    let tcp = sim.nat_mappings(nat);
    assert_eq!(tcp.len(), 1);
    assert_eq!(tcp[0].protocol, floe_netsim::Protocol::Tcp);
}

#[test]
fn connecting_to_a_port_nobody_listens_on_is_reset() {
    let (mut sim, client, _) = setup(
        RouterConfig::nat(ip(NAT_IP), NatConfig::full_cone()),
        LinkConfig::default(),
    );
    let id = StreamId::new(sa("192.168.1.2:40000"), sa("198.51.100.9:80"));
    sim.node_mut::<Peer>(client)
        .command(StreamCommand::Connect(id));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(events(&sim, client), [StreamEvent::Reset(id)]);
}

#[test]
fn accept_data_close_and_reset_are_seen_by_each_side() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    let server = sim.add_host(internet, ip("198.51.100.1"), Peer::new());
    let (_, lan) = sim.add_nat(internet, ip(NAT_IP), NatConfig::port_restricted_cone());
    let client = sim.add_host(lan, ip("192.168.1.2"), Peer::new());
    sim.node_mut::<Peer>(server)
        .command(StreamCommand::Listen(sa("0.0.0.0:443")));
    let id = StreamId::new(sa("192.168.1.2:40000"), sa("198.51.100.1:443"));
    let peer = sim.node_mut::<Peer>(client);
    peer.command(StreamCommand::Connect(id));
    peer.command(StreamCommand::Send(id, b"request".to_vec()));
    peer.command(StreamCommand::Close(id));
    sim.run_for(Duration::from_secs(1));
    // The server sees the client's NATed address.
    let server_side = StreamId::new(sa("198.51.100.1:443"), sa("203.0.113.1:40000"));
    assert_eq!(
        events(&sim, server),
        [
            StreamEvent::Accepted(server_side),
            StreamEvent::Data(server_side, b"request".to_vec()),
            StreamEvent::Closed(server_side),
        ]
    );
    // Half-closed: the server can still answer, then resets.
    let peer = sim.node_mut::<Peer>(server);
    peer.command(StreamCommand::Send(server_side, b"response".to_vec()));
    peer.command(StreamCommand::Reset(server_side));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(
        events(&sim, client),
        [
            StreamEvent::Connected(id),
            StreamEvent::Data(id, b"response".to_vec()),
            StreamEvent::Reset(id),
        ]
    );
}

#[test]
fn a_firewall_that_drops_udp_leaves_only_the_stream_to_the_relay() {
    let router = RouterConfig::nat(ip(NAT_IP), NatConfig::port_restricted_cone())
        .with_firewall(Firewall::block_udp());
    let (mut sim, client, fw) = setup(router, LinkConfig::default());
    // UDP to the relay is dropped...
    sim.node_mut::<Peer>(client)
        .send(sa("192.168.1.2:5000"), sa(RELAY), &b"udp"[..]);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.node::<Peer>(client).received.is_empty());
    assert_eq!(sim.router_stats(fw).dropped_firewall, 1);
    assert_eq!(sim.stats().dropped(DropReason::Firewall), 1);
    // ...but a stream gets through.
    let id = StreamId::new(sa("192.168.1.2:40000"), sa(RELAY));
    let peer = sim.node_mut::<Peer>(client);
    peer.command(StreamCommand::Connect(id));
    peer.command(StreamCommand::Send(id, b"allocate".to_vec()));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.node::<Peer>(client).stream_bytes(), b"allocate");
}

#[test]
fn a_connect_blocked_by_a_firewall_is_reset_after_the_connect_timeout() {
    let router = RouterConfig::firewall(Firewall::only_tcp_ports(&[443]));
    let (mut sim, client, fw) = setup(router, LinkConfig::default());
    let blocked = StreamId::new(sa("192.168.1.2:40000"), sa("198.51.100.9:3478"));
    let allowed = StreamId::new(sa("192.168.1.2:40001"), sa(RELAY));
    let peer = sim.node_mut::<Peer>(client);
    peer.command(StreamCommand::Connect(blocked));
    peer.command(StreamCommand::Connect(allowed));
    sim.run_for(Duration::from_secs(9));
    assert_eq!(events(&sim, client), [StreamEvent::Connected(allowed)]);
    sim.run_for(Duration::from_secs(2));
    let (at, last) = sim
        .node::<Peer>(client)
        .stream_events
        .last()
        .unwrap()
        .clone();
    assert_eq!(last, StreamEvent::Reset(blocked));
    assert_eq!(at - sim.clock().base(), Duration::from_secs(10));
    assert_eq!(sim.router_stats(fw).dropped_firewall, 1);
}

#[test]
fn an_established_stream_is_reset_when_its_nat_mapping_is_lost() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    let server = sim.add_host(internet, ip("198.51.100.1"), Peer::new());
    let (nat, lan) = sim.add_nat(internet, ip(NAT_IP), NatConfig::port_restricted_cone());
    let client = sim.add_host(lan, ip("192.168.1.2"), Peer::new());
    sim.node_mut::<Peer>(server)
        .command(StreamCommand::Listen(sa("198.51.100.1:443")));
    let id = StreamId::new(sa("192.168.1.2:40000"), sa("198.51.100.1:443"));
    sim.node_mut::<Peer>(client)
        .command(StreamCommand::Connect(id));
    sim.run_for(Duration::from_secs(1));
    let server_side = StreamId::new(sa("198.51.100.1:443"), sa("203.0.113.1:40000"));
    sim.reboot_nat(nat, None);
    // The server's data hits the rebooted NAT and is dropped: the server gives up later.
    sim.node_mut::<Peer>(server)
        .command(StreamCommand::Send(server_side, b"lost".to_vec()));
    sim.run_for(Duration::from_secs(11));
    assert_eq!(sim.stats().dropped(DropReason::NoMapping), 1);
    assert_eq!(
        events(&sim, server).last(),
        Some(&StreamEvent::Reset(server_side))
    );
    // The client's next segment reaches a server that no longer knows the stream: RST.
    sim.node_mut::<Peer>(client)
        .command(StreamCommand::Send(id, b"hello?".to_vec()));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(events(&sim, client).last(), Some(&StreamEvent::Reset(id)));
}
