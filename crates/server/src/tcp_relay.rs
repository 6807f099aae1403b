//! TURN-TCP (RFC 6062) sockets: the relayed TCP listeners, connections from relayed
//! addresses to peers, and the byte-for-byte join of a peer data connection to a client
//! data connection. The core (floe-turn's `tcp.rs`) decides every step; this holds the
//! sockets it decides about.
//!
//! A relayed TCP address is a listener with `SO_REUSEPORT`, so a Connect can bind its
//! outgoing connection to the same address (§5.2: the local endpoint is the relayed
//! transport address). Ports are handed out once per process (the workers share the
//! set); give each server process its own relay ports or address.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::Inbound;

/// How long a Connect may take (RFC 6062 §5.2: at least 30 s).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// TCP relay ports in use in this process, shared by the workers: `SO_REUSEPORT` would
/// let two listeners share a port without an error.
pub(crate) type TcpPorts = Arc<Mutex<HashSet<SocketAddr>>>;

/// TURN-TCP traffic, which never passes through the core: counted here, live, by the
/// joins of every worker, and served as metrics.
#[derive(Debug, Default)]
pub struct TcpRelayCounters {
    to_peers: std::sync::atomic::AtomicU64,
    to_clients: std::sync::atomic::AtomicU64,
    joined: std::sync::atomic::AtomicU64,
}

impl TcpRelayCounters {
    /// Bytes relayed from clients to peers over TCP relays.
    pub fn bytes_to_peers(&self) -> u64 {
        self.to_peers.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// Bytes relayed from peers to clients over TCP relays.
    pub fn bytes_to_clients(&self) -> u64 {
        self.to_clients.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// Joined data connection pairs now.
    pub fn joined(&self) -> u64 {
        self.joined.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A peer data connection handed to a client data connection: join them.
#[derive(Debug)]
pub(crate) struct Bound {
    pub(crate) id: u32,
    pub(crate) peer: TcpStream,
    /// Fires (or is dropped) when the core closes the connection.
    pub(crate) close: oneshot::Receiver<()>,
}

/// A client connection's wait for the core's verdict on its ConnectionBind.
pub(crate) type BindReply = oneshot::Sender<Option<Bound>>;

/// The relayed TCP listeners of one worker.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    tasks: HashMap<SocketAddr, JoinHandle<()>>,
}

impl Listeners {
    /// Listens on `addr` (a free port of the relay range, or an error) and hands every
    /// peer connection to the core.
    pub(crate) fn listen(
        &mut self,
        addr: SocketAddr,
        ports: &TcpPorts,
        inbound: &mpsc::Sender<Inbound>,
    ) -> Option<SocketAddr> {
        if !lock(ports).insert(addr) {
            return None;
        }
        let Ok(listener) = crate::listen::tcp(addr, true) else {
            lock(ports).remove(&addr);
            return None;
        };
        let tx = inbound.clone();
        let task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        crate::streams::accept_failed(&e).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let ev = Inbound::PeerTcp {
                    relayed: addr,
                    peer,
                    stream,
                };
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        });
        self.tasks.insert(addr, task);
        Some(addr)
    }

    /// Stops listening on `addr`; returns whether it was a TCP relay.
    pub(crate) fn close(&mut self, addr: SocketAddr, ports: &TcpPorts) -> bool {
        let Some(task) = self.tasks.remove(&addr) else {
            return false;
        };
        task.abort();
        lock(ports).remove(&addr);
        true
    }

    pub(crate) fn close_all(&mut self, ports: &TcpPorts) {
        for (addr, task) in self.tasks.drain() {
            task.abort();
            lock(ports).remove(&addr);
        }
    }
}

fn lock(ports: &TcpPorts) -> std::sync::MutexGuard<'_, HashSet<SocketAddr>> {
    ports.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Connects from `relayed` to `peer` (RFC 6062 §5.2) and tells the core how it went.
pub(crate) fn connect(
    id: u32,
    relayed: SocketAddr,
    peer: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
) {
    tokio::spawn(async move {
        let attempt = async {
            let s = if relayed.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            s.set_reuseaddr(true)?;
            s.set_reuseport(true)?;
            s.bind(relayed)?;
            s.connect(peer).await
        };
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Some(s)
            }
            Ok(Err(e)) => {
                tracing::debug!(%relayed, %peer, error = %e, "TURN-TCP connect failed");
                None
            }
            Err(_) => None,
        };
        let _ = inbound.send(Inbound::TcpConnected { id, stream }).await;
    });
}

