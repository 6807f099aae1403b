//! The client against a scripted server that answers what a hostile or broken server
//! would (RFC 8489 §6.3, RFC 8656 §7.3).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_stun::attributes::*;
use floe_stun::credentials::Algorithm;
use floe_stun::{AttrType, Class, IntegrityKey, Message, MessageBuilder, MessageType, Method};

use super::*;
use crate::Transport;

const SERVER: &str = "203.0.113.1:3478";
const CLIENT: &str = "198.51.100.7:40000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn key() -> IntegrityKey {
    IntegrityKey::long_term("alice", "floe", "secret", Algorithm::Md5).unwrap()
}

/// A client that has sent its authenticated Allocate; returns it with the request.
fn allocating(now: Instant) -> (Client, Vec<u8>) {
    let config = ClientConfig::new(
        addr(CLIENT),
        addr(SERVER),
        Transport::Udp,
        "alice",
        "secret",
    );
    let mut c = Client::new(config, 1);
    c.allocate(now);
    let first = c.poll_transmit().unwrap().data;
    let first = Message::parse(&first).unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Error),
        first.transaction_id(),
    )
    .unwrap();
    b.add(&ErrorCode::UNAUTHENTICATED).unwrap();
    b.add(&Realm("floe")).unwrap();
    b.add(&Nonce("plain-nonce")).unwrap();
    let challenge = b.finish().to_vec();
    assert_eq!(receive(&mut c, now, &challenge), None);
    let second = c.poll_transmit().unwrap().data;
    (c, second)
}

/// A success to `request` with `extra` raw attributes and the given relayed address,
/// signed with the user's key.
fn success(request: &[u8], relayed: &str, extra: &[(u16, &[u8])]) -> Vec<u8> {
    let req = Message::parse(request).unwrap();
    let mut buf = [0u8; 512];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(req.method(), Class::Success),
        req.transaction_id(),
    )
    .unwrap();
    b.add(&XorRelayedAddress(addr(relayed))).unwrap();
    b.add(&XorMappedAddress(addr(CLIENT))).unwrap();
    b.add(&Lifetime(600)).unwrap();
    for (t, v) in extra {
        b.add_raw(AttrType(*t), v).unwrap();
    }
    b.add_message_integrity(&key()).unwrap();
    b.finish().to_vec()
}

fn events(c: &mut Client) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

#[test]
fn an_allocate_success_with_an_unknown_required_attribute_is_discarded() {
    let now = Instant::now();
    let (mut c, request) = allocating(now);
    let bad = success(&request, "203.0.113.1:50000", &[(0x7faa, &[0; 4])]);
    receive(&mut c, now, &bad);
    assert_eq!(*c.state(), ClientState::Allocating, "must not be accepted");
    assert_eq!(c.discarded(), 1);
    assert!(events(&mut c).is_empty());
    // The real answer still completes the transaction.
    let good = success(&request, "203.0.113.1:50000", &[(0xc0aa, &[0; 4])]);
    receive(&mut c, now, &good);
    assert_eq!(*c.state(), ClientState::Allocated);
}

#[test]
fn only_discarded_answers_end_in_an_error_naming_the_attribute() {
    let start = Instant::now();
    let (mut c, request) = allocating(start);
    let bad = success(&request, "203.0.113.1:50000", &[(0x7faa, &[0; 4])]);
    let mut now = start;
    while *c.state() == ClientState::Allocating {
        receive(&mut c, now, &bad);
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        while c.poll_transmit().is_some() {}
    }
    let failed = events(&mut c);
    let [Event::AllocationFailed(TurnError::InvalidResponse(why))] = failed.as_slice() else {
        panic!("{failed:?}");
    };
    assert!(why.contains("0x7faa"), "{why}");
    assert!(
        now - start >= Duration::from_secs(39),
        "waited the whole schedule"
    );
}

