//! The ICE agent (RFC 8445), sans-IO.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use floe_stun::attributes::{
    ErrorCode, IceControlled, IceControlling, Nomination as NominationAttr, Priority, UseCandidate,
    Username, XorMappedAddress,
};
use floe_stun::demux::{classify, PacketKind};
use floe_stun::transaction::{ClientTransaction, Reliability, TransactionConfig, TransactionState};
use floe_stun::{Class, IntegrityKey, Message, MessageBuilder, MessageType, Method, TransactionId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod prune;
mod relay;

pub use relay::TurnServer;

pub use crate::transport::{Transmit, Transport};

use crate::candidate::{self, Candidate, CandidateAddress, CandidateKind};
use crate::checklist::{pair_priority, Pair, PairState, PairStats};
use crate::config::{AgentConfig, Nomination, Role};
use crate::event::{ConnectionState, Event, GatheringState, SelectedPair};
use crate::stats::AgentStats;

/// Whether `msg` carries a comprehension-required attribute floe does not know
/// (RFC 8489 §14: types below 0x8000), which makes a response or indication unusable;
/// the rule's home is [`floe_stun::transaction::check_response`].
fn has_unknown_required(msg: &Message<'_>) -> bool {
    floe_stun::transaction::check_response(msg).is_err()
}

/// ICE credentials (RFC 8445 §5.3; RFC 8839 §5.4: ufrag ≥ 4 and pwd ≥ 22 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// ice-ufrag.
    pub ufrag: String,
    /// ice-pwd.
    pub pwd: String,
}

impl Credentials {
    /// Random credentials: 8-character ufrag, 24-character pwd from the ice-char set.
    pub fn random<R: Rng>(rng: &mut R) -> Credentials {
        const ICE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut pick = |n: usize| {
            (0..n)
                .filter_map(|_| ICE.get(rng.gen_range(0..ICE.len())).copied())
                .map(char::from)
                .collect::<String>()
        };
        Credentials {
            ufrag: pick(8),
            pwd: pick(24),
        }
    }
}

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
}

#[derive(Debug)]
enum Purpose {
    Check(usize),
    Gather {
        base: SocketAddr,
        server: SocketAddr,
        /// `AgentConfig::gather_timeout` after the request.
        deadline: Instant,
    },
    Consent(usize),
    /// A check cancelled by a triggered check on its pair (RFC 8445 §7.3.1.4): not
    /// retransmitted, its timeout fails nothing, a late success still counts.
    CancelledCheck(usize),
}

#[derive(Debug)]
struct Outstanding {
    purpose: Purpose,
    transaction: ClientTransaction,
    source: SocketAddr,
    destination: SocketAddr,
}

