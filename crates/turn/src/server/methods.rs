//! The TURN methods on the server: Allocate (RFC 8656 §7.2), Refresh (§8.2),
//! CreatePermission (§10.2), ChannelBind (§12.2), and the data path: Send indications
//! (§11.2), ChannelData (§12.6) and datagrams from peers (§11.3, §12.7).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_stun::attributes::{
    AdditionalAddressFamily, AdditionalAddressFamilyDraft, AddressErrorCode, AddressErrorCodeDraft,
    AddressFamily, AlternateDomain, AlternateServer, ChannelNumber, Data, ErrorCode, EvenPort,
    Lifetime, RequestedAddressFamily, RequestedTransport, ReservationToken, XorMappedAddress,
    XorPeerAddress, XorRelayedAddress,
};
use floe_stun::{Class, Message, MessageBuilder, MessageType, Method, TransactionId};
use rand::Rng;

use super::allocation::{Allocation, Channel, FiveTuple};
use super::auth::Authenticated;
use super::bandwidth::Bucket;
use super::event::AllocationChange;
use super::stats::{AllocationKind, AuthFailure, DropReason, QuotaLimit, RelayFamily};
use super::{RelayAllocator, Server};
use crate::{ChannelData, Transmit, Transport};

/// The limit a full shared quota stands for: the user's (486) or the server's (508).
fn quota_limit(full: super::quota::Full) -> QuotaLimit {
    match full {
        super::quota::Full::User => QuotaLimit::UserAllocations,
        super::quota::Full::Server => QuotaLimit::Allocations,
    }
}

/// Which way a relayed packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToPeer,
    ToClient,
}

fn family_of(addr: &SocketAddr) -> AddressFamily {
    if addr.is_ipv4() {
        AddressFamily::Ipv4
    } else {
        AddressFamily::Ipv6
    }
}

impl<R: RelayAllocator> Server<R> {
    /// The highest channel number accepted: 0x4FFF (RFC 8656 §12), or 0x7FFF with
    /// [`ServerConfig::rfc5766_channels`](super::ServerConfig::rfc5766_channels).
    pub(super) fn max_channel_number(&self) -> u16 {
        if self.config.rfc5766_channels {
            crate::MAX_CHANNEL_RFC5766
        } else {
            crate::MAX_CHANNEL
        }
    }

    /// The lifetime to grant (RFC 8656 §7.2, §8.2): the default unless the client asks
    /// for more, capped at the maximum.
    fn granted_lifetime(&self, msg: &Message<'_>) -> Duration {
        match msg.get::<Lifetime>().ok().flatten() {
            Some(l) => l
                .as_duration()
                .min(self.config.max_lifetime)
                .max(self.config.default_lifetime),
            None => self.config.default_lifetime,
        }
    }

