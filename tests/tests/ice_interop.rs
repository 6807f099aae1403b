//! floe's ICE agent against two independent sans-IO ICE agents, in process: str0m's
//! (crate `is`) and webrtc-rs's (crate `rtc-ice`), each in both roles.
//!
//! The two agents share one virtual clock and a direct "network" on loopback addresses
//! (nothing is bound: each transmit is handed to the agent that owns its destination
//! after [`LATENCY`]). Credentials are exchanged as structs, candidates as candidate
//! *lines*: floe's lines are parsed by the other crate and theirs by floe, so the tests
//! cover our RFC 8839 syntax against two other implementations too. Once both sides say
//! they are connected on a nominated pair, application datagrams go both ways.
//!
//! Differences found and how they are handled here (none is a floe bug):
//! - `rtc-ice`'s `unmarshal_candidate` takes the attribute value *without* the
//!   `candidate:` prefix (its `marshal` writes none either; the `rtc` crate strips and adds
//!   it around the agent). With the prefix it does not fail, it reads `candidate:FOUNDATION`
//!   as the foundation, so the prefix is stripped before handing floe's lines over. floe
//!   parses `rtc-ice`'s prefix-less lines as they are (see `floe_ice::sdp`).
//! - `is` writes a `ufrag` extension attribute on its lines; floe keeps it as an
//!   extension and ignores it.
//! - `rtc-ice` gives every host candidate of a family local preference 65535, so its two
//!   host candidates here carry the same priority (RFC 8445 §5.1.2.1 wants them unique)
//!   and the same foundation; floe pairs and checks them like any others.
//! - Neither foreign agent hands application data back: the caller demultiplexes (RFC
//!   7983). The harness gives them every non-STUN datagram from an address their agent has
//!   validated (`is`: a `DiscoveredRecv` source; `rtc-ice`: `is_valid_non_stun_traffic`).
//! - `rtc-ice` draws its tie-breaker and transaction ids from its crypto provider's RNG,
//!   so its runs are not bit-for-bit repeatable; roles are assigned explicitly, so the
//!   outcome is.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_ice::{Agent, AgentConfig, Candidate, ConnectionState, Credentials, Role};

/// floe's host socket.
const FLOE: &str = "127.0.0.1:5000";
/// The foreign agent's host socket.
const FOREIGN: &str = "127.0.0.1:6000";
/// A second host candidate on each side, offered first and with floe's highest local
/// preference, on an "interface" that drops everything: both agents have to give up on
/// the preferred pairs and agree on the one that works.
const FLOE_DEAD: &str = "127.0.0.1:5001";
const FOREIGN_DEAD: &str = "127.0.0.1:6001";
/// One-way delay of every datagram.
const LATENCY: Duration = Duration::from_millis(5);
/// Both sides must be connected on a nominated pair within this much virtual time.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);
/// Application datagrams sent each way after connecting.
const DATAGRAMS: usize = 5;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// One UDP datagram on the virtual wire.
#[derive(Debug, Clone)]
struct Datagram {
    source: SocketAddr,
    destination: SocketAddr,
    data: Vec<u8>,
}

/// What the harness needs from a foreign agent, in its own terms.
trait ForeignAgent {
    /// For failure messages.
    const NAME: &'static str;
    /// An agent with a host candidate on each of `locals`.
    fn new(controlling: bool, locals: &[SocketAddr], now: Instant, seed: u64) -> Self;
    fn credentials(&self) -> Credentials;
    fn set_remote_credentials(&mut self, now: Instant, remote: &Credentials);
    /// The local candidates as lines for the peer.
    fn candidate_lines(&self) -> Vec<String>;
    /// A remote candidate line (as floe wrote it).
    fn add_remote_line(&mut self, line: &str) -> Result<(), String>;
    /// A datagram arrived on `local` from `remote`; application data is returned.
    fn receive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) -> Option<Vec<u8>>;
    fn poll_transmit(&mut self) -> Option<Datagram>;
    fn poll_timeout(&mut self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    /// Drains events; true once connected with a pair to send on.
    fn connected(&mut self) -> bool;
    /// The pair it sends application data on: (local, remote).
    fn selected(&self) -> Option<(SocketAddr, SocketAddr)>;
    /// An application datagram on the selected pair.
    fn send(&self, data: &[u8]) -> Option<Datagram> {
        let (source, destination) = self.selected()?;
        Some(Datagram {
            source,
            destination,
            data: data.to_vec(),
        })
    }
}

