//! End to end: a pcap written by floe-netsim decodes with `floe decode --pcap`.
//!
//! The issue asks for a capture of a full ICE run; floe-ice does not exist yet, so this
//! run has what an ICE agent's first moments put on the wire: a connectivity check
//! (Binding request with USERNAME, PRIORITY, ICE-CONTROLLING, USE-CANDIDATE,
//! MESSAGE-INTEGRITY and FINGERPRINT) through a NAT and its authenticated response, a
//! Binding indication keepalive, a TURN ChannelData datagram, and a STUN message over a
//! TCP stream. When floe-ice lands, this test should drive two agents instead.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use floe_netsim::nodes::{Peer, UdpEcho};
use floe_netsim::{Capture, NatConfig, Node, Simulator, StreamCommand, StreamId, Transmit};
use floe_stun::attributes::{IceControlling, Priority, UseCandidate, Username, XorMappedAddress};
use floe_stun::{IntegrityKey, Message, MessageBuilder, MessageType, TransactionId};

const PASSWORD: &str = "remote-ice-pwd-22chars";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Answers authenticated Binding requests like an ICE agent (RFC 8445 §7.3): success
/// with XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and FINGERPRINT.
#[derive(Default)]
struct IceResponder {
    out: VecDeque<Transmit>,
    answered: usize,
}

impl Node for IceResponder {
    fn handle_receive(&mut self, _: Instant, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        let Ok(req) = Message::parse(bytes) else {
            return;
        };
        let key = IntegrityKey::short_term(PASSWORD).unwrap();
        if req.message_type() != MessageType::BINDING_REQUEST || req.verify(&key).is_err() {
            return;
        }
        let mut buf = [0u8; 256];
        let mut b =
            MessageBuilder::new(&mut buf, MessageType::BINDING_SUCCESS, req.transaction_id())
                .unwrap();
        b.add(&XorMappedAddress(remote)).unwrap();
        b.add_message_integrity(&key)
            .unwrap()
            .add_fingerprint()
            .unwrap();
        self.answered += 1;
        self.out.push_back(Transmit {
            source: local,
            destination: remote,
            bytes: b.finish().to_vec(),
        });
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }
}

fn check(n: u8) -> Vec<u8> {
    let key = IntegrityKey::short_term(PASSWORD).unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([n; 12]),
    )
    .unwrap();
    b.add(&Username("rfrag:lfrag")).unwrap();
    b.add(&Priority(1_853_824_767)).unwrap();
    b.add(&IceControlling(0x1234_5678_9abc_def0)).unwrap();
    b.add(&UseCandidate).unwrap();
    b.add_message_integrity(&key)
        .unwrap()
        .add_fingerprint()
        .unwrap();
    b.finish().to_vec()
}

fn keepalive() -> Vec<u8> {
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::BINDING_INDICATION,
        TransactionId([9; 12]),
    )
    .unwrap();
    b.add_fingerprint().unwrap();
    b.finish().to_vec()
}

/// Runs the scenario and returns the pcap file's path and the client's mapped address.
fn capture(name: &str) -> (std::path::PathBuf, SocketAddr) {
    let mut sim = Simulator::new(0x5eed);
    sim.enable_pcap(Capture::All);
    let internet = sim.internet();
    let peer = sim.add_host(
        internet,
        "198.51.100.1".parse().unwrap(),
        IceResponder::default(),
    );
    sim.add_host(
        internet,
        "198.51.100.9".parse().unwrap(),
        UdpEcho::new().listen(sa("198.51.100.9:3478")),
    );
    let (nat, lan) = sim.add_nat(
        internet,
        "203.0.113.1".parse().unwrap(),
        NatConfig::port_restricted_cone(),
    );
    let client = sim.add_host(lan, "192.168.1.2".parse().unwrap(), Peer::new());
    let local = sa("192.168.1.2:5000");
    let remote = sa("198.51.100.1:3478");
    let p = sim.node_mut::<Peer>(client);
    p.send(local, remote, check(1));
    p.send(local, remote, keepalive());
    let mut cd = [0u8; 16];
    let n = floe_turn::ChannelData::encode(0x4001, b"hello", &mut cd, false).unwrap();
    p.send(local, remote, cd[..n].to_vec());
    // STUN over TCP (RFC 8489 §6.2.2) to an echo server: the request comes back as is.
    let id = StreamId::new(sa("192.168.1.2:40000"), sa("198.51.100.9:3478"));
    p.command(StreamCommand::Connect(id));
    p.command(StreamCommand::Send(id, check(2)));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.node::<IceResponder>(peer).answered, 1);
    let mapped = sim.nat_mappings(nat)[0].external;
    let response = &sim.node::<Peer>(client).received[0].bytes;
    let got = Message::parse(response)
        .unwrap()
        .get::<XorMappedAddress>()
        .unwrap();
    assert_eq!(got, Some(XorMappedAddress(mapped)));
    let path = std::env::temp_dir().join(format!("floe-cli-{name}-{}.pcap", std::process::id()));
    sim.write_pcap(&path).unwrap();
    (path, mapped)
}