    fn ok(
        &mut self,
        ft: &FiveTuple,
        msg: &Message<'_>,
        auth: &Authenticated,
        fill: impl FnOnce(&mut MessageBuilder<'_>) -> Result<(), floe_stun::Error>,
    ) {
        self.respond(
            ft,
            msg.message_type().with_class(Class::Success),
            msg.transaction_id(),
            Some(auth),
            fill,
        );
    }

    pub(super) fn fail(
        &mut self,
        ft: &FiveTuple,
        msg: &Message<'_>,
        code: ErrorCode<'_>,
        auth: &Authenticated,
    ) {
        self.respond_error(ft, msg, code, Some(auth), |_| Ok(()));
    }

    /// Refuses a request for `limit`: 486 for the user's allocation quota, 508 for the
    /// others (RFC 8656 §7.2, §10.2, §12.2), counted by limit and by code.
    pub(super) fn refuse(
        &mut self,
        ft: &FiveTuple,
        msg: &Message<'_>,
        auth: &Authenticated,
        limit: QuotaLimit,
    ) {
        self.stats.count_quota_refusal(limit);
        let code = match limit {
            QuotaLimit::UserAllocations => ErrorCode::ALLOCATION_QUOTA_REACHED,
            _ => ErrorCode::INSUFFICIENT_CAPACITY,
        };
        self.fail(ft, msg, code, auth);
    }

    pub(super) fn allocate(
        &mut self,
        now: Instant,
        ft: &FiveTuple,
        msg: &Message<'_>,
        auth: &Authenticated,
    ) {
        if let Some(a) = self.allocations.get(ft) {
            if a.created_by == msg.transaction_id() {
                // A retransmission of the request that created it (§7.2 note).
                let (relayed, token, addr_err, left) = (
                    a.relayed.clone(),
                    a.reservation,
                    a.address_error,
                    a.expires.saturating_duration_since(now),
                );
                self.allocate_success(
                    ft,
                    msg.transaction_id(),
                    auth,
                    &relayed,
                    token,
                    addr_err,
                    left,
                );
            } else {
                self.fail(ft, msg, ErrorCode::ALLOCATION_MISMATCH, auth);
            }
            return;
        }
        // Draining (SIGTERM): existing allocations keep working; new ones go elsewhere.
        if self.draining.is_some() {
            self.stats.drain_refusals += 1;
            match self.config.alternate_server {
                Some(alt) => {
                    // RFC 8489 §10 asks for ALTERNATE-DOMAIN over (D)TLS when the request
                    // carried MESSAGE-INTEGRITY-SHA256; floe sends it on every TLS answer
                    // (it is comprehension-optional: a client that does not know it
                    // keeps the original name, as §10 says it must).
                    let domain = self
                        .over_tls
                        .then(|| self.config.alternate_domain.clone())
                        .flatten();
                    self.respond_error(ft, msg, ErrorCode::TRY_ALTERNATE, Some(auth), |b| {
                        b.add(&AlternateServer(alt))?;
                        if let Some(d) = &domain {
                            b.add(&AlternateDomain(d))?;
                        }
                        Ok(())
                    });
                }
                None => self.fail(ft, msg, ErrorCode::INSUFFICIENT_CAPACITY, auth),
            }
            return;
        }
        let tcp = match msg.get::<RequestedTransport>() {
            Ok(Some(t)) if t == RequestedTransport::UDP => false,
            // RFC 6062 §5.1: a TCP relay, only over a TCP or TLS connection.
            Ok(Some(t)) if t == RequestedTransport::TCP && self.relays.supports_tcp() => {
                if ft.transport != Transport::Tcp {
                    return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
                }
                true
            }
            Ok(Some(_)) => return self.fail(ft, msg, ErrorCode::UNSUPPORTED_TRANSPORT, auth),
            _ => return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth),
        };
        let (Ok(token), Ok(even), Ok(requested), Ok(additional), Ok(draft)) = (
            msg.get::<ReservationToken>(),
            msg.get::<EvenPort>(),
            msg.get::<RequestedAddressFamily>(),
            msg.get::<AdditionalAddressFamily>(),
            msg.get::<AdditionalAddressFamilyDraft>(),
        ) else {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        };
        // coturn's clients ask with the draft codepoint (0x8032) only.
        let additional = additional.or(draft.map(|d| AdditionalAddressFamily(d.0)));
        if token.is_some() && (even.is_some() || requested.is_some() || additional.is_some()) {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        }
        if requested.is_some() && additional.is_some() {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        }
        if even.is_some_and(|e| e.reserve) && additional.is_some() {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        }
        if additional.is_some_and(|a| a.0 == AddressFamily::Ipv4) {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        }
        // RFC 6062 §5.1 step 3 (EVEN-PORT, RESERVATION-TOKEN); a TCP relay has one family.
        if tcp && (even.is_some() || token.is_some() || additional.is_some()) {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        }
        let family = requested.map_or(AddressFamily::Ipv4, |r| r.0);
        if token.is_none() && !self.relays.supports(family) {
            return self.fail(ft, msg, ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED, auth);
        }
        let (max_total, max_user) = (
            self.config.max_allocations,
            self.config.max_allocations_per_user,
        );
        if let Err(full) = self.quota.check(&auth.username, max_total, max_user) {
            return self.refuse(ft, msg, auth, quota_limit(full));
        }
        // With fleet quotas, the request waits here for the fleet's place (fleet.rs).
        if let super::fleet::Gate::Done = self.fleet_gate(now, ft, msg, auth) {
            return;
        }

        let mut relayed = Vec::with_capacity(2);
        let mut new_token = None;
        let mut address_error = None;
        if tcp {
            let Some(addr) = self.relays.allocate_tcp(family) else {
                return self.refuse(ft, msg, auth, QuotaLimit::RelayPorts);
            };
            relayed.push(addr);
        } else if let Some(t) = token {
            match self.reservations.take(t.0) {
                Some((addr, expires)) if expires > now && self.relays.claim(addr) => {
                    relayed.push(addr);
                }
                Some((addr, _)) => {
                    self.relays.release(addr);
                    self.stats
                        .count_auth_failure(AuthFailure::InsufficientCapacity);
                    return self.fail(ft, msg, ErrorCode::INSUFFICIENT_CAPACITY, auth);
                }
                None => {
                    self.stats
                        .count_auth_failure(AuthFailure::InsufficientCapacity);
                    return self.fail(ft, msg, ErrorCode::INSUFFICIENT_CAPACITY, auth);
                }
            }
        } else {
            let even_port = even.is_some();
            let reserve = even.is_some_and(|e| e.reserve);
            if reserve && self.reservations.is_full(self.config.max_tracked_sources) {
                return self.refuse(ft, msg, auth, QuotaLimit::Reservations);
            }
            let Some((addr, next)) = self.relays.allocate(family, even_port, reserve) else {
                return self.refuse(ft, msg, auth, QuotaLimit::RelayPorts);
            };
            relayed.push(addr);
            if let Some(next) = next {
                let t: [u8; 8] = self.rng.gen();
                let expires = now + self.config.reservation_lifetime;
                if self
                    .reservations
                    .insert(t, next, expires, self.config.max_tracked_sources)
                {
                    new_token = Some(t);
                } else {
                    // Another worker filled the table since the check, or a 64-bit
                    // collision: the allocation stands without a reservation.
                    self.relays.release(next);
                }
            }
            if additional.is_some() {
                // §7.2 step 9: a partial dual allocation succeeds with ADDRESS-ERROR-CODE.
                if !self.relays.supports(AddressFamily::Ipv6) {
                    address_error = Some((AddressFamily::Ipv6, 440));
                } else if let Some((v6, _)) =
                    self.relays.allocate(AddressFamily::Ipv6, false, false)
                {
                    relayed.push(v6);
                } else {
                    address_error = Some((AddressFamily::Ipv6, 508));
                }
            }
        }
        // The place is taken only now, when the relay exists, so a failure above
        // leaves nothing to give back; another worker may have taken the last place
        // since the check.
        if let Err(full) = self.quota.acquire(&auth.username, max_total, max_user) {
            for r in &relayed {
                self.relays.release(*r);
            }
            if let Some(t) = new_token {
                if let Some((next, _)) = self.reservations.take(t) {
                    self.relays.release(next);
                }
            }
            return self.refuse(ft, msg, auth, quota_limit(full));
        }
        let fleet = self.fleet_take(ft);
        let lifetime = self.granted_lifetime(msg);
        for r in &relayed {
            self.by_relay.insert(*r, *ft);
        }
        *self.per_user.entry(auth.username.clone()).or_insert(0) += 1;
        self.stats.allocations_created += 1;
        let kind = AllocationKind::new(ft.transport, RelayFamily::of(&relayed));
        if let Some(k) = self.stats.kind_mut(kind) {
            k.created += 1;
            k.current += 1;
        }
        let a = Allocation {
            username: auth.username.clone(),
            relayed: relayed.clone(),
            expires: now + lifetime,
            permissions: HashMap::new(),
            channels: HashMap::new(),
            channel_by_peer: HashMap::new(),
            quarantine: Vec::new(),
            created_by: msg.transaction_id(),
            reservation: new_token,
            address_error,
            bucket: self.config.max_bps.map(|bps| Bucket::new(bps, now)),
            user_bucket: self
                .config
                .user_max_bps
                .map(|bps| self.user_buckets.get(&auth.username, bps, now)),
            kind,
            bytes_to_peers: 0,
            bytes_to_clients: 0,
            fleet,
            tcp,
        };
        self.report(a.event(ft, AllocationChange::Created(lifetime)));
        self.allocations.insert(*ft, a);
        self.allocate_success(
            ft,
            msg.transaction_id(),
            auth,
            &relayed,
            new_token,
            address_error,
            lifetime,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn allocate_success(
        &mut self,
        ft: &FiveTuple,
        tid: TransactionId,
        auth: &Authenticated,
        relayed: &[SocketAddr],
        token: Option<[u8; 8]>,
        address_error: Option<(AddressFamily, u16)>,
        lifetime: Duration,
    ) {
        let client = ft.client;
        let typ = MessageType::new(Method::ALLOCATE, Class::Success);
        let advertised: Vec<SocketAddr> = relayed.iter().map(|r| self.advertised(*r)).collect();
        self.respond(ft, typ, tid, Some(auth), |b| {
            for r in &advertised {
                b.add(&XorRelayedAddress(*r))?;
            }
            b.add(&Lifetime(lifetime.as_secs() as u32))?;
            if let Some(t) = token {
                b.add(&ReservationToken(t))?;
            }
            if let Some((family, code)) = address_error {
                let reason = floe_stun::attributes::default_reason(code);
                let e = AddressErrorCode {
                    family,
                    code,
                    reason,
                };
                // Both codepoints: RFC 8656's, and the draft one coturn-derived clients
                // read (each ignores the other: comprehension-optional).
                b.add(&e)?;
                b.add(&AddressErrorCodeDraft(e))?;
            }
            b.add(&XorMappedAddress(client))?;
            Ok(())
        });
    }

    pub(super) fn refresh(
        &mut self,
        now: Instant,
        ft: &FiveTuple,
        msg: &Message<'_>,
        auth: &Authenticated,
    ) {
        let Some(a) = self.allocations.get(ft) else {
            return self.fail(ft, msg, ErrorCode::ALLOCATION_MISMATCH, auth);
        };
        if let Ok(Some(f)) = msg.get::<RequestedAddressFamily>() {
            if !a.relayed.iter().any(|r| family_of(r) == f.0) {
                return self.fail(ft, msg, ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH, auth);
            }
        }
        let lifetime = match msg.get::<Lifetime>().ok().flatten() {
            Some(Lifetime(0)) => Duration::ZERO,
            _ => self.granted_lifetime(msg),
        };
        if lifetime.is_zero() {
            self.remove_allocation(ft, AllocationChange::Deleted("refresh"));
        } else if let Some(a) = self.allocations.get_mut(ft) {
            a.expires = now + lifetime;
            let event = a.event(ft, AllocationChange::Refreshed(lifetime));
            self.report(event);
        }
        self.ok(ft, msg, auth, |b| {
            b.add(&Lifetime(lifetime.as_secs() as u32))?;
            Ok(())
        });
    }

    /// Checks a peer address for CreatePermission and ChannelBind: an address family the
    /// allocation has (443) and the peer policy (403).
    pub(super) fn check_peer(
        &mut self,
        ft: &FiveTuple,
        peer: &SocketAddr,
    ) -> Result<(), ErrorCode<'static>> {
        let a = self
            .allocations
            .get(ft)
            .ok_or(ErrorCode::ALLOCATION_MISMATCH)?;
        if a.relayed_for(peer).is_none() {
            return Err(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH);
        }
        if let Err(why) = self.config.peer_policy.check(peer.ip()) {
            self.stats.count_peer_refusal(why);
            tracing::debug!(peer = %peer, why = why.as_str(), "peer refused by policy");
            return Err(ErrorCode::FORBIDDEN);
        }
        Ok(())
    }

    pub(super) fn create_permission(
        &mut self,
        now: Instant,
        ft: &FiveTuple,
        msg: &Message<'_>,
        auth: &Authenticated,
    ) {
        if !self.allocations.contains_key(ft) {
            return self.fail(ft, msg, ErrorCode::ALLOCATION_MISMATCH, auth);
        }
        let mut peers = Vec::new();
        for p in msg
            .get_all::<XorPeerAddress>()
            .take(self.config.max_permissions + 1)
        {
            match p {
                Ok(p) => peers.push(p.0),
                Err(_) => return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth),
            }
        }
        if peers.is_empty() {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        }
        // All or nothing (§10.2): check every peer before installing any.
        for p in &peers {
            if let Err(code) = self.check_peer(ft, p) {
                return self.fail(ft, msg, code, auth);
            }
        }
        let lifetime = self.config.permission_lifetime;
        let max = self.config.max_permissions;
        let Some(a) = self.allocations.get_mut(ft) else {
            return;
        };
        let new = peers
            .iter()
            .filter(|p| !a.permissions.contains_key(&p.ip()))
            .count();
        if a.permissions.len() + new > max {
            a.expire(now);
            if a.permissions.len() + new > max {
                return self.refuse(ft, msg, auth, QuotaLimit::Permissions);
            }
        }
        for p in &peers {
            a.permissions.insert(p.ip(), now + lifetime);
        }
        self.stats.permissions += new;
        self.ok(ft, msg, auth, |_| Ok(()));
    }

