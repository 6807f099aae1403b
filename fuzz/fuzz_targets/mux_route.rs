//! floe-ice's `Mux` (many ICE sessions on one UDP socket) on hostile datagrams. The input
//! is a series of records: a byte choosing the source (one of 64 addresses) and a
//! length-prefixed datagram; three sessions are registered with known ufrags, and every
//! fourth record is rewritten into a Binding request whose USERNAME starts with one of
//! them (or a stranger's). Properties, beyond no panic:
//! - a datagram from a 5-tuple no session has heard is routed only if it is a Binding
//!   request naming a registered ufrag, to that ufrag's session;
//! - a 5-tuple, once routed, keeps going to the same session;
//! - the mux never remembers more than 32 tuples per session;
//! - the counters add up to the datagrams seen.
#![no_main]

use std::collections::HashMap;
use std::net::SocketAddr;

use floe_ice::mux::{Mux, MAX_REMOTES_PER_SESSION};
use floe_stun::attributes::Username;
use floe_stun::{MessageBuilder, MessageType, TransactionId};
use libfuzzer_sys::fuzz_target;

const UFRAGS: [&str; 3] = ["aaaa", "bbbb", "cccc"];

fuzz_target!(|data: &[u8]| {
    let local: SocketAddr = "10.0.0.1:3478".parse().unwrap();
    let mut mux = Mux::new();
    for (k, u) in UFRAGS.iter().enumerate() {
        mux.add_session(k, u).unwrap();
    }
    let mut known: HashMap<SocketAddr, usize> = HashMap::new();
    let mut seen = 0u64;
    let mut rest = data;
    let mut n = 0usize;
    while let [who, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (raw, next) = tail.split_at(len);
        rest = next;
        n += 1;
        let remote = SocketAddr::new("192.0.2.1".parse().unwrap(), 1000 + u16::from(who % 64));
        let mut owned = raw.to_vec();
        if n % 4 == 0 {
            // A well-formed check naming a ufrag chosen by the input.
            let ufrag = match raw.first().map_or(0, |b| b % 4) {
                i @ 0..=2 => UFRAGS[usize::from(i)],
                _ => "zzzz",
            };
            let user = format!("{ufrag}:peer");
            let mut buf = [0u8; 128];
            let mut b = MessageBuilder::new(
                &mut buf,
                MessageType::BINDING_REQUEST,
                TransactionId([1; 12]),
            )
            .unwrap();
            b.add(&Username(&user)).unwrap();
            b.add_fingerprint().unwrap();
            owned = b.finish().to_vec();
        }
        seen += 1;
        let routed = mux.route(local, remote, &owned);
        if let Some(&k) = known.get(&remote) {
            // Remembered (unless forgotten as the oldest of 32): the same session, or a
            // new one only through a valid check.
            if routed != Some(k) {
                let named = named_session(&owned);
                assert_eq!(
                    routed, named,
                    "a tuple moved sessions without a check naming the new one"
                );
            }
        } else {
            assert_eq!(
                routed,
                named_session(&owned),
                "an unknown sender routed without a check"
            );
        }
        if let Some(k) = routed {
            known.insert(remote, k);
        }
    }
    let st = mux.stats();
    assert_eq!(st.by_address + st.by_ufrag + st.refused, seen);
    for k in 0..UFRAGS.len() {
        assert!(mux.remembered(k) <= MAX_REMOTES_PER_SESSION);
    }
});

/// The session a datagram names, if it is a Binding request with a registered ufrag.
fn named_session(bytes: &[u8]) -> Option<usize> {
    let msg = floe_stun::Message::parse(bytes).ok()?;
    if msg.method() != floe_stun::Method::BINDING || msg.class() != floe_stun::Class::Request {
        return None;
    }
    let Username(user) = msg.get::<Username>().ok().flatten()?;
    let ours = user.split_once(':').map_or(user, |(l, _)| l);
    UFRAGS.iter().position(|u| *u == ours)
}
