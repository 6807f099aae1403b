//! RFC 5780 NAT behaviour discovery attributes: CHANGE-REQUEST (§7.2), RESPONSE-PORT
//! (§7.5) and PADDING (§7.6). RESPONSE-ORIGIN and OTHER-ADDRESS live with the other
//! address attributes.

use super::{AttrType, Attribute, RawAttribute};
use crate::{Error, TransactionId};

/// CHANGE-REQUEST (RFC 5780 §7.2): ask the server to answer from its other IP address
/// (flag A, 0x04) and/or other port (flag B, 0x02).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChangeRequest {
    /// "Change IP" (A).
    pub change_ip: bool,
    /// "Change port" (B).
    pub change_port: bool,
}

impl<'a> Attribute<'a> for ChangeRequest {
    const TYPE: AttrType = AttrType::CHANGE_REQUEST;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        let b = raw.fixed::<4>("CHANGE-REQUEST", "4")?;
        Ok(ChangeRequest {
            change_ip: b[3] & 0x04 != 0,
            change_port: b[3] & 0x02 != 0,
        })
    }

    fn value_len(&self) -> usize {
        4
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        let flags = (u8::from(self.change_ip) << 2) | (u8::from(self.change_port) << 1);
        out.copy_from_slice(&[0, 0, 0, flags]);
    }
}

/// RESPONSE-PORT (RFC 5780 §7.5): the port the response should be sent to; 16 bits of
/// port and 16 reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponsePort(pub u16);

impl<'a> Attribute<'a> for ResponsePort {
    const TYPE: AttrType = AttrType::RESPONSE_PORT;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        let b = raw.fixed::<4>("RESPONSE-PORT", "4")?;
        Ok(ResponsePort(u16::from_be_bytes([b[0], b[1]])))
    }

    fn value_len(&self) -> usize {
        4
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        let [p0, p1] = self.0.to_be_bytes();
        out.copy_from_slice(&[p0, p1, 0, 0]);
    }
}

/// PADDING (RFC 5780 §7.6): opaque bytes that make a message larger, to test
/// fragmentation behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Padding<'a>(pub &'a [u8]);

impl<'a> Attribute<'a> for Padding<'a> {
    const TYPE: AttrType = AttrType::PADDING;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        Ok(Padding(raw.value))
    }

    fn value_len(&self) -> usize {
        self.0.len()
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        out.copy_from_slice(self.0);
    }
}
