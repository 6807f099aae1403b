//! Credentials (RFC 8489 §9): long-term key derivation with MD5 or SHA-256, USERHASH,
//! the nonce cookie with its security-feature bits, and OpaqueString preparation of
//! passwords (RFC 8265 §4.2).

use std::borrow::Cow;

use md5::{Digest, Md5};
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;

use crate::{base64, Error};

/// A password algorithm (RFC 8489 §18.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5 (0x0001), the RFC 5389 key derivation.
    Md5,
    /// SHA-256 (0x0002).
    Sha256,
}

impl Algorithm {
    /// The registry number.
    pub fn to_u16(self) -> u16 {
        match self {
            Algorithm::Md5 => 1,
            Algorithm::Sha256 => 2,
        }
    }

    /// From a registry number; `None` for unknown algorithms.
    pub fn from_u16(v: u16) -> Option<Algorithm> {
        match v {
            1 => Some(Algorithm::Md5),
            2 => Some(Algorithm::Sha256),
            _ => None,
        }
    }
}

/// A derived long-term key: 16 bytes (MD5) or 32 bytes (SHA-256).
#[derive(Clone, PartialEq, Eq)]
pub struct LongTermKey(KeyBytes);

#[derive(Clone, PartialEq, Eq)]
enum KeyBytes {
    Md5([u8; 16]),
    Sha256([u8; 32]),
}

impl core::fmt::Debug for LongTermKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "LongTermKey({} bytes)", self.as_bytes().len())
    }
}

impl LongTermKey {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            KeyBytes::Md5(bytes) => bytes,
            KeyBytes::Sha256(bytes) => bytes,
        }
    }
}

/// Derives the long-term key (RFC 8489 §9.2.2):
/// `H(username ":" OpaqueString(realm) ":" OpaqueString(password))` with H = MD5 or
/// SHA-256. The username is used as given (it was processed with the UsernameCasePreserved
/// profile when provisioned, which is the server's business).
pub fn long_term_key(
    username: &str,
    realm: &str,
    password: &str,
    algorithm: Algorithm,
) -> Result<LongTermKey, Error> {
    let realm = opaque_string(realm)?;
    let password = opaque_string(password)?;
    let parts: [&[u8]; 5] = [
        username.as_bytes(),
        b":",
        realm.as_bytes(),
        b":",
        password.as_bytes(),
    ];
    let key = match algorithm {
        Algorithm::Md5 => {
            let mut h = Md5::new();
            for p in parts {
                h.update(p);
            }
            KeyBytes::Md5(h.finalize().into())
        }
        Algorithm::Sha256 => {
            let mut h = Sha256::new();
            for p in parts {
                h.update(p);
            }
            KeyBytes::Sha256(h.finalize().into())
        }
    };
    Ok(LongTermKey(key))
}

/// USERHASH (RFC 8489 §14.4): SHA-256(username ":" OpaqueString(realm)).
pub fn userhash(username: &str, realm: &str) -> Result<[u8; 32], Error> {
    let realm = opaque_string(realm)?;
    let mut h = Sha256::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    Ok(h.finalize().into())
}

/// The 9 characters every RFC 8489 nonce cookie starts with (§9.2).
pub const NONCE_COOKIE_PREFIX: &str = "obMatJos2";

/// The STUN Security Features carried in the nonce cookie (RFC 8489 §9.2, §18.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SecurityFeatures {
    /// Bit 0: the server supports PASSWORD-ALGORITHMS (§9.2.4).
    pub password_algorithms: bool,
    /// Bit 1: the server supports USERHASH (§9.2.1).
    pub username_anonymity: bool,
}

impl SecurityFeatures {
    fn bits(self) -> u32 {
        // Bit 0 is the most significant bit of the 24 (RFC 8489 §9.2).
        (u32::from(self.password_algorithms) << 23) | (u32::from(self.username_anonymity) << 22)
    }

    /// The 13-character nonce cookie: "obMatJos2" and the base64 of the 24 feature bits.
    pub fn nonce_cookie(self) -> [u8; 13] {
        let mut out = [0u8; 13];
        out[..9].copy_from_slice(NONCE_COOKIE_PREFIX.as_bytes());
        let bits = self.bits();
        for (i, o) in out[9..].iter_mut().enumerate() {
            *o = base64::digit(bits >> (18 - 6 * i));
        }
        out
    }

    /// Reads the security features from a NONCE value, or `None` if it does not start
    /// with a nonce cookie (an RFC 5389 server, which supports neither feature).
    pub fn from_nonce(nonce: &str) -> Option<SecurityFeatures> {
        let rest = nonce.strip_prefix(NONCE_COOKIE_PREFIX)?;
        let mut bits = 0u32;
        for c in rest.as_bytes().get(..4)? {
            bits = (bits << 6) | u32::from(base64::value(*c)?);
        }
        Some(SecurityFeatures {
            password_algorithms: bits & (1 << 23) != 0,
            username_anonymity: bits & (1 << 22) != 0,
        })
    }
}

