//! RESERVATION-TOKENs (RFC 8656 §7.2 step 6 and §14.9): the relayed address a server
//! keeps for a client's next Allocate after one with EVEN-PORT R set.
//!
//! The table is shared by every worker of one server process. The client's second
//! Allocate comes from another 5-tuple (usually another local port), and the kernel's
//! SO_REUSEPORT hash may hand it to a different worker than the one that made the
//! token; a table per worker answered that Allocate with 508 about half the time
//! (turnutils_uclient with two workers). The lock is taken on Allocate and on the 1 s
//! sweep, never on the packet path. The worker that redeems a token takes the address
//! over with [`RelayAllocator::claim`](super::RelayAllocator::claim).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// The reservation tokens of one server process, shared through an `Arc` by every
/// worker's [`Server`](super::Server)
/// ([`ServerConfig::reservations`](super::ServerConfig::reservations)).
#[derive(Debug, Default)]
pub struct SharedReservations {
    inner: Mutex<HashMap<[u8; 8], (SocketAddr, Instant)>>,
}

impl SharedReservations {
    /// An empty table.
    pub fn new() -> SharedReservations {
        SharedReservations::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 8], (SocketAddr, Instant)>> {
        // A worker that panicked holding the lock ends the process (floe serve's
        // backstop); the map itself is consistent between statements.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `addr` for `token` until `expires`, unless `max` tokens are held already
    /// (a bound on the table whatever clients ask) or the token exists (a 64-bit
    /// collision; the caller then makes no reservation). Returns whether it was kept.
    pub(crate) fn insert(
        &self,
        token: [u8; 8],
        addr: SocketAddr,
        expires: Instant,
        max: usize,
    ) -> bool {
        let mut map = self.lock();
        if map.len() >= max || map.contains_key(&token) {
            return false;
        }
        map.insert(token, (addr, expires));
        true
    }

    /// Whether `max` tokens are held already.
    pub(crate) fn is_full(&self, max: usize) -> bool {
        self.lock().len() >= max
    }

    /// Redeems `token`: its address and when it expires, once.
    pub(crate) fn take(&self, token: [u8; 8]) -> Option<(SocketAddr, Instant)> {
        self.lock().remove(&token)
    }

    /// Removes the tokens that expired by `now` and returns their addresses, for the
    /// caller to release.
    pub(crate) fn take_expired(&self, now: Instant) -> Vec<SocketAddr> {
        let mut map = self.lock();
        let mut dead = Vec::new();
        map.retain(|_, (addr, expires)| {
            let keep = *expires > now;
            if !keep {
                dead.push(*addr);
            }
            keep
        });
        dead
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tokens_are_redeemed_once_bounded_and_swept_when_expired() {
        let t = SharedReservations::new();
        let now = Instant::now();
        let a: SocketAddr = "192.0.2.1:50001".parse().unwrap();
        let b: SocketAddr = "192.0.2.1:50003".parse().unwrap();
        assert!(t.insert([1; 8], a, now + Duration::from_secs(30), 2));
        assert!(
            !t.insert([1; 8], b, now + Duration::from_secs(30), 2),
            "collision"
        );
        assert!(t.insert([2; 8], b, now + Duration::from_secs(1), 2));
        assert!(t.is_full(2));
        assert!(!t.insert([3; 8], b, now, 2), "bounded");
        assert_eq!(t.take_expired(now + Duration::from_secs(1)), vec![b]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.take([1; 8]), Some((a, now + Duration::from_secs(30))));
        assert_eq!(t.take([1; 8]), None);
        assert!(t.is_empty());
    }
}
