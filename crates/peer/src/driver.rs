//! The driver task: one tokio task owns the [`Agent`] and drives it from the sockets'
//! reader tasks, the TURN connections, the signalling and the application's commands;
//! it sends what the agent transmits, trickles its candidates (through [`Session`]) and
//! publishes its events, selected pair, state and fast path.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use floe_ice::{Agent, ConnectionState, Event, Recovery, Role, SelectedPair};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::addresses::{self, AddressChange, Watch};
use crate::config::{CandidateInfo, PeerEvent, PeerStats};
use crate::connection::bind_one;
use crate::fast_path::{FastPath, FastPaths};
use crate::ice_tcp::{IceTcp, TcpInput};
use crate::mdns::MdnsService;
use crate::session::Session;
use crate::signal::{SignalMessage, SignalReceiver, SignalSender};
use crate::socket_reader::{read_socket, Outlets, Received};
use crate::turn::streams::{StreamConfig, StreamInput, Streams};

/// The application's ends of a running driver.
#[derive(Debug)]
pub(crate) struct Handles {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) fast: watch::Receiver<Option<FastPath>>,
    pub(crate) data: mpsc::Receiver<Received>,
    pub(crate) events: mpsc::UnboundedReceiver<PeerEvent>,
    pub(crate) selected: watch::Receiver<Option<SelectedPair>>,
    pub(crate) state: watch::Receiver<ConnectionState>,
    pub(crate) task: JoinHandle<()>,
}

/// Starts the socket readers, the signalling reader and writer and the driver task for
/// an agent whose first offer/answer is done; `early_events` are the agent's events
/// from before.
pub(crate) fn spawn<S: SignalSender, R: SignalReceiver>(
    agent: Agent,
    session: Session,
    sockets: HashMap<SocketAddr, Arc<UdpSocket>>,
    streams: StreamConfig,
    (mut tx, mut rx): (S, R),
    early_events: Vec<Event>,
    Runtime {
        watch,
        server_urls,
        mdns,
        tcp_listeners,
    }: Runtime,
) -> Handles {
    let (in_tx, in_rx) = mpsc::channel::<(SocketAddr, SocketAddr, Bytes)>(4096);
    let (data_tx, data_rx) = mpsc::channel(4096);
    let (fast, fast_rx) = FastPaths::new();
    let mut readers = Vec::new();
    let (addr_tx, addr_rx) = mpsc::channel(16);
    if let Some(w) = &watch {
        let known = sockets.keys().map(SocketAddr::ip).collect();
        readers.push(addresses::spawn(
            w.policy.clone(),
            w.interval,
            known,
            addr_tx,
        ));
    }
    let mut socket_readers = Readers {
        in_tx,
        fast: fast_rx.clone(),
        data_tx: data_tx.clone(),
        tasks: HashMap::new(),
    };
    for (local, s) in &sockets {
        socket_readers.start(*local, s.clone());
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
    let (tcp_tx, tcp_rx) = mpsc::channel(1024);
    let (mdns_tx, mdns_rx) = mpsc::channel(16);
    let (cmd_tx, cmd_rx) = mpsc::channel(1024);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (sel_tx, sel_rx) = watch::channel(None);
    let (state_tx, state_rx) = watch::channel(ConnectionState::New);
    for e in early_events {
        let _ = forward_event(&e, &ev_tx, &sel_tx, &state_tx);
    }
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
        socket_readers,
        watch,
        addr_rx,
        restart_at: None,
        server_urls,
        session,
        fast,
        streams: Streams::new(streams, stream_tx),
        stream_rx,
        ice_tcp: IceTcp::new(tcp_listeners, tcp_tx),
        tcp_rx,
        mdns_tx,
        mdns_rx,
        mdns,
    };
    Handles {
        commands: cmd_tx,
        fast: fast_rx,
        data: data_rx,
        events: ev_rx,
        selected: sel_rx,
        state: state_rx,
        task: tokio::spawn(driver.run()),
    }
}

