//! Allocation quotas shared by the workers of one server process: `max_allocations` and
//! `max_allocations_per_user` (RFC 8656 §7.2: 486 Allocation Quota Reached, 508
//! Insufficient Capacity) hold for the whole process, not per worker. The lock is taken
//! on Allocate and when an allocation ends, never on the packet path.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Why an allocation was refused a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The user has `max_allocations_per_user` already (486).
    User,
    /// The server has `max_allocations` already (508).
    Server,
}

/// Counts of live allocations, in total and per user, shared through an `Arc` by every
/// worker's [`Server`](super::Server) ([`ServerConfig::quota`](super::ServerConfig::quota)).
#[derive(Debug, Default)]
pub struct SharedQuota {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_user: HashMap<String, usize>,
}

impl SharedQuota {
    /// Empty counts.
    pub fn new() -> SharedQuota {
        SharedQuota::default()
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // A worker that panicked holding the lock ends the process (floe serve's
        // backstop); the counts themselves are always consistent between statements.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place for one allocation of `user`, or says which limit is reached.
    pub(crate) fn acquire(
        &self,
        user: &str,
        max_total: usize,
        max_user: usize,
    ) -> Result<(), Full> {
        let mut c = self.lock();
        if c.per_user.get(user).copied().unwrap_or(0) >= max_user {
            return Err(Full::User);
        }
        if c.total >= max_total {
            return Err(Full::Server);
        }
        c.total += 1;
        *c.per_user.entry(user.to_owned()).or_insert(0) += 1;
        Ok(())
    }

    /// Whether an allocation of `user` would get a place now (an early, cheap check).
    pub(crate) fn check(&self, user: &str, max_total: usize, max_user: usize) -> Result<(), Full> {
        let c = self.lock();
        if c.per_user.get(user).copied().unwrap_or(0) >= max_user {
            return Err(Full::User);
        }
        if c.total >= max_total {
            return Err(Full::Server);
        }
        Ok(())
    }

    /// Gives back the place of one allocation of `user`.
    pub(crate) fn release(&self, user: &str) {
        let mut c = self.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_user.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_user.remove(user);
            }
        }
    }

    /// Live allocations over all workers.
    pub fn allocations(&self) -> usize {
        self.lock().total
    }

    /// Live allocations of `user` over all workers.
    pub fn allocations_of(&self, user: &str) -> usize {
        self.lock().per_user.get(user).copied().unwrap_or(0)
    }
}
