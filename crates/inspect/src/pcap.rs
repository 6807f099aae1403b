//! Reading capture files: classic pcap (both byte orders, microsecond and nanosecond
//! timestamps) and pcapng (any number of sections, each with its own byte order and
//! interfaces, each interface with its own link type and if_tsresol; Enhanced, Simple and
//! obsolete Packet blocks; every other block is skipped). Formats: classic pcap as in
//! draft-ietf-opsawg-pcap; pcapng as in draft-ietf-opsawg-pcapng.
//!
//! The blocks are parsed by the `pcap-parser` crate (rusticata; its streaming readers and
//! nom parsers are fuzzed upstream). It reads through one circular buffer of a fixed
//! size ([`MAX_BLOCK_LEN`] + 1 bytes), allocated once: a block or record whose length does
//! not fit is refused with [`CaptureError::BadLength`] (pcap-parser's `BufferTooSmall`)
//! before anything of that size is allocated, so a pcapng block claiming 4 GiB costs
//! nothing. floe adds what pcap-parser leaves to its caller, by hand, each a few lines:
//!
//! - telling pcap from pcapng by the magic number ([`is_capture`]), and reading the
//!   file header or first Section Header Block whole before handing the stream over
//!   (pcap-parser's constructors parse it from a single `read`, which a pipe may cut
//!   short);
//! - the interface table per section, and timestamps scaled by if_tsresol (pcap-parser's
//!   `build_ts_resolution` refuses every power-of-two resolution, so [`scaled_time`]
//!   decodes it);
//! - the obsolete Packet Block (type 2), which pcap-parser hands over as an unknown
//!   block;
//! - the limit of [`MAX_RECORD_LEN`] on one classic record, and the claimed length in
//!   a refusal (read from the block header in the buffer).

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};
use std::rc::Rc;
use std::time::Duration;

use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{Block, LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

/// The largest captured length of one packet floe accepts (the largest snaplen tcpdump
/// uses is 262144).
pub const MAX_RECORD_LEN: usize = 262_144;
/// The largest pcapng block (or classic record with its header) floe reads into memory;
/// larger ones are refused.
pub const MAX_BLOCK_LEN: usize = MAX_RECORD_LEN + 4096;
/// The reader's buffer: pcap-parser reports `BufferTooSmall` once a block needs as many
/// bytes as the buffer holds, so one more byte lets a block of [`MAX_BLOCK_LEN`] through.
const BUFFER_LEN: usize = MAX_BLOCK_LEN + 1;
/// Interfaces remembered per pcapng section.
const MAX_INTERFACES: usize = 4096;

const PCAP_MICROS: u32 = 0xa1b2_c3d4;
const PCAP_NANOS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
/// The obsolete Packet Block of pcapng's first drafts.
const PCAPNG_PACKET_BLOCK: u32 = 2;

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
    /// A block's contents contradict its header (pcap-parser refused it).
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

/// A `Read` that keeps the last I/O error where floe can find it: pcap-parser owns the
/// reader and reduces its errors to `ReadError`.
struct Keep<R> {
    r: R,
    error: Rc<Cell<Option<io::Error>>>,
}

impl<R: Read> Read for Keep<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.r.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let copy = io::Error::new(e.kind(), e.to_string());
                    self.error.set(Some(e));
                    return Err(copy);
                }
                // A `Read` that breaks its contract (n > len) must not confuse the buffer.
                Ok(n) => return Ok(n.min(buf.len())),
            }
        }
    }
}

/// The header bytes floe read itself, then the rest of the stream.
type Stream<R> = io::Chain<io::Cursor<Vec<u8>>, Keep<R>>;

