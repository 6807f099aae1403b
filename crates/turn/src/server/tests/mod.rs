//! Client and server state machines against each other in virtual time, plus crafted
//! requests for the rules a well-behaved client never breaks.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use floe_stun::attributes::*;
use floe_stun::{Class, IntegrityKey, Message, MessageBuilder, MessageType, Method, TransactionId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::client::{Client, ClientConfig, ClientState, Event, TurnError};

const SERVER: &str = "203.0.113.1:3478";
const CLIENT: &str = "198.51.100.7:40000";
const PEER: &str = "192.0.2.50:5000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn config() -> ServerConfig {
    let mut c = ServerConfig::default();
    c.users.insert("alice".into(), "wonderland".into());
    c.users.insert("bob".into(), "builder".into());
    c
}

fn pool(v6: bool) -> PortPool<ChaCha8Rng> {
    PortPool::new(
        Some("203.0.113.1".parse().unwrap()),
        v6.then(|| "2001:db8::1".parse().unwrap()),
        49_152..=49_200,
        ChaCha8Rng::seed_from_u64(3),
    )
}

/// A server, clients, and a peer, connected directly; time moves only when told to.
struct Net {
    now: Instant,
    server: Server<PortPool<ChaCha8Rng>>,
    clients: Vec<Client>,
    /// Datagrams the server sent to peers: (relayed source, peer, data).
    to_peers: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// Data clients received from peers: (client index, peer, data).
    from_peers: Vec<(usize, SocketAddr, Vec<u8>)>,
    events: Vec<(usize, Event)>,
    /// Whether the server answers at all.
    server_up: bool,
}

impl Net {
    fn new(config: ServerConfig) -> Net {
        Net::with_pool(config, pool(false))
    }

    fn with_pool(config: ServerConfig, pool: PortPool<ChaCha8Rng>) -> Net {
        let now = Instant::now();
        Net {
            now,
            server: Server::new(config, pool, now, 1),
            clients: Vec::new(),
            to_peers: Vec::new(),
            from_peers: Vec::new(),
            events: Vec::new(),
            server_up: true,
        }
    }

    fn add_client(&mut self, c: ClientConfig) -> usize {
        self.clients
            .push(Client::new(c, self.clients.len() as u64 + 10));
        self.clients.len() - 1
    }

    fn client(&mut self, user: &str, password: &str) -> usize {
        let c = ClientConfig::new(addr(CLIENT), addr(SERVER), Transport::Udp, user, password);
        self.add_client(c)
    }

    /// Delivers everything queued until nothing moves, without advancing time.
    fn settle(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            for i in 0..self.clients.len() {
                while let Some(t) = self.clients[i].poll_transmit() {
                    moved = true;
                    if self.server_up {
                        self.server.handle_client(
                            self.now,
                            t.transport,
                            t.destination,
                            t.source,
                            &t.data,
                        );
                    }
                }
                while let Some(e) = self.clients[i].poll_event() {
                    self.events.push((i, e));
                }
            }
            while let Some(t) = self.server.poll_transmit() {
                moved = true;
                let targets: Vec<usize> = (0..self.clients.len())
                    .filter(|&i| {
                        self.clients[i].config().local == t.destination
                            // The core answers a TLS client over its connection as TCP.
                            && self.clients[i].config().transport.is_stream()
                                == t.transport.is_stream()
                    })
                    .collect();
                // Clients sharing an address all see the datagram; each ignores what is
                // not its own transaction.
                for &i in &targets {
                    let now = self.now;
                    let mut got = Vec::new();
                    if t.transport.is_stream() {
                        self.clients[i]
                            .handle_stream_receive(now, &t.data, |p, d| got.push((p, d.to_vec())))
                            .unwrap();
                    } else if let Some((p, d)) = receive(&mut self.clients[i], now, &t.data) {
                        got.push((p, d.to_vec()));
                    }
                    self.from_peers
                        .extend(got.into_iter().map(|(p, d)| (i, p, d)));
                }
                if targets.is_empty() {
                    self.to_peers.push((t.source, t.destination, t.data));
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the network never settled");
    }

    /// Advances virtual time to `until`, firing timers in order.
    fn run_until(&mut self, until: Instant) {
        loop {
            self.settle();
            let next = self
                .clients
                .iter()
                .filter_map(Client::poll_timeout)
                .chain(self.server.poll_timeout())
                .min()
                .filter(|t| *t <= until);
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            for c in &mut self.clients {
                c.handle_timeout(self.now);
            }
            self.server.handle_timeout(self.now);
        }
        self.now = until;
        for c in &mut self.clients {
            c.handle_timeout(self.now);
        }
        self.server.handle_timeout(self.now);
        self.settle();
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn allocate(&mut self, i: usize) {
        self.clients[i].allocate(self.now);
        self.settle();
    }

    fn has_event(&self, i: usize, f: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(|(j, e)| *j == i && f(e))
    }

    fn peer_sends(&mut self, relayed: SocketAddr, peer: SocketAddr, data: &[u8]) {
        self.server.handle_peer(self.now, relayed, peer, data);
        self.settle();
    }
}

#[test]
fn allocation_goes_through_the_401_realm_nonce_exchange() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    assert_eq!(net.clients[c].state(), &ClientState::Allocated);
    let relayed = net.clients[c].relayed()[0];
    assert_eq!(relayed.ip(), "203.0.113.1".parse::<IpAddr>().unwrap());
    assert!((49_152..=49_200).contains(&relayed.port()));
    assert_eq!(net.clients[c].mapped(), Some(addr(CLIENT)));
    assert!(net.has_event(
        c,
        |e| matches!(e, Event::Allocated { lifetime, .. } if *lifetime == Duration::from_secs(600))
    ));
    assert_eq!(net.server.stats().challenges, 1);
    assert_eq!(net.server.stats().allocations, 1);
}

#[test]
fn wrong_password_fails_with_unauthenticated() {
    let mut net = Net::new(config());
    let c = net.client("alice", "looking-glass");
    net.allocate(c);
    assert!(net.has_event(c, |e| *e
        == Event::AllocationFailed(TurnError::Unauthenticated)));
    assert_eq!(net.server.stats().allocations, 0);
    assert!(net.server.stats().auth_failures >= 1);
}

#[test]
fn data_flows_both_ways_through_send_and_data_indications() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let relayed = net.clients[c].relayed()[0];
    let now = net.now;
    net.clients[c]
        .create_permission(now, addr(PEER).ip())
        .unwrap();
    net.settle();
    assert!(net.has_event(c, |e| *e == Event::PermissionCreated(addr(PEER).ip())));
    let t = net.clients[c].send_to(addr(PEER), b"hello peer").unwrap();
    net.server
        .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    net.settle();
    assert_eq!(
        net.to_peers,
        [(relayed, addr(PEER), b"hello peer".to_vec())]
    );
    net.peer_sends(relayed, addr(PEER), b"hello client");
    assert_eq!(net.from_peers, [(c, addr(PEER), b"hello client".to_vec())]);
    let s = net.server.stats();
    assert_eq!(
        (s.packets_to_peers, s.packets_to_clients, s.bytes_to_peers),
        (1, 1, 10)
    );
}

#[test]
fn channels_carry_data_as_channel_data_both_ways() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let relayed = net.clients[c].relayed()[0];
    let now = net.now;
    let ch = net.clients[c].bind_channel(now, addr(PEER)).unwrap();
    net.settle();
    assert!(net.has_event(c, |e| *e
        == Event::ChannelBound {
            peer: addr(PEER),
            channel: ch
        }));
    let t = net.clients[c].send_to(addr(PEER), b"via channel").unwrap();
    assert_eq!(
        &t.data[..2],
        &ch.to_be_bytes(),
        "a bound channel sends ChannelData"
    );
    assert_eq!(t.data.len(), 4 + 11, "no padding over UDP");
    net.server
        .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    net.settle();
    assert_eq!(
        net.to_peers,
        [(relayed, addr(PEER), b"via channel".to_vec())]
    );
    // The server answers with ChannelData too.
    net.server
        .handle_peer(net.now, relayed, addr(PEER), b"back");
    let t = net.server.poll_transmit().unwrap();
    assert_eq!(&t.data[..2], &ch.to_be_bytes());
    assert_eq!(
        receive(&mut net.clients[c], net.now, &t.data),
        Some((addr(PEER), &b"back"[..]))
    );
}

#[test]
fn data_without_a_permission_is_dropped_both_ways() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let relayed = net.clients[c].relayed()[0];
    let t = net.clients[c].send_to(addr(PEER), b"nope").unwrap();
    net.server
        .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    net.peer_sends(relayed, addr(PEER), b"nope");
    assert!(net.to_peers.is_empty());
    assert!(net.from_peers.is_empty());
    assert_eq!(net.server.stats().dropped, 2);
}

#[test]
fn refreshes_keep_the_allocation_permissions_and_channels_alive() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let relayed = net.clients[c].relayed()[0];
    let now = net.now;
    net.clients[c]
        .create_permission(now, addr(PEER).ip())
        .unwrap();
    let other: SocketAddr = addr("192.0.2.60:6000");
    net.clients[c].bind_channel(now, other).unwrap();
    net.run_for(Duration::from_secs(2 * 3600));
    assert_eq!(net.clients[c].state(), &ClientState::Allocated);
    assert_eq!(net.server.stats().allocations, 1);
    assert!(
        net.events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Refreshed { .. }))
            .count()
            >= 12
    );
    net.peer_sends(relayed, addr(PEER), b"still here");
    net.peer_sends(relayed, other, b"channel too");
    assert_eq!(net.from_peers.len(), 2);
}

