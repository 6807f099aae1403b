//! ERROR-CODE (RFC 8489 §14.8).

use super::text::{decode_text, validate_chars};
use super::{AttrType, Attribute, RawAttribute};
use crate::{Error, TransactionId};

/// ERROR-CODE (RFC 8489 §14.8): a code from 300 to 699 and a reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode<'a> {
    /// The numeric code, class * 100 + number.
    pub code: u16,
    /// The reason phrase (diagnostic text).
    pub reason: &'a str,
}

impl ErrorCode<'static> {
    /// 300 Try Alternate (RFC 8489 §19).
    pub const TRY_ALTERNATE: ErrorCode<'static> = ErrorCode::with_default_reason(300);
    /// 400 Bad Request.
    pub const BAD_REQUEST: ErrorCode<'static> = ErrorCode::with_default_reason(400);
    /// 401 Unauthenticated.
    pub const UNAUTHENTICATED: ErrorCode<'static> = ErrorCode::with_default_reason(401);
    /// 403 Forbidden (RFC 8656 §19).
    pub const FORBIDDEN: ErrorCode<'static> = ErrorCode::with_default_reason(403);
    /// 420 Unknown Attribute.
    pub const UNKNOWN_ATTRIBUTE: ErrorCode<'static> = ErrorCode::with_default_reason(420);
    /// 437 Allocation Mismatch (RFC 8656 §19).
    pub const ALLOCATION_MISMATCH: ErrorCode<'static> = ErrorCode::with_default_reason(437);
    /// 438 Stale Nonce.
    pub const STALE_NONCE: ErrorCode<'static> = ErrorCode::with_default_reason(438);
    /// 440 Address Family not Supported (RFC 8656 §19).
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: ErrorCode<'static> =
        ErrorCode::with_default_reason(440);
    /// 441 Wrong Credentials (RFC 8656 §19).
    pub const WRONG_CREDENTIALS: ErrorCode<'static> = ErrorCode::with_default_reason(441);
    /// 442 Unsupported Transport Protocol (RFC 8656 §19).
    pub const UNSUPPORTED_TRANSPORT: ErrorCode<'static> = ErrorCode::with_default_reason(442);
    /// 443 Peer Address Family Mismatch (RFC 8656 §19).
    pub const PEER_ADDRESS_FAMILY_MISMATCH: ErrorCode<'static> =
        ErrorCode::with_default_reason(443);
    /// 486 Allocation Quota Reached (RFC 8656 §19).
    pub const ALLOCATION_QUOTA_REACHED: ErrorCode<'static> = ErrorCode::with_default_reason(486);
    /// 446 Connection Already Exists (RFC 6062 §6.3).
    pub const CONNECTION_ALREADY_EXISTS: ErrorCode<'static> = ErrorCode::with_default_reason(446);
    /// 447 Connection Timeout or Failure (RFC 6062 §6.3).
    pub const CONNECTION_TIMEOUT_OR_FAILURE: ErrorCode<'static> =
        ErrorCode::with_default_reason(447);
    /// 487 Role Conflict (RFC 8445 §7.3.1.1).
    pub const ROLE_CONFLICT: ErrorCode<'static> = ErrorCode::with_default_reason(487);
    /// 500 Server Error.
    pub const SERVER_ERROR: ErrorCode<'static> = ErrorCode::with_default_reason(500);
    /// 508 Insufficient Capacity (RFC 8656 §19).
    pub const INSUFFICIENT_CAPACITY: ErrorCode<'static> = ErrorCode::with_default_reason(508);

    /// The code with the reason phrase the IANA registry recommends.
    pub const fn with_default_reason(code: u16) -> ErrorCode<'static> {
        ErrorCode {
            code,
            reason: default_reason(code),
        }
    }
}

/// The registry's recommended reason phrase for a code (RFC 8489 §19, RFC 8656 §19,
/// RFC 8445 §7.3.1.1, RFC 6062 §6.3), or `""`.
pub const fn default_reason(code: u16) -> &'static str {
    match code {
        300 => "Try Alternate",
        400 => "Bad Request",
        401 => "Unauthenticated",
        403 => "Forbidden",
        405 => "Mobility Forbidden",
        420 => "Unknown Attribute",
        437 => "Allocation Mismatch",
        438 => "Stale Nonce",
        440 => "Address Family not Supported",
        441 => "Wrong Credentials",
        442 => "Unsupported Transport Protocol",
        443 => "Peer Address Family Mismatch",
        446 => "Connection Already Exists",
        447 => "Connection Timeout or Failure",
        486 => "Allocation Quota Reached",
        487 => "Role Conflict",
        500 => "Server Error",
        508 => "Insufficient Capacity",
        _ => "",
    }
}

/// Decodes the 32-bit class/number word shared by ERROR-CODE and ADDRESS-ERROR-CODE.
pub(crate) fn decode_code(raw: &RawAttribute<'_>, word: [u8; 2]) -> Result<u16, Error> {
    let class = u16::from(word[0] & 0x07);
    let number = u16::from(word[1]);
    if !(3..=6).contains(&class) {
        return Err(raw.invalid("error class must be 3 to 6"));
    }
    if number > 99 {
        return Err(raw.invalid("error number must be 0 to 99"));
    }
    Ok(class * 100 + number)
}

