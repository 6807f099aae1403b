//! mDNS host names for ICE candidates, sans-IO (draft-ietf-mmusic-mdns-ice-candidates-03,
//! on Multicast DNS, RFC 6762): a responder that answers A and AAAA queries for the names
//! this side published, and only for them, and a one-shot resolver for the peer's
//! `.local` names.
//!
//! The runtime owns two sockets per address family: the **responder** socket, bound to
//! port 5353 and joined to the mDNS group (224.0.0.251, ff02::fb), and a **querier**
//! socket on an ephemeral port. Queries go out from the querier (RFC 6762 §5.1 one-shot
//! queries: responders answer them by unicast, §6.7), answers from the responder. Both
//! sockets' datagrams go to [`Mdns::handle_receive`], so an answer multicast to the group
//! resolves a name as well as one sent back to the querier.
//!
//! The runtime must pass only datagrams from the local link (RFC 6762 §11: a source on
//! one of the host's subnets, or link-local): floe answers for names whose addresses are
//! private, and a peer elsewhere that learned a name from signalling must not learn the
//! address by asking port 5353 directly. Answers are taken only from port 5353 (§6).
//!
//! What hostile senders on the link can do is bounded: at most 64 published names and 16
//! pending resolutions; a record is multicast at most once a second (§6); unicast answers
//! (which a forged source could aim elsewhere) are limited to 20 a second in all; a
//! message is read only up to its 64th question or answer.

pub mod wire;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use wire::{Answer, Message, Question, CLASS_ANY, CLASS_IN, TYPE_A, TYPE_AAAA, TYPE_ANY};

/// The mDNS port (RFC 6762 §3).
pub const MDNS_PORT: u16 = 5353;
/// The IPv4 mDNS group.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// The IPv6 mDNS group (link-local scope).
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);
/// How long a resolution waits for an answer by default.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// TTL of a host name record in multicast answers (RFC 6762 §10: 120 s).
const TTL: u32 = 120;
/// TTL in legacy unicast answers (RFC 6762 §6.7: no more than 10 s).
const LEGACY_TTL: u32 = 10;
/// A record is multicast at most once in this time (RFC 6762 §6).
const MULTICAST_GAP: Duration = Duration::from_secs(1);
/// Unicast answers in one second, in all.
const MAX_UNICAST_PER_SECOND: u32 = 20;
/// Most names published at once.
pub const MAX_NAMES: usize = 64;
/// Most resolutions pending at once.
pub const MAX_QUERIES: usize = 16;
/// A one-shot query is sent again after this long without an answer.
const RESEND: Duration = Duration::from_secs(1);

/// A random host name, `<UUID version 4>.local` (RFC 9562 §5.4), as browsers publish
/// (draft-ietf-mmusic-mdns-ice-candidates-03 §3.1.1): `random` is 16 random bytes.
pub fn host_name(random: [u8; 16]) -> String {
    let mut b = random;
    if let Some(version) = b.get_mut(6) {
        *version = (*version & 0x0F) | 0x40;
    }
    if let Some(variant) = b.get_mut(8) {
        *variant = (*variant & 0x3F) | 0x80;
    }
    let hex: String = b.iter().fold(String::with_capacity(32), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    });
    let part = |r: std::ops::Range<usize>| hex.get(r).unwrap_or_default();
    format!(
        "{}-{}-{}-{}-{}.local",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

/// Which of the runtime's sockets sends a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    /// The socket on port 5353, in the mDNS group: answers.
    Responder,
    /// The socket on an ephemeral port: one-shot queries.
    Querier,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdnsTransmit {
    /// The socket to send it from.
    pub socket: Socket,
    /// Where to: the group of one family (port 5353; for IPv6 the scope is the
    /// querier's, or 0 for "every interface", which the runtime spreads), or a querier.
    pub destination: SocketAddr,
    /// The DNS message.
    pub payload: Vec<u8>,
}

/// What the application learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MdnsEvent {
    /// The answer to [`Mdns::resolve`]: the address, or `None` when nobody answered
    /// in time (or the name cannot be asked for).
    Resolved {
        /// The name, as given to `resolve`.
        name: String,
        /// Its address.
        address: Option<IpAddr>,
    },
}

/// Counters, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MdnsStats {
    /// Queries for our names answered.
    pub answered: u64,
    /// Answers not sent: the record was multicast less than a second ago, or unicast
    /// answers were over their rate.
    pub rate_limited: u64,
    /// Datagrams that were not DNS messages this module reads.
    pub malformed: u64,
    /// Names resolved.
    pub resolved: u64,
    /// Resolutions that ended without an answer.
    pub unresolved: u64,
}

#[derive(Debug)]
struct Published {
    name: String,
    address: IpAddr,
    last_multicast: Option<Instant>,
}

#[derive(Debug)]
struct Query {
    name: String,
    id: u16,
    next_send: Instant,
    deadline: Instant,
}

/// The mDNS responder and resolver. See the module docs.
#[derive(Debug)]
pub struct Mdns {
    names: Vec<Published>,
    queries: Vec<Query>,
    transmits: VecDeque<MdnsTransmit>,
    events: VecDeque<MdnsEvent>,
    next_id: u16,
    resolve_timeout: Duration,
    unicast_window: Option<(Instant, u32)>,
    stats: MdnsStats,
}

