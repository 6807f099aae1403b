//! The borrowed, zero-copy message view (RFC 8489 §5, §14).
//!
//! [`Message::parse`] checks the header and walks the attributes once, validating every
//! length, the padding, and the placement rules for MESSAGE-INTEGRITY,
//! MESSAGE-INTEGRITY-SHA256 and FINGERPRINT. After that, attributes are decoded on demand
//! with [`Message::get`]; nothing is copied or allocated.

use crate::attributes::{AttrType, Attribute, RawAttribute};
use crate::header::{Class, MessageType, Method, TransactionId, HEADER_LEN, MAGIC_COOKIE};
use crate::Error;

/// How strictly [`Message::parse_with`] judges a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseOptions {
    /// Check FINGERPRINT when present (default `true`). A wrong fingerprint means the
    /// datagram is not STUN at all (RFC 8489 §7.3, §14.7), so floe checks it by default.
    pub check_fingerprint: bool,
    /// Reject a message without FINGERPRINT (default `false`; ICE requires one in checks,
    /// RFC 8445 §7.2.2, but that is the agent's rule).
    pub require_fingerprint: bool,
    /// Reject a second occurrence of an attribute that may appear only once (default
    /// `false`: RFC 8489 §14 lets a receiver process only the first occurrence).
    pub reject_duplicates: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            check_fingerprint: true,
            require_fingerprint: false,
            reject_duplicates: false,
        }
    }
}

impl ParseOptions {
    /// The strictest options: FINGERPRINT required and checked, no duplicates.
    pub fn strict() -> Self {
        ParseOptions {
            check_fingerprint: true,
            require_fingerprint: true,
            reject_duplicates: true,
        }
    }

    /// Structure only: FINGERPRINT is not checked (for tools that report it separately).
    pub fn structure_only() -> Self {
        ParseOptions {
            check_fingerprint: false,
            require_fingerprint: false,
            reject_duplicates: false,
        }
    }
}

/// A validated STUN message borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
    typ: MessageType,
    tid: TransactionId,
    /// Where the attribute headers that count for verification start (see
    /// [`body_offset`]).
    integrity: Option<u16>,
    integrity_sha256: Option<u16>,
    fingerprint: Option<u16>,
    /// Attributes after MESSAGE-INTEGRITY(-SHA256) that are not integrity or FINGERPRINT;
    /// RFC 8489 §14.5-14.6 says to ignore them, and they are not returned.
    ignored: u16,
    /// The first [`INDEX_LEN`] counted attributes as (type, body offset), so that `get`
    /// does not re-walk the message; `indexed` of them are valid. Messages with more
    /// attributes fall back to a walk for the rest.
    index: [(u16, u16); INDEX_LEN],
    indexed: u8,
    overflowed: bool,
}

/// Offsets kept in a [`Message`] count from the end of the header: a message on a stream
/// is up to 65552 bytes, so an attribute can start past byte 65535, but never more than
/// 65528 bytes after the header (its own header needs 4 of the 65532 body bytes).
fn body_offset(at: usize) -> Result<u16, Error> {
    // `at >= HEADER_LEN`; were it not, the wrapped difference would fail the conversion.
    u16::try_from(at.wrapping_sub(HEADER_LEN)).map_err(|_| Error::TooLong)
}

fn message_offset(body_offset: u16) -> usize {
    HEADER_LEN + usize::from(body_offset)
}

/// Attributes remembered by [`Message`] during the parse walk. An ICE check has 6, a TURN
/// Allocate response about 8.
const INDEX_LEN: usize = 12;

/// Whether `buf` has the magic cookie where a STUN header carries it (RFC 8489 §5):
/// what tells a STUN message from other traffic that shares the first-byte range.
pub fn has_magic_cookie(buf: &[u8]) -> bool {
    buf.get(4..8) == Some(&crate::MAGIC_COOKIE.to_be_bytes()[..])
}

/// The transaction id of what looks like a STUN message (first byte 0-3, the magic
/// cookie in place), read without parsing the rest: for routing a datagram to its
/// transaction before it is parsed.
pub fn peek_transaction_id(buf: &[u8]) -> Option<crate::TransactionId> {
    if !matches!(buf.first(), Some(0..=3)) || !has_magic_cookie(buf) {
        return None;
    }
    buf.get(8..20)
        .and_then(|id| <[u8; 12]>::try_from(id).ok())
        .map(crate::TransactionId)
}

/// Reads the first four header fields and checks what can be checked without the body:
/// the two zero bits, the cookie, the length alignment. Returns the type and the total
/// message length the header announces (header included). Used by stream framing too.
pub fn peek_header(buf: &[u8]) -> Result<(MessageType, usize), Error> {
    header_of(buf).and_then(check_header)
}

