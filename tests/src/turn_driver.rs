//! Drives a sans-IO [`floe_turn::client::Client`] over real sockets (UDP, TCP or TLS),
//! for integration tests against floe-server and coturn.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_turn::client::{Client, Event};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// A byte stream to a TURN server.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The client's transport.
pub enum Io {
    /// UDP socket (sends to each transmit's destination).
    Udp(UdpSocket),
    /// TCP or TLS stream.
    Stream(Box<dyn Stream>),
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Io::Udp(_) => "Io::Udp",
            Io::Stream(_) => "Io::Stream",
        })
    }
}

impl Io {
    /// Sends one transmit.
    pub async fn send(&mut self, data: &[u8], to: SocketAddr) {
        match self {
            Io::Udp(s) => {
                s.send_to(data, to).await.expect("udp send");
            }
            Io::Stream(s) => s.write_all(data).await.expect("stream write"),
        }
    }
}

/// A client and its transport, with everything it reported.
#[derive(Debug)]
pub struct Driven {
    /// The state machine.
    pub client: Client,
    /// Its transport.
    pub io: Io,
    /// Every event so far.
    pub events: Vec<Event>,
    /// Peer data not yet taken.
    pub data: Vec<(SocketAddr, Vec<u8>)>,
}

impl Driven {
    /// Wraps a client.
    pub fn new(client: Client, io: Io) -> Driven {
        Driven {
            client,
            io,
            events: Vec::new(),
            data: Vec::new(),
        }
    }

    /// Runs the client until `done` holds (panics after `limit`).
    pub async fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Driven) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = vec![0u8; 65_536];
        loop {
            self.flush().await;
            if done(self) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out; events so far: {:?}",
                self.events
            );
            let timer = self
                .client
                .poll_timeout()
                .map_or(deadline, tokio::time::Instant::from_std)
                .min(deadline);
            tokio::select! {
                () = tokio::time::sleep_until(timer) => self.client.handle_timeout(Instant::now()),
                r = async {
                    match &mut self.io {
                        Io::Udp(s) => s.recv(&mut buf).await,
                        Io::Stream(s) => s.read(&mut buf).await,
                    }
                } => {
                    let n = r.expect("receive");
                    let now = Instant::now();
                    match &self.io {
                        Io::Udp(_) => {
                            if let Some((p, d)) = self.client.handle_datagram(now, &buf[..n]) {
                                self.data.push((p, d.to_vec()));
                            }
                        }
                        Io::Stream(_) => {
                            assert!(n > 0, "server closed the connection");
                            let data = &mut self.data;
                            self.client.handle_stream(now, &buf[..n], |p, d| data.push((p, d.to_vec()))).expect("stream framing");
                        }
                    }
                }
            }
        }
    }

    /// Sends queued transmits and collects events.
    pub async fn flush(&mut self) {
        while let Some(t) = self.client.poll_transmit() {
            self.io.send(&t.data, t.destination).await;
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
    }

    /// Whether an event matching `f` was seen.
    pub fn saw(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(f)
    }

    /// Sends `data` to `peer` through the relay.
    pub async fn send_to(&mut self, peer: SocketAddr, data: &[u8]) {
        let t = self.client.send_to(peer, data).expect("encode");
        self.io.send(&t.data, t.destination).await;
    }

    /// Waits for the next datagram relayed from a peer.
    pub async fn recv_from_peer(&mut self) -> (SocketAddr, Vec<u8>) {
        self.run_until(Duration::from_secs(5), |d| !d.data.is_empty())
            .await;
        self.data.remove(0)
    }
}

/// Connects a TLS stream trusting exactly `cert`.
pub async fn tls_connect(
    server: SocketAddr,
    cert: &rustls_pki_types::CertificateDer<'static>,
) -> (Io, SocketAddr) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server).await.expect("tcp connect");
    let local = tcp.local_addr().expect("local");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let stream = connector.connect(name, tcp).await.expect("tls handshake");
    (Io::Stream(Box::new(stream)), local)
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
    d.client.allocate(Instant::now());
    d.run_until(limit, |d| d.saw(|e| matches!(e, Event::Allocated { .. })))
        .await;
    let relayed = d.client.relayed()[0];
    let peer = UdpSocket::bind(SocketAddr::new(peer_ip, 0))
        .await
        .expect("peer socket");
    let peer_addr = peer.local_addr().expect("peer addr");
    d.client
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
        .client
        .bind_channel(Instant::now(), peer_addr)
        .expect("channel");
    d.run_until(limit, |d| {
        d.saw(|e| matches!(e, Event::ChannelBound { .. }))
    })
    .await;
    for i in 0..20u8 {
        let t = d.client.send_to(peer_addr, &[i; 33]).expect("encode");
        assert_eq!(
            &t.data[..2],
            &ch.to_be_bytes(),
            "bound channel => ChannelData"
        );
        d.io.send(&t.data, t.destination).await;
        let (n, from) = tokio::time::timeout(limit, peer.recv_from(&mut buf))
            .await
            .expect("peer got nothing")
            .expect("recv");
        assert_eq!((&buf[..n], from), (&[i; 33][..], relayed));
        peer.send_to(&[i; 7], relayed).await.expect("peer send");
        assert_eq!(d.recv_from_peer().await, (peer_addr, vec![i; 7]));
    }
    d.client.deallocate(Instant::now());
    d.run_until(limit, |d| d.saw(|e| *e == Event::Deallocated))
        .await;
    relayed
}
