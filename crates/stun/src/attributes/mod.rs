//! STUN attributes: the type registry and one typed value per attribute, decoded on demand
//! from a [`RawAttribute`] and encoded by [`crate::MessageBuilder::add`].
//!
//! Each typed value implements [`Attribute`]. Values borrow from the message buffer
//! (`Username<'a>(&'a str)`), so decoding never allocates.

use core::fmt;

use crate::{Error, TransactionId};

mod address;
mod error_code;
mod integer;
mod lists;
mod rfc5780;
mod security;
mod text;
mod turn;

pub use address::{
    AlternateServer, MappedAddress, OtherAddress, ResponseOrigin, XorMappedAddress, XorPeerAddress,
    XorRelayedAddress,
};
pub use error_code::{default_reason, ErrorCode};
pub use integer::{
    ChannelNumber, ConnectionId, DontFragment, IceControlled, IceControlling, Lifetime, Nomination,
    Priority, RequestedTransport, UseCandidate,
};
pub use lists::{PasswordAlgorithm, PasswordAlgorithms, UnknownAttributes};
pub use rfc5780::{ChangeRequest, Padding, ResponsePort};
pub use security::{Fingerprint, MessageIntegrity, MessageIntegritySha256, UserHash};
pub use text::{AlternateDomain, Nonce, Realm, Software, Username};
pub use turn::{
    AdditionalAddressFamily, AdditionalAddressFamilyDraft, AddressErrorCode, AddressErrorCodeDraft,
    AddressFamily, Data, EvenPort, Icmp, RequestedAddressFamily, ReservationToken,
};

/// A 16-bit attribute type (RFC 8489 §14, §18.3; RFC 8656 §18; RFC 8445 §16.1;
/// RFC 5780 §7; RFC 6062 §6.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrType(pub u16);

