//! # floe-server
//!
//! The tokio runtime around the sans-IO [`floe_turn::server::Server`]: UDP, TCP and TLS
//! listeners on any number of addresses, relay sockets from a port range, RFC 5780
//! alternate-address sockets, graceful shutdown, counters and Prometheus metrics
//! ([`ServerHandle::serve_metrics`]). This is what `floe serve` runs and what tests start
//! in-process on loopback.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use floe_server::{ServerOptions, spawn};
//! let mut opts = ServerOptions::new("127.0.0.1:3478".parse().unwrap());
//! opts.turn.users.insert("alice".into(), "secret".into());
//! let server = spawn(opts).await?;
//! println!("listening on {:?}", server.udp_addrs());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod batch;
mod core;
mod datagrams;
mod events;
mod fleet;
mod icmp;
mod listen;
pub mod metrics;
mod relays;
mod send;
mod streams;
mod tcp_relay;
mod tls;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use floe_turn::server::{Server, ServerConfig, ServerStats};
use floe_turn::Transport;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use fleet::{redact as redact_url, FleetHealth, FleetOptions};
use relays::SocketRelays;
pub use tcp_relay::TcpRelayCounters;
pub use tls::{load_tls_config, TlsError};

/// What to listen on and how to relay.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// UDP listeners (STUN and TURN over UDP).
    pub udp: Vec<SocketAddr>,
    /// TCP listeners (TURN over TCP, RFC 8656 §3.1).
    pub tcp: Vec<SocketAddr>,
    /// TLS listeners (TURN over TLS); needs [`ServerOptions::tls_config`].
    pub tls: Vec<SocketAddr>,
    /// The TLS certificate and key.
    pub tls_config: Option<Arc<rustls::ServerConfig>>,
    /// IPv4 address relay sockets bind to (and that clients are told).
    pub relay_ipv4: Option<IpAddr>,
    /// IPv6 address relay sockets bind to.
    pub relay_ipv6: Option<IpAddr>,
    /// Relay port range (RFC 8656 §7.2: 49152-65535 by default).
    pub relay_ports: RangeInclusive<u16>,
    /// RFC 5780: an alternate address (different IP and port from the first UDP
    /// listener). The server then also listens on the two mixed combinations.
    pub alternate: Option<SocketAddr>,
    /// The TURN server core's configuration.
    pub turn: ServerConfig,
    /// Independent workers, each with its own `SO_REUSEPORT` sockets on every listen
    /// address, its own TURN core, allocations and relay sockets; they share the nonce
    /// key, the users, the allocation quotas, the RESERVATION-TOKENs, the users'
    /// bandwidth buckets and the counters.
    /// 0 = one per CPU on Linux, one elsewhere ([`worker_count`]). More than one needs
    /// Linux. Default 1.
    pub workers: usize,
    /// Share users and allocation quotas with a fleet through Redis (docs/fleet.md):
    /// the users, REST secrets and revocations found there are added to
    /// [`ServerConfig::users`] and [`ServerConfig::rest_secrets`], and
    /// [`ServerConfig::max_allocations_per_user`] and [`ServerConfig::max_allocations`]
    /// hold for the whole fleet (unless the realm's Redis keys say otherwise).
    pub fleet: Option<FleetOptions>,
}

impl ServerOptions {
    /// UDP on `listen`, relaying from its IP (when it is not a wildcard address).
    pub fn new(listen: SocketAddr) -> ServerOptions {
        let ip = (!listen.ip().is_unspecified()).then_some(listen.ip());
        ServerOptions {
            udp: vec![listen],
            tcp: Vec::new(),
            tls: Vec::new(),
            tls_config: None,
            relay_ipv4: ip.filter(IpAddr::is_ipv4),
            relay_ipv6: ip.filter(IpAddr::is_ipv6),
            relay_ports: 49_152..=65_535,
            alternate: None,
            turn: ServerConfig::default(),
            workers: 1,
            fleet: None,
        }
    }
}

/// A count of log lines dropped, read at each scrape.
#[derive(Clone)]
pub struct LogLinesDropped(Arc<dyn Fn() -> u64 + Send + Sync>);

impl LogLinesDropped {
    /// Reads the count from `f`.
    pub fn new(f: impl Fn() -> u64 + Send + Sync + 'static) -> LogLinesDropped {
        LogLinesDropped(Arc::new(f))
    }