pub(crate) fn encode_code(code: u16) -> [u8; 2] {
    [((code / 100) & 0x07) as u8, (code % 100) as u8]
}

/// Splits the 4-byte head (reserved bits, class, number) off an ERROR-CODE or
/// ADDRESS-ERROR-CODE value (RFC 8489 §14.8, RFC 8656 §18.12); the rest is the reason
/// phrase, for [`decode_reason`].
pub(crate) fn split_head<'a>(
    raw: &RawAttribute<'a>,
    name: &'static str,
) -> Result<([u8; 4], RawAttribute<'a>), Error> {
    let (&head, reason) = raw
        .value
        .split_first_chunk()
        .ok_or_else(|| raw.bad_length(name, "at least 4"))?;
    Ok((
        head,
        RawAttribute {
            value: reason,
            ..*raw
        },
    ))
}

/// The reason phrase: UTF-8, at most 763 bytes (RFC 8489 §14.8).
pub(crate) fn decode_reason<'a>(
    reason: &RawAttribute<'a>,
    name: &'static str,
) -> Result<&'a str, Error> {
    decode_text(reason, name, 763, "at most 767")
}

/// Writes a 4-byte head and a reason phrase; `out` is `4 + reason.len()` bytes.
pub(crate) fn encode_head_and_reason(head: [u8; 4], reason: &str, out: &mut [u8]) {
    if let Some((out_head, out_reason)) = out.split_first_chunk_mut() {
        *out_head = head;
        out_reason.copy_from_slice(reason.as_bytes());
    }
}

pub(crate) fn validate_code(code: u16, reason: &str) -> Result<(), Error> {
    if !(300..=699).contains(&code) {
        return Err(Error::InvalidInput {
            what: "error code must be 300 to 699",
        });
    }
    validate_chars(
        reason,
        127,
        509,
        "reason phrase must be fewer than 128 characters",
    )
}

impl<'a> Attribute<'a> for ErrorCode<'a> {
    const TYPE: AttrType = AttrType::ERROR_CODE;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        let ([_, _, class, number], reason) = split_head(raw, "ERROR-CODE")?;
        let code = decode_code(raw, [class, number])?;
        let reason = decode_reason(&reason, "ERROR-CODE")?;
        Ok(ErrorCode { code, reason })
    }

    fn value_len(&self) -> usize {
        4 + self.reason.len()
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        let [class, number] = encode_code(self.code);
        encode_head_and_reason([0, 0, class, number], self.reason, out);
    }

    fn validate(&self) -> Result<(), Error> {
        validate_code(self.code, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_outside_three_to_six_is_rejected() {
        let raw = RawAttribute {
            typ: AttrType::ERROR_CODE,
            value: &[0, 0, 2, 1],
            offset: 20,
        };
        assert!(matches!(
            ErrorCode::decode(&raw, &TransactionId([0; 12])),
            Err(Error::InvalidValue {
                what: "error class must be 3 to 6",
                ..
            })
        ));
    }

    #[test]
    fn number_above_99_is_rejected() {
        let raw = RawAttribute {
            typ: AttrType::ERROR_CODE,
            value: &[0, 0, 4, 100],
            offset: 20,
        };
        assert!(ErrorCode::decode(&raw, &TransactionId([0; 12])).is_err());
    }

    /// RFC 8489 §14.8: a reason phrase is sent with fewer than 128 characters (up to
    /// 763 bytes accepted), and the code is 300-699.
    #[test]
    fn reason_phrases_are_sent_below_128_characters() {
        let reason = "é".repeat(128);
        let code = |reason| ErrorCode { code: 400, reason };
        assert!(code(&reason[..254]).validate().is_ok(), "127 characters");
        assert!(code(&reason).validate().is_err(), "128 characters");
        assert!(ErrorCode {
            code: 700,
            reason: ""
        }
        .validate()
        .is_err());
        assert!(ErrorCode {
            code: 299,
            reason: ""
        }
        .validate()
        .is_err());
        let mut value = vec![0, 0, 4, 0];
        value.extend(std::iter::repeat_n(b'r', 763));
        let decodes = |value: &[u8]| {
            let raw = RawAttribute {
                typ: AttrType::ERROR_CODE,
                value,
                offset: 20,
            };
            ErrorCode::decode(&raw, &TransactionId([0; 12])).is_ok()
        };
        assert!(decodes(&value), "763 bytes of reason");
        value.push(b'r');
        assert!(!decodes(&value), "764 bytes of reason");
    }

    #[test]
    fn reserved_bits_are_ignored() {
        let raw = RawAttribute {
            typ: AttrType::ERROR_CODE,
            value: &[0xff, 0xff, 0xfc, 38],
            offset: 20,
        };
        assert_eq!(
            ErrorCode::decode(&raw, &TransactionId([0; 12]))
                .unwrap()
                .code,
            438
        );
    }
}
