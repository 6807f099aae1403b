//! `floe serve`: a STUN/TURN server (floe-server) until interrupted.
//!
//! Once listening it prints one JSON line on stdout with the bound addresses
//! (`{"listening":{"udp":[..],"tcp":[..],"tls":[..],"metrics":..}}`), so scripts and tests can use
//! port 0. SIGUSR1 prints the counters as a JSON line; they are printed once more on exit.
//! SIGTERM drains: new Allocates get 508 (or 300 with `--alternate-server`) while
//! existing allocations keep relaying, until none remain or `--drain-seconds` pass;
//! then the counters are printed and the process exits 0. SIGINT stops at once.
//! `--metrics ADDR` serves Prometheus metrics at `http://ADDR/metrics` (the bound
//! address is the `metrics` key of the `listening` line); logs go to stderr as text or
//! JSON lines ([`crate::logging`]).
//! A panic in any task ends the process with status 70 after printing the panic and the
//! counters ([`crate::backstop`]): a server that stops answering never stays up.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use floe_server::{load_tls_config, spawn, ServerOptions};
use floe_turn::policy::{IpRange, PeerRefusal};
use floe_turn::server::{AllocationKind, AuthFailure, DropReason, QuotaLimit, ServerStats};

use crate::logging::{self, LogFormat};

