//! What a response does to the allocation: integrity and comprehension checks (RFC 8489
//! §9.2.5, §6.3.3/§6.3.4), the 401/438 retry, 300 redirects, and the outcome of each
//! request (RFC 8656 §7.3 Allocate, §8 Refresh, §9 CreatePermission, §12 ChannelBind).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_stun::attributes::{
    AddressErrorCode, AddressErrorCodeDraft, AddressFamily, AlternateDomain, AlternateServer,
    ErrorCode, Lifetime, UnknownAttributes, XorMappedAddress, XorRelayedAddress,
};
use floe_stun::{Class, Message};

use super::refresh::{Channel, Permission};
use super::requests::{method_of, Request};
use super::{Client, ClientState, Event, TurnError};

/// Most 401/438 rounds per request before giving up.
const MAX_AUTH_RETRIES: u8 = 3;

impl Client {
    pub(super) fn handle_response(&mut self, now: Instant, msg: &Message<'_>) {
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
                    Ok(Some(a)) => TurnError::TryAlternate {
                        server: a.0,
                        domain: msg
                            .get::<AlternateDomain>()
                            .ok()
                            .flatten()
                            .map(|d| d.0.to_owned()),
                    },
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

    pub(super) fn on_success(&mut self, now: Instant, request: Request, msg: &Message<'_>) {
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
                let address_error = msg.get::<AddressErrorCode>().ok().flatten().or_else(|| {
                    msg.get::<AddressErrorCodeDraft>()
                        .ok()
                        .flatten()
                        .map(|d| d.0)
                });
                if let Some(e) = address_error {
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
            Request::Connect(peer) => self.on_connected(peer, msg),
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
    pub(super) fn unusable_relayed(&self, relayed: &[SocketAddr]) -> Option<&'static str> {
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

    pub(super) fn on_failure(&mut self, now: Instant, request: Request, error: TurnError) {
        tracing::debug!(?request, %error, "TURN request failed");
        match request {
            // A dual allocation (IPv4 plus ADDITIONAL-ADDRESS-FAMILY IPv6) to a server
            // without IPv4 relays fails with 440 as a whole (RFC 8656 §7.2): ask again
            // for the IPv6 relay alone.
            Request::Allocate
                if error == TurnError::AddressFamilyNotSupported && self.config.dual_stack =>
            {
                self.config.dual_stack = false;
                self.config.family = AddressFamily::Ipv6;
                self.send_request(now, Request::Allocate, 0);
            }
            Request::Allocate => {
                self.state = ClientState::Closed;
                self.pending.clear();
                self.events.push_back(Event::AllocationFailed(error));
            }
            Request::Connect(peer) => {
                self.events.push_back(Event::TcpConnectFailed(peer, error));
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

    pub(super) fn lose(&mut self, error: TurnError) {
        if self.state == ClientState::Closed {
            return;
        }
        self.state = ClientState::Closed;
        self.pending.clear();
        self.events.push_back(Event::AllocationLost(error));
    }

    pub(super) fn finish_deallocation(&mut self) {
        self.state = ClientState::Closed;
        self.pending.clear();
        self.events.push_back(Event::Deallocated);
    }

    pub(super) fn set_lifetime(&mut self, now: Instant, lifetime: Duration) {
        self.expires = Some(now + lifetime);
        // Refresh a minute early, or at half the lifetime for short ones.
        let early = Duration::from_secs(60).min(lifetime / 2);
        self.refresh_at = Some(now + lifetime.saturating_sub(early));
    }
}
