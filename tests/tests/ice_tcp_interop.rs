//! ICE-TCP (RFC 6544) between floe's agent and webrtc-rs's (crate `rtc-ice`, a port of
//! pion/ice, which offers TCP candidates), in process, with UDP between them dead and no
//! TURN server: the two connect over TCP candidates, in both roles, and carry data.
//!
//! The harness models TCP connections: a connection is opened by the first packet an
//! agent sends from an active candidate to a passive one (a listener the harness knows),
//! gets an ephemeral port on the connecting side, and delivers in order with one latency.
//! floe frames what it sends (RFC 4571) and takes frame payloads; `rtc-ice` leaves
//! framing to its caller (pion's TCP mux does it), so the harness checks floe's frames
//! and strips them for `rtc-ice`, and frames what `rtc-ice` sends for floe.
//!
//! What `rtc-ice` does differently (none is a floe bug): it ignores remote active
//! candidates (its passive candidate learns the connecting peer as peer-reflexive, as
//! RFC 6544 §7.2 expects) and writes its active candidate with the port it was given.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_ice::{Agent, AgentConfig, Candidate, ConnectionState, Role, Transport};

/// floe's UDP socket (dead: UDP is blocked) and TCP listener.
const FLOE_UDP: &str = "127.0.0.1:5000";
const FLOE_TCP: &str = "127.0.0.1:5100";
/// rtc-ice's UDP socket (dead), TCP listener (passive) and active candidate.
const RTC_UDP: &str = "127.0.0.1:6000";
const RTC_PASSIVE: &str = "127.0.0.1:6100";
const RTC_ACTIVE: &str = "127.0.0.1:6101";
const LATENCY: Duration = Duration::from_millis(5);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// One TCP connection, as each side names its ends.
#[derive(Debug, Clone, Copy)]
struct Conn {
    /// floe's (local base, remote).
    floe: (SocketAddr, SocketAddr),
    /// rtc-ice's (local candidate address, peer).
    rtc: (SocketAddr, SocketAddr),
}

enum To {
    Floe,
    Rtc,
}

struct Harness {
    now: Instant,
    floe: Agent,
    rtc: rtc_ice::Agent,
    conns: Vec<Conn>,
    next_port: u16,
    in_flight: Vec<(Instant, To, Conn, Vec<u8>)>,
    floe_received: Vec<Vec<u8>>,
    rtc_received: Vec<Vec<u8>>,
    udp_dropped: usize,
    refused: usize,
}

fn rtc_candidate(
    network: &str,
    at: &str,
    tcp_type: rtc_ice::tcp_type::TcpType,
) -> rtc_ice::candidate::Candidate {
    let a = addr(at);
    rtc_ice::candidate::candidate_host::CandidateHostConfig {
        base_config: rtc_ice::candidate::CandidateConfig {
            network: network.into(),
            address: a.ip().to_string(),
            port: a.port(),
            component: 1,
            ..rtc_ice::candidate::CandidateConfig::default()
        },
        tcp_type,
    }
    .new_candidate_host()
    .unwrap()
}

impl Harness {
    fn new(floe_role: Role, seed: u64) -> Harness {
        use rtc_ice::tcp_type::TcpType;
        let now = Instant::now();
        let mut config = AgentConfig::default();
        config.ice_tcp = true;
        let mut floe = Agent::new(config, floe_role, now, seed);
        floe.add_host(now, addr(FLOE_UDP), 0);
        floe.add_tcp_host(now, addr(FLOE_TCP), 0);

        let rtc_config = rtc_ice::AgentConfig {
            local_ufrag: format!("rtc{seed:06}"),
            local_pwd: format!("webrtc-rs-password-{seed:016}"),
            is_controlling: floe_role == Role::Controlled,
            multicast_dns_mode: rtc_ice::mdns::MulticastDnsMode::Disabled,
            network_types: vec![
                rtc_ice::network_type::NetworkType::Udp4,
                rtc_ice::network_type::NetworkType::Tcp4,
            ],
            ..rtc_ice::AgentConfig::default()
        };
        let provider = rtc_ice::crypto::default_provider().unwrap();
        let mut rtc = rtc_ice::Agent::new(now, Arc::new(rtc_config), provider).unwrap();
        for c in [
            rtc_candidate("udp", RTC_UDP, TcpType::Unspecified),
            rtc_candidate("tcp", RTC_PASSIVE, TcpType::Passive),
            rtc_candidate("tcp", RTC_ACTIVE, TcpType::Active),
        ] {
            assert!(rtc.add_local_candidate(c).unwrap());
        }

        let floe_creds = floe.local_credentials().clone();
        let c = rtc.get_local_credentials();
        floe.set_remote_credentials(floe_ice::Credentials {
            ufrag: c.ufrag.clone(),
            pwd: c.pwd.clone(),
        });
        rtc.start_connectivity_checks(
            now,
            floe_role == Role::Controlled,
            floe_creds.ufrag.clone(),
            floe_creds.pwd.clone(),
        )
        .unwrap();
        // Candidate lines both ways: floe's TCP lines parsed by rtc-ice, and theirs by floe.
        for line in floe.local_candidates().map(ToString::to_string) {
            let value = line.strip_prefix("candidate:").unwrap_or(&line);
            let c = rtc_ice::candidate::unmarshal_candidate(value)
                .unwrap_or_else(|e| panic!("rtc-ice refused floe's line {line:?}: {e}"));
            // rtc-ice ignores remote active candidates (see the module docs).
            let _ = rtc.add_remote_candidate(c).unwrap();
        }
        for c in rtc.get_local_candidates() {
            let line = c.marshal();
            let parsed = Candidate::parse(&line)
                .unwrap_or_else(|e| panic!("floe refused rtc-ice's line {line:?}: {e}"));
            assert!(
                floe.add_remote_candidate(now, parsed),
                "floe ignored {line:?}"
            );
        }
        floe.handle_end_of_remote_candidates(now);
        Harness {
            now,
            floe,
            rtc,
            conns: Vec::new(),
            next_port: 40_000,
            in_flight: Vec::new(),
            floe_received: Vec::new(),
            rtc_received: Vec::new(),
            udp_dropped: 0,
            refused: 0,
        }
    }

