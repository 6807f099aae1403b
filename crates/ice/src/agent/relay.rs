//! Relayed candidates (RFC 8445 §5.1.1.2): TURN allocations over UDP, TCP or TLS, raced
//! Happy-Eyeballs style (RFC 8305 in spirit, RFC 7065 URIs: a `turn:` URI without
//! `?transport=` may use UDP and TCP).
//!
//! The agent stays sans-IO for streams too: a [`Transmit`] whose
//! [`transport`](Transmit::transport) is [`Transport::Tcp`] or [`Transport::Tls`] goes on
//! the runtime's connection to `destination` (opened on the first such transmit; TLS is the
//! runtime's). Bytes read from it are given to [`Agent::handle_stream_receive`]; a failed
//! or closed connection is reported with [`Agent::handle_stream_closed`]; when the agent no
//! longer needs a connection it raises [`Event::CloseStream`].

use std::net::SocketAddr;
use std::time::Instant;

use floe_turn::client::{Client as TurnClient, ClientConfig as TurnConfig, Event as TurnEvent};
use rand::Rng;

use super::Agent;
use crate::candidate::{self, Candidate, CandidateKind};
use crate::checklist::PairState;
use crate::event::Event;
use crate::transport::{Transmit, Transport};

/// A TURN server to allocate a relayed candidate on.
///
/// The transports are tried in order, each starting [`AgentConfig::turn_stagger`] after the
/// previous one (or at once when the previous one fails); the first allocation that
/// succeeds is kept and the others are cancelled (deallocated, or their connection
/// closed).
///
/// [`AgentConfig::turn_stagger`]: crate::AgentConfig::turn_stagger
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TurnServer {
    /// The local UDP socket (a host added with [`Agent::add_host`]) for UDP; for streams,
    /// the local address the runtime should connect from (its IP picks the interface).
    pub base: SocketAddr,
    /// The server's address.
    pub server: SocketAddr,
    /// The transports to race, in order (at most three).
    pub transports: Vec<Transport>,
    /// Long-term credential username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl TurnServer {
    /// A server reached over UDP, then TCP (what a `turn:` URI without `?transport=`
    /// allows, RFC 7065 §3).
    pub fn new(base: SocketAddr, server: SocketAddr, username: &str, password: &str) -> Self {
        TurnServer {
            base,
            server,
            transports: vec![Transport::Udp, Transport::Tcp],
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }

    /// Only these transports, in this order (`?transport=udp|tcp` pins one; `turns:` is
    /// [`Transport::Tls`]).
    #[must_use]
    pub fn with_transports(mut self, transports: &[Transport]) -> Self {
        self.transports = transports.to_vec();
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RelayState {
    /// Starts at this time unless another transport of the group wins first.
    Waiting(Instant),
    /// Allocate sent; fails if not allocated by this time.
    Allocating(Instant),
    Allocated,
    /// Lost the race while its UDP Allocate was in flight: deallocate if it lands.
    Cancelled(Instant),
    Done,
}

/// A TURN allocation (or an attempt at one).
#[derive(Debug)]
pub(super) struct Relay {
    pub(super) client: TurnClient,
    /// Index into `Agent::turn_servers`.
    pub(super) group: usize,
    pub(super) transport: Transport,
    pub(super) base: SocketAddr,
    pub(super) server: SocketAddr,
    pub(super) relayed: Option<SocketAddr>,
    pub(super) state: RelayState,
    /// Counted in the agent's pending gathers (the first allocation of a group).
    pub(super) gathering: bool,
    pub(super) error: Option<String>,
}

impl Relay {
    pub(super) fn active(&self) -> bool {
        matches!(
            self.state,
            RelayState::Allocating(_) | RelayState::Allocated | RelayState::Cancelled(_)
        )
    }
}

/// Most TURN servers per agent, and relay attempts (re-allocations included) per agent.
const MAX_SERVERS: usize = 8;
const MAX_RELAYS: usize = 32;

impl Agent {
    /// Allocates a relayed candidate on a TURN server over UDP, sent from the local socket
    /// `base` (one of the hosts added with [`Agent::add_host`]). See
    /// [`Agent::add_turn_server_with`] for TCP, TLS and racing.
    pub fn add_turn_server(
        &mut self,
        now: Instant,
        base: SocketAddr,
        server: SocketAddr,
        username: &str,
        password: &str,
    ) {
        let ts =
            TurnServer::new(base, server, username, password).with_transports(&[Transport::Udp]);
        self.add_turn_server_with(now, ts);
    }

    /// Allocates a relayed candidate on `server`, racing its transports (see
    /// [`TurnServer`]). Gathering stays incomplete until one allocation succeeds or all
    /// fail ([`Event::ServerFailed`] then says why, per transport). The winner is reported
    /// with [`Event::RelayAllocated`].
    pub fn add_turn_server_with(&mut self, now: Instant, server: TurnServer) {
        // A lite agent offers host candidates only (RFC 8445 §5.1.1).
        if self.config.lite
            || self.turn_servers.len() >= MAX_SERVERS
            || server.base.is_ipv4() != server.server.is_ipv4()
        {
            return;
        }
        let mut transports = server.transports.clone();
        transports.dedup();
        transports.truncate(3);
        if transports.is_empty() {
            return;
        }
        let group = self.turn_servers.len();
        self.turn_servers.push(server);
        let mut at = now;
        for (k, transport) in transports.into_iter().enumerate() {
            self.push_relay(group, transport, RelayState::Waiting(at), k == 0);
            at += self.config.turn_stagger;
        }
        self.pending_gathers += 1;
        self.set_gathering(crate::GatheringState::Gathering);
        self.start_due_relays(now);
    }

    fn push_relay(
        &mut self,
        group: usize,
        transport: Transport,
        state: RelayState,
        gathering: bool,
    ) {
        if self.relays.len() >= MAX_RELAYS {
            return;
        }
        let Some(ts) = self.turn_servers.get(group) else {
            return;
        };
        let kind = if transport.is_stream() {
            floe_turn::Transport::Tcp
        } else {
            floe_turn::Transport::Udp
        };
        let config = TurnConfig::new(ts.base, ts.server, kind, &ts.username, &ts.password);
        self.relays.push(Relay {
            client: TurnClient::new(config, self.rng.gen()),
            group,
            transport,
            base: ts.base,
            server: ts.server,
            relayed: None,
            state,
            gathering,
            error: None,
        });
    }

    /// Starts the attempts whose stagger has passed; fails the ones past their deadline.
    pub(super) fn start_due_relays(&mut self, now: Instant) {
        for i in 0..self.relays.len() {
            let Some(r) = self.relays.get_mut(i) else {
                continue;
            };
            match r.state {
                RelayState::Waiting(at) if at <= now => {
                    r.state = RelayState::Allocating(now + self.config.gather_timeout);
                    r.client.allocate(now);
                }
                RelayState::Allocating(deadline) if deadline <= now => {
                    self.relay_failed(now, i, "no allocation in time (timeout)".into());
                }
                RelayState::Cancelled(deadline) if deadline <= now => {
                    r.state = RelayState::Done;
                }
                _ => {}
            }
        }
        self.drain_relays(now);
    }

    /// The next relay deadline or staggered start.
    pub(super) fn relay_timeout(&self) -> Option<Instant> {
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

    /// Moves TURN clients' transmits out and turns their events into candidates.
    pub(super) fn drain_relays(&mut self, now: Instant) {
        let mut i = 0;
        // Events may push new relays (re-allocation): walk by index.
        while let Some(r) = self.relays.get_mut(i) {
            while let Some(t) = r.client.poll_transmit() {
                if r.active() {
                    self.transmits.push_back(Transmit {
                        transport: r.transport,
                        source: t.source,
                        destination: t.destination,
                        data: t.data,
                    });
                }
            }
            while let Some(e) = self.relays.get_mut(i).and_then(|r| r.client.poll_event()) {
                self.relay_event(now, i, e);
            }
            i += 1;
        }
    }

    fn relay_event(&mut self, now: Instant, i: usize, event: TurnEvent) {
        match event {
            TurnEvent::Allocated {
                relayed, mapped, ..
            } => {
                let Some(r) = self.relays.get_mut(i) else {
                    return;
                };
                if let RelayState::Cancelled(_) = r.state {
                    // Lost the race: free it at once.
                    r.client.deallocate(now);
                    while let Some(t) = r.client.poll_transmit() {
                        self.transmits.push_back(Transmit {
                            transport: Transport::Udp,
                            source: t.source,
                            destination: t.destination,
                            data: t.data,
                        });
                    }
                    r.state = RelayState::Done;
                    return;
                }
                let Some(&addr) = relayed.first() else { return };
                self.relay_allocated(now, i, addr, mapped);
            }
            TurnEvent::AllocationFailed(e) => {
                let Some(r) = self.relays.get_mut(i) else {
                    return;
                };
                if matches!(r.state, RelayState::Cancelled(_)) {
                    r.state = RelayState::Done;
                } else {
                    self.relay_failed(now, i, e.to_string());
                }
            }
            TurnEvent::AllocationLost(e) => self.relay_lost(now, i, &e.to_string()),
            _ => {}
        }
    }

    fn relay_allocated(
        &mut self,
        now: Instant,
        i: usize,
        addr: SocketAddr,
        mapped: Option<SocketAddr>,
    ) {
        let Some(r) = self.relays.get_mut(i) else {
            return;
        };
        r.relayed = Some(addr);
        r.state = RelayState::Allocated;
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
                    self.events.push_back(Event::CloseStream {
                        transport: other.transport,
                        server: other.server,
                    });
                }
                RelayState::Allocating(_) => {
                    other.state = RelayState::Cancelled(now + self.config.gather_timeout);
                }
                _ => {}
            }
            gathering |= std::mem::take(&mut other.gathering);
        }
        self.events.push_back(Event::RelayAllocated {
            server,
            transport,
            relayed: addr,
        });
        let mut c = Candidate::new(
            CandidateKind::Relayed,
            addr,
            addr,
            Some(server),
            // RFC 8445 §5.1.2.1: prefer relays reached over UDP to TCP to TLS.
            candidate::local_preference(addr.ip(), usize::from(transport.is_stream()) * 2),
        );
        c.related = mapped;
        self.push_local(c, addr);
        // Permissions for every remote candidate right away (INTEROP: the first check
        // between two relays is otherwise often lost).
        let ips: Vec<_> = self
            .remotes
            .iter()
            .filter_map(Candidate::addr)
            .filter(|a| a.is_ipv4() == addr.is_ipv4())
            .map(|a| a.ip())
            .collect();
        if let Some(r) = self.relays.get_mut(i) {
            for ip in ips {
                let _ = r.client.create_permission(now, ip);
            }
        }
        let local = self.locals.len() - 1;
        for remote in 0..self.remotes.len() {
            self.add_pair(local, remote);
        }
        // The candidate goes out before "gathering complete" (RFC 8838: end-of-candidates
        // follows the last candidate).
        if gathering {
            self.finish_gather();
        }
        self.schedule_check(now);
    }

    fn relay_failed(&mut self, now: Instant, i: usize, reason: String) {
        let Some(r) = self.relays.get_mut(i) else {
            return;
        };
        let was_stream_open = r.transport.is_stream() && r.active();
        r.state = RelayState::Done;
        r.error = Some(reason);
        let (group, transport, server) = (r.group, r.transport, r.server);
        if was_stream_open {
            self.events
                .push_back(Event::CloseStream { transport, server });
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
            return;
        }
        // Happy Eyeballs: a failure starts the next transport at once; the next attempt
        // inherits the pending gather.
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
                self.start_due_relays(now);
            }
            return;
        }
        // Every transport failed.
        let reason = self
            .relays
            .iter()
            .filter(|r| r.group == group)
            .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.transport)))
            .collect::<Vec<_>>()
            .join("; ");
        self.events
            .push_back(Event::ServerFailed { server, reason });
        if self
            .relays
            .get_mut(i)
            .is_some_and(|r| std::mem::take(&mut r.gathering))
        {
            self.finish_gather();
        }
    }

    /// The allocation is gone (the server restarted, or refreshes failed): its pairs fail,
    /// and the agent allocates again on the same transport; the new relayed candidate is
    /// announced as [`Event::LocalCandidate`] (signal it to the peer).
    fn relay_lost(&mut self, now: Instant, i: usize, reason: &str) {
        let Some(r) = self.relays.get_mut(i) else {
            return;
        };
        if r.state != RelayState::Allocated {
            r.state = RelayState::Done;
            return;
        }
        r.state = RelayState::Done;
        let (group, transport, server, relayed) = (r.group, r.transport, r.server, r.relayed);
        if transport.is_stream() {
            self.events
                .push_back(Event::CloseStream { transport, server });
        }
        self.events.push_back(Event::ServerFailed {
            server,
            reason: format!("{transport}: allocation lost ({reason}); allocating again"),
        });
        for p in self.pairs.iter_mut().filter(|p| Some(p.base) == relayed) {
            p.state = PairState::Failed;
            p.check = None;
        }
        self.transactions.retain(|_, o| Some(o.source) != relayed);
        self.push_relay(group, transport, RelayState::Waiting(now), false);
        self.start_due_relays(now);
        self.check_failure(now);
    }

    /// Bytes the runtime read from its `transport` connection to TURN server `server`.
    /// Application data relayed from peers is given to `on_data` (remote address, bytes).
    pub fn handle_stream_receive(
        &mut self,
        now: Instant,
        transport: Transport,
        server: SocketAddr,
        bytes: &[u8],
        mut on_data: impl FnMut(SocketAddr, &[u8]),
    ) {
        let Some((i, r)) = self
            .relays
            .iter_mut()
            .enumerate()
            .find(|(_, r)| r.transport == transport && r.server == server && r.active())
        else {
            return;
        };
        let mut frames: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        let result = r
            .client
            .handle_stream(now, bytes, |peer, data| frames.push((peer, data.to_vec())));
        self.drain_relays(now);
        if let Err(e) = result {
            self.relay_lost_or_failed(now, i, format!("corrupt stream: {e}"));
            return;
        }
        let Some(relayed) = self.relays.get(i).and_then(|r| r.relayed) else {
            return;
        };
        for (peer, data) in frames {
            if let Some(d) = self.receive_on(now, relayed, peer, &data) {
                on_data(peer, d);
            }
        }
    }

    /// The runtime's `transport` connection to `server` failed to open or closed.
    pub fn handle_stream_closed(&mut self, now: Instant, transport: Transport, server: SocketAddr) {
        self.handle_stream_failed(now, transport, server, "connection closed");
    }

    /// Like [`Agent::handle_stream_closed`], with the runtime's reason (`connection refused`, a
    /// TLS certificate error...), which ends up in [`Event::ServerFailed`].
    pub fn handle_stream_failed(
        &mut self,
        now: Instant,
        transport: Transport,
        server: SocketAddr,
        reason: &str,
    ) {
        if let Some(i) = self
            .relays
            .iter()
            .position(|r| r.transport == transport && r.server == server && r.active())
        {
            self.relay_lost_or_failed(now, i, reason.to_owned());
            self.drain_relays(now);
        }
    }

    fn relay_lost_or_failed(&mut self, now: Instant, i: usize, reason: String) {
        let Some(r) = self.relays.get_mut(i) else {
            return;
        };
        match r.state {
            RelayState::Allocated => {
                // The connection is already gone; no CloseStream needed, but harmless.
                self.relay_lost(now, i, &reason);
            }
            RelayState::Cancelled(_) => r.state = RelayState::Done,
            _ => self.relay_failed(now, i, reason),
        }
    }

    /// The allocations in use: (TURN server, transport that won its race, relayed address).
    pub fn relays(&self) -> impl Iterator<Item = (SocketAddr, Transport, SocketAddr)> + '_ {
        self.relays
            .iter()
            .filter_map(|r| match (r.state, r.relayed) {
                (RelayState::Allocated, Some(relayed)) => Some((r.server, r.transport, relayed)),
                _ => None,
            })
    }

    /// The relay whose relayed address is `relayed`, if it is usable.
    pub(super) fn relay_for(&mut self, relayed: SocketAddr) -> Option<&mut Relay> {
        self.relays
            .iter_mut()
            .find(|r| r.relayed == Some(relayed) && r.state == RelayState::Allocated)
    }

    /// Whether `source` is (or was) a relayed address: data from it must go through the
    /// TURN server, never out of a host socket.
    pub(super) fn is_relayed_address(&self, source: SocketAddr) -> bool {
        self.relays.iter().any(|r| r.relayed == Some(source))
    }

    /// The transport of the relay behind a relayed local address.
    pub(super) fn relay_transport(&self, relayed: SocketAddr) -> Option<Transport> {
        self.relays
            .iter()
            .find(|r| r.relayed == Some(relayed))
            .map(|r| r.transport)
    }

    /// Frees every allocation (ICE restart, close): UDP ones are deallocated, stream ones
    /// have their connection closed.
    pub(super) fn release_relays(&mut self, now: Instant) {
        for r in &mut self.relays {
            let was = r.state;
            r.state = RelayState::Done;
            match was {
                RelayState::Allocated if r.transport == Transport::Udp => {
                    r.client.deallocate(now);
                    while let Some(t) = r.client.poll_transmit() {
                        self.transmits.push_back(Transmit {
                            transport: Transport::Udp,
                            source: t.source,
                            destination: t.destination,
                            data: t.data,
                        });
                    }
                }
                RelayState::Allocated | RelayState::Allocating(_) if r.transport.is_stream() => {
                    self.events.push_back(Event::CloseStream {
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
