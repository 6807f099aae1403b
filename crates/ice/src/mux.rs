//! Many ICE sessions on one UDP socket: a media server's single port, as pion's UDPMux
//! and str0m do. Sans-IO: the application owns the socket and one [`Agent`](crate::Agent)
//! per session, and asks the [`Mux`] whose each datagram is.
//!
//! A datagram goes to the session that already heard from its 5-tuple (local and remote
//! address). From a new 5-tuple, only a STUN Binding request is routed: by the local
//! ufrag, the part before the colon of its USERNAME (RFC 8445 §7.2.2: `RFRAG:LFRAG`, the
//! receiver's ufrag first). The agent then authenticates it; the 5-tuple is
//! remembered for the session (at most [`MAX_REMOTES_PER_SESSION`], the oldest forgotten
//! first), so later checks, consent and data go by a map lookup. Anything else from an
//! unknown sender is refused without an answer and without storing anything.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use std::time::Instant;

use floe_stun::attributes::Username;
use floe_stun::{Class, Message, Method};

use crate::fast_answer::{FastAnswer, Record};
use crate::tuple_hash::TupleHash;

/// Most 5-tuples remembered per session (a session has one path per local and remote
/// candidate pair; a hostile sender that knows a ufrag cannot grow the map past this).
pub const MAX_REMOTES_PER_SESSION: usize = 32;

/// Why [`Mux::add_session`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MuxError {
    /// Another session has this ufrag.
    #[error("another session has this ufrag")]
    UfragTaken,
    /// This session key is registered already.
    #[error("this session is registered already")]
    SessionTaken,
}

/// Routing counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MuxStats {
    /// Datagrams routed by their 5-tuple.
    pub by_address: u64,
    /// Binding requests routed by their USERNAME (a new 5-tuple).
    pub by_ufrag: u64,
    /// Datagrams from unknown senders that were not a Binding request for a known ufrag.
    pub refused: u64,
    /// Checks answered by the mux itself ([`Mux::route_or_answer`]).
    pub answered: u64,
}

/// What [`Mux::route_or_answer`] did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed<K> {
    /// Session `key`'s check on its nominated pair, answered: send the first `len` bytes
    /// of the caller's buffer back to the sender. With `tell`, also call
    /// [`Agent::handle_check_answered`](crate::Agent::handle_check_answered) on the
    /// session's agent.
    Answered {
        /// The session.
        key: K,
        /// The response's length.
        len: usize,
        /// Whether to tell the agent now (at most every [`crate::fast_answer::TELL_EVERY`]).
        tell: bool,
    },
    /// Session `key`'s datagram: give it to its agent.
    Session(K),
    /// Nobody's: drop it.
    Dropped,
}

/// A 5-tuple's session.
#[derive(Debug)]
struct Entry<K> {
    key: K,
}

/// A nominated pair's session and its fast answer.
#[derive(Debug)]
struct Fast<K> {
    key: K,
    record: Record,
}

/// The fast answers by 5-tuple: a small index (32 bytes a bucket: 10,000 sessions' index
/// stays in the L2 cache) into a slab of two-cache-line records, whose freed slots are
/// reused.
#[derive(Debug)]
struct FastTable<K> {
    index: Tuples<u32>,
    records: Vec<Fast<K>>,
    free: Vec<u32>,
}

impl<K> FastTable<K> {
    fn new() -> FastTable<K> {
        FastTable {
            index: Tuples::new(),
            records: Vec::new(),
            free: Vec::new(),
        }
    }

    fn get_mut(&mut self, t: &Tuple) -> Option<&mut Fast<K>> {
        let slot = *self.index.get(t)?;
        self.records.get_mut(usize::try_from(slot).ok()?)
    }

    fn insert(&mut self, t: Tuple, f: Fast<K>) {
        self.remove(&t);
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(r) = usize::try_from(slot)
                    .ok()
                    .and_then(|i| self.records.get_mut(i))
                {
                    *r = f;
                }
                slot
            }
            None => {
                // Past u32::MAX records (never: one per session), answer nothing new.
                let Ok(slot) = u32::try_from(self.records.len()) else {
                    return;
                };
                self.records.push(f);
                slot
            }
        };
        self.index.insert(t, slot);
    }

    fn remove(&mut self, t: &Tuple) {
        if let Some(slot) = self.index.remove(t) {
            self.free.push(slot);
        }
    }
}

#[derive(Debug)]
struct Session {
    ufrag: String,
    /// Its remembered 5-tuples, oldest first.
    remotes: VecDeque<Tuple>,
    /// The 5-tuple it has a fast answer for (also in `remotes`).
    fast: Option<Tuple>,
}