#[test]
fn stale_nonce_is_retried_with_the_new_nonce() {
    let mut cfg = config();
    cfg.nonce_lifetime = Duration::from_secs(30);
    let mut net = Net::new(cfg);
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    net.run_for(Duration::from_secs(60));
    let now = net.now;
    net.clients[c]
        .create_permission(now, addr(PEER).ip())
        .unwrap();
    net.settle();
    assert!(net.has_event(c, |e| *e == Event::PermissionCreated(addr(PEER).ip())));
    // One 401 for the Allocate, one 438 for the CreatePermission.
    assert_eq!(net.server.stats().challenges, 2);
}

#[test]
fn an_abandoned_allocation_expires_and_its_port_is_released() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    net.server_up = false; // the client's refreshes are lost
    net.run_for(Duration::from_secs(601));
    assert_eq!(net.server.stats().allocations, 0);
    assert_eq!(net.server.relays().in_use(), 0);
    assert!(net.has_event(c, |e| matches!(e, Event::AllocationLost(_))));
}

#[test]
fn permissions_expire_after_300_seconds_without_refresh() {
    let mut net = Net::new(config());
    let mut cc = ClientConfig::new(
        addr(CLIENT),
        addr(SERVER),
        Transport::Udp,
        "alice",
        "wonderland",
    );
    cc.permission_refresh = Duration::from_secs(10_000);
    let c = net.add_client(cc);
    net.allocate(c);
    let relayed = net.clients[c].relayed()[0];
    let now = net.now;
    net.clients[c]
        .create_permission(now, addr(PEER).ip())
        .unwrap();
    net.run_for(Duration::from_secs(299));
    net.peer_sends(relayed, addr(PEER), b"a");
    assert_eq!(net.from_peers.len(), 1);
    net.run_for(Duration::from_secs(2));
    net.peer_sends(relayed, addr(PEER), b"b");
    assert_eq!(net.from_peers.len(), 1, "the permission expired at 300 s");
}

#[test]
fn per_user_quota_gives_486() {
    let mut cfg = config();
    cfg.max_allocations_per_user = 1;
    let mut net = Net::new(cfg);
    let a = net.client("alice", "wonderland");
    let b = net.add_client(ClientConfig::new(
        addr("198.51.100.7:40001"),
        addr(SERVER),
        Transport::Udp,
        "alice",
        "wonderland",
    ));
    net.allocate(a);
    net.allocate(b);
    assert!(net.has_event(b, |e| *e
        == Event::AllocationFailed(TurnError::QuotaReached)));
    let c = net.add_client(ClientConfig::new(
        addr("198.51.100.7:40002"),
        addr(SERVER),
        Transport::Udp,
        "bob",
        "builder",
    ));
    net.allocate(c);
    assert_eq!(net.clients[c].state(), &ClientState::Allocated);
}

#[test]
fn total_capacity_gives_508() {
    let mut cfg = config();
    cfg.max_allocations = 1;
    let mut net = Net::new(cfg);
    let a = net.client("alice", "wonderland");
    let b = net.add_client(ClientConfig::new(
        addr("198.51.100.7:40001"),
        addr(SERVER),
        Transport::Udp,
        "bob",
        "builder",
    ));
    net.allocate(a);
    net.allocate(b);
    assert!(net.has_event(b, |e| *e
        == Event::AllocationFailed(TurnError::InsufficientCapacity)));
}

#[test]
fn a_second_allocate_on_the_same_five_tuple_gets_437_and_other_credentials_441() {
    let mut net = Net::new(config());
    let a = net.client("alice", "wonderland");
    net.allocate(a);
    let again = net.client("alice", "wonderland");
    net.allocate(again);
    assert!(net.has_event(again, |e| *e
        == Event::AllocationFailed(TurnError::AllocationMismatch)));
    let bob = net.client("bob", "builder");
    net.allocate(bob);
    assert!(net.has_event(bob, |e| *e
        == Event::AllocationFailed(TurnError::WrongCredentials)));
}

#[test]
fn a_retransmitted_allocate_gets_the_same_success() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.clients[c].allocate(net.now);
    // Deliver the first request (401), then hold the authenticated one and send it twice.
    let t = net.clients[c].poll_transmit().unwrap();
    net.server
        .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    let r = net.server.poll_transmit().unwrap();
    receive(&mut net.clients[c], net.now, &r.data);
    let t = net.clients[c].poll_transmit().unwrap();
    net.server
        .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    net.server
        .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    let first = Message::parse(&net.server.poll_transmit().unwrap().data)
        .unwrap()
        .get::<XorRelayedAddress>()
        .unwrap();
    let second = Message::parse(&net.server.poll_transmit().unwrap().data)
        .unwrap()
        .get::<XorRelayedAddress>()
        .unwrap();
    assert!(first.is_some());
    assert_eq!(first, second);
    assert_eq!(net.server.stats().allocations, 1);
}

#[test]
fn refused_peers_get_403_including_ipv6_spellings_of_private_ipv4() {
    let mut net = Net::with_pool(config(), pool(true));
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
    assert_eq!(net.clients[c].relayed().len(), 2);
    let now = net.now;
    for ip in [
        "127.0.0.1",
        "10.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "::1",
        "fe80::1",
    ] {
        let ip: IpAddr = ip.parse().unwrap();
        net.clients[c].create_permission(now, ip).unwrap();
        net.settle();
        assert!(
            net.has_event(c, |e| *e
                == Event::PermissionFailed(ip, TurnError::Forbidden)),
            "{ip}"
        );
    }
    assert_eq!(net.server.stats().peers_refused, 7);
    let now = net.now;
    net.clients[c]
        .create_permission(now, "2001:db8:5::1".parse().unwrap())
        .unwrap();
    net.settle();
    assert!(net.has_event(
        c,
        |e| matches!(e, Event::PermissionCreated(ip) if ip.is_ipv6())
    ));
}

#[test]
fn loopback_peers_are_relayed_when_the_operator_allows_them() {
    let mut cfg = config();
    cfg.peer_policy.allow_loopback = true;
    let mut net = Net::new(cfg);
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let now = net.now;
    net.clients[c]
        .create_permission(now, "127.0.0.1".parse().unwrap())
        .unwrap();
    net.settle();
    assert!(net.has_event(c, |e| matches!(e, Event::PermissionCreated(_))));
}

/// RFC 8656 §7.2: a dual request to a server without IPv4 relays fails with 440 as a
/// whole; the client asks again for the IPv6 relay alone and gets it.
#[test]
fn a_dual_request_to_an_ipv6_only_server_falls_back_to_an_ipv6_relay() {
    let v6_only = PortPool::new(
        None,
        Some("2001:db8::1".parse().unwrap()),
        49_152..=49_200,
        ChaCha8Rng::seed_from_u64(3),
    );
    let mut net = Net::with_pool(config(), v6_only);
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
    let relayed = net.clients[c].relayed().to_vec();
    assert_eq!(relayed.len(), 1, "{relayed:?}");
    assert!(relayed[0].is_ipv6(), "{relayed:?}");
    assert!(!net.has_event(c, |e| matches!(e, Event::AllocationFailed(_))));
}

#[test]
fn ipv4_only_server_answers_a_dual_request_with_a_partial_allocation() {
    let mut net = Net::new(config());
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
    assert_eq!(net.clients[c].relayed().len(), 1);
    assert!(net.has_event(c, |e| *e
        == Event::PartialAllocation {
            family: AddressFamily::Ipv6,
            code: 440
        }));
    let mut cc = ClientConfig::new(
        addr("198.51.100.7:1"),
        addr(SERVER),
        Transport::Udp,
        "bob",
        "builder",
    );
    cc.family = AddressFamily::Ipv6;
    let c = net.add_client(cc);
    net.allocate(c);
    assert!(net.has_event(c, |e| *e
        == Event::AllocationFailed(TurnError::AddressFamilyNotSupported)));
}

#[test]
fn peer_of_the_other_family_gets_443() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let now = net.now;
    let ip: IpAddr = "2001:db8:9::1".parse().unwrap();
    net.clients[c].create_permission(now, ip).unwrap();
    net.settle();
    assert!(net.has_event(c, |e| *e
        == Event::PermissionFailed(ip, TurnError::PeerAddressFamilyMismatch)));
}

#[test]
fn deallocate_removes_the_allocation() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let now = net.now;
    net.clients[c].deallocate(now);
    net.settle();
    assert!(net.has_event(c, |e| *e == Event::Deallocated));
    assert_eq!(net.server.stats().allocations, 0);
    assert_eq!(net.server.relays().in_use(), 0);
}

