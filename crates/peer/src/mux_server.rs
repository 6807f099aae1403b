//! A small server-side runtime: any number of ICE-lite sessions on one UDP socket, as a
//! media server or SFU runs them (pion's UDPMux, str0m's single socket). One task owns
//! the socket, a [`floe_ice::mux::Mux`] and every session's [`Agent`]; each session is
//! answered through floe-peer's signalling ([`MuxServer::accept`]) and then sends and
//! receives datagrams through its [`MuxSession`].
//!
//! The sessions are ICE-lite (RFC 8445 §2.5): the server sits on an address peers reach,
//! offers its one host candidate and answers checks; the peer (a full agent, such as a
//! [`PeerConnection`](crate::PeerConnection)) controls. Datagrams from unknown senders
//! get no answer and cost nothing (see [`floe_ice::mux`]).
//!
//! With [`MuxServer::bind_with_tcp`], one TCP listener serves every session too: each
//! session offers it as its passive ICE-TCP candidate (RFC 6544), for peers whose UDP
//! is blocked. A connection is routed like a datagram, by its first check's USERNAME
//! and then by its 5-tuple; one whose first frame is not a check for a known session is
//! closed.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use floe_ice::mux::{Mux, MuxStats, Routed};
use floe_ice::{Agent, AgentConfig, ConnectionState, Event, Role};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::config::PeerError;
use crate::ice_tcp::{IceTcp, TcpInput};
use crate::session::Session;
use crate::signal::{SignalMessage, SignalReceiver, SignalSender};

/// Datagrams queued per session for the application before new ones are dropped.
const SESSION_QUEUE: usize = 1024;
/// Most ICE-TCP connections open at once on a mux server's listener.
pub const MAX_TCP_CONNECTIONS: usize = 4096;

/// One UDP socket serving many ICE-lite sessions. Cheap to clone; the socket closes when
/// the last clone and every session are dropped.
#[derive(Debug, Clone)]
pub struct MuxServer {
    local: SocketAddr,
    tcp: Option<SocketAddr>,
    commands: mpsc::UnboundedSender<Command>,
}

/// One session of a [`MuxServer`]: the peer's datagrams, and a way to send to it.
#[derive(Debug)]
pub struct MuxSession {
    key: u64,
    commands: mpsc::UnboundedSender<Command>,
    data: mpsc::Receiver<Bytes>,
}

#[derive(Debug)]
enum Command {
    Open {
        agent: Box<Agent>,
        session: Box<Session>,
        reply: oneshot::Sender<(u64, mpsc::Receiver<Bytes>, mpsc::Receiver<ConnectionState>)>,
    },
    Signal(u64, SignalMessage),
    Send(u64, Bytes),
    Close(u64),
    Stats(oneshot::Sender<MuxStats>),
}

impl MuxServer {
    /// Binds `addr` (a concrete address peers can reach: it is the sessions' host
    /// candidate) and starts the task on the current tokio runtime.
    pub async fn bind(addr: SocketAddr) -> io::Result<MuxServer> {
        MuxServer::start(addr, false).await
    }

    /// [`MuxServer::bind`], and a TCP listener on the same address (another port: the
    /// agent tells sockets apart by address) whose connections carry ICE-TCP (RFC 6544)
    /// for every session: each session offers it as a passive TCP candidate. UDP is still
    /// preferred by peers where both work.
    pub async fn bind_with_tcp(addr: SocketAddr) -> io::Result<MuxServer> {
        MuxServer::start(addr, true).await
    }

