//! The counters a server core keeps ([`ServerStats`]). They are fixed-size and `Copy`,
//! and each is counted where its event happens, so a runtime can publish a snapshot
//! after every batch without allocating, and a metrics exporter only relabels them.

use std::net::SocketAddr;

use crate::policy::PeerRefusal;
use crate::Transport;

/// The families of an allocation's relayed addresses (RFC 8656 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RelayFamily {
    /// One IPv4 relayed address.
    Ipv4,
    /// One IPv6 relayed address (REQUESTED-ADDRESS-FAMILY IPv6).
    Ipv6,
    /// Both (ADDITIONAL-ADDRESS-FAMILY, RFC 8656 §7.2 step 9): counted once, as its own
    /// kind, so that the kinds add up to the allocations.
    Dual,
}

impl RelayFamily {
    /// Every family.
    pub const ALL: [RelayFamily; 3] = [RelayFamily::Ipv4, RelayFamily::Ipv6, RelayFamily::Dual];

    /// `ipv4`, `ipv6` or `dual`, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RelayFamily::Ipv4 => "ipv4",
            RelayFamily::Ipv6 => "ipv6",
            RelayFamily::Dual => "dual",
        }
    }

    /// The family of a set of relayed addresses.
    pub(crate) fn of(relayed: &[SocketAddr]) -> RelayFamily {
        let v4 = relayed.iter().any(SocketAddr::is_ipv4);
        let v6 = relayed.iter().any(SocketAddr::is_ipv6);
        match (v4, v6) {
            (true, true) => RelayFamily::Dual,
            (false, true) => RelayFamily::Ipv6,
            _ => RelayFamily::Ipv4,
        }
    }
}

/// What kind an allocation is, for counters: the transport its client uses (TLS is TCP)
/// and the families of its relayed addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllocationKind {
    /// The client's transport.
    pub transport: Transport,
    /// The relayed addresses' families.
    pub family: RelayFamily,
}

impl AllocationKind {
    /// Every kind.
    pub const ALL: [AllocationKind; 6] = {
        let (u, t) = (Transport::Udp, Transport::Tcp);
        let (v4, v6, dual) = (RelayFamily::Ipv4, RelayFamily::Ipv6, RelayFamily::Dual);
        [
            AllocationKind::new(u, v4),
            AllocationKind::new(u, v6),
            AllocationKind::new(u, dual),
            AllocationKind::new(t, v4),
            AllocationKind::new(t, v6),
            AllocationKind::new(t, dual),
        ]
    };

    /// A kind.
    pub const fn new(transport: Transport, family: RelayFamily) -> AllocationKind {
        AllocationKind { transport, family }
    }

    fn index(self) -> usize {
        let t = match self.transport {
            Transport::Udp => 0,
            Transport::Tcp | Transport::Tls => 3,
        };
        t + match self.family {
            RelayFamily::Ipv4 => 0,
            RelayFamily::Ipv6 => 1,
            RelayFamily::Dual => 2,
        }
    }
}

/// Allocation counters of one [`AllocationKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AllocationCounts {
    /// Alive now.
    pub current: u64,
    /// Ever created.
    pub created: u64,
    /// Timed out: the lifetime ran out without a refresh (RFC 8656 §7.2, §8).
    pub expired: u64,
    /// Ended by the client: a Refresh with LIFETIME 0 (§8), or the TCP or TLS
    /// connection closing (§5).
    pub deleted: u64,
}

/// A request refused by authentication or a limit, by the error code it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthFailure {
    /// 401: credentials were offered and were wrong (bad MESSAGE-INTEGRITY, unknown
    /// user or realm). A first request without credentials is a challenge, not this.
    Unauthenticated,
    /// 438: credentials with a nonce that is not ours or has expired.
    StaleNonce,
    /// 441: a request on an allocation with another user's credentials (RFC 8656 §5).
    WrongCredentials,
    /// 486: the user's allocation quota is full.
    QuotaReached,
    /// 508: a server limit is full (allocations, relay ports, permissions, channels,
    /// reservations) or a reservation token is unknown. Not the 508s of draining, which
    /// are `drain_refusals`.
    InsufficientCapacity,
    /// 403: the credentials were right but the user or REST username is revoked
    /// ([`StoredUsers::revoke`](super::StoredUsers::revoke)).
    Revoked,
}

impl AuthFailure {
    /// Every failure.
    pub const ALL: [AuthFailure; 6] = [
        AuthFailure::Unauthenticated,
        AuthFailure::StaleNonce,
        AuthFailure::WrongCredentials,
        AuthFailure::QuotaReached,
        AuthFailure::InsufficientCapacity,
        AuthFailure::Revoked,
    ];

