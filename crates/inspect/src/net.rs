//! From a captured frame to a UDP datagram or TCP segment: the link layers floe knows
//! (Ethernet with VLAN tags, raw IP, BSD loopback, Linux cooked capture v1 and v2), IPv4
//! and IPv6 (with extension headers), UDP and TCP. Fragments are not reassembled.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// LINKTYPE_NULL: BSD loopback, a 4-byte host-order address family.
pub const LINKTYPE_NULL: u32 = 0;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// LINKTYPE_RAW: the packet starts with an IPv4 or IPv6 header (floe-netsim writes this).
pub const LINKTYPE_RAW: u32 = 101;
/// LINKTYPE_LOOP: OpenBSD loopback, a 4-byte network-order address family.
pub const LINKTYPE_LOOP: u32 = 108;
/// LINKTYPE_LINUX_SLL: Linux cooked capture v1 (`tcpdump -i any`).
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// LINKTYPE_IPV4.
pub const LINKTYPE_IPV4: u32 = 228;
/// LINKTYPE_IPV6.
pub const LINKTYPE_IPV6: u32 = 229;
/// LINKTYPE_LINUX_SLL2: Linux cooked capture v2.
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// The transport a payload came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP, with its flag byte.
    Tcp {
        /// The TCP flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
        flags: u8,
    },
}

/// A transport payload cut out of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// The payload (as captured; shorter than sent if the capture cut the packet).
    pub payload: &'a [u8],
}

/// Why a frame carries nothing floe decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// A link type floe does not read.
    LinkType(u32),
    /// Not IPv4 or IPv6 (ARP and the like).
    NotIp,
    /// An IP protocol other than UDP and TCP.
    Protocol(u8),
    /// A fragment (floe does not reassemble).
    Fragment,
    /// The frame ends inside a header.
    Truncated(&'static str),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::LinkType(t) => write!(f, "link type {t} is not supported"),
            Skip::NotIp => f.write_str("not IPv4 or IPv6"),
            Skip::Protocol(p) => write!(f, "IP protocol {p} (not UDP or TCP)"),
            Skip::Fragment => f.write_str("IP fragment (fragments are not reassembled)"),
            Skip::Truncated(what) => write!(f, "frame truncated inside the {what} header"),
        }
    }
}

fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_be_bytes)
}

/// Cuts the UDP or TCP payload out of a frame of `link_type`.
pub fn parse_frame(link_type: u32, data: &[u8]) -> Result<Segment<'_>, Skip> {
    let ip = match link_type {
        LINKTYPE_RAW | 12 | 14 | LINKTYPE_IPV4 | LINKTYPE_IPV6 => data,
        LINKTYPE_NULL | LINKTYPE_LOOP => data.get(4..).ok_or(Skip::Truncated("loopback"))?,
        LINKTYPE_ETHERNET => {
            let mut at = 12;
            let mut ethertype = be16(data, at).ok_or(Skip::Truncated("Ethernet"))?;
            // 802.1Q and 802.1ad tags.
            while matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) {
                at += 4;
                ethertype = be16(data, at).ok_or(Skip::Truncated("Ethernet"))?;
            }
            if !matches!(ethertype, 0x0800 | 0x86dd) {
                return Err(Skip::NotIp);
            }
            data.get(at + 2..).ok_or(Skip::Truncated("Ethernet"))?
        }
        LINKTYPE_LINUX_SLL => {
            let protocol = be16(data, 14).ok_or(Skip::Truncated("Linux cooked"))?;
            if !matches!(protocol, 0x0800 | 0x86dd) {
                return Err(Skip::NotIp);
            }
            data.get(16..).ok_or(Skip::Truncated("Linux cooked"))?
        }
        LINKTYPE_LINUX_SLL2 => {
            let protocol = be16(data, 0).ok_or(Skip::Truncated("Linux cooked v2"))?;
            if !matches!(protocol, 0x0800 | 0x86dd) {
                return Err(Skip::NotIp);
            }
            data.get(20..).ok_or(Skip::Truncated("Linux cooked v2"))?
        }
        other => return Err(Skip::LinkType(other)),
    };
    parse_ip(ip)
}

