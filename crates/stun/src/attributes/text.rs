//! UTF-8 text attributes: USERNAME, REALM, NONCE, SOFTWARE (RFC 8489 §14.3, §14.9,
//! §14.10, §14.14) and the ASCII ALTERNATE-DOMAIN (§14.16).

use super::{AttrType, Attribute, RawAttribute};
use crate::{Error, TransactionId};

/// Decodes a UTF-8 value of at most `max_bytes` bytes.
pub(crate) fn decode_text<'a>(
    raw: &RawAttribute<'a>,
    name: &'static str,
    max_bytes: usize,
    expected: &'static str,
) -> Result<&'a str, Error> {
    if raw.value.len() > max_bytes {
        return Err(raw.bad_length(name, expected));
    }
    core::str::from_utf8(raw.value).map_err(|_| Error::InvalidUtf8 {
        typ: raw.typ,
        offset: raw.offset,
    })
}

/// Checks the "fewer than 128 characters" rule on what we send (RFC 8489 §14.8-14.14).
pub(crate) fn validate_chars(
    s: &str,
    max_chars: usize,
    max_bytes: usize,
    what: &'static str,
) -> Result<(), Error> {
    if s.len() > max_bytes || s.chars().count() > max_chars {
        return Err(Error::InvalidInput { what });
    }
    Ok(())
}

macro_rules! text_attribute {
    (
        $(#[$doc:meta])* $name:ident, $konst:ident, $reg:literal,
        decode_max = $max:literal, $expected:literal,
        validate = |$s:ident| $validate:expr
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name<'a>(pub &'a str);

        impl<'a> Attribute<'a> for $name<'a> {
            const TYPE: AttrType = AttrType::$konst;

            fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
                decode_text(raw, $reg, $max, $expected).map($name)
            }

            fn value_len(&self) -> usize {
                self.0.len()
            }

            fn encode(&self, _: &TransactionId, out: &mut [u8]) {
                out.copy_from_slice(self.0.as_bytes());
            }

            fn validate(&self) -> Result<(), Error> {
                let $s = self.0;
                $validate
            }
        }
    };
}

text_attribute!(
    /// USERNAME (RFC 8489 §14.3): fewer than 509 bytes when sent; up to 513 accepted, the
    /// RFC 5389 limit, for older peers. For ICE it is `remote-ufrag:local-ufrag`
    /// (RFC 8445 §7.2.2).
    Username, USERNAME, "USERNAME", decode_max = 513, "at most 513",
    validate = |s| if s.len() < 509 { Ok(()) } else { Err(Error::InvalidInput { what: "USERNAME must be fewer than 509 bytes" }) }
);
text_attribute!(
    /// REALM (RFC 8489 §14.9): fewer than 128 characters (up to 763 bytes accepted).
    Realm, REALM, "REALM", decode_max = 763, "at most 763",
    validate = |s| validate_chars(s, 127, 509, "REALM must be fewer than 128 characters")
);
text_attribute!(
    /// NONCE (RFC 8489 §14.10): fewer than 128 characters (up to 763 bytes accepted).
    Nonce, NONCE, "NONCE", decode_max = 763, "at most 763",
    validate = |s| validate_chars(s, 127, 509, "NONCE must be fewer than 128 characters")
);
text_attribute!(
    /// SOFTWARE (RFC 8489 §14.14): fewer than 128 characters (up to 763 bytes accepted).
    Software, SOFTWARE, "SOFTWARE", decode_max = 763, "at most 763",
    validate = |s| validate_chars(s, 127, 509, "SOFTWARE must be fewer than 128 characters")
);

/// ALTERNATE-DOMAIN (RFC 8489 §14.16): a DNS name of 255 or fewer ASCII characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlternateDomain<'a>(pub &'a str);