macro_rules! registry {
    ($( $(#[$doc:meta])* $konst:ident = $value:literal, $name:literal; )*) => {
        impl AttrType {
            $( $(#[$doc])* pub const $konst: AttrType = AttrType($value); )*

            /// The IANA registry name, or `None` for a type floe does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($name), )*
                    _ => None,
                }
            }
        }
    };
}

registry! {
    /// MAPPED-ADDRESS (RFC 8489 §14.1).
    MAPPED_ADDRESS = 0x0001, "MAPPED-ADDRESS";
    /// CHANGE-REQUEST (RFC 5780 §7.2).
    CHANGE_REQUEST = 0x0003, "CHANGE-REQUEST";
    /// USERNAME (RFC 8489 §14.3).
    USERNAME = 0x0006, "USERNAME";
    /// MESSAGE-INTEGRITY (RFC 8489 §14.5).
    MESSAGE_INTEGRITY = 0x0008, "MESSAGE-INTEGRITY";
    /// ERROR-CODE (RFC 8489 §14.8).
    ERROR_CODE = 0x0009, "ERROR-CODE";
    /// UNKNOWN-ATTRIBUTES (RFC 8489 §14.13).
    UNKNOWN_ATTRIBUTES = 0x000A, "UNKNOWN-ATTRIBUTES";
    /// CHANNEL-NUMBER (RFC 8656 §18.1).
    CHANNEL_NUMBER = 0x000C, "CHANNEL-NUMBER";
    /// LIFETIME (RFC 8656 §18.2).
    LIFETIME = 0x000D, "LIFETIME";
    /// XOR-PEER-ADDRESS (RFC 8656 §18.3).
    XOR_PEER_ADDRESS = 0x0012, "XOR-PEER-ADDRESS";
    /// DATA (RFC 8656 §18.4).
    DATA = 0x0013, "DATA";
    /// REALM (RFC 8489 §14.9).
    REALM = 0x0014, "REALM";
    /// NONCE (RFC 8489 §14.10).
    NONCE = 0x0015, "NONCE";
    /// XOR-RELAYED-ADDRESS (RFC 8656 §18.5).
    XOR_RELAYED_ADDRESS = 0x0016, "XOR-RELAYED-ADDRESS";
    /// REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.6).
    REQUESTED_ADDRESS_FAMILY = 0x0017, "REQUESTED-ADDRESS-FAMILY";
    /// EVEN-PORT (RFC 8656 §18.7).
    EVEN_PORT = 0x0018, "EVEN-PORT";
    /// REQUESTED-TRANSPORT (RFC 8656 §18.8).
    REQUESTED_TRANSPORT = 0x0019, "REQUESTED-TRANSPORT";
    /// DONT-FRAGMENT (RFC 8656 §18.9).
    DONT_FRAGMENT = 0x001A, "DONT-FRAGMENT";
    /// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).
    MESSAGE_INTEGRITY_SHA256 = 0x001C, "MESSAGE-INTEGRITY-SHA256";
    /// PASSWORD-ALGORITHM (RFC 8489 §14.12).
    PASSWORD_ALGORITHM = 0x001D, "PASSWORD-ALGORITHM";
    /// USERHASH (RFC 8489 §14.4).
    USERHASH = 0x001E, "USERHASH";
    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2).
    XOR_MAPPED_ADDRESS = 0x0020, "XOR-MAPPED-ADDRESS";
    /// RESERVATION-TOKEN (RFC 8656 §18.10).
    RESERVATION_TOKEN = 0x0022, "RESERVATION-TOKEN";
    /// PRIORITY (RFC 8445 §16.1).
    PRIORITY = 0x0024, "PRIORITY";
    /// USE-CANDIDATE (RFC 8445 §16.1).
    USE_CANDIDATE = 0x0025, "USE-CANDIDATE";
    /// PADDING (RFC 5780 §7.6).
    PADDING = 0x0026, "PADDING";
    /// RESPONSE-PORT (RFC 5780 §7.5).
    RESPONSE_PORT = 0x0027, "RESPONSE-PORT";
    /// CONNECTION-ID (RFC 6062 §6.2.1).
    CONNECTION_ID = 0x002A, "CONNECTION-ID";
    /// ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11).
    ADDITIONAL_ADDRESS_FAMILY = 0x8000, "ADDITIONAL-ADDRESS-FAMILY";
    /// ADDRESS-ERROR-CODE (RFC 8656 §18.12).
    ADDRESS_ERROR_CODE = 0x8001, "ADDRESS-ERROR-CODE";
    /// PASSWORD-ALGORITHMS (RFC 8489 §14.11).
    PASSWORD_ALGORITHMS = 0x8002, "PASSWORD-ALGORITHMS";
    /// ALTERNATE-DOMAIN (RFC 8489 §14.16).
    ALTERNATE_DOMAIN = 0x8003, "ALTERNATE-DOMAIN";
    /// ICMP (RFC 8656 §18.13).
    ICMP = 0x8004, "ICMP";
    /// SOFTWARE (RFC 8489 §14.14).
    SOFTWARE = 0x8022, "SOFTWARE";
    /// ADDITIONAL-ADDRESS-FAMILY at its draft codepoint (draft-ietf-tram-turnbis before
    /// RFC 8656 assigned 0x8000), which coturn still uses.
    ADDITIONAL_ADDRESS_FAMILY_DRAFT = 0x8032, "ADDITIONAL-ADDRESS-FAMILY (draft)";
    /// ADDRESS-ERROR-CODE at its draft codepoint (0x8001 in RFC 8656), as coturn sends it.
    ADDRESS_ERROR_CODE_DRAFT = 0x8033, "ADDRESS-ERROR-CODE (draft)";
    /// ALTERNATE-SERVER (RFC 8489 §14.15).
    ALTERNATE_SERVER = 0x8023, "ALTERNATE-SERVER";
    /// CACHE-TIMEOUT (RFC 5780 §7.7); recognised by name only.
    CACHE_TIMEOUT = 0x8027, "CACHE-TIMEOUT";
    /// FINGERPRINT (RFC 8489 §14.7).
    FINGERPRINT = 0x8028, "FINGERPRINT";
    /// ICE-CONTROLLED (RFC 8445 §16.1).
    ICE_CONTROLLED = 0x8029, "ICE-CONTROLLED";
    /// ICE-CONTROLLING (RFC 8445 §16.1).
    ICE_CONTROLLING = 0x802A, "ICE-CONTROLLING";
    /// RESPONSE-ORIGIN (RFC 5780 §7.3).
    RESPONSE_ORIGIN = 0x802B, "RESPONSE-ORIGIN";
    /// OTHER-ADDRESS (RFC 5780 §7.4).
    OTHER_ADDRESS = 0x802C, "OTHER-ADDRESS";
    /// NOMINATION (0xC001), the renomination attribute of libwebrtc and pion
    /// (draft-thatcher-ice-renomination).
    NOMINATION = 0xC001, "NOMINATION";
}

impl AttrType {
    /// Types 0x0000-0x7FFF are comprehension-required: an agent that does not understand
    /// one must reject the message (RFC 8489 §14, §6.3.1).
    pub const fn is_comprehension_required(self) -> bool {
        self.0 < 0x8000
    }

    /// Whether floe knows (can decode) this type.
    pub fn is_known(self) -> bool {
        self.name().is_some()
    }

    /// Whether a second occurrence of this type makes sense. Among the known types only
    /// XOR-PEER-ADDRESS (CreatePermission, RFC 8656 §10.1) and XOR-RELAYED-ADDRESS (an
    /// Allocate success for a dual allocation carries one per family, §7.3) may
    /// repeat; this drives the strict duplicate check of
    /// [`crate::ParseOptions::reject_duplicates`].
    pub fn may_repeat(self) -> bool {
        self == AttrType::XOR_PEER_ADDRESS
            || self == AttrType::XOR_RELAYED_ADDRESS
            || !self.is_known()
    }
}

impl fmt::Debug for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{:#06x} ({name})", self.0),
            None => write!(f, "{:#06x}", self.0),
        }
    }
}

/// One attribute as found in a message: its type, its value (without padding) and where
/// its header starts in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    /// The attribute type.
    pub typ: AttrType,
    /// The value bytes, without padding.
    pub value: &'a [u8],
    /// Offset of the attribute header from the start of the message.
    pub offset: usize,
}

