//! Many peers, one server port: 24 PeerConnections on loopback each get their own ICE-lite
//! session on one `MuxServer` socket, connect, and exchange datagrams both ways; each
//! session hears only its own peer, and a stranger's datagrams reach nobody.

use std::time::Duration;

use floe_peer::{memory_pair, MuxServer, PeerConfig, PeerConnection, Side};

const PEERS: usize = 24;

fn peer_config() -> PeerConfig {
    let mut c = PeerConfig::default();
    c.bind = vec!["127.0.0.1:0".parse().unwrap()];
    c.connect_timeout = Some(Duration::from_secs(10));
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dozen_peers_share_one_server_port_each_with_its_own_session() {
    let server = MuxServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let port = server.local_addr();
    let mut tasks = Vec::new();
    for i in 0..PEERS {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let ((p_tx, p_rx), (s_tx, s_rx)) = memory_pair();
            let (peer, session) = tokio::join!(
                PeerConnection::connect(peer_config(), Side::Offer, p_tx, p_rx),
                server.accept(s_tx, s_rx, Duration::from_secs(10)),
            );
            let (mut peer, mut session) = (peer.expect("peer connects"), session.expect("session"));
            assert_eq!(
                peer.selected().unwrap().remote,
                port,
                "the peer reaches the shared port"
            );
            // Both ways, a few datagrams each, tagged with the peer's number.
            for n in 0..5u8 {
                peer.send(&[i as u8, n]).await.unwrap();
                session.send(&[i as u8, 100 + n]).unwrap();
            }
            for n in 0..5u8 {
                let got = tokio::time::timeout(Duration::from_secs(5), session.recv())
                    .await
                    .expect("the session hears its peer")
                    .unwrap();
                assert_eq!(
                    &got[..],
                    &[i as u8, n],
                    "session {i} got another peer's datagram"
                );
                let back = tokio::time::timeout(Duration::from_secs(5), peer.recv())
                    .await
                    .expect("the peer hears its session")
                    .unwrap();
                assert_eq!(&back[..], &[i as u8, 100 + n]);
            }
            (peer, session)
        }));
    }
    let mut kept = Vec::new();
    for t in tasks {
        kept.push(t.await.unwrap());
    }
    // A stranger on the same port: no answer at all.
    let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    stranger.send_to(b"hello?", port).await.unwrap();
    let mut buf = [0u8; 64];
    let answer =
        tokio::time::timeout(Duration::from_millis(300), stranger.recv_from(&mut buf)).await;
    assert!(answer.is_err(), "a stranger got an answer");
    for (_, session) in &mut kept {
        assert!(
            tokio::time::timeout(Duration::from_millis(10), session.recv())
                .await
                .is_err(),
            "a session got the stranger's datagram"
        );
    }
    // Quiet for 1.5 s: the peers check their paths (liveness, consent), and the mux
    // answers those checks itself on the nominated pairs (floe_ice::fast_answer); the
    // sessions stay up and carry data afterwards.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats = server.stats().await.unwrap();
    assert!(
        stats.answered > 0,
        "the mux answered no check itself: {stats:?}"
    );
    for (i, (peer, session)) in kept.iter_mut().enumerate() {
        assert!(matches!(
            peer.state(),
            floe_ice::ConnectionState::Connected | floe_ice::ConnectionState::Completed
        ));
        peer.send(&[i as u8, 200]).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), session.recv())
            .await
            .expect("still connected")
            .unwrap();
        assert_eq!(&got[..], &[i as u8, 200]);
    }
}

/// Forwards signalling from `rx` to `tx`, dropping the UDP candidates of descriptions
/// and trickled lines: what a peer behind a UDP-blocking firewall effectively sees.
async fn without_udp(
    mut rx: floe_peer::signal::MemoryReceiver,
    mut tx: floe_peer::signal::MemorySender,
) {
    use floe_peer::{SignalMessage, SignalReceiver, SignalSender};
    let udp = |line: &str| {
        line.split_whitespace()
            .nth(2)
            .is_some_and(|t| t.eq_ignore_ascii_case("udp"))
    };
    while let Ok(Some(msg)) = rx.recv().await {
        let msg = match msg {
            SignalMessage::Answer(mut d) => {
                d.candidates.retain(|l| !udp(l));
                SignalMessage::Answer(d)
            }
            SignalMessage::Candidate { candidate } if udp(&candidate) => continue,
            other => other,
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

/// ICE-TCP (RFC 6544) through the mux's one TCP listener: peers that see only the
/// server's TCP candidate (its UDP ones are filtered out of the signalling) connect to
/// their own sessions over TCP and exchange data; a stranger's connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_reach_their_sessions_over_the_mux_tcp_listener() {
    use floe_peer::{SignalReceiver, SignalSender};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = MuxServer::bind_with_tcp("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let tcp = server.tcp_addr().unwrap();
    assert_ne!(tcp, server.local_addr());
    let mut tasks = Vec::new();
    for i in 0..4u8 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let ((p_tx, p_rx), (m1_tx, m1_rx)) = memory_pair();
            let ((m2_tx, m2_rx), (s_tx, s_rx)) = memory_pair();
            // Peer -> server as it is; server -> peer without UDP candidates.
            tokio::spawn(async move {
                let (mut rx, mut tx) = (m1_rx, m2_tx);
                while let Ok(Some(m)) = rx.recv().await {
                    if tx.send(m).await.is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(without_udp(m2_rx, m1_tx));
            let mut config = peer_config();
            config.agent.ice_tcp = true;
            let (peer, session) = tokio::join!(
                PeerConnection::connect(config, Side::Offer, p_tx, p_rx),
                server.accept(s_tx, s_rx, Duration::from_secs(10)),
            );
            let (mut peer, mut session) = (peer.expect("peer connects"), session.expect("session"));
            let selected = peer.selected().unwrap();
            assert_eq!(selected.remote, tcp, "the peer reaches the TCP listener");
            assert_eq!(selected.transport, floe_ice::Transport::Tcp);
            for n in 0..5u8 {
                peer.send(&[i, n]).await.unwrap();
                session.send(&[i, 100 + n]).unwrap();
            }
            for n in 0..5u8 {
                let got = tokio::time::timeout(Duration::from_secs(5), session.recv())
                    .await
                    .expect("the session hears its peer over TCP")
                    .unwrap();
                assert_eq!(&got[..], &[i, n], "session {i} got another peer's data");
                let back = tokio::time::timeout(Duration::from_secs(5), peer.recv())
                    .await
                    .expect("the peer hears its session over TCP")
                    .unwrap();
                assert_eq!(&back[..], &[i, 100 + n]);
            }
            (peer, session)
        }));
    }
    let mut kept = Vec::new();
    for t in tasks {
        kept.push(t.await.unwrap());
    }
    // A stranger's frame (no check for a known session): the connection is closed, no
    // answer.
    let mut stranger = tokio::net::TcpStream::connect(tcp).await.unwrap();
    stranger
        .write_all(&[0, 6, b'h', b'e', b'l', b'l', b'o', b'?'])
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), stranger.read(&mut buf))
        .await
        .expect("the stranger's connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "a stranger got an answer");
    drop(kept);
}
