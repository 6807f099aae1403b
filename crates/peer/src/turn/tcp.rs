//! TURN-TCP (RFC 6062) for applications: a TCP allocation on a TURN server whose
//! connections to peers are ordinary byte streams. [`TcpAllocation::allocate`] opens
//! the control connection (TCP or TLS) and allocates; a task keeps the allocation and
//! its permissions refreshed on it. [`TcpAllocation::connect`] asks the server to
//! connect to a peer; [`TcpAllocation::accept`] takes the connections peers open to the
//! relayed address (after [`TcpAllocation::permit`]). Either way the result is a new
//! connection to the server, bound with ConnectionBind, that carries the peer's bytes
//! as they are.

use std::io;
use std::net::{IpAddr, SocketAddr};

use floe_turn::client::{Client, ClientConfig, ConnectionBind, Event, TurnError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::TurnStream;
use super::{connect_stream, DriverError, StreamOptions, TlsConnect, TurnDriver, TurnSocket};
use floe_ice::Transport;

/// What went wrong with a TURN-TCP allocation or connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TcpRelayError {
    /// The server refused (or the client gave up on) a request.
    #[error("{0}")]
    Turn(#[from] TurnError),
    /// The control connection failed.
    #[error("{0}")]
    Driver(#[from] DriverError),
    /// A data connection to the server failed.
    #[error("data connection: {0}")]
    Io(#[from] io::Error),
    /// The allocation is gone (its control connection closed).
    #[error("the TCP allocation is gone")]
    Gone,
}

/// Where and how to allocate.
#[derive(Debug, Clone)]
pub struct TcpRelayConfig {
    /// The TURN server.
    pub server: SocketAddr,
    /// TLS over the control and data connections (`turns:`); plain TCP without it.
    pub tls: Option<TlsConnect>,
    /// Long-term credential username.
    pub username: String,
    /// Its password.
    pub password: String,
}

enum Command {
    Connect(SocketAddr, oneshot::Sender<Result<u32, TurnError>>),
    Permit(IpAddr, oneshot::Sender<Result<(), TurnError>>),
    Bind(
        u32,
        oneshot::Sender<Result<(Vec<u8>, ConnectionBind), TurnError>>,
    ),
    Answer(
        ConnectionBind,
        Vec<u8>,
        oneshot::Sender<Result<(), TurnError>>,
    ),
}

/// A TCP allocation (RFC 6062), alive while this value is.
#[derive(Debug)]
pub struct TcpAllocation {
    relayed: SocketAddr,
    config: TcpRelayConfig,
    commands: mpsc::Sender<Command>,
    attempts: mpsc::Receiver<(SocketAddr, u32)>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Drop for TcpAllocation {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TcpAllocation {
    /// Opens the control connection and allocates a TCP relayed address.
    pub async fn allocate(config: TcpRelayConfig) -> Result<TcpAllocation, TcpRelayError> {
        let transport = if config.tls.is_some() {
            Transport::Tls
        } else {
            Transport::Tcp
        };
        let (socket, local) = TurnSocket::connect(config.server, transport, config.tls.clone())
            .await
            .map_err(TcpRelayError::Io)?;
        let mut cc = ClientConfig::new(
            local,
            config.server,
            transport,
            &config.username,
            &config.password,
        );
        cc.tcp_relay = true;
        let mut driver = TurnDriver::new(Client::new(cc, rand::random()), socket);
        driver.client_mut().allocate(std::time::Instant::now());
        driver.flush().await?;
        let relayed = loop {
            driver.wait(|_, _| {}).await?;
            driver.flush().await?;
            match driver.poll_event() {
                Some(Event::Allocated { relayed, .. }) => {
                    break relayed.first().copied().ok_or(TcpRelayError::Gone)?
                }
                Some(Event::AllocationFailed(e)) => return Err(e.into()),
                _ => {}
            }
        };
        let (commands, rx) = mpsc::channel(64);
        let (attempts_tx, attempts) = mpsc::channel(64);
        let task = tokio::spawn(control(driver, rx, attempts_tx));
        Ok(TcpAllocation {
            relayed,
            config,
            commands,
            attempts,
            task,
        })
    }

    /// The relayed transport address peers connect to.
    pub fn relayed(&self) -> SocketAddr {
        self.relayed
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, TcpRelayError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| TcpRelayError::Gone)?;
        rx.await.map_err(|_| TcpRelayError::Gone)
    }

    /// Lets `peer` connect to the relayed address (a permission, RFC 6062 §5.3).
    pub async fn permit(&self, peer: IpAddr) -> Result<(), TcpRelayError> {
        Ok(self.ask(|tx| Command::Permit(peer, tx)).await??)
    }

    /// Connects to `peer` through the server (Connect, then a data connection bound to
    /// it, RFC 6062 §4.3): the stream carries the peer's bytes.
    pub async fn connect(&self, peer: SocketAddr) -> Result<Box<dyn TurnStream>, TcpRelayError> {
        let id = self.ask(|tx| Command::Connect(peer, tx)).await??;
        self.bind(id).await
    }

    /// Waits for a peer with a permission to connect to the relayed address, and
    /// accepts it (ConnectionAttempt, then a bound data connection, §4.4).
    pub async fn accept(&mut self) -> Result<(SocketAddr, Box<dyn TurnStream>), TcpRelayError> {
        let (peer, id) = self.attempts.recv().await.ok_or(TcpRelayError::Gone)?;
        Ok((peer, self.bind(id).await?))
    }

    /// Opens a data connection and binds CONNECTION-ID `id` to it (retrying once on a
    /// stale nonce).
    async fn bind(&self, id: u32) -> Result<Box<dyn TurnStream>, TcpRelayError> {
        let options = StreamOptions {
            tls: self.config.tls.clone(),
            ..StreamOptions::default()
        };
        let (mut stream, _) = connect_stream(self.config.server, &options)
            .await
            .map_err(|e| io::Error::new(e.io().kind(), e.io().to_string()))?;
        let mut result = Err(TurnError::Timeout);
        for _ in 0..2 {
            let (request, pending) = self.ask(|tx| Command::Bind(id, tx)).await??;
            stream.write_all(&request).await?;
            let answer = read_stun(&mut stream).await?;
            result = self.ask(|tx| Command::Answer(pending, answer, tx)).await?;
            if result != Err(TurnError::StaleNonce) {
                break;
            }
        }
        result?;
        Ok(stream)
    }
}

/// Reads exactly one STUN message from a stream (nothing past it: the peer's bytes
/// follow).
async fn read_stun(stream: &mut Box<dyn TurnStream>) -> io::Result<Vec<u8>> {
    let mut header = [0u8; 20];
    stream.read_exact(&mut header).await?;
    let [first, _, l0, l1, ..] = header;
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if first & 0xC0 != 0 || len % 4 != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not STUN"));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    let mut msg = header.to_vec();
    msg.extend_from_slice(&body);
    Ok(msg)
}

/// The control connection: refreshes, permissions, Connects, and the ConnectionAttempt
/// indications, until the allocation is lost or the [`TcpAllocation`] dropped.
async fn control(
    mut driver: TurnDriver,
    mut commands: mpsc::Receiver<Command>,
    attempts: mpsc::Sender<(SocketAddr, u32)>,
) {
    let mut connects: Vec<(SocketAddr, oneshot::Sender<Result<u32, TurnError>>)> = Vec::new();
    let mut permits: Vec<(IpAddr, oneshot::Sender<Result<(), TurnError>>)> = Vec::new();
    loop {
        tokio::select! {
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { break };
                let now = std::time::Instant::now();
                let client = driver.client_mut();
                match cmd {
                    Command::Connect(peer, tx) => match client.connect(now, peer) {
                        Ok(()) => connects.push((peer, tx)),
                        Err(e) => { let _ = tx.send(Err(e)); }
                    },
                    Command::Permit(ip, tx) => match client.create_permission(now, ip) {
                        Ok(()) => permits.push((ip, tx)),
                        Err(e) => { let _ = tx.send(Err(e)); }
                    },
                    Command::Bind(id, tx) => { let _ = tx.send(client.connection_bind(id)); }
                    Command::Answer(pending, bytes, tx) => {
                        let _ = tx.send(client.handle_connection_bind_response(&pending, &bytes));
                    }
                }
            }
            r = driver.wait(|_, _| {}) => {
                if r.is_err() {
                    break;
                }
            }
        }
        if driver.flush().await.is_err() {
            break;
        }
        while let Some(e) = driver.poll_event() {
            match e {
                Event::TcpConnected { peer, id } => answer(&mut connects, &peer, Ok(id)),
                Event::TcpConnectFailed(peer, e) => answer(&mut connects, &peer, Err(e)),
                Event::ConnectionAttempt { peer, id } => {
                    let _ = attempts.try_send((peer, id));
                }
                Event::PermissionCreated(ip) => answer(&mut permits, &ip, Ok(())),
                Event::PermissionFailed(ip, e) => answer(&mut permits, &ip, Err(e)),
                Event::AllocationLost(_) | Event::Deallocated => return,
                _ => {}
            }
        }
    }
}

/// Answers the first waiter for `key`.
fn answer<K: PartialEq, T>(waiters: &mut Vec<(K, oneshot::Sender<T>)>, key: &K, value: T) {
    if let Some(i) = waiters.iter().position(|(k, _)| k == key) {
        let (_, tx) = waiters.swap_remove(i);
        let _ = tx.send(value);
    }
}