impl Mdns {
    /// A responder with no names and a resolver; `id_seed` (random) starts the one-shot
    /// queries' ids.
    pub fn new(id_seed: u16) -> Mdns {
        Mdns {
            names: Vec::new(),
            queries: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_id: id_seed,
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            unicast_window: None,
            stats: MdnsStats::default(),
        }
    }

    /// How long [`resolve`](Self::resolve) waits (default 3 s).
    #[must_use]
    pub fn with_resolve_timeout(mut self, timeout: Duration) -> Mdns {
        self.resolve_timeout = timeout;
        self
    }

    /// Answers for `name` (a `.local` name, see [`host_name`]) with `address` from now
    /// on. Returns false when [`MAX_NAMES`] are published already or the name is taken by
    /// another address. Nothing is announced: the name is only answered when asked for,
    /// so the address goes no further than the link the peer asks on.
    pub fn publish(&mut self, name: &str, address: IpAddr) -> bool {
        if let Some(p) = self.names.iter().find(|p| same_name(&p.name, name)) {
            return p.address == address;
        }
        if self.names.len() >= MAX_NAMES {
            return false;
        }
        self.names.push(Published {
            name: name.to_owned(),
            address,
            last_multicast: None,
        });
        true
    }

    /// Stops answering for the names of `address`.
    pub fn unpublish(&mut self, address: IpAddr) {
        self.names.retain(|p| p.address != address);
    }

    /// The published names and their addresses.
    pub fn names(&self) -> impl Iterator<Item = (&str, IpAddr)> {
        self.names.iter().map(|p| (p.name.as_str(), p.address))
    }

    /// Counters.
    pub fn stats(&self) -> MdnsStats {
        self.stats
    }

    /// Looks `name` up: a one-shot query for A and AAAA now and every second until an
    /// answer or the timeout; then [`MdnsEvent::Resolved`]. A name of ours resolves at
    /// once; a name already being resolved is not asked twice.
    pub fn resolve(&mut self, now: Instant, name: &str) {
        if let Some(p) = self.names.iter().find(|p| same_name(&p.name, name)) {
            let address = Some(p.address);
            self.resolved(name.to_owned(), address);
            return;
        }
        if self.queries.iter().any(|q| same_name(&q.name, name)) {
            return;
        }
        if self.queries.len() >= MAX_QUERIES {
            self.resolved(name.to_owned(), None);
            return;
        }
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let query = Query {
            name: name.to_owned(),
            id: self.next_id,
            next_send: now + RESEND,
            deadline: now + self.resolve_timeout,
        };
        if self.send_query(query.id, &query.name) {
            self.queries.push(query);
        } else {
            self.resolved(name.to_owned(), None);
        }
    }

    /// A datagram from either socket: a query (answered when it asks for our names) or
    /// an answer (that may resolve a pending name).
    pub fn handle_receive(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Ok(msg) = wire::parse(bytes) else {
            self.stats.malformed += 1;
            return;
        };
        // RFC 6762 §18.3: messages with another opcode are silently ignored.
        if msg.opcode != 0 {
            return;
        }
        if msg.response {
            // §6: responses must come from port 5353 (a forged answer from anywhere else
            // is ignored); §18.11: and with a zero rcode.
            if msg.rcode == 0 && from.port() == MDNS_PORT {
                self.handle_answers(&msg);
            }
        } else {
            self.handle_query(now, from, &msg);
        }
    }

    /// Sends queries again and ends the ones past their timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expired = Vec::new();
        let mut resend = Vec::new();
        for q in &mut self.queries {
            if now >= q.deadline {
                expired.push(q.name.clone());
            } else if now >= q.next_send {
                q.next_send = now + RESEND;
                resend.push((q.id, q.name.clone()));
            }
        }
        for (id, name) in resend {
            self.send_query(id, &name);
        }
        for name in expired {
            self.queries.retain(|q| q.name != name);
            self.stats.unresolved += 1;
            self.events.push_back(MdnsEvent::Resolved {
                name,
                address: None,
            });
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) has work next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queries
            .iter()
            .map(|q| q.next_send.min(q.deadline))
            .min()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<MdnsTransmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MdnsEvent> {
        self.events.pop_front()
    }

    fn resolved(&mut self, name: String, address: Option<IpAddr>) {
        if address.is_some() {
            self.stats.resolved += 1;
        } else {
            self.stats.unresolved += 1;
        }
        self.events.push_back(MdnsEvent::Resolved { name, address });
    }

    /// Queues the query to both groups; false if the name cannot be written.
    fn send_query(&mut self, id: u16, name: &str) -> bool {
        let Ok(payload) = wire::query(id, name, &[TYPE_A, TYPE_AAAA], false) else {
            return false;
        };
        for destination in [
            SocketAddr::new(IpAddr::V4(GROUP_V4), MDNS_PORT),
            SocketAddr::new(IpAddr::V6(GROUP_V6), MDNS_PORT),
        ] {
            self.transmits.push_back(MdnsTransmit {
                socket: Socket::Querier,
                destination,
                payload: payload.clone(),
            });
        }
        true
    }