/// The fixed-size header at the start of `buf`, so that every header field is read from
/// an array the compiler knows is 20 bytes long.
fn header_of(buf: &[u8]) -> Result<&[u8; HEADER_LEN], Error> {
    buf.first_chunk().ok_or(Error::Truncated {
        needed: HEADER_LEN,
        have: buf.len(),
    })
}

fn check_header(header: &[u8; HEADER_LEN]) -> Result<(MessageType, usize), Error> {
    let [t0, t1, l0, l1, c0, c1, c2, c3, ..] = *header;
    if t0 & 0xC0 != 0 {
        return Err(Error::NotStun { first_byte: t0 });
    }
    let cookie = u32::from_be_bytes([c0, c1, c2, c3]);
    if cookie != MAGIC_COOKIE {
        return Err(Error::ClassicStun { found: cookie });
    }
    let length = u16::from_be_bytes([l0, l1]);
    if length % 4 != 0 {
        return Err(Error::LengthNotAligned { length });
    }
    let typ = MessageType::from_u16(u16::from_be_bytes([t0, t1]));
    Ok((typ, HEADER_LEN + usize::from(length)))
}

/// Tracks the RFC 8489 §14.5-14.7 placement rules while walking attributes.
#[derive(Debug, Clone, Copy, Default)]
struct Placement {
    integrity: bool,
    integrity_sha256: bool,
    fingerprint: bool,
}

/// What the walk should do with an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Count,
    Integrity,
    IntegritySha256,
    Fingerprint,
    Ignore,
}

impl Placement {
    fn judge(&mut self, typ: AttrType) -> Verdict {
        match typ {
            AttrType::FINGERPRINT => {
                self.fingerprint = true;
                Verdict::Fingerprint
            }
            // MESSAGE-INTEGRITY-SHA256 may follow MESSAGE-INTEGRITY, not the other way
            // round (RFC 8489 §14.6).
            AttrType::MESSAGE_INTEGRITY if !self.integrity && !self.integrity_sha256 => {
                self.integrity = true;
                Verdict::Integrity
            }
            AttrType::MESSAGE_INTEGRITY_SHA256 if !self.integrity_sha256 => {
                self.integrity_sha256 = true;
                Verdict::IntegritySha256
            }
            _ if self.integrity || self.integrity_sha256 => Verdict::Ignore,
            _ => Verdict::Count,
        }
    }
}

/// Reads the attribute at `at`: its header, its value, and where the next one starts
/// (after the padding).
fn attribute_at(buf: &[u8], at: usize) -> Result<(RawAttribute<'_>, usize), Error> {
    let Some((&[t0, t1, l0, l1], rest)) = buf.get(at..).and_then(<[u8]>::split_first_chunk) else {
        return Err(Error::AttributeHeaderTruncated { offset: at });
    };
    let typ = AttrType(u16::from_be_bytes([t0, t1]));
    let length = u16::from_be_bytes([l0, l1]);
    let padded = usize::from(length).next_multiple_of(4);
    // The value and its padding must both be inside the message.
    match rest.get(..usize::from(length)) {
        Some(value) if padded <= rest.len() => Ok((
            RawAttribute {
                typ,
                value,
                offset: at,
            },
            at + 4 + padded,
        )),
        _ => Err(Error::AttributeOverflow {
            typ,
            offset: at,
            length,
        }),
    }
}

impl<'a> Message<'a> {
    /// Parses with the default [`ParseOptions`] (structure checked, FINGERPRINT checked
    /// when present, duplicates allowed).
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, Error> {
        Message::parse_with(buf, ParseOptions::default())
    }

