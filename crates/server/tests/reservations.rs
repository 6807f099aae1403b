//! RESERVATION-TOKENs (RFC 8656 §7.2, EVEN-PORT with R: RTP/RTCP port pairs) with two
//! SO_REUSEPORT workers. The second Allocate comes from another client port, so the
//! kernel may hand it to the other worker; it must still get port + 1, and the relay
//! socket it takes over must carry data to it.

use std::net::SocketAddr;
use std::time::Duration;

use floe_server::{spawn, ServerOptions};
use floe_stun::attributes::{
    Data, ErrorCode, EvenPort, Nonce, Realm, RequestedTransport, ReservationToken, Username,
    XorPeerAddress, XorRelayedAddress,
};
use floe_stun::credentials::Algorithm;
use floe_stun::{Class, IntegrityKey, Message, MessageBuilder, MessageType, Method, TransactionId};
use tokio::net::UdpSocket;

const USER: &str = "alice";
const PASS: &str = "wonderland";

/// A client socket that signs its requests with the realm and nonce of the first 401.
struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    nonce: Option<(String, String)>,
    next_id: u8,
}

impl Client {
    async fn new(server: SocketAddr) -> Client {
        Client {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server,
            nonce: None,
            next_id: 1,
        }
    }

    /// Sends a request built by `fill` (signed once a nonce is known) and returns the
    /// answer, retrying once after a 401 that brings the nonce.
    async fn request(&mut self, method: Method, fill: impl Fn(&mut MessageBuilder<'_>)) -> Vec<u8> {
        for _ in 0..2 {
            self.next_id += 1;
            let mut buf = vec![0u8; 512];
            let mut b = MessageBuilder::new(
                &mut buf,
                MessageType::new(method, Class::Request),
                TransactionId([self.next_id; 12]),
            )
            .unwrap();
            fill(&mut b);
            if let Some((realm, nonce)) = &self.nonce {
                let key = IntegrityKey::long_term(USER, realm, PASS, Algorithm::Md5).unwrap();
                b.add(&Username(USER))
                    .unwrap()
                    .add(&Realm(realm))
                    .unwrap()
                    .add(&Nonce(nonce))
                    .unwrap();
                b.add_message_integrity(&key).unwrap();
            }
            let req = b.finish().to_vec();
            self.sock.send_to(&req, self.server).await.unwrap();
            let answer = self.recv().await;
            let msg = Message::parse(&answer).unwrap();
            let code = msg.get::<ErrorCode>().unwrap().map(|e| e.code);
            if code == Some(401) && self.nonce.is_none() {
                let realm = msg.get::<Realm>().unwrap().unwrap().0.to_owned();
                let nonce = msg.get::<Nonce>().unwrap().unwrap().0.to_owned();
                self.nonce = Some((realm, nonce));
                continue;
            }
            return answer;
        }
        panic!("still unauthorized after the nonce");
    }

    async fn recv(&self) -> Vec<u8> {
        let mut out = vec![0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(5), self.sock.recv(&mut out))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no answer within 5 s from {}",
                    self.sock.local_addr().unwrap()
                )
            })
            .unwrap();
        out.truncate(n);
        out
    }
}

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
