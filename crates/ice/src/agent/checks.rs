//! Connectivity and consent checks through the agent: what arrives (demultiplexed by
//! floe-stun: a check request is answered, a response goes back to its transaction's
//! purpose) and what goes out (checks picked by the [`Checklist`], consent checks), all
//! built by [`crate::binding`].
//!
//! [`Checklist`]: crate::checklist::Checklist

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_stun::attributes::{
    ErrorCode, IceControlled, IceControlling, Nomination as NominationAttr, Priority, Username,
    XorMappedAddress,
};
use floe_stun::demux::{classify, PacketKind};
use floe_stun::transaction::{ClientTransaction, TransactionConfig};
use floe_stun::{AttrType, Class, Message, Method, TransactionId};
use rand::Rng;

use super::{Agent, Local};
use crate::binding::{self, Nominate};
use crate::candidate::{self, Candidate, CandidateKind};
use crate::checklist::{PairId, PairState};
use crate::config::Role;
use crate::consent::Consent;
use crate::event::{ConnectionState, Event};
use crate::liveness::Liveness;
use crate::transactions::{Outstanding, Purpose};

/// Whether `msg` carries a comprehension-required attribute floe does not know
/// (RFC 8489 §14: types below 0x8000), which makes a response or indication unusable;
/// the rule's home is [`floe_stun::transaction::check_response`].
fn has_unknown_required(msg: &Message<'_>) -> bool {
    floe_stun::transaction::check_response(msg).is_err()
}

