//! The TURN client (RFC 8656 §7-§12), sans-IO: one allocation on one server.
//!
//! Drive it like every floe state machine: feed what arrives from the server
//! ([`Client::handle_receive`] or [`Client::handle_stream_receive`]), call
//! [`Client::handle_timeout`] at [`Client::poll_timeout`], send what
//! [`Client::poll_transmit`] returns, and read [`Client::poll_event`].
//!
//! ```
//! use std::time::Instant;
//! use floe_turn::client::{Client, ClientConfig, Event};
//! use floe_turn::Transport;
//!
//! let config = ClientConfig::new(
//!     "192.0.2.10:40000".parse().unwrap(),
//!     "203.0.113.1:3478".parse().unwrap(),
//!     Transport::Udp,
//!     "alice",
//!     "secret",
//! );
//! let now = Instant::now();
//! let mut client = Client::new(config, 7);
//! client.allocate(now);
//! let first = client.poll_transmit().unwrap(); // an unauthenticated Allocate request
//! assert_eq!(first.destination, "203.0.113.1:3478".parse().unwrap());
//! ```

mod config;
mod error;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use floe_stun::attributes::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, AlternateServer, ChannelNumber, Data,
    ErrorCode, Lifetime, Nonce, PasswordAlgorithm, PasswordAlgorithms, Realm,
    RequestedAddressFamily, RequestedTransport, Software, UnknownAttributes, Username,
    XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use floe_stun::credentials::{Algorithm, SecurityFeatures};
use floe_stun::demux::PacketKind;
use floe_stun::framing::{Framing, StreamDecoder};
use floe_stun::transaction::{ClientTransaction, Reliability, TransactionState};
use floe_stun::{Class, IntegrityKey, Message, MessageBuilder, MessageType, Method, TransactionId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use config::ClientConfig;
pub use error::TurnError;

use crate::{ChannelData, Transmit, MIN_CHANNEL};

/// What happened to the allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The allocation exists (RFC 8656 §7.3).
    Allocated {
        /// Relayed transport addresses (two for a dual allocation).
        relayed: Vec<SocketAddr>,
        /// The client's server-reflexive address (XOR-MAPPED-ADDRESS).
        mapped: Option<SocketAddr>,
        /// Granted lifetime.
        lifetime: Duration,
    },
    /// A dual allocation got only one family (ADDRESS-ERROR-CODE, §7.3).
    PartialAllocation {
        /// The family that failed.
        family: AddressFamily,
        /// 440 or 508.
        code: u16,
    },
    /// The Allocate failed; the client is done.
    AllocationFailed(TurnError),
    /// A Refresh succeeded.
    Refreshed {
        /// The new lifetime.
        lifetime: Duration,
    },
    /// The allocation is gone (refresh failed, or it expired); the client is done.
    AllocationLost(TurnError),
    /// A permission is installed (or refreshed for the first time after a failure).
    PermissionCreated(IpAddr),
    /// CreatePermission failed.
    PermissionFailed(IpAddr, TurnError),
    /// A channel is bound: data to `peer` now goes as ChannelData.
    ChannelBound {
        /// The peer.
        peer: SocketAddr,
        /// The channel number.
        channel: u16,
    },
    /// ChannelBind failed; data keeps going as Send indications.
    ChannelBindFailed(SocketAddr, TurnError),
    /// Deallocation finished (LIFETIME 0 acknowledged, or the allocation was already gone).
    Deallocated,
}

/// Where the allocation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientState {
    /// [`Client::allocate`] not called yet.
    Idle,
    /// Allocate in flight.
    Allocating,
    /// Allocated; data can flow.
    Allocated,
    /// Deallocate in flight.
    Deallocating,
    /// Finished: failed, lost or deallocated.
    Closed,
}

#[derive(Debug, Clone)]
enum Request {
    Allocate,
    Refresh { lifetime: u32 },
    CreatePermission(Vec<IpAddr>),
    ChannelBind { peer: SocketAddr, channel: u16 },
}

#[derive(Debug)]
struct Pending {
    request: Request,
    transaction: ClientTransaction,
    /// 401/438 retries used for this request.
    retries: u8,
}

