//! ICE candidates (RFC 8445 §5.1): kinds, priorities (§5.1.2, with RFC 8421 local
//! preferences), foundations (§5.1.1.3). The RFC 8839 `candidate:` line syntax is in
//! [`crate::sdp`].

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

/// The candidate type (RFC 8445 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CandidateKind {
    /// A local interface address (`typ host`).
    Host,
    /// The address a STUN server saw (`typ srflx`).
    ServerReflexive,
    /// Learned from a connectivity check (`typ prflx`, RFC 8445 §7.2.5.3.1, §7.3.1.3).
    PeerReflexive,
    /// A TURN relayed address (`typ relay`).
    Relayed,
}

impl CandidateKind {
    /// The RFC 8445 §5.1.2.2 recommended type preference: host 126, prflx 110, srflx 100,
    /// relay 0.
    pub fn type_preference(self) -> u32 {
        match self {
            CandidateKind::Host => 126,
            CandidateKind::PeerReflexive => 110,
            CandidateKind::ServerReflexive => 100,
            CandidateKind::Relayed => 0,
        }
    }

    /// The RFC 8839 `typ` token.
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateKind::Host => "host",
            CandidateKind::ServerReflexive => "srflx",
            CandidateKind::PeerReflexive => "prflx",
            CandidateKind::Relayed => "relay",
        }
    }

    /// Whether a pair with this local or remote kind goes through a relay.
    pub fn is_relayed(self) -> bool {
        self == CandidateKind::Relayed
    }
}

impl fmt::Display for CandidateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport of a candidate (RFC 8839 §5.1; TCP per RFC 6544).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportProtocol {
    /// UDP.
    Udp,
    /// TCP (ICE-TCP, RFC 6544): active and passive candidates are paired
    /// ([`crate::Agent::add_tcp_host`]); simultaneous-open ones are parsed and kept only.
    Tcp,
}

/// RFC 6544 §4.5 `tcptype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpType {
    /// `active`.
    Active,
    /// `passive`.
    Passive,
    /// `so` (simultaneous open).
    So,
}

/// Where a candidate is: an IP address, or an mDNS `.local` name that the application
/// resolves (browsers hide host addresses this way).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CandidateAddress {
    /// An IP address and port.
    Ip(SocketAddr),
    /// An mDNS hostname (`<uuid>.local`) and port.
    Mdns {
        /// The `.local` name.
        name: String,
        /// The port.
        port: u16,
    },
}

impl CandidateAddress {
    /// The socket address, if it is an IP address.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            CandidateAddress::Ip(a) => Some(*a),
            CandidateAddress::Mdns { .. } => None,
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            CandidateAddress::Ip(a) => a.port(),
            CandidateAddress::Mdns { port, .. } => *port,
        }
    }
}

/// One candidate, local or remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Foundation: 1-32 `ice-char`s; candidates with the same foundation are "similar"
    /// (RFC 8445 §5.1.1.3).
    pub foundation: String,
    /// Component id (1 for RTP or the single data flow; 1-256).
    pub component: u16,
    /// UDP or TCP.
    pub transport: TransportProtocol,
    /// Priority (RFC 8445 §5.1.2).
    pub priority: u32,
    /// The address.
    pub address: CandidateAddress,
    /// The type.
    pub kind: CandidateKind,
    /// `raddr`/`rport`: the base (srflx, prflx) or mapped address (relay).
    pub related: Option<SocketAddr>,
    /// RFC 6544 `tcptype`.
    pub tcp_type: Option<TcpType>,
    /// Extension attributes after the mandatory fields, in order (`generation 0`,
    /// `ufrag abc`, `network-id 1`, unknown ones), kept so a line round-trips.
    pub extensions: Vec<(String, String)>,
}

impl Candidate {
    /// A UDP candidate for component 1 with a computed foundation and priority.
    pub fn new(
        kind: CandidateKind,
        addr: SocketAddr,
        base: SocketAddr,
        server: Option<SocketAddr>,
        local_preference: u16,
    ) -> Candidate {
        Candidate {
            foundation: foundation(kind, base.ip(), server, TransportProtocol::Udp),
            component: 1,
            transport: TransportProtocol::Udp,
            priority: priority(kind, local_preference, 1),
            address: CandidateAddress::Ip(addr),
            kind,
            related: (kind != CandidateKind::Host).then_some(base),
            tcp_type: None,
            extensions: Vec::new(),
        }
    }