fn floe(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_floe"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_netsim_capture_decodes_end_to_end() {
    let (path, mapped) = capture("text");
    let file = path.to_str().unwrap();
    let (status, out, err) = floe(&["decode", "--pcap", file, "--password", PASSWORD]);
    // FLOE_KEEP_PCAP=path keeps the capture (for docs/decode.md and Wireshark).
    if let Some(keep) = std::env::var_os("FLOE_KEEP_PCAP") {
        std::fs::copy(&path, keep).unwrap();
    }
    std::fs::remove_file(&path).unwrap();
    assert_eq!(status, 0, "{out}\n{err}");
    // The check leaves with its private address and crosses the NAT with the mapped one.
    assert!(
        out.contains("UDP 192.168.1.2:5000 -> 198.51.100.1:3478"),
        "{out}"
    );
    assert!(
        out.contains(&format!("UDP {mapped} -> 198.51.100.1:3478")),
        "{out}"
    );
    assert!(out.contains("STUN Binding request"), "{out}");
    assert!(
        out.contains("USERNAME (0x0006), 11 bytes: \"rfrag:lfrag\""),
        "{out}"
    );
    assert!(
        out.contains("USE-CANDIDATE (0x0025), 0 bytes: (flag)"),
        "{out}"
    );
    assert!(out.contains("STUN Binding success response"), "{out}");
    assert!(
        out.contains(&format!("XOR-MAPPED-ADDRESS (0x0020), 8 bytes: {mapped}")),
        "{out}"
    );
    assert!(
        out.contains("FINGERPRINT ok, MESSAGE-INTEGRITY ok"),
        "{out}"
    );
    assert!(out.contains("STUN Binding indication"), "{out}");
    assert!(out.contains("channel 0x4001, length 5, padding 0"), "{out}");
    // The TCP stream: handshake segments without payload, then the framed message.
    assert!(
        out.contains("TCP 192.168.1.2:40000 -> 198.51.100.9:3478 [SYN]"),
        "{out}"
    );
    assert!(out.contains("stun-turn framing"), "{out}");
    assert!(!out.contains("verdict: malformed"), "{out}");
    // Each of the three datagrams and the response crosses three links; the TCP request
    // and its echo cross three links each too.
    assert_eq!(out.matches("message ").count(), 3 * 4 + 3 * 2, "{out}");
}

#[test]
fn a_netsim_capture_as_json_has_one_object_per_message_and_fails_with_the_wrong_password() {
    let (path, mapped) = capture("json");
    let file = path.to_str().unwrap();
    let (status, out, _) = floe(&["decode", "--pcap", file, "--password", PASSWORD, "--json"]);
    let (bad_status, bad_out, _) = floe(&["decode", "--pcap", file, "--password", "nope"]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(status, 0, "{out}");
    let mut messages = 0;
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v.get("skipped").is_some() {
            assert_eq!(v["packet"]["transport"], "tcp");
            continue;
        }
        messages += 1;
        assert_eq!(v["verdict"], "ok", "{line}");
        assert!(v["packet"]["src"].is_string());
        if v["stun"]["class"] == "success response" {
            let addr = &v["stun"]["attributes"][0]["value"];
            assert_eq!(addr["address"], mapped.ip().to_string());
            assert_eq!(addr["port"], mapped.port());
            assert_eq!(v["stun"]["message_integrity"], "ok");
        }
    }
    assert_eq!(messages, 18);
    assert_eq!(bad_status, 1);
    assert!(
        bad_out.contains("error: MESSAGE-INTEGRITY does not match"),
        "{bad_out}"
    );
}