/// Arguments of `floe serve`.
#[allow(clippy::struct_excessive_bools)] // independent command-line flags
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// UDP address to listen on (repeatable). Default 0.0.0.0:3478.
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,
    /// Also listen on TCP at the same addresses.
    #[arg(long)]
    pub tcp: bool,
    /// PEM certificate chain for TURN over TLS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TURN over TLS.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// TLS address to listen on (repeatable). Default: each --listen IP at port 5349.
    #[arg(long = "tls-listen", value_name = "ADDR", requires = "tls_cert")]
    pub tls_listen: Vec<SocketAddr>,
    /// Realm for long-term credentials.
    #[arg(long, default_value = "floe")]
    pub realm: String,
    /// A user, NAME:PASSWORD (repeatable).
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    pub users: Vec<String>,
    /// Shared secret for TURN REST (time-limited) credentials (repeatable: during a
    /// rotation both the new and the old secret are accepted).
    #[arg(long = "rest-secret", value_name = "SECRET")]
    pub rest_secret: Vec<String>,
    /// RFC 5780 alternate address (differs from the first --listen in IP and port).
    #[arg(long, value_name = "ADDR")]
    pub alt_address: Option<SocketAddr>,
    /// Address relayed sockets bind to and that clients are given (repeat for IPv4 and
    /// IPv6). Default: the --listen IPs when they are not wildcards.
    #[arg(long = "relay-ip", value_name = "IP")]
    pub relay_ip: Vec<IpAddr>,
    /// Lowest relay port.
    #[arg(long, default_value_t = 49_152)]
    pub min_port: u16,
    /// Highest relay port.
    #[arg(long, default_value_t = 65_535)]
    pub max_port: u16,
    /// Relay to loopback peers (refused by default).
    #[arg(long)]
    pub allow_loopback_peers: bool,
    /// Relay to peers in this range although its kind is refused by default
    /// (e.g. 10.0.0.0/8; repeatable).
    #[arg(long = "allow-peer", value_name = "RANGE")]
    pub allow_peer: Vec<IpRange>,
    /// Never relay to peers in this range (repeatable).
    #[arg(long = "deny-peer", value_name = "RANGE")]
    pub deny_peer: Vec<IpRange>,
    /// Most allocations in total.
    #[arg(long, default_value_t = 10_000)]
    pub max_allocations: usize,
    /// Most allocations per user.
    #[arg(long, default_value_t = 100)]
    pub user_quota: usize,
    /// 401 challenges per source IP per second; beyond it unauthenticated requests are
    /// dropped (so the server is a poor reflector). Benchmarks from one IP raise it.
    #[arg(long, default_value_t = 20)]
    pub max_unauthenticated_per_second: u32,
    /// Workers (0, the default: one per CPU): each has its own SO_REUSEPORT sockets on
    /// every listen address, its own TURN core, allocations and relay sockets, and its
    /// own runtime thread; the kernel keeps a client's 5-tuple on one worker. They share
    /// the nonce key, users, quotas, RESERVATION-TOKENs and counters. More than one
    /// needs Linux (elsewhere 0 means 1).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Most relayed payload bits per second per allocation, both directions together;
    /// packets over it are dropped and counted (over_cap). Default: no cap.
    #[arg(long, value_name = "BITS")]
    pub max_bps: Option<u64>,
    /// Most relayed payload bits per second per user over all their allocations.
    #[arg(long, value_name = "BITS")]
    pub user_max_bps: Option<u64>,
    /// While draining (after SIGTERM), answer new Allocates with 300 Try Alternate
    /// naming this server instead of 508.
    #[arg(long, value_name = "ADDR")]
    pub alternate_server: Option<SocketAddr>,
    /// With --alternate-server, over TLS: the name in the alternate's certificate, sent
    /// as ALTERNATE-DOMAIN so clients check it against that name (RFC 8489 §14.16);
    /// without it they check the name they used for this server
    #[arg(long, value_name = "NAME", requires = "alternate_server")]
    pub alternate_domain: Option<String>,
    /// After SIGTERM, keep serving existing allocations for at most this many seconds
    /// (exiting earlier once none remain). SIGINT stops at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub drain_seconds: u64,
    /// Behind a 1:1 NAT (a cloud VM): relay on PRIVATE, tell clients PUBLIC in
    /// XOR-RELAYED-ADDRESS (repeat once per address family). PRIVATE defaults to the
    /// --relay-ip of the same family.
    #[arg(long = "external-ip", value_name = "PUBLIC[/PRIVATE]", value_parser = parse_external_ip)]
    pub external_ip: Vec<(IpAddr, Option<IpAddr>)>,
    /// Read settings from a TOML file whose keys are these flags' long names (flags on
    /// the command line override it). SIGHUP reads it again and applies the users, the
    /// REST secrets and the TLS certificate and key; other changes need a restart.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration as TOML (passwords redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9641; port 0 for
    /// any). Keep it off the public internet.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Share users and allocation quotas with other instances through this Redis
    /// (`redis://[USER:PASSWORD@]HOST:PORT/DB`, or `rediss://` for TLS; docs/fleet.md).
    /// --user-quota and --max-allocations then hold for the whole fleet.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// PEM certificates to trust for a rediss:// Redis instead of the system's roots.
    #[arg(long, value_name = "FILE", requires = "redis")]
    pub redis_ca: Option<PathBuf>,
    /// While Redis cannot be reached, grant Allocates that this instance's own limits
    /// allow instead of answering 500 (they are counted once Redis is back).
    #[arg(long, requires = "redis")]
    pub redis_fail_open: bool,
    /// This instance's name in the fleet (default: random; unique per process).
    #[arg(long, value_name = "NAME", requires = "redis")]
    pub redis_instance: Option<String>,
    /// Seconds an instance's allocations keep counting after it was last heard from
    /// (a crashed instance's quota comes back after this).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_seconds)]
    pub redis_lease: f64,
    /// Seconds between reads of the users, secrets, revocations and quotas in Redis.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, value_parser = parse_seconds)]
    pub redis_poll: f64,
    /// Log lines on stderr as text or as one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level or filter (error, warn, info, debug, trace, or directives such as
    /// floe_turn=debug,info). Default: RUST_LOG, else info.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// A positive number of seconds, at most a day.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("{s}: expected seconds above 0 and at most 86400")),
    }
}

