//! What a fleet's Redis hands `floe serve` (docs/fleet.md): key names and values, read
//! into floe-turn's `StoredUsers`. Redis is the operator's, but whoever can write to it
//! should not be able to crash or confuse every TURN server of the fleet. Properties:
//!
//! - `StoredUsers::user_of_key` finds a name exactly when the key is
//!   `turn/realm/REALM/user/NAME/key` or `.../key-sha256` with a non-empty NAME, and the
//!   key rebuilt from the name is the key it came from;
//! - `StoredKey::set_hex` takes exactly 32 or 64 hex digits, and the key it stores is
//!   those digits (in lower case); anything else changes nothing;
//! - a stored user is found again by name, and by USERHASH whenever one can be made.
//!
//! The input is NUL-separated fields taken in pairs: a key name and its value.
#![no_main]

use floe_stun::credentials;
use floe_turn::server::{StoredKey, StoredUsers};
use libfuzzer_sys::fuzz_target;

const REALM: &str = "fleet.example";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\0');
    let mut users = StoredUsers::new(REALM);
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let user = StoredUsers::user_of_key(REALM, name);
        if let Some(u) = user {
            assert!(!u.is_empty());
            let plain = format!("turn/realm/{REALM}/user/{u}/key");
            let sha = format!("{plain}-sha256");
            assert!(name == plain || name == sha, "{name:?} gave {u:?}");
        } else if let Some(rest) = name.strip_prefix(&format!("turn/realm/{REALM}/user/")) {
            assert!(
                !(rest.ends_with("/key") && rest.len() > 4
                    || rest.ends_with("/key-sha256") && rest.len() > 11),
                "{name:?} names a user but none was found"
            );
        }
        let mut key = StoredKey::default();
        let before = key.clone();
        let took = key.set_hex(value);
        let is_hex = matches!(value.len(), 32 | 64) && value.bytes().all(|b| b.is_ascii_hexdigit());
        assert_eq!(took, is_hex, "{value:?}");
        if took {
            let stored = if value.len() == 32 {
                hex(&key.md5.unwrap())
            } else {
                hex(&key.sha256.unwrap())
            };
            assert_eq!(stored, value.to_ascii_lowercase());
        } else {
            assert_eq!(key, before);
        }
        if let Some(u) = user {
            users.insert(u, key.clone());
            assert_eq!(users.key(u), Some(&key));
            if let Ok(h) = credentials::userhash(u, REALM) {
                assert_eq!(users.by_hash(&h), Some(u));
            }
        }
    }
    assert!(users.len() <= data.len());
});
