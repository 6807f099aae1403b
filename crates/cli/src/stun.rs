//! `floe stun`: one STUN Binding exchange over UDP (RFC 8489 §6), reporting the mapped
//! (server-reflexive) address, the local address and the round-trip time.
//!
//! With `--json`, exactly one line goes to stdout:
//! `{"mapped":"IP:PORT","local":"IP:PORT","rtt_ms":N}`. Errors are one line on stderr
//! and exit status 1; command-line mistakes exit 2.
//!
//! The exchange itself (`binding`) is shared with `floe nat`, which runs several.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use clap::Args;
use floe_stun::attributes::{
    ChangeRequest, ErrorCode, MappedAddress, OtherAddress, ResponseOrigin, XorMappedAddress,
};
use floe_stun::transaction::{
    check_response, ClientTransaction, Reliability, TransactionConfig, TransactionState,
};
use floe_stun::{Class, Message, MessageBuilder, MessageType, Method, TransactionId};
use tokio::net::UdpSocket;

/// The default STUN port (RFC 8489 §18.6, RFC 7064 §3.2).
pub const DEFAULT_PORT: u16 = 3478;

/// The first retransmission timeout. RFC 8489 §6.2.1 recommends 500 ms for an unknown
/// path; a command-line probe with a 5 s budget halves it so that four transmissions
/// fit (0, 0.25, 0.75, 1.75, 3.75 s).
pub const CLI_RTO: Duration = Duration::from_millis(250);

/// Arguments of `floe stun`.
#[derive(Debug, Args)]
pub struct StunArgs {
    /// The STUN server: IP:PORT, HOST:PORT, HOST (port 3478) or an RFC 7064 URI
    /// `stun:host[:port]`.
    #[arg(value_name = "SERVER")]
    pub server: ServerName,
    /// Print one JSON line: {"mapped":..,"local":..,"rtt_ms":..}.
    #[arg(long)]
    pub json: bool,
    /// Give up after this many seconds (retransmitting meanwhile, RFC 8489 §6.2.1).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = parse_timeout)]
    pub timeout: f64,
    /// Local address to send from (default: the unspecified address of the server's
    /// family, port chosen by the OS).
    #[arg(long, value_name = "ADDR")]
    pub local: Option<SocketAddr>,
}

/// Parses `--timeout`: a positive, finite number of seconds.
pub(crate) fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 && t <= 3600.0 => Ok(t),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 3600]")),
    }
}

/// A STUN server as written on the command line, before name resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerName {
    /// A host name or an IP address (IPv6 without brackets).
    pub host: String,
    /// The UDP port.
    pub port: u16,
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for ServerName {
    type Err = String;

    /// `IP:PORT`, `[IPv6]:PORT`, `HOST:PORT`, `HOST`, a bare IPv6 address, or the RFC 7064
    /// URI `stun:host[:port]` (`stuns:` is refused: this tool speaks UDP only).
    fn from_str(s: &str) -> Result<ServerName, String> {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("stuns:") {
            return Err(format!(
                "{s}: stuns: (STUN over TLS) is not supported; use stun:"
            ));
        }
        if lower.starts_with("turn:") || lower.starts_with("turns:") {
            return Err(format!("{s}: a TURN URI; give a stun: URI or HOST:PORT"));
        }
        // RFC 7064 §3.1: the scheme is case-insensitive and has no "//" authority prefix.
        let rest = if lower.starts_with("stun:") {
            &s[5..]
        } else {
            s
        };
        if rest.contains('?') || rest.contains('/') || rest.contains('@') {
            return Err(format!("{s}: expected stun:host[:port] (RFC 7064)"));
        }
        if let Ok(ip) = rest.parse::<IpAddr>() {
            return Ok(ServerName {
                host: ip.to_string(),
                port: DEFAULT_PORT,
            });
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (ip, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{s}: unclosed '['"))?;
            let ip: Ipv6Addr = ip
                .parse()
                .map_err(|_| format!("{s}: {ip:?} is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("{s}: expected ':' after ']'"))?,
                ),
            };
            (ip.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (rest.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(format!("{s}: no host"));
        }
        if host.contains(':') && !host.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()) {
            return Err(format!("{s}: write IPv6 addresses as [ADDR]:PORT"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(format!("{s}: {p:?} is not a port (1-65535)")),
                Ok(p) => p,
            },
        };
        Ok(ServerName { host, port })
    }
}

/// Resolves a server name to its first address (RFC 8489 §8: plain A/AAAA lookup for a
/// host:port; SRV is not consulted).
pub(crate) async fn resolve(name: &ServerName) -> Result<SocketAddr, String> {
    if let Ok(ip) = name.host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, name.port));
    }
    let mut addrs = tokio::net::lookup_host((name.host.as_str(), name.port))
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", name.host))?;
    addrs
        .next()
        .ok_or_else(|| format!("{} has no addresses", name.host))
}

