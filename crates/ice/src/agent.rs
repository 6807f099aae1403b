//! The ICE agent (RFC 8445), sans-IO: the orchestration of its parts.
//!
//! The parts own their state: the `Checklist` (pairs, triggered checks, Ta pacing,
//! pruning), the `Transactions` in flight, `Nominations` with the pure nomination
//! `Policy`, `Consent` freshness, and the gathering of local candidates and relays
//! (`Gathering`). This file holds the agent's public surface (inputs `handle_*(now, ..)`
//! and the application's calls; outputs `poll_transmit`, `poll_event`, `poll_timeout`),
//! takes the earliest of the parts' timers and dispatches `handle_timeout` to them.
//! The submodules join the parts where one input touches several: `checks` (STUN checks
//! out and in), `candidates` (local and remote candidates, pairing), `relay` (TURN),
//! `selection` (the selected pair, nomination, pruning) and `recovery` (the ladder when
//! the selected pair goes quiet).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use floe_stun::IntegrityKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod candidates;
mod checks;
mod recovery;
mod relay;
mod selection;
mod tcp;

pub use crate::credentials::Credentials;
pub use crate::gather::TurnServer;
pub use floe_stun::{Transmit, Transport};

use crate::candidate::Candidate;
use crate::checklist::{Checklist, PairId, PairState, PairStats};
use crate::config::{AgentConfig, Role};
use crate::consent::Consent;
use crate::event::{ConnectionState, Event, GatheringState, SelectedPair};
use crate::gather::Gathering;
use crate::liveness::Liveness;
use crate::nomination::Nominations;
use crate::stats::{AgentStats, CandidateStats};
use crate::transactions::Transactions;

/// Why data could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No pair is selected yet.
    #[error("not connected")]
    NotConnected,
    /// Consent expired (RFC 7675): sending is not allowed.
    #[error("consent to send expired")]
    ConsentExpired,
}

#[derive(Debug, Clone)]
struct Local {
    candidate: Candidate,
    base: SocketAddr,
    /// Its address went away ([`Agent::remove_host`]): no longer paired or offered.
    gone: bool,
    /// The STUN or TURN server it came from (server-reflexive, relayed), as an index
    /// into `Agent::servers` (one byte, not 32: an idle agent holds 20 locals).
    server: Option<u8>,
}

/// The agent.
#[derive(Debug)]
pub struct Agent {
    config: AgentConfig,
    rng: ChaCha8Rng,
    role: Role,
    tie_breaker: u64,
    local_credentials: Credentials,
    local_key: IntegrityKey,
    remote_credentials: Option<Credentials>,
    remote_key: Option<IntegrityKey>,
    remote_lite: bool,
    /// Renomination in use: configured, and the peer did not say it lacks it.
    renominate: bool,
    /// Remote candidates waiting for their mDNS name to be resolved.
    pending_mdns: Vec<Candidate>,
    /// The mDNS names resolved, so a withdrawn `.local` candidate is found by address
    /// (at most `max_remote_candidates`).
    resolved_names: Vec<(String, IpAddr)>,
    locals: Vec<Local>,
    /// The STUN and TURN servers local candidates came from (`Local::server`).
    servers: Vec<SocketAddr>,
    remotes: Vec<Candidate>,
    /// Remote addresses the peer withdrew ([`Agent::remove_remote_candidate`]): no new
    /// pairs with them until the peer signals them again or checks from them.
    withdrawn: Vec<SocketAddr>,
    remote_end_of_candidates: bool,
    /// Peer-reflexive candidates learned in the current one-second window.
    prflx_window: (Instant, u32),
    checklist: Checklist,
    transactions: Transactions,
    selected: Option<PairId>,
    nominations: Nominations,
    consent: Consent,
    liveness: Liveness,
    /// A restart during recovery must connect by then (when consent would have expired),
    /// or the connection fails: a peer that vanished never answers the restart.
    reconnect_by: Option<Instant>,
    gathering: Gathering,
    connection_state: ConnectionState,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// The latest time the agent was given (for `poll_timeout`, which takes none).
    clock: Instant,
    stats: AgentStats,
}

