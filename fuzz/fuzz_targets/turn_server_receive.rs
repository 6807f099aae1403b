//! The TURN server core under arbitrary client and peer traffic, authenticated and not,
//! with the DEFAULT peer policy plus an operator deny range, checking properties:
//!
//! - nothing is ever sent from a relayed address to a peer that the policy refuses, by
//!   the policy itself and by an independent oracle written here (loopback, private,
//!   link-local, unspecified, multicast, broadcast, and the deny range 198.51.100.0/24,
//!   in every IPv6 spelling of IPv4 that the oracle knows);
//! - every response the server sends parses with the strict options (FINGERPRINT
//!   required and checked, no duplicate attributes), and every other message to a client
//!   is valid STUN or ChannelData;
//! - with fleet quotas (when the input's first byte is odd), the places the fleet
//!   granted and the server kept, minus those it gave back, always equal the live
//!   allocations: no place leaks and none goes back twice, whatever the answers (each
//!   from the input, given one operation late so time can pass and Allocates time out);
//! - TURN-TCP (RFC 6062, signed Connect/ConnectionBind requests over TCP come from
//!   operation 2): the runtime's answers to Connects and peers connecting to relayed
//!   addresses come from the input too; every Bind or Close names a CONNECTION-ID the
//!   core handed out, and an allocation never holds more than MAX_TCP_CONNECTIONS.
//!
//! The input is a sequence of operations; each starts with a byte selecting it (low
//! three bits; bit 7 picks TCP) and a length (one byte, or 0xFF and a big-endian u16,
//! so a chunk or an attribute value can pass 254 bytes):
//! 0: a raw datagram from a client; 1: a raw datagram from a peer (address from the
//! input) to a relayed address; 2: a request correctly signed with valid credentials and
//! a valid nonce, whose method and attributes (type, length, value triples) come from the
//! input; 3: time passes; 4: a signed CreatePermission, 5: a Send indication and 6: a
//! signed ChannelBind, each to a peer address built from the input in one of many IPv6
//! spellings of IPv4; 7: ChannelData on a channel number from the input.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use floe_stun::attributes::{
    ChannelNumber, Data, Nonce, Realm, Username, XorPeerAddress, XorRelayedAddress,
};
use floe_stun::credentials::Algorithm;
use floe_stun::{
    AttrType, Class, IntegrityKey, Message, MessageBuilder, MessageType, Method, ParseOptions,
    TransactionId,
};
use floe_turn::policy::{IpRange, PeerPolicy};
use floe_turn::server::{
    FleetAnswer, FleetOp, PortPool, Server, ServerConfig, TcpOp, MAX_TCP_CONNECTIONS,
};
use floe_turn::{ChannelData, Transport};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;

/// A peer address from the input: an IPv4 address in one of the spellings a hostile
/// client would try, or raw IPv6.
fn peer_from(bytes: &[u8]) -> SocketAddr {
    let mut b = [0u8; 20];
    for (d, s) in b.iter_mut().zip(bytes) {
        *d = *s;
    }
    let [k, p0, p1, a, bb, c, d, rest @ ..] = b;
    // Bias towards interesting IPv4 addresses: loopback, private, the deny range.
    let v4 = match k >> 4 {
        0 => Ipv4Addr::new(127, bb, c, d),
        1 => Ipv4Addr::new(10, bb, c, d),
        2 => Ipv4Addr::new(192, 168, c, d),
        3 => Ipv4Addr::new(198, 51, 100, d),
        4 => Ipv4Addr::new(169, 254, c, d),
        5 => Ipv4Addr::new(0, 0, 0, d),
        _ => Ipv4Addr::new(a, bb, c, d),
    };
    let [o0, o1, o2, o3] = v4.octets();
    let s = |hi: u8, lo: u8| u16::from_be_bytes([hi, lo]);
    let ip: IpAddr = match k & 0xF {
        0 => v4.into(),
        1 => v4.to_ipv6_mapped().into(),
        2 => Ipv6Addr::new(0, 0, 0, 0, 0, 0, s(o0, o1), s(o2, o3)).into(),
        3 => Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, s(o0, o1), s(o2, o3)).into(),
        4 => Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, s(o0, o1), s(o2, o3)).into(),
        5 => Ipv6Addr::new(0x2002, s(o0, o1), s(o2, o3), 0, 0, 0, 0, 1).into(),
        6 => Ipv6Addr::new(0x2001, 0, 1, 2, 3, 4, !s(o0, o1), !s(o2, o3)).into(),
        7 => Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, s(o0, o1), s(o2, o3)).into(),
        8 => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0x5efe, s(o0, o1), s(o2, o3)).into(),
        _ => {
            let mut o = [0u8; 16];
            for (d, s) in o.iter_mut().zip(rest.iter().chain([a, bb, c, d].iter())) {
                *d = *s;
            }
            Ipv6Addr::from(o).into()
        }
    };
    SocketAddr::new(ip, u16::from_be_bytes([p0, p1]).max(1))
}

