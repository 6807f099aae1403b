//! `floe serve` is observable: `--metrics` serves Prometheus text over real HTTP while
//! an allocation made by `floe relay` is alive, and `--log-format json` writes one JSON
//! object per stderr line, with an event for each allocation created and deleted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FLOE: &str = env!("CARGO_BIN_EXE_floe");

/// Kills the process when dropped, so a failed assertion leaves nothing running.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `floe serve` with `extra` arguments; returns it and its `listening` object.
fn serve(extra: &[&str], stderr: Stdio) -> (Proc, serde_json::Value) {
    let mut child = Command::new(FLOE)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--relay-ip",
            "127.0.0.1",
            "--user",
            "alice:secret",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (Proc(child), v["listening"].clone())
}

/// Starts `floe relay` against `udp` and waits for its allocation; returns it and the
/// relayed address.
fn relay(udp: &str, seconds: &str) -> (Proc, String) {
    let mut child = Command::new(FLOE)
        .args(["relay", "--server", udp, "--user", "alice"])
        .args(["--password", "secret", "--duration", seconds])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let relayed = v["relayed"].as_str().unwrap().to_owned();
    (Proc(child), relayed)
}

/// Sends `request` to the metrics address and returns the whole answer.
fn http(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// One sample line of the Prometheus text format: `name{labels} value` or `name value`.
/// Returns the name, the label text (without braces) and the value (a float).
fn sample(line: &str) -> Option<(&str, &str, &str)> {
    let (series, value) = line.rsplit_once(' ')?;
    value.parse::<f64>().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    let mut chars = name.chars();
    let first = chars.next()?;
    let name_ok = (first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    let labels_ok = labels.is_empty()
        || labels.split(',').all(|l| {
            l.split_once('=').is_some_and(|(k, v)| {
                !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && v.len() >= 2
                    && v.starts_with('"')
                    && v.ends_with('"')
            })
        });
    (name_ok && labels_ok).then_some((name, labels, value))
}

#[test]
fn metrics_show_a_live_allocation_over_http_and_refuse_what_is_not_a_scrape() {
    let (_server, listening) = serve(&["--metrics", "127.0.0.1:0"], Stdio::null());
    let metrics = listening["metrics"].as_str().unwrap().to_owned();
    let udp = listening["udp"][0].as_str().unwrap().to_owned();
    let (_relay, relayed) = relay(&udp, "20");
    assert!(relayed.starts_with("127.0.0.1:"), "{relayed}");

    let answer = http(
        &metrics,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n",
    );
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let mut samples = Vec::new();
    for line in body.lines() {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP floe_")
                    || line.starts_with("# TYPE floe_")
                    || line.starts_with("# HELP process_")
                    || line.starts_with("# TYPE process_")
                    || line == "# EOF",
                "{line}"
            );
            continue;
        }
        let s = sample(line).unwrap_or_else(|| panic!("not Prometheus text: {line:?}"));
        samples.push(s);
    }
    let value = |name: &str, labels: &str| match samples
        .iter()
        .find(|(n, l, _)| *n == name && *l == labels)
    {
        Some(s) => s.2,
        None => panic!("no {name}{{{labels}}} in\n{body}"),
    };
    assert_eq!(
        value("floe_allocations", "transport=\"udp\",family=\"ipv4\""),
        "1"
    );
    assert_eq!(
        value("floe_allocations", "transport=\"tcp\",family=\"ipv4\""),
        "0"
    );
    assert_eq!(
        value(
            "floe_allocations_created_total",
            "transport=\"udp\",family=\"ipv4\""
        ),
        "1"
    );
    // The relay's first Allocate had no credentials: a challenge, not a failure.
    assert!(value("floe_challenges_total", "").parse::<u64>().unwrap() >= 1);
    assert_eq!(value("floe_auth_failures_total", "code=\"401\""), "0");
    assert_eq!(value("floe_queue_depth", "worker=\"0\""), "0");
    // stderr is read: no log line was dropped.
    assert_eq!(value("floe_log_lines_dropped_total", ""), "0");
    assert!(
        value("process_start_time_seconds", "")
            .parse::<f64>()
            .unwrap()
            > 1.6e9
    );
    assert_eq!(
        value(
            "floe_build_info",
            &format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))
        ),
        "1"
    );
    for name in [
        "floe_allocations_expired_total",
        "floe_permissions",
        "floe_channels",
        "floe_relayed_packets_total",
        "floe_relayed_bytes_total",
        "floe_quota_refusals_total",
        "floe_peers_refused_total",
        "floe_dropped_total",
        "floe_bindings_total",
        "floe_rate_limited_total",
        "floe_drain_refusals_total",
    ] {
        assert!(
            body.contains(&format!("# HELP {name} ")),
            "no {name} in\n{body}"
        );
    }

    let not_found = http(&metrics, b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(not_found.starts_with("HTTP/1.1 404 "), "{not_found}");

    // Headers past 8 KiB get 431 and the connection closed; the server goes on.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    big.resize(16 * 1024, b'a');
    let too_big = http(&metrics, &big);
    assert!(too_big.starts_with("HTTP/1.1 431 "), "{too_big}");

    // A client that connects and says nothing is cut off after the timeout, not kept.
    let start = Instant::now();
    let mut silent = TcpStream::connect(&metrics).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(10),
        "{waited:?}"
    );

    let again = http(&metrics, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert!(again.starts_with("HTTP/1.1 200 OK\r\n"), "{again}");
}

#[test]
fn json_logs_carry_each_allocation_created_and_deleted() {
    let (mut server, listening) = serve(&["--log-format", "json"], Stdio::piped());
    let udp = listening["udp"][0].as_str().unwrap().to_owned();
    let (mut relay, relayed) = relay(&udp, "0.5");
    // `floe relay` deletes its allocation (Refresh, lifetime 0) when --duration ends.
    let start = Instant::now();
    while relay.0.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "relay still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGTERM drains; with no allocation left the server exits at once.
    let ok = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let mut err = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let mut out = String::new();
    server
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let events: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l:?}")))
        .collect();
    let find = |message: &str| {
        events
            .iter()
            .find(|e| e["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in\n{err}"))
            .clone()
    };
    let created = find("allocation created");
    assert_eq!(created["level"], "INFO", "{created}");
    assert_eq!(created["user"], "alice", "{created}");
    assert_eq!(created["relayed"], relayed.as_str(), "{created}");
    assert_eq!(created["transport"], "udp", "{created}");
    assert_eq!(created["server"], udp.as_str(), "{created}");
    assert!(created["client"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(created["lifetime_s"], 600, "{created}");
    let deleted = find("allocation deleted");
    assert_eq!(deleted["user"], "alice", "{deleted}");
    assert_eq!(deleted["relayed"], relayed.as_str(), "{deleted}");
    assert_eq!(deleted["client"], created["client"], "{deleted}");
    assert_eq!(deleted["reason"], "refresh", "{deleted}");
    assert_eq!(deleted["bytes_to_peers"], 0, "{deleted}");
    assert_eq!(deleted["bytes_to_clients"], 0, "{deleted}");
    // Nothing secret: no password, and no nonce (nonces start with the RFC 8489 cookie).
    assert!(!err.contains("secret"), "{err}");
    assert!(!err.contains("obMatJos2"), "{err}");

    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["stats"]["allocations_deleted"], 1, "{out}");
    assert_eq!(
        last["stats"]["allocations_by_kind"]["udp_ipv4"]["deleted"], 1,
        "{out}"
    );
    assert_eq!(last["stats"]["allocations_created"], 1, "{out}");
}