impl Agent {
    /// An agent in `role` with random credentials and tie-breaker from `seed`.
    pub fn new(config: AgentConfig, role: Role, now: Instant, seed: u64) -> Agent {
        // RFC 8445 §6.1.1: a lite agent is always controlled.
        let role = if config.lite { Role::Controlled } else { role };
        let renominate = config.renomination;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let local_credentials = Credentials::random(&mut rng);
        let local_key = IntegrityKey::from_key_bytes(local_credentials.pwd.as_bytes());
        Agent {
            checklist: Checklist::new(config.ta, config.max_pairs),
            config,
            tie_breaker: rng.gen(),
            rng,
            role,
            local_credentials,
            local_key,
            remote_credentials: None,
            remote_key: None,
            remote_lite: false,
            renominate,
            pending_mdns: Vec::new(),
            resolved_names: Vec::new(),
            locals: Vec::new(),
            servers: Vec::new(),
            remotes: Vec::new(),
            withdrawn: Vec::new(),
            remote_end_of_candidates: false,
            prflx_window: (now, 0),
            transactions: Transactions::default(),
            selected: None,
            nominations: Nominations::default(),
            consent: Consent::default(),
            liveness: Liveness::default(),
            reconnect_by: None,
            gathering: Gathering::default(),
            connection_state: ConnectionState::New,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            clock: now,
            stats: AgentStats::default(),
        }
    }

    /// This agent's credentials, to signal to the peer.
    pub fn local_credentials(&self) -> &Credentials {
        &self.local_credentials
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The connection state.
    pub fn connection_state(&self) -> ConnectionState {
        self.connection_state
    }

    /// The gathering state.
    pub fn gathering_state(&self) -> GatheringState {
        self.gathering.state()
    }

    /// Local candidates gathered so far.
    pub fn local_candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.locals.iter().filter(|l| !l.gone).map(|l| &l.candidate)
    }

    /// What the agent refused so far (malformed, unauthenticated, unknown responses,
    /// unvouched data, peer-reflexive limits, unknown comprehension-required attributes).
    pub fn stats(&self) -> AgentStats {
        self.stats
    }

    /// The selected pair, if any.
    pub fn selected_pair(&self) -> Option<SelectedPair> {
        self.selected.and_then(|i| self.describe(i))
    }