enum Inner<R: Read> {
    Classic {
        reader: Box<LegacyPcapReader<Stream<R>>>,
        big_endian: bool,
        nanos: bool,
        link_type: u32,
    },
    Ng {
        reader: Box<PcapNGReader<Stream<R>>>,
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// Reads frames one at a time from a pcap or pcapng stream.
pub struct CaptureReader<R: Read> {
    inner: Inner<R>,
    /// The last I/O error of the stream.
    io_error: Rc<Cell<Option<io::Error>>>,
    number: u64,
    done: bool,
}

impl<R: Read> fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = match self.inner {
            Inner::Classic { .. } => "pcap",
            Inner::Ng { .. } => "pcapng",
        };
        f.debug_struct("CaptureReader")
            .field("format", &format)
            .field("number", &self.number)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
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

/// Reads the rest of a Section Header Block whose type was just read (whole, so that
/// pcap-parser's constructor finds it in its first read); returns its bytes.
fn section_header(r: &mut dyn Read) -> Result<Vec<u8>, CaptureError> {
    let mut head = PCAPNG_SHB.to_be_bytes().to_vec();
    head.resize(12, 0);
    must_fill(
        r,
        head.get_mut(4..).unwrap_or_default(),
        "a section header block",
    )?;
    let big_endian = match u32_at(&head, 8, false) {
        Some(PCAPNG_BOM) => false,
        Some(v) if v.swap_bytes() == PCAPNG_BOM => true,
        _ => return Err(CaptureError::BadMagic),
    };
    let len = u32_at(&head, 4, big_endian).unwrap_or(0) as usize;
    if len < 28 || len % 4 != 0 || len > MAX_BLOCK_LEN {
        return Err(CaptureError::BadLength {
            what: "a section header block",
            length: len as u64,
        });
    }
    head.resize(len, 0);
    must_fill(
        r,
        head.get_mut(12..).unwrap_or_default(),
        "a section header block",
    )?;
    Ok(head)
}

/// Refills the buffer after an incomplete parse.
fn refill(reader: &mut dyn PcapReaderIterator, what: &'static str) -> Result<(), CaptureError> {
    let before = reader.data().len();
    if reader.refill().is_err() {
        // Never reached: the caller turns `ReadError` into the kept I/O error first.
        return Err(CaptureError::Truncated { what });
    }
    if reader.data().len() == before && !reader.reader_exhausted() {
        // No room left and no progress: the block cannot fit in the buffer.
        return Err(CaptureError::BadLength {
            what,
            length: BUFFER_LEN as u64,
        });
    }
    Ok(())
}

/// A pcap-parser error, without the borrow of the buffer it carries.
enum Failure {
    Eof,
    Incomplete,
    Read,
    Other(CaptureError),
}

fn failure(e: &PcapError<&[u8]>, what: &'static str) -> Failure {
    match e {
        PcapError::Eof => Failure::Eof,
        PcapError::Incomplete(_) => Failure::Incomplete,
        PcapError::ReadError => Failure::Read,
        PcapError::UnexpectedEof => Failure::Other(CaptureError::Truncated { what }),
        // `BufferTooSmall` among them: the caller looks at the length the block claims.
        _ => Failure::Other(CaptureError::Malformed { what }),
    }
}

/// A refusal (`BufferTooSmall`, or `UnexpectedEof` at the end of the input) given the
/// length the block's header claims (a classic record's captured length, a pcapng
/// block's total length), read from the buffer: over the limit it is
/// [`CaptureError::BadLength`], as the length check before reading always said.
fn refusal(
    data: &[u8],
    big_endian: bool,
    what: &'static str,
    otherwise: CaptureError,
) -> CaptureError {
    let (claimed, limit) = if what == RECORD {
        (u32_at(data, 8, big_endian), MAX_RECORD_LEN)
    } else {
        (u32_at(data, 4, big_endian), MAX_BLOCK_LEN)
    };
    match claimed {
        Some(length) if length as usize > limit => CaptureError::BadLength {
            what,
            length: u64::from(length),
        },
        _ => otherwise,
    }
}

/// The length of a whole pcapng block at the start of `data` whose type floe has no use
/// for, so that it can be skipped when pcap-parser refuses its contents (a Name
/// Resolution Block with a bad record, say): the blocks floe reads are the ones it judges.
fn skippable(data: &[u8], big_endian: bool) -> Option<usize> {
    let typ = u32_at(data, 0, big_endian)?;
    let len = u32_at(data, 4, big_endian)? as usize;
    let used = [PCAPNG_SHB, 1, 3, 6, PCAPNG_PACKET_BLOCK];
    (!used.contains(&typ) && len >= 12 && len % 4 == 0 && len <= data.len()).then_some(len)
}

/// Whether the buffer holds the whole pcapng block it starts with, by the block's length.
fn whole_block(data: &[u8], big_endian: bool) -> bool {
    u32_at(data, 4, big_endian).is_some_and(|len| len >= 12 && len as usize <= data.len())
}

const RECORD: &str = "a record";
const BLOCK: &str = "a pcapng block";

impl<R: Read> CaptureReader<R> {
    /// Reads the file header (or the first pcapng Section Header Block).
    pub fn new(r: R) -> Result<CaptureReader<R>, CaptureError> {
        let io_error = Rc::new(Cell::new(None));
        let mut r = Keep {
            r,
            error: Rc::clone(&io_error),
        };
        let mut magic = [0u8; 4];
        if !fill(&mut r, &mut magic, "the file header")? {
            return Err(CaptureError::BadMagic);
        }
        let le = u32::from_le_bytes(magic);
        let be = u32::from_be_bytes(magic);
        // The header is already whole in the first read, so pcap-parser cannot fail here
        // but for a header it finds malformed.
        let refused = |_| CaptureError::Malformed {
            what: "the file header",
        };
        let inner = if be == PCAPNG_SHB {
            let head = section_header(&mut r)?;
            let big_endian = u32_at(&head, 8, false) != Some(PCAPNG_BOM);
            let reader =
                PcapNGReader::new(BUFFER_LEN, io::Cursor::new(head).chain(r)).map_err(refused)?;
            Inner::Ng {
                reader: Box::new(reader),
                big_endian,
                interfaces: Vec::new(),
            }
        } else {
            let (big_endian, nanos) = match (le, be) {
                (PCAP_MICROS, _) => (false, false),
                (PCAP_NANOS, _) => (false, true),
                (_, PCAP_MICROS) => (true, false),
                (_, PCAP_NANOS) => (true, true),
                _ => return Err(CaptureError::BadMagic),
            };
            let mut head = magic.to_vec();
            head.resize(24, 0);
            must_fill(
                &mut r,
                head.get_mut(4..).unwrap_or_default(),
                "the file header",
            )?;
            // The link type is the low 16 bits; the high bits carry FCS information.
            let link_type = u32_at(&head, 20, big_endian).unwrap_or(0) & 0xFFFF;
            let reader = LegacyPcapReader::new(BUFFER_LEN, io::Cursor::new(head).chain(r))
                .map_err(refused)?;
            Inner::Classic {
                reader: Box::new(reader),
                big_endian,
                nanos,
                link_type,
            }
        };
        Ok(CaptureReader {
            inner,
            io_error,
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
        let result = match self.inner {
            Inner::Classic { .. } => self.next_classic(),
            Inner::Ng { .. } => self.next_ng(),
        };
        match result {
            Ok(Some(mut frame)) => {
                self.number += 1;
                frame.number = self.number;
                Ok(Some(frame))
            }
            Err(CaptureError::Truncated { .. }) if self.io_error_pending() => {
                self.done = true;
                Err(self.io_error())
            }
            other => {
                self.done = true;
                other
            }
        }
    }

    fn io_error_pending(&self) -> bool {
        let e = self.io_error.take();
        let pending = e.is_some();
        self.io_error.set(e);
        pending
    }

    fn io_error(&self) -> CaptureError {
        match self.io_error.take() {
            Some(e) => CaptureError::Io(e),
            None => CaptureError::Io(io::Error::other("read failed")),
        }
    }

    fn next_classic(&mut self) -> Result<Option<Frame>, CaptureError> {
        let Inner::Classic {
            reader,
            big_endian,
            nanos,
            link_type,
        } = &mut self.inner
        else {
            return Ok(None);
        };
        loop {
            let failed = match reader.next() {
                Ok((offset, PcapBlockOwned::Legacy(b))) => {
                    let frame = classic_frame(&b, *nanos, *link_type);
                    reader.consume(offset);
                    return frame.map(Some);
                }
                Ok((offset, _)) => {
                    // The file header, already read.
                    reader.consume(offset);
                    continue;
                }
                Err(e) => failure(&e, RECORD),
            };
            match failed {
                Failure::Eof => return Ok(None),
                Failure::Incomplete => refill(reader.as_mut(), RECORD)?,
                Failure::Read => return Err(self.io_error()),
                Failure::Other(e) => return Err(refusal(reader.data(), *big_endian, RECORD, e)),
            }
        }
    }

    fn next_ng(&mut self) -> Result<Option<Frame>, CaptureError> {
        let Inner::Ng {
            reader,
            big_endian,
            interfaces,
        } = &mut self.inner
        else {
            return Ok(None);
        };
        loop {
            let failed = match reader.next() {
                Ok((offset, PcapBlockOwned::NG(block))) => {
                    let frame = ng_block(&block, big_endian, interfaces);
                    reader.consume(offset);
                    match frame? {
                        Some(frame) => return Ok(Some(frame)),
                        None => continue,
                    }
                }
                Ok((offset, _)) => {
                    reader.consume(offset);
                    continue;
                }
                Err(e) => failure(&e, BLOCK),
            };
            match failed {
                Failure::Eof => return Ok(None),
                Failure::Incomplete => {
                    // pcap-parser's streaming parsers also say "incomplete" when a block's
                    // contents run past its own length (an Enhanced Packet Block's captured
                    // length, a Name Resolution record): once the whole block is in the
                    // buffer, more input cannot help.
                    if whole_block(reader.data(), *big_endian) {
                        if let Some(len) = skippable(reader.data(), *big_endian) {
                            reader.consume(len);
                            continue;
                        }
                        return Err(CaptureError::Malformed { what: BLOCK });
                    }
                    refill(reader.as_mut(), BLOCK)?;
                }
                Failure::Read => return Err(self.io_error()),
                Failure::Other(e) => {
                    if let Some(len) = skippable(reader.data(), *big_endian) {
                        reader.consume(len);
                        continue;
                    }
                    return Err(refusal(reader.data(), *big_endian, BLOCK, e));
                }
            }
        }
    }
}

/// A classic pcap record as a frame.
fn classic_frame(
    b: &pcap_parser::LegacyPcapBlock<'_>,
    nanos: bool,
    link_type: u32,
) -> Result<Frame, CaptureError> {
    let captured = b.caplen as usize;
    if captured > MAX_RECORD_LEN {
        return Err(CaptureError::BadLength {
            what: RECORD,
            length: u64::from(b.caplen),
        });
    }
    let frac = if nanos {
        b.ts_usec
    } else {
        b.ts_usec.saturating_mul(1000)
    };
    Ok(Frame {
        number: 0,
        time: (frac < 1_000_000_000).then(|| Duration::new(u64::from(b.ts_sec), frac)),
        link_type,
        data: b.data.to_vec(),
        original_len: (b.origlen as usize).max(b.data.len()),
    })
}

/// What one pcapng block does: a frame, a change of section or interfaces, or nothing.
fn ng_block(
    block: &Block<'_>,
    big_endian: &mut bool,
    interfaces: &mut Vec<Interface>,
) -> Result<Option<Frame>, CaptureError> {
    match block {
        Block::SectionHeader(shb) => {
            *big_endian = shb.big_endian();
            interfaces.clear();
        }
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
        }
        Block::EnhancedPacket(epb) => {
            let iface = *interfaces
                .get(epb.if_id as usize)
                .ok_or(CaptureError::UnknownInterface { id: epb.if_id })?;
            let data = epb.packet_data().to_vec();
            let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            return Ok(Some(Frame {
                number: 0,
                time: scaled_time(units, iface.base, iface.exponent),
                link_type: iface.link_type,
                original_len: (epb.origlen as usize).max(data.len()),
                data,
            }));
        }
        Block::SimplePacket(spb) => {
            let iface = *interfaces
                .first()
                .ok_or(CaptureError::UnknownInterface { id: 0 })?;
            let original = spb.origlen as usize;
            // The block holds the packet padded to 32 bits (or cut to the snap length).
            let data = spb.data.get(..original).unwrap_or(spb.data).to_vec();
            return Ok(Some(Frame {
                number: 0,
                time: None,
                link_type: iface.link_type,
                original_len: original.max(data.len()),
                data,
            }));
        }
        // The obsolete Packet Block: pcap-parser reads its type little-endian.
        Block::Unknown(ub)
            if (if *big_endian {
                ub.block_type.swap_bytes()
            } else {
                ub.block_type
            }) == PCAPNG_PACKET_BLOCK =>
        {
            return packet_block(ub.data, *big_endian, interfaces).map(Some);
        }
        // Name resolution, statistics, custom and other blocks say nothing about the
        // packets themselves.
        _ => {}
    }
    Ok(None)
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
        // More input than the buffer holds: the reader stops when the buffer is full.
        f.resize(f.len() + 2 * BUFFER_LEN, 0);
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
        c.resize(c.len() + 2 * BUFFER_LEN, 0);
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
