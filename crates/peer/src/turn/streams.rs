//! TCP and TLS connections to TURN servers (RFC 8656 §3.1, RFC 7065 `turns:`).
//!
//! The agent only sees bytes: a [`Transmit`](floe_ice::Transmit) on a stream transport
//! goes to [`Streams::send`], which opens the connection on first use (from the base's IP,
//! with the connection's DSCP) and queues the bytes for a writer, so the agent's task never
//! waits on a slow connection. What the connection reads comes back as
//! [`StreamInput::Data`]; a failed connect, EOF or error as [`StreamInput::Closed`]. When
//! the agent raises `CloseStream`, [`Streams::close`] shuts the connection down (TLS
//! close_notify, then FIN); [`Streams::shutdown`] does so for all of them when the
//! connection closes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use floe_ice::Transport;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::ProxyRoute;
use super::{connect_stream, StreamOptions, TlsConnect};

/// Frames queued per connection before new ones are dropped. A frame is a whole STUN
/// message or ChannelData, so dropping one keeps the stream's framing intact (the agent
/// treats it as a lost datagram).
const QUEUE: usize = 1024;
/// How long a TCP connect and TLS handshake may take before the connection counts as
/// failed (the agent's own allocation timeout usually fires first).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful shutdown (close_notify, FIN) may take.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);
const READ_BUFFER: usize = 64 * 1024;

/// What a connection reports to the driver.
#[derive(Debug)]
pub(crate) enum StreamInput {
    /// Bytes read.
    Data {
        transport: Transport,
        server: SocketAddr,
        id: u64,
        bytes: Vec<u8>,
    },
    /// The connection failed to open, or closed, or broke.
    Closed {
        transport: Transport,
        server: SocketAddr,
        id: u64,
        reason: String,
    },
}

/// How to open connections.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamConfig {
    /// For `turns:` servers.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// The name each TLS server's certificate must carry (from its URI).
    pub(crate) tls_names: HashMap<SocketAddr, ServerName<'static>>,
    pub(crate) dscp: Option<u8>,
    /// TCP and TLS connections go through this HTTP CONNECT proxy (`server_name` is set
    /// per connection from `names`).
    pub(crate) proxy: Option<ProxyRoute>,
    /// The host name in each TURN server's URI, when it was a name.
    pub(crate) names: HashMap<SocketAddr, String>,
}

#[derive(Debug)]
struct Stream {
    id: u64,
    frames: mpsc::Sender<Vec<u8>>,
    /// Dropping it tells the task to shut down.
    _cancel: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// The open connections of one peer connection, keyed by transport and TURN server.
#[derive(Debug)]
pub(crate) struct Streams {
    config: StreamConfig,
    open: HashMap<(Transport, SocketAddr), Stream>,
    /// Connections told to close whose tasks may still be finishing their shutdown.
    closing: Vec<JoinHandle<()>>,
    input: mpsc::Sender<StreamInput>,
    next_id: u64,
}

impl Streams {
    pub(crate) fn new(config: StreamConfig, input: mpsc::Sender<StreamInput>) -> Streams {
        Streams {
            config,
            open: HashMap::new(),
            closing: Vec::new(),
            input,
            next_id: 0,
        }
    }

    /// Queues `frame` on the connection to `server`, opening it first if needed.
    pub(crate) fn send(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        server: SocketAddr,
        frame: Vec<u8>,
    ) {
        let key = (transport, server);
        if !self.open.contains_key(&key) {
            let stream = self.open_stream(transport, source, server);
            self.open.insert(key, stream);
        }
        if let Some(s) = self.open.get(&key) {
            if s.frames.try_send(frame).is_err() {
                tracing::debug!(%server, %transport, "stream queue full; frame dropped");
            }
        }
    }

    /// Whether `id` is the current connection to `server` (reports from a connection
    /// already replaced or closed are stale).
    pub(crate) fn is_current(&self, transport: Transport, server: SocketAddr, id: u64) -> bool {
        self.open
            .get(&(transport, server))
            .is_some_and(|s| s.id == id)
    }

    /// Forgets a connection that reported itself closed.
    pub(crate) fn remove(&mut self, transport: Transport, server: SocketAddr) {
        if let Some(s) = self.open.remove(&(transport, server)) {
            self.closing.push(s.task);
        }
    }

    /// A TURN server redirected to `alternate` (RFC 8489 §10): connections there check
    /// the certificate against `domain` (ALTERNATE-DOMAIN) or, without one, the name
    /// `server`'s certificate was checked against. A proxy is asked for the alternate by
    /// its address (ALTERNATE-SERVER), never by a name that may lead elsewhere.
    pub(crate) fn redirected(
        &mut self,
        transport: Transport,
        server: SocketAddr,
        alternate: SocketAddr,
        domain: Option<&str>,
    ) {
        // Only TLS checks names, and a name already known for the alternate (a configured
        // `turns:` server) is not replaced by what a redirecting server says.
        if transport != Transport::Tls || self.config.tls_names.contains_key(&alternate) {
            return;
        }
        let name = match domain {
            Some(d) => ServerName::try_from(d.to_owned()).ok(),
            None => self.config.tls_names.get(&server).cloned(),
        };
        match name {
            Some(n) => {
                self.config.tls_names.insert(alternate, n);
            }
            None => {
                tracing::warn!(%alternate, ?domain, "redirected to a server with no usable TLS name");
            }
        }
    }

