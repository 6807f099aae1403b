//! MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5) and MESSAGE-INTEGRITY-SHA256
//! (HMAC-SHA256, §14.6): computing and verifying over the right prefix, with the header
//! length adjusted as if the integrity attribute were last.

use core::fmt;

use hmac::digest::core_api::CoreWrapper;
use hmac::{Hmac, HmacCore, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::credentials::{self, Algorithm};
use crate::header::HEADER_LEN;
use crate::message::Message;
use crate::Error;

/// A keyed integrity context, built once per credential and reused for every message:
/// the HMAC key schedule (inner and outer pads) is computed here, so the per-message
/// cost is the bare HMAC over the message.
///
/// It keeps only the two hash states of each HMAC (no block buffers): 144 bytes, not
/// 288, for every session that holds one.
#[derive(Clone)]
pub struct IntegrityKey {
    sha1: Sha1Key,
    sha256: HmacCore<Sha256>,
}

/// The MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5) half of an [`IntegrityKey`]: its
/// inner and outer hash states, 64 bytes. ICE checks and their answers use only
/// MESSAGE-INTEGRITY (RFC 8445 §7.2.2), so a table of thousands of sessions' keys (a
/// media server's mux) can hold this instead of the whole key. Anything that takes
/// `impl AsRef<Sha1Key>` takes an [`IntegrityKey`] too.
#[derive(Clone)]
pub struct Sha1Key(HmacCore<Sha1>);

impl fmt::Debug for Sha1Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha1Key(..)")
    }
}

impl Sha1Key {
    pub(crate) fn hmac(&self, header: &[u8; HEADER_LEN], body: &[u8]) -> [u8; 20] {
        let mut mac: Hmac<Sha1> = CoreWrapper::from_core(self.0.clone());
        mac.update(header);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl AsRef<Sha1Key> for Sha1Key {
    fn as_ref(&self) -> &Sha1Key {
        self
    }
}

impl AsRef<Sha1Key> for IntegrityKey {
    fn as_ref(&self) -> &Sha1Key {
        &self.sha1
    }
}

impl fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IntegrityKey(..)")
    }
}

/// Which integrity attribute a message was verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrityKind {
    /// MESSAGE-INTEGRITY (HMAC-SHA1).
    Sha1,
    /// MESSAGE-INTEGRITY-SHA256.
    Sha256,
}

