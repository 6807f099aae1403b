//! `floe relay`: allocate on a TURN server and hold the allocation (optionally echoing
//! what peers send through it).
//!
//! Exactly one JSON line goes to stdout once allocated:
//! `{"relayed":"IP:PORT","mapped":"IP:PORT","lifetime_s":N}`. Progress goes to stderr.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Args;
use floe_turn::client::{Client, ClientConfig, Event};
use floe_turn::Transport;

use crate::turn_io::{TlsTrust, TurnIo, TurnTransport};

/// Arguments of `floe relay`.
#[derive(Debug, Args)]
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
    rt.block_on(relay(args))
}

async fn relay(args: &RelayArgs) -> u8 {
    let trust = TlsTrust {
        ca: args.tls_ca.clone(),
        insecure: args.insecure,
        server_name: args.server_name.clone(),
    };
    let (mut io, local) = match TurnIo::connect(args.server, args.transport, &trust).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "floe relay: cannot reach {} over {:?}: {e}",
                args.server, args.transport
            );
            return 1;
        }
    };
    let transport = if args.transport == TurnTransport::Udp {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    let mut config = ClientConfig::new(local, args.server, transport, &args.user, &args.password);
    config.lifetime = Duration::from_secs(args.lifetime);
    config.software = Some(concat!("floe ", env!("CARGO_PKG_VERSION")).into());
    let mut client = Client::new(config, rand::random());
    client.allocate(Instant::now());
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
    let mut buf = vec![0u8; 65_536];
    let mut echoes = Vec::new();
    loop {
        // Events can queue requests (permissions, channels), so drain transmits until
        // neither has anything left: over TCP nothing else would wake the loop to send
        // them (no retransmission timer on reliable transports).
        loop {
            let mut sent = false;
            while let Some(t) = client.poll_transmit() {
                sent = true;
                if let Err(e) = io.send(&t.data).await {
                    eprintln!("floe relay: send failed: {e}");
                    return 1;
                }
            }
            let Some(ev) = client.poll_event() else {
                if sent {
                    continue;
                }
                break;
            };
            match ev {
                Event::Allocated {
                    relayed,
                    mapped,
                    lifetime,
                } => {
                    allocated = true;
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
                            eprintln!(
                                "floe relay: warning: the server's realm is {got:?}, not {want:?}"
                            );
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
                    return 1;
                }
                Event::AllocationLost(e) => {
                    eprintln!("floe relay: allocation lost: {e}");
                    return 1;
                }
                Event::Deallocated => {
                    eprintln!("floe relay: deallocated");
                    return 0;
                }
                _ => {}
            }
        }
        for (peer, data) in echoes.drain(..) {
            let data: Vec<u8> = data;
            match client.send_to(peer, &data) {
                Ok(t) => {
                    let _ = io.send(&t.data).await;
                }
                Err(e) => eprintln!("floe relay: echo to {peer}: {e}"),
            }
        }
        if stopping.is_some_and(|t| tokio::time::Instant::now() >= t) {
            eprintln!("floe relay: deallocation not confirmed; exiting");
            return 0;
        }
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        let timer = client
            .poll_timeout()
            .map_or(far, tokio::time::Instant::from_std);
        let end_at = if stopping.is_some() { stopping } else { end };
        tokio::select! {
            () = tokio::time::sleep_until(timer) => client.handle_timeout(Instant::now()),
            () = sleep_opt(end_at) => {
                if !allocated {
                    eprintln!("floe relay: no allocation within --duration");
                    return 1;
                }
                if stopping.is_none() {
                    client.deallocate(Instant::now());
                    stopping = Some(tokio::time::Instant::now() + Duration::from_secs(3));
                }
            }
            _ = tokio::signal::ctrl_c() => {
                if !allocated {
                    eprintln!("floe relay: interrupted before any allocation");
                    return 1;
                }
                if stopping.is_none() {
                    client.deallocate(Instant::now());
                    stopping = Some(tokio::time::Instant::now() + Duration::from_secs(3));
                }
            }
            r = io.recv(&mut buf) => {
                let n = match r {
                    Ok(0) if transport == Transport::Tcp => {
                        eprintln!("floe relay: the server closed the connection");
                        return 1;
                    }
                    Ok(n) => n,
                    // ICMP errors on a connected UDP socket surface here; keep going.
                    Err(e) if transport == Transport::Udp => {
                        eprintln!("floe relay: receive error: {e}");
                        continue;
                    }
                    Err(e) => {
                        eprintln!("floe relay: connection error: {e}");
                        return 1;
                    }
                };
                let now = Instant::now();
                if transport == Transport::Udp {
                    let datagram = buf.get(..n).unwrap_or_default();
                    if let Some((peer, data)) = client.handle_datagram(now, datagram) {
                        if args.echo {
                            echoes.push((peer, data.to_vec()));
                        }
                    }
                } else {
                    let echo = args.echo;
                    let bytes = buf.get(..n).unwrap_or_default();
                    let r = client.handle_stream(now, bytes, |peer, data| {
                        if echo {
                            echoes.push((peer, data.to_vec()));
                        }
                    });
                    if let Err(e) = r {
                        eprintln!("floe relay: corrupt stream from the server: {e}");
                        return 1;
                    }
                }
            }
        }
    }
}

async fn sleep_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