    /// Parses and validates `buf`, which must hold exactly one message (one UDP datagram,
    /// or one frame cut from a stream with [`crate::framing`]).
    pub fn parse_with(buf: &'a [u8], options: ParseOptions) -> Result<Message<'a>, Error> {
        let header = header_of(buf)?;
        let (typ, total) = check_header(header)?;
        if total != buf.len() {
            return Err(Error::LengthMismatch {
                declared: total - HEADER_LEN,
                actual: buf.len() - HEADER_LEN,
            });
        }
        let [_, _, _, _, _, _, _, _, tid @ ..] = *header;
        let mut msg = Message {
            buf,
            typ,
            tid: TransactionId(tid),
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
            ignored: 0,
            index: [(0, 0); INDEX_LEN],
            indexed: 0,
            overflowed: false,
        };
        // A bit per possible attribute type: O(1) duplicate detection without allocating.
        let mut seen: Option<[u64; 1024]> = options.reject_duplicates.then_some([0u64; 1024]);
        let mut placement = Placement::default();
        // Where FINGERPRINT is and the value it carries, to check once the walk is done.
        let mut fingerprint = None;
        let mut at = HEADER_LEN;
        while at < buf.len() {
            let (raw, next) = attribute_at(buf, at)?;
            if placement.fingerprint {
                return Err(Error::AttributeAfterFingerprint {
                    typ: raw.typ,
                    offset: at,
                });
            }
            let offset = body_offset(at)?;
            let verdict = placement.judge(raw.typ);
            match verdict {
                Verdict::Integrity => {
                    raw.fixed::<20>("MESSAGE-INTEGRITY", "20")?;
                    msg.integrity = Some(offset);
                }
                Verdict::IntegritySha256 => {
                    crate::attributes::MessageIntegritySha256::decode(&raw, &msg.tid)?;
                    msg.integrity_sha256 = Some(offset);
                }
                Verdict::Fingerprint => {
                    let value = raw.fixed::<4>("FINGERPRINT", "4")?;
                    msg.fingerprint = Some(offset);
                    fingerprint = Some((at, u32::from_be_bytes(*value)));
                }
                Verdict::Ignore => msg.ignored += 1,
                Verdict::Count => {}
            }
            if verdict != Verdict::Ignore {
                if let Some(slot) = msg.index.get_mut(usize::from(msg.indexed)) {
                    *slot = (raw.typ.0, offset);
                    msg.indexed += 1;
                } else {
                    msg.overflowed = true;
                }
            }
            if let Some(seen) = seen.as_mut() {
                // 65536 types / 64 bits = 1024 words: `word` is always in range.
                let (word, bit) = (usize::from(raw.typ.0 / 64), raw.typ.0 % 64);
                if let Some(word) = seen.get_mut(word) {
                    if *word & (1 << bit) != 0 && !raw.typ.may_repeat() {
                        return Err(Error::DuplicateAttribute {
                            typ: raw.typ,
                            offset: at,
                        });
                    }
                    *word |= 1 << bit;
                }
            }
            at = next;
        }
        if let (true, Some((at, found))) = (options.check_fingerprint, fingerprint) {
            check_fingerprint_at(buf, at, found)?;
        }
        if options.require_fingerprint && msg.fingerprint.is_none() {
            return Err(Error::MissingFingerprint);
        }
        Ok(msg)
    }

    /// The message type (method and class).
    pub fn message_type(&self) -> MessageType {
        self.typ
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.typ.method
    }

    /// The class.
    pub fn class(&self) -> Class {
        self.typ.class
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Number of attributes after MESSAGE-INTEGRITY(-SHA256) that were ignored, as RFC
    /// 8489 §14.5 requires (they are not covered by the integrity check).
    pub fn ignored_after_integrity(&self) -> usize {
        usize::from(self.ignored)
    }

    /// The attributes in order, without those ignored after the integrity attributes.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            buf: self.buf,
            at: HEADER_LEN,
            placement: Placement::default(),
        }
    }