/// str0m's agent.
struct Str0m {
    agent: is::IceAgent,
    connected: bool,
    nominated: Option<(SocketAddr, SocketAddr)>,
    /// Remote addresses the agent has seen valid STUN from (`DiscoveredRecv`).
    validated: HashSet<SocketAddr>,
}

impl ForeignAgent for Str0m {
    const NAME: &'static str = "str0m (is 0.12.0)";

    fn new(controlling: bool, locals: &[SocketAddr], now: Instant, seed: u64) -> Self {
        let mut agent = is::IceAgent::new(is::IceCreds {
            ufrag: format!("is{seed:06}"),
            pass: format!("str0m-password-{seed:016}"),
        });
        agent.set_controlling(controlling);
        agent.set_control_tie_breaker(seed);
        for local in locals {
            agent
                .add_local_candidate(is::Candidate::host(*local, "udp").unwrap())
                .expect("is refused its own host candidate");
        }
        agent.handle_timeout(now);
        Str0m {
            agent,
            connected: false,
            nominated: None,
            validated: HashSet::new(),
        }
    }

    fn credentials(&self) -> Credentials {
        let c = self.agent.local_credentials();
        Credentials {
            ufrag: c.ufrag.clone(),
            pwd: c.pass.clone(),
        }
    }

    fn set_remote_credentials(&mut self, _now: Instant, remote: &Credentials) {
        self.agent.set_remote_credentials(is::IceCreds {
            ufrag: remote.ufrag.clone(),
            pass: remote.pwd.clone(),
        });
    }

    fn candidate_lines(&self) -> Vec<String> {
        self.agent
            .local_candidates()
            .map(|c| c.to_sdp_string())
            .collect()
    }

    fn add_remote_line(&mut self, line: &str) -> Result<(), String> {
        let c = is::Candidate::from_sdp_string(line).map_err(|e| e.to_string())?;
        self.agent.add_remote_candidate(c);
        Ok(())
    }

    fn receive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) -> Option<Vec<u8>> {
        if let Ok(message) = is::stun::StunMessage::parse(data) {
            self.agent.handle_packet(
                now,
                is::stun::StunPacket {
                    proto: is::Protocol::Udp,
                    source: remote,
                    destination: local,
                    message,
                },
            );
            return None;
        }
        self.validated.contains(&remote).then(|| data.to_vec())
    }

    fn poll_transmit(&mut self) -> Option<Datagram> {
        self.agent.poll_transmit().map(|t| Datagram {
            source: t.source,
            destination: t.destination,
            data: t.contents.into(),
        })
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.agent.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.agent.handle_timeout(now);
    }

    fn connected(&mut self) -> bool {
        while let Some(event) = self.agent.poll_event() {
            match event {
                is::IceAgentEvent::IceConnectionStateChange(state) => {
                    self.connected = state.is_connected();
                }
                is::IceAgentEvent::DiscoveredRecv { source, .. } => {
                    self.validated.insert(source);
                }
                is::IceAgentEvent::NominatedSend {
                    source,
                    destination,
                    ..
                } => self.nominated = Some((source, destination)),
                is::IceAgentEvent::IceRestart(_) => {}
            }
        }
        self.connected && self.nominated.is_some()
    }

    fn selected(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.nominated
    }
}

/// webrtc-rs's sans-IO agent.
struct WebrtcRs {
    agent: rtc_ice::Agent,
    controlling: bool,
}

impl ForeignAgent for WebrtcRs {
    const NAME: &'static str = "webrtc-rs (rtc-ice 0.21.1)";

