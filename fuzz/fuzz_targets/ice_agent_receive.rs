//! The ICE agent under arbitrary datagrams, with and without valid credentials.
//!
//! Operations: 0 = a raw datagram from a remote candidate (or a new address); 1 = a
//! Binding request correctly signed with the agent's own password (as a real peer's check
//! would be), whose attributes come from the input; 2 = a response to the agent's latest
//! check, signed with the peer's password, attributes from the input; 3 = time passes.
//! With bit 0x40 set, operation 0 feeds the bytes to the agent's TCP stream to its TURN
//! server instead (arbitrary framing), and with 0x20 as well, to its UDP socket as if from
//! the TURN server. With 0x20 alone, operations 0-2 arrive on ICE-TCP (RFC 6544)
//! connections instead: 0 and 1 on the TCP listener (the passive candidate) from the
//! source, 2 (a response) on the active candidate's connection to the signalled passive
//! TCP candidate; and 3 closes that connection.
//!
//! ICE-TCP properties: every transmit from a TCP base is one whole RFC 4571 frame, and
//! goes to an allowed address like the rest.
//!
//! Property, besides never panicking: the agent sends only to addresses it was given or
//! learned. Every destination of a transmit (from `poll_transmit`, and the one `send`
//! returns) must be in `allowed`, which the target builds from what it fed the agent:
//!
//! - signalled: the remote candidate it was given;
//! - configured: its TURN server and STUN servers (the config has none);
//! - learned: the source of every datagram the target delivered to the agent's host socket
//!   that is an authenticated check, by the agent's own rule (RFC 8445 §7.3: a Binding
//!   request whose USERNAME starts with the agent's ufrag and whose MESSAGE-INTEGRITY
//!   verifies with the agent's password). Op 1 builds such checks, and op 0's raw bytes are
//!   tested the same way. Only an authenticated check can make an address a peer-reflexive
//!   remote candidate, and only such a source is answered.
//!
//! Not in `allowed`, on purpose: XOR-MAPPED-ADDRESS values in check responses (they become
//! peer-reflexive *local* candidates, never destinations) and the relayed and mapped
//! addresses of a TURN allocation (local candidates too). A peer learned through the relay
//! (an authenticated check inside a Data indication or ChannelData from the TURN server) is
//! paired only with the relayed candidate it arrived on, and everything sent from a relayed
//! candidate goes to the TURN server; the target adds no host or remote candidate after the
//! start that could pair such a peer with the host socket. So bytes fed on the TURN paths
//! (0x40, 0x60) add nothing, and an agent that sent straight to a relay-learned peer would
//! trip the assertion: that is worth a look, not a false alarm.
#![no_main]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_ice::{
    Agent, AgentConfig, Candidate, CandidateKind, Credentials, Role, Transport, TurnServer,
};
use floe_stun::attributes::Username;
use floe_stun::{
    AttrType, Class, IntegrityKey, Message, MessageBuilder, MessageType, TransactionId,
};
use libfuzzer_sys::fuzz_target;

