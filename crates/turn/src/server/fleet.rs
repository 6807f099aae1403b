//! Allocation quotas held outside the process, for a fleet of servers sharing users and
//! quotas (docs/fleet.md). With [`ServerConfig::fleet_quota`](super::ServerConfig::fleet_quota),
//! an authenticated Allocate that passes every local check is parked, and the server
//! asks its runtime for a place ([`FleetOp::Acquire`], from [`Server::poll_fleet_op`]).
//! The runtime asks the fleet's store (floe-server asks Redis) and answers with
//! [`Server::handle_fleet_answer`]; the parked request is then handled again with the
//! place granted, or refused: 486 when the user's quota is full across the fleet, 508
//! when the fleet is full, 500 when the store cannot be asked. Every allocation that
//! holds a place gives it back with [`FleetOp::Release`] when it ends. The packet path
//! never waits: only Allocates are parked, at most [`MAX_PARKED`] at once, each for at
//! most [`PARK_TIMEOUT`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use floe_stun::attributes::ErrorCode;
use floe_stun::Message;

use super::auth::Authenticated;
use super::{FiveTuple, QuotaLimit, RelayAllocator, Server};
use crate::Transport;

/// Most Allocates a server keeps waiting for the fleet's answer; beyond, 508.
pub const MAX_PARKED: usize = 1024;
/// Longest wait for the fleet's answer; then 500 (the runtime's own timeouts are
/// shorter, so this is a backstop).
pub const PARK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the server asks of the fleet's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetOp {
    /// Take a place for one allocation of `user`, if the user's and the fleet's quotas
    /// allow; answer with [`Server::handle_fleet_answer`] and this `ticket`.
    Acquire {
        /// Names this request in the answer.
        ticket: u64,
        /// The authenticated username.
        user: String,
    },
    /// Give back the place of one allocation of `user` (no answer).
    Release {
        /// The username whose allocation ended.
        user: String,
    },
}

/// The fleet's answer to a [`FleetOp::Acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetAnswer {
    /// The place is taken: the allocation may be made.
    Granted,
    /// The user has the most allocations the fleet allows them (486).
    UserFull,
    /// The fleet has the most allocations it allows (508).
    FleetFull,
    /// The store could not be asked (500, RFC 8489 §14.8).
    Unavailable,
}

/// An Allocate waiting for the fleet.
#[derive(Debug)]
struct Parked {
    ticket: u64,
    /// The transport as the runtime gave it (TLS, not the 5-tuple's TCP).
    transport: Transport,
    bytes: Vec<u8>,
    auth: Authenticated,
    deadline: Instant,
}

/// The parked Allocates and the operations for the runtime.
#[derive(Debug, Default)]
pub(crate) struct Fleet {
    next_ticket: u64,
    parked: HashMap<FiveTuple, Parked>,
    by_ticket: HashMap<u64, FiveTuple>,
    /// The 5-tuple whose parked Allocate is being handled again with its place granted;
    /// taken (set to `None`) when the allocation is made with it.
    granted: Option<FiveTuple>,
    ops: VecDeque<FleetOp>,
}

impl Fleet {
    pub(crate) fn release(&mut self, user: &str) {
        self.ops.push_back(FleetOp::Release {
            user: user.to_owned(),
        });
    }

    /// The earliest parked deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.parked.values().map(|p| p.deadline).min()
    }
}

/// What [`Server::fleet_gate`] decided for an Allocate.
pub(crate) enum Gate {
    /// Go on: fleet quotas are off, or this is the parked request with its place.
    Proceed,
    /// The request waits for the fleet (or was a retransmission of one that does), or
    /// was refused; nothing more to do now.
    Done,
}

impl<R: RelayAllocator> Server<R> {
    /// The next operation for the fleet's store.
    pub fn poll_fleet_op(&mut self) -> Option<FleetOp> {
        self.fleet.ops.pop_front()
    }

