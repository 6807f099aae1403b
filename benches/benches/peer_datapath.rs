//! Datagrams per second through a floe connection (two `PeerConnection`s on loopback)
//! against a raw tokio UDP socket pair in the same run, at 1200 and 100 bytes.
//!
//! Each iteration sends a batch of datagrams A -> B in bursts (paced so loopback does not
//! drop) and waits until B has them all; the time per datagram is reported. Results:
//! docs/benchmarks.md. Goal (floe-peer issue): >= 0.9x raw at 1200 bytes.
//!
//! Both sides have the same task structure: the bench task sends on the socket and takes
//! received datagrams from a channel that a reader task fills from the socket (floe's
//! socket readers hand datagrams to `PeerConnection::recv` the same way), so neither
//! side gains from overlapping what the other does in one task.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use floe_peer::{memory_pair, PeerConfig, PeerConnection, Side};
use tokio::net::UdpSocket;
use tokio::runtime::Runtime;

const BATCH: u64 = 2_000;
const BURST: u64 = 32;

fn config() -> PeerConfig {
    let mut c = PeerConfig::default();
    c.bind = vec!["127.0.0.1:0".parse().unwrap()];
    c
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let (floe_a, mut floe_b) = rt.block_on(async {
        let ((a_tx, a_rx), (b_tx, b_rx)) = memory_pair();
        let (a, b) = tokio::join!(
            PeerConnection::connect(config(), Side::Offer, a_tx, a_rx),
            PeerConnection::connect(config(), Side::Answer, b_tx, b_rx)
        );
        (a.unwrap(), b.unwrap())
    });
    let (raw_a, mut raw_b) = rt.block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        a.connect(b.local_addr().unwrap()).await.unwrap();
        // The reader task, as floe's (crates/peer/src/fast_path.rs): datagrams land in a
        // 512 KiB arena and go to the application's recv through a channel as `Bytes`
        // slices of it (no copy, one allocation per arena).
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4096);
        tokio::spawn(async move {
            let mut arena = BytesMut::with_capacity(512 * 1024);
            loop {
                if arena.capacity() < 65_536 {
                    arena = BytesMut::with_capacity(512 * 1024);
                }
                let Ok(n) = b.recv_buf(&mut arena).await else {
                    break;
                };
                // A full queue drops the datagram, as floe's reader does.
                let _ = tx.try_send(arena.split_to(n).freeze());
            }
        });
        (a, rx)
    });
    let sender = floe_a.sender();
    for size in [1200usize, 100] {
        let mut g = c.benchmark_group(format!("peer_datapath/{size}B"));
        g.throughput(Throughput::Elements(BATCH));
        g.measurement_time(Duration::from_secs(5));
        g.sample_size(20);
        let payload = vec![0x5au8; size];
        g.bench_function("raw_udp_socket_pair", |bench| {
            bench.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let mut got = 0;
                        for i in 0..BATCH {
                            raw_a.send(&payload).await.unwrap();
                            if i % BURST == BURST - 1 {
                                while got < i + 1 - BURST / 2 {
                                    raw_b.recv().await.unwrap();
                                    got += 1;
                                }
                            }
                        }
                        while got < BATCH {
                            if tokio::time::timeout(Duration::from_millis(200), raw_b.recv())
                                .await
                                .is_err()
                            {
                                break;
                            }
                            got += 1;
                        }
                    }
                    start.elapsed()
                })
            });
        });
        g.bench_function("floe_peer_connection", |bench| {
            bench.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let mut got = 0;
                        for i in 0..BATCH {
                            sender.send(&payload).await.unwrap();
                            if i % BURST == BURST - 1 {
                                while got < i + 1 - BURST / 2 {
                                    floe_b.recv().await.unwrap();
                                    got += 1;
                                }
                            }
                        }
                        while got < BATCH {
                            if tokio::time::timeout(Duration::from_millis(200), floe_b.recv())
                                .await
                                .is_err()
                            {
                                break;
                            }
                            got += 1;
                        }
                    }
                    start.elapsed()
                })
            });
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
