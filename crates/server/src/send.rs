//! Sending what a worker's TURN core produced, in batches.
//!
//! After the core has handled a batch of inbound events, its transmits are sent
//! together. UDP datagrams of one flow (same source socket, same destination) keep their
//! order; runs of equal-sized datagrams of a flow go out as one segmentation-offload send
//! (UDP GSO, `UDP_SEGMENT`, Linux 4.18 and later) through quinn-udp, so the kernel walks
//! its send path (system call, route, IP output, queueing) once per run instead of once
//! per datagram. A relayed media flow is exactly that: many datagrams of one size from
//! one relay socket to one peer, or from the listener to one client. Flows may be
//! reordered against each other, never within themselves. Where GSO is missing (other
//! systems, old kernels, a device that refuses it: quinn-udp then turns it off), every
//! datagram is sent on its own. TCP and TLS transmits go to their connection's writer
//! in the order the core made them.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use floe_turn::server::{DropReason, Server};
use floe_turn::Transmit;
use quinn_udp::UdpSocketState;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::relays::SocketRelays;

/// Most payload bytes in one GSO send: a UDP datagram's limit, less room for headers.
const GSO_MAX_BYTES: usize = 65_000;

/// The TCP/TLS connections' writers, by (local, remote).
pub(crate) type Conns = HashMap<(SocketAddr, SocketAddr), mpsc::Sender<Vec<u8>>>;

/// A worker's sender: the GSO state and buffers reused from batch to batch.
pub(crate) struct Sender {
    gso: Option<UdpSocketState>,
    batch: Vec<Transmit>,
    joined: Vec<u8>,
}

impl Sender {
    /// A sender that uses GSO when `probe` (any UDP socket of the worker) can set it up.
    pub(crate) fn new(probe: Option<&UdpSocket>) -> Sender {
        let gso = probe
            .and_then(|s| UdpSocketState::new(s.into()).ok())
            .filter(|s| s.max_gso_segments() > 1);
        Sender {
            gso,
            batch: Vec::new(),
            joined: Vec::new(),
        }
    }

    /// Sends everything the core has to send.
    pub(crate) async fn flush(
        &mut self,
        server: &mut Server<SocketRelays>,
        udp: &HashMap<SocketAddr, Arc<UdpSocket>>,
        conns: &Conns,
    ) {
        self.batch.clear();
        while let Some(t) = server.poll_transmit() {
            if t.transport.is_stream() {
                if let Some(reason) = send_stream(conns, t) {
                    server.record_drop(reason);
                }
            } else {
                self.batch.push(t);
            }
        }
        // Stable: a flow keeps its order.
        self.batch.sort_by_key(|t| (t.source, t.destination));
        let mut start = 0;
        while let Some(first) = self.batch.get(start) {
            let max = self
                .gso
                .as_ref()
                .map_or(1, UdpSocketState::max_gso_segments);
            let end = run_end(&self.batch, start, max);
            let socket = udp
                .get(&first.source)
                .or_else(|| server.relays().socket(&first.source))
                .cloned();
            if let Some(socket) = socket {
                match self.batch.get(start..end) {
                    Some([one]) => send_one(&socket, one).await,
                    Some(run) => {
                        send_run(self.gso.as_ref(), &mut self.joined, &socket, run).await;
                    }
                    None => {}
                }
            }
            start = end;
        }
        for t in self.batch.drain(..) {
            server.recycle(t.data);
        }
    }
}

/// The end of the run of datagrams in `batch` that starts at `start` and can go out as one
/// GSO send: one flow, one size (the last may be shorter), at most `max_segments`
/// datagrams and [`GSO_MAX_BYTES`].
fn run_end(batch: &[Transmit], start: usize, max_segments: usize) -> usize {
    let Some(first) = batch.get(start) else {
        return start;
    };
    let size = first.data.len();
    let mut total = size;
    let mut end = start + 1;
    if size == 0 {
        return end;
    }
    while let Some(t) = batch.get(end) {
        let same_flow = t.source == first.source && t.destination == first.destination;
        let len = t.data.len();
        if !same_flow || end - start >= max_segments || len > size || total + len > GSO_MAX_BYTES {
            break;
        }
        total += len;
        end += 1;
        if len < size {
            break;
        }
    }
    end
}

