//! Long-term credential authentication on the server (RFC 8489 §9.2.4, RFC 8656 §5):
//! stateless nonces, the user table, TURN REST credentials, password algorithms.

use std::fmt::Write;
use std::net::IpAddr;
use std::time::Instant;

use floe_stun::attributes::{
    ErrorCode, Nonce, PasswordAlgorithm, PasswordAlgorithms, Realm, UserHash, Username,
};
use floe_stun::credentials::{self, Algorithm, SecurityFeatures};
use floe_stun::{IntegrityKey, Message};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::Server;
use crate::rest;

/// The algorithms the server offers in PASSWORD-ALGORITHMS, in order of preference
/// (RFC 8489 §9.2.4: the list goes in 401 and 438 responses when the nonce cookie says
/// so).
pub(crate) const OFFERED: [PasswordAlgorithm<'static>; 2] =
    [PasswordAlgorithm::SHA256, PasswordAlgorithm::MD5];

/// A request that passed authentication.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated {
    pub(crate) username: String,
    pub(crate) key: IntegrityKey,
    /// Whether to answer with MESSAGE-INTEGRITY-SHA256 (the request used it).
    pub(crate) sha256: bool,
}

/// Why a request failed authentication: the error code to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 401 with REALM, NONCE, PASSWORD-ALGORITHMS (RFC 8489 §9.2.4).
    Unauthenticated,
    /// 438 with a new NONCE.
    StaleNonce,
    /// 400.
    BadRequest,
}

impl<R: super::RelayAllocator> Server<R> {
    /// The nonce cookie every nonce of ours starts with (RFC 8489 §9.2): "obMatJos2"
    /// and the STUN Security Features we support (password algorithms and username
    /// anonymity).
    fn nonce_cookie() -> [u8; 13] {
        SecurityFeatures {
            password_algorithms: true,
            username_anonymity: true,
        }
        .nonce_cookie()
    }

    /// A nonce valid for `nonce_lifetime`, bound to the client's IP: nonce cookie,
    /// expiry (seconds since the server started, 8 hex digits) and a truncated HMAC over
    /// all three (16 hex digits), 37 ASCII characters in all. Stateless, so a flood of
    /// 401s costs no memory.
    pub(crate) fn make_nonce(&self, now: Instant, client: IpAddr) -> String {
        let expiry = (now + self.config.nonce_lifetime)
            .saturating_duration_since(self.epoch)
            .as_secs() as u32;
        let cookie = Self::nonce_cookie();
        let mut s = String::with_capacity(NONCE_LEN);
        s.extend(cookie.iter().map(|&b| char::from(b)));
        let _ = write!(s, "{expiry:08x}");
        push_hex(&mut s, &self.nonce_mac(&cookie, expiry, client));
        s
    }

