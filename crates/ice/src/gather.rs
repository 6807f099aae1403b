//! Gathering (RFC 8445 §5.1.1): the gathering state, the server-reflexive requests and
//! TURN allocations still pending, and the relay set: one floe-turn `Client` per
//! (TURN server, transport) attempt, raced Happy-Eyeballs style (RFC 8305 in spirit,
//! RFC 7065 URIs: a `turn:` URI without `?transport=` may use UDP and TCP).
//!
//! A server's transports form a race group: the first starts at once, each next one
//! [`AgentConfig::turn_stagger`] later (or at once when the previous one fails); the first
//! allocation wins and the others are cancelled (a late UDP allocation is deallocated, a
//! stream closed with [`Event::CloseStream`]). The agent turns a won allocation into a
//! relayed candidate and its pairs (`agent/relay.rs`); this file owns the race.
//!
//! The agent stays sans-IO for streams too: a [`Transmit`] whose
//! [`transport`](Transmit::transport) is [`Transport::Tcp`] or [`Transport::Tls`] goes on
//! the runtime's connection to `destination` (opened on the first such transmit; TLS is the
//! runtime's). Bytes read from it are given to
//! [`Agent::handle_stream_receive`](crate::Agent::handle_stream_receive).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use floe_turn::client::{Client as TurnClient, ClientConfig as TurnConfig};

mod relay;

use rand::Rng;
pub use relay::TurnServer;
pub(crate) use relay::{Relay, RelayState};
use relay::{MAX_REDIRECTS, MAX_RELAYS, MAX_SERVERS};

use crate::config::AgentConfig;
use crate::event::{Event, GatheringState};
use floe_stun::{Transmit, Transport};

/// What a won allocation means for the agent ([`Gathering::allocated`]).
#[derive(Debug)]
pub(crate) struct Won {
    /// The relayed addresses (two for a dual allocation).
    pub(crate) relayed: Vec<SocketAddr>,
    pub(crate) server: SocketAddr,
    pub(crate) transport: Transport,
    /// It carries a pending gather: finish it once the candidate is announced.
    pub(crate) gathering: bool,
}

/// A lost allocation ([`Gathering::lost`]).
#[derive(Debug)]
pub(crate) struct Lost {
    /// The relayed addresses that are gone.
    pub(crate) relayed: Vec<SocketAddr>,
}

/// Gathering of one ICE session (an ICE restart starts a fresh one, with the same TURN
/// servers).
#[derive(Debug)]
pub(crate) struct Gathering {
    state: GatheringState,
    /// Server-reflexive requests and TURN servers not answered yet.
    pending: usize,
    relays: Vec<Relay>,
    servers: Vec<TurnServer>,
}

impl Default for Gathering {
    fn default() -> Self {
        Gathering {
            state: GatheringState::New,
            pending: 0,
            relays: Vec::new(),
            servers: Vec::new(),
        }
    }
}

impl Gathering {
    pub(crate) fn state(&self) -> GatheringState {
        self.state
    }

    pub(crate) fn set_state(&mut self, state: GatheringState, events: &mut VecDeque<Event>) {
        if self.state != state {
            self.state = state;
            events.push_back(Event::GatheringState(state));
        }
    }

    /// A server-reflexive request or a TURN server is pending.
    pub(crate) fn begin(&mut self, events: &mut VecDeque<Event>) {
        self.pending += 1;
        self.set_state(GatheringState::Gathering, events);
    }

    /// One pending request or server is done (answered, failed or timed out).
    pub(crate) fn finish(&mut self, events: &mut VecDeque<Event>) {
        self.pending = self.pending.saturating_sub(1);
        self.complete_if_done(events);
    }

    /// Gathering is complete once nothing is pending (RFC 8838 §4.4: the runtime may then
    /// signal end-of-candidates).
    pub(crate) fn complete_if_done(&mut self, events: &mut VecDeque<Event>) {
        if self.pending == 0 {
            self.set_state(GatheringState::Complete, events);
        }
    }