/// `PUBLIC` or `PUBLIC/PRIVATE`, both of one family.
fn parse_external_ip(s: &str) -> Result<(IpAddr, Option<IpAddr>), String> {
    let (public, private) = match s.split_once('/') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    };
    let public: IpAddr = public.parse().map_err(|e| format!("{s}: {e}"))?;
    let private = private
        .map(|q| q.parse::<IpAddr>().map_err(|e| format!("{s}: {e}")))
        .transpose()?;
    if private.is_some_and(|q| q.is_ipv4() != public.is_ipv4()) {
        return Err(format!(
            "{s}: the public and private addresses differ in family"
        ));
    }
    if public.is_unspecified() || private.is_some_and(|q| q.is_unspecified()) {
        return Err(format!(
            "{s}: a wildcard address cannot be advertised or bound"
        ));
    }
    Ok((public, private))
}

/// Builds the server options, or explains what is wrong.
pub fn options(args: &ServeArgs) -> Result<ServerOptions, String> {
    let listen = if args.listen.is_empty() {
        vec!["0.0.0.0:3478".parse().map_err(|_| "bad default")?]
    } else {
        args.listen.clone()
    };
    let mut opts = ServerOptions::new(listen[0]);
    opts.udp.clone_from(&listen);
    if args.tcp {
        opts.tcp.clone_from(&listen);
    }
    let mut relay_ips: Vec<IpAddr> = args.relay_ip.clone();
    if relay_ips.is_empty() {
        relay_ips = listen
            .iter()
            .map(SocketAddr::ip)
            .filter(|ip| !ip.is_unspecified())
            .collect();
    }
    opts.relay_ipv4 = relay_ips.iter().copied().find(IpAddr::is_ipv4);
    opts.relay_ipv6 = relay_ips.iter().copied().find(IpAddr::is_ipv6);
    let mut external = Vec::new();
    for &(public, private) in &args.external_ip {
        let relay = if public.is_ipv4() {
            &mut opts.relay_ipv4
        } else {
            &mut opts.relay_ipv6
        };
        let private = match (private, *relay) {
            (Some(p), None) => {
                *relay = Some(p);
                p
            }
            (Some(p), Some(r)) if p != r => {
                return Err(format!(
                    "--external-ip {public}/{p}: relays are bound on {r} (--relay-ip or --listen)"
                ))
            }
            (Some(p), Some(_)) => p,
            (None, Some(r)) => r,
            (None, None) => {
                return Err(format!(
                    "--external-ip {public}: give PUBLIC/PRIVATE or a --relay-ip of its family"
                ))
            }
        };
        if external
            .iter()
            .any(|(p, _): &(IpAddr, IpAddr)| p.is_ipv4() == public.is_ipv4())
        {
            return Err("--external-ip: one per address family".into());
        }
        external.push((public, private));
    }
    if opts.relay_ipv4.is_none() && opts.relay_ipv6.is_none() {
        return Err("--relay-ip is required when listening on a wildcard address".into());
    }
    if args.min_port > args.max_port {
        return Err("--min-port must not be above --max-port".into());
    }
    opts.relay_ports = args.min_port..=args.max_port;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        opts.tls_config = Some(load_tls_config(cert, key).map_err(|e| e.to_string())?);
        opts.tls = if args.tls_listen.is_empty() {
            listen
                .iter()
                .map(|a| SocketAddr::new(a.ip(), 5349))
                .collect()
        } else {
            args.tls_listen.clone()
        };
    }
    opts.alternate = args.alt_address;
    opts.workers = args.threads;
    let turn = &mut opts.turn;
    turn.realm.clone_from(&args.realm);
    for u in &args.users {
        let (name, password) = u
            .split_once(':')
            .ok_or_else(|| format!("--user {u}: expected NAME:PASSWORD"))?;
        turn.users.insert(name.to_owned(), password.to_owned());
    }
    turn.rest_secrets.clone_from(&args.rest_secret);
    if turn.users.is_empty() && turn.rest_secrets.is_empty() && args.redis.is_none() {
        tracing::warn!("no --user or --rest-secret: TURN allocations will be refused (STUN Binding still works)");
    }
    turn.peer_policy.allow_loopback = args.allow_loopback_peers;
    turn.peer_policy.allow.clone_from(&args.allow_peer);
    turn.peer_policy.deny.clone_from(&args.deny_peer);
    turn.max_allocations = args.max_allocations;
    turn.max_allocations_per_user = args.user_quota;
    turn.max_unauthenticated_per_second = args.max_unauthenticated_per_second;
    if args.max_bps == Some(0) || args.user_max_bps == Some(0) {
        return Err("--max-bps and --user-max-bps must be above 0".into());
    }
    turn.max_bps = args.max_bps;
    turn.user_max_bps = args.user_max_bps;
    turn.alternate_server = args.alternate_server;
    if let Some(d) = &args.alternate_domain {
        use floe_stun::attributes::{AlternateDomain, Attribute as _};
        AlternateDomain(d)
            .validate()
            .map_err(|e| format!("--alternate-domain {d:?}: {e}"))?;
    }
    turn.alternate_domain.clone_from(&args.alternate_domain);
    turn.external_ips = external;
    if let Some(url) = &args.redis {
        let mut fleet = floe_server::FleetOptions::new(url);
        if let Some(name) = &args.redis_instance {
            fleet.instance.clone_from(name);
        }
        fleet.lease = Duration::from_secs_f64(args.redis_lease);
        fleet.poll = Duration::from_secs_f64(args.redis_poll);
        fleet.fail_open = args.redis_fail_open;
        if let Some(path) = &args.redis_ca {
            fleet.ca_pem = Some(
                std::fs::read(path).map_err(|e| format!("--redis-ca {}: {e}", path.display()))?,
            );
        }
        opts.fleet = Some(fleet);
    }
    Ok(opts)
}

