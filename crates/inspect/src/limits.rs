//! The limits a definition puts on what may be sent, applied to what was received.
//!
//! floe-stun's parser is lenient where RFC 8489 asks receivers to be (USERNAME up to 513
//! bytes, REALM, NONCE, SOFTWARE and reason phrases up to 763, for RFC 5389 peers), and
//! its attribute types carry the send-side rules in [`Attribute::validate`]: USERNAME
//! fewer than 509 bytes (RFC 8489 §14.3); REALM, NONCE, SOFTWARE and the ERROR-CODE
//! reason phrase fewer than 128 characters (§14.9, §14.10, §14.14, §14.8), and so on.
//! `floe decode` reports a value the parser accepts but `validate` refuses, so the limits
//! have one home and the decoder cannot drift from the builder.

use std::fmt::Write as _;

use floe_stun::attributes::{AnyAttribute, AttrType, Attribute};
use floe_stun::Error;

/// Runs the attribute type's own `validate` on a decoded value.
fn validate(a: &AnyAttribute<'_>) -> Result<(), Error> {
    use AnyAttribute as A;
    match a {
        A::MappedAddress(v) => v.validate(),
        A::ChangeRequest(v) => v.validate(),
        A::Username(v) => v.validate(),
        A::MessageIntegrity(v) => v.validate(),
        A::ErrorCode(v) => v.validate(),
        A::UnknownAttributes(v) => v.validate(),
        A::ChannelNumber(v) => v.validate(),
        A::Lifetime(v) => v.validate(),
        A::XorPeerAddress(v) => v.validate(),
        A::Data(v) => v.validate(),
        A::Realm(v) => v.validate(),
        A::Nonce(v) => v.validate(),
        A::XorRelayedAddress(v) => v.validate(),
        A::RequestedAddressFamily(v) => v.validate(),
        A::EvenPort(v) => v.validate(),
        A::RequestedTransport(v) => v.validate(),
        A::DontFragment(v) => v.validate(),
        A::MessageIntegritySha256(v) => v.validate(),
        A::PasswordAlgorithm(v) => v.validate(),
        A::UserHash(v) => v.validate(),
        A::XorMappedAddress(v) => v.validate(),
        A::ReservationToken(v) => v.validate(),
        A::Priority(v) => v.validate(),
        A::UseCandidate(v) => v.validate(),
        A::Padding(v) => v.validate(),
        A::ResponsePort(v) => v.validate(),
        A::ConnectionId(v) => v.validate(),
        A::AdditionalAddressFamily(v) => v.validate(),
        A::AddressErrorCode(v) => v.validate(),
        A::PasswordAlgorithms(v) => v.validate(),
        A::AlternateDomain(v) => v.validate(),
        A::Icmp(v) => v.validate(),
        A::Software(v) => v.validate(),
        A::AlternateServer(v) => v.validate(),
        A::Fingerprint(v) => v.validate(),
        A::IceControlled(v) => v.validate(),
        A::IceControlling(v) => v.validate(),
        A::ResponseOrigin(v) => v.validate(),
        A::OtherAddress(v) => v.validate(),
        A::Nomination(v) => v.validate(),
        // AnyAttribute is non-exhaustive: a newer floe-stun may know more attributes.
        _ => Ok(()),
    }
}

/// The text a limit applies to, to say how long it is.
fn text<'a>(a: &AnyAttribute<'a>) -> Option<&'a str> {
    use AnyAttribute as A;
    match a {
        A::Username(v) => Some(v.0),
        A::Realm(v) => Some(v.0),
        A::Nonce(v) => Some(v.0),
        A::Software(v) => Some(v.0),
        A::AlternateDomain(v) => Some(v.0),
        A::ErrorCode(v) => Some(v.reason),
        A::AddressErrorCode(v) => Some(v.reason),
        _ => None,
    }
}

/// Where the attribute is defined, for the message.
fn definition(typ: AttrType) -> Option<&'static str> {
    Some(match typ {
        AttrType::USERNAME => "RFC 8489 §14.3",
        AttrType::MESSAGE_INTEGRITY_SHA256 => "RFC 8489 §14.6",
        AttrType::ERROR_CODE => "RFC 8489 §14.8",
        AttrType::REALM => "RFC 8489 §14.9",
        AttrType::NONCE => "RFC 8489 §14.10",
        AttrType::SOFTWARE => "RFC 8489 §14.14",
        AttrType::ALTERNATE_DOMAIN => "RFC 8489 §14.16",
        AttrType::ADDRESS_ERROR_CODE => "RFC 8656 §18.12",
        _ => return None,
    })
}

/// Why a decoded value breaks its definition's limits, or `None` when it does not:
/// `attribute 0x0006 (USERNAME) at offset 20: USERNAME must be fewer than 509 bytes
/// (RFC 8489 §14.3); this one has 600 characters in 600 bytes`.
pub fn violation(typ: AttrType, offset: usize, a: &AnyAttribute<'_>) -> Option<String> {
    let rule = match validate(a) {
        Ok(()) => return None,
        Err(Error::InvalidInput { what }) => what.to_owned(),
        Err(e) => e.to_string(),
    };
    let mut s = format!("attribute {typ} at offset {offset}: {rule}");
    if let Some(rfc) = definition(typ) {
        let _ = write!(s, " ({rfc})");
    }
    if let Some(t) = text(a) {
        let _ = write!(
            s,
            "; this one has {} characters in {} bytes",
            t.chars().count(),
            t.len()
        );
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_stun::attributes::{ErrorCode, Realm, Software, Username};

    #[test]
    fn limits_are_the_attribute_types_own() {
        let name = "u".repeat(508);
        assert_eq!(
            violation(
                AttrType::USERNAME,
                20,
                &AnyAttribute::Username(Username(&name))
            ),
            None
        );
        let name = "u".repeat(509);
        assert_eq!(
            violation(AttrType::USERNAME, 20, &AnyAttribute::Username(Username(&name))).as_deref(),
            Some(
                "attribute 0x0006 (USERNAME) at offset 20: USERNAME must be fewer than 509 bytes (RFC 8489 §14.3); this one has 509 characters in 509 bytes"
            )
        );
        // Characters, not bytes: 127 two-byte characters are fine, 128 are not.
        let s = "é".repeat(127);
        assert_eq!(
            violation(
                AttrType::SOFTWARE,
                20,
                &AnyAttribute::Software(Software(&s))
            ),
            None
        );
        let s = "é".repeat(128);
        assert!(
            violation(AttrType::REALM, 20, &AnyAttribute::Realm(Realm(&s)))
                .unwrap()
                .ends_with("(RFC 8489 §14.9); this one has 128 characters in 256 bytes")
        );
        let reason = "r".repeat(128);
        let e = AnyAttribute::ErrorCode(ErrorCode {
            code: 400,
            reason: &reason,
        });
        assert!(violation(AttrType::ERROR_CODE, 20, &e)
            .unwrap()
            .contains("reason phrase must be fewer than 128 characters (RFC 8489 §14.8)"));
    }
}