    fn handle_answers(&mut self, msg: &Message) {
        for record in &msg.answers {
            let Some(address) = record.address else {
                continue;
            };
            if record.class != CLASS_IN {
                continue;
            }
            let Some(i) = self
                .queries
                .iter()
                .position(|q| same_name(&q.name, &record.name))
            else {
                continue;
            };
            let q = self.queries.swap_remove(i);
            self.resolved(q.name, Some(address));
        }
    }

    fn handle_query(&mut self, now: Instant, from: SocketAddr, msg: &Message) {
        let mut matched: Vec<(usize, &Question)> = Vec::new();
        for q in &msg.questions {
            if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
                continue;
            }
            for (i, p) in self.names.iter().enumerate() {
                let wanted = match q.qtype {
                    TYPE_A => p.address.is_ipv4(),
                    TYPE_AAAA => p.address.is_ipv6(),
                    TYPE_ANY => true,
                    _ => false,
                };
                // Known-answer suppression (RFC 6762 §7.1): the querier already holds
                // the record with at least half its TTL left.
                let known = msg.answers.iter().any(|a| {
                    same_name(&a.name, &p.name) && a.address == Some(p.address) && a.ttl >= TTL / 2
                });
                if wanted
                    && !known
                    && same_name(&q.name, &p.name)
                    && !matched.iter().any(|(j, _)| *j == i)
                {
                    matched.push((i, q));
                }
            }
        }
        if matched.is_empty() {
            return;
        }
        if from.port() != MDNS_PORT {
            // A legacy (one-shot) query: answer the source alone, with its id and
            // question, a short TTL and no cache-flush bit (RFC 6762 §6.7).
            let indices: Vec<usize> = matched.iter().map(|(i, _)| *i).collect();
            let answers = self.answers(&indices, LEGACY_TTL, false);
            let payload = wire::response(msg.id, &msg.questions, &answers);
            let count = answers.len() as u64;
            self.send_unicast(now, from, payload.ok(), count);
            return;
        }
        if matched.iter().all(|(_, q)| q.unicast_response) {
            // §5.4: the querier asked for unicast answers.
            let indices: Vec<usize> = matched.iter().map(|(i, _)| *i).collect();
            let answers = self.answers(&indices, TTL, true);
            let payload = wire::response(0, &[], &answers);
            let count = answers.len() as u64;
            self.send_unicast(now, from, payload.ok(), count);
            return;
        }
        // Multicast, each record at most once a second (§6).
        let mut due = Vec::new();
        for (i, _) in matched {
            let Some(p) = self.names.get_mut(i) else {
                continue;
            };
            if p.last_multicast
                .is_some_and(|t| now.saturating_duration_since(t) < MULTICAST_GAP)
            {
                self.stats.rate_limited += 1;
                continue;
            }
            p.last_multicast = Some(now);
            due.push(i);
        }
        let answers = self.answers(&due, TTL, true);
        if answers.is_empty() {
            return;
        }
        let Ok(payload) = wire::response(0, &[], &answers) else {
            return;
        };
        self.stats.answered += answers.len() as u64;
        let destination = match from {
            SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(GROUP_V4), MDNS_PORT),
            SocketAddr::V6(v6) => {
                SocketAddr::V6(SocketAddrV6::new(GROUP_V6, MDNS_PORT, 0, v6.scope_id()))
            }
        };
        self.transmits.push_back(MdnsTransmit {
            socket: Socket::Responder,
            destination,
            payload,
        });
    }

    /// The address records of the published names at `indices`.
    fn answers(&self, indices: &[usize], ttl: u32, cache_flush: bool) -> Vec<Answer<'_>> {
        indices
            .iter()
            .filter_map(|i| self.names.get(*i))
            .map(|p| Answer {
                name: &p.name,
                address: p.address,
                ttl,
                cache_flush,
            })
            .collect()
    }

    fn send_unicast(
        &mut self,
        now: Instant,
        to: SocketAddr,
        payload: Option<Vec<u8>>,
        answers: u64,
    ) {
        let Some(payload) = payload else { return };
        let window = match self.unicast_window {
            Some((start, n)) if now.saturating_duration_since(start) < Duration::from_secs(1) => {
                (start, n)
            }
            _ => (now, 0),
        };
        if window.1 >= MAX_UNICAST_PER_SECOND {
            self.stats.rate_limited += 1;
            self.unicast_window = Some(window);
            return;
        }
        self.unicast_window = Some((window.0, window.1 + 1));
        self.stats.answered += answers;
        self.transmits.push_back(MdnsTransmit {
            socket: Socket::Responder,
            destination: to,
            payload,
        });
    }
}

/// DNS names compare without regard to ASCII case (RFC 1035 §2.3.3) or a trailing dot.
fn same_name(a: &str, b: &str) -> bool {
    let a = a.strip_suffix('.').unwrap_or(a);
    let b = b.strip_suffix('.').unwrap_or(b);
    a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests;
