//! Judging one message the way floe's parser does: what it is (RFC 7983 first byte, or
//! the magic cookie where the type puts the first byte elsewhere, see [`crate::demux`]),
//! every field, and every rule it breaks, first one first.
//!
//! The order of the checks is the order a receiver applies them (RFC 8489 §6.3): the
//! structure (header, lengths, padding, placement of MESSAGE-INTEGRITY and FINGERPRINT),
//! FINGERPRINT, each attribute's value, attributes ignored after MESSAGE-INTEGRITY
//! (§14.5), and last MESSAGE-INTEGRITY(-SHA256) with the given credentials. Repeated
//! attributes are notes, not problems (see [`crate::duplicates`]).
//!
//! Why one file of ~675 lines: the checks run in that one order over one parse, and
//! splitting them would scatter the order the RFC gives; the value rules of text
//! attributes live in `limits.rs`, duplicates in `duplicates.rs`.

use floe_stun::attributes::{decode_known, AttrType, PasswordAlgorithm, RawAttribute};
use floe_stun::credentials::Algorithm;
use floe_stun::demux::{classify, PacketKind};
use floe_stun::{Class, Error, IntegrityKey, Message, ParseOptions, TransactionId, HEADER_LEN};
use floe_turn::ChannelData;
use serde::Serialize;

use crate::value::{describe, Described};
use crate::{demux, duplicates, limits};

/// Credentials to verify MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256 with.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A short-term password (RFC 8489 §9.1; ICE's `ice-pwd`).
    ShortTerm(String),
    /// Long-term credentials (RFC 8489 §9.2; TURN).
    LongTerm {
        /// The username.
        username: String,
        /// The realm.
        realm: String,
        /// The password.
        password: String,
    },
}

impl Credentials {
    /// Parses `USER:REALM:PASSWORD`, split at the last two colons (so a TURN REST
    /// username such as `1700000000:alice` works; the realm and password cannot hold a
    /// colon).
    pub fn parse_long_term(s: &str) -> Option<Credentials> {
        let (rest, password) = s.rsplit_once(':')?;
        let (username, realm) = rest.rsplit_once(':')?;
        Some(Credentials::LongTerm {
            username: username.to_owned(),
            realm: realm.to_owned(),
            password: password.to_owned(),
        })
    }

    /// The key for MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256. For long-term
    /// credentials the key's hash is the message's PASSWORD-ALGORITHM, MD5 without one
    /// (RFC 8489 §9.2.2, §14.12).
    fn key(&self, algorithm: Algorithm) -> Result<IntegrityKey, Error> {
        match self {
            Credentials::ShortTerm(pw) => IntegrityKey::short_term(pw),
            Credentials::LongTerm {
                username,
                realm,
                password,
            } => IntegrityKey::long_term(username, realm, password, algorithm),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Credentials::ShortTerm(_) => "short-term",
            Credentials::LongTerm { .. } => "long-term",
        }
    }
}

/// What a message is, by its first byte (RFC 7983).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// STUN: first byte 0-3, or (for a message type RFC 8489 does not allow) the magic
    /// cookie, length and FINGERPRINT say so.
    Stun,
    /// TURN ChannelData (first byte 64-79).
    ChannelData,
    /// Anything else.
    Other,
}

/// The overall judgement of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Well formed, and verified where credentials were given.
    Ok,
    /// Breaks a rule of its format.
    Malformed,
    /// Well formed, but MESSAGE-INTEGRITY(-SHA256) does not match the credentials.
    IntegrityFailed,
    /// Not STUN or ChannelData at all.
    NotStunTurn,
}

impl Verdict {
    /// The verdict in words, for the text output.
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Malformed => "malformed",
            Verdict::IntegrityFailed => "integrity check failed",
            Verdict::NotStunTurn => "not STUN/TURN",
        }
    }
}

/// One broken rule, or (in [`Report::notes`]) something worth knowing that breaks none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Which check: `input`, `structure`, `method`, `fingerprint`, `attribute`,
    /// `unknown_attribute`, `placement`, `message_integrity`, `message_integrity_sha256`,
    /// `channel_data`, `demux`; for notes, `method` or `duplicate`.
    pub check: &'static str,
    /// Byte offset in the message of the attribute concerned, if any.
    pub offset: Option<usize>,
    /// The rule, in words (floe-stun's error message).
    pub message: String,
}

