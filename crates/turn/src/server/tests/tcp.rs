//! TURN-TCP (RFC 6062): TCP allocations, Connect, ConnectionAttempt, ConnectionBind,
//! and their bounds, between floe's client and server core; the runtime's part (the
//! sockets) is played here by hand.

use super::*;
use crate::server::{TcpOp, BIND_TIMEOUT, MAX_TCP_CONNECTIONS};

const PEER_TCP: &str = "192.0.2.80:8080";

fn tcp_client(net: &mut Net, port: u16, user: &str, password: &str) -> usize {
    let mut c = ClientConfig::new(
        SocketAddr::new("198.51.100.7".parse().unwrap(), port),
        addr(SERVER),
        Transport::Tcp,
        user,
        password,
    );
    c.tcp_relay = true;
    net.add_client(c)
}

fn ops(net: &mut Net) -> Vec<TcpOp> {
    std::iter::from_fn(|| net.server.poll_tcp_op()).collect()
}

fn allocated_tcp() -> (Net, usize) {
    let mut cfg = config();
    cfg.peer_policy.allow.push("192.0.2.0/24".parse().unwrap());
    let mut net = Net::new(cfg);
    let c = tcp_client(&mut net, 40_000, "alice", "wonderland");
    net.allocate(c);
    assert_eq!(
        net.clients[c].state(),
        &ClientState::Allocated,
        "{:?}",
        net.events
    );
    (net, c)
}

/// The client Connects to PEER_TCP: the CONNECTION-ID of the one Connect op.
fn connect_op(net: &mut Net, c: usize) -> u32 {
    let now = net.now;
    net.clients[c].connect(now, addr(PEER_TCP)).unwrap();
    net.settle();
    let [TcpOp::Connect { id, .. }] = ops(net)[..] else {
        panic!("one Connect op");
    };
    id
}

/// Sends the client's ConnectionBind for `id` from a new connection (`port`) and
/// returns the server's answer as the client judges it.
fn bind(net: &mut Net, c: usize, id: u32, port: u16) -> Result<(), TurnError> {
    let (bytes, pending) = net.clients[c].connection_bind(id).unwrap();
    let from = SocketAddr::new("198.51.100.7".parse().unwrap(), port);
    let now = net.now;
    net.server
        .handle_client(now, Transport::Tcp, addr(SERVER), from, &bytes);
    let answer = std::iter::from_fn(|| net.server.poll_transmit())
        .find(|t| t.destination == from)
        .expect("an answer on the data connection");
    net.clients[c].handle_connection_bind_response(&pending, &answer.data)
}

#[test]
fn a_tcp_allocation_connects_to_a_peer_and_binds_a_data_connection() {
    let (mut net, c) = allocated_tcp();
    let relayed = net.clients[c].relayed()[0];
    let now = net.now;
    net.clients[c].connect(now, addr(PEER_TCP)).unwrap();
    net.settle();
    let [TcpOp::Connect {
        id,
        relayed: from,
        peer,
    }] = ops(&mut net)[..]
    else {
        panic!("one Connect op");
    };
    assert_eq!((from, peer), (relayed, addr(PEER_TCP)));
    // The runtime connected: the client hears the CONNECTION-ID.
    assert!(net.server.handle_tcp_connected(net.now, id, true));
    net.settle();
    assert!(net.has_event(c, |e| *e
        == Event::TcpConnected {
            peer: addr(PEER_TCP),
            id
        }));
    bind(&mut net, c, id, 40_001).expect("ConnectionBind succeeds");
    assert_eq!(
        ops(&mut net),
        [TcpOp::Bind {
            id,
            local: addr(SERVER),
            remote: addr("198.51.100.7:40001")
        }]
    );
    // Bound once only.
    assert!(bind(&mut net, c, id, 40_002).is_err());
    // The allocation ends: its connections close (§5.5).
    net.clients[c].deallocate(net.now);
    net.settle();
    assert_eq!(ops(&mut net), [TcpOp::Close { id }]);
    assert_eq!(net.server.tcp_connections(), 0);
}

#[test]
fn connect_answers_446_447_and_403_per_section_5_2() {
    let (mut net, c) = allocated_tcp();
    let id = connect_op(&mut net, c);
    // A second Connect to the same peer while the first is processed: 446. The client
    // itself refuses to send it, so craft it from a second client of the same user.
    let r = crafted_connect(&mut net, addr(PEER_TCP));
    assert_eq!(code(&r), 446);
    // The runtime could not connect: 447.
    assert!(!net.server.handle_tcp_connected(net.now, id, false));
    net.settle();
    assert!(net.has_event(c, |e| matches!(
        e,
        Event::TcpConnectFailed(p, TurnError::Other { code: 447, .. }) if *p == addr(PEER_TCP)
    )));
    // A peer the policy refuses: 403.
    let now = net.now;
    net.clients[c].connect(now, addr("10.0.0.1:80")).unwrap();
    net.settle();
    assert!(net.has_event(c, |e| matches!(
        e,
        Event::TcpConnectFailed(_, TurnError::Forbidden)
    )));
    assert!(ops(&mut net).is_empty());
}