    fn ephemeral(&mut self) -> SocketAddr {
        self.next_port += 1;
        SocketAddr::new(addr(FLOE_TCP).ip(), self.next_port)
    }

    /// A packet floe sent: UDP is dropped; TCP goes on its connection (opened from an
    /// active base to rtc-ice's listener).
    fn carry_floe(&mut self, t: &floe_ice::Transmit) {
        if t.transport == Transport::Udp {
            self.udp_dropped += 1;
            return;
        }
        let (len, body) = t.data.split_at(2);
        assert_eq!(
            usize::from(u16::from_be_bytes([len[0], len[1]])),
            body.len(),
            "RFC 4571 frame"
        );
        let key = (t.source, t.destination);
        let conn = match self.conns.iter().find(|c| c.floe == key) {
            Some(c) => *c,
            None if t.source.port() == 9 && t.destination == addr(RTC_PASSIVE) => {
                let c = Conn {
                    floe: key,
                    rtc: (addr(RTC_PASSIVE), self.ephemeral()),
                };
                self.conns.push(c);
                c
            }
            None => {
                self.refused += 1;
                self.floe
                    .handle_tcp_closed(self.now, t.source, t.destination);
                return;
            }
        };
        self.in_flight
            .push((self.now + LATENCY, To::Rtc, conn, body.to_vec()));
    }

    /// A packet rtc-ice sent (`tcp`: on TCP), the same way.
    fn carry_rtc(&mut self, local: SocketAddr, peer: SocketAddr, tcp: bool, data: Vec<u8>) {
        if !tcp {
            self.udp_dropped += 1;
            return;
        }
        let conn = match self.conns.iter().find(|c| c.rtc == (local, peer)) {
            Some(c) => *c,
            None if local == addr(RTC_ACTIVE) && peer == addr(FLOE_TCP) => {
                let c = Conn {
                    floe: (addr(FLOE_TCP), self.ephemeral()),
                    rtc: (local, peer),
                };
                self.conns.push(c);
                c
            }
            None => {
                self.refused += 1;
                return;
            }
        };
        self.in_flight
            .push((self.now + LATENCY, To::Floe, conn, data));
    }

    fn step(&mut self) -> bool {
        use sansio::Protocol;
        while let Some(t) = self.floe.poll_transmit() {
            self.carry_floe(&t);
        }
        while let Some(t) = self.rtc.poll_write() {
            let tcp = t.transport.transport_protocol == rtc_shared::TransportProtocol::TCP;
            self.carry_rtc(
                t.transport.local_addr,
                t.transport.peer_addr,
                tcp,
                t.message.to_vec(),
            );
        }
        let next = [
            self.in_flight.iter().map(|(at, ..)| *at).min(),
            self.floe.poll_timeout(),
            self.rtc.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { return false };
        self.now = self.now.max(next);
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|(at, ..)| *at <= now);
        self.in_flight = later;
        for (_, to, conn, data) in due {
            match to {
                To::Floe => {
                    let received = &mut self.floe_received;
                    self.floe
                        .handle_tcp_receive(now, conn.floe.0, conn.floe.1, &data, |_, d| {
                            received.push(d.to_vec());
                        });
                }
                To::Rtc => {
                    let transport = rtc_shared::TransportContext {
                        local_addr: conn.rtc.0,
                        peer_addr: conn.rtc.1,
                        transport_protocol: rtc_shared::TransportProtocol::TCP,
                        ecn: None,
                    };
                    if data.first().is_some_and(|b| *b < 2) {
                        let _ = self.rtc.handle_read(rtc_shared::TaggedBytesMut {
                            now,
                            transport,
                            message: bytes::BytesMut::from(&data[..]),
                        });
                    } else if self.rtc.is_valid_non_stun_traffic(now, transport) {
                        self.rtc_received.push(data);
                    }
                }
            }
        }
        if self.floe.poll_timeout().is_some_and(|t| t <= now) {
            self.floe.handle_timeout(now);
        }
        if self.rtc.poll_timeout().is_some_and(|t| t <= now) {
            self.rtc.handle_timeout(now).unwrap();
        }
        true
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let deadline = self.now + limit;
        for _ in 0..1_000_000 {
            if done(self) {
                return true;
            }
            if self.now > deadline || !self.step() {
                return done(self);
            }
        }
        false
    }

