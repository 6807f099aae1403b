//! TURN through simulated NATs: a client behind a symmetric NAT (the case where only a
//! relay works) allocates on a public floe server and exchanges data with a peer on the
//! public internet and with a peer behind another NAT.

use std::net::SocketAddr;
use std::time::Duration;

use floe_netsim::{nodes::Peer, NatConfig, Simulator};
use floe_tests::turn_nodes::{TurnClientNode, TurnServerNode};
use floe_turn::client::{Client, ClientConfig, Event};
use floe_turn::server::ServerConfig;
use floe_turn::Transport;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const SERVER: &str = "198.51.100.1:3478";

fn server_config() -> ServerConfig {
    let mut c = ServerConfig::default();
    c.users.insert("alice".into(), "wonderland".into());
    c
}

#[test]
fn client_behind_a_symmetric_nat_relays_to_public_and_natted_peers() {
    let mut sim = Simulator::new(11);
    let internet = sim.internet();
    let now = sim.now();
    let server = sim.add_host(
        internet,
        addr(SERVER).ip(),
        TurnServerNode::new(addr(SERVER), server_config(), now, 1),
    );
    let (nat, lan) = sim.add_nat(
        internet,
        "203.0.113.10".parse().unwrap(),
        NatConfig::symmetric(),
    );
    let local = addr("192.168.0.2:40000");
    let config = ClientConfig::new(local, addr(SERVER), Transport::Udp, "alice", "wonderland");
    let client = sim.add_host(lan, local.ip(), TurnClientNode::new(Client::new(config, 2)));
    let public_peer = sim.add_host(internet, "192.0.2.7".parse().unwrap(), Peer::new());
    let (_, peer_lan) = sim.add_nat(
        internet,
        "203.0.113.20".parse().unwrap(),
        NatConfig::port_restricted_cone(),
    );
    let natted_peer = sim.add_host(peer_lan, "10.0.0.5".parse().unwrap(), Peer::new());

    sim.with_node(client, |n: &mut TurnClientNode, now| n.client.allocate(now));
    assert!(sim.run_until_condition(Duration::from_secs(5), |s| s
        .node::<TurnClientNode>(client)
        .saw(|e| matches!(e, Event::Allocated { .. }))));
    let c = sim.node::<TurnClientNode>(client);
    let relayed = c.client.relayed()[0];
    let mapped = c.client.mapped().unwrap();
    assert_eq!(relayed.ip(), addr(SERVER).ip());
    assert_eq!(
        mapped.ip().to_string(),
        "203.0.113.10",
        "the server saw the NAT's address"
    );
    assert!(sim.nat_stats(nat).mappings_created >= 1);

    // Public peer: permission, then both directions.
    let pp = addr("192.0.2.7:7000");
    sim.with_node(client, |n: &mut TurnClientNode, now| {
        n.client.create_permission(now, pp.ip()).unwrap();
    });
    assert!(sim.run_until_condition(Duration::from_secs(5), |s| s
        .node::<TurnClientNode>(client)
        .saw(|e| matches!(e, Event::PermissionCreated(_)))));
    sim.node_mut::<TurnClientNode>(client)
        .send_to(pp, b"to public peer");
    sim.run_for(Duration::from_millis(200));
    let got = &sim.node::<Peer>(public_peer).received;
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].remote, got[0].bytes.as_slice()),
        (relayed, &b"to public peer"[..])
    );
    sim.node_mut::<Peer>(public_peer)
        .send(pp, relayed, &b"from public peer"[..]);
    sim.run_for(Duration::from_millis(200));
    assert_eq!(
        sim.node::<TurnClientNode>(client)
            .data
            .last()
            .map(|d| (d.1, d.2.clone())),
        Some((pp, b"from public peer".to_vec()))
    );

    // A peer behind a port-restricted NAT reaches the relay after it sends first (its
    // filter opens towards the relay) — the usual ICE relay case.
    let np_local = addr("10.0.0.5:9000");
    let np_public = addr("203.0.113.20:9000");
    sim.with_node(client, |n: &mut TurnClientNode, now| {
        n.client.bind_channel(now, np_public).unwrap()
    });
    assert!(sim.run_until_condition(Duration::from_secs(5), |s| s
        .node::<TurnClientNode>(client)
        .saw(|e| matches!(e, Event::ChannelBound { .. }))));
    sim.node_mut::<Peer>(natted_peer)
        .send(np_local, relayed, &b"hello relay"[..]);
    sim.run_for(Duration::from_millis(200));
    assert_eq!(
        sim.node::<TurnClientNode>(client)
            .data
            .last()
            .map(|d| (d.1, d.2.clone())),
        Some((np_public, b"hello relay".to_vec()))
    );
    for i in 0..50u8 {
        sim.node_mut::<TurnClientNode>(client)
            .send_to(np_public, &[i; 64]);
        sim.run_for(Duration::from_millis(20));
    }
    let got = &sim.node::<Peer>(natted_peer).received;
    assert_eq!(got.len(), 50, "all ChannelData reached the NATted peer");
    assert!(got.iter().all(|r| r.remote == relayed));
    let stats = sim.node::<TurnServerNode>(server).server.stats();
    assert_eq!(stats.packets_to_peers, 51);
    assert_eq!(stats.packets_to_clients, 2);

    // The allocation survives an hour of silence on the data path: refreshes, permission
    // and channel refreshes keep the server state and the symmetric NAT's mapping alive.
    sim.run_for(Duration::from_secs(3600));
    sim.node_mut::<Peer>(natted_peer)
        .send(np_local, relayed, &b"still there"[..]);
    sim.run_for(Duration::from_millis(200));
    assert_eq!(
        sim.node::<TurnClientNode>(client)
            .data
            .last()
            .map(|d| d.2.clone()),
        Some(b"still there".to_vec())
    );
}
