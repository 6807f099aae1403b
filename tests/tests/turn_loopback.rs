//! floe-server on loopback, driven by the floe-turn client over UDP, TCP and TLS.

use std::sync::Arc;
use std::time::Duration;

use floe_server::{spawn, ServerHandle, ServerOptions};
use floe_tests::turn_driver::{exercise, self_signed, tls_connect, Driven, Io};
use floe_turn::client::{Client, ClientConfig};
use floe_turn::Transport;
use tokio::net::{TcpStream, UdpSocket};

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

async fn check(
    handle: &ServerHandle,
    io: Io,
    transport: Transport,
    server: std::net::SocketAddr,
    local: std::net::SocketAddr,
) {
    let config = ClientConfig::new(local, server, transport, "alice", "wonderland");
    let mut d = Driven::new(Client::new(config, 1), io);
    exercise(&mut d, "127.0.0.1".parse().unwrap()).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stats = handle.stats();
    assert_eq!(stats.allocations, 0, "deallocated");
    assert_eq!(stats.allocations_created, 1);
    assert_eq!(stats.packets_to_peers, 21);
    assert_eq!(stats.packets_to_clients, 21);
}

#[tokio::test]
async fn turn_over_udp_relays_both_ways() {
    let handle = server(false, None).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    check(
        &handle,
        Io::Udp(sock),
        Transport::Udp,
        handle.udp_addrs()[0],
        local,
    )
    .await;
    handle.shutdown().await;
}

#[tokio::test]
async fn turn_over_tcp_relays_both_ways() {
    let handle = server(true, None).await;
    let stream = TcpStream::connect(handle.tcp_addrs()[0]).await.unwrap();
    let local = stream.local_addr().unwrap();
    check(
        &handle,
        Io::Stream(Box::new(stream)),
        Transport::Tcp,
        handle.tcp_addrs()[0],
        local,
    )
    .await;
    handle.shutdown().await;
}

#[tokio::test]
async fn turn_over_tls_relays_both_ways() {
    let (dir, cert, key, der) = self_signed("loopback-tls");
    let handle = server(
        false,
        Some(floe_server::load_tls_config(&cert, &key).unwrap()),
    )
    .await;
    let (io, local) = tls_connect(handle.tls_addrs()[0], &der).await;
    check(&handle, io, Transport::Tcp, handle.tls_addrs()[0], local).await;
    handle.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
