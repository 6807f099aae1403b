//! The fast path: while the selected pair is direct (not relayed) and consent holds
//! (RFC 7675), application data skips the driver task both ways. Senders write straight
//! to the pair's socket from the caller's slice ([`DataSender`]); socket readers
//! ([`crate::socket_reader`]) hand the pair's datagrams straight to the application, a
//! batch at a time. The driver
//! publishes the pair in a `watch` ([`FastPaths::update`]) and adds the bytes it never
//! saw to the pair's stats ([`FastPaths::add_counters`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use floe_ice::{Agent, CandidateKind, ConnectionState, PairState, PairStats, Transport};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::config::PeerError;
use crate::driver::Command;

/// The selected pair when data can skip the driver task: a direct (not relayed) local
/// candidate, consent valid.
#[derive(Debug, Clone)]
pub(crate) struct FastPath {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    remote: SocketAddr,
    /// Bytes that went by the agent, added to the pair's stats.
    counters: Arc<FastCounters>,
}

impl FastPath {
    /// Whether datagrams on `local` from `remote` are this path's.
    pub(crate) fn carries(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        self.local == local && self.remote == remote
    }

    /// Counts `packets` datagrams of `bytes` in all received on the path.
    pub(crate) fn count_received(&self, bytes: u64, packets: u64) {
        self.counters.received.fetch_add(bytes, Ordering::Relaxed);
        self.counters
            .received_packets
            .fetch_add(packets, Ordering::Relaxed);
    }
}

/// Application bytes carried on a fast path (relaxed atomics: one add per datagram).
#[derive(Debug, Default)]
struct FastCounters {
    sent: AtomicU64,
    received: AtomicU64,
    sent_packets: AtomicU64,
    received_packets: AtomicU64,
    /// `received` when the driver last looked ([`FastPaths::heard`]).
    seen: AtomicU64,
}

/// The driver's side: publishes the fast path and keeps its byte counters per pair.
#[derive(Debug)]
pub(crate) struct FastPaths {
    tx: watch::Sender<Option<FastPath>>,
    /// Fast-path byte counters per (local, remote) pair, for `stats`.
    counters: Mutex<HashMap<(SocketAddr, SocketAddr), Arc<FastCounters>>>,
}

impl FastPaths {
    /// No fast path yet; the receiver goes to senders and socket readers.
    pub(crate) fn new() -> (FastPaths, watch::Receiver<Option<FastPath>>) {
        let (tx, rx) = watch::channel(None);
        (
            FastPaths {
                tx,
                counters: Mutex::default(),
            },
            rx,
        )
    }

    /// Publishes the selected pair as the fast path while it is direct and consent holds
    /// (RFC 7675: no sending without consent, so a lost consent withdraws it at once).
    pub(crate) fn update(&self, agent: &Agent, sockets: &HashMap<SocketAddr, Arc<UdpSocket>>) {
        let usable = matches!(
            agent.connection_state(),
            ConnectionState::Connected | ConnectionState::Completed
        );
        let fast = agent
            .selected_pair()
            .filter(|p| {
                usable && p.local_kind != CandidateKind::Relayed && p.transport == Transport::Udp
            })
            .and_then(|p| {
                let counters = self
                    .counters
                    .lock()
                    .ok()?
                    .entry((p.local, p.remote))
                    .or_default()
                    .clone();
                sockets.get(&p.local).map(|socket| FastPath {
                    socket: socket.clone(),
                    local: p.local,
                    remote: p.remote,
                    counters,
                })
            });
        let changed = match (&*self.tx.borrow(), &fast) {
            (Some(a), Some(b)) => a.local != b.local || a.remote != b.remote,
            (None, None) => false,
            _ => true,
        };
        if changed {
            self.tx.send_replace(fast);
        }
    }

    /// The pairs that received data on the fast path since the last call: the agent
    /// never saw it, and must not think them quiet (`Agent::handle_data_received`).
    pub(crate) fn heard(&self) -> Vec<(SocketAddr, SocketAddr)> {
        let Ok(fast) = self.counters.lock() else {
            return Vec::new();
        };
        fast.iter()
            .filter(|(_, c)| {
                let received = c.received.load(Ordering::Relaxed);
                c.seen.swap(received, Ordering::Relaxed) != received
            })
            .map(|(pair, _)| *pair)
            .collect()
    }

    /// Adds the bytes and datagrams that took the fast path to the agent's pair stats (the
    /// last-packet times stay the agent's own: the fast path reads no clock).
    pub(crate) fn add_counters(
        &self,
        pairs: &mut [(SocketAddr, SocketAddr, PairState, PairStats)],
    ) {
        let Ok(fast) = self.counters.lock() else {
            return;
        };
        for (local, remote, _, stats) in pairs {
            if let Some(c) = fast.get(&(*local, *remote)) {
                stats.bytes_sent += c.sent.load(Ordering::Relaxed);
                stats.bytes_received += c.received.load(Ordering::Relaxed);
                stats.packets_sent += c.sent_packets.load(Ordering::Relaxed);
                stats.packets_received += c.received_packets.load(Ordering::Relaxed);
            }
        }
    }
}

/// Sends datagrams on a [`PeerConnection`](crate::PeerConnection) from any task.
#[derive(Debug, Clone)]
pub struct DataSender {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) fast: watch::Receiver<Option<FastPath>>,
}

impl DataSender {
    /// Sends one datagram to the peer on the selected path: straight from `data` to the
    /// socket on a direct path (no copy), through the agent when relayed.
    pub async fn send(&self, data: &[u8]) -> Result<(), PeerError> {
        let fast = self.fast.borrow().clone();
        if let Some(path) = fast {
            path.socket
                .send_to(data, path.remote)
                .await
                .map_err(PeerError::Io)?;
            path.counters
                .sent
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            path.counters.sent_packets.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.commands
            .send(Command::Send(data.to_vec()))
            .await
            .map_err(|_| PeerError::Closed)
    }
}
