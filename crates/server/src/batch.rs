//! Batched reading of the client-facing UDP listeners through quinn-udp, done by the
//! worker's core itself: one `recvmmsg` takes up to [`quinn_udp::BATCH_SIZE`] datagrams,
//! and with GRO (Linux) one buffer may hold several datagrams of one sender, split here
//! by the kernel's stride. Each datagram goes to the TURN core straight from the receive
//! buffer: no reader task to wake, no queue hop, no copy. quinn-udp does the system calls
//! (the only unsafe code is in that well-kept crate); a socket where it cannot be set up
//! gets the plain one-datagram reader task instead ([`crate::read_udp`]).

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use quinn_udp::{RecvMeta, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Bytes per receive buffer: one datagram of any size, or a GRO batch (the kernel caps
/// a coalesced buffer at 64 KiB).
const SLOT: usize = 65_536;

/// Most buffers per system call (quinn-udp's own batch size, at most 32): 2 MiB per
/// worker, shared by its listeners.
fn slots() -> usize {
    quinn_udp::BATCH_SIZE.clamp(1, 32)
}

struct Listener {
    local: SocketAddr,
    socket: Arc<UdpSocket>,
    state: UdpSocketState,
}

/// A worker's listener sockets, read by its core.
#[derive(Default)]
pub(crate) struct Listeners {
    list: Vec<Listener>,
    storage: Vec<u8>,
    meta: Vec<RecvMeta>,
    /// Where the next readiness poll starts (so that one busy socket does not starve
    /// another).
    next: usize,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("sockets", &self.list.len())
            .finish_non_exhaustive()
    }
}

impl Listeners {
    /// Adds `socket` (bound to `local`); gives it back when batched receive cannot be set
    /// up on it (the caller reads it another way).
    pub(crate) fn add(
        &mut self,
        local: SocketAddr,
        socket: Arc<UdpSocket>,
    ) -> Result<(), (Arc<UdpSocket>, io::Error)> {
        match UdpSocketState::new((&*socket).into()) {
            Ok(state) => {
                if self.storage.is_empty() {
                    self.storage = vec![0u8; slots() * SLOT];
                    self.meta = vec![RecvMeta::default(); slots()];
                }
                self.list.push(Listener {
                    local,
                    socket,
                    state,
                });
                Ok(())
            }
            Err(e) => Err((socket, e)),
        }
    }

    /// Which listener has datagrams waiting (pending while none has, forever when there
    /// are none).
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<usize> {
        let n = self.list.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            let Some(l) = self.list.get(i) else { continue };
            // An error is a readiness too: the read reports it.
            if l.socket.poll_recv_ready(cx).is_ready() {
                self.next = (i + 1) % n;
                return Poll::Ready(i);
            }
        }
        Poll::Pending
    }

    /// Reads listener `i` until it has nothing more or `limit` datagrams were read, each
    /// given to `f(local, from, datagram)`; returns how many.
    pub(crate) fn read(
        &mut self,
        i: usize,
        limit: usize,
        mut f: impl FnMut(SocketAddr, SocketAddr, &[u8]),
    ) -> usize {
        let Some(l) = self.list.get(i) else { return 0 };
        let mut count = 0;
        // ICMP errors (ECONNREFUSED) are per datagram and do not end the read; a socket
        // that only errs is left after this many.
        let mut errors = 0;
        while count < limit && errors < 64 {
            let got = {
                let mut bufs: Vec<IoSliceMut<'_>> =
                    self.storage.chunks_mut(SLOT).map(IoSliceMut::new).collect();
                l.socket.try_io(Interest::READABLE, || {
                    l.state.recv((&*l.socket).into(), &mut bufs, &mut self.meta)
                })
            };
            let n = match got {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    errors += 1;
                    continue;
                }
            };
            for (m, buf) in self.meta.iter().zip(self.storage.chunks(SLOT)).take(n) {
                let Some(filled) = buf.get(..m.len) else {
                    continue;
                };
                for datagram in filled.chunks(m.stride.max(1)) {
                    f(l.local, m.addr, datagram);
                    count += 1;
                }
            }
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn datagrams_from_several_senders_and_sockets_come_straight_to_the_caller() {
        let mut listeners = Listeners::default();
        let mut locals = Vec::new();
        for _ in 0..2 {
            let s = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
            let local = s.local_addr().unwrap();
            listeners.add(local, s).unwrap();
            locals.push(local);
        }
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for k in 0..50u8 {
            a.send_to(&[k; 100], locals[0]).await.unwrap();
            b.send_to(&[k; 7], locals[1]).await.unwrap();
        }
        let mut got: Vec<(SocketAddr, SocketAddr, Vec<u8>)> = Vec::new();
        while got.len() < 100 {
            let i = std::future::poll_fn(|cx| listeners.poll_ready(cx)).await;
            listeners.read(i, 512, |l, from, d| got.push((l, from, d.to_vec())));
        }
        let from_a: Vec<_> = got
            .iter()
            .filter(|g| g.1 == a.local_addr().unwrap())
            .collect();
        assert_eq!(from_a.len(), 50);
        assert!(from_a.iter().all(|g| g.0 == locals[0] && g.2.len() == 100));
        // Each sender's datagrams in order.
        let firsts: Vec<u8> = from_a.iter().map(|g| g.2[0]).collect();
        assert_eq!(firsts, (0..50).collect::<Vec<u8>>());
        let from_b = got.iter().filter(|g| g.1 == b.local_addr().unwrap());
        assert!(from_b.clone().all(|g| g.0 == locals[1] && g.2.len() == 7));
        assert_eq!(from_b.count(), 50);
    }

    #[tokio::test]
    async fn a_read_stops_at_the_limit_and_the_rest_waits() {
        let mut listeners = Listeners::default();
        let s = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let local = s.local_addr().unwrap();
        listeners.add(local, s).unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for k in 0..100u8 {
            a.send_to(&[k], local).await.unwrap();
        }
        // Loopback sends are queued at the receiver when `send_to` returns.
        let mut got = Vec::new();
        let i = std::future::poll_fn(|cx| listeners.poll_ready(cx)).await;
        let n = listeners.read(i, 40, |_, _, d| got.push(d[0]));
        assert!((40..100).contains(&n), "{n}");
        while got.len() < 100 {
            let i = std::future::poll_fn(|cx| listeners.poll_ready(cx)).await;
            listeners.read(i, 40, |_, _, d| got.push(d[0]));
        }
        assert_eq!(got, (0..100).collect::<Vec<u8>>());
    }
}
