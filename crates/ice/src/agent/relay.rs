//! Relayed candidates through the agent (RFC 8445 §5.1.1.2): the TURN servers' race is
//! [`Gathering`](crate::gather::Gathering)'s; here a won allocation becomes a relayed
//! candidate with permissions and pairs, a lost one fails its pairs, and the runtime's
//! stream bytes reach the TURN clients.

use std::net::SocketAddr;
use std::time::Instant;

use floe_turn::client::{Event as TurnEvent, TurnError};

use super::Agent;
use crate::candidate::{self, Candidate, CandidateKind};
use crate::gather::TurnServer;
use floe_stun::Transport;

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
    /// [`TurnServer`]; an IPv6 relayed candidate is asked for as well when the agent has
    /// an IPv6 host address, see [`TurnServer::ipv6_relay`]). Gathering stays incomplete
    /// until one allocation succeeds or all fail
    /// ([`Event::ServerFailed`](crate::Event::ServerFailed) then says why, per
    /// transport). The winner is reported with
    /// [`Event::RelayAllocated`](crate::Event::RelayAllocated). At most 8 servers.
    pub fn add_turn_server_with(&mut self, now: Instant, mut server: TurnServer) {
        // A lite agent offers host candidates only (RFC 8445 §5.1.1).
        if self.config.lite {
            return;
        }
        // An IPv6 relay as well when this host has IPv6 (RFC 8656 §7.2), unless told.
        let has_ipv6 = self
            .locals
            .iter()
            .any(|l| l.candidate.kind == CandidateKind::Host && l.base.is_ipv6());
        server.ipv6_relay.get_or_insert(has_ipv6);
        self.gathering
            .add_turn_server(now, server, &self.config, &mut self.rng, &mut self.events);
        self.start_due_relays(now);
    }

    /// Starts the attempts whose stagger has passed, fails the late ones.
    pub(super) fn start_due_relays(&mut self, now: Instant) {
        self.gathering
            .start_due(now, &self.config, &mut self.events);
        self.drain_relays(now);
    }

    /// Moves TURN clients' transmits out and acts on their events.
    pub(super) fn drain_relays(&mut self, now: Instant) {
        let mut i = 0;
        // Events may push new relays (re-allocation): walk by index.
        while let Some(r) = self.gathering.relay_mut(i) {
            let active = r.active();
            while let Some(t) = r.client.poll_transmit() {
                if active {
                    // The client was made with the relay's own transport.
                    self.transmits.push_back(t);
                }
            }
            while let Some(e) = self
                .gathering
                .relay_mut(i)
                .and_then(|r| r.client.poll_event())
            {
                self.relay_event(now, i, e);
            }
            i += 1;
        }
    }

    fn relay_event(&mut self, now: Instant, i: usize, event: TurnEvent) {
        match event {
            TurnEvent::Allocated {
                relayed, mapped, ..
            } => self.relay_allocated(now, i, &relayed, mapped),
            TurnEvent::AllocationFailed(TurnError::TryAlternate { server, domain })
                if self.gathering.redirected(
                    now,
                    i,
                    (server, domain.clone()),
                    &self.config,
                    &mut self.events,
                    &mut self.rng,
                ) =>
            {
                self.drain_relays(now);
            }
            TurnEvent::AllocationFailed(e) => {
                let started = self.gathering.failed_unless_cancelled(
                    now,
                    i,
                    e.to_string(),
                    &self.config,
                    &mut self.events,
                );
                if started {
                    self.drain_relays(now);
                }
            }
            TurnEvent::AllocationLost(e) => self.relay_lost(now, i, &e.to_string()),
            TurnEvent::IcmpReceived { peer, icmp } => {
                // RFC 8656 §11.6: counted against the pairs from this relay to that peer
                // (by address; by IP alone when the server did not know the port).
                let relayed = self
                    .gathering
                    .relay(i)
                    .map(|r| r.client.relayed().to_vec())
                    .unwrap_or_default();
                tracing::debug!(%peer, icmp_type = icmp.icmp_type, code = icmp.code, "ICMP error through the relay");
                self.stats.icmp_errors += 1;
                for p in self.checklist.iter_mut().filter(|p| {
                    relayed.contains(&p.base)
                        && p.remote_addr.ip() == peer.ip()
                        && (peer.port() == 0 || p.remote_addr.port() == peer.port())
                }) {
                    p.stats.icmp_errors += 1;
                }
            }
            _ => {}
        }
    }

    /// The race of a TURN server is won: the relayed candidate, permissions for every
    /// remote candidate, and its pairs.
    fn relay_allocated(
        &mut self,
        now: Instant,
        i: usize,
        relayed: &[SocketAddr],
        mapped: Option<SocketAddr>,
    ) {
        let Some(won) = self.gathering.allocated(
            now,
            i,
            relayed,
            &self.config,
            &mut self.transmits,
            &mut self.events,
        ) else {
            return;
        };
        // One relayed candidate per address (two for a dual allocation, RFC 8656 §7.2).
        for addr in won.relayed {
            let mut c = Candidate::new(
                CandidateKind::Relayed,
                addr,
                addr,
                Some(won.server),
                // RFC 8445 §5.1.2.1: prefer relays reached over UDP to TCP to TLS.
                candidate::local_preference(addr.ip(), usize::from(won.transport.is_stream()) * 2),
            );
            c.related = mapped;
            self.push_local(c, addr, Some(won.server));
            // Permissions for every remote candidate right away (INTEROP: the first check
            // between two relays is otherwise often lost).
            let ips: Vec<_> = self
                .remotes
                .iter()
                .filter_map(Candidate::addr)
                .filter(|a| a.is_ipv4() == addr.is_ipv4())
                .map(|a| a.ip())
                .collect();
            if let Some(r) = self.gathering.relay_mut(i) {
                for ip in ips {
                    let _ = r.client.create_permission(now, ip);
                }
            }
            let local = self.locals.len() - 1;
            for remote in 0..self.remotes.len() {
                self.add_pair(local, remote);
            }
        }
        // The candidate goes out before "gathering complete" (RFC 8838: end-of-candidates
        // follows the last candidate).
        if won.gathering {
            self.gathering.finish(&mut self.events);
        }
        self.checklist.schedule(now);
    }

    /// The allocation is gone (the server restarted, or refreshes failed): its pairs fail,
    /// and the agent allocates again on the same transport; the new relayed candidate is
    /// announced as [`Event::LocalCandidate`](crate::Event::LocalCandidate) (signal it to
    /// the peer).
    fn relay_lost(&mut self, now: Instant, i: usize, reason: &str) {
        let Some(crate::gather::Lost { relayed }) =
            self.gathering
                .lost(now, i, reason, &mut self.rng, &mut self.events)
        else {
            return;
        };
        for base in &relayed {
            self.checklist.fail_base(*base);
        }
        self.transactions.retain(|o| !relayed.contains(&o.source));
        self.start_due_relays(now);
        self.check_failure(now);
    }

    fn relay_lost_or_failed(&mut self, now: Instant, i: usize, reason: String) {
        if self.gathering.is_allocated(i) {
            // The connection is already gone; no CloseStream needed, but harmless.
            self.relay_lost(now, i, &reason);
        } else if self.gathering.failed_unless_cancelled(
            now,
            i,
            reason,
            &self.config,
            &mut self.events,
        ) {
            // The next transport's Allocate goes out now, as the failed one's would have.
            self.drain_relays(now);
        }
    }

    /// Bytes the runtime read from its `transport` connection to TURN server `server`.
    /// Application data relayed from peers is given to `on_data` (the peer's address,
    /// bytes), as [`Agent::handle_receive`] does for a datagram.
    pub fn handle_stream_receive(
        &mut self,
        now: Instant,
        transport: Transport,
        server: SocketAddr,
        bytes: &[u8],
        mut on_data: impl FnMut(SocketAddr, &[u8]),
    ) {
        let Some(i) = self.gathering.find_stream(transport, server) else {
            return;
        };
        let mut frames: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        let Some(r) = self.gathering.relay_mut(i) else {
            return;
        };
        let result = r
            .client
            .handle_stream_receive(now, bytes, |peer, data| frames.push((peer, data.to_vec())));
        self.drain_relays(now);
        if let Err(e) = result {
            self.relay_lost_or_failed(now, i, format!("corrupt stream: {e}"));
            return;
        }
        for (peer, data) in frames {
            let Some(relayed) = self.gathering.relay(i).and_then(|r| r.relayed_toward(peer)) else {
                continue;
            };
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
    /// TLS certificate error...), which ends up in
    /// [`Event::ServerFailed`](crate::Event::ServerFailed).
    pub fn handle_stream_failed(
        &mut self,
        now: Instant,
        transport: Transport,
        server: SocketAddr,
        reason: &str,
    ) {
        if let Some(i) = self.gathering.find_stream(transport, server) {
            self.relay_lost_or_failed(now, i, reason.to_owned());
            self.drain_relays(now);
        }
    }
}