    /// The count now.
    pub fn get(&self) -> u64 {
        (self.0)()
    }
}

impl std::fmt::Debug for LogLinesDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LogLinesDropped").field(&self.get()).finish()
    }
}

/// Events for the core task.
#[derive(Debug)]
pub(crate) enum Inbound {
    Client {
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
        data: Vec<u8>,
    },
    /// UDP datagrams from peers to the relayed address `relayed`, read in one go.
    Peer {
        relayed: SocketAddr,
        datagrams: datagrams::Datagrams,
    },
    /// ICMP errors for datagrams the relayed address `relayed` sent: (peer, ICMP).
    PeerIcmp {
        relayed: SocketAddr,
        errors: Vec<(SocketAddr, floe_stun::attributes::Icmp)>,
    },
    Opened {
        local: SocketAddr,
        remote: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    Closed {
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// Stop taking new allocations ([`ServerHandle::drain`]); the sender hears when the
    /// worker has, and has published its counters.
    Drain(oneshot::Sender<()>),
    /// Publish the counters now ([`ServerHandle::current_stats`]); the sender hears
    /// when the worker has.
    Publish(oneshot::Sender<()>),
    /// A peer connected to the TCP relayed address `relayed` (RFC 6062 §5.3).
    PeerTcp {
        relayed: SocketAddr,
        peer: SocketAddr,
        stream: tokio::net::TcpStream,
    },
    /// A Connect's connection to its peer (RFC 6062 §5.2): up, or failed.
    TcpConnected {
        id: u32,
        stream: Option<tokio::net::TcpStream>,
    },
    /// A ConnectionBind request on a client connection, which waits for the verdict
    /// (RFC 6062 §5.4).
    ConnectionBind {
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
        data: Vec<u8>,
        reply: tcp_relay::BindReply,
        /// The connection's writer: another worker's connection may carry the
        /// ConnectionBind of this worker's peer connection.
        writer: mpsc::Sender<Vec<u8>>,
    },
    /// A joined TURN-TCP data connection ended.
    TcpClosed { id: u32 },
    /// The fleet's answer to an Allocate's [`FleetOp::Acquire`](floe_turn::server::FleetOp).
    Fleet {
        ticket: u64,
        user: String,
        answer: floe_turn::server::FleetAnswer,
    },
    /// Users, REST secrets and revocations read from the fleet's Redis.
    StoredUsers(Arc<floe_turn::server::StoredUsers>),
    /// New users and REST secrets ([`ServerHandle::reload`]).
    Reload {
        users: HashMap<String, String>,
        rest_secrets: Vec<String>,
    },
}

/// A running server. Dropping it does not stop the server; call
/// [`ServerHandle::shutdown`].
#[derive(Debug)]
pub struct ServerHandle {
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    tls: Vec<SocketAddr>,
    /// The sum of the workers' counters.
    stats: watch::Receiver<ServerStats>,
    /// Each worker's own counters.
    worker_stats: Vec<watch::Receiver<ServerStats>>,
    stop: Vec<oneshot::Sender<()>>,
    /// Each worker's queue.
    inbound: Vec<mpsc::Sender<Inbound>>,
    tls_acceptor: Option<watch::Sender<Arc<rustls::ServerConfig>>>,
    /// Each worker's core task.
    cores: Vec<JoinHandle<()>>,
    /// Tasks that add the workers' counters up.
    summing: Vec<JoinHandle<()>>,
    /// When [`spawn`] was called, in seconds since the Unix epoch.
    started_unix: f64,
    metrics: Vec<JoinHandle<()>>,
    /// The fleet task and its health, with `--redis`.
    fleet: Option<(JoinHandle<()>, Arc<FleetHealth>)>,
    /// TURN-TCP (RFC 6062) traffic, which bypasses the cores' counters.
    tcp_relays: Arc<tcp_relay::TcpRelayCounters>,
    /// How many log lines the process dropped, for the metrics.
    log_dropped: Option<LogLinesDropped>,
}

impl ServerHandle {
    /// Bound UDP addresses (with the OS's ports when 0 was asked for).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp
    }

    /// Bound TCP addresses.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp
    }

