//! `floe connect`: netcat over ICE. Two hosts connect on the fastest path (signalling as
//! JSON lines over TCP or a pair of files/named pipes); then each stdin line is sent as one
//! datagram and each datagram received is written to stdout as a line. State and path
//! changes go to stderr (JSON lines with `--json`). The signalling format is in
//! docs/connect.md.

use std::io::Write as _;
use std::time::Duration;

use clap::Args;
use floe_ice::{CandidateKind, ConnectionState, Recovery, SelectedPair};
use floe_peer::turn::load_pem_certificates;
use floe_peer::{
    IceServerUri, JsonLinesReceiver, JsonLinesSender, PeerConfig, PeerConnection, PeerError,
    PeerEvent, Scheme, Side, TurnServerConfig,
};
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Arguments of `floe connect`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("side").required(true).args(["offer", "answer"]))]
#[allow(clippy::struct_excessive_bools)] // independent command-line flags
pub struct ConnectArgs {
    /// Send the offer (this side controls nomination).
    #[arg(long)]
    pub offer: bool,
    /// Wait for an offer and answer it.
    #[arg(long)]
    pub answer: bool,
    /// Signalling: `tcp-listen:ADDR`, `tcp:ADDR` or `files:IN,OUT`.
    #[arg(long, value_name = "SIGNAL")]
    pub signal: String,
    /// STUN server URI (repeatable), e.g. `stun:stun.example.org`.
    #[arg(long = "stun", value_name = "URI")]
    pub stun: Vec<IceServerUri>,
    /// TURN server URI (repeatable): `turn:HOST[:PORT]` races UDP and TCP,
    /// `?transport=udp|tcp` pins one, `turns:HOST[:PORT]` is TLS (port 5349).
    #[arg(long = "turn", value_name = "URI")]
    pub turn: Vec<IceServerUri>,
    /// TURN username (for every --turn).
    #[arg(long)]
    pub turn_user: Option<String>,
    /// TURN password.
    #[arg(long)]
    pub turn_password: Option<String>,
    /// CA certificates (PEM) that `turns:` servers are verified against (default: the
    /// system bundle, e.g. /etc/ssl/certs/ca-certificates.crt).
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Vec<std::path::PathBuf>,
    /// Use only relayed candidates.
    #[arg(long)]
    pub relay_only: bool,
    /// DSCP code point (0-63) for every packet sent, e.g. 46 (EF) for voice.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=63))]
    pub dscp: Option<u8>,
    /// Bind these local addresses instead of every interface (repeatable; port 0 = any).
    #[arg(long = "bind", value_name = "ADDR")]
    pub bind: Vec<std::net::SocketAddr>,
    /// Take host candidate ports from LOW-HIGH (for a firewall that opens a known range),
    /// e.g. 40000-40100.
    #[arg(long, value_name = "LOW-HIGH", value_parser = parse_port_range)]
    pub port_range: Option<std::ops::RangeInclusive<u16>>,
    /// Machine-readable state and path events on stderr.
    #[arg(long)]
    pub json: bool,
    /// Give up connecting after this many seconds.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// After stdin ends, keep printing what arrives for this many seconds, then exit.
    #[arg(long, default_value_t = 2.0)]
    pub linger: f64,
    /// Give up (exit 1) this many seconds after the peer last answered, when recovery
    /// and an ICE restart could not bring the path back (RFC 7675 consent expiry).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub consent_timeout: f64,
    /// Reach TURN servers over TCP and TLS through this HTTP CONNECT proxy:
    /// `http://[user:password@]host[:port]`.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<floe_peer::turn::HttpProxy>,
    /// Read the host's addresses again every SECONDS for continual gathering (0: never;
    /// on Linux the kernel's netlink announcements also trigger a read at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.5)]
    pub address_watch: f64,
    /// ICE-TCP (RFC 6544): also offer TCP host candidates (a listener per address, and
    /// connections from each address) and use the peer's, for networks that block UDP
    /// when no TURN server is configured. UDP is still preferred where both work.
    #[arg(long)]
    pub ice_tcp: bool,
    /// Signal host candidates as random `<uuid>.local` mDNS names, not addresses, and
    /// answer mDNS queries for them on the link (as browsers do): a peer elsewhere never
    /// sees a private address, one on the same link resolves the names.
    #[arg(long)]
    pub mdns: bool,
    /// Every SECONDS, print the pair and candidate stats as a JSON line on stderr
    /// (W3C RTCIceCandidatePairStats and RTCIceCandidateStats fields).
    #[arg(long, value_name = "SECONDS")]
    pub stats: Option<f64>,
}