/// What the driver needs beyond the agent and the sockets: the address watcher's
/// settings, and the URI of each server address.
pub(crate) struct Runtime {
    pub(crate) watch: Option<Watch>,
    pub(crate) server_urls: HashMap<SocketAddr, String>,
    /// The mDNS service, when host names are published; else started at the first
    /// `.local` candidate.
    pub(crate) mdns: Option<MdnsService>,
    /// ICE-TCP listeners (RFC 6544 passive candidates), already given to the agent.
    pub(crate) tcp_listeners: Vec<tokio::net::TcpListener>,
}

/// The tasks reading the local sockets, and what they need to start one more.
struct Readers {
    in_tx: mpsc::Sender<(SocketAddr, SocketAddr, Bytes)>,
    fast: watch::Receiver<Option<FastPath>>,
    data_tx: mpsc::Sender<Received>,
    tasks: HashMap<SocketAddr, JoinHandle<()>>,
}

impl Readers {
    fn start(&mut self, local: SocketAddr, socket: Arc<UdpSocket>) {
        let out = Outlets {
            driver: self.in_tx.clone(),
            fast: self.fast.clone(),
            data: self.data_tx.clone(),
        };
        self.tasks
            .insert(local, tokio::spawn(read_socket(socket, local, out)));
    }

    fn stop(&mut self, local: SocketAddr) {
        if let Some(t) = self.tasks.remove(&local) {
            t.abort();
        }
    }

    fn stop_all(&mut self) {
        for (_, t) in self.tasks.drain() {
            t.abort();
        }
    }
}

