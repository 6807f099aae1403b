//! Which peer addresses a TURN server relays to (RFC 8656 §21.3, "Insider Attacks").
//!
//! By default a server refuses peers in loopback, unspecified, private (RFC 1918),
//! shared (RFC 6598), link-local, unique-local, site-local, multicast, broadcast and
//! reserved ranges, and every IPv6 form that embeds such an IPv4 address. coturn's
//! CVE-2020-26262 and CVE-2026-27624 were bypasses through exactly these forms, so every
//! check here (the built-in kinds, the operator's allow ranges and deny ranges) first
//! reduces an address to every address it may really reach ([`reach`]): the address
//! itself and each IPv4 address embedded in it. A peer is denied if any of them is in a
//! deny range, and permitted only if every one of them is global or allowed.
//!
//! The embedded forms:
//!
//! | form | prefix | where the IPv4 address is |
//! |---|---|---|
//! | IPv4-mapped (RFC 4291 §2.5.5.2) | `::ffff:0:0/96` | last 32 bits |
//! | IPv4-compatible (RFC 4291 §2.5.5.1, deprecated) | `::/96` except `::` and `::1` | last 32 bits |
//! | IPv4-translated (RFC 2765 §2.1) | `::ffff:0:0:0/96` | last 32 bits |
//! | NAT64 well-known (RFC 6052 §2.1) | `64:ff9b::/96` | last 32 bits |
//! | NAT64 local-use (RFC 8215) | `64:ff9b:1::/48` | any RFC 6052 §2.2 position for prefixes /48, /56, /64, /96 |
//! | 6to4 (RFC 3056 §2) | `2002::/16` | bits 16-47 |
//! | Teredo (RFC 4380 §4) | `2001::/32` | last 32 bits, inverted (the client's obfuscated address) |
//! | ISATAP (RFC 5214 §6.1) | interface id `0:5efe` or `200:5efe` | last 32 bits |

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

impl AddressClass {
    /// Every class, in declaration order.
    pub const ALL: [AddressClass; 7] = [
        AddressClass::Unspecified,
        AddressClass::Loopback,
        AddressClass::Private,
        AddressClass::LinkLocal,
        AddressClass::Multicast,
        AddressClass::Broadcast,
        AddressClass::Global,
    ];

    /// A lower-case name for logs and metric labels: `loopback`, `link_local`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Unspecified => "unspecified",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link_local",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Global => "global",
        }
    }
}

/// Why [`PeerPolicy::check`] refused a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerRefusal {
    /// An address the peer may reach is of a class refused by default and not allowed.
    Class(AddressClass),
    /// An address the peer may reach is in one of the operator's deny ranges.
    Denied,
}

impl PeerRefusal {
    /// Every refusal a policy can give (a global address is refused only when denied).
    pub const ALL: [PeerRefusal; 7] = [
        PeerRefusal::Class(AddressClass::Unspecified),
        PeerRefusal::Class(AddressClass::Loopback),
        PeerRefusal::Class(AddressClass::Private),
        PeerRefusal::Class(AddressClass::LinkLocal),
        PeerRefusal::Class(AddressClass::Multicast),
        PeerRefusal::Class(AddressClass::Broadcast),
        PeerRefusal::Denied,
    ];

    /// A lower-case name for logs and metric labels: the class's name, or `denied`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerRefusal::Class(c) => c.as_str(),
            PeerRefusal::Denied => "denied",
        }
    }
}

/// Every IPv4 address an IPv6 address may reach through the forms in the table above
/// (at most four; none for a plain IPv6 address).
pub fn embedded_ipv4s(v6: &Ipv6Addr) -> impl Iterator<Item = Ipv4Addr> {
    let s = v6.segments();
    let v4 = |a: u8, b: u8, c: u8, d: u8| Some(Ipv4Addr::new(a, b, c, d));
    // Bits 64-71 (o8) are RFC 6052's reserved "u" octet.
    let [_, _, o2, o3, o4, o5, o6, o7, _o8, o9, o10, o11, o12, o13, o14, o15] = v6.octets();
    let tail = v4(o12, o13, o14, o15);
    let mut found: [Option<Ipv4Addr>; 4] = [None; 4];
    match s {
        // `::` and `::1` are themselves, not IPv4; `::0.0.0.2` and up are compatible.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi == 0 && lo <= 1 => {}
        [0, 0, 0, 0, 0, 0xffff | 0, _, _]
        | [0, 0, 0, 0, 0xffff, 0, _, _]
        | [0x64, 0xff9b, 0, 0, 0, 0, _, _]
        | [_, _, _, _, 0 | 0x200, 0x5efe, _, _] => found[0] = tail,
        [0x64, 0xff9b, 1, ..] => {
            // RFC 6052 §2.2: the operator's prefix length decides where the address
            // sits, and we cannot know it, so every position counts.
            found = [
                v4(o6, o7, o9, o10),
                v4(o7, o9, o10, o11),
                v4(o9, o10, o11, o12),
                tail,
            ];
        }
        [0x2002, ..] => found[0] = v4(o2, o3, o4, o5),
        [0x2001, 0, ..] => found[0] = v4(!o12, !o13, !o14, !o15),
        _ => {}
    }
    found.into_iter().flatten()
}

