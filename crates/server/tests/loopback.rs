//! floe-server on real loopback sockets: STUN Binding and RFC 5780. The TURN scenarios
//! over UDP, TCP and TLS live in `tests/tests/turn_loopback.rs` (floe-tests), which
//! shares its client driver with the coturn interop suite.

use std::time::Duration;

use floe_server::{spawn, ServerOptions};
use tokio::net::UdpSocket;

async fn server() -> floe_server::ServerHandle {
    let mut opts = ServerOptions::new("127.0.0.1:0".parse().unwrap());
    opts.turn.users.insert("alice".into(), "wonderland".into());
    spawn(opts).await.unwrap()
}

#[tokio::test]
async fn binding_requests_are_answered_and_counted() {
    let handle = server().await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&binding(3), handle.udp_addrs()[0])
        .await
        .unwrap();
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

/// A Binding request with transaction id `k`.
fn binding(k: u8) -> Vec<u8> {
    let mut buf = [0u8; 64];
    floe_stun::MessageBuilder::new(
        &mut buf,
        floe_stun::MessageType::BINDING_REQUEST,
        floe_stun::TransactionId([k; 12]),
    )
    .unwrap()
    .finish()
    .to_vec()
}

/// The cores read their listener sockets themselves: with two workers and two listeners
/// (IPv4 and IPv6), bursts from many senders to both are all answered, each from the
/// listener it was sent to, with the sender's own address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_answer_bursts_on_two_listeners_from_each_listener() {
    const BURST: u8 = 40;
    let mut opts = ServerOptions::new("127.0.0.1:0".parse().unwrap());
    opts.udp.push("[::1]:0".parse().unwrap());
    opts.workers = if cfg!(target_os = "linux") { 2 } else { 1 };
    let handle = spawn(opts).await.unwrap();
    let listeners = handle.udp_addrs().to_vec();
    assert_eq!(listeners.len(), 2);
    let mut clients = Vec::new();
    for (i, to) in listeners.iter().cycle().take(16).enumerate() {
        let bind = if to.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let sock = UdpSocket::bind(bind).await.unwrap();
        sock.connect(to).await.unwrap();
        clients.push((i, sock));
    }
    for (_, sock) in &clients {
        for k in 0..BURST {
            sock.send(&binding(k)).await.unwrap();
        }
    }
    for (i, sock) in &clients {
        let mut seen = [false; BURST as usize];
        let mut out = [0u8; 512];
        for _ in 0..BURST {
            // A connected socket only takes datagrams from the listener it sent to.
            let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut out))
                .await
                .unwrap_or_else(|_| panic!("client {i}: an answer is missing"))
                .unwrap();
            let msg = floe_stun::Message::parse(&out[..n]).unwrap();
            let mapped = msg
                .get::<floe_stun::attributes::XorMappedAddress>()
                .unwrap()
                .unwrap();
            assert_eq!(mapped.0, sock.local_addr().unwrap(), "client {i}");
            let k = msg.transaction_id().0[0];
            assert!(!seen[usize::from(k)], "client {i}: answer {k} twice");
            seen[usize::from(k)] = true;
        }
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(handle.stats().bindings, 16 * u64::from(BURST));
    handle.shutdown().await;
}