    /// Bound TLS addresses.
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls
    }

    /// The latest counters, summed over the workers: the relayed packets and bytes may
    /// be up to 5 ms old ([`ServerHandle::current_stats`] waits for them).
    pub fn stats(&self) -> ServerStats {
        sum_stats(&self.worker_stats)
    }

    /// How many workers run.
    pub fn workers(&self) -> usize {
        self.inbound.len()
    }

    /// The counters summed over the workers once each has published what it handled so
    /// far: unlike [`ServerHandle::stats`], current in the relayed packets and bytes
    /// too (for an exit line, or a test that just relayed).
    pub async fn current_stats(&self) -> ServerStats {
        for q in &self.inbound {
            let (ack, done) = oneshot::channel();
            if q.send(Inbound::Publish(ack)).await.is_ok() {
                let _ = done.await;
            }
        }
        self.stats()
    }

    /// A receiver of the counters, updated after each batch the cores handle, and at
    /// most every 5 ms when only the relayed packets and bytes changed (for a panic hook
    /// or a metrics task that outlives a borrow of the handle).
    pub fn stats_watch(&self) -> watch::Receiver<ServerStats> {
        self.stats.clone()
    }

    /// Events waiting for the TURN cores in their queues, over all workers (datagrams
    /// from peers, TCP/TLS clients' messages, control; client UDP datagrams are read by
    /// the cores from the listener sockets and wait in those); readers wait when a queue
    /// is full, so a depth near [`ServerHandle::queue_capacity`] means the cores are the
    /// bottleneck.
    pub fn queue_depth(&self) -> usize {
        self.inbound
            .iter()
            .map(|q| q.max_capacity().saturating_sub(q.capacity()))
            .sum()
    }

    /// The most events the workers' queues hold, together.
    pub fn queue_capacity(&self) -> usize {
        self.inbound.iter().map(mpsc::Sender::max_capacity).sum()
    }

    /// Where the metrics read how many log lines the process dropped
    /// (`floe_log_lines_dropped_total`): a logger that drops lines rather than block
    /// the cores when stderr stalls (as `floe serve`'s does) says so here. Call it before
    /// [`ServerHandle::serve_metrics`].
    pub fn set_log_lines_dropped(&mut self, dropped: LogLinesDropped) {
        self.log_dropped = Some(dropped);
    }

    /// Serves Prometheus metrics at `GET /metrics` on `addr` (port 0 for any) until
    /// [`ServerHandle::shutdown`], and returns the bound address. See [`metrics`] for
    /// the metric names and the limits of the HTTP responder.
    pub async fn serve_metrics(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let registry = metrics::registry(metrics::Sources {
            stats: self.worker_stats.clone(),
            queues: self.inbound.iter().map(mpsc::Sender::downgrade).collect(),
            started_unix: self.started_unix,
            fleet: self.fleet_health(),
            tcp_relays: Some(self.tcp_relays.clone()),
            log_dropped: self.log_dropped.clone(),
        });
        self.metrics
            .push(tokio::spawn(metrics::serve(listener, Arc::new(registry))));
        tracing::info!(metrics = %local, "serving Prometheus metrics at /metrics");
        Ok(local)
    }

    /// Starts draining: new Allocates get 300 Try Alternate (with
    /// [`ServerConfig::alternate_server`]) or 508, while existing allocations keep
    /// relaying and refreshing ([`Server::drain`]). Returns once every worker refuses
    /// them and has published its counters, so `stats().allocations` then counts every
    /// allocation made before; watch it fall to zero, then [`ServerHandle::shutdown`].
    pub async fn drain(&self) {
        for q in &self.inbound {
            let (ack, done) = oneshot::channel();
            if q.send(Inbound::Drain(ack)).await.is_ok() {
                let _ = done.await;
            }
        }
    }

    /// Replaces the users, the REST secrets and (when TLS listeners exist and `tls` is
    /// given) the TLS certificate, without dropping allocations or connections that are
    /// up: the new certificate serves later handshakes ([`Server::reload_credentials`]).
    /// Returns an error if a certificate is given but the server has no TLS listener.
    pub async fn reload(
        &self,
        users: HashMap<String, String>,
        rest_secrets: Vec<String>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<()> {
        if let Some(config) = tls {
            let sender = self
                .tls_acceptor
                .as_ref()
                .ok_or_else(|| io::Error::other("no TLS listener to give a certificate to"))?;
            sender.send_replace(config);
        }
        for q in &self.inbound {
            q.send(Inbound::Reload {
                users: users.clone(),
                rest_secrets: rest_secrets.clone(),
            })
            .await
            .map_err(|_| io::Error::other("the server has stopped"))?;
        }
        Ok(())
    }

    /// TURN-TCP (RFC 6062) traffic: bytes each way and joined connections, live.
    pub fn tcp_relays(&self) -> Arc<TcpRelayCounters> {
        self.tcp_relays.clone()
    }

    /// The fleet's Redis health, when the server is part of a fleet.
    pub fn fleet_health(&self) -> Option<Arc<FleetHealth>> {
        self.fleet.as_ref().map(|(_, h)| h.clone())
    }

    /// Stops listening, closes relay sockets and connections, and waits for the core.
    /// A fleet member then leaves the fleet, so its places stop counting at once.
    pub async fn shutdown(mut self) {
        for m in self.metrics.drain(..) {
            m.abort();
        }
        for stop in self.stop.drain(..) {
            let _ = stop.send(());
        }
        for core in self.cores.drain(..) {
            let _ = core.await;
        }
        if let Some((task, _)) = self.fleet.take() {
            // The task ends when the cores' senders are gone; leaving takes at most a
            // timeout or two.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
        for t in self.summing.drain(..) {
            t.abort();
        }
    }
}

/// The sum of the workers' counters.
pub(crate) fn sum_stats(workers: &[watch::Receiver<ServerStats>]) -> ServerStats {
    let mut total = ServerStats::default();
    for w in workers {
        total.add(&w.borrow());
    }
    total
}

/// One worker's share of the listeners, before its core starts.
struct Worker {
    tx: mpsc::Sender<Inbound>,
    rx: mpsc::Receiver<Inbound>,
    /// Sockets the worker sends from (its listeners and the RFC 5780 ones).
    udp: HashMap<SocketAddr, Arc<UdpSocket>>,
    /// Its listeners, read by its core (`batch.rs`).
    listeners: batch::Listeners,
    tasks: Vec<JoinHandle<()>>,
}

/// How many workers [`ServerOptions::workers`] asks for: 0 is one per CPU on Linux
/// (SO_REUSEPORT spreads clients over them there) and one elsewhere.
pub fn worker_count(workers: usize) -> usize {
    match workers {
        0 if cfg!(target_os = "linux") => {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }
        0 => 1,
        n => n,
    }
}

/// Binds every listener and starts the server: [`ServerOptions::workers`] independent
/// workers (see there), each a TURN core task with its own queue.
pub async fn spawn(opts: ServerOptions) -> io::Result<ServerHandle> {
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let n = worker_count(opts.workers);
    let shared = n > 1;
    let mut workers: Vec<Worker> = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = mpsc::channel::<Inbound>(4096);
        workers.push(Worker {
            tx,
            rx,
            udp: HashMap::new(),
            listeners: batch::Listeners::default(),
            tasks: Vec::new(),
        });
    }
    // UDP listeners: worker 0 binds (port 0 picks the port), the others bind what it got.
    let mut udp_addrs = Vec::new();
    for addr in &opts.udp {
        let mut local = *addr;
        for (i, w) in workers.iter_mut().enumerate() {
            let s = Arc::new(listen::udp(local, shared)?);
            set_buffers(&s, LISTENER_BUFFER);
            if i == 0 {
                local = s.local_addr()?;
                udp_addrs.push(local);
            }
            if let Err((s, e)) = w.listeners.add(local, s.clone()) {
                tracing::debug!(%local, error = %e, "no batched UDP receive; reading one datagram at a time");
                w.tasks.push(tokio::spawn(read_udp(s, local, w.tx.clone())));
            }
            w.udp.insert(local, s);
        }
    }
    let mut turn = opts.turn.clone();
    if turn.quota.is_none() {
        turn.quota = Some(Arc::new(floe_turn::server::SharedQuota::new()));
    }
    if turn.reservations.is_none() {
        turn.reservations = Some(Arc::new(floe_turn::server::SharedReservations::new()));
    }
    if turn.user_buckets.is_none() {
        turn.user_buckets = Some(Arc::new(floe_turn::server::SharedUserBuckets::new()));
    }
    turn.fleet_quota = opts.fleet.is_some();
    // The fleet's users are read once before serving, so a client that comes as soon
    // as the server listens finds them (when Redis answers).
    let fleet = match &opts.fleet {
        Some(f) => {
            let mut fleet = fleet::Fleet::new(
                f.clone(),
                &turn.realm,
                turn.max_allocations_per_user,
                turn.max_allocations,
                workers.iter().map(|w| w.tx.clone()).collect(),
            )
            .map_err(io::Error::other)?;
            fleet.sync_users().await;
            fleet.keep_lease().await;
            Some(fleet)
        }
        None => None,
    };
    let parked = relays::Parked::default();
    let tcp_ports = tcp_relay::TcpPorts::default();
    if let Some(alternate) = opts.alternate {
        let primary = *udp_addrs
            .first()
            .ok_or_else(|| io::Error::other("RFC 5780 needs a UDP listener"))?;
        let alt = Arc::new(UdpSocket::bind(alternate).await?);
        let alt_addr = alt.local_addr()?;
        if alt_addr.ip() == primary.ip() || alt_addr.port() == primary.port() {
            return Err(io::Error::other(
                "the alternate address must differ from the primary in both IP and port",
            ));
        }
        let mut extra = vec![(alt_addr, alt)];
        for mixed in [
            SocketAddr::new(primary.ip(), alt_addr.port()),
            SocketAddr::new(alt_addr.ip(), primary.port()),
        ] {
            extra.push((mixed, Arc::new(UdpSocket::bind(mixed).await?)));
        }
        // Worker 0 reads these; every worker may answer from them.
        for (i, w) in workers.iter_mut().enumerate() {
            for (local, s) in &extra {
                if i == 0 {
                    w.tasks
                        .push(tokio::spawn(read_udp(s.clone(), *local, w.tx.clone())));
                }
                w.udp.insert(*local, s.clone());
            }
        }
        turn.rfc5780 = Some((primary, alt_addr));
    }
    let tcp_counters = Arc::new(tcp_relay::TcpRelayCounters::default());
    let tcp_addrs = listen_streams(&opts.tcp, None, &mut workers, shared, &tcp_counters)?;
    let mut tls_acceptor = None;
    let tls_addrs = if opts.tls.is_empty() {
        Vec::new()
    } else {
        let config = opts
            .tls_config
            .clone()
            .ok_or_else(|| io::Error::other("TLS listeners need a certificate and key"))?;
        let (tls_tx, tls_rx) = watch::channel(config);
        tls_acceptor = Some(tls_tx);
        listen_streams(
            &opts.tls,
            Some(&tls_rx),
            &mut workers,
            shared,
            &tcp_counters,
        )?
    };
    let now = Instant::now();
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut servers: Vec<Server<SocketRelays>> = Vec::with_capacity(n);
    for w in &workers {
        let relays = SocketRelays::new(
            opts.relay_ipv4,
            opts.relay_ipv6,
            opts.relay_ports.clone(),
            parked.clone(),
            tcp_ports.clone(),
            w.tx.clone(),
        );
        let mut server = Server::new(turn.clone(), relays, now, rand::random());
        if let Some(first) = servers.first() {
            server.share_nonces_with(first);
        }
        server.set_wall_clock(now, unix);
        // CONNECTION-IDs name their worker (RFC 6062 data connections may reach any).
        server.set_connection_id_shard(servers.len() as u32, n as u32);
        servers.push(server);
    }
    tracing::info!(udp = ?udp_addrs, tcp = ?tcp_addrs, tls = ?tls_addrs, workers = n, "floe server listening");
    let mut handle = ServerHandle {
        udp: udp_addrs,
        tcp: tcp_addrs,
        tls: tls_addrs,
        stats: watch::channel(ServerStats::default()).1,
        worker_stats: Vec::with_capacity(n),
        stop: Vec::with_capacity(n),
        inbound: Vec::with_capacity(n),
        tls_acceptor,
        cores: Vec::with_capacity(n),
        summing: Vec::new(),
        started_unix,
        metrics: Vec::new(),
        fleet: None,
        tcp_relays: tcp_counters,
        log_dropped: None,
    };
    let fleet_tx = match fleet {
        Some(fleet) => {
            let (tx, rx) = mpsc::unbounded_channel();
            let health = fleet.health();
            handle.fleet = Some((tokio::spawn(fleet.run(rx)), health));
            Some(tx)
        }
        None => None,
    };
    for (i, (w, server)) in workers.into_iter().zip(servers).enumerate() {
        let (stats_tx, stats_rx) = watch::channel(ServerStats::default());
        let (stop_tx, stop_rx) = oneshot::channel();
        let fleet = fleet_tx.clone().map(|tx| core::FleetTx { worker: i, tx });
        let core = core::run_core(
            server,
            core::Inputs {
                rx: w.rx,
                listeners: w.listeners,
            },
            w.udp,
            stats_tx,
            stop_rx,
            w.tasks,
            fleet,
        );
        handle.cores.push(tokio::spawn(core));
        handle.worker_stats.push(stats_rx);
        handle.stop.push(stop_tx);
        handle.inbound.push(w.tx);
    }
    // The summed counters as one watch, for a panic hook or the metrics.
    let (sum_tx, sum_rx) = watch::channel(ServerStats::default());
    let sum_tx = Arc::new(sum_tx);
    for w in &handle.worker_stats {
        let (mut one, all, sum_tx) = (w.clone(), handle.worker_stats.clone(), sum_tx.clone());
        handle.summing.push(tokio::spawn(async move {
            while one.changed().await.is_ok() {
                sum_tx.send_replace(sum_stats(&all));
            }
        }));
    }
    handle.stats = sum_rx;
    Ok(handle)
}