    /// A TCP host candidate (RFC 6544 §4.1, §5.1): `passive` on a listening socket's
    /// address, or `active` on an interface, written with port 9 (§4.5: the port an
    /// active candidate connects from is not known before it connects). Priority per
    /// [`tcp_priority`].
    pub fn tcp_host(addr: SocketAddr, tcp_type: TcpType, interface_rank: usize) -> Candidate {
        let addr = match tcp_type {
            TcpType::Active => SocketAddr::new(addr.ip(), TCP_ACTIVE_PORT),
            TcpType::Passive | TcpType::So => addr,
        };
        Candidate {
            foundation: foundation(CandidateKind::Host, addr.ip(), None, TransportProtocol::Tcp),
            component: 1,
            transport: TransportProtocol::Tcp,
            priority: tcp_priority(CandidateKind::Host, tcp_type, interface_rank, 1),
            address: CandidateAddress::Ip(addr),
            kind: CandidateKind::Host,
            related: None,
            tcp_type: Some(tcp_type),
            extensions: Vec::new(),
        }
    }

    /// Whether this is an ICE-TCP candidate.
    pub fn is_tcp(&self) -> bool {
        self.transport == TransportProtocol::Tcp
    }

    /// The socket address, unless it is an unresolved mDNS name.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.address.socket_addr()
    }

    /// The value of an extension attribute (`ufrag`, `generation`, ...).
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether a local and a remote candidate may form a pair by transport: both UDP, or
/// TCP per RFC 6544 §6.2 (local active with remote passive, simultaneous-open with
/// simultaneous-open). A local passive candidate pairs only with the peer-reflexive
/// active candidate learned from a connection the peer opened to it: §6.2 prunes every
/// other pair whose local candidate is passive, since it cannot send first.
pub fn transports_pair(local: &Candidate, remote: &Candidate) -> bool {
    match (local.transport, remote.transport) {
        (TransportProtocol::Udp, TransportProtocol::Udp) => true,
        (TransportProtocol::Tcp, TransportProtocol::Tcp) => match (local.tcp_type, remote.tcp_type)
        {
            (Some(TcpType::Active), Some(TcpType::Passive))
            | (Some(TcpType::So), Some(TcpType::So)) => true,
            (Some(TcpType::Passive), Some(TcpType::Active)) => {
                remote.kind == CandidateKind::PeerReflexive
            }
            _ => false,
        },
        _ => false,
    }
}

/// RFC 8445 §5.1.2.1: `2^24 * type preference + 2^8 * local preference + (256 - component)`.
pub fn priority(kind: CandidateKind, local_preference: u16, component: u16) -> u32 {
    (kind.type_preference() << 24)
        + (u32::from(local_preference) << 8)
        + (256 - u32::from(component.clamp(1, 256)))
}

/// The port an active TCP candidate is written with (RFC 6544 §4.5: "9", the discard
/// port), and the port of its base in the agent: the runtime connects from an ephemeral
/// port of the same address.
pub const TCP_ACTIVE_PORT: u16 = 9;

/// RFC 6544 §4.2 priority of a TCP candidate. UDP is preferred for real-time data, and
/// the transport counts more than the type: every TCP type preference (host 80,
/// peer-reflexive 70, server-reflexive 60) is below every UDP one but relayed (0),
/// which stays last. The local preference is `2^13 * direction-pref + other-pref`,
/// with direction-pref 6 for active, 4 for passive and 2 for simultaneous-open (host
/// candidates), and other-pref 8191 for the first interface, one less for each next.
pub fn tcp_priority(
    kind: CandidateKind,
    tcp_type: TcpType,
    interface_rank: usize,
    component: u16,
) -> u32 {
    let type_preference: u32 = match kind {
        CandidateKind::Host => 80,
        CandidateKind::PeerReflexive => 70,
        CandidateKind::ServerReflexive => 60,
        CandidateKind::Relayed => 0,
    };
    let direction: u32 = match tcp_type {
        TcpType::Active => 6,
        TcpType::Passive => 4,
        TcpType::So => 2,
    };
    let other = 8191 - interface_rank.min(8191) as u32;
    (type_preference << 24)
        + (((direction << 13) + other) << 8)
        + (256 - u32::from(component.clamp(1, 256)))
}