/// Prepares a string with the OpaqueString profile of PRECIS (RFC 8265 §4.2), as RFC 8489
/// requires for passwords and realms.
///
/// What is implemented: printable ASCII passes unchanged without allocating (the common
/// case, and every ICE `ice-pwd`, RFC 8839 §5.4); non-ASCII space separators (Unicode
/// Zs) map to U+0020 (§4.2.1 rule 1); the result is normalized to NFC (rule 4); control
/// characters (Cc) are refused, as the FreeformClass (RFC 8264 §9.18) disallows them;
/// the empty string is refused (§4.2.2).
///
/// What is not covered: the full PRECIS derived-property table (RFC 8264 §9), so
/// unassigned code points and the other FreeformClass-disallowed categories (for
/// example old Hangul jamo) are passed through rather than refused. Interop is
/// unaffected for passwords that a PRECIS implementation accepts: for those the output
/// is identical.
pub fn opaque_string(s: &str) -> Result<Cow<'_, str>, Error> {
    if s.is_empty() {
        return Err(Error::InvalidInput {
            what: "OpaqueString: empty string",
        });
    }
    if s.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return Ok(Cow::Borrowed(s));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::InvalidInput {
            what: "OpaqueString: control character",
        });
    }
    let mapped = s
        .chars()
        .map(|c| if is_non_ascii_space(c) { ' ' } else { c });
    Ok(Cow::Owned(mapped.nfc().collect()))
}

/// Unicode general category Zs, other than U+0020 (RFC 8265 §4.2.1 rule 1).
fn is_non_ascii_space(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_passwords_are_borrowed_unchanged() {
        assert!(matches!(
            opaque_string("VOkJxbRl1RmTxUk/WvJxBt").unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn non_ascii_spaces_map_to_space_and_text_is_nfc() {
        assert_eq!(opaque_string("a\u{00A0}b").unwrap(), "a b");
        // "e" + combining acute accent becomes the precomposed "é".
        assert_eq!(opaque_string("caf\u{0065}\u{0301}").unwrap(), "caf\u{00E9}");
    }

    #[test]
    fn empty_and_control_characters_are_refused() {
        assert!(opaque_string("").is_err());
        assert!(opaque_string("pass\u{0007}word").is_err());
        assert!(opaque_string("pass\tword").is_err());
    }

    #[test]
    fn nonce_cookie_round_trips_the_feature_bits() {
        for (pa, ua) in [(false, false), (true, false), (false, true), (true, true)] {
            let f = SecurityFeatures {
                password_algorithms: pa,
                username_anonymity: ua,
            };
            let cookie = f.nonce_cookie();
            let s = core::str::from_utf8(&cookie).unwrap();
            assert!(s.starts_with("obMatJos2"));
            assert_eq!(SecurityFeatures::from_nonce(s), Some(f));
        }
        assert_eq!(
            &SecurityFeatures::default().nonce_cookie(),
            b"obMatJos2AAAA"
        );
        assert_eq!(
            &SecurityFeatures {
                password_algorithms: true,
                username_anonymity: false
            }
            .nonce_cookie()[9..],
            b"gAAA"
        );
        assert_eq!(
            SecurityFeatures::from_nonce("f//499k954d6OL34oL9FSTvy64sA"),
            None
        );
    }

    #[test]
    fn long_term_key_hashes_user_realm_password() {
        let key = long_term_key("user", "realm", "pass", Algorithm::Md5).unwrap();
        assert_eq!(key.as_bytes(), &*Md5::digest(b"user:realm:pass"));
        let key = long_term_key("user", "realm", "pass", Algorithm::Sha256).unwrap();
        assert_eq!(key.as_bytes(), &*Sha256::digest(b"user:realm:pass"));
    }

    /// RFC 8489 §9.2.1, §14.4: USERHASH = SHA-256(username ":" OpaqueString(realm)).
    #[test]
    fn userhash_is_sha256_of_username_colon_realm() {
        // `printf 'user:realm' | sha256sum`
        let expected = "6a3029116b47aa98bcaa325399733dc1a23cd57e26b81bef3ff6531ce624e2da";
        let hex = userhash("user", "realm")
            .unwrap()
            .iter()
            .fold(String::new(), |mut s, b| {
                use core::fmt::Write;
                let _ = write!(s, "{b:02x}");
                s
            });
        assert_eq!(hex, expected);
        // The realm goes through OpaqueString (a no-break space becomes a space); the
        // username is used as given.
        assert_eq!(
            userhash("alice", "floe\u{00A0}realm").unwrap(),
            <[u8; 32]>::from(Sha256::digest(b"alice:floe realm"))
        );
        assert_ne!(
            userhash("Alice", "floe realm").unwrap(),
            userhash("alice", "floe realm").unwrap()
        );
        assert!(userhash("alice", "").is_err(), "an empty realm is refused");
    }
}