    /// The STUN error code.
    pub fn code(self) -> u16 {
        match self {
            AuthFailure::Unauthenticated => 401,
            AuthFailure::StaleNonce => 438,
            AuthFailure::WrongCredentials => 441,
            AuthFailure::QuotaReached => 486,
            AuthFailure::InsufficientCapacity => 508,
            AuthFailure::Revoked => 403,
        }
    }

    fn index(self) -> usize {
        match self {
            AuthFailure::Unauthenticated => 0,
            AuthFailure::StaleNonce => 1,
            AuthFailure::WrongCredentials => 2,
            AuthFailure::QuotaReached => 3,
            AuthFailure::InsufficientCapacity => 4,
            AuthFailure::Revoked => 5,
        }
    }
}

/// Which configured limit refused a request (486 or 508).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaLimit {
    /// `max_allocations_per_user` (486).
    UserAllocations,
    /// `max_allocations` (508).
    Allocations,
    /// No relay port was free (508).
    RelayPorts,
    /// `max_tracked_sources` reservations held for EVEN-PORT R (508).
    Reservations,
    /// `max_permissions` on one allocation (508).
    Permissions,
    /// `max_channels` on one allocation (508).
    Channels,
    /// [`MAX_TCP_CONNECTIONS`](super::MAX_TCP_CONNECTIONS) peer data connections on one
    /// TCP allocation (508 to a Connect, RFC 6062).
    Connections,
}

impl QuotaLimit {
    /// Every limit.
    pub const ALL: [QuotaLimit; 7] = [
        QuotaLimit::UserAllocations,
        QuotaLimit::Allocations,
        QuotaLimit::RelayPorts,
        QuotaLimit::Reservations,
        QuotaLimit::Permissions,
        QuotaLimit::Channels,
        QuotaLimit::Connections,
    ];

    /// A lower-case name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaLimit::UserAllocations => "user_allocations",
            QuotaLimit::Allocations => "allocations",
            QuotaLimit::RelayPorts => "relay_ports",
            QuotaLimit::Reservations => "reservations",
            QuotaLimit::Permissions => "permissions",
            QuotaLimit::Channels => "channels",
            QuotaLimit::Connections => "tcp_connections",
        }
    }

    fn index(self) -> usize {
        match self {
            QuotaLimit::UserAllocations => 0,
            QuotaLimit::Allocations => 1,
            QuotaLimit::RelayPorts => 2,
            QuotaLimit::Reservations => 3,
            QuotaLimit::Permissions => 4,
            QuotaLimit::Channels => 5,
            QuotaLimit::Connections => 6,
        }
    }
}

/// Why a datagram or message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Not STUN or ChannelData, or unparseable, or a request with over-long text
    /// attributes (answered 400), or a Send indication without XOR-PEER-ADDRESS or DATA.
    Malformed,
    /// A STUN response or an indication other than Send: nothing a client sends a server.
    Unexpected,
    /// Data for a 5-tuple or relayed address with no allocation (or an expired one).
    NoAllocation,
    /// Data to or from a peer without a permission, or ChannelData on an unbound channel.
    NoPermission,
    /// Over a bandwidth cap (`max_bps`, `user_max_bps`).
    OverCap,
    /// A peer datagram too large to wrap in ChannelData or a Data indication.
    TooLarge,
    /// Dropped by the runtime: a client's send queue was full ([`Server::record_drop`]).
    ///
    /// [`Server::record_drop`]: super::Server::record_drop
    QueueFull,
}

impl DropReason {
    /// Every reason.
    pub const ALL: [DropReason; 7] = [
        DropReason::Malformed,
        DropReason::Unexpected,
        DropReason::NoAllocation,
        DropReason::NoPermission,
        DropReason::OverCap,
        DropReason::TooLarge,
        DropReason::QueueFull,
    ];

    /// A lower-case name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::Unexpected => "unexpected",
            DropReason::NoAllocation => "no_allocation",
            DropReason::NoPermission => "no_permission",
            DropReason::OverCap => "over_cap",
            DropReason::TooLarge => "too_large",
            DropReason::QueueFull => "queue_full",
        }
    }

    fn index(self) -> usize {
        match self {
            DropReason::Malformed => 0,
            DropReason::Unexpected => 1,
            DropReason::NoAllocation => 2,
            DropReason::NoPermission => 3,
            DropReason::OverCap => 4,
            DropReason::TooLarge => 5,
            DropReason::QueueFull => 6,
        }
    }
}

