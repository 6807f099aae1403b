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
use tokio::sync::{mpsc, watch};

use crate::Inbound;

pub(crate) async fn accept_tcp(
    listener: TcpListener,
    tls: Option<watch::Receiver<Arc<rustls::ServerConfig>>>,
    tx: mpsc::Sender<Inbound>,
) {
    loop {
        let Ok((stream, remote)) = listener.accept().await else {
            continue;
        };
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let tx = tx.clone();
        match &tls {
            None => {
                tokio::spawn(serve_stream(stream, Transport::Tcp, local, remote, tx));
            }
            Some(acceptor) => {
                // The certificate in force now; a reload changes it for later
                // handshakes only, so connections that are up stay up.
                let acceptor = tokio_rustls::TlsAcceptor::from(acceptor.borrow().clone());
                tokio::spawn(async move {
                    match acceptor.accept(stream).await {
                        Ok(tls) => serve_stream(tls, Transport::Tls, local, remote, tx).await,
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
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (wtx, mut wrx) = mpsc::channel::<Vec<u8>>(1024);
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