/// An oracle written independently of floe-turn's policy: the IPv4 addresses a packet
/// to `ip` may reach, by the forms the standard library and RFC 6052/3056/4380 define.
fn oracle_refuses(ip: IpAddr) -> bool {
    let refused_v4 = |v4: Ipv4Addr| {
        let [a, b, ..] = v4.octets();
        v4.is_loopback()
            || v4.is_private()
            || v4.is_link_local()
            || v4.is_unspecified()
            || v4.is_multicast()
            || v4.is_broadcast()
            || a == 0
            || a >= 240
            || (a == 100 && (64..128).contains(&b))
            || (a == 198 && b == 51 && v4.octets()[2] == 100)
    };
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let o = v6.octets();
            let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
            let embedded = match s {
                [0, 0, 0, 0, 0, 0xffff, ..] | [0, 0, 0, 0, 0xffff, 0, ..] => Some(tail),
                [0, 0, 0, 0, 0, 0, ..] if u32::from(tail) > 1 => Some(tail),
                [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(tail),
                [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
                [0x2001, 0, ..] => Some(Ipv4Addr::from(!u32::from(tail))),
                _ => None,
            };
            embedded.is_some_and(refused_v4)
                || v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || s[0] & 0xfe00 == 0xfc00
                || s[0] & 0xffc0 == 0xfe80
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let mut config = ServerConfig::default();
    config.users.insert("alice".into(), "pw".into());
    config.peer_policy.deny = vec!["198.51.100.0/24".parse::<IpRange>().unwrap()];
    config.max_allocations = 4;
    config.max_permissions = 4;
    config.max_channels = 4;
    config.fleet_quota = data.first().is_some_and(|b| b & 1 == 1);
    let policy: PeerPolicy = config.peer_policy.clone();
    let config_fleet = config.fleet_quota;
    let pool = PortPool::new(
        Some("192.0.2.1".parse().unwrap()),
        Some("2001:db8::1".parse().unwrap()),
        50_000..=50_010,
        rand_chacha::ChaCha8Rng::seed_from_u64(1),
    );
    let mut server = Server::new(config, pool, now, 1);
    let listen: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let client: SocketAddr = "203.0.113.1:4000".parse().unwrap();
    let key = IntegrityKey::long_term("alice", "floe", "pw", Algorithm::Md5).unwrap();
    let mut nonce = String::new();
    let mut relayed: Vec<SocketAddr> = Vec::new();
    let mut tid = 0u8;
    // Fleet: Acquires waiting for their answer, and the places the server holds.
    let mut acquires: Vec<u64> = Vec::new();
    let mut held: i64 = 0;
    // TURN-TCP: CONNECTION-IDs handed out, and Connects waiting for the runtime.
    let mut tcp_ids: std::collections::HashSet<u32> = std::collections::HashSet::new();
    let mut connecting: Vec<u32> = Vec::new();
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        for id in std::mem::take(&mut connecting) {
            let up = op & 0x40 != 0;
            let _ = server.handle_tcp_connected(now, id, up);
        }
        if op & 0x20 != 0 {
            // A peer connects to a relayed address.
            if let Some(&r) = relayed.first() {
                if let Some(id) = server.handle_tcp_peer_connection(now, r, peer_from(tail)) {
                    assert!(tcp_ids.insert(id), "CONNECTION-ID {id} handed out twice");
                }
            }
        }
        for ticket in std::mem::take(&mut acquires) {
            let answer = match (op >> 3) & 3 {
                0 | 1 => FleetAnswer::Granted,
                2 => FleetAnswer::UserFull,
                _ => FleetAnswer::Unavailable,
            };
            let taken = server.handle_fleet_answer(now, ticket, answer);
            if taken && answer == FleetAnswer::Granted {
                held += 1;
            }
        }
        let (len, tail) = take_len(tail);
        let chunk = tail.get(..len).unwrap_or(tail);
        rest = tail.get(chunk.len()..).unwrap_or(&[]);
        let transport = if op & 0x80 != 0 {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let mut signed = |method: Method, fill: &mut dyn FnMut(&mut MessageBuilder<'_>)| {
            tid = tid.wrapping_add(1);
            let mut buf = vec![0u8; 4096];
            let Ok(mut b) = MessageBuilder::new(
                &mut buf,
                MessageType::new(method, Class::Request),
                TransactionId([tid; 12]),
            ) else {
                return Vec::new();
            };
            fill(&mut b);
            let _ = b
                .add(&Username("alice"))
                .and_then(|b| b.add(&Realm("floe")))
                .and_then(|b| b.add(&Nonce(&nonce)));
            if b.add_message_integrity(&key).is_err() {
                return Vec::new();
            }
            b.finish().to_vec()
        };
        match op & 7 {
            0 => server.handle_client(now, transport, listen, client, chunk),
            1 => {
                let to = relayed
                    .first()
                    .copied()
                    .unwrap_or("192.0.2.1:50000".parse().unwrap());
                server.handle_peer(now, to, peer_from(chunk), chunk.get(20..).unwrap_or(&[]));
            }
            2 => {
                let method =
                    Method::new(u16::from(chunk.first().copied().unwrap_or(3)) & 0xF).unwrap();
                let mut attrs = chunk.get(1..).unwrap_or(&[]);
                let msg = signed(method, &mut |b| {
                    while let [t0, t1, more @ ..] = attrs {
                        if more.is_empty() {
                            break;
                        }
                        let (l, more) = take_len(more);
                        let (value, next) = more.split_at(l.min(more.len()));
                        let _ = b.add_raw(AttrType(u16::from_be_bytes([*t0, *t1])), value);
                        attrs = next;
                    }
                });
                server.handle_client(now, transport, listen, client, &msg);
            }
            3 => now += Duration::from_secs(u64::from(chunk.first().copied().unwrap_or(1)) * 10),
            4 => {
                let peer = peer_from(chunk);
                let msg = signed(Method::CREATE_PERMISSION, &mut |b| {
                    let _ = b.add(&XorPeerAddress(peer));
                });
                server.handle_client(now, transport, listen, client, &msg);
            }
            5 => {
                let peer = peer_from(chunk);
                let mut buf = vec![0u8; 2048];
                tid = tid.wrapping_add(1);
                if let Ok(mut b) = MessageBuilder::new(
                    &mut buf,
                    MessageType::new(Method::SEND, Class::Indication),
                    TransactionId([tid; 12]),
                ) {
                    let _ = b.add(&XorPeerAddress(peer));
                    let _ = b.add(&Data(chunk.get(20..).unwrap_or(&[])));
                    let n = b.len();
                    server.handle_client(now, transport, listen, client, &buf[..n]);
                }
            }
            6 => {
                let peer = peer_from(chunk);
                let number = 0x4000 | u16::from(chunk.first().copied().unwrap_or(0) & 0xF);
                let msg = signed(Method::CHANNEL_BIND, &mut |b| {
                    let _ = b.add(&ChannelNumber(number));
                    let _ = b.add(&XorPeerAddress(peer));
                });
                server.handle_client(now, transport, listen, client, &msg);
            }
            _ => {
                let number = 0x4000 | u16::from(chunk.first().copied().unwrap_or(0) & 0xF);
                let payload = chunk.get(1..).unwrap_or(&[]);
                let mut frame = number.to_be_bytes().to_vec();
                frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
                frame.extend_from_slice(payload);
                while transport == Transport::Tcp && frame.len() % 4 != 0 {
                    frame.push(0);
                }
                server.handle_client(now, transport, listen, client, &frame);
            }
        }
        server.handle_timeout(now);
        while let Some(t) = server.poll_transmit() {
            if t.destination == client {
                check_to_client(&t.data, &mut nonce, &mut relayed);
            } else {
                // Everything else leaves a relayed address for a peer.
                let ip = t.destination.ip();
                assert!(policy.permits(ip), "sent to {ip}, which the policy refuses");
                assert!(
                    !oracle_refuses(ip),
                    "sent to {ip}, which the oracle refuses"
                );
                assert!(
                    relayed.contains(&t.source) || t.source.port() >= 50_000,
                    "{t:?}"
                );
            }
        }
        if relayed.len() > 16 {
            relayed.clear();
        }
        while let Some(top) = server.poll_tcp_op() {
            match top {
                TcpOp::Connect {
                    id,
                    relayed: r,
                    peer,
                } => {
                    assert!(tcp_ids.insert(id), "CONNECTION-ID {id} handed out twice");
                    assert!(policy.permits(peer.ip()) && !oracle_refuses(peer.ip()));
                    assert!(relayed.contains(&r) || r.port() >= 50_000);
                    connecting.push(id);
                }
                TcpOp::Bind { id, .. } | TcpOp::Close { id } => {
                    assert!(tcp_ids.contains(&id), "unknown CONNECTION-ID {id}");
                }
            }
        }
        assert!(server.tcp_connections() <= MAX_TCP_CONNECTIONS * 4);
        while let Some(fop) = server.poll_fleet_op() {
            match fop {
                FleetOp::Acquire { ticket, user } => {
                    assert_eq!(user, "alice");
                    acquires.push(ticket);
                }
                FleetOp::Release { user } => {
                    assert_eq!(user, "alice");
                    held -= 1;
                }
            }
        }
        if config_fleet {
            assert_eq!(
                held,
                server.stats().allocations as i64,
                "fleet places held against live allocations"
            );
        } else {
            assert!(
                held == 0 && acquires.is_empty(),
                "fleet operations without fleet quotas"
            );
        }
    }
    let _ = server.stats();
});

/// A length: one byte, or 0xFF and a big-endian u16.
fn take_len(bytes: &[u8]) -> (usize, &[u8]) {
    match bytes {
        [0xFF, hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
        [n, rest @ ..] => (usize::from(*n), rest),
        [] => (0, bytes),
    }
}

/// Every message to the client is a strict STUN response, another valid STUN message, or
/// valid ChannelData; learns the nonce and relayed addresses so later operations go deeper.
fn check_to_client(data: &[u8], nonce: &mut String, relayed: &mut Vec<SocketAddr>) {
    if matches!(data.first(), Some(0x40..=0x7F)) {
        let parsed = ChannelData::parse_in_range(data, floe_turn::MAX_CHANNEL_RFC5766);
        assert!(parsed.is_ok(), "bad ChannelData to the client: {parsed:?}");
        return;
    }
    let m = Message::parse(data).expect("the server sent broken STUN");
    if matches!(m.class(), Class::Success | Class::Error) {
        let strict = Message::parse_with(data, ParseOptions::strict());
        assert!(
            strict.is_ok(),
            "a response fails strict parsing: {strict:?}"
        );
    }
    if let Ok(Some(n)) = m.get::<Nonce>() {
        *nonce = n.0.to_owned();
    }
    for r in m.get_all::<XorRelayedAddress>().flatten() {
        relayed.push(r.0);
    }
}