/// RFC 8421 §4 local preference for address `index` of `count` on a multihomed,
/// dual-stack host: interfaces keep their order, and within that IPv6 ranks above IPv4
/// so that both families interleave (IPv6 first), as RFC 8421 recommends instead of all
/// IPv6 before all IPv4. Higher is better; the result is at most 65535.
pub fn local_preference(ip: IpAddr, interface_rank: usize) -> u16 {
    // 2 slots per interface: IPv6 gets the higher one.
    let family = usize::from(ip.is_ipv6());
    let rank = interface_rank.min(30_000);
    (65_535 - 2 * rank - (1 - family)) as u16
}

/// A foundation (RFC 8445 §5.1.1.3): equal for candidates of the same type, base IP,
/// STUN/TURN server and transport. A stable hash, written as up to 8 hex digits.
pub fn foundation(
    kind: CandidateKind,
    base_ip: IpAddr,
    server: Option<SocketAddr>,
    transport: TransportProtocol,
) -> String {
    // FNV-1a: stable across runs and platforms (std's hasher is randomly keyed).
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    kind.hash(&mut h);
    base_ip.hash(&mut h);
    server.map(|s| s.ip()).hash(&mut h);
    transport.hash(&mut h);
    format!("{:x}", h.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_rfc_8445_formula_and_type_order() {
        assert_eq!(priority(CandidateKind::Host, 65_535, 1), 2_130_706_431);
        assert_eq!(priority(CandidateKind::Relayed, 0, 1), 255);
        let host = priority(CandidateKind::Host, 0, 1);
        let prflx = priority(CandidateKind::PeerReflexive, 65_535, 1);
        let srflx = priority(CandidateKind::ServerReflexive, 65_535, 1);
        let relay = priority(CandidateKind::Relayed, 65_535, 1);
        assert!(host > prflx && prflx > srflx && srflx > relay);
    }

    #[test]
    fn rfc_6544_tcp_priorities_rank_below_udp_but_above_relays() {
        let tcp_active = tcp_priority(CandidateKind::Host, TcpType::Active, 0, 1);
        let tcp_passive = tcp_priority(CandidateKind::Host, TcpType::Passive, 0, 1);
        let tcp_so = tcp_priority(CandidateKind::Host, TcpType::So, 0, 1);
        let tcp_prflx = tcp_priority(CandidateKind::PeerReflexive, TcpType::Active, 0, 1);
        let udp_srflx = priority(CandidateKind::ServerReflexive, 0, 1);
        let udp_relay = priority(CandidateKind::Relayed, 65_535, 1);
        // §4.2: 6 active > 4 passive > 2 so; 8191 for the only interface.
        assert_eq!(tcp_active, (80 << 24) + ((6 << 13) + 8191) * 256 + 255);
        assert!(tcp_active > tcp_passive && tcp_passive > tcp_so);
        assert!(tcp_so > tcp_prflx && tcp_active < udp_srflx && tcp_prflx > udp_relay);
        // A second interface ranks lower within the same direction.
        assert!(tcp_priority(CandidateKind::Host, TcpType::Passive, 1, 1) < tcp_passive);
        let active = Candidate::tcp_host("10.0.0.1:5000".parse().unwrap(), TcpType::Active, 0);
        assert_eq!(active.addr(), Some("10.0.0.1:9".parse().unwrap()));
        assert!(active.is_tcp() && active.priority == tcp_active);
    }

    #[test]
    fn rfc_8421_local_preferences_interleave_families_by_interface() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let order = [
            local_preference(v6, 0),
            local_preference(v4, 0),
            local_preference(v6, 1),
            local_preference(v4, 1),
        ];
        assert!(order.windows(2).all(|w| w[0] > w[1]), "{order:?}");
    }

    #[test]
    fn foundations_group_similar_candidates() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let stun: SocketAddr = "198.51.100.1:3478".parse().unwrap();
        let a = foundation(
            CandidateKind::ServerReflexive,
            ip,
            Some(stun),
            TransportProtocol::Udp,
        );
        let b = foundation(
            CandidateKind::ServerReflexive,
            ip,
            Some(stun),
            TransportProtocol::Udp,
        );
        let c = foundation(CandidateKind::Host, ip, None, TransportProtocol::Udp);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.len() <= 32 && a.chars().all(|ch| ch.is_ascii_hexdigit()));
    }
}
