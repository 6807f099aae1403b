//! Users and TURN REST secrets kept outside the process, such as in a fleet's Redis
//! (docs/fleet.md): users are held as RFC 8489 §9.2.2 long-term keys, never passwords,
//! the way coturn's `turnadmin` stores them, and a user or REST username can be revoked.
//! One [`StoredUsers`] is built by the runtime whenever the store changes and shared by
//! every worker through an `Arc` ([`Server::set_stored_users`](super::Server::set_stored_users)).

use std::collections::{HashMap, HashSet};

use floe_stun::credentials::{self, Algorithm};

/// A user's long-term keys: `MD5(username ":" realm ":" password)` and/or the SHA-256 of
/// the same string (RFC 8489 §9.2.2). A request signed with an algorithm whose key is
/// not stored fails authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredKey {
    /// The MD5 key (PASSWORD-ALGORITHM MD5, or none given).
    pub md5: Option<[u8; 16]>,
    /// The SHA-256 key (PASSWORD-ALGORITHM SHA-256).
    pub sha256: Option<[u8; 32]>,
}

impl StoredKey {
    /// The keys of `username` with `password` in `realm` (what `floe user-key` prints).
    pub fn from_password(
        username: &str,
        realm: &str,
        password: &str,
    ) -> Result<StoredKey, floe_stun::Error> {
        let md5 = credentials::long_term_key(username, realm, password, Algorithm::Md5)?;
        let sha = credentials::long_term_key(username, realm, password, Algorithm::Sha256)?;
        Ok(StoredKey {
            md5: md5.as_bytes().try_into().ok(),
            sha256: sha.as_bytes().try_into().ok(),
        })
    }

    /// Adds a key written as hex: 32 digits for MD5 (coturn's format), 64 for SHA-256.
    /// Returns `false` (and changes nothing) for anything else.
    pub fn set_hex(&mut self, hex: &str) -> bool {
        match hex.len() {
            32 => parse_hex(hex).map(|k| self.md5 = Some(k)).is_some(),
            64 => parse_hex(hex).map(|k| self.sha256 = Some(k)).is_some(),
            _ => false,
        }
    }

    /// The key for `algorithm`, if stored.
    pub fn get(&self, algorithm: Algorithm) -> Option<&[u8]> {
        match algorithm {
            Algorithm::Md5 => self.md5.as_ref().map(|k| &k[..]),
            Algorithm::Sha256 => self.sha256.as_ref().map(|k| &k[..]),
        }
    }
}

/// Users with stored keys, extra REST secrets and revoked names, for one realm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredUsers {
    realm: String,
    keys: HashMap<String, StoredKey>,
    /// USERHASH → username (RFC 8489 §9.2.4), computed once per store change.
    hashes: HashMap<[u8; 32], String>,
    rest_secrets: Vec<String>,
    revoked: HashSet<String>,
}

impl StoredUsers {
    /// An empty store for `realm` (users of another realm never authenticate here).
    pub fn new(realm: &str) -> StoredUsers {
        StoredUsers {
            realm: realm.to_owned(),
            ..StoredUsers::default()
        }
    }

    /// Sets `username`'s keys. A name that cannot be prepared for USERHASH still
    /// authenticates with USERNAME.
    pub fn insert(&mut self, username: &str, key: StoredKey) {
        if let Ok(h) = credentials::userhash(username, &self.realm) {
            self.hashes.insert(h, username.to_owned());
        }
        self.keys.insert(username.to_owned(), key);
    }

    /// Accepts TURN REST usernames signed with `secret` too (besides the configured
    /// secrets).
    pub fn add_rest_secret(&mut self, secret: &str) {
        if !self.rest_secrets.iter().any(|s| s == secret) {
            self.rest_secrets.push(secret.to_owned());
        }
    }

    /// Refuses `username` (a stored, configured or TURN REST name) with 403 from now on,
    /// even with right credentials, so its allocations end at their next refresh.
    pub fn revoke(&mut self, username: &str) {
        self.revoked.insert(username.to_owned());
    }

