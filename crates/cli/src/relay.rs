//! `floe relay`: allocate on a TURN server and hold the allocation (optionally echoing
//! what peers send through it).
//!
//! Exactly one JSON line goes to stdout once allocated:
//! `{"relayed":"IP:PORT","mapped":"IP:PORT","lifetime_s":N}`. Progress goes to stderr.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Args;
use floe_peer::turn::{
    load_pem_certificates, tls_client_config, DriverError, TlsConfigError, TlsConnect, TlsTrust,
    TurnDriver, TurnSocket,
};
use floe_turn::client::{Client, ClientConfig, Event};
use floe_turn::Transport;
use rustls::pki_types::ServerName;

/// The transport to a TURN server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TurnTransport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl From<TurnTransport> for floe_peer::turn::Transport {
    fn from(t: TurnTransport) -> floe_peer::turn::Transport {
        match t {
            TurnTransport::Udp => floe_peer::turn::Transport::Udp,
            TurnTransport::Tcp => floe_peer::turn::Transport::Tcp,
            TurnTransport::Tls => floe_peer::turn::Transport::Tls,
        }
    }
}

/// Arguments of `floe relay`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // independent command-line flags
pub struct RelayArgs {
    /// The TURN server, IP:PORT.
    #[arg(long)]
    pub server: SocketAddr,
    /// Username (long-term credentials, or a TURN REST username).
    #[arg(long)]
    pub user: String,
    /// Password.
    #[arg(long)]
    pub password: String,
    /// The realm expected from the server (informational: the server's realm is used,
    /// with a warning if it differs).
    #[arg(long)]
    pub realm: Option<String>,
    /// Transport to the server.
    #[arg(long, value_enum, default_value = "udp")]
    pub transport: TurnTransport,
    /// Create a permission for this peer (repeatable).
    #[arg(long = "peer", value_name = "ADDR")]
    pub peers: Vec<SocketAddr>,
    /// Bind a channel to each --peer as well (data as ChannelData).
    #[arg(long)]
    pub channel: bool,
    /// Send every datagram received through the relay back to its sender.
    #[arg(long)]
    pub echo: bool,
    /// TURN-TCP (RFC 6062, needs --transport tcp or tls): allocate a TCP relay, connect
    /// it to this peer, and pipe standard input and output through it.
    #[arg(long, value_name = "ADDR", conflicts_with = "tcp_accept")]
    pub tcp_connect: Option<SocketAddr>,
    /// TURN-TCP: allocate a TCP relay, let the --peer addresses connect to it, and pipe
    /// the first connection to standard input and output (or back, with --echo).
    #[arg(long)]
    pub tcp_accept: bool,
    /// Stop (and deallocate) after this many seconds; default: run until killed.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Requested lifetime in seconds.
    #[arg(long, default_value_t = 600)]
    pub lifetime: u64,
    /// TLS: PEM file with the certificate(s) to trust.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// TLS: accept any server certificate (testing only).
    #[arg(long)]
    pub insecure: bool,
    /// TLS: the name to verify (default: the server's IP).
    #[arg(long)]
    pub server_name: Option<String>,
}

/// Runs `floe relay`; returns the exit status.
pub fn run(args: &RelayArgs) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("floe relay: {e}");
            return 1;
        }
    };
    if args.tcp_connect.is_some() || args.tcp_accept {
        return rt.block_on(crate::relay_tcp::run(args));
    }
    rt.block_on(relay(args))
}

/// `--tls-ca`, `--insecure` and `--server-name`: how to reach a TLS server.
pub(crate) fn tls_connect(args: &RelayArgs) -> std::io::Result<TlsConnect> {
    let trust = if args.insecure {
        TlsTrust::AcceptAnyCertificate
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &args.tls_ca {
            for cert in load_pem_certificates(ca)? {
                roots.add(cert).map_err(std::io::Error::other)?;
            }
        }
        TlsTrust::Roots(roots)
    };
    let config = tls_client_config(trust).map_err(|e| match e {
        TlsConfigError::NoTrustAnchors => std::io::Error::other(
            "TLS needs --tls-ca FILE (the server's certificate or its CA) or --insecure",
        ),
        e => std::io::Error::other(e),
    })?;
    let server_name = match &args.server_name {
        Some(n) => ServerName::try_from(n.clone()).map_err(std::io::Error::other)?,
        None => ServerName::IpAddress(args.server.ip().into()),
    };
    Ok(TlsConnect {
        config,
        server_name,
    })
}

async fn connect(args: &RelayArgs) -> std::io::Result<(TurnSocket, SocketAddr)> {
    let tls = match args.transport {
        TurnTransport::Tls => Some(tls_connect(args)?),
        TurnTransport::Udp | TurnTransport::Tcp => None,
    };
    TurnSocket::connect(args.server, args.transport.into(), tls).await
}