#[test]
fn turn_rest_credentials_work_until_they_expire() {
    let mut cfg = config();
    cfg.rest_secrets = vec!["north-wind".into()];
    let mut net = Net::new(cfg);
    net.server.set_wall_clock(net.now, 1_000_000);
    let (user, pass) = crate::rest::credentials("north-wind", "carol", 1_000_100);
    let c = net.add_client(ClientConfig::new(
        addr(CLIENT),
        addr(SERVER),
        Transport::Udp,
        &user,
        &pass,
    ));
    net.allocate(c);
    assert_eq!(net.clients[c].state(), &ClientState::Allocated);
    let (user, pass) = crate::rest::credentials("north-wind", "carol", 999_999);
    let c = net.add_client(ClientConfig::new(
        addr("198.51.100.7:2"),
        addr(SERVER),
        Transport::Udp,
        &user,
        &pass,
    ));
    net.allocate(c);
    assert!(net.has_event(c, |e| *e
        == Event::AllocationFailed(TurnError::Unauthenticated)));
    let (user, _) = crate::rest::credentials("north-wind", "carol", 1_000_100);
    let c = net.add_client(ClientConfig::new(
        addr("198.51.100.7:3"),
        addr(SERVER),
        Transport::Udp,
        &user,
        "forged",
    ));
    net.allocate(c);
    assert!(net.has_event(c, |e| *e
        == Event::AllocationFailed(TurnError::Unauthenticated)));
}

#[test]
fn our_client_and_server_agree_on_sha256_password_algorithm() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.clients[c].allocate(net.now);
    let t = net.clients[c].poll_transmit().unwrap();
    net.server
        .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    let challenge = net.server.poll_transmit().unwrap();
    let msg = Message::parse(&challenge.data).unwrap();
    assert_eq!(msg.get::<ErrorCode>().unwrap().unwrap().code, 401);
    let nonce = msg.get::<Nonce>().unwrap().unwrap();
    assert!(
        floe_stun::credentials::SecurityFeatures::from_nonce(nonce.0)
            .unwrap()
            .password_algorithms
    );
    receive(&mut net.clients[c], net.now, &challenge.data);
    let t = net.clients[c].poll_transmit().unwrap();
    let req = Message::parse(&t.data).unwrap();
    assert_eq!(
        req.get::<PasswordAlgorithm>().unwrap().unwrap().algorithm,
        2
    );
    net.server
        .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    let ok = Message::parse(&net.server.poll_transmit().unwrap().data)
        .unwrap()
        .class();
    assert_eq!(ok, Class::Success);
}

/// Builds an authenticated request by hand, as a misbehaving client would.
fn crafted(
    net: &mut Net,
    method: Method,
    fill: impl FnOnce(&mut MessageBuilder<'_>),
    algorithms: Option<&[u8]>,
) -> Message<'static> {
    crafted_with_nonce(net, method, fill, algorithms, str::to_owned)
}

/// [`crafted`], with the server's nonce rewritten by `nonce` before it is echoed.
fn crafted_with_nonce(
    net: &mut Net,
    method: Method,
    fill: impl FnOnce(&mut MessageBuilder<'_>),
    algorithms: Option<&[u8]>,
    nonce: impl FnOnce(&str) -> String,
) -> Message<'static> {
    // Get a nonce first.
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(method, Class::Request),
        TransactionId([1; 12]),
    )
    .unwrap();
    b.add(&RequestedTransport::UDP).unwrap();
    let probe = b.finish().to_vec();
    net.server
        .handle_client(net.now, Transport::Udp, addr(SERVER), addr(CLIENT), &probe);
    let challenge = net.server.poll_transmit().unwrap().data;
    let challenge = Message::parse(&challenge).unwrap();
    let nonce = nonce(challenge.get::<Nonce>().unwrap().unwrap().0);
    let key = IntegrityKey::long_term(
        "alice",
        "floe",
        "wonderland",
        floe_stun::credentials::Algorithm::Md5,
    )
    .unwrap();
    let mut buf = vec![0u8; 512];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(method, Class::Request),
        TransactionId([2; 12]),
    )
    .unwrap();
    fill(&mut b);
    b.add(&Username("alice"))
        .unwrap()
        .add(&Realm("floe"))
        .unwrap()
        .add(&Nonce(&nonce))
        .unwrap();
    if let Some(raw) = algorithms {
        b.add_raw(floe_stun::AttrType::PASSWORD_ALGORITHMS, raw)
            .unwrap();
        b.add(&PasswordAlgorithm::MD5).unwrap();
    }
    b.add_message_integrity(&key).unwrap();
    let n = b.len();
    net.server.handle_client(
        net.now,
        Transport::Udp,
        addr(SERVER),
        addr(CLIENT),
        &buf[..n],
    );
    let resp = net.server.poll_transmit().unwrap().data;
    Message::parse(Box::leak(resp.into_boxed_slice())).unwrap()
}

fn code(m: &Message<'_>) -> u16 {
    m.get::<ErrorCode>().unwrap().map_or(0, |c| c.code)
}

#[test]
fn allocate_rules_of_rfc_8656_section_7_2() {
    let mut net = Net::new(config());
    let r = crafted(&mut net, Method::ALLOCATE, |_| {}, None);
    assert_eq!(code(&r), 400, "no REQUESTED-TRANSPORT");
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::TCP).unwrap();
        },
        None,
    );
    assert_eq!(code(&r), 400, "RFC 6062 §5.1: a TCP relay over UDP");
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport(132)).unwrap();
        },
        None,
    );
    assert_eq!(code(&r), 442, "SCTP");
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP)
                .unwrap()
                .add(&DontFragment)
                .unwrap();
        },
        None,
    );
    assert_eq!(code(&r), 420, "DONT-FRAGMENT is unsupported");
    assert_eq!(
        r.get::<UnknownAttributes>()
            .unwrap()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        [floe_stun::AttrType::DONT_FRAGMENT]
    );
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP)
                .unwrap()
                .add(&RequestedAddressFamily(AddressFamily::Ipv4))
                .unwrap();
            b.add(&AdditionalAddressFamily(AddressFamily::Ipv6))
                .unwrap();
        },
        None,
    );
    assert_eq!(code(&r), 400, "both family attributes");
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP)
                .unwrap()
                .add(&AdditionalAddressFamily(AddressFamily::Ipv4))
                .unwrap();
        },
        None,
    );
    assert_eq!(code(&r), 400, "additional family IPv4");
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP)
                .unwrap()
                .add(&ReservationToken([9; 8]))
                .unwrap();
        },
        None,
    );
    assert_eq!(code(&r), 508, "unknown reservation token");
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP)
                .unwrap()
                .add(&ReservationToken([9; 8]))
                .unwrap()
                .add(&EvenPort::default())
                .unwrap();
        },
        None,
    );
    assert_eq!(code(&r), 400, "token with EVEN-PORT");
    let r = crafted(&mut net, Method::REFRESH, |_| {}, None);
    assert_eq!(code(&r), 437, "refresh without allocation");
    let r = crafted(&mut net, Method::CREATE_PERMISSION, |_| {}, None);
    assert_eq!(code(&r), 437, "permission without allocation");
}

#[test]
fn password_algorithms_tampering_is_refused_as_bid_down() {
    let mut net = Net::new(config());
    // The attacker strips SHA-256 from the list the client echoes.
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP).unwrap();
        },
        Some(&[0, 1, 0, 0]),
    );
    assert_eq!(code(&r), 400);
    // Echoed intact, MD5 chosen: accepted.
    let list = [0, 2, 0, 0, 0, 1, 0, 0];
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP).unwrap();
        },
        Some(&list),
    );
    assert_eq!(r.class(), Class::Success);
}

#[test]
fn even_port_with_reservation_hands_the_next_port_to_the_token() {
    let mut net = Net::new(config());
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP)
                .unwrap()
                .add(&EvenPort { reserve: true })
                .unwrap();
        },
        None,
    );
    let relayed = r.get::<XorRelayedAddress>().unwrap().unwrap().0;
    assert_eq!(relayed.port() % 2, 0);
    let token = r.get::<ReservationToken>().unwrap().unwrap();
    // Another client claims the reserved port with the token.
    let mut cc = ClientConfig::new(
        addr("198.51.100.8:1"),
        addr(SERVER),
        Transport::Udp,
        "bob",
        "builder",
    );
    cc.lifetime = Duration::from_secs(600);
    let c = net.add_client(cc);
    net.clients[c].allocate(net.now);
    let t = net.clients[c].poll_transmit().unwrap();
    net.server
        .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    let challenge = Message::parse(&net.server.poll_transmit().unwrap().data)
        .unwrap()
        .get::<Nonce>()
        .unwrap()
        .unwrap()
        .0
        .to_owned();
    let key = IntegrityKey::long_term(
        "bob",
        "floe",
        "builder",
        floe_stun::credentials::Algorithm::Md5,
    )
    .unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId([4; 12]),
    )
    .unwrap();
    b.add(&RequestedTransport::UDP)
        .unwrap()
        .add(&token)
        .unwrap();
    b.add(&Username("bob"))
        .unwrap()
        .add(&Realm("floe"))
        .unwrap()
        .add(&Nonce(&challenge))
        .unwrap();
    b.add_message_integrity(&key).unwrap();
    let n = b.len();
    net.server.handle_client(
        net.now,
        Transport::Udp,
        addr(SERVER),
        addr("198.51.100.8:1"),
        &buf[..n],
    );
    let resp = net.server.poll_transmit().unwrap().data;
    let second = Message::parse(&resp)
        .unwrap()
        .get::<XorRelayedAddress>()
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(second.port(), relayed.port() + 1);
}

