//! TURN-TCP (RFC 6062) in the server core: TCP allocations, Connect, ConnectionAttempt
//! and ConnectionBind. The core decides; the runtime holds the sockets. It connects
//! from the relayed address when told ([`TcpOp::Connect`], answered with
//! [`Server::handle_tcp_connected`]), asks before keeping a connection a peer opened to
//! a relayed address ([`Server::handle_tcp_peer_connection`]), joins a peer data
//! connection to a client data connection byte for byte when told ([`TcpOp::Bind`]),
//! closes what the core gives up ([`TcpOp::Close`]), and reports connections that end
//! ([`Server::handle_tcp_closed`]). Relayed bytes never pass through the core.
//!
//! Bounds: at most [`MAX_TCP_CONNECTIONS`] peer data connections per allocation
//! (connecting, waiting for their ConnectionBind, or joined), each waiting at most
//! [`BIND_TIMEOUT`] for its ConnectionBind (§5.2, §5.3: 30 s).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
// The 1 s sweep (running while any allocation exists, and every connection belongs to
// one) enforces the deadlines here.

use floe_stun::attributes::{ConnectionId, ErrorCode, XorPeerAddress};
use floe_stun::{Class, Message, MessageType, Method, TransactionId};
use rand::Rng;

use super::auth::Authenticated;
use super::{AuthFailure, FiveTuple, RelayAllocator, Server};
use crate::Transport;

/// Most peer data connections one TCP allocation has at once (508 for a Connect beyond,
/// an incoming connection closed).
pub const MAX_TCP_CONNECTIONS: usize = 32;
/// How long a peer data connection waits for its ConnectionBind (RFC 6062 §5.2, §5.3).
pub const BIND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the core waits for the runtime's answer to a [`TcpOp::Connect`] before
/// answering 447 itself (the runtime's own connection timeout is 30 s, §5.2).
pub const CONNECT_BACKSTOP: Duration = Duration::from_secs(45);

/// What the runtime does for TURN-TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpOp {
    /// Open a TCP connection from `relayed` to `peer` (at least 30 s before giving up)
    /// and answer with [`Server::handle_tcp_connected`].
    Connect {
        /// The CONNECTION-ID it will have.
        id: u32,
        /// The allocation's relayed address: the connection's local address.
        relayed: SocketAddr,
        /// The peer.
        peer: SocketAddr,
    },
    /// Join peer data connection `id` to the client data connection `client`
    /// (`local`, `remote` as the runtime gave them), after sending what the core queued
    /// for `client` (the ConnectionBind success). Bytes the peer sent meanwhile go first.
    Bind {
        /// The CONNECTION-ID.
        id: u32,
        /// The client connection's local (server) address.
        local: SocketAddr,
        /// The client connection's remote (client) address.
        remote: SocketAddr,
    },
    /// Close peer data connection `id` (and its client data connection, if joined).
    Close {
        /// The CONNECTION-ID.
        id: u32,
    },
}

#[derive(Debug)]
enum State {
    /// The runtime is connecting; the Connect request waits for the answer.
    Connecting {
        tid: TransactionId,
        auth: Box<Authenticated>,
        since: Instant,
    },
    /// Connected or accepted; waiting for a ConnectionBind until the deadline.
    Pending { deadline: Instant },
    /// Joined to a client data connection.
    Bound,
}

#[derive(Debug)]
struct Conn {
    allocation: FiveTuple,
    peer: SocketAddr,
    state: State,
}

/// Peer data connections of every TCP allocation, by CONNECTION-ID.
#[derive(Debug)]
pub(crate) struct TcpConns {
    conns: HashMap<u32, Conn>,
    ops: VecDeque<TcpOp>,
    /// (index, count): every CONNECTION-ID is `index` modulo `count`.
    shard: (u32, u32),
}

impl Default for TcpConns {
    fn default() -> TcpConns {
        TcpConns {
            conns: HashMap::new(),
            ops: VecDeque::new(),
            shard: (0, 1),
        }
    }
}

impl TcpConns {
    fn count_for(&self, allocation: &FiveTuple) -> usize {
        self.conns
            .values()
            .filter(|c| c.allocation == *allocation)
            .count()
    }

