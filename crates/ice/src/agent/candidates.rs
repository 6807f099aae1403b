//! Candidates through the agent: local host candidates and their server-reflexive
//! gathering (RFC 8445 §5.1.1), remote candidates from signalling (trickled ones too,
//! RFC 8838; mDNS names resolved by the runtime), and pairing them into the
//! [`Checklist`](crate::checklist::Checklist) (RFC 8445 §6.1.2.2).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use floe_stun::attributes::XorMappedAddress;
use floe_stun::transaction::{ClientTransaction, Reliability, TransactionConfig};
use floe_stun::{Class, Message, MessageBuilder, MessageType, TransactionId};
use rand::Rng;

use super::{Agent, Local};
use crate::candidate::{self, Candidate, CandidateAddress, CandidateKind};
use crate::checklist::{pair_priority, NewPair, PairId};
use crate::config::Role;
use crate::event::{Event, GatheringState};
use crate::transactions::{Outstanding, Purpose};

/// Most remote candidates waiting for their mDNS name at once.
const MAX_PENDING_MDNS: usize = 16;

impl Agent {
    /// Registers a local UDP socket address (a host candidate). With STUN servers
    /// configured, a Binding request goes to each server of the same family to learn the
    /// server-reflexive address (RFC 8445 §5.1.1.2). `rank` orders interfaces for RFC 8421
    /// local preferences (0 = most preferred).
    pub fn add_host(&mut self, now: Instant, addr: SocketAddr, rank: usize) {
        if self.config.relay_only {
            // Only a base for TURN (see `AgentConfig::relay_only`).
            if self.gathering.is_idle() {
                self.gathering
                    .set_state(GatheringState::Complete, &mut self.events);
            }
            return;
        }
        if let Some(i) = self
            .locals
            .iter()
            .position(|l| l.base == addr && l.candidate.kind == CandidateKind::Host)
        {
            // Back after `remove_host` (an interface up again): offered and paired again.
            if self.locals.get(i).is_some_and(|l| l.gone) {
                self.revive_host(now, i, addr);
            }
            return;
        }
        self.add_host_candidate(now, addr, candidate::local_preference(addr.ip(), rank));
        self.gathering.complete_if_done(&mut self.events);
        let local = self.locals.len() - 1;
        for remote in 0..self.remotes.len() {
            self.add_pair(local, remote);
        }
        // The check timer may have stopped (every earlier pair done): the new pairs are
        // checked from the next Ta slot, not whenever something else wakes the checklist.
        self.checklist.schedule(now);
    }

    /// The host address `addr` went away (an interface down, an address removed; the
    /// runtime watches them): its host, server-reflexive and peer-reflexive candidates are
    /// withdrawn, its pairs fail and its transactions stop. If data went through it,
    /// recovery starts at once instead of waiting for the path to go quiet
    /// ([`Event::Recovery`]). [`Agent::add_host`] with the same address brings it back.
    ///
    /// The withdrawn host and server-reflexive candidates are announced with
    /// [`Event::LocalCandidatesRemoved`]: trickle ICE has no message for it (RFC 8838),
    /// but a runtime whose peer understands one (floe-peer's signalling does) can tell the
    /// peer, which then stops checking them and recovers at once
    /// ([`Agent::remove_remote_candidate`]) instead of after a second of quiet.
    pub fn remove_host(&mut self, now: Instant, addr: SocketAddr) {
        self.clock = now;
        let mut removed = Vec::new();
        for l in self
            .locals
            .iter_mut()
            .filter(|l| l.base == addr && l.candidate.kind != CandidateKind::Relayed && !l.gone)
        {
            l.gone = true;
            if l.candidate.kind != CandidateKind::PeerReflexive {
                removed.push(l.candidate.clone());
            }
        }
        if removed.is_empty() {
            return;
        }
        self.events
            .push_back(Event::LocalCandidatesRemoved(removed));
        tracing::info!(%addr, "local address gone");
        self.transactions.retain(|o| o.source != addr);
        self.checklist.fail_base(addr);
        let selected_here = self
            .selected
            .and_then(|id| self.checklist.get(id))
            .is_some_and(|p| p.base == addr);
        if selected_here {
            self.recover_now(now);
        }
    }

