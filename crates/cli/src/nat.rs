//! `floe nat`: NAT behaviour discovery (RFC 5780 §4) against a server that sends
//! OTHER-ADDRESS: the mapping behaviour (§4.3), the filtering behaviour (§4.4) and, when
//! there is a NAT to test, hairpinning (§3.4).
//!
//! With `--json`, exactly one line goes to stdout:
//! `{"mapping":..,"filtering":..,"hairpinning":true|false|null,"mapped":..,"local":..,"other_address":..}`.
//! Progress goes to stderr; errors are one line on stderr and exit status 1.
//!
//! The tests run on separate sockets because filtering is "sensitive to prior state on
//! the NAT" (§4.4): the mapping tests send to the server's alternate address, which
//! would open an address-dependent filter for the very answer the filtering test waits
//! for. The classification itself is in pure functions ([`mapping_behaviour`],
//! [`filtering_behaviour`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Args;
use floe_stun::attributes::ChangeRequest;
use floe_stun::transaction::{ClientTransaction, Reliability, TransactionState};
use floe_stun::Message;
use tokio::net::UdpSocket;

use crate::stun::{
    binding, binding_request, parse_timeout, resolve, transaction_config, unspecified_for, Failure,
    Reply, ServerName, CLI_RTO,
};

/// How long a test whose silence is an answer (CHANGE-REQUEST, hairpinning) waits,
/// retransmitting at 0, 0.25 and 0.75 s. A lost answer there means "filtered", so the
/// wait is short; `--timeout` caps it.
pub const QUIET_TEST_TIMEOUT: Duration = Duration::from_secs(1);

/// Arguments of `floe nat`.
#[derive(Debug, Args)]
pub struct NatArgs {
    /// A STUN server with RFC 5780 support (it sends OTHER-ADDRESS): IP:PORT, HOST:PORT,
    /// HOST (port 3478) or `stun:host[:port]`.
    #[arg(value_name = "SERVER")]
    pub server: ServerName,
    /// Print one JSON line with mapping, filtering, hairpinning, mapped, local and
    /// other_address.
    #[arg(long)]
    pub json: bool,
    /// How long a test that must be answered waits, in seconds (tests whose silence is
    /// the answer wait at most 1 s).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = parse_timeout)]
    pub timeout: f64,
}

/// A NAT behaviour, as RFC 4787 names them (the same words for mapping and filtering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Endpoint-independent: the same for every remote address.
    EndpointIndependent,
    /// Address-dependent: depends on the remote IP only.
    AddressDependent,
    /// Address and port-dependent: depends on the remote IP and port.
    AddressAndPortDependent,
}

impl Behaviour {
    /// The JSON value: `endpoint-independent`, `address-dependent` or
    /// `address-and-port-dependent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::EndpointIndependent => "endpoint-independent",
            Behaviour::AddressDependent => "address-dependent",
            Behaviour::AddressAndPortDependent => "address-and-port-dependent",
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 5780 §4.3 from the XOR-MAPPED-ADDRESSes of test I (primary address), test II
/// (alternate IP, primary port) and test III (alternate IP and port). Test III is only
/// needed when I and II differ; `None` then means it is still to be run.
pub fn mapping_behaviour(
    test1: SocketAddr,
    test2: SocketAddr,
    test3: Option<SocketAddr>,
) -> Option<Behaviour> {
    if test1 == test2 {
        return Some(Behaviour::EndpointIndependent);
    }
    test3.map(|test3| {
        if test3 == test2 {
            Behaviour::AddressDependent
        } else {
            Behaviour::AddressAndPortDependent
        }
    })
}

/// RFC 5780 §4.4 from whether the answer to test II (CHANGE-REQUEST change IP and port)
/// and test III (change port) arrived. Test III is only needed when test II's answer was
/// lost; `None` then means it is still to be run.
pub fn filtering_behaviour(
    change_ip_and_port_answered: bool,
    change_port_answered: Option<bool>,
) -> Option<Behaviour> {
    if change_ip_and_port_answered {
        return Some(Behaviour::EndpointIndependent);
    }
    change_port_answered.map(|answered| {
        if answered {
            Behaviour::AddressDependent
        } else {
            Behaviour::AddressAndPortDependent
        }
    })
}

/// Everything `floe nat` found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Report {
    server: SocketAddr,
    other: SocketAddr,
    local: SocketAddr,
    mapped: SocketAddr,
    mapping: Behaviour,
    /// The mapped addresses of mapping tests II and III (III only when run).
    mapping_seen: (SocketAddr, Option<SocketAddr>),
    filtering: Behaviour,
    hairpinning: Option<bool>,
}