/// The unspecified address of `server`'s family, port 0.
pub(crate) fn unspecified_for(server: SocketAddr) -> SocketAddr {
    match server {
        SocketAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        SocketAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    }
}

/// Transaction settings that keep retransmitting (RTO doubling from `rto`) until
/// `timeout`: Rc counts the transmissions that start before it, and Rm is large enough
/// that the transaction never gives up before the caller's deadline does.
pub fn transaction_config(rto: Duration, timeout: Duration) -> TransactionConfig {
    let mut config = TransactionConfig::default();
    config.rto = rto;
    let mut rc = 1;
    let mut next = rto;
    while next < timeout && rc < 16 {
        rc += 1;
        next = next * 2 + rto;
    }
    config.rc = rc;
    let rm = timeout.as_secs_f64() / rto.as_secs_f64().max(1e-3);
    config.rm = if rm.is_finite() && rm < f64::from(u32::MAX) {
        // Truncation is fine: one more RTO of margin is added.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rm = rm.ceil() as u32;
        rm.saturating_add(1)
    } else {
        u32::MAX
    };
    config
}

/// What a Binding success response said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply {
    /// Where the response came from (the datagram's source).
    pub source: SocketAddr,
    /// XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from an RFC 3489 server.
    pub mapped: SocketAddr,
    /// OTHER-ADDRESS (RFC 5780 §7.4).
    pub other: Option<SocketAddr>,
    /// RESPONSE-ORIGIN (RFC 5780 §7.3).
    pub origin: Option<SocketAddr>,
    /// From the first transmission when the request was sent once; from the last
    /// transmission otherwise (RFC 6298 Karn: the first would overstate it).
    pub rtt: Duration,
}

/// Why a Binding exchange failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No response before the deadline.
    TimedOut {
        /// How many times the request was sent.
        transmissions: u32,
        /// How long we waited.
        waited: Duration,
    },
    /// ICMP port unreachable (seen on a connected socket): nothing listens there.
    Refused,
    /// A socket error.
    Io(io::Error),
    /// An error response (RFC 8489 §6.3.4).
    ErrorResponse {
        /// ERROR-CODE's code (0 if the attribute was missing).
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// Responses to this transaction arrived, but every one was discarded (RFC 8489
    /// §6.3: unknown comprehension-required attributes; or nothing usable in it), and
    /// no valid one came before the deadline. Says what was wrong with the last.
    Invalid {
        /// How many responses were discarded.
        discarded: u32,
        /// What was wrong with the last one.
        last: String,
    },
    /// The request could not be built (a bug).
    Build(floe_stun::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::TimedOut {
                transmissions,
                waited,
            } => write!(
                f,
                "no response after {:.1} s ({transmissions} transmission{})",
                waited.as_secs_f64(),
                if *transmissions == 1 { "" } else { "s" }
            ),
            Failure::Refused => f.write_str("port unreachable (ICMP): nothing listens there"),
            Failure::Io(e) => write!(f, "socket error: {e}"),
            Failure::ErrorResponse { code, reason } if reason.is_empty() => {
                write!(f, "error response {code}")
            }
            Failure::ErrorResponse { code, reason } => {
                write!(f, "error response {code} {reason}")
            }
            Failure::Invalid { discarded, last } => write!(
                f,
                "no valid response: {discarded} discarded, the last because {last}"
            ),
            Failure::Build(e) => write!(f, "cannot build the request: {e}"),
        }
    }
}

