//! Writing messages into a caller's buffer (RFC 8489 §5, §14), with MESSAGE-INTEGRITY,
//! MESSAGE-INTEGRITY-SHA256 and FINGERPRINT appended in place.

use crate::attributes::{AttrType, Attribute};
use crate::header::{MessageType, TransactionId, HEADER_LEN, MAGIC_COOKIE, MAX_MESSAGE_LEN};
use crate::integrity::{IntegrityKey, Sha1Key};
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
        let have = buf.len();
        let header: &mut [u8; HEADER_LEN] = buf.first_chunk_mut().ok_or(Error::BufferTooSmall {
            needed: HEADER_LEN,
            have,
        })?;
        let [t0, t1] = typ.to_u16().to_be_bytes();
        let [c0, c1, c2, c3] = MAGIC_COOKIE.to_be_bytes();
        let [i0, i1, i2, i3, i4, i5, i6, i7, i8, i9, i10, i11] = tid.0;
        *header = [
            t0, t1, 0, 0, c0, c1, c2, c3, i0, i1, i2, i3, i4, i5, i6, i7, i8, i9, i10, i11,
        ];
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
        let reserved = self.reserve(A::TYPE, attr.value_len())?;
        attr.encode(&tid, reserved.value);
        Ok(self)
    }

    /// Appends an attribute with an arbitrary type and value (for types floe does not
    /// know, and for tests that need malformed values).
    pub fn add_raw(&mut self, typ: AttrType, value: &[u8]) -> Result<&mut Self, Error> {
        self.check_order(typ)?;
        self.reserve(typ, value.len())?.value.copy_from_slice(value);
        Ok(self)
    }

    /// Appends MESSAGE-INTEGRITY (RFC 8489 §14.5): HMAC-SHA1 over the message so far with
    /// the length field counting this attribute, with an [`IntegrityKey`] or its
    /// [`Sha1Key`].
    pub fn add_message_integrity<K: AsRef<Sha1Key> + ?Sized>(
        &mut self,
        key: &K,
    ) -> Result<&mut Self, Error> {
        self.check_order(AttrType::MESSAGE_INTEGRITY)?;
        // Reserve first: the header length then counts MESSAGE-INTEGRITY, as the HMAC
        // input must (RFC 8489 §14.5).
        let reserved = self.reserve(AttrType::MESSAGE_INTEGRITY, 20)?;
        let mac = key.as_ref().hmac(reserved.header, reserved.body);
        reserved.value.copy_from_slice(&mac);
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
        // The header length counts MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).
        let reserved = self.reserve(AttrType::MESSAGE_INTEGRITY_SHA256, 32)?;
        let mac = key.hmac_sha256(reserved.header, reserved.body);
        reserved.value.copy_from_slice(&mac);
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
        // Reserve first so the header length already counts FINGERPRINT.
        let reserved = self.reserve(AttrType::FINGERPRINT, 4)?;
        let crc = crate::fingerprint::compute_parts(reserved.header, reserved.body);
        reserved.value.copy_from_slice(&crc.to_be_bytes());
        self.sealed = true;
        Ok(self)
    }

    /// The finished message.
    pub fn finish(self) -> &'b [u8] {
        let MessageBuilder { buf, len, .. } = self;
        // `len` only grows in `reserve`, after checking the buffer holds it.
        buf.get(..len).unwrap_or_default()
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
    /// the value's bytes to fill with what comes before them.
    fn reserve(&mut self, typ: AttrType, value_len: usize) -> Result<Reserved<'_>, Error> {
        let value_len16 = u16::try_from(value_len).map_err(|_| Error::TooLong)?;
        let start = self.len;
        let end = start + 4 + value_len.next_multiple_of(4);
        if end > MAX_MESSAGE_LEN {
            return Err(Error::TooLong);
        }
        let too_small = Error::BufferTooSmall {
            needed: end,
            have: self.buf.len(),
        };
        // `HEADER_LEN <= start < end`, so once `..end` is there every split below succeeds.
        let (before, attribute) = self
            .buf
            .get_mut(..end)
            .and_then(|message| message.split_at_mut_checked(start))
            .ok_or(too_small)?;
        let (header, body) = before.split_first_chunk_mut().ok_or(too_small)?;
        let (attribute_header, rest) = attribute.split_first_chunk_mut().ok_or(too_small)?;
        let (value, padding) = rest.split_at_mut_checked(value_len).ok_or(too_small)?;
        let [t0, t1] = typ.0.to_be_bytes();
        let [l0, l1] = value_len16.to_be_bytes();
        *attribute_header = [t0, t1, l0, l1];
        padding.fill(self.padding);
        set_length(header, end - HEADER_LEN);
        self.len = end;
        Ok(Reserved {
            header,
            body,
            value,
        })
    }
}

/// Room for one attribute value, and the message before it (for the integrity attributes
/// and FINGERPRINT, which cover everything before them).
struct Reserved<'m> {
    header: &'m [u8; HEADER_LEN],
    body: &'m [u8],
    value: &'m mut [u8],
}

/// Writes the header's message length field.
fn set_length(header: &mut [u8; HEADER_LEN], length: usize) {
    let [l0, l1] = (length as u16).to_be_bytes();
    header[2] = l0;
    header[3] = l1;
}