/// Runs `floe nat`; returns the exit status.
pub fn run(args: &NatArgs) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("floe nat: {e}");
            return 1;
        }
    };
    match rt.block_on(nat(args)) {
        Ok(report) => {
            if args.json {
                println!("{}", json(&report));
            } else {
                print!("{}", text(&report));
            }
            0
        }
        Err(e) => {
            eprintln!("floe nat: {e}");
            1
        }
    }
}

/// Binds a socket on the interface that routes to `server` (not the wildcard, so that
/// the local address can be compared with the mapped one, §4.3).
async fn bind_towards(server: SocketAddr) -> Result<UdpSocket, String> {
    let probe = UdpSocket::bind(unspecified_for(server))
        .await
        .map_err(|e| format!("cannot bind a UDP socket: {e}"))?;
    probe
        .connect(server)
        .await
        .map_err(|e| format!("no route to {server}: {e}"))?;
    let ip = probe
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?
        .ip();
    let bind = SocketAddr::new(ip, 0);
    UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("cannot bind {bind}: {e}"))
}

fn local_of(socket: &UdpSocket) -> Result<SocketAddr, String> {
    socket
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))
}

/// A test that must be answered.
async fn answered(
    socket: &UdpSocket,
    to: SocketAddr,
    test: &str,
    timeout: Duration,
) -> Result<Reply, String> {
    eprintln!("floe nat: {test}: Binding to {to}");
    binding(socket, to, ChangeRequest::default(), CLI_RTO, timeout)
        .await
        .map_err(|e| format!("{test} ({to}): {e}"))
}

/// A CHANGE-REQUEST test: `Some(true)` if answered from `expected`, `Some(false)` if the
/// answer was lost (the signal for filtering).
async fn change_test(
    socket: &UdpSocket,
    server: SocketAddr,
    change: ChangeRequest,
    expected: SocketAddr,
    test: &str,
    timeout: Duration,
) -> Result<bool, String> {
    eprintln!("floe nat: {test}: Binding to {server} with CHANGE-REQUEST, answer expected from {expected}");
    match binding(socket, server, change, CLI_RTO, timeout).await {
        Ok(reply) if reply.source == expected => Ok(true),
        Ok(reply) => Err(format!(
            "{test}: the answer came from {}, not {expected}: the server does not honour \
             CHANGE-REQUEST (RFC 5780 §6.1), so filtering cannot be told",
            reply.source
        )),
        Err(Failure::TimedOut { .. }) => Ok(false),
        Err(e) => Err(format!("{test} ({server}): {e}")),
    }
}

