//! Packet capture: classic pcap files with synthesized IPv4/IPv6 and UDP/TCP headers.
//!
//! The simulator captures a packet each time it goes onto a link, with the addresses it
//! has on that link (so a packet crossing a NAT appears once with its private and once with
//! its public source). Files use LINKTYPE_RAW (101): each record is an IP packet, which
//! Wireshark decodes down to STUN/TURN on their usual ports (or with "Decode As"). Record
//! timestamps are virtual time since the start of the run. Checksums (IPv4 header, UDP, TCP)
//! are computed, so Wireshark shows no checksum errors.
//!
//! [`parse`] reads such a file back, for tests that check what went over the wire.
//!
//! ```
//! use std::time::Duration;
//! use floe_netsim::nodes::{Peer, UdpEcho};
//! use floe_netsim::{pcap, Capture, NatConfig, Simulator};
//!
//! let mut sim = Simulator::new(1);
//! sim.enable_pcap(Capture::All);
//! let internet = sim.internet();
//! sim.add_host(internet, "198.51.100.1".parse().unwrap(), UdpEcho::new());
//! let (_, lan) = sim.add_nat(internet, "203.0.113.1".parse().unwrap(), NatConfig::full_cone());
//! let host = sim.add_host(lan, "10.0.0.2".parse().unwrap(), Peer::new());
//! sim.node_mut::<Peer>(host).send(
//!     "10.0.0.2:5000".parse().unwrap(),
//!     "198.51.100.1:3478".parse().unwrap(),
//!     &b"hi"[..],
//! );
//! sim.run_for(Duration::from_millis(50));
//!
//! // sim.write_pcap("run.pcap") for Wireshark; here, read it back.
//! let records = pcap::parse(&sim.pcap_bytes()).unwrap();
//! assert_eq!(records.len(), 6); // 3 links out, 3 links back
//! assert_eq!(records[0].src, "10.0.0.2:5000".parse().unwrap());
//! assert_eq!(records[1].src, "203.0.113.1:5000".parse().unwrap());
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::packet::{Packet, Protocol, TcpFlags};
use crate::topology::LinkId;

/// LINKTYPE_RAW: records start with an IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u32 = 101;
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const SNAPLEN: u32 = 65_535;

/// Which links the simulator captures.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capture {
    /// Every link (every hop of every packet).
    All,
    /// Only these links (e.g. one host's interface, like tcpdump on that host).
    Links(Vec<LinkId>),
}

/// Writes a classic pcap file into memory.
#[derive(Clone)]
pub struct PcapWriter {
    buf: Vec<u8>,
    records: usize,
}

impl fmt::Debug for PcapWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapWriter")
            .field("bytes", &self.buf.len())
            .field("records", &self.records)
            .finish()
    }
}

impl Default for PcapWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl PcapWriter {
    /// An empty capture (just the file header).
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(&MAGIC_MICROS.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        buf.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        buf.extend_from_slice(&SNAPLEN.to_le_bytes());
        buf.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        Self { buf, records: 0 }
    }

    /// Number of records written.
    pub fn records(&self) -> usize {
        self.records
    }

    /// The file so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The file.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Appends a UDP datagram.
    pub fn write_udp(&mut self, time: Duration, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        self.write(time, src, dst, SegmentHeader::Udp, payload, 0);
    }

    pub(crate) fn write_packet(&mut self, time: Duration, packet: &Packet) {
        let transport = match (packet.protocol, packet.segment.as_deref()) {
            (Protocol::Tcp, Some(segment)) => SegmentHeader::Tcp {
                flags: segment.flags,
                seq: segment.seq,
                ack: segment.ack,
            },
            _ => SegmentHeader::Udp,
        };
        let id = packet.id as u16;
        self.write(time, packet.src, packet.dst, transport, &packet.payload, id);
    }

