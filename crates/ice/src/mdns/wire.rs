//! The part of the DNS wire format (RFC 1035 §4.1) that mDNS host names need (RFC 6762):
//! the header, questions, and the answer section's records, with A and AAAA data read.
//! Names follow compression pointers (RFC 1035 §4.1.4) with a bound on the jumps and
//! the name's length, so a hostile message costs at most its own size to read. The
//! authority and additional sections are not read: a host-name responder and a one-shot
//! resolver need neither.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// RR type A (RFC 1035 §3.2.2).
pub const TYPE_A: u16 = 1;
/// RR type AAAA (RFC 3596 §2.1).
pub const TYPE_AAAA: u16 = 28;
/// QTYPE `*` (RFC 1035 §3.2.3).
pub const TYPE_ANY: u16 = 255;
/// Class IN.
pub const CLASS_IN: u16 = 1;
/// QCLASS `*`.
pub const CLASS_ANY: u16 = 255;
/// The top bit of a question's class asks for a unicast answer (RFC 6762 §5.4); of a
/// record's class, it is the cache-flush bit (§10.2).
pub const CLASS_TOP_BIT: u16 = 0x8000;

/// Longest name, in its wire form (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;
/// Longest label.
const MAX_LABEL: usize = 63;
/// Most compression pointers followed in one name: more is a loop or a trick.
const MAX_POINTERS: usize = 16;
/// Most questions or answers read from one message (mDNS messages are small).
pub const MAX_RECORDS: usize = 64;
/// Header flags: QR (a response).
const FLAG_QR: u16 = 0x8000;
/// Header flags: AA (authoritative; every mDNS response sets it, RFC 6762 §18.4).
const FLAG_AA: u16 = 0x0400;

/// Why a message was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The message ends inside a field.
    #[error("truncated")]
    Truncated,
    /// A label length byte of the reserved kinds (0x40, 0x80), or a label over 63 bytes.
    #[error("bad label")]
    BadLabel,
    /// A name over 255 bytes.
    #[error("name too long")]
    NameTooLong,
    /// More than 16 compression pointers in one name.
    #[error("too many compression pointers")]
    PointerLoop,
    /// More than 64 questions or answers.
    #[error("too many records")]
    TooManyRecords,
}

/// A question (RFC 1035 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name, labels joined by `.`, without the root's trailing dot. A byte that is
    /// not a visible ASCII character, or a `.` inside a label, reads as `?`: names are
    /// read to be matched against ours, which have neither.
    pub name: String,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS without its top bit.
    pub qclass: u16,
    /// The top bit of QCLASS: the querier wants a unicast answer (RFC 6762 §5.4).
    pub unicast_response: bool,
}

/// A resource record of the answer section (RFC 1035 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The owner name, as in [`Question::name`].
    pub name: String,
    /// TYPE.
    pub rtype: u16,
    /// CLASS without its top bit.
    pub class: u16,
    /// The cache-flush bit (RFC 6762 §10.2).
    pub cache_flush: bool,
    /// TTL in seconds.
    pub ttl: u32,
    /// The address of an A record with 4 bytes of data or an AAAA record with 16.
    pub address: Option<IpAddr>,
}

/// A DNS message, as far as mDNS host names need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// ID (0 in multicast mDNS; echoed in legacy unicast answers, RFC 6762 §6.7).
    pub id: u16,
    /// QR: a response.
    pub response: bool,
    /// OPCODE (mDNS uses 0 only; RFC 6762 §18.3).
    pub opcode: u8,
    /// RCODE.
    pub rcode: u8,
    /// The questions.
    pub questions: Vec<Question>,
    /// The answer section.
    pub answers: Vec<Record>,
}

/// Reads a message. Errors leave nothing half-read behind: a message is used whole or not.
pub fn parse(bytes: &[u8]) -> Result<Message, WireError> {
    let mut r = Reader { bytes, pos: 0 };
    let id = r.u16()?;
    let flags = r.u16()?;
    let qdcount = usize::from(r.u16()?);
    let ancount = usize::from(r.u16()?);
    let _nscount = r.u16()?;
    let _arcount = r.u16()?;
    if qdcount > MAX_RECORDS || ancount > MAX_RECORDS {
        return Err(WireError::TooManyRecords);
    }
    let mut questions = Vec::with_capacity(qdcount);
    for _ in 0..qdcount {
        let name = r.name()?;
        let qtype = r.u16()?;
        let qclass = r.u16()?;
        questions.push(Question {
            name,
            qtype,
            qclass: qclass & !CLASS_TOP_BIT,
            unicast_response: qclass & CLASS_TOP_BIT != 0,
        });
    }
    let mut answers = Vec::with_capacity(ancount);
    for _ in 0..ancount {
        let name = r.name()?;
        let rtype = r.u16()?;
        let class = r.u16()?;
        let ttl = r.u32()?;
        let rdlength = usize::from(r.u16()?);
        let data = r.take(rdlength)?;
        let address = match (rtype, data.len()) {
            (TYPE_A, 4) => <[u8; 4]>::try_from(data)
                .ok()
                .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            (TYPE_AAAA, 16) => <[u8; 16]>::try_from(data)
                .ok()
                .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            _ => None,
        };
        answers.push(Record {
            name,
            rtype,
            class: class & !CLASS_TOP_BIT,
            cache_flush: class & CLASS_TOP_BIT != 0,
            ttl,
            address,
        });
    }
    Ok(Message {
        id,
        response: flags & FLAG_QR != 0,
        opcode: ((flags >> 11) & 0xF) as u8,
        rcode: (flags & 0xF) as u8,
        questions,
        answers,
    })
}

