//! Batched reading of the client-facing UDP listeners through quinn-udp: one
//! `recvmmsg` takes up to [`quinn_udp::BATCH_SIZE`] datagrams, and with GRO (Linux) one
//! buffer may hold several datagrams of one sender, split here by the kernel's stride.
//! quinn-udp does the system calls (the only unsafe code is in that well-kept crate);
//! where it cannot be set up, the plain one-datagram reader runs instead.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;

use quinn_udp::{RecvMeta, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::datagrams::Datagrams;
use crate::Inbound;

/// Bytes per receive buffer: one datagram of any size, or a GRO batch (the kernel caps
/// a coalesced buffer at 64 KiB).
const SLOT: usize = 65_536;

/// Most buffers per system call (quinn-udp's own batch size, at most 32): 2 MiB per
/// listener socket.
fn slots() -> usize {
    quinn_udp::BATCH_SIZE.clamp(1, 32)
}

/// Reads a listener socket in batches and hands each datagram to the core.
pub(crate) async fn read_udp(socket: Arc<UdpSocket>, local: SocketAddr, tx: mpsc::Sender<Inbound>) {
    let state = match UdpSocketState::new((&*socket).into()) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%local, error = %e, "no batched UDP receive; reading one datagram at a time");
            return crate::read_udp(socket, local, tx).await;
        }
    };
    let slots = slots();
    let mut storage = vec![0u8; slots * SLOT];
    let mut meta = vec![RecvMeta::default(); slots];
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
            let mut batch = Datagrams::default();
            for (m, buf) in meta.iter().zip(storage.chunks(SLOT)).take(n) {
                let Some(filled) = buf.get(..m.len) else {
                    continue;
                };
                for datagram in filled.chunks(m.stride.max(1)) {
                    batch.push(m.addr, datagram);
                    if batch.is_full() {
                        let datagrams = std::mem::take(&mut batch);
                        if tx
                            .send(Inbound::Datagrams { local, datagrams })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            if !batch.is_empty()
                && tx
                    .send(Inbound::Datagrams {
                        local,
                        datagrams: batch,
                    })
                    .await
                    .is_err()
            {
                return;
            }
        }
    }
}