/// Builds a Binding request with a random transaction id, CHANGE-REQUEST when asked for
/// (RFC 5780 §7.2) and FINGERPRINT (RFC 8489 §14.7).
pub(crate) fn binding_request(change: ChangeRequest) -> Result<Vec<u8>, floe_stun::Error> {
    let mut buf = [0u8; 64];
    let tid = TransactionId::random(&mut rand::thread_rng());
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, tid)?;
    if change.change_ip || change.change_port {
        b.add(&change)?;
    }
    b.add_fingerprint()?;
    Ok(b.finish().to_vec())
}

/// What a Binding response says, or why it cannot be used.
enum Content {
    /// A usable success: mapped, OTHER-ADDRESS, RESPONSE-ORIGIN.
    Mapped(SocketAddr, Option<SocketAddr>, Option<SocketAddr>),
    /// An error response (it answers the transaction).
    Error(Failure),
    /// Nothing usable (discarded; the transaction keeps waiting).
    Unusable(String),
}

/// Reads a Binding response to a request sent to `server`. A success must carry an
/// XOR-MAPPED-ADDRESS (or an RFC 3489 server's MAPPED-ADDRESS, RFC 8489 §14.1) of the
/// request's own address family, with a real address and port: a reflexive address of
/// the other family, or `0.0.0.0:0`, is not an answer anyone can use.
fn read_reply(msg: &Message<'_>, server: SocketAddr) -> Content {
    if msg.class() == Class::Error {
        let (code, reason) = match msg.get::<ErrorCode>() {
            Ok(Some(e)) => (e.code, e.reason.to_owned()),
            _ => (0, String::new()),
        };
        return Content::Error(Failure::ErrorResponse { code, reason });
    }
    let mapped = match msg.get::<XorMappedAddress>() {
        Ok(Some(XorMappedAddress(a))) => a,
        // RFC 8489 §14.1: MAPPED-ADDRESS is what an RFC 3489 server sends instead.
        _ => match msg.get::<MappedAddress>() {
            Ok(Some(MappedAddress(a))) => a,
            _ => {
                return Content::Unusable(
                    "it had neither XOR-MAPPED-ADDRESS nor MAPPED-ADDRESS".into(),
                )
            }
        },
    };
    if mapped.is_ipv4() != server.is_ipv4() {
        return Content::Unusable(format!(
            "its mapped address {mapped} is not of the family the request was sent over              (IPv{})",
            if server.is_ipv4() { 4 } else { 6 }
        ));
    }
    if mapped.port() == 0 || mapped.ip().is_unspecified() || mapped.ip().is_multicast() {
        return Content::Unusable(format!("its mapped address {mapped} is not an address"));
    }
    Content::Mapped(
        mapped,
        msg.get::<OtherAddress>().ok().flatten().map(|a| a.0),
        msg.get::<ResponseOrigin>().ok().flatten().map(|a| a.0),
    )
}

/// The largest UDP payload: a response is read whole, whatever its size.
const MAX_DATAGRAM: usize = 65_535;

