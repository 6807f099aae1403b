//! Keeping the allocation alive (RFC 8656 §8 Refresh), and permission refresh (§9) and
//! channel-binding refresh (§12), each a little before the server would let it lapse
//! ([`super::ClientConfig`]'s `permission_refresh` and `channel_refresh`).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::requests::Request;
use super::{Client, ClientState, TurnError};

#[derive(Debug, Clone, Copy)]
pub(super) struct Permission {
    pub(super) installed: bool,
    pub(super) in_flight: bool,
    pub(super) refresh_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Channel {
    pub(super) number: u16,
    pub(super) bound: bool,
    pub(super) in_flight: bool,
    pub(super) refresh_at: Option<Instant>,
}

impl Client {
    /// Refreshes what is due while allocated: the allocation a minute before it expires
    /// (§8.1), permissions before their 300 s run out (§9.1: the client refreshes a
    /// permission it still needs), and channel bindings before their 600 s (§12.1). An
    /// allocation past its lifetime is lost.
    pub(super) fn refresh_due(&mut self, now: Instant) {
        if self.state != ClientState::Allocated {
            return;
        }
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

    /// The instants [`Client::refresh_due`] acts at.
    pub(super) fn refresh_deadlines(&self) -> impl Iterator<Item = Instant> + '_ {
        let permissions = self
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
        permissions
            .chain(channels)
            .chain(allocation)
            .chain(self.expires)
    }
}
