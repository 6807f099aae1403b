//! TCP and TLS client connections (RFC 8656 §3.1, RFC 7065): accepted per worker, read
//! and cut into STUN messages and ChannelData frames (RFC 4571-style framing of RFC 8489
//! §6.2.2, `floe_stun::framing`) before the core sees them, and written by a task of
//! their own so a slow client never stalls the worker.

use std::net::SocketAddr;
use std::sync::Arc;

use floe_stun::framing::{Framing, StreamDecoder};
use floe_turn::Transport;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::Inbound;

/// What every worker's client connections share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Every worker's queue, for a ConnectionBind that belongs to another worker.
    pub(crate) workers: Vec<mpsc::Sender<Inbound>>,
    /// TURN-TCP traffic counters.
    pub(crate) tcp: Arc<crate::tcp_relay::TcpRelayCounters>,
}

pub(crate) async fn accept_tcp(
    listener: TcpListener,
    tls: Option<watch::Receiver<Arc<rustls::ServerConfig>>>,
    tx: mpsc::Sender<Inbound>,
    all: Arc<Shared>,
) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                accept_failed(&e).await;
                continue;
            }
        };
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let tx = tx.clone();
        let all = all.clone();
        match &tls {
            None => {
                tokio::spawn(serve_stream(stream, Transport::Tcp, local, remote, tx, all));
            }
            Some(acceptor) => {
                // The certificate in force now; a reload changes it for later
                // handshakes only, so connections that are up stay up.
                let acceptor = tokio_rustls::TlsAcceptor::from(acceptor.borrow().clone());
                tokio::spawn(async move {
                    match acceptor.accept(stream).await {
                        Ok(tls) => {
                            serve_stream(tls, Transport::Tls, local, remote, tx, all).await;
                        }
                        Err(e) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                    }
                });
            }
        }
    }
}

/// Reads frames from one client connection and writes what the core sends it. The core
/// hears `transport` (TLS or TCP): it keys the 5-tuple as TCP either way, but answers a
/// redirect over TLS with the alternate's domain.
async fn serve_stream<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    transport: Transport,
    local: SocketAddr,
    remote: SocketAddr,
    tx: mpsc::Sender<Inbound>,
    all: Arc<Shared>,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (wtx, mut wrx) = mpsc::channel::<Vec<u8>>(1024);
    // Kept for a TURN-TCP data connection, whose peer's bytes go to the same writer.
    let to_client = wtx.clone();
    if tx
        .send(Inbound::Opened {
            local,
            remote,
            writer: wtx,
        })
        .await
        .is_err()
    {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(data) = wrx.recv().await {
            if wr.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut decoder = StreamDecoder::new(Framing::StunTurn);
    let mut buf = vec![0u8; 65_536];
    'read: loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if buf
            .get(..n)
            .is_none_or(|read| decoder.extend(read).is_err())
        {
            break;
        }
        loop {
            match decoder.next_frame() {
                Ok(Some((_, frame))) if is_connection_bind(frame) => {
                    // RFC 6062 §5.4: if the core binds it, this connection carries the
                    // peer's bytes from now on, starting with those right behind it.
                    // The worker that holds the peer connection: CONNECTION-ID modulo
                    // the workers (floe-turn's `set_connection_id_shard`).
                    let owner = connection_id(frame)
                        .and_then(|id| all.workers.get(id as usize % all.workers.len().max(1)))
                        .unwrap_or(&tx)
                        .clone();
                    let data = frame.to_vec();
                    let (reply, verdict) = oneshot::channel();
                    let ev = Inbound::ConnectionBind {
                        transport,
                        local,
                        remote,
                        data,
                        reply,
                        writer: to_client.clone(),
                    };
                    if owner.send(ev).await.is_err() {
                        break 'read;
                    }
                    if let Ok(Some(bound)) = verdict.await {
                        let id = bound.id;
                        let leftover = decoder.take_remaining();
                        crate::tcp_relay::join(rd, to_client, bound, leftover, &all.tcp).await;
                        let _ = tx.send(Inbound::TcpClosed { id }).await;
                        let _ = tx.send(Inbound::Closed { local, remote }).await;
                        // Let the writer send what the peer sent last, then close.
                        let _ = writer.await;
                        return;
                    }
                }
                Ok(Some((_, frame))) => {
                    let data = frame.to_vec();
                    if tx
                        .send(Inbound::Client {
                            transport,
                            local,
                            remote,
                            data,
                        })
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
                Ok(None) => break,
                // Not STUN/TURN framing: the connection is useless (RFC 8656 §5).
                Err(_) => break 'read,
            }
        }
    }
    let _ = tx.send(Inbound::Closed { local, remote }).await;
    writer.abort();
}

/// Whether a frame is a ConnectionBind request (RFC 6062 §4.3): method 0x00B, class
/// request, read from the STUN header alone.
fn is_connection_bind(frame: &[u8]) -> bool {
    match frame.first_chunk::<2>() {
        Some(&t) => {
            floe_stun::MessageType::from_u16(u16::from_be_bytes(t))
                == floe_stun::MessageType::new(
                    floe_stun::Method::CONNECTION_BIND,
                    floe_stun::Class::Request,
                )
        }
        None => false,
    }
}

/// The CONNECTION-ID of a ConnectionBind request, if it has one.
fn connection_id(frame: &[u8]) -> Option<u32> {
    let msg = floe_stun::Message::parse(frame).ok()?;
    msg.get::<floe_stun::attributes::ConnectionId>()
        .ok()
        .flatten()
        .map(|c| c.0)
}

/// An accept failed: out of file descriptors (EMFILE/ENFILE), or a connection reset
/// before it was taken. Waits a little before the next accept, so that a listener whose
/// accepts keep failing (a flood that exhausted the descriptors) does not spin a core;
/// logs it at most once a second.
pub(crate) async fn accept_failed(e: &std::io::Error) {
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let now = std::time::Instant::now();
    let log = {
        let mut last = LAST
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = last.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1));
        if due {
            *last = Some(now);
        }
        due
    };
    if log {
        tracing::warn!(error = %e, "accept failed; pausing this listener briefly");
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
}
