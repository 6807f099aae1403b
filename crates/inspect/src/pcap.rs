//! A small, streaming reader for capture files: classic pcap (both byte orders,
//! microsecond and nanosecond timestamps) and pcapng (Section Header, Interface
//! Description, Enhanced, Simple and obsolete Packet blocks; other blocks are skipped).
//!
//! floe reads captures itself rather than through a crate: it needs a few hundred lines
//! of it, with hard limits on every length a file can claim (a record or block is read
//! only after its length has been checked against [`MAX_RECORD_LEN`] /
//! [`MAX_BLOCK_LEN`]), and a fuzz target (`decode_pcap`) covers it.
//!
//! Formats: classic pcap as in draft-ietf-opsawg-pcap; pcapng as in
//! draft-ietf-opsawg-pcapng.

use std::fmt;
use std::io::{self, Read};
use std::time::Duration;

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

fn u16_at(b: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    let v: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if big_endian {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    })
}

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    })
}

/// `units` of base^-exponent seconds as a duration, if it fits.
fn scaled_time(units: u64, base: u8, exponent: u8) -> Option<Duration> {
    let denominator = u128::from(base).checked_pow(u32::from(exponent))?;
    let nanos = u128::from(units).checked_mul(1_000_000_000)? / denominator;
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header (or the first pcapng Section Header Block).
    pub fn new(mut r: R) -> Result<CaptureReader<R>, CaptureError> {
        let mut magic = [0u8; 4];
        if !fill(&mut r, &mut magic, "the file header")? {
            return Err(CaptureError::BadMagic);
        }
        let le = u32::from_le_bytes(magic);
        let be = u32::from_be_bytes(magic);
        let format = if be == PCAPNG_SHB {
            let interfaces = Vec::new();
            let big_endian = Self::section_rest(&mut r)?;
            Format::Ng {
                big_endian,
                interfaces,
            }
        } else {
            let (big_endian, nanos) = match (le, be) {
                (PCAP_MICROS, _) => (false, false),
                (PCAP_NANOS, _) => (false, true),
                (_, PCAP_MICROS) => (true, false),
                (_, PCAP_NANOS) => (true, true),
                _ => return Err(CaptureError::BadMagic),
            };
            let mut rest = [0u8; 20];
            must_fill(&mut r, &mut rest, "the file header")?;
            // The link type is the low 16 bits; the high bits carry FCS information.
            let link_type = u32_at(&rest, 16, big_endian).unwrap_or(0) & 0xFFFF;
            Format::Classic {
                big_endian,
                nanos,
                link_type,
            }
        };
        Ok(CaptureReader {
            r,
            format,
            number: 0,
            done: false,
        })
    }

    /// Reads the rest of a Section Header Block whose type was just read; returns the
    /// section's byte order.
    fn section_rest(r: &mut R) -> Result<bool, CaptureError> {
        let mut head = [0u8; 8];
        must_fill(r, &mut head, "a section header block")?;
        let big_endian = match u32::from_le_bytes([head[4], head[5], head[6], head[7]]) {
            PCAPNG_BOM => false,
            v if v.swap_bytes() == PCAPNG_BOM => true,
            _ => return Err(CaptureError::BadMagic),
        };
        let len = u32_at(&head, 0, big_endian).unwrap_or(0) as usize;
        if len < 28 || len % 4 != 0 || len > MAX_BLOCK_LEN {
            return Err(CaptureError::BadLength {
                what: "a section header block",
                length: len as u64,
            });
        }
        let mut rest = vec![0u8; len - 12];
        must_fill(r, &mut rest, "a section header block")?;
        Ok(big_endian)
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
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
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
        let secs = u32_at(&head, 0, big_endian).unwrap_or(0);
        let frac = u32_at(&head, 4, big_endian).unwrap_or(0);
        let captured = u32_at(&head, 8, big_endian).unwrap_or(0) as usize;
        let original = u32_at(&head, 12, big_endian).unwrap_or(0) as usize;
        if captured > MAX_RECORD_LEN {
            return Err(CaptureError::BadLength {
                what: "a record",
                length: captured as u64,
            });
        }
        let mut data = vec![0u8; captured];
        must_fill(&mut self.r, &mut data, "a record")?;
        let frac = if nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        };
        self.number += 1;
        Ok(Some(Frame {
            number: self.number,
            time: (frac < 1_000_000_000).then(|| Duration::new(u64::from(secs), frac)),
            link_type,
            data,
            original_len: original.max(captured),
        }))
    }

    fn next_ng(&mut self) -> Result<Option<Frame>, CaptureError> {
        loop {
            let mut typ = [0u8; 4];
            if !fill(&mut self.r, &mut typ, "a block header")? {
                return Ok(None);
            }
            if u32::from_be_bytes(typ) == PCAPNG_SHB {
                let big_endian = Self::section_rest(&mut self.r)?;
                self.format = Format::Ng {
                    big_endian,
                    interfaces: Vec::new(),
                };
                continue;
            }
            let Format::Ng {
                big_endian,
                ref mut interfaces,
            } = self.format
            else {
                return Ok(None);
            };
            let mut len = [0u8; 4];
            must_fill(&mut self.r, &mut len, "a block header")?;
            let typ = u32_at(&typ, 0, big_endian).unwrap_or(0);
            let len = u32_at(&len, 0, big_endian).unwrap_or(0) as usize;
            if len < 12 || len % 4 != 0 || len > MAX_BLOCK_LEN {
                return Err(CaptureError::BadLength {
                    what: "a pcapng block",
                    length: len as u64,
                });
            }
            // Body and the trailing copy of the length.
            let mut body = vec![0u8; len - 8];
            must_fill(&mut self.r, &mut body, "a pcapng block")?;
            body.truncate(len - 12);
            match typ {
                1 => {
                    if interfaces.len() >= MAX_INTERFACES {
                        return Err(CaptureError::BadLength {
                            what: "the interface list",
                            length: interfaces.len() as u64,
                        });
                    }
                    interfaces.push(interface(&body, big_endian));
                }
                6 | 2 => {
                    let (id, at) = if typ == 6 {
                        (u32_at(&body, 0, big_endian), 4)
                    } else {
                        (u16_at(&body, 0, big_endian).map(u32::from), 4)
                    };
                    let (Some(id), Some(high), Some(low), Some(captured), Some(original)) = (
                        id,
                        u32_at(&body, at, big_endian),
                        u32_at(&body, at + 4, big_endian),
                        u32_at(&body, at + 8, big_endian),
                        u32_at(&body, at + 12, big_endian),
                    ) else {
                        return Err(CaptureError::Truncated {
                            what: "a packet block",
                        });
                    };
                    let iface = *interfaces
                        .get(id as usize)
                        .ok_or(CaptureError::UnknownInterface { id })?;
                    let start = at + 16;
                    // Checked: on a 32-bit host `start + captured` could wrap.
                    let end = usize::try_from(captured)
                        .ok()
                        .and_then(|c| start.checked_add(c));
                    let data = end
                        .and_then(|end| body.get(start..end))
                        .ok_or(CaptureError::Truncated {
                            what: "a packet block",
                        })?
                        .to_vec();
                    let units = (u64::from(high) << 32) | u64::from(low);
                    self.number += 1;
                    return Ok(Some(Frame {
                        number: self.number,
                        time: scaled_time(units, iface.base, iface.exponent),
                        link_type: iface.link_type,
                        original_len: (original as usize).max(data.len()),
                        data,
                    }));
                }
                3 => {
                    let iface = *interfaces
                        .first()
                        .ok_or(CaptureError::UnknownInterface { id: 0 })?;
                    let original = u32_at(&body, 0, big_endian).unwrap_or(0) as usize;
                    let data = body.get(4..).unwrap_or_default();
                    let data = data.get(..original).unwrap_or(data).to_vec();
                    self.number += 1;
                    return Ok(Some(Frame {
                        number: self.number,
                        time: None,
                        link_type: iface.link_type,
                        original_len: original.max(data.len()),
                        data,
                    }));
                }
                // Name resolution, statistics, custom and other blocks say nothing about
                // the packets themselves.
                _ => {}
            }
        }
    }
}

/// Reads an Interface Description Block body: link type and if_tsresol (option 9).
fn interface(body: &[u8], big_endian: bool) -> Interface {
    let mut iface = Interface {
        link_type: u32::from(u16_at(body, 0, big_endian).unwrap_or(0)),
        base: 10,
        exponent: 6,
    };
    let mut at = 8;
    while let (Some(code), Some(len)) = (
        u16_at(body, at, big_endian),
        u16_at(body, at + 2, big_endian),
    ) {
        if code == 0 {
            break;
        }
        let value = body.get(at + 4..at + 4 + usize::from(len));
        if let (9, Some(&[v])) = (code, value) {
            if v & 0x80 == 0 {
                iface.exponent = v;
            } else {
                iface.base = 2;
                iface.exponent = v & 0x7F;
            }
        }
        at += 4 + usize::from(len).next_multiple_of(4);
    }
    iface
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
}