    /// The fleet's answer to the [`FleetOp::Acquire`] with `ticket`. Returns `false` if
    /// no request waits for it any more (it timed out); a runtime that granted the
    /// place must then give it back itself.
    pub fn handle_fleet_answer(&mut self, now: Instant, ticket: u64, answer: FleetAnswer) -> bool {
        let Some(ft) = self.fleet.by_ticket.remove(&ticket) else {
            return false;
        };
        let Some(p) = self.fleet.parked.remove(&ft) else {
            return false;
        };
        match answer {
            FleetAnswer::Granted => {
                // The request is handled again from the start (its nonce, the drain
                // state and the local limits may have changed); only the fleet's place
                // is taken for granted. A place the allocation did not take goes back.
                self.fleet.granted = Some(ft);
                self.handle_client(now, p.transport, ft.server, ft.client, &p.bytes);
                if self.fleet.granted.take().is_some() {
                    self.fleet.release(&p.auth.username);
                }
            }
            FleetAnswer::UserFull | FleetAnswer::FleetFull | FleetAnswer::Unavailable => {
                self.over_tls = p.transport == Transport::Tls;
                if let Ok(msg) = Message::parse(&p.bytes) {
                    match answer {
                        FleetAnswer::UserFull => {
                            self.refuse(&ft, &msg, &p.auth, QuotaLimit::UserAllocations);
                        }
                        FleetAnswer::FleetFull => {
                            self.refuse(&ft, &msg, &p.auth, QuotaLimit::Allocations);
                        }
                        _ => self.fail(&ft, &msg, ErrorCode::SERVER_ERROR, &p.auth),
                    }
                }
            }
        }
        true
    }

    /// For an Allocate that passed every local check: with fleet quotas on, parks it
    /// and asks for a place, unless it is the parked request coming back granted.
    pub(crate) fn fleet_gate(
        &mut self,
        now: Instant,
        ft: &FiveTuple,
        msg: &Message<'_>,
        auth: &Authenticated,
    ) -> Gate {
        if !self.config.fleet_quota || self.fleet.granted == Some(*ft) {
            return Gate::Proceed;
        }
        if self.fleet.parked.contains_key(ft) {
            // A retransmission (or another Allocate) while the first one waits.
            return Gate::Done;
        }
        if self.fleet.parked.len() >= MAX_PARKED {
            self.refuse(ft, msg, auth, QuotaLimit::Allocations);
            return Gate::Done;
        }
        let ticket = self.fleet.next_ticket;
        self.fleet.next_ticket = ticket.wrapping_add(1);
        let transport = if self.over_tls {
            Transport::Tls
        } else {
            ft.transport
        };
        self.fleet.parked.insert(
            *ft,
            Parked {
                ticket,
                transport,
                bytes: msg.as_bytes().to_vec(),
                auth: auth.clone(),
                deadline: now + PARK_TIMEOUT,
            },
        );
        self.fleet.by_ticket.insert(ticket, *ft);
        self.fleet.ops.push_back(FleetOp::Acquire {
            ticket,
            user: auth.username.clone(),
        });
        Gate::Done
    }

    /// Marks the fleet's place as taken by the allocation being made; returns whether
    /// the allocation holds one (and must give it back when it ends).
    pub(crate) fn fleet_take(&mut self, ft: &FiveTuple) -> bool {
        if self.fleet.granted == Some(*ft) {
            self.fleet.granted = None;
            return true;
        }
        false
    }

    /// Answers 500 to parked Allocates whose answer is overdue.
    pub(crate) fn sweep_fleet(&mut self, now: Instant) {
        let overdue: Vec<u64> = self
            .fleet
            .parked
            .values()
            .filter(|p| p.deadline <= now)
            .map(|p| p.ticket)
            .collect();
        for ticket in overdue {
            self.handle_fleet_answer(now, ticket, FleetAnswer::Unavailable);
        }
    }

    /// Allocates waiting for the fleet.
    pub fn fleet_parked(&self) -> usize {
        self.fleet.parked.len()
    }
}
