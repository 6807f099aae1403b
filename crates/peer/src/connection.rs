//! `PeerConnection`: one ICE agent driven by one tokio task over real UDP sockets.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use floe_ice::{
    Agent, AgentConfig, Candidate, CandidateKind, ConnectionState, Credentials, Event, Role,
    SelectedPair, Transport,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::interfaces::{local_addresses, InterfacePolicy};
use crate::signal::{Description, SignalMessage, SignalReceiver, SignalSender};
use crate::turn::streams::{StreamConfig, StreamInput, Streams};
use crate::turn::{TlsConfigError, TlsTrust};
use crate::uri::{IceServerUri, Scheme, UriTransport};

/// A TURN server with credentials.
///
/// The URI says how it is reached (RFC 7065): `turn:host:port` races UDP and, 150 ms
/// later ([`AgentConfig::turn_stagger`]), TCP, keeping the first allocation that succeeds;
/// `?transport=udp` or `?transport=tcp` pins one; `turns:` is TLS over TCP (default port
/// 5349), verified against [`PeerConfig::tls_roots`] or [`PeerConfig::tls`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnServer {
    /// `turn:`/`turns:` URI.
    pub uri: IceServerUri,
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// How to connect.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PeerConfig {
    /// STUN servers (`stun:` URIs).
    pub stun: Vec<IceServerUri>,
    /// TURN servers.
    pub turn: Vec<TurnServer>,
    /// Which interfaces to open sockets on.
    pub interfaces: InterfacePolicy,
    /// Bind exactly these local addresses instead of enumerating interfaces (port 0 picks
    /// a free port).
    pub bind: Vec<SocketAddr>,
    /// How long `connect` waits for a selected pair (default 30 s).
    pub connect_timeout: Option<Duration>,
    /// Agent settings (Ta, timers, limits, and `relay_only`: use only relayed
    /// candidates).
    pub agent: AgentConfig,
    /// DSCP code point (0-63, RFC 2474) for every packet: set as the IPv4 TOS / IPv6
    /// traffic class on the UDP sockets and the TCP/TLS connections to TURN servers.
    /// `None` (default) leaves the system's (0, best effort). E.g. 46 (EF) for voice.
    pub dscp: Option<u8>,
    /// Trust anchors (DER certificates of CAs, or of the servers themselves) for `turns:`
    /// servers. There is no built-in root store: pass the CAs you trust (e.g. the system
    /// bundle) or a whole [`PeerConfig::tls`].
    pub tls_roots: Vec<CertificateDer<'static>>,
    /// The rustls client configuration for `turns:` servers; overrides
    /// [`PeerConfig::tls_roots`].
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Which side of the offer/answer exchange this is; the offerer controls (RFC 8445 §6.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Sends the offer; controlling.
    Offer,
    /// Waits for the offer and answers; controlled.
    Answer,
}

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// Sockets could not be opened.
    #[error("cannot open sockets: {0}")]
    Io(#[from] io::Error),
    /// A server could not be resolved.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// Signalling closed or broke.
    #[error("signalling: {0}")]
    Signalling(String),
    /// The configuration cannot work (e.g. `turns:` without trust anchors).
    #[error("configuration: {0}")]
    Config(String),
    /// No path worked.
    #[error("ICE failed: no candidate pair works")]
    Failed,
    /// Nothing connected in time.
    #[error("timed out after {0:?} without a working path")]
    Timeout(Duration),
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

/// What the application sees change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerEvent {
    /// Connection state changed.
    State(ConnectionState),
    /// The selected pair changed ([`SelectedPair::turn_transport`] says how a relayed
    /// pair reaches its TURN server).
    Selected(SelectedPair),
    /// A TURN server's allocation succeeded; `transport` won the race (UDP, TCP or TLS).
    TurnTransport {
        /// The TURN server.
        server: SocketAddr,
        /// How it is reached.
        transport: Transport,
        /// The relayed address.
        relayed: SocketAddr,
    },
    /// A server failed during gathering.
    ServerFailed {
        /// The server.
        server: SocketAddr,
        /// Why.
        reason: String,
    },
}

enum Command {
    Send(Vec<u8>),
    Restart,
    Stats(tokio::sync::oneshot::Sender<PeerStats>),
    Close,
}