/// A (local, remote) 5-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Tuple(SocketAddr, SocketAddr);

impl Tuple {
    /// Both ends IPv4 packed into 12 bytes: a map key hashed by one seeded multiply
    /// ([`TupleHash`]), in a table a fifth the size of one keyed by two `SocketAddr`s
    /// (16-byte buckets for the fast answers' index). Fewer cache misses across
    /// thousands of sessions; routing was a tenth of a check's time.
    fn packed(self) -> Option<V4Key> {
        match (self.0, self.1) {
            (SocketAddr::V4(l), SocketAddr::V4(r)) => Some(V4Key([
                l.ip().to_bits(),
                r.ip().to_bits(),
                u32::from(l.port()) << 16 | u32::from(r.port()),
            ])),
            _ => None,
        }
    }
}

/// An IPv4 5-tuple (local address, remote address, both ports), 4-byte aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct V4Key([u32; 3]);

impl Hash for V4Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c] = self.0;
        state.write_u128(u128::from(a) << 64 | u128::from(b) << 32 | u128::from(c));
    }
}

/// A map by 5-tuple: IPv4 ones by their packed key, the rest as they are.
#[derive(Debug)]
struct Tuples<V> {
    v4: HashMap<V4Key, V, TupleHash>,
    other: HashMap<Tuple, V>,
}

impl<V> Tuples<V> {
    fn new() -> Tuples<V> {
        Tuples {
            v4: HashMap::default(),
            other: HashMap::new(),
        }
    }

    fn get(&self, t: &Tuple) -> Option<&V> {
        match t.packed() {
            Some(k) => self.v4.get(&k),
            None => self.other.get(t),
        }
    }

    fn contains_key(&self, t: &Tuple) -> bool {
        self.get(t).is_some()
    }

    fn insert(&mut self, t: Tuple, e: V) {
        match t.packed() {
            Some(k) => self.v4.insert(k, e),
            None => self.other.insert(t, e),
        };
    }