    /// The keys of `username`.
    pub fn key(&self, username: &str) -> Option<&StoredKey> {
        self.keys.get(username)
    }

    /// The username whose USERHASH this is.
    pub fn by_hash(&self, hash: &[u8; 32]) -> Option<&str> {
        self.hashes.get(hash).map(String::as_str)
    }

    /// The extra REST secrets.
    pub fn rest_secrets(&self) -> &[String] {
        &self.rest_secrets
    }

    /// Whether `username` is revoked.
    pub fn is_revoked(&self, username: &str) -> bool {
        self.revoked.contains(username)
    }

    /// How many users have keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no user has keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many names are revoked.
    pub fn revoked(&self) -> usize {
        self.revoked.len()
    }

    /// The user whose key a store's key name holds, in coturn's layout
    /// (`turn/realm/REALM/user/NAME/key`, plus floe's `.../key-sha256`): `NAME`, if
    /// `key` is such a name for `realm` and `NAME` is not empty.
    pub fn user_of_key<'k>(realm: &str, key: &'k str) -> Option<&'k str> {
        let rest = key
            .strip_prefix("turn/realm/")?
            .strip_prefix(realm)?
            .strip_prefix("/user/")?;
        rest.strip_suffix("/key")
            .or_else(|| rest.strip_suffix("/key-sha256"))
            .filter(|u| !u.is_empty())
    }
}

/// One hex digit's value.
fn hex_digit(d: u8) -> Option<u8> {
    char::from(d)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

/// Hex digits of either case into exactly `N` bytes. Digit by digit:
/// `u8::from_str_radix` would take a sign ("+b"), which the fuzz target `stored_users`
/// found.
fn parse_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = (hex_digit(*hi)? << 4) | hex_digit(*lo)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_by_length() {
        let mut k = StoredKey::default();
        // coturn's documented example: turnadmin -k -u ninefingers -r north.gov -p youhavetoberealistic
        assert!(k.set_hex("bc807ee29df3c9ffa736523fb2c4e8ee"));
        let from_password =
            StoredKey::from_password("ninefingers", "north.gov", "youhavetoberealistic").unwrap();
        assert_eq!(k.md5, from_password.md5);
        assert!(k.sha256.is_none());
        assert!(!k.set_hex("bc80"));
        assert!(!k.set_hex("zz807ee29df3c9ffa736523fb2c4e8ee"));
        assert!(!k.set_hex("é807ee29df3c9ffa736523fb2c4e8e"));
        // A sign is not a digit (u8::from_str_radix would take "+b").
        assert!(!k.set_hex("+b807ee29df3c9ffa736523fb2c4e8ee"));
        assert!(!k.set_hex("bc807ee29df3c9ffa736523fb2c4e8+e"));
        let sha = "a".repeat(64);
        assert!(k.set_hex(&sha));
        assert_eq!(k.get(Algorithm::Sha256), Some(&[0xaa; 32][..]));
    }

    #[test]
    fn user_names_come_from_coturns_key_names() {
        let of = |k| StoredUsers::user_of_key("north.gov", k);
        assert_eq!(
            of("turn/realm/north.gov/user/ninefingers/key"),
            Some("ninefingers")
        );
        assert_eq!(of("turn/realm/north.gov/user/a/b/key-sha256"), Some("a/b"));
        assert_eq!(of("turn/realm/north.gov/user//key"), None);
        assert_eq!(of("turn/realm/other/user/x/key"), None);
        assert_eq!(of("turn/realm/north.gov/user/x/password"), None);
        assert_eq!(of("turn/realm/north.gov.evil/user/x/key"), None);
    }

    #[test]
    fn userhash_finds_stored_users() {
        let mut s = StoredUsers::new("north.gov");
        s.insert("ninefingers", StoredKey::default());
        let h = credentials::userhash("ninefingers", "north.gov").unwrap();
        assert_eq!(s.by_hash(&h), Some("ninefingers"));
        s.revoke("ninefingers");
        assert!(s.is_revoked("ninefingers"));
        s.add_rest_secret("a");
        s.add_rest_secret("a");
        assert_eq!(s.rest_secrets(), ["a"]);
    }
}
