//! The labelled counters of [`ServerStats`] count what happened, where it happened:
//! allocations by kind and end, refusals by code and limit, refused peers by kind,
//! drops by reason, and bytes per allocation.

use super::*;
use crate::policy::{AddressClass, PeerRefusal};

fn udp4() -> AllocationKind {
    AllocationKind::new(Transport::Udp, RelayFamily::Ipv4)
}

#[test]
fn an_expired_allocation_is_counted_apart_from_a_deleted_one() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let s = net.server.stats().allocations_of(udp4());
    assert_eq!((s.current, s.created, s.expired, s.deleted), (1, 1, 0, 0));
    net.server_up = false; // the client's refreshes are lost
    net.run_for(Duration::from_secs(601));
    let s = net.server.stats();
    let k = s.allocations_of(udp4());
    assert_eq!((k.current, k.created, k.expired, k.deleted), (0, 1, 1, 0));
    assert_eq!(s.allocations_expired(), 1);
    net.server_up = true;
    let d = net.add_client(ClientConfig::new(
        addr("198.51.100.7:40001"),
        addr(SERVER),
        Transport::Udp,
        "alice",
        "wonderland",
    ));
    net.allocate(d);
    let now = net.now;
    net.clients[d].deallocate(now);
    net.settle();
    let s = net.server.stats();
    let k = s.allocations_of(udp4());
    assert_eq!((k.current, k.created, k.expired, k.deleted), (0, 2, 1, 1));
    assert_eq!((s.allocations_expired(), s.allocations_deleted()), (1, 1));
}

#[test]
fn tcp_and_dual_stack_allocations_are_kinds_of_their_own() {
    let mut net = Net::with_pool(config(), pool(true));
    let tcp = net.add_client(ClientConfig::new(
        addr(CLIENT),
        addr(SERVER),
        Transport::Tcp,
        "alice",
        "wonderland",
    ));
    net.allocate(tcp);
    let mut cc = ClientConfig::new(
        addr("198.51.100.7:40001"),
        addr(SERVER),
        Transport::Udp,
        "alice",
        "wonderland",
    );
    cc.dual_stack = true;
    let dual = net.add_client(cc);
    net.allocate(dual);
    let tcp4 = AllocationKind::new(Transport::Tcp, RelayFamily::Ipv4);
    let udp_dual = AllocationKind::new(Transport::Udp, RelayFamily::Dual);
    let s = net.server.stats();
    assert_eq!(s.allocations_of(tcp4).current, 1);
    assert_eq!(s.allocations_of(udp_dual).current, 1);
    assert_eq!(s.allocations_of(udp4()).current, 0);
    let total: u64 = AllocationKind::ALL
        .iter()
        .map(|k| s.allocations_of(*k).current)
        .sum();
    assert_eq!(total, s.allocations as u64, "the kinds add up");
    net.server
        .handle_connection_closed(net.now, addr(SERVER), addr(CLIENT));
    let k = net.server.stats().allocations_of(tcp4);
    assert_eq!((k.current, k.deleted, k.expired), (0, 1, 0));
}

#[test]
fn a_tls_client_is_keyed_and_counted_as_tcp() {
    let mut net = Net::with_pool(config(), pool(true));
    let tls = net.add_client(ClientConfig::new(
        addr(CLIENT),
        addr(SERVER),
        Transport::Tls,
        "alice",
        "wonderland",
    ));
    net.allocate(tls);
    assert_eq!(net.clients[tls].state(), &ClientState::Allocated);
    let tcp4 = AllocationKind::new(Transport::Tcp, RelayFamily::Ipv4);
    let five_tuple = FiveTuple {
        transport: Transport::Tcp,
        client: addr(CLIENT),
        server: addr(SERVER),
    };
    assert!(net.server.allocation(&five_tuple).is_some());
    assert_eq!(net.server.stats().allocations_of(tcp4).current, 1);
    net.server
        .handle_connection_closed(net.now, addr(SERVER), addr(CLIENT));
    let k = net.server.stats().allocations_of(tcp4);
    assert_eq!((k.current, k.deleted), (0, 1));
}

