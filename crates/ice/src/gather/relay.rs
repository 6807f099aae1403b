//! The relay set's pieces: a TURN server to race ([`TurnServer`]) and one attempt at an
//! allocation on it ([`Relay`]), with its state in the race.

use std::net::SocketAddr;
use std::time::Instant;

use floe_turn::client::Client as TurnClient;

use floe_stun::Transport;

/// A TURN server to allocate a relayed candidate on.
///
/// The transports are tried in order, each starting [`AgentConfig::turn_stagger`](crate::AgentConfig::turn_stagger) after the
/// previous one (or at once when the previous one fails); the first allocation that
/// succeeds is kept and the others are cancelled (deallocated, or their connection
/// closed).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TurnServer {
    /// The local UDP socket (a host added with
    /// [`Agent::add_host`](crate::Agent::add_host)) for UDP; for streams, the local
    /// address the runtime should connect from (its IP picks the interface).
    pub base: SocketAddr,
    /// The server's address.
    pub server: SocketAddr,
    /// The transports to race, in order (at most three).
    pub transports: Vec<Transport>,
    /// Long-term credential username.
    pub username: String,
    /// The password.
    pub password: String,
    /// Ask for an IPv6 relayed address besides the IPv4 one (a dual allocation,
    /// ADDITIONAL-ADDRESS-FAMILY, RFC 8656 §7.2; a server without IPv4 relays is asked
    /// for the IPv6 one alone). `None` (default): when the agent has an IPv6 host
    /// address, so that IPv6-only peers can be reached through the relay too.
    pub ipv6_relay: Option<bool>,
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
            ipv6_relay: None,
        }
    }

    /// Whether to ask for an IPv6 relayed address too (see [`TurnServer::ipv6_relay`]).
    #[must_use]
    pub fn with_ipv6_relay(mut self, ipv6: bool) -> Self {
        self.ipv6_relay = Some(ipv6);
        self
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
pub(crate) enum RelayState {
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
pub(crate) struct Relay {
    pub(crate) client: TurnClient,
    /// Index into the TURN servers.
    pub(super) group: usize,
    pub(crate) transport: Transport,
    pub(crate) base: SocketAddr,
    pub(crate) server: SocketAddr,
    /// The (first) relayed address.
    pub(crate) relayed: Option<SocketAddr>,
    /// The relayed address of the other family, in a dual allocation.
    pub(crate) relayed_other: Option<SocketAddr>,
    pub(super) state: RelayState,
    /// Counted in the pending gathers (the first allocation of a group).
    pub(super) gathering: bool,
    pub(super) error: Option<String>,
}

impl Relay {
    /// Whether `addr` is one of its relayed addresses.
    pub(crate) fn has_relayed(&self, addr: SocketAddr) -> bool {
        self.relayed == Some(addr) || self.relayed_other == Some(addr)
    }

    /// The relayed address data from (or to) `peer` uses: the one of `peer`'s family.
    pub(crate) fn relayed_toward(&self, peer: SocketAddr) -> Option<SocketAddr> {
        [self.relayed, self.relayed_other]
            .into_iter()
            .flatten()
            .find(|r| r.is_ipv4() == peer.is_ipv4())
    }

    pub(crate) fn active(&self) -> bool {
        matches!(
            self.state,
            RelayState::Allocating(_) | RelayState::Allocated | RelayState::Cancelled(_)
        )
    }
}

/// Most TURN servers per agent, and relay attempts (re-allocations included) per agent.
pub(super) const MAX_SERVERS: usize = 8;
pub(super) const MAX_RELAYS: usize = 32;
/// Most 300 Try Alternate redirects followed per TURN server.
pub(super) const MAX_REDIRECTS: usize = 3;