#[test]
fn challenges_are_rate_limited_per_source() {
    let mut net = Net::new(config());
    let mut buf = [0u8; 64];
    for i in 0..50u8 {
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(Method::ALLOCATE, Class::Request),
            TransactionId([i; 12]),
        )
        .unwrap();
        b.add(&RequestedTransport::UDP).unwrap();
        let n = b.len();
        net.server.handle_client(
            net.now,
            Transport::Udp,
            addr(SERVER),
            addr(CLIENT),
            &buf[..n],
        );
    }
    let answered = std::iter::from_fn(|| net.server.poll_transmit()).count();
    assert_eq!(answered, 20);
    assert_eq!(net.server.stats().rate_limited, 30);
    net.run_for(Duration::from_secs(2));
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId([99; 12]),
    )
    .unwrap();
    b.add(&RequestedTransport::UDP).unwrap();
    let n = b.len();
    net.server.handle_client(
        net.now,
        Transport::Udp,
        addr(SERVER),
        addr(CLIENT),
        &buf[..n],
    );
    assert!(
        net.server.poll_transmit().is_some(),
        "the limit resets after a second"
    );
}

fn binding(
    net: &mut Net,
    local: SocketAddr,
    change: Option<ChangeRequest>,
) -> (Transmit, Message<'static>) {
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([5; 12]),
    )
    .unwrap();
    if let Some(c) = change {
        b.add(&c).unwrap();
    }
    let n = b.len();
    net.server
        .handle_client(net.now, Transport::Udp, local, addr(CLIENT), &buf[..n]);
    let t = net.server.poll_transmit().unwrap();
    let m = Message::parse(Box::leak(t.data.clone().into_boxed_slice())).unwrap();
    (t, m)
}

#[test]
fn binding_requests_get_the_mapped_address_without_authentication() {
    let mut net = Net::new(config());
    let (t, m) = binding(&mut net, addr(SERVER), None);
    assert_eq!((t.source, t.destination), (addr(SERVER), addr(CLIENT)));
    assert_eq!(
        m.get::<XorMappedAddress>().unwrap(),
        Some(XorMappedAddress(addr(CLIENT)))
    );
    assert_eq!(m.get::<OtherAddress>().unwrap(), None);
    let (_, m) = binding(
        &mut net,
        addr(SERVER),
        Some(ChangeRequest {
            change_ip: true,
            change_port: false,
        }),
    );
    assert_eq!(code(&m), 420, "RFC 5780 §6.1: no alternate address");
}

#[test]
fn rfc_5780_change_request_answers_from_the_alternate_address_and_port() {
    let mut cfg = config();
    let (a1p1, a2p2) = (addr("203.0.113.1:3478"), addr("203.0.113.2:3479"));
    cfg.rfc5780 = Some((a1p1, a2p2));
    let mut net = Net::new(cfg);
    for (local, change, source) in [
        (a1p1, (false, false), "203.0.113.1:3478"),
        (a1p1, (true, false), "203.0.113.2:3478"),
        (a1p1, (false, true), "203.0.113.1:3479"),
        (a1p1, (true, true), "203.0.113.2:3479"),
        (addr("203.0.113.2:3478"), (false, true), "203.0.113.2:3479"),
    ] {
        let cr = ChangeRequest {
            change_ip: change.0,
            change_port: change.1,
        };
        let (t, m) = binding(&mut net, local, Some(cr));
        assert_eq!(t.source, addr(source), "{local} {change:?}");
        assert_eq!(
            m.get::<ResponseOrigin>().unwrap(),
            Some(ResponseOrigin(addr(source)))
        );
        let other = SocketAddr::new(
            if local.ip() == a1p1.ip() {
                a2p2.ip()
            } else {
                a1p1.ip()
            },
            if local.port() == a1p1.port() {
                a2p2.port()
            } else {
                a1p1.port()
            },
        );
        assert_eq!(m.get::<OtherAddress>().unwrap(), Some(OtherAddress(other)));
        assert_eq!(
            m.get::<MappedAddress>().unwrap(),
            Some(MappedAddress(addr(CLIENT)))
        );
    }
}

#[test]
fn a_server_that_never_answers_times_the_client_out() {
    let mut net = Net::new(config());
    net.server_up = false;
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    net.run_for(Duration::from_secs(40));
    assert!(net.has_event(c, |e| *e == Event::AllocationFailed(TurnError::Timeout)));
}

#[test]
fn try_alternate_is_reported_with_the_server_address() {
    let now = Instant::now();
    let mut c = Client::new(
        ClientConfig::new(
            addr(CLIENT),
            addr(SERVER),
            Transport::Udp,
            "alice",
            "wonderland",
        ),
        1,
    );
    c.allocate(now);
    let t = c.poll_transmit().unwrap();
    let req = Message::parse(&t.data).unwrap();
    let mut buf = [0u8; 128];
    let mut b = MessageBuilder::new(
        &mut buf,
        req.message_type().with_class(Class::Error),
        req.transaction_id(),
    )
    .unwrap();
    b.add(&ErrorCode::TRY_ALTERNATE)
        .unwrap()
        .add(&AlternateServer(addr("203.0.113.9:3478")))
        .unwrap();
    let n = b.len();
    receive(&mut c, now, &buf[..n]);
    assert_eq!(
        c.poll_event(),
        Some(Event::AllocationFailed(TurnError::TryAlternate {
            server: addr("203.0.113.9:3478"),
            domain: None,
        }))
    );
}

#[test]
fn tcp_clients_get_padded_channel_data_and_lose_their_allocation_with_the_connection() {
    let mut net = Net::new(config());
    let c = net.add_client(ClientConfig::new(
        addr(CLIENT),
        addr(SERVER),
        Transport::Tcp,
        "alice",
        "wonderland",
    ));
    net.allocate(c);
    assert_eq!(net.clients[c].state(), &ClientState::Allocated);
    let relayed = net.clients[c].relayed()[0];
    let now = net.now;
    net.clients[c].bind_channel(now, addr(PEER)).unwrap();
    net.settle();
    let t = net.clients[c].send_to(addr(PEER), b"odd").unwrap();
    assert_eq!(t.data.len(), 8, "padded to 4 on a stream");
    net.server
        .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    net.settle();
    assert_eq!(net.to_peers.last().unwrap().2, b"odd");
    net.server
        .handle_peer(net.now, relayed, addr(PEER), b"12345");
    let t = net.server.poll_transmit().unwrap();
    assert_eq!(t.data.len(), 12);
    // Delivered a byte at a time, the stream still yields the datagram.
    let mut got = Vec::new();
    for b in &t.data {
        net.clients[c]
            .handle_stream_receive(net.now, &[*b], |p, d| got.push((p, d.to_vec())))
            .unwrap();
    }
    assert_eq!(got, [(addr(PEER), b"12345".to_vec())]);
    net.server
        .handle_connection_closed(net.now, addr(SERVER), addr(CLIENT));
    assert_eq!(net.server.stats().allocations, 0);
}

#[test]
fn garbage_from_clients_and_peers_is_counted_and_dropped() {
    let mut net = Net::new(config());
    for bytes in [
        &[][..],
        &[0xff, 1, 2],
        &[0x40, 0, 0, 9],
        &[0, 1, 0, 4, 0x21, 0x12],
    ] {
        net.server
            .handle_client(net.now, Transport::Udp, addr(SERVER), addr(CLIENT), bytes);
    }
    net.server
        .handle_peer(net.now, addr("203.0.113.1:50000"), addr(PEER), b"x");
    assert!(net.server.poll_transmit().is_none());
    assert_eq!(net.server.stats().dropped, 5);
}

/// Every part of the nonce is the server's own (RFC 8489 §9.2): the cookie, the four
/// security-feature characters, the expiry and the MAC. Changing any character, or
/// putting a multi-byte UTF-8 character anywhere (once the panic that silenced the
/// server), gets 438 and leaves the server answering.
#[test]
fn every_part_of_the_nonce_is_verified() {
    let mut net = Net::new(config());
    let ok = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP).unwrap();
        },
        None,
    );
    assert_eq!(ok.class(), Class::Success, "the untouched nonce works");
    let original = {
        let mut probe = Net::new(config());
        let mut seen = String::new();
        crafted_with_nonce(
            &mut probe,
            Method::ALLOCATE,
            |b| {
                b.add(&RequestedTransport::UDP).unwrap();
            },
            None,
            |n| {
                seen = n.to_owned();
                n.to_owned()
            },
        );
        seen
    };
    assert_eq!(original.len(), 37, "{original}");
    let mut variants: Vec<(String, String)> = Vec::new();
    for i in 0..original.len() {
        let mut bytes = original.clone().into_bytes();
        // A different ASCII character at position i: cookie prefix (0..9), feature
        // characters (9..13), expiry (13..21), MAC (21..37).
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        variants.push((
            format!("byte {i} changed"),
            String::from_utf8(bytes).unwrap(),
        ));
        // A two-byte character across byte i and i+1, keeping the length.
        if i + 1 < original.len() {
            let mut s = original[..i].to_owned();
            s.push('é');
            s.push_str(&original[i + 2..]);
            variants.push((format!("é at {i}"), s));
        }
    }
    variants.push(("one character short".into(), original[..36].to_owned()));
    variants.push(("one character long".into(), format!("{original}0")));
    variants.push(("upper-case hex".into(), original.to_uppercase()));
    for (what, forged) in variants {
        let mut net = Net::new(config());
        net.now += Duration::from_secs(1);
        let resp = crafted_with_nonce(
            &mut net,
            Method::ALLOCATE,
            |b| {
                b.add(&RequestedTransport::UDP).unwrap();
            },
            None,
            |_| forged.clone(),
        );
        assert_eq!(code(&resp), 438, "{what}: {forged}");
        // Still answering: a fresh exchange allocates.
        let ok = crafted(
            &mut net,
            Method::ALLOCATE,
            |b| {
                b.add(&RequestedTransport::UDP).unwrap();
            },
            None,
        );
        assert_eq!(ok.class(), Class::Success, "{what}: the server went deaf");
    }
}