    /// Every attribute in order, including those RFC 8489 §14.5 says to ignore (for
    /// diagnostics).
    pub fn all_attributes(&self) -> impl Iterator<Item = RawAttribute<'a>> {
        let buf = self.buf;
        let mut at = HEADER_LEN;
        core::iter::from_fn(move || {
            let (raw, next) = attribute_at(buf, at).ok()?;
            at = next;
            Some(raw)
        })
    }

    /// The first attribute of type `typ`, raw.
    pub fn get_raw(&self, typ: AttrType) -> Option<RawAttribute<'a>> {
        // `indexed` never exceeds INDEX_LEN: the walk stops filling `index` when it is full.
        let indexed = self
            .index
            .get(..usize::from(self.indexed))
            .unwrap_or_default();
        if let Some(&(_, offset)) = indexed.iter().find(|(t, _)| *t == typ.0) {
            // The walk in `parse` validated this attribute.
            return attribute_at(self.buf, message_offset(offset))
                .ok()
                .map(|(raw, _)| raw);
        }
        if !self.overflowed {
            return None;
        }
        self.attributes().skip(indexed.len()).find(|a| a.typ == typ)
    }

    /// The types of the attributes [`Message::get_raw`] sees, in order: from the parse
    /// index, without walking the message again (unless it has many attributes). One
    /// pass for a caller that asks about several types.
    pub fn attribute_types(&self) -> impl Iterator<Item = AttrType> + '_ {
        let indexed = self
            .index
            .get(..usize::from(self.indexed))
            .unwrap_or_default();
        let rest = self
            .overflowed
            .then(|| self.attributes().skip(indexed.len()).map(|a| a.typ));
        indexed
            .iter()
            .map(|(t, _)| AttrType(*t))
            .chain(rest.into_iter().flatten())
    }

    /// Whether an attribute of type `typ` is present (and not ignored).
    pub fn has(&self, typ: AttrType) -> bool {
        self.get_raw(typ).is_some()
    }

    /// The first attribute of type `A`, decoded: `Ok(None)` when absent, an error when
    /// present but malformed. RFC 8489 §14: only the first occurrence is processed.
    pub fn get<A: Attribute<'a>>(&self) -> Result<Option<A>, Error> {
        self.get_raw(A::TYPE)
            .map(|raw| A::decode(&raw, &self.tid))
            .transpose()
    }

    /// Every attribute of type `A`, decoded (XOR-PEER-ADDRESS may repeat in
    /// CreatePermission, RFC 8656 §9.1).
    pub fn get_all<A: Attribute<'a> + 'a>(&self) -> impl Iterator<Item = Result<A, Error>> + 'a {
        let tid = self.tid;
        self.attributes()
            .filter(|a| a.typ == A::TYPE)
            .map(move |raw| A::decode(&raw, &tid))
    }

    /// The comprehension-required attribute types floe does not know, for a 420 response
    /// with UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1).
    pub fn unknown_comprehension_required(&self) -> impl Iterator<Item = AttrType> + 'a {
        self.attributes()
            .map(|a| a.typ)
            .filter(|t| t.is_comprehension_required() && !t.is_known())
    }

    /// Whether any attribute is comprehension-required and unknown to floe: the check
    /// before [`Message::unknown_comprehension_required`], from the index `parse` built
    /// (no walk over the attributes unless there were more than it holds).
    pub fn has_unknown_comprehension_required(&self) -> bool {
        let unknown = |t: AttrType| t.is_comprehension_required() && !t.is_known();
        let indexed = self
            .index
            .get(..usize::from(self.indexed))
            .unwrap_or_default();
        if indexed.iter().any(|(t, _)| unknown(AttrType(*t))) {
            return true;
        }
        self.overflowed
            && self
                .attributes()
                .skip(indexed.len())
                .any(|a| unknown(a.typ))
    }

    /// Offset of the MESSAGE-INTEGRITY attribute header, if present.
    pub fn integrity_offset(&self) -> Option<usize> {
        self.integrity.map(message_offset)
    }

    /// Offset of the MESSAGE-INTEGRITY-SHA256 attribute header, if present.
    pub fn integrity_sha256_offset(&self) -> Option<usize> {
        self.integrity_sha256.map(message_offset)
    }

    /// Offset of the FINGERPRINT attribute header, if present.
    pub fn fingerprint_offset(&self) -> Option<usize> {
        self.fingerprint.map(message_offset)
    }

    /// Checks FINGERPRINT (RFC 8489 §14.7): CRC-32 of everything before it, XOR
    /// 0x5354554e. [`Message::parse`] already did this; it is here for callers that
    /// parsed with [`ParseOptions::structure_only`].
    pub fn check_fingerprint(&self) -> Result<(), Error> {
        let at = self.fingerprint_offset().ok_or(Error::MissingFingerprint)?;
        // FINGERPRINT is last, so the header length already covers it.
        let (_, attribute) = self.split_at_attribute(at)?;
        // `parse` checked the value is 4 bytes.
        let &[_, _, _, _, f0, f1, f2, f3] = attribute
            .first_chunk()
            .ok_or(Error::AttributeHeaderTruncated { offset: at })?;
        check_fingerprint_at(self.buf, at, u32::from_be_bytes([f0, f1, f2, f3]))
    }
}

/// Compares `found`, the value of the FINGERPRINT at `at`, with the CRC of what is
/// before it (RFC 8489 §14.7).
fn check_fingerprint_at(buf: &[u8], at: usize, found: u32) -> Result<(), Error> {
    let covered = buf
        .get(..at)
        .ok_or(Error::AttributeHeaderTruncated { offset: at })?;
    let expected = crate::fingerprint::compute(covered);
    if expected == found {
        Ok(())
    } else {
        Err(Error::FingerprintMismatch { expected, found })
    }
}

impl<'a> Message<'a> {
    /// The bytes before the attribute at `at`, which the integrity and fingerprint checks
    /// cover, and the bytes from its header on. `at` is an offset `parse` recorded and
    /// validated, so the error does not happen.
    pub(crate) fn split_at_attribute(&self, at: usize) -> Result<(&'a [u8], &'a [u8]), Error> {
        self.buf
            .split_at_checked(at)
            .ok_or(Error::AttributeHeaderTruncated { offset: at })
    }
}