impl IntegrityKey {
    /// A key from raw key bytes (RFC 8489 §9: the short-term password after OpaqueString,
    /// or the long-term MD5/SHA-256 digest).
    pub fn from_key_bytes(key: &[u8]) -> IntegrityKey {
        IntegrityKey {
            // HMAC accepts keys of any length.
            sha1: Sha1Key(
                <HmacCore<Sha1> as hmac::digest::KeyInit>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!()),
            ),
            sha256: <HmacCore<Sha256> as hmac::digest::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!()),
        }
    }

    /// The short-term credential key (RFC 8489 §9.1.1): the password processed with the
    /// OpaqueString profile (RFC 8265 §4.2). ICE uses this with the peer's `ice-pwd`.
    pub fn short_term(password: &str) -> Result<IntegrityKey, Error> {
        let prepared = credentials::opaque_string(password)?;
        Ok(IntegrityKey::from_key_bytes(prepared.as_bytes()))
    }

    /// The long-term credential key (RFC 8489 §9.2.2): MD5 or SHA-256 of
    /// `username ":" OpaqueString(realm) ":" OpaqueString(password)`.
    pub fn long_term(
        username: &str,
        realm: &str,
        password: &str,
        algorithm: Algorithm,
    ) -> Result<IntegrityKey, Error> {
        let key = credentials::long_term_key(username, realm, password, algorithm)?;
        Ok(IntegrityKey::from_key_bytes(key.as_bytes()))
    }

    /// Its MESSAGE-INTEGRITY half (for keeping many).
    pub fn sha1(&self) -> &Sha1Key {
        &self.sha1
    }

    pub(crate) fn hmac_sha256(&self, header: &[u8; HEADER_LEN], body: &[u8]) -> [u8; 32] {
        let mut mac: Hmac<Sha256> = CoreWrapper::from_core(self.sha256.clone());
        mac.update(header);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// `header` with its length field set to `length` (RFC 8489 §14.5: the length must cover
/// the integrity attribute as if it were the last one).
pub(crate) fn adjusted_header(header: &[u8; HEADER_LEN], length: usize) -> [u8; HEADER_LEN] {
    let mut header = *header;
    let [l0, l1] = (length as u16).to_be_bytes();
    header[2] = l0;
    header[3] = l1;
    header
}

/// Splits what an integrity attribute covers into the header and the attributes before it.
fn header_and_body(covered: &[u8]) -> Result<(&[u8; HEADER_LEN], &[u8]), Error> {
    covered.split_first_chunk().ok_or(Error::Truncated {
        needed: HEADER_LEN,
        have: covered.len(),
    })
}

impl Message<'_> {
    /// Verifies the message's integrity with `key` (RFC 8489 §9.1.3, §9.2.4): with
    /// MESSAGE-INTEGRITY-SHA256 present it is checked, otherwise MESSAGE-INTEGRITY.
    /// The comparison is constant-time.
    pub fn verify(&self, key: &IntegrityKey) -> Result<IntegrityKind, Error> {
        if self.integrity_sha256_offset().is_some() {
            self.verify_sha256(key).map(|()| IntegrityKind::Sha256)
        } else {
            self.verify_sha1(key).map(|()| IntegrityKind::Sha1)
        }
    }

    /// Verifies MESSAGE-INTEGRITY (HMAC-SHA1) specifically, with an [`IntegrityKey`] or
    /// its [`Sha1Key`].
    pub fn verify_sha1<K: AsRef<Sha1Key> + ?Sized>(&self, key: &K) -> Result<(), Error> {
        let at = self.integrity_offset().ok_or(Error::MissingIntegrity)?;
        let (covered, attribute) = self.split_at_attribute(at)?;
        let (header, body) = header_and_body(covered)?;
        let header = adjusted_header(header, body.len() + 4 + 20);
        let mac = key.as_ref().hmac(&header, body);
        // `parse` checked the value is 20 bytes.
        let found = attribute.get(4..24).unwrap_or_default();
        if constant_time_eq(&mac, found) {
            Ok(())
        } else {
            Err(Error::IntegrityMismatch {
                name: "MESSAGE-INTEGRITY",
            })
        }
    }

    /// Verifies MESSAGE-INTEGRITY-SHA256 specifically (truncated values compare their
    /// prefix, RFC 8489 §14.6).
    pub fn verify_sha256(&self, key: &IntegrityKey) -> Result<(), Error> {
        let at = self
            .integrity_sha256_offset()
            .ok_or(Error::MissingIntegrity)?;
        let (covered, attribute) = self.split_at_attribute(at)?;
        let (header, body) = header_and_body(covered)?;
        // `parse` checked the value is 16 to 32 bytes and inside the message.
        let (&[_, _, l0, l1], rest) = attribute
            .split_first_chunk()
            .ok_or(Error::AttributeHeaderTruncated { offset: at })?;
        let found = rest
            .get(..usize::from(u16::from_be_bytes([l0, l1])))
            .unwrap_or_default();
        let header = adjusted_header(header, body.len() + 4 + found.len());
        let mac = key.hmac_sha256(&header, body);
        // A truncated value is compared with the same prefix of the MAC (RFC 8489 §14.6).
        if mac
            .get(..found.len())
            .is_some_and(|mac| constant_time_eq(mac, found))
        {
            Ok(())
        } else {
            Err(Error::IntegrityMismatch {
                name: "MESSAGE-INTEGRITY-SHA256",
            })
        }
    }

    /// Whether the message carries MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256.
    pub fn has_integrity(&self) -> bool {
        self.integrity_offset().is_some() || self.integrity_sha256_offset().is_some()
    }
}

/// Compares without an early exit, so the time taken does not tell an attacker how many
/// leading bytes of a forged MAC were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    core::hint::black_box(diff) == 0
}
#[cfg(test)]
mod size_tests {
    #[test]
    fn a_key_holds_only_the_hash_states() {
        let n = std::mem::size_of::<super::IntegrityKey>();
        assert!(n <= 160, "{n}");
        let n = std::mem::size_of::<super::Sha1Key>();
        assert!(n <= 64, "{n}");
    }
}
