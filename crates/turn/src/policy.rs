//! Which peer addresses a TURN server relays to (RFC 8656 §21.3, "Insider Attacks").
//!
//! By default a server refuses peers in loopback, unspecified, private (RFC 1918),
//! shared (RFC 6598), link-local, unique-local, site-local, multicast, broadcast and
//! reserved ranges, and every IPv6 form that embeds such an IPv4 address:
//! IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64
//! (`64:ff9b::/96`, `64:ff9b:1::/48`) and 6to4 (`2002::/16`). coturn's CVE-2020-26262
//! and CVE-2026-27624 were bypasses through exactly these forms, so every check here
//! first reduces the address to the IPv4 address it reaches, if any.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// 0.0.0.0/8, `::`.
    Unspecified,
    /// 127.0.0.0/8, `::1`.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16 (RFC 1918), 100.64/10 (RFC 6598), fc00::/7 (ULA),
    /// fec0::/10 (deprecated site-local).
    Private,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// 224/4, ff00::/8.
    Multicast,
    /// 255.255.255.255 and 240/4 (reserved).
    Broadcast,
    /// Anything else: globally routable.
    Global,
}

/// The IPv4 address an IPv6 address really reaches, for the forms that embed one.
pub fn embedded_ipv4(v6: &Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated but routable by
        // some stacks); `::` and `::1` are themselves, not IPv4.
        // RFC 6052 well-known NAT64 prefix, and the RFC 8215 local-use prefix, embed it
        // in the last 32 bits too.
        [0, 0, 0, 0, 0, 0xffff, _, _]
        | [0x64, 0xff9b, 0, 0, 0, 0, _, _]
        | [0x64, 0xff9b, 1, ..] => Some(tail),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail),
        // 6to4 (RFC 3056): 2002:AABB:CCDD::/48 reaches A.B.C.D.
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

/// Classifies an address, looking through IPv6 forms that embed IPv4.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_ipv4(&v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, ..] = ip.octets();
    match (a, b) {
        (0, _) => AddressClass::Unspecified,
        (127, _) => AddressClass::Loopback,
        (10, _) | (192, 168) | (172, 16..=31) | (100, 64..=127) => AddressClass::Private,
        (169, 254) => AddressClass::LinkLocal,
        (224..=239, _) => AddressClass::Multicast,
        (240..=255, _) => AddressClass::Broadcast,
        _ => AddressClass::Global,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s0 = ip.segments()[0];
    if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if s0 & 0xfe00 == 0xfc00 || s0 & 0xffc0 == 0xfec0 {
        AddressClass::Private
    } else if s0 & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if s0 & 0xff00 == 0xff00 {
        AddressClass::Multicast
    } else {
        AddressClass::Global
    }
}

/// An address range `addr/prefix`, for allow lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// A range; `None` if the prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpRange> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(IpRange { addr, prefix })
    }

    /// Whether `ip` is inside (IPv4-mapped IPv6 addresses match IPv4 ranges).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(r), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(r) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(r), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(r) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpRange {
    type Err = String;

    /// `10.0.0.0/8`, `fd00::/8`, or a bare address (a single-host range).
    fn from_str(s: &str) -> Result<IpRange, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|e| format!("{s}: {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|e| format!("{s}: {e}"))?,
            None => max,
        };
        IpRange::new(addr, prefix).ok_or_else(|| format!("{s}: prefix longer than {max}"))
    }
}

/// The peer-address policy of a TURN server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerPolicy {
    /// Relay to loopback peers (`--allow-loopback-peers`; tests on one machine need it).
    pub allow_loopback: bool,
    /// Ranges relayed to even though their class is refused by default.
    pub allow: Vec<IpRange>,
    /// Ranges refused even though they are global.
    pub deny: Vec<IpRange>,
}

impl PeerPolicy {
    /// Whether the server may relay to `ip` (RFC 8656 §21.3). A refused peer gets 403.
    pub fn permits(&self, ip: IpAddr) -> bool {
        if self.deny.iter().any(|r| r.contains(ip)) {
            return false;
        }
        match classify(ip) {
            AddressClass::Global => true,
            AddressClass::Loopback if self.allow_loopback => true,
            _ => self.allow.iter().any(|r| r.contains(ip)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        !PeerPolicy::default().permits(s.parse().unwrap())
    }

    #[test]
    fn special_ipv4_ranges_are_refused() {
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.1.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
        ] {
            assert!(refused(s), "{s} must be refused");
        }
        for s in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.2.1",
            "203.0.113.9",
        ] {
            assert!(!refused(s), "{s} must be allowed");
        }
    }

    #[test]
    fn special_ipv6_ranges_are_refused() {
        for s in [
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(refused(s), "{s} must be refused");
        }
        assert!(!refused("2001:db8::1"));
        assert!(!refused("2606:4700::1111"));
    }

    #[test]
    fn every_ipv6_form_of_a_refused_ipv4_address_is_refused() {
        // The CVE-2020-26262 / CVE-2026-27624 class: loopback and private IPv4 reached
        // through IPv6 spellings.
        for s in [
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::127.0.0.1",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "::ffff:0.0.0.0",
            "::ffff:169.254.169.254",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::7f00:1",
            "2002:7f00:1::1",
            "2002:c0a8:101::",
            "::ffff:255.255.255.255",
            "::ffff:224.0.0.1",
        ] {
            assert!(refused(s), "{s} must be refused");
        }
        assert!(!refused("::ffff:8.8.8.8"));
        assert!(!refused("64:ff9b::808:808"));
    }

    #[test]
    fn loopback_and_allow_lists_open_what_the_operator_chose() {
        let p = PeerPolicy {
            allow_loopback: true,
            ..PeerPolicy::default()
        };
        assert!(p.permits("127.0.0.1".parse().unwrap()));
        assert!(p.permits("::1".parse().unwrap()));
        assert!(p.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!p.permits("10.0.0.1".parse().unwrap()));
        let p = PeerPolicy {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            ..PeerPolicy::default()
        };
        assert!(p.permits("10.9.8.7".parse().unwrap()));
        assert!(p.permits("::ffff:10.9.8.7".parse().unwrap()));
        assert!(!p.permits("192.168.0.1".parse().unwrap()));
        let p = PeerPolicy {
            deny: vec!["198.51.100.0/24".parse().unwrap()],
            ..PeerPolicy::default()
        };
        assert!(!p.permits("198.51.100.7".parse().unwrap()));
    }

    #[test]
    fn ranges_parse_and_match() {
        let r: IpRange = "fd00::/8".parse().unwrap();
        assert!(r.contains("fd12::1".parse().unwrap()));
        assert!(!r.contains("fe12::1".parse().unwrap()));
        assert!("1.2.3.4/33".parse::<IpRange>().is_err());
        let host: IpRange = "1.2.3.4".parse().unwrap();
        assert!(host.contains("1.2.3.4".parse().unwrap()));
        assert!(!host.contains("1.2.3.5".parse().unwrap()));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("9.9.9.9".parse().unwrap()));
    }
}
