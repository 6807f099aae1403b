//! Link statistics over many packets match the configuration.
#![allow(clippy::cast_precision_loss)] // statistics over counts far below 2^52

mod common;

use std::time::Duration;

use common::*;
use floe_netsim::nodes::{Peer, UdpEcho};
use floe_netsim::{LinkConfig, LinkId, LossModel, NodeId, Simulator};

const N: usize = 20_000;

/// A sender and a receiver on the internet; the sender's uplink has `config`. Sends `N`
/// datagrams 1 ms apart and returns the simulator and both node ids.
fn blast(config: LinkConfig, payload: usize) -> (Simulator, NodeId, NodeId) {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    let tx = sim.add_host_with_link(internet, ip("198.51.100.1"), config, Peer::new());
    let rx = sim.add_host(internet, ip("198.51.100.2"), Peer::new());
    let start = sim.now();
    for i in 0..N {
        let at = start + Duration::from_millis(i as u64);
        let bytes = (i as u32).to_be_bytes().repeat(payload / 4);
        sim.node_mut::<Peer>(tx).send_at(
            at,
            sa("198.51.100.1:1000"),
            sa("198.51.100.2:2000"),
            bytes,
        );
    }
    sim.run_for(Duration::from_secs(60));
    (sim, tx, rx)
}

#[test]
fn random_loss_matches_the_configured_probability() {
    let (sim, tx, rx) = blast(LinkConfig::default().random_loss(0.1), 100);
    let got = sim.node::<Peer>(rx).received.len();
    let loss = 1.0 - got as f64 / N as f64;
    assert!((loss - 0.1).abs() < 0.01, "loss {loss}, seed {SEED}");
    let stats = sim.link(LinkId::Interface(tx, 0)).up.stats;
    assert_eq!(stats.lost as usize, N - got);
    assert_eq!(sim.node_stats(tx).dropped.total() as usize, N - got);
    assert_eq!(
        sim.node_stats(tx)
            .dropped
            .get(floe_netsim::DropReason::Loss) as usize,
        N - got
    );
}

#[test]
fn bursty_loss_matches_its_mean_and_comes_in_bursts() {
    let model = LossModel::GilbertElliott {
        p_good_to_bad: 0.02,
        p_bad_to_good: 0.2,
        loss_in_good: 0.0,
        loss_in_bad: 0.8,
    };
    let (sim, _, rx) = blast(LinkConfig::default().loss(model), 100);
    let received: Vec<u32> = sim
        .node::<Peer>(rx)
        .received
        .iter()
        .map(|r| u32::from_be_bytes(r.bytes[..4].try_into().unwrap()))
        .collect();
    let loss = 1.0 - received.len() as f64 / N as f64;
    assert!(
        (loss - model.mean_loss()).abs() < 0.02,
        "loss {loss} vs {}",
        model.mean_loss()
    );
    // Mean gap length (consecutive losses) is well above the 1.0 of independent loss.
    let gaps: Vec<u32> = received
        .windows(2)
        .map(|w| w[1] - w[0] - 1)
        .filter(|g| *g > 0)
        .collect();
    let mean_burst = f64::from(gaps.iter().sum::<u32>()) / gaps.len() as f64;
    assert!(mean_burst > 2.0, "mean burst {mean_burst}");
}

#[test]
fn delay_and_jitter_stay_in_bounds_and_average_to_the_middle() {
    let config =
        LinkConfig::with_delay(Duration::from_millis(40)).jitter(Duration::from_millis(20));
    let (sim, _, rx) = blast(config, 100);
    let start = sim.clock().base();
    let delays: Vec<f64> = sim
        .node::<Peer>(rx)
        .received
        .iter()
        .map(|r| {
            let i = u32::from_be_bytes(r.bytes[..4].try_into().unwrap());
            let sent = start + Duration::from_millis(u64::from(i));
            // Minus the receiver's own 1 ms link.
            (r.at - sent).as_secs_f64() * 1000.0 - 1.0
        })
        .collect();
    assert_eq!(delays.len(), N);
    let min = delays.iter().copied().fold(f64::MAX, f64::min);
    let max = delays.iter().copied().fold(f64::MIN, f64::max);
    let mean = delays.iter().sum::<f64>() / delays.len() as f64;
    assert!(min >= 40.0 && max <= 60.0, "min {min} max {max}");
    assert!((mean - 50.0).abs() < 0.5, "mean {mean}");
}

#[test]
fn rate_limit_caps_throughput_and_the_queue_drops_the_excess() {
    // 1000-byte datagrams every 1 ms are 8.2 Mbit/s with headers; the link carries 4 Mbit/s.
    let config = LinkConfig::default().rate_limit(4_000_000, 20_000);
    let (sim, tx, rx) = blast(config, 1000);
    let received = &sim.node::<Peer>(rx).received;
    let first = received.first().unwrap().at;
    let last = received.last().unwrap().at;
    let bits = received.len() as f64 * 1028.0 * 8.0;
    let rate = bits / (last - first).as_secs_f64();
    assert!((rate - 4_000_000.0).abs() < 40_000.0, "rate {rate}");
    let stats = sim.link(LinkId::Interface(tx, 0)).up.stats;
    assert!(stats.queue_drops > 0);
    assert_eq!(stats.queue_drops as usize + received.len(), N);
}

#[test]
fn directions_of_a_link_are_independent() {
    let mut sim = Simulator::new(SEED);
    let internet = sim.internet();
    let echo = sim.add_host(internet, ip("198.51.100.1"), UdpEcho::new());
    let client = sim.add_host(internet, ip("198.51.100.2"), Peer::new());
    let link = sim.link_mut(LinkId::Interface(client, 0));
    link.up.config = LinkConfig::with_delay(Duration::from_millis(100));
    link.down.config = LinkConfig::with_delay(Duration::from_millis(5));
    let start = sim.now();
    sim.node_mut::<Peer>(client)
        .send(sa("198.51.100.2:1"), sa("198.51.100.1:7"), &b"x"[..]);
    sim.run_for(Duration::from_secs(1));
    let at = sim.node::<Peer>(client).received[0].at;
    assert_eq!(at - start, Duration::from_millis(100 + 1 + 1 + 5));
    assert_eq!(sim.node::<UdpEcho>(echo).echoed, 1);
}