/// Binds the TCP (or, with `tls`, TLS) listeners on `addrs` for every worker; returns
/// the bound addresses.
fn listen_streams(
    addrs: &[SocketAddr],
    tls: Option<&watch::Receiver<Arc<rustls::ServerConfig>>>,
    workers: &mut [Worker],
    shared: bool,
    tcp: &Arc<tcp_relay::TcpRelayCounters>,
) -> io::Result<Vec<SocketAddr>> {
    let mut bound = Vec::new();
    let all = Arc::new(streams::Shared {
        workers: workers.iter().map(|w| w.tx.clone()).collect(),
        tcp: tcp.clone(),
    });
    for addr in addrs {
        let mut local = *addr;
        for (i, w) in workers.iter_mut().enumerate() {
            let l = listen::tcp(local, shared)?;
            if i == 0 {
                local = l.local_addr()?;
                bound.push(local);
            }
            w.tasks.push(tokio::spawn(streams::accept_tcp(
                l,
                tls.cloned(),
                w.tx.clone(),
                all.clone(),
            )));
        }
    }
    Ok(bound)
}

/// Socket buffer size asked for on UDP listeners (the kernel caps it at
/// `net.core.rmem_max` / `wmem_max`). All clients share a listener, so a burst from many
/// of them must fit while the core is busy; the 208 KiB Linux default holds fewer than
/// a hundred 1200-byte datagrams. coturn asks for the same (Linux doubles it).
pub(crate) const LISTENER_BUFFER: usize = 2 << 20;
/// Socket buffer size asked for on relay sockets (one peer flow or a few each).
pub(crate) const RELAY_BUFFER: usize = 1 << 20;

/// Best effort: a smaller buffer only means more loss under bursts.
pub(crate) fn set_buffers(socket: &UdpSocket, bytes: usize) {
    let s = socket2::SockRef::from(socket);
    if let Err(e) = s
        .set_recv_buffer_size(bytes)
        .and_then(|()| s.set_send_buffer_size(bytes))
    {
        tracing::debug!(error = %e, "cannot set socket buffer sizes");
    }
}

/// Reads one datagram at a time (the RFC 5780 sockets, and the fallback of
/// [`batch::Listeners`]).
pub(crate) async fn read_udp(socket: Arc<UdpSocket>, local: SocketAddr, tx: mpsc::Sender<Inbound>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        // Errors such as ICMP port unreachable surfacing as ECONNREFUSED are per-datagram.
        let Ok((n, remote)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Some(data) = buf.get(..n).map(<[u8]>::to_vec) else {
            continue;
        };
        if tx
            .send(Inbound::Client {
                transport: Transport::Udp,
                local,
                remote,
                data,
            })
            .await
            .is_err()
        {
            return;
        }
    }
}