    async fn start(addr: SocketAddr, with_tcp: bool) -> io::Result<MuxServer> {
        let socket = Arc::new(UdpSocket::bind(addr).await?);
        let local = socket.local_addr()?;
        if local.ip().is_unspecified() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a mux server needs a concrete address: it is the sessions' host candidate",
            ));
        }
        let mut listener = None;
        if with_tcp {
            loop {
                let l = tokio::net::TcpListener::bind(SocketAddr::new(local.ip(), 0)).await?;
                let a = l.local_addr()?;
                if a != local {
                    listener = Some((l, a));
                    break;
                }
            }
        }
        let tcp = listener.as_ref().map(|(_, a)| *a);
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(Task::new(socket, local, listener.map(|(l, _)| l)).run(rx));
        Ok(MuxServer {
            local,
            tcp,
            commands,
        })
    }

    /// The routing counters, `answered` included: checks on nominated pairs the mux
    /// answered itself (see [`floe_ice::fast_answer`]). `None` once the server is gone.
    pub async fn stats(&self) -> Option<MuxStats> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Stats(tx)).ok()?;
        rx.await.ok()
    }

    /// The TCP listener's address, with [`MuxServer::bind_with_tcp`].
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// The shared socket's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Answers one peer's offer over `tx`/`rx` (floe-peer's signalling, the peer being the
    /// offerer) with a new lite session on the shared socket, and resolves once the peer
    /// has selected a path to it (or fails after `timeout`).
    pub async fn accept<S: SignalSender, R: SignalReceiver>(
        &self,
        mut tx: S,
        mut rx: R,
        timeout: std::time::Duration,
    ) -> Result<MuxSession, PeerError> {
        let sig = |e: io::Error| PeerError::Signalling(e.to_string());
        let offer = loop {
            match rx.recv().await.map_err(sig)? {
                Some(SignalMessage::Offer(d)) => break d,
                Some(_) => {}
                None => return Err(PeerError::Signalling("closed before the offer".into())),
            }
        };
        let now = Instant::now();
        let mut config = AgentConfig::default();
        config.lite = true;
        config.ice_tcp = self.tcp.is_some();
        let mut agent = Agent::new(config, Role::Controlled, now, rand::random());
        agent.add_host(now, self.local, 0);
        if let Some(tcp) = self.tcp {
            agent.add_tcp_host(now, tcp, 0);
        }
        let mut session = Session::new();
        let answer = session.answer(&mut agent, now, &offer);
        let end = session.described(&agent);
        let (reply, opened) = oneshot::channel();
        self.commands
            .send(Command::Open {
                agent: Box::new(agent),
                session: Box::new(session),
                reply,
            })
            .map_err(|_| PeerError::Closed)?;
        let (key, data, mut state) = opened.await.map_err(|_| PeerError::Closed)?;
        tx.send(answer).await.map_err(sig)?;
        if let Some(end) = end {
            tx.send(end).await.map_err(sig)?;
        }
        // Later candidates (and the end of them) go to the session; lite agents mostly
        // learn the peer from its checks.
        let commands = self.commands.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = rx.recv().await {
                if commands.send(Command::Signal(key, msg)).is_err() {
                    return;
                }
            }
        });
        let session = MuxSession {
            key,
            commands: self.commands.clone(),
            data,
        };
        let connected = async {
            while let Some(s) = state.recv().await {
                match s {
                    ConnectionState::Connected | ConnectionState::Completed => return Ok(()),
                    ConnectionState::Failed | ConnectionState::Closed => {
                        return Err(PeerError::Failed)
                    }
                    _ => {}
                }
            }
            Err(PeerError::Closed)
        };
        match tokio::time::timeout(timeout, connected).await {
            Ok(Ok(())) => Ok(session),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(PeerError::Timeout(timeout)),
        }
    }
}

impl MuxSession {
    /// Sends a datagram to the peer on the selected path (dropped if there is none yet).
    pub fn send(&self, data: &[u8]) -> Result<(), PeerError> {
        self.commands
            .send(Command::Send(self.key, Bytes::copy_from_slice(data)))
            .map_err(|_| PeerError::Closed)
    }

    /// The peer's next datagram; `None` once the session or the server is gone.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.data.recv().await
    }
}

impl Drop for MuxSession {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Close(self.key));
    }
}

struct Entry {
    agent: Box<Agent>,
    session: Box<Session>,
    data: mpsc::Sender<Bytes>,
    state: mpsc::Sender<ConnectionState>,
    due: Option<Instant>,
}

