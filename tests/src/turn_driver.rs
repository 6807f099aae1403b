//! The integration tests' view of [`floe_peer::turn::TurnDriver`] (the one TURN driver):
//! run a client until a condition holds, panicking on errors and timeouts, against
//! floe-server and coturn.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

pub use floe_peer::turn::TurnSocket as Io;
use floe_peer::turn::{
    connect_stream, tls_client_config, StreamOptions, TlsConnect, TlsTrust, TurnDriver,
};
use floe_turn::client::{Client, Event};
use tokio::net::UdpSocket;

/// A driven client, with everything it reported.
#[derive(Debug)]
pub struct Driven {
    /// The client on its socket.
    pub driver: TurnDriver,
    /// Every event so far.
    pub events: Vec<Event>,
    /// Peer data not yet taken.
    pub data: Vec<(SocketAddr, Vec<u8>)>,
}

impl Deref for Driven {
    type Target = TurnDriver;
    fn deref(&self) -> &TurnDriver {
        &self.driver
    }
}

impl DerefMut for Driven {
    fn deref_mut(&mut self) -> &mut TurnDriver {
        &mut self.driver
    }
}

impl Driven {
    /// Wraps a client.
    pub fn new(client: Client, io: Io) -> Driven {
        Driven {
            driver: TurnDriver::new(client, io),
            events: Vec::new(),
            data: Vec::new(),
        }
    }

    /// Runs the client until `done` holds (panics after `limit`).
    pub async fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Driven) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            self.flush_all().await;
            if done(self) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out; events so far: {:?}",
                self.events
            );
            let data = &mut self.data;
            let waited = tokio::time::timeout_at(
                deadline,
                self.driver.wait(|p, d| data.push((p, d.to_vec()))),
            )
            .await;
            if let Ok(r) = waited {
                r.expect("receive");
            }
        }
    }

    /// Sends queued transmits and collects events.
    pub async fn flush_all(&mut self) {
        self.driver.flush().await.expect("send");
        while let Some(e) = self.driver.poll_event() {
            self.events.push(e);
        }
    }

    /// Whether an event matching `f` was seen.
    pub fn saw(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(f)
    }

    /// Sends `data` to `peer` through the relay.
    pub async fn send_to(&mut self, peer: SocketAddr, data: &[u8]) {
        self.driver.send_to(peer, data).await.expect("send");
    }

    /// Waits for the next datagram relayed from a peer.
    pub async fn recv_from_peer(&mut self) -> (SocketAddr, Vec<u8>) {
        self.run_until(Duration::from_secs(5), |d| !d.data.is_empty())
            .await;
        self.data.remove(0)
    }
}

/// Connects a TLS stream trusting exactly `cert`, verifying the name "localhost".
pub async fn tls_connect(
    server: SocketAddr,
    cert: &rustls_pki_types::CertificateDer<'static>,
) -> (Io, SocketAddr) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("root");
    let mut options = StreamOptions::default();
    options.tls = Some(TlsConnect {
        config: tls_client_config(TlsTrust::Roots(roots)).expect("TLS config"),
        server_name: rustls_pki_types::ServerName::try_from("localhost").expect("name"),
    });
    let (stream, local) = connect_stream(server, &options).await.expect("TLS connect");
    (Io::Stream(stream), local)
}

/// A self-signed certificate for "localhost" written as PEM files in a fresh temporary
/// directory: (directory, cert path, key path, DER certificate).
pub fn self_signed(
    tag: &str,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
    rustls_pki_types::CertificateDer<'static>,
) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("rcgen");
    let dir = std::env::temp_dir().join(format!("floe-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).expect("write cert");
    std::fs::write(&k, cert.key_pair.serialize_pem()).expect("write key");
    (dir, c, k, cert.cert.der().clone())
}

/// The common TURN scenario: allocate, permission, data both ways through Send/Data
/// indications, a channel with 20 round trips of ChannelData, then deallocate. The peer
/// is a plain UDP socket on `peer_ip`. Returns the relayed address.
pub async fn exercise(d: &mut Driven, peer_ip: std::net::IpAddr) -> SocketAddr {
    let limit = Duration::from_secs(10);
    d.client_mut().allocate(Instant::now());
    d.run_until(limit, |d| d.saw(|e| matches!(e, Event::Allocated { .. })))
        .await;
    let relayed = d.client().relayed()[0];
    let peer = UdpSocket::bind(SocketAddr::new(peer_ip, 0))
        .await
        .expect("peer socket");
    let peer_addr = peer.local_addr().expect("peer addr");
    d.client_mut()
        .create_permission(Instant::now(), peer_addr.ip())
        .expect("permission");
    d.run_until(limit, |d| {
        d.saw(|e| matches!(e, Event::PermissionCreated(_)))
    })
    .await;

    let mut buf = [0u8; 1500];
    d.send_to(peer_addr, b"indication").await;
    let (n, from) = tokio::time::timeout(limit, peer.recv_from(&mut buf))
        .await
        .expect("peer got nothing")
        .expect("recv");
    assert_eq!((&buf[..n], from), (&b"indication"[..], relayed));
    peer.send_to(b"data-indication", relayed)
        .await
        .expect("peer send");
    assert_eq!(
        d.recv_from_peer().await,
        (peer_addr, b"data-indication".to_vec())
    );

    let ch = d
        .client_mut()
        .bind_channel(Instant::now(), peer_addr)
        .expect("channel");
    d.run_until(limit, |d| {
        d.saw(|e| matches!(e, Event::ChannelBound { .. }))
    })
    .await;
    for i in 0..20u8 {
        let t = d.client_mut().send_to(peer_addr, &[i; 33]).expect("encode");
        assert_eq!(
            &t.data[..2],
            &ch.to_be_bytes(),
            "bound channel => ChannelData"
        );
        d.transmit(&t).await.expect("send");
        let (n, from) = tokio::time::timeout(limit, peer.recv_from(&mut buf))
            .await
            .expect("peer got nothing")
            .expect("recv");
        assert_eq!((&buf[..n], from), (&[i; 33][..], relayed));
        peer.send_to(&[i; 7], relayed).await.expect("peer send");
        assert_eq!(d.recv_from_peer().await, (peer_addr, vec![i; 7]));
    }
    d.client_mut().deallocate(Instant::now());
    d.run_until(limit, |d| d.saw(|e| *e == Event::Deallocated))
        .await;
    relayed
}
