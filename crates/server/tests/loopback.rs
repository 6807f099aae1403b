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
