//! Parse and verify with credentials taken from the input: the first byte picks the
//! credential kind, the next bytes (up to a 0 byte) are the password, the rest is the
//! message. Long-term keys use the message's own USERNAME and REALM when present.
#![no_main]

use floe_stun::attributes::{Realm, Username};
use floe_stun::credentials::Algorithm;
use floe_stun::{IntegrityKey, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let (password, msg) = rest.split_at(split);
    let msg = msg.get(1..).unwrap_or(&[]);
    let Ok(password) = std::str::from_utf8(password) else {
        return;
    };
    let Ok(parsed) = Message::parse(msg) else {
        return;
    };
    let key = match mode % 3 {
        0 => IntegrityKey::short_term(password),
        n => {
            let user = parsed
                .get::<Username>()
                .ok()
                .flatten()
                .map_or("user", |u| u.0);
            let realm = parsed
                .get::<Realm>()
                .ok()
                .flatten()
                .map_or("realm", |r| r.0);
            let alg = if n == 1 {
                Algorithm::Md5
            } else {
                Algorithm::Sha256
            };
            IntegrityKey::long_term(user, realm, password, alg)
        }
    };
    if let Ok(key) = key {
        let _ = parsed.verify(&key);
        let _ = parsed.verify_sha1(&key);
        let _ = parsed.verify_sha256(&key);
    }
});
