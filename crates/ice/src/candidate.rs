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
    /// TCP (ICE-TCP, RFC 6544). Parsed and kept; floe's agent pairs only UDP.
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

/// RFC 8445 §5.1.2.1: `2^24 * type preference + 2^8 * local preference + (256 - component)`.
pub fn priority(kind: CandidateKind, local_preference: u16, component: u16) -> u32 {
    (kind.type_preference() << 24)
        + (u32::from(local_preference) << 8)
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