/// State of FINGERPRINT or an integrity attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The attribute is not in the message.
    Absent,
    /// Present and correct.
    Ok,
    /// Present and wrong.
    Failed,
    /// Present, not checked (no credentials, or the message is malformed).
    NotChecked,
}

impl Check {
    /// In words, for the text output.
    pub fn text(self) -> &'static str {
        match self {
            Check::Absent => "absent",
            Check::Ok => "ok",
            Check::Failed => "FAILED",
            Check::NotChecked => "not checked",
        }
    }
}

/// One attribute, decoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeReport {
    /// Offset of the attribute header in the message.
    pub offset: usize,
    /// The type, as `0x0020`.
    #[serde(rename = "type")]
    pub typ: String,
    /// The type as a number.
    #[serde(skip)]
    pub code: u16,
    /// The registry name, `null` for types floe does not know.
    pub name: Option<&'static str>,
    /// The value length (without padding).
    pub length: usize,
    /// The decoded value (see docs/decode.md); `null` if it does not decode.
    pub value: serde_json::Value,
    /// The value for people.
    #[serde(skip)]
    pub text: String,
    /// Why the value does not decode.
    pub error: Option<String>,
    /// The value decodes but breaks its definition's limits on what may be sent (see
    /// [`crate::limits`]); reported as a problem.
    #[serde(skip)]
    pub violation: Option<String>,
    /// Whether RFC 8489 §14.5 has a receiver ignore it (it follows MESSAGE-INTEGRITY).
    pub ignored: bool,
}

/// The STUN part of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StunReport {
    /// The 16-bit message type, as `0x0101`.
    pub message_type: String,
    /// The method name, as `Binding` (or `0x0abc` for an unknown method).
    pub method: String,
    /// The class: `request`, `indication`, `success response`, `error response`.
    pub class: &'static str,
    /// The transaction id, 24 hex digits.
    pub transaction_id: String,
    /// The header's length field.
    pub length: u16,
    /// The attributes, in order (all of them, including ignored ones).
    pub attributes: Vec<AttributeReport>,
    /// FINGERPRINT.
    pub fingerprint: Check,
    /// MESSAGE-INTEGRITY.
    pub message_integrity: Check,
    /// MESSAGE-INTEGRITY-SHA256.
    pub message_integrity_sha256: Check,
    /// `short-term` or `long-term` when credentials were given.
    pub credentials: Option<&'static str>,
}

/// The ChannelData part of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelDataReport {
    /// The channel number.
    pub channel: u16,
    /// The length field.
    pub length: u16,
    /// Bytes of padding after the data.
    pub padding: usize,
    /// The data, hex.
    pub data: String,
}

/// Everything floe has to say about one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What the first byte says it is.
    pub kind: Kind,
    /// The RFC 7983 range of the first byte, in words.
    pub demux: &'static str,
    /// Bytes in the message.
    pub size: usize,
    /// The judgement.
    pub verdict: Verdict,
    /// The first broken rule (the first of `problems`).
    pub error: Option<String>,
    /// Every broken rule, in the order they are checked.
    pub problems: Vec<Problem>,
    /// What breaks no rule but is worth knowing (a method floe does not know, a repeated
    /// attribute whose repeat the receiver may ignore); notes do not change the verdict.
    pub notes: Vec<Problem>,
    /// The STUN fields (kind `stun`, when at least the header could be read).
    pub stun: Option<StunReport>,
    /// The ChannelData fields (kind `channel_data`, when the header could be read).
    pub channel_data: Option<ChannelDataReport>,
}

impl Report {
    fn new(bytes: &[u8]) -> Report {
        let kind = classify(bytes);
        Report {
            kind: match kind {
                PacketKind::Stun => Kind::Stun,
                // A method above 0x0ff or the top two bits set put a STUN message's
                // first byte outside 0-3; the cookie and length still tell (see
                // `crate::demux`). ChannelData cannot also pass: its length field
                // counts 16 bytes fewer than STUN's would.
                _ if demux::stun_by_cookie(bytes) => Kind::Stun,
                PacketKind::ChannelData => Kind::ChannelData,
                _ => Kind::Other,
            },
            demux: kind.description(),
            size: bytes.len(),
            verdict: Verdict::Ok,
            error: None,
            problems: Vec::new(),
            notes: Vec::new(),
            stun: None,
            channel_data: None,
        }
    }