#[derive(Debug, Clone, Copy)]
struct Permission {
    installed: bool,
    in_flight: bool,
    refresh_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Channel {
    number: u16,
    bound: bool,
    in_flight: bool,
    refresh_at: Option<Instant>,
}

/// Most 401/438 rounds per request before giving up.
const MAX_AUTH_RETRIES: u8 = 3;

/// A TURN client for one allocation.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    rng: ChaCha8Rng,
    state: ClientState,
    realm: Option<String>,
    nonce: Option<String>,
    key: Option<IntegrityKey>,
    /// PASSWORD-ALGORITHMS from the server, echoed back with PASSWORD-ALGORITHM
    /// (RFC 8489 §9.2.4) when its nonce cookie announced the feature.
    algorithms: Option<(Vec<u8>, Algorithm)>,
    relayed: Vec<SocketAddr>,
    mapped: Option<SocketAddr>,
    expires: Option<Instant>,
    refresh_at: Option<Instant>,
    permissions: HashMap<IpAddr, Permission>,
    channels: HashMap<SocketAddr, Channel>,
    next_channel: u16,
    pending: HashMap<TransactionId, Pending>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stream: Option<StreamDecoder>,
    /// Messages from the server that were discarded: responses failing integrity or
    /// RFC 8489 §6.3's checks, indications with unknown comprehension-required
    /// attributes.
    discarded: u64,
}

