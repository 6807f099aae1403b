//! The security attributes as values: MESSAGE-INTEGRITY (RFC 8489 §14.5),
//! MESSAGE-INTEGRITY-SHA256 (§14.6), FINGERPRINT (§14.7) and USERHASH (§14.4).
//!
//! These decode for inspection; to add and check integrity and fingerprints use
//! [`crate::MessageBuilder::add_message_integrity`], [`crate::MessageBuilder::add_fingerprint`]
//! and [`crate::Message::verify`], which take care of the length adjustments.

use super::{AttrType, Attribute, RawAttribute};
use crate::{Error, TransactionId};

/// MESSAGE-INTEGRITY (RFC 8489 §14.5): a 20-byte HMAC-SHA1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageIntegrity<'a>(pub &'a [u8; 20]);

impl<'a> Attribute<'a> for MessageIntegrity<'a> {
    const TYPE: AttrType = AttrType::MESSAGE_INTEGRITY;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        raw.fixed::<20>("MESSAGE-INTEGRITY", "20")
            .map(MessageIntegrity)
    }

    fn value_len(&self) -> usize {
        20
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        out.copy_from_slice(self.0);
    }
}

/// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6): an HMAC-SHA256, possibly truncated to
/// 16-32 bytes in steps of 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageIntegritySha256<'a>(pub &'a [u8]);

/// Whether `len` is a length RFC 8489 §14.6 allows for MESSAGE-INTEGRITY-SHA256.
pub(crate) fn valid_sha256_len(len: usize) -> bool {
    (16..=32).contains(&len) && len % 4 == 0
}

impl<'a> Attribute<'a> for MessageIntegritySha256<'a> {
    const TYPE: AttrType = AttrType::MESSAGE_INTEGRITY_SHA256;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        if valid_sha256_len(raw.value.len()) {
            Ok(MessageIntegritySha256(raw.value))
        } else {
            Err(raw.bad_length("MESSAGE-INTEGRITY-SHA256", "16 to 32, a multiple of 4"))
        }
    }

    fn value_len(&self) -> usize {
        self.0.len()
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        out.copy_from_slice(self.0);
    }

    fn validate(&self) -> Result<(), Error> {
        if valid_sha256_len(self.0.len()) {
            Ok(())
        } else {
            Err(Error::InvalidInput {
                what: "MESSAGE-INTEGRITY-SHA256 must be 16 to 32 bytes, a multiple of 4",
            })
        }
    }
}

/// FINGERPRINT (RFC 8489 §14.7): CRC-32 of the message XOR 0x5354554e.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub u32);

impl<'a> Attribute<'a> for Fingerprint {
    const TYPE: AttrType = AttrType::FINGERPRINT;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        raw.fixed::<4>("FINGERPRINT", "4")
            .map(|b| Fingerprint(u32::from_be_bytes(*b)))
    }

    fn value_len(&self) -> usize {
        4
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        out.copy_from_slice(&self.0.to_be_bytes());
    }
}

/// USERHASH (RFC 8489 §14.4): SHA-256(username ":" realm), sent instead of USERNAME for
/// anonymity. Compute it with [`crate::credentials::userhash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserHash<'a>(pub &'a [u8; 32]);

impl<'a> Attribute<'a> for UserHash<'a> {
    const TYPE: AttrType = AttrType::USERHASH;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        raw.fixed::<32>("USERHASH", "32").map(UserHash)
    }

    fn value_len(&self) -> usize {
        32
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        out.copy_from_slice(self.0);
    }
}
