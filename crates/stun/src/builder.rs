//! Writing messages into a caller's buffer (RFC 8489 §5, §14), with MESSAGE-INTEGRITY,
//! MESSAGE-INTEGRITY-SHA256 and FINGERPRINT appended in place.

use crate::attributes::{AttrType, Attribute};
use crate::header::{MessageType, TransactionId, HEADER_LEN, MAGIC_COOKIE, MAX_MESSAGE_LEN};
use crate::integrity::{adjusted_header, IntegrityKey};
use crate::Error;

/// Builds one message in a caller-provided buffer. Nothing is allocated; the header's
/// length field is kept current after every attribute.
///
/// ```
/// use floe_stun::{attributes::*, IntegrityKey, Message, MessageBuilder, MessageType, TransactionId};
///
/// let key = IntegrityKey::short_term("VOkJxbRl1RmTxUk/WvJxBt")?;
/// let mut buf = [0u8; 256];
/// let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId([7; 12]))?;
/// b.add(&Username("evtj:h6vY"))?;
/// b.add(&Priority(0x6e0001ff))?;
/// b.add(&IceControlling(0x932ff9b151263b36))?;
/// b.add(&UseCandidate)?;
/// b.add_message_integrity(&key)?;
/// b.add_fingerprint()?;
/// let bytes = b.finish();
///
/// let msg = Message::parse(bytes)?;
/// msg.verify(&key)?;
/// assert_eq!(msg.get::<Username>()?, Some(Username("evtj:h6vY")));
/// # Ok::<(), floe_stun::Error>(())
/// ```
#[derive(Debug)]
pub struct MessageBuilder<'b> {
    buf: &'b mut [u8],
    len: usize,
    tid: TransactionId,
    after: Option<&'static str>,
    sealed: bool,
    padding: u8,
}

impl<'b> MessageBuilder<'b> {
    /// Starts a message of type `typ` with transaction id `tid` in `buf`.
    pub fn new(
        buf: &'b mut [u8],
        typ: MessageType,
        tid: TransactionId,
    ) -> Result<MessageBuilder<'b>, Error> {
        if buf.len() < HEADER_LEN {
            return Err(Error::BufferTooSmall {
                needed: HEADER_LEN,
                have: buf.len(),
            });
        }
        buf[..2].copy_from_slice(&typ.to_u16().to_be_bytes());
        buf[2..4].fill(0);
        buf[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf[8..20].copy_from_slice(&tid.0);
        Ok(MessageBuilder {
            buf,
            len: HEADER_LEN,
            tid,
            after: None,
            sealed: false,
            padding: 0,
        })
    }