    /// `add_host` for an address that was removed: the same candidates again.
    fn revive_host(&mut self, now: Instant, index: usize, addr: SocketAddr) {
        for l in self.locals.iter_mut().filter(|l| l.base == addr) {
            l.gone = false;
        }
        if let Some(c) = self.locals.get(index).map(|l| l.candidate.clone()) {
            self.events.push_back(Event::LocalCandidate(c));
        }
        let servers = self.config.stun_servers.clone();
        for server in servers.iter().filter(|s| s.is_ipv4() == addr.is_ipv4()) {
            self.gather_from(now, addr, *server);
        }
        for remote in 0..self.remotes.len() {
            if let Some(id) = self.add_pair(index, remote) {
                self.checklist.trigger(now, id);
            }
        }
    }

    /// The host candidate on `addr`, and its server-reflexive requests (none for a lite
    /// agent, which offers host candidates only, RFC 8445 §5.1.1).
    pub(super) fn add_host_candidate(&mut self, now: Instant, addr: SocketAddr, pref: u16) {
        let c = Candidate::new(CandidateKind::Host, addr, addr, None, pref);
        self.push_local(c, addr, None);
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
    }

    /// A new local candidate, announced for trickle (RFC 8838). A new host,
    /// server-reflexive or relayed address found after nomination can reach the peer only through an
    /// ICE restart (RFC 8838 §13: no trickle after nomination): recovery asks for one at
    /// once, now or when it starts.
    pub(super) fn push_local(
        &mut self,
        candidate: Candidate,
        base: SocketAddr,
        server: Option<SocketAddr>,
    ) {
        let server = server.and_then(|s| {
            let i = match self.servers.iter().position(|k| *k == s) {
                Some(i) => i,
                None => {
                    self.servers.push(s);
                    self.servers.len() - 1
                }
            };
            u8::try_from(i).ok()
        });
        let after_nomination = self.nominations.nominated.is_some()
            || self.checklist.is_pruned()
            || self.liveness.is_recovering();
        if after_nomination && candidate.kind != CandidateKind::PeerReflexive {
            self.liveness.unsignalled_address();
        }
        self.events
            .push_back(Event::LocalCandidate(candidate.clone()));
        self.locals.push(Local {
            candidate,
            base,
            gone: false,
            server,
        });
    }