/// Counters a server exposes (all monotonic except the current-state gauges). The
/// labelled ones are read through methods: [`ServerStats::allocations_of`],
/// [`ServerStats::auth_failures_of`], [`ServerStats::quota_refusals_of`],
/// [`ServerStats::peers_refused_as`], [`ServerStats::dropped_for`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Allocations alive now.
    pub allocations: usize,
    /// Allocations ever created.
    pub allocations_created: u64,
    /// Permissions alive now (over all allocations, as of the last sweep or change).
    pub permissions: usize,
    /// Channels bound now.
    pub channels: usize,
    /// Binding requests answered.
    pub bindings: u64,
    /// Datagrams relayed client → peer.
    pub packets_to_peers: u64,
    /// Payload bytes relayed client → peer.
    pub bytes_to_peers: u64,
    /// Datagrams relayed peer → client.
    pub packets_to_clients: u64,
    /// Payload bytes relayed peer → client.
    pub bytes_to_clients: u64,
    /// ICMP errors relayed to clients in Data indications (RFC 8656 §11.5).
    pub icmp_to_clients: u64,
    /// Requests that failed authentication (401/438 after credentials were offered, 400
    /// for incomplete credentials, 441).
    pub auth_failures: u64,
    /// 401 challenges sent.
    pub challenges: u64,
    /// Requests dropped by the 401 rate limit.
    pub rate_limited: u64,
    /// Peer addresses refused by the policy (403).
    pub peers_refused: u64,
    /// Datagrams dropped for every reason but the bandwidth cap (which is `over_cap`):
    /// malformed, unexpected, no allocation, no permission, unbound channel, too large,
    /// a full queue in the runtime.
    pub dropped: u64,
    /// Relayed datagrams dropped over a bandwidth cap (`max_bps`, `user_max_bps`).
    pub over_cap: u64,
    /// Allocates refused (508 or 300) because the server is draining.
    pub drain_refusals: u64,
    by_kind: [AllocationCounts; 6],
    by_code: [u64; 6],
    by_limit: [u64; 7],
    by_peer_refusal: [u64; 7],
    by_drop_reason: [u64; 7],
}

impl ServerStats {
    /// Allocation counters of one kind.
    pub fn allocations_of(&self, kind: AllocationKind) -> AllocationCounts {
        self.by_kind.get(kind.index()).copied().unwrap_or_default()
    }

    /// Allocations that timed out, of every kind.
    pub fn allocations_expired(&self) -> u64 {
        self.by_kind.iter().map(|k| k.expired).sum()
    }

    /// Allocations the client ended, of every kind.
    pub fn allocations_deleted(&self) -> u64 {
        self.by_kind.iter().map(|k| k.deleted).sum()
    }

    /// Requests refused with `failure`'s code.
    pub fn auth_failures_of(&self, failure: AuthFailure) -> u64 {
        self.by_code.get(failure.index()).copied().unwrap_or(0)
    }

    /// Requests refused by `limit`.
    pub fn quota_refusals_of(&self, limit: QuotaLimit) -> u64 {
        self.by_limit.get(limit.index()).copied().unwrap_or(0)
    }

    /// Requests refused by any limit.
    pub fn quota_refusals(&self) -> u64 {
        self.by_limit.iter().sum()
    }

