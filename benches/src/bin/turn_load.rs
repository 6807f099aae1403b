//! `turn_load`: a load generator for a TURN server over UDP (loopback), driving the
//! floe-turn sans-IO client. Prints one JSON line per run, so `benches/turn_vs_coturn.sh`
//! can run it against floe and coturn the same way and compare.
//!
//! - `packets`: N allocations, each with a channel bound to its own local UDP peer
//!   socket, send ChannelData as fast as a per-flow window of unacknowledged packets
//!   allows (or at a fixed offered rate). Every datagram carries a sequence number; the
//!   receiving side's highest sequence number opens the window, and a window that makes
//!   no progress for 20 ms is written off as lost, so loss cannot stall the sender.
//!   Reports delivered packets/s over the measured interval and loss over the whole run.
//!   `--direction up` is client → relay → peer, `down` is peer → relay → client.
//! - `allocs`: workers that each loop Allocate (401 challenge, then the authenticated
//!   request) + Refresh(LIFETIME 0) with a fresh client; reports cycles/s.
//!
//! ```text
//! turn_load --server 127.0.0.1:3478 packets --clients 4 --size 100 --window 64 --secs 5
//! turn_load --server 127.0.0.1:3478 allocs --concurrency 4 --secs 5
//! turn_load --server 127.0.0.1:3478 hold --count 2000 --secs 2
//! ```
// Counts become f64 only for the printed rates.
#![allow(clippy::cast_precision_loss)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};
use floe_turn::client::{Client, ClientConfig, Event};
use floe_turn::{ChannelData, Transport};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

