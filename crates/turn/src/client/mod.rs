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

mod auth;
mod config;
mod error;
mod event;
mod refresh;
mod requests;
mod responses;
mod tcp;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use floe_stun::attributes::{Data, Icmp, XorPeerAddress};
use floe_stun::credentials::Algorithm;
use floe_stun::demux::PacketKind;
use floe_stun::framing::{Framing, StreamDecoder};
use floe_stun::transaction::TransactionState;
use floe_stun::{Class, IntegrityKey, Message, MessageBuilder, MessageType, Method, TransactionId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use config::ClientConfig;
pub use error::TurnError;
pub use event::{ClientState, Event};
use refresh::{Channel, Permission};
use requests::{Pending, Request};
pub use tcp::ConnectionBind;

use crate::{ChannelData, Transmit, MIN_CHANNEL};

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
        // A Send indication's overhead: the 20-byte header, XOR-PEER-ADDRESS (24 bytes
        // for IPv6), the DATA header and up to 3 bytes of padding: 51 bytes.
        let mut out = vec![0u8; data.len() + 64];
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
                    if msg.method() == Method::CONNECTION_ATTEMPT {
                        self.on_connection_attempt(&msg);
                        return None;
                    }
                    if msg.method() == Method::DATA {
                        let peer = msg.get::<XorPeerAddress>().ok()??;
                        // §11.6: an ICMP error, for a peer with a permission, is reported.
                        if let Ok(Some(icmp)) = msg.get::<Icmp>() {
                            if self.permissions.contains_key(&peer.0.ip()) {
                                self.events
                                    .push_back(Event::IcmpReceived { peer: peer.0, icmp });
                            }
                            return None;
                        }
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

    /// Messages from the server that were discarded: responses that failed
    /// MESSAGE-INTEGRITY or carried an unknown comprehension-required attribute, and
    /// indications that carried one (RFC 8489 §6.3).
    pub fn discarded(&self) -> u64 {
        self.discarded
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
        transactions.chain(self.refresh_deadlines()).min()
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
        self.refresh_due(now);
        self.flush(now);
    }
}

#[cfg(test)]
mod tests;