#[test]
fn refusals_are_counted_by_code_and_by_limit() {
    let mut cfg = config();
    cfg.max_allocations_per_user = 1;
    cfg.max_allocations = 2;
    cfg.users.insert("carol".into(), "singer".into());
    let mut net = Net::new(cfg);
    let client = |net: &mut Net, port: u16, user: &str, pw: &str| {
        let local = SocketAddr::new(addr(CLIENT).ip(), port);
        net.add_client(ClientConfig::new(
            local,
            addr(SERVER),
            Transport::Udp,
            user,
            pw,
        ))
    };
    // 401: credentials offered and wrong (the first, credential-less 401 is a challenge).
    let wrong = client(&mut net, 40_000, "alice", "looking-glass");
    net.allocate(wrong);
    let alice = client(&mut net, 40_001, "alice", "wonderland");
    net.allocate(alice);
    // 441: bob on alice's 5-tuple.
    let bob_on_alice = client(&mut net, 40_001, "bob", "builder");
    net.allocate(bob_on_alice);
    // 486: alice's quota is one.
    let alice_again = client(&mut net, 40_002, "alice", "wonderland");
    net.allocate(alice_again);
    // 508: the server holds two.
    let bob = client(&mut net, 40_003, "bob", "builder");
    net.allocate(bob);
    let carol = client(&mut net, 40_004, "carol", "singer");
    net.allocate(carol);
    let s = net.server.stats();
    let by_code: Vec<(u16, u64)> = AuthFailure::ALL
        .iter()
        .map(|f| (f.code(), s.auth_failures_of(*f)))
        .collect();
    assert_eq!(
        by_code,
        [(401, 1), (438, 0), (441, 1), (486, 1), (508, 1), (403, 0)],
        "{s:?}"
    );
    assert_eq!(s.quota_refusals_of(QuotaLimit::UserAllocations), 1);
    assert_eq!(s.quota_refusals_of(QuotaLimit::Allocations), 1);
    assert_eq!(s.quota_refusals(), 2);
    assert_eq!(s.allocations, 2);

    // 438: credentials with a nonce that is not ours.
    let mut net = Net::new(config());
    let r = crafted_with_nonce(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP).unwrap();
        },
        None,
        |n| {
            let mut forged = n.to_owned();
            forged.pop();
            forged.push('x');
            forged
        },
    );
    assert_eq!(code(&r), 438);
    assert_eq!(
        net.server.stats().auth_failures_of(AuthFailure::StaleNonce),
        1
    );
}

#[test]
fn full_permission_and_channel_tables_are_counted_by_limit() {
    let mut cfg = config();
    cfg.max_permissions = 1;
    cfg.max_channels = 1;
    let mut net = Net::new(cfg);
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let now = net.now;
    for ip in ["192.0.2.50", "192.0.2.51"] {
        net.clients[c]
            .create_permission(now, ip.parse().unwrap())
            .unwrap();
        net.settle();
    }
    let s = net.server.stats();
    assert_eq!(s.quota_refusals_of(QuotaLimit::Permissions), 1);
    assert_eq!(s.auth_failures_of(AuthFailure::InsufficientCapacity), 1);
    let mut cfg = config();
    cfg.max_channels = 1;
    let mut net = Net::new(cfg);
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let now = net.now;
    for peer in ["192.0.2.50:5000", "192.0.2.50:5001"] {
        net.clients[c].bind_channel(now, addr(peer)).unwrap();
        net.settle();
    }
    assert_eq!(
        net.server.stats().quota_refusals_of(QuotaLimit::Channels),
        1
    );
}