    fn new(controlling: bool, locals: &[SocketAddr], now: Instant, seed: u64) -> Self {
        let config = rtc_ice::AgentConfig {
            local_ufrag: format!("rtc{seed:06}"),
            local_pwd: format!("webrtc-rs-password-{seed:016}"),
            is_controlling: controlling,
            // No mDNS: nothing here may leave the process.
            multicast_dns_mode: rtc_ice::mdns::MulticastDnsMode::Disabled,
            ..rtc_ice::AgentConfig::default()
        };
        let provider = rtc_ice::crypto::default_provider().unwrap();
        let mut agent = rtc_ice::Agent::new(now, Arc::new(config), provider).unwrap();
        for local in locals {
            let host = rtc_ice::candidate::candidate_host::CandidateHostConfig {
                base_config: rtc_ice::candidate::CandidateConfig {
                    network: "udp".into(),
                    address: local.ip().to_string(),
                    port: local.port(),
                    component: 1,
                    ..rtc_ice::candidate::CandidateConfig::default()
                },
                ..Default::default()
            }
            .new_candidate_host()
            .unwrap();
            assert!(agent.add_local_candidate(host).unwrap());
        }
        WebrtcRs { agent, controlling }
    }

    fn credentials(&self) -> Credentials {
        let c = self.agent.get_local_credentials();
        Credentials {
            ufrag: c.ufrag.clone(),
            pwd: c.pwd.clone(),
        }
    }

    fn set_remote_credentials(&mut self, now: Instant, remote: &Credentials) {
        self.agent
            .start_connectivity_checks(
                now,
                self.controlling,
                remote.ufrag.clone(),
                remote.pwd.clone(),
            )
            .unwrap();
    }

    fn candidate_lines(&self) -> Vec<String> {
        // `marshal` writes the attribute value without `candidate:`; floe takes it as is.
        self.agent
            .get_local_candidates()
            .iter()
            .map(rtc_ice::candidate::Candidate::marshal)
            .collect()
    }

    fn add_remote_line(&mut self, line: &str) -> Result<(), String> {
        // See the module docs: rtc-ice wants the value after `candidate:`.
        let value = line.strip_prefix("candidate:").unwrap_or(line);
        let c = rtc_ice::candidate::unmarshal_candidate(value).map_err(|e| e.to_string())?;
        if self
            .agent
            .add_remote_candidate(c)
            .map_err(|e| e.to_string())?
        {
            Ok(())
        } else {
            Err("ignored by the agent".into())
        }
    }

    fn receive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) -> Option<Vec<u8>> {
        use sansio::Protocol;
        let transport = rtc_shared::TransportContext {
            local_addr: local,
            peer_addr: remote,
            transport_protocol: rtc_shared::TransportProtocol::UDP,
            ecn: None,
        };
        // RFC 7983: STUN starts with 0 or 1; anything else is the application's.
        if data.first().is_some_and(|b| *b < 2) {
            // Errors are inputs it would drop anyway (unknown transaction, ...).
            let _ = self.agent.handle_read(rtc_shared::TaggedBytesMut {
                now,
                transport,
                message: bytes::BytesMut::from(data),
            });
            return None;
        }
        self.agent
            .is_valid_non_stun_traffic(now, transport)
            .then(|| data.to_vec())
    }

    fn poll_transmit(&mut self) -> Option<Datagram> {
        use sansio::Protocol;
        self.agent.poll_write().map(|t| Datagram {
            source: t.transport.local_addr,
            destination: t.transport.peer_addr,
            data: t.message.to_vec(),
        })
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        use sansio::Protocol;
        self.agent.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        use sansio::Protocol;
        self.agent.handle_timeout(now).unwrap();
    }

    fn connected(&mut self) -> bool {
        use sansio::Protocol;
        while self.agent.poll_event().is_some() {}
        matches!(
            self.agent.state(),
            rtc_ice::state::ConnectionState::Connected | rtc_ice::state::ConnectionState::Completed
        ) && self.selected().is_some()
    }

    fn selected(&self) -> Option<(SocketAddr, SocketAddr)> {
        let (local, remote) = self.agent.get_selected_candidate_pair()?;
        Some((local.addr(), remote.addr()))
    }
}

/// floe and a foreign agent on one virtual clock and a direct wire between them.
struct Harness<F> {
    now: Instant,
    floe: Agent,
    foreign: F,
    seed: u64,
    in_flight: Vec<(Instant, Datagram)>,
    floe_received: Vec<Vec<u8>>,
    foreign_received: Vec<Vec<u8>>,
    /// Datagrams to an address nobody owns.
    stray: Vec<Datagram>,
    /// Datagrams the dead interfaces dropped.
    dropped: usize,
    /// Candidate lines exchanged, for failure messages.
    lines: Vec<String>,
}

