//! floe-stun codec speed against a baseline of the cryptography it cannot avoid:
//! HMAC-SHA1 with a reused keyed state plus CRC-32 over the same bytes.
//!
//! Targets (issue: floe-stun): encode and decode+verify each <= 1.5x the baseline;
//! decode without verify <= 100 ns. Results: docs/benchmarks.md.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use floe_stun::attributes::*;
use floe_stun::{IntegrityKey, Message, MessageBuilder, MessageType, TransactionId};
use hmac::{Hmac, Mac};
use sha1::Sha1;

const PASSWORD: &str = "asd88jdf0s9dfjs0d9f8jq"; // 22 characters, like an ice-pwd
const TID: TransactionId = TransactionId([0x5a; 12]);

fn encode_request(key: &IntegrityKey, buf: &mut [u8]) -> usize {
    let mut b = MessageBuilder::new(buf, MessageType::BINDING_REQUEST, TID).unwrap();
    b.add(&Username("rR7x2mQ9:Lp4vK8sZ")).unwrap(); // 17 bytes
    b.add(&Priority(1_853_824_767)).unwrap();
    b.add(&IceControlling(0x1234_5678_9abc_def0)).unwrap();
    b.add(&UseCandidate).unwrap();
    b.add_message_integrity(key).unwrap();
    b.add_fingerprint().unwrap();
    b.len()
}

fn encode_response(key: &IntegrityKey, buf: &mut [u8]) -> usize {
    let mapped = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), 49152);
    let mut b = MessageBuilder::new(buf, MessageType::BINDING_SUCCESS, TID).unwrap();
    b.add(&XorMappedAddress(mapped)).unwrap();
    b.add_message_integrity(key).unwrap();
    b.add_fingerprint().unwrap();
    b.len()
}

/// Parses and decodes every attribute of the request.
fn decode_request(msg: &Message<'_>) -> u64 {
    let user = msg.get::<Username>().unwrap().unwrap();
    let prio = msg.get::<Priority>().unwrap().unwrap();
    let ctl = msg.get::<IceControlling>().unwrap().unwrap();
    let use_cand = msg.get::<UseCandidate>().unwrap().is_some();
    let mi = msg.get::<MessageIntegrity>().unwrap().unwrap();
    user.0.len() as u64 + u64::from(prio.0) + ctl.0 + u64::from(use_cand) + u64::from(mi.0[0])
}

fn decode_response(msg: &Message<'_>) -> u16 {
    msg.get::<XorMappedAddress>().unwrap().unwrap().0.port()
}

/// The baseline: what any implementation must compute for one message.
fn baseline(mac: &Hmac<Sha1>, bytes: &[u8]) -> u32 {
    let mut m = mac.clone();
    m.update(&bytes[..bytes.len() - 32]);
    let tag = m.finalize().into_bytes();
    crc32fast::hash(&bytes[..bytes.len() - 8]) ^ u32::from(tag[0])
}

fn bench(c: &mut Criterion) {
    let key = IntegrityKey::short_term(PASSWORD).unwrap();
    let mac = <Hmac<Sha1> as Mac>::new_from_slice(PASSWORD.as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    let n = encode_request(&key, &mut buf);
    let request = buf[..n].to_vec();
    let n = encode_response(&key, &mut buf);
    let response = buf[..n].to_vec();

    for (name, bytes) in [("request", &request), ("response", &response)] {
        let mut g = c.benchmark_group(format!("stun/{name}_{}B", bytes.len()));
        g.throughput(Throughput::Elements(1));
        g.bench_function("baseline_hmac_sha1_plus_crc32", |b| {
            b.iter(|| baseline(&mac, black_box(bytes)));
        });
        g.bench_function("encode", |b| {
            let mut out = [0u8; 256];
            b.iter(|| {
                if name == "request" {
                    encode_request(&key, black_box(&mut out))
                } else {
                    encode_response(&key, black_box(&mut out))
                }
            });
        });
        let decode = |msg: &Message<'_>| {
            if name == "request" {
                decode_request(msg)
            } else {
                u64::from(decode_response(msg))
            }
        };
        g.bench_function("decode", |b| {
            b.iter(|| decode(&Message::parse(black_box(bytes)).unwrap()));
        });
        g.bench_function("decode_verify", |b| {
            b.iter(|| {
                let msg = Message::parse(black_box(bytes)).unwrap();
                msg.verify(&key).unwrap();
                decode(&msg)
            });
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
