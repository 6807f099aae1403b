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
}
