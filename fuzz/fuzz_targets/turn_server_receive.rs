//! The TURN server core under arbitrary client and peer traffic, authenticated and not.
//!
//! The input is a sequence of operations. Each is a byte selecting it, a length (one
//! byte, or 0xFF and a big-endian u16) and that many bytes, the chunk:
//! 0: the chunk is a raw datagram from a client; 1: a raw datagram from a peer to a
//! relayed address; 2: a request, correctly signed with valid credentials and a valid
//! nonce, whose method and attributes (type, length, value triples, the length read as
//! above) come from the input, so the authenticated code paths see hostile content;
//! 3: time passes. Bit 7 of the selector sends over TCP.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_stun::attributes::{Nonce, Realm, Username};
use floe_stun::credentials::Algorithm;
use floe_stun::{AttrType, Class, IntegrityKey, Message, MessageBuilder, MessageType, Method, TransactionId};
use floe_turn::server::{PortPool, Server, ServerConfig};
use floe_turn::Transport;
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let mut config = ServerConfig::default();
    config.users.insert("alice".into(), "pw".into());
    config.peer_policy.allow_loopback = true;
    config.max_allocations = 4;
    config.max_permissions = 4;
    config.max_channels = 4;
    let pool = PortPool::new(Some("192.0.2.1".parse().unwrap()), Some("2001:db8::1".parse().unwrap()), 50_000..=50_010, rand_chacha::ChaCha8Rng::seed_from_u64(1));
    let mut server = Server::new(config, pool, now, 1);
    let listen: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let client: SocketAddr = "198.51.100.1:4000".parse().unwrap();
    let key = IntegrityKey::long_term("alice", "floe", "pw", Algorithm::Md5).unwrap();
    let mut nonce = String::new();
    let mut relayed: Vec<SocketAddr> = Vec::new();
    let mut tid = 0u8;
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        let (len, tail) = take_len(tail);
        let chunk = tail.get(..len).unwrap_or(tail);
        rest = tail.get(chunk.len()..).unwrap_or(&[]);
        let transport = if op & 0x80 != 0 { Transport::Tcp } else { Transport::Udp };
        match op & 3 {
            0 => server.handle_client(now, transport, listen, client, chunk),
            1 => {
                let to = relayed.first().copied().unwrap_or("192.0.2.1:50000".parse().unwrap());
                server.handle_peer(now, to, "127.0.0.1:9".parse().unwrap(), chunk);
            }
            2 => {
                let method = Method::new(u16::from(chunk.first().copied().unwrap_or(3)) & 0xF).unwrap();
                tid = tid.wrapping_add(1);
                let mut buf = vec![0u8; 4096];
                let Ok(mut b) = MessageBuilder::new(&mut buf, MessageType::new(method, Class::Request), TransactionId([tid; 12])) else { continue };
                let mut attrs = chunk.get(1..).unwrap_or(&[]);
                while let [t0, t1, more @ ..] = attrs {
                    if more.is_empty() {
                        break;
                    }
                    let (l, more) = take_len(more);
                    let (value, next) = more.split_at(l.min(more.len()));
                    let _ = b.add_raw(AttrType(u16::from_be_bytes([*t0, *t1])), value);
                    attrs = next;
                }
                let _ = b.add(&Username("alice")).and_then(|b| b.add(&Realm("floe"))).and_then(|b| b.add(&Nonce(&nonce)));
                if b.add_message_integrity(&key).is_err() {
                    continue;
                }
                let n = b.len();
                server.handle_client(now, transport, listen, client, &buf[..n]);
            }
            _ => now += Duration::from_secs(u64::from(chunk.first().copied().unwrap_or(1)) * 10),
        }
        server.handle_timeout(now);
        while let Some(t) = server.poll_transmit() {
            // Learn the nonce and relayed addresses so later operations go deeper.
            if let Ok(m) = Message::parse(&t.data) {
                if let Ok(Some(n)) = m.get::<Nonce>() {
                    nonce = n.0.to_owned();
                }
                for r in m.get_all::<floe_stun::attributes::XorRelayedAddress>().flatten() {
                    relayed.push(r.0);
                }
            }
        }
        if relayed.len() > 16 {
            relayed.clear();
        }
    }
    let _ = server.stats();
});

/// A length: one byte, or 0xFF followed by a big-endian u16, so that chunks and attribute
/// values can be longer than 254 bytes (a 600-byte USERNAME, a message carrying one).
fn take_len(bytes: &[u8]) -> (usize, &[u8]) {
    match bytes {
        [0xFF, hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
        [n, rest @ ..] => (usize::from(*n), rest),
        [] => (0, bytes),
    }
}
