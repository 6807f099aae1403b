//! The TURN server core (RFC 8656), sans-IO.
//!
//! The runtime feeds client messages ([`Server::handle_client`]), datagrams from peers on
//! relayed addresses ([`Server::handle_peer`]) and timeouts, and sends what
//! [`Server::poll_transmit`] returns, and logs or records what [`Server::poll_event`]
//! reports. Relayed addresses come from a [`RelayAllocator`].
//! The server also answers plain STUN Binding requests, with RFC 5780 behaviour discovery
//! when configured with an alternate address.

mod allocation;
mod auth;
mod bandwidth;
mod config;
mod event;
mod fleet;
mod methods;
mod quota;
mod relay;
mod reservations;
mod stats;
mod stored_users;
mod tcp;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use floe_stun::attributes::{
    ChangeRequest, ErrorCode, MappedAddress, Nonce, OtherAddress, PasswordAlgorithms, Realm,
    ResponseOrigin, ResponsePort, Software, UnknownAttributes, Username, XorMappedAddress,
};
use floe_stun::demux::{classify, PacketKind};
use floe_stun::{
    AttrType, Class, Message, MessageBuilder, MessageType, Method, TransactionId, MAX_MESSAGE_LEN,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use allocation::Allocation;
pub use allocation::FiveTuple;
use auth::{Authenticated, Refusal, OFFERED};
pub use bandwidth::SharedUserBuckets;
pub use config::ServerConfig;
pub use event::{AllocationChange, AllocationEvent, Event, MAX_EVENTS};
pub use fleet::{FleetAnswer, FleetOp, MAX_PARKED, PARK_TIMEOUT};
pub use quota::SharedQuota;
pub use relay::{PortPool, RelayAllocator, RelayRange};
pub use reservations::SharedReservations;
pub use stats::{
    AllocationCounts, AllocationKind, AuthFailure, DropReason, QuotaLimit, RelayFamily, ServerStats,
};
pub use stored_users::{StoredKey, StoredUsers};
pub use tcp::{TcpOp, BIND_TIMEOUT, CONNECT_BACKSTOP, MAX_TCP_CONNECTIONS};

use crate::{Transmit, Transport};

/// A TURN server core.
#[derive(Debug)]
pub struct Server<R> {
    config: ServerConfig,
    relays: R,
    rng: ChaCha8Rng,
    epoch: Instant,
    nonce_secret: [u8; 20],
    wall_clock: Option<(Instant, u64)>,
    allocations: HashMap<FiveTuple, Allocation>,
    by_relay: HashMap<SocketAddr, FiveTuple>,
    per_user: HashMap<String, usize>,
    /// USERHASH → username for the user table, computed once (RFC 8489 §9.2.4), so a
    /// request with a USERHASH costs one lookup, not a SHA-256 per user.
    user_hashes: HashMap<[u8; 32], String>,
    /// Bandwidth buckets of users with allocations, when `user_max_bps` is set.
    user_buckets: std::sync::Arc<SharedUserBuckets>,
    /// Set by [`Server::drain`]: since when new Allocates are refused.
    draining: Option<Instant>,
    /// The message being handled came over TLS (the 5-tuple says TCP, RFC 8656 §3.1):
    /// a 300 then names the alternate's certificate domain.
    over_tls: bool,
    /// Allocation counts, maybe shared with other workers.
    quota: std::sync::Arc<SharedQuota>,
    /// RESERVATION-TOKENs, maybe shared with other workers.
    reservations: std::sync::Arc<SharedReservations>,
    /// Users, REST secrets and revocations from outside the process
    /// ([`Server::set_stored_users`]).
    stored: std::sync::Arc<StoredUsers>,
    /// Allocates waiting for the fleet's quota ([`ServerConfig::fleet_quota`]).
    fleet: fleet::Fleet,
    /// TURN-TCP peer data connections (RFC 6062).
    tcp: tcp::TcpConns,
    unauth: HashMap<IpAddr, (Instant, u32)>,
    transmits: VecDeque<Transmit>,
    /// For [`Server::poll_event`], at most [`MAX_EVENTS`].
    events: VecDeque<Event>,
    /// Buffers of sent transmits, given back with [`Server::recycle`].
    spare: Vec<Vec<u8>>,
    stats: ServerStats,
    next_sweep: Option<Instant>,
}

/// Most spare transmit buffers a server keeps ([`Server::recycle`]): 256 of at most
/// [`SPARE_CAPACITY`], half a MiB.
pub const SPARE_BUFFERS: usize = 256;
/// Largest buffer kept for reuse: any datagram of a 1500-byte path and more.
pub const SPARE_CAPACITY: usize = 2048;

/// How often expired state is swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

impl<R: RelayAllocator> Server<R> {
    /// A server started at `now`, with relayed addresses from `relays` and randomness
    /// (nonce key, reservation tokens) from `seed`.
    pub fn new(config: ServerConfig, relays: R, now: Instant, seed: u64) -> Server<R> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut nonce_secret = [0u8; 20];
        rng.fill(&mut nonce_secret);
        let user_hashes = auth::user_hashes(&config);
        Server {
            user_hashes,
            user_buckets: config.user_buckets.clone().unwrap_or_default(),
            draining: None,
            over_tls: false,
            quota: config.quota.clone().unwrap_or_default(),
            reservations: config.reservations.clone().unwrap_or_default(),
            stored: std::sync::Arc::new(StoredUsers::new(&config.realm)),
            fleet: fleet::Fleet::default(),
            tcp: tcp::TcpConns::default(),
            config,
            relays,
            rng,
            epoch: now,
            nonce_secret,
            wall_clock: None,
            allocations: HashMap::new(),
            by_relay: HashMap::new(),
            per_user: HashMap::new(),
            unauth: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            spare: Vec::new(),
            stats: ServerStats::default(),
            next_sweep: None,
        }
    }

    /// Tells the server the Unix time at `now`, for TURN REST credential expiry. Without
    /// it, REST usernames are refused.
    pub fn set_wall_clock(&mut self, now: Instant, unix_secs: u64) {
        self.wall_clock = Some((now, unix_secs));
    }

    fn unix_time(&self, now: Instant) -> Option<u64> {
        let (at, secs) = self.wall_clock?;
        Some(secs + now.saturating_duration_since(at).as_secs())
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The relay allocator (the runtime reaches its sockets through this).
    pub fn relays(&self) -> &R {
        &self.relays
    }

    /// The relay allocator, mutably.
    pub fn relays_mut(&mut self) -> &mut R {
        &mut self.relays
    }

    /// Counters.
    pub fn stats(&self) -> ServerStats {
        let mut s = self.stats;
        s.allocations = self.allocations.len();
        s
    }

    /// Counts a datagram the runtime dropped (a full per-connection send queue, say),
    /// so that one set of counters covers the core and the runtime around it.
    pub fn record_drop(&mut self, reason: DropReason) {
        self.stats.count_drop(reason);
    }

    /// The allocation on a 5-tuple, if any: (relayed addresses, expiry).
    pub fn allocation(&self, five_tuple: &FiveTuple) -> Option<(&[SocketAddr], Instant)> {
        self.allocations
            .get(five_tuple)
            .map(|a| (&a.relayed[..], a.expires))
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event: allocations created, refreshed, expired and deleted. A runtime
    /// logs or records them; one that never polls loses the oldest beyond
    /// [`MAX_EVENTS`], and nothing else changes.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn report(&mut self, event: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// Gives back the buffer of a sent [`Transmit`]. The relay paths (ChannelData and
    /// Send indications to peers, ChannelData and Data indications to clients) take
    /// their buffers from those given back, so a runtime that recycles what it sent
    /// relays without allocating once warm. At most [`SPARE_BUFFERS`] are kept, and only
    /// those of datagram size ([`SPARE_CAPACITY`]); others are dropped.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS && buf.capacity() <= SPARE_CAPACITY {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// A buffer of `len` zero bytes, recycled when one is spare.
    pub(crate) fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        b.resize(len, 0);
        b
    }

    /// When [`Server::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_sweep, self.fleet.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expires allocations, permissions, channels and reservations.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sweep_fleet(now);
        if self.next_sweep.is_some_and(|t| now < t) {
            return;
        }
        let expired: Vec<FiveTuple> = self
            .allocations
            .iter()
            .filter(|(_, a)| a.expires <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in expired {
            self.remove_allocation(&k, AllocationChange::Expired);
        }
        let (mut permissions, mut channels) = (0, 0);
        for a in self.allocations.values_mut() {
            a.expire(now);
            permissions += a.permissions.len();
            channels += a.channels.len();
        }
        self.stats.permissions = permissions;
        self.stats.channels = channels;
        for addr in self.reservations.take_expired(now) {
            self.relays.release(addr);
        }
        self.sweep_tcp(now);
        self.unauth
            .retain(|_, (start, _)| now.saturating_duration_since(*start) < SWEEP_INTERVAL);
        self.schedule_sweep(now);
    }

    fn schedule_sweep(&mut self, now: Instant) {
        let busy = !self.allocations.is_empty()
            || !self.reservations.is_empty()
            || !self.unauth.is_empty();
        self.next_sweep = busy.then(|| now + SWEEP_INTERVAL);
    }

    /// A TCP (or TLS) connection from a client closed at `now`: its allocation goes with
    /// it (RFC 8656 §5: the 5-tuple no longer exists).
    pub fn handle_connection_closed(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        // Nothing here depends on the time; `now` keeps the one input shape.
        let _ = now;
        let ft = FiveTuple {
            transport: Transport::Tcp,
            client: remote,
            server: local,
        };
        self.remove_allocation(&ft, AllocationChange::Deleted("connection closed"));
    }

    /// Removes an allocation that expired or was deleted (`why`), counting and logging
    /// its end.
    fn remove_allocation(&mut self, key: &FiveTuple, why: AllocationChange) {
        let Some(a) = self.allocations.remove(key) else {
            return;
        };
        self.report(a.event(key, why));
        if let Some(k) = self.stats.kind_mut(a.kind) {
            k.current = k.current.saturating_sub(1);
            match why {
                AllocationChange::Expired => k.expired += 1,
                _ => k.deleted += 1,
            }
        }
        for addr in &a.relayed {
            self.by_relay.remove(addr);
            self.relays.release(*addr);
        }
        self.quota.release(&a.username);
        if a.tcp {
            self.tcp.close_allocation(key);
        }
        if a.fleet {
            self.fleet.release(&a.username);
        }
        if let Some(n) = self.per_user.get_mut(&a.username) {
            *n -= 1;
            if *n == 0 {
                self.per_user.remove(&a.username);
            }
        }
    }

    /// The nonce key and epoch of this server, for [`Server::share_nonces_with`].
    fn nonce_state(&self) -> ([u8; 20], Instant) {
        (self.nonce_secret, self.epoch)
    }

    /// Makes this server accept the nonces `other` issues and the other way round (the
    /// workers of one process share one nonce key and epoch, so a client whose packets
    /// reach another worker, e.g. over a new TCP connection, is not challenged again).
    pub fn share_nonces_with<S: RelayAllocator>(&mut self, other: &Server<S>) {
        (self.nonce_secret, self.epoch) = other.nonce_state();
    }

    /// Replaces the long-term users and the TURN REST secrets (what `floe serve` does
    /// on SIGHUP). Allocations stay; a request of a user who is gone, or whose
    /// password changed, is refused from now on, so such allocations end at their next
    /// refresh.
    pub fn reload_credentials(
        &mut self,
        users: HashMap<String, String>,
        rest_secrets: Vec<String>,
    ) {
        self.config.users = users;
        self.config.rest_secrets = rest_secrets;
        self.user_hashes = auth::user_hashes(&self.config);
    }

    /// Replaces the users, REST secrets and revocations kept outside the process (a
    /// fleet's Redis). Configured users ([`ServerConfig::users`]) come first: a name in
    /// both authenticates with its configured password. As with
    /// [`Server::reload_credentials`], allocations stay, and a user who is gone or
    /// revoked is refused from their next request on.
    pub fn set_stored_users(&mut self, stored: std::sync::Arc<StoredUsers>) {
        self.stored = stored;
    }

    /// Starts draining (what `floe serve` does on SIGTERM): from now on a new Allocate
    /// gets 300 Try Alternate with ALTERNATE-SERVER when
    /// [`ServerConfig::alternate_server`] is set, 508 Insufficient Capacity otherwise,
    /// while existing allocations keep relaying and may refresh, create permissions and
    /// bind channels until they expire or are deleted.
    pub fn drain(&mut self, now: Instant) {
        self.draining.get_or_insert(now);
    }

    /// Whether [`Server::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.is_some()
    }

    /// When [`Server::drain`] was first called.
    pub fn draining_since(&self) -> Option<Instant> {
        self.draining
    }

    /// One message from a client: a STUN message or ChannelData, on `transport`, received
    /// at `local` from `remote`. On streams the runtime cuts frames with
    /// [`floe_stun::framing::StreamDecoder`] and passes one frame per call. The runtime
    /// owns TLS, so the core keys, counts and logs a [`Transport::Tls`] client as
    /// [`Transport::Tcp`] (RFC 8656 §3.1: the 5-tuple's protocol is TCP).
    pub fn handle_client(
        &mut self,
        now: Instant,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        self.over_tls = transport == Transport::Tls;
        let transport = if transport.is_stream() {
            Transport::Tcp
        } else {
            transport
        };
        let ft = FiveTuple {
            transport,
            client: remote,
            server: local,
        };
        if self.next_sweep.is_none() {
            self.schedule_sweep(now);
        }
        let legacy_channel =
            self.config.rfc5766_channels && matches!(bytes.first(), Some(0x50..=0x7F));
        match classify(bytes) {
            PacketKind::ChannelData => self.client_channel_data(now, &ft, bytes),
            PacketKind::Quic if legacy_channel => self.client_channel_data(now, &ft, bytes),
            PacketKind::Stun => match Message::parse(bytes) {
                Ok(msg) => self.client_stun(now, &ft, &msg),
                Err(_) => self.stats.count_drop(DropReason::Malformed),
            },
            _ => self.stats.count_drop(DropReason::Malformed),
        }
        if self.next_sweep.is_none() {
            self.schedule_sweep(now);
        }
    }

    fn client_stun(&mut self, now: Instant, ft: &FiveTuple, msg: &Message<'_>) {
        match (msg.class(), msg.method()) {
            (Class::Indication, Method::SEND) => self.client_send(now, ft, msg),
            (Class::Request, method) => {
                // RFC 6062 §5.1 step 3: a TCP Allocate with DONT-FRAGMENT is a 400, not
                // the 420 of an unknown attribute.
                if method == Method::ALLOCATE
                    && msg.get::<floe_stun::attributes::RequestedTransport>()
                        == Ok(Some(floe_stun::attributes::RequestedTransport::TCP))
                    && msg.get_raw(AttrType::DONT_FRAGMENT).is_some()
                {
                    self.respond_error(ft, msg, ErrorCode::BAD_REQUEST, None, |_| Ok(()));
                    return;
                }
                let unknown: Vec<AttrType> = msg
                    .unknown_comprehension_required()
                    // RFC 8656 §7.2 step 4: DONT-FRAGMENT is treated as unknown by servers
                    // that cannot set DF, as this sans-IO core cannot.
                    .chain(msg.get_raw(AttrType::DONT_FRAGMENT).map(|a| a.typ))
                    .take(16)
                    .collect();
                if !unknown.is_empty() {
                    let attrs = UnknownAttributes::from_types(&unknown);
                    self.respond_error(ft, msg, ErrorCode::UNKNOWN_ATTRIBUTE, None, |b| {
                        b.add(&attrs)?;
                        Ok(())
                    });
                    return;
                }
                if let Some(why) = over_limit_text(msg) {
                    self.stats.count_drop(DropReason::Malformed);
                    let code = ErrorCode {
                        code: ErrorCode::BAD_REQUEST.code,
                        reason: why,
                    };
                    self.respond_error(ft, msg, code, None, |_| Ok(()));
                    return;
                }
                match method {
                    Method::BINDING => self.binding(ft, msg),
                    Method::ALLOCATE
                    | Method::REFRESH
                    | Method::CREATE_PERMISSION
                    | Method::CHANNEL_BIND
                    | Method::CONNECT
                    | Method::CONNECTION_BIND => {
                        self.authenticated_request(now, ft, msg);
                    }
                    _ => self.respond_error(ft, msg, ErrorCode::BAD_REQUEST, None, |_| Ok(())),
                }
            }
            // Responses and other indications from clients mean nothing to a server.
            _ => self.stats.count_drop(DropReason::Unexpected),
        }
    }

    fn authenticated_request(&mut self, now: Instant, ft: &FiveTuple, msg: &Message<'_>) {
        let ip = ft.client.ip();
        let auth = match self.authenticate(now, ip, msg) {
            Ok(auth) => auth,
            Err(refusal) => {
                if refusal != Refusal::Unauthenticated || msg.has_integrity() {
                    self.stats.auth_failures += 1;
                    match refusal {
                        Refusal::Unauthenticated => {
                            self.stats.count_auth_failure(AuthFailure::Unauthenticated);
                        }
                        Refusal::StaleNonce => {
                            self.stats.count_auth_failure(AuthFailure::StaleNonce);
                        }
                        Refusal::BadRequest => {}
                    }
                }
                if matches!(refusal, Refusal::Unauthenticated | Refusal::StaleNonce) {
                    if !self.may_challenge(now, ip) {
                        self.stats.rate_limited += 1;
                        return;
                    }
                    self.stats.challenges += 1;
                    let nonce = self.make_nonce(now, ip);
                    let realm = self.config.realm.clone();
                    self.respond_error(ft, msg, Self::refusal_code(refusal), None, |b| {
                        b.add(&Realm(&realm))?.add(&Nonce(&nonce))?;
                        b.add(&PasswordAlgorithms::from_list(&OFFERED))?;
                        Ok(())
                    });
                } else if refusal == Refusal::BadRequest {
                    self.respond_error(ft, msg, ErrorCode::BAD_REQUEST, None, |_| Ok(()));
                }
                return;
            }
        };
        // A revoked user (stored_users.rs) is told so only after the integrity check,
        // so revocation says nothing to a sender without the key; the 403 is signed,
        // as the client discards unsigned answers once it has a key.
        if self.stored.is_revoked(&auth.username) {
            self.stats.auth_failures += 1;
            self.stats.count_auth_failure(AuthFailure::Revoked);
            self.respond_error(ft, msg, ErrorCode::FORBIDDEN, Some(&auth), |_| Ok(()));
            return;
        }
        // RFC 8656 §5: requests on an existing allocation must use its credentials.
        if let Some(a) = self.allocations.get(ft) {
            if a.username != auth.username {
                self.stats.auth_failures += 1;
                self.stats.count_auth_failure(AuthFailure::WrongCredentials);
                self.respond_error(ft, msg, ErrorCode::WRONG_CREDENTIALS, Some(&auth), |_| {
                    Ok(())
                });
                return;
            }
        }
        match msg.method() {
            Method::ALLOCATE => self.allocate(now, ft, msg, &auth),
            Method::REFRESH => self.refresh(now, ft, msg, &auth),
            Method::CREATE_PERMISSION => self.create_permission(now, ft, msg, &auth),
            Method::CONNECT => self.connect(now, ft, msg, &auth),
            Method::CONNECTION_BIND => self.connection_bind(now, ft, msg, &auth),
            _ => self.channel_bind(now, ft, msg, &auth),
        }
    }

    /// A Binding request: XOR-MAPPED-ADDRESS, and with RFC 5780 configured, MAPPED-ADDRESS,
    /// RESPONSE-ORIGIN, OTHER-ADDRESS and CHANGE-REQUEST handling (RFC 5780 §6.1).
    fn binding(&mut self, ft: &FiveTuple, msg: &Message<'_>) {
        self.stats.bindings += 1;
        let change = msg
            .get::<ChangeRequest>()
            .ok()
            .flatten()
            .unwrap_or_default();
        let response_port = msg.get::<ResponsePort>().ok().flatten();
        let mut source = ft.server;
        let mut other = None;
        if let Some((primary, alternate)) = self
            .config
            .rfc5780
            .filter(|_| ft.transport == Transport::Udp)
        {
            let (da, dp) = (ft.server.ip(), ft.server.port());
            let ca = if da == primary.ip() {
                alternate.ip()
            } else {
                primary.ip()
            };
            let cp = if dp == primary.port() {
                alternate.port()
            } else {
                primary.port()
            };
            source = SocketAddr::new(
                if change.change_ip { ca } else { da },
                if change.change_port { cp } else { dp },
            );
            other = Some(SocketAddr::new(ca, cp));
        } else if change.change_ip || change.change_port || response_port.is_some() {
            // RFC 5780 §6.1: without an alternate address, CHANGE-REQUEST gets 420.
            let t = [if response_port.is_some() {
                AttrType::RESPONSE_PORT
            } else {
                AttrType::CHANGE_REQUEST
            }];
            let attrs = UnknownAttributes::from_types(&t);
            self.respond_error(ft, msg, ErrorCode::UNKNOWN_ATTRIBUTE, None, |b| {
                b.add(&attrs)?;
                Ok(())
            });
            return;
        }
        let destination = response_port.map_or(ft.client, |p| SocketAddr::new(ft.client.ip(), p.0));
        let software = self.config.software.clone();
        let mut buf = [0u8; 512];
        let built = (|| {
            let mut b = MessageBuilder::new(
                &mut buf,
                msg.message_type().with_class(Class::Success),
                msg.transaction_id(),
            )?;
            b.add(&XorMappedAddress(ft.client))?;
            if let Some(other) = other {
                b.add(&MappedAddress(ft.client))?;
                b.add(&ResponseOrigin(source))?;
                b.add(&OtherAddress(other))?;
            }
            if let Some(s) = &software {
                b.add(&Software(s))?;
            }
            b.add_fingerprint()?;
            Ok::<_, floe_stun::Error>(b.finish().to_vec())
        })();
        if let Ok(data) = built {
            self.transmits.push_back(Transmit {
                transport: ft.transport,
                source,
                destination,
                data,
            });
        }
    }

    /// Queues a response on `ft`: `fill` adds the method's attributes; MESSAGE-INTEGRITY
    /// (or -SHA256, as the request used) is added with `auth`'s key.
    fn respond(
        &mut self,
        ft: &FiveTuple,
        typ: MessageType,
        tid: TransactionId,
        auth: Option<&Authenticated>,
        fill: impl FnOnce(&mut MessageBuilder<'_>) -> Result<(), floe_stun::Error>,
    ) {
        let mut buf = vec![0u8; MAX_MESSAGE_LEN.min(2048)];
        let software = self.config.software.as_deref();
        let built = (|| {
            let mut b = MessageBuilder::new(&mut buf, typ, tid)?;
            fill(&mut b)?;
            if let Some(s) = software {
                b.add(&Software(s))?;
            }
            match auth {
                Some(a) if a.sha256 => {
                    b.add_message_integrity_sha256(&a.key)?;
                }
                Some(a) => {
                    b.add_message_integrity(&a.key)?;
                }
                None => {}
            }
            b.add_fingerprint()?;
            Ok::<_, floe_stun::Error>(b.len())
        })();
        if let Ok(n) = built {
            buf.truncate(n);
            self.transmits.push_back(Transmit {
                transport: ft.transport,
                source: ft.server,
                destination: ft.client,
                data: buf,
            });
        }
    }

    fn respond_error(
        &mut self,
        ft: &FiveTuple,
        msg: &Message<'_>,
        code: ErrorCode<'_>,
        auth: Option<&Authenticated>,
        fill: impl FnOnce(&mut MessageBuilder<'_>) -> Result<(), floe_stun::Error>,
    ) {
        self.respond(
            ft,
            msg.message_type().with_class(Class::Error),
            msg.transaction_id(),
            auth,
            |b| {
                b.add(&code)?;
                fill(b)
            },
        );
    }
}

#[cfg(test)]
mod tests;

/// The first text attribute of a request that breaks RFC 8489's limits: USERNAME under
/// 509 bytes (§14.3), REALM, NONCE and SOFTWARE under 128 characters (§14.9, §14.10,
/// §14.14), all UTF-8. The limits live in floe-stun's `validate`; the parser itself
/// accepts RFC 5389's longer values, so a server must check. Answered with 400.
fn over_limit_text(msg: &Message<'_>) -> Option<&'static str> {
    fn check<'a, A: floe_stun::attributes::Attribute<'a>>(
        msg: &Message<'a>,
        name: &'static str,
    ) -> Option<&'static str> {
        match msg.get::<A>() {
            Ok(None) => None,
            Ok(Some(a)) => a.validate().err().map(|_| name),
            Err(_) => Some(name),
        }
    }
    check::<Username>(msg, "USERNAME must be UTF-8 of fewer than 509 bytes")
        .or_else(|| check::<Realm>(msg, "REALM must be UTF-8 of fewer than 128 characters"))
        .or_else(|| check::<Nonce>(msg, "NONCE must be UTF-8 of fewer than 128 characters"))
        .or_else(|| check::<Software>(msg, "SOFTWARE must be UTF-8 of fewer than 128 characters"))
}