    /// Closes every connection of an allocation that ended (§5.5).
    pub(crate) fn close_allocation(&mut self, allocation: &FiveTuple) {
        let ids: Vec<u32> = self
            .conns
            .iter()
            .filter(|(_, c)| c.allocation == *allocation)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.conns.remove(&id);
            self.ops.push_back(TcpOp::Close { id });
        }
    }

    /// Peer data connections now (for tests and stats).
    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }
}

impl<R: RelayAllocator> Server<R> {
    /// The next thing the runtime must do for TURN-TCP.
    pub fn poll_tcp_op(&mut self) -> Option<TcpOp> {
        self.tcp.ops.pop_front()
    }

    /// Peer data connections alive (connecting, waiting for a ConnectionBind, joined).
    pub fn tcp_connections(&self) -> usize {
        self.tcp.len()
    }

    /// Makes every CONNECTION-ID of this server `index` modulo `count`, so a runtime
    /// with `count` workers can send a ConnectionBind, which may arrive on any worker's
    /// connection, to the worker that holds the peer connection (`id % count`).
    pub fn set_connection_id_shard(&mut self, index: u32, count: u32) {
        self.tcp.shard = (index.min(count.saturating_sub(1)), count.max(1));
    }

    /// A fresh CONNECTION-ID (random, so ids say nothing about other allocations), in
    /// this server's shard.
    fn new_connection_id(&mut self) -> u32 {
        let (index, count) = self.tcp.shard;
        loop {
            let r: u32 = self.rng.gen();
            let Some(id) = (r - r % count).checked_add(index) else {
                continue;
            };
            if !self.tcp.conns.contains_key(&id) {
                return id;
            }
        }
    }

    /// A Connect request (§5.2).
    pub(super) fn connect(
        &mut self,
        now: Instant,
        ft: &FiveTuple,
        msg: &Message<'_>,
        auth: &Authenticated,
    ) {
        let Some(a) = self.allocations.get(ft) else {
            return self.fail(ft, msg, ErrorCode::ALLOCATION_MISMATCH, auth);
        };
        if !a.tcp {
            // Connect means nothing to a UDP allocation.
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        }
        let Ok(Some(XorPeerAddress(peer))) = msg.get::<XorPeerAddress>() else {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        };
        let exists = self
            .tcp
            .conns
            .values()
            .any(|c| c.allocation == *ft && c.peer == peer);
        if exists {
            return self.fail(ft, msg, ErrorCode::CONNECTION_ALREADY_EXISTS, auth);
        }
        if let Err(code) = self.check_peer(ft, &peer) {
            return self.fail(ft, msg, code, auth);
        }
        let Some(relayed) = self.allocations.get(ft).and_then(|a| a.relayed_for(&peer)) else {
            return self.fail(ft, msg, ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH, auth);
        };
        if self.tcp.count_for(ft) >= MAX_TCP_CONNECTIONS {
            return self.refuse(ft, msg, auth, super::QuotaLimit::Connections);
        }
        let id = self.new_connection_id();
        self.tcp.conns.insert(
            id,
            Conn {
                allocation: *ft,
                peer,
                state: State::Connecting {
                    tid: msg.transaction_id(),
                    auth: Box::new(auth.clone()),
                    since: now,
                },
            },
        );
        self.tcp.ops.push_back(TcpOp::Connect { id, relayed, peer });
    }

    /// The runtime's answer to [`TcpOp::Connect`]: whether the connection to the peer is
    /// up. Returns whether the runtime should keep it as peer data connection `id`
    /// (false: close it; the Connect was answered already, or its allocation ended).
    pub fn handle_tcp_connected(&mut self, now: Instant, id: u32, connected: bool) -> bool {
        let Some(c) = self.tcp.conns.get_mut(&id) else {
            return false;
        };
        let State::Connecting { tid, auth, .. } = &c.state else {
            return false;
        };
        let (tid, auth, ft) = (*tid, (**auth).clone(), c.allocation);
        let typ = MessageType::new(Method::CONNECT, Class::Success);
        if connected {
            c.state = State::Pending {
                deadline: now + BIND_TIMEOUT,
            };
            self.respond(&ft, typ, tid, Some(&auth), |b| {
                b.add(&ConnectionId(id))?;
                Ok(())
            });
        } else {
            self.tcp.conns.remove(&id);
            self.respond(&ft, typ.with_class(Class::Error), tid, Some(&auth), |b| {
                b.add(&ErrorCode::CONNECTION_TIMEOUT_OR_FAILURE)?;
                Ok(())
            });
        }
        connected
    }

