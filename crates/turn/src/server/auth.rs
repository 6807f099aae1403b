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
    /// A nonce valid for `nonce_lifetime`, bound to the client's IP: nonce cookie,
    /// expiry (seconds since the server started, hex) and a truncated HMAC over both.
    /// Stateless, so a flood of 401s costs no memory.
    pub(crate) fn make_nonce(&self, now: Instant, client: IpAddr) -> String {
        let expiry = (now + self.config.nonce_lifetime)
            .saturating_duration_since(self.epoch)
            .as_secs() as u32;
        let cookie = SecurityFeatures {
            password_algorithms: true,
            username_anonymity: true,
        }
        .nonce_cookie();
        let mut s = String::with_capacity(40);
        s.push_str(core::str::from_utf8(&cookie).unwrap_or_default());
        let _ = write!(s, "{expiry:08x}");
        push_hex(&mut s, &self.nonce_mac(expiry, client)[..8]);
        s
    }

    fn nonce_mac(&self, expiry: u32, client: IpAddr) -> [u8; 20] {
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&self.nonce_secret)
            .unwrap_or_else(|_| unreachable!());
        mac.update(&expiry.to_be_bytes());
        match client {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether `nonce` is one of ours, for this client, not expired.
    pub(crate) fn nonce_valid(&self, now: Instant, client: IpAddr, nonce: &str) -> bool {
        let Some(rest) = nonce.get(13..) else {
            return false;
        };
        if rest.len() != 24 || !nonce.starts_with(credentials::NONCE_COOKIE_PREFIX) {
            return false;
        }
        let Ok(expiry) = u32::from_str_radix(&rest[..8], 16) else {
            return false;
        };
        let mac = self.nonce_mac(expiry, client);
        let mut expected = String::with_capacity(16);
        push_hex(&mut expected, &mac[..8]);
        let now_secs = now.saturating_duration_since(self.epoch).as_secs();
        expected == rest[8..] && u64::from(expiry) > now_secs
    }

    /// The password for `username`: from the user table, or a valid unexpired TURN REST
    /// username.
    fn password_for(&self, now: Instant, username: &str) -> Option<String> {
        if let Some(p) = self.config.users.get(username) {
            return Some(p.clone());
        }
        let secret = self.config.rest_secret.as_deref()?;
        let expiry = rest::expiry(username)?;
        let unix_now = self.unix_time(now)?;
        (expiry > unix_now).then(|| rest::password(secret, username))
    }

    /// The username whose USERHASH matches (RFC 8489 §9.2.4), from the user table.
    fn user_by_hash(&self, hash: &[u8; 32]) -> Option<String> {
        self.config
            .users
            .keys()
            .find(|u| credentials::userhash(u, &self.config.realm).is_ok_and(|h| &h == hash))
            .cloned()
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
        let password = self
            .password_for(now, &username)
            .ok_or(Refusal::Unauthenticated)?;
        let key = IntegrityKey::long_term(&username, &self.config.realm, &password, algorithm)
            .map_err(|_| Refusal::Unauthenticated)?;
        let kind = msg.verify(&key).map_err(|_| Refusal::Unauthenticated)?;
        Ok(Authenticated {
            username,
            key,
            sha256: kind == floe_stun::IntegrityKind::Sha256,
        })
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

fn push_hex(s: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
}