/// The counters as one JSON object.
pub fn stats_json(s: &ServerStats) -> serde_json::Value {
    serde_json::json!({
        "stats": {
            "allocations": s.allocations,
            "allocations_created": s.allocations_created,
            "permissions": s.permissions,
            "channels": s.channels,
            "bindings": s.bindings,
            "packets_to_peers": s.packets_to_peers,
            "bytes_to_peers": s.bytes_to_peers,
            "packets_to_clients": s.packets_to_clients,
            "bytes_to_clients": s.bytes_to_clients,
            "icmp_to_clients": s.icmp_to_clients,
            "auth_failures": s.auth_failures,
            "challenges": s.challenges,
            "rate_limited": s.rate_limited,
            "peers_refused": s.peers_refused,
            "dropped": s.dropped,
            "over_cap": s.over_cap,
            "drain_refusals": s.drain_refusals,
            "allocations_expired": s.allocations_expired(),
            "allocations_deleted": s.allocations_deleted(),
            "allocations_by_kind": by_kind(s),
            "auth_failures_by_code": AuthFailure::ALL
                .iter()
                .map(|f| (f.code().to_string(), s.auth_failures_of(*f).into()))
                .collect::<serde_json::Map<_, _>>(),
            "quota_refusals": s.quota_refusals(),
            "quota_refusals_by_limit": QuotaLimit::ALL
                .iter()
                .map(|l| (l.as_str().to_owned(), s.quota_refusals_of(*l).into()))
                .collect::<serde_json::Map<_, _>>(),
            "peers_refused_by_kind": PeerRefusal::ALL
                .iter()
                .map(|r| (r.as_str().to_owned(), s.peers_refused_as(*r).into()))
                .collect::<serde_json::Map<_, _>>(),
            "dropped_by_reason": DropReason::ALL
                .iter()
                .map(|r| (r.as_str().to_owned(), s.dropped_for(*r).into()))
                .collect::<serde_json::Map<_, _>>(),
        }
    })
}