    fn write(
        &mut self,
        time: Duration,
        src: SocketAddr,
        dst: SocketAddr,
        transport: SegmentHeader,
        payload: &[u8],
        ip_id: u16,
    ) {
        let transport_len = match transport {
            SegmentHeader::Udp => 8,
            SegmentHeader::Tcp { .. } => 20,
        } + payload.len();
        let ip_len = if src.is_ipv4() { 20 } else { 40 };
        let total = ip_len + transport_len;
        let record_start = self.buf.len();
        let secs = u32::try_from(time.as_secs()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&secs.to_le_bytes());
        self.buf
            .extend_from_slice(&time.subsec_micros().to_le_bytes());
        let captured = total.min(SNAPLEN as usize) as u32;
        self.buf.extend_from_slice(&captured.to_le_bytes());
        self.buf.extend_from_slice(&(total as u32).to_le_bytes());
        let packet_start = self.buf.len();
        let proto = match transport {
            SegmentHeader::Udp => 17u8,
            SegmentHeader::Tcp { .. } => 6u8,
        };
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut header = [0u8; 20];
                header[0] = 0x45;
                header[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                header[4..6].copy_from_slice(&ip_id.to_be_bytes());
                header[6] = 0x40; // don't fragment
                header[8] = 64;
                header[9] = proto;
                header[12..16].copy_from_slice(&s.octets());
                header[16..20].copy_from_slice(&d.octets());
                let sum = checksum(&[&header]);
                header[10..12].copy_from_slice(&sum.to_be_bytes());
                self.buf.extend_from_slice(&header);
            }
            (s, d) => {
                let mut header = [0u8; 40];
                header[0] = 0x60;
                header[4..6].copy_from_slice(&(transport_len as u16).to_be_bytes());
                header[6] = proto;
                header[7] = 64;
                header[8..24].copy_from_slice(&v6_octets(s));
                header[24..40].copy_from_slice(&v6_octets(d));
                self.buf.extend_from_slice(&header);
            }
        }
        let transport_start = self.buf.len();
        self.buf.extend_from_slice(&src.port().to_be_bytes());
        self.buf.extend_from_slice(&dst.port().to_be_bytes());
        let checksum_at = match transport {
            SegmentHeader::Udp => {
                self.buf
                    .extend_from_slice(&(transport_len as u16).to_be_bytes());
                self.buf.extend_from_slice(&[0, 0]);
                transport_start + 6
            }
            SegmentHeader::Tcp { flags, seq, ack } => {
                self.buf.extend_from_slice(&seq.to_be_bytes());
                self.buf.extend_from_slice(&ack.to_be_bytes());
                self.buf.push(5 << 4);
                self.buf.push(flags.bits(!payload.is_empty()));
                self.buf.extend_from_slice(&65_535u16.to_be_bytes());
                self.buf.extend_from_slice(&[0, 0, 0, 0]);
                transport_start + 16
            }
        };
        self.buf.extend_from_slice(payload);
        let pseudo = pseudo_header(src.ip(), dst.ip(), proto, transport_len);
        let mut sum = checksum(&[&pseudo, &self.buf[transport_start..]]);
        if sum == 0 && proto == 17 {
            sum = 0xffff; // RFC 768: a computed zero is sent as all ones
        }
        self.buf[checksum_at..checksum_at + 2].copy_from_slice(&sum.to_be_bytes());
        self.buf.truncate(packet_start + captured as usize);
        debug_assert!(self.buf.len() > record_start);
        self.records += 1;
    }
}

#[derive(Clone, Copy)]
/// The layer-4 header the capture writes for one packet.
enum SegmentHeader {
    Udp,
    Tcp { flags: TcpFlags, seq: u32, ack: u32 },
}

fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
    }
}

fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.push(0);
            p.push(proto);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (s, d) => {
            p.extend_from_slice(&v6_octets(s));
            p.extend_from_slice(&v6_octets(d));
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
        }
    }
    p
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &byte in *part {
            match odd.take() {
                Some(high) => sum += u32::from(u16::from_be_bytes([high, byte])),
                None => odd = Some(byte),
            }
        }
    }
    if let Some(high) = odd {
        sum += u32::from(u16::from_be_bytes([high, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A packet read back from a pcap file by [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PcapRecord {
    /// The record's timestamp (virtual time, microsecond resolution).
    pub time: Duration,
    /// UDP or TCP.
    pub protocol: Protocol,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// The TCP flag byte (`None` for UDP).
    pub tcp_flags: Option<u8>,
    /// The transport payload.
    pub payload: Vec<u8>,
    /// Whether the IPv4 header checksum (if any) and the UDP/TCP checksum verify.
    pub checksums_ok: bool,
}

/// Why a pcap file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PcapError {
    /// The file header is missing or not a little-endian microsecond pcap of LINKTYPE_RAW.
    BadHeader,
    /// A record is cut short.
    Truncated,
    /// A record is not an IPv4/IPv6 packet carrying UDP or TCP.
    BadPacket(usize),
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcapError::BadHeader => f.write_str("not a LINKTYPE_RAW pcap file"),
            PcapError::Truncated => f.write_str("pcap record truncated"),
            PcapError::BadPacket(i) => write!(f, "record {i} is not IP/UDP or IP/TCP"),
        }
    }
}

impl std::error::Error for PcapError {}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a pcap file as written by [`PcapWriter`] (classic, little-endian, LINKTYPE_RAW).
pub fn parse(file: &[u8]) -> Result<Vec<PcapRecord>, PcapError> {
    if le32(file, 0) != Some(MAGIC_MICROS) || le32(file, 20) != Some(LINKTYPE_RAW) {
        return Err(PcapError::BadHeader);
    }
    let mut records = Vec::new();
    let mut at = 24;
    while at < file.len() {
        let (Some(secs), Some(micros), Some(len)) =
            (le32(file, at), le32(file, at + 4), le32(file, at + 8))
        else {
            return Err(PcapError::Truncated);
        };
        let start = at + 16;
        let data = file
            .get(start..start + len as usize)
            .ok_or(PcapError::Truncated)?;
        let time = Duration::from_secs(u64::from(secs)) + Duration::from_micros(u64::from(micros));
        records.push(parse_ip(time, data).ok_or(PcapError::BadPacket(records.len()))?);
        at = start + len as usize;
    }
    Ok(records)
}

fn parse_ip(time: Duration, data: &[u8]) -> Option<PcapRecord> {
    let version = data.first()? >> 4;
    let (src, dst, proto, header_len, ip_ok) = match version {
        4 => {
            let ihl = usize::from(data[0] & 0x0f) * 4;
            let src: [u8; 4] = data.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = data.get(16..20)?.try_into().ok()?;
            let ok = checksum(&[data.get(..ihl)?]) == 0;
            (IpAddr::from(src), IpAddr::from(dst), *data.get(9)?, ihl, ok)
        }
        6 => {
            let src: [u8; 16] = data.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = data.get(24..40)?.try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                *data.get(6)?,
                40,
                true,
            )
        }
        _ => return None,
    };
    let segment = data.get(header_len..)?;
    let sport = be16(segment, 0)?;
    let dport = be16(segment, 2)?;
    let (protocol, payload_at, tcp_flags) = match proto {
        17 => (Protocol::Udp, 8, None),
        6 => (
            Protocol::Tcp,
            usize::from(segment.get(12)? >> 4) * 4,
            Some(*segment.get(13)?),
        ),
        _ => return None,
    };
    let pseudo = pseudo_header(src, dst, proto, segment.len());
    let transport_ok = checksum(&[&pseudo, segment]) == 0;
    Some(PcapRecord {
        time,
        protocol,
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        tcp_flags,
        payload: segment.get(payload_at..)?.to_vec(),
        checksums_ok: ip_ok && transport_ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_over_ipv4_round_trips_with_valid_checksums() {
        let mut w = PcapWriter::new();
        let src: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let dst: SocketAddr = "203.0.113.9:3478".parse().unwrap();
        w.write_udp(Duration::from_micros(1_500_001), src, dst, b"hello");
        let records = parse(w.bytes()).unwrap();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!((r.src, r.dst, r.protocol), (src, dst, Protocol::Udp));
        assert_eq!(r.payload, b"hello");
        assert_eq!(r.time, Duration::from_micros(1_500_001));
        assert!(r.checksums_ok);
    }

    #[test]
    fn udp_over_ipv6_round_trips_with_valid_checksums() {
        let mut w = PcapWriter::new();
        let src: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        let dst: SocketAddr = "[2001:db8::2]:3478".parse().unwrap();
        w.write_udp(Duration::ZERO, src, dst, b"odd");
        let r = &parse(w.bytes()).unwrap()[0];
        assert_eq!((r.src, r.dst), (src, dst));
        assert!(r.checksums_ok);
    }

    #[test]
    fn checksum_matches_rfc_1071_example() {
        // RFC 1071 §3: the sum of these words is 0xddf2, so the checksum is !0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&[&data]), !0xddf2);
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(parse(b"nope"), Err(PcapError::BadHeader));
    }
}
