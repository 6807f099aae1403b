//! Interop: floe's TURN client against coturn's `turnserver` (a real, independent
//! implementation) on 127.0.0.1 over UDP, TCP and TLS.
//!
//! These need Debian's `coturn` package, so they are `#[ignore]`d for the README's test
//! command; `.ci/run` installs coturn and runs them with `--ignored`. Without
//! `turnserver` on the PATH they fail, they do not skip.

use std::net::{SocketAddr, TcpStream as StdTcp, UdpSocket as StdUdp};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use floe_tests::turn_driver::{exercise, self_signed, tls_connect, Driven, Io};
use floe_turn::client::{Client, ClientConfig, Event};
use floe_turn::Transport;
use tokio::net::{TcpStream, UdpSocket};

/// A coturn process, killed on drop.
struct Coturn {
    child: Child,
    port: u16,
    tls_port: u16,
    #[allow(dead_code)] // held so the certificate files outlive the server
    dir: Option<std::path::PathBuf>,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    // A port free on both UDP and TCP right now.
    loop {
        let u = StdUdp::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn coturn(extra: &[&str], tls: Option<(&std::path::Path, &std::path::Path)>) -> Coturn {
    let port = free_port();
    let tls_port = free_port();
    let min = 40_000 + (port % 10_000);
    let mut cmd = Command::new("turnserver");
    cmd.args([
        "-n",
        "--no-cli",
        "--listening-ip",
        "127.0.0.1",
        "--relay-ip",
        "127.0.0.1",
        "--allow-loopback-peers",
    ])
    .args([
        "--listening-port",
        &port.to_string(),
        "--tls-listening-port",
        &tls_port.to_string(),
    ])
    .args([
        "--min-port",
        &min.to_string(),
        "--max-port",
        &(min + 200).to_string(),
    ])
    .args([
        "-a",
        "-u",
        "alice:wonderland",
        "-r",
        "floe",
        "--no-dtls",
        "--fingerprint",
        "--log-file",
        "stdout",
    ])
    .args(extra)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    match tls {
        Some((cert, key)) => {
            cmd.arg("--cert").arg(cert).arg("--pkey").arg(key);
        }
        None => {
            cmd.arg("--no-tls");
        }
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start coturn's turnserver ({e}); install the Debian package `coturn` (.ci/run does)"));
    let server = Coturn {
        child,
        port,
        tls_port,
        dir: None,
    };
    // Ready when it answers TCP.
    let deadline = Instant::now() + Duration::from_secs(10);
    while StdTcp::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "turnserver did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test]
#[ignore = "needs coturn (run by .ci/run)"]
async fn floe_client_allocates_and_relays_through_coturn_over_udp() {
    let server = coturn(&[], None);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    let mut d = Driven::new(
        Client::new(
            ClientConfig::new(
                local,
                addr(server.port),
                Transport::Udp,
                "alice",
                "wonderland",
            ),
            1,
        ),
        Io::Udp(sock),
    );
    let relayed = exercise(&mut d, "127.0.0.1".parse().unwrap()).await;
    assert_eq!(relayed.ip().to_string(), "127.0.0.1");
}

#[tokio::test]
#[ignore = "needs coturn (run by .ci/run)"]
async fn floe_client_allocates_and_relays_through_coturn_over_tcp() {
    let server = coturn(&[], None);
    let stream = TcpStream::connect(addr(server.port)).await.unwrap();
    let local = stream.local_addr().unwrap();
    let config = ClientConfig::new(
        local,
        addr(server.port),
        Transport::Tcp,
        "alice",
        "wonderland",
    );
    let mut d = Driven::new(Client::new(config, 2), Io::Stream(Box::new(stream)));
    exercise(&mut d, "127.0.0.1".parse().unwrap()).await;
}

#[tokio::test]
#[ignore = "needs coturn (run by .ci/run)"]
async fn floe_client_allocates_and_relays_through_coturn_over_tls() {
    let (dir, cert, key, der) = self_signed("coturn-tls");
    let mut server = coturn(&[], Some((&cert, &key)));
    server.dir = Some(dir.clone());
    // TLS listener readiness.
    let deadline = Instant::now() + Duration::from_secs(10);
    while StdTcp::connect(("127.0.0.1", server.tls_port)).is_err() {
        assert!(Instant::now() < deadline, "no TLS listener");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (io, local) = tls_connect(addr(server.tls_port), &der).await;
    let config = ClientConfig::new(
        local,
        addr(server.tls_port),
        Transport::Tcp,
        "alice",
        "wonderland",
    );
    let mut d = Driven::new(Client::new(config, 3), io);
    exercise(&mut d, "127.0.0.1".parse().unwrap()).await;
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
#[ignore = "needs coturn (run by .ci/run)"]
async fn coturn_accepts_refreshes_and_stale_nonces_are_retried() {
    // Nonces go stale after 2 s, so the refresh after 3 s meets a 438 first.
    let server = coturn(&["--stale-nonce=2"], None);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    let mut d = Driven::new(
        Client::new(
            ClientConfig::new(
                local,
                addr(server.port),
                Transport::Udp,
                "alice",
                "wonderland",
            ),
            4,
        ),
        Io::Udp(sock),
    );
    d.client_mut().allocate(Instant::now());
    d.run_until(Duration::from_secs(10), |d| {
        d.saw(|e| matches!(e, Event::Allocated { .. }))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    d.client_mut().refresh(Instant::now());
    d.run_until(Duration::from_secs(10), |d| {
        d.saw(|e| matches!(e, Event::Refreshed { .. }))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    d.client_mut()
        .create_permission(Instant::now(), "127.0.0.1".parse().unwrap())
        .unwrap();
    d.run_until(Duration::from_secs(10), |d| {
        d.saw(|e| matches!(e, Event::PermissionCreated(_)))
    })
    .await;
    d.client_mut().deallocate(Instant::now());
    d.run_until(Duration::from_secs(10), |d| {
        d.saw(|e| *e == Event::Deallocated)
    })
    .await;
}

#[tokio::test]
#[ignore = "needs coturn (run by .ci/run)"]
async fn coturn_wrong_password_is_a_typed_failure() {
    let server = coturn(&[], None);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    let mut d = Driven::new(
        Client::new(
            ClientConfig::new(local, addr(server.port), Transport::Udp, "alice", "nope"),
            5,
        ),
        Io::Udp(sock),
    );
    d.client_mut().allocate(Instant::now());
    d.run_until(Duration::from_secs(10), |d| {
        d.saw(|e| matches!(e, Event::AllocationFailed(_)))
    })
    .await;
    assert!(
        d.saw(|e| *e == Event::AllocationFailed(floe_turn::client::TurnError::Unauthenticated)),
        "{:?}",
        d.events
    );
}

/// RFC 8656 §7.2 against coturn: a dual allocation (ADDITIONAL-ADDRESS-FAMILY IPv6) gets
/// an IPv4 and an IPv6 relayed address, and data to and from an IPv6 peer goes through
/// the IPv6 one (the Send indication carries a 24-byte XOR-PEER-ADDRESS).
#[tokio::test]
#[ignore = "needs coturn (run by .ci/run)"]
async fn a_dual_allocation_on_coturn_relays_to_an_ipv6_peer() {
    let server = coturn(&["--listening-ip", "::1", "--relay-ip", "::1"], None);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    let mut config = ClientConfig::new(
        local,
        addr(server.port),
        Transport::Udp,
        "alice",
        "wonderland",
    );
    config.dual_stack = true;
    let mut d = Driven::new(Client::new(config, 7), Io::Udp(sock));
    let limit = Duration::from_secs(10);
    d.client_mut().allocate(Instant::now());
    d.run_until(limit, |d| d.saw(|e| matches!(e, Event::Allocated { .. })))
        .await;
    let relayed = d.client().relayed().to_vec();
    assert_eq!(relayed.len(), 2, "{relayed:?} {:?}", d.events);
    let v6 = *relayed.iter().find(|r| r.is_ipv6()).expect("an IPv6 relay");
    assert_eq!(v6.ip().to_string(), "::1");
    let peer = UdpSocket::bind("[::1]:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    d.client_mut()
        .create_permission(Instant::now(), peer_addr.ip())
        .unwrap();
    d.run_until(limit, |d| {
        d.saw(|e| matches!(e, Event::PermissionCreated(_)))
    })
    .await;
    d.send_to(peer_addr, b"to an ipv6 peer").await;
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(limit, peer.recv_from(&mut buf))
        .await
        .expect("the IPv6 peer got nothing")
        .unwrap();
    assert_eq!((&buf[..n], from), (&b"to an ipv6 peer"[..], v6));
    peer.send_to(b"from an ipv6 peer", v6).await.unwrap();
    assert_eq!(
        d.recv_from_peer().await,
        (peer_addr, b"from an ipv6 peer".to_vec())
    );
}