    fn problem(&mut self, check: &'static str, offset: Option<usize>, message: String) {
        if self.error.is_none() {
            self.error = Some(message.clone());
        }
        self.problems.push(Problem {
            check,
            offset,
            message,
        });
    }

    fn note(&mut self, check: &'static str, offset: Option<usize>, message: String) {
        self.notes.push(Problem {
            check,
            offset,
            message,
        });
    }

    /// A report for input that could not even be turned into bytes (bad hex, too long).
    pub fn input_error(message: String) -> Report {
        let mut r = Report::new(&[]);
        r.demux = "none";
        r.verdict = Verdict::Malformed;
        r.problem("input", None, message);
        r
    }
}

/// The offset an error points at, if it names an attribute.
fn error_offset(e: &Error) -> Option<usize> {
    match *e {
        Error::AttributeHeaderTruncated { offset }
        | Error::AttributeOverflow { offset, .. }
        | Error::AttributeAfterFingerprint { offset, .. }
        | Error::DuplicateAttribute { offset, .. }
        | Error::BadAttributeLength { offset, .. }
        | Error::BadAddressFamily { offset, .. }
        | Error::InvalidUtf8 { offset, .. }
        | Error::InvalidValue { offset, .. } => Some(offset),
        _ => None,
    }
}

/// Judges one message (a UDP datagram or a frame cut from a stream).
///
/// What it is comes from the first byte (RFC 7983 §7: 0-3 STUN, 64-79 ChannelData), or
/// from the magic cookie and the length wherever the first byte points (RFC 8489 §5).
/// STUN is checked as a receiver would (RFC 8489 §6.3): header and attribute layout
/// (§5, §14), FINGERPRINT (§14.7), each attribute's value including the text limits of
/// §14.3, §14.8-§14.10 and §14.14, attributes after MESSAGE-INTEGRITY (§14.5), and
/// MESSAGE-INTEGRITY(-SHA256) (§14.5, §14.6, §9) when `credentials` are given; repeated
/// attributes are notes (§14 lets a receiver ignore all but the first). ChannelData is
/// checked against RFC 8656 §12.4 (channel number range, length field against the
/// datagram). Never panics.
pub fn analyze(bytes: &[u8], credentials: Option<&Credentials>) -> Report {
    let mut report = Report::new(bytes);
    match report.kind {
        Kind::Stun => analyze_stun(bytes, credentials, &mut report),
        Kind::ChannelData => match ChannelData::parse(bytes) {
            Ok(cd) => {
                report.channel_data = Some(ChannelDataReport {
                    channel: cd.channel,
                    length: cd.data.len() as u16,
                    padding: cd.padding,
                    data: hex(cd.data),
                });
            }
            Err(e) => {
                if let Some(&[c0, c1, l0, l1]) = bytes.get(..4) {
                    report.channel_data = Some(ChannelDataReport {
                        channel: u16::from_be_bytes([c0, c1]),
                        length: u16::from_be_bytes([l0, l1]),
                        padding: 0,
                        data: hex(bytes.get(4..).unwrap_or_default()),
                    });
                }
                report.verdict = Verdict::Malformed;
                report.problem("channel_data", None, format!("ChannelData: {e}"));
            }
        },
        Kind::Other => {
            report.verdict = Verdict::NotStunTurn;
            let first = bytes.first().map_or_else(
                || "empty message".to_owned(),
                |b| format!("first byte {b:#04x}"),
            );
            // RFC 5766 allowed channels up to 0x7FFF; RFC 8656 §12 reserves 0x5000 and up,
            // and RFC 7983 gives their first bytes to QUIC. Say so when it fits.
            let rfc5766 = match ChannelData::parse_in_range(bytes, floe_turn::MAX_CHANNEL_RFC5766) {
                Ok(cd) => format!(
                    " (it would be ChannelData on channel {:#06x} under RFC 5766, whose range 0x5000-0x7fff RFC 8656 §12 reserves)",
                    cd.channel
                ),
                Err(_) => String::new(),
            };
            report.problem(
                "demux",
                None,
                format!(
                    "not STUN/TURN: {first} is in the RFC 7983 range {}{rfc5766}",
                    report.demux
                ),
            );
        }
    }
    report
}