/// One Binding transaction from `socket` to `server`, retransmitted per `config` and
/// abandoned at `timeout`. Responses may come from any address (CHANGE-REQUEST answers
/// come from the server's other address); they are matched by transaction id.
pub(crate) async fn binding(
    socket: &UdpSocket,
    server: SocketAddr,
    change: ChangeRequest,
    rto: Duration,
    timeout: Duration,
) -> Result<Reply, Failure> {
    let request = binding_request(change).map_err(Failure::Build)?;
    let mut tx = ClientTransaction::new(
        request,
        Reliability::Unreliable,
        transaction_config(rto, timeout),
    )
    .map_err(Failure::Build)?;
    let start = Instant::now();
    let deadline = start + timeout;
    let mut last_sent = start;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let timed_out = |tx: &ClientTransaction, waited: Duration| match tx.last_discarded() {
        Some(last) => Failure::Invalid {
            discarded: tx.discarded(),
            last: last.to_owned(),
        },
        None => Failure::TimedOut {
            transmissions: tx.transmissions(),
            waited,
        },
    };
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(&tx, now - start));
        }
        if let Some(data) = tx.poll_transmit(now) {
            last_sent = now;
            match socket.send_to(data, server).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    return Err(Failure::Refused)
                }
                Err(e) => return Err(Failure::Io(e)),
            }
        }
        if tx.state() != TransactionState::Pending {
            return Err(timed_out(&tx, now - start));
        }
        let wake = tx.poll_timeout().map_or(deadline, |t| t.min(deadline));
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => tx.handle_timeout(Instant::now()),
            r = socket.recv_from(&mut buf) => {
                let (n, source) = match r {
                    Ok(x) => x,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        return Err(Failure::Refused)
                    }
                    Err(e) => return Err(Failure::Io(e)),
                };
                let now = Instant::now();
                // Anything that is not an answer to this transaction is dropped (RFC
                // 8489 §6.3: unmatched responses are discarded).
                let Some(data) = buf.get(..n) else { continue };
                let Ok(msg) = Message::parse(data) else { continue };
                if msg.method() != Method::BINDING || !tx.matches(&msg) {
                    continue;
                }
                // An answer that is broken or useless is discarded, and the
                // transaction waits for a valid one (a forged datagram cannot end it).
                if let Err(why) = check_response(&msg) {
                    tx.discard(why);
                    continue;
                }
                let content = read_reply(&msg, server);
                if let Content::Unusable(why) = content {
                    tx.discard(why);
                    continue;
                }
                if !tx.handle_response(now, &msg) {
                    continue;
                }
                let rtt = tx.rtt().unwrap_or_else(|| now.saturating_duration_since(last_sent));
                return match content {
                    Content::Mapped(mapped, other, origin) => Ok(Reply {
                        source,
                        mapped,
                        other,
                        origin,
                        rtt,
                    }),
                    Content::Error(e) => Err(e),
                    Content::Unusable(why) => Err(Failure::Invalid { discarded: 1, last: why }),
                };
            }
        }
    }
}

/// Milliseconds with microsecond precision, for JSON and text.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Runs `floe stun`; returns the exit status.
pub fn run(args: &StunArgs) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("floe stun: {e}");
            return 1;
        }
    };
    match rt.block_on(stun(args)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("floe stun: {e}");
            1
        }
    }
}

