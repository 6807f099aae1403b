//! Agent-wide counters of what arrived and was refused: remote bytes are hostile, and
//! what the agent drops is counted, never trusted (see [`crate::Agent::stats`]).

use std::net::SocketAddr;

use crate::candidate::Candidate;
use floe_stun::Transport;

/// A local candidate as the W3C RTCIceCandidateStats describes it
/// ([`crate::Agent::local_candidate_stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CandidateStats {
    /// The candidate.
    pub candidate: Candidate,
    /// The STUN or TURN server it came from (`url` names it); `None` for host and
    /// peer-reflexive candidates.
    pub server: Option<SocketAddr>,
    /// For a relayed candidate, how the TURN server is reached (`relayProtocol`).
    pub relay_protocol: Option<Transport>,
}

/// What the agent refused, since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentStats {
    /// Datagrams that claimed to be STUN (first byte 0-3, RFC 7983, and the magic cookie)
    /// but did not parse.
    pub malformed: u64,
    /// Binding requests without our ufrag or with a bad MESSAGE-INTEGRITY, and responses
    /// whose integrity did not verify with the peer's password.
    pub unauthenticated: u64,
    /// Responses that match no transaction in flight (late, duplicated or forged).
    pub unknown_transaction: u64,
    /// Application data from an address no valid pair or authenticated check vouches for.
    pub data_dropped: u64,
    /// Peer-reflexive candidates not learned because of the rate or count limit.
    pub prflx_refused: u64,
    /// Responses to the agent's checks, consent checks and server-reflexive Binding
    /// requests (matching a transaction, and authenticated where checks require it), and
    /// STUN indications, discarded because they carry a comprehension-required attribute
    /// floe does not know (RFC 8489 §6.3.2-§6.3.4). The transaction keeps waiting for a
    /// valid response until its retransmissions end.
    pub unknown_required_attributes: u64,
    /// Remote candidates signalled after the peer's end-of-candidates, ignored (RFC 8838
    /// §14; new candidates need an ICE restart).
    pub late_candidates: u64,
    /// ICMP errors a TURN server relayed for data sent through it (RFC 8656 §11.6).
    pub icmp_errors: u64,
}
