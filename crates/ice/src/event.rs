//! What the agent reports: states shaped like the W3C RTCIceConnectionState and
//! RTCIceGatheringState, local candidates, the selected pair.

use std::net::SocketAddr;
use std::time::Duration;

use crate::candidate::{Candidate, CandidateKind};
use floe_stun::Transport;

/// RTCIceConnectionState.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Nothing yet.
    New,
    /// Checks in flight, no usable pair.
    Checking,
    /// A pair works and is selected.
    Connected,
    /// Nominated and checks done.
    Completed,
    /// The selected pair went quiet ([`AgentConfig::disconnected_timeout`]): the agent is
    /// recovering ([`Event::Recovery`]) and data may not get through. Back to `Connected`
    /// or `Completed` once a pair is heard again; `Failed` when consent expires.
    ///
    /// [`AgentConfig::disconnected_timeout`]: crate::AgentConfig::disconnected_timeout
    Disconnected,
    /// No pair works, or consent was lost (RFC 7675).
    Failed,
    /// Closed by the application.
    Closed,
}

/// RTCIceGatheringState.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GatheringState {
    /// Not started.
    New,
    /// Waiting for STUN/TURN servers.
    Gathering,
    /// Every server answered or timed out.
    Complete,
}

/// The pair data goes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedPair {
    /// The local socket (base) data is sent from.
    pub local: SocketAddr,
    /// The remote address data is sent to.
    pub remote: SocketAddr,
    /// Local candidate type.
    pub local_kind: CandidateKind,
    /// Remote candidate type.
    pub remote_kind: CandidateKind,
    /// Smoothed round-trip time of the pair's checks.
    pub rtt: Option<Duration>,
    /// Whether the pair is nominated (final) rather than only the best valid pair so far.
    pub nominated: bool,
    /// For a relayed local candidate, how the TURN server is reached.
    pub turn_transport: Option<Transport>,
    /// [`Transport::Tcp`] for an ICE-TCP pair (RFC 6544: data goes framed on the TCP
    /// connection between `local` and `remote`), else [`Transport::Udp`].
    pub transport: Transport,
}

/// A step of the recovery ladder, when the selected pair goes quiet mid-call (a network
/// change, a NAT that rebinds or reboots, an interface that goes down).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recovery {
    /// Nothing was heard on the selected pair for `quiet_for`: the connection is
    /// [`ConnectionState::Disconnected`] and recovery starts. Server-reflexive candidates
    /// are gathered again (new ones come as [`Event::LocalCandidate`]: trickle them) and
    /// TURN allocations refreshed.
    Started {
        /// How long the selected pair had been quiet.
        quiet_for: Duration,
    },
    /// Step 1: another pair that was already live carries data now
    /// ([`Event::SelectedPair`] tells which).
    Switched,
    /// Step 2: no other pair was live; `pairs` pairs (every local and remote candidate,
    /// learned ones too) are checked again.
    Checking {
        /// How many pairs are checked.
        pairs: usize,
    },
    /// A pair is heard again, `after` recovery started.
    Recovered {
        /// How long recovery took.
        after: Duration,
    },
    /// Step 3: nothing worked within [`AgentConfig::recovery_timeout`]: restart ICE
    /// ([`Agent::restart`](crate::Agent::restart)) and signal the new credentials and
    /// candidates. Recovery goes on meanwhile, until consent expires.
    ///
    /// [`AgentConfig::recovery_timeout`]: crate::AgentConfig::recovery_timeout
    RestartNeeded,
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new local candidate to signal to the peer (trickle, RFC 8838).
    LocalCandidate(Candidate),
    /// Local candidates withdrawn because their address went away
    /// ([`Agent::remove_host`](crate::Agent::remove_host)). Trickle ICE has no message for
    /// this; tell the peer if its runtime understands one (it then calls
    /// [`Agent::remove_remote_candidate`](crate::Agent::remove_remote_candidate)).
    LocalCandidatesRemoved(Vec<Candidate>),
    /// Gathering state changed.
    GatheringState(GatheringState),
    /// Connection state changed.
    ConnectionState(ConnectionState),
    /// The selected pair changed.
    SelectedPair(SelectedPair),
    /// A step of recovery after the selected pair went quiet.
    Recovery(Recovery),
    /// A TURN allocation won its race: the relayed candidate uses `transport`.
    RelayAllocated {
        /// The TURN server.
        server: SocketAddr,
        /// How it is reached.
        transport: Transport,
        /// The relayed address.
        relayed: SocketAddr,
    },
    /// A TURN server redirected an allocation (300 Try Alternate, RFC 8489 §10): the agent
    /// allocates on `alternate` now, over the same transport and with the same
    /// credentials. Over TLS the runtime must check the alternate's certificate against
    /// `domain` (ALTERNATE-DOMAIN, §14.16) or, without one, against the name it used for
    /// `server`; this event comes before the first transmit to `alternate`.
    TurnRedirected {
        /// The server that redirected.
        server: SocketAddr,
        /// Where the allocation goes now.
        alternate: SocketAddr,
        /// The transport (the same for both).
        transport: Transport,
        /// ALTERNATE-DOMAIN, if the server sent one.
        domain: Option<String>,
    },
    /// The agent no longer needs the runtime's `transport` connection to `server`: close
    /// it (a lost race, a failed or released allocation).
    CloseStream {
        /// TCP or TLS.
        transport: Transport,
        /// The TURN server.
        server: SocketAddr,
    },
    /// RFC 6544 §8: ICE no longer needs the ICE-TCP connection between local base
    /// `local` and `remote` (its pairs were pruned after nomination): close it.
    CloseTcp {
        /// The local candidate's base, as in the connection's transmits.
        local: SocketAddr,
        /// The far end.
        remote: SocketAddr,
    },
    /// A remote candidate has an mDNS hostname: resolve `name` (a `.local` name, RFC 6762)
    /// and call [`Agent::handle_mdns_resolved`](crate::Agent::handle_mdns_resolved).
    ResolveMdns {
        /// The name to resolve.
        name: String,
    },
    /// A STUN or TURN server failed (no answer in time, an error response, every transport
    /// refused); gathering goes on without it.
    ServerFailed {
        /// The server.
        server: SocketAddr,
        /// Why.
        reason: String,
    },
}
