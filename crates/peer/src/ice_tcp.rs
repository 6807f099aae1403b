//! ICE-TCP connections (RFC 6544) for the driver: the runtime's half of the contract
//! described in floe-ice's `Agent::add_tcp_host`. A TCP listener per host address is the
//! passive candidate; connections to it are accepted (§7.2). A transmit from the active
//! base (`ip:9`) with no connection yet opens one from `ip` to the peer (§7.1). Each
//! connection has a task that writes what the agent sends (already RFC 4571 framed)
//! and reads frames back (floe-stun's `StreamDecoder`) for the driver.
//!
//! Hostile peers can connect to a passive candidate: at most [`MAX_CONNECTIONS`]
//! connections are open at once (a [`MuxServer`](crate::MuxServer) sets its own limit), one that sends no whole frame within
//! [`FIRST_FRAME_TIMEOUT`] is closed, and a full write queue drops packets as a UDP
//! socket would.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use floe_ice::candidate::TCP_ACTIVE_PORT;
use floe_stun::framing::StreamDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Most ICE-TCP connections of one peer connection at once.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// An accepted connection must deliver its first whole frame within this.
pub(crate) const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to a peer's passive candidate may take (the check fails then).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Packets queued for one connection's writer.
const WRITE_QUEUE: usize = 256;

/// What a connection tells the driver.
#[derive(Debug)]
pub(crate) enum TcpInput {
    /// A connection to a passive candidate was accepted.
    Accepted {
        base: SocketAddr,
        remote: SocketAddr,
        id: u64,
        writer: mpsc::Sender<Vec<u8>>,
    },
    /// One frame's payload.
    Frame {
        base: SocketAddr,
        remote: SocketAddr,
        id: u64,
        packet: Vec<u8>,
    },
    /// The connection failed to open, closed or broke.
    Closed {
        base: SocketAddr,
        remote: SocketAddr,
        id: u64,
    },
}

struct Connection {
    id: u64,
    writer: mpsc::Sender<Vec<u8>>,
}

/// The listeners and connections of one peer connection.
pub(crate) struct IceTcp {
    input: mpsc::Sender<TcpInput>,
    max_connections: usize,
    connections: HashMap<(SocketAddr, SocketAddr), Connection>,
    next_id: u64,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds a TCP listener on each of `hosts`' addresses (the UDP sockets' addresses with
/// their interface rank), on a port none of the UDP sockets use (the agent names its
/// sockets by address). Returns the listeners with their address and rank.
pub(crate) async fn bind_listeners(
    hosts: &[(SocketAddr, usize)],
) -> io::Result<Vec<(SocketAddr, usize, TcpListener)>> {
    let mut out = Vec::new();
    let mut ips: Vec<(IpAddr, usize)> = Vec::new();
    for (a, rank) in hosts {
        if !ips.iter().any(|(ip, _)| *ip == a.ip()) {
            ips.push((a.ip(), *rank));
        }
    }
    for (ip, rank) in ips {
        let mut tries = 0;
        let listener = loop {
            let l = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
            let addr = l.local_addr()?;
            tries += 1;
            if !hosts.iter().any(|(h, _)| *h == addr) || tries >= 8 {
                break l;
            }
        };
        out.push((listener.local_addr()?, rank, listener));
    }
    Ok(out)
}

impl IceTcp {
    /// Starts accepting on `listeners`; what happens on the connections goes to `input`.
    pub(crate) fn new(listeners: Vec<TcpListener>, input: mpsc::Sender<TcpInput>) -> IceTcp {
        IceTcp::with_limit(listeners, input, MAX_CONNECTIONS)
    }

    /// [`IceTcp::new`] with at most `max_connections` open at once.
    pub(crate) fn with_limit(
        listeners: Vec<TcpListener>,
        input: mpsc::Sender<TcpInput>,
        max_connections: usize,
    ) -> IceTcp {
        let tasks = listeners
            .into_iter()
            .filter_map(|l| {
                let base = l.local_addr().ok()?;
                Some(tokio::spawn(accept_loop(l, base, input.clone())))
            })
            .collect();
        IceTcp {
            input,
            max_connections,
            connections: HashMap::new(),
            // Accepted connections take ids from the accept loops (odd); ours are even.
            next_id: 0,
            tasks,
        }
    }

