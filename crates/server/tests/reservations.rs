//! RESERVATION-TOKENs (RFC 8656 §7.2, EVEN-PORT with R: RTP/RTCP port pairs) with two
//! SO_REUSEPORT workers. The second Allocate comes from another client port, so the
//! kernel may hand it to the other worker; it must still get port + 1, and the relay
//! socket it takes over must carry data to it.

use std::net::SocketAddr;

mod common;

use common::{Client, PASS, USER};
use floe_server::{spawn, ServerOptions};
use floe_stun::attributes::{
    Data, ErrorCode, EvenPort, RequestedTransport, ReservationToken, XorPeerAddress,
    XorRelayedAddress,
};
use floe_stun::{Class, Message, Method};
use tokio::net::UdpSocket;

fn relayed(answer: &[u8]) -> SocketAddr {
    let msg = Message::parse(answer).unwrap();
    assert_eq!(msg.class(), Class::Success, "{msg:?}");
    msg.get::<XorRelayedAddress>().unwrap().unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_token_is_redeemed_whichever_worker_the_second_allocate_reaches() {
    let mut opts = ServerOptions::new("127.0.0.1:0".parse().unwrap());
    opts.turn.users.insert(USER.into(), PASS.into());
    opts.turn.peer_policy.allow_loopback = true;
    opts.relay_ipv4 = Some("127.0.0.1".parse().unwrap());
    // Every client here is one IP asking for a challenge first: 48 in a few ms.
    opts.turn.max_unauthenticated_per_second = 1_000;
    opts.workers = 2;
    let server = spawn(opts).await.unwrap();
    assert_eq!(server.workers(), 2);
    let addr = server.udp_addrs()[0];
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Clients stay open to the end, so no port (and 5-tuple) is used twice.
    let mut done = Vec::new();
    // Sixteen pairs, each from two fresh client ports: with two workers, about half
    // of the second Allocates reach the worker that did not make the token.
    for round in 0..16 {
        let mut first = Client::new(addr).await;
        let answer = first
            .request(Method::ALLOCATE, |b| {
                b.add(&RequestedTransport::UDP)
                    .unwrap()
                    .add(&EvenPort { reserve: true })
                    .unwrap();
            })
            .await;
        let rtp = relayed(&answer);
        assert_eq!(rtp.port() % 2, 0, "round {round}");
        let token = Message::parse(&answer)
            .unwrap()
            .get::<ReservationToken>()
            .unwrap()
            .unwrap();

        let mut second = Client::new(addr).await;
        let answer = second
            .request(Method::ALLOCATE, |b| {
                b.add(&RequestedTransport::UDP)
                    .unwrap()
                    .add(&token)
                    .unwrap();
            })
            .await;
        let rtcp = relayed(&answer);
        assert_eq!(
            rtcp,
            SocketAddr::new(rtp.ip(), rtp.port() + 1),
            "round {round}"
        );

        // The reserved socket now carries the second allocation's traffic.
        let peer_addr = peer.local_addr().unwrap();
        let answer = second
            .request(Method::CREATE_PERMISSION, |b| {
                b.add(&XorPeerAddress(peer_addr)).unwrap();
            })
            .await;
        assert_eq!(Message::parse(&answer).unwrap().class(), Class::Success);
        peer.send_to(b"rtcp", rtcp).await.unwrap();
        let data = second.recv().await;
        let msg = Message::parse(&data).unwrap();
        assert_eq!(
            msg.get::<Data>().unwrap().unwrap().0,
            b"rtcp",
            "round {round}"
        );

        // Once only.
        let mut third = Client::new(addr).await;
        let answer = third
            .request(Method::ALLOCATE, |b| {
                b.add(&RequestedTransport::UDP)
                    .unwrap()
                    .add(&token)
                    .unwrap();
            })
            .await;
        let msg = Message::parse(&answer).unwrap();
        assert_eq!(msg.get::<ErrorCode>().unwrap().unwrap().code, 508);
        done.extend([first, second, third]);
    }
    server.shutdown().await;
}
