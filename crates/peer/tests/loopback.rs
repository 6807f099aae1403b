//! Two PeerConnections on loopback: direct, relay-only through an in-process floe-server,
//! and 10,000 datagrams each way.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use floe_ice::CandidateKind;
use floe_peer::{
    memory_pair, DataSender, IceServerUri, PeerConfig, PeerConnection, Side, TurnServerConfig,
};

fn loopback_config() -> PeerConfig {
    let mut c = PeerConfig::default();
    c.bind = vec!["127.0.0.1:0".parse().unwrap()];
    c.connect_timeout = Some(Duration::from_secs(10));
    c
}

async fn pair(a: PeerConfig, b: PeerConfig) -> (PeerConnection, PeerConnection) {
    let ((a_tx, a_rx), (b_tx, b_rx)) = memory_pair();
    let (a, b) = tokio::join!(
        PeerConnection::connect(a, Side::Offer, a_tx, a_rx),
        PeerConnection::connect(b, Side::Answer, b_tx, b_rx)
    );
    (a.expect("offerer connects"), b.expect("answerer connects"))
}

fn payload(i: u32, size: usize) -> Vec<u8> {
    let mut v = vec![0u8; size.max(4)];
    v[..4].copy_from_slice(&i.to_be_bytes());
    v
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

async fn send_all(tx: DataSender, n: u32, size: usize, burst: u32) {
    for i in 0..n {
        tx.send(&payload(i, size)).await.unwrap();
        if i % burst == burst - 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Sends `n` numbered datagrams each way, paced so loopback does not drop, and checks
/// every one arrived (as sets: UDP may reorder).
async fn exchange(a: &mut PeerConnection, b: &mut PeerConnection, n: u32, size: usize, burst: u32) {
    let (ta, tb) = (a.sender(), b.sender());
    let (ga, gb, (), ()) = tokio::join!(
        recv_all(a, n),
        recv_all(b, n),
        send_all(ta, n, size, burst),
        send_all(tb, n, size, burst)
    );
    assert_eq!(gb.len(), n as usize, "b received {} of {n}", gb.len());
    assert_eq!(ga.len(), n as usize, "a received {} of {n}", ga.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_on_loopback_connect_and_exchange_ten_thousand_datagrams_each_way() {
    let (mut a, mut b) = pair(loopback_config(), loopback_config()).await;
    let s = a.selected().unwrap();
    assert_eq!(
        (s.local_kind, s.remote_kind),
        (CandidateKind::Host, CandidateKind::Host)
    );
    assert!(s.local.ip().is_loopback());
    exchange(&mut a, &mut b, 10_000, 100, 64).await;
    // Stats count the bytes that took the direct fast path too.
    let stats = a.stats().await.expect("open");
    let (_, _, state, counters) = stats
        .pairs
        .iter()
        .find(|p| p.0 == s.local && p.1 == s.remote)
        .expect("the selected pair");
    assert_eq!(*state, floe_ice::PairState::Succeeded);
    assert_eq!(counters.bytes_sent, 10_000 * 100, "{counters:?}");
    assert_eq!(counters.bytes_received, 10_000 * 100, "{counters:?}");
    // RTCIceCandidatePairStats: datagrams (fast path included), RTT sums, nomination.
    assert_eq!(counters.packets_sent, 10_000, "{counters:?}");
    assert_eq!(counters.packets_received, 10_000, "{counters:?}");
    assert!(counters.smoothed_rtt.is_some());
    assert!(counters.responses_received >= 1);
    assert!(counters.total_round_trip_time >= counters.current_rtt.unwrap());
    assert!(counters.nominated);
    assert!(stats.relays.is_empty());
    let host = &stats.local_candidates[0];
    assert_eq!(host.candidate.kind, CandidateKind::Host);
    assert_eq!((host.url.as_deref(), host.relay_protocol), (None, None));
    assert!(stats
        .remote_candidates
        .iter()
        .any(|c| c.addr() == Some(s.remote)));
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_goes_through_an_in_process_floe_server() {
    let mut opts = floe_server::ServerOptions::new("127.0.0.1:0".parse().unwrap());
    opts.turn.users.insert("peer".into(), "relay-secret".into());
    opts.turn.peer_policy.allow_loopback = true;
    let server = floe_server::spawn(opts).await.unwrap();
    let uri: IceServerUri = format!("turn:{}?transport=udp", server.udp_addrs()[0])
        .parse()
        .unwrap();
    let mut config = loopback_config();
    config.agent.relay_only = true;
    config.turn = vec![TurnServerConfig {
        uri,
        username: "peer".into(),
        password: "relay-secret".into(),
    }];
    let (mut a, mut b) = pair(config.clone(), config).await;
    let s = a.selected().unwrap();
    assert_eq!(s.local_kind, CandidateKind::Relayed, "{s:?}");
    // Through the relay every datagram crosses four sockets; pace it gently.
    exchange(&mut a, &mut b, 2_000, 200, 8).await;
    assert!(server.current_stats().await.packets_to_peers >= 4_000);
    // RTCIceCandidateStats of the relayed candidate: its TURN URI and relay protocol.
    let stats = a.stats().await.expect("open");
    let relayed = stats
        .local_candidates
        .iter()
        .find(|c| c.candidate.kind == CandidateKind::Relayed)
        .expect("a relayed candidate");
    assert_eq!(
        relayed.url.as_deref(),
        Some(format!("turn:{}?transport=udp", server.udp_addrs()[0]).as_str())
    );
    assert_eq!(relayed.relay_protocol, Some(floe_ice::Transport::Udp));
    // Through the relay data goes through the agent: its packet counts and times.
    let (_, _, _, counters) = stats
        .pairs
        .iter()
        .find(|p| p.0 == s.local && p.1 == s.remote)
        .expect("the selected pair");
    assert_eq!(counters.packets_sent, 2_000, "{counters:?}");
    assert!(counters.last_packet_sent.is_some() && counters.last_packet_received.is_some());
    a.close().await;
    b.close().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_mid_stream_reconnects_and_data_flows_again() {
    let (mut a, mut b) = pair(loopback_config(), loopback_config()).await;
    exchange(&mut a, &mut b, 500, 100, 32).await;
    let before = a.selected().unwrap();
    a.restart().await.unwrap();
    // Wait for the new pair: the state goes back through checking to connected.
    let mut events = a.take_events();
    let reconnected = tokio::time::timeout(Duration::from_secs(10), async {
        let mut restarted = false;
        while let Some(e) = events.next().await {
            match e {
                floe_peer::PeerEvent::State(floe_ice::ConnectionState::New) => restarted = true,
                floe_peer::PeerEvent::State(floe_ice::ConnectionState::Completed) if restarted => {
                    return true
                }
                _ => {}
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(reconnected, "no reconnection after the restart");
    // The answerer restarted when the new offer arrived; wait for its side too.
    for _ in 0..200 {
        if matches!(
            b.state(),
            floe_ice::ConnectionState::Connected | floe_ice::ConnectionState::Completed
        ) && b.selected().is_some_and(|p| p.nominated)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = a.selected().unwrap();
    assert!(after.nominated);
    assert_eq!(after.local, before.local, "same sockets, new session");
    exchange(&mut a, &mut b, 500, 100, 32).await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_both_signal_renomination_connect_and_exchange_data() {
    let mut config = loopback_config();
    config.agent.renomination = true;
    // Only one side configured: the other does not signal `renomination`, so neither
    // renominates; both configured: both signal it. Either way they connect.
    for b_renominates in [false, true] {
        let mut b_config = loopback_config();
        b_config.agent.renomination = b_renominates;
        let (mut a, mut b) = pair(config.clone(), b_config).await;
        exchange(&mut a, &mut b, 1_000, 100, 64).await;
        a.close().await;
        b.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresolvable_mdns_candidate_costs_nothing_the_peers_checks_still_connect() {
    use floe_peer::{SignalMessage, SignalReceiver, SignalSender};
    // The answerer's host candidates reach the offerer behind an mDNS name, as a browser
    // sends them; the name does not resolve here, so the offerer drops it and learns the
    // answerer's address from its checks (peer-reflexive) instead.
    let ((a_tx, a_rx), (mut proxy_tx, mut proxy_rx)) = memory_pair();
    let ((mut b_side_tx, b_side_rx), (b_tx, b_rx)) = memory_pair();
    let hide = |line: &str| -> String {
        let mut fields: Vec<String> = line.split(' ').map(str::to_owned).collect();
        if fields.get(7).map(String::as_str) == Some("host") {
            fields[4] = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0.local".into();
        }
        fields.join(" ")
    };
    // B's messages to A go through the proxy (rewritten); A's go straight to B.
    let forward = tokio::spawn(async move {
        let mut b_side_rx = b_side_rx;
        loop {
            tokio::select! {
                m = b_side_rx.recv() => match m {
                    Ok(Some(SignalMessage::Answer(mut d))) => {
                        d.candidates = d.candidates.iter().map(|c| hide(c)).collect();
                        let _ = proxy_tx.send(SignalMessage::Answer(d)).await;
                    }
                    Ok(Some(SignalMessage::Candidate { candidate })) => {
                        let candidate = hide(&candidate);
                        let _ = proxy_tx.send(SignalMessage::Candidate { candidate }).await;
                    }
                    Ok(Some(m)) => { let _ = proxy_tx.send(m).await; }
                    _ => return,
                },
                m = proxy_rx.recv() => match m {
                    Ok(Some(m)) => { let _ = b_side_tx.send(m).await; }
                    _ => return,
                },
            }
        }
    });
    let (a, b) = tokio::join!(
        PeerConnection::connect(loopback_config(), Side::Offer, a_tx, a_rx),
        PeerConnection::connect(loopback_config(), Side::Answer, b_tx, b_rx)
    );
    let (mut a, mut b) = (a.expect("offerer connects"), b.expect("answerer connects"));
    assert_eq!(
        a.selected().unwrap().remote_kind,
        CandidateKind::PeerReflexive,
        "{:?}",
        a.selected()
    );
    exchange(&mut a, &mut b, 100, 100, 64).await;
    a.close().await;
    b.close().await;
    forward.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_candidates_take_ports_from_the_configured_range_and_connect() {
    // Above the Linux ephemeral range, so no other test's socket lands there.
    let range = 61_300..=61_315;
    let mut config = loopback_config();
    config.port_range = Some(range.clone());
    let (mut a, mut b) = pair(config.clone(), config).await;
    for pc in [&a, &b] {
        for addr in pc.local_addrs() {
            assert!(range.contains(&addr.port()), "{addr} outside {range:?}");
        }
        let selected = pc.selected().unwrap();
        assert!(range.contains(&selected.local.port()));
        assert!(range.contains(&selected.remote.port()));
    }
    exchange(&mut a, &mut b, 100, 100, 32).await;
}

#[tokio::test]
async fn a_full_port_range_is_a_clear_error() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:61320").unwrap();
    let mut config = loopback_config();
    config.port_range = Some(61_320..=61_320);
    let ((tx, rx), _other) = memory_pair();
    let err = PeerConnection::connect(config, Side::Offer, tx, rx)
        .await
        .expect_err("no port to bind");
    assert!(err.to_string().contains("61320-61320"), "{err}");
    drop(taken);
    let mut config = loopback_config();
    config.port_range = Some(std::ops::RangeInclusive::new(61_330, 61_329));
    let ((tx, rx), _other) = memory_pair();
    let err = PeerConnection::connect(config, Side::Offer, tx, rx)
        .await
        .expect_err("an empty range");
    assert!(err.to_string().contains("empty"), "{err}");
}

/// A minimal HTTP CONNECT proxy on loopback: answers 200 and splices; records each
/// CONNECT target.
async fn connect_proxy() -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut b = [0u8; 1];
                    if client.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                log.lock().unwrap().push(target.clone());
                let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (addr, seen)
}

/// TURN over TCP through an HTTP CONNECT proxy (`PeerConfig::proxy`), relay-only: both
/// peers connect through the proxy's tunnels and data flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_over_tcp_through_an_http_connect_proxy() {
    let mut opts = floe_server::ServerOptions::new("127.0.0.1:0".parse().unwrap());
    opts.tcp = vec!["127.0.0.1:0".parse().unwrap()];
    opts.turn.users.insert("peer".into(), "relay-secret".into());
    opts.turn.peer_policy.allow_loopback = true;
    let server = floe_server::spawn(opts).await.unwrap();
    let tcp = server.tcp_addrs()[0];
    let (proxy, seen) = connect_proxy().await;
    let mut config = loopback_config();
    config.agent.relay_only = true;
    config.turn = vec![TurnServerConfig {
        uri: format!("turn:{tcp}?transport=tcp").parse().unwrap(),
        username: "peer".into(),
        password: "relay-secret".into(),
    }];
    config.proxy = Some(format!("http://{proxy}").parse().unwrap());
    let (mut a, mut b) = pair(config.clone(), config).await;
    let s = a.selected().unwrap();
    assert_eq!(s.local_kind, CandidateKind::Relayed, "{s:?}");
    assert_eq!(s.turn_transport, Some(floe_ice::Transport::Tcp), "{s:?}");
    exchange(&mut a, &mut b, 200, 100, 8).await;
    let targets = seen.lock().unwrap().clone();
    assert!(targets.len() >= 2, "{targets:?}");
    assert!(targets.iter().all(|t| *t == tcp.to_string()), "{targets:?}");
    a.close().await;
    b.close().await;
    server.shutdown().await;
}
