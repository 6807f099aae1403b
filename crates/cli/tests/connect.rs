//! `floe connect` end to end: two processes, JSON-lines signalling over TCP or named
//! pipes, lines in and out.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};

const FLOE: &str = env!("CARGO_BIN_EXE_floe");

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(args: &[&str], input: &str) -> std::process::Child {
    let mut child = spawn_open(args);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child
}

/// `floe connect` on loopback with `--json`, its stdin left open.
fn spawn_open(args: &[&str]) -> std::process::Child {
    Command::new(FLOE)
        .arg("connect")
        .args(args)
        .args([
            "--bind",
            "127.0.0.1:0",
            "--json",
            "--timeout",
            "15",
            "--linger",
            "2",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn check(out: &std::process::Output, expect: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    for line in expect.lines() {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in {stdout:?}; stderr: {stderr}"
        );
    }
    let selected = stderr
        .lines()
        .find(|l| l.contains(r#""event":"selected""#))
        .expect("a selected event");
    let v: serde_json::Value = serde_json::from_str(selected).unwrap();
    assert_eq!(v["type"], "host");
    assert!(v["rtt_ms"].is_number());
    assert!(v["local"].as_str().unwrap().starts_with("127.0.0.1:"));
}

#[test]
fn two_processes_exchange_lines_over_tcp_signalling() {
    // Port 0: the offerer reports the address it listens on (first stderr line).
    let mut a = spawn(
        &["--offer", "--signal", "tcp-listen:127.0.0.1:0"],
        "from the offerer\nsecond line\n",
    );
    let mut stderr = std::io::BufReader::new(a.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
    assert_eq!(v["event"], "listening");
    let address = v["address"].as_str().unwrap().to_owned();
    let b = spawn(
        &["--answer", "--signal", &format!("tcp:{address}")],
        "from the answerer\n",
    );
    // Give the rest of A's stderr back to the output check.
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    let mut out = a.wait_with_output().unwrap();
    out.stderr = rest.join().unwrap().into_bytes();
    check(&out, "from the answerer");
    check(
        &b.wait_with_output().unwrap(),
        "from the offerer\nsecond line",
    );
}

/// Two named pipes in a fresh directory, and the `--signal files:IN,OUT` of each side.
fn pipes(name: &str) -> (std::path::PathBuf, String, String) {
    let dir = std::env::temp_dir().join(format!("floe-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ab, ba) = (dir.join("a-to-b"), dir.join("b-to-a"));
    for p in [&ab, &ba] {
        assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
    }
    let files = |input: &std::path::Path, output: &std::path::Path| {
        format!("files:{},{}", input.display(), output.display())
    };
    let (a, b) = (files(&ba, &ab), files(&ab, &ba));
    (dir, a, b)
}

/// The peer vanishes mid-call while stdin stays open: `floe connect` reports the loss and
/// exits 1 within the consent timeout (recovery first tries, and fails), instead of
/// staying alive in its stdin read.
#[test]
fn a_vanished_peer_ends_the_process_with_status_1_while_stdin_stays_open() {
    let (dir, sig_a, sig_b) = pipes("vanish");
    let args = |role: &'static str, sig: &str| {
        vec![
            role.to_string(),
            "--signal".into(),
            sig.to_string(),
            "--consent-timeout".into(),
            "3".into(),
        ]
    };
    let (aa, ab) = (args("--offer", &sig_a), args("--answer", &sig_b));
    let mut a = spawn_open(&aa.iter().map(String::as_str).collect::<Vec<_>>());
    let mut b = spawn_open(&ab.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = std::io::BufReader::new(a.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(stderr) {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let wait = |lines: &mut Vec<String>, what: &str, limit: std::time::Duration| {
        let end = std::time::Instant::now() + limit;
        while !lines.iter().any(|l| l.contains(what)) {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => lines.push(l),
                Err(e) => panic!("no {what:?} within {limit:?} ({e}): {lines:#?}"),
            }
        }
    };
    wait(
        &mut lines,
        r#""event":"selected""#,
        std::time::Duration::from_secs(10),
    );
    b.kill().unwrap();
    let _ = b.wait();
    let killed = std::time::Instant::now();
    let status = loop {
        if let Some(status) = a.try_wait().unwrap() {
            break status;
        }
        assert!(
            killed.elapsed() < std::time::Duration::from_secs(10),
            "still running 10 s after the peer vanished: {lines:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let took = killed.elapsed();
    wait(
        &mut lines,
        "connection lost",
        std::time::Duration::from_secs(2),
    );
    assert_eq!(status.code(), Some(1), "{lines:#?}");
    assert!(
        took < std::time::Duration::from_secs(6),
        "exited after {took:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""event":"recovery""#) && l.contains(r#""step":"started""#)),
        "recovery was tried: {lines:#?}"
    );
    drop(a.stdin.take());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_processes_exchange_lines_over_named_pipes() {
    let (dir, sig_a, sig_b) = pipes("connect");
    let a = spawn(&["--offer", "--signal", &sig_a], "ping\n");
    let b = spawn(&["--answer", "--signal", &sig_b], "pong\n");
    check(&a.wait_with_output().unwrap(), "pong");
    check(&b.wait_with_output().unwrap(), "ping");
    let _ = std::fs::remove_dir_all(dir);
}

/// `--stats`: a JSON line of W3C-shaped pair and candidate stats every period.
#[test]
fn stats_lines_carry_the_pair_and_candidate_stats() {
    let (dir, sig_a, sig_b) = pipes("stats");
    let a = spawn(&["--offer", "--signal", &sig_a, "--stats", "0.3"], "ping\n");
    let b = spawn(&["--answer", "--signal", &sig_b], "pong\n");
    let out = a.wait_with_output().unwrap();
    check(&out, "pong");
    check(&b.wait_with_output().unwrap(), "ping");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .rfind(|l| l.contains(r#""event":"stats""#))
        .unwrap_or_else(|| panic!("no stats line: {stderr}"));
    let last: serde_json::Value = serde_json::from_str(line).unwrap();
    let pairs = last["pairs"].as_array().unwrap();
    let selected = pairs
        .iter()
        .find(|p| p["selected"] == true)
        .unwrap_or_else(|| panic!("no selected pair: {last}"));
    assert_eq!(selected["state"], "succeeded", "{selected}");
    assert_eq!(selected["nominated"], true, "{selected}");
    assert!(selected["packetsSent"].as_u64().unwrap() >= 1, "{selected}");
    assert!(
        selected["packetsReceived"].as_u64().unwrap() >= 1,
        "{selected}"
    );
    assert!(
        selected["responsesReceived"].as_u64().unwrap() >= 1,
        "{selected}"
    );
    assert!(
        selected["totalRoundTripTime"].as_f64().unwrap() > 0.0,
        "{selected}"
    );
    assert!(selected["consentRequestsSent"].is_u64(), "{selected}");
    let host = &last["localCandidates"][0];
    assert_eq!(host["candidateType"], "host", "{last}");
    assert_eq!(host["address"], "127.0.0.1", "{last}");
    assert!(
        host["url"].is_null() && host["relayProtocol"].is_null(),
        "{last}"
    );
    assert!(!last["remoteCandidates"].as_array().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn usage_and_signalling_errors_are_one_clear_line() {
    let out = Command::new(FLOE)
        .args(["connect", "--offer", "--signal", "carrier-pigeon:x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--signal must be"));
    let port = free_tcp_port().to_string();
    let out = Command::new(FLOE)
        .args([
            "connect",
            "--answer",
            "--signal",
            &format!("tcp:127.0.0.1:{port}"),
            "--timeout",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn port_range_puts_both_ends_of_the_path_in_the_range() {
    let (dir, sig_a, sig_b) = pipes("connect-range");
    // Above the Linux ephemeral range: no other test's socket lands there.
    let range = ["--port-range", "61400-61420"];
    let a = spawn(
        &[&["--offer", "--signal", &sig_a][..], &range].concat(),
        "ping\n",
    );
    let b = spawn(
        &[&["--answer", "--signal", &sig_b][..], &range].concat(),
        "pong\n",
    );
    for (out, expect) in [
        (a.wait_with_output().unwrap(), "pong"),
        (b.wait_with_output().unwrap(), "ping"),
    ] {
        check(&out, expect);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let selected = stderr
            .lines()
            .find(|l| l.contains(r#""event":"selected""#))
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(selected).unwrap();
        for end in ["local", "remote"] {
            let addr: std::net::SocketAddr = v[end].as_str().unwrap().parse().unwrap();
            assert!((61_400..=61_420).contains(&addr.port()), "{end} {addr}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    let bad = Command::new(FLOE)
        .args([
            "connect",
            "--offer",
            "--signal",
            "tcp:127.0.0.1:9",
            "--port-range",
            "500-400",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("LOW must be"));
}
