//! TURN attributes that are not addresses or numbers (RFC 8656 §18): DATA,
//! REQUESTED-ADDRESS-FAMILY, ADDITIONAL-ADDRESS-FAMILY, EVEN-PORT, RESERVATION-TOKEN,
//! ADDRESS-ERROR-CODE and ICMP.

use super::error_code::{
    decode_code, decode_reason, encode_code, encode_head_and_reason, split_head, validate_code,
};
use super::{AttrType, Attribute, RawAttribute};
use crate::{Error, TransactionId};

/// DATA (RFC 8656 §18.4): the application payload of a Send or Data indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Data<'a>(pub &'a [u8]);

impl<'a> Attribute<'a> for Data<'a> {
    const TYPE: AttrType = AttrType::DATA;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        Ok(Data(raw.value))
    }

    fn value_len(&self) -> usize {
        self.0.len()
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        out.copy_from_slice(self.0);
    }
}

/// An IP address family as coded in STUN address attributes (RFC 8489 §14.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// 0x01.
    Ipv4,
    /// 0x02.
    Ipv6,
}

impl AddressFamily {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            AddressFamily::Ipv4 => 0x01,
            AddressFamily::Ipv6 => 0x02,
        }
    }

    fn decode(raw: &RawAttribute<'_>, byte: u8) -> Result<AddressFamily, Error> {
        match byte {
            0x01 => Ok(AddressFamily::Ipv4),
            0x02 => Ok(AddressFamily::Ipv6),
            family => Err(Error::BadAddressFamily {
                typ: raw.typ,
                offset: raw.offset,
                family,
            }),
        }
    }
}

macro_rules! family_attribute {
    ($(#[$doc:meta])* $name:ident, $konst:ident, $reg:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub AddressFamily);

        impl<'a> Attribute<'a> for $name {
            const TYPE: AttrType = AttrType::$konst;

            fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
                let &[family, ..] = raw.fixed::<4>($reg, "4")?;
                AddressFamily::decode(raw, family).map($name)
            }

            fn value_len(&self) -> usize {
                4
            }

            fn encode(&self, _: &TransactionId, out: &mut [u8]) {
                out.copy_from_slice(&[self.0.to_u8(), 0, 0, 0]);
            }
        }
    };
}

family_attribute!(
    /// REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.6): the family of the relayed address wanted.
    RequestedAddressFamily, REQUESTED_ADDRESS_FAMILY, "REQUESTED-ADDRESS-FAMILY"
);
family_attribute!(
    /// ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11): ask for a second, IPv6 relayed
    /// address as well (dual allocation). Only IPv6 is valid here; servers answer 400
    /// otherwise.
    AdditionalAddressFamily, ADDITIONAL_ADDRESS_FAMILY, "ADDITIONAL-ADDRESS-FAMILY"
);

family_attribute!(
    /// ADDITIONAL-ADDRESS-FAMILY at the draft codepoint 0x8032 (draft-ietf-tram-turnbis;
    /// RFC 8656 assigned 0x8000). coturn 4.6 reads only this one, so a dual allocation
    /// carries both; servers ignore the one they do not know (comprehension-optional).
    AdditionalAddressFamilyDraft, ADDITIONAL_ADDRESS_FAMILY_DRAFT,
    "ADDITIONAL-ADDRESS-FAMILY (draft)"
);

/// EVEN-PORT (RFC 8656 §18.7): ask for an even relayed port, and with `reserve` to hold
/// the next port too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EvenPort {
    /// The R bit.
    pub reserve: bool,
}

impl<'a> Attribute<'a> for EvenPort {
    const TYPE: AttrType = AttrType::EVEN_PORT;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        let b = raw.fixed::<1>("EVEN-PORT", "1")?;
        Ok(EvenPort {
            reserve: b[0] & 0x80 != 0,
        })
    }

    fn value_len(&self) -> usize {
        1
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        out.copy_from_slice(&[if self.reserve { 0x80 } else { 0 }]);
    }
}

/// RESERVATION-TOKEN (RFC 8656 §18.10): an 8-byte token naming a reserved relayed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReservationToken(pub [u8; 8]);

impl<'a> Attribute<'a> for ReservationToken {
    const TYPE: AttrType = AttrType::RESERVATION_TOKEN;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        raw.fixed::<8>("RESERVATION-TOKEN", "8")
            .map(|b| ReservationToken(*b))
    }

    fn value_len(&self) -> usize {
        8
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        out.copy_from_slice(&self.0);
    }
}

/// ADDRESS-ERROR-CODE (RFC 8656 §18.12): why one family of a dual allocation failed
/// (440 or 508).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressErrorCode<'a> {
    /// The family that could not be allocated.
    pub family: AddressFamily,
    /// The error code, class * 100 + number.
    pub code: u16,
    /// The reason phrase.
    pub reason: &'a str,
}

impl<'a> Attribute<'a> for AddressErrorCode<'a> {
    const TYPE: AttrType = AttrType::ADDRESS_ERROR_CODE;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        let ([family, _, class, number], reason) = split_head(raw, "ADDRESS-ERROR-CODE")?;
        let family = AddressFamily::decode(raw, family)?;
        let code = decode_code(raw, [class, number])?;
        let reason = decode_reason(&reason, "ADDRESS-ERROR-CODE")?;
        Ok(AddressErrorCode {
            family,
            code,
            reason,
        })
    }

    fn value_len(&self) -> usize {
        4 + self.reason.len()
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        let [class, number] = encode_code(self.code);
        encode_head_and_reason([self.family.to_u8(), 0, class, number], self.reason, out);
    }

    fn validate(&self) -> Result<(), Error> {
        validate_code(self.code, self.reason)
    }
}

/// ADDRESS-ERROR-CODE at the draft codepoint 0x8033, as coturn answers a dual allocation
/// that got one family only (RFC 8656 assigned 0x8001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressErrorCodeDraft<'a>(pub AddressErrorCode<'a>);

impl<'a> Attribute<'a> for AddressErrorCodeDraft<'a> {
    const TYPE: AttrType = AttrType::ADDRESS_ERROR_CODE_DRAFT;

    fn decode(raw: &RawAttribute<'a>, tid: &TransactionId) -> Result<Self, Error> {
        AddressErrorCode::decode(raw, tid).map(AddressErrorCodeDraft)
    }

    fn value_len(&self) -> usize {
        self.0.value_len()
    }

    fn encode(&self, tid: &TransactionId, out: &mut [u8]) {
        self.0.encode(tid, out);
    }

    fn validate(&self) -> Result<(), Error> {
        self.0.validate()
    }
}

/// ICMP (RFC 8656 §18.13): an ICMP error the server received for relayed traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmp {
    /// ICMP type (7 bits on the wire).
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// Error data (the next-hop MTU for "fragmentation needed"/"packet too big").
    pub error_data: u32,
}

impl<'a> Attribute<'a> for Icmp {
    const TYPE: AttrType = AttrType::ICMP;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        let b = raw.fixed::<8>("ICMP", "8")?;
        Ok(Icmp {
            icmp_type: b[2] & 0x7F,
            code: b[3],
            error_data: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }

    fn value_len(&self) -> usize {
        8
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        let [d0, d1, d2, d3] = self.error_data.to_be_bytes();
        out.copy_from_slice(&[0, 0, self.icmp_type & 0x7F, self.code, d0, d1, d2, d3]);
    }
}
