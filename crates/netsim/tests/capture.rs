//! The pcap output and the packet log of a short run decode to what happened.

mod common;

use std::time::Duration;

use common::*;
use floe_netsim::nodes::{Peer, UdpEcho};
use floe_netsim::pcap::parse;
use floe_netsim::{
    Capture, DropReason, Hop, LinkId, NatConfig, Protocol, StreamCommand, StreamId, Verdict,
};

#[test]
fn pcap_of_a_stun_exchange_through_a_nat_decodes_hop_by_hop() {
    let mut t = Topology::new(NatConfig::port_restricted_cone());
    t.sim.enable_pcap(Capture::All);
    let mapped = t.binding(CLIENT, STUN1).unwrap();
    let path = std::env::temp_dir().join(format!("floe-netsim-{}.pcap", std::process::id()));
    t.sim.write_pcap(&path).unwrap();
    let file = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let records = parse(&file).unwrap();
    // Request: client link, NAT uplink, server link; response: the same three back.
    assert_eq!(records.len(), 6);
    assert!(records
        .iter()
        .all(|r| r.checksums_ok && r.protocol == Protocol::Udp));
    assert!(records.windows(2).all(|w| w[0].time <= w[1].time));
    let (inside, outside) = (&records[0], &records[1]);
    assert_eq!((inside.src, inside.dst), (sa(CLIENT), sa(STUN1)));
    assert_eq!((outside.src, outside.dst), (mapped, sa(STUN1)));
    assert_eq!(inside.payload, binding_request(0), "STUN bytes intact");
    let response = &records[5];
    assert_eq!((response.src, response.dst), (sa(STUN1), sa(CLIENT)));
    assert_eq!(mapped_address(&response.payload), mapped);
    // Timestamps are virtual time: the request left at t=0 and the response took 5 links.
    assert_eq!(records[0].time, Duration::ZERO);
    assert_eq!(records[5].time, Duration::from_millis(5));
}

#[test]
fn capture_can_be_limited_to_one_hosts_interface() {
    let mut t = Topology::new(NatConfig::full_cone());
    t.sim
        .enable_pcap(Capture::Links(vec![LinkId::Interface(t.client, 0)]));
    t.binding(CLIENT, STUN1).unwrap();
    let records = parse(&t.sim.pcap_bytes()).unwrap();
    assert_eq!(records.len(), 2);
    assert!(records
        .iter()
        .all(|r| r.src == sa(CLIENT) || r.dst == sa(CLIENT)));
}

#[test]
fn stream_segments_are_captured_as_tcp_with_flags() {
    let mut t = Topology::new(NatConfig::full_cone());
    let internet = t.sim.internet();
    t.sim.add_host(
        internet,
        ip("198.51.100.9"),
        UdpEcho::new().listen(sa("198.51.100.9:443")),
    );
    t.sim
        .enable_pcap(Capture::Links(vec![LinkId::Interface(t.client, 0)]));
    let id = StreamId::new(sa("192.168.1.2:40000"), sa("198.51.100.9:443"));
    let peer = t.sim.node_mut::<Peer>(t.client);
    peer.command(StreamCommand::Connect(id));
    peer.command(StreamCommand::Send(id, b"hello".to_vec()));
    t.sim.run_for(Duration::from_secs(1));
    let records = parse(&t.sim.pcap_bytes()).unwrap();
    assert!(records
        .iter()
        .all(|r| r.protocol == Protocol::Tcp && r.checksums_ok));
    let flags: Vec<u8> = records.iter().map(|r| r.tcp_flags.unwrap()).collect();
    // SYN out, SYN-ACK in, data out (ACK|PSH), echoed data in.
    assert_eq!(flags, [0x02, 0x12, 0x18, 0x18]);
    assert_eq!(records[2].payload, b"hello");
    assert_eq!(records[3].payload, b"hello");
}

#[test]
fn the_packet_log_shows_addresses_before_and_after_nat_and_every_verdict() {
    let mut t = Topology::new(NatConfig::port_restricted_cone());
    t.sim.enable_trace();
    let mapped = t.binding(CLIENT, STUN1).unwrap();
    assert!(!t.unsolicited(t.stun2, STUN2, mapped));
    let trace = t.sim.trace();
    let translated: Vec<_> = trace
        .iter()
        .filter(|e| e.verdict == Verdict::Translated)
        .collect();
    assert_eq!(translated.len(), 2, "request out, response in");
    assert_eq!(
        (translated[0].src, translated[0].src_after),
        (sa(CLIENT), mapped)
    );
    assert_eq!(
        (translated[1].dst, translated[1].dst_after),
        (mapped, sa(CLIENT))
    );
    let dropped = trace.last().unwrap();
    assert_eq!(dropped.verdict, Verdict::Dropped(DropReason::Filtered));
    assert_eq!(dropped.hop, Hop::Router(t.nat));
    let line = dropped.to_string();
    assert!(
        line.contains("Filtered") && line.contains("198.51.100.2:3478"),
        "{line}"
    );
    assert_eq!(
        trace
            .iter()
            .filter(|e| e.verdict == Verdict::Delivered)
            .count(),
        2
    );
}