    /// RFC 8445 §5.1.1.2: a Binding request from `base` to STUN server `server`.
    pub(super) fn gather_from(&mut self, now: Instant, base: SocketAddr, server: SocketAddr) {
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
            self.gathering.begin(&mut self.events);
            self.flush_transactions(now);
        }
    }

    /// The STUN server's answer: a server-reflexive candidate, unless it is one we know.
    pub(super) fn gathered(
        &mut self,
        base: SocketAddr,
        server: SocketAddr,
        msg: &Message<'_>,
        code: Option<u16>,
    ) {
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
                    self.push_local(c, base, Some(server));
                }
            }
            _ => self.events.push_back(Event::ServerFailed {
                server,
                reason: format!("error response {code:?}"),
            }),
        }
        self.gathering.finish(&mut self.events);
    }

    /// Adds a remote candidate (from signalling; trickled ones too, RFC 8838). Unusable
    /// candidates (TCP, other components) are ignored, and so is every candidate after the
    /// peer's end-of-candidates (RFC 8838 §14); returns whether it was used.
    ///
    /// A candidate whose address is an mDNS name (`<uuid>.local`, as browsers hide host
    /// addresses) is kept aside and announced with [`Event::ResolveMdns`]: resolve the name
    /// (the agent does no IO) and call [`Agent::handle_mdns_resolved`]. At most 16 names wait.
    pub fn add_remote_candidate(&mut self, now: Instant, candidate: Candidate) -> bool {
        // RFC 8838 §14: after the peer's end-of-candidates, new candidates are ignored
        // (until an ICE restart).
        if self.remote_end_of_candidates {
            self.stats.late_candidates += 1;
            return false;
        }
        self.add_remote(now, candidate)
    }

    /// The peer withdrew `candidate` (its address went away; floe-peer signals this from
    /// the peer's [`Event::LocalCandidatesRemoved`]): the pairs with its address leave the
    /// checklist and no new ones form, until the peer signals it again or an authenticated
    /// check arrives from it. If the selected pair used it, recovery starts at once
    /// ([`Event::Recovery`]). Returns whether a known remote candidate had that address
    /// (an mDNS name is matched by the address it resolved to).
    pub fn remove_remote_candidate(&mut self, now: Instant, candidate: &Candidate) -> bool {
        self.clock = now;
        let addr = match &candidate.address {
            CandidateAddress::Ip(a) => Some(*a),
            CandidateAddress::Mdns { name, port } => {
                // Not resolved yet: it is simply never used.
                let before = self.pending_mdns.len();
                self.pending_mdns.retain(|c| c.address != candidate.address);
                if self.pending_mdns.len() != before {
                    return true;
                }
                self.resolved_names
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, ip)| SocketAddr::new(*ip, *port))
            }
        };
        let Some(addr) = addr else { return false };
        if !self.remotes.iter().any(|r| r.addr() == Some(addr)) {
            return false;
        }
        if !self.withdrawn.contains(&addr) {
            self.withdrawn.push(addr);
        }
        tracing::info!(%addr, "remote candidate withdrawn");
        let selected_there = self
            .selected
            .and_then(|id| self.checklist.get(id))
            .is_some_and(|p| p.remote_addr == addr);
        self.checklist.remove_remote(addr, self.selected);
        // A nomination under way on a removed pair would wait for it forever.
        for slot in [
            &mut self.nominations.nominating,
            &mut self.nominations.nominated,
        ] {
            if slot.is_some_and(|id| self.checklist.get(id).is_none()) {
                *slot = None;
            }
        }
        let checklist = &self.checklist;
        self.transactions
            .retain(|o| o.purpose.pair().is_none_or(|p| checklist.get(p).is_some()));
        if selected_there {
            self.recover_now(now);
        }
        true
    }

    /// A remote candidate signalled in time (or an mDNS one, signalled before and
    /// resolved now).
    fn add_remote(&mut self, now: Instant, candidate: Candidate) -> bool {
        let Some(addr) = candidate.addr() else {
            if let CandidateAddress::Mdns { name, .. } = &candidate.address {
                if !self.usable_transport(&candidate)
                    || candidate.component != 1
                    || self.pending_mdns.len() >= MAX_PENDING_MDNS
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
        if candidate.component != 1 || !self.usable_transport(&candidate) {
            return false;
        }
        let tcp = candidate.is_tcp();
        if self.withdrawn.contains(&addr) {
            // Signalled again: pairs with it may form again.
            self.withdrawn.retain(|a| *a != addr);
            if let Some(i) = self.remote_index(addr, tcp) {
                for local in 0..self.locals.len() {
                    self.add_pair(local, i);
                }
                self.checklist.schedule(now);
            }
        }
        if let Some((i, known)) = self
            .remotes
            .iter_mut()
            .enumerate()
            .find(|(_, r)| r.addr() == Some(addr) && r.is_tcp() == tcp)
        {
            // A candidate we learned as peer-reflexive: the signalled one replaces it, and
            // its pairs take its type and foundation (RFC 8838 §11).
            if known.kind == CandidateKind::PeerReflexive
                && candidate.kind != CandidateKind::PeerReflexive
            {
                for p in self.checklist.iter_mut().filter(|p| p.remote == i) {
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
        for r in self.gathering.relays_mut().filter(|_| !tcp) {
            if r.relayed_toward(addr).is_some() {
                let _ = r.client.create_permission(now, addr.ip());
            }
        }
        self.remotes.push(candidate);
        let remote = self.remotes.len() - 1;
        for local in 0..self.locals.len() {
            self.add_pair(local, remote);
        }
        self.checklist.schedule(now);
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
        if !waiting.is_empty()
            && self.resolved_names.len() < self.config.max_remote_candidates
            && !self.resolved_names.iter().any(|(n, _)| n == name)
        {
            self.resolved_names.push((name.to_owned(), ip));
        }
        for mut c in waiting {
            if let CandidateAddress::Mdns { port, .. } = c.address {
                c.address = CandidateAddress::Ip(SocketAddr::new(ip, port));
                self.add_remote(now, c);
            }
        }
    }

    /// The peer signalled end-of-candidates (RFC 8838 §4.4): once every pair failed,
    /// checking has failed.
    pub fn handle_end_of_remote_candidates(&mut self, now: Instant) {
        self.clock = now;
        self.remote_end_of_candidates = true;
    }

    /// Forms the pair (local host/relayed candidate, remote) if it makes sense (RFC 8445
    /// §6.1.2.2: same family; server-reflexive locals are represented by their base,
    /// §6.1.2.4), with its priority (§6.1.2.3).
    pub(super) fn add_pair(&mut self, local: usize, remote: usize) -> Option<PairId> {
        let l = self.locals.get(local)?;
        if l.gone
            || l.candidate.kind == CandidateKind::ServerReflexive
            || l.candidate.kind == CandidateKind::PeerReflexive
        {
            return None;
        }
        let r = self.remotes.get(remote)?;
        let remote_addr = r.addr()?;
        if l.base.is_ipv4() != remote_addr.is_ipv4()
            || self.withdrawn.contains(&remote_addr)
            || !candidate::transports_pair(&l.candidate, r)
        {
            return None;
        }
        let (g, d) = match self.role {
            Role::Controlling => (l.candidate.priority, r.priority),
            Role::Controlled => (r.priority, l.candidate.priority),
        };
        let new = NewPair {
            local,
            remote,
            base: l.base,
            remote_addr,
            local_kind: l.candidate.kind,
            remote_kind: r.kind,
            transport: r.transport,
            foundation: (l.candidate.foundation.clone(), r.foundation.clone()),
            priority: pair_priority(g, d),
        };
        self.checklist.insert(new, self.selected)
    }

    /// The remote candidate at `addr` on UDP, or on TCP.
    pub(super) fn remote_index(&self, addr: SocketAddr, tcp: bool) -> Option<usize> {
        self.remotes
            .iter()
            .position(|r| r.addr() == Some(addr) && r.is_tcp() == tcp)
    }

    /// UDP, or with [`AgentConfig::ice_tcp`](crate::AgentConfig::ice_tcp) an active or
    /// passive TCP candidate (simultaneous-open ones are not used: floe does not open
    /// them, RFC 6544 §6.2 lets it).
    fn usable_transport(&self, c: &Candidate) -> bool {
        match c.transport {
            candidate::TransportProtocol::Udp => true,
            candidate::TransportProtocol::Tcp => {
                self.config.ice_tcp
                    && matches!(
                        c.tcp_type,
                        Some(candidate::TcpType::Active | candidate::TcpType::Passive)
                    )
            }
        }
    }

    /// Every pair's priority again, from its candidates and the role (§6.1.2.3).
    pub(super) fn recompute_priorities(&mut self) {
        let (locals, remotes, role) = (&self.locals, &self.remotes, self.role);
        self.checklist.recompute_priorities(|p| {
            let l = locals.get(p.local)?.candidate.priority;
            let r = remotes.get(p.remote)?.priority;
            Some(match role {
                Role::Controlling => pair_priority(l, r),
                Role::Controlled => pair_priority(r, l),
            })
        });
    }
}