async fn nat(args: &NatArgs) -> Result<Report, String> {
    let server = resolve(&args.server).await?;
    if server.to_string() != args.server.to_string() {
        eprintln!("floe nat: {} is {server}", args.server);
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let quiet = QUIET_TEST_TIMEOUT.min(timeout);

    // Mapping, RFC 5780 §4.3.
    let a = bind_towards(server).await?;
    let local = local_of(&a)?;
    let first = answered(&a, server, "mapping test I", timeout).await?;
    let Some(other) = first.other else {
        return Err(format!(
            "{server} sent no OTHER-ADDRESS: it does not support RFC 5780 NAT behaviour \
             discovery (floe serve needs --alt-address)"
        ));
    };
    if other.ip() == server.ip()
        || other.port() == server.port()
        || other.is_ipv4() != server.is_ipv4()
    {
        return Err(format!(
            "{server}'s OTHER-ADDRESS {other} must differ from it in both IP and port \
             (RFC 5780 §4.3) and be of the same family"
        ));
    }
    let mapped = first.mapped;
    let second = answered(
        &a,
        SocketAddr::new(other.ip(), server.port()),
        "mapping test II",
        timeout,
    )
    .await?
    .mapped;
    let mut third = None;
    let mapping = match mapping_behaviour(mapped, second, None) {
        Some(b) => b,
        None => {
            let seen = answered(&a, other, "mapping test III", timeout)
                .await?
                .mapped;
            third = Some(seen);
            mapping_behaviour(mapped, second, third).unwrap_or(Behaviour::AddressAndPortDependent)
        }
    };

    // Filtering, RFC 5780 §4.4, on a socket that has talked to the primary address only.
    let b = bind_towards(server).await?;
    answered(&b, server, "filtering test I", timeout).await?;
    let both = ChangeRequest {
        change_ip: true,
        change_port: true,
    };
    let ip_and_port = change_test(&b, server, both, other, "filtering test II", quiet).await?;
    let filtering = match filtering_behaviour(ip_and_port, None) {
        Some(f) => f,
        None => {
            let port_only = ChangeRequest {
                change_ip: false,
                change_port: true,
            };
            let expected = SocketAddr::new(server.ip(), other.port());
            let port =
                change_test(&b, server, port_only, expected, "filtering test III", quiet).await?;
            filtering_behaviour(false, Some(port)).unwrap_or(Behaviour::AddressAndPortDependent)
        }
    };

    // Hairpinning, RFC 5780 §3.4: only meaningful through a NAT.
    let hairpinning = if mapped == local {
        None
    } else {
        let c = bind_towards(server).await?;
        eprintln!(
            "floe nat: hairpinning: Binding from {} to the mapped address {mapped}",
            local_of(&c)?
        );
        Some(
            hairpin(&a, &c, mapped, quiet)
                .await
                .map_err(|e| format!("hairpinning test: {e}"))?,
        )
    };
    Ok(Report {
        server,
        other,
        local,
        mapped,
        mapping,
        mapping_seen: (second, third),
        filtering,
        hairpinning,
    })
}

/// RFC 5780 §3.4: sends a Binding request from `sender` to `target` (the mapped address
/// of `listener`) and reports whether `listener` receives it within `timeout`.
pub(crate) async fn hairpin(
    listener: &UdpSocket,
    sender: &UdpSocket,
    target: SocketAddr,
    timeout: Duration,
) -> io::Result<bool> {
    let request = binding_request(ChangeRequest::default()).map_err(io::Error::other)?;
    let mut tx = ClientTransaction::new(
        request,
        Reliability::Unreliable,
        transaction_config(CLI_RTO, timeout),
    )
    .map_err(io::Error::other)?;
    let tid = tx.transaction_id();
    let deadline = Instant::now() + timeout;
    // Read whole: a hairpinned Binding may be any legal size.
    let mut buf = vec![0u8; 65_535];
    loop {
        let now = Instant::now();
        if now >= deadline || tx.state() != TransactionState::Pending {
            return Ok(false);
        }
        if let Some(data) = tx.poll_transmit(now) {
            sender.send_to(data, target).await?;
        }
        let wake = tx.poll_timeout().map_or(deadline, |t| t.min(deadline));
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => tx.handle_timeout(Instant::now()),
            r = listener.recv_from(&mut buf) => {
                // Errors on an unconnected socket are per-datagram; keep listening.
                let Ok((n, _)) = r else { continue };
                let own = buf
                    .get(..n)
                    .and_then(|d| Message::parse(d).ok())
                    .is_some_and(|m| m.transaction_id() == tid);
                if own {
                    return Ok(true);
                }
            }
        }
    }
}

fn json(r: &Report) -> serde_json::Value {
    serde_json::json!({
        "mapping": r.mapping.as_str(),
        "filtering": r.filtering.as_str(),
        "hairpinning": r.hairpinning,
        "mapped": r.mapped.to_string(),
        "local": r.local.to_string(),
        "other_address": r.other.to_string(),
    })
}

