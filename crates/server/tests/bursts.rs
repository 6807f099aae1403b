//! Bursts of one flow through a relay, both ways: the server sends runs of equal-sized
//! datagrams of one flow as one segmentation-offload send where the kernel has UDP GSO
//! (crates/server/src/send.rs). Every datagram must arrive whole, once and in order, and
//! a shorter datagram in the middle of a run must keep its length.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Client;
use floe_server::{spawn, ServerOptions};
use floe_stun::attributes::{ChannelNumber, RequestedTransport, XorPeerAddress, XorRelayedAddress};
use floe_stun::{Class, Message, Method};
use tokio::net::UdpSocket;

const CHANNEL: u16 = 0x4000;
/// Datagrams per burst: enough for several GSO runs (at most 64 segments each), few
/// enough for a default 208 KiB receive buffer.
const BURST: u32 = 120;

/// Payload `i` of a burst: its sequence number, then filler; every tenth is shorter.
fn payload(i: u32) -> Vec<u8> {
    let len = if i % 10 == 9 { 37 } else { 100 };
    let mut p = vec![(i % 251) as u8; len];
    p[..4].copy_from_slice(&i.to_be_bytes());
    p
}

async fn recv(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("nothing within 5 s")
        .unwrap();
    buf.truncate(n);
    buf
}

#[tokio::test]
async fn bursts_arrive_whole_once_and_in_order_both_ways() {
    let mut opts = ServerOptions::new("127.0.0.1:0".parse().unwrap());
    opts.turn
        .users
        .insert(common::USER.into(), common::PASS.into());
    opts.turn.peer_policy.allow_loopback = true;
    opts.relay_ipv4 = Some("127.0.0.1".parse().unwrap());
    let server = spawn(opts).await.unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();

    let mut client = Client::new(server.udp_addrs()[0]).await;
    let answer = client
        .request(Method::ALLOCATE, |b| {
            b.add(&RequestedTransport::UDP).unwrap();
        })
        .await;
    let relayed: SocketAddr = Message::parse(&answer)
        .unwrap()
        .get::<XorRelayedAddress>()
        .unwrap()
        .unwrap()
        .0;
    let answer = client
        .request(Method::CHANNEL_BIND, |b| {
            b.add(&ChannelNumber(CHANNEL))
                .unwrap()
                .add(&XorPeerAddress(peer_addr))
                .unwrap();
        })
        .await;
    assert_eq!(Message::parse(&answer).unwrap().class(), Class::Success);

    // Up: ChannelData frames from the client, datagrams at the peer.
    for i in 0..BURST {
        let p = payload(i);
        let mut frame = Vec::with_capacity(4 + p.len());
        frame.extend_from_slice(&CHANNEL.to_be_bytes());
        frame.extend_from_slice(&(p.len() as u16).to_be_bytes());
        frame.extend_from_slice(&p);
        client
            .sock
            .send_to(&frame, server.udp_addrs()[0])
            .await
            .unwrap();
    }
    for i in 0..BURST {
        assert_eq!(recv(&peer).await, payload(i), "up, datagram {i}");
    }

    // Down: datagrams from the peer, ChannelData frames at the client (over UDP, no
    // padding: RFC 8656 §12.5).
    for i in 0..BURST {
        peer.send_to(&payload(i), relayed).await.unwrap();
    }
    for i in 0..BURST {
        let frame = recv(&client.sock).await;
        let p = payload(i);
        assert_eq!(
            frame.get(..2),
            Some(&CHANNEL.to_be_bytes()[..]),
            "down, datagram {i}"
        );
        assert_eq!(frame.get(2..4), Some(&(p.len() as u16).to_be_bytes()[..]));
        assert_eq!(frame.get(4..), Some(&p[..]), "down, datagram {i}");
    }
    server.shutdown().await;
}
