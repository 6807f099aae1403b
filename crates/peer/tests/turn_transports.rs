//! TURN over TCP and TLS through an in-process floe-server, and the UDP/TCP race of a plain
//! `turn:` URI (RFC 7065): relay-only PeerConnections on loopback exchanging datagrams.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_ice::{CandidateKind, Transport};
use floe_peer::{
    memory_pair, DataSender, IceServerUri, PeerConfig, PeerConnection, PeerEvent, PeerEvents, Side,
    TurnServerConfig,
};
use floe_server::{ServerHandle, ServerOptions};

/// A floe-server relaying on 127.0.0.1 with the listeners `setup` leaves in place (it
/// starts with none).
async fn server(setup: impl FnOnce(&mut ServerOptions)) -> ServerHandle {
    let mut opts = ServerOptions::new("127.0.0.1:0".parse().unwrap());
    opts.udp.clear();
    opts.turn.users.insert("peer".into(), "relay-secret".into());
    opts.turn.peer_policy.allow_loopback = true;
    setup(&mut opts);
    floe_server::spawn(opts).await.unwrap()
}

fn relay_config(uri: &str) -> PeerConfig {
    let mut c = PeerConfig::default();
    c.bind = vec!["127.0.0.1:0".parse().unwrap()];
    c.connect_timeout = Some(Duration::from_secs(10));
    c.agent.relay_only = true;
    c.turn = vec![TurnServerConfig {
        uri: uri.parse::<IceServerUri>().unwrap(),
        username: "peer".into(),
        password: "relay-secret".into(),
    }];
    c
}

/// Whether nothing listens on UDP at the TCP listener's address.
fn dead_udp_port_twin(tcp: SocketAddr) -> bool {
    std::net::UdpSocket::bind(tcp).is_ok()
}