fn text(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let alt_ip = SocketAddr::new(r.other.ip(), r.server.port());
    let _ = writeln!(s, "server       {} (other address {})", r.server, r.other);
    let _ = writeln!(s, "local        {}", r.local);
    if r.mapped == r.local {
        let _ = writeln!(s, "mapped       {} (the local address: no NAT)", r.mapped);
    } else {
        let _ = writeln!(s, "mapped       {} (behind a NAT)", r.mapped);
    }
    let why = match (r.mapping, r.mapping_seen) {
        (Behaviour::EndpointIndependent, _) => {
            format!("the same mapped address towards {} and {alt_ip}", r.server)
        }
        (_, (second, Some(third))) => format!(
            "mapped {} towards {}, {second} towards {alt_ip}, {third} towards {}",
            r.mapped, r.server, r.other
        ),
        (_, (second, None)) => format!("mapped {second} towards {alt_ip}"),
    };
    let _ = writeln!(s, "mapping      {} ({why}; RFC 5780 §4.3)", r.mapping);
    let why = match r.filtering {
        Behaviour::EndpointIndependent => format!(
            "an answer from {}, another IP and port, got through",
            r.other
        ),
        Behaviour::AddressDependent => format!(
            "no answer from {} (another IP) got through, one from {} (same IP, another port) did",
            r.other,
            SocketAddr::new(r.server.ip(), r.other.port())
        ),
        Behaviour::AddressAndPortDependent => format!(
            "only answers from {} itself got through, not from another IP or port",
            r.server
        ),
    };
    let _ = writeln!(s, "filtering    {} ({why}; RFC 5780 §4.4)", r.filtering);
    let hairpin = match r.hairpinning {
        None => "not applicable (no NAT to turn the packet around)".to_owned(),
        Some(true) => format!(
            "yes (a packet sent to the mapped address {} came back in; RFC 5780 §3.4)",
            r.mapped
        ),
        Some(false) => format!(
            "no (a packet sent to the mapped address {} did not arrive; RFC 5780 §3.4)",
            r.mapped
        ),
    };
    let _ = writeln!(s, "hairpinning  {hairpin}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn same_mapping_towards_the_alternate_ip_is_endpoint_independent() {
        let x = a("203.0.113.1:4000");
        assert_eq!(
            mapping_behaviour(x, x, None),
            Some(Behaviour::EndpointIndependent)
        );
    }

    #[test]
    fn a_new_mapping_per_ip_needs_test_three_to_classify() {
        let (x1, x2) = (a("203.0.113.1:4000"), a("203.0.113.1:4001"));
        assert_eq!(mapping_behaviour(x1, x2, None), None);
        assert_eq!(
            mapping_behaviour(x1, x2, Some(x2)),
            Some(Behaviour::AddressDependent)
        );
        assert_eq!(
            mapping_behaviour(x1, x2, Some(a("203.0.113.1:4002"))),
            Some(Behaviour::AddressAndPortDependent)
        );
    }

    #[test]
    fn filtering_follows_which_changed_answers_got_through() {
        assert_eq!(
            filtering_behaviour(true, None),
            Some(Behaviour::EndpointIndependent)
        );
        assert_eq!(filtering_behaviour(false, None), None);
        assert_eq!(
            filtering_behaviour(false, Some(true)),
            Some(Behaviour::AddressDependent)
        );
        assert_eq!(
            filtering_behaviour(false, Some(false)),
            Some(Behaviour::AddressAndPortDependent)
        );
    }

    #[test]
    fn behaviours_have_the_json_spellings() {
        assert_eq!(
            [
                Behaviour::EndpointIndependent,
                Behaviour::AddressDependent,
                Behaviour::AddressAndPortDependent
            ]
            .map(Behaviour::as_str),
            [
                "endpoint-independent",
                "address-dependent",
                "address-and-port-dependent"
            ]
        );
    }

    #[test]
    fn json_has_exactly_the_documented_keys() {
        let r = Report {
            server: a("192.0.2.1:3478"),
            other: a("192.0.2.2:3479"),
            local: a("10.0.0.2:5000"),
            mapped: a("198.51.100.9:6000"),
            mapping: Behaviour::AddressDependent,
            mapping_seen: (a("198.51.100.9:6001"), Some(a("198.51.100.9:6001"))),
            filtering: Behaviour::AddressAndPortDependent,
            hairpinning: Some(false),
        };
        let v = json(&r);
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "filtering",
                "hairpinning",
                "local",
                "mapped",
                "mapping",
                "other_address"
            ]
        );
        assert_eq!(v["mapping"], "address-dependent");
        assert_eq!(v["hairpinning"], false);
        let t = text(&r);
        assert!(t.contains("behind a NAT"), "{t}");
        assert!(
            t.contains("198.51.100.9:6001 towards 192.0.2.2:3478"),
            "{t}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hairpin_probe_reports_whether_the_request_arrived() {
        let listener = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        assert!(hairpin(&listener, &sender, target, Duration::from_secs(2))
            .await
            .unwrap());
        // Sent somewhere else: the listener never sees it.
        let elsewhere = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let start = Instant::now();
        let got = hairpin(
            &listener,
            &sender,
            elsewhere.local_addr().unwrap(),
            Duration::from_millis(600),
        )
        .await
        .unwrap();
        assert!(!got);
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
