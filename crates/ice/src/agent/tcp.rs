//! ICE-TCP through the agent (RFC 6544): TCP host candidates, the checks and data on
//! TCP connections the runtime opens and accepts, and what a closed connection does to
//! its pairs. Pairing (§6.2) is [`candidate::transports_pair`]; priorities (§4.2) are
//! [`candidate::tcp_priority`].
//!
//! The agent does no IO here either. The contract with the runtime:
//! - A local TCP candidate's base names a connection's local end: the passive
//!   candidate's base is the listening socket's address; the active candidate's base is
//!   its interface address with port [`TCP_ACTIVE_PORT`] (9), which stands for "an
//!   ephemeral port of this address".
//! - A [`Transmit`] with [`Transport::Tcp`] from a TCP base (see [`Agent::is_tcp_base`])
//!   goes on the connection between `source` and `destination`. Its `data` is already
//!   framed (RFC 4571: a 16-bit length before each packet, §7.1), so the runtime writes
//!   it as it is. From an active base with no connection yet, the runtime connects from
//!   the base's address to `destination` (§7.1: "if none yet exists") and writes once
//!   connected; from a passive base with no connection, it drops the bytes and calls
//!   [`Agent::handle_tcp_closed`].
//! - The runtime accepts every connection on a passive base's listener (§7.2), splits
//!   what arrives into RFC 4571 frames (floe-stun's `StreamDecoder`) and hands each to
//!   [`Agent::handle_tcp_receive`] with the connection's local end (the passive base, or
//!   for a connection it opened, the active base) and the far end's address.
//! - A connection that fails to open, or closes, is [`Agent::handle_tcp_closed`]: its
//!   pairs fail (§7.1: "the check is considered to have failed").
//!
//! Checks on TCP are sent once (§7.1: TCP retransmits) and time out after the same
//! total time a UDP check would have.
//!
//! [`Transmit`]: floe_stun::Transmit
//! [`Transport::Tcp`]: floe_stun::Transport::Tcp

use std::net::SocketAddr;
use std::time::Instant;

use floe_stun::transaction::{Reliability, TransactionConfig};
use floe_stun::{Transmit, Transport};

use super::Agent;
use crate::candidate::{Candidate, TcpType, TCP_ACTIVE_PORT};
use crate::checklist::PairId;

impl Agent {
    /// Registers a TCP listening socket at `listener` (RFC 6544 §5.1): a passive host
    /// candidate on it, and an active host candidate on its address (port 9, §4.5), so
    /// that the agent can both accept the peer's connections and open its own. A lite
    /// agent offers the passive one only (§4.4). `rank` orders interfaces as for
    /// [`Agent::add_host`].
    ///
    /// Only with [`AgentConfig::ice_tcp`](crate::AgentConfig::ice_tcp); and the listener
    /// must not share its address and port with a UDP socket given to
    /// [`Agent::add_host`] (the agent tells its sockets apart by address). Nothing
    /// happens for a relay-only agent.
    pub fn add_tcp_host(&mut self, now: Instant, listener: SocketAddr, rank: usize) {
        self.clock = now;
        if !self.config.ice_tcp || self.config.relay_only {
            return;
        }
        let active = SocketAddr::new(listener.ip(), TCP_ACTIVE_PORT);
        let mut types = vec![(TcpType::Passive, listener)];
        if !self.config.lite {
            types.push((TcpType::Active, active));
        }
        for (tcp_type, base) in types {
            if self.locals.iter().any(|l| l.base == base) {
                continue;
            }
            let c = Candidate::tcp_host(listener, tcp_type, rank);
            self.push_local(c, base, None);
            let local = self.locals.len() - 1;
            for remote in 0..self.remotes.len() {
                self.add_pair(local, remote);
            }
        }
        self.checklist.schedule(now);
    }

    /// Whether `addr` is the base of a local TCP candidate: a [`Transmit`] from it goes on
    /// an ICE-TCP connection (see the module docs), not to a TURN server.
    pub fn is_tcp_base(&self, addr: SocketAddr) -> bool {
        self.config.ice_tcp
            && self
                .locals
                .iter()
                .any(|l| l.base == addr && l.candidate.is_tcp())
    }

    /// One RFC 4571 frame's payload arrived on the ICE-TCP connection between local base
    /// `local` and `remote` (RFC 6544 §7.1, §7.2). STUN is consumed; application data
    /// from a peer that proved itself on this connection is given to `on_data`.
    pub fn handle_tcp_receive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        packet: &[u8],
        mut on_data: impl FnMut(SocketAddr, &[u8]),
    ) {
        if matches!(self.connection_state, crate::ConnectionState::Closed)
            || !self.is_tcp_base(local)
        {
            return;
        }
        self.clock = now;
        if let Some(data) = self.receive_on(now, local, remote, packet) {
            on_data(remote, data);
        }
    }

    /// The ICE-TCP connection between local base `local` and `remote` failed to open or
    /// closed: its pairs fail and their checks stop (RFC 6544 §7.1). If data went through
    /// it, recovery starts at once.
    pub fn handle_tcp_closed(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) {
        self.clock = now;
        if !self.is_tcp_base(local) {
            return;
        }
        let ids: Vec<PairId> = self
            .checklist
            .iter()
            .filter(|p| p.is_tcp() && p.base == local && p.remote_addr == remote)
            .map(|p| p.id)
            .collect();
        if ids.is_empty() {
            return;
        }
        tracing::debug!(%local, %remote, "ICE-TCP connection closed");
        for id in &ids {
            self.checklist.fail(*id);
        }
        self.transactions
            .retain(|o| !(o.source == local && o.destination == remote));
        if self.selected.is_some_and(|s| ids.contains(&s)) {
            self.recover_now(now);
        }
        self.check_failure(now);
    }

    /// How a check on pair `p` with `config` is sent: retransmitted on UDP; on TCP once
    /// (RFC 6544 §7.1: TCP retransmits), timing out when the UDP schedule would have
    /// (`rto * (2^(Rc-1) - 1 + Rm)`).
    pub(super) fn reliability(
        &self,
        p: PairId,
        mut config: TransactionConfig,
    ) -> (Reliability, TransactionConfig) {
        if !self
            .checklist
            .get(p)
            .is_some_and(crate::checklist::Pair::is_tcp)
        {
            return (Reliability::Unreliable, config);
        }
        let doublings = config.rc.clamp(1, 16) - 1;
        let rtos = (1u32 << doublings) - 1 + config.rm;
        config.reliable_timeout = config.rto.saturating_mul(rtos);
        (Reliability::Reliable, config)
    }

    /// `data` from TCP base `source` to `destination`, framed (RFC 4571); `None` for a
    /// packet over 65,535 bytes, which cannot be framed.
    pub(super) fn tcp_transmit(
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> Option<Transmit> {
        let prefix = floe_stun::framing::rfc4571_prefix(data.len()).ok()?;
        let mut framed = Vec::with_capacity(2 + data.len());
        framed.extend_from_slice(&prefix);
        framed.extend_from_slice(data);
        Some(Transmit {
            transport: Transport::Tcp,
            source,
            destination,
            data: framed,
        })
    }
}