    /// A peer opened a TCP connection to `relayed` (§5.3). Returns its CONNECTION-ID if
    /// the runtime should keep it (the client is told with a ConnectionAttempt), or
    /// `None` to close it at once: no TCP allocation there, no permission for the peer,
    /// or the allocation's connections are full.
    pub fn handle_tcp_peer_connection(
        &mut self,
        now: Instant,
        relayed: SocketAddr,
        peer: SocketAddr,
    ) -> Option<u32> {
        let ft = *self.by_relay.get(&relayed)?;
        let a = self.allocations.get(&ft)?;
        if !a.tcp || !a.permitted(now, peer.ip()) {
            self.stats.count_drop(super::DropReason::NoPermission);
            return None;
        }
        if self.tcp.count_for(&ft) >= MAX_TCP_CONNECTIONS {
            return None;
        }
        let id = self.new_connection_id();
        self.tcp.conns.insert(
            id,
            Conn {
                allocation: ft,
                peer,
                state: State::Pending {
                    deadline: now + BIND_TIMEOUT,
                },
            },
        );
        let tid = TransactionId(self.rng.gen());
        let typ = MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication);
        self.respond(&ft, typ, tid, None, |b| {
            b.add(&XorPeerAddress(peer))?;
            b.add(&ConnectionId(id))?;
            Ok(())
        });
        Some(id)
    }

    /// Peer data connection `id` ended (either side closed, §5.5).
    pub fn handle_tcp_closed(&mut self, now: Instant, id: u32) {
        let _ = now;
        self.tcp.conns.remove(&id);
    }

    /// A ConnectionBind request (§5.4), authenticated, on a connection with no
    /// allocation.
    pub(super) fn connection_bind(
        &mut self,
        now: Instant,
        ft: &FiveTuple,
        msg: &Message<'_>,
        auth: &Authenticated,
    ) {
        if ft.transport != Transport::Tcp || self.allocations.contains_key(ft) {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        }
        let Ok(Some(ConnectionId(id))) = msg.get::<ConnectionId>() else {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        };
        let Some(c) = self.tcp.conns.get(&id) else {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        };
        if !matches!(c.state, State::Pending { deadline } if deadline > now) {
            return self.fail(ft, msg, ErrorCode::BAD_REQUEST, auth);
        }
        // §4.3: the same credentials as the control connection.
        let owner = self.allocations.get(&c.allocation).map(|a| &a.username);
        if owner != Some(&auth.username) {
            self.stats.auth_failures += 1;
            self.stats.count_auth_failure(AuthFailure::WrongCredentials);
            return self.fail(ft, msg, ErrorCode::WRONG_CREDENTIALS, auth);
        }
        if let Some(c) = self.tcp.conns.get_mut(&id) {
            c.state = State::Bound;
        }
        let typ = MessageType::new(Method::CONNECTION_BIND, Class::Success);
        self.respond(ft, typ, msg.transaction_id(), Some(auth), |_| Ok(()));
        self.tcp.ops.push_back(TcpOp::Bind {
            id,
            local: ft.server,
            remote: ft.client,
        });
    }

    /// Closes peer data connections whose ConnectionBind is overdue (§5.2, §5.3), and
    /// answers 447 to Connects the runtime never answered.
    pub(crate) fn sweep_tcp(&mut self, now: Instant) {
        let overdue: Vec<u32> = self
            .tcp
            .conns
            .iter()
            .filter(|(_, c)| match c.state {
                State::Pending { deadline } => deadline <= now,
                State::Connecting { since, .. } => since + CONNECT_BACKSTOP <= now,
                State::Bound => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in overdue {
            if matches!(
                self.tcp.conns.get(&id).map(|c| &c.state),
                Some(State::Connecting { .. })
            ) {
                self.handle_tcp_connected(now, id, false);
            } else {
                self.tcp.conns.remove(&id);
            }
            self.tcp.ops.push_back(TcpOp::Close { id });
        }
    }
}