/// Iterator over a message's attributes; see [`Message::attributes`].
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    buf: &'a [u8],
    at: usize,
    placement: Placement,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = RawAttribute<'a>;

    fn next(&mut self) -> Option<RawAttribute<'a>> {
        loop {
            // The message was validated by `parse`, so every header and value is whole.
            let (raw, next) = attribute_at(self.buf, self.at).ok()?;
            self.at = next;
            if self.placement.judge(raw.typ) != Verdict::Ignore {
                return Some(raw);
            }
        }
    }
}

#[cfg(test)]
mod index_tests {
    use super::*;
    use crate::attributes::{Priority, Username};
    use crate::{IntegrityKey, MessageBuilder, MessageType, TransactionId};

    #[test]
    fn attribute_types_come_from_the_index_and_past_it_as_a_walk_gives_them() {
        for extra in [0u16, 11, 30] {
            let key = IntegrityKey::short_term("a-password-of-22-chars").unwrap();
            let mut buf = [0u8; 1024];
            let mut b = MessageBuilder::new(
                &mut buf,
                MessageType::BINDING_REQUEST,
                TransactionId([1; 12]),
            )
            .unwrap();
            b.add(&Username("a:b")).unwrap();
            for k in 0..extra {
                b.add_raw(AttrType(0x8100 + k), &[]).unwrap();
            }
            b.add(&Priority(1)).unwrap();
            b.add_message_integrity(&key).unwrap();
            b.add_fingerprint().unwrap();
            let len = b.len();
            let msg = Message::parse(&buf[..len]).unwrap();
            let walked: Vec<AttrType> = msg.attributes().map(|a| a.typ).collect();
            let types: Vec<AttrType> = msg.attribute_types().collect();
            assert_eq!(types, walked, "{extra} extra attributes");
            assert_eq!(types.len(), 4 + usize::from(extra));
            assert_eq!(types.first(), Some(&AttrType::USERNAME));
            assert!(types.contains(&AttrType::PRIORITY));
        }
    }
}

#[cfg(test)]
mod peek_tests {
    use super::*;

    #[test]
    fn peeking_reads_the_id_only_of_what_has_the_cookie() {
        let mut m = [0u8; 20];
        m[4..8].copy_from_slice(&crate::MAGIC_COOKIE.to_be_bytes());
        m[8..20].copy_from_slice(&[7; 12]);
        assert_eq!(peek_transaction_id(&m), Some(crate::TransactionId([7; 12])));
        assert!(has_magic_cookie(&m));
        m[0] = 0x40;
        assert_eq!(peek_transaction_id(&m), None, "ChannelData range");
        m[0] = 0;
        m[4] = 0;
        assert_eq!(peek_transaction_id(&m), None, "no cookie");
        assert!(!has_magic_cookie(&m));
        assert_eq!(peek_transaction_id(&m[..19]), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::{Padding, Priority};
    use crate::{MessageBuilder, MAX_MESSAGE_LEN};

    /// Regression: offsets were kept as `u16` from the start of the message, but on a
    /// stream (RFC 8489 §6.2.2) a message is up to 65552 bytes, so a small attribute can
    /// start past byte 65535. Its offset wrapped: a valid FINGERPRINT there failed
    /// (FingerprintMismatch) and `get` decoded whatever sat at the wrapped offset.
    #[test]
    fn attributes_past_byte_65535_of_a_stream_message_are_found() {
        let mut buf = vec![0u8; MAX_MESSAGE_LEN];
        let mut b = MessageBuilder::new(
            &mut buf,
            crate::MessageType::BINDING_REQUEST,
            TransactionId([9; 12]),
        )
        .unwrap();
        // 20 + 4 + 65512 = 65536: PRIORITY starts at 65536, FINGERPRINT at 65544.
        let padding = vec![0xAB; 65_512];
        b.add(&Padding(&padding)).unwrap();
        b.add(&Priority(0x6E00_01FF)).unwrap();
        b.add_fingerprint().unwrap();
        let bytes = b.finish();
        assert_eq!(bytes.len(), MAX_MESSAGE_LEN);

        let msg = Message::parse_with(bytes, ParseOptions::strict()).unwrap();
        assert_eq!(msg.fingerprint_offset(), Some(65_544));
        assert_eq!(msg.get::<Priority>(), Ok(Some(Priority(0x6E00_01FF))));
        assert_eq!(msg.get::<Padding>(), Ok(Some(Padding(&padding))));
        assert_eq!(msg.check_fingerprint(), Ok(()));
    }
}
