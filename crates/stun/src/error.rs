//! The one error type of floe-stun.

use crate::attributes::AttrType;

/// Everything that can be wrong with STUN bytes or with a message being built.
///
/// Offsets are byte offsets from the start of the message, pointing at the start of the
/// attribute header (type field) the error is about, so a tool can print
/// `attribute 0x0020 at offset 20: ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer bytes than a STUN header (20) or than a header field needs.
    #[error("truncated: need {needed} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        have: usize,
    },
    /// The two most significant bits of the first byte are not zero (RFC 8489 §5).
    #[error("not STUN: the first two bits must be zero (first byte {first_byte:#04x})")]
    NotStun {
        /// The offending first byte.
        first_byte: u8,
    },
    /// No magic cookie: a classic RFC 3489 message, which RFC 8489 clients and servers do
    /// not process (RFC 8489 §5, §6.3).
    #[error(
        "magic cookie {found:#010x} is not 0x2112a442: a classic RFC 3489 message, not supported"
    )]
    ClassicStun {
        /// The 32 bits found where the cookie belongs.
        found: u32,
    },
    /// The header's message length is not a multiple of 4 (RFC 8489 §5).
    #[error("message length {length} is not a multiple of 4")]
    LengthNotAligned {
        /// The length field.
        length: u16,
    },
    /// The header's message length disagrees with the bytes present (RFC 8489 §5).
    #[error("message length field says {declared} bytes after the header, {actual} present")]
    LengthMismatch {
        /// Length from the header.
        declared: usize,
        /// Bytes actually after the header.
        actual: usize,
    },
    /// Fewer than 4 bytes left for an attribute header (RFC 8489 §14).
    #[error("attribute header at offset {offset} truncated")]
    AttributeHeaderTruncated {
        /// Offset of the partial header.
        offset: usize,
    },
    /// An attribute's value (with its padding) runs past the end of the message (RFC 8489 §14).
    #[error(
        "attribute {typ} at offset {offset}: length {length} runs past the end of the message"
    )]
    AttributeOverflow {
        /// Attribute type.
        typ: AttrType,
        /// Offset of the attribute header.
        offset: usize,
        /// The attribute's length field.
        length: u16,
    },
    /// An attribute follows FINGERPRINT, which must be last (RFC 8489 §14.7).
    #[error("attribute {typ} at offset {offset} follows FINGERPRINT, which must be last")]
    AttributeAfterFingerprint {
        /// Attribute type.
        typ: AttrType,
        /// Offset of the attribute header.
        offset: usize,
    },
    /// An attribute appears twice where this parse mode allows one (strict mode only; RFC
    /// 8489 §14 lets receivers keep the first).
    #[error("attribute {typ} at offset {offset} is a duplicate")]
    DuplicateAttribute {
        /// Attribute type.
        typ: AttrType,
        /// Offset of the second occurrence.
        offset: usize,
    },
    /// An attribute value has a length its definition does not allow.
    #[error("attribute {typ} at offset {offset}: length {length}, {name} needs {expected}")]
    BadAttributeLength {
        /// Attribute type.
        typ: AttrType,
        /// Offset of the attribute header.
        offset: usize,
        /// The value length found.
        length: usize,
        /// Registry name of the attribute.
        name: &'static str,
        /// What the definition allows, in words ("8 or 20", "4", "at most 763").
        expected: &'static str,
    },
    /// An address attribute has a family other than 0x01 (IPv4) or 0x02 (IPv6)
    /// (RFC 8489 §14.1), or a family attribute names an unknown family (RFC 8656 §18.6).
    #[error("attribute {typ} at offset {offset}: unknown address family {family:#04x}")]
    BadAddressFamily {
        /// Attribute type.
        typ: AttrType,
        /// Offset of the attribute header.
        offset: usize,
        /// The family byte found.
        family: u8,
    },
    /// A text attribute is not UTF-8 (RFC 8489 §14.3, §14.8-14.10, §14.14).
    #[error("attribute {typ} at offset {offset}: value is not UTF-8")]
    InvalidUtf8 {
        /// Attribute type.
        typ: AttrType,
        /// Offset of the attribute header.
        offset: usize,
    },
    /// A value is outside the range its definition allows (for example an ERROR-CODE
    /// class outside 3..=6 or a number above 99, RFC 8489 §14.8).
    #[error("attribute {typ} at offset {offset}: invalid value ({what})")]
    InvalidValue {
        /// Attribute type.
        typ: AttrType,
        /// Offset of the attribute header.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 does not match (RFC 8489 §14.5, §14.6).
    #[error("{name} does not match")]
    IntegrityMismatch {
        /// Which attribute failed.
        name: &'static str,
    },
    /// The message has no MESSAGE-INTEGRITY(-SHA256) to verify.
    #[error("no MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 attribute")]
    MissingIntegrity,
    /// FINGERPRINT does not match the CRC-32 of the message (RFC 8489 §14.7).
    #[error("FINGERPRINT does not match (expected {expected:#010x}, found {found:#010x})")]
    FingerprintMismatch {
        /// The value computed over the message.
        expected: u32,
        /// The value in the attribute.
        found: u32,
    },
    /// The message has no FINGERPRINT and the caller required one.
    #[error("no FINGERPRINT attribute")]
    MissingFingerprint,
    /// The builder's buffer is too small for what was added.
    #[error("buffer too small: need {needed} bytes, have {have}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Capacity of the buffer.
        have: usize,
    },
    /// The message would exceed the 16-bit length field, or an attribute value would
    /// exceed 65535 bytes.
    #[error("message or attribute too long for its 16-bit length field")]
    TooLong,
    /// The builder was asked to add an attribute after FINGERPRINT or a non-integrity
    /// attribute after MESSAGE-INTEGRITY (RFC 8489 §14.5-14.7).
    #[error("attribute {typ} cannot be added after {after}")]
    BadAttributeOrder {
        /// The attribute that was refused.
        typ: AttrType,
        /// Name of the attribute it cannot follow.
        after: &'static str,
    },
    /// A string given to an encoder is not allowed (too long, or refused by the
    /// OpaqueString profile, RFC 8265 §4.2).
    #[error("invalid input to encode: {what}")]
    InvalidInput {
        /// What is wrong.
        what: &'static str,
    },
}
