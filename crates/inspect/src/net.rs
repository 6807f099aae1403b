//! From a captured frame to a UDP datagram or TCP segment. The headers are parsed by the
//! `etherparse` crate, leniently (`LaxSlicedPacket`), so that a packet the capture cut
//! short still gives the part of its payload that was captured: Ethernet II with up to
//! three VLAN tags (802.1Q, 802.1ad, QinQ), Linux cooked capture v1, IPv4 and IPv6 with
//! their extension headers (RFC 8200 §4: hop-by-hop, routing, destination options,
//! fragment, authentication), UDP and TCP. IP fragments are not reassembled: a fragment
//! (RFC 791 §3.2; RFC 8200 §4.5) is skipped, an IPv6 "atomic fragment" (offset 0, no more
//! fragments, RFC 6946) is read as the whole packet it is.
//!
//! Written here: the link types' numbers (LINKTYPE_*, from tcpdump's list) and where the
//! IP packet starts in the link headers etherparse has no type for: the 4-byte address
//! family of BSD and OpenBSD loopback captures, and Linux cooked capture v2 (20 bytes,
//! protocol at offset 0). Linux cooked capture v1 (16 bytes, protocol at offset 14) is
//! read here too although etherparse has `LinuxSllSlice`: it accepts only five ARPHRD
//! hardware types (Ethernet, netlink, IP GRE, radiotap, FRAD) and refuses the rest,
//! among them ARPHRD_LOOPBACK (772), ARPHRD_NONE (tun devices) and PPP, so `tcpdump -i
//! any` would lose every STUN packet sent over loopback or a VPN. The kernel writes the
//! EtherType in the protocol field for IP on all of them
//! (test: `linux_cooked_capture_of_loopback_traffic`).

use std::net::{IpAddr, SocketAddr};

use etherparse::err::{Layer, LenError};
use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

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

/// The transport protocol a captured payload came over (the IP protocol, with the TCP
/// flags): not `floe_stun::Transport`, which is how a state machine sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureTransport {
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
    pub transport: CaptureTransport,
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

/// The header a layer's error is about, in the words `floe decode` prints.
fn header(layer: Layer) -> &'static str {
    match layer {
        Layer::LinuxSllHeader => "Linux cooked",
        Layer::Ethernet2Header | Layer::EtherPayload => "Ethernet",
        Layer::VlanHeader => "VLAN",
        Layer::MacsecHeader | Layer::MacsecPacket => "MACsec",
        Layer::Ipv4Header | Layer::Ipv4Packet | Layer::IpAuthHeader => "IPv4",
        Layer::Ipv6Header
        | Layer::Ipv6Packet
        | Layer::Ipv6ExtHeader
        | Layer::Ipv6HopByHopHeader
        | Layer::Ipv6DestOptionsHeader
        | Layer::Ipv6RouteHeader
        | Layer::Ipv6FragHeader => "IPv6",
        Layer::UdpHeader | Layer::UdpPayload => "UDP",
        Layer::TcpHeader => "TCP",
        _ => "IP",
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn truncated(e: &LenError) -> Skip {
    Skip::Truncated(header(e.layer))
}

/// Cuts the UDP or TCP payload out of a frame of `link_type`.
pub fn parse_frame(link_type: u32, data: &[u8]) -> Result<Segment<'_>, Skip> {
    let packet = match link_type {
        LINKTYPE_RAW | 12 | 14 | LINKTYPE_IPV4 | LINKTYPE_IPV6 => return parse_ip(data),
        // The address family says IPv4 or IPv6, and so does the IP header's version.
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            return parse_ip(data.get(4..).ok_or(Skip::Truncated("loopback"))?)
        }
        LINKTYPE_ETHERNET => LaxSlicedPacket::from_ethernet(data).map_err(|e| truncated(&e))?,
        LINKTYPE_LINUX_SLL => {
            let protocol = be16(data, 14).ok_or(Skip::Truncated("Linux cooked"))?;
            let ip = data.get(16..).ok_or(Skip::Truncated("Linux cooked"))?;
            LaxSlicedPacket::from_ether_type(EtherType(protocol), ip)
        }
        LINKTYPE_LINUX_SLL2 => {
            let protocol = be16(data, 0).ok_or(Skip::Truncated("Linux cooked v2"))?;
            let ip = data.get(20..).ok_or(Skip::Truncated("Linux cooked v2"))?;
            LaxSlicedPacket::from_ether_type(EtherType(protocol), ip)
        }
        other => return Err(Skip::LinkType(other)),
    };
    segment(&packet)
}