/// A nonce issued to one client address does not work from another.
#[test]
fn a_nonce_is_bound_to_the_client_address_and_expires() {
    let net = Net::new(config());
    let a: IpAddr = "198.51.100.7".parse().unwrap();
    let b: IpAddr = "198.51.100.8".parse().unwrap();
    let nonce = net.server.make_nonce(net.now, a);
    assert!(net.server.nonce_valid(net.now, a, &nonce));
    assert!(!net.server.nonce_valid(net.now, b, &nonce));
    let later = net.now + net.server.config.nonce_lifetime + Duration::from_secs(1);
    assert!(!net.server.nonce_valid(later, a, &nonce));
}

/// RFC 8489 §14.3, §14.9, §14.10, §14.14: a request with an over-limit USERNAME, REALM,
/// NONCE or SOFTWARE (or one that is not UTF-8) gets 400 naming the attribute, before
/// any authentication, and the server keeps answering.
#[test]
fn over_limit_text_attributes_get_400() {
    let long_user = "u".repeat(509);
    let long_chars = "é".repeat(128);
    let cases: Vec<(&str, AttrType, Vec<u8>)> = vec![
        (
            "USERNAME",
            AttrType::USERNAME,
            long_user.clone().into_bytes(),
        ),
        ("USERNAME", AttrType::USERNAME, vec![0xff, 0xfe, b'a']),
        ("REALM", AttrType::REALM, long_chars.clone().into_bytes()),
        ("NONCE", AttrType::NONCE, long_chars.clone().into_bytes()),
        (
            "SOFTWARE",
            AttrType::SOFTWARE,
            long_chars.clone().into_bytes(),
        ),
        ("SOFTWARE", AttrType::SOFTWARE, "a".repeat(128).into_bytes()),
    ];
    for method in [Method::ALLOCATE, Method::BINDING] {
        for (name, typ, value) in &cases {
            let mut net = Net::new(config());
            let mut buf = vec![0u8; 2048];
            let mut b = MessageBuilder::new(
                &mut buf,
                MessageType::new(method, Class::Request),
                TransactionId([7; 12]),
            )
            .unwrap();
            if method == Method::ALLOCATE {
                b.add(&RequestedTransport::UDP).unwrap();
            }
            b.add_raw(*typ, value).unwrap();
            let n = b.len();
            net.server.handle_client(
                net.now,
                Transport::Udp,
                addr(SERVER),
                addr(CLIENT),
                &buf[..n],
            );
            let resp = net.server.poll_transmit().unwrap().data;
            let resp = Message::parse(&resp).unwrap();
            let err = resp.get::<ErrorCode>().unwrap().unwrap();
            assert_eq!(err.code, 400, "{method:?} {name}");
            assert!(err.reason.starts_with(name), "{}", err.reason);
            assert_eq!(
                binding(&mut net, addr(SERVER), None).1.class(),
                Class::Success,
                "still answering"
            );
        }
    }
    // At the limits, the request is served.
    let mut net = Net::new(config());
    let mut buf = vec![0u8; 2048];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([7; 12]),
    )
    .unwrap();
    b.add(&Software(&"é".repeat(127))).unwrap();
    let n = b.len();
    net.server.handle_client(
        net.now,
        Transport::Udp,
        addr(SERVER),
        addr(CLIENT),
        &buf[..n],
    );
    let resp = net.server.poll_transmit().unwrap().data;
    assert_eq!(Message::parse(&resp).unwrap().class(), Class::Success);
}

/// RFC 8489 §9.2.4: a request may name its user by USERHASH instead of USERNAME; the
/// server finds the user by one lookup in a table made at start, and an unknown hash is
/// a 401.
#[test]
fn userhash_names_the_user_and_an_unknown_hash_is_refused() {
    for (hash_of, want) in [("alice", Class::Success), ("mallory", Class::Error)] {
        let mut net = Net::new(config());
        let mut buf = [0u8; 64];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(Method::ALLOCATE, Class::Request),
            TransactionId([1; 12]),
        )
        .unwrap();
        b.add(&RequestedTransport::UDP).unwrap();
        let probe = b.finish().to_vec();
        net.server
            .handle_client(net.now, Transport::Udp, addr(SERVER), addr(CLIENT), &probe);
        let challenge = net.server.poll_transmit().unwrap().data;
        let challenge = Message::parse(&challenge).unwrap();
        let nonce = challenge.get::<Nonce>().unwrap().unwrap().0.to_owned();
        let hash = floe_stun::credentials::userhash(hash_of, "floe").unwrap();
        let key = IntegrityKey::long_term(
            "alice",
            "floe",
            "wonderland",
            floe_stun::credentials::Algorithm::Md5,
        )
        .unwrap();
        let mut buf = vec![0u8; 512];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(Method::ALLOCATE, Class::Request),
            TransactionId([2; 12]),
        )
        .unwrap();
        b.add(&RequestedTransport::UDP).unwrap();
        b.add(&UserHash(&hash)).unwrap();
        b.add(&Realm("floe")).unwrap().add(&Nonce(&nonce)).unwrap();
        b.add_message_integrity(&key).unwrap();
        let n = b.len();
        net.server.handle_client(
            net.now,
            Transport::Udp,
            addr(SERVER),
            addr(CLIENT),
            &buf[..n],
        );
        let resp = net.server.poll_transmit().unwrap().data;
        let resp = Message::parse(&resp).unwrap();
        assert_eq!(resp.class(), want, "USERHASH of {hash_of}");
        if want == Class::Error {
            assert_eq!(code(&resp), 401);
        }
    }
}

/// A client of user `user` at `local` with an allocation and a permission for PEER.
fn allocated_with_permission(net: &mut Net, local: &str, user: &str, pw: &str) -> usize {
    let c = net.add_client(ClientConfig::new(
        addr(local),
        addr(SERVER),
        Transport::Udp,
        user,
        pw,
    ));
    net.allocate(c);
    let now = net.now;
    net.clients[c]
        .create_permission(now, addr(PEER).ip())
        .unwrap();
    net.settle();
    c
}

/// Sends `n` datagrams of `size` bytes from client `c` to PEER at once; returns how many
/// reached the peer.
fn burst_to_peer(net: &mut Net, c: usize, n: usize, size: usize) -> usize {
    let before = net.to_peers.len();
    for _ in 0..n {
        let t = net.clients[c]
            .send_to(addr(PEER), &vec![7u8; size])
            .unwrap();
        net.server
            .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    }
    net.settle();
    net.to_peers.len() - before
}

#[test]
fn max_bps_caps_each_allocation_and_drops_the_excess() {
    let mut cfg = config();
    cfg.max_bps = Some(80_000); // 10,000 bytes per second, one second of burst
    let mut net = Net::new(cfg);
    let c = allocated_with_permission(&mut net, CLIENT, "alice", "wonderland");
    assert_eq!(burst_to_peer(&mut net, c, 50, 1000), 10);
    assert_eq!(net.server.stats().over_cap, 40);
    // Peer to client counts against the same cap.
    let relayed = net.clients[c].relayed()[0];
    net.peer_sends(relayed, addr(PEER), &[1u8; 1000]);
    assert!(net.from_peers.is_empty(), "the bucket is empty");
    net.run_for(Duration::from_millis(500));
    assert_eq!(
        burst_to_peer(&mut net, c, 50, 1000),
        5,
        "half a second refills half"
    );
    // Another allocation has its own bucket.
    let d = allocated_with_permission(&mut net, "198.51.100.7:40001", "bob", "builder");
    assert_eq!(burst_to_peer(&mut net, d, 50, 1000), 10);
}

#[test]
fn user_max_bps_is_shared_by_the_users_allocations() {
    let mut cfg = config();
    cfg.user_max_bps = Some(80_000);
    let mut net = Net::new(cfg);
    let a = allocated_with_permission(&mut net, CLIENT, "alice", "wonderland");
    let b = allocated_with_permission(&mut net, "198.51.100.7:40001", "alice", "wonderland");
    let c = allocated_with_permission(&mut net, "198.51.100.7:40002", "bob", "builder");
    assert_eq!(burst_to_peer(&mut net, a, 6, 1000), 6);
    assert_eq!(
        burst_to_peer(&mut net, b, 6, 1000),
        4,
        "alice's second allocation shares"
    );
    assert_eq!(burst_to_peer(&mut net, c, 6, 1000), 6, "bob has his own");
    assert_eq!(net.server.stats().over_cap, 2);
}

/// Two workers sharing the users' buckets: alice's cap holds over her allocations on
/// both, and goes when her last allocation does.
#[test]
fn user_max_bps_holds_across_workers() {
    let buckets = std::sync::Arc::new(SharedUserBuckets::new());
    let mut cfg = config();
    cfg.user_max_bps = Some(80_000);
    cfg.user_buckets = Some(buckets.clone());
    let mut w1 = Net::new(cfg.clone());
    let mut w2 = Net::new(cfg);
    let a = allocated_with_permission(&mut w1, CLIENT, "alice", "wonderland");
    let b = allocated_with_permission(&mut w2, "198.51.100.7:40001", "alice", "wonderland");
    assert_eq!(buckets.users(), 1);
    assert_eq!(burst_to_peer(&mut w1, a, 6, 1000), 6);
    assert_eq!(
        burst_to_peer(&mut w2, b, 6, 1000),
        4,
        "the other worker shares"
    );
    assert_eq!(w2.server.stats().over_cap, 2);
    for (net, c) in [(&mut w1, a), (&mut w2, b)] {
        let now = net.now;
        net.clients[c].deallocate(now);
        net.settle();
    }
    assert_eq!(buckets.users(), 0, "no allocation holds it");
}