/// Load generator for a TURN server over UDP.
#[derive(Debug, Parser)]
struct Args {
    /// The TURN server (UDP), IP:PORT.
    #[arg(long)]
    server: SocketAddr,
    /// Long-term credential username.
    #[arg(long, default_value = "alice")]
    user: String,
    /// Its password.
    #[arg(long, default_value = "wonderland")]
    password: String,
    /// Runtime threads for the generator (1 = a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// A label copied into the JSON output (e.g. the server's name).
    #[arg(long, default_value = "")]
    label: String,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Relayed packets per second through bound channels.
    Packets {
        /// Allocations (each with one channel and one peer socket).
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Application payload bytes per packet (at least 8: the sequence number).
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Most packets in flight per allocation.
        #[arg(long, default_value_t = 64)]
        window: u64,
        /// Offered packets/s over all allocations; 0 = as fast as the window allows.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Measured seconds.
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        /// Seconds of traffic before measuring.
        #[arg(long, default_value_t = 0.5)]
        warmup: f64,
        /// Which way the data goes through the relay.
        #[arg(long, value_enum, default_value_t = Direction::Up)]
        direction: Direction,
    },
    /// Memory per allocation: COUNT idle allocations made one after another (each its own
    /// 5-tuple), a JSON line `{"mode":"held",..}` once they all exist, SECS of holding
    /// them (the caller reads the server's RSS meanwhile), then Refresh(0) for each.
    Hold {
        /// Allocations to hold.
        #[arg(long, default_value_t = 2000)]
        count: usize,
        /// Seconds to hold them after the "held" line.
        #[arg(long, default_value_t = 2.0)]
        secs: f64,
    },
    /// Allocate (with the 401 round) + Refresh(0) cycles per second.
    Allocs {
        /// Workers, each running one cycle at a time on its own socket.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Measured seconds.
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        /// Seconds of cycles before measuring.
        #[arg(long, default_value_t = 0.5)]
        warmup: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Direction {
    /// Client → server (ChannelData) → relay → peer.
    Up,
    /// Peer → relay → server → client (ChannelData).
    Down,
}

/// How long a full window may go without progress before it is counted as lost.
const STALL: Duration = Duration::from_millis(20);
/// How long control transactions may take.
const CONTROL_LIMIT: Duration = Duration::from_secs(10);
/// ChannelData header length; the sequence number follows it.
const CD_HEADER: usize = 4;

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("turn_load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let creds = Creds {
        server: args.server,
        user: args.user.clone(),
        password: args.password.clone(),
    };
    let result = rt.block_on(async {
        match args.mode {
            Mode::Packets {
                clients,
                size,
                window,
                rate,
                secs,
                warmup,
                direction,
            } => {
                let p = PacketsRun {
                    clients,
                    size: size.max(8),
                    window: window.max(1),
                    rate,
                    secs,
                    warmup,
                    direction,
                };
                packets(&creds, &p).await
            }
            Mode::Allocs {
                concurrency,
                secs,
                warmup,
            } => allocs(&creds, concurrency.max(1), secs, warmup).await,
            Mode::Hold { count, secs } => hold(&creds, count, secs).await,
        }
    });
    match result {
        Ok(mut line) => {
            line["label"] = args.label.clone().into();
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("turn_load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A UDP socket on loopback connected to `to`.
async fn connected(to: SocketAddr) -> Result<UdpSocket, String> {
    let s = UdpSocket::bind(SocketAddr::new(to.ip(), 0))
        .await
        .map_err(|e| format!("bind: {e}"))?;
    s.connect(to).await.map_err(|e| format!("connect: {e}"))?;
    Ok(s)
}

/// Where the server is and who we are.
#[derive(Debug, Clone)]
struct Creds {
    server: SocketAddr,
    user: String,
    password: String,
}

fn new_client(creds: &Creds, socket: &UdpSocket, seed: u64) -> Result<Client, String> {
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let config = ClientConfig::new(
        local,
        creds.server,
        Transport::Udp,
        &creds.user,
        &creds.password,
    );
    Ok(Client::new(config, seed))
}

/// Runs `client` over `socket` until `done` decides on an event.
async fn drive(
    client: &mut Client,
    socket: &UdpSocket,
    mut done: impl FnMut(Event) -> Option<Result<(), String>>,
) -> Result<(), String> {
    let deadline = Instant::now() + CONTROL_LIMIT;
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some(t) = client.poll_transmit() {
            socket
                .send(&t.data)
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
        while let Some(e) = client.poll_event() {
            if let Some(r) = done(e) {
                return r;
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no answer from {} within {CONTROL_LIMIT:?}",
                client.config().server
            ));
        }
        let timer = client.poll_timeout().map_or(deadline, |t| t.min(deadline));
        tokio::select! {
            () = tokio::time::sleep_until(timer.into()) => client.handle_timeout(Instant::now()),
            r = socket.recv(&mut buf) => {
                // ICMP errors (ECONNREFUSED) are per-datagram; retransmission covers them.
                if let Ok(n) = r {
                    client.handle_receive(Instant::now(), &buf[..n], |_, _| {});
                }
            }
        }
    }
}

async fn allocate(client: &mut Client, socket: &UdpSocket) -> Result<SocketAddr, String> {
    client.allocate(Instant::now());
    drive(client, socket, |e| match e {
        Event::Allocated { .. } => Some(Ok(())),
        Event::AllocationFailed(err) => Some(Err(format!("allocation failed: {err:?}"))),
        _ => None,
    })
    .await?;
    client
        .relayed()
        .first()
        .copied()
        .ok_or_else(|| "no relayed address".to_owned())
}

async fn deallocate(client: &mut Client, socket: &UdpSocket) -> Result<(), String> {
    client.deallocate(Instant::now());
    drive(client, socket, |e| match e {
        Event::Deallocated => Some(Ok(())),
        Event::AllocationLost(err) => Some(Err(format!("refresh(0) failed: {err:?}"))),
        _ => None,
    })
    .await
}

/// One allocation with a channel to its own peer socket.
struct Session {
    client: Client,
    socket: Arc<UdpSocket>,
    peer: Arc<UdpSocket>,
    channel: u16,
}

async fn session(creds: &Creds, seed: u64) -> Result<Session, String> {
    let socket = connected(creds.server).await?;
    let mut client = new_client(creds, &socket, seed)?;
    let relayed = allocate(&mut client, &socket).await?;
    let peer = connected(relayed).await?;
    let peer_addr = peer.local_addr().map_err(|e| e.to_string())?;
    let channel = client
        .bind_channel(Instant::now(), peer_addr)
        .map_err(|e| format!("channel: {e:?}"))?;
    drive(&mut client, &socket, |e| match e {
        Event::ChannelBound { .. } => Some(Ok(())),
        Event::ChannelBindFailed(_, err) => Some(Err(format!("channel bind failed: {err:?}"))),
        _ => None,
    })
    .await?;
    Ok(Session {
        client,
        socket: Arc::new(socket),
        peer: Arc::new(peer),
        channel,
    })
}

/// Counters of one flow (one direction of one allocation).
#[derive(Default)]
struct Flow {
    sent: AtomicU64,
    received: AtomicU64,
    /// Highest sequence number received (sequence numbers start at 1).
    highest: AtomicU64,
    progress: Notify,
}

#[derive(Debug)]
struct PacketsRun {
    clients: usize,
    size: usize,
    window: u64,
    rate: u64,
    secs: f64,
    warmup: f64,
    direction: Direction,
}

async fn packets(creds: &Creds, p: &PacketsRun) -> Result<serde_json::Value, String> {
    let mut sessions = Vec::with_capacity(p.clients);
    for i in 0..p.clients {
        sessions.push(session(creds, i as u64 + 1).await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flows: Vec<Arc<Flow>> = (0..p.clients).map(|_| Arc::default()).collect();
    let per_flow_rate = p.rate as f64 / p.clients as f64;
    let mut tasks = Vec::new();
    for (s, flow) in sessions.iter().zip(&flows) {
        let (tx, rx, template, tx_off, rx_off) = match p.direction {
            Direction::Up => {
                let mut buf = vec![0u8; CD_HEADER + p.size];
                ChannelData::encode(s.channel, &vec![0xab; p.size], &mut buf, false)
                    .map_err(|e| format!("encode: {e}"))?;
                (s.socket.clone(), s.peer.clone(), buf, CD_HEADER, 0)
            }
            Direction::Down => (
                s.peer.clone(),
                s.socket.clone(),
                vec![0xab; p.size],
                0,
                CD_HEADER,
            ),
        };
        tasks.push(tokio::spawn(send_flow(
            tx,
            template,
            tx_off,
            flow.clone(),
            stop.clone(),
            p.window,
            per_flow_rate,
        )));
        tasks.push(tokio::spawn(receive_flow(rx, rx_off, flow.clone())));
    }
    let total = |f: fn(&Flow) -> &AtomicU64| -> u64 {
        flows.iter().map(|x| f(x).load(Ordering::Relaxed)).sum()
    };
    tokio::time::sleep(Duration::from_secs_f64(p.warmup)).await;
    let (t0, sent0, recv0) = (Instant::now(), total(|f| &f.sent), total(|f| &f.received));
    tokio::time::sleep(Duration::from_secs_f64(p.secs)).await;
    let (t1, sent1, recv1) = (Instant::now(), total(|f| &f.sent), total(|f| &f.received));
    stop.store(true, Ordering::Relaxed);
    // Late packets still count as delivered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for t in &tasks {
        t.abort();
    }
    let (sent, received) = (total(|f| &f.sent), total(|f| &f.received));
    for s in &mut sessions {
        deallocate(&mut s.client, &s.socket).await?;
    }
    let dt = (t1 - t0).as_secs_f64();
    let loss = if sent == 0 {
        0.0
    } else {
        100.0 * (sent.saturating_sub(received)) as f64 / sent as f64
    };
    Ok(serde_json::json!({
        "mode": "packets",
        "direction": format!("{:?}", p.direction).to_lowercase(),
        "clients": p.clients,
        "size": p.size,
        "window": p.window,
        "rate": p.rate,
        "secs": dt,
        "offered_pps": (sent1 - sent0) as f64 / dt,
        "pps": (recv1 - recv0) as f64 / dt,
        "mbit_s": (recv1 - recv0) as f64 * p.size as f64 * 8.0 / dt / 1e6,
        "sent": sent,
        "received": received,
        "loss_pct": loss,
    }))
}

async fn send_flow(
    socket: Arc<UdpSocket>,
    mut buf: Vec<u8>,
    seq_at: usize,
    flow: Arc<Flow>,
    stop: Arc<AtomicBool>,
    window: u64,
    rate: f64,
) {
    let start = Instant::now();
    let mut seq = 0u64;
    // Sequence numbers up to here are written off as lost.
    let mut written_off = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let acked = flow.highest.load(Ordering::Relaxed).max(written_off);
        if seq - acked >= window {
            let progressed = tokio::time::timeout(STALL, flow.progress.notified())
                .await
                .is_ok();
            if !progressed && flow.highest.load(Ordering::Relaxed).max(written_off) == acked {
                written_off = seq;
            }
            continue;
        }
        if rate > 0.0 {
            let due = start + Duration::from_secs_f64(seq as f64 / rate);
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        seq += 1;
        buf[seq_at..seq_at + 8].copy_from_slice(&seq.to_be_bytes());
        match socket.send(&buf).await {
            Ok(_) => {
                flow.sent.fetch_add(1, Ordering::Relaxed);
            }
            // ENOBUFS or ICMP errors: the datagram is gone; it was not sent.
            Err(_) => seq -= 1,
        }
    }
}

async fn receive_flow(socket: Arc<UdpSocket>, seq_at: usize, flow: Arc<Flow>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok(n) = socket.recv(&mut buf).await else {
            continue;
        };
        let Some(seq) = buf
            .get(seq_at..seq_at + 8)
            .filter(|_| n >= seq_at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
        else {
            continue;
        };
        flow.received.fetch_add(1, Ordering::Relaxed);
        flow.highest.fetch_max(seq, Ordering::Relaxed);
        flow.progress.notify_one();
    }
}

/// A socket for one allocation cycle: each cycle is a new client with its own 5-tuple,
/// as in an allocation storm. On IPv4 loopback the source IP cycles through 4096
/// addresses in 127.64.0.0/20 (starting at a random one), because a server may keep a
/// deleted allocation's 5-tuple for a while (coturn answers 437 Allocation Mismatch to
/// a new Allocate on it for about a second) and the kernel reuses ephemeral ports
/// quickly; 4096 sources also stay under per-source 401 limits (floe: 20/s each).
async fn cycle_socket(server: SocketAddr, next_ip: &AtomicU32) -> Result<UdpSocket, String> {
    let ip = match server.ip() {
        IpAddr::V4(v4) if v4.is_loopback() => {
            let n = next_ip.fetch_add(1, Ordering::Relaxed) & 0xfff;
            IpAddr::V4(Ipv4Addr::from(0x7f40_0000 | n))
        }
        ip => ip,
    };
    let s = UdpSocket::bind(SocketAddr::new(ip, 0))
        .await
        .map_err(|e| format!("bind {ip}: {e}"))?;
    s.connect(server)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    Ok(s)
}

async fn hold(creds: &Creds, count: usize, secs: f64) -> Result<serde_json::Value, String> {
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let next_ip = AtomicU32::new(start);
    let t0 = Instant::now();
    let mut held = Vec::with_capacity(count);
    for i in 0..count {
        let socket = cycle_socket(creds.server, &next_ip).await?;
        let mut client = new_client(creds, &socket, i as u64 + 1)?;
        allocate(&mut client, &socket).await?;
        held.push((client, socket));
    }
    let made_in = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({ "mode": "held", "allocations": held.len() })
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let mut failures = 0u64;
    for (client, socket) in &mut held {
        if deallocate(client, socket).await.is_err() {
            failures += 1;
        }
    }
    Ok(serde_json::json!({
        "mode": "hold",
        "allocations": count,
        "made_in_s": made_in,
        "dealloc_failures": failures,
    }))
}

async fn allocs(
    creds: &Creds,
    concurrency: usize,
    secs: f64,
    warmup: f64,
) -> Result<serde_json::Value, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let next_ip = Arc::new(AtomicU32::new(start));
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (stop, cycles, failures) = (stop.clone(), cycles.clone(), failures.clone());
        let (creds, next_ip) = (creds.clone(), next_ip.clone());
        workers.push(tokio::spawn(async move {
            let mut seed = (w as u64) << 32;
            let mut last_error = None;
            while !stop.load(Ordering::Relaxed) {
                seed += 1;
                let socket = cycle_socket(creds.server, &next_ip).await?;
                let mut client = new_client(&creds, &socket, seed)?;
                let cycle = async {
                    allocate(&mut client, &socket).await?;
                    deallocate(&mut client, &socket).await
                };
                match cycle.await {
                    Ok(()) => {
                        cycles.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        last_error = Some(e);
                    }
                }
            }
            Ok::<_, String>(last_error)
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(warmup)).await;
    let (t0, c0) = (Instant::now(), cycles.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let (t1, c1) = (Instant::now(), cycles.load(Ordering::Relaxed));
    stop.store(true, Ordering::Relaxed);
    let mut last_error = None;
    for w in workers {
        match w.await {
            Ok(Ok(e)) => last_error = last_error.or(e),
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(e.to_string()),
        }
    }
    let dt = (t1 - t0).as_secs_f64();
    Ok(serde_json::json!({
        "mode": "allocs",
        "concurrency": concurrency,
        "secs": dt,
        "per_sec": (c1 - c0) as f64 / dt,
        "cycles": cycles.load(Ordering::Relaxed),
        "failures": failures.load(Ordering::Relaxed),
        "last_error": last_error,
    }))
}