async fn relay(args: &RelayArgs) -> u8 {
    let (socket, local) = match connect(args).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "floe relay: cannot reach {} over {:?}: {e}",
                args.server, args.transport
            );
            return 1;
        }
    };
    let transport = Transport::from(args.transport);
    let mut config = ClientConfig::new(local, args.server, transport, &args.user, &args.password);
    config.lifetime = Duration::from_secs(args.lifetime);
    config.software = Some(concat!("floe ", env!("CARGO_PKG_VERSION")).into());
    let mut driver = TurnDriver::new(Client::new(config, rand::random()), socket);
    driver.client_mut().allocate(Instant::now());
    eprintln!(
        "floe relay: allocating on {} over {:?} from {local}",
        args.server, args.transport
    );

    let end = args
        .duration
        .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut stopping: Option<tokio::time::Instant> = None;
    // Exit 0 only for what was asked: an allocation held until --duration or Ctrl-C.
    let mut allocated = false;
    let mut echoes: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
    loop {
        // Events can queue requests (permissions, channels), so drain transmits until
        // neither has anything left: over TCP nothing else would wake the loop to send
        // them (no retransmission timer on reliable transports).
        loop {
            let sent = match driver.flush().await {
                Ok(sent) => sent,
                Err(e) => {
                    eprintln!("floe relay: {e}");
                    return 1;
                }
            };
            let Some(ev) = driver.poll_event() else {
                if sent {
                    continue;
                }
                break;
            };
            if let Some(status) = on_event(args, driver.client_mut(), ev, &mut allocated) {
                return status;
            }
        }
        for (peer, data) in echoes.drain(..) {
            match driver.send_to(peer, &data).await {
                Ok(()) | Err(DriverError::Send(_)) => {}
                Err(e) => eprintln!("floe relay: echo to {peer}: {e}"),
            }
        }
        if stopping.is_some_and(|t| tokio::time::Instant::now() >= t) {
            eprintln!("floe relay: deallocation not confirmed; exiting");
            return 0;
        }
        let end_at = if stopping.is_some() { stopping } else { end };
        let echo = args.echo;
        tokio::select! {
            () = sleep_opt(end_at) => {
                if !allocated {
                    eprintln!("floe relay: no allocation within --duration");
                    return 1;
                }
                if stopping.is_none() {
                    driver.client_mut().deallocate(Instant::now());
                    stopping = Some(tokio::time::Instant::now() + Duration::from_secs(3));
                }
            }
            _ = tokio::signal::ctrl_c() => {
                if !allocated {
                    eprintln!("floe relay: interrupted before any allocation");
                    return 1;
                }
                if stopping.is_none() {
                    driver.client_mut().deallocate(Instant::now());
                    stopping = Some(tokio::time::Instant::now() + Duration::from_secs(3));
                }
            }
            r = driver.wait(|peer, data| {
                if echo {
                    echoes.push((peer, data.to_vec()));
                }
            }) => match r {
                Ok(()) => {}
                // ICMP errors on a connected UDP socket surface here; keep going.
                Err(DriverError::Receive(e)) if transport == Transport::Udp => {
                    eprintln!("floe relay: receive error: {e}");
                }
                Err(DriverError::Receive(e)) => {
                    eprintln!("floe relay: connection error: {e}");
                    return 1;
                }
                Err(e) => {
                    eprintln!("floe relay: {e}");
                    return 1;
                }
            }
        }
    }
}

/// Reports one client event; `Some(status)` ends the run.
fn on_event(args: &RelayArgs, client: &mut Client, ev: Event, allocated: &mut bool) -> Option<u8> {
    match ev {
        Event::Allocated {
            relayed,
            mapped,
            lifetime,
        } => {
            *allocated = true;
            let line = serde_json::json!({
                "relayed": relayed.first(),
                "mapped": mapped,
                "lifetime_s": lifetime.as_secs(),
            });
            println!("{line}");
            eprintln!(
                "floe relay: allocated {relayed:?} (mapped {mapped:?}, lifetime {} s)",
                lifetime.as_secs()
            );
            if let (Some(want), Some(got)) = (&args.realm, client.realm()) {
                if want != got {
                    eprintln!("floe relay: warning: the server's realm is {got:?}, not {want:?}");
                }
            }
            let now = Instant::now();
            for p in &args.peers {
                let r = if args.channel {
                    client.bind_channel(now, *p).map(|_| ())
                } else {
                    client.create_permission(now, p.ip())
                };
                if let Err(e) = r {
                    eprintln!("floe relay: peer {p}: {e}");
                }
            }
        }
        Event::PartialAllocation { family, code } => {
            eprintln!("floe relay: {family:?} relay refused with {code}");
        }
        Event::PermissionCreated(ip) => eprintln!("floe relay: permission for {ip}"),
        Event::PermissionFailed(ip, e) => {
            eprintln!("floe relay: permission for {ip} failed: {e}");
        }
        Event::ChannelBound { peer, channel } => {
            eprintln!("floe relay: channel {channel:#06x} bound to {peer}");
        }
        Event::ChannelBindFailed(peer, e) => {
            eprintln!("floe relay: channel to {peer} failed: {e}");
        }
        Event::Refreshed { lifetime } => {
            eprintln!("floe relay: refreshed ({} s)", lifetime.as_secs());
        }
        Event::AllocationFailed(e) => {
            eprintln!("floe relay: allocation failed: {e}");
            return Some(1);
        }
        Event::AllocationLost(e) => {
            eprintln!("floe relay: allocation lost: {e}");
            return Some(1);
        }
        Event::Deallocated => {
            eprintln!("floe relay: deallocated");
            return Some(0);
        }
        _ => {}
    }
    None
}

async fn sleep_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
