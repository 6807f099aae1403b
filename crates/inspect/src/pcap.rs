//! Reading capture files: classic pcap (both byte orders, microsecond and nanosecond
//! timestamps) and pcapng (any number of sections, each with its own byte order and
//! interfaces, each interface with its own link type and if_tsresol; Enhanced, Simple and
//! obsolete Packet blocks; every other block is skipped unread). Formats: classic pcap as
//! in draft-ietf-opsawg-pcap; pcapng as in draft-ietf-opsawg-pcapng.
//!
//! The contents of headers, records and blocks are parsed by the `pcap-parser` crate
//! (rusticata; its nom parsers are fuzzed upstream). floe cuts the stream into records
//! and blocks itself, by their length fields, and that part is written by hand for
//! reasons that were measured against pcap-parser's own streaming readers:
//!
//! - Bounded memory, decided before reading: a record's captured length or a block's
//!   total length is checked against [`MAX_RECORD_LEN`] / [`MAX_BLOCK_LEN`] before a
//!   byte of it is read, so a pcapng block claiming 4 GiB is refused (with that length)
//!   at the cost of its 8-byte header. pcap-parser's readers bound memory too, with a
//!   fixed circular buffer, but report such a block as `BufferTooSmall` only after
//!   filling the buffer, or as `UnexpectedEof` at the end of the input, without its
//!   length.
//! - Streaming from pipes: each record or block is read exactly (`tcpdump -w - | floe
//!   decode` shows every packet as it arrives), and a header cut over two `read`s is
//!   still read whole. pcap-parser's constructors parse the file header from a single
//!   `read`, so a pipe that delivers fewer bytes fails them.
//! - Malformed contents: pcap-parser's streaming parsers report a block whose contents
//!   overrun its own length (an Enhanced Packet Block's captured length, a Name
//!   Resolution record) as "incomplete", so a reader built on them reads on to the end of
//!   its buffer; a block parsed whole here is simply malformed. Blocks floe does not use
//!   are not parsed at all, so their contents cannot stop a capture.
//! - I/O errors stay `io::Error`s (pcap-parser reduces them to `ReadError`).
//!
//! Wrapping pcap-parser's streaming readers to get the same behaviour took more code than
//! these few framing lines. Also by hand, because pcap-parser has nothing for them: the
//! interface table per section, timestamps scaled by if_tsresol (pcap-parser's
//! `build_ts_resolution` refuses every power-of-two resolution), and the obsolete Packet
//! Block (type 2).

use std::fmt;
use std::io::{self, Read};
use std::time::Duration;

use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::{
    parse_block_be, parse_block_le, parse_pcap_frame, parse_pcap_frame_be, parse_pcap_header, Block,
};

/// The largest captured length of one packet floe accepts (the largest snaplen tcpdump
/// uses is 262144).
pub const MAX_RECORD_LEN: usize = 262_144;
/// The largest pcapng block floe reads into memory; larger blocks are refused.
pub const MAX_BLOCK_LEN: usize = MAX_RECORD_LEN + 4096;
/// Interfaces remembered per pcapng section.
const MAX_INTERFACES: usize = 4096;

const PCAP_MICROS: u32 = 0xa1b2_c3d4;
const PCAP_NANOS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;
/// The obsolete Packet Block of pcapng's first drafts.
const PCAPNG_PACKET_BLOCK: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;

/// Whether `head` starts like a classic pcap or a pcapng file.
pub fn is_capture(head: &[u8]) -> bool {
    let Some(&[a, b, c, d]) = head.get(..4) else {
        return false;
    };
    let le = u32::from_le_bytes([a, b, c, d]);
    let be = u32::from_be_bytes([a, b, c, d]);
    [PCAP_MICROS, PCAP_NANOS].contains(&le)
        || [PCAP_MICROS, PCAP_NANOS].contains(&be)
        || be == PCAPNG_SHB
}

/// One captured packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// 1-based packet number, as Wireshark counts.
    pub number: u64,
    /// Timestamp (since the Unix epoch for real captures; virtual time for floe-netsim).
    /// `None` where the file has none (pcapng Simple Packet Block) or it does not fit.
    pub time: Option<Duration>,
    /// The link type (LINKTYPE_* value).
    pub link_type: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
    /// The packet's length on the wire (more than `data.len()` if the capture cut it).
    pub original_len: usize,
}