    /// Stats of every pair: (local base, remote, state, stats). Once a pair is nominated
    /// the others are forgotten (RFC 8445 §8.1.2, `Checklist::prune`), so only the
    /// selected pair (and, when renominating, the pairs still measured) remain.
    pub fn pair_stats(
        &self,
    ) -> impl Iterator<Item = (SocketAddr, SocketAddr, PairState, PairStats)> + '_ {
        self.checklist.iter().map(|p| {
            let mut stats = p.stats;
            stats.nominated = p.nominated || self.nominations.nominated == Some(p.id);
            (p.base, p.remote_addr, p.state, stats)
        })
    }

    /// The local candidates offered, each with the STUN or TURN server it came from and,
    /// for a relayed one, how that server is reached (W3C RTCIceCandidateStats `url` and
    /// `relayProtocol`).
    pub fn local_candidate_stats(&self) -> Vec<CandidateStats> {
        self.locals
            .iter()
            .filter(|l| !l.gone)
            .map(|l| CandidateStats {
                candidate: l.candidate.clone(),
                server: l
                    .server
                    .and_then(|i| self.servers.get(usize::from(i)).copied()),
                relay_protocol: self.gathering.relay_transport(l.base),
            })
            .collect()
    }

    /// The remote candidates known (signalled, and learned as peer-reflexive).
    pub fn remote_candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.remotes.iter()
    }

    /// The allocations in use: (TURN server, transport that won its race, relayed address).
    pub fn relays(&self) -> impl Iterator<Item = (SocketAddr, Transport, SocketAddr)> + '_ {
        self.gathering.allocations()
    }

    /// The peer is an ICE-lite agent (it signalled `lite: true`, SDP `a=ice-lite`): a full
    /// agent then takes the controlling role (RFC 8445 §6.1.1) and expects no checks from
    /// the peer.
    pub fn set_remote_lite(&mut self, lite: bool) {
        self.remote_lite = lite;
        if lite && !self.config.lite && self.role == Role::Controlled {
            self.switch_role(Role::Controlling);
        }
    }

    /// What the peer signalled about renomination (`ice-options:renomination`, or the
    /// `ice_options` of floe's signalling): with `false`, this agent nominates once, as
    /// RFC 8445 §8.1.1 requires, even when [`AgentConfig::renomination`] is on.
    pub fn set_remote_renomination(&mut self, supported: bool) {
        self.renominate = self.config.renomination && supported;
    }

    /// Whether this agent is configured to renominate ([`AgentConfig::renomination`]),
    /// i.e. whether to signal `ice-options:renomination`.
    pub fn renomination_configured(&self) -> bool {
        self.config.renomination
    }

    /// Whether the peer said it is ICE-lite ([`Agent::set_remote_lite`]).
    pub fn remote_lite(&self) -> bool {
        self.remote_lite
    }

    /// Whether this agent is ICE-lite ([`AgentConfig::lite`]).
    pub fn is_lite(&self) -> bool {
        self.config.lite
    }

    /// Sets the peer's credentials (from its offer or answer).
    pub fn set_remote_credentials(&mut self, credentials: Credentials) {
        self.remote_key = Some(IntegrityKey::from_key_bytes(credentials.pwd.as_bytes()));
        self.remote_credentials = Some(credentials);
    }

    /// One datagram arrived on local socket `local` from `remote`. Application data is
    /// given to `on_data` with the address it came from (for data relayed by a TURN
    /// server, the peer's address behind the relay), borrowed from `bytes`; STUN and TURN
    /// are consumed. The same shape as [`Agent::handle_stream_receive`].
    pub fn handle_receive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
        mut on_data: impl FnMut(SocketAddr, &[u8]),
    ) {
        // A closed agent answers nothing: its relays are released, and a response sent
        // "from" a relayed address would leave as plain UDP from an address we no longer
        // hold.
        if matches!(self.connection_state, ConnectionState::Closed) {
            return;
        }
        self.clock = now;
        // From a TURN server we use: TURN traffic, unless it answers one of our own
        // transactions (a STUN Binding for a server-reflexive candidate to the same server).
        let ours = floe_stun::peek_transaction_id(bytes)
            .is_some_and(|tid| self.transactions.contains(&tid));
        let relay = self.gathering.find_udp(local, remote).filter(|_| !ours);
        if let Some(i) = relay {
            let got = self.gathering.relay_mut(i).and_then(|r| {
                let mut got = None;
                r.client
                    .handle_receive(now, bytes, |peer, data| got = Some((peer, data)));
                got.and_then(|(peer, data)| Some(((peer, data), r.relayed_toward(peer)?)))
            });
            self.drain_relays(now);
            // What a peer sent to our relayed address, as if it arrived there.
            if let Some(((peer, data), relayed)) = got {
                if let Some(data) = self.receive_on(now, relayed, peer, data) {
                    on_data(peer, data);
                }
            }
            return;
        }
        if let Some(data) = self.receive_on(now, local, remote, bytes) {
            on_data(remote, data);
        }
    }

    /// What a [`Mux`](crate::mux::Mux) needs to answer checks on this session's pair
    /// itself ([`crate::fast_answer`]): for a lite agent whose selected pair (UDP) is
    /// nominated, else `None`.
    pub fn fast_answer(&self) -> Option<crate::fast_answer::FastAnswer> {
        if !self.config.lite
            || self.role != Role::Controlled
            || !matches!(
                self.connection_state,
                ConnectionState::Connected | ConnectionState::Completed
            )
        {
            return None;
        }
        let id = self
            .selected
            .filter(|s| self.nominations.nominated == Some(*s))?;
        let p = self.checklist.get(id).filter(|p| !p.is_tcp())?;
        Some(crate::fast_answer::FastAnswer {
            ufrag: self.local_credentials.ufrag.clone(),
            key: self.local_key.clone(),
            local: p.base,
            remote: p.remote_addr,
        })
    }

    /// A [`Mux`](crate::mux::Mux) answered checks from `remote` on `local` for this agent
    /// ([`crate::fast_answer`]): the pair was heard, and for a lite agent the peer's checks
    /// are its consent (RFC 7675 §4).
    pub fn handle_check_answered(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) {
        self.clock = now;
        let Some(id) = self.checklist.find(local, remote) else {
            return;
        };
        if let Some(p) = self.checklist.get_mut(id) {
            p.last_heard = Some(now);
            p.received_request = true;
            p.stats.requests_received += 1;
            p.stats.responses_sent += 1;
        }
        if self.selected == Some(id) {
            self.consent.refreshed(now);
        }
    }

    /// Sends application data on the selected pair.
    pub fn send(&mut self, data: &[u8]) -> Result<Transmit, SendError> {
        if self.connection_state == ConnectionState::Failed && self.selected.is_some() {
            return Err(SendError::ConsentExpired);
        }
        let id = self.selected.ok_or(SendError::NotConnected)?;
        let p = self.checklist.get_mut(id).ok_or(SendError::NotConnected)?;
        p.stats.bytes_sent += data.len() as u64;
        p.stats.packets_sent += 1;
        p.stats.last_packet_sent = Some(self.clock);
        let (source, destination, tcp) = (p.base, p.remote_addr, p.is_tcp());
        if tcp {
            return Agent::tcp_transmit(source, destination, data).ok_or(SendError::NotConnected);
        }
        if let Some(r) = self.gathering.relay_for(source) {
            let transport = r.transport;
            let t = r
                .client
                .send_to(destination, data)
                .map_err(|_| SendError::NotConnected)?;
            return Ok(Transmit {
                transport,
                source: t.source,
                destination: t.destination,
                data: t.data,
            });
        }
        if self.gathering.is_relayed_address(source) {
            return Err(SendError::NotConnected);
        }
        Ok(Transmit {
            transport: Transport::Udp,
            source,
            destination,
            data: data.to_vec(),
        })
    }

    /// Queues a datagram from a local candidate's base; from a relayed candidate it is
    /// wrapped for the TURN server (Send indication, or ChannelData once bound).
    fn emit(&mut self, source: SocketAddr, destination: SocketAddr, data: Vec<u8>) {
        if self.is_tcp_base(source) {
            self.transmits
                .extend(Agent::tcp_transmit(source, destination, &data));
        } else if let Some(r) = self.gathering.relay_for(source) {
            let transport = r.transport;
            if let Ok(t) = r.client.send_to(destination, &data) {
                self.transmits.push_back(Transmit {
                    transport,
                    source: t.source,
                    destination: t.destination,
                    data: t.data,
                });
            }
        } else if !self.gathering.is_relayed_address(source) {
            self.transmits.push_back(Transmit {
                transport: Transport::Udp,
                source,
                destination,
                data,
            });
        }
    }

    fn set_state(&mut self, state: ConnectionState) {
        if self.connection_state != state {
            self.connection_state = state;
            self.events.push_back(Event::ConnectionState(state));
        }
    }

    /// Gives back the capacity of empty event and transmit queues (a burst at start-up
    /// leaves them large): 7.8 KiB per idle agent with 10×10 candidates.
    fn shrink_idle_queues(&mut self) {
        if self.events.is_empty() && self.events.capacity() > 4 {
            self.events.shrink_to_fit();
        }
        if self.transmits.is_empty() && self.transmits.capacity() > 4 {
            self.transmits.shrink_to_fit();
        }
    }

    /// Advances every part's timers: relays, transactions (retransmissions, timeouts),
    /// checks (Ta pacing), nomination, liveness and recovery, consent, and the failed
    /// timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock = now;
        if self.checklist.take_prune_request() {
            self.prune_after_nomination();
        }
        self.shrink_idle_queues();
        self.gathering.handle_timeout(now);
        self.drain_relays(now);
        self.start_due_relays(now);
        for out in self.transactions.handle_timeout(now) {
            self.transaction_timed_out(now, out.purpose);
        }
        self.drain_relays(now);
        self.flush_transactions(now);
        self.run_checks(now);
        self.nominations.handle_timeout(now);
        self.update_selection(now);
        self.liveness_timeout(now);
        self.consent_timeout(now);
        if let Some(by) = self.reconnect_by {
            if matches!(
                self.connection_state,
                ConnectionState::Connected | ConnectionState::Completed
            ) {
                self.reconnect_by = None;
            } else if now >= by {
                self.reconnect_by = None;
                self.set_state(ConnectionState::Failed);
            }
        }
        if self.selected.is_none()
            && self
                .checklist
                .started()
                .is_some_and(|s| now.saturating_duration_since(s) >= self.config.failed_timeout)
        {
            self.set_state(ConnectionState::Failed);
        }
    }

    /// RFC 7675: consent checks on the selected pair (and, when renominating, on the
    /// pairs still measured), and expiry.
    fn consent_timeout(&mut self, now: Instant) {
        let Some(p) = self.selected else {
            return;
        };
        // Expiry holds whether or not this side sends consent checks: a lite agent
        // nominated on the peer's first check never starts sending, and its deadline
        // must still fail it (and not stay due forever).
        if self.consent.is_expired(now, &self.config)
            && self.connection_state != ConnectionState::Failed
        {
            self.set_state(ConnectionState::Failed);
            self.consent.stop();
            return;
        }
        if !self.consent.is_running() {
            return;
        }
        if self.consent.is_due(now) {
            // A lite agent sends none: the peer's checks are the consent (RFC 7675 §4).
            if !self.config.lite {
                self.send_consent(now, p);
                for q in self.policy().measured(p, self.renominate) {
                    self.send_consent(now, q);
                }
            }
            self.consent.rearm(now, &self.config, &mut self.rng);
        }
    }

    /// When [`Agent::handle_timeout`] should run next: the earliest of the parts' timers.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.connection_state, ConnectionState::Closed) {
            return None;
        }
        let checks = if self.remote_credentials.is_some() && !self.checklist.is_empty() {
            match self.checklist.started() {
                // Checks start at the next timer.
                None => Some(self.prflx_window.0),
                Some(_) => self.checklist.poll_timeout(),
            }
        } else {
            None
        };
        let failed = (self.selected.is_none() && self.connection_state != ConnectionState::Failed)
            .then(|| {
                self.checklist
                    .started()
                    .map(|s| s + self.config.failed_timeout)
            })
            .flatten();
        let consent = self.consent.poll_timeout(
            self.connection_state == ConnectionState::Failed,
            &self.config,
        );
        [
            self.transactions.poll_timeout(),
            checks,
            self.nominations.poll_timeout(&self.policy(), self.clock),
            failed,
            consent,
            self.liveness_poll_timeout(),
            self.reconnect_by,
            self.gathering.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// ICE restart (RFC 8445 §9): new local credentials, the remote side forgotten, and
    /// candidates gathered again (server-reflexive addresses and TURN allocations may have
    /// changed, for example after a NAT reboot). Host candidates are kept and announced
    /// again as [`Event::LocalCandidate`]; signal the new credentials and candidates to the
    /// peer, which restarts too. Data cannot be sent until a new pair is selected.
    ///
    /// The session's parts start afresh: a new checklist, transactions, nomination and
    /// consent state, and gathering (with the same STUN and TURN servers). A restart while
    /// recovering (after [`Recovery::RestartNeeded`](crate::Recovery::RestartNeeded)) must
    /// connect before consent on the lost path would have expired, or the connection is
    /// `Failed` then: a peer that vanished never answers it.
    pub fn restart(&mut self, now: Instant) {
        self.local_credentials = Credentials::random(&mut self.rng);
        self.local_key = IntegrityKey::from_key_bytes(self.local_credentials.pwd.as_bytes());
        self.remote_credentials = None;
        self.remote_key = None;
        self.remotes.clear();
        self.withdrawn.clear();
        self.pending_mdns.clear();
        self.resolved_names.clear();
        self.remote_end_of_candidates = false;
        self.checklist = Checklist::new(self.config.ta, self.config.max_pairs);
        self.transactions = Transactions::default();
        self.selected = None;
        self.nominations = Nominations::default();
        self.reconnect_by = if self.liveness.is_recovering() {
            self.consent.expires_at(&self.config)
        } else {
            None
        };
        self.consent = Consent::default();
        self.liveness = Liveness::default();
        let hosts: Vec<(SocketAddr, u16)> = self
            .locals
            .iter()
            .filter(|l| l.candidate.kind == crate::CandidateKind::Host && !l.gone)
            .map(|l| (l.base, (l.candidate.priority >> 8) as u16))
            .collect();
        self.gathering
            .release(now, &mut self.transmits, &mut self.events);
        let servers = self.gathering.servers().to_vec();
        self.locals.clear();
        self.set_state(ConnectionState::New);
        self.gathering
            .set_state(GatheringState::New, &mut self.events);
        self.gathering = Gathering::default();
        for (base, local_preference) in hosts {
            self.add_host_candidate(now, base, local_preference);
        }
        for server in servers {
            self.add_turn_server_with(now, server);
        }
        self.gathering.complete_if_done(&mut self.events);
    }

    /// Stops everything at `now`. TURN allocations are freed: a Refresh with lifetime 0
    /// goes out for UDP ones (poll the transmits once more), [`Event::CloseStream`] for
    /// the others. A closed agent ignores what it receives.
    pub fn close(&mut self, now: Instant) {
        self.clock = now;
        self.transactions.clear();
        self.gathering
            .release(now, &mut self.transmits, &mut self.events);
        self.set_state(ConnectionState::Closed);
    }
}
