//! The tasks reading a peer connection's UDP sockets. Datagrams on the selected direct
//! pair (the [fast path](crate::fast_path)) go straight to the application, a batch per
//! channel operation; STUN and everything else goes to the driver.
//!
//! On Linux the socket is read with quinn-udp (`recvmmsg`, and GRO: one buffer may hold
//! several datagrams of one sender, split by the kernel's stride), so one system call
//! takes up to [`SLOTS`] buffers; quinn-udp does the system calls (the only unsafe code
//! is in that well-kept crate). Each datagram is copied once, from the receive buffers
//! into a shared arena handed out as `Bytes` (one allocation per arena, not per
//! datagram). Where quinn-udp cannot be set up, one datagram is read at a time, straight
//! into the arena.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use quinn_udp::{RecvMeta, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::fast_path::FastPath;

/// Buffers per system call: 512 KiB of receive buffers per socket.
pub(crate) const SLOTS: usize = 8;
/// Bytes per receive buffer: one datagram of any size, or a GRO batch (at most 64 KiB).
const SLOT: usize = 65_536;
/// The arena datagrams are handed out from.
const ARENA: usize = 256 * 1024;

/// Datagrams for the application, in arrival order: one (no allocation for the batch,
/// the usual case at low rates), or several.
#[derive(Debug)]
pub(crate) enum Received {
    One(Bytes),
    Many(Vec<Bytes>),
}

/// Where a socket's datagrams go.
pub(crate) struct Outlets {
    /// To the driver: (local, remote, datagram).
    pub(crate) driver: mpsc::Sender<(SocketAddr, SocketAddr, Bytes)>,
    /// The selected pair, when data may skip the driver.
    pub(crate) fast: watch::Receiver<Option<FastPath>>,
    /// To the application.
    pub(crate) data: mpsc::Sender<Received>,
}

/// Reads one socket until the driver is gone.
pub(crate) async fn read_socket(socket: Arc<UdpSocket>, local: SocketAddr, out: Outlets) {
    let state = match UdpSocketState::new((&*socket).into()) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%local, error = %e, "no batched UDP receive; reading one datagram at a time");
            return read_one_at_a_time(socket, local, out).await;
        }
    };
    let mut storage = vec![0u8; SLOTS * SLOT];
    let mut meta = vec![RecvMeta::default(); SLOTS];
    let mut arena = BytesMut::with_capacity(ARENA);
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        loop {
            let got = {
                let mut bufs: Vec<IoSliceMut<'_>> =
                    storage.chunks_mut(SLOT).map(IoSliceMut::new).collect();
                socket.try_io(Interest::READABLE, || {
                    state.recv((&*socket).into(), &mut bufs, &mut meta)
                })
            };
            let n = match got {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ICMP errors (ECONNREFUSED) are per datagram; the socket stays usable.
                Err(_) => continue,
            };
            let mut batch = Batch::new(&out.fast, local);
            for (m, buf) in meta.iter().zip(storage.chunks(SLOT)).take(n) {
                let Some(filled) = buf.get(..m.len) else {
                    continue;
                };
                for datagram in filled.chunks(m.stride.max(1)) {
                    if arena.capacity() < datagram.len() {
                        arena = BytesMut::with_capacity(ARENA.max(datagram.len()));
                    }
                    arena.extend_from_slice(datagram);
                    let datagram = arena.split().freeze();
                    if let Some(d) = batch.take(m.addr, datagram) {
                        if out.driver.send((local, m.addr, d)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            batch.deliver(&out.data);
        }
    }
}

/// The fast-path datagrams of one system call, counted and sent to the application at
/// once.
struct Batch {
    path: Option<FastPath>,
    local: SocketAddr,
    data: Vec<Bytes>,
    bytes: u64,
}

impl Batch {
    fn new(fast: &watch::Receiver<Option<FastPath>>, local: SocketAddr) -> Batch {
        Batch {
            path: fast.borrow().clone(),
            local,
            data: Vec::new(),
            bytes: 0,
        }
    }

    /// Keeps `datagram` for the application if it is application data on the fast path
    /// (not STUN: first byte 0-3, RFC 7983); otherwise gives it back for the driver.
    fn take(&mut self, remote: SocketAddr, datagram: Bytes) -> Option<Bytes> {
        let fast = datagram.first().is_some_and(|b| *b > 3)
            && self
                .path
                .as_ref()
                .is_some_and(|p| p.carries(self.local, remote));
        if !fast {
            return Some(datagram);
        }
        self.bytes += datagram.len() as u64;
        self.data.push(datagram);
        None
    }

    fn deliver(self, data: &mpsc::Sender<Received>) {
        let (Some(path), false) = (self.path, self.data.is_empty()) else {
            return;
        };
        path.count_received(self.bytes, self.data.len() as u64);
        let mut batch = self.data;
        let received = if batch.len() == 1 {
            batch
                .pop()
                .map_or(Received::Many(Vec::new()), Received::One)
        } else {
            Received::Many(batch)
        };
        // A full receive queue drops the batch, as a socket would.
        let _ = data.try_send(received);
    }
}

/// The portable reader: one datagram per system call, received straight into the arena.
async fn read_one_at_a_time(socket: Arc<UdpSocket>, local: SocketAddr, out: Outlets) {
    let mut arena = BytesMut::with_capacity(2 * ARENA);
    loop {
        if arena.capacity() < SLOT {
            arena = BytesMut::with_capacity(2 * ARENA);
        }
        let Ok((n, remote)) = socket.recv_buf_from(&mut arena).await else {
            arena.clear();
            continue;
        };
        let datagram = arena.split_to(n).freeze();
        let mut batch = Batch::new(&out.fast, local);
        if let Some(d) = batch.take(remote, datagram) {
            if out.driver.send((local, remote, d)).await.is_err() {
                return;
            }
        }
        batch.deliver(&out.data);
    }
}