    fn both_connected(&mut self) -> bool {
        use sansio::Protocol;
        while self.floe.poll_event().is_some() {}
        while self.rtc.poll_event().is_some() {}
        let floe = matches!(
            self.floe.connection_state(),
            ConnectionState::Connected | ConnectionState::Completed
        ) && self.floe.selected_pair().is_some_and(|p| p.nominated);
        let rtc = matches!(
            self.rtc.state(),
            rtc_ice::state::ConnectionState::Connected | rtc_ice::state::ConnectionState::Completed
        ) && self.rtc.get_selected_candidate_pair().is_some();
        floe && rtc
    }

    fn describe(&self) -> String {
        format!(
            "floe {:?} {:?} selected {:?}; rtc-ice {:?} selected {:?}; connections {:?}; \
             {} UDP dropped, {} refused",
            self.floe.role(),
            self.floe.connection_state(),
            self.floe.selected_pair(),
            self.rtc.state(),
            self.rtc
                .get_selected_candidate_pair()
                .map(|(l, r)| (l.addr(), r.addr())),
            self.conns,
            self.udp_dropped,
            self.refused
        )
    }

    fn connect_and_exchange(&mut self) {
        let ok = self.run_until(Duration::from_secs(10), Harness::both_connected);
        assert!(ok, "not connected over ICE-TCP: {}", self.describe());
        let p = self.floe.selected_pair().unwrap();
        assert_eq!(p.transport, Transport::Tcp, "{}", self.describe());
        assert!(
            self.udp_dropped > 0,
            "UDP was never tried: {}",
            self.describe()
        );
        let conn = *self
            .conns
            .iter()
            .find(|c| c.floe == (p.local, p.remote))
            .expect("the selected pair's connection");
        let (rl, rr) = self
            .rtc
            .get_selected_candidate_pair()
            .map(|(l, r)| (l.addr(), r.addr()))
            .unwrap();
        assert_eq!(
            conn.rtc,
            (rl, rr),
            "different connections selected: {}",
            self.describe()
        );
        for round in 0..2 {
            self.floe_received.clear();
            self.rtc_received.clear();
            for i in 0..5 {
                let d = format!("floe to rtc-ice #{i}").into_bytes();
                let t = self.floe.send(&d).unwrap();
                self.carry_floe(&t);
                // rtc-ice's data goes on its selected pair, as its caller would send it.
                let d = format!("rtc-ice to floe #{i}").into_bytes();
                self.carry_rtc(rl, rr, true, d);
            }
            let got = self.run_until(Duration::from_secs(1), |h| {
                h.floe_received.len() >= 5 && h.rtc_received.len() >= 5
            });
            assert!(got, "round {round}: data lost: {}", self.describe());
            // Consent and keepalives over TCP across both STUN stacks: still up 40 s on.
            self.run_until(Duration::from_secs(40), |_| false);
            assert!(
                self.both_connected(),
                "lost after 40 s: {}",
                self.describe()
            );
        }
    }
}

#[test]
fn floe_controlling_connects_to_webrtc_rs_over_ice_tcp() {
    Harness::new(Role::Controlling, 5).connect_and_exchange();
}

#[test]
fn webrtc_rs_controlling_connects_to_floe_over_ice_tcp() {
    Harness::new(Role::Controlled, 6).connect_and_exchange();
}

#[test]
fn floe_and_webrtc_rs_exchange_tcp_candidate_lines() {
    let h = Harness::new(Role::Controlling, 7);
    let tcp: Vec<String> = h
        .floe
        .remote_candidates()
        .filter(|c| c.is_tcp())
        .map(ToString::to_string)
        .collect();
    assert_eq!(tcp.len(), 2, "rtc-ice's passive and active lines: {tcp:?}");
    assert!(tcp.iter().any(|l| l.contains("tcptype passive")), "{tcp:?}");
    assert!(tcp.iter().any(|l| l.contains("tcptype active")), "{tcp:?}");
}