    /// Writes an agent transmit from TCP base `base` to `remote`, opening the connection
    /// from an active base first. `false`: no connection, and none can be opened (tell
    /// the agent it is closed).
    pub(crate) fn send(&mut self, base: SocketAddr, remote: SocketAddr, data: Vec<u8>) -> bool {
        if let Some(c) = self.connections.get(&(base, remote)) {
            // A full queue drops the packet, as a UDP socket's buffer would.
            return !matches!(
                c.writer.try_send(data),
                Err(mpsc::error::TrySendError::Closed(_))
            );
        }
        if base.port() != TCP_ACTIVE_PORT || self.connections.len() >= self.max_connections {
            return false;
        }
        self.next_id += 2;
        let id = self.next_id;
        let (writer, queue) = mpsc::channel(WRITE_QUEUE);
        let _ = writer.try_send(data);
        self.connections
            .insert((base, remote), Connection { id, writer });
        let input = self.input.clone();
        self.tasks.push(tokio::spawn(async move {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect(base.ip(), remote)).await;
            match stream {
                Ok(Ok(stream)) => run(stream, base, remote, id, queue, input, None).await,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "ICE-TCP connect failed");
                    let _ = input.send(TcpInput::Closed { base, remote, id }).await;
                }
                Err(_) => {
                    tracing::debug!(%remote, "ICE-TCP connect timed out");
                    let _ = input.send(TcpInput::Closed { base, remote, id }).await;
                }
            }
        }));
        true
    }

    /// Registers an accepted connection (refused beyond the limit: its writer is dropped,
    /// which ends its task).
    pub(crate) fn accepted(
        &mut self,
        base: SocketAddr,
        remote: SocketAddr,
        id: u64,
        writer: mpsc::Sender<Vec<u8>>,
    ) {
        if self.connections.len() < self.max_connections {
            self.connections
                .insert((base, remote), Connection { id, writer });
        }
    }

    /// Whether `id` is the current connection between `base` and `remote`.
    pub(crate) fn is_current(&self, base: SocketAddr, remote: SocketAddr, id: u64) -> bool {
        self.connections
            .get(&(base, remote))
            .is_some_and(|c| c.id == id)
    }

    /// Forgets a closed connection; whether it was the current one.
    pub(crate) fn closed(&mut self, base: SocketAddr, remote: SocketAddr, id: u64) -> bool {
        if self.is_current(base, remote, id) {
            self.connections.remove(&(base, remote));
            return true;
        }
        false
    }

    /// Closes the connection between `base` and `remote` (ICE no longer needs it): its
    /// writer ends, and with it the connection's task.
    pub(crate) fn close(&mut self, base: SocketAddr, remote: SocketAddr) {
        self.connections.remove(&(base, remote));
    }

    /// Stops every listener and connection.
    pub(crate) fn shutdown(&mut self) {
        self.connections.clear();
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for IceTcp {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn connect(ip: IpAddr, remote: SocketAddr) -> io::Result<TcpStream> {
    let socket = if ip.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // §7.1: from the local candidate's interface, on an unallocated port.
    socket.bind(SocketAddr::new(ip, 0))?;
    let stream = socket.connect(remote).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn accept_loop(listener: TcpListener, base: SocketAddr, input: mpsc::Sender<TcpInput>) {
    let mut id: u64 = 1;
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE under a connection flood: pause instead of spinning.
                tracing::debug!(error = %e, "ICE-TCP accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        id += 2;
        let (writer, queue) = mpsc::channel(WRITE_QUEUE);
        if input
            .send(TcpInput::Accepted {
                base,
                remote,
                id,
                writer,
            })
            .await
            .is_err()
        {
            return;
        }
        let input = input.clone();
        tokio::spawn(run(
            stream,
            base,
            remote,
            id,
            queue,
            input,
            Some(FIRST_FRAME_TIMEOUT),
        ));
    }
}

/// One connection: writes the queue, reads frames, reports the end.
async fn run(
    stream: TcpStream,
    base: SocketAddr,
    remote: SocketAddr,
    id: u64,
    mut queue: mpsc::Receiver<Vec<u8>>,
    input: mpsc::Sender<TcpInput>,
    first_frame_within: Option<Duration>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let write = async move {
        while let Some(data) = queue.recv().await {
            if writer.write_all(&data).await.is_err() {
                break;
            }
        }
    };
    let frames = input.clone();
    let read = async move {
        let mut decoder = StreamDecoder::new(StreamDecoder::RFC4571);
        let mut buf = vec![0u8; 16 * 1024];
        let mut deadline = first_frame_within.map(|d| tokio::time::Instant::now() + d);
        loop {
            let n = match deadline {
                Some(d) => match tokio::time::timeout_at(d, reader.read(&mut buf)).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::debug!(%remote, "ICE-TCP connection sent no frame in time");
                        return;
                    }
                },
                None => reader.read(&mut buf).await,
            };
            let Ok(n) = n else { return };
            let Some(bytes) = buf.get(..n).filter(|b| !b.is_empty()) else {
                return;
            };
            if decoder.extend(bytes).is_err() {
                return;
            }
            loop {
                match decoder.next_frame() {
                    Ok(Some((_, frame))) => {
                        deadline = None;
                        let packet = frame.to_vec();
                        let msg = TcpInput::Frame {
                            base,
                            remote,
                            id,
                            packet,
                        };
                        if frames.send(msg).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
        }
    };
    // Either direction ending ends the connection (the writer ends when the driver drops
    // its sender: the connection was refused, replaced or the peer connection closed).
    tokio::select! {
        () = write => {}
        () = read => {}
    }
    let _ = input.send(TcpInput::Closed { base, remote, id }).await;
}