/// A Connect on the control connection of `allocated_tcp`'s client, signed by hand.
fn crafted_connect(net: &mut Net, peer: SocketAddr) -> Message<'static> {
    let c = 0;
    let key = IntegrityKey::long_term(
        "alice",
        "floe",
        "wonderland",
        floe_stun::credentials::Algorithm::Md5,
    )
    .unwrap();
    let nonce = challenge(net);
    let mut buf = vec![0u8; 512];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::CONNECT, Class::Request),
        TransactionId([9; 12]),
    )
    .unwrap();
    b.add(&XorPeerAddress(peer)).unwrap();
    b.add(&Username("alice")).unwrap();
    b.add(&Realm("floe")).unwrap();
    b.add(&Nonce(&nonce)).unwrap();
    b.add_message_integrity(&key).unwrap();
    let n = b.len();
    let from = net.clients[c].config().local;
    let now = net.now;
    net.server
        .handle_client(now, Transport::Tcp, addr(SERVER), from, &buf[..n]);
    let resp = std::iter::from_fn(|| net.server.poll_transmit())
        .find(|t| t.destination == from)
        .unwrap()
        .data;
    Message::parse(Box::leak(resp.into_boxed_slice())).unwrap()
}

/// A fresh nonce for the client address of client 0.
fn challenge(net: &mut Net) -> String {
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::CONNECT, Class::Request),
        TransactionId([8; 12]),
    )
    .unwrap();
    b.add(&XorPeerAddress(addr(PEER_TCP))).unwrap();
    let req = b.finish().to_vec();
    let from = net.clients[0].config().local;
    let now = net.now;
    net.server
        .handle_client(now, Transport::Tcp, addr(SERVER), from, &req);
    let t = net.server.poll_transmit().unwrap();
    let m = Message::parse(&t.data).unwrap();
    m.get::<Nonce>().unwrap().unwrap().0.to_owned()
}

#[test]
fn a_peer_connection_needs_a_permission_and_brings_a_connection_attempt() {
    let (mut net, c) = allocated_tcp();
    let relayed = net.clients[c].relayed()[0];
    let peer = addr(PEER_TCP);
    // No permission: closed at once, the client hears nothing (§5.3).
    assert_eq!(
        net.server
            .handle_tcp_peer_connection(net.now, relayed, peer),
        None
    );
    // Not a relayed address of ours.
    assert_eq!(
        net.server
            .handle_tcp_peer_connection(net.now, addr("203.0.113.1:1"), peer),
        None
    );
    let now = net.now;
    net.clients[c].create_permission(now, peer.ip()).unwrap();
    net.settle();
    let id = net
        .server
        .handle_tcp_peer_connection(net.now, relayed, peer)
        .expect("kept with a permission");
    net.settle();
    assert!(net.has_event(c, |e| *e == Event::ConnectionAttempt { peer, id }));
    bind(&mut net, c, id, 40_003).expect("the client accepts");
    assert!(matches!(ops(&mut net)[..], [TcpOp::Bind { id: i, .. }] if i == id));
    // The data connection closes: the core forgets it.
    net.server.handle_tcp_closed(net.now, id);
    assert_eq!(net.server.tcp_connections(), 0);
}

#[test]
fn an_unbound_peer_connection_is_closed_after_30_seconds() {
    let (mut net, c) = allocated_tcp();
    let id = connect_op(&mut net, c);
    net.server.handle_tcp_connected(net.now, id, true);
    net.run_for(BIND_TIMEOUT + Duration::from_secs(1));
    assert!(ops(&mut net).contains(&TcpOp::Close { id }));
    assert_eq!(
        bind(&mut net, c, id, 40_004),
        Err(TurnError::BadRequest {
            reason: "Bad Request".into()
        })
    );
}