    /// Shuts the connection to `server` down (the agent no longer needs it).
    pub(crate) fn close(&mut self, transport: Transport, server: SocketAddr) {
        // Dropping the queue and the cancel sender ends the task after a graceful shutdown.
        self.remove(transport, server);
        self.closing.retain(|t| !t.is_finished());
    }

    /// Closes every connection and waits (briefly) for their shutdowns.
    pub(crate) async fn shutdown(mut self) {
        let mut tasks = std::mem::take(&mut self.closing);
        tasks.extend(self.open.drain().map(|(_, s)| s.task));
        for mut task in tasks {
            if tokio::time::timeout(SHUTDOWN_TIMEOUT * 2, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    fn open_stream(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        server: SocketAddr,
    ) -> Stream {
        self.next_id += 1;
        let id = self.next_id;
        let (frames, rx) = mpsc::channel(QUEUE);
        let (cancel, cancelled) = oneshot::channel();
        let tls = (transport == Transport::Tls).then(|| {
            (
                self.config.tls.clone(),
                self.config.tls_names.get(&server).cloned(),
            )
        });
        let conn = Connection {
            transport,
            server,
            id,
            input: self.input.clone(),
        };
        let task = tokio::spawn(conn.run(
            source,
            tls,
            (
                self.config.dscp,
                self.config.proxy.clone().map(|route| ProxyRoute {
                    server_name: self.config.names.get(&server).cloned(),
                    ..route
                }),
            ),
            rx,
            cancelled,
        ));
        tracing::debug!(%server, %transport, %source, "opening TURN connection");
        Stream {
            id,
            frames,
            _cancel: cancel,
            task,
        }
    }
}

type TlsSetup = (
    Option<Arc<rustls::ClientConfig>>,
    Option<ServerName<'static>>,
);

struct Connection {
    transport: Transport,
    server: SocketAddr,
    id: u64,
    input: mpsc::Sender<StreamInput>,
}

impl Connection {
    async fn run(
        self,
        source: SocketAddr,
        tls: Option<TlsSetup>,
        (dscp, proxy): (Option<u8>, Option<ProxyRoute>),
        frames: mpsc::Receiver<Vec<u8>>,
        mut cancelled: oneshot::Receiver<()>,
    ) {
        let tls = match tls {
            None => None,
            Some((Some(config), Some(server_name))) => Some(TlsConnect {
                config,
                server_name,
            }),
            Some(_) => {
                return self
                    .closed("TLS: no client configuration or server name".into())
                    .await
            }
        };
        let options = StreamOptions {
            source: Some(source.ip()),
            dscp,
            tls,
            timeout: Some(CONNECT_TIMEOUT),
            proxy,
        };
        let opened = tokio::select! {
            r = connect_stream(self.server, &options) => r,
            _ = &mut cancelled => return,
        };
        match opened {
            Ok((stream, _)) => self.serve(stream, frames, cancelled).await,
            Err(e) => self.closed(e.to_string()).await,
        }
    }

    /// Reads and writes until the peer closes, an error, or the driver lets go.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        mut frames: mpsc::Receiver<Vec<u8>>,
        mut cancelled: oneshot::Receiver<()>,
    ) {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let reading = async {
            let mut buf = vec![0u8; READ_BUFFER];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) => return Some("closed by the server".to_owned()),
                    Ok(n) => {
                        // AsyncRead promises n <= buf.len(); a reader that breaks it ends
                        // the stream.
                        let Some(read) = buf.get(..n) else {
                            return Some(format!("read {n} bytes into {READ_BUFFER}"));
                        };
                        let input = StreamInput::Data {
                            transport: self.transport,
                            server: self.server,
                            id: self.id,
                            bytes: read.to_vec(),
                        };
                        if self.input.send(input).await.is_err() {
                            // The driver is gone.
                            return None;
                        }
                    }
                    Err(e) => return Some(format!("read: {e}")),
                }
            }
        };
        let writing = async {
            while let Some(frame) = frames.recv().await {
                if let Err(e) = writer.write_all(&frame).await {
                    return Some(format!("write: {e}"));
                }
            }
            None
        };
        let failure = tokio::select! {
            reason = reading => reason,
            failed = writing => failed,
            _ = &mut cancelled => None,
        };
        if let Some(reason) = failure {
            self.closed(reason).await;
        }
        // TLS close_notify, then FIN; the read half goes with the task.
        let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, writer.shutdown()).await;
    }

    async fn closed(&self, reason: String) {
        tracing::debug!(server = %self.server, transport = %self.transport, %reason, "TURN connection closed");
        let _ = self
            .input
            .send(StreamInput::Closed {
                transport: self.transport,
                server: self.server,
                id: self.id,
                reason,
            })
            .await;
    }
}