    /// Whether nothing is pending and no TURN server was added.
    pub(crate) fn is_idle(&self) -> bool {
        self.pending == 0 && self.relays.is_empty()
    }

    /// The TURN servers added, to add again after an ICE restart.
    pub(crate) fn servers(&self) -> &[TurnServer] {
        &self.servers
    }

    /// Adds a TURN server and its race group (the first transport starts at `now`, at the
    /// next [`Gathering::start_due`]). At most 8 servers.
    pub(crate) fn add_turn_server<R: Rng>(
        &mut self,
        now: Instant,
        server: TurnServer,
        config: &AgentConfig,
        rng: &mut R,
        events: &mut VecDeque<Event>,
    ) {
        if self.servers.len() >= MAX_SERVERS || server.base.is_ipv4() != server.server.is_ipv4() {
            return;
        }
        let mut transports = server.transports.clone();
        transports.dedup();
        transports.truncate(3);
        if transports.is_empty() {
            return;
        }
        let group = self.servers.len();
        self.servers.push(server);
        let mut at = now;
        for (k, transport) in transports.into_iter().enumerate() {
            self.push(group, transport, RelayState::Waiting(at), k == 0, rng);
            at += config.turn_stagger;
        }
        self.begin(events);
    }

    /// A new attempt in `group` (at most 32 attempts per agent).
    fn push<R: Rng>(
        &mut self,
        group: usize,
        transport: Transport,
        state: RelayState,
        gathering: bool,
        rng: &mut R,
    ) {
        let Some(server) = self.servers.get(group).map(|ts| ts.server) else {
            return;
        };
        self.push_to(group, transport, server, state, gathering, rng);
    }

    /// A new attempt in `group` on `server` (the group's, or an alternate it redirected
    /// to).
    fn push_to<R: Rng>(
        &mut self,
        group: usize,
        transport: Transport,
        server: SocketAddr,
        state: RelayState,
        gathering: bool,
        rng: &mut R,
    ) {
        if self.relays.len() >= MAX_RELAYS {
            return;
        }
        let Some(ts) = self.servers.get(group) else {
            return;
        };
        let mut config = TurnConfig::new(ts.base, server, transport, &ts.username, &ts.password);
        config.dual_stack = ts.ipv6_relay == Some(true);
        self.relays.push(Relay {
            client: TurnClient::new(config, rng.gen()),
            group,
            transport,
            base: ts.base,
            server,
            relayed: None,
            relayed_other: None,
            state,
            gathering,
            error: None,
        });
    }

    pub(crate) fn relay(&self, i: usize) -> Option<&Relay> {
        self.relays.get(i)
    }

    pub(crate) fn relay_mut(&mut self, i: usize) -> Option<&mut Relay> {
        self.relays.get_mut(i)
    }

    pub(crate) fn relays_mut(&mut self) -> impl Iterator<Item = &mut Relay> {
        self.relays.iter_mut()
    }

    /// The active attempt whose stream over `transport` goes to `server`, by index.
    pub(crate) fn find_stream(&self, transport: Transport, server: SocketAddr) -> Option<usize> {
        self.relays
            .iter()
            .position(|r| r.transport == transport && r.server == server && r.active())
    }

    /// The active UDP allocation on local socket `base` with `server`, by index.
    pub(crate) fn find_udp(&self, base: SocketAddr, server: SocketAddr) -> Option<usize> {
        self.relays.iter().position(|r| {
            r.transport == Transport::Udp && r.base == base && r.server == server && r.active()
        })
    }

    /// Starts the attempts whose stagger has passed; fails the ones past their deadline.
    pub(crate) fn start_due(
        &mut self,
        now: Instant,
        config: &AgentConfig,
        events: &mut VecDeque<Event>,
    ) {
        for i in 0..self.relays.len() {
            let Some(r) = self.relays.get_mut(i) else {
                continue;
            };
            match r.state {
                RelayState::Waiting(at) if at <= now => {
                    r.state = RelayState::Allocating(now + config.gather_timeout);
                    r.client.allocate(now);
                }
                RelayState::Allocating(deadline) if deadline <= now => {
                    self.failed(
                        now,
                        i,
                        "no allocation in time (timeout)".into(),
                        config,
                        events,
                    );
                }
                RelayState::Cancelled(deadline) if deadline <= now => {
                    r.state = RelayState::Done;
                }
                _ => {}
            }
        }
    }