#[test]
fn a_draining_server_refuses_new_allocations_and_keeps_the_old_ones() {
    for alternate in [None, Some(addr("203.0.113.9:3478"))] {
        let mut cfg = config();
        cfg.alternate_server = alternate;
        let mut net = Net::new(cfg);
        let old = allocated_with_permission(&mut net, CLIENT, "alice", "wonderland");
        net.server.drain(net.now);
        assert!(net.server.is_draining());
        let new = net.add_client(ClientConfig::new(
            addr("198.51.100.7:40001"),
            addr(SERVER),
            Transport::Udp,
            "bob",
            "builder",
        ));
        net.allocate(new);
        let want = match alternate {
            Some(server) => TurnError::TryAlternate {
                server,
                domain: None,
            },
            None => TurnError::InsufficientCapacity,
        };
        assert!(
            net.has_event(new, |e| *e == Event::AllocationFailed(want.clone())),
            "{:?}",
            net.events
        );
        assert_eq!(net.server.stats().drain_refusals, 1);
        // The old allocation relays, refreshes and adds permissions as before.
        assert_eq!(burst_to_peer(&mut net, old, 1, 100), 1);
        let now = net.now;
        net.clients[old].refresh(now);
        net.clients[old]
            .create_permission(now, "192.0.2.51".parse().unwrap())
            .unwrap();
        net.settle();
        assert!(net.has_event(old, |e| matches!(e, Event::Refreshed { .. })));
        assert!(net.has_event(old, |e| *e
            == Event::PermissionCreated("192.0.2.51".parse().unwrap())));
        assert_eq!(net.server.stats().allocations, 1);
    }
}

/// RFC 8489 §10, §14.16: over TLS, the 300 also names the alternate's certificate domain
/// (ALTERNATE-DOMAIN), which the client reports with the redirect; over UDP and TCP it
/// does not.
#[test]
fn a_300_over_tls_carries_the_alternate_domain_and_the_client_reads_it() {
    for (transport, want) in [
        (Transport::Tls, Some("relay-b.example.org".to_owned())),
        (Transport::Tcp, None),
        (Transport::Udp, None),
    ] {
        let mut cfg = config();
        cfg.alternate_server = Some(addr("203.0.113.9:5349"));
        cfg.alternate_domain = Some("relay-b.example.org".into());
        let mut net = Net::new(cfg);
        let now = net.now;
        net.server.drain(now);
        let c = net.add_client(ClientConfig::new(
            addr(CLIENT),
            addr(SERVER),
            transport,
            "alice",
            "wonderland",
        ));
        net.allocate(c);
        let expected = TurnError::TryAlternate {
            server: addr("203.0.113.9:5349"),
            domain: want,
        };
        assert!(
            net.has_event(c, |e| *e == Event::AllocationFailed(expected.clone())),
            "{transport:?}: {:?}",
            net.events
        );
    }
}

/// RFC 8489 §6.3.1 (and RFC 8656 §7.2 step 4): a request carrying a comprehension-required
/// attribute the server does not know gets 420 listing it, before anything else is
/// looked at; an unknown comprehension-optional one is ignored.
#[test]
fn an_unknown_comprehension_required_attribute_in_a_request_gets_420() {
    let mut net = Net::new(config());
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP).unwrap();
            b.add_raw(floe_stun::AttrType(0x7FAA), &[1, 2, 3, 4])
                .unwrap();
        },
        None,
    );
    assert_eq!(code(&r), 420);
    assert_eq!(
        r.get::<UnknownAttributes>()
            .unwrap()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        [floe_stun::AttrType(0x7FAA)]
    );
    assert_eq!(net.server.stats().allocations, 0);
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP).unwrap();
            b.add_raw(floe_stun::AttrType(0xC0AA), &[1, 2, 3, 4])
                .unwrap();
        },
        None,
    );
    assert_eq!(r.class(), Class::Success);
}

/// RFC 8656 §7.2 and §8.2: the lifetime granted is the one asked for, but never below
/// the default (600 s) nor above the maximum (3600 s), on Allocate and on Refresh.
#[test]
fn granted_lifetimes_stay_between_the_default_and_the_maximum() {
    for (asked, granted) in [(60, 600), (1200, 1200), (7200, 3600)] {
        let mut net = Net::new(config());
        let mut cc = ClientConfig::new(
            addr(CLIENT),
            addr(SERVER),
            Transport::Udp,
            "alice",
            "wonderland",
        );
        cc.lifetime = Duration::from_secs(asked);
        let c = net.add_client(cc);
        net.allocate(c);
        let want = Duration::from_secs(granted);
        assert!(
            net.has_event(
                c,
                |e| matches!(e, Event::Allocated { lifetime, .. } if *lifetime == want)
            ),
            "Allocate asking for {asked} s: {:?}",
            net.events
        );
        let now = net.now;
        net.clients[c].refresh(now);
        net.settle();
        assert!(
            net.has_event(c, |e| *e == Event::Refreshed { lifetime: want }),
            "Refresh asking for {asked} s: {:?}",
            net.events
        );
    }
}

/// RFC 8656 §9: the server may cap permissions per allocation; past the cap
/// CreatePermission gets 508 and installs nothing.
#[test]
fn permissions_past_the_cap_get_508() {
    let mut cfg = config();
    cfg.max_permissions = 2;
    let mut net = Net::new(cfg);
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let now = net.now;
    let peers: Vec<IpAddr> = ["192.0.2.50", "192.0.2.51", "192.0.2.52"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    for ip in &peers {
        net.clients[c].create_permission(now, *ip).unwrap();
        net.settle();
    }
    assert!(net.has_event(c, |e| *e == Event::PermissionCreated(peers[0])));
    assert!(net.has_event(c, |e| *e == Event::PermissionCreated(peers[1])));
    assert!(net.has_event(c, |e| *e
        == Event::PermissionFailed(peers[2], TurnError::InsufficientCapacity)));
    assert_eq!(net.server.stats().permissions, 2);
}

/// RFC 5780 §6.1 (§7.5): with an alternate address configured, a Binding response goes
/// to the port named by RESPONSE-PORT, from the address the request arrived on.
#[test]
fn response_port_sends_the_binding_response_to_that_port() {
    let mut cfg = config();
    let (a1p1, a2p2) = (addr("203.0.113.1:3478"), addr("203.0.113.2:3479"));
    cfg.rfc5780 = Some((a1p1, a2p2));
    let mut net = Net::new(cfg);
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([5; 12]),
    )
    .unwrap();
    b.add(&ResponsePort(41_000)).unwrap();
    let n = b.len();
    net.server
        .handle_client(net.now, Transport::Udp, a1p1, addr(CLIENT), &buf[..n]);
    let t = net.server.poll_transmit().unwrap();
    assert_eq!(t.source, a1p1);
    assert_eq!(t.destination, addr("198.51.100.7:41000"));
    let m = Message::parse(&t.data).unwrap();
    assert_eq!(m.class(), Class::Success);
    assert_eq!(
        m.get::<XorMappedAddress>().unwrap(),
        Some(XorMappedAddress(addr(CLIENT))),
        "the mapped address is still the request's source"
    );
}

/// RFC 8656 §8.1 (client side): a deallocation answered 437 (the server no longer has
/// the allocation, e.g. after a restart) counts as done.
#[test]
fn a_deallocation_answered_437_counts_as_done() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    // The server restarts and forgets every allocation.
    net.server = Server::new(config(), pool(false), net.now, 2);
    let now = net.now;
    net.clients[c].deallocate(now);
    // Deliver by hand to see the server's answers: a new nonce, then 437.
    let mut codes = Vec::new();
    while let Some(t) = net.clients[c].poll_transmit() {
        net.server
            .handle_client(now, t.transport, t.destination, t.source, &t.data);
        while let Some(r) = net.server.poll_transmit() {
            codes.push(code(&Message::parse(&r.data).unwrap()));
            receive(&mut net.clients[c], now, &r.data);
        }
    }
    assert_eq!(codes.last(), Some(&437), "{codes:?}");
    net.settle();
    assert!(
        net.has_event(c, |e| *e == Event::Deallocated),
        "{:?}",
        net.events
    );
    assert!(!net.has_event(c, |e| matches!(e, Event::AllocationLost(_))));
}