/// Allocation counters by kind, keyed `udp_ipv4`, `tcp_dual`, ...
fn by_kind(s: &ServerStats) -> serde_json::Map<String, serde_json::Value> {
    AllocationKind::ALL
        .iter()
        .map(|k| {
            let c = s.allocations_of(*k);
            (
                format!("{}_{}", k.transport.as_str(), k.family.as_str()),
                serde_json::json!({
                    "current": c.current,
                    "created": c.created,
                    "expired": c.expired,
                    "deleted": c.deleted,
                }),
            )
        })
        .collect()
}

/// The `floe serve` command line, for parsing on its own (`--config` expands first).
fn command() -> clap::Command {
    use clap::Args as _;
    ServeArgs::augment_args(clap::Command::new("floe serve"))
        .about("Run a STUN/TURN server until interrupted.")
        .version(env!("CARGO_PKG_VERSION"))
}

/// Parses `raw` (the arguments after `serve`), with `--config FILE` expanded.
fn parse(raw: &[std::ffi::OsString]) -> Result<(ServeArgs, clap::ArgMatches), String> {
    use clap::FromArgMatches as _;
    let expanded = crate::serve_config::expand(raw)?;
    let matches = command()
        .try_get_matches_from(std::iter::once("floe serve".into()).chain(expanded))
        .map_err(|e| e.render().to_string())?;
    let args = ServeArgs::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    Ok((args, matches))
}

/// `floe serve` from its raw arguments (everything after `serve`): expands `--config`,
/// handles `--print-config` and `--help`, and runs with SIGHUP reloading from the same
/// arguments. Returns the exit status.
pub fn main(raw: &[std::ffi::OsString]) -> u8 {
    // --help and --version print through clap's own path.
    if let Err(e) = command().try_get_matches_from(
        std::iter::once(std::ffi::OsString::from("floe serve")).chain(raw.iter().cloned()),
    ) {
        if matches!(
            e.kind(),
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
        ) {
            let _ = e.print();
            return 0;
        }
    }
    let (args, matches) = match parse(raw) {
        Ok(x) => x,
        Err(e) => {
            eprint!("{e}");
            if !e.ends_with('\n') {
                eprintln!();
            }
            return 2;
        }
    };
    if args.print_config {
        print!("{}", crate::serve_config::print(&command(), &matches));
        return 0;
    }
    serve(&args, Some(raw))
}

/// Runs `floe serve`; returns the exit status. SIGHUP reloads the TLS certificate and
/// key from their files (the users and REST secrets of a command line do not change).
pub fn run(args: &ServeArgs) -> u8 {
    serve(args, None)
}

fn serve(args: &ServeArgs, raw: Option<&[std::ffi::OsString]>) -> u8 {
    // Held to the end of `serve`: dropping it writes out the buffered lines.
    let (_log, log_dropped) = match logging::init(args.log_format, args.log_level.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("floe serve: {e}");
            return 2;
        }
    };
    let opts = match options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("floe serve: {e}");
            return 2;
        }
    };
    // One runtime thread per worker. Measured on a 2-core machine, one multi-threaded
    // runtime shared by the workers costs less CPU per packet at a fixed load than a
    // single-threaded runtime per worker on a thread of its own (1.8 against 2.7 us with
    // two workers at 50,000 packets/s; the same at saturation): a thread per worker wakes
    // once per worker where the shared runtime wakes once for both (docs/benchmarks.md).
    let workers = floe_server::worker_count(args.threads);
    let rt = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("floe serve: {e}");
            return 1;
        }
    };
    crate::backstop::install(None);
    rt.block_on(async move {
        let mut handle = match spawn(opts).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("floe serve: cannot listen: {e}");
                return 1;
            }
        };
        handle.set_log_lines_dropped(floe_server::LogLinesDropped::new(move || {
            u64::try_from(log_dropped.dropped_lines()).unwrap_or(u64::MAX)
        }));
        let metrics = match args.metrics {
            Some(addr) => match handle.serve_metrics(addr).await {
                Ok(a) => Some(a),
                Err(e) => {
                    eprintln!("floe serve: cannot serve metrics on {addr}: {e}");
                    handle.shutdown().await;
                    return 1;
                }
            },
            None => None,
        };
        crate::backstop::install(Some(handle.stats_watch()));
        crate::backstop::test_panic_from_env();
        let line = serde_json::json!({
            "listening": {
                "udp": handle.udp_addrs(),
                "tcp": handle.tcp_addrs(),
                "tls": handle.tls_addrs(),
                "metrics": metrics,
            }
        });
        println!("{line}");
        let _ = std::io::stdout().flush();
        tracing::info!("listening; Ctrl-C to stop, SIGTERM to drain, SIGHUP to reload");
        if wait_for_stop(&handle, args, raw).await == Stop::Drain {
            drain(&handle, Duration::from_secs(args.drain_seconds)).await;
        }
        println!("{}", stats_json(&handle.current_stats().await));
        handle.shutdown().await;
        0
    })
}