/// The first IPv4 address an IPv6 address embeds ([`embedded_ipv4s`]), if any.
pub fn embedded_ipv4(v6: &Ipv6Addr) -> Option<Ipv4Addr> {
    embedded_ipv4s(v6).next()
}

/// Every address a packet sent to `ip` may really reach: `ip` itself, then each IPv4
/// address embedded in it ([`embedded_ipv4s`]).
pub fn reach(ip: IpAddr) -> impl Iterator<Item = IpAddr> {
    let embedded = match ip {
        IpAddr::V6(v6) => Some(embedded_ipv4s(&v6).map(IpAddr::V4)),
        IpAddr::V4(_) => None,
    };
    core::iter::once(ip).chain(embedded.into_iter().flatten())
}

/// Classifies an address: the first class other than [`AddressClass::Global`] among
/// the addresses it may reach ([`reach`]), or `Global`.
pub fn classify(ip: IpAddr) -> AddressClass {
    reach(ip)
        .map(|a| match a {
            IpAddr::V4(v4) => classify_v4(v4),
            IpAddr::V6(v6) => classify_v6(v6),
        })
        .find(|c| *c != AddressClass::Global)
        .unwrap_or(AddressClass::Global)
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

    /// Whether `ip`, or any address it may reach ([`reach`]), is inside: an IPv4 range
    /// holds every IPv6 spelling of its addresses.
    pub fn contains(&self, ip: IpAddr) -> bool {
        reach(ip).any(|a| self.contains_exactly(a))
    }

    /// Whether `ip` itself is inside (an IPv4 range never holds an IPv6 address, and
    /// the other way round).
    fn contains_exactly(&self, ip: IpAddr) -> bool {
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
    ///
    /// Denied if any address `ip` may reach ([`reach`]) is in a deny range; permitted
    /// only if every one of them is global, loopback with `allow_loopback`, or in an
    /// allow range.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.check(ip).is_ok()
    }

    /// [`PeerPolicy::permits`], saying why a peer is refused: [`PeerRefusal::Denied`]
    /// when a deny range holds it, else the class of the first address it may reach
    /// that is neither global nor allowed.
    pub fn check(&self, ip: IpAddr) -> Result<(), PeerRefusal> {
        if reach(ip).any(|a| self.deny.iter().any(|r| r.contains_exactly(a))) {
            return Err(PeerRefusal::Denied);
        }
        for a in reach(ip) {
            let class = match a {
                IpAddr::V4(v4) => classify_v4(v4),
                IpAddr::V6(v6) => classify_v6(v6),
            };
            let permitted = match class {
                AddressClass::Global => true,
                AddressClass::Loopback if self.allow_loopback => true,
                _ => self.allow.iter().any(|r| r.contains_exactly(a)),
            };
            if !permitted {
                return Err(PeerRefusal::Class(class));
            }
        }
        Ok(())
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

    /// Every spelling of 198.51.100.7 (0xc6336407), against `--deny-peer
    /// 198.51.100.0/24`: the deny range holds them all, and a neighbour outside it in
    /// the same spelling stays permitted.
    #[test]
    fn a_deny_range_holds_every_ipv6_spelling_of_its_addresses() {
        let p = PeerPolicy {
            deny: vec!["198.51.100.0/24".parse().unwrap()],
            ..PeerPolicy::default()
        };
        let spellings: [(&str, &str, &str); 11] = [
            ("plain IPv4", "198.51.100.7", "198.51.101.7"),
            ("IPv4-mapped", "::ffff:198.51.100.7", "::ffff:198.51.101.7"),
            ("IPv4-compatible", "::198.51.100.7", "::198.51.101.7"),
            (
                "RFC 2765 translated",
                "::ffff:0:198.51.100.7",
                "::ffff:0:198.51.101.7",
            ),
            (
                "NAT64 64:ff9b::/96",
                "64:ff9b::c633:6407",
                "64:ff9b::c633:6507",
            ),
            (
                "NAT64 local-use /96",
                "64:ff9b:1::c633:6407",
                "64:ff9b:1::c633:6507",
            ),
            // RFC 6052 §2.2 /48: bits 48-63 and 72-87, the u octet between.
            (
                "NAT64 local-use /48",
                "64:ff9b:1:c633:64:700::",
                "64:ff9b:1:c633:65:700::",
            ),
            ("6to4", "2002:c633:6407::1", "2002:c633:6507::1"),
            // RFC 4380 §4: the client's address, every bit inverted.
            (
                "Teredo",
                "2001:0:4136:e378:8000:63bf:39cc:9bf8",
                "2001:0:4136:e378:8000:63bf:39cc:9af8",
            ),
            (
                "ISATAP",
                "2001:db8::5efe:c633:6407",
                "2001:db8::5efe:c633:6507",
            ),
            (
                "ISATAP universal",
                "2001:db8::200:5efe:c633:6407",
                "2001:db8::200:5efe:c633:6507",
            ),
        ];
        for (form, inside, outside) in spellings {
            let inside: IpAddr = inside.parse().unwrap();
            let outside: IpAddr = outside.parse().unwrap();
            assert!(!p.permits(inside), "{form}: {inside} must be denied");
            assert!(p.deny[0].contains(inside), "{form}: {inside}");
            assert!(!p.deny[0].contains(outside), "{form}: {outside}");
            // The local-use NAT64 prefix is ambiguous: other positions of the same
            // bits read as 0.x or other special addresses, which are refused anyway.
            if !form.starts_with("NAT64 local-use") {
                assert!(p.permits(outside), "{form}: {outside} must stay permitted");
            }
        }
    }

    #[test]
    fn rfc_2765_and_low_compatible_forms_are_not_public() {
        assert_eq!(
            classify("::ffff:0:127.0.0.1".parse().unwrap()),
            AddressClass::Loopback
        );
        assert_eq!(
            classify("::ffff:0:10.0.0.1".parse().unwrap()),
            AddressClass::Private
        );
        assert_eq!(
            classify("::0.0.0.2".parse().unwrap()),
            AddressClass::Unspecified
        );
        assert_eq!(classify("::".parse().unwrap()), AddressClass::Unspecified);
        assert_eq!(classify("::1".parse().unwrap()), AddressClass::Loopback);
        // Teredo's client address is inverted: 2001:0:…:80ff:fffe is 127.0.0.1.
        assert_eq!(
            classify("2001:0:4136:e378:8000:63bf:80ff:fffe".parse().unwrap()),
            AddressClass::Loopback
        );
        assert_eq!(
            classify("2001:db8::1".parse().unwrap()),
            AddressClass::Global
        );
        for s in [
            "::ffff:0:127.0.0.1",
            "::0.0.0.2",
            "2001:0:1:2:3:4:80ff:fffe",
        ] {
            assert!(refused(s), "{s} must be refused");
        }
    }

    #[test]
    fn an_allow_range_opens_every_spelling_of_its_addresses_and_nothing_else() {
        let p = PeerPolicy {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            ..PeerPolicy::default()
        };
        for s in [
            "10.1.2.3",
            "::ffff:10.1.2.3",
            "::ffff:0:10.1.2.3",
            "64:ff9b::a01:203",
            "2002:a01:203::",
        ] {
            assert!(p.permits(s.parse().unwrap()), "{s}");
        }
        for s in ["192.168.1.1", "::ffff:192.168.1.1", "2002:c0a8:101::"] {
            assert!(!p.permits(s.parse().unwrap()), "{s}");
        }
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
    fn check_names_why_a_peer_is_refused() {
        let p = PeerPolicy {
            deny: vec!["198.51.100.0/24".parse().unwrap()],
            ..PeerPolicy::default()
        };
        let why = |s: &str| p.check(s.parse().unwrap());
        assert_eq!(why("8.8.8.8"), Ok(()));
        assert_eq!(why("198.51.100.7"), Err(PeerRefusal::Denied));
        assert_eq!(why("::ffff:198.51.100.7"), Err(PeerRefusal::Denied));
        assert_eq!(
            why("127.0.0.1"),
            Err(PeerRefusal::Class(AddressClass::Loopback))
        );
        assert_eq!(
            why("64:ff9b::a00:1"),
            Err(PeerRefusal::Class(AddressClass::Private)),
            "the embedded IPv4 address decides"
        );
        assert_eq!(
            why("fe80::1"),
            Err(PeerRefusal::Class(AddressClass::LinkLocal))
        );
        assert_eq!(
            PeerRefusal::Class(AddressClass::LinkLocal).as_str(),
            "link_local"
        );
        assert_eq!(PeerRefusal::Denied.as_str(), "denied");
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