/// RFC 8656 §12.2: ChannelBind takes numbers 0x4000-0x4FFF (0x5000-0x7FFF too while
/// `rfc5766_channels` is on), and a number bound to one peer, or a peer bound to one
/// number, cannot be bound otherwise: 400. Binding the same pair again refreshes it.
#[test]
fn channel_bind_conflicts_and_numbers_out_of_range_get_400() {
    let bind = |net: &mut Net, number: u16, peer: &str| {
        let r = crafted(
            net,
            Method::CHANNEL_BIND,
            |b| {
                b.add(&ChannelNumber(number))
                    .unwrap()
                    .add(&XorPeerAddress(addr(peer)))
                    .unwrap();
            },
            None,
        );
        (r.class(), code(&r))
    };
    let ok = (Class::Success, 0);
    let bad = (Class::Error, 400);
    for strict in [false, true] {
        let mut cfg = config();
        cfg.rfc5766_channels = !strict;
        let mut net = Net::new(cfg);
        let r = crafted(
            &mut net,
            Method::ALLOCATE,
            |b| {
                b.add(&RequestedTransport::UDP).unwrap();
            },
            None,
        );
        assert_eq!(r.class(), Class::Success);
        assert_eq!(bind(&mut net, 0x4000, "192.0.2.50:5000"), ok);
        assert_eq!(bind(&mut net, 0x4000, "192.0.2.50:5000"), ok, "refresh");
        assert_eq!(
            bind(&mut net, 0x4000, "192.0.2.51:5000"),
            bad,
            "number bound to another peer"
        );
        assert_eq!(
            bind(&mut net, 0x4001, "192.0.2.50:5000"),
            bad,
            "peer bound to another number"
        );
        assert_eq!(bind(&mut net, 0x3FFF, "192.0.2.52:5000"), bad);
        assert_eq!(bind(&mut net, 0x8000, "192.0.2.52:5000"), bad);
        assert_eq!(bind(&mut net, 0x4FFF, "192.0.2.52:5000"), ok);
        let want = if strict { bad } else { ok };
        assert_eq!(
            bind(&mut net, 0x5000, "192.0.2.53:5000"),
            want,
            "strict {strict}"
        );
    }
}

/// RFC 8656 §12: after a binding expires, its number and its peer stay out of other
/// bindings for 5 minutes (the client must wait; the server holds it to that), while the
/// same pair may be bound again at once.
#[test]
fn an_expired_channel_number_and_peer_are_quarantined_for_five_minutes() {
    let bind = |net: &mut Net, number: u16, peer: &str| {
        let r = crafted(
            net,
            Method::CHANNEL_BIND,
            |b| {
                b.add(&ChannelNumber(number))
                    .unwrap()
                    .add(&XorPeerAddress(addr(peer)))
                    .unwrap();
            },
            None,
        );
        (r.class(), code(&r))
    };
    let ok = (Class::Success, 0);
    let bad = (Class::Error, 400);
    for rebind_same_first in [false, true] {
        let mut cfg = config();
        cfg.channel_lifetime = Duration::from_secs(60);
        let mut net = Net::new(cfg);
        let r = crafted(
            &mut net,
            Method::ALLOCATE,
            |b| {
                b.add(&RequestedTransport::UDP).unwrap();
            },
            None,
        );
        assert_eq!(r.class(), Class::Success);
        assert_eq!(bind(&mut net, 0x4000, "192.0.2.50:5000"), ok);
        net.now += Duration::from_secs(61);
        if rebind_same_first {
            // The same pair again: allowed, and a fresh binding (no quarantine then).
            assert_eq!(bind(&mut net, 0x4000, "192.0.2.50:5000"), ok);
            assert_eq!(
                bind(&mut net, 0x4000, "192.0.2.51:5000"),
                bad,
                "bound again"
            );
            continue;
        }
        assert_eq!(
            bind(&mut net, 0x4000, "192.0.2.51:5000"),
            bad,
            "number to another peer"
        );
        assert_eq!(
            bind(&mut net, 0x4001, "192.0.2.50:5000"),
            bad,
            "peer to another number"
        );
        assert_eq!(
            bind(&mut net, 0x4002, "192.0.2.52:5000"),
            ok,
            "others are free"
        );
        net.now += Duration::from_secs(5 * 60);
        assert_eq!(
            bind(&mut net, 0x4000, "192.0.2.51:5000"),
            ok,
            "after 5 minutes"
        );
        assert_eq!(bind(&mut net, 0x4001, "192.0.2.50:5000"), ok);
    }
}

/// RFC 8656 §11.5, §11.6: an ICMP error for relayed data reaches the client as a Data
/// indication with XOR-PEER-ADDRESS and ICMP when its type is one §11.5 names and a
/// permission covers the destination's IP (ports ignored); the client reports it.
#[test]
fn icmp_errors_for_permitted_peers_reach_the_client_as_an_event() {
    use floe_stun::attributes::Icmp;
    let mut net = Net::new(config());
    let c = allocated_with_permission(&mut net, CLIENT, "alice", "wonderland");
    let relayed = net.clients[c].relayed()[0];
    let unreachable = Icmp {
        icmp_type: 3,
        code: 3,
        error_data: 0,
    };
    let now = net.now;
    // Port unreachable for the permitted peer, its port unknown (0): relayed.
    net.server.handle_peer_icmp(
        now,
        relayed,
        SocketAddr::new(addr(PEER).ip(), 0),
        unreachable,
    );
    // Not relayed: a type §11.5 does not name, a peer without a permission, an unknown
    // relayed address.
    let echo_reply = Icmp {
        icmp_type: 0,
        ..unreachable
    };
    net.server
        .handle_peer_icmp(now, relayed, addr(PEER), echo_reply);
    net.server
        .handle_peer_icmp(now, relayed, addr("198.51.100.99:1"), unreachable);
    net.server
        .handle_peer_icmp(now, addr("203.0.113.1:1"), addr(PEER), unreachable);
    net.settle();
    let got: Vec<_> = net
        .events
        .iter()
        .filter(|(i, e)| *i == c && matches!(e, Event::IcmpReceived { .. }))
        .collect();
    assert_eq!(
        got,
        [&(
            c,
            Event::IcmpReceived {
                peer: SocketAddr::new(addr(PEER).ip(), 0),
                icmp: unreachable
            }
        )]
    );
    assert_eq!(net.server.stats().icmp_to_clients, 1);
}

/// RFC 8656 §9: a permission is for a peer's IP address, whatever the port; §10.2: a
/// CreatePermission with one refused peer installs none of its peers.
#[test]
fn permissions_are_by_ip_and_create_permission_is_all_or_nothing() {
    let mut net = Net::new(config());
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP).unwrap();
        },
        None,
    );
    let relayed = r.get::<XorRelayedAddress>().unwrap().unwrap().0;
    let permit = |net: &mut Net, peers: &[&str]| {
        let r = crafted(
            net,
            Method::CREATE_PERMISSION,
            |b| {
                for p in peers {
                    b.add(&XorPeerAddress(addr(p))).unwrap();
                }
            },
            None,
        );
        code(&r)
    };
    // Reaches the client, as a Data indication, or not.
    let delivered = |net: &mut Net, peer: &str| {
        net.server.handle_peer(net.now, relayed, addr(peer), b"hi");
        std::iter::from_fn(|| net.server.poll_transmit()).any(|t| t.destination == addr(CLIENT))
    };
    assert_eq!(permit(&mut net, &["192.0.2.50:1"]), 0);
    assert!(delivered(&mut net, "192.0.2.50:1"));
    assert!(
        delivered(&mut net, "192.0.2.50:9999"),
        "any port of a permitted IP"
    );
    assert_eq!(permit(&mut net, &["192.0.2.60:1", "10.0.0.1:1"]), 403);
    assert!(
        !delivered(&mut net, "192.0.2.60:1"),
        "nothing installed when one peer is refused"
    );
}

/// `--external-ip PUBLIC/PRIVATE` (a server behind a 1:1 NAT): clients are told the
/// public relayed address; relay sockets stay on the private one; traffic between two
/// of the server's own relayed addresses is handed over locally and seen by the receiver
/// as coming from the sender's public relayed address; other ports of the public
/// address are not translated.
#[test]
fn external_ips_advertise_the_public_address_and_hand_relay_to_relay_locally() {
    let public: IpAddr = "198.18.0.1".parse().unwrap();
    let private: IpAddr = "203.0.113.1".parse().unwrap();
    let mut cfg = config();
    cfg.external_ips = vec![(public, private)];
    let mut net = Net::new(cfg);
    let a = net.client("alice", "wonderland");
    let b = net.add_client(ClientConfig::new(
        addr("198.51.100.8:40000"),
        addr(SERVER),
        Transport::Udp,
        "bob",
        "builder",
    ));
    net.allocate(a);
    net.allocate(b);
    let (ra, rb) = (net.clients[a].relayed()[0], net.clients[b].relayed()[0]);
    assert_eq!(
        (ra.ip(), rb.ip()),
        (public, public),
        "clients see the public address"
    );
    let now = net.now;
    net.clients[a].create_permission(now, public).unwrap();
    net.clients[b].create_permission(now, public).unwrap();
    net.settle();
    let t = net.clients[a].send_to(rb, b"to b").unwrap();
    net.server
        .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    net.settle();
    let (src, dst, data) = net.to_peers.pop().unwrap();
    assert_eq!(
        src,
        SocketAddr::new(private, ra.port()),
        "sent from A's socket"
    );
    assert_eq!(
        dst,
        SocketAddr::new(private, rb.port()),
        "handed to B's socket locally"
    );
    // What B's socket receives comes from A's private address; B's client sees A's
    // public relayed address, for which it holds a permission.
    net.peer_sends(dst, src, &data);
    assert_eq!(net.from_peers, [(b, ra, b"to b".to_vec())]);
    // Another port of the public address is not translated.
    let other = SocketAddr::new(public, 22);
    let t = net.clients[a].send_to(other, b"x").unwrap();
    net.server
        .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    net.settle();
    assert_eq!(net.to_peers.pop().map(|(_, d, _)| d), Some(other));
}