    fn remove(&mut self, t: &Tuple) -> Option<V> {
        match t.packed() {
            Some(k) => self.v4.remove(&k),
            None => self.other.remove(t),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sorts datagrams to sessions identified by `K` (an index, an id: whatever the
/// application keys its agents by).
#[derive(Debug)]
pub struct Mux<K> {
    by_ufrag: HashMap<String, K>,
    by_tuple: Tuples<Entry<K>>,
    /// The fast answers, by their nominated pair's 5-tuple (each also in `by_tuple`, for
    /// the same session).
    fast: FastTable<K>,
    sessions: HashMap<K, Session>,
    stats: MuxStats,
}

impl<K: Copy + Eq + Hash> Default for Mux<K> {
    fn default() -> Self {
        Mux::new()
    }
}

impl<K: Copy + Eq + Hash> Mux<K> {
    /// No sessions.
    pub fn new() -> Mux<K> {
        Mux {
            by_ufrag: HashMap::new(),
            by_tuple: Tuples::new(),
            fast: FastTable::new(),
            sessions: HashMap::new(),
            stats: MuxStats::default(),
        }
    }

    /// Registers session `key` with its local ufrag (`Agent::local_credentials().ufrag`).
    pub fn add_session(&mut self, key: K, ufrag: &str) -> Result<(), MuxError> {
        if self.by_ufrag.contains_key(ufrag) {
            return Err(MuxError::UfragTaken);
        }
        if self.sessions.contains_key(&key) {
            return Err(MuxError::SessionTaken);
        }
        self.by_ufrag.insert(ufrag.to_owned(), key);
        self.sessions.insert(
            key,
            Session {
                ufrag: ufrag.to_owned(),
                remotes: VecDeque::new(),
                fast: None,
            },
        );
        Ok(())
    }

    /// The session's agent restarted ICE (RFC 8445 §9): its checks now carry `ufrag`.
    /// The 5-tuples stay (the paths are the same until the new checks say otherwise).
    pub fn set_ufrag(&mut self, key: K, ufrag: &str) -> Result<(), MuxError> {
        if self.by_ufrag.get(ufrag).is_some_and(|k| *k != key) {
            return Err(MuxError::UfragTaken);
        }
        if let Some(s) = self.sessions.get_mut(&key) {
            self.by_ufrag.remove(&s.ufrag);
            ufrag.clone_into(&mut s.ufrag);
            self.by_ufrag.insert(ufrag.to_owned(), key);
        }
        Ok(())
    }

    /// Forgets session `key`, its ufrag and its 5-tuples.
    pub fn remove_session(&mut self, key: K) {
        if let Some(s) = self.sessions.remove(&key) {
            self.by_ufrag.remove(&s.ufrag);
            for t in s.remotes {
                self.by_tuple.remove(&t);
            }
            if let Some(t) = s.fast {
                self.fast.remove(&t);
            }
        }
    }

    /// The number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// How many 5-tuples session `key` is remembered by (at most
    /// [`MAX_REMOTES_PER_SESSION`]).
    pub fn remembered(&self, key: K) -> usize {
        self.sessions.get(&key).map_or(0, |s| s.remotes.len())
    }

    /// Counters.
    pub fn stats(&self) -> MuxStats {
        self.stats
    }

    /// The session that heard from the 5-tuple (`local`, `remote`), if one did (no
    /// counting, no routing by USERNAME).
    pub fn session_of(&self, local: SocketAddr, remote: SocketAddr) -> Option<K> {
        self.by_tuple.get(&Tuple(local, remote)).map(|e| e.key)
    }

    /// Session `key`'s answer to checks on its nominated pair ([`Agent::fast_answer`]),
    /// or `None` to answer nothing for it (the agent restarted, closed, or moved to
    /// another pair). Call it after the agent's events; the previous answer is replaced.
    ///
    /// [`Agent::fast_answer`]: crate::Agent::fast_answer
    pub fn set_fast_answer(&mut self, key: K, answer: Option<&FastAnswer>) {
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        if let Some(t) = s.fast.take() {
            self.fast.remove(&t);
        }
        let Some(a) = answer else { return };
        let (local, remote) = a.tuple();
        let Some(record) = Record::new(a) else { return };
        let t = Tuple(local, remote);
        if !self.by_tuple.contains_key(&t) {
            self.remember(key, local, remote);
        }
        if self.by_tuple.get(&t).is_some_and(|e| e.key == key) {
            self.fast.insert(t, Fast { key, record });
            if let Some(s) = self.sessions.get_mut(&key) {
                s.fast = Some(t);
            }
        }
    }

    /// Like [`Mux::route`], but a check on a session's nominated pair is answered here
    /// when the session's agent would answer it the same way (see
    /// [`crate::fast_answer`]): the response goes into `out` (256 bytes are enough).
    pub fn route_or_answer(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
        out: &mut [u8],
    ) -> Routed<K> {
        if let Some(f) = self.fast.get_mut(&Tuple(local, remote)) {
            self.stats.by_address += 1;
            if let Some(a) = f.record.answer(now, remote, bytes, out) {
                self.stats.answered += 1;
                return Routed::Answered {
                    key: f.key,
                    len: a.len,
                    tell: a.tell,
                };
            }
            return Routed::Session(f.key);
        }
        match self.route(local, remote, bytes) {
            Some(k) => Routed::Session(k),
            None => Routed::Dropped,
        }
    }

    /// Whose datagram this is: received on `local` from `remote`. `None`: drop it.
    pub fn route(&mut self, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) -> Option<K> {
        if let Some(e) = self.by_tuple.get(&Tuple(local, remote)) {
            self.stats.by_address += 1;
            return Some(e.key);
        }
        let Some(key) = self.by_username(bytes) else {
            self.stats.refused += 1;
            return None;
        };
        self.stats.by_ufrag += 1;
        self.remember(key, local, remote);
        Some(key)
    }

    /// Remembers the 5-tuple for session `key` (forgetting its oldest past the limit).
    fn remember(&mut self, key: K, local: SocketAddr, remote: SocketAddr) {
        if let Some(s) = self.sessions.get_mut(&key) {
            if s.remotes.len() >= MAX_REMOTES_PER_SESSION {
                if let Some(old) = s.remotes.pop_front() {
                    self.by_tuple.remove(&old);
                    if s.fast == Some(old) {
                        s.fast = None;
                        self.fast.remove(&old);
                    }
                }
            }
            s.remotes.push_back(Tuple(local, remote));
            self.by_tuple.insert(Tuple(local, remote), Entry { key });
        }
    }

    /// The session named by a Binding request's USERNAME.
    fn by_username(&self, bytes: &[u8]) -> Option<K> {
        let (ty, _) = floe_stun::peek_header(bytes).ok()?;
        if ty.method != Method::BINDING || ty.class != Class::Request {
            return None;
        }
        let msg = Message::parse(bytes).ok()?;
        let Username(user) = msg.get::<Username>().ok().flatten()?;
        let ours = user.split_once(':').map_or(user, |(l, _)| l);
        self.by_ufrag.get(ours).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_stun::{MessageBuilder, MessageType, TransactionId};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn binding(username: Option<&str>, class: Class) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let ty = MessageType::BINDING_REQUEST.with_class(class);
        let mut b = MessageBuilder::new(&mut buf, ty, TransactionId([7; 12])).unwrap();
        if let Some(u) = username {
            b.add(&Username(u)).unwrap();
        }
        b.add_fingerprint().unwrap();
        b.finish().to_vec()
    }

    const PORT: &str = "10.0.0.1:3478";

    #[test]
    fn the_fast_index_has_16_byte_buckets_and_keeps_ports_apart() {
        assert_eq!(std::mem::size_of::<(V4Key, u32)>(), 16);
        let t = |l: &str, r: &str| Tuple(addr(l), addr(r)).packed().unwrap();
        assert_ne!(t(PORT, "1.2.3.4:5"), t(PORT, "1.2.3.4:6"));
        assert_ne!(t(PORT, "1.2.3.4:5"), t("10.0.0.1:3479", "1.2.3.4:5"));
        assert_ne!(t(PORT, "1.2.3.4:5"), t(PORT, "1.2.3.5:5"));
        assert!(Tuple(addr("[::1]:1"), addr("1.2.3.4:5")).packed().is_none());
    }

    #[test]
    fn the_first_check_is_routed_by_ufrag_and_the_rest_by_address() {
        let mut m = Mux::new();
        m.add_session(1u32, "aaaa").unwrap();
        m.add_session(2u32, "bbbb").unwrap();
        let check = binding(Some("bbbb:peer"), Class::Request);
        assert_eq!(m.route(addr(PORT), addr("192.0.2.7:5000"), &check), Some(2));
        // Data from the same 5-tuple now goes by address.
        assert_eq!(
            m.route(addr(PORT), addr("192.0.2.7:5000"), b"\x80rtp"),
            Some(2)
        );
        // The same remote on another local address is another 5-tuple.
        assert_eq!(
            m.route(addr("10.0.0.2:3478"), addr("192.0.2.7:5000"), b"\x80rtp"),
            None
        );
        assert_eq!(
            m.stats(),
            MuxStats {
                by_address: 1,
                by_ufrag: 1,
                refused: 1,
                answered: 0
            }
        );
    }

    #[test]
    fn unknown_senders_are_refused_and_cost_nothing() {
        let mut m = Mux::new();
        m.add_session(1u32, "aaaa").unwrap();
        for (i, bytes) in [
            binding(Some("zzzz:peer"), Class::Request),
            binding(None, Class::Request),
            binding(Some("aaaa:peer"), Class::Indication),
            binding(Some("aaaa:peer"), Class::Success),
            b"\x80garbage".to_vec(),
            Vec::new(),
        ]
        .iter()
        .enumerate()
        {
            let from = SocketAddr::new("192.0.2.9".parse().unwrap(), 1000 + i as u16);
            assert_eq!(m.route(addr(PORT), from, bytes), None, "{i}");
        }
        assert!(m.by_tuple.is_empty());
        assert_eq!(m.stats().refused, 6);
    }

    #[test]
    fn a_session_remembers_at_most_32_tuples_and_removal_forgets_them_all() {
        let mut m = Mux::new();
        m.add_session(1u32, "aaaa").unwrap();
        let check = binding(Some("aaaa:peer"), Class::Request);
        for port in 0..100u16 {
            let from = SocketAddr::new("192.0.2.9".parse().unwrap(), 2000 + port);
            assert_eq!(m.route(addr(PORT), from, &check), Some(1));
        }
        assert_eq!(m.by_tuple.len(), MAX_REMOTES_PER_SESSION);
        // The newest are kept.
        assert_eq!(
            m.route(addr(PORT), addr("192.0.2.9:2099"), b"\x80x"),
            Some(1)
        );
        assert_eq!(m.route(addr(PORT), addr("192.0.2.9:2000"), b"\x80x"), None);
        m.remove_session(1);
        assert!(m.by_tuple.is_empty() && m.by_ufrag.is_empty() && m.is_empty());
    }

    #[test]
    fn ufrags_and_keys_are_unique_and_a_restart_moves_the_ufrag() {
        let mut m = Mux::new();
        m.add_session(1u32, "aaaa").unwrap();
        assert_eq!(m.add_session(2, "aaaa"), Err(MuxError::UfragTaken));
        assert_eq!(m.add_session(1, "cccc"), Err(MuxError::SessionTaken));
        m.add_session(2, "bbbb").unwrap();
        assert_eq!(m.set_ufrag(1, "bbbb"), Err(MuxError::UfragTaken));
        m.set_ufrag(1, "dddd").unwrap();
        let old = binding(Some("aaaa:peer"), Class::Request);
        let new = binding(Some("dddd:peer"), Class::Request);
        assert_eq!(m.route(addr(PORT), addr("192.0.2.1:1"), &old), None);
        assert_eq!(m.route(addr(PORT), addr("192.0.2.1:1"), &new), Some(1));
    }
}