#[test]
fn an_unusable_relayed_address_fails_the_allocate_and_deletes_it() {
    for relayed in [
        "203.0.113.1:0",
        "0.0.0.0:50000",
        "[2001:db8::1]:50000",
        "224.0.0.1:50000",
    ] {
        let now = Instant::now();
        let (mut c, request) = allocating(now);
        receive(&mut c, now, &success(&request, relayed, &[]));
        let ev = events(&mut c);
        assert!(
            matches!(
                ev.as_slice(),
                [Event::AllocationFailed(TurnError::Malformed(_))]
            ),
            "{relayed}: {ev:?}"
        );
        // A Refresh with LIFETIME 0 deletes what the server allocated.
        let refresh = c.poll_transmit().expect("a deallocation");
        let refresh = Message::parse(&refresh.data).unwrap();
        assert_eq!(refresh.method(), Method::REFRESH, "{relayed}");
        assert_eq!(refresh.get::<Lifetime>().unwrap(), Some(Lifetime(0)));
    }
}

#[test]
fn a_data_indication_with_an_unknown_required_attribute_is_dropped() {
    let now = Instant::now();
    let (mut c, request) = allocating(now);
    receive(&mut c, now, &success(&request, "203.0.113.1:50000", &[]));
    let peer = addr("192.0.2.9:7000");
    c.create_permission(now, peer.ip()).unwrap();
    let perm = c.poll_transmit().unwrap().data;
    let perm = Message::parse(&perm).unwrap();
    let mut buf = [0u8; 128];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::CREATE_PERMISSION, Class::Success),
        perm.transaction_id(),
    )
    .unwrap();
    b.add_message_integrity(&key()).unwrap();
    let ok = b.finish().to_vec();
    receive(&mut c, now, &ok);
    assert!(c.has_permission(peer.ip()));
    let data = |extra: Option<u16>| {
        let mut buf = [0u8; 128];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(Method::DATA, Class::Indication),
            floe_stun::TransactionId([4; 12]),
        )
        .unwrap();
        b.add(&XorPeerAddress(peer)).unwrap();
        b.add(&Data(b"hi")).unwrap();
        if let Some(t) = extra {
            b.add_raw(AttrType(t), &[0; 4]).unwrap();
        }
        b.finish().to_vec()
    };
    let before = c.discarded();
    assert_eq!(receive(&mut c, now, &data(Some(0x7fab))), None);
    assert_eq!(c.discarded(), before + 1);
    let good = data(Some(0x8fab));
    assert_eq!(receive(&mut c, now, &good), Some((peer, &b"hi"[..])));
}

/// [`Client::handle_receive`], returning the one peer datagram it gave to `on_data`, if
/// any (a datagram carries at most one).
fn receive<'a>(c: &mut Client, now: Instant, bytes: &'a [u8]) -> Option<(SocketAddr, &'a [u8])> {
    let mut got = None;
    c.handle_receive(now, bytes, |p, d| {
        assert!(got.is_none(), "one datagram, one delivery");
        got = Some((p, d));
    });
    got
}

/// A Send indication to an IPv6 peer carries a 24-byte XOR-PEER-ADDRESS: it must fit
/// (it did not, for any payload length, until found with the IPv6 relay test; the buffer
/// had room for an IPv4 peer only).
#[test]
fn send_indications_to_ipv6_and_ipv4_peers_encode_for_every_payload_length() {
    let now = Instant::now();
    let (mut c, _) = allocating(now);
    for peer in ["[2001:db8::9]:7000", "192.0.2.9:7000"] {
        let peer = addr(peer);
        for len in [0usize, 1, 2, 3, 4, 5, 1200, 1201] {
            let data = vec![0xab; len];
            let t = c
                .send_to(peer, &data)
                .unwrap_or_else(|e| panic!("{peer}, {len} bytes: {e}"));
            let m = Message::parse(&t.data).unwrap();
            assert_eq!(
                m.get::<XorPeerAddress>().unwrap(),
                Some(XorPeerAddress(peer))
            );
            assert_eq!(m.get::<Data>().unwrap().map(|d| d.0.len()), Some(len));
        }
    }
}
