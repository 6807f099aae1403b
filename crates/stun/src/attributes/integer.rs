//! Fixed-size numeric and flag attributes: PRIORITY, USE-CANDIDATE, ICE-CONTROLLED,
//! ICE-CONTROLLING (RFC 8445 §16.1), NOMINATION (0xC001), LIFETIME, CHANNEL-NUMBER,
//! REQUESTED-TRANSPORT, DONT-FRAGMENT (RFC 8656 §18), CONNECTION-ID (RFC 6062 §6.2.1).

use core::time::Duration;

use super::{AttrType, Attribute, RawAttribute};
use crate::{Error, TransactionId};

macro_rules! u32_attribute {
    ($(#[$doc:meta])* $name:ident, $konst:ident, $reg:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl<'a> Attribute<'a> for $name {
            const TYPE: AttrType = AttrType::$konst;

            fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
                raw.fixed::<4>($reg, "4").map(|b| $name(u32::from_be_bytes(*b)))
            }

            fn value_len(&self) -> usize {
                4
            }

            fn encode(&self, _: &TransactionId, out: &mut [u8]) {
                out.copy_from_slice(&self.0.to_be_bytes());
            }
        }
    };
}

macro_rules! u64_attribute {
    ($(#[$doc:meta])* $name:ident, $konst:ident, $reg:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl<'a> Attribute<'a> for $name {
            const TYPE: AttrType = AttrType::$konst;

            fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
                raw.fixed::<8>($reg, "8").map(|b| $name(u64::from_be_bytes(*b)))
            }

            fn value_len(&self) -> usize {
                8
            }

            fn encode(&self, _: &TransactionId, out: &mut [u8]) {
                out.copy_from_slice(&self.0.to_be_bytes());
            }
        }
    };
}

macro_rules! flag_attribute {
    ($(#[$doc:meta])* $name:ident, $konst:ident, $reg:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name;

        impl<'a> Attribute<'a> for $name {
            const TYPE: AttrType = AttrType::$konst;

            fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
                if raw.value.is_empty() {
                    Ok($name)
                } else {
                    Err(raw.bad_length($reg, "0"))
                }
            }

            fn value_len(&self) -> usize {
                0
            }

            fn encode(&self, _: &TransactionId, _: &mut [u8]) {}
        }
    };
}

u32_attribute!(
    /// PRIORITY (RFC 8445 §7.1.1): the priority a peer-reflexive candidate learned from
    /// this check would get.
    Priority, PRIORITY, "PRIORITY"
);
u32_attribute!(
    /// LIFETIME (RFC 8656 §18.2): seconds until the allocation expires; 0 deletes it.
    Lifetime, LIFETIME, "LIFETIME"
);
u32_attribute!(
    /// CONNECTION-ID (RFC 6062 §6.2.1): identifies a TCP peer data connection.
    ConnectionId, CONNECTION_ID, "CONNECTION-ID"
);
u32_attribute!(
    /// NOMINATION (0xC001, draft-thatcher-ice-renomination): a nomination counter; the
    /// controlled agent selects the pair with the highest value it has seen. Used by
    /// libwebrtc and pion for renomination.
    Nomination, NOMINATION, "NOMINATION"
);
u64_attribute!(
    /// ICE-CONTROLLED (RFC 8445 §7.1.3): the sender is controlled; the value is its
    /// tie-breaker.
    IceControlled, ICE_CONTROLLED, "ICE-CONTROLLED"
);
u64_attribute!(
    /// ICE-CONTROLLING (RFC 8445 §7.1.3): the sender is controlling; the value is its
    /// tie-breaker.
    IceControlling, ICE_CONTROLLING, "ICE-CONTROLLING"
);
flag_attribute!(
    /// USE-CANDIDATE (RFC 8445 §7.1.2): the controlling agent nominates this pair.
    UseCandidate, USE_CANDIDATE, "USE-CANDIDATE"
);
flag_attribute!(
    /// DONT-FRAGMENT (RFC 8656 §18.9): ask the server to set DF on relayed packets.
    DontFragment, DONT_FRAGMENT, "DONT-FRAGMENT"
);

impl Lifetime {
    /// The lifetime as a duration.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }
}

/// CHANNEL-NUMBER (RFC 8656 §18.1): a channel number followed by 16 reserved bits.
/// Valid channel numbers are 0x4000-0x4FFF (§12); this type decodes any value so that a
/// server can answer 400 for the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelNumber(pub u16);

impl ChannelNumber {
    /// Whether the number is in the range RFC 8656 §12 allows (0x4000 through 0x4FFF).
    pub fn is_valid(self) -> bool {
        (0x4000..=0x4FFF).contains(&self.0)
    }
}

impl<'a> Attribute<'a> for ChannelNumber {
    const TYPE: AttrType = AttrType::CHANNEL_NUMBER;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        let b = raw.fixed::<4>("CHANNEL-NUMBER", "4")?;
        Ok(ChannelNumber(u16::from_be_bytes([b[0], b[1]])))
    }

    fn value_len(&self) -> usize {
        4
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        let [c0, c1] = self.0.to_be_bytes();
        out.copy_from_slice(&[c0, c1, 0, 0]);
    }
}

/// REQUESTED-TRANSPORT (RFC 8656 §18.8): an IP protocol number (17 for UDP, 6 for TCP
/// with RFC 6062) followed by 24 reserved bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestedTransport(pub u8);

impl RequestedTransport {
    /// UDP (protocol 17), the only transport RFC 8656 relays.
    pub const UDP: RequestedTransport = RequestedTransport(17);
    /// TCP (protocol 6), for RFC 6062 TCP allocations.
    pub const TCP: RequestedTransport = RequestedTransport(6);
}

impl<'a> Attribute<'a> for RequestedTransport {
    const TYPE: AttrType = AttrType::REQUESTED_TRANSPORT;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        let b = raw.fixed::<4>("REQUESTED-TRANSPORT", "4")?;
        Ok(RequestedTransport(b[0]))
    }

    fn value_len(&self) -> usize {
        4
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        out.copy_from_slice(&[self.0, 0, 0, 0]);
    }
}
