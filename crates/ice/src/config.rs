//! Agent configuration, with the RFC defaults.

use std::net::SocketAddr;
use std::time::Duration;

/// Which side nominates (RFC 8445 §6.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Nominates pairs (the offerer, usually).
    Controlling,
    /// Follows the controlling agent's nominations.
    Controlled,
}

/// How the controlling agent nominates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nomination {
    /// Measure every succeeded pair's RTT, nominate the lowest-RTT direct pair after a
    /// settle window scaled to the measured RTTs, a relayed pair only when no direct one
    /// works (the default).
    LowestLatency,
    /// RFC 8445 regular nomination of the first valid pair by priority, nothing more
    /// (for strict peers).
    Regular,
}

/// Agent configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
// Independent switches (lite, relay-only, renomination, ICE-TCP), as in every agent's
// configuration; an enum would only hide that.
#[allow(clippy::struct_excessive_bools)]
pub struct AgentConfig {
    /// Pacing between checks, Ta (RFC 8445 §14.2: 50 ms by default).
    pub ta: Duration,
    /// Smallest retransmission timeout for checks (RFC 8445 §14.3: SHOULD be ≥ 500 ms;
    /// default 500 ms).
    pub min_rto: Duration,
    /// Transmissions per check before the pair fails (RFC 8489 Rc; default 7).
    pub max_check_transmissions: u32,
    /// Most candidate pairs (RFC 8445 §6.1.2.5: default 100).
    pub max_pairs: usize,
    /// Most remote candidates kept.
    pub max_remote_candidates: usize,
    /// Most peer-reflexive remote candidates learned per second.
    pub max_prflx_per_second: u32,
    /// STUN servers for server-reflexive candidates.
    pub stun_servers: Vec<SocketAddr>,
    /// How the controlling side nominates.
    pub nomination: Nomination,
    /// Longest wait for a direct pair before a relayed pair is nominated.
    pub relay_wait: Duration,
    /// Longest settle window after the first direct success before nominating.
    pub max_settle: Duration,
    /// Consent freshness (RFC 7675): checks every ~5 s (randomized 0.8-1.2×).
    pub consent_interval: Duration,
    /// Consent is lost after this long without a response (RFC 7675 §5.1: 30 s).
    pub consent_timeout: Duration,
    /// Give up checking after this long without any valid pair (RFC 8863 §5: 39.5 s).
    pub failed_timeout: Duration,
    /// Liveness of the selected pair: when nothing (data, a check, an answer) has been
    /// heard on it for this long, a consent check goes out on it at once, and again each
    /// interval while it stays quiet (default 500 ms; a call that carries media both ways
    /// never needs one).
    pub liveness_interval: Duration,
    /// After this long without hearing anything on the selected pair (at least the
    /// liveness interval plus three smoothed RTTs), the connection is
    /// [`Disconnected`](crate::ConnectionState::Disconnected) and the agent recovers on its
    /// own: another live pair, else the pairs checked again (default 1 s). Consent still
    /// fails the connection after `consent_timeout`.
    pub disconnected_timeout: Duration,
    /// How long recovery may try before the agent asks the application for an ICE restart
    /// ([`Event::Recovery`](crate::Event::Recovery) with
    /// [`Recovery::RestartNeeded`](crate::Recovery::RestartNeeded); default 5 s).
    pub recovery_timeout: Duration,
    /// Use only relayed candidates (W3C `iceTransportPolicy: "relay"`): host sockets are
    /// registered as bases for TURN but not offered or paired, and no server-reflexive
    /// candidates are gathered.
    pub relay_only: bool,
    /// Renomination (draft-thatcher-ice-renomination, the NOMINATION attribute 0xC001 as
    /// libwebrtc and pion use it): after nominating, the controlling agent keeps measuring
    /// and moves to a better pair by nominating again. Only when the peer said it supports
    /// it (`ice-options:renomination`); off by default, as RFC 8445 §8.1.1 forbids a second
    /// nomination otherwise.
    pub renomination: bool,
    /// A pair must beat the selected pair's smoothed RTT by this fraction ...
    pub renomination_hysteresis: f64,
    /// ... and by at least this much before the agent moves to it.
    pub renomination_min_gain: Duration,
    /// Stagger between the transports of one TURN server (UDP, then TCP...), in the spirit
    /// of Happy Eyeballs (RFC 8305 §5: 100-250 ms); default 150 ms.
    pub turn_stagger: Duration,
    /// ICE-lite (RFC 8445 §2.5): for a server on a public address. The agent offers only
    /// host candidates, is always controlled, sends no checks (it answers them, and a pair
    /// becomes valid when a check arrives on it), selects the pair the peer nominates, and
    /// takes the peer's continuing checks as consent (RFC 7675 §4). Signal `lite: true`
    /// (SDP `a=ice-lite`) so that the peer takes the controlling role.
    pub lite: bool,
    /// Longest wait for a STUN server's Binding response or a TURN allocation before the
    /// server is reported failed and gathering goes on without it (default 5 s).
    pub gather_timeout: Duration,
    /// ICE-TCP (RFC 6544; off by default, as §4.1 recommends it be configurable): remote
    /// TCP candidates are paired with the local ones the runtime registers with
    /// [`Agent::add_tcp_host`](crate::Agent::add_tcp_host), active with passive (§6.2).
    /// UDP pairs are still preferred where both work (§4.2). Without it, TCP candidates
    /// are parsed but not used.
    pub ice_tcp: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            ta: Duration::from_millis(50),
            min_rto: Duration::from_millis(500),
            max_check_transmissions: 7,
            max_pairs: 100,
            max_remote_candidates: 100,
            max_prflx_per_second: 20,
            stun_servers: Vec::new(),
            nomination: Nomination::LowestLatency,
            relay_wait: Duration::from_secs(1),
            max_settle: Duration::from_millis(250),
            consent_interval: Duration::from_secs(5),
            consent_timeout: Duration::from_secs(30),
            failed_timeout: Duration::from_millis(39_500),
            liveness_interval: Duration::from_millis(500),
            disconnected_timeout: Duration::from_secs(1),
            recovery_timeout: Duration::from_secs(5),
            relay_only: false,
            renomination: false,
            renomination_hysteresis: 0.25,
            renomination_min_gain: Duration::from_millis(5),
            turn_stagger: Duration::from_millis(150),
            gather_timeout: Duration::from_secs(5),
            lite: false,
            ice_tcp: false,
        }
    }
}