impl Client {
    /// A client; `seed` drives transaction ids.
    pub fn new(config: ClientConfig, seed: u64) -> Client {
        let stream = config
            .transport
            .is_stream()
            .then(|| StreamDecoder::new(Framing::StunTurn));
        Client {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            state: ClientState::Idle,
            realm: None,
            nonce: None,
            key: None,
            algorithms: None,
            relayed: Vec::new(),
            mapped: None,
            expires: None,
            refresh_at: None,
            permissions: HashMap::new(),
            channels: HashMap::new(),
            next_channel: MIN_CHANNEL,
            pending: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stream,
            discarded: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The state.
    pub fn state(&self) -> &ClientState {
        &self.state
    }

    /// Relayed transport addresses, once allocated.
    pub fn relayed(&self) -> &[SocketAddr] {
        &self.relayed
    }

    /// The realm the server named in its challenge.
    pub fn realm(&self) -> Option<&str> {
        self.realm.as_deref()
    }

    /// The server-reflexive address the server reported.
    pub fn mapped(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// Whether a permission for `ip` is installed.
    pub fn has_permission(&self, ip: IpAddr) -> bool {
        self.permissions.get(&ip).is_some_and(|p| p.installed)
    }

    /// The channel bound to `peer`, if any.
    pub fn channel(&self, peer: SocketAddr) -> Option<u16> {
        self.channels
            .get(&peer)
            .filter(|c| c.bound)
            .map(|c| c.number)
    }

    /// Starts the allocation (RFC 8656 §7.1).
    pub fn allocate(&mut self, now: Instant) {
        if self.state == ClientState::Idle {
            self.state = ClientState::Allocating;
            self.send_request(now, Request::Allocate, 0);
        }
    }

    /// Installs (and keeps refreshing) a permission for `peer`'s IP (§10.1).
    pub fn create_permission(&mut self, now: Instant, peer: IpAddr) -> Result<(), TurnError> {
        if self.state != ClientState::Allocated {
            return Err(TurnError::NoAllocation);
        }
        if !self.permissions.contains_key(&peer) && self.permissions.len() >= self.config.max_peers
        {
            return Err(TurnError::InsufficientCapacity);
        }
        let p = self.permissions.entry(peer).or_insert(Permission {
            installed: false,
            in_flight: false,
            refresh_at: None,
        });
        if !p.in_flight && !p.installed {
            p.in_flight = true;
            self.send_request(now, Request::CreatePermission(vec![peer]), 0);
        }
        Ok(())
    }

    /// Binds a channel to `peer` (§12.1), which also installs its permission. Returns
    /// the channel number; data goes as ChannelData once [`Event::ChannelBound`] arrives.
    pub fn bind_channel(&mut self, now: Instant, peer: SocketAddr) -> Result<u16, TurnError> {
        if self.state != ClientState::Allocated {
            return Err(TurnError::NoAllocation);
        }
        if let Some(c) = self.channels.get(&peer) {
            return Ok(c.number);
        }
        if self.channels.len() >= self.config.max_peers || self.next_channel > crate::MAX_CHANNEL {
            return Err(TurnError::InsufficientCapacity);
        }
        let number = self.next_channel;
        self.next_channel += 1;
        self.channels.insert(
            peer,
            Channel {
                number,
                bound: false,
                in_flight: true,
                refresh_at: None,
            },
        );
        self.send_request(
            now,
            Request::ChannelBind {
                peer,
                channel: number,
            },
            0,
        );
        Ok(number)
    }

    /// Refreshes the allocation now (§8.1) instead of waiting for the timer; the result
    /// is [`Event::Refreshed`] or [`Event::AllocationLost`].
    pub fn refresh(&mut self, now: Instant) {
        let refreshing = self
            .pending
            .values()
            .any(|p| matches!(p.request, Request::Refresh { .. }));
        if self.state == ClientState::Allocated && !refreshing {
            let lifetime = self.config.lifetime.as_secs() as u32;
            self.send_request(now, Request::Refresh { lifetime }, 0);
        }
    }

    /// Deletes the allocation (Refresh with LIFETIME 0, §8.1).
    pub fn deallocate(&mut self, now: Instant) {
        match self.state {
            ClientState::Allocated => {
                self.state = ClientState::Deallocating;
                self.send_request(now, Request::Refresh { lifetime: 0 }, 0);
            }
            ClientState::Idle | ClientState::Allocating => {
                self.pending.clear();
                self.state = ClientState::Closed;
            }
            ClientState::Deallocating | ClientState::Closed => {}
        }
    }

    /// Wraps `data` for `peer` into `out`: ChannelData when a channel is bound (padded on
    /// streams), a Send indication otherwise (§11.1, §12.5). Returns the length. Nothing
    /// is allocated.
    pub fn encode_send(
        &mut self,
        peer: SocketAddr,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, crate::Error> {
        if let Some(ch) = self.channel(peer) {
            return ChannelData::encode(ch, data, out, self.config.transport.is_stream());
        }
        let tid = TransactionId(self.rng.gen());
        let mut b =
            MessageBuilder::new(out, MessageType::new(Method::SEND, Class::Indication), tid)?;
        b.add(&XorPeerAddress(peer))?.add(&Data(data))?;
        Ok(b.len())
    }

    /// Like [`Client::encode_send`], returning a [`Transmit`] to the server.
    pub fn send_to(&mut self, peer: SocketAddr, data: &[u8]) -> Result<Transmit, crate::Error> {
        let mut out = vec![0u8; data.len() + 40];
        let n = self.encode_send(peer, data, &mut out)?;
        out.truncate(n);
        Ok(self.to_server(out))
    }

    /// One datagram from the server (UDP). Data relayed from a peer (a Data indication
    /// or ChannelData) goes to `on_data(peer, data)`, borrowed from `bytes`, never
    /// queued; control messages update the state and produce events and transmits. A
    /// datagram that does not parse is dropped, so nothing is returned. The same shape as
    /// [`Client::handle_stream_receive`] (and as the ICE agent's `handle_receive`).
    pub fn handle_receive<'a>(
        &mut self,
        now: Instant,
        bytes: &'a [u8],
        mut on_data: impl FnMut(SocketAddr, &'a [u8]),
    ) {
        if let Some((peer, data)) = self.handle_frame(now, bytes) {
            on_data(peer, data);
        }
    }

    /// Bytes from the server's stream (TCP/TLS), cut into frames across calls; `on_data`
    /// gets each peer datagram as [`Client::handle_receive`] does (borrowed from the
    /// client's reassembly buffer). Returns an error if the stream is corrupt (close it:
    /// the allocation is gone).
    pub fn handle_stream_receive(
        &mut self,
        now: Instant,
        bytes: &[u8],
        mut on_data: impl FnMut(SocketAddr, &[u8]),
    ) -> Result<(), crate::Error> {
        let mut decoder = self
            .stream
            .take()
            .unwrap_or_else(|| StreamDecoder::new(Framing::StunTurn));
        let result = (|| {
            decoder.extend(bytes)?;
            while let Some((_, frame)) = decoder.next_frame()? {
                if let Some((peer, data)) = self.handle_frame(now, frame) {
                    on_data(peer, data);
                }
            }
            Ok(())
        })();
        self.stream = Some(decoder);
        result
    }

    fn handle_frame<'a>(
        &mut self,
        now: Instant,
        bytes: &'a [u8],
    ) -> Option<(SocketAddr, &'a [u8])> {
        match floe_stun::demux::classify(bytes) {
            PacketKind::ChannelData => {
                let cd = ChannelData::parse(bytes).ok()?;
                let peer = self
                    .channels
                    .iter()
                    .find(|(_, c)| c.number == cd.channel && c.bound)
                    .map(|(p, _)| *p)?;
                Some((peer, cd.data))
            }
            PacketKind::Stun => {
                let msg = Message::parse(bytes).ok()?;
                if msg.class() == Class::Indication {
                    // RFC 8489 §6.3.2: an indication with an unknown
                    // comprehension-required attribute is discarded.
                    if floe_stun::transaction::check_response(&msg).is_err() {
                        self.discarded += 1;
                        return None;
                    }
                    if msg.method() == Method::DATA {
                        let peer = msg.get::<XorPeerAddress>().ok()??;
                        let data = msg.get::<Data>().ok()??;
                        // §11.4: only from peers we permitted.
                        if self.permissions.contains_key(&peer.0.ip())
                            || self.channels.contains_key(&peer.0)
                        {
                            return Some((peer.0, data.0));
                        }
                    }
                    return None;
                }
                self.handle_response(now, &msg);
                None
            }
            _ => None,
        }
    }

    fn handle_response(&mut self, now: Instant, msg: &Message<'_>) {
        let tid = msg.transaction_id();
        let Some(pending) = self.pending.get_mut(&tid) else {
            return;
        };
        if !pending.transaction.matches(msg) || msg.method() != method_of(&pending.request) {
            return;
        }
        let code = msg.get::<ErrorCode>().ok().flatten();
        let challenge = matches!(code.map(|c| c.code), Some(401 | 438));
        // RFC 8489 §9.2.5: with credentials in use, a response other than 401/438 must
        // carry a valid MESSAGE-INTEGRITY; anything else is discarded (retransmits go on).
        if let Some(key) = &self.key {
            if !challenge && msg.verify(key).is_err() {
                tracing::debug!(%tid, "discarding response that fails integrity");
                pending
                    .transaction
                    .discard("a response failed MESSAGE-INTEGRITY");
                self.discarded += 1;
                return;
            }
        }
        // RFC 8489 §6.3.3/§6.3.4: unknown comprehension-required attributes; the
        // transaction keeps waiting for a valid response.
        if !pending.transaction.handle_response(now, msg) {
            tracing::debug!(%tid, why = ?pending.transaction.last_discarded(), "discarding response");
            self.discarded += 1;
            return;
        }
        let Some(pending) = self.pending.remove(&tid) else {
            return;
        };
        match (msg.class(), code) {
            (Class::Success, _) => self.on_success(now, pending.request, msg),
            (_, Some(c)) if matches!(c.code, 401 | 438) && pending.retries < MAX_AUTH_RETRIES => {
                let fresh_credentials = self.key.is_none() || c.code == 438;
                if fresh_credentials && self.learn_challenge(msg) {
                    self.send_request(now, pending.request, pending.retries + 1);
                } else {
                    self.on_failure(now, pending.request, TurnError::from_code(c.code, c.reason));
                }
            }
            (_, Some(c)) if c.code == 300 => {
                let err = match msg.get::<AlternateServer>() {
                    Ok(Some(a)) => TurnError::TryAlternate { server: a.0 },
                    _ => TurnError::Malformed("300 without ALTERNATE-SERVER"),
                };
                self.on_failure(now, pending.request, err);
            }
            (_, Some(c)) if c.code == 420 => {
                let attributes = msg
                    .get::<UnknownAttributes>()
                    .ok()
                    .flatten()
                    .map(|u| u.iter().map(|t| t.0).collect())
                    .unwrap_or_default();
                self.on_failure(
                    now,
                    pending.request,
                    TurnError::UnknownAttribute { attributes },
                );
            }
            (_, Some(c)) => {
                self.on_failure(now, pending.request, TurnError::from_code(c.code, c.reason));
            }
            (_, None) => self.on_failure(
                now,
                pending.request,
                TurnError::Malformed("error response without ERROR-CODE"),
            ),
        }
    }

    /// Takes REALM, NONCE and PASSWORD-ALGORITHMS from a 401/438 and derives the key.
    fn learn_challenge(&mut self, msg: &Message<'_>) -> bool {
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

    fn on_success(&mut self, now: Instant, request: Request, msg: &Message<'_>) {
        match request {
            Request::Allocate => {
                let relayed: Vec<SocketAddr> = msg
                    .get_all::<XorRelayedAddress>()
                    .filter_map(Result::ok)
                    .map(|r| r.0)
                    .collect();
                let lifetime = msg
                    .get::<Lifetime>()
                    .ok()
                    .flatten()
                    .map(Lifetime::as_duration);
                let (false, Some(lifetime)) = (relayed.is_empty(), lifetime) else {
                    return self.on_failure(
                        now,
                        Request::Allocate,
                        TurnError::Malformed(
                            "Allocate success without XOR-RELAYED-ADDRESS or LIFETIME",
                        ),
                    );
                };
                if let Some(why) = self.unusable_relayed(&relayed) {
                    // The server holds an allocation nobody can reach: delete it
                    // (RFC 8656 §7.3's checks, §8 Refresh with LIFETIME 0), then fail.
                    self.relayed.clone_from(&relayed);
                    self.state = ClientState::Deallocating;
                    self.send_request(now, Request::Refresh { lifetime: 0 }, 0);
                    self.events
                        .push_back(Event::AllocationFailed(TurnError::Malformed(why)));
                    return;
                }
                self.mapped = msg.get::<XorMappedAddress>().ok().flatten().map(|m| m.0);
                self.relayed.clone_from(&relayed);
                self.set_lifetime(now, lifetime);
                self.state = ClientState::Allocated;
                tracing::info!(relayed = ?relayed, mapped = ?self.mapped, lifetime_s = lifetime.as_secs(), "allocated");
                if let Ok(Some(e)) = msg.get::<AddressErrorCode>() {
                    self.events.push_back(Event::PartialAllocation {
                        family: e.family,
                        code: e.code,
                    });
                }
                self.events.push_back(Event::Allocated {
                    relayed,
                    mapped: self.mapped,
                    lifetime,
                });
            }
            Request::Refresh { lifetime: 0 } => self.finish_deallocation(),
            Request::Refresh { .. } => {
                let lifetime = msg
                    .get::<Lifetime>()
                    .ok()
                    .flatten()
                    .map_or(self.config.lifetime, Lifetime::as_duration);
                self.set_lifetime(now, lifetime);
                self.events.push_back(Event::Refreshed { lifetime });
            }
            Request::CreatePermission(ips) => {
                let at = now + self.config.permission_refresh;
                for ip in ips {
                    if let Some(p) = self.permissions.get_mut(&ip) {
                        let first = !p.installed;
                        *p = Permission {
                            installed: true,
                            in_flight: false,
                            refresh_at: Some(at),
                        };
                        if first {
                            self.events.push_back(Event::PermissionCreated(ip));
                        }
                    }
                }
            }
            Request::ChannelBind { peer, channel } => {
                if let Some(c) = self.channels.get_mut(&peer) {
                    let first = !c.bound;
                    *c = Channel {
                        number: channel,
                        bound: true,
                        in_flight: false,
                        refresh_at: Some(now + self.config.channel_refresh),
                    };
                    if first {
                        self.events.push_back(Event::ChannelBound { peer, channel });
                    }
                }
                // A channel binding installs the permission too (§12.2).
                let p = self.permissions.entry(peer.ip()).or_insert(Permission {
                    installed: false,
                    in_flight: false,
                    refresh_at: None,
                });
                if !p.installed {
                    *p = Permission {
                        installed: true,
                        in_flight: false,
                        refresh_at: Some(now + self.config.permission_refresh),
                    };
                    self.events.push_back(Event::PermissionCreated(peer.ip()));
                }
            }
        }
    }

    /// Why relayed addresses from an Allocate success cannot be used: port 0, an
    /// unspecified or multicast address, or a family the request did not ask for
    /// (RFC 8656 §7.1: REQUESTED-ADDRESS-FAMILY, and ADDITIONAL-ADDRESS-FAMILY when
    /// dual-stack).
    fn unusable_relayed(&self, relayed: &[SocketAddr]) -> Option<&'static str> {
        for r in relayed {
            if r.port() == 0 {
                return Some("XOR-RELAYED-ADDRESS has port 0");
            }
            if r.ip().is_unspecified() || r.ip().is_multicast() {
                return Some("XOR-RELAYED-ADDRESS is unspecified or multicast");
            }
            let asked = match self.config.family {
                AddressFamily::Ipv4 => r.is_ipv4(),
                AddressFamily::Ipv6 => r.is_ipv6(),
            };
            if !asked && !self.config.dual_stack {
                return Some("XOR-RELAYED-ADDRESS is of a family that was not requested");
            }
        }
        None
    }

    /// Messages from the server that were discarded: responses that failed
    /// MESSAGE-INTEGRITY or carried an unknown comprehension-required attribute, and
    /// indications that carried one (RFC 8489 §6.3).
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    fn on_failure(&mut self, _now: Instant, request: Request, error: TurnError) {
        tracing::debug!(?request, %error, "TURN request failed");
        match request {
            Request::Allocate => {
                self.state = ClientState::Closed;
                self.pending.clear();
                self.events.push_back(Event::AllocationFailed(error));
            }
            // §8.1: a 437 to a deallocation means it is already gone.
            Request::Refresh { lifetime: 0 } => self.finish_deallocation(),
            Request::Refresh { .. } => self.lose(error),
            Request::CreatePermission(ips) => {
                for ip in ips {
                    if let Some(p) = self.permissions.get_mut(&ip) {
                        p.in_flight = false;
                        if !p.installed {
                            self.permissions.remove(&ip);
                        }
                    }
                    self.events
                        .push_back(Event::PermissionFailed(ip, error.clone()));
                }
                if error == TurnError::AllocationMismatch {
                    self.lose(error);
                }
            }
            Request::ChannelBind { peer, .. } => {
                if self.channels.get(&peer).is_some_and(|c| !c.bound) {
                    self.channels.remove(&peer);
                } else if let Some(c) = self.channels.get_mut(&peer) {
                    c.in_flight = false;
                }
                self.events
                    .push_back(Event::ChannelBindFailed(peer, error.clone()));
                if error == TurnError::AllocationMismatch {
                    self.lose(error);
                }
            }
        }
    }

    fn lose(&mut self, error: TurnError) {
        if self.state == ClientState::Closed {
            return;
        }
        self.state = ClientState::Closed;
        self.pending.clear();
        self.events.push_back(Event::AllocationLost(error));
    }

    fn finish_deallocation(&mut self) {
        self.state = ClientState::Closed;
        self.pending.clear();
        self.events.push_back(Event::Deallocated);
    }

    fn set_lifetime(&mut self, now: Instant, lifetime: Duration) {
        self.expires = Some(now + lifetime);
        // Refresh a minute early, or at half the lifetime for short ones.
        let early = Duration::from_secs(60).min(lifetime / 2);
        self.refresh_at = Some(now + lifetime.saturating_sub(early));
    }

    fn to_server(&self, data: Vec<u8>) -> Transmit {
        Transmit {
            transport: self.config.transport,
            source: self.config.local,
            destination: self.config.server,
            data,
        }
    }

    fn send_request(&mut self, now: Instant, request: Request, retries: u8) {
        let tid = TransactionId(self.rng.gen());
        let Ok(bytes) = self.build(&request, tid) else {
            self.on_failure(
                now,
                request,
                TurnError::Malformed("request could not be encoded"),
            );
            return;
        };
        let reliability = if self.config.transport.is_stream() {
            Reliability::Reliable
        } else {
            Reliability::Unreliable
        };
        match ClientTransaction::new(bytes, reliability, self.config.transaction) {
            Ok(transaction) => {
                self.pending.insert(
                    tid,
                    Pending {
                        request,
                        transaction,
                        retries,
                    },
                );
                self.flush(now);
            }
            Err(_) => self.on_failure(
                now,
                request,
                TurnError::Malformed("request could not be encoded"),
            ),
        }
    }

    fn build(&self, request: &Request, tid: TransactionId) -> Result<Vec<u8>, floe_stun::Error> {
        let mut buf = vec![0u8; 1024];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(method_of(request), Class::Request),
            tid,
        )?;
        match request {
            Request::Allocate => {
                b.add(&RequestedTransport::UDP)?;
                b.add(&Lifetime(self.config.lifetime.as_secs() as u32))?;
                if self.config.family == AddressFamily::Ipv6 {
                    b.add(&RequestedAddressFamily(AddressFamily::Ipv6))?;
                }
                if self.config.dual_stack {
                    b.add(&AdditionalAddressFamily(AddressFamily::Ipv6))?;
                }
            }
            Request::Refresh { lifetime } => {
                b.add(&Lifetime(*lifetime))?;
            }
            Request::CreatePermission(ips) => {
                for ip in ips {
                    b.add(&XorPeerAddress(SocketAddr::new(*ip, 0)))?;
                }
            }
            Request::ChannelBind { peer, channel } => {
                b.add(&ChannelNumber(*channel))?
                    .add(&XorPeerAddress(*peer))?;
            }
        }
        if let Some(s) = &self.config.software {
            b.add(&Software(s))?;
        }
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
        b.add_fingerprint()?;
        let n = b.len();
        buf.truncate(n);
        Ok(buf)
    }

    /// Moves due transmissions of pending requests to the outgoing queue.
    fn flush(&mut self, now: Instant) {
        let mut out = Vec::new();
        for p in self.pending.values_mut() {
            if let Some(bytes) = p.transaction.poll_transmit(now) {
                out.push(bytes.to_vec());
            }
        }
        for data in out {
            let t = self.to_server(data);
            self.transmits.push_back(t);
        }
    }

    /// The next message for the server.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Client::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == ClientState::Closed {
            return None;
        }
        let transactions = self
            .pending
            .values()
            .filter_map(|p| p.transaction.poll_timeout());
        let refreshes = self
            .permissions
            .values()
            .filter(|p| !p.in_flight)
            .filter_map(|p| p.refresh_at);
        let channels = self
            .channels
            .values()
            .filter(|c| !c.in_flight)
            .filter_map(|c| c.refresh_at);
        let allocation = (self.state == ClientState::Allocated)
            .then_some(self.refresh_at)
            .flatten();
        transactions
            .chain(refreshes)
            .chain(channels)
            .chain(allocation)
            .chain(self.expires)
            .min()
    }