/// One datagram; most fit the socket buffer at once, and only a full one costs an await.
async fn send_one(socket: &UdpSocket, t: &Transmit) {
    let sent = match socket.try_send_to(&t.data, t.destination) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            socket.send_to(&t.data, t.destination).await
        }
        r => r,
    };
    if let Err(e) = sent {
        tracing::debug!(to = %t.destination, error = %e, "send failed");
    }
}

/// A run of one flow's equal-sized datagrams as one GSO send; one by one when that
/// fails for a reason other than a full buffer (quinn-udp then stops using GSO if the
/// kernel or device refused it).
async fn send_run(
    gso: Option<&UdpSocketState>,
    joined: &mut Vec<u8>,
    socket: &UdpSocket,
    run: &[Transmit],
) {
    let (Some(state), Some(first)) = (gso, run.first()) else {
        for t in run {
            send_one(socket, t).await;
        }
        return;
    };
    joined.clear();
    for t in run {
        joined.extend_from_slice(&t.data);
    }
    let transmit = quinn_udp::Transmit {
        destination: first.destination,
        ecn: None,
        contents: joined,
        segment_size: Some(first.data.len()),
        src_ip: None,
    };
    loop {
        match socket.try_io(Interest::WRITABLE, || {
            state.try_send(socket.into(), &transmit)
        }) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if socket.writable().await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(to = %first.destination, error = %e, "GSO send failed; one by one");
                for t in run {
                    send_one(socket, t).await;
                }
                return;
            }
        }
    }
}

/// A TCP/TLS transmit to its connection's writer. A client that does not read loses
/// messages rather than stalling the whole server.
fn send_stream(conns: &Conns, t: Transmit) -> Option<DropReason> {
    let w = conns.get(&(t.source, t.destination))?;
    match w.try_send(t.data) {
        Err(mpsc::error::TrySendError::Full(_)) => Some(DropReason::QueueFull),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_turn::Transport;

    fn t(source: &str, destination: &str, len: usize) -> Transmit {
        Transmit {
            transport: Transport::Udp,
            source: source.parse().unwrap(),
            destination: destination.parse().unwrap(),
            data: vec![7; len],
        }
    }

    #[test]
    fn runs_are_one_flow_and_one_size_with_a_shorter_last_within_the_limits() {
        let (a, b) = ("127.0.0.1:1000", "127.0.0.1:2000");
        let batch = vec![
            t(a, b, 100),
            t(a, b, 100),
            t(a, b, 40), // shorter: ends the run
            t(a, b, 100),
            t(a, b, 200),                // larger: a run of its own
            t(a, "127.0.0.1:2001", 200), // another flow
        ];
        assert_eq!(run_end(&batch, 0, 64), 3);
        assert_eq!(run_end(&batch, 3, 64), 4);
        assert_eq!(run_end(&batch, 4, 64), 5);
        assert_eq!(run_end(&batch, 5, 64), 6);
        assert_eq!(run_end(&batch, 6, 64), 6);
        // Without GSO every datagram is a run.
        assert_eq!(run_end(&batch, 0, 1), 1);
        // Segment count and byte limits.
        let many: Vec<Transmit> = (0..100).map(|_| t(a, b, 1200)).collect();
        assert_eq!(run_end(&many, 0, 64), GSO_MAX_BYTES / 1200);
        assert_eq!(run_end(&many, 0, 10), 10);
        let small: Vec<Transmit> = (0..100).map(|_| t(a, b, 10)).collect();
        assert_eq!(run_end(&small, 0, 64), 64);
        // An empty datagram is sent alone.
        let empty = vec![t(a, b, 0), t(a, b, 0)];
        assert_eq!(run_end(&empty, 0, 64), 1);
    }
}