/// A snapshot of a connection, in the spirit of the W3C RTCIceCandidatePairStats and
/// RTCIceCandidateStats ([`PeerConnection::stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerStats {
    /// The connection state.
    pub state: ConnectionState,
    /// The selected pair.
    pub selected: Option<SelectedPair>,
    /// Every pair the agent still holds (after nomination, only the selected one and
    /// those it keeps measuring): local base, remote address, state, counters and RTTs.
    pub pairs: Vec<(
        SocketAddr,
        SocketAddr,
        floe_ice::PairState,
        floe_ice::PairStats,
    )>,
    /// TURN allocations in use: server, the transport that won the race, relayed address.
    pub relays: Vec<(SocketAddr, Transport, SocketAddr)>,
    /// What the agent refused (malformed, unauthenticated, unvouched data...).
    pub refused: floe_ice::AgentStats,
}

/// A [`PeerConnection`]'s state and path changes, taken with
/// [`PeerConnection::take_events`].
#[derive(Debug)]
pub struct PeerEvents(mpsc::UnboundedReceiver<PeerEvent>);

impl PeerEvents {
    /// The next event; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<PeerEvent> {
        self.0.recv().await
    }
}

/// The selected pair when data can skip the driver task: a direct (not relayed) local
/// candidate, consent valid. Senders write straight to its socket from the caller's
/// slice, and socket readers hand its datagrams straight to the application.
#[derive(Debug, Clone)]
struct FastPath {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    remote: SocketAddr,
    /// Bytes that went by the agent, added to the pair's stats.
    counters: Arc<FastCounters>,
}

/// Application bytes carried on a fast path (relaxed atomics: one add per datagram).
#[derive(Debug, Default)]
struct FastCounters {
    sent: std::sync::atomic::AtomicU64,
    received: std::sync::atomic::AtomicU64,
}

/// Sends datagrams on a [`PeerConnection`] from any task.
#[derive(Debug, Clone)]
pub struct DataSender {
    commands: mpsc::Sender<Command>,
    fast: watch::Receiver<Option<FastPath>>,
}

impl DataSender {
    /// Sends one datagram to the peer on the selected path: straight from `data` to the
    /// socket on a direct path (no copy), through the agent when relayed.
    pub async fn send(&self, data: &[u8]) -> Result<(), PeerError> {
        let fast = self.fast.borrow().clone();
        if let Some(path) = fast {
            path.socket
                .send_to(data, path.remote)
                .await
                .map_err(PeerError::Io)?;
            path.counters
                .sent
                .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        self.commands
            .send(Command::Send(data.to_vec()))
            .await
            .map_err(|_| PeerError::Closed)
    }
}

/// A connection to one peer.
#[derive(Debug)]
pub struct PeerConnection {
    commands: mpsc::Sender<Command>,
    fast: watch::Receiver<Option<FastPath>>,
    data: mpsc::Receiver<Bytes>,
    events: mpsc::UnboundedReceiver<PeerEvent>,
    selected: watch::Receiver<Option<SelectedPair>>,
    state: watch::Receiver<ConnectionState>,
    local_addrs: Vec<SocketAddr>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Send(d) => write!(f, "Send({} bytes)", d.len()),
            Command::Restart => f.write_str("Restart"),
            Command::Stats(_) => f.write_str("Stats"),
            Command::Close => f.write_str("Close"),
        }
    }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, PeerError> {
    tokio::net::lookup_host((host, port))
        .await
        .map(Iterator::collect)
        .map_err(|e| PeerError::Resolve(format!("{host}:{port}: {e}")))
}