/// The agent.
#[derive(Debug)]
#[allow(clippy::struct_excessive_bools)] // independent flags, not a state machine in disguise
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
    locals: Vec<Local>,
    remotes: Vec<Candidate>,
    remote_end_of_candidates: bool,
    pairs: Vec<Pair>,
    triggered: VecDeque<usize>,
    transactions: HashMap<TransactionId, Outstanding>,
    next_check: Option<Instant>,
    started: Option<Instant>,
    first_direct_success: Option<Instant>,
    selected: Option<usize>,
    nominated: Option<usize>,
    /// The pair whose next check carries USE-CANDIDATE.
    nominating: Option<usize>,
    /// Renomination: the next NOMINATION value we send, and the highest we received.
    nomination_counter: u32,
    remote_nomination: u32,
    /// When the controlling agent should look at nominating again (end of the settle
    /// window, or of the relay wait).
    nomination_at: Option<Instant>,
    connection_state: ConnectionState,
    gathering_state: GatheringState,
    pending_gathers: usize,
    prflx_window: (Instant, u32),
    consent_at: Option<Instant>,
    last_consent: Option<Instant>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    relays: Vec<relay::Relay>,
    turn_servers: Vec<TurnServer>,
    /// The latest time the agent was given (for `close`, which takes none).
    clock: Instant,
    /// A pair was nominated: prune the others at the next timer.
    prune_pending: bool,
    /// Pairs were pruned: only nominations create new pairs.
    pruned: bool,
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
            locals: Vec::new(),
            remotes: Vec::new(),
            remote_end_of_candidates: false,
            pairs: Vec::new(),
            triggered: VecDeque::new(),
            transactions: HashMap::new(),
            next_check: None,
            started: None,
            first_direct_success: None,
            selected: None,
            nominated: None,
            nominating: None,
            nomination_counter: 1,
            remote_nomination: 0,
            nomination_at: None,
            connection_state: ConnectionState::New,
            gathering_state: GatheringState::New,
            pending_gathers: 0,
            prflx_window: (now, 0),
            consent_at: None,
            last_consent: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            relays: Vec::new(),
            turn_servers: Vec::new(),
            clock: now,
            prune_pending: false,
            pruned: false,
            stats: AgentStats::default(),
        }
    }

    fn finish_gather(&mut self) {
        self.pending_gathers = self.pending_gathers.saturating_sub(1);
        if self.pending_gathers == 0 {
            self.set_gathering(GatheringState::Complete);
        }
    }

    /// Queues a datagram from a local candidate's base; from a relayed candidate it is
    /// wrapped for the TURN server (Send indication, or ChannelData once bound).
    fn emit(&mut self, source: SocketAddr, destination: SocketAddr, data: Vec<u8>) {
        if let Some(r) = self.relay_for(source) {
            let transport = r.transport;
            if let Ok(t) = r.client.send_to(destination, &data) {
                self.transmits.push_back(Transmit {
                    transport,
                    source: t.source,
                    destination: t.destination,
                    data: t.data,
                });
            }
        } else if !self.is_relayed_address(source) {
            self.transmits.push_back(Transmit {
                transport: Transport::Udp,
                source,
                destination,
                data,
            });
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
        self.gathering_state
    }

    /// Local candidates gathered so far.
    pub fn local_candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.locals.iter().map(|l| &l.candidate)
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
    /// the others are forgotten (RFC 8445 §8.1.2; see `prune_after_nomination`), so only
    /// the selected pair (and, when renominating, the pairs still measured) remain.
    pub fn pair_stats(
        &self,
    ) -> impl Iterator<Item = (SocketAddr, SocketAddr, PairState, PairStats)> + '_ {
        self.pairs
            .iter()
            .map(|p| (p.base, p.remote_addr, p.state, p.stats))
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

    /// Registers a local UDP socket address (a host candidate). With STUN servers
    /// configured, a Binding request goes to each server of the same family to learn the
    /// server-reflexive address (RFC 8445 §5.1.1.2). `rank` orders interfaces for RFC 8421
    /// local preferences (0 = most preferred).
    pub fn add_host(&mut self, now: Instant, addr: SocketAddr, rank: usize) {
        if self.config.relay_only {
            // Only a base for TURN (see `AgentConfig::relay_only`).
            if self.pending_gathers == 0 && self.relays.is_empty() {
                self.set_gathering(GatheringState::Complete);
            }
            return;
        }
        if self
            .locals
            .iter()
            .any(|l| l.base == addr && l.candidate.kind == CandidateKind::Host)
        {
            return;
        }
        let c = Candidate::new(
            CandidateKind::Host,
            addr,
            addr,
            None,
            candidate::local_preference(addr.ip(), rank),
        );
        self.push_local(c.clone(), addr);
        // A lite agent offers host candidates only (RFC 8445 §5.1.1).
        let servers = if self.config.lite {
            Vec::new()
        } else {
            self.config.stun_servers.clone()
        };
        for server in servers {
            if server.is_ipv4() == addr.is_ipv4() {
                self.gather_from(now, addr, server);
            }
        }
        if self.pending_gathers == 0 {
            self.set_gathering(GatheringState::Complete);
        }
        let local = self.locals.len() - 1;
        for remote in 0..self.remotes.len() {
            self.add_pair(local, remote);
        }
    }

    fn push_local(&mut self, candidate: Candidate, base: SocketAddr) {
        self.events
            .push_back(Event::LocalCandidate(candidate.clone()));
        self.locals.push(Local { candidate, base });
    }

    fn gather_from(&mut self, now: Instant, base: SocketAddr, server: SocketAddr) {
        let tid = TransactionId(self.rng.gen());
        let mut buf = [0u8; 64];
        let Ok(bytes) =
            MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, tid).and_then(|mut b| {
                b.add_fingerprint()?;
                Ok(b.finish().to_vec())
            })
        else {
            return;
        };
        if let Ok(t) =
            ClientTransaction::new(bytes, Reliability::Unreliable, TransactionConfig::default())
        {
            self.transactions.insert(
                tid,
                Outstanding {
                    purpose: Purpose::Gather {
                        base,
                        server,
                        deadline: now + self.config.gather_timeout,
                    },
                    transaction: t,
                    source: base,
                    destination: server,
                },
            );
            self.pending_gathers += 1;
            self.set_gathering(GatheringState::Gathering);
            self.flush_transactions(now);
        }
    }

    fn set_gathering(&mut self, state: GatheringState) {
        if self.gathering_state != state {
            self.gathering_state = state;
            self.events.push_back(Event::GatheringState(state));
        }
    }

    /// Adds a remote candidate (from signalling; trickled ones too, RFC 8838). Unusable
    /// candidates (TCP, other components) are ignored; returns whether it was used.
    ///
    /// A candidate whose address is an mDNS name (`<uuid>.local`, as browsers hide host
    /// addresses) is kept aside and announced with [`Event::ResolveMdns`]: resolve the name
    /// (the agent does no IO) and call [`Agent::handle_mdns_resolved`]. At most 16 names wait.
    pub fn add_remote_candidate(&mut self, now: Instant, candidate: Candidate) -> bool {
        let Some(addr) = candidate.addr() else {
            if let CandidateAddress::Mdns { name, .. } = &candidate.address {
                if candidate.transport != candidate::TransportProtocol::Udp
                    || candidate.component != 1
                    || self.pending_mdns.len() >= 16
                {
                    return false;
                }
                let name = name.clone();
                if !self.pending_mdns.iter().any(
                    |c| matches!(&c.address, CandidateAddress::Mdns { name: n, .. } if *n == name),
                ) {
                    self.events.push_back(Event::ResolveMdns { name });
                }
                self.pending_mdns.push(candidate);
                return true;
            }
            return false;
        };
        if candidate.transport != candidate::TransportProtocol::Udp || candidate.component != 1 {
            return false;
        }
        if let Some((i, known)) = self
            .remotes
            .iter_mut()
            .enumerate()
            .find(|(_, r)| r.addr() == Some(addr))
        {
            // A candidate we learned as peer-reflexive: the signalled one replaces it, and
            // its pairs take its type and foundation (RFC 8838 §11).
            if known.kind == CandidateKind::PeerReflexive
                && candidate.kind != CandidateKind::PeerReflexive
            {
                for p in self.pairs.iter_mut().filter(|p| p.remote == i) {
                    p.remote_kind = candidate.kind;
                    p.foundation.1.clone_from(&candidate.foundation);
                }
                *known = candidate;
                self.recompute_priorities();
            }
            return true;
        }
        if self.remotes.len() >= self.config.max_remote_candidates {
            return false;
        }
        // Relayed candidates need a permission for the new peer (RFC 8656 §9).
        for r in &mut self.relays {
            if r.relayed.is_some() {
                let _ = r.client.create_permission(now, addr.ip());
            }
        }
        self.remotes.push(candidate);
        let remote = self.remotes.len() - 1;
        for local in 0..self.locals.len() {
            self.add_pair(local, remote);
        }
        self.drain_relays(now);
        true
    }

    /// The answer to [`Event::ResolveMdns`]: the candidates waiting on `name` get
    /// `address` (or are dropped with `None`, when the name does not resolve) and are added.
    pub fn handle_mdns_resolved(&mut self, now: Instant, name: &str, address: Option<IpAddr>) {
        let (waiting, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_mdns)
            .into_iter()
            .partition(
                |c| matches!(&c.address, CandidateAddress::Mdns { name: n, .. } if n == name),
            );
        self.pending_mdns = rest;
        let Some(ip) = address else { return };
        for mut c in waiting {
            if let CandidateAddress::Mdns { port, .. } = c.address {
                c.address = CandidateAddress::Ip(SocketAddr::new(ip, port));
                self.add_remote_candidate(now, c);
            }
        }
    }

    /// The peer signalled end-of-candidates (RFC 8838 §4.4).
    pub fn end_of_remote_candidates(&mut self) {
        self.remote_end_of_candidates = true;
    }

    /// Forms the pair (local host/relayed candidate, remote) if it makes sense (RFC 8445
    /// §6.1.2.2: same family; server-reflexive locals are represented by their base).
    fn add_pair(&mut self, local: usize, remote: usize) -> Option<usize> {
        let l = self.locals.get(local)?;
        if l.candidate.kind == CandidateKind::ServerReflexive
            || l.candidate.kind == CandidateKind::PeerReflexive
        {
            return None;
        }
        let r = self.remotes.get(remote)?;
        let remote_addr = r.addr()?;
        if l.base.is_ipv4() != remote_addr.is_ipv4() {
            return None;
        }
        if let Some(i) = self
            .pairs
            .iter()
            .position(|p| p.base == l.base && p.remote_addr == remote_addr)
        {
            return Some(i);
        }
        let (g, d) = match self.role {
            Role::Controlling => (l.candidate.priority, r.priority),
            Role::Controlled => (r.priority, l.candidate.priority),
        };
        let priority = pair_priority(g, d);
        // RFC 8445 §6.1.2.5: at the limit, keep the highest-priority pairs. The new pair
        // takes the place of the lowest-priority pair that has not been checked yet
        // (Frozen, or Waiting and not queued for a triggered check), if it ranks above
        // it; otherwise it is dropped. Replacing in place keeps every index valid.
        let mut replace = None;
        if self.pairs.len() >= self.config.max_pairs {
            let lowest = self
                .pairs
                .iter()
                .enumerate()
                .filter(|(i, p)| {
                    p.check.is_none()
                        && !p.nominated
                        && self.selected != Some(*i)
                        && (p.state == PairState::Frozen
                            || (p.state == PairState::Waiting && !self.triggered.contains(i)))
                })
                .min_by_key(|(_, p)| p.priority)
                .map(|(i, p)| (i, p.priority));
            match lowest {
                Some((i, lowest)) if lowest < priority => replace = Some(i),
                _ => return None,
            }
        }
        let foundation = (l.candidate.foundation.clone(), r.foundation.clone());
        // The first pair of a foundation starts Waiting, the rest Frozen (§6.1.2.6).
        let state = if self
            .pairs
            .iter()
            .enumerate()
            .any(|(i, p)| p.foundation == foundation && Some(i) != replace)
        {
            PairState::Frozen
        } else {
            PairState::Waiting
        };
        let pair = Pair {
            local,
            remote,
            base: l.base,
            remote_addr,
            local_kind: l.candidate.kind,
            remote_kind: r.kind,
            foundation,
            priority,
            state,
            check: None,
            nominated: false,
            nominate_on_success: false,
            received_request: false,
            last_response: None,
            first_check: None,
            stats: PairStats::default(),
        };
        if let Some(slot) = replace.and_then(|i| self.pairs.get_mut(i)) {
            *slot = pair;
            return replace;
        }
        self.pairs.push(pair);
        Some(self.pairs.len() - 1)
    }

    fn recompute_priorities(&mut self) {
        for p in &mut self.pairs {
            let (Some(l), Some(r)) = (self.locals.get(p.local), self.remotes.get(p.remote)) else {
                continue;
            };
            let (l, r) = (l.candidate.priority, r.priority);
            p.priority = match self.role {
                Role::Controlling => pair_priority(l, r),
                Role::Controlled => pair_priority(r, l),
            };
        }
    }

    /// One datagram arrived on local socket `local` from `remote`. Application data is
    /// returned (borrowed from `bytes`); STUN is consumed.
    pub fn handle_receive<'a>(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &'a [u8],
    ) -> Option<&'a [u8]> {
        // A closed agent answers nothing: its relays are released, and a response sent
        // "from" a relayed address would leave as plain UDP from an address we no longer
        // hold.
        if matches!(self.connection_state, ConnectionState::Closed) {
            return None;
        }
        self.clock = now;
        // From a TURN server we use: TURN traffic, unless it answers one of our own
        // transactions (a STUN Binding for a server-reflexive candidate to the same server).
        let ours = floe_stun::peek_transaction_id(bytes)
            .is_some_and(|tid| self.transactions.contains_key(&tid));
        let relay = self.relays.iter_mut().find(|r| {
            r.transport == Transport::Udp && r.base == local && r.server == remote && r.active()
        });
        if let Some(r) = relay.filter(|_| !ours) {
            let relayed = r.relayed;
            let got = r.client.handle_datagram(now, bytes);
            self.drain_relays(now);
            let (Some((peer, data)), Some(relayed)) = (got, relayed) else {
                return None;
            };
            // What a peer sent to our relayed address, as if it arrived there.
            return self.receive_on(now, relayed, peer, data);
        }
        self.receive_on(now, local, remote, bytes)
    }

    fn receive_on<'a>(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &'a [u8],
    ) -> Option<&'a [u8]> {
        if classify(bytes) == PacketKind::Stun {
            if let Ok(msg) = Message::parse(bytes) {
                match msg.class() {
                    Class::Request if msg.method() == Method::BINDING => {
                        self.handle_request(now, local, remote, &msg);
                    }
                    Class::Success | Class::Error => self.handle_response(now, local, remote, &msg),
                    // RFC 8489 §6.3.2: an indication with an unknown comprehension-required
                    // attribute is discarded.
                    Class::Indication if has_unknown_required(&msg) => {
                        self.stats.unknown_required_attributes += 1;
                    }
                    // Binding indications are keepalives (RFC 8445 §11).
                    _ => {}
                }
                return None;
            }
            // With the magic cookie it claims to be STUN: a broken one is dropped, never
            // handed to the application. Without, it is the application's (floe carries
            // arbitrary datagrams, whatever their first byte).
            if floe_stun::has_magic_cookie(bytes) {
                self.stats.malformed += 1;
                return None;
            }
        }
        // Application data (RFC 8445 §12.2: be prepared to receive on any pair), but only
        // from a remote address that has proven it holds the credentials: our check on the
        // pair succeeded, or the peer's authenticated check arrived on it (the peer may send
        // as soon as its own check succeeds, before ours does).
        let Some(pair) = self.pairs.iter_mut().find(|p| {
            p.base == local
                && p.remote_addr == remote
                && (p.state == PairState::Succeeded || p.received_request)
        }) else {
            self.stats.data_dropped += 1;
            return None;
        };
        pair.stats.bytes_received += bytes.len() as u64;
        Some(bytes)
    }

    /// Sends application data on the selected pair.
    pub fn send(&mut self, data: &[u8]) -> Result<Transmit, SendError> {
        if self.connection_state == ConnectionState::Failed && self.selected.is_some() {
            return Err(SendError::ConsentExpired);
        }
        let i = self.selected.ok_or(SendError::NotConnected)?;
        let p = self.pairs.get_mut(i).ok_or(SendError::NotConnected)?;
        p.stats.bytes_sent += data.len() as u64;
        let (source, destination) = (p.base, p.remote_addr);
        if let Some(r) = self.relay_for(source) {
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
        if self.is_relayed_address(source) {
            return Err(SendError::NotConnected);
        }
        Ok(Transmit {
            transport: Transport::Udp,
            source,
            destination,
            data: data.to_vec(),
        })
    }

    fn handle_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &Message<'_>,
    ) {
        // RFC 8445 §7.3: USERNAME is "local-ufrag:remote-ufrag", integrity with our pwd.
        let Ok(Some(username)) = msg.get::<Username>() else {
            self.stats.unauthenticated += 1;
            return;
        };
        let ours = username.0.split(':').next() == Some(self.local_credentials.ufrag.as_str());
        if !ours || msg.verify(&self.local_key).is_err() {
            self.stats.unauthenticated += 1;
            return;
        }
        // RFC 8489 §6.3.1: an authenticated request with a comprehension-required
        // attribute we do not know gets 420 listing them, and is not processed.
        let unknown: Vec<floe_stun::AttrType> =
            msg.unknown_comprehension_required().take(16).collect();
        if !unknown.is_empty() {
            self.stats.unknown_required_attributes += 1;
            self.respond_unknown(local, remote, msg, &unknown);
            return;
        }
        let (controlling, controlled) = (
            msg.get::<IceControlling>().ok().flatten(),
            msg.get::<IceControlled>().ok().flatten(),
        );
        // Role conflict (§7.3.1.1).
        match (self.role, controlling, controlled) {
            (Role::Controlling, Some(theirs), _) => {
                if self.tie_breaker >= theirs.0 {
                    self.respond(local, remote, msg, Some(ErrorCode::ROLE_CONFLICT));
                    return;
                }
                self.switch_role(Role::Controlled);
            }
            (Role::Controlled, _, Some(theirs)) => {
                if self.tie_breaker >= theirs.0 {
                    self.switch_role(Role::Controlling);
                } else {
                    self.respond(local, remote, msg, Some(ErrorCode::ROLE_CONFLICT));
                    return;
                }
            }
            _ => {}
        }
        self.respond(local, remote, msg, None);
        // After pruning, a check on a forgotten pair is answered (the peer's consent works
        // on any pair) but only a nomination brings the pair back.
        if self.pruned
            && !msg.has(floe_stun::AttrType::USE_CANDIDATE)
            && !self
                .pairs
                .iter()
                .any(|p| p.base == local && p.remote_addr == remote)
        {
            return;
        }
        let Some(local_index) = self.locals.iter().position(|l| {
            l.base == local
                && matches!(
                    l.candidate.kind,
                    CandidateKind::Host | CandidateKind::Relayed
                )
        }) else {
            return;
        };
        // A source we do not know is a peer-reflexive remote candidate (§7.3.1.3).
        let remote_index = match self.remotes.iter().position(|r| r.addr() == Some(remote)) {
            Some(i) => i,
            None => {
                if !self.may_learn_prflx(now)
                    || self.remotes.len() >= self.config.max_remote_candidates
                {
                    self.stats.prflx_refused += 1;
                    return;
                }
                let priority = msg.get::<Priority>().ok().flatten().map_or(0, |p| p.0);
                let mut c = Candidate::new(CandidateKind::PeerReflexive, remote, remote, None, 0);
                c.priority = priority;
                c.related = None;
                c.foundation = format!("prflx{}", self.remotes.len());
                self.remotes.push(c);
                self.remotes.len() - 1
            }
        };
        let Some(pair) = self.add_pair(local_index, remote_index) else {
            return;
        };
        // RFC 8445 §8.1.1: the first nomination stands; a later one counts only with a
        // higher NOMINATION value (renomination).
        let nomination = msg.get::<NominationAttr>().ok().flatten().map(|n| n.0);
        let renominated = nomination.is_some_and(|n| n > self.remote_nomination);
        if let Some(n) = nomination.filter(|_| renominated) {
            self.remote_nomination = n;
        }
        let use_candidate = msg.has(floe_stun::AttrType::USE_CANDIDATE)
            && (self.nominated.is_none() || renominated);
        let Some(p) = self.pairs.get_mut(pair) else {
            return;
        };
        p.received_request = true;
        p.stats.requests_received += 1;
        p.stats.responses_sent += 1;
        if self.config.lite {
            // RFC 8445 §2.5: a lite agent's pair is valid once a check arrives on it; the
            // peer's checks on the selected pair are its consent (RFC 7675 §4).
            p.state = PairState::Succeeded;
            if self.selected == Some(pair) {
                self.last_consent = Some(now);
            }
        }
        if use_candidate && self.role == Role::Controlled {
            if p.state == PairState::Succeeded {
                p.nominated = true;
                self.nominate_controlled(now, pair);
            } else {
                p.nominate_on_success = true;
            }
        }
        if self.config.lite {
            self.update_selection(now);
            return;
        }
        // Triggered check (§7.3.1.4) unless the pair already works. A check in flight is
        // cancelled (no more retransmissions; a late answer still counts) so that the new
        // one goes out in the next Ta slot instead of waiting for a retransmission.
        let Some(p) = self.pairs.get_mut(pair) else {
            return;
        };
        if p.state == PairState::InProgress && p.check.is_some_and(|c| !c.1) {
            if let Some((tid, _)) = p.check.take() {
                if let Some(o) = self.transactions.get_mut(&tid) {
                    o.purpose = Purpose::CancelledCheck(pair);
                }
            }
            p.state = PairState::Waiting;
        }
        match p.state {
            PairState::Frozen | PairState::Waiting | PairState::Failed => {
                p.state = PairState::Waiting;
                if !self.triggered.contains(&pair) {
                    self.triggered.push_back(pair);
                }
                self.schedule_check(now);
            }
            PairState::InProgress | PairState::Succeeded => {}
        }
        self.update_selection(now);
    }

    fn may_learn_prflx(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.prflx_window.0) >= Duration::from_secs(1) {
            self.prflx_window = (now, 0);
        }
        self.prflx_window.1 += 1;
        self.prflx_window.1 <= self.config.max_prflx_per_second
    }

    fn switch_role(&mut self, role: Role) {
        tracing::info!(?role, "ICE role switched to resolve a conflict");
        self.role = role;
        self.recompute_priorities();
    }

    /// A 420 with UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1), signed like every response.
    fn respond_unknown(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &Message<'_>,
        unknown: &[floe_stun::AttrType],
    ) {
        let mut buf = [0u8; 256];
        let built = (|| {
            let mut b = MessageBuilder::new(
                &mut buf,
                msg.message_type().with_class(Class::Error),
                msg.transaction_id(),
            )?;
            b.add(&ErrorCode::UNKNOWN_ATTRIBUTE)?
                .add(&floe_stun::attributes::UnknownAttributes::from_types(
                    unknown,
                ))?
                .add_message_integrity(&self.local_key)?
                .add_fingerprint()?;
            Ok::<_, floe_stun::Error>(b.len())
        })();
        if let Some(bytes) = built.ok().and_then(|n| buf.get(..n)) {
            self.emit(local, remote, bytes.to_vec());
        }
    }

    fn respond(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &Message<'_>,
        error: Option<ErrorCode<'_>>,
    ) {
        let mut buf = [0u8; 256];
        let class = if error.is_some() {
            Class::Error
        } else {
            Class::Success
        };
        let built = (|| {
            let mut b = MessageBuilder::new(
                &mut buf,
                msg.message_type().with_class(class),
                msg.transaction_id(),
            )?;
            match error {
                Some(e) => b.add(&e)?,
                None => b.add(&XorMappedAddress(remote))?,
            };
            b.add_message_integrity(&self.local_key)?
                .add_fingerprint()?;
            Ok::<_, floe_stun::Error>(b.len())
        })();
        if let Some(bytes) = built.ok().and_then(|n| buf.get(..n)) {
            self.emit(local, remote, bytes.to_vec());
        }
    }

    fn handle_response(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &Message<'_>,
    ) {
        let Some(out) = self.transactions.get(&msg.transaction_id()) else {
            self.stats.unknown_transaction += 1;
            return;
        };
        // RFC 8489 §6.3.3, §6.3.4: a response with a comprehension-required attribute we do
        // not know is discarded before anything else looks at it. The RFC then calls the
        // transaction failed; floe lets it wait for a valid response until its
        // retransmissions end instead, so that one bad datagram (a forged server-reflexive
        // answer needs only the transaction id) cannot fail a check or a gather.
        if has_unknown_required(msg) {
            let authentic = match out.purpose {
                Purpose::Gather { .. } => true,
                Purpose::Check(_) | Purpose::Consent(_) | Purpose::CancelledCheck(_) => self
                    .remote_key
                    .as_ref()
                    .is_some_and(|key| msg.verify(key).is_ok()),
            };
            if authentic {
                self.stats.unknown_required_attributes += 1;
            } else {
                self.stats.unauthenticated += 1;
            }
            return;
        }
        // RFC 8445 §7.2.5.2.1: non-symmetric addresses fail the check.
        if out.source != local || out.destination != remote {
            let tid = msg.transaction_id();
            if let Purpose::Check(p) = out.purpose {
                self.transactions.remove(&tid);
                if let Some(pair) = self.pairs.get_mut(p) {
                    pair.check = None;
                    pair.state = PairState::Failed;
                }
            } else if let Purpose::CancelledCheck(_) = out.purpose {
                self.transactions.remove(&tid);
            }
            return;
        }
        match out.purpose {
            Purpose::Gather { .. } => {}
            Purpose::Check(_) | Purpose::Consent(_) | Purpose::CancelledCheck(_) => {
                // Responses to checks are signed with the peer's pwd.
                let Some(key) = &self.remote_key else { return };
                if msg.verify(key).is_err() {
                    self.stats.unauthenticated += 1;
                    return;
                }
            }
        }
        let Some(mut out) = self.transactions.remove(&msg.transaction_id()) else {
            return;
        };
        out.transaction.handle_response(now, msg);
        let rtt = out.transaction.rtt();
        let code = msg.get::<ErrorCode>().ok().flatten().map(|c| c.code);
        match out.purpose {
            Purpose::Gather { base, server, .. } => {
                self.pending_gathers = self.pending_gathers.saturating_sub(1);
                match msg.get::<XorMappedAddress>() {
                    Ok(Some(mapped)) if msg.class() == Class::Success => {
                        let known = self
                            .locals
                            .iter()
                            .any(|l| l.candidate.addr() == Some(mapped.0));
                        if !known {
                            let rank = self
                                .locals
                                .iter()
                                .filter(|l| l.candidate.kind == CandidateKind::Host)
                                .position(|l| l.base == base)
                                .unwrap_or(0);
                            let c = Candidate::new(
                                CandidateKind::ServerReflexive,
                                mapped.0,
                                base,
                                Some(server),
                                candidate::local_preference(base.ip(), rank),
                            );
                            self.push_local(c, base);
                        }
                    }
                    _ => self.events.push_back(Event::ServerFailed {
                        server,
                        reason: format!("error response {code:?}"),
                    }),
                }
                if self.pending_gathers == 0 {
                    self.set_gathering(GatheringState::Complete);
                }
            }
            Purpose::Check(p) => self.check_answered(now, p, msg, rtt, code),
            Purpose::CancelledCheck(p) => {
                if msg.class() == Class::Success
                    && self
                        .pairs
                        .get(p)
                        .is_some_and(|q| q.state != PairState::Succeeded)
                {
                    self.check_answered(now, p, msg, rtt, code);
                }
            }
            Purpose::Consent(p) => {
                if msg.class() == Class::Success {
                    self.last_consent = Some(now);
                    if let Some(pair) = self.pairs.get_mut(p) {
                        pair.last_response = Some(now);
                        if let Some(rtt) = rtt {
                            pair.sample_rtt(rtt);
                        }
                    }
                }
            }
        }
    }

    fn check_answered(
        &mut self,
        now: Instant,
        p: usize,
        msg: &Message<'_>,
        rtt: Option<Duration>,
        code: Option<u16>,
    ) {
        let tid = msg.transaction_id();
        let Some(pair) = self.pairs.get_mut(p) else {
            return;
        };
        let use_candidate = match pair.check.take() {
            Some((t, u)) if t == tid => u,
            other => {
                // The answer to a cancelled check: the new one stays in flight.
                pair.check = other;
                false
            }
        };
        if code == Some(487) {
            // §7.2.5.1: switch role and check again.
            let other = if self.role == Role::Controlling {
                Role::Controlled
            } else {
                Role::Controlling
            };
            self.switch_role(other);
            if let Some(pair) = self.pairs.get_mut(p) {
                pair.state = PairState::Waiting;
            }
            self.triggered.push_back(p);
            self.schedule_check(now);
            return;
        }
        if msg.class() != Class::Success {
            pair.state = PairState::Failed;
            self.check_failure(now);
            return;
        }
        pair.state = PairState::Succeeded;
        pair.stats.responses_received += 1;
        pair.last_response = Some(now);
        if let Some(rtt) = rtt {
            pair.sample_rtt(rtt);
        }
        let (base, direct, smoothed_rtt, nominate_on_success) = (
            pair.base,
            pair.is_direct(),
            pair.stats.smoothed_rtt,
            pair.nominate_on_success,
        );
        let foundation = pair.foundation.clone();
        // A mapped address we do not know is a peer-reflexive local candidate
        // (§7.2.5.3.1); data keeps going from the base, so it is only reported.
        if let Ok(Some(mapped)) = msg.get::<XorMappedAddress>() {
            if !self
                .locals
                .iter()
                .any(|l| l.candidate.addr() == Some(mapped.0))
                && self.locals.len() < 64
            {
                let c = Candidate::new(CandidateKind::PeerReflexive, mapped.0, base, None, 0);
                self.locals.push(Local { candidate: c, base });
            }
        }
        // Unfreeze pairs of the same foundation (§7.2.5.3.3).
        for q in &mut self.pairs {
            if q.state == PairState::Frozen && q.foundation == foundation {
                q.state = PairState::Waiting;
            }
        }
        if direct && self.first_direct_success.is_none() {
            self.first_direct_success = Some(now);
            let rtt = smoothed_rtt.unwrap_or(Duration::ZERO);
            self.nomination_at = Some(now + (rtt + self.config.ta).min(self.config.max_settle));
        }
        let nominate = match self.role {
            Role::Controlling => use_candidate,
            Role::Controlled => nominate_on_success,
        };
        if nominate {
            if let Some(pair) = self.pairs.get_mut(p) {
                pair.nominated = true;
            }
            match self.role {
                Role::Controlling => self.finish_nomination(now, p),
                Role::Controlled => self.nominate_controlled(now, p),
            }
        }
        self.update_selection(now);
    }

    fn check_failure(&mut self, now: Instant) {
        let all_failed =
            !self.pairs.is_empty() && self.pairs.iter().all(|p| p.state == PairState::Failed);
        if all_failed && self.remote_end_of_candidates && self.selected.is_none() {
            self.set_state(ConnectionState::Failed);
        }
        self.update_selection(now);
    }

    fn nominate_controlled(&mut self, now: Instant, p: usize) {
        self.nominated = Some(p);
        self.prune_pending = true;
        let already = self.selected == Some(p);
        self.select(now, p);
        if already {
            // Same pair, now final: say so.
            if let Some(described) = self.describe(p) {
                self.events.push_back(Event::SelectedPair(described));
            }
        }
        self.set_state(ConnectionState::Completed);
    }

    fn finish_nomination(&mut self, now: Instant, p: usize) {
        self.nominated = Some(p);
        self.prune_pending = true;
        let already = self.selected == Some(p);
        self.select(now, p);
        if already {
            // Same pair, now final: say so.
            if let Some(described) = self.describe(p) {
                self.events.push_back(Event::SelectedPair(described));
            }
        }
        self.set_state(ConnectionState::Completed);
        if self.consent_at.is_none() {
            let d = self.consent_delay();
            self.consent_at = Some(now + d);
        }
    }

    fn consent_delay(&mut self) -> Duration {
        // RFC 7675 §5.1: randomized between 0.8 and 1.2 times the interval.
        self.config
            .consent_interval
            .mul_f64(self.rng.gen_range(0.8..1.2))
    }

    fn select(&mut self, now: Instant, p: usize) {
        if self.selected == Some(p) {
            return;
        }
        let Some(described) = self.describe(p) else {
            return;
        };
        self.selected = Some(p);
        // Consent is per pair (RFC 7675 §5.1): the new pair's latest response counts.
        self.last_consent = Some(
            self.pairs
                .get(p)
                .and_then(|q| q.last_response)
                .unwrap_or(now),
        );
        tracing::info!(local = %described.local, remote = %described.remote, rtt_ms = ?described.rtt.map(|r| r.as_millis()), "selected pair");
        self.events.push_back(Event::SelectedPair(described));
    }

    fn describe(&self, p: usize) -> Option<SelectedPair> {
        let pair = self.pairs.get(p)?;
        Some(SelectedPair {
            local: pair.base,
            remote: pair.remote_addr,
            local_kind: pair.local_kind,
            remote_kind: pair.remote_kind,
            rtt: pair.stats.smoothed_rtt,
            nominated: self.nominated == Some(p),
            turn_transport: self.relay_transport(pair.base),
        })
    }

    fn set_state(&mut self, state: ConnectionState) {
        if self.connection_state != state {
            self.connection_state = state;
            self.events.push_back(Event::ConnectionState(state));
        }
    }

    /// A pair that works both ways: succeeded, and (for the controlled side) the peer's
    /// checks reach us on it.
    fn usable(&self, p: &Pair) -> bool {
        p.state == PairState::Succeeded && (self.role == Role::Controlling || p.received_request)
    }

    /// Before nomination, data goes on the best usable pair (lowest RTT among direct pairs,
    /// else relayed); the controlling side nominates once the choice is settled.
    fn update_selection(&mut self, now: Instant) {
        if self.nominated.is_none() {
            let best = self.best_pair(true).or_else(|| self.best_pair(false));
            if let Some((b, _)) = best {
                if self.selected != Some(b) {
                    self.select(now, b);
                }
                self.set_state(ConnectionState::Connected);
                self.consent_at
                    .get_or_insert(now + self.config.consent_interval);
            }
        }
        if self.role == Role::Controlling
            && self.nominated.is_none()
            && !self.pairs.iter().any(|p| p.check.is_some_and(|c| c.1))
        {
            if let Some(p) = self
                .nomination_choice(now)
                .filter(|_| self.nominating.is_none())
            {
                self.triggered.retain(|q| *q != p);
                self.triggered.push_front(p);
                self.nominating = Some(p);
                self.schedule_check(now);
            }
        }
        if self.role == Role::Controlling && self.renominate && self.nominating.is_none() {
            if let Some(p) = self.better_than_nominated() {
                self.nomination_counter += 1;
                tracing::info!(pair = p, "renominating a better pair");
                self.triggered.retain(|q| *q != p);
                self.triggered.push_front(p);
                self.nominating = Some(p);
                self.schedule_check(now);
            }
        }
    }

    /// A usable pair clearly better than the nominated one: direct where the nominated one
    /// is relayed, or an RTT lower by the hysteresis margin.
    fn better_than_nominated(&self) -> Option<usize> {
        let current = self.nominated?;
        let cur = self.pairs.get(current)?;
        if cur.state == PairState::Failed {
            // The nominated pair is gone (its TURN allocation was lost): any working pair
            // is better, relayed ones included.
            return self
                .best_pair(true)
                .or_else(|| self.best_pair(false))
                .map(|(b, _)| b)
                .filter(|&b| b != current);
        }
        let (best, best_pair) = self.best_pair(true)?;
        if best == current {
            return None;
        }
        if !cur.is_direct() {
            return Some(best);
        }
        let (Some(cur_rtt), Some(best_rtt)) =
            (cur.stats.smoothed_rtt, best_pair.stats.smoothed_rtt)
        else {
            return None;
        };
        let threshold = cur_rtt
            .mul_f64(1.0 - self.config.renomination_hysteresis)
            .saturating_sub(self.config.renomination_min_gain);
        (best_rtt < threshold).then_some(best)
    }

    /// The usable pair (direct or relayed) with the lowest smoothed RTT, and its index.
    fn best_pair(&self, direct: bool) -> Option<(usize, &Pair)> {
        self.pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| self.usable(p) && p.is_direct() == direct)
            .min_by_key(|(_, p)| {
                (
                    p.stats.smoothed_rtt.unwrap_or(Duration::MAX),
                    std::cmp::Reverse(p.priority),
                )
            })
    }

    /// Which pair the controlling agent nominates now, if it is time.
    fn nomination_choice(&self, now: Instant) -> Option<usize> {
        let start = self.started?;
        match self.config.nomination {
            Nomination::Regular => self
                .pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.state == PairState::Succeeded)
                .max_by_key(|(_, p)| p.priority)
                .map(|(i, _)| i),
            Nomination::LowestLatency => {
                if let Some((best, pair)) = self.best_pair(true) {
                    let first = self.first_direct_success?;
                    let rtt = pair.stats.smoothed_rtt.unwrap_or(Duration::ZERO);
                    // Settle: one more best RTT plus a Ta, so checks already in flight on
                    // faster paths can still answer; capped.
                    let settle = (rtt + self.config.ta).min(self.config.max_settle);
                    let direct_pending = self.pairs.iter().any(|p| {
                        p.is_direct()
                            && matches!(p.state, PairState::InProgress | PairState::Waiting)
                    });
                    return (now >= first + settle || !direct_pending).then_some(best);
                }
                let (relay, _) = self.best_pair(false)?;
                let deadline = self.relay_deadline(start)?;
                (now >= deadline).then_some(relay)
            }
        }
    }

    /// When the controlling agent may nominate a working relayed pair: once no direct pair
    /// can still succeed, or once every direct pair still alive has had time to answer its
    /// first check and one retransmission (that check's RTO, plus twice the relayed pair's
    /// RTT, since a direct path is rarely slower than the relay, plus a Ta of scheduling
    /// slack), and at the latest `relay_wait` after checks started. No fixed per-type wait
    /// (the issue with pion's 2 s).
    fn relay_deadline(&self, start: Instant) -> Option<Instant> {
        let (_, relay) = self.best_pair(false)?;
        let relay_rtt = relay.stats.smoothed_rtt.unwrap_or(self.config.min_rto);
        let cap = start + self.config.relay_wait;
        let mut deadline = None::<Instant>;
        for p in self.pairs.iter().filter(|p| p.is_direct()) {
            match (p.state, p.first_check) {
                (PairState::Failed | PairState::Succeeded, _) => {}
                (_, None) => return Some(cap),
                (_, Some((sent, rto))) => {
                    let t = sent + rto + relay_rtt * 2 + self.config.ta;
                    deadline = Some(deadline.map_or(t, |d| d.max(t)));
                }
            }
        }
        Some(deadline.map_or(start, |d| d.min(cap)))
    }

    /// Makes sure the check timer runs (checks stay paced by Ta).
    fn schedule_check(&mut self, now: Instant) {
        if self.started.is_some() && self.next_check.is_none() {
            self.next_check = Some(now);
        }
    }

    /// Sends the next check if Ta has passed (RFC 8445 §6.1.4.2): triggered first, then
    /// the highest-priority Waiting pair, then unfreeze the best Frozen one.
    fn run_checks(&mut self, now: Instant) {
        if self.remote_credentials.is_none() || self.pairs.is_empty() && !self.config.lite {
            return;
        }
        if self.config.lite {
            // A lite agent sends no checks (RFC 8445 §2.5); it only waits for them.
            if self.started.is_none() {
                self.started = Some(now);
                self.set_state(ConnectionState::Checking);
            }
            return;
        }
        if self.started.is_none() {
            self.started = Some(now);
            self.nomination_at = Some(now + self.config.relay_wait);
            self.set_state(ConnectionState::Checking);
        }
        if self.next_check.is_some_and(|t| t > now) {
            return;
        }
        let next = loop {
            match self.triggered.pop_front() {
                Some(p)
                    if self.nominating == Some(p)
                        || self.pairs.get(p).is_some_and(|q| {
                            q.check.is_none() && q.state != PairState::Succeeded
                        }) =>
                {
                    break Some(p)
                }
                Some(_) => {}
                None => break None,
            }
        };
        let next = next
            .or_else(|| self.best_in(PairState::Waiting))
            .or_else(|| self.best_in(PairState::Frozen));
        let Some(p) = next else {
            self.next_check = None;
            return;
        };
        let nominate = self.nominating == Some(p);
        let Some(pair) = self.pairs.get_mut(p) else {
            self.next_check = Some(now + self.config.ta);
            return;
        };
        if pair.check.is_some() {
            if !nominate {
                self.next_check = Some(now + self.config.ta);
                return;
            }
            // The nomination must not wait for (or be lost behind) a plain check in
            // flight on the same pair: cancel that one.
            if let Some((tid, _)) = pair.check.take() {
                if let Some(o) = self.transactions.get_mut(&tid) {
                    o.purpose = Purpose::CancelledCheck(p);
                }
            }
        }
        if nominate {
            self.nominating = None;
        }
        self.send_check(now, p, nominate);
        self.next_check = Some(now + self.config.ta);
    }

    fn best_in(&self, state: PairState) -> Option<usize> {
        self.pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state == state)
            .max_by_key(|(_, p)| p.priority)
            .map(|(i, _)| i)
    }

    fn send_check(&mut self, now: Instant, p: usize, use_candidate: bool) {
        let (Some(remote), Some(key)) = (&self.remote_credentials, &self.remote_key) else {
            return;
        };
        let tid = TransactionId(self.rng.gen());
        let Some(pair) = self.pairs.get(p) else {
            return;
        };
        let local_pref = candidate::local_preference(pair.base.ip(), 0);
        let prflx_priority = candidate::priority(CandidateKind::PeerReflexive, local_pref, 1);
        let username = format!("{}:{}", remote.ufrag, self.local_credentials.ufrag);
        let mut buf = [0u8; 256];
        let built = (|| {
            let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, tid)?;
            b.add(&Username(&username))?
                .add(&Priority(prflx_priority))?;
            match self.role {
                Role::Controlling => b.add(&IceControlling(self.tie_breaker))?,
                Role::Controlled => b.add(&IceControlled(self.tie_breaker))?,
            };
            if use_candidate {
                b.add(&UseCandidate)?;
                if self.renominate {
                    b.add(&NominationAttr(self.nomination_counter))?;
                }
            }
            b.add_message_integrity(key)?.add_fingerprint()?;
            Ok::<_, floe_stun::Error>(b.finish().to_vec())
        })();
        let Ok(bytes) = built else { return };
        // RFC 8445 §14.3: RTO = MAX(500 ms, Ta * (Waiting + In-Progress pairs)).
        let active = self
            .pairs
            .iter()
            .filter(|q| matches!(q.state, PairState::Waiting | PairState::InProgress))
            .count() as u32;
        let mut tc = TransactionConfig::default();
        tc.rto = self.config.min_rto.max(self.config.ta * active);
        tc.rc = self.config.max_check_transmissions;
        tc.rm = 1;
        let Ok(t) = ClientTransaction::new(bytes, Reliability::Unreliable, tc) else {
            return;
        };
        let Some(pair) = self.pairs.get_mut(p) else {
            return;
        };
        if pair.state != PairState::Succeeded {
            pair.state = PairState::InProgress;
        }
        pair.first_check.get_or_insert((now, tc.rto));
        pair.check = Some((tid, use_candidate));
        let (source, destination) = (pair.base, pair.remote_addr);
        self.transactions.insert(
            tid,
            Outstanding {
                purpose: Purpose::Check(p),
                transaction: t,
                source,
                destination,
            },
        );
        self.flush_transactions(now);
    }

    fn send_consent(&mut self, now: Instant, p: usize) {
        let (Some(remote), Some(key)) = (&self.remote_credentials, &self.remote_key) else {
            return;
        };
        let tid = TransactionId(self.rng.gen());
        let username = format!("{}:{}", remote.ufrag, self.local_credentials.ufrag);
        let mut buf = [0u8; 256];
        let built = (|| {
            let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, tid)?;
            b.add(&Username(&username))?
                .add(&Priority(candidate::priority(
                    CandidateKind::PeerReflexive,
                    65_535,
                    1,
                )))?;
            match self.role {
                Role::Controlling => b.add(&IceControlling(self.tie_breaker))?,
                Role::Controlled => b.add(&IceControlled(self.tie_breaker))?,
            };
            b.add_message_integrity(key)?.add_fingerprint()?;
            Ok::<_, floe_stun::Error>(b.finish().to_vec())
        })();
        let Ok(bytes) = built else { return };
        let mut tc = TransactionConfig::default();
        tc.rc = 3;
        tc.rm = 2;
        let Ok(t) = ClientTransaction::new(bytes, Reliability::Unreliable, tc) else {
            return;
        };
        let Some(pair) = self.pairs.get(p) else {
            return;
        };
        let (source, destination) = (pair.base, pair.remote_addr);
        self.transactions.insert(
            tid,
            Outstanding {
                purpose: Purpose::Consent(p),
                transaction: t,
                source,
                destination,
            },
        );
        self.flush_transactions(now);
    }

    fn flush_transactions(&mut self, now: Instant) {
        let mut due = Vec::new();
        for out in self.transactions.values_mut() {
            if let Some(bytes) = out.transaction.poll_transmit(now) {
                if let Purpose::CancelledCheck(_) = out.purpose {
                    continue;
                }
                if let Purpose::Check(p) = out.purpose {
                    if let Some(pair) = self.pairs.get_mut(p) {
                        pair.stats.requests_sent += 1;
                    }
                }
                due.push((out.source, out.destination, bytes.to_vec()));
            }
        }
        for (source, destination, data) in due {
            self.emit(source, destination, data);
        }
    }

    /// Advances timers: checks (Ta pacing), retransmissions, nomination, consent.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock = now;
        if self.prune_pending {
            self.prune_after_nomination();
        }
        self.shrink_idle_queues();
        for r in &mut self.relays {
            if r.active() {
                r.client.handle_timeout(now);
            }
        }
        self.drain_relays(now);
        self.start_due_relays(now);
        let mut done = Vec::new();
        for (tid, out) in &mut self.transactions {
            out.transaction.handle_timeout(now);
            let late = matches!(out.purpose, Purpose::Gather { deadline, .. } if deadline <= now);
            if late || out.transaction.state() == TransactionState::TimedOut {
                done.push(*tid);
            }
        }
        for tid in done {
            let Some(out) = self.transactions.remove(&tid) else {
                continue;
            };
            match out.purpose {
                Purpose::Check(p) => {
                    if let Some(pair) = self.pairs.get_mut(p) {
                        pair.check = None;
                        pair.state = PairState::Failed;
                    }
                    self.check_failure(now);
                }
                Purpose::Gather { server, .. } => {
                    self.pending_gathers = self.pending_gathers.saturating_sub(1);
                    self.events.push_back(Event::ServerFailed {
                        server,
                        reason: "no response (timeout)".into(),
                    });
                    if self.pending_gathers == 0 {
                        self.set_gathering(GatheringState::Complete);
                    }
                }
                Purpose::Consent(p) => {
                    // No answer through a relay: ask the TURN server whether the
                    // allocation still exists (a restarted server answers 437, and the
                    // agent allocates again) instead of waiting for the next refresh.
                    let relayed_base = self
                        .pairs
                        .get(p)
                        .filter(|q| q.local_kind.is_relayed())
                        .map(|q| q.base);
                    if let Some(r) = relayed_base.and_then(|base| self.relay_for(base)) {
                        r.client.refresh(now);
                    }
                }
                Purpose::CancelledCheck(_) => {}
            }
        }
        self.drain_relays(now);
        self.flush_transactions(now);
        self.run_checks(now);
        if self.nomination_at.is_some_and(|t| t <= now) {
            self.nomination_at = None;
        }
        self.update_selection(now);
        // Consent freshness (RFC 7675).
        if let (Some(p), Some(at)) = (self.selected, self.consent_at) {
            if now >= at && self.config.lite {
                // The peer's checks are the consent (see `handle_request`).
                let d = self.consent_delay();
                self.consent_at = Some(now + d);
            } else if now >= at {
                self.send_consent(now, p);
                // With renomination, keep measuring the best other direct pairs too.
                for q in self.measured_pairs(p) {
                    self.send_consent(now, q);
                }
                let d = self.consent_delay();
                self.consent_at = Some(now + d);
            }
            if self
                .last_consent
                .is_some_and(|t| now.saturating_duration_since(t) >= self.config.consent_timeout)
            {
                self.set_state(ConnectionState::Failed);
                self.consent_at = None;
            }
        }
        if self.selected.is_none()
            && self
                .started
                .is_some_and(|s| now.saturating_duration_since(s) >= self.config.failed_timeout)
        {
            self.set_state(ConnectionState::Failed);
        }
    }

    /// When [`Agent::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.connection_state, ConnectionState::Closed) {
            return None;
        }
        let checks = if self.remote_credentials.is_some() && !self.pairs.is_empty() {
            match (self.started, self.next_check) {
                (None, _) => Some(self.prflx_window.0),
                (Some(_), next) => next,
            }
        } else {
            None
        };
        let nomination = self
            .nomination_at
            .into_iter()
            .chain(
                self.started
                    .and_then(|s| self.relay_deadline(s))
                    .filter(|t| *t > self.clock),
            )
            .min()
            .filter(|_| self.role == Role::Controlling && self.nominated.is_none());
        let failed = (self.selected.is_none() && self.connection_state != ConnectionState::Failed)
            .then(|| self.started.map(|s| s + self.config.failed_timeout))
            .flatten();
        let consent_deadline = self
            .last_consent
            .filter(|_| self.connection_state != ConnectionState::Failed)
            .map(|t| t + self.config.consent_timeout);
        self.transactions
            .values()
            .filter_map(|o| match o.purpose {
                Purpose::Gather { deadline, .. } => {
                    o.transaction.poll_timeout().map(|t| t.min(deadline))
                }
                _ => o.transaction.poll_timeout(),
            })
            .chain(checks)
            .chain(nomination)
            .chain(failed)
            .chain(self.consent_at)
            .chain(consent_deadline)
            .chain(self.relay_timeout())
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
    pub fn restart(&mut self, now: Instant) {
        self.local_credentials = Credentials::random(&mut self.rng);
        self.local_key = IntegrityKey::from_key_bytes(self.local_credentials.pwd.as_bytes());
        self.remote_credentials = None;
        self.remote_key = None;
        self.remotes.clear();
        self.pending_mdns.clear();
        self.remote_end_of_candidates = false;
        self.pairs.clear();
        self.triggered.clear();
        self.transactions.clear();
        self.pending_gathers = 0;
        self.next_check = None;
        self.started = None;
        self.first_direct_success = None;
        self.selected = None;
        self.nominated = None;
        self.nominating = None;
        self.nomination_at = None;
        self.consent_at = None;
        self.last_consent = None;
        self.prune_pending = false;
        self.pruned = false;
        let hosts: Vec<(SocketAddr, u16)> = self
            .locals
            .iter()
            .filter(|l| l.candidate.kind == CandidateKind::Host)
            .map(|l| (l.base, (l.candidate.priority >> 8) as u16))
            .collect();
        self.release_relays(now);
        let servers = std::mem::take(&mut self.turn_servers);
        self.locals.clear();
        self.set_state(ConnectionState::New);
        self.set_gathering(GatheringState::New);
        for (base, local_preference) in hosts {
            let c = Candidate::new(CandidateKind::Host, base, base, None, local_preference);
            self.push_local(c, base);
            for server in self.config.stun_servers.clone() {
                if server.is_ipv4() == base.is_ipv4() {
                    self.gather_from(now, base, server);
                }
            }
        }
        for server in servers {
            self.add_turn_server_with(now, server);
        }
        if self.pending_gathers == 0 {
            self.set_gathering(GatheringState::Complete);
        }
    }

    /// Stops everything at `now`. TURN allocations are freed: a Refresh with lifetime 0
    /// goes out for UDP ones (poll the transmits once more), [`Event::CloseStream`] for
    /// the others. A closed agent ignores what it receives.
    pub fn close(&mut self, now: Instant) {
        self.clock = now;
        self.transactions.clear();
        self.release_relays(now);
        self.set_state(ConnectionState::Closed);
    }
}