/// A loopback port free for both UDP and TCP (bound, read, released).
fn free_udp_and_tcp_port() -> SocketAddr {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

async fn pair(a: PeerConfig, b: PeerConfig) -> (PeerConnection, PeerConnection) {
    let ((a_tx, a_rx), (b_tx, b_rx)) = memory_pair();
    let (a, b) = tokio::join!(
        PeerConnection::connect(a, Side::Offer, a_tx, a_rx),
        PeerConnection::connect(b, Side::Answer, b_tx, b_rx)
    );
    (a.expect("offerer connects"), b.expect("answerer connects"))
}

async fn recv_all(pc: &mut PeerConnection, n: u32) -> HashSet<u32> {
    let mut got = HashSet::new();
    while got.len() < n as usize {
        match tokio::time::timeout(Duration::from_secs(5), pc.recv()).await {
            Ok(Some(d)) => {
                got.insert(u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
            }
            _ => break,
        }
    }
    got
}

async fn send_all(tx: DataSender, n: u32, size: usize) {
    for i in 0..n {
        let mut v = vec![0u8; size];
        v[..4].copy_from_slice(&i.to_be_bytes());
        tx.send(&v).await.unwrap();
        if i % 8 == 7 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// `n` numbered datagrams each way; all must arrive.
async fn exchange(a: &mut PeerConnection, b: &mut PeerConnection, n: u32) {
    let (ta, tb) = (a.sender(), b.sender());
    let (ga, gb, (), ()) = tokio::join!(
        recv_all(a, n),
        recv_all(b, n),
        send_all(ta, n, 200),
        send_all(tb, n, 200)
    );
    assert_eq!(gb.len(), n as usize, "b received {} of {n}", gb.len());
    assert_eq!(ga.len(), n as usize, "a received {} of {n}", ga.len());
}

/// The TURN transports announced so far (the events already queued).
async fn turn_transports(events: &mut PeerEvents) -> Vec<Transport> {
    let mut out = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(50), events.next()).await {
        if let PeerEvent::TurnTransport { transport, .. } = e {
            out.push(transport);
        }
    }
    out
}

async fn wait_for_allocations(server: &ServerHandle, n: usize) -> usize {
    for _ in 0..200 {
        if server.stats().allocations == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.stats().allocations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_over_tcp_with_transport_tcp_exchanges_datagrams_both_ways() {
    let server = server(|o| o.tcp = vec!["127.0.0.1:0".parse().unwrap()]).await;
    let uri = format!("turn:{}?transport=tcp", server.tcp_addrs()[0]);
    let (mut a, mut b) = pair(relay_config(&uri), relay_config(&uri)).await;
    for pc in [&a, &b] {
        let s = pc.selected().unwrap();
        assert_eq!(s.local_kind, CandidateKind::Relayed, "{s:?}");
        assert_eq!(s.turn_transport, Some(Transport::Tcp), "{s:?}");
    }
    assert_eq!(
        turn_transports(&mut a.take_events()).await,
        [Transport::Tcp]
    );
    exchange(&mut a, &mut b, 1_000).await;
    assert!(server.current_stats().await.packets_to_peers >= 2_000);
    assert_eq!(server.stats().allocations, 2);
    // The transport is in the stats too, with the selected pair's counters.
    let stats = a.stats().await.expect("open");
    assert_eq!(stats.relays.len(), 1, "{stats:?}");
    assert_eq!(stats.relays[0].1, Transport::Tcp);
    let selected = stats.selected.expect("selected");
    let (_, _, _, counters) = stats
        .pairs
        .iter()
        .find(|p| p.0 == selected.local && p.1 == selected.remote)
        .expect("the selected pair's stats");
    assert!(counters.bytes_sent >= 1_000 * 4, "{counters:?}");
    assert!(counters.responses_received >= 1);
    // Closing the connections closes their TCP streams, which ends the allocations.
    a.close().await;
    b.close().await;
    assert_eq!(
        wait_for_allocations(&server, 0).await,
        0,
        "streams left open"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_over_tls_with_turns_verifies_the_server_and_exchanges_datagrams() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let server = server(|o| {
        o.tls = vec!["127.0.0.1:0".parse().unwrap()];
        o.tls_config = Some(Arc::new(tls));
    })
    .await;
    let uri = format!("turns:{}", server.tls_addrs()[0]);
    let mut config = relay_config(&uri);
    config.tls_roots = vec![cert.cert.der().clone()];
    let (mut a, mut b) = pair(config.clone(), config).await;
    for pc in [&a, &b] {
        let s = pc.selected().unwrap();
        assert_eq!(s.turn_transport, Some(Transport::Tls), "{s:?}");
    }
    exchange(&mut a, &mut b, 500).await;
    a.close().await;
    b.close().await;
    assert_eq!(
        wait_for_allocations(&server, 0).await,
        0,
        "streams left open"
    );

    // A server whose certificate the peer does not trust: no relay, so no connection.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let mut untrusting = relay_config(&uri);
    untrusting.tls_roots = vec![other.cert.der().clone()];
    untrusting.connect_timeout = Some(Duration::from_secs(3));
    let ((a_tx, a_rx), _keep) = memory_pair();
    let r = PeerConnection::connect(untrusting, Side::Offer, a_tx, a_rx).await;
    assert!(r.is_err(), "connected through an untrusted server");
    assert_eq!(server.stats().allocations_created, 2);
    server.shutdown().await;
}

/// A TLS listener with a certificate for `name` (a DNS name or an IP address).
async fn tls_server(
    name: &str,
    setup: impl FnOnce(&mut ServerOptions),
) -> (ServerHandle, rustls::pki_types::CertificateDer<'static>) {
    let cert = rcgen::generate_simple_self_signed(vec![name.into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let der = cert.cert.der().clone();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der.clone()], key)
    .unwrap();
    let server = server(|o| {
        o.tls = vec!["127.0.0.1:0".parse().unwrap()];
        o.tls_config = Some(Arc::new(tls));
        setup(o);
    })
    .await;
    (server, der)
}

/// RFC 8489 §10, §14.16: a draining TURN server over TLS redirects to another whose
/// certificate carries another name; the 300's ALTERNATE-DOMAIN names it, and the peers
/// check the alternate's certificate against it and relay through the alternate. Without
/// ALTERNATE-DOMAIN they check it against the original name, which it does not carry, so
/// nothing is allocated there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_redirect_is_followed_with_the_alternate_domain_for_the_certificate() {
    let (b, cert_b) = tls_server("relay-b.test", |_| {}).await;
    for with_domain in [true, false] {
        let (a, cert_a) = tls_server("127.0.0.1", |o| {
            o.turn.alternate_server = Some(b.tls_addrs()[0]);
            o.turn.alternate_domain = with_domain.then(|| "relay-b.test".to_owned());
        })
        .await;
        a.drain().await;
        let before = b.stats().allocations_created;
        let mut config = relay_config(&format!("turns:{}", a.tls_addrs()[0]));
        config.tls_roots = vec![cert_a.clone(), cert_b.clone()];
        if with_domain {
            let (mut pa, mut pb) = pair(config.clone(), config).await;
            for pc in [&pa, &pb] {
                let s = pc.selected().unwrap();
                assert_eq!(s.turn_transport, Some(Transport::Tls), "{s:?}");
            }
            exchange(&mut pa, &mut pb, 100).await;
            assert_eq!(
                b.stats().allocations_created,
                before + 2,
                "allocated on the alternate"
            );
            pa.close().await;
            pb.close().await;
        } else {
            config.connect_timeout = Some(Duration::from_secs(3));
            let ((a_tx, a_rx), _keep) = memory_pair();
            let r = PeerConnection::connect(config, Side::Offer, a_tx, a_rx).await;
            assert!(
                r.is_err(),
                "connected through a certificate for another name"
            );
            assert_eq!(
                b.stats().allocations_created,
                before,
                "no allocation on the alternate"
            );
        }
        assert_eq!(a.stats().allocations_created, 0);
        a.shutdown().await;
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_turn_uri_falls_back_to_tcp_when_udp_is_dead() {
    let server = server(|o| o.tcp = vec!["127.0.0.1:0".parse().unwrap()]).await;
    let tcp = server.tcp_addrs()[0];
    assert!(dead_udp_port_twin(tcp), "something listens on UDP {tcp}");
    let uri = format!("turn:{tcp}");
    let start = Instant::now();
    let (mut a, mut b) = pair(relay_config(&uri), relay_config(&uri)).await;
    let took = start.elapsed();
    println!("relay-only over a plain turn: URI with UDP dead: connected in {took:?} (server dropped {})", server.stats().dropped);
    assert!(took < Duration::from_secs(2), "{took:?}");
    for pc in [&a, &b] {
        assert_eq!(pc.selected().unwrap().turn_transport, Some(Transport::Tcp));
    }
    exchange(&mut a, &mut b, 200).await;
    a.close().await;
    b.close().await;
    assert_eq!(wait_for_allocations(&server, 0).await, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_udp_and_tcp_both_work_udp_wins_and_no_tcp_allocation_is_made() {
    // One port for both listeners, as a `turn:` URI names one address for UDP and TCP.
    let udp = free_udp_and_tcp_port();
    let server = server(|o| {
        o.udp = vec![udp];
        o.tcp = vec![udp];
    })
    .await;
    let uri = format!("turn:{udp}");
    let (mut a, mut b) = pair(relay_config(&uri), relay_config(&uri)).await;
    for pc in [&a, &b] {
        assert_eq!(pc.selected().unwrap().turn_transport, Some(Transport::Udp));
    }
    assert_eq!(
        turn_transports(&mut a.take_events()).await,
        [Transport::Udp]
    );
    exchange(&mut a, &mut b, 200).await;
    // Past the stagger: the TCP attempts were never started.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = server.stats();
    assert_eq!(
        (stats.allocations, stats.allocations_created),
        (2, 2),
        "{stats:?}"
    );
    // Closing deallocates (Refresh with lifetime 0 over UDP).
    a.close().await;
    b.close().await;
    assert_eq!(wait_for_allocations(&server, 0).await, 0, "not deallocated");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_turn_server_delays_nothing_and_is_reported_with_its_reasons() {
    // Nothing listens on this port, UDP or TCP: the TCP connect is refused at once, the
    // UDP Allocate times out after the gather timeout (5 s).
    let dead = free_udp_and_tcp_port();
    let mut config = relay_config(&format!("turn:{dead}"));
    config.agent.relay_only = false;
    let started = Instant::now();
    let (a, mut b) = pair(config.clone(), config).await;
    // Host candidates connected without waiting for the server.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(a.selected().unwrap().local_kind, CandidateKind::Host);
    let mut events = b.take_events();
    let reason = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.next().await {
                Some(PeerEvent::ServerFailed { server, reason }) if server == dead => break reason,
                Some(_) => {}
                None => panic!("events ended"),
            }
        }
    })
    .await
    .expect("a ServerFailed event within the gather timeout");
    assert!(reason.contains("udp: no allocation in time"), "{reason}");
    assert!(reason.contains("tcp: connect:"), "{reason}");
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
    a.close().await;
    b.close().await;
}