fn kind(p: &SelectedPair) -> &'static str {
    if p.local_kind == CandidateKind::Relayed || p.remote_kind == CandidateKind::Relayed {
        "relay"
    } else {
        match p.remote_kind {
            CandidateKind::Host => "host",
            CandidateKind::ServerReflexive => "srflx",
            CandidateKind::PeerReflexive => "prflx",
            CandidateKind::Relayed => "relay",
        }
    }
}

fn report(json: bool, event: &PeerEvent) {
    match event {
        PeerEvent::Selected(p) => {
            let rtt = p.rtt.map(|r| (r.as_secs_f64() * 1e6).round() / 1000.0);
            if json {
                let mut v = serde_json::json!({"event": "selected", "local": p.local, "remote": p.remote, "type": kind(p), "transport": p.transport.as_str(), "rtt_ms": rtt, "nominated": p.nominated});
                if let Some(t) = p.turn_transport {
                    v["turn_transport"] = t.as_str().into();
                }
                eprintln!("{v}");
            } else {
                let via = p
                    .turn_transport
                    .or((p.transport != floe_ice::Transport::Udp).then_some(p.transport))
                    .map_or_else(String::new, |t| format!(" over {t}"));
                eprintln!(
                    "floe connect: path {} -> {} ({}{via}, rtt {})",
                    p.local,
                    p.remote,
                    kind(p),
                    rtt.map_or_else(|| "?".into(), |r| format!("{r:.1} ms"))
                );
            }
        }
        PeerEvent::TurnTransport {
            server,
            transport,
            relayed,
        } => {
            if json {
                eprintln!(
                    "{}",
                    serde_json::json!({"event": "turn-transport", "server": server, "transport": transport.as_str(), "relayed": relayed})
                );
            } else {
                eprintln!(
                    "floe connect: TURN server {server} relays from {relayed} over {transport}"
                );
            }
        }
        PeerEvent::State(s) => {
            let name = format!("{s:?}").to_lowercase();
            if json {
                eprintln!("{}", serde_json::json!({"event": "state", "state": name}));
            } else {
                eprintln!("floe connect: {name}");
            }
        }
        PeerEvent::ServerFailed { server, reason } => {
            if json {
                eprintln!(
                    "{}",
                    serde_json::json!({"event": "server-failed", "server": server, "reason": reason})
                );
            } else {
                eprintln!("floe connect: server {server} failed: {reason}");
            }
        }
        PeerEvent::Recovery(r) => report_recovery(json, r),
        _ => {}
    }
}

/// A step of the recovery ladder: `{"event": "recovery", "step": ...}`.
fn report_recovery(json: bool, r: &Recovery) {
    let ms = |d: &Duration| (d.as_secs_f64() * 1e6).round() / 1000.0;
    let (step, v, text) = match r {
        Recovery::Started { quiet_for } => (
            "started",
            serde_json::json!({"quiet_ms": ms(quiet_for)}),
            format!("path quiet for {:.0} ms: recovering", ms(quiet_for)),
        ),
        Recovery::Switched => (
            "switched",
            serde_json::json!({}),
            "moved to another live path".into(),
        ),
        Recovery::Checking { pairs } => (
            "checking",
            serde_json::json!({"pairs": pairs}),
            format!("checking {pairs} paths again"),
        ),
        Recovery::Recovered { after } => (
            "recovered",
            serde_json::json!({"after_ms": ms(after)}),
            format!("recovered after {:.0} ms", ms(after)),
        ),
        Recovery::RestartNeeded => (
            "restart-needed",
            serde_json::json!({}),
            "no path recovered: restarting ICE".into(),
        ),
        _ => return,
    };
    if json {
        let mut v = v;
        v["event"] = "recovery".into();
        v["step"] = step.into();
        eprintln!("{v}");
    } else {
        eprintln!("floe connect: {text}");
    }
}