impl<'a> RawAttribute<'a> {
    pub(crate) fn bad_length(&self, name: &'static str, expected: &'static str) -> Error {
        Error::BadAttributeLength {
            typ: self.typ,
            offset: self.offset,
            length: self.value.len(),
            name,
            expected,
        }
    }

    pub(crate) fn invalid(&self, what: &'static str) -> Error {
        Error::InvalidValue {
            typ: self.typ,
            offset: self.offset,
            what,
        }
    }

    /// The value as exactly `N` bytes, or a length error naming `name`.
    pub(crate) fn fixed<const N: usize>(
        &self,
        name: &'static str,
        expected: &'static str,
    ) -> Result<&'a [u8; N], Error> {
        self.value
            .try_into()
            .map_err(|_| self.bad_length(name, expected))
    }
}

/// A typed attribute value (RFC 8489 §14): decoded on demand from a message, encoded by
/// the builder.
pub trait Attribute<'a>: Sized {
    /// The attribute type this value is carried in.
    const TYPE: AttrType;

    /// Decodes the value of `raw` (whose type is `Self::TYPE`). The transaction id is
    /// needed by the XOR-ed address attributes.
    fn decode(raw: &RawAttribute<'a>, transaction_id: &TransactionId) -> Result<Self, Error>;

    /// Length of the encoded value, without padding.
    fn value_len(&self) -> usize;

    /// Writes the value into `out`, which is exactly [`Attribute::value_len`] bytes long.
    fn encode(&self, transaction_id: &TransactionId, out: &mut [u8]);

    /// Checks limits the definition puts on what may be sent (text lengths and the like).
    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// Decodes any known attribute into its typed value, for walking a whole message (used by
/// diagnostics and fuzzing). Unknown types yield `Ok(None)`.
pub fn decode_known<'a>(
    raw: &RawAttribute<'a>,
    tid: &TransactionId,
) -> Result<Option<AnyAttribute<'a>>, Error> {
    macro_rules! dispatch {
        ($($variant:ident),* $(,)?) => {
            {
                $( if raw.typ == $variant::TYPE {
                    return Ok(Some(AnyAttribute::$variant($variant::decode(raw, tid)?)));
                } )*
                Ok(None)
            }
        };
    }
    dispatch!(
        MappedAddress,
        ChangeRequest,
        Username,
        MessageIntegrity,
        ErrorCode,
        UnknownAttributes,
        ChannelNumber,
        Lifetime,
        XorPeerAddress,
        Data,
        Realm,
        Nonce,
        XorRelayedAddress,
        RequestedAddressFamily,
        EvenPort,
        RequestedTransport,
        DontFragment,
        MessageIntegritySha256,
        PasswordAlgorithm,
        UserHash,
        XorMappedAddress,
        ReservationToken,
        Priority,
        UseCandidate,
        Padding,
        ResponsePort,
        ConnectionId,
        AdditionalAddressFamily,
        AddressErrorCode,
        PasswordAlgorithms,
        AlternateDomain,
        Icmp,
        Software,
        AlternateServer,
        Fingerprint,
        IceControlled,
        IceControlling,
        ResponseOrigin,
        OtherAddress,
        Nomination,
    )
}

/// Any known attribute, decoded. Returned by [`decode_known`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the attribute of the same name
pub enum AnyAttribute<'a> {
    MappedAddress(MappedAddress),
    ChangeRequest(ChangeRequest),
    Username(Username<'a>),
    MessageIntegrity(MessageIntegrity<'a>),
    ErrorCode(ErrorCode<'a>),
    UnknownAttributes(UnknownAttributes<'a>),
    ChannelNumber(ChannelNumber),
    Lifetime(Lifetime),
    XorPeerAddress(XorPeerAddress),
    Data(Data<'a>),
    Realm(Realm<'a>),
    Nonce(Nonce<'a>),
    XorRelayedAddress(XorRelayedAddress),
    RequestedAddressFamily(RequestedAddressFamily),
    EvenPort(EvenPort),
    RequestedTransport(RequestedTransport),
    DontFragment(DontFragment),
    MessageIntegritySha256(MessageIntegritySha256<'a>),
    PasswordAlgorithm(PasswordAlgorithm<'a>),
    UserHash(UserHash<'a>),
    XorMappedAddress(XorMappedAddress),
    ReservationToken(ReservationToken),
    Priority(Priority),
    UseCandidate(UseCandidate),
    Padding(Padding<'a>),
    ResponsePort(ResponsePort),
    ConnectionId(ConnectionId),
    AdditionalAddressFamily(AdditionalAddressFamily),
    AddressErrorCode(AddressErrorCode<'a>),
    PasswordAlgorithms(PasswordAlgorithms<'a>),
    AlternateDomain(AlternateDomain<'a>),
    Icmp(Icmp),
    Software(Software<'a>),
    AlternateServer(AlternateServer),
    Fingerprint(Fingerprint),
    IceControlled(IceControlled),
    IceControlling(IceControlling),
    ResponseOrigin(ResponseOrigin),
    OtherAddress(OtherAddress),
    Nomination(Nomination),
}