/// What a worker's core holds for TURN-TCP: peer data connections waiting for their
/// ConnectionBind, the close signals of joined ones, and client connections waiting
/// for the verdict on theirs.
#[derive(Debug, Default)]
pub(crate) struct TcpRuntime {
    pending: HashMap<u32, TcpStream>,
    active: HashMap<u32, oneshot::Sender<()>>,
    binds: HashMap<(SocketAddr, SocketAddr), BindReply>,
    /// Other workers' client connections whose writers this core holds for the answer
    /// to their ConnectionBind only.
    borrowed: Vec<(SocketAddr, SocketAddr)>,
}

impl TcpRuntime {
    pub(crate) fn keep(&mut self, id: u32, stream: TcpStream) {
        self.pending.insert(id, stream);
    }

    pub(crate) fn borrowed(&mut self, local: SocketAddr, remote: SocketAddr) {
        self.borrowed.push((local, remote));
    }

    pub(crate) fn take_borrowed(&mut self) -> Vec<(SocketAddr, SocketAddr)> {
        std::mem::take(&mut self.borrowed)
    }

    pub(crate) fn wait_bind(&mut self, local: SocketAddr, remote: SocketAddr, reply: BindReply) {
        self.binds.insert((local, remote), reply);
    }

    /// Joins peer data connection `id` to the client connection waiting on
    /// (`local`, `remote`); false if either is gone.
    pub(crate) fn bind(&mut self, id: u32, local: SocketAddr, remote: SocketAddr) -> bool {
        let (Some(peer), Some(reply)) = (
            self.pending.remove(&id),
            self.binds.remove(&(local, remote)),
        ) else {
            return false;
        };
        let (close_tx, close) = oneshot::channel();
        if reply.send(Some(Bound { id, peer, close })).is_err() {
            return false;
        }
        self.active.insert(id, close_tx);
        true
    }

    /// Closes connection `id`, pending or joined.
    pub(crate) fn close(&mut self, id: u32) {
        self.pending.remove(&id);
        if let Some(close) = self.active.remove(&id) {
            let _ = close.send(());
        }
    }

    /// A joined connection ended by itself.
    pub(crate) fn ended(&mut self, id: u32) {
        self.active.remove(&id);
    }

    /// Client connections whose ConnectionBind failed: they stay STUN connections.
    pub(crate) fn refuse_unbound(&mut self) {
        for (_, reply) in self.binds.drain() {
            let _ = reply.send(None);
        }
    }
}

/// Relays bytes both ways between a client data connection (`client_rd` and the
/// connection's writer queue `to_client`) and its peer, after sending `leftover` (what
/// the client sent right behind its ConnectionBind) to the peer, until either side
/// closes or the core closes it (§5.5).
pub(crate) async fn join<R: AsyncRead + Unpin>(
    mut client_rd: R,
    to_client: mpsc::Sender<Vec<u8>>,
    bound: Bound,
    leftover: Vec<u8>,
    counters: &TcpRelayCounters,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let Bound {
        peer, mut close, ..
    } = bound;
    counters.joined.fetch_add(1, Relaxed);
    let (mut peer_rd, mut peer_wr) = peer.into_split();
    let up = async {
        // Counted before each write, so a byte the other side has seen is counted.
        counters.to_peers.fetch_add(leftover.len() as u64, Relaxed);
        if !leftover.is_empty() && peer_wr.write_all(&leftover).await.is_err() {
            return;
        }
        copy(&mut client_rd, &mut peer_wr, &counters.to_peers).await;
        let _ = peer_wr.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match peer_rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let Some(data) = buf.get(..n) else { return };
            counters.to_clients.fetch_add(n as u64, Relaxed);
            // The writer queue is bounded: a slow client slows the peer (TCP's window).
            if to_client.send(data.to_vec()).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
        _ = &mut close => {}
    }
    counters.joined.fetch_sub(1, Relaxed);
}

async fn copy<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    rd: &mut R,
    wr: &mut W,
    count: &std::sync::atomic::AtomicU64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let Some(data) = buf.get(..n) else { return };
        count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        if wr.write_all(data).await.is_err() {
            return;
        }
    }
}