    /// Sets the byte used to pad attribute values to 4 bytes (default 0). RFC 8489 §14
    /// lets senders use any value and receivers ignore it; some RFC 3489-era stacks pad
    /// with spaces, as the RFC 5769 vectors do.
    pub fn set_padding_byte(&mut self, byte: u8) -> &mut Self {
        self.padding = byte;
        self
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether only the header has been written.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// Appends a typed attribute. Refused after MESSAGE-INTEGRITY(-SHA256) or FINGERPRINT,
    /// since a receiver would ignore it (RFC 8489 §14.5-14.7).
    pub fn add<'a, A: Attribute<'a>>(&mut self, attr: &A) -> Result<&mut Self, Error> {
        attr.validate()?;
        self.check_order(A::TYPE)?;
        let tid = self.tid;
        let value = self.reserve(A::TYPE, attr.value_len())?;
        attr.encode(&tid, value);
        Ok(self)
    }

    /// Appends an attribute with an arbitrary type and value (for types floe does not
    /// know, and for tests that need malformed values).
    pub fn add_raw(&mut self, typ: AttrType, value: &[u8]) -> Result<&mut Self, Error> {
        self.check_order(typ)?;
        self.reserve(typ, value.len())?.copy_from_slice(value);
        Ok(self)
    }

    /// Appends MESSAGE-INTEGRITY (RFC 8489 §14.5): HMAC-SHA1 over the message so far with
    /// the length field counting this attribute.
    pub fn add_message_integrity(&mut self, key: &IntegrityKey) -> Result<&mut Self, Error> {
        self.check_order(AttrType::MESSAGE_INTEGRITY)?;
        let body_end = self.len;
        let header = adjusted_header(self.buf, body_end + 24 - HEADER_LEN);
        let mac = key.hmac_sha1(&header, &self.buf[HEADER_LEN..body_end]);
        self.reserve(AttrType::MESSAGE_INTEGRITY, 20)?
            .copy_from_slice(&mac);
        self.after = Some("MESSAGE-INTEGRITY");
        Ok(self)
    }

    /// Appends a full 32-byte MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6). Allowed after
    /// MESSAGE-INTEGRITY, not before it.
    pub fn add_message_integrity_sha256(&mut self, key: &IntegrityKey) -> Result<&mut Self, Error> {
        if self.sealed || self.after == Some("MESSAGE-INTEGRITY-SHA256") {
            return Err(Error::BadAttributeOrder {
                typ: AttrType::MESSAGE_INTEGRITY_SHA256,
                after: if self.sealed {
                    "FINGERPRINT"
                } else {
                    "MESSAGE-INTEGRITY-SHA256"
                },
            });
        }
        let body_end = self.len;
        let header = adjusted_header(self.buf, body_end + 36 - HEADER_LEN);
        let mac = key.hmac_sha256(&header, &self.buf[HEADER_LEN..body_end]);
        self.reserve(AttrType::MESSAGE_INTEGRITY_SHA256, 32)?
            .copy_from_slice(&mac);
        self.after = Some("MESSAGE-INTEGRITY-SHA256");
        Ok(self)
    }

    /// Appends FINGERPRINT (RFC 8489 §14.7), which must be last.
    pub fn add_fingerprint(&mut self) -> Result<&mut Self, Error> {
        if self.sealed {
            return Err(Error::BadAttributeOrder {
                typ: AttrType::FINGERPRINT,
                after: "FINGERPRINT",
            });
        }
        let body_end = self.len;
        // Reserve first so the header length already counts FINGERPRINT.
        self.reserve(AttrType::FINGERPRINT, 4)?;
        let crc = crate::fingerprint::compute(&self.buf[..body_end]);
        self.buf[body_end + 4..body_end + 8].copy_from_slice(&crc.to_be_bytes());
        self.sealed = true;
        Ok(self)
    }

    /// The finished message.
    pub fn finish(self) -> &'b [u8] {
        let MessageBuilder { buf, len, .. } = self;
        &buf[..len]
    }

    fn check_order(&self, typ: AttrType) -> Result<(), Error> {
        if self.sealed {
            return Err(Error::BadAttributeOrder {
                typ,
                after: "FINGERPRINT",
            });
        }
        if let Some(after) = self.after {
            return Err(Error::BadAttributeOrder { typ, after });
        }
        Ok(())
    }

    /// Writes the attribute header and padding, updates the message length, and returns
    /// the value's bytes to fill.
    fn reserve(&mut self, typ: AttrType, value_len: usize) -> Result<&mut [u8], Error> {
        let value_len16 = u16::try_from(value_len).map_err(|_| Error::TooLong)?;
        let start = self.len;
        let end = start + 4 + value_len.next_multiple_of(4);
        if end > MAX_MESSAGE_LEN {
            return Err(Error::TooLong);
        }
        if end > self.buf.len() {
            return Err(Error::BufferTooSmall {
                needed: end,
                have: self.buf.len(),
            });
        }
        self.buf[start..start + 2].copy_from_slice(&typ.0.to_be_bytes());
        self.buf[start + 2..start + 4].copy_from_slice(&value_len16.to_be_bytes());
        self.buf[start + 4 + value_len..end].fill(self.padding);
        self.len = end;
        self.buf[2..4].copy_from_slice(&((end - HEADER_LEN) as u16).to_be_bytes());
        Ok(&mut self.buf[start + 4..start + 4 + value_len])
    }
}