#[test]
fn connection_bind_needs_the_allocations_credentials_and_a_fresh_connection() {
    let (mut net, c) = allocated_tcp();
    let id = connect_op(&mut net, c);
    net.server.handle_tcp_connected(net.now, id, true);
    net.settle();
    // Bob, with his own allocation, cannot bind Alice's connection: 441.
    let bob = tcp_client(&mut net, 41_000, "bob", "builder");
    net.allocate(bob);
    assert_eq!(
        bind(&mut net, bob, id, 41_001),
        Err(TurnError::WrongCredentials)
    );
    // Not on the control connection itself: 400.
    let control = net.clients[c].config().local.port();
    assert!(matches!(
        bind(&mut net, c, id, control),
        Err(TurnError::BadRequest { .. })
    ));
    // An unknown CONNECTION-ID: 400.
    assert!(matches!(
        bind(&mut net, c, id ^ 1, 40_005),
        Err(TurnError::BadRequest { .. })
    ));
    bind(&mut net, c, id, 40_006).expect("Alice binds it");
}

#[test]
fn an_allocations_peer_connections_are_bounded() {
    let (mut net, c) = allocated_tcp();
    for i in 0..MAX_TCP_CONNECTIONS {
        let peer = SocketAddr::new("192.0.2.80".parse().unwrap(), 1000 + i as u16);
        let now = net.now;
        net.clients[c].connect(now, peer).unwrap();
    }
    net.settle();
    assert_eq!(ops(&mut net).len(), MAX_TCP_CONNECTIONS);
    let now = net.now;
    net.clients[c].connect(now, addr("192.0.2.80:9")).unwrap();
    net.settle();
    assert!(net.has_event(c, |e| matches!(
        e,
        Event::TcpConnectFailed(_, TurnError::InsufficientCapacity)
    )));
    assert_eq!(
        net.server
            .stats()
            .quota_refusals_of(QuotaLimit::Connections),
        1
    );
    // Incoming connections beyond the bound are closed too.
    let relayed = net.clients[c].relayed()[0];
    let now = net.now;
    net.clients[c]
        .create_permission(now, "192.0.2.81".parse().unwrap())
        .unwrap();
    net.settle();
    assert_eq!(
        net.server
            .handle_tcp_peer_connection(net.now, relayed, addr("192.0.2.81:1")),
        None
    );
}

#[test]
fn tcp_allocate_rules_of_section_5_1() {
    // Over UDP: 400.
    let mut net = Net::new(config());
    let mut cfg = ClientConfig::new(
        addr(CLIENT),
        addr(SERVER),
        Transport::Udp,
        "alice",
        "wonderland",
    );
    cfg.tcp_relay = true;
    let c = net.add_client(cfg);
    net.allocate(c);
    assert!(net.has_event(c, |e| matches!(
        e,
        Event::AllocationFailed(TurnError::BadRequest { .. })
    )));
    // ChannelBind on a TCP allocation: 400 (its data goes over data connections).
    let (mut net, c) = allocated_tcp();
    let now = net.now;
    assert!(net.clients[c].bind_channel(now, addr(PEER_TCP)).is_ok());
    net.settle();
    assert!(net.has_event(c, |e| matches!(
        e,
        Event::ChannelBindFailed(_, TurnError::BadRequest { .. })
    )));
}

#[test]
fn a_server_without_tcp_relays_answers_442() {
    // A RelayAllocator without TCP (the default) refuses TCP allocations.
    struct UdpOnly(PortPool<ChaCha8Rng>);
    impl RelayAllocator for UdpOnly {
        fn supports(&self, f: floe_stun::attributes::AddressFamily) -> bool {
            self.0.supports(f)
        }
        fn allocate(
            &mut self,
            f: floe_stun::attributes::AddressFamily,
            even: bool,
            next: bool,
        ) -> Option<(SocketAddr, Option<SocketAddr>)> {
            self.0.allocate(f, even, next)
        }
        fn release(&mut self, a: SocketAddr) {
            self.0.release(a);
        }
        fn claim(&mut self, a: SocketAddr) -> bool {
            self.0.claim(a)
        }
    }
    let now = Instant::now();
    let mut server = Server::new(config(), UdpOnly(pool(false)), now, 1);
    let mut cfg = ClientConfig::new(
        addr(CLIENT),
        addr(SERVER),
        Transport::Tcp,
        "alice",
        "wonderland",
    );
    cfg.tcp_relay = true;
    let mut client = Client::new(cfg, 5);
    client.allocate(now);
    let mut events = Vec::new();
    for _ in 0..4 {
        while let Some(t) = client.poll_transmit() {
            server.handle_client(now, Transport::Tcp, addr(SERVER), addr(CLIENT), &t.data);
        }
        while let Some(t) = server.poll_transmit() {
            client
                .handle_stream_receive(now, &t.data, |_, _| {})
                .unwrap();
        }
        events.extend(std::iter::from_fn(|| client.poll_event()));
    }
    assert!(
        events.contains(&Event::AllocationFailed(TurnError::UnsupportedTransport)),
        "{events:?}"
    );
}