    /// Retransmits, times out, and refreshes what is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut timed_out = Vec::new();
        for (tid, p) in &mut self.pending {
            p.transaction.handle_timeout(now);
            if p.transaction.state() == TransactionState::TimedOut {
                timed_out.push(*tid);
            }
        }
        for tid in timed_out {
            if let Some(p) = self.pending.remove(&tid) {
                let error = match p.transaction.last_discarded() {
                    Some(why) => TurnError::InvalidResponse(why.to_owned()),
                    None => TurnError::Timeout,
                };
                self.on_failure(now, p.request, error);
            }
        }
        if self.state == ClientState::Allocated {
            if self.expires.is_some_and(|t| t <= now) {
                self.lose(TurnError::Timeout);
                return;
            }
            let refreshing = self
                .pending
                .values()
                .any(|p| matches!(p.request, Request::Refresh { .. }));
            if self.refresh_at.is_some_and(|t| t <= now) && !refreshing {
                self.refresh_at = None;
                let lifetime = self.config.lifetime.as_secs() as u32;
                self.send_request(now, Request::Refresh { lifetime }, 0);
            }
            let due: Vec<IpAddr> = self
                .permissions
                .iter()
                .filter(|(_, p)| !p.in_flight && p.refresh_at.is_some_and(|t| t <= now))
                .map(|(ip, _)| *ip)
                .collect();
            if !due.is_empty() {
                for ip in &due {
                    if let Some(p) = self.permissions.get_mut(ip) {
                        p.in_flight = true;
                    }
                }
                self.send_request(now, Request::CreatePermission(due), 0);
            }
            let due: Vec<(SocketAddr, u16)> = self
                .channels
                .iter()
                .filter(|(_, c)| !c.in_flight && c.refresh_at.is_some_and(|t| t <= now))
                .map(|(p, c)| (*p, c.number))
                .collect();
            for (peer, channel) in due {
                if let Some(c) = self.channels.get_mut(&peer) {
                    c.in_flight = true;
                }
                self.send_request(now, Request::ChannelBind { peer, channel }, 0);
            }
        }
        self.flush(now);
    }
}

fn method_of(request: &Request) -> Method {
    match request {
        Request::Allocate => Method::ALLOCATE,
        Request::Refresh { .. } => Method::REFRESH,
        Request::CreatePermission(_) => Method::CREATE_PERMISSION,
        Request::ChannelBind { .. } => Method::CHANNEL_BIND,
    }
}

#[cfg(test)]
mod tests;
