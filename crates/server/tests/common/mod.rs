//! A small STUN client for the floe-server tests: long-term credentials, signed once the
//! first 401 has given the realm and nonce.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use floe_stun::attributes::{ErrorCode, Nonce, Realm, Username};
use floe_stun::credentials::Algorithm;
use floe_stun::{Class, IntegrityKey, Message, MessageBuilder, MessageType, Method, TransactionId};
use tokio::net::UdpSocket;

pub(crate) const USER: &str = "alice";
pub(crate) const PASS: &str = "wonderland";

/// A client socket that signs its requests with the realm and nonce of the first 401.
pub(crate) struct Client {
    pub(crate) sock: UdpSocket,
    server: SocketAddr,
    nonce: Option<(String, String)>,
    next_id: u8,
}

impl Client {
    pub(crate) async fn new(server: SocketAddr) -> Client {
        Client {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server,
            nonce: None,
            next_id: 1,
        }
    }

    /// Sends a request built by `fill` (signed once a nonce is known) and returns the
    /// answer, retrying once after a 401 that brings the nonce.
    pub(crate) async fn request(
        &mut self,
        method: Method,
        fill: impl Fn(&mut MessageBuilder<'_>),
    ) -> Vec<u8> {
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

    pub(crate) async fn recv(&self) -> Vec<u8> {
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
