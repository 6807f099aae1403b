//! ICE credentials (RFC 8445 §5.3): the ufrag and password each agent signals, which
//! authenticate checks as STUN short-term credentials (§7.2.2).

use rand::Rng;

/// ICE credentials (RFC 8445 §5.3; RFC 8839 §5.4: ufrag ≥ 4 and pwd ≥ 22 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// ice-ufrag.
    pub ufrag: String,
    /// ice-pwd.
    pub pwd: String,
}

impl Credentials {
    /// Random credentials: 8-character ufrag, 24-character pwd from the ice-char set.
    pub fn random<R: Rng>(rng: &mut R) -> Credentials {
        const ICE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut pick = |n: usize| {
            (0..n)
                .filter_map(|_| ICE.get(rng.gen_range(0..ICE.len())).copied())
                .map(char::from)
                .collect::<String>()
        };
        Credentials {
            ufrag: pick(8),
            pwd: pick(24),
        }
    }
}