impl<F: ForeignAgent> Harness<F> {
    /// Both agents with host candidates, credentials and candidate lines exchanged.
    fn new(floe_role: Role, seed: u64) -> Self {
        let now = Instant::now();
        let mut floe = Agent::new(AgentConfig::default(), floe_role, now, seed);
        floe.add_host(now, addr(FLOE_DEAD), 0);
        floe.add_host(now, addr(FLOE), 1);
        let mut foreign = F::new(
            floe_role == Role::Controlled,
            &[addr(FOREIGN_DEAD), addr(FOREIGN)],
            now,
            seed,
        );

        floe.set_remote_credentials(foreign.credentials());
        foreign.set_remote_credentials(now, floe.local_credentials());

        let mut lines = Vec::new();
        for line in floe.local_candidates().map(ToString::to_string) {
            foreign.add_remote_line(&line).unwrap_or_else(|e| {
                panic!(
                    "{} refused floe's line {line:?}: {e} (seed {seed})",
                    F::NAME
                )
            });
            lines.push(format!("floe -> {}: {line}", F::NAME));
        }
        for line in foreign.candidate_lines() {
            let c = Candidate::parse(&line).unwrap_or_else(|e| {
                panic!(
                    "floe refused {}'s line {line:?}: {e} (seed {seed})",
                    F::NAME
                )
            });
            assert!(
                floe.add_remote_candidate(now, c),
                "floe ignored {}'s line {line:?} (seed {seed})",
                F::NAME
            );
            lines.push(format!("{} -> floe: {line}", F::NAME));
        }
        floe.handle_end_of_remote_candidates(now);

        Harness {
            now,
            floe,
            foreign,
            seed,
            in_flight: Vec::new(),
            floe_received: Vec::new(),
            foreign_received: Vec::new(),
            stray: Vec::new(),
            dropped: 0,
            lines,
        }
    }

    fn floe_connected(&mut self) -> bool {
        while self.floe.poll_event().is_some() {}
        matches!(
            self.floe.connection_state(),
            ConnectionState::Connected | ConnectionState::Completed
        ) && self.floe.selected_pair().is_some_and(|p| p.nominated)
    }

    fn describe(&self) -> String {
        format!(
            "seed {}, floe {FLOE} ({:?}, {:?}, selected {:?}), {} {FOREIGN} (selected {:?}), \
             {} stray datagrams {:?}, lines:\n  {}",
            self.seed,
            self.floe.role(),
            self.floe.connection_state(),
            self.floe.selected_pair(),
            F::NAME,
            self.foreign.selected(),
            self.stray.len(),
            self.stray.first(),
            self.lines.join("\n  ")
        )
    }