/// How the server was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGINT (Ctrl-C): at once.
    Now,
    /// SIGTERM: drain first.
    Drain,
}

/// Refuses new allocations and waits until none remain or `limit` passes.
async fn drain(handle: &floe_server::ServerHandle, limit: Duration) {
    handle.drain().await;
    let left = handle.stats().allocations;
    tracing::info!(
        allocations = left,
        limit_s = limit.as_secs(),
        "draining: new allocations refused; stopping when none remain or the limit passes"
    );
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = handle.stats().allocations;
        if left == 0 {
            tracing::info!("drained");
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(allocations = left, "drain time is up");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(unix)]
async fn wait_for_stop(
    handle: &floe_server::ServerHandle,
    args: &ServeArgs,
    raw: Option<&[std::ffi::OsString]>,
) -> Stop {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut usr1), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return Stop::Now;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Stop::Now,
            _ = term.recv() => return Stop::Drain,
            _ = hup.recv() => reload(handle, args, raw).await,
            _ = usr1.recv() => {
                println!("{}", stats_json(&handle.current_stats().await));
                let _ = std::io::stdout().flush();
            }
        }
    }
}

/// SIGHUP: reads the configuration again (the `--config` file, or the same command
/// line) and applies the users, REST secrets and TLS certificate; on any error keeps
/// what runs and says why. Prints `{"reloaded":{...}}` on stdout when applied.
#[cfg(unix)]
async fn reload(
    handle: &floe_server::ServerHandle,
    args: &ServeArgs,
    raw: Option<&[std::ffi::OsString]>,
) {
    let fresh = match raw {
        Some(raw) => match parse(raw) {
            Ok((args, _)) => args,
            Err(e) => {
                tracing::error!(error = %e.trim_end(), "reload refused, keeping the running configuration");
                return;
            }
        },
        None => {
            // Without --config only the certificate files can have changed.
            args.clone()
        }
    };
    let opts = match options(&fresh) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "reload refused, keeping the running configuration");
            return;
        }
    };
    let tls = opts
        .tls_config
        .clone()
        .filter(|_| !handle.tls_addrs().is_empty());
    let has_tls = tls.is_some();
    let (users, secrets) = (opts.turn.users.clone(), opts.turn.rest_secrets.clone());
    let (n_users, n_secrets) = (users.len(), secrets.len());
    match handle.reload(users, secrets, tls).await {
        Ok(()) => {
            tracing::info!(
                users = n_users,
                rest_secrets = n_secrets,
                tls = has_tls,
                "reloaded"
            );
            println!(
                "{}",
                serde_json::json!({ "reloaded": { "users": n_users, "rest_secrets": n_secrets, "tls": has_tls } })
            );
            let _ = std::io::stdout().flush();
        }
        Err(e) => tracing::error!(error = %e, "reload failed"),
    }
}

#[cfg(not(unix))]
async fn wait_for_stop(
    _: &floe_server::ServerHandle,
    _: &ServeArgs,
    _: Option<&[std::ffi::OsString]>,
) -> Stop {
    let _ = tokio::signal::ctrl_c().await;
    Stop::Now
}
