//! floe-server on real loopback sockets, driven by the floe-turn client over UDP, TCP and
//! TLS: allocate, permission, channel, data both ways with a plain UDP peer, refresh
//! bookkeeping, deallocate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_server::{spawn, ServerHandle, ServerOptions};
use floe_turn::client::{Client, ClientConfig, ClientState, Event};
use floe_turn::Transport;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

enum Io {
    Udp(UdpSocket),
    Stream(Box<dyn Stream>),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Drives `client` over `io` until `done` says so (or 10 s pass), returning peer data.
async fn pump(
    client: &mut Client,
    io: &mut Io,
    events: &mut Vec<Event>,
    mut done: impl FnMut(&[Event], &[(SocketAddr, Vec<u8>)]) -> bool,
) -> Vec<(SocketAddr, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut data = Vec::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        while let Some(t) = client.poll_transmit() {
            match io {
                Io::Udp(s) => {
                    s.send_to(&t.data, t.destination).await.unwrap();
                }
                Io::Stream(s) => s.write_all(&t.data).await.unwrap(),
            }
        }
        while let Some(e) = client.poll_event() {
            events.push(e);
        }
        if done(events, &data) {
            return data;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; events so far: {events:?}"
        );
        let timer = client
            .poll_timeout()
            .map_or(deadline, tokio::time::Instant::from_std)
            .min(deadline);
        tokio::select! {
            () = tokio::time::sleep_until(timer) => client.handle_timeout(Instant::now()),
            r = async {
                match io {
                    Io::Udp(s) => s.recv(&mut buf).await,
                    Io::Stream(s) => s.read(&mut buf).await,
                }
            } => {
                let n = r.unwrap();
                match io {
                    Io::Udp(_) => {
                        if let Some((p, d)) = client.handle_datagram(Instant::now(), &buf[..n]) {
                            data.push((p, d.to_vec()));
                        }
                    }
                    Io::Stream(_) => {
                        assert!(n > 0, "server closed the connection");
                        client.handle_stream(Instant::now(), &buf[..n], |p, d| data.push((p, d.to_vec()))).unwrap();
                    }
                }
            }
        }
    }
}

async fn server(tcp: bool, tls: Option<Arc<rustls::ServerConfig>>) -> ServerHandle {
    let mut opts = ServerOptions::new("127.0.0.1:0".parse().unwrap());
    opts.turn.users.insert("alice".into(), "wonderland".into());
    opts.turn.peer_policy.allow_loopback = true;
    if tcp {
        opts.tcp.push("127.0.0.1:0".parse().unwrap());
    }
    if let Some(t) = tls {
        opts.tls.push("127.0.0.1:0".parse().unwrap());
        opts.tls_config = Some(t);
    }
    spawn(opts).await.unwrap()
}

/// Allocate, relay through a permission (Send/Data indications) and a channel
/// (ChannelData) to a plain UDP peer and back, then deallocate.
async fn exercise(
    handle: &ServerHandle,
    mut io: Io,
    transport: Transport,
    server: SocketAddr,
    local: SocketAddr,
) {
    let config = ClientConfig::new(local, server, transport, "alice", "wonderland");
    let mut client = Client::new(config, 1);
    let mut events = Vec::new();
    client.allocate(Instant::now());
    pump(&mut client, &mut io, &mut events, |e, _| {
        e.iter().any(|e| matches!(e, Event::Allocated { .. }))
    })
    .await;
    let relayed = client.relayed()[0];
    assert_eq!(relayed.ip(), server.ip());

    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    client
        .create_permission(Instant::now(), peer_addr.ip())
        .unwrap();
    pump(&mut client, &mut io, &mut events, |e, _| {
        e.iter().any(|e| matches!(e, Event::PermissionCreated(_)))
    })
    .await;

    // Send indication -> peer.
    let t = client.send_to(peer_addr, b"indication").unwrap();
    match &mut io {
        Io::Udp(s) => {
            s.send_to(&t.data, server).await.unwrap();
        }
        Io::Stream(s) => s.write_all(&t.data).await.unwrap(),
    }
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&buf[..n], from), (&b"indication"[..], relayed));
    // Peer -> Data indication.
    peer.send_to(b"data-indication", relayed).await.unwrap();
    let got = pump(&mut client, &mut io, &mut events, |_, d| !d.is_empty()).await;
    assert_eq!(got, [(peer_addr, b"data-indication".to_vec())]);

    // Channel.
    let ch = client.bind_channel(Instant::now(), peer_addr).unwrap();
    pump(&mut client, &mut io, &mut events, |e, _| {
        e.iter().any(|e| matches!(e, Event::ChannelBound { .. }))
    })
    .await;
    for i in 0..20u8 {
        let t = client.send_to(peer_addr, &[i; 33]).unwrap();
        assert_eq!(&t.data[..2], &ch.to_be_bytes());
        match &mut io {
            Io::Udp(s) => {
                s.send_to(&t.data, server).await.unwrap();
            }
            Io::Stream(s) => s.write_all(&t.data).await.unwrap(),
        }
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&buf[..n], from), (&[i; 33][..], relayed));
        peer.send_to(&[i; 7], relayed).await.unwrap();
        let got = pump(&mut client, &mut io, &mut events, |_, d| !d.is_empty()).await;
        assert_eq!(got, [(peer_addr, vec![i; 7])]);
    }
    let stats = handle.stats();
    assert_eq!(stats.allocations, 1);
    assert_eq!(stats.packets_to_peers, 21);
    assert_eq!(stats.packets_to_clients, 21);

    client.deallocate(Instant::now());
    pump(&mut client, &mut io, &mut events, |e, _| {
        e.contains(&Event::Deallocated)
    })
    .await;
    assert_eq!(client.state(), &ClientState::Closed);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(handle.stats().allocations, 0);
}