/// Why a capture file could not be read (further).
#[derive(Debug)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file does not start with a pcap or pcapng magic number.
    BadMagic,
    /// The file ends inside a header, record or block.
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// A record or block claims a length floe refuses (too large, or impossible).
    BadLength {
        /// What claimed it.
        what: &'static str,
        /// The length.
        length: u64,
    },
    /// A pcapng block refers to an interface that was not described.
    UnknownInterface {
        /// The interface id.
        id: u32,
    },
    /// A header or block's contents contradict its length (pcap-parser refused it).
    Malformed {
        /// What was being read.
        what: &'static str,
    },
    /// Reading failed.
    Io(io::Error),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::BadMagic => f.write_str("not a pcap or pcapng file (bad magic number)"),
            CaptureError::Truncated { what } => write!(f, "capture truncated inside {what}"),
            CaptureError::BadLength { what, length } => {
                write!(f, "{what} has an unacceptable length {length}")
            }
            CaptureError::UnknownInterface { id } => {
                write!(f, "packet refers to undescribed interface {id}")
            }
            CaptureError::Malformed { what } => write!(f, "{what} is malformed"),
            CaptureError::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

impl std::error::Error for CaptureError {}

/// How a pcapng interface counts time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interface {
    link_type: u32,
    /// if_tsresol: the unit is base^-exponent seconds.
    base: u8,
    exponent: u8,
}

impl Interface {
    fn new(link_type: u32, if_tsresol: u8) -> Interface {
        let (base, exponent) = if if_tsresol & 0x80 == 0 {
            (10, if_tsresol)
        } else {
            (2, if_tsresol & 0x7F)
        };
        Interface {
            link_type,
            base,
            exponent,
        }
    }
}