/// Whether the agent must take `bytes` as an authenticated check (RFC 8445 §7.3).
fn authenticated_check(bytes: &[u8], ufrag: &str, key: &IntegrityKey) -> bool {
    Message::parse(bytes).is_ok_and(|m| {
        m.message_type() == MessageType::BINDING_REQUEST
            && m.get::<Username>()
                .ok()
                .flatten()
                .is_some_and(|u| u.0.split(':').next() == Some(ufrag))
            && m.verify(key).is_ok()
    })
}

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let role = if data.first().is_some_and(|b| b & 1 == 1) {
        Role::Controlling
    } else {
        Role::Controlled
    };
    let mut config = AgentConfig::default();
    config.max_pairs = 16;
    config.max_remote_candidates = 16;
    config.ice_tcp = true;
    let mut allowed: HashSet<SocketAddr> = config.stun_servers.iter().copied().collect();
    let mut agent = Agent::new(config, role, now, 1);
    let local: SocketAddr = "192.0.2.1:5000".parse().unwrap();
    agent.add_host(now, local, 0);
    let listener: SocketAddr = "192.0.2.1:5100".parse().unwrap();
    let active: SocketAddr = "192.0.2.1:9".parse().unwrap();
    agent.add_tcp_host(now, listener, 0);
    let turn: SocketAddr = "192.0.2.99:3478".parse().unwrap();
    agent.add_turn_server_with(
        now,
        TurnServer::new(local, turn, "user", "password")
            .with_transports(&[Transport::Udp, Transport::Tcp]),
    );
    let peer = Credentials {
        ufrag: "peer".into(),
        pwd: "peer-password-0123456789".into(),
    };
    agent.set_remote_credentials(peer.clone());
    let remote: SocketAddr = "198.51.100.7:6000".parse().unwrap();
    agent.add_remote_candidate(
        now,
        Candidate::new(CandidateKind::Host, remote, remote, None, 65_535),
    );
    let remote_tcp: SocketAddr = "198.51.100.7:7000".parse().unwrap();
    agent.add_remote_candidate(
        now,
        Candidate::tcp_host(remote_tcp, floe_ice::TcpType::Passive, 0),
    );
    allowed.extend([remote, turn, remote_tcp]);
    let own_ufrag = agent.local_credentials().ufrag.clone();
    let own_key = IntegrityKey::short_term(&agent.local_credentials().pwd).unwrap();
    let peer_key = IntegrityKey::short_term(&peer.pwd).unwrap();
    let username = format!("{}:peer", agent.local_credentials().ufrag);
    let mut last_check: Option<Vec<u8>> = None;
    let mut tid = 0u8;
    let mut rest = data.get(1..).unwrap_or(&[]);
    while let Some((&op, tail)) = rest.split_first() {
        let len = usize::from(*tail.first().unwrap_or(&0));
        let chunk = tail.get(1..1 + len).unwrap_or(tail.get(1..).unwrap_or(&[]));
        rest = tail.get(1 + chunk.len()..).unwrap_or(&[]);
        let from = if op & 0x80 != 0 {
            SocketAddr::from(([203, 0, 113, op & 0x7F], 7000))
        } else {
            remote
        };
        let tcp = op & 0x60 == 0x20;
        match op & 3 {
            0 if tcp => {
                if authenticated_check(chunk, &own_ufrag, &own_key) {
                    allowed.insert(from);
                }
                agent.handle_tcp_receive(now, listener, from, chunk, |_, _| {});
            }
            0 if op & 0x60 == 0x60 => {
                agent.handle_receive(now, local, turn, chunk, |_, _| {});
            }
            0 if op & 0x40 != 0 => {
                agent.handle_stream_receive(now, Transport::Tcp, turn, chunk, |_, _| {});
            }
            0 => {
                if authenticated_check(chunk, &own_ufrag, &own_key) {
                    allowed.insert(from);
                }
                agent.handle_receive(now, local, from, chunk, |_, _| {});
            }
            1 | 2 => {
                let signed_response = op & 3 == 2;
                let (typ, id) = match (&last_check, signed_response) {
                    (Some(c), true) => match Message::parse(c) {
                        Ok(m) => (
                            m.message_type().with_class(
                                if chunk.first().is_some_and(|b| b & 1 == 1) {
                                    Class::Error
                                } else {
                                    Class::Success
                                },
                            ),
                            m.transaction_id(),
                        ),
                        Err(_) => continue,
                    },
                    (None, true) => continue,
                    _ => {
                        tid = tid.wrapping_add(1);
                        (MessageType::BINDING_REQUEST, TransactionId([tid; 12]))
                    }
                };
                let mut buf = vec![0u8; 2048];
                let Ok(mut b) = MessageBuilder::new(&mut buf, typ, id) else {
                    continue;
                };
                if !signed_response {
                    let _ = b.add(&Username(&username));
                }
                let mut attrs = chunk.get(1..).unwrap_or(&[]);
                while attrs.len() >= 3 {
                    let t = u16::from_be_bytes([attrs[0], attrs[1]]);
                    let l = usize::from(attrs[2]).min(attrs.len() - 3);
                    let _ = b.add_raw(AttrType(t), &attrs[3..3 + l]);
                    attrs = &attrs[3 + l..];
                }
                let key = if signed_response { &peer_key } else { &own_key };
                if b.add_message_integrity(key)
                    .and_then(|b| b.add_fingerprint())
                    .is_err()
                {
                    continue;
                }
                let n = b.len();
                if authenticated_check(&buf[..n], &own_ufrag, &own_key) {
                    allowed.insert(from);
                }
                match (tcp, signed_response) {
                    (true, true) => {
                        agent.handle_tcp_receive(now, active, remote_tcp, &buf[..n], |_, _| {});
                    }
                    (true, false) => {
                        agent.handle_tcp_receive(now, listener, from, &buf[..n], |_, _| {});
                    }
                    _ => agent.handle_receive(now, local, from, &buf[..n], |_, _| {}),
                }
            }
            _ if tcp => agent.handle_tcp_closed(now, active, remote_tcp),
            _ => {
                now += Duration::from_millis(u64::from(chunk.first().copied().unwrap_or(50)) * 20);
                agent.handle_timeout(now);
            }
        }
        while let Some(t) = agent.poll_transmit() {
            assert!(
                allowed.contains(&t.destination),
                "transmit to {} ({:?}), never signalled or learned; allowed: {allowed:?}",
                t.destination,
                t.transport
            );
            let mut packet = t.data;
            if agent.is_tcp_base(t.source) {
                assert_eq!(t.transport, Transport::Tcp);
                let len = packet.get(..2).map(|h| usize::from(u16::from_be_bytes([h[0], h[1]])));
                assert_eq!(len, Some(packet.len() - 2), "one whole RFC 4571 frame");
                packet.drain(..2);
            }
            if Message::parse(&packet).is_ok_and(|m| m.class() == Class::Request) {
                last_check = Some(packet);
            }
        }
        while agent.poll_event().is_some() {}
        if let Some(t) = agent.poll_timeout() {
            assert!(t >= start, "timeouts never go backwards past the start");
        }
        if let Ok(t) = agent.send(b"data") {
            assert!(
                allowed.contains(&t.destination),
                "data sent to {}, never signalled or learned; allowed: {allowed:?}",
                t.destination
            );
        }
    }
});