/// What the application asks of the driver.
pub(crate) enum Command {
    Send(Vec<u8>),
    Restart,
    Stats(tokio::sync::oneshot::Sender<PeerStats>),
    Close,
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

/// The task that owns the agent: it feeds it what the sockets, the TURN connections,
/// the signalling and the application send, and carries out what it asks.
pub(crate) struct Driver {
    agent: Agent,
    sockets: HashMap<SocketAddr, Arc<UdpSocket>>,
    in_rx: mpsc::Receiver<(SocketAddr, SocketAddr, Bytes)>,
    sig_in_rx: mpsc::UnboundedReceiver<io::Result<Option<SignalMessage>>>,
    sig_out_tx: mpsc::UnboundedSender<SignalMessage>,
    cmd_rx: mpsc::Receiver<Command>,
    data_tx: mpsc::Sender<Received>,
    ev_tx: mpsc::UnboundedSender<PeerEvent>,
    sel_tx: watch::Sender<Option<SelectedPair>>,
    state_tx: watch::Sender<ConnectionState>,
    readers: Vec<JoinHandle<()>>,
    /// The task reading each local socket.
    socket_readers: Readers,
    /// Continual gathering: how sockets on new addresses are opened (`None`: no watch).
    watch: Option<Watch>,
    addr_rx: mpsc::Receiver<AddressChange>,
    /// The controlled side's own ICE restart, if the controlling side has not restarted
    /// by then (recovery asked for one).
    restart_at: Option<tokio::time::Instant>,
    /// The URI each STUN/TURN server address came from (candidate stats' `url`).
    server_urls: HashMap<SocketAddr, String>,
    /// Restarts and trickle, as the signalling sees them.
    session: Session,
    fast: FastPaths,
    /// TCP/TLS connections to TURN servers.
    streams: Streams,
    stream_rx: mpsc::Receiver<StreamInput>,
    /// ICE-TCP connections (RFC 6544).
    ice_tcp: IceTcp,
    tcp_rx: mpsc::Receiver<TcpInput>,
    /// Answers to the agent's `ResolveMdns`: the name and its address, if any.
    mdns_tx: mpsc::Sender<(String, Option<std::net::IpAddr>)>,
    mdns_rx: mpsc::Receiver<(String, Option<std::net::IpAddr>)>,
    mdns: Option<MdnsService>,
}

impl Driver {
    async fn run(mut self) {
        loop {
            self.flush().await;
            let deadline = self.agent.poll_timeout().map_or_else(
                || tokio::time::Instant::now() + Duration::from_secs(3600),
                tokio::time::Instant::from_std,
            );
            let restart_at = self.restart_at;
            let own_restart = async move {
                match restart_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = own_restart => {
                    self.restart_at = None;
                    if self.agent.connection_state() == ConnectionState::Disconnected {
                        tracing::warn!("recovery failed and the peer did not restart: restarting ICE");
                        let offer = self.session.restart(&mut self.agent, Instant::now());
                        let _ = self.sig_out_tx.send(offer);
                    }
                }
                Some(change) = self.addr_rx.recv() => self.address_changed(change).await,
                () = tokio::time::sleep_until(deadline) => {
                    let now = Instant::now();
                    // Data the fast path carried counts as heard before liveness looks.
                    for (local, remote) in self.fast.heard() {
                        self.agent.handle_data_received(now, local, remote);
                    }
                    self.agent.handle_timeout(now);
                }
                Some((local, remote, bytes)) = self.in_rx.recv() => {
                    let data_tx = &self.data_tx;
                    self.agent.handle_receive(Instant::now(), local, remote, &bytes, |_, data| {
                        // A full receive queue drops the datagram, as a socket would.
                        let _ = data_tx.try_send(Received::One(Bytes::copy_from_slice(data)));
                    });
                }
                Some(input) = self.stream_rx.recv() => self.stream_input(input),
                Some(input) = self.tcp_rx.recv() => self.tcp_input(input),
                Some((name, ip)) = self.mdns_rx.recv() => self.agent.handle_mdns_resolved(Instant::now(), &name, ip),
                Some(msg) = self.sig_in_rx.recv() => match msg {
                    Ok(Some(msg)) => {
                        if let Some(reply) = self.session.handle_signal(&mut self.agent, Instant::now(), msg) {
                            let _ = self.sig_out_tx.send(reply);
                        }
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
                        let offer = self.session.restart(&mut self.agent, Instant::now());
                        let _ = self.sig_out_tx.send(offer);
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
        self.ice_tcp.shutdown();
        for r in self.readers {
            r.abort();
        }
        self.socket_readers.stop_all();
    }

    /// The address watcher saw an address come or go (continual gathering).
    async fn address_changed(&mut self, change: AddressChange) {
        let now = Instant::now();
        match change {
            AddressChange::Added(ip, rank) => {
                let Some(w) = &self.watch else { return };
                let addr = SocketAddr::new(ip, 0);
                match bind_one(addr, w.port_range.as_ref(), w.dscp).await {
                    Ok((local, socket)) => {
                        let socket = Arc::new(socket);
                        self.socket_readers.start(local, socket.clone());
                        self.sockets.insert(local, socket);
                        self.agent.add_host(now, local, rank);
                    }
                    Err(e) => tracing::debug!(%ip, error = %e, "cannot bind a new address"),
                }
            }
            AddressChange::Removed(ip) => {
                let gone: Vec<SocketAddr> = self
                    .sockets
                    .keys()
                    .filter(|a| a.ip() == ip)
                    .copied()
                    .collect();
                for local in gone {
                    self.agent.remove_host(now, local);
                    self.socket_readers.stop(local);
                    self.sockets.remove(&local);
                }
            }
        }
    }

    async fn transmit(&mut self, t: floe_ice::Transmit) {
        if t.transport == floe_ice::Transport::Tcp && self.agent.is_tcp_base(t.source) {
            if !self.ice_tcp.send(t.source, t.destination, t.data) {
                self.agent
                    .handle_tcp_closed(Instant::now(), t.source, t.destination);
            }
        } else if t.transport.is_stream() {
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
                        let _ = data_tx.try_send(Received::One(Bytes::copy_from_slice(data)));
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

    /// An ICE-TCP connection accepted, a frame on one, or one closed.
    fn tcp_input(&mut self, input: TcpInput) {
        let now = Instant::now();
        match input {
            TcpInput::Accepted {
                base,
                remote,
                id,
                writer,
            } => self.ice_tcp.accepted(base, remote, id, writer),
            TcpInput::Frame {
                base,
                remote,
                id,
                packet,
            } if self.ice_tcp.is_current(base, remote, id) => {
                let data_tx = &self.data_tx;
                self.agent
                    .handle_tcp_receive(now, base, remote, &packet, |_, data| {
                        // A full receive queue drops the packet, as a socket would.
                        let _ = data_tx.try_send(Received::One(Bytes::copy_from_slice(data)));
                    });
            }
            TcpInput::Closed { base, remote, id } => {
                if self.ice_tcp.closed(base, remote, id) {
                    self.agent.handle_tcp_closed(now, base, remote);
                }
            }
            TcpInput::Frame { .. } => {}
        }
    }

    async fn flush(&mut self) {
        // A CloseStream must close the old connection before a transmit of a new
        // allocation on the same server opens the next one; the other events go out after
        // the transmits, so the application (told "connected") cannot send data ahead of
        // the check response that lets the peer accept it.
        let events: Vec<Event> = std::iter::from_fn(|| self.agent.poll_event()).collect();
        for e in &events {
            match e {
                Event::CloseStream { transport, server } => {
                    self.streams.close(*transport, *server);
                }
                Event::CloseTcp { local, remote } => self.ice_tcp.close(*local, *remote),
                Event::TurnRedirected {
                    server,
                    alternate,
                    transport,
                    domain,
                } => self
                    .streams
                    .redirected(*transport, *server, *alternate, domain.as_deref()),
                _ => {}
            }
        }
        while let Some(t) = self.agent.poll_transmit() {
            self.transmit(t).await;
        }
        for e in events {
            tracing::trace!(event = ?e, "agent event");
            if let Event::ResolveMdns { name } = &e {
                self.resolve_mdns(name.clone());
            }
            if let Some(msg) = self.session.handle_event(&e) {
                let _ = self.sig_out_tx.send(msg);
            }
            let _ = forward_event(&e, &self.ev_tx, &self.sel_tx, &self.state_tx);
            // Step 3 of the recovery ladder: the controlling side restarts ICE through the
            // signalling channel; the peer sees the new credentials and restarts too
            // (`Session::handle_signal`). The controlled side restarts itself a second later
            // if the controlling one has not (its own address changed, which the peer
            // cannot see): so two offers rarely cross.
            if e == Event::Recovery(Recovery::RestartNeeded) {
                if self.agent.role() == Role::Controlling {
                    tracing::warn!("recovery needs an ICE restart: restarting");
                    let offer = self.session.restart(&mut self.agent, Instant::now());
                    let _ = self.sig_out_tx.send(offer);
                } else {
                    self.restart_at = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                }
            }
        }
        self.fast.update(&self.agent, &self.sockets);
    }

    /// Resolves a remote candidate's `.local` name with floe's own mDNS resolver (no
    /// nss-mdns needed), at most 3 s; the answer, or `None`, goes back to the agent.
    fn resolve_mdns(&mut self, name: String) {
        let tx = self.mdns_tx.clone();
        let service = self.mdns.get_or_insert_with(MdnsService::start).clone();
        tokio::spawn(async move {
            let ip = service.resolve(name.clone()).await;
            tracing::debug!(%name, ?ip, "mDNS candidate resolved");
            let _ = tx.send((name, ip)).await;
        });
    }

    /// The agent's view plus the bytes that took the fast path.
    fn stats(&self) -> PeerStats {
        let mut pairs: Vec<_> = self.agent.pair_stats().collect();
        self.fast.add_counters(&mut pairs);
        let local_candidates = self
            .agent
            .local_candidate_stats()
            .into_iter()
            .map(|c| CandidateInfo {
                url: c.server.and_then(|s| self.server_urls.get(&s).cloned()),
                relay_protocol: c.relay_protocol,
                candidate: c.candidate,
            })
            .collect();
        PeerStats {
            state: self.agent.connection_state(),
            selected: self.agent.selected_pair(),
            pairs,
            local_candidates,
            remote_candidates: self.agent.remote_candidates().cloned().collect(),
            relays: self.agent.relays().collect(),
            refused: self.agent.stats(),
        }
    }
}

/// Publishes an agent event to the application (events, selected pair, state).
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
        Event::Recovery(r) => ev.send(PeerEvent::Recovery(r.clone())).ok(),
        _ => Some(()),
    }
}