/// Where the system's CA bundle usually is (Debian/Ubuntu/Alpine, Fedora/RHEL, macOS and
/// BSDs).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The trust anchors for `turns:`: the `--tls-ca` files, or the system bundle.
fn tls_roots(files: &[std::path::PathBuf]) -> Result<Vec<CertificateDer<'static>>, String> {
    let read = |path: &std::path::Path| load_pem_certificates(path).map_err(|e| e.to_string());
    let mut roots = Vec::new();
    for f in files {
        roots.extend(read(f)?);
    }
    if files.is_empty() {
        if let Some(bundle) = SYSTEM_CA_BUNDLES
            .iter()
            .map(std::path::Path::new)
            .find(|p| p.exists())
        {
            roots.extend(read(bundle)?);
        }
    }
    if roots.is_empty() {
        return Err("turns: needs CA certificates: --tls-ca FILE (PEM)".into());
    }
    Ok(roots)
}

/// Runs `floe connect`; returns the exit status.
pub fn run(args: &ConnectArgs) -> u8 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("floe connect: {e}");
            return 1;
        }
    };
    let status = rt.block_on(connect(args));
    // tokio's stdin reads on a blocking thread that cannot be cancelled: waiting for it
    // would keep the process alive (after "connection lost") until the next line or EOF.
    rt.shutdown_background();
    status
}

/// Parses `--port-range LOW-HIGH`: two ports, LOW ≥ 1 and LOW ≤ HIGH.
fn parse_port_range(s: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let (low, high) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: expected LOW-HIGH, e.g. 40000-40100"))?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .map_err(|_| format!("{p:?} is not a port (1-65535)"))
    };
    let (low, high) = (port(low)?, port(high)?);
    if low == 0 || low > high {
        return Err(format!("{s:?}: LOW must be at least 1 and at most HIGH"));
    }
    Ok(low..=high)
}

/// Connects with JSON-lines signalling over an established TCP stream.
async fn over_tcp(
    config: PeerConfig,
    side: Side,
    stream: tokio::net::TcpStream,
) -> Result<PeerConnection, PeerError> {
    let (r, w) = stream.into_split();
    PeerConnection::connect(config, side, JsonLinesSender(w), JsonLinesReceiver::new(r)).await
}