/// Secret rotation: with two REST secrets both sign valid credentials; after a reload
/// with only the new one, the old one's credentials are refused. A reload of the user
/// table refuses a removed user's next request (its allocation ends at its refresh) and
/// accepts a new user at once.
#[test]
fn reloaded_users_and_rest_secrets_take_effect_for_the_next_request() {
    let mut cfg = config();
    cfg.rest_secrets = vec!["new-wind".into(), "north-wind".into()];
    let mut net = Net::new(cfg);
    net.server.set_wall_clock(net.now, 1_000_000);
    let rest_client = |net: &mut Net, port: u16, secret: &str| {
        let (user, pass) = crate::rest::credentials(secret, "carol", 1_000_100);
        net.add_client(ClientConfig::new(
            SocketAddr::new(addr(CLIENT).ip(), port),
            addr(SERVER),
            Transport::Udp,
            &user,
            &pass,
        ))
    };
    for (port, secret) in [(1, "north-wind"), (2, "new-wind")] {
        let c = rest_client(&mut net, port, secret);
        net.allocate(c);
        assert_eq!(net.clients[c].state(), &ClientState::Allocated, "{secret}");
    }
    let alice = net.client("alice", "wonderland");
    net.allocate(alice);
    assert_eq!(net.clients[alice].state(), &ClientState::Allocated);

    let mut users = HashMap::new();
    users.insert("dave".to_owned(), "diver".to_owned());
    net.server
        .reload_credentials(users, vec!["new-wind".into()]);
    let c = rest_client(&mut net, 3, "north-wind");
    net.allocate(c);
    assert!(net.has_event(c, |e| *e
        == Event::AllocationFailed(TurnError::Unauthenticated)));
    let c = rest_client(&mut net, 4, "new-wind");
    net.allocate(c);
    assert_eq!(net.clients[c].state(), &ClientState::Allocated);
    let dave = net.add_client(ClientConfig::new(
        addr("198.51.100.7:5"),
        addr(SERVER),
        Transport::Udp,
        "dave",
        "diver",
    ));
    net.allocate(dave);
    assert_eq!(net.clients[dave].state(), &ClientState::Allocated);
    // alice's allocation is still there, but her next refresh is refused.
    assert_eq!(net.clients[alice].state(), &ClientState::Allocated);
    let now = net.now;
    net.clients[alice].refresh(now);
    net.settle();
    assert!(
        net.has_event(alice, |e| matches!(e, Event::AllocationLost(_))),
        "{:?}",
        net.events
    );
}

/// Workers of one process share allocation counts (a user's quota and the total hold
/// for the process) and nonces (one worker's nonce is good at another).
#[test]
fn workers_share_quotas_and_nonces() {
    let quota = std::sync::Arc::new(SharedQuota::new());
    let mut cfg = config();
    cfg.max_allocations_per_user = 2;
    cfg.max_allocations = 3;
    cfg.quota = Some(quota.clone());
    let mut w1 = Net::new(cfg.clone());
    let mut w2 = Net::new(cfg);
    w2.server.share_nonces_with(&w1.server);
    let nonce = w1.server.make_nonce(w1.now, addr(CLIENT).ip());
    assert!(w2.server.nonce_valid(w1.now, addr(CLIENT).ip(), &nonce));

    let alice = |net: &mut Net, port: u16| {
        net.add_client(ClientConfig::new(
            SocketAddr::new(addr(CLIENT).ip(), port),
            addr(SERVER),
            Transport::Udp,
            "alice",
            "wonderland",
        ))
    };
    let a1 = alice(&mut w1, 1);
    w1.allocate(a1);
    let a2 = alice(&mut w2, 2);
    w2.allocate(a2);
    assert_eq!(quota.allocations_of("alice"), 2);
    let a3 = alice(&mut w1, 3);
    w1.allocate(a3);
    assert!(w1.has_event(a3, |e| *e
        == Event::AllocationFailed(TurnError::QuotaReached)));
    // The total: bob gets the third place, then the process is full.
    let bob = |net: &mut Net, port: u16| {
        net.add_client(ClientConfig::new(
            SocketAddr::new(addr(CLIENT).ip(), port),
            addr(SERVER),
            Transport::Udp,
            "bob",
            "builder",
        ))
    };
    let b1 = bob(&mut w2, 4);
    w2.allocate(b1);
    assert_eq!(w2.clients[b1].state(), &ClientState::Allocated);
    let b2 = bob(&mut w1, 5);
    w1.allocate(b2);
    assert!(w1.has_event(b2, |e| *e
        == Event::AllocationFailed(TurnError::InsufficientCapacity)));
    // A deallocation on one worker frees a place on the other.
    let now = w2.now;
    w2.clients[a2].deallocate(now);
    w2.settle();
    assert_eq!(quota.allocations(), 2);
    let a4 = alice(&mut w1, 6);
    w1.allocate(a4);
    assert_eq!(w1.clients[a4].state(), &ClientState::Allocated);
}

mod events;
mod fleet;
mod stats;
mod tcp;

/// A RESERVATION-TOKEN made by one worker is redeemed at another (RFC 8656 §7.2 step
/// 6): the client's second Allocate comes from another 5-tuple, which SO_REUSEPORT may
/// hand to any worker. Redeemed once; an expired token swept by one worker is gone for
/// all.
#[test]
fn workers_share_reservation_tokens() {
    let reservations = std::sync::Arc::new(SharedReservations::new());
    let mut cfg = config();
    cfg.reservations = Some(reservations.clone());
    let mut w1 = Net::new(cfg.clone());
    let mut w2 = Net::new(cfg);
    w2.server.share_nonces_with(&w1.server);
    let reserve = |net: &mut Net| {
        let r = crafted(
            net,
            Method::ALLOCATE,
            |b| {
                b.add(&RequestedTransport::UDP)
                    .unwrap()
                    .add(&EvenPort { reserve: true })
                    .unwrap();
            },
            None,
        );
        let relayed = r.get::<XorRelayedAddress>().unwrap().unwrap().0;
        (relayed, r.get::<ReservationToken>().unwrap().unwrap())
    };
    let redeem = |net: &mut Net, token: ReservationToken| {
        crafted(
            net,
            Method::ALLOCATE,
            |b| {
                b.add(&RequestedTransport::UDP)
                    .unwrap()
                    .add(&token)
                    .unwrap();
            },
            None,
        )
    };
    let (relayed, token) = reserve(&mut w1);
    assert_eq!(reservations.len(), 1);
    let r = redeem(&mut w2, token);
    assert_eq!(r.class(), Class::Success, "{r:?}");
    let second = r.get::<XorRelayedAddress>().unwrap().unwrap().0;
    assert_eq!(second, SocketAddr::new(relayed.ip(), relayed.port() + 1));
    assert!(reservations.is_empty());
    // Once only, at either worker.
    let mut w3 = Net::new({
        let mut c = config();
        c.reservations = Some(reservations.clone());
        c
    });
    w3.server.share_nonces_with(&w1.server);
    assert_eq!(code(&redeem(&mut w3, token)), 508);

    // Expiry: w2 sweeps a token w4 made; w3 cannot redeem it afterwards.
    let mut w4 = Net::new({
        let mut c = config();
        c.reservations = Some(reservations.clone());
        c
    });
    let (_, token) = reserve(&mut w4);
    let later = w4.now + config().reservation_lifetime + Duration::from_secs(1);
    w2.server.handle_timeout(later);
    assert!(reservations.is_empty());
    w3.now = later;
    assert_eq!(code(&redeem(&mut w3, token)), 508);
}

/// [`Client::handle_receive`], returning the one peer datagram it gave to `on_data`, if
/// any (a datagram carries at most one).
fn receive<'a>(c: &mut Client, now: Instant, bytes: &'a [u8]) -> Option<(SocketAddr, &'a [u8])> {
    let mut got = None;
    c.handle_receive(now, bytes, |p, d| {
        assert!(got.is_none(), "one datagram, one delivery");
        got = Some((p, d));
    });
    got
}

/// coturn-derived clients ask for a dual allocation with ADDITIONAL-ADDRESS-FAMILY at
/// its draft codepoint 0x8032 only: floe's server grants it too, and reports a failed
/// family at both ADDRESS-ERROR-CODE codepoints (0x8001 and the draft 0x8033).
#[test]
fn the_draft_additional_address_family_codepoint_asks_for_a_dual_allocation() {
    let mut net = Net::with_pool(config(), pool(true));
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP)
                .unwrap()
                .add(&AdditionalAddressFamilyDraft(AddressFamily::Ipv6))
                .unwrap();
        },
        None,
    );
    assert_eq!(r.class(), Class::Success, "{}", code(&r));
    let relayed: Vec<_> = r.get_all::<XorRelayedAddress>().collect();
    assert_eq!(relayed.len(), 2, "{relayed:?}");
    // Against a server without IPv6 relays: one relay, and the error in both spellings.
    let mut net = Net::new(config());
    let r = crafted(
        &mut net,
        Method::ALLOCATE,
        |b| {
            b.add(&RequestedTransport::UDP)
                .unwrap()
                .add(&AdditionalAddressFamilyDraft(AddressFamily::Ipv6))
                .unwrap();
        },
        None,
    );
    assert_eq!(r.class(), Class::Success);
    let rfc = r.get::<AddressErrorCode>().unwrap().unwrap();
    let draft = r.get::<AddressErrorCodeDraft>().unwrap().unwrap();
    assert_eq!((rfc.family, rfc.code), (AddressFamily::Ipv6, 440));
    assert_eq!(draft.0, rfc);
}