/// Parses an IPv4 or IPv6 packet down to its UDP or TCP payload.
pub fn parse_ip(ip: &[u8]) -> Result<Segment<'_>, Skip> {
    use etherparse::err::ip::{HeaderError, LaxHeaderSliceError};
    if ip.is_empty() {
        return Err(Skip::Truncated("IP"));
    }
    let packet = LaxSlicedPacket::from_ip(ip).map_err(|e| match e {
        LaxHeaderSliceError::Len(e) => truncated(&e),
        LaxHeaderSliceError::Content(HeaderError::UnsupportedIpVersion { .. }) => Skip::NotIp,
        LaxHeaderSliceError::Content(HeaderError::Ipv4HeaderLengthSmallerThanHeader { .. }) => {
            Skip::Truncated("IPv4")
        }
    })?;
    segment(&packet)
}

/// The UDP or TCP payload of a packet etherparse has sliced.
fn segment<'a>(packet: &LaxSlicedPacket<'a>) -> Result<Segment<'a>, Skip> {
    let stopped = || match &packet.stop_err {
        Some((_, layer)) => Skip::Truncated(header(*layer)),
        None => Skip::NotIp,
    };
    let (src, dst, payload) = match &packet.net {
        Some(LaxNetSlice::Ipv4(ip)) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.payload(),
        ),
        Some(LaxNetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.payload(),
        ),
        Some(LaxNetSlice::Arp(_)) => return Err(Skip::NotIp),
        None => return Err(stopped()),
    };
    if payload.fragmented {
        return Err(Skip::Fragment);
    }
    let (sport, dport, transport, bytes) = match &packet.transport {
        Some(TransportSlice::Udp(udp)) => (
            udp.source_port(),
            udp.destination_port(),
            CaptureTransport::Udp,
            udp.payload(),
        ),
        Some(TransportSlice::Tcp(tcp)) => {
            // Byte 13 of the TCP header holds CWR..FIN (RFC 9293 §3.1).
            let flags = tcp.header_slice().get(13).copied().unwrap_or(0);
            (
                tcp.source_port(),
                tcp.destination_port(),
                CaptureTransport::Tcp { flags },
                tcp.payload(),
            )
        }
        Some(_) => return Err(Skip::Protocol(payload.ip_number.0)),
        None => {
            return Err(match &packet.stop_err {
                Some((_, layer)) => Skip::Truncated(header(*layer)),
                None => Skip::Protocol(payload.ip_number.0),
            })
        }
    };
    Ok(Segment {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        transport,
        payload: bytes,
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
            assert_eq!(s.transport, CaptureTransport::Udp);
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

    #[test]
    fn linux_cooked_capture_of_loopback_traffic() {
        // `tcpdump -i any` on lo: packet type 0 (to us), ARPHRD_LOOPBACK (772).
        let mut sll = vec![0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&udp4(b"stun"));
        let s = parse_frame(LINKTYPE_LINUX_SLL, &sll).unwrap();
        assert_eq!(s.payload, b"stun");
        // ARPHRD_NONE (a tun device), Linux cooked v2.
        let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 3, 0xFF, 0xFE, 0, 6];
        sll2.extend_from_slice(&[0; 8]);
        sll2.extend_from_slice(&udp4(b"turn"));
        assert_eq!(
            parse_frame(LINKTYPE_LINUX_SLL2, &sll2).unwrap().payload,
            b"turn"
        );
    }

    #[test]
    fn a_capture_cut_short_gives_the_captured_part_of_the_payload() {
        let p = udp4(b"0123456789");
        let s = parse_ip(&p[..p.len() - 4]).unwrap();
        assert_eq!(s.payload, b"012345");
    }

    #[test]
    fn vlan_tags_tcp_flags_and_ipv6_fragments() {
        // Two tags (802.1ad outer, 802.1Q inner) before a TCP SYN over IPv4.
        let mut tcp = udp4(b"");
        tcp.truncate(20);
        tcp[9] = 6;
        tcp[3] = 44;
        tcp.extend_from_slice(&[0x13, 0x88, 0x0d, 0x96, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02]);
        tcp.extend_from_slice(&[0xFF, 0xFF, 0, 0, 0, 0, b'a', b'b', b'c', b'd']);
        let mut eth = vec![0; 12];
        eth.extend_from_slice(&[0x88, 0xa8, 0, 1, 0x81, 0x00, 0, 2, 0x08, 0x00]);
        eth.extend_from_slice(&tcp);
        let s = parse_frame(LINKTYPE_ETHERNET, &eth).unwrap();
        assert_eq!(s.transport, CaptureTransport::Tcp { flags: 0x02 });
        assert_eq!(s.payload, b"abcd");
        // IPv6 with a fragment header that is a real fragment (more fragments).
        let mut p = vec![0x60, 0, 0, 0, 0, 20, 44, 64];
        p.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        p.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 9]);
        p.extend_from_slice(&[0x13, 0x88, 0x0d, 0x96, 0, 12, 0, 0, b'a', b'b', b'c', b'd']);
        assert_eq!(parse_ip(&p), Err(Skip::Fragment));
        // ARP is not IP.
        let mut arp = vec![0; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        assert_eq!(parse_frame(LINKTYPE_ETHERNET, &arp), Err(Skip::NotIp));
    }
}