impl<'a> Attribute<'a> for AlternateDomain<'a> {
    const TYPE: AttrType = AttrType::ALTERNATE_DOMAIN;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        let s = decode_text(raw, "ALTERNATE-DOMAIN", 255, "at most 255")?;
        if !s.is_ascii() {
            return Err(raw.invalid("ALTERNATE-DOMAIN must be ASCII"));
        }
        Ok(AlternateDomain(s))
    }

    fn value_len(&self) -> usize {
        self.0.len()
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        out.copy_from_slice(self.0.as_bytes());
    }

    fn validate(&self) -> Result<(), Error> {
        if self.0.len() <= 255 && self.0.is_ascii() {
            Ok(())
        } else {
            Err(Error::InvalidInput {
                what: "ALTERNATE-DOMAIN must be at most 255 ASCII characters",
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_realm_is_rejected_with_its_limit() {
        let long = [b'a'; 764];
        let raw = RawAttribute {
            typ: AttrType::REALM,
            value: &long,
            offset: 40,
        };
        let err = Realm::decode(&raw, &TransactionId([0; 12])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "attribute 0x0014 (REALM) at offset 40: length 764, REALM needs at most 763"
        );
    }

    #[test]
    fn non_utf8_username_is_rejected() {
        let raw = RawAttribute {
            typ: AttrType::USERNAME,
            value: &[0xff, 0xfe],
            offset: 20,
        };
        assert_eq!(
            Username::decode(&raw, &TransactionId([0; 12])),
            Err(Error::InvalidUtf8 {
                typ: AttrType::USERNAME,
                offset: 20
            })
        );
    }

    fn decode<'a, A: Attribute<'a>>(typ: AttrType, value: &'a [u8]) -> Result<A, Error> {
        let raw = RawAttribute {
            typ,
            value,
            offset: 0,
        };
        A::decode(&raw, &TransactionId([0; 12]))
    }

    /// RFC 8489 §14.3, §14.9, §14.10, §14.14: USERNAME is sent below 509 bytes and up to
    /// 513 accepted (RFC 5389's limit); REALM, NONCE and SOFTWARE are sent below 128
    /// characters and up to 763 bytes accepted.
    #[test]
    fn text_limits_sit_at_the_rfc_8489_boundaries() {
        let u = "u".repeat(514);
        assert!(Username(&u[..508]).validate().is_ok());
        assert!(Username(&u[..509]).validate().is_err());
        assert!(decode::<Username>(AttrType::USERNAME, &u.as_bytes()[..513]).is_ok());
        assert!(decode::<Username>(AttrType::USERNAME, u.as_bytes()).is_err());
        let r = "r".repeat(764);
        let (fits, over) = (&r.as_bytes()[..763], r.as_bytes());
        assert!(decode::<Realm>(AttrType::REALM, fits).is_ok());
        assert!(decode::<Realm>(AttrType::REALM, over).is_err());
        assert!(decode::<Nonce>(AttrType::NONCE, fits).is_ok());
        assert!(decode::<Nonce>(AttrType::NONCE, over).is_err());
        assert!(decode::<Software>(AttrType::SOFTWARE, fits).is_ok());
        assert!(decode::<Software>(AttrType::SOFTWARE, over).is_err());
        assert!(Realm(&r[..127]).validate().is_ok());
        assert!(Realm(&r[..128]).validate().is_err());
        assert!(Nonce(&r[..127]).validate().is_ok());
        assert!(Nonce(&r[..128]).validate().is_err());
    }

    /// RFC 8489 §14.16: ALTERNATE-DOMAIN is a name of at most 255 ASCII characters.
    #[test]
    fn alternate_domain_is_at_most_255_ascii_characters() {
        let d = "a".repeat(256);
        assert!(
            decode::<AlternateDomain>(AttrType::ALTERNATE_DOMAIN, &d.as_bytes()[..255]).is_ok()
        );
        assert!(decode::<AlternateDomain>(AttrType::ALTERNATE_DOMAIN, d.as_bytes()).is_err());
        assert!(
            decode::<AlternateDomain>(AttrType::ALTERNATE_DOMAIN, "bücher.example".as_bytes())
                .is_err()
        );
        assert!(AlternateDomain(&d[..255]).validate().is_ok());
        assert!(AlternateDomain(&d).validate().is_err());
        assert!(AlternateDomain("bücher.example").validate().is_err());
    }

    #[test]
    fn sent_text_is_limited_to_127_characters() {
        let s = "é".repeat(128);
        assert!(Software(&s).validate().is_err());
        assert!(Software(&s[..254]).validate().is_ok());
    }
}