#[tokio::test]
async fn turn_over_udp_relays_both_ways() {
    let handle = server(false, None).await;
    let server_addr = handle.udp_addrs()[0];
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    exercise(&handle, Io::Udp(sock), Transport::Udp, server_addr, local).await;
    handle.shutdown().await;
}

#[tokio::test]
async fn turn_over_tcp_relays_both_ways() {
    let handle = server(true, None).await;
    let server_addr = handle.tcp_addrs()[0];
    let stream = TcpStream::connect(server_addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    exercise(
        &handle,
        Io::Stream(Box::new(stream)),
        Transport::Tcp,
        server_addr,
        local,
    )
    .await;
    handle.shutdown().await;
}

#[tokio::test]
async fn turn_over_tls_relays_both_ways() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("floe-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let tls = floe_server::load_tls_config(&cert_path, &key_path).unwrap();
    let handle = server(false, Some(tls)).await;
    let server_addr = handle.tls_addrs()[0];

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server_addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    exercise(
        &handle,
        Io::Stream(Box::new(stream)),
        Transport::Tcp,
        server_addr,
        local,
    )
    .await;
    handle.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn binding_requests_are_answered_and_counted() {
    let handle = server(false, None).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 64];
    let req = floe_stun::MessageBuilder::new(
        &mut buf,
        floe_stun::MessageType::BINDING_REQUEST,
        floe_stun::TransactionId([3; 12]),
    )
    .unwrap()
    .finish()
    .to_vec();
    sock.send_to(&req, handle.udp_addrs()[0]).await.unwrap();
    let mut out = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut out))
        .await
        .unwrap()
        .unwrap();
    let msg = floe_stun::Message::parse(&out[..n]).unwrap();
    let mapped = msg
        .get::<floe_stun::attributes::XorMappedAddress>()
        .unwrap()
        .unwrap();
    assert_eq!(mapped.0, sock.local_addr().unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(handle.stats().bindings, 1);
    handle.shutdown().await;
}

#[tokio::test]
async fn rfc_5780_alternate_address_answers_change_requests() {
    let mut opts = ServerOptions::new("127.0.0.1:0".parse().unwrap());
    opts.alternate = Some("127.0.0.2:0".parse().unwrap());
    let handle = spawn(opts).await.unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 64];
    let mut b = floe_stun::MessageBuilder::new(
        &mut buf,
        floe_stun::MessageType::BINDING_REQUEST,
        floe_stun::TransactionId([4; 12]),
    )
    .unwrap();
    b.add(&floe_stun::attributes::ChangeRequest {
        change_ip: true,
        change_port: true,
    })
    .unwrap();
    let req = b.finish().to_vec();
    sock.send_to(&req, handle.udp_addrs()[0]).await.unwrap();
    let mut out = [0u8; 512];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut out))
        .await
        .unwrap()
        .unwrap();
    let msg = floe_stun::Message::parse(&out[..n]).unwrap();
    let other = msg
        .get::<floe_stun::attributes::OtherAddress>()
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(from, other, "changed IP and port = OTHER-ADDRESS");
    assert_eq!(from.ip().to_string(), "127.0.0.2");
    handle.shutdown().await;
}
