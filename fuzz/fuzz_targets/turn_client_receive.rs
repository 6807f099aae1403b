//! The TURN client under arbitrary server traffic, authenticated and not.
//!
//! The client allocates; the harness answers with a real 401 so the client has
//! credentials. Then each input chunk (an op byte, a length of one byte or 0xFF and a
//! big-endian u16, the bytes) is either a raw datagram (byte 0), a response to the
//! client's latest request with attributes from the input (type, length as above, value),
//! signed with the right key so the authenticated paths run (byte 1), raw stream bytes
//! for a TCP client (byte 2), or time passing (byte 3).
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_stun::attributes::{ErrorCode, Nonce, Realm};
use floe_stun::credentials::Algorithm;
use floe_stun::{AttrType, Class, IntegrityKey, Message, MessageBuilder};
use floe_turn::client::{Client, ClientConfig};
use floe_turn::Transport;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let local: SocketAddr = "198.51.100.1:4000".parse().unwrap();
    let server: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let transport = if data.first().is_some_and(|b| b & 1 == 1) {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    let mut client = Client::new(
        ClientConfig::new(local, server, transport, "alice", "pw"),
        1,
    );
    client.allocate(now);
    let key = IntegrityKey::long_term("alice", "floe", "pw", Algorithm::Md5).unwrap();
    let mut last_request: Option<Vec<u8>> = None;
    let mut challenged = false;
    let mut rest = data.get(1..).unwrap_or(&[]);
    loop {
        while let Some(t) = client.poll_transmit() {
            last_request = Some(t.data);
        }
        while client.poll_event().is_some() {}
        // First, a genuine challenge so the client derives its key.
        if !challenged {
            challenged = true;
            if let Some(req) = last_request.as_deref().and_then(|r| Message::parse(r).ok()) {
                let mut buf = [0u8; 256];
                let mut b = MessageBuilder::new(
                    &mut buf,
                    req.message_type().with_class(Class::Error),
                    req.transaction_id(),
                )
                .unwrap();
                b.add(&ErrorCode::UNAUTHENTICATED)
                    .unwrap()
                    .add(&Realm("floe"))
                    .unwrap()
                    .add(&Nonce("nonce-1"))
                    .unwrap();
                let n = b.len();
                feed(&mut client, now, transport, &buf[..n]);
                continue;
            }
        }
        let Some((&op, tail)) = rest.split_first() else {
            break;
        };
        let (len, tail) = take_len(tail);
        let chunk = tail.get(..len).unwrap_or(tail);
        rest = tail.get(chunk.len()..).unwrap_or(&[]);
        match op & 3 {
            0 => feed(&mut client, now, transport, chunk),
            1 => {
                let Some(req) = last_request.as_deref().and_then(|r| Message::parse(r).ok()) else {
                    continue;
                };
                let class = if chunk.first().is_some_and(|b| b & 1 == 1) {
                    Class::Error
                } else {
                    Class::Success
                };
                let mut buf = vec![0u8; 4096];
                let mut b = MessageBuilder::new(
                    &mut buf,
                    req.message_type().with_class(class),
                    req.transaction_id(),
                )
                .unwrap();
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
                if b.add_message_integrity(&key).is_err() {
                    continue;
                }
                let n = b.len();
                feed(&mut client, now, transport, &buf[..n]);
            }
            2 => {
                let _ = client.handle_stream_receive(now, chunk, |_, _| {});
            }
            _ => {
                now += Duration::from_secs(u64::from(chunk.first().copied().unwrap_or(1)) * 5);
                client.handle_timeout(now);
                if chunk.get(1).is_some_and(|b| b & 1 == 1) {
                    let _ = client.create_permission(now, "192.0.2.9".parse().unwrap());
                    let _ = client.bind_channel(now, "192.0.2.9:9".parse().unwrap());
                    let mut out = [0u8; 256];
                    let _ = client.encode_send("192.0.2.9:9".parse().unwrap(), chunk, &mut out);
                }
            }
        }
    }
});

fn feed(client: &mut Client, now: Instant, transport: Transport, bytes: &[u8]) {
    if transport.is_stream() {
        let _ = client.handle_stream_receive(now, bytes, |_, _| {});
    } else {
        client.handle_receive(now, bytes, |_, _| {});
    }
}

/// A length: one byte, or 0xFF followed by a big-endian u16, so that chunks and attribute
/// values can be longer than 254 bytes (a 600-byte USERNAME, a message carrying one).
fn take_len(bytes: &[u8]) -> (usize, &[u8]) {
    match bytes {
        [0xFF, hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
        [n, rest @ ..] => (usize::from(*n), rest),
        [] => (0, bytes),
    }
}