impl PeerConnection {
    /// Opens sockets, gathers, signals, and resolves once a pair is selected.
    pub async fn connect<S: SignalSender, R: SignalReceiver>(
        config: PeerConfig,
        side: Side,
        mut tx: S,
        mut rx: R,
    ) -> Result<PeerConnection, PeerError> {
        let (sockets, ranked) = bind_sockets(&config).await?;
        // Servers.
        let mut agent_config = config.agent.clone();
        for uri in &config.stun {
            if uri.scheme == Scheme::Stun {
                agent_config
                    .stun_servers
                    .extend(resolve(&uri.host, uri.port).await?);
            }
        }
        let mut turn = Vec::new();
        let mut streams = StreamConfig {
            dscp: config.dscp,
            ..StreamConfig::default()
        };
        for t in &config.turn {
            let Some(transports) = turn_transports(&t.uri) else {
                tracing::warn!(uri = %t.uri, "not a turn: or turns: URI; ignored");
                continue;
            };
            let tls_name = if transports == [Transport::Tls] {
                let name = ServerName::try_from(t.uri.host.clone()).map_err(|e| {
                    PeerError::Config(format!("{}: bad TLS server name: {e}", t.uri))
                })?;
                if streams.tls.is_none() {
                    streams.tls = Some(tls_client_config(&config)?);
                }
                Some(name)
            } else {
                None
            };
            for server in resolve(&t.uri.host, t.uri.port).await? {
                if let Some(name) = &tls_name {
                    streams.tls_names.insert(server, name.clone());
                }
                turn.push((server, transports, t.username.clone(), t.password.clone()));
            }
        }
        let role = if side == Side::Offer {
            Role::Controlling
        } else {
            Role::Controlled
        };
        let now = Instant::now();
        let mut agent = Agent::new(agent_config, role, now, rand::random());
        for (local, rank) in &ranked {
            agent.add_host(now, *local, *rank);
        }
        for (server, transports, user, pass) in &turn {
            if let Some((base, _)) = ranked.iter().find(|(l, _)| l.is_ipv4() == server.is_ipv4()) {
                let ts = floe_ice::TurnServer::new(*base, *server, user, pass)
                    .with_transports(transports);
                agent.add_turn_server_with(now, ts);
            }
        }
        // The description with what is known now; the rest trickles.
        let description = |agent: &Agent| {
            let Credentials { ufrag, pwd } = agent.local_credentials().clone();
            Description {
                ufrag,
                pwd,
                lite: agent.is_lite(),
                ice_options: ice_options(agent),
                candidates: agent.local_candidates().map(ToString::to_string).collect(),
            }
        };
        let mut announced: usize = agent.local_candidates().count();
        let mut remote_ufrag: Option<String> = None;
        // Drop the events for candidates already in the description.
        let mut early_events = Vec::new();
        while let Some(e) = agent.poll_event() {
            if !matches!(e, Event::LocalCandidate(_)) {
                early_events.push(e);
            }
        }
        let sig = |e: io::Error| PeerError::Signalling(e.to_string());
        match side {
            Side::Offer => tx
                .send(SignalMessage::Offer(description(&agent)))
                .await
                .map_err(sig)?,
            Side::Answer => loop {
                match rx.recv().await.map_err(sig)? {
                    Some(SignalMessage::Offer(d)) => {
                        apply_description(&mut agent, now, &d);
                        remote_ufrag = Some(d.ufrag.clone());
                        tx.send(SignalMessage::Answer(description(&agent)))
                            .await
                            .map_err(sig)?;
                        break;
                    }
                    Some(SignalMessage::Candidate { candidate }) => {
                        add_line(&mut agent, now, &candidate);
                    }
                    Some(SignalMessage::EndOfCandidates) => {
                        agent.handle_end_of_remote_candidates(now);
                    }
                    Some(SignalMessage::Answer(_)) => {
                        return Err(PeerError::Signalling(
                            "got an answer, expected an offer".into(),
                        ))
                    }
                    None => return Err(PeerError::Signalling("closed before the offer".into())),
                }
            },
        }
        if agent.gathering_state() == floe_ice::GatheringState::Complete {
            tx.send(SignalMessage::EndOfCandidates).await.map_err(sig)?;
            announced = usize::MAX;
        }

        // Plumbing: reader tasks per socket, signalling reader and writer tasks.
        let (in_tx, in_rx) = mpsc::channel::<(SocketAddr, SocketAddr, Bytes)>(4096);
        let (data_tx, data_rx) = mpsc::channel(4096);
        let (fast_tx, fast_rx) = watch::channel(None);
        let mut readers = Vec::new();
        for (local, s) in &sockets {
            let reader = read_socket(
                s.clone(),
                *local,
                in_tx.clone(),
                fast_rx.clone(),
                data_tx.clone(),
            );
            readers.push(tokio::spawn(reader));
        }
        let (sig_in_tx, sig_in_rx) = mpsc::unbounded_channel();
        readers.push(tokio::spawn(async move {
            loop {
                let msg = rx.recv().await;
                let stop = !matches!(msg, Ok(Some(_)));
                if sig_in_tx.send(msg).is_err() || stop {
                    return;
                }
            }
        }));
        let (sig_out_tx, mut sig_out_rx) = mpsc::unbounded_channel::<SignalMessage>();
        readers.push(tokio::spawn(async move {
            while let Some(m) = sig_out_rx.recv().await {
                if tx.send(m).await.is_err() {
                    return;
                }
            }
        }));
        let (stream_tx, stream_rx) = mpsc::channel(1024);
        let (mdns_tx, mdns_rx) = mpsc::channel(16);
        let (cmd_tx, cmd_rx) = mpsc::channel(1024);
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (sel_tx, sel_rx) = watch::channel(None);
        let (state_tx, mut state_rx) = watch::channel(ConnectionState::New);
        for e in early_events {
            let _ = forward_event(&e, &ev_tx, &sel_tx, &state_tx);
        }
        let local_addrs: Vec<SocketAddr> = sockets.keys().copied().collect();
        let driver = Driver {
            agent,
            sockets,
            in_rx,
            sig_in_rx,
            sig_out_tx,
            cmd_rx,
            data_tx,
            ev_tx,
            sel_tx,
            state_tx,
            readers,
            announced,
            fast_tx,
            fast_counters: std::sync::Mutex::default(),
            remote_ufrag,
            streams: Streams::new(streams, stream_tx),
            stream_rx,
            mdns_tx,
            mdns_rx,
        };
        let task = tokio::spawn(driver.run());

        let limit = config.connect_timeout.unwrap_or(Duration::from_secs(30));
        let waited = tokio::time::timeout(limit, async {
            loop {
                match *state_rx.borrow_and_update() {
                    ConnectionState::Connected | ConnectionState::Completed => return Ok(()),
                    ConnectionState::Failed => return Err(PeerError::Failed),
                    ConnectionState::Closed => return Err(PeerError::Closed),
                    _ => {}
                }
                if state_rx.changed().await.is_err() {
                    return Err(PeerError::Closed);
                }
            }
        })
        .await;
        let pc = PeerConnection {
            commands: cmd_tx,
            fast: fast_rx,
            data: data_rx,
            events: ev_rx,
            selected: sel_rx,
            state: state_rx,
            local_addrs,
            task,
        };
        match waited {
            Ok(Ok(())) => Ok(pc),
            Ok(Err(e)) => {
                pc.close().await;
                Err(e)
            }
            Err(_) => {
                pc.close().await;
                Err(PeerError::Timeout(limit))
            }
        }
    }

