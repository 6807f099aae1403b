//! `floe stun`: one STUN Binding exchange over UDP (RFC 8489 §6), reporting the mapped
//! (server-reflexive) address, the local address and the round-trip time.
//!
//! With `--json`, exactly one line goes to stdout:
//! `{"mapped":"IP:PORT","local":"IP:PORT","rtt_ms":N}`. Errors are one line on stderr
//! and exit status 1; command-line mistakes exit 2.
//!
//! The exchange itself is [`floe_peer::probe::binding`]; this module parses the
//! arguments and prints. `floe nat` shares the server-name parsing.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
pub use floe_peer::probe::DEFAULT_PORT;
use floe_peer::probe::{binding, unspecified_for, ChangeRequest, ProbeConfig};
use tokio::net::UdpSocket;

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
    let config = ProbeConfig::with_timeout(timeout);
    let reply = binding(&socket, server, ChangeRequest::default(), &config)
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
    fn timeouts_must_be_positive_and_finite() {
        assert_eq!(parse_timeout("0.5"), Ok(0.5));
        for bad in ["0", "-1", "nan", "inf", "x", "100000"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }
}