struct Task {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    /// The ICE-TCP listener's connections, and what they report.
    tcp: Option<IceTcp>,
    tcp_rx: mpsc::Receiver<TcpInput>,
    mux: Mux<u64>,
    sessions: HashMap<u64, Entry>,
    /// Every session's next timer.
    timers: BTreeSet<(Instant, u64)>,
    /// Sessions touched since the last flush (only they can have output).
    touched: Vec<u64>,
    next_key: u64,
}

impl Task {
    fn new(
        socket: Arc<UdpSocket>,
        local: SocketAddr,
        listener: Option<tokio::net::TcpListener>,
    ) -> Task {
        let (tcp_tx, tcp_rx) = mpsc::channel(1024);
        let tcp = listener.map(|l| IceTcp::with_limit(vec![l], tcp_tx, MAX_TCP_CONNECTIONS));
        Task {
            socket,
            local,
            tcp,
            tcp_rx,
            mux: Mux::new(),
            sessions: HashMap::new(),
            timers: BTreeSet::new(),
            touched: Vec::new(),
            next_key: 0,
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let next = self.timers.first().map(|(t, _)| *t);
            let socket = self.socket.clone();
            tokio::select! {
                c = commands.recv() => match c {
                    Some(c) => self.command(c),
                    None if self.sessions.is_empty() => return,
                    None => {}
                },
                r = socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        if let Some(bytes) = buf.get(..n) {
                            self.datagram(from, bytes);
                        }
                    }
                }
                () = sleep_until(next) => self.timeouts(),
                Some(input) = self.tcp_rx.recv() => self.tcp_input(input),
            }
            self.flush_all().await;
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Open {
                agent,
                session,
                reply,
            } => {
                let key = self.next_key;
                self.next_key += 1;
                if self
                    .mux
                    .add_session(key, &agent.local_credentials().ufrag)
                    .is_err()
                {
                    return;
                }
                let (data_tx, data_rx) = mpsc::channel(SESSION_QUEUE);
                let (state_tx, state_rx) = mpsc::channel(16);
                self.sessions.insert(
                    key,
                    Entry {
                        agent,
                        session,
                        data: data_tx,
                        state: state_tx,
                        due: None,
                    },
                );
                self.reschedule(key);
                let _ = reply.send((key, data_rx, state_rx));
            }
            Command::Signal(key, msg) => {
                if let Some(e) = self.sessions.get_mut(&key) {
                    let _ = e.session.handle_signal(&mut e.agent, Instant::now(), msg);
                }
                self.reschedule(key);
            }
            Command::Send(key, data) => {
                if let Some(e) = self.sessions.get_mut(&key) {
                    if let Ok(t) = e.agent.send(&data) {
                        if t.transport == floe_ice::Transport::Tcp {
                            if let Some(tcp) = &mut self.tcp {
                                tcp.send(t.source, t.destination, t.data);
                            }
                        } else {
                            // Sent at once; a full socket buffer drops it, as UDP would.
                            let _ = self.socket.try_send_to(&t.data, t.destination);
                        }
                    }
                }
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.mux.stats());
            }
            Command::Close(key) => {
                if let Some(mut e) = self.sessions.remove(&key) {
                    e.agent.close(Instant::now());
                    if let Some(t) = e.due {
                        self.timers.remove(&(t, key));
                    }
                }
                self.mux.remove_session(key);
            }
        }
    }

    fn datagram(&mut self, from: SocketAddr, bytes: &[u8]) {
        let now = Instant::now();
        let mut out = [0u8; 256];
        let key = match self
            .mux
            .route_or_answer(now, self.local, from, bytes, &mut out)
        {
            Routed::Answered { key, len, tell } => {
                // A check on a nominated pair, answered by the mux with the agent's bytes;
                // a full socket buffer drops it, as UDP would.
                let _ = self
                    .socket
                    .try_send_to(out.get(..len).unwrap_or_default(), from);
                if tell {
                    if let Some(e) = self.sessions.get_mut(&key) {
                        e.agent.handle_check_answered(now, self.local, from);
                    }
                    self.reschedule(key);
                }
                return;
            }
            Routed::Session(key) => key,
            Routed::Dropped => return,
        };
        if let Some(e) = self.sessions.get_mut(&key) {
            let data = &e.data;
            e.agent
                .handle_receive(Instant::now(), self.local, from, bytes, |_, d| {
                    // A full queue drops the datagram: the application is behind.
                    let _ = data.try_send(Bytes::copy_from_slice(d));
                });
        }
        self.reschedule(key);
    }

    /// An ICE-TCP connection accepted, a frame on one (routed like a datagram: a
    /// connection whose first frame belongs to no session is closed), or one closed.
    fn tcp_input(&mut self, input: TcpInput) {
        let Some(tcp) = &mut self.tcp else { return };
        let now = Instant::now();
        match input {
            TcpInput::Accepted {
                base,
                remote,
                id,
                writer,
            } => tcp.accepted(base, remote, id, writer),
            TcpInput::Frame {
                base,
                remote,
                id,
                packet,
            } if tcp.is_current(base, remote, id) => {
                let Some(key) = self.mux.route(base, remote, &packet) else {
                    tcp.close(base, remote);
                    return;
                };
                if let Some(e) = self.sessions.get_mut(&key) {
                    let data = &e.data;
                    e.agent
                        .handle_tcp_receive(now, base, remote, &packet, |_, d| {
                            let _ = data.try_send(Bytes::copy_from_slice(d));
                        });
                }
                self.reschedule(key);
            }
            TcpInput::Closed { base, remote, id } => {
                if tcp.closed(base, remote, id) {
                    if let Some(key) = self.mux.session_of(base, remote) {
                        if let Some(e) = self.sessions.get_mut(&key) {
                            e.agent.handle_tcp_closed(now, base, remote);
                        }
                        self.reschedule(key);
                    }
                }
            }
            TcpInput::Frame { .. } => {}
        }
    }

    fn timeouts(&mut self) {
        let now = Instant::now();
        while let Some(&(t, key)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, key));
            if let Some(e) = self.sessions.get_mut(&key) {
                e.due = None;
                e.agent.handle_timeout(now);
            }
            self.reschedule(key);
        }
    }

    /// Puts session `key`'s next timer in the schedule (and marks it for the flush).
    fn reschedule(&mut self, key: u64) {
        let Some(e) = self.sessions.get_mut(&key) else {
            return;
        };
        if !self.touched.contains(&key) {
            self.touched.push(key);
        }
        let due = e.agent.poll_timeout();
        if due != e.due {
            if let Some(old) = e.due {
                self.timers.remove(&(old, key));
            }
            if let Some(new) = due {
                self.timers.insert((new, key));
            }
            e.due = due;
        }
    }

    /// Sends what the touched sessions queued and tells their applications of state
    /// changes.
    async fn flush_all(&mut self) {
        for key in std::mem::take(&mut self.touched) {
            let Some(e) = self.sessions.get_mut(&key) else {
                continue;
            };
            while let Some(t) = e.agent.poll_transmit() {
                if t.transport == floe_ice::Transport::Tcp {
                    if let Some(tcp) = &mut self.tcp {
                        if !tcp.send(t.source, t.destination, t.data) {
                            e.agent
                                .handle_tcp_closed(Instant::now(), t.source, t.destination);
                        }
                    }
                } else {
                    let _ = self.socket.send_to(&t.data, t.destination).await;
                }
            }
            let mut path_changed = false;
            while let Some(ev) = e.agent.poll_event() {
                match ev {
                    Event::ConnectionState(s) => {
                        path_changed = true;
                        let _ = e.state.try_send(s);
                    }
                    Event::SelectedPair(_) => path_changed = true,
                    Event::CloseTcp { local, remote } => {
                        if let Some(tcp) = &mut self.tcp {
                            tcp.close(local, remote);
                        }
                    }
                    _ => {}
                }
            }
            if path_changed {
                // The mux answers checks on the nominated pair itself from now on (or no
                // longer, when the path or the state changed away from it).
                self.mux
                    .set_fast_answer(key, e.agent.fast_answer().as_ref());
            }
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}
