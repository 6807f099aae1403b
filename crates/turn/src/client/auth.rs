//! The long-term credential mechanism from the client's side (RFC 8489 §9.2): learning
//! REALM, NONCE and PASSWORD-ALGORITHMS from a 401/438 challenge and deriving the key
//! that signs every later request.

use floe_stun::attributes::{Nonce, PasswordAlgorithm, PasswordAlgorithms, Realm, Username};
use floe_stun::credentials::{Algorithm, SecurityFeatures};
use floe_stun::{IntegrityKey, Message, MessageBuilder};

use super::Client;

impl Client {
    /// Takes REALM, NONCE and PASSWORD-ALGORITHMS from a 401/438 and derives the key.
    pub(super) fn learn_challenge(&mut self, msg: &Message<'_>) -> bool {
        let Ok(Some(nonce)) = msg.get::<Nonce>() else {
            return false;
        };
        if let Ok(Some(realm)) = msg.get::<Realm>() {
            if self.realm.as_deref() != Some(realm.0) {
                self.realm = Some(realm.0.to_owned());
                self.key = None;
            }
        }
        self.nonce = Some(nonce.0.to_owned());
        let Some(realm) = self.realm.clone() else {
            return false;
        };
        // RFC 8489 §9.2.4: use PASSWORD-ALGORITHMS only when the nonce cookie says the
        // server supports it (bid-down protection); prefer SHA-256.
        let features = SecurityFeatures::from_nonce(nonce.0).unwrap_or_default();
        if features.password_algorithms {
            if let Some(raw) = msg.get_raw(floe_stun::AttrType::PASSWORD_ALGORITHMS) {
                let offered: Vec<u16> = msg
                    .get::<PasswordAlgorithms>()
                    .ok()
                    .flatten()
                    .map(|p| p.iter().map(|a| a.algorithm).collect())
                    .unwrap_or_default();
                let pick = if offered.contains(&2) {
                    Some(Algorithm::Sha256)
                } else if offered.contains(&1) {
                    Some(Algorithm::Md5)
                } else {
                    None
                };
                if let Some(pick) = pick {
                    if self.algorithms.as_ref().map(|(_, a)| *a) != Some(pick) {
                        self.key = None;
                    }
                    self.algorithms = Some((raw.value.to_vec(), pick));
                }
            }
        }
        if self.key.is_none() {
            let algorithm = self.algorithms.as_ref().map_or(Algorithm::Md5, |(_, a)| *a);
            self.key = IntegrityKey::long_term(
                &self.config.username,
                &realm,
                &self.config.password,
                algorithm,
            )
            .ok();
        }
        self.key.is_some()
    }

    /// Adds USERNAME, REALM, NONCE, PASSWORD-ALGORITHMS/PASSWORD-ALGORITHM (when the
    /// server offered them, §9.2.4) and MESSAGE-INTEGRITY once a challenge was learned
    /// (§9.2.3); before that a request goes unsigned, to draw the 401.
    pub(super) fn sign(&self, b: &mut MessageBuilder<'_>) -> Result<(), floe_stun::Error> {
        if let (Some(key), Some(realm), Some(nonce)) = (&self.key, &self.realm, &self.nonce) {
            b.add(&Username(&self.config.username))?
                .add(&Realm(realm))?
                .add(&Nonce(nonce))?;
            if let Some((raw, algorithm)) = &self.algorithms {
                b.add_raw(floe_stun::AttrType::PASSWORD_ALGORITHMS, raw)?;
                b.add(&PasswordAlgorithm {
                    algorithm: algorithm.to_u16(),
                    params: &[],
                })?;
            }
            b.add_message_integrity(key)?;
        }
        Ok(())
    }
}