    /// Peers refused for `refusal` (403).
    pub fn peers_refused_as(&self, refusal: PeerRefusal) -> u64 {
        PeerRefusal::ALL
            .iter()
            .position(|r| *r == refusal)
            .and_then(|i| self.by_peer_refusal.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// Datagrams dropped for `reason`.
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        self.by_drop_reason
            .get(reason.index())
            .copied()
            .unwrap_or(0)
    }

    /// Adds `other`'s counters and gauges to these: the counters of a server made of
    /// several workers are the sums of theirs.
    pub fn add(&mut self, other: &ServerStats) {
        fn sum<const N: usize>(a: &mut [u64; N], b: &[u64; N]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x = x.saturating_add(*y);
            }
        }
        self.allocations = self.allocations.saturating_add(other.allocations);
        self.permissions = self.permissions.saturating_add(other.permissions);
        self.channels = self.channels.saturating_add(other.channels);
        for (x, y) in [
            (&mut self.allocations_created, other.allocations_created),
            (&mut self.bindings, other.bindings),
            (&mut self.packets_to_peers, other.packets_to_peers),
            (&mut self.bytes_to_peers, other.bytes_to_peers),
            (&mut self.packets_to_clients, other.packets_to_clients),
            (&mut self.bytes_to_clients, other.bytes_to_clients),
            (&mut self.icmp_to_clients, other.icmp_to_clients),
            (&mut self.auth_failures, other.auth_failures),
            (&mut self.challenges, other.challenges),
            (&mut self.rate_limited, other.rate_limited),
            (&mut self.peers_refused, other.peers_refused),
            (&mut self.dropped, other.dropped),
            (&mut self.over_cap, other.over_cap),
            (&mut self.drain_refusals, other.drain_refusals),
        ] {
            *x = x.saturating_add(y);
        }
        for (x, y) in self.by_kind.iter_mut().zip(&other.by_kind) {
            x.current = x.current.saturating_add(y.current);
            x.created = x.created.saturating_add(y.created);
            x.expired = x.expired.saturating_add(y.expired);
            x.deleted = x.deleted.saturating_add(y.deleted);
        }
        sum(&mut self.by_code, &other.by_code);
        sum(&mut self.by_limit, &other.by_limit);
        sum(&mut self.by_peer_refusal, &other.by_peer_refusal);
        sum(&mut self.by_drop_reason, &other.by_drop_reason);
    }

    pub(crate) fn kind_mut(&mut self, kind: AllocationKind) -> Option<&mut AllocationCounts> {
        self.by_kind.get_mut(kind.index())
    }

    pub(crate) fn count_auth_failure(&mut self, failure: AuthFailure) {
        if let Some(n) = self.by_code.get_mut(failure.index()) {
            *n += 1;
        }
    }

    /// A 486 or 508 for `limit`: counted by limit and by code.
    pub(crate) fn count_quota_refusal(&mut self, limit: QuotaLimit) {
        if let Some(n) = self.by_limit.get_mut(limit.index()) {
            *n += 1;
        }
        self.count_auth_failure(match limit {
            QuotaLimit::UserAllocations => AuthFailure::QuotaReached,
            _ => AuthFailure::InsufficientCapacity,
        });
    }

    pub(crate) fn count_peer_refusal(&mut self, refusal: PeerRefusal) {
        self.peers_refused += 1;
        let slot = PeerRefusal::ALL
            .iter()
            .position(|r| *r == refusal)
            .and_then(|i| self.by_peer_refusal.get_mut(i));
        if let Some(n) = slot {
            *n += 1;
        }
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        if reason == DropReason::OverCap {
            self.over_cap += 1;
        } else {
            self.dropped += 1;
        }
        if let Some(n) = self.by_drop_reason.get_mut(reason.index()) {
            *n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_stats_sums_every_counter_and_gauge() {
        let mut a = ServerStats {
            allocations: 2,
            bindings: 5,
            ..ServerStats::default()
        };
        a.count_drop(DropReason::OverCap);
        a.count_quota_refusal(QuotaLimit::UserAllocations);
        if let Some(k) = a.kind_mut(AllocationKind::ALL[0]) {
            k.current = 2;
        }
        let mut total = ServerStats::default();
        total.add(&a);
        total.add(&a);
        assert_eq!(
            (total.allocations, total.bindings, total.over_cap),
            (4, 10, 2)
        );
        assert_eq!(total.quota_refusals_of(QuotaLimit::UserAllocations), 2);
        assert_eq!(total.auth_failures_of(AuthFailure::QuotaReached), 2);
        assert_eq!(total.dropped_for(DropReason::OverCap), 2);
        assert_eq!(total.allocations_of(AllocationKind::ALL[0]).current, 4);
    }

    #[test]
    fn every_kind_has_its_own_slot() {
        let mut s = ServerStats::default();
        for (i, k) in AllocationKind::ALL.iter().enumerate() {
            s.kind_mut(*k).unwrap().created = i as u64 + 1;
        }
        for (i, k) in AllocationKind::ALL.iter().enumerate() {
            assert_eq!(s.allocations_of(*k).created, i as u64 + 1, "{k:?}");
        }
        for (i, f) in AuthFailure::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
        for (i, l) in QuotaLimit::ALL.iter().enumerate() {
            assert_eq!(l.index(), i);
        }
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn relay_family_of_one_or_two_addresses() {
        let v4: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        assert_eq!(RelayFamily::of(&[v4]), RelayFamily::Ipv4);
        assert_eq!(RelayFamily::of(&[v6]), RelayFamily::Ipv6);
        assert_eq!(RelayFamily::of(&[v4, v6]), RelayFamily::Dual);
    }
}