    /// Sends one datagram to the peer on the selected path.
    pub async fn send(&self, data: &[u8]) -> Result<(), PeerError> {
        self.sender().send(data).await
    }

    /// A handle that sends from another task while this one receives.
    pub fn sender(&self) -> DataSender {
        DataSender {
            commands: self.commands.clone(),
            fast: self.fast.clone(),
        }
    }

    /// The next datagram from the peer; `None` once closed. On a direct path the bytes are
    /// the ones the socket wrote (no copy).
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.data.recv().await
    }

    /// The next state or path change.
    pub async fn next_event(&mut self) -> Option<PeerEvent> {
        self.events.recv().await
    }

    /// Moves the event stream out, to read it while another task receives data (after
    /// this, [`PeerConnection::next_event`] returns `None`).
    pub fn take_events(&mut self) -> PeerEvents {
        let (_, closed) = mpsc::unbounded_channel();
        PeerEvents(std::mem::replace(&mut self.events, closed))
    }

    /// The selected path.
    pub fn selected(&self) -> Option<SelectedPair> {
        self.selected.borrow().clone()
    }

    /// The connection state.
    pub fn state(&self) -> ConnectionState {
        *self.state.borrow()
    }

    /// The local sockets.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Restarts ICE (RFC 8445 §9): new credentials and candidates are signalled in a new
    /// offer; the peer restarts and answers. Data stops until the new path is selected
    /// (watch [`PeerConnection::next_event`] or [`PeerConnection::state`]).
    pub async fn restart(&self) -> Result<(), PeerError> {
        self.commands
            .send(Command::Restart)
            .await
            .map_err(|_| PeerError::Closed)
    }

    /// A snapshot of the pairs, their counters and RTTs, and the TURN allocations with
    /// their transports. `None` once the connection is closed.
    pub async fn stats(&self) -> Option<PeerStats> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands.send(Command::Stats(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Closes the connection and its sockets.
    pub async fn close(self) {
        let _ = self.commands.send(Command::Close).await;
        let _ = self.task.await;
    }
}

/// Opens the UDP sockets: the addresses asked for, or one per usable interface address.
/// Returns them with `(address, interface rank)` in preference order.
async fn bind_sockets(
    config: &PeerConfig,
) -> Result<
    (
        HashMap<SocketAddr, Arc<UdpSocket>>,
        Vec<(SocketAddr, usize)>,
    ),
    PeerError,
> {
    if config.dscp.is_some_and(|d| d > 63) {
        return Err(PeerError::Config(format!(
            "DSCP {} is not a 6-bit value (0-63)",
            config.dscp.unwrap_or_default()
        )));
    }
    let mut sockets: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let binds: Vec<(SocketAddr, usize)> = if config.bind.is_empty() {
        local_addresses(&config.interfaces)
            .into_iter()
            .map(|(ip, rank)| (SocketAddr::new(ip, 0), rank))
            .collect()
    } else {
        config
            .bind
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, i))
            .collect()
    };
    let mut ranked = Vec::new();
    for (addr, rank) in binds {
        match UdpSocket::bind(addr).await {
            Ok(s) => {
                let local = s.local_addr()?;
                if let Some(dscp) = config.dscp {
                    crate::sockopt::set_dscp(&socket2::SockRef::from(&s), local, dscp)?;
                }
                ranked.push((local, rank));
                sockets.insert(local, Arc::new(s));
            }
            Err(e) => tracing::debug!(%addr, error = %e, "cannot bind"),
        }
    }
    if sockets.is_empty() {
        return Err(PeerError::Io(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "no usable local address",
        )));
    }
    Ok((sockets, ranked))
}