/// The fields of a STUN header that floe shows even when the message is malformed.
struct Header {
    raw_type: u16,
    length: u16,
    tid: TransactionId,
}

fn header(bytes: &[u8]) -> Option<Header> {
    let head: [u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
    let [t0, t1, l0, l1, _, _, _, _, tid @ ..] = head;
    Some(Header {
        raw_type: u16::from_be_bytes([t0, t1]),
        length: u16::from_be_bytes([l0, l1]),
        tid: TransactionId(tid),
    })
}

fn header_fields(bytes: &[u8]) -> Option<StunReport> {
    let Header {
        raw_type,
        length,
        tid,
        ..
    } = header(bytes)?;
    let typ = floe_stun::MessageType::from_u16(raw_type & 0x3FFF);
    Some(StunReport {
        message_type: format!("{raw_type:#06x}"),
        method: typ
            .method
            .name()
            .map_or_else(|| format!("{:#05x}", typ.method.value()), str::to_owned),
        class: typ.class.name(),
        transaction_id: tid.to_string(),
        length,
        attributes: Vec::new(),
        fingerprint: Check::Absent,
        message_integrity: Check::Absent,
        message_integrity_sha256: Check::Absent,
        credentials: None,
    })
}

fn attribute_report(raw: &RawAttribute<'_>, tid: &TransactionId) -> AttributeReport {
    let mut violation = None;
    let (value, text, error) = match decode_known(raw, tid) {
        Ok(Some(any)) => {
            violation = limits::violation(raw.typ, raw.offset, &any);
            let Described { json, text } = describe(&any);
            (json, text, None)
        }
        Ok(None) => (
            serde_json::Value::String(hex(raw.value)),
            if raw.value.is_empty() {
                "(empty)".to_owned()
            } else {
                format!("0x{}", hex_short(raw.value))
            },
            None,
        ),
        Err(e) => (serde_json::Value::Null, String::new(), Some(e.to_string())),
    };
    AttributeReport {
        offset: raw.offset,
        typ: format!("{:#06x}", raw.typ.0),
        code: raw.typ.0,
        name: raw.typ.name(),
        length: raw.value.len(),
        value,
        text,
        error,
        violation,
        ignored: false,
    }
}

/// Lists the attributes of a message that failed the structure checks, as far as they
/// can be read, so that the output shows where things went wrong.
fn salvage(bytes: &[u8], tid: &TransactionId) -> Vec<AttributeReport> {
    demux::walk(bytes)
        .map(|raw| attribute_report(&raw, tid))
        .collect()
}

fn analyze_stun(bytes: &[u8], credentials: Option<&Credentials>, report: &mut Report) {
    report.stun = header_fields(bytes);
    let msg = match Message::parse_with(bytes, ParseOptions::structure_only()) {
        Ok(msg) => msg,
        Err(e) => {
            report.verdict = Verdict::Malformed;
            // Top bits set: `Report::new` found it STUN by its cookie and length.
            let top_bits = matches!(e, Error::NotStun { .. });
            if let Some(stun) = report.stun.as_mut() {
                if let (true, Some(h)) = (
                    top_bits || floe_stun::peek_header(bytes).is_ok(),
                    header(bytes),
                ) {
                    stun.attributes = salvage(bytes, &h.tid);
                    mark_present(stun);
                }
            }
            match header(bytes) {
                Some(h) if top_bits => {
                    let message = demux::top_bits(h.raw_type, report.demux);
                    report.problem("structure", Some(0), message);
                }
                _ => report.problem("structure", error_offset(&e), e.to_string()),
            }
            return;
        }
    };
    let tid = msg.transaction_id();
    let Some(stun) = report.stun.as_mut() else {
        return;
    };
    // In increasing order, so a binary search keeps a message of 16k attributes cheap.
    let counted: Vec<usize> = msg.attributes().map(|a| a.offset).collect();
    stun.attributes = msg
        .all_attributes()
        .map(|raw| {
            let mut a = attribute_report(&raw, &tid);
            a.ignored = counted.binary_search(&raw.offset).is_err();
            a
        })
        .collect();
    mark_present(stun);
    let mut problems: Vec<(&'static str, Option<usize>, String)> = Vec::new();
    let mut notes: Vec<(&'static str, Option<usize>, String)> = Vec::new();

    // RFC 8489 §18.2, RFC 7983: the method decides whether the first byte says STUN.
    let raw_type = msg.message_type().to_u16();
    if let Some(v) = demux::method_violation(msg.method(), raw_type, report.demux) {
        problems.push(("method", Some(0), v));
    }
    if let Some(n) = demux::method_note(msg.method()) {
        notes.push(("method", Some(0), n));
    }

    // RFC 8489 §14.7: a wrong FINGERPRINT means "not STUN"; report it on its own.
    if msg.fingerprint_offset().is_some() {
        match msg.check_fingerprint() {
            Ok(()) => stun.fingerprint = Check::Ok,
            Err(e) => {
                stun.fingerprint = Check::Failed;
                problems.push(("fingerprint", msg.fingerprint_offset(), e.to_string()));
            }
        }
    }
    for a in &stun.attributes {
        if let Some(e) = a.error.as_ref().or(a.violation.as_ref()) {
            problems.push(("attribute", Some(a.offset), e.clone()));
        }
    }
    // RFC 8489 §6.3.1, §6.3.3: a receiver rejects a request (420) or discards a
    // response that holds a comprehension-required attribute it does not know.
    for a in stun
        .attributes
        .iter()
        .filter(|a| !a.ignored && a.name.is_none())
    {
        let typ = AttrType(a.code);
        if typ.is_comprehension_required() {
            problems.push((
                "unknown_attribute",
                Some(a.offset),
                format!(
                    "attribute {typ} at offset {} is comprehension-required (below 0x8000) and unknown: receivers reject the message (RFC 8489 §6.3.1, §6.3.3)",
                    a.offset
                ),
            ));
        }
    }
    for a in stun.attributes.iter().filter(|a| a.ignored) {
        problems.push((
            "placement",
            Some(a.offset),
            format!(
                "attribute {} at offset {} follows MESSAGE-INTEGRITY and is ignored (RFC 8489 §14.5)",
                AttrType(a.code),
                a.offset
            ),
        ));
    }
    notes.extend(
        duplicates::notes(msg.method(), msg.class(), &stun.attributes)
            .into_iter()
            .map(|(offset, message)| ("duplicate", Some(offset), message)),
    );
    let malformed_count = problems.len();
    let malformed = malformed_count > 0;

    if let Some(creds) = credentials {
        stun.credentials = Some(creds.kind());
        let algorithm = match msg.get::<PasswordAlgorithm>() {
            Ok(Some(pa)) => Algorithm::from_u16(pa.algorithm).unwrap_or(Algorithm::Md5),
            _ => Algorithm::Md5,
        };
        // MESSAGE-INTEGRITY with long-term credentials is keyed with MD5 unless the
        // client chose SHA-256 with PASSWORD-ALGORITHM; both are computed from the same
        // credentials, so one key serves both attributes.
        match creds.key(algorithm) {
            Ok(key) => {
                if msg.integrity_offset().is_some() {
                    match msg.verify_sha1(&key) {
                        Ok(()) => stun.message_integrity = Check::Ok,
                        Err(e) => {
                            stun.message_integrity = Check::Failed;
                            problems.push((
                                "message_integrity",
                                msg.integrity_offset(),
                                e.to_string(),
                            ));
                        }
                    }
                }
                if msg.integrity_sha256_offset().is_some() {
                    match msg.verify_sha256(&key) {
                        Ok(()) => stun.message_integrity_sha256 = Check::Ok,
                        Err(e) => {
                            stun.message_integrity_sha256 = Check::Failed;
                            problems.push((
                                "message_integrity_sha256",
                                msg.integrity_sha256_offset(),
                                e.to_string(),
                            ));
                        }
                    }
                }
            }
            Err(e) => problems.push((
                "message_integrity",
                None,
                format!("credentials cannot be used: {e}"),
            )),
        }
        // With credentials given, requests and success responses must prove them (RFC
        // 8489 §9.1.3, §9.2.4; RFC 8445 §7.2.2). Indications (keepalives) and error
        // responses (the 401/438 challenges) legitimately carry none.
        let class = msg.class();
        if !msg.has_integrity() && matches!(class, Class::Request | Class::Success) {
            problems.push((
                "message_integrity",
                None,
                format!(
                    "credentials were given but this {} has no MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256",
                    class.name()
                ),
            ));
        }
    }
    let failed = problems.len() > malformed_count;
    report.verdict = if malformed {
        Verdict::Malformed
    } else if failed {
        Verdict::IntegrityFailed
    } else {
        Verdict::Ok
    };
    for (check, offset, message) in problems {
        report.problem(check, offset, message);
    }
    for (check, offset, message) in notes {
        report.note(check, offset, message);
    }
}

/// Sets FINGERPRINT and the integrity attributes to "not checked" where present.
fn mark_present(stun: &mut StunReport) {
    for a in &stun.attributes {
        if a.ignored {
            continue;
        }
        match a.name {
            Some("FINGERPRINT") => stun.fingerprint = Check::NotChecked,
            Some("MESSAGE-INTEGRITY") => stun.message_integrity = Check::NotChecked,
            Some("MESSAGE-INTEGRITY-SHA256") => stun.message_integrity_sha256 = Check::NotChecked,
            _ => {}
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Hex of at most the first 32 bytes, with `...` and the length if there are more.
pub fn hex_short(bytes: &[u8]) -> String {
    match bytes.get(..32) {
        Some(first) if bytes.len() > 32 => format!("{}... ({} bytes)", hex(first), bytes.len()),
        _ => hex(bytes),
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    #[test]
    fn long_term_credentials_split_at_the_last_two_colons() {
        let Some(Credentials::LongTerm {
            username,
            realm,
            password,
        }) = Credentials::parse_long_term("1700000000:alice:example.org:s3cret")
        else {
            panic!("not parsed");
        };
        assert_eq!(
            (username.as_str(), realm.as_str(), password.as_str()),
            ("1700000000:alice", "example.org", "s3cret")
        );
        assert!(Credentials::parse_long_term("user:pw").is_none());
    }

    #[test]
    fn an_empty_message_is_not_stun_turn() {
        let r = analyze(&[], None);
        assert_eq!(r.verdict, Verdict::NotStunTurn);
        assert_eq!(r.problems[0].check, "demux");
    }

    #[test]
    fn a_header_alone_is_a_well_formed_message() {
        let mut m = vec![0, 1, 0, 0];
        m.extend_from_slice(&floe_stun::MAGIC_COOKIE.to_be_bytes());
        m.extend_from_slice(&[1; 12]);
        let r = analyze(&m, None);
        assert_eq!(r.verdict, Verdict::Ok, "{r:?}");
        let stun = r.stun.unwrap();
        assert_eq!(stun.method, "Binding");
        assert_eq!(stun.transaction_id, "010101010101010101010101");
        assert!(stun.attributes.is_empty());
    }

    #[test]
    fn the_largest_message_of_empty_attributes_is_judged_quickly() {
        // 16383 unknown comprehension-optional attributes of length 0, all of one type
        // (16382 repeats to note): every check walks the message a bounded number of
        // times.
        let body_len = 0xFFFC;
        let mut m = vec![0, 1];
        m.extend_from_slice(&(body_len as u16).to_be_bytes());
        m.extend_from_slice(&floe_stun::MAGIC_COOKIE.to_be_bytes());
        m.extend_from_slice(&[1; 12]);
        while m.len() < 20 + body_len {
            m.extend_from_slice(&[0xC0, 0x10, 0, 0]);
        }
        let start = std::time::Instant::now();
        let r = analyze(&m, Some(&Credentials::ShortTerm("pw".to_owned())));
        assert_eq!(r.notes.len(), 16382);
        assert_eq!(r.stun.unwrap().attributes.len(), 16383);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