#[test]
fn refused_peers_are_counted_by_kind_and_deny_ranges_as_denied() {
    let mut cfg = config();
    cfg.peer_policy.deny = vec!["198.51.100.0/24".parse().unwrap()];
    let mut net = Net::with_pool(cfg, pool(true));
    let mut cc = ClientConfig::new(
        addr(CLIENT),
        addr(SERVER),
        Transport::Udp,
        "alice",
        "wonderland",
    );
    cc.dual_stack = true;
    let c = net.add_client(cc);
    net.allocate(c);
    let now = net.now;
    for ip in [
        "127.0.0.1",
        "10.0.0.1",
        "::ffff:192.168.1.1",
        "fe80::1",
        "224.0.0.1",
        "198.51.100.9",
        "::ffff:198.51.100.10",
    ] {
        net.clients[c]
            .create_permission(now, ip.parse().unwrap())
            .unwrap();
        net.settle();
    }
    let s = net.server.stats();
    let class = |c| s.peers_refused_as(PeerRefusal::Class(c));
    assert_eq!(class(AddressClass::Loopback), 1);
    assert_eq!(class(AddressClass::Private), 2);
    assert_eq!(class(AddressClass::LinkLocal), 1);
    assert_eq!(class(AddressClass::Multicast), 1);
    assert_eq!(class(AddressClass::Unspecified), 0);
    assert_eq!(s.peers_refused_as(PeerRefusal::Denied), 2);
    let by_kind: u64 = PeerRefusal::ALL
        .iter()
        .map(|r| s.peers_refused_as(*r))
        .sum();
    assert_eq!((s.peers_refused, by_kind), (7, 7));
}

#[test]
fn drops_are_counted_by_reason() {
    let mut cfg = config();
    cfg.max_bps = Some(8_000); // 1,000 bytes per second
    let mut net = Net::new(cfg);
    let c = allocated_with_permission(&mut net, CLIENT, "alice", "wonderland");
    let relayed = net.clients[c].relayed()[0];
    let from = |net: &mut Net, client: &str, bytes: &[u8]| {
        net.server
            .handle_client(net.now, Transport::Udp, addr(SERVER), addr(client), bytes);
    };
    // Malformed: not STUN, not ChannelData.
    from(&mut net, CLIENT, &[0xff, 1, 2]);
    // Unexpected: a response sent to the server.
    let mut buf = [0u8; 64];
    let response = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::Success),
        TransactionId([3; 12]),
    )
    .unwrap()
    .finish()
    .to_vec();
    from(&mut net, CLIENT, &response);
    // No allocation: ChannelData from a 5-tuple without one, data to an unknown relay.
    from(&mut net, "198.51.100.9:1000", &[0x40, 0, 0, 1, 7, 0, 0, 0]);
    net.server
        .handle_peer(net.now, addr("203.0.113.1:9"), addr(PEER), b"x");
    // No permission: a peer the client never permitted, and an unbound channel.
    net.server
        .handle_peer(net.now, relayed, addr("192.0.2.99:5000"), b"x");
    from(&mut net, CLIENT, &[0x40, 0, 0, 1, 7, 0, 0, 0]);
    // Over the cap: one 600-byte datagram fits the 1,000-byte bucket, two do not.
    assert_eq!(burst_to_peer(&mut net, c, 3, 600), 1);
    // Queue full: the runtime's own drops.
    net.server.record_drop(DropReason::QueueFull);
    net.settle();
    let s = net.server.stats();
    let by_reason: Vec<(&str, u64)> = DropReason::ALL
        .iter()
        .map(|r| (r.as_str(), s.dropped_for(*r)))
        .collect();
    assert_eq!(
        by_reason,
        [
            ("malformed", 1),
            ("unexpected", 1),
            ("no_allocation", 2),
            ("no_permission", 2),
            ("over_cap", 2),
            ("too_large", 0),
            ("queue_full", 1),
        ]
    );
    assert_eq!(
        (s.dropped, s.over_cap),
        (7, 2),
        "the old totals still add up"
    );
}

#[test]
fn each_allocation_counts_its_own_bytes_each_way() {
    let mut net = Net::new(config());
    let c = allocated_with_permission(&mut net, CLIENT, "alice", "wonderland");
    let relayed = net.clients[c].relayed()[0];
    let d = allocated_with_permission(&mut net, "198.51.100.7:40001", "bob", "builder");
    assert_eq!(burst_to_peer(&mut net, c, 2, 100), 2);
    assert_eq!(burst_to_peer(&mut net, d, 1, 7), 1);
    net.peer_sends(relayed, addr(PEER), &[1; 30]);
    let bytes = |client: &str| {
        let ft = FiveTuple {
            transport: Transport::Udp,
            client: addr(client),
            server: addr(SERVER),
        };
        let a = &net.server.allocations[&ft];
        (a.bytes_to_peers, a.bytes_to_clients)
    };
    assert_eq!(bytes(CLIENT), (200, 30));
    assert_eq!(bytes("198.51.100.7:40001"), (7, 0));
}