    /// The first 8 bytes of HMAC-SHA1(secret, cookie | expiry | client IP).
    fn nonce_mac(&self, cookie: &[u8], expiry: u32, client: IpAddr) -> [u8; 8] {
        let Ok(mut mac) = <Hmac<Sha1> as Mac>::new_from_slice(&self.nonce_secret) else {
            // HMAC takes keys of any length; this arm cannot run.
            return [0; 8];
        };
        mac.update(cookie);
        mac.update(&expiry.to_be_bytes());
        match client {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let full: [u8; 20] = mac.finalize().into_bytes().into();
        let mut out = [0u8; 8];
        out.copy_from_slice(full.get(..8).unwrap_or(&[0; 8]));
        out
    }

    /// Whether `nonce` is exactly one we issued to this client and has not expired
    /// (RFC 8489 §9.2.4). Every part is checked: the cookie and its security-feature
    /// characters (a changed feature set is how a bid-down of the password algorithm
    /// would show, §9.2), the expiry, and the MAC over both. Works on bytes, so a
    /// non-ASCII nonce of any shape is simply not ours.
    pub(crate) fn nonce_valid(&self, now: Instant, client: IpAddr, nonce: &str) -> bool {
        let bytes = nonce.as_bytes();
        if bytes.len() != NONCE_LEN {
            return false;
        }
        let Some((cookie, rest)) = bytes.split_at_checked(13) else {
            return false;
        };
        let Some((expiry_hex, mac_hex)) = rest.split_at_checked(8) else {
            return false;
        };
        if cookie != Self::nonce_cookie() {
            return false;
        }
        let Some(expiry) = parse_hex_u32(expiry_hex) else {
            return false;
        };
        let mut expected = [0u8; 16];
        hex_into(&self.nonce_mac(cookie, expiry, client), &mut expected);
        let now_secs = now.saturating_duration_since(self.epoch).as_secs();
        constant_time_eq(&expected, mac_hex) && u64::from(expiry) > now_secs
    }

    /// The passwords `username` may have: from the user table, or, for a valid
    /// unexpired TURN REST username, one per configured secret.
    fn passwords_for(&self, now: Instant, username: &str) -> Vec<String> {
        if let Some(p) = self.config.users.get(username) {
            return vec![p.clone()];
        }
        let (Some(expiry), Some(unix_now)) = (rest::expiry(username), self.unix_time(now)) else {
            return Vec::new();
        };
        if expiry <= unix_now {
            return Vec::new();
        }
        self.config
            .rest_secrets
            .iter()
            .chain(self.stored.rest_secrets())
            .map(|secret| rest::password(secret, username))
            .collect()
    }

    /// The username whose USERHASH matches (RFC 8489 §9.2.4), from the user table or
    /// the stored users.
    fn user_by_hash(&self, hash: &[u8; 32]) -> Option<String> {
        self.user_hashes
            .get(hash)
            .cloned()
            .or_else(|| self.stored.by_hash(hash).map(str::to_owned))
    }

    /// The key of a stored user (no password known) for `algorithm`: configured users
    /// come first, so a name in both has no stored key here.
    fn stored_key(&self, username: &str, algorithm: Algorithm) -> Option<IntegrityKey> {
        if self.config.users.contains_key(username) {
            return None;
        }
        let key = self.stored.key(username)?.get(algorithm)?;
        Some(IntegrityKey::from_key_bytes(key))
    }

    /// Checks a request's long-term credentials (RFC 8489 §9.2.4).
    pub(crate) fn authenticate(
        &mut self,
        now: Instant,
        client: IpAddr,
        msg: &Message<'_>,
    ) -> Result<Authenticated, Refusal> {
        if !msg.has_integrity() {
            return Err(Refusal::Unauthenticated);
        }
        let username = match (msg.get::<Username>(), msg.get::<UserHash>()) {
            (Ok(Some(u)), _) => Some(u.0.to_owned()),
            (_, Ok(Some(h))) => Some(self.user_by_hash(h.0).ok_or(Refusal::Unauthenticated)?),
            _ => None,
        };
        let (Some(username), Ok(Some(realm)), Ok(Some(nonce))) =
            (username, msg.get::<Realm>(), msg.get::<Nonce>())
        else {
            return Err(Refusal::BadRequest);
        };
        if !self.nonce_valid(now, client, nonce.0) {
            return Err(Refusal::StaleNonce);
        }
        if realm.0 != self.config.realm {
            return Err(Refusal::Unauthenticated);
        }
        // Bid-down protection (RFC 8489 §9.2.4): with PASSWORD-ALGORITHM, the request must
        // echo our PASSWORD-ALGORITHMS unchanged and pick one of them.
        let algorithm = match msg.get::<PasswordAlgorithm>() {
            Ok(None) => Algorithm::Md5,
            Ok(Some(chosen)) => {
                let echoed = msg.get::<PasswordAlgorithms>().ok().flatten();
                if echoed != Some(PasswordAlgorithms::from_list(&OFFERED))
                    || !chosen.params.is_empty()
                {
                    return Err(Refusal::BadRequest);
                }
                Algorithm::from_u16(chosen.algorithm).ok_or(Refusal::BadRequest)?
            }
            Err(_) => return Err(Refusal::BadRequest),
        };
        // Every candidate key is tried (several REST secrets during a rotation).
        let stored = self.stored_key(&username, algorithm);
        let from_passwords = self
            .passwords_for(now, &username)
            .into_iter()
            .filter_map(|p| {
                IntegrityKey::long_term(&username, &self.config.realm, &p, algorithm).ok()
            });
        for key in stored.into_iter().chain(from_passwords) {
            if let Ok(kind) = msg.verify(&key) {
                return Ok(Authenticated {
                    username,
                    key,
                    sha256: kind == floe_stun::IntegrityKind::Sha256,
                });
            }
        }
        Err(Refusal::Unauthenticated)
    }

    /// Whether a 401 may be sent to `client` now (per-source rate limit).
    pub(crate) fn may_challenge(&mut self, now: Instant, client: IpAddr) -> bool {
        let window = std::time::Duration::from_secs(1);
        if self.unauth.len() >= self.config.max_tracked_sources
            && !self.unauth.contains_key(&client)
        {
            self.unauth
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
            if self.unauth.len() >= self.config.max_tracked_sources {
                return false;
            }
        }
        let entry = self.unauth.entry(client).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= self.config.max_unauthenticated_per_second
    }

    /// The error code for a refusal.
    pub(crate) fn refusal_code(refusal: Refusal) -> ErrorCode<'static> {
        match refusal {
            Refusal::StaleNonce => ErrorCode::STALE_NONCE,
            Refusal::BadRequest => ErrorCode::BAD_REQUEST,
            Refusal::Unauthenticated => ErrorCode::UNAUTHENTICATED,
        }
    }
}

/// USERHASH of every user in the table (RFC 8489 §9.2.1, §14.4); users whose name or
/// realm cannot be prepared are left out (they cannot authenticate by USERHASH).
pub(crate) fn user_hashes(
    config: &super::ServerConfig,
) -> std::collections::HashMap<[u8; 32], String> {
    config
        .users
        .keys()
        .filter_map(|u| Some((credentials::userhash(u, &config.realm).ok()?, u.clone())))
        .collect()
}

/// Length of a nonce from [`Server::make_nonce`]: 13 cookie, 8 expiry and 16 MAC
/// characters.
const NONCE_LEN: usize = 13 + 8 + 16;

/// Lower-case hex of exactly 8 digits, as [`Server::make_nonce`] writes it.
fn parse_hex_u32(digits: &[u8]) -> Option<u32> {
    if digits.len() != 8 {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some((acc << 4) | u32::from(v))
    })
}

/// Lower-case hex of `bytes` into `out` (twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    fn digit(n: u8) -> u8 {
        match n {
            0..=9 => b'0' + n,
            _ => (b'a' - 10).wrapping_add(n),
        }
    }
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        if let [hi, lo] = pair {
            *hi = digit(b >> 4);
            *lo = digit(b & 0xf);
        }
    }
}

/// Compares without an early exit, so the time taken says nothing of where a forged
/// MAC first differs.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
}
