//! RFC 8656 §11.5 on real sockets (Linux): data relayed to a closed port on loopback draws
//! an ICMP port-unreachable; floe-server reads it from the relay socket's error queue and
//! tells the client in a Data indication with XOR-PEER-ADDRESS and ICMP.

#![cfg(target_os = "linux")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Client;
use floe_server::{spawn, ServerOptions};
use floe_stun::attributes::{Data, Icmp, RequestedTransport, XorPeerAddress, XorRelayedAddress};
use floe_stun::{Class, Message, MessageBuilder, MessageType, Method, TransactionId};

#[tokio::test]
async fn a_port_unreachable_for_relayed_data_reaches_the_client_as_icmp() {
    let mut opts = ServerOptions::new("127.0.0.1:0".parse().unwrap());
    opts.turn
        .users
        .insert(common::USER.into(), common::PASS.into());
    opts.turn.peer_policy.allow_loopback = true;
    opts.relay_ipv4 = Some("127.0.0.1".parse().unwrap());
    let server = spawn(opts).await.unwrap();
    // A port nothing listens on: bound, read, released.
    let closed: SocketAddr = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };

    let mut client = Client::new(server.udp_addrs()[0]).await;
    let answer = client
        .request(Method::ALLOCATE, |b| {
            b.add(&RequestedTransport::UDP).unwrap();
        })
        .await;
    let relayed = Message::parse(&answer)
        .unwrap()
        .get::<XorRelayedAddress>()
        .unwrap()
        .unwrap()
        .0;
    assert!(relayed.ip().is_loopback());
    let answer = client
        .request(Method::CREATE_PERMISSION, |b| {
            b.add(&XorPeerAddress(closed)).unwrap();
        })
        .await;
    assert_eq!(Message::parse(&answer).unwrap().class(), Class::Success);

    // A Send indication to the closed port, a few times (ICMP is rate-limited).
    let mut got = None;
    for i in 0..10u8 {
        let mut buf = vec![0u8; 128];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(Method::SEND, Class::Indication),
            TransactionId([i; 12]),
        )
        .unwrap();
        b.add(&XorPeerAddress(closed)).unwrap();
        b.add(&Data(b"anyone there?")).unwrap();
        let send = b.finish().to_vec();
        client
            .sock
            .send_to(&send, server.udp_addrs()[0])
            .await
            .unwrap();
        let mut reply = vec![0u8; 512];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(300), client.sock.recv(&mut reply)).await
        {
            reply.truncate(n);
            got = Some(reply);
            break;
        }
    }
    let reply = got.expect("no Data indication with ICMP within 10 tries");
    let msg = Message::parse(&reply).unwrap();
    assert_eq!(msg.method(), Method::DATA);
    assert_eq!(msg.class(), Class::Indication);
    assert_eq!(msg.get::<XorPeerAddress>().unwrap().unwrap().0, closed);
    let icmp = msg.get::<Icmp>().unwrap().unwrap();
    assert_eq!(
        (icmp.icmp_type, icmp.code),
        (3, 3),
        "ICMPv4 port unreachable"
    );
    assert!(msg.get::<Data>().unwrap().is_none());
    let stats = server.current_stats().await;
    assert_eq!(stats.icmp_to_clients, 1);
    server.shutdown().await;
}
