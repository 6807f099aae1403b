//! TURN REST credentials (draft-uberti-behave-turn-rest-00, as coturn's
//! `--use-auth-secret` implements them): the username is `EXPIRY[:USER]` with EXPIRY a
//! Unix time, and the password is base64(HMAC-SHA1(shared secret, username)). A web
//! service hands these out; the TURN server checks them without a user table.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The password for `username` under `secret`.
pub fn password(secret: &str, username: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(username.as_bytes());
    base64(&mac.finalize().into_bytes())
}

/// Makes a username and password valid until `expiry_unix` for `user`.
pub fn credentials(secret: &str, user: &str, expiry_unix: u64) -> (String, String) {
    let username = if user.is_empty() {
        expiry_unix.to_string()
    } else {
        format!("{expiry_unix}:{user}")
    };
    let password = password(secret, &username);
    (username, password)
}

/// The expiry time in a REST username, or `None` if it has none.
pub fn expiry(username: &str) -> Option<u64> {
    username.split(':').next()?.parse().ok()
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [0, 1, 2].map(|i| chunk.get(i).copied().unwrap_or(0));
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(base64_digit(n >> (18 - 6 * i))));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The base64 digit (RFC 4648 §4) for the low six bits of `v`.
fn base64_digit(v: u32) -> u8 {
    match (v & 0x3F) as u8 {
        v @ 0..=25 => b'A' + v,
        v @ 26..=51 => b'a' + (v - 26),
        v @ 52..=61 => b'0' + (v - 52),
        62 => b'+',
        _ => b'/',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn base64_uses_every_digit_of_the_alphabet() {
        // The 64 six-bit values 0..=63 in order, packed into 48 bytes.
        let bits: Vec<u8> = (0u8..64).collect();
        let bytes: Vec<u8> = bits
            .chunks(4)
            .flat_map(|s| {
                let n = (u32::from(s[0]) << 18)
                    | (u32::from(s[1]) << 12)
                    | (u32::from(s[2]) << 6)
                    | u32::from(s[3]);
                [(n >> 16) as u8, (n >> 8) as u8, n as u8]
            })
            .collect();
        assert_eq!(
            base64(&bytes),
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        );
    }

    #[test]
    fn credentials_carry_the_expiry_and_a_keyed_password() {
        let (u, p) = credentials("north", "alice", 1_700_000_000);
        assert_eq!(u, "1700000000:alice");
        assert_eq!(expiry(&u), Some(1_700_000_000));
        assert_eq!(p, password("north", &u));
        assert_ne!(p, password("south", &u));
        // HMAC-SHA1 output is 20 bytes: 28 base64 characters.
        assert_eq!(p.len(), 28);
        assert_eq!(expiry("alice"), None);
    }
}
