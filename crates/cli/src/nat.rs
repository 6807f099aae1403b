//! `floe nat`: NAT behaviour discovery (RFC 5780 §4) against a server that sends
//! OTHER-ADDRESS: the mapping behaviour (§4.3), the filtering behaviour (§4.4) and, when
//! there is a NAT to test, hairpinning (§3.4).
//!
//! With `--json`, exactly one line goes to stdout:
//! `{"mapping":..,"filtering":..,"hairpinning":true|false|null,"mapped":..,"local":..,"other_address":..}`.
//! Progress goes to stderr; errors are one line on stderr and exit status 1.
//!
//! The tests themselves are [`floe_peer::probe::discover_nat`]; this module parses the
//! arguments and prints the report.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use floe_peer::probe::{discover_nat, NatConfig, NatError, NatReport as Report};
pub use floe_peer::probe::{Behaviour, QUIET_TEST_TIMEOUT};

use crate::stun::{parse_timeout, resolve, ServerName};

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

async fn nat(args: &NatArgs) -> Result<Report, String> {
    let server = resolve(&args.server).await?;
    if server.to_string() != args.server.to_string() {
        eprintln!("floe nat: {} is {server}", args.server);
    }
    let config = NatConfig::with_timeout(Duration::from_secs_f64(args.timeout));
    discover_nat(server, &config, |step| eprintln!("floe nat: {step}"))
        .await
        .map_err(|e| match e {
            NatError::NoOtherAddress(_) => format!("{e} (floe serve needs --alt-address)"),
            e => e.to_string(),
        })
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
}
