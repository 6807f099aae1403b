//! floe-inspect's capture path against a baseline any reader pays: walking the records
//! or blocks of the same in-memory capture by their length fields and copying each
//! packet out. Measured: `CaptureReader` (pcap-parser behind floe's framing), plus
//! `net::parse_frame` (etherparse), plus judging every message (`inspect`).
//!
//! 10,000 Ethernet/IPv4/UDP packets, each a 28-byte STUN Binding request, as classic pcap
//! and as pcapng (Enhanced Packet Blocks). Results: docs/benchmarks.md.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::ops::ControlFlow;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use floe_inspect::{inspect, net, pcap, Event, Input};

const PACKETS: u32 = 10_000;

fn eth_udp(i: u32) -> Vec<u8> {
    let mut stun = vec![0, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    stun.extend_from_slice(&[0x80, 0x22, 0, 4, b'f', b'l', b'o', b'e']);
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    let total = (28 + stun.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, (i >> 8) as u8, i as u8]);
    f.extend_from_slice(&[198, 51, 100, 1, 0x13, 0x88, 0x0d, 0x96]);
    f.extend_from_slice(&(8 + stun.len() as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&stun);
    f
}

fn classic() -> Vec<u8> {
    let mut f = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    f.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&65_535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    for i in 0..PACKETS {
        let p = eth_udp(i);
        for v in [i, 0, p.len() as u32, p.len() as u32] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&p);
    }
    f
}

fn block(typ: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    body.resize(body.len().next_multiple_of(4), 0);
    let len = (body.len() + 12) as u32;
    let mut b = typ.to_le_bytes().to_vec();
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&body);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

fn pcapng() -> Vec<u8> {
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut f = block(0x0a0d_0d0a, &shb);
    f.extend(block(1, &[1, 0, 0, 0, 0, 0, 0, 0]));
    for i in 0..PACKETS {
        let p = eth_udp(i);
        let mut epb = Vec::new();
        for v in [0, 0, i, p.len() as u32, p.len() as u32] {
            epb.extend_from_slice(&v.to_le_bytes());
        }
        epb.extend_from_slice(&p);
        f.extend(block(6, &epb));
    }
    f
}

fn le32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// The baseline: walk the file by its length fields and copy every packet out.
fn baseline(file: &[u8]) -> usize {
    let mut total = 0;
    if le32(file, 0) == 0x0a0d_0d0a {
        let mut at = le32(file, 4);
        while at < file.len() {
            let len = le32(file, at + 4);
            if le32(file, at) == 6 {
                let caplen = le32(file, at + 20);
                total += black_box(file[at + 28..at + 28 + caplen].to_vec()).len();
            }
            at += len;
        }
    } else {
        let mut at = 24;
        while at < file.len() {
            let caplen = le32(file, at + 8);
            total += black_box(file[at + 16..at + 16 + caplen].to_vec()).len();
            at += 16 + caplen;
        }
    }
    total
}

fn read(file: &[u8], parse: bool) -> usize {
    let mut r = pcap::CaptureReader::new(file).unwrap();
    let mut total = 0;
    while let Some(f) = r.next_frame().unwrap() {
        total += if parse {
            net::parse_frame(f.link_type, &f.data)
                .unwrap()
                .payload
                .len()
        } else {
            f.data.len()
        };
    }
    total
}

fn judge(file: &[u8]) -> usize {
    let mut messages = 0;
    inspect(Input::Capture(&mut &file[..]), None, &mut |e: Event<'_>| {
        if let Event::Message { report, .. } = e {
            messages += usize::from(black_box(report).error.is_none());
        }
        ControlFlow::Continue(())
    });
    messages
}

fn capture_read(c: &mut Criterion) {
    for (name, file) in [("pcap", classic()), ("pcapng", pcapng())] {
        assert_eq!(read(&file, false), baseline(&file));
        assert_eq!(judge(&file), PACKETS as usize);
        let mut g = c.benchmark_group(format!("capture_read/{name}"));
        g.throughput(Throughput::Elements(u64::from(PACKETS)));
        g.bench_function("baseline walk and copy", |b| {
            b.iter(|| baseline(black_box(&file)));
        });
        g.bench_function("read frames", |b| b.iter(|| read(black_box(&file), false)));
        g.bench_function("read frames + headers", |b| {
            b.iter(|| read(black_box(&file), true));
        });
        g.bench_function("inspect (judge every message)", |b| {
            b.iter(|| judge(black_box(&file)));
        });
        g.finish();
    }
}

criterion_group!(benches, capture_read);
criterion_main!(benches);