#[derive(Debug)]
enum Format {
    Classic {
        big_endian: bool,
        nanos: bool,
        link_type: u32,
    },
    Ng {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// Reads frames one at a time from a pcap or pcapng stream.
#[derive(Debug)]
pub struct CaptureReader<R> {
    r: R,
    format: Format,
    /// The record or block being parsed, reused: it grows to the largest one seen (at
    /// most [`MAX_BLOCK_LEN`]) instead of an allocation per packet.
    buf: Vec<u8>,
    number: u64,
    done: bool,
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` if the input ended before the first byte.
fn fill(r: &mut dyn Read, buf: &mut [u8], what: &'static str) -> Result<bool, CaptureError> {
    let mut have = 0;
    // `get_mut` rather than indexing: a `Read` that breaks its contract (n > len) must
    // not panic the reader.
    while let Some(rest @ [_, ..]) = buf.get_mut(have..) {
        match r.read(rest) {
            Ok(0) if have == 0 => return Ok(false),
            Ok(0) => return Err(CaptureError::Truncated { what }),
            Ok(n) => have = have.saturating_add(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CaptureError::Io(e)),
        }
    }
    Ok(true)
}

fn must_fill(r: &mut dyn Read, buf: &mut [u8], what: &'static str) -> Result<(), CaptureError> {
    if buf.is_empty() || fill(r, buf, what)? {
        Ok(())
    } else {
        Err(CaptureError::Truncated { what })
    }
}

/// Reads bytes onto `buf` until it holds `len` (a length checked by the caller).
fn read_rest(
    r: &mut dyn Read,
    buf: &mut Vec<u8>,
    len: usize,
    what: &'static str,
) -> Result<(), CaptureError> {
    let start = buf.len();
    buf.resize(len, 0);
    must_fill(r, buf.get_mut(start..).unwrap_or_default(), what)
}

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let v: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    })
}

fn u16_at(b: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    let v: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if big_endian {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    })
}

/// `units` of base^-exponent seconds as a duration, if it fits.
fn scaled_time(units: u64, base: u8, exponent: u8) -> Option<Duration> {
    let denominator = u128::from(base).checked_pow(u32::from(exponent))?;
    let nanos = u128::from(units).checked_mul(1_000_000_000)? / denominator;
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Reads into `block` the rest of a pcapng block whose type (4 bytes) was just read: its
/// length is checked before the body is read. A Section Header Block sets `big_endian`
/// from its byte-order magic.
fn ng_block_bytes(
    r: &mut dyn Read,
    block: &mut Vec<u8>,
    typ: [u8; 4],
    big_endian: &mut bool,
) -> Result<(), CaptureError> {
    let shb = u32::from_be_bytes(typ) == PCAPNG_SHB;
    let what = if shb {
        "a section header block"
    } else {
        "a pcapng block"
    };
    block.clear();
    block.extend_from_slice(&typ);
    block.resize(if shb { 12 } else { 8 }, 0);
    must_fill(r, block.get_mut(4..).unwrap_or_default(), what)?;
    if shb {
        *big_endian = match u32_at(block, 8, false) {
            Some(PCAPNG_BOM) => false,
            Some(v) if v.swap_bytes() == PCAPNG_BOM => true,
            _ => return Err(CaptureError::BadMagic),
        };
    }
    let len = u32_at(block, 4, *big_endian).unwrap_or(0) as usize;
    let least = if shb { 28 } else { 12 };
    if len < least || len % 4 != 0 || len > MAX_BLOCK_LEN {
        return Err(CaptureError::BadLength {
            what,
            length: len as u64,
        });
    }
    read_rest(r, block, len, what)
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header (or the first pcapng Section Header Block).
    pub fn new(mut r: R) -> Result<CaptureReader<R>, CaptureError> {
        let mut magic = [0u8; 4];
        if !fill(&mut r, &mut magic, "the file header")? {
            return Err(CaptureError::BadMagic);
        }
        let mut buf = Vec::new();
        let format = if u32::from_be_bytes(magic) == PCAPNG_SHB {
            let mut big_endian = false;
            ng_block_bytes(&mut r, &mut buf, magic, &mut big_endian)?;
            if parse_block_le(&buf).is_err() {
                return Err(CaptureError::Malformed {
                    what: "a section header block",
                });
            }
            Format::Ng {
                big_endian,
                interfaces: Vec::new(),
            }
        } else {
            if !is_capture(&magic) {
                return Err(CaptureError::BadMagic);
            }
            buf.extend_from_slice(&magic);
            read_rest(&mut r, &mut buf, 24, "the file header")?;
            let (_, header) = parse_pcap_header(&buf).map_err(|_| CaptureError::BadMagic)?;
            Format::Classic {
                big_endian: header.is_bigendian(),
                nanos: header.is_nanosecond_precision(),
                // The link type is the low 16 bits; the high bits carry FCS information.
                link_type: u32::try_from(header.network.0 & 0xFFFF).unwrap_or(0),
            }
        };
        Ok(CaptureReader {
            r,
            format,
            buf,
            number: 0,
            done: false,
        })
    }

    /// The next frame, `Ok(None)` at the end of the file. After an error, the reader
    /// returns `Ok(None)`.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let result = match self.format {
            Format::Classic { .. } => self.next_classic(),
            Format::Ng { .. } => self.next_ng(),
        };
        match result {
            Ok(Some(mut frame)) => {
                self.number += 1;
                frame.number = self.number;
                Ok(Some(frame))
            }
            other => {
                self.done = true;
                other
            }
        }
    }

    fn next_classic(&mut self) -> Result<Option<Frame>, CaptureError> {
        let Format::Classic {
            big_endian,
            nanos,
            link_type,
        } = self.format
        else {
            return Ok(None);
        };
        let mut head = [0u8; 16];
        if !fill(&mut self.r, &mut head, "a record header")? {
            return Ok(None);
        }
        let captured = u32_at(&head, 8, big_endian).unwrap_or(0);
        if captured as usize > MAX_RECORD_LEN {
            return Err(CaptureError::BadLength {
                what: "a record",
                length: u64::from(captured),
            });
        }
        self.buf.clear();
        self.buf.extend_from_slice(&head);
        read_rest(
            &mut self.r,
            &mut self.buf,
            16 + captured as usize,
            "a record",
        )?;
        let parse = if big_endian {
            parse_pcap_frame_be
        } else {
            parse_pcap_frame
        };
        let (_, b) = parse(&self.buf).map_err(|_| CaptureError::Malformed { what: "a record" })?;
        let frac = if nanos {
            b.ts_usec
        } else {
            b.ts_usec.saturating_mul(1000)
        };
        Ok(Some(Frame {
            number: 0,
            time: (frac < 1_000_000_000).then(|| Duration::new(u64::from(b.ts_sec), frac)),
            link_type,
            data: b.data.to_vec(),
            original_len: (b.origlen as usize).max(b.data.len()),
        }))
    }

    fn next_ng(&mut self) -> Result<Option<Frame>, CaptureError> {
        loop {
            let Format::Ng {
                big_endian,
                ref mut interfaces,
            } = self.format
            else {
                return Ok(None);
            };
            let mut typ = [0u8; 4];
            if !fill(&mut self.r, &mut typ, "a block header")? {
                return Ok(None);
            }
            let mut order = big_endian;
            ng_block_bytes(&mut self.r, &mut self.buf, typ, &mut order)?;
            let block = &self.buf;
            let typ = u32_at(&typ, 0, order).unwrap_or(0);
            // Name resolution, statistics, custom and other blocks say nothing about the
            // packets themselves: skipped unparsed.
            if ![PCAPNG_SHB, PCAPNG_IDB, PCAPNG_SPB, PCAPNG_EPB].contains(&typ) {
                if typ == PCAPNG_PACKET_BLOCK {
                    let body = block
                        .get(8..block.len().saturating_sub(4))
                        .unwrap_or_default();
                    return packet_block(body, order, interfaces).map(Some);
                }
                continue;
            }
            let parse = if order {
                parse_block_be
            } else {
                parse_block_le
            };
            let frame = match parse(block) {
                Ok((_, Block::SectionHeader(_))) => {
                    self.format = Format::Ng {
                        big_endian: order,
                        interfaces: Vec::new(),
                    };
                    continue;
                }
                Ok((_, block)) => ng_frame(&block, interfaces)?,
                Err(_) => {
                    return Err(CaptureError::Malformed {
                        what: "a pcapng block",
                    })
                }
            };
            if let Some(frame) = frame {
                return Ok(Some(frame));
            }
        }
    }
}

/// What one pcapng block (other than a Section Header) gives: a frame, or a new
/// interface.
fn ng_frame(
    block: &Block<'_>,
    interfaces: &mut Vec<Interface>,
) -> Result<Option<Frame>, CaptureError> {
    match block {
        Block::InterfaceDescription(idb) => {
            if interfaces.len() >= MAX_INTERFACES {
                return Err(CaptureError::BadLength {
                    what: "the interface list",
                    length: interfaces.len() as u64,
                });
            }
            // Link types are 16 bits in an IDB.
            let link_type = u32::try_from(idb.linktype.0 & 0xFFFF).unwrap_or(0);
            interfaces.push(Interface::new(link_type, idb.if_tsresol));
            Ok(None)
        }
        Block::EnhancedPacket(epb) => {
            let iface = *interfaces
                .get(epb.if_id as usize)
                .ok_or(CaptureError::UnknownInterface { id: epb.if_id })?;
            let data = epb.packet_data().to_vec();
            let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            Ok(Some(Frame {
                number: 0,
                time: scaled_time(units, iface.base, iface.exponent),
                link_type: iface.link_type,
                original_len: (epb.origlen as usize).max(data.len()),
                data,
            }))
        }
        Block::SimplePacket(spb) => {
            let iface = *interfaces
                .first()
                .ok_or(CaptureError::UnknownInterface { id: 0 })?;
            let original = spb.origlen as usize;
            // The block holds the packet padded to 32 bits (or cut to the snap length).
            let data = spb.data.get(..original).unwrap_or(spb.data).to_vec();
            Ok(Some(Frame {
                number: 0,
                time: None,
                link_type: iface.link_type,
                original_len: original.max(data.len()),
                data,
            }))
        }
        _ => Ok(None),
    }
}

/// The obsolete Packet Block (pcapng drafts before 2014): interface id (16 bits), drops
/// (16 bits), timestamp (2 × 32 bits), captured length, original length, data.
fn packet_block(
    body: &[u8],
    big_endian: bool,
    interfaces: &[Interface],
) -> Result<Frame, CaptureError> {
    let truncated = CaptureError::Truncated {
        what: "a packet block",
    };
    let (Some(id), Some(high), Some(low), Some(captured), Some(original)) = (
        u16_at(body, 0, big_endian).map(u32::from),
        u32_at(body, 4, big_endian),
        u32_at(body, 8, big_endian),
        u32_at(body, 12, big_endian),
        u32_at(body, 16, big_endian),
    ) else {
        return Err(truncated);
    };
    let iface = *interfaces
        .get(id as usize)
        .ok_or(CaptureError::UnknownInterface { id })?;
    let data = body
        .get(20..)
        .and_then(|d| d.get(..usize::try_from(captured).ok()?))
        .ok_or(truncated)?
        .to_vec();
    let units = (u64::from(high) << 32) | u64::from(low);
    Ok(Frame {
        number: 0,
        time: scaled_time(units, iface.base, iface.exponent),
        link_type: iface.link_type,
        original_len: (original as usize).max(data.len()),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classic(big_endian: bool, nanos: bool, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        f.extend_from_slice(&w32(if nanos { PCAP_NANOS } else { PCAP_MICROS }));
        f.extend_from_slice(&[0, 2, 0, 4]); // version (byte order irrelevant here)
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&w32(65_535));
        f.extend_from_slice(&w32(101));
        for (s, frac, data) in records {
            f.extend_from_slice(&w32(*s));
            f.extend_from_slice(&w32(*frac));
            f.extend_from_slice(&w32(data.len() as u32));
            f.extend_from_slice(&w32(data.len() as u32));
            f.extend_from_slice(data);
        }
        f
    }

    fn all(file: &[u8]) -> Result<Vec<Frame>, CaptureError> {
        let mut r = CaptureReader::new(file)?;
        let mut out = Vec::new();
        while let Some(f) = r.next_frame()? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn classic_pcap_in_both_byte_orders_and_resolutions() {
        for (be, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
            let f = classic(be, nanos, &[(1, 500, b"ab"), (2, 0, b"")]);
            assert!(is_capture(&f));
            let frames = all(&f).unwrap();
            assert_eq!(frames.len(), 2);
            assert_eq!(frames[0].data, b"ab");
            assert_eq!(frames[0].link_type, 101);
            let want = if nanos {
                Duration::new(1, 500)
            } else {
                Duration::new(1, 500_000)
            };
            assert_eq!(frames[0].time, Some(want));
            assert_eq!(frames[1].number, 2);
        }
    }

    #[test]
    fn truncated_and_oversized_records_are_errors_not_panics() {
        let f = classic(false, false, &[(1, 0, b"abcd")]);
        assert!(matches!(
            all(&f[..f.len() - 1]),
            Err(CaptureError::Truncated { .. })
        ));
        let mut f = classic(false, false, &[]);
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&u32::MAX.to_le_bytes());
        f.extend_from_slice(&[0; 4]);
        assert!(matches!(all(&f), Err(CaptureError::BadLength { .. })));
        assert!(matches!(all(b"nope"), Err(CaptureError::BadMagic)));
    }

    fn block(typ: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let len = (body.len() + 12) as u32;
        let mut b = typ.to_le_bytes().to_vec();
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&body);
        b.extend_from_slice(&len.to_le_bytes());
        b
    }

    #[test]
    fn pcapng_with_nanosecond_interface_and_skipped_blocks() {
        let mut shb = PCAPNG_BOM.to_le_bytes().to_vec();
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let mut f = block(PCAPNG_SHB, &shb);
        // IDB: LINKTYPE_RAW, if_tsresol = 9 (nanoseconds).
        let mut idb = vec![101, 0, 0, 0, 0, 0, 0, 0];
        idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        f.extend(block(1, &idb));
        f.extend(block(4, b"name resolution"));
        let mut epb = Vec::new();
        for v in [0u32, 0, 1_500_000_000, 3, 3] {
            epb.extend_from_slice(&v.to_le_bytes());
        }
        epb.extend_from_slice(b"xyz");
        f.extend(block(6, &epb));
        let mut spb = 2u32.to_le_bytes().to_vec();
        spb.extend_from_slice(b"hi");
        f.extend(block(3, &spb));
        assert!(is_capture(&f));
        let frames = all(&f).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].data, b"xyz");
        assert_eq!(frames[0].time, Some(Duration::from_millis(1500)));
        assert_eq!(frames[1].data, b"hi");
        assert_eq!(frames[1].time, None);
    }

    #[test]
    fn pcapng_block_lengths_of_4_gb_are_refused_before_allocating() {
        let mut shb = PCAPNG_BOM.to_le_bytes().to_vec();
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let head = block(PCAPNG_SHB, &shb);
        // A block after the section header, then the section header itself.
        let mut f = head.clone();
        f.extend_from_slice(&6u32.to_le_bytes());
        f.extend_from_slice(&0xFFFF_FFFCu32.to_le_bytes());
        assert!(matches!(
            all(&f),
            Err(CaptureError::BadLength {
                length: 0xFFFF_FFFC,
                ..
            })
        ));
        let mut f = PCAPNG_SHB.to_le_bytes().to_vec();
        f.extend_from_slice(&0xFFFF_FFFCu32.to_le_bytes());
        f.extend_from_slice(&PCAPNG_BOM.to_le_bytes());
        assert!(matches!(all(&f), Err(CaptureError::BadLength { .. })));
    }

    #[test]
    fn pcapng_packet_on_an_undescribed_interface_is_an_error() {
        let mut shb = PCAPNG_BOM.to_le_bytes().to_vec();
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let mut f = block(PCAPNG_SHB, &shb);
        f.extend(block(6, &[0; 20]));
        assert!(matches!(
            all(&f),
            Err(CaptureError::UnknownInterface { id: 0 })
        ));
    }

    #[test]
    fn time_resolution_is_scaled_without_overflow() {
        assert_eq!(scaled_time(1, 10, 6), Some(Duration::from_micros(1)));
        assert_eq!(scaled_time(1024, 2, 10), Some(Duration::from_secs(1)));
        assert_eq!(scaled_time(5, 10, 200), None);
    }

    fn shb(big_endian: bool) -> Vec<u8> {
        let w32 = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut body = w32(PCAPNG_BOM).to_vec();
        body.extend_from_slice(&if big_endian {
            [0, 1, 0, 0]
        } else {
            [1, 0, 0, 0]
        });
        body.extend_from_slice(&(-1i64).to_le_bytes());
        block_in(big_endian, PCAPNG_SHB, &body)
    }

    fn block_in(big_endian: bool, typ: u32, body: &[u8]) -> Vec<u8> {
        let w32 = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let len = (body.len() + 12) as u32;
        let mut b = w32(typ).to_vec();
        b.extend_from_slice(&w32(len));
        b.extend_from_slice(&body);
        b.extend_from_slice(&w32(len));
        b
    }

    #[test]
    fn pcapng_sections_with_their_own_byte_order_interfaces_and_link_types() {
        let mut f = shb(false);
        // Two interfaces: Ethernet in microseconds, raw IP in 2^-10 s.
        f.extend(block(1, &[1, 0, 0, 0, 0, 0, 0, 0]));
        f.extend(block(
            1,
            &[
                101, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 0, 0x8A, 0, 0, 0, 0, 0, 0, 0,
            ],
        ));
        for (iface, ts) in [(1u32, 2048u32), (0, 5)] {
            let mut epb = Vec::new();
            for v in [iface, 0, ts, 2, 2] {
                epb.extend_from_slice(&v.to_le_bytes());
            }
            epb.extend_from_slice(b"ab");
            f.extend(block(6, &epb));
        }
        // A big-endian section: its interface table starts empty; an obsolete Packet Block.
        f.extend(shb(true));
        f.extend(block_in(true, 1, &[0, 113, 0, 0, 0, 0, 0, 0]));
        let mut pb = vec![0, 0, 0, 0];
        for v in [0u32, 7, 3, 9] {
            pb.extend_from_slice(&v.to_be_bytes());
        }
        pb.extend_from_slice(b"cde");
        f.extend(block_in(true, PCAPNG_PACKET_BLOCK, &pb));
        let frames = all(&f).unwrap();
        let summary: Vec<_> = frames
            .iter()
            .map(|f| {
                (
                    f.number,
                    f.link_type,
                    f.time,
                    f.data.as_slice(),
                    f.original_len,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, 101, Some(Duration::from_secs(2)), &b"ab"[..], 2),
                (2, 1, Some(Duration::from_micros(5)), &b"ab"[..], 2),
                (3, 113, Some(Duration::from_micros(7)), &b"cde"[..], 9),
            ]
        );
        // In the new section, interface 1 is not described.
        let mut g = f.clone();
        let mut epb = Vec::new();
        for v in [1u32, 0, 0, 1, 1] {
            epb.extend_from_slice(&v.to_be_bytes());
        }
        epb.push(0);
        g.extend(block_in(true, 6, &epb));
        let mut r = CaptureReader::new(&g[..]).unwrap();
        for _ in 0..3 {
            r.next_frame().unwrap().unwrap();
        }
        assert!(matches!(
            r.next_frame(),
            Err(CaptureError::UnknownInterface { id: 1 })
        ));
    }

    /// A reader that hands out one byte per read, as a slow pipe might.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn short_reads_give_the_same_frames() {
        let c = classic(true, false, &[(1, 2, b"abc"), (3, 4, &[9; 300])]);
        let mut shb = PCAPNG_BOM.to_le_bytes().to_vec();
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        shb.extend_from_slice(&[1, 0, 4, 0, b'o', b'p', b't', b's', 0, 0, 0, 0]);
        let mut n = block(PCAPNG_SHB, &shb);
        n.extend(block(1, &[1, 0, 0, 0, 0, 0, 0, 0]));
        let mut spb = 5u32.to_le_bytes().to_vec();
        spb.extend_from_slice(b"hello");
        n.extend(block(3, &spb));
        for file in [c, n] {
            let mut r = CaptureReader::new(Trickle(&file)).unwrap();
            let mut trickled = Vec::new();
            while let Some(f) = r.next_frame().unwrap() {
                trickled.push(f);
            }
            assert_eq!(trickled, all(&file).unwrap());
            assert!(!trickled.is_empty());
        }
    }

    #[test]
    fn a_4_gb_block_inside_a_longer_stream_is_refused_with_its_length() {
        let mut shb = PCAPNG_BOM.to_le_bytes().to_vec();
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let mut f = block(PCAPNG_SHB, &shb);
        f.extend_from_slice(&6u32.to_le_bytes());
        f.extend_from_slice(&0xFFFF_FFFCu32.to_le_bytes());
        // More input follows: the length alone is refused, nothing of it is read.
        f.resize(f.len() + 2 * MAX_BLOCK_LEN, 0);
        assert!(matches!(
            all(&f),
            Err(CaptureError::BadLength {
                length: 0xFFFF_FFFC,
                ..
            })
        ));
        // A classic record of 4 GiB, likewise.
        let mut c = classic(false, false, &[]);
        c.extend_from_slice(&[0; 8]);
        c.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        c.extend_from_slice(&[0; 4]);
        c.resize(c.len() + 2 * MAX_BLOCK_LEN, 0);
        assert!(matches!(
            all(&c),
            Err(CaptureError::BadLength {
                length: 0xFFFF_FFF0,
                ..
            })
        ));
    }

    #[test]
    fn a_packet_block_whose_data_runs_past_its_length_is_malformed() {
        let mut shb = PCAPNG_BOM.to_le_bytes().to_vec();
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let mut f = block(PCAPNG_SHB, &shb);
        f.extend(block(1, &[1, 0, 0, 0, 0, 0, 0, 0]));
        let mut epb = Vec::new();
        for v in [0u32, 0, 0, 1000, 1000] {
            epb.extend_from_slice(&v.to_le_bytes());
        }
        f.extend(block(6, &epb));
        f.extend(block(6, &epb));
        assert!(matches!(all(&f), Err(CaptureError::Malformed { .. })));
    }

    #[test]
    fn read_errors_are_reported_as_io_errors() {
        struct Failing<'a>(&'a [u8]);
        impl Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = self.0.len().min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let f = classic(false, false, &[(1, 0, b"abcd")]);
        let mut r = CaptureReader::new(Failing(&f)).unwrap();
        assert_eq!(r.next_frame().unwrap().unwrap().data, b"abcd");
        match r.next_frame() {
            Err(CaptureError::Io(e)) => assert_eq!(e.to_string(), "disk on fire"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(r.next_frame(), Ok(None)));
    }
}