async fn stun(args: &StunArgs) -> Result<(), String> {
    let server = resolve(&args.server).await?;
    let bind = args.local.unwrap_or_else(|| unspecified_for(server));
    if bind.is_ipv4() != server.is_ipv4() {
        return Err(format!(
            "--local {bind} and the server {server} are of different address families"
        ));
    }
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("cannot bind {bind}: {e}"))?;
    // Connecting makes the kernel pick the source address (so `local` is a real address,
    // not the wildcard) and reports ICMP port unreachable instead of a silent timeout.
    socket
        .connect(server)
        .await
        .map_err(|e| format!("cannot reach {server}: {e}"))?;
    let local = socket
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?;
    if server.to_string() != args.server.to_string() {
        eprintln!("floe stun: {} is {server}", args.server);
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let reply = binding(&socket, server, ChangeRequest::default(), CLI_RTO, timeout)
        .await
        .map_err(|e| format!("{server}: {e}"))?;
    let rtt_ms = millis(reply.rtt);
    if args.json {
        let line = serde_json::json!({
            "mapped": reply.mapped.to_string(),
            "local": local.to_string(),
            "rtt_ms": rtt_ms,
        });
        println!("{line}");
    } else {
        println!("mapped  {}", reply.mapped);
        println!("local   {local}");
        println!("rtt     {rtt_ms} ms");
        if reply.mapped == local {
            println!("(the mapped address is the local address: no NAT towards {server})");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(host: &str, port: u16) -> ServerName {
        ServerName {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn server_names_accept_addresses_hosts_and_rfc7064_uris() {
        let ok = [
            ("127.0.0.1:3479", name("127.0.0.1", 3479)),
            ("127.0.0.1", name("127.0.0.1", 3478)),
            ("stun.example.org:19302", name("stun.example.org", 19302)),
            ("stun.example.org", name("stun.example.org", 3478)),
            ("stun:stun.example.org", name("stun.example.org", 3478)),
            ("STUN:stun.example.org:1", name("stun.example.org", 1)),
            ("stun:127.0.0.1:5000", name("127.0.0.1", 5000)),
            ("[::1]:5000", name("::1", 5000)),
            ("[::1]", name("::1", 3478)),
            ("::1", name("::1", 3478)),
            ("stun:[2001:db8::1]:7", name("2001:db8::1", 7)),
        ];
        for (s, want) in ok {
            assert_eq!(s.parse::<ServerName>(), Ok(want), "{s}");
        }
    }

    #[test]
    fn malformed_server_names_are_refused_with_the_reason() {
        for (s, why) in [
            ("stuns:example.org", "not supported"),
            ("turn:example.org", "TURN"),
            ("stun://example.org", "RFC 7064"),
            ("example.org:0", "not a port"),
            ("example.org:99999", "not a port"),
            ("example.org:", "not a port"),
            (":3478", "no host"),
            ("stun:", "no host"),
            ("[::1", "unclosed"),
            ("[nope]:1", "not an IPv6"),
            ("2001:db8::1:x:3478", "[ADDR]:PORT"),
        ] {
            let e = s.parse::<ServerName>().unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn server_names_display_as_host_and_port() {
        assert_eq!(name("::1", 5).to_string(), "[::1]:5");
        assert_eq!(name("a.example", 5).to_string(), "a.example:5");
    }

    #[test]
    fn transaction_config_retransmits_until_the_timeout_and_no_longer() {
        // Sends at 0, 0.25, 0.75, 1.75 and 3.75 s fit in 5 s; 7.75 s does not.
        let c = transaction_config(CLI_RTO, Duration::from_secs(5));
        assert_eq!(c.rto, CLI_RTO);
        assert_eq!(c.rc, 5);
        assert!(CLI_RTO * c.rm >= Duration::from_secs(5));
        // One second: 0, 0.25 and 0.75 s.
        assert_eq!(transaction_config(CLI_RTO, Duration::from_secs(1)).rc, 3);
        // Shorter than one RTO: a single transmission.
        assert_eq!(
            transaction_config(CLI_RTO, Duration::from_millis(100)).rc,
            1
        );
    }

    #[test]
    fn timeouts_must_be_positive_and_finite() {
        assert_eq!(parse_timeout("0.5"), Ok(0.5));
        for bad in ["0", "-1", "nan", "inf", "x", "100000"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_responses_carry_their_code() {
        let mut buf = [0u8; 128];
        let mut b =
            MessageBuilder::new(&mut buf, MessageType::BINDING_ERROR, TransactionId([3; 12]))
                .unwrap();
        b.add(&ErrorCode::BAD_REQUEST).unwrap();
        let bytes = b.finish().to_vec();
        let msg = Message::parse(&bytes).unwrap();
        let src: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        let Content::Error(e) = read_reply(&msg, src) else {
            panic!("an error response answers the transaction")
        };
        assert!(e.to_string().starts_with("error response 400"), "{e}");
    }

    #[test]
    fn mapped_address_is_the_fallback_for_rfc3489_servers() {
        let seen: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let mut buf = [0u8; 128];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::BINDING_SUCCESS,
            TransactionId([4; 12]),
        )
        .unwrap();
        b.add(&MappedAddress(seen)).unwrap();
        let bytes = b.finish().to_vec();
        let msg = Message::parse(&bytes).unwrap();
        let src: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        assert!(matches!(read_reply(&msg, src), Content::Mapped(m, None, None) if m == seen));
    }
}