/// A query with one question per type in `qtypes` for `name` (RFC 6762 §5): `id` 0 for
/// a multicast query, a fresh one for a one-shot query from another port (§5.1, §6.7).
pub fn query(
    id: u16,
    name: &str,
    qtypes: &[u16],
    unicast_response: bool,
) -> Result<Vec<u8>, WireError> {
    let count = u16::try_from(qtypes.len()).map_err(|_| WireError::TooManyRecords)?;
    let mut out = header(id, 0, count, 0);
    for &qtype in qtypes {
        put_name(&mut out, name)?;
        out.extend_from_slice(&qtype.to_be_bytes());
        let class = if unicast_response {
            CLASS_IN | CLASS_TOP_BIT
        } else {
            CLASS_IN
        };
        out.extend_from_slice(&class.to_be_bytes());
    }
    Ok(out)
}

/// One address record of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<'a> {
    /// The owner name.
    pub name: &'a str,
    /// The address (A for IPv4, AAAA for IPv6).
    pub address: IpAddr,
    /// TTL in seconds.
    pub ttl: u32,
    /// Set the cache-flush bit (RFC 6762 §10.2: unique records in multicast answers).
    pub cache_flush: bool,
}

/// A response (QR and AA set) with `answers`, echoing `questions` (legacy unicast
/// answers repeat them, RFC 6762 §6.7; multicast answers carry none).
pub fn response(
    id: u16,
    questions: &[Question],
    answers: &[Answer<'_>],
) -> Result<Vec<u8>, WireError> {
    let count = u16::try_from(answers.len()).map_err(|_| WireError::TooManyRecords)?;
    let qdcount = u16::try_from(questions.len()).map_err(|_| WireError::TooManyRecords)?;
    let mut out = header(id, FLAG_QR | FLAG_AA, qdcount, count);
    for q in questions {
        put_name(&mut out, &q.name)?;
        out.extend_from_slice(&q.qtype.to_be_bytes());
        out.extend_from_slice(&q.qclass.to_be_bytes());
    }
    for a in answers {
        put_name(&mut out, a.name)?;
        let (rtype, data): (u16, Vec<u8>) = match a.address {
            IpAddr::V4(v4) => (TYPE_A, v4.octets().to_vec()),
            IpAddr::V6(v6) => (TYPE_AAAA, v6.octets().to_vec()),
        };
        out.extend_from_slice(&rtype.to_be_bytes());
        let class = if a.cache_flush {
            CLASS_IN | CLASS_TOP_BIT
        } else {
            CLASS_IN
        };
        out.extend_from_slice(&class.to_be_bytes());
        out.extend_from_slice(&a.ttl.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    Ok(out)
}

fn header(id: u16, flags: u16, qdcount: u16, ancount: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for field in [id, flags, qdcount, ancount, 0, 0] {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out
}

/// Writes `name` (dot-separated, an optional trailing dot) as labels, uncompressed.
fn put_name(out: &mut Vec<u8>, name: &str) -> Result<(), WireError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.len() + 2 > MAX_NAME {
        return Err(WireError::NameTooLong);
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL {
            return Err(WireError::BadLabel);
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(())
}

/// A cursor over the message; every read is checked.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let out = self.bytes.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?.try_into().map_err(|_| WireError::Truncated)?;
        Ok(u16::from_be_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from(self.u16()?) << 16 | u32::from(self.u16()?))
    }

    /// A name at the cursor; the cursor moves past its first pointer or its end.
    fn name(&mut self) -> Result<String, WireError> {
        let mut out = String::new();
        let mut wire_len = 1;
        let mut at = self.pos;
        let mut resume = None;
        let mut pointers = 0;
        loop {
            let len = *self.bytes.get(at).ok_or(WireError::Truncated)?;
            match len & 0xC0 {
                0x00 if len == 0 => {
                    self.pos = resume.unwrap_or(at + 1);
                    return Ok(out);
                }
                0x00 => {
                    let len = usize::from(len);
                    let label = self
                        .bytes
                        .get(at + 1..at + 1 + len)
                        .ok_or(WireError::Truncated)?;
                    wire_len += len + 1;
                    if wire_len > MAX_NAME {
                        return Err(WireError::NameTooLong);
                    }
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.extend(label.iter().map(|&b| {
                        if b.is_ascii_graphic() && b != b'.' {
                            char::from(b)
                        } else {
                            '?'
                        }
                    }));
                    at += 1 + len;
                }
                0xC0 => {
                    let low = *self.bytes.get(at + 1).ok_or(WireError::Truncated)?;
                    pointers += 1;
                    if pointers > MAX_POINTERS {
                        return Err(WireError::PointerLoop);
                    }
                    resume.get_or_insert(at + 2);
                    at = usize::from(len & 0x3F) << 8 | usize::from(low);
                }
                _ => return Err(WireError::BadLabel),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_reads_back_with_its_questions_and_the_unicast_bit() {
        let q = query(7, "abc.local", &[TYPE_A, TYPE_AAAA], true).unwrap();
        let m = parse(&q).unwrap();
        assert_eq!(m.id, 7);
        assert!(!m.response);
        assert_eq!(m.questions.len(), 2);
        assert_eq!(m.questions[0].name, "abc.local");
        assert_eq!(m.questions[0].qtype, TYPE_A);
        assert_eq!(m.questions[1].qtype, TYPE_AAAA);
        assert!(m.questions[0].unicast_response);
        assert_eq!(m.questions[0].qclass, CLASS_IN);
    }

    #[test]
    fn a_response_reads_back_with_its_addresses_and_cache_flush() {
        let q = Question {
            name: "x.local".into(),
            qtype: TYPE_A,
            qclass: CLASS_IN,
            unicast_response: false,
        };
        let answers = [
            Answer {
                name: "x.local",
                address: "192.168.1.2".parse().unwrap(),
                ttl: 120,
                cache_flush: true,
            },
            Answer {
                name: "x.local",
                address: "fe80::1".parse().unwrap(),
                ttl: 10,
                cache_flush: false,
            },
        ];
        let m = parse(&response(9, std::slice::from_ref(&q), &answers).unwrap()).unwrap();
        assert!(m.response);
        assert_eq!(m.id, 9);
        assert_eq!(m.questions, vec![q]);
        assert_eq!(m.answers[0].address, Some("192.168.1.2".parse().unwrap()));
        assert!(m.answers[0].cache_flush);
        assert_eq!(m.answers[0].ttl, 120);
        assert_eq!(m.answers[1].rtype, TYPE_AAAA);
        assert_eq!(m.answers[1].address, Some("fe80::1".parse().unwrap()));
        assert!(!m.answers[1].cache_flush);
    }

    #[test]
    fn compressed_names_are_followed_and_loops_are_refused() {
        // Header, one answer whose name points back at a question's name.
        let mut m = header(0, FLAG_QR, 1, 1);
        put_name(&mut m, "host.local").unwrap();
        m.extend_from_slice(&[0, 1, 0, 1]);
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 120, 0, 4, 10, 0, 0, 1]);
        let parsed = parse(&m).unwrap();
        assert_eq!(parsed.answers[0].name, "host.local");
        assert_eq!(parsed.answers[0].address, Some("10.0.0.1".parse().unwrap()));

        // A pointer to itself.
        let mut looped = header(0, 0, 1, 0);
        looped.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        assert_eq!(parse(&looped), Err(WireError::PointerLoop));
        // A pointer past the end.
        let mut past = header(0, 0, 1, 0);
        past.extend_from_slice(&[0xC0, 200, 0, 1, 0, 1]);
        assert_eq!(parse(&past), Err(WireError::Truncated));
    }

    #[test]
    fn hostile_shapes_are_errors_not_panics() {
        assert_eq!(parse(&[0; 11]), Err(WireError::Truncated));
        // 65535 questions claimed in a 12-byte message.
        assert_eq!(
            parse(&[0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0]),
            Err(WireError::TooManyRecords)
        );
        // Reserved label kinds.
        let mut m = header(0, 0, 1, 0);
        m.extend_from_slice(&[0x40, 0, 0, 1, 0, 1]);
        assert_eq!(parse(&m), Err(WireError::BadLabel));
        // A name of 300 bytes made of pointers to long labels.
        let mut long = header(0, 0, 1, 0);
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse(&long), Err(WireError::NameTooLong));
        // rdlength past the end.
        let mut rd = header(0, FLAG_QR, 0, 1);
        put_name(&mut rd, "a.local").unwrap();
        rd.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 1, 0, 40, 1, 2]);
        assert_eq!(parse(&rd), Err(WireError::Truncated));
    }

    #[test]
    fn odd_bytes_in_labels_read_as_question_marks() {
        let mut m = header(0, 0, 1, 0);
        m.extend_from_slice(&[
            3, b'a', b'.', 0xC3, 5, b'l', b'o', b'c', b'a', b'l', 0, 0, 1, 0, 1,
        ]);
        assert_eq!(parse(&m).unwrap().questions[0].name, "a??.local");
    }

    #[test]
    fn names_that_cannot_be_written_are_errors() {
        assert_eq!(
            query(0, "a..local", &[TYPE_A], false),
            Err(WireError::BadLabel)
        );
        let long_label = format!("{}.local", "a".repeat(64));
        assert_eq!(
            query(0, &long_label, &[TYPE_A], false),
            Err(WireError::BadLabel)
        );
        let long_name = format!("{}local", "abcdefgh.".repeat(30));
        assert_eq!(
            query(0, &long_name, &[TYPE_A], false),
            Err(WireError::NameTooLong)
        );
        assert!(query(0, "trailing.local.", &[TYPE_A], false).is_ok());
    }
}