/// The transports a TURN URI allows, in racing order (RFC 7065 §3: `turn:` without
/// `?transport=` may use UDP and TCP; `turns:` is TLS over TCP). `None` for STUN URIs.
fn turn_transports(uri: &IceServerUri) -> Option<&'static [Transport]> {
    match (uri.scheme, uri.transport) {
        (Scheme::Turns, _) => Some(&[Transport::Tls]),
        (Scheme::Turn, Some(UriTransport::Udp)) => Some(&[Transport::Udp]),
        (Scheme::Turn, Some(UriTransport::Tcp)) => Some(&[Transport::Tcp]),
        (Scheme::Turn, None) => Some(&[Transport::Udp, Transport::Tcp]),
        (Scheme::Stun | Scheme::Stuns, _) => None,
    }
}

/// The TLS client configuration for `turns:` servers.
fn tls_client_config(config: &PeerConfig) -> Result<Arc<rustls::ClientConfig>, PeerError> {
    if let Some(tls) = &config.tls {
        return Ok(tls.clone());
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(config.tls_roots.iter().cloned());
    crate::turn::tls_client_config(TlsTrust::Roots(roots)).map_err(|e| match e {
        TlsConfigError::NoTrustAnchors => PeerError::Config(
            "turns: needs trust anchors (PeerConfig::tls_roots or PeerConfig::tls)".into(),
        ),
        e => PeerError::Config(e.to_string()),
    })
}

/// The options this side signals: `renomination` when the agent is configured for it.
fn ice_options(agent: &Agent) -> Vec<String> {
    if agent.renomination_configured() {
        vec!["renomination".into()]
    } else {
        Vec::new()
    }
}

fn apply_description(agent: &mut Agent, now: Instant, d: &Description) {
    agent.set_remote_credentials(Credentials {
        ufrag: d.ufrag.clone(),
        pwd: d.pwd.clone(),
    });
    // A lite peer makes this side controlling (RFC 8445 §6.1.1); renomination only when
    // both sides said so.
    agent.set_remote_lite(d.lite);
    agent.set_remote_renomination(d.ice_options.iter().any(|o| o == "renomination"));
    for c in &d.candidates {
        add_line(agent, now, c);
    }
}

fn add_line(agent: &mut Agent, now: Instant, line: &str) {
    match line.parse::<Candidate>() {
        Ok(c) => {
            agent.add_remote_candidate(now, c);
        }
        Err(e) => tracing::debug!(line, error = %e, "ignoring remote candidate"),
    }
}

fn forward_event(
    e: &Event,
    ev: &mpsc::UnboundedSender<PeerEvent>,
    sel: &watch::Sender<Option<SelectedPair>>,
    state: &watch::Sender<ConnectionState>,
) -> Option<()> {
    match e {
        Event::ConnectionState(s) => {
            state.send_replace(*s);
            ev.send(PeerEvent::State(*s)).ok()
        }
        Event::SelectedPair(p) => {
            sel.send_replace(Some(p.clone()));
            ev.send(PeerEvent::Selected(p.clone())).ok()
        }
        Event::RelayAllocated {
            server,
            transport,
            relayed,
        } => ev
            .send(PeerEvent::TurnTransport {
                server: *server,
                transport: *transport,
                relayed: *relayed,
            })
            .ok(),
        Event::ServerFailed { server, reason } => ev
            .send(PeerEvent::ServerFailed {
                server: *server,
                reason: reason.clone(),
            })
            .ok(),
        _ => Some(()),
    }
}

async fn read_socket(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    tx: mpsc::Sender<(SocketAddr, SocketAddr, Bytes)>,
    fast: watch::Receiver<Option<FastPath>>,
    data_tx: mpsc::Sender<Bytes>,
) {
    // Datagrams are received straight into a shared arena and handed out as `Bytes` that
    // point into it: no copy, and one allocation per arena rather than per datagram.
    const ARENA: usize = 512 * 1024;
    const MAX_DATAGRAM: usize = 65_536;
    let mut arena = BytesMut::with_capacity(ARENA);
    loop {
        if arena.capacity() < MAX_DATAGRAM {
            arena = BytesMut::with_capacity(ARENA);
        }
        let Ok((n, remote)) = socket.recv_buf_from(&mut arena).await else {
            arena.clear();
            continue;
        };
        let datagram = arena.split_to(n).freeze();
        // Application data on the selected direct pair goes straight to the application;
        // STUN (first byte 0-3, RFC 7983) and everything else goes to the agent.
        let on_fast_path = datagram.first().is_some_and(|b| *b > 3)
            && fast
                .borrow()
                .as_ref()
                .filter(|p| p.local == local && p.remote == remote)
                .map(|p| {
                    p.counters
                        .received
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                })
                .is_some();
        if on_fast_path {
            // A full receive queue drops the datagram, as a socket would.
            let _ = data_tx.try_send(datagram);
            continue;
        }
        if tx.send((local, remote, datagram)).await.is_err() {
            return;
        }
    }
}

struct Driver {
    agent: Agent,
    sockets: HashMap<SocketAddr, Arc<UdpSocket>>,
    in_rx: mpsc::Receiver<(SocketAddr, SocketAddr, Bytes)>,
    sig_in_rx: mpsc::UnboundedReceiver<io::Result<Option<SignalMessage>>>,
    sig_out_tx: mpsc::UnboundedSender<SignalMessage>,
    cmd_rx: mpsc::Receiver<Command>,
    data_tx: mpsc::Sender<Bytes>,
    ev_tx: mpsc::UnboundedSender<PeerEvent>,
    sel_tx: watch::Sender<Option<SelectedPair>>,
    state_tx: watch::Sender<ConnectionState>,
    readers: Vec<JoinHandle<()>>,
    /// Local candidates already signalled (`usize::MAX` after end-of-candidates).
    announced: usize,
    fast_tx: watch::Sender<Option<FastPath>>,
    /// Fast-path byte counters per (local, remote) pair, for `stats`.
    fast_counters: std::sync::Mutex<HashMap<(SocketAddr, SocketAddr), Arc<FastCounters>>>,
    /// The peer's current ufrag: an offer with another one is an ICE restart.
    remote_ufrag: Option<String>,
    /// TCP/TLS connections to TURN servers.
    streams: Streams,
    stream_rx: mpsc::Receiver<StreamInput>,
    /// Answers to the agent's `ResolveMdns`: the name and its address, if any.
    mdns_tx: mpsc::Sender<(String, Option<std::net::IpAddr>)>,
    mdns_rx: mpsc::Receiver<(String, Option<std::net::IpAddr>)>,
}

impl Driver {
    async fn run(mut self) {
        loop {
            self.flush().await;
            let deadline = self.agent.poll_timeout().map_or_else(
                || tokio::time::Instant::now() + Duration::from_secs(3600),
                tokio::time::Instant::from_std,
            );
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => self.agent.handle_timeout(Instant::now()),
                Some((local, remote, bytes)) = self.in_rx.recv() => {
                    let data_tx = &self.data_tx;
                    self.agent.handle_receive(Instant::now(), local, remote, &bytes, |_, data| {
                        // A full receive queue drops the datagram, as a socket would.
                        let _ = data_tx.try_send(Bytes::copy_from_slice(data));
                    });
                }
                Some(input) = self.stream_rx.recv() => self.stream_input(input),
                Some((name, ip)) = self.mdns_rx.recv() => self.agent.handle_mdns_resolved(Instant::now(), &name, ip),
                Some(msg) = self.sig_in_rx.recv() => match msg {
                    Ok(Some(SignalMessage::Candidate { candidate })) => add_line(&mut self.agent, Instant::now(), &candidate),
                    Ok(Some(SignalMessage::EndOfCandidates)) => self.agent.handle_end_of_remote_candidates(Instant::now()),
                    Ok(Some(SignalMessage::Offer(d))) => {
                        // An offer with new credentials mid-session: the peer restarted ICE
                        // (RFC 8445 §9); restart too and answer with ours.
                        let now = Instant::now();
                        let restarted = self.remote_ufrag.as_deref().is_some_and(|u| u != d.ufrag);
                        if restarted {
                            self.agent.restart(now);
                            self.announced = 0;
                        }
                        self.remote_ufrag = Some(d.ufrag.clone());
                        apply_description(&mut self.agent, now, &d);
                        if restarted {
                            let answer = self.description();
                            let _ = self.sig_out_tx.send(SignalMessage::Answer(answer));
                        }
                    }
                    Ok(Some(SignalMessage::Answer(d))) => {
                        self.remote_ufrag = Some(d.ufrag.clone());
                        apply_description(&mut self.agent, Instant::now(), &d);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "signalling error"),
                },
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(Command::Send(data)) => {
                        if let Ok(t) = self.agent.send(&data) {
                            self.transmit(t).await;
                        }
                    }
                    Some(Command::Restart) => {
                        self.agent.restart(Instant::now());
                        self.announced = 0;
                        let offer = self.description();
                        let _ = self.sig_out_tx.send(SignalMessage::Offer(offer));
                    }
                    Some(Command::Stats(reply)) => {
                        let _ = reply.send(self.stats());
                    }
                    Some(Command::Close) | None => break,
                },
            }
        }
        // Releases the allocations: UDP ones are deallocated (the transmits go out in this
        // flush), stream ones closed.
        self.agent.close(Instant::now());
        self.flush().await;
        self.streams.shutdown().await;
        for r in self.readers {
            r.abort();
        }
    }

    async fn transmit(&mut self, t: floe_ice::Transmit) {
        if t.transport.is_stream() {
            self.streams
                .send(t.transport, t.source, t.destination, t.data);
        } else if let Some(s) = self.sockets.get(&t.source) {
            if let Err(e) = s.send_to(&t.data, t.destination).await {
                tracing::debug!(to = %t.destination, error = %e, "send failed");
            }
        }
    }

    /// Bytes from, or the end of, a connection to a TURN server.
    fn stream_input(&mut self, input: StreamInput) {
        let now = Instant::now();
        match input {
            StreamInput::Data {
                transport,
                server,
                id,
                bytes,
            } if self.streams.is_current(transport, server, id) => {
                let data_tx = &self.data_tx;
                self.agent
                    .handle_stream_receive(now, transport, server, &bytes, |_, data| {
                        // A full receive queue drops the datagram, as a socket would.
                        let _ = data_tx.try_send(Bytes::copy_from_slice(data));
                    });
            }
            StreamInput::Closed {
                transport,
                server,
                id,
                reason,
            } if self.streams.is_current(transport, server, id) => {
                tracing::debug!(%server, %transport, %reason, "TURN connection lost");
                self.streams.remove(transport, server);
                self.agent
                    .handle_stream_failed(now, transport, server, &reason);
            }
            // From a connection already closed or replaced.
            StreamInput::Data { .. } | StreamInput::Closed { .. } => {}
        }
    }

    async fn flush(&mut self) {
        // A CloseStream must close the old connection before a transmit of a new
        // allocation on the same server opens the next one; the other events go out after
        // the transmits, so the application (told "connected") cannot send data ahead of
        // the check response that lets the peer accept it.
        let events: Vec<Event> = std::iter::from_fn(|| self.agent.poll_event()).collect();
        for e in &events {
            if let Event::CloseStream { transport, server } = e {
                self.streams.close(*transport, *server);
            }
        }
        while let Some(t) = self.agent.poll_transmit() {
            self.transmit(t).await;
        }
        for e in events {
            tracing::trace!(event = ?e, "agent event");
            match &e {
                Event::ResolveMdns { name } => self.resolve_mdns(name.clone()),
                Event::LocalCandidate(c) if self.announced != usize::MAX => {
                    let _ = self.sig_out_tx.send(SignalMessage::Candidate {
                        candidate: c.to_string(),
                    });
                    self.announced += 1;
                }
                Event::GatheringState(floe_ice::GatheringState::Complete)
                    if self.announced != usize::MAX =>
                {
                    let _ = self.sig_out_tx.send(SignalMessage::EndOfCandidates);
                    self.announced = usize::MAX;
                }
                _ => {}
            }
            let _ = forward_event(&e, &self.ev_tx, &self.sel_tx, &self.state_tx);
        }
        self.update_fast_path();
    }

    /// Resolves a remote candidate's `.local` name with the system resolver (nss-mdns,
    /// where installed, answers mDNS names), at most 2 s; the answer, or `None`, goes back
    /// to the agent.
    fn resolve_mdns(&self, name: String) {
        let tx = self.mdns_tx.clone();
        tokio::spawn(async move {
            let lookup = tokio::net::lookup_host((name.as_str(), 0));
            let ip = match tokio::time::timeout(Duration::from_secs(2), lookup).await {
                Ok(Ok(mut addrs)) => addrs.next().map(|a| a.ip()),
                _ => None,
            };
            tracing::debug!(%name, ?ip, "mDNS candidate resolved");
            let _ = tx.send((name, ip)).await;
        });
    }

    /// Publishes the selected pair as the fast path while it is direct and consent holds
    /// (RFC 7675: no sending without consent, so a lost consent withdraws it at once).
    /// This side's credentials and current candidates.
    fn description(&self) -> Description {
        let Credentials { ufrag, pwd } = self.agent.local_credentials().clone();
        Description {
            ufrag,
            pwd,
            lite: self.agent.is_lite(),
            ice_options: ice_options(&self.agent),
            candidates: self
                .agent
                .local_candidates()
                .map(ToString::to_string)
                .collect(),
        }
    }

    /// The agent's view plus the bytes that took the fast path.
    fn stats(&self) -> PeerStats {
        let mut pairs: Vec<_> = self.agent.pair_stats().collect();
        if let Ok(fast) = self.fast_counters.lock() {
            for (local, remote, _, stats) in &mut pairs {
                if let Some(c) = fast.get(&(*local, *remote)) {
                    stats.bytes_sent += c.sent.load(std::sync::atomic::Ordering::Relaxed);
                    stats.bytes_received += c.received.load(std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        PeerStats {
            state: self.agent.connection_state(),
            selected: self.agent.selected_pair(),
            pairs,
            relays: self.agent.relays().collect(),
            refused: self.agent.stats(),
        }
    }

    fn update_fast_path(&self) {
        let usable = matches!(
            self.agent.connection_state(),
            ConnectionState::Connected | ConnectionState::Completed
        );
        let fast = self
            .agent
            .selected_pair()
            .filter(|p| usable && p.local_kind != CandidateKind::Relayed)
            .and_then(|p| {
                let counters = self
                    .fast_counters
                    .lock()
                    .ok()?
                    .entry((p.local, p.remote))
                    .or_default()
                    .clone();
                self.sockets.get(&p.local).map(|socket| FastPath {
                    socket: socket.clone(),
                    local: p.local,
                    remote: p.remote,
                    counters,
                })
            });
        let changed = match (&*self.fast_tx.borrow(), &fast) {
            (Some(a), Some(b)) => a.local != b.local || a.remote != b.remote,
            (None, None) => false,
            _ => true,
        };
        if changed {
            self.fast_tx.send_replace(fast);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dscp_from_the_config_is_set_on_every_udp_socket() {
        let mut config = PeerConfig {
            bind: vec![
                "127.0.0.1:0".parse().unwrap(),
                "127.0.0.1:0".parse().unwrap(),
            ],
            dscp: Some(46),
            ..PeerConfig::default()
        };
        let (sockets, ranked) = bind_sockets(&config).await.unwrap();
        assert_eq!((sockets.len(), ranked.len()), (2, 2));
        for (local, socket) in &sockets {
            assert_eq!(
                crate::sockopt::dscp(&socket2::SockRef::from(socket.as_ref()), *local).unwrap(),
                46
            );
        }
        config.dscp = None;
        for (local, socket) in &bind_sockets(&config).await.unwrap().0 {
            assert_eq!(
                crate::sockopt::dscp(&socket2::SockRef::from(socket.as_ref()), *local).unwrap(),
                0
            );
        }
        config.dscp = Some(64);
        assert!(matches!(
            bind_sockets(&config).await,
            Err(PeerError::Config(_))
        ));
    }

    #[test]
    fn turn_uris_map_to_the_transports_rfc_7065_allows() {
        let t = |s: &str| turn_transports(&s.parse().unwrap());
        assert_eq!(
            t("turn:192.0.2.1"),
            Some(&[Transport::Udp, Transport::Tcp][..])
        );
        assert_eq!(
            t("turn:192.0.2.1?transport=udp"),
            Some(&[Transport::Udp][..])
        );
        assert_eq!(
            t("turn:192.0.2.1?transport=tcp"),
            Some(&[Transport::Tcp][..])
        );
        assert_eq!(t("turns:192.0.2.1"), Some(&[Transport::Tls][..]));
        assert_eq!(
            t("turns:192.0.2.1?transport=tcp"),
            Some(&[Transport::Tls][..])
        );
        assert_eq!(t("stun:192.0.2.1"), None);
    }

    #[test]
    fn turns_without_trust_anchors_is_a_configuration_error() {
        assert!(matches!(
            tls_client_config(&PeerConfig::default()),
            Err(PeerError::Config(_))
        ));
    }
}