    pub(super) fn channel_bind(
        &mut self,
        now: Instant,
        ft: &FiveTuple,
        msg: &Message<'_>,
        auth: &Authenticated,
    ) {
        match self.allocations.get(ft) {
            None => return self.fail(ft, msg, ErrorCode::ALLOCATION_MISMATCH, auth),
            // Channels carry datagrams; a TCP relay's data goes over data connections.
            Some(a) if a.tcp => return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth),
            Some(_) => {}
        }
        let (Ok(Some(number)), Ok(Some(peer))) =
            (msg.get::<ChannelNumber>(), msg.get::<XorPeerAddress>())
        else {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        };
        if !(crate::MIN_CHANNEL..=self.max_channel_number()).contains(&number.0) {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        }
        if let Err(code) = self.check_peer(ft, &peer.0) {
            return self.fail(ft, msg, code, auth);
        }
        let (channel_lifetime, permission_lifetime, max) = (
            self.config.channel_lifetime,
            self.config.permission_lifetime,
            self.config.max_channels,
        );
        let Some(a) = self.allocations.get_mut(ft) else {
            return;
        };
        a.expire(now);
        // §12.2: the number must be unbound or bound to this peer, and the peer unbound or
        // bound to this number.
        let number_ok = a.channels.get(&number.0).is_none_or(|c| c.peer == peer.0);
        let peer_ok = a
            .channel_by_peer
            .get(&peer.0)
            .is_none_or(|n| *n == number.0);
        // §12: and neither may be rebound elsewhere within 5 minutes of an expiry.
        if !number_ok || !peer_ok || a.quarantined(now, number.0, peer.0) {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        }
        if !a.channels.contains_key(&number.0) && a.channels.len() >= max {
            return self.refuse(ft, msg, auth, QuotaLimit::Channels);
        }
        if a.channels
            .insert(
                number.0,
                Channel {
                    peer: peer.0,
                    expires: now + channel_lifetime,
                },
            )
            .is_none()
        {
            self.stats.channels += 1;
        }
        a.channel_by_peer.insert(peer.0, number.0);
        if a.permissions
            .insert(peer.0.ip(), now + permission_lifetime)
            .is_none()
        {
            self.stats.permissions += 1;
        }
        self.ok(ft, msg, auth, |_| Ok(()));
    }

    /// A Send indication (§11.2): relayed if a permission exists, else silently dropped.
    pub(super) fn client_send(&mut self, now: Instant, ft: &FiveTuple, msg: &Message<'_>) {
        let (Ok(Some(peer)), Ok(Some(data))) = (msg.get::<XorPeerAddress>(), msg.get::<Data>())
        else {
            self.stats.count_drop(DropReason::Malformed);
            return;
        };
        self.relay_to_peer(now, ft, peer.0, data.0);
    }

    /// ChannelData from a client (§12.6).
    pub(super) fn client_channel_data(&mut self, now: Instant, ft: &FiveTuple, bytes: &[u8]) {
        let Ok(cd) = ChannelData::parse_in_range(bytes, self.max_channel_number()) else {
            self.stats.count_drop(DropReason::Malformed);
            return;
        };
        let Some(a) = self.allocations.get(ft) else {
            self.stats.count_drop(DropReason::NoAllocation);
            return;
        };
        let peer = a
            .channels
            .get(&cd.channel)
            .filter(|c| c.expires > now)
            .map(|c| c.peer);
        match peer {
            Some(peer) => self.relay_to_peer(now, ft, peer, cd.data),
            None => self.stats.count_drop(DropReason::NoPermission),
        }
    }

    fn relay_to_peer(&mut self, now: Instant, ft: &FiveTuple, peer: SocketAddr, data: &[u8]) {
        let Some(a) = self.allocations.get(ft) else {
            self.stats.count_drop(DropReason::NoAllocation);
            return;
        };
        if a.tcp {
            // A TCP relay sends only over its data connections (RFC 6062 §4.5).
            self.stats.count_drop(DropReason::Unexpected);
            return;
        }
        let source = a.relayed_for(&peer).filter(|_| a.permitted(now, peer.ip()));
        let Some(source) = source else {
            self.stats.count_drop(DropReason::NoPermission);
            return;
        };
        if !self.admit(now, ft, data.len(), Direction::ToPeer) {
            return;
        }
        self.stats.packets_to_peers += 1;
        self.stats.bytes_to_peers += data.len() as u64;
        let destination = self.local_relay(peer);
        let mut out = self.buffer(0);
        out.extend_from_slice(data);
        self.transmits.push_back(Transmit {
            transport: Transport::Udp,
            source,
            destination,
            data: out,
        });
    }

    /// The address clients are told for the relay socket bound at `relayed`: its
    /// public address when the server is behind a 1:1 NAT
    /// ([`ServerConfig::external_ips`](super::ServerConfig::external_ips)).
    pub(super) fn advertised(&self, relayed: SocketAddr) -> SocketAddr {
        self.config
            .external_ips
            .iter()
            .find(|(_, private)| *private == relayed.ip())
            .map_or(relayed, |(public, _)| {
                SocketAddr::new(*public, relayed.port())
            })
    }

    /// Whether `addr` is a relay socket of this server: one of this worker's, or an
    /// address in the relay range that another worker of the same server holds.
    fn is_our_relay(&self, addr: SocketAddr) -> bool {
        self.by_relay.contains_key(&addr) || self.relays.in_relay_range(addr)
    }

    /// Where to send to `peer`: when it is the public address of one of this server's
    /// relay sockets, that socket's private address (so relay-to-relay paths need no
    /// hairpinning in the NAT); otherwise `peer` itself. Only the relay range is
    /// translated, so no client can reach other ports of the server's private address
    /// this way (any peer on the internet reaches the relay range anyway).
    fn local_relay(&self, peer: SocketAddr) -> SocketAddr {
        self.config
            .external_ips
            .iter()
            .filter(|(public, _)| *public == peer.ip())
            .map(|(_, private)| SocketAddr::new(*private, peer.port()))
            .find(|local| self.is_our_relay(*local))
            .unwrap_or(peer)
    }

    /// Whether `bytes` of payload fit the allocation's and its user's bandwidth caps
    /// (taking them, and counting them in the allocation's bytes for its direction, if
    /// so); a packet over either cap is counted in `over_cap`. One lookup of the
    /// allocation serves both, on the path every relayed packet takes.
    fn admit(&mut self, now: Instant, ft: &FiveTuple, bytes: usize, direction: Direction) -> bool {
        let Some(a) = self.allocations.get_mut(ft) else {
            return false;
        };
        let fits_allocation = a.bucket.as_mut().is_none_or(|b| b.fits(now, bytes));
        let mut user = a.user_bucket.as_ref().map(super::bandwidth::lock);
        let fits_user = user.as_mut().is_none_or(|b| b.fits(now, bytes));
        if !(fits_allocation && fits_user) {
            drop(user);
            self.stats.count_drop(DropReason::OverCap);
            return false;
        }
        if let Some(b) = user.as_mut() {
            b.take(bytes);
        }
        drop(user);
        if let Some(b) = a.bucket.as_mut() {
            b.take(bytes);
        }
        match direction {
            Direction::ToPeer => a.bytes_to_peers += bytes as u64,
            Direction::ToClient => a.bytes_to_clients += bytes as u64,
        }
        true
    }

    /// An ICMP error for a datagram the relay sent from `relayed` toward `peer` (§11.5):
    /// the runtime read it from the relay socket's error queue (`IP_RECVERR`). `peer` is
    /// the destination of the datagram that drew it (port 0 when unknown). Relayed to the
    /// client as a Data indication with XOR-PEER-ADDRESS and ICMP when the type is one
    /// §11.5 names (ICMPv4 3 or 11, ICMPv6 1, 2 or 3) and a permission covers the
    /// destination's IP address; silently dropped otherwise.
    pub fn handle_peer_icmp(
        &mut self,
        now: Instant,
        relayed: SocketAddr,
        peer: SocketAddr,
        icmp: floe_stun::attributes::Icmp,
    ) {
        let relevant = if relayed.is_ipv4() {
            matches!(icmp.icmp_type, 3 | 11)
        } else {
            matches!(icmp.icmp_type, 1..=3)
        };
        if !relevant {
            self.stats.count_drop(DropReason::Unexpected);
            return;
        }
        let Some(ft) = self.by_relay.get(&relayed).copied() else {
            self.stats.count_drop(DropReason::NoAllocation);
            return;
        };
        let Some(a) = self.allocations.get(&ft) else {
            self.stats.count_drop(DropReason::NoAllocation);
            return;
        };
        if a.expires <= now {
            self.stats.count_drop(DropReason::NoAllocation);
            return;
        }
        // §11.5: the destination's IP address against the permissions, ports ignored.
        if !a.permitted(now, peer.ip()) {
            self.stats.count_drop(DropReason::NoPermission);
            return;
        }
        let mut out = self.buffer(64);
        let tid = TransactionId(self.rng.gen());
        let built = (|| {
            let mut b = MessageBuilder::new(
                &mut out,
                MessageType::new(Method::DATA, Class::Indication),
                tid,
            )?;
            b.add(&XorPeerAddress(peer))?.add(&icmp)?;
            Ok::<_, floe_stun::Error>(b.len())
        })();
        let Ok(n) = built else {
            return;
        };
        out.truncate(n);
        self.stats.icmp_to_clients += 1;
        self.transmits.push_back(Transmit {
            transport: ft.transport,
            source: ft.server,
            destination: ft.client,
            data: out,
        });
    }

    /// A datagram from `peer` arriving at the relayed address `relayed` (§11.3, §12.7):
    /// forwarded to the client as ChannelData when a channel is bound, as a Data
    /// indication otherwise, and dropped without a permission.
    pub fn handle_peer(
        &mut self,
        now: Instant,
        relayed: SocketAddr,
        peer: SocketAddr,
        bytes: &[u8],
    ) {
        let Some(ft) = self.by_relay.get(&relayed).copied() else {
            self.stats.count_drop(DropReason::NoAllocation);
            return;
        };
        // Another of our relay sockets, seen by its private address: the client knows it
        // by the public one.
        let peer = if self.is_our_relay(peer) {
            self.advertised(peer)
        } else {
            peer
        };
        let Some(a) = self.allocations.get(&ft) else {
            self.stats.count_drop(DropReason::NoAllocation);
            return;
        };
        if a.expires <= now {
            self.stats.count_drop(DropReason::NoAllocation);
            return;
        }
        if !a.permitted(now, peer.ip()) {
            self.stats.count_drop(DropReason::NoPermission);
            return;
        }
        if !self.admit(now, &ft, bytes.len(), Direction::ToClient) {
            return;
        }
        let Some(a) = self.allocations.get(&ft) else {
            return;
        };
        let channel = a.channel_for_peer(now, &peer);
        let data = if let Some(ch) = channel {
            let mut out = self.buffer(bytes.len() + 8);
            match ChannelData::encode(ch, bytes, &mut out, ft.transport.is_stream()) {
                Ok(n) => {
                    out.truncate(n);
                    out
                }
                Err(_) => {
                    self.stats.count_drop(DropReason::TooLarge);
                    return;
                }
            }
        } else {
            let mut out = self.buffer(bytes.len() + 64);
            let tid = TransactionId(self.rng.gen());
            let built = (|| {
                let mut b = MessageBuilder::new(
                    &mut out,
                    MessageType::new(Method::DATA, Class::Indication),
                    tid,
                )?;
                b.add(&XorPeerAddress(peer))?.add(&Data(bytes))?;
                Ok::<_, floe_stun::Error>(b.len())
            })();
            match built {
                Ok(n) => {
                    out.truncate(n);
                    out
                }
                Err(_) => {
                    self.stats.count_drop(DropReason::TooLarge);
                    return;
                }
            }
        };
        self.stats.packets_to_clients += 1;
        self.stats.bytes_to_clients += bytes.len() as u64;
        self.transmits.push_back(Transmit {
            transport: ft.transport,
            source: ft.server,
            destination: ft.client,
            data,
        });
    }
}
