//! Server configuration, with the RFC 8656 defaults.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::policy::PeerPolicy;

/// Configuration of a TURN server core.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The realm (RFC 8489 §9.2). Default `"floe"`.
    pub realm: String,
    /// Long-term credential users: name → password.
    pub users: HashMap<String, String>,
    /// Shared secrets for TURN REST credentials (coturn's `--use-auth-secret`): a REST
    /// username is accepted when its password matches any of them, so a secret can be
    /// rotated by adding the new one, waiting out the old credentials' lifetime, then
    /// removing the old one.
    pub rest_secrets: Vec<String>,
    /// SOFTWARE sent in responses; `None` to send none.
    pub software: Option<String>,
    /// How long a nonce stays valid (RFC 8489 §9.2: servers pick; default 10 min).
    pub nonce_lifetime: Duration,
    /// Allocation lifetime when the client asks for less (RFC 8656 §2: 10 min).
    pub default_lifetime: Duration,
    /// Most an allocation lives without a refresh (RFC 8656 §7.2 recommends ≤ 1 h).
    pub max_lifetime: Duration,
    /// Permission lifetime (RFC 8656 §9: 300 s, not configurable by the RFC).
    pub permission_lifetime: Duration,
    /// Channel binding lifetime (RFC 8656 §12: 10 min).
    pub channel_lifetime: Duration,
    /// How long an EVEN-PORT R reservation is held (RFC 8656 §7.2: at least 30 s).
    pub reservation_lifetime: Duration,
    /// Allocations in total (more gets 508 Insufficient Capacity).
    pub max_allocations: usize,
    /// Allocations per username (more gets 486 Allocation Quota Reached).
    pub max_allocations_per_user: usize,
    /// Permissions per allocation (more gets 508).
    pub max_permissions: usize,
    /// Channels per allocation (more gets 508). The protocol allows 4096.
    pub max_channels: usize,
    /// 401 responses per source IP per second; beyond it requests are dropped silently,
    /// so the server cannot be used to reflect traffic cheaply.
    pub max_unauthenticated_per_second: u32,
    /// Which peers the server relays to.
    pub peer_policy: PeerPolicy,
    /// RFC 5780 behaviour discovery: the primary and alternate address. The server must
    /// then listen on all four combinations of their IPs and ports (UDP).
    pub rfc5780: Option<(SocketAddr, SocketAddr)>,
    /// Bound on tracked per-source state (401 rate limiting) and reservations.
    pub max_tracked_sources: usize,
    /// Accept channel numbers 0x5000-0x7FFF, which RFC 5766 allowed and RFC 8656 §12
    /// reserves (default `true`): RFC 5766 clients such as coturn's `turnutils_uclient`
    /// still pick them, and refusing them breaks those clients for no safety gain on a
    /// TURN server's own port. Set `false` for strict RFC 8656 (400 for such numbers).
    pub rfc5766_channels: bool,
    /// Most relayed payload bits per second per allocation, both directions together
    /// (`--max-bps`); `None` for no cap. Over the cap, packets are dropped and counted.
    pub max_bps: Option<u64>,
    /// Most relayed payload bits per second per user over all their allocations
    /// (`--user-max-bps`); `None` for no cap.
    pub user_max_bps: Option<u64>,
    /// Where a draining server sends new Allocates (300 Try Alternate with
    /// ALTERNATE-SERVER, RFC 8489 §10); without it they get 508.
    pub alternate_server: Option<SocketAddr>,
    /// The name in the alternate server's certificate, sent as ALTERNATE-DOMAIN with a
    /// 300 answered over TLS (RFC 8489 §10, §14.16), so the client validates the
    /// alternate's certificate against it; without it the client uses the original name.
    pub alternate_domain: Option<String>,
    /// A server behind a 1:1 NAT (`--external-ip PUBLIC/PRIVATE`, coturn's
    /// `external-ip`): relay sockets are bound on the PRIVATE address and clients are
    /// told the PUBLIC one in XOR-RELAYED-ADDRESS, one pair per address family. Traffic
    /// between two of this server's own relayed addresses is handed over locally, so
    /// relay-to-relay paths work without NAT hairpinning.
    pub external_ips: Vec<(std::net::IpAddr, std::net::IpAddr)>,
    /// Allocation counts shared with the other workers of this server, so the
    /// allocation limits hold for the whole process; `None` gives each [`Server`] its
    /// own. Give every worker a clone of one `Arc`.
    ///
    /// [`Server`]: super::Server
    pub quota: Option<std::sync::Arc<super::SharedQuota>>,
    /// RESERVATION-TOKENs shared with the other workers of this server, so a client's
    /// second Allocate may redeem its token on whichever worker it reaches; `None` gives
    /// each [`Server`] its own table. Give every worker a clone of one `Arc`, and
    /// relay allocators that can [`claim`](super::RelayAllocator::claim) each other's
    /// reserved addresses.
    ///
    /// [`Server`]: super::Server
    pub reservations: Option<std::sync::Arc<super::SharedReservations>>,
    /// The users' bandwidth buckets (`user_max_bps`) shared with the other workers of
    /// this server, so a user's cap holds for the whole process; `None` gives each
    /// [`Server`] its own. Give every worker a clone of one `Arc`.
    ///
    /// [`Server`]: super::Server
    pub user_buckets: Option<std::sync::Arc<super::SharedUserBuckets>>,
    /// Ask the runtime for a place in a fleet-wide quota before each allocation
    /// ([`FleetOp`](super::FleetOp), docs/fleet.md); the local limits still hold too.
    /// Default off.
    pub fleet_quota: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            realm: "floe".into(),
            users: HashMap::new(),
            rest_secrets: Vec::new(),
            software: Some(concat!("floe ", env!("CARGO_PKG_VERSION")).into()),
            nonce_lifetime: Duration::from_secs(600),
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            permission_lifetime: Duration::from_secs(300),
            channel_lifetime: Duration::from_secs(600),
            reservation_lifetime: Duration::from_secs(30),
            max_allocations: 10_000,
            max_allocations_per_user: 100,
            max_permissions: 64,
            max_channels: 64,
            max_unauthenticated_per_second: 20,
            peer_policy: PeerPolicy::default(),
            rfc5780: None,
            max_tracked_sources: 16_384,
            rfc5766_channels: true,
            max_bps: None,
            user_max_bps: None,
            alternate_server: None,
            alternate_domain: None,
            external_ips: Vec::new(),
            quota: None,
            fleet_quota: false,
            reservations: None,
            user_buckets: None,
        }
    }
}