    /// Moves queued transmits onto the wire, then advances the clock to the next thing
    /// that happens (a delivery or a timer) and does it. False when nothing is left.
    fn step(&mut self) -> bool {
        while let Some(t) = self.floe.poll_transmit() {
            self.in_flight.push((
                self.now + LATENCY,
                Datagram {
                    source: t.source,
                    destination: t.destination,
                    data: t.data,
                },
            ));
        }
        while let Some(d) = self.foreign.poll_transmit() {
            self.in_flight.push((self.now + LATENCY, d));
        }
        let next = [
            self.in_flight.iter().map(|(at, _)| *at).min(),
            self.floe.poll_timeout(),
            self.foreign.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;

        // In send order: `in_flight` is appended to, and every datagram has one latency.
        let (due, later) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.in_flight = later;
        let dead = [addr(FLOE_DEAD), addr(FOREIGN_DEAD)];
        for (_, d) in due {
            if dead.contains(&d.source) || dead.contains(&d.destination) {
                self.dropped += 1;
            } else if d.destination == addr(FLOE) {
                let received = &mut self.floe_received;
                self.floe
                    .handle_receive(now, d.destination, d.source, &d.data, |_, data| {
                        received.push(data.to_vec());
                    });
            } else if d.destination == addr(FOREIGN) {
                if let Some(data) = self.foreign.receive(now, d.destination, d.source, &d.data) {
                    self.foreign_received.push(data);
                }
            } else {
                self.stray.push(d);
            }
        }
        if self.floe.poll_timeout().is_some_and(|t| t <= now) {
            self.floe.handle_timeout(now);
        }
        if self.foreign.poll_timeout().is_some_and(|t| t <= now) {
            self.foreign.handle_timeout(now);
        }
        true
    }

    /// Runs until `done` or `limit` of virtual time has passed; whether `done` held.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let deadline = self.now + limit;
        // Bounds the loop too if an agent asks to be woken at the same instant forever.
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

    /// Runs until both sides are connected on a nominated pair, then checks that they
    /// chose the same 5-tuple and that application data gets through both ways.
    fn connect_and_exchange_data(&mut self) {
        let connected = self.run_until(CONNECT_WITHIN, |h| {
            let floe = h.floe_connected();
            h.foreign.connected() && floe
        });
        assert!(
            connected,
            "not connected within {CONNECT_WITHIN:?}: {}",
            self.describe()
        );

        let floe_pair = self.floe.selected_pair().unwrap();
        let (foreign_local, foreign_remote) = self.foreign.selected().unwrap();
        assert_eq!(
            (floe_pair.local, floe_pair.remote),
            (foreign_remote, foreign_local),
            "the two sides selected different pairs: {}",
            self.describe()
        );
        assert_eq!(
            (floe_pair.local, floe_pair.remote),
            (addr(FLOE), addr(FOREIGN)),
            "{}",
            self.describe()
        );

        assert!(
            self.dropped > 0,
            "the dead interfaces were never tried: {}",
            self.describe()
        );
        self.exchange_data("after connecting");

        // RFC 7675 consent freshness and keepalives across each other's STUN stacks:
        // past floe's 30 s consent timeout, both sides still up on the same pair.
        self.run_until(Duration::from_secs(40), |_| false);
        let floe_connected = self.floe_connected();
        assert!(
            floe_connected && self.foreign.connected(),
            "lost the connection within 40 s: {}",
            self.describe()
        );
        assert_eq!(
            self.floe.selected_pair().map(|p| (p.local, p.remote)),
            self.foreign
                .selected()
                .map(|(local, remote)| (remote, local)),
            "{}",
            self.describe()
        );
        self.exchange_data("40 s later");
        assert!(self.stray.is_empty(), "{}", self.describe());
    }

    /// Sends [`DATAGRAMS`] each way on the selected pair; all must arrive, in order.
    fn exchange_data(&mut self, when: &str) {
        self.floe_received.clear();
        self.foreign_received.clear();
        let mut to_foreign = Vec::new();
        let mut to_floe = Vec::new();
        for i in 0..DATAGRAMS {
            let data = format!("floe to {} #{i} {when}", F::NAME).into_bytes();
            let t = self.floe.send(&data).unwrap();
            self.in_flight.push((
                self.now + LATENCY,
                Datagram {
                    source: t.source,
                    destination: t.destination,
                    data: t.data,
                },
            ));
            to_foreign.push(data);

            let data = format!("{} to floe #{i} {when}", F::NAME).into_bytes();
            let d = self.foreign.send(&data).unwrap();
            self.in_flight.push((self.now + LATENCY, d));
            to_floe.push(data);
        }
        let delivered = self.run_until(Duration::from_secs(1), |h| {
            h.floe_received.len() >= DATAGRAMS && h.foreign_received.len() >= DATAGRAMS
        });
        assert!(
            delivered,
            "data lost {when}: floe got {:?}, {} got {:?}: {}",
            self.floe_received,
            F::NAME,
            self.foreign_received,
            self.describe()
        );
        assert_eq!(self.floe_received, to_floe, "{when}: {}", self.describe());
        assert_eq!(
            self.foreign_received,
            to_foreign,
            "{when}: {}",
            self.describe()
        );
    }
}

#[test]
fn floe_controlling_connects_to_str0m_and_exchanges_data() {
    Harness::<Str0m>::new(Role::Controlling, 1).connect_and_exchange_data();
}

#[test]
fn str0m_controlling_connects_to_floe_and_exchanges_data() {
    Harness::<Str0m>::new(Role::Controlled, 2).connect_and_exchange_data();
}

#[test]
fn floe_controlling_connects_to_webrtc_rs_and_exchanges_data() {
    Harness::<WebrtcRs>::new(Role::Controlling, 3).connect_and_exchange_data();
}

#[test]
fn webrtc_rs_controlling_connects_to_floe_and_exchanges_data() {
    Harness::<WebrtcRs>::new(Role::Controlled, 4).connect_and_exchange_data();
}