impl Agent {
    /// A datagram on `local` from `remote` (after TURN unwrapping): STUN is consumed;
    /// application data is returned if a pair vouches for `remote`.
    pub(super) fn receive_on<'a>(
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
        let Some(pair) = self.checklist.iter_mut().find(|p| {
            p.base == local
                && p.remote_addr == remote
                && (p.state == PairState::Succeeded || p.received_request)
        }) else {
            self.stats.data_dropped += 1;
            return None;
        };
        pair.stats.bytes_received += bytes.len() as u64;
        pair.stats.packets_received += 1;
        pair.stats.last_packet_received = Some(now);
        pair.last_heard = Some(now);
        Some(bytes)
    }

    /// Application data from `remote` on local `local` reached the application without
    /// passing through [`Agent::handle_receive`] (a runtime's fast path that hands the
    /// selected pair's datagrams straight over): the pair counts as heard, so liveness
    /// checks stay quiet while data flows. Only for a pair that vouches for `remote`.
    pub fn handle_data_received(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) {
        self.clock = now;
        if let Some(p) = self.checklist.iter_mut().find(|p| {
            p.base == local
                && p.remote_addr == remote
                && (p.state == PairState::Succeeded || p.received_request)
        }) {
            p.last_heard = Some(now);
        }
    }

    /// A Binding request (RFC 8445 §7.3): authenticated, answered, and then a role
    /// conflict repaired (§7.3.1.1), a peer-reflexive candidate learned (§7.3.1.3), a
    /// nomination accepted (§7.3.1.5) and a triggered check queued (§7.3.1.4).
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
        let ours = binding::names_us(
            username.0.as_bytes(),
            self.local_credentials.ufrag.as_bytes(),
        );
        if !ours || msg.verify(&self.local_key).is_err() {
            self.stats.unauthenticated += 1;
            return;
        }
        // RFC 8489 §6.3.1: an authenticated request with a comprehension-required
        // attribute we do not know gets 420 listing them, and is not processed.
        if msg.has_unknown_comprehension_required() {
            let unknown: Vec<AttrType> = msg.unknown_comprehension_required().take(16).collect();
            self.stats.unknown_required_attributes += 1;
            if let Ok(bytes) = binding::unknown_attributes(msg, &unknown, &self.local_key) {
                self.emit(local, remote, bytes);
            }
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
                // A lite agent stays controlled whatever the tie-breakers (RFC 8445
                // §6.1.1: the full agent controls): the full peer switches on our 487.
                if self.tie_breaker >= theirs.0 && !self.config.lite {
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
        // on any pair) but only a nomination brings the pair back, or a source address
        // never seen: the peer's NAT rebound (or it moved), and the new pair is checked
        // (RFC 8445 §7.3.1.3) so that recovery can move the call there.
        if self.checklist.is_pruned()
            && !msg.has(AttrType::USE_CANDIDATE)
            && self.checklist.find(local, remote).is_none()
            && self.remotes.iter().any(|r| r.addr() == Some(remote))
            && !self.withdrawn.contains(&remote)
        {
            return;
        }
        // A check on a pair we have (consent, repeated checks, a media server's many
        // sessions): no candidate or pair lookup beyond this one.
        let id = match self.checklist.find(local, remote) {
            Some(id)
                if !self.withdrawn.contains(&remote)
                    && !self.locals.iter().any(|l| l.base == local && l.gone) =>
            {
                id
            }
            _ => match self.pair_for_request(now, local, remote, msg) {
                Some(id) => id,
                None => return,
            },
        };
        let nomination = msg.get::<NominationAttr>().ok().flatten().map(|n| n.0);
        let use_candidate = self
            .nominations
            .accept_remote(msg.has(AttrType::USE_CANDIDATE), nomination);
        let Some(p) = self.checklist.get_mut(id) else {
            return;
        };
        p.received_request = true;
        let echo =
            p.state == PairState::Succeeded && !Liveness::is_live(now, p.last_heard, &self.config);
        p.last_heard = Some(now);
        p.stats.requests_received += 1;
        p.stats.responses_sent += 1;
        if self.config.lite {
            // RFC 8445 §2.5: a lite agent's pair is valid once a check arrives on it; the
            // peer's checks on the selected pair are its consent (RFC 7675 §4).
            p.state = PairState::Succeeded;
            if self.selected == Some(id) {
                self.consent.refreshed(now);
            } else {
                self.lite_follow(now, id);
            }
        }
        if use_candidate && self.role == Role::Controlled {
            // RFC 8445 §7.3.1.5: nominated now if the pair works, else once it does.
            match self.checklist.get_mut(id) {
                Some(p) if p.state == PairState::Succeeded => self.nominate(now, id),
                Some(p) => p.nominate_on_success = true,
                None => {}
            }
        }
        if !self.config.lite {
            if let Some(tid) = self.checklist.trigger(now, id) {
                self.transactions.cancel(&tid, id);
            }
            // Recovering, and the peer's check came on a working pair that had gone quiet:
            // check it back at once (a succeeded pair gets no triggered check, §7.3.1.4), so
            // that the peer hears this side on it too. Once per quiet spell.
            if echo && self.liveness.is_recovering() {
                self.send_consent(now, id);
            }
        }
        self.update_selection(now);
    }

    /// The pair a check from `remote` on `local` belongs to, made if needed: the remote
    /// is learned as peer-reflexive when unknown (§7.3.1.3). `None`: no pair (the local
    /// address is gone, or the limits refuse).
    fn pair_for_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &Message<'_>,
    ) -> Option<PairId> {
        let local_index = self.locals.iter().position(|l| {
            l.base == local
                && !l.gone
                && matches!(
                    l.candidate.kind,
                    CandidateKind::Host | CandidateKind::Relayed
                )
        })?;
        let tcp = self
            .locals
            .get(local_index)
            .and_then(|l| l.candidate.tcp_type);
        // A source we do not know is a peer-reflexive remote candidate (§7.3.1.3).
        let remote_index = match self.remote_index(remote, tcp.is_some()) {
            Some(i) => i,
            None => {
                if !self.may_learn_prflx(now)
                    || self.remotes.len() >= self.config.max_remote_candidates
                {
                    self.stats.prflx_refused += 1;
                    return None;
                }
                let priority = msg.get::<Priority>().ok().flatten().map_or(0, |p| p.0);
                let mut c = Candidate::new(CandidateKind::PeerReflexive, remote, remote, None, 0);
                c.priority = priority;
                c.related = None;
                c.foundation = format!("prflx{}", self.remotes.len());
                if let Some(local_type) = tcp {
                    // RFC 6544 §7.2: a check on a connection the peer opened to our
                    // passive candidate comes from its active one.
                    c.transport = candidate::TransportProtocol::Tcp;
                    c.tcp_type = Some(match local_type {
                        candidate::TcpType::Passive => candidate::TcpType::Active,
                        candidate::TcpType::Active => candidate::TcpType::Passive,
                        candidate::TcpType::So => candidate::TcpType::So,
                    });
                }
                self.remotes.push(c);
                self.remotes.len() - 1
            }
        };
        // An authenticated check from a withdrawn address: it is back.
        self.withdrawn.retain(|a| *a != remote);
        self.add_pair(local_index, remote_index)
    }

    /// At most [`AgentConfig::max_prflx_per_second`] peer-reflexive candidates a second.
    ///
    /// [`AgentConfig::max_prflx_per_second`]: crate::AgentConfig::max_prflx_per_second
    fn may_learn_prflx(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.prflx_window.0) >= Duration::from_secs(1) {
            self.prflx_window = (now, 0);
        }
        self.prflx_window.1 += 1;
        self.prflx_window.1 <= self.config.max_prflx_per_second
    }

    pub(super) fn switch_role(&mut self, role: Role) {
        tracing::info!(?role, "ICE role switched to resolve a conflict");
        self.role = role;
        self.recompute_priorities();
    }

    fn respond(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &Message<'_>,
        error: Option<ErrorCode<'_>>,
    ) {
        if let Ok(bytes) = binding::response(msg, remote, error, &self.local_key) {
            self.emit(local, remote, bytes);
        }
    }

    /// A response: to a check (§7.2.5), a consent check (RFC 7675) or a gather.
    fn handle_response(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &Message<'_>,
    ) {
        let tid = msg.transaction_id();
        let Some(out) = self.transactions.get(&tid) else {
            self.stats.unknown_transaction += 1;
            return;
        };
        let authenticated = |key: &Option<floe_stun::IntegrityKey>| {
            key.as_ref().is_some_and(|key| msg.verify(key).is_ok())
        };
        // RFC 8489 §6.3.3, §6.3.4: a response with a comprehension-required attribute we do
        // not know is discarded before anything else looks at it. The RFC then calls the
        // transaction failed; floe lets it wait for a valid response until its
        // retransmissions end instead, so that one bad datagram (a forged server-reflexive
        // answer needs only the transaction id) cannot fail a check or a gather.
        if has_unknown_required(msg) {
            let authentic = match out.purpose {
                Purpose::Gather { .. } => true,
                _ => authenticated(&self.remote_key),
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
            match out.purpose {
                Purpose::Check(p) => {
                    self.transactions.remove(&tid);
                    self.checklist.fail(p);
                }
                Purpose::CancelledCheck(_) => {
                    self.transactions.remove(&tid);
                }
                Purpose::Gather { .. } | Purpose::Consent(_) => {}
            }
            return;
        }
        // Responses to checks are signed with the peer's pwd.
        if out.purpose.pair().is_some() {
            if self.remote_key.is_none() {
                return;
            }
            if !authenticated(&self.remote_key) {
                self.stats.unauthenticated += 1;
                return;
            }
        }
        let Some(mut out) = self.transactions.remove(&tid) else {
            return;
        };
        out.transaction.handle_response(now, msg);
        let rtt = out.transaction.rtt();
        let code = msg.get::<ErrorCode>().ok().flatten().map(|c| c.code);
        match out.purpose {
            Purpose::Gather { base, server, .. } => self.gathered(base, server, msg, code),
            Purpose::Check(p) => self.check_answered(now, p, msg, rtt, code),
            Purpose::CancelledCheck(p) => {
                if msg.class() == Class::Success
                    && self
                        .checklist
                        .get(p)
                        .is_some_and(|q| q.state != PairState::Succeeded)
                {
                    self.check_answered(now, p, msg, rtt, code);
                }
            }
            Purpose::Consent(p) => {
                if msg.class() == Class::Success {
                    self.consent.refreshed(now);
                    if let Some(pair) = self.checklist.get_mut(p) {
                        pair.last_response = Some(now);
                        pair.last_heard = Some(now);
                        pair.stats.responses_received += 1;
                        if let Some(rtt) = rtt {
                            pair.sample_rtt(rtt);
                        }
                    }
                }
            }
        }
    }

    /// RFC 8445 §7.2.5: the answer to our check on pair `p`.
    fn check_answered(
        &mut self,
        now: Instant,
        p: PairId,
        msg: &Message<'_>,
        rtt: Option<Duration>,
        code: Option<u16>,
    ) {
        let tid = msg.transaction_id();
        let Some(pair) = self.checklist.get_mut(p) else {
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
            self.checklist.retry(now, p);
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
        pair.last_heard = Some(now);
        if let Some(rtt) = rtt {
            pair.sample_rtt(rtt);
        }
        let (base, direct, smoothed_rtt, nominate_on_success, tcp) = (
            pair.base,
            pair.is_direct(),
            pair.stats.smoothed_rtt,
            pair.nominate_on_success,
            pair.is_tcp(),
        );
        let foundation = pair.foundation.clone();
        // A mapped address we do not know is a peer-reflexive local candidate
        // (§7.2.5.3.1); data keeps going from the base, so it is only reported. Not on
        // ICE-TCP: the mapped address of an active connection is its ephemeral port
        // (RFC 6544 §7.1), which no check can ever use.
        if let Some(mapped) = msg
            .get::<XorMappedAddress>()
            .ok()
            .flatten()
            .filter(|_| !tcp)
        {
            if !self
                .locals
                .iter()
                .any(|l| l.candidate.addr() == Some(mapped.0))
                && self.locals.len() < 64
            {
                let c = Candidate::new(CandidateKind::PeerReflexive, mapped.0, base, None, 0);
                self.locals.push(Local {
                    candidate: c,
                    base,
                    gone: false,
                    server: None,
                });
            }
        }
        self.checklist.unfreeze(&foundation);
        if direct {
            self.nominations
                .direct_success(now, smoothed_rtt, &self.config);
        }
        let nominate = match self.role {
            Role::Controlling => use_candidate,
            Role::Controlled => nominate_on_success,
        };
        if nominate {
            self.nominate(now, p);
        }
        self.update_selection(now);
    }

    /// A check failed: with every pair failed and no more candidates to come, checking
    /// failed (RFC 8445 §6.1.2.1: the checklist is Failed; with trickle not before the
    /// peer's end-of-candidates, RFC 8838).
    pub(super) fn check_failure(&mut self, now: Instant) {
        if self.checklist.all_failed() && self.remote_end_of_candidates && self.selected.is_none() {
            self.set_state(ConnectionState::Failed);
        }
        self.update_selection(now);
    }

    /// A transaction timed out: a check fails its pair; a gather reports its server; a
    /// consent check through a relay asks the TURN server whether the allocation lives.
    pub(super) fn transaction_timed_out(&mut self, now: Instant, purpose: Purpose) {
        match purpose {
            Purpose::Check(p) => {
                self.checklist.fail(p);
                self.check_failure(now);
            }
            Purpose::Gather { server, .. } => {
                self.events.push_back(Event::ServerFailed {
                    server,
                    reason: "no response (timeout)".into(),
                });
                self.gathering.finish(&mut self.events);
            }
            Purpose::Consent(p) => {
                // No answer through a relay: ask the TURN server whether the allocation
                // still exists (a restarted server answers 437, and the agent allocates
                // again) instead of waiting for the next refresh.
                let relayed_base = self
                    .checklist
                    .get(p)
                    .filter(|q| q.local_kind.is_relayed())
                    .map(|q| q.base);
                if let Some(r) = relayed_base.and_then(|base| self.gathering.relay_for(base)) {
                    r.client.refresh(now);
                }
            }
            Purpose::CancelledCheck(_) => {}
        }
    }

    /// Sends the check the checklist says is due (RFC 8445 §6.1.4.2), starting checks
    /// once the peer's credentials and a pair are there.
    pub(super) fn run_checks(&mut self, now: Instant) {
        if self.remote_credentials.is_none() || self.checklist.is_empty() && !self.config.lite {
            return;
        }
        if self.config.lite {
            // A lite agent sends no checks (RFC 8445 §2.5); it only waits for them. One
            // that answered (and was nominated) before its first timer is not checking.
            if self.checklist.start(now) && self.connection_state == ConnectionState::New {
                self.set_state(ConnectionState::Checking);
            }
            return;
        }
        if self.checklist.start(now) {
            self.nominations.checks_started(now, &self.config);
            self.set_state(ConnectionState::Checking);
        }
        let Some(due) = self.checklist.next_due(now, self.nominations.nominating) else {
            return;
        };
        if let Some(tid) = due.cancelled {
            self.transactions.cancel(&tid, due.pair);
        }
        let nominate = self.nominations.nominating == Some(due.pair);
        if nominate {
            self.nominations.nominating = None;
        }
        self.send_check(now, due.pair, nominate);
    }

    /// A Binding request on pair `p` ([`binding::request`]) from the peer-reflexive
    /// priority its local candidate would have (§7.2.2), or `None`.
    fn check_request(
        &mut self,
        p: PairId,
        priority: impl FnOnce(SocketAddr) -> u32,
        nominate: Nominate,
    ) -> Option<(TransactionId, Vec<u8>, SocketAddr, SocketAddr)> {
        let (Some(remote), Some(key)) = (&self.remote_credentials, &self.remote_key) else {
            return None;
        };
        let tid = TransactionId(self.rng.gen());
        let pair = self.checklist.get(p)?;
        let username = format!("{}:{}", remote.ufrag, self.local_credentials.ufrag);
        let request = binding::Request {
            username: &username,
            priority: priority(pair.base),
            role: self.role,
            tie_breaker: self.tie_breaker,
            nominate,
            key,
        };
        let bytes = binding::request(tid, &request).ok()?;
        Some((tid, bytes, pair.base, pair.remote_addr))
    }

    /// A connectivity check (RFC 8445 §7.2.4), with USE-CANDIDATE when nominating (§8.1.1).
    fn send_check(&mut self, now: Instant, p: PairId, use_candidate: bool) {
        let nominate = match (use_candidate, self.renominate) {
            (false, _) => Nominate::No,
            (true, false) => Nominate::Yes,
            (true, true) => Nominate::Again(self.nominations.counter),
        };
        let tcp_type = self
            .checklist
            .get(p)
            .and_then(|q| self.locals.get(q.local))
            .and_then(|l| l.candidate.tcp_type);
        let priority = |base: SocketAddr| match tcp_type {
            // RFC 6544 §4.2 with the peer-reflexive type preference (RFC 8445 §7.2.2).
            Some(t) => candidate::tcp_priority(CandidateKind::PeerReflexive, t, 0, 1),
            None => {
                let local_pref = candidate::local_preference(base.ip(), 0);
                candidate::priority(CandidateKind::PeerReflexive, local_pref, 1)
            }
        };
        let Some((tid, bytes, source, destination)) = self.check_request(p, priority, nominate)
        else {
            return;
        };
        let mut tc = TransactionConfig::default();
        tc.rto = self.checklist.rto(self.config.min_rto);
        tc.rc = self.config.max_check_transmissions;
        tc.rm = 1;
        let (reliability, tc) = self.reliability(p, tc);
        let Ok(t) = ClientTransaction::new(bytes, reliability, tc) else {
            return;
        };
        self.checklist
            .check_sent(p, now, tid, use_candidate, tc.rto);
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

    /// A consent check (RFC 7675 §5.1): the same request as a check, never nominating.
    pub(super) fn send_consent(&mut self, now: Instant, p: PairId) {
        let priority = |_| candidate::priority(CandidateKind::PeerReflexive, 65_535, 1);
        let Some((tid, bytes, source, destination)) = self.check_request(p, priority, Nominate::No)
        else {
            return;
        };
        let (reliability, tc) = self.reliability(p, Consent::transaction_config());
        let Ok(t) = ClientTransaction::new(bytes, reliability, tc) else {
            return;
        };
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

    /// Sends the requests and retransmissions due.
    pub(super) fn flush_transactions(&mut self, now: Instant) {
        for due in self.transactions.poll_transmits(now) {
            match due.purpose {
                Purpose::Check(p) => {
                    if let Some(pair) = self.checklist.get_mut(p) {
                        pair.stats.requests_sent += 1;
                    }
                }
                Purpose::Consent(p) => {
                    if let Some(pair) = self.checklist.get_mut(p) {
                        pair.stats.consent_requests_sent += 1;
                    }
                }
                Purpose::Gather { .. } | Purpose::CancelledCheck(_) => {}
            }
            self.emit(due.source, due.destination, due.data);
        }
    }
}
