//! TURN REST credentials (draft-uberti-behave-turn-rest-00, as coturn's
//! `--use-auth-secret` implements them): the username is `EXPIRY[:USER]` with EXPIRY a
//! Unix time, and the password is base64(HMAC-SHA1(shared secret, username)). A web
//! service hands these out; the TURN server checks them without a user table.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Standard base64 with padding (RFC 4648 §4): floe-stun's, kept here under its old name.
pub use floe_stun::base64::encode as base64;

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

#[cfg(test)]
mod tests {
    use super::*;

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