/// Parses an IPv4 or IPv6 packet down to its UDP or TCP payload.
pub fn parse_ip(ip: &[u8]) -> Result<Segment<'_>, Skip> {
    let first = *ip.first().ok_or(Skip::Truncated("IP"))?;
    let (src, dst, mut proto, mut rest) = match first >> 4 {
        4 => {
            let ihl = usize::from(first & 0x0F) * 4;
            if ihl < 20 || ip.len() < ihl {
                return Err(Skip::Truncated("IPv4"));
            }
            let flags_offset = be16(ip, 6).unwrap_or(0);
            // More fragments, or a non-zero fragment offset.
            if flags_offset & 0x3FFF != 0 {
                return Err(Skip::Fragment);
            }
            let total = usize::from(be16(ip, 2).unwrap_or(0));
            let end = total.clamp(ihl, ip.len());
            let truncated = || Skip::Truncated("IPv4");
            (
                IpAddr::V4(Ipv4Addr::from(array::<4>(ip, 12).ok_or_else(truncated)?)),
                IpAddr::V4(Ipv4Addr::from(array::<4>(ip, 16).ok_or_else(truncated)?)),
                *ip.get(9).ok_or_else(truncated)?,
                ip.get(ihl..end).ok_or_else(truncated)?,
            )
        }
        6 => {
            if ip.len() < 40 {
                return Err(Skip::Truncated("IPv6"));
            }
            let payload_len = usize::from(be16(ip, 4).unwrap_or(0));
            let end = (40 + payload_len).min(ip.len());
            let truncated = || Skip::Truncated("IPv6");
            (
                IpAddr::V6(Ipv6Addr::from(array::<16>(ip, 8).ok_or_else(truncated)?)),
                IpAddr::V6(Ipv6Addr::from(array::<16>(ip, 24).ok_or_else(truncated)?)),
                *ip.get(6).ok_or_else(truncated)?,
                ip.get(40..end).ok_or_else(truncated)?,
            )
        }
        _ => return Err(Skip::NotIp),
    };
    // IPv6 extension headers (RFC 8200 §4): hop-by-hop, routing, destination options,
    // authentication; a fragment header means a fragment.
    if src.is_ipv6() {
        for _ in 0..8 {
            let len = match proto {
                0 | 43 | 60 => (usize::from(*rest.get(1).ok_or(Skip::Truncated("IPv6"))?) + 1) * 8,
                51 => (usize::from(*rest.get(1).ok_or(Skip::Truncated("IPv6"))?) + 2) * 4,
                44 => return Err(Skip::Fragment),
                _ => break,
            };
            proto = *rest.first().ok_or(Skip::Truncated("IPv6"))?;
            rest = rest.get(len..).ok_or(Skip::Truncated("IPv6"))?;
        }
    }
    let ports = |what| -> Result<(u16, u16), Skip> {
        Ok((
            be16(rest, 0).ok_or(Skip::Truncated(what))?,
            be16(rest, 2).ok_or(Skip::Truncated(what))?,
        ))
    };
    let (sport, dport, transport, payload) = match proto {
        17 => {
            let (s, d) = ports("UDP")?;
            let len = usize::from(be16(rest, 4).ok_or(Skip::Truncated("UDP"))?);
            let end = len.clamp(8, rest.len().max(8));
            let payload = rest
                .get(8..end.min(rest.len()))
                .ok_or(Skip::Truncated("UDP"))?;
            (s, d, Transport::Udp, payload)
        }
        6 => {
            let (s, d) = ports("TCP")?;
            let offset = usize::from(*rest.get(12).ok_or(Skip::Truncated("TCP"))? >> 4) * 4;
            let flags = *rest.get(13).ok_or(Skip::Truncated("TCP"))?;
            if offset < 20 {
                return Err(Skip::Truncated("TCP"));
            }
            let payload = rest.get(offset..).ok_or(Skip::Truncated("TCP"))?;
            (s, d, Transport::Tcp { flags }, payload)
        }
        other => return Err(Skip::Protocol(other)),
    };
    Ok(Segment {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        transport,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp4(payload: &[u8]) -> Vec<u8> {
        let total = 28 + payload.len();
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            17,
            0,
            0,
        ];
        p.extend_from_slice(&[10, 0, 0, 1, 198, 51, 100, 1]);
        p.extend_from_slice(&5000u16.to_be_bytes());
        p.extend_from_slice(&3478u16.to_be_bytes());
        p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn udp_over_ipv4_on_every_link_type() {
        let ip = udp4(b"stun");
        let mut eth = vec![0; 12];
        eth.extend_from_slice(&[0x81, 0x00, 0, 1, 0x08, 0x00]);
        eth.extend_from_slice(&ip);
        let mut sll = vec![0; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0; 18]);
        sll2.extend_from_slice(&ip);
        let mut null = vec![2, 0, 0, 0];
        null.extend_from_slice(&ip);
        for (lt, frame) in [
            (LINKTYPE_RAW, &ip),
            (LINKTYPE_ETHERNET, &eth),
            (LINKTYPE_LINUX_SLL, &sll),
            (LINKTYPE_LINUX_SLL2, &sll2),
            (LINKTYPE_NULL, &null),
        ] {
            let s = parse_frame(lt, frame).unwrap();
            assert_eq!(s.payload, b"stun", "link type {lt}");
            assert_eq!(s.src, "10.0.0.1:5000".parse().unwrap());
            assert_eq!(s.dst, "198.51.100.1:3478".parse().unwrap());
            assert_eq!(s.transport, Transport::Udp);
        }
    }

    #[test]
    fn ipv6_with_a_hop_by_hop_header() {
        let mut p = vec![0x60, 0, 0, 0, 0, 20, 0, 64];
        p.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        p.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0x13, 0x88, 0x0d, 0x96, 0, 12, 0, 0, b'a', b'b', b'c', b'd']);
        let s = parse_ip(&p).unwrap();
        assert_eq!(s.payload, b"abcd");
        assert_eq!(s.src, "[2001:db8::1]:5000".parse().unwrap());
    }

    #[test]
    fn fragments_other_protocols_and_garbage_are_skipped() {
        let mut frag = udp4(b"x");
        frag[6] = 0x20; // more fragments
        assert_eq!(parse_ip(&frag), Err(Skip::Fragment));
        let mut icmp = udp4(b"x");
        icmp[9] = 1;
        assert_eq!(parse_ip(&icmp), Err(Skip::Protocol(1)));
        assert_eq!(parse_ip(&[0x45, 0, 0]), Err(Skip::Truncated("IPv4")));
        assert_eq!(parse_frame(999, &[]), Err(Skip::LinkType(999)));
        assert_eq!(parse_ip(&[]), Err(Skip::Truncated("IP")));
    }
}
