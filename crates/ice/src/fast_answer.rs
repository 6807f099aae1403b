//! Answering checks on a lite session's nominated pair without its agent: what a media
//! server's mux does for the bulk of its Binding traffic (consent and repeated checks
//! from thousands of peers, RFC 7675 §4: a lite agent's consent is the peer's checks).
//!
//! A lite [`Agent`](crate::Agent) whose pair is nominated hands out a [`FastAnswer`]
//! ([`Agent::fast_answer`](crate::Agent::fast_answer)): its ufrag, its key and the pair.
//! The [`Mux`](crate::mux::Mux) keeps it with the pair's 5-tuple
//! ([`Mux::set_fast_answer`](crate::mux::Mux::set_fast_answer)) and answers a check on that
//! 5-tuple itself when the agent would answer it the same way and change nothing else:
//! an authenticated Binding request (RFC 8445 §7.3: USERNAME names the session, MESSAGE-
//! INTEGRITY verifies with its password, FINGERPRINT holds) from the controlling side
//! (ICE-CONTROLLING, no ICE-CONTROLLED: no role conflict, §7.3.1.1), without
//! comprehension-required attributes floe does not know (RFC 8489 §6.3.1) and without
//! NOMINATION (renomination goes to the agent). USE-CANDIDATE on the nominated pair
//! changes nothing and is answered. The answer is the agent's own
//! (`binding::write_response`). Everything else goes to the agent.
//!
//! The agent still hears of its pair: the mux says when to tell it
//! ([`Agent::handle_check_answered`](crate::Agent::handle_check_answered)), at most every
//! [`TELL_EVERY`], so that its consent and liveness stay fresh without touching its
//! state on every check.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_stun::attributes::Username;
use floe_stun::{AttrType, Class, IntegrityKey, Message, Method, Sha1Key};

use crate::binding;

/// How often the agent is told of checks the mux answered for it.
pub const TELL_EVERY: Duration = Duration::from_millis(100);

/// Longest ufrag kept inline (floe's own are 8 characters); a session with a longer one
/// is not answered by the mux. With it, a record and its table entry fit in two cache
/// lines.
const MAX_UFRAG: usize = 16;

/// What the mux needs to answer checks on a lite session's nominated pair.
#[derive(Clone)]
pub struct FastAnswer {
    pub(crate) ufrag: String,
    pub(crate) key: IntegrityKey,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
}

impl std::fmt::Debug for FastAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastAnswer")
            .field("ufrag", &self.ufrag)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl FastAnswer {
    /// The pair's 5-tuple: (local base, remote).
    pub fn tuple(&self) -> (SocketAddr, SocketAddr) {
        (self.local, self.remote)
    }
}

/// The mux's copy: the ufrag inline and only the MESSAGE-INTEGRITY key (checks carry no
/// other, RFC 8445 §7.2.2), so that answering touches one small record.
#[derive(Clone)]
pub(crate) struct Record {
    ufrag: [u8; MAX_UFRAG],
    ufrag_len: u8,
    key: Sha1Key,
    told: Option<Instant>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("told", &self.told)
            .finish_non_exhaustive()
    }
}

/// What answering did.
pub(crate) struct Answered {
    /// The response's length in the caller's buffer.
    pub(crate) len: usize,
    /// Whether to tell the agent now.
    pub(crate) tell: bool,
}

impl Record {
    pub(crate) fn new(a: &FastAnswer) -> Option<Record> {
        let len = a.ufrag.len();
        let mut ufrag = [0u8; MAX_UFRAG];
        ufrag.get_mut(..len)?.copy_from_slice(a.ufrag.as_bytes());
        Some(Record {
            ufrag,
            ufrag_len: u8::try_from(len).ok()?,
            key: a.key.sha1().clone(),
            told: None,
        })
    }

    /// The answer to `bytes` from `remote` (the pair's: the record is found by its
    /// 5-tuple) written into `out`, if the agent would answer it the same way and change
    /// nothing else (see the module docs).
    pub(crate) fn answer(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        bytes: &[u8],
        out: &mut [u8],
    ) -> Option<Answered> {
        let (ty, _) = floe_stun::peek_header(bytes).ok()?;
        if ty.method != Method::BINDING || ty.class != Class::Request {
            return None;
        }
        let msg = Message::parse(bytes).ok()?;
        // Decoded as the agent decodes it (UTF-8, length), compared as bytes.
        let Username(user) = msg.get::<Username>().ok().flatten()?;
        let ufrag = self.ufrag.get(..usize::from(self.ufrag_len))?;
        // The agent verifies MESSAGE-INTEGRITY-SHA256 when present (RFC 8489 §9.1.3).
        if !binding::names_us(user.as_bytes(), ufrag)
            || msg.integrity_sha256_offset().is_some()
            || !answerable_attributes(&msg)
            || msg.verify_sha1(&self.key).is_err()
        {
            return None;
        }
        let len = binding::write_response(&msg, remote, None, &self.key, out).ok()?;
        let tell = self
            .told
            .is_none_or(|t| now.saturating_duration_since(t) >= TELL_EVERY);
        if tell {
            self.told = Some(now);
        }
        Some(Answered { len, tell })
    }
}

/// One pass over the attribute types: ICE-CONTROLLING, and no ICE-CONTROLLED, no
/// NOMINATION, no unknown comprehension-required type (see the module docs).
fn answerable_attributes(msg: &Message<'_>) -> bool {
    let mut controlling = false;
    for t in msg.attribute_types() {
        match t {
            AttrType::ICE_CONTROLLING => controlling = true,
            AttrType::ICE_CONTROLLED | AttrType::NOMINATION => return false,
            // What every check carries, known without a look-up.
            AttrType::USERNAME | AttrType::PRIORITY | AttrType::USE_CANDIDATE => {}
            t if t.is_comprehension_required() && !t.is_known() => return false,
            _ => {}
        }
    }
    controlling
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_and_its_table_entry_fit_in_two_cache_lines() {
        // Thousands are looked up at random; each cache line is a likely miss. The entry
        // is the packed 5-tuple, the session key (a `usize` here) and the record.
        let entry = std::mem::size_of::<(usize, Record)>();
        assert!(entry <= 128, "{entry}");
    }
}