    /// The next relay deadline or staggered start, or TURN client timer.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.relays
            .iter()
            .filter_map(|r| match r.state {
                RelayState::Waiting(t) | RelayState::Allocating(t) | RelayState::Cancelled(t) => {
                    Some(t)
                }
                RelayState::Allocated | RelayState::Done => None,
            })
            .chain(
                self.relays
                    .iter()
                    .filter(|r| r.active())
                    .filter_map(|r| r.client.poll_timeout()),
            )
            .min()
    }

    /// Runs the active TURN clients' timers.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        for r in &mut self.relays {
            if r.active() {
                r.client.handle_timeout(now);
            }
        }
    }

    /// Attempt `i` allocated `relayed` (its first relayed address): the race of its group
    /// is won. The other attempts are cancelled, [`Event::RelayAllocated`] is raised.
    /// `None` when the attempt was cancelled already (the allocation is freed at once) or
    /// has no address.
    pub(crate) fn allocated(
        &mut self,
        now: Instant,
        i: usize,
        relayed: &[SocketAddr],
        config: &AgentConfig,
        transmits: &mut VecDeque<Transmit>,
        events: &mut VecDeque<Event>,
    ) -> Option<Won> {
        let r = self.relays.get_mut(i)?;
        if let RelayState::Cancelled(_) = r.state {
            // Lost the race: free it at once.
            r.client.deallocate(now);
            send_over_udp(&mut r.client, transmits);
            r.state = RelayState::Done;
            return None;
        }
        let addr = *relayed.first()?;
        r.relayed = Some(addr);
        r.relayed_other = relayed
            .get(1)
            .copied()
            .filter(|o| o.is_ipv4() != addr.is_ipv4());
        r.state = RelayState::Allocated;
        let all: Vec<SocketAddr> = [r.relayed, r.relayed_other].into_iter().flatten().collect();
        let (server, group, transport) = (r.server, r.group, r.transport);
        let mut gathering = std::mem::take(&mut r.gathering);
        // The race is won: cancel the other attempts of this server (the first allocation
        // of the group carries the pending gather over to the winner).
        for (j, other) in self.relays.iter_mut().enumerate() {
            if j == i || other.group != group {
                continue;
            }
            match other.state {
                RelayState::Waiting(_) => other.state = RelayState::Done,
                RelayState::Allocating(_) if other.transport.is_stream() => {
                    other.state = RelayState::Done;
                    events.push_back(Event::CloseStream {
                        transport: other.transport,
                        server: other.server,
                    });
                }
                RelayState::Allocating(_) => {
                    other.state = RelayState::Cancelled(now + config.gather_timeout);
                }
                _ => {}
            }
            gathering |= std::mem::take(&mut other.gathering);
        }
        events.push_back(Event::RelayAllocated {
            server,
            transport,
            relayed: addr,
        });
        Some(Won {
            relayed: all,
            server,
            transport,
            gathering,
        })
    }

    /// Attempt `i` failed: Happy Eyeballs starts the next transport of its group at once;
    /// when every transport failed, [`Event::ServerFailed`] says why, per transport.
    /// Whether another attempt started (its Allocate waits in its client: drain it).
    pub(crate) fn failed(
        &mut self,
        now: Instant,
        i: usize,
        reason: String,
        config: &AgentConfig,
        events: &mut VecDeque<Event>,
    ) -> bool {
        let Some(r) = self.relays.get_mut(i) else {
            return false;
        };
        let was_stream_open = r.transport.is_stream() && r.active();
        r.state = RelayState::Done;
        r.error = Some(reason);
        let (group, transport, server) = (r.group, r.transport, r.server);
        if was_stream_open {
            events.push_back(Event::CloseStream { transport, server });
        }
        let siblings = self
            .relays
            .iter()
            .enumerate()
            .filter(|&(j, r)| j != i && r.group == group);
        if siblings
            .clone()
            .any(|(_, r)| r.state == RelayState::Allocated)
        {
            return false;
        }
        // The next attempt inherits the pending gather.
        let first_in = |pick: fn(RelayState) -> bool| {
            siblings
                .clone()
                .find(|(_, r)| pick(r.state))
                .map(|(j, _)| j)
        };
        let next = first_in(|s| matches!(s, RelayState::Waiting(_)));
        let running = first_in(|s| matches!(s, RelayState::Allocating(_)));
        if let Some(j) = next.or(running) {
            let inherited = self
                .relays
                .get_mut(i)
                .is_some_and(|r| std::mem::take(&mut r.gathering));
            if let Some(sibling) = self.relays.get_mut(j) {
                sibling.gathering |= inherited;
                if next.is_some() {
                    sibling.state = RelayState::Waiting(now);
                }
            }
            if next.is_some() {
                self.start_due(now, config, events);
            }
            return next.is_some();
        }
        // Every transport failed.
        let reason = self
            .relays
            .iter()
            .filter(|r| r.group == group)
            .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.transport)))
            .collect::<Vec<_>>()
            .join("; ");
        events.push_back(Event::ServerFailed { server, reason });
        if self
            .relays
            .get_mut(i)
            .is_some_and(|r| std::mem::take(&mut r.gathering))
        {
            self.finish(events);
        }
        false
    }

    /// Attempt `i` was redirected to `alternate` (300 Try Alternate, RFC 8489 §10; a
    /// draining or overloaded TURN server): a new attempt with the same transport and
    /// credentials goes there at once and inherits the pending gather. Not when the
    /// alternate is of another family than the base, was tried already in this group (a
    /// loop), or the group was redirected [`MAX_REDIRECTS`] times. Whether it started.
    pub(crate) fn redirected<R: Rng>(
        &mut self,
        now: Instant,
        i: usize,
        (alternate, domain): (SocketAddr, Option<String>),
        config: &AgentConfig,
        events: &mut VecDeque<Event>,
        rng: &mut R,
    ) -> bool {
        let Some(r) = self.relays.get(i) else {
            return false;
        };
        let (group, transport, base, server) = (r.group, r.transport, r.base, r.server);
        let Some(home) = self.servers.get(group).map(|ts| ts.server) else {
            return false;
        };
        let in_group = || self.relays.iter().filter(move |r| r.group == group);
        let redirects = in_group().filter(|r| r.server != home).count();
        let loop_ = alternate == home || in_group().any(|r| r.server == alternate);
        if alternate.is_ipv4() != base.is_ipv4()
            || loop_
            || redirects >= MAX_REDIRECTS
            || matches!(r.state, RelayState::Cancelled(_))
        {
            return false;
        }
        let gathering = self.relays.get_mut(i).is_some_and(|r| {
            r.state = RelayState::Done;
            std::mem::take(&mut r.gathering)
        });
        if transport.is_stream() {
            events.push_back(Event::CloseStream { transport, server });
        }
        tracing::info!(%server, %alternate, ?domain, "TURN server redirects (300 Try Alternate)");
        events.push_back(Event::TurnRedirected {
            server,
            alternate,
            transport,
            domain,
        });
        self.push_to(
            group,
            transport,
            alternate,
            RelayState::Waiting(now),
            gathering,
            rng,
        );
        self.start_due(now, config, events);
        true
    }

    /// Attempt `i` failed, unless it was cancelled already (then it is simply done).
    /// Whether another attempt started ([`Gathering::failed`]).
    pub(crate) fn failed_unless_cancelled(
        &mut self,
        now: Instant,
        i: usize,
        reason: String,
        config: &AgentConfig,
        events: &mut VecDeque<Event>,
    ) -> bool {
        match self.relays.get_mut(i) {
            Some(r) if matches!(r.state, RelayState::Cancelled(_)) => {
                r.state = RelayState::Done;
                false
            }
            Some(_) => self.failed(now, i, reason, config, events),
            None => false,
        }
    }

    /// Whether attempt `i` holds an allocation.
    pub(crate) fn is_allocated(&self, i: usize) -> bool {
        self.relays
            .get(i)
            .is_some_and(|r| r.state == RelayState::Allocated)
    }

    /// The allocation of attempt `i` is gone (the server restarted, or refreshes failed):
    /// a new attempt on the same transport starts at `now`. `None` if it was not
    /// allocated.
    pub(crate) fn lost<R: Rng>(
        &mut self,
        now: Instant,
        i: usize,
        reason: &str,
        rng: &mut R,
        events: &mut VecDeque<Event>,
    ) -> Option<Lost> {
        let r = self.relays.get_mut(i)?;
        if r.state != RelayState::Allocated {
            r.state = RelayState::Done;
            return None;
        }
        r.state = RelayState::Done;
        let relayed: Vec<SocketAddr> = [r.relayed, r.relayed_other].into_iter().flatten().collect();
        let (group, transport, server) = (r.group, r.transport, r.server);
        if transport.is_stream() {
            events.push_back(Event::CloseStream { transport, server });
        }
        events.push_back(Event::ServerFailed {
            server,
            reason: format!("{transport}: allocation lost ({reason}); allocating again"),
        });
        self.push(group, transport, RelayState::Waiting(now), false, rng);
        Some(Lost { relayed })
    }

    /// The allocations in use: (TURN server, transport that won its race, relayed address).
    pub(crate) fn allocations(
        &self,
    ) -> impl Iterator<Item = (SocketAddr, Transport, SocketAddr)> + '_ {
        self.relays
            .iter()
            .filter(|r| r.state == RelayState::Allocated)
            .flat_map(|r| {
                [r.relayed, r.relayed_other]
                    .into_iter()
                    .flatten()
                    .map(|relayed| (r.server, r.transport, relayed))
            })
    }

    /// The relay whose relayed address is `relayed`, if it is usable.
    pub(crate) fn relay_for(&mut self, relayed: SocketAddr) -> Option<&mut Relay> {
        self.relays
            .iter_mut()
            .find(|r| r.has_relayed(relayed) && r.state == RelayState::Allocated)
    }

    /// Whether `source` is (or was) a relayed address: data from it must go through the
    /// TURN server, never out of a host socket.
    pub(crate) fn is_relayed_address(&self, source: SocketAddr) -> bool {
        self.relays.iter().any(|r| r.has_relayed(source))
    }

    /// The transport of the relay behind a relayed local address.
    pub(crate) fn relay_transport(&self, relayed: SocketAddr) -> Option<Transport> {
        self.relays
            .iter()
            .find(|r| r.has_relayed(relayed))
            .map(|r| r.transport)
    }

    /// Frees every allocation (ICE restart, close): UDP ones are deallocated, stream ones
    /// have their connection closed.
    pub(crate) fn release(
        &mut self,
        now: Instant,
        transmits: &mut VecDeque<Transmit>,
        events: &mut VecDeque<Event>,
    ) {
        for r in &mut self.relays {
            let was = r.state;
            r.state = RelayState::Done;
            match was {
                RelayState::Allocated if r.transport == Transport::Udp => {
                    r.client.deallocate(now);
                    send_over_udp(&mut r.client, transmits);
                }
                RelayState::Allocated | RelayState::Allocating(_) if r.transport.is_stream() => {
                    events.push_back(Event::CloseStream {
                        transport: r.transport,
                        server: r.server,
                    });
                }
                _ => {}
            }
        }
        self.relays.clear();
    }
}

/// Queues what a TURN client has to send (its Refresh with LIFETIME 0 when it lets an
/// allocation go) as UDP datagrams from its base socket.
fn send_over_udp(client: &mut TurnClient, transmits: &mut VecDeque<Transmit>) {
    while let Some(t) = client.poll_transmit() {
        transmits.push_back(Transmit {
            transport: Transport::Udp,
            ..t
        });
    }
}