async fn connect(args: &ConnectArgs) -> u8 {
    let mut config = PeerConfig::default();
    config.stun.clone_from(&args.stun);
    for uri in &args.turn {
        let (Some(username), Some(password)) = (&args.turn_user, &args.turn_password) else {
            eprintln!("floe connect: --turn needs --turn-user and --turn-password");
            return 2;
        };
        config.turn.push(TurnServerConfig {
            uri: uri.clone(),
            username: username.clone(),
            password: password.clone(),
        });
    }
    config.agent.relay_only = args.relay_only;
    config.agent.ice_tcp = args.ice_tcp;
    if !(args.consent_timeout.is_finite() && args.consent_timeout >= 1.0) {
        eprintln!("floe connect: --consent-timeout must be at least 1 second");
        return 2;
    }
    if !(args.address_watch.is_finite()
        && (args.address_watch == 0.0 || args.address_watch >= 0.01))
    {
        eprintln!("floe connect: --address-watch must be 0 (off) or at least 0.01 seconds");
        return 2;
    }
    if args.stats.is_some_and(|s| !(s.is_finite() && s >= 0.01)) {
        eprintln!("floe connect: --stats must be at least 0.01 seconds");
        return 2;
    }
    config.agent.consent_timeout = Duration::from_secs_f64(args.consent_timeout);
    // Offer renomination (ice_options): used only when the other side offers it too, so
    // two floe peers keep moving to the fastest path; other agents get RFC 8445 behaviour.
    config.agent.renomination = true;
    if args.relay_only && config.turn.is_empty() {
        eprintln!("floe connect: --relay-only needs a --turn server");
        return 2;
    }
    config.dscp = args.dscp;
    config.proxy.clone_from(&args.proxy);
    config.mdns = args.mdns;
    config.address_watch =
        (args.address_watch > 0.0).then(|| Duration::from_secs_f64(args.address_watch));
    if args.turn.iter().any(|u| u.scheme == Scheme::Turns) {
        match tls_roots(&args.tls_ca) {
            Ok(roots) => config.tls_roots = roots,
            Err(e) => {
                eprintln!("floe connect: {e}");
                return 2;
            }
        }
    }
    config.bind.clone_from(&args.bind);
    config.port_range.clone_from(&args.port_range);
    config.connect_timeout = Some(Duration::from_secs_f64(args.timeout.max(0.1)));
    let side = if args.offer {
        Side::Offer
    } else {
        Side::Answer
    };
    let result = match args.signal.split_once(':') {
        Some(("tcp-listen", addr)) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                // The bound address (port 0 picks one), so scripts can hand it to the peer.
                let bound = l
                    .local_addr()
                    .map_or_else(|_| addr.to_owned(), |a| a.to_string());
                if args.json {
                    eprintln!(
                        "{}",
                        serde_json::json!({"event": "listening", "address": bound})
                    );
                } else {
                    eprintln!("floe connect: waiting for the signalling peer on tcp {bound}");
                }
                match tokio::time::timeout(
                    Duration::from_secs_f64(args.timeout.max(0.1)),
                    l.accept(),
                )
                .await
                {
                    Ok(Ok((stream, _))) => over_tcp(config, side, stream).await,
                    Ok(Err(e)) => Err(PeerError::Signalling(e.to_string())),
                    Err(_) => Err(PeerError::Signalling(format!(
                        "nobody connected to {addr} in time"
                    ))),
                }
            }
            Err(e) => Err(PeerError::Signalling(format!(
                "cannot listen on {addr}: {e}"
            ))),
        },
        Some(("tcp", addr)) => {
            let deadline =
                tokio::time::Instant::now() + Duration::from_secs_f64(args.timeout.max(0.1));
            let stream = loop {
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(s) => break Ok(s),
                    Err(e) if tokio::time::Instant::now() >= deadline => break Err(e),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            };
            match stream {
                Ok(s) => over_tcp(config, side, s).await,
                Err(e) => Err(PeerError::Signalling(format!("cannot reach {addr}: {e}"))),
            }
        }
        Some(("files", paths)) => {
            let Some((input, output)) = paths.split_once(',') else {
                eprintln!("floe connect: files: needs IN,OUT");
                return 2;
            };
            // Named pipes: open both concurrently, as each open blocks until the other end
            // opens its side.
            let mut write = tokio::fs::OpenOptions::new();
            write.write(true);
            let (r, w) = tokio::join!(tokio::fs::File::open(input), write.open(output));
            match (r, w) {
                (Ok(r), Ok(w)) => {
                    PeerConnection::connect(
                        config,
                        side,
                        JsonLinesSender(w),
                        JsonLinesReceiver::new(r),
                    )
                    .await
                }
                (Err(e), _) => Err(PeerError::Signalling(format!("{input}: {e}"))),
                (_, Err(e)) => Err(PeerError::Signalling(format!("{output}: {e}"))),
            }
        }
        _ => {
            eprintln!("floe connect: --signal must be tcp-listen:ADDR, tcp:ADDR or files:IN,OUT");
            return 2;
        }
    };
    let mut pc = match result {
        Ok(pc) => pc,
        Err(e) => {
            if args.json {
                eprintln!(
                    "{}",
                    serde_json::json!({"event": "error", "error": e.to_string()})
                );
            }
            eprintln!("floe connect: {e}");
            return 1;
        }
    };
    let mut events = pc.take_events();
    let sender = pc.sender();
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut linger_until: Option<tokio::time::Instant> = None;
    let mut out = std::io::stdout();
    let mut stats_tick = args.stats.map(|s| {
        let period = Duration::from_secs_f64(s);
        tokio::time::interval_at(tokio::time::Instant::now() + period, period)
    });
    loop {
        let stats_due = async {
            match &mut stats_tick {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        let linger = async {
            match linger_until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    // One datagram per line, at most 1200 bytes (a safe UDP payload).
                    for chunk in line.as_bytes().chunks(1200) {
                        if sender.send(chunk).await.is_err() {
                            break;
                        }
                    }
                }
                _ => {
                    stdin_open = false;
                    linger_until = Some(tokio::time::Instant::now() + Duration::from_secs_f64(args.linger.max(0.0)));
                }
            },
            data = pc.recv() => match data {
                Some(d) => {
                    let _ = out.write_all(&d);
                    let _ = out.write_all(b"\n");
                    let _ = out.flush();
                }
                None => break,
            },
            ev = events.next() => match ev {
                Some(e) => {
                    report(args.json, &e);
                    if matches!(e, PeerEvent::State(ConnectionState::Failed)) {
                        eprintln!("floe connect: connection lost");
                        pc.close().await;
                        return 1;
                    }
                }
                None => break,
            },
            () = linger => break,
            () = stats_due => {
                if let Some(s) = pc.stats().await {
                    eprintln!("{}", crate::connect_stats::stats_json(&s));
                }
            }
        }
    }
    pc.close().await;
    0
}
