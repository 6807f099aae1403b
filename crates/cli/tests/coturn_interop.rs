//! Interop through the `floe` binary: coturn's own clients against `floe serve`, and
//! `floe relay` against coturn's `turnserver`.
//!
//! `#[ignore]`d for the README's test command (they need Debian's `coturn`); `.ci/run`
//! installs coturn and runs them with `--ignored`. Without the coturn binaries they fail.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const FLOE: &str = env!("CARGO_BIN_EXE_floe");

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `floe serve` on loopback (UDP and TCP, ports chosen by the OS) and returns it
/// with its UDP and TCP addresses, read from its first stdout line.
fn floe_serve() -> (Proc, SocketAddr, SocketAddr) {
    let mut child = Command::new(FLOE)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tcp",
            "--user",
            "alice:wonderland",
            "--allow-loopback-peers",
        ])
        .args(["--min-port", "52000", "--max-port", "52999"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("floe serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let udp = v["listening"]["udp"][0].as_str().unwrap().parse().unwrap();
    let tcp = v["listening"]["tcp"][0].as_str().unwrap().parse().unwrap();
    (Proc(child), udp, tcp)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (install Debian's coturn; .ci/run does)")
    });
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
#[ignore = "needs coturn (run by .ci/run)"]
fn turnutils_stunclient_gets_its_mapped_address_from_floe_serve() {
    let (_serve, udp, _) = floe_serve();
    let out = run(Command::new("turnutils_stunclient").args([
        "-p",
        &udp.port().to_string(),
        "127.0.0.1",
    ]));
    let t = text(&out);
    assert!(t.contains("UDP reflexive addr: 127.0.0.1:"), "{t}");
}

fn uclient(extra: &[&str], port: u16) {
    let out = run(Command::new("turnutils_uclient")
        .args([
            "-y",
            "-u",
            "alice",
            "-w",
            "wonderland",
            "-n",
            "30",
            "-m",
            "2",
            "-l",
            "120",
            "-e",
            "127.0.0.1",
        ])
        .args(["-p", &port.to_string()])
        .args(extra)
        .arg("127.0.0.1"));
    let t = text(&out);
    assert!(
        t.contains("Total lost packets 0 (0.000000%)"),
        "uclient output:\n{t}"
    );
    assert!(t.contains("tot_recv_msgs=120"), "uclient output:\n{t}");
}

#[test]
#[ignore = "needs coturn (run by .ci/run)"]
fn turnutils_uclient_client_to_client_over_udp_loses_nothing() {
    let (_serve, udp, _) = floe_serve();
    uclient(&[], udp.port());
}

#[test]
#[ignore = "needs coturn (run by .ci/run)"]
fn turnutils_uclient_client_to_client_over_tcp_loses_nothing() {
    let (_serve, _, tcp) = floe_serve();
    uclient(&["-t"], tcp.port());
}

#[test]
#[ignore = "needs coturn (run by .ci/run)"]
fn turnutils_uclient_tcp_relays_rfc_6062_through_floe_serve_lose_nothing() {
    // -T: TCP allocations (RFC 6062); each client Connects to its partner's relayed
    // address, the partner gets a ConnectionAttempt, and both ConnectionBind data
    // connections that carry the messages. With two workers (floe serve's default
    // here), data connections land on either worker.
    let (_serve, _, tcp) = floe_serve();
    let out = run(Command::new("turnutils_uclient")
        .args([
            "-T",
            "-u",
            "alice",
            "-w",
            "wonderland",
            "-n",
            "30",
            "-m",
            "2",
        ])
        .args(["-l", "120", "-p", &tcp.port().to_string(), "127.0.0.1"]));
    let t = text(&out);
    assert!(
        t.contains("Total lost packets 0 (0.000000%)"),
        "uclient output:\n{t}"
    );
    assert!(t.contains("tot_recv_msgs=60"), "uclient output:\n{t}");
    assert!(!t.contains("connection bind error"), "uclient output:\n{t}");
}

/// Starts coturn on free loopback ports.
fn turnserver(tls: Option<(&std::path::Path, &std::path::Path)>) -> (Proc, u16, u16) {
    let free = || {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.local_addr().unwrap().port()
    };
    let (port, tls_port) = (free(), free());
    let mut cmd = Command::new("turnserver");
    cmd.args([
        "-n",
        "--no-cli",
        "--listening-ip",
        "127.0.0.1",
        "--relay-ip",
        "127.0.0.1",
        "--allow-loopback-peers",
    ])
    .args([
        "--listening-port",
        &port.to_string(),
        "--tls-listening-port",
        &tls_port.to_string(),
    ])
    .args([
        "--min-port",
        "53000",
        "--max-port",
        "53999",
        "-a",
        "-u",
        "alice:wonderland",
        "-r",
        "floe",
        "--no-dtls",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    match tls {
        Some((c, k)) => {
            cmd.arg("--cert").arg(c).arg("--pkey").arg(k);
        }
        None => {
            cmd.arg("--no-tls");
        }
    }
    let child = cmd
        .spawn()
        .expect("cannot start turnserver: install Debian's coturn (.ci/run does)");
    let deadline = Instant::now() + Duration::from_secs(10);
    let wait_for = if tls.is_some() { tls_port } else { port };
    while TcpStream::connect(("127.0.0.1", wait_for)).is_err() {
        assert!(Instant::now() < deadline, "turnserver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Proc(child), port, tls_port)
}

/// `floe relay --echo`; a UDP peer sends first through the relay and gets the echo back
/// (the peer-first direction over TCP caught a bug: requests queued by an event were
/// not sent until something else woke the loop).
fn relay_echo(server: SocketAddr, transport: &str, extra: &[&str]) {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let peer_addr = peer.local_addr().unwrap().to_string();
    let mut child = Command::new(FLOE)
        .args([
            "relay",
            "--server",
            &server.to_string(),
            "--user",
            "alice",
            "--password",
            "wonderland",
        ])
        .args([
            "--transport",
            transport,
            "--peer",
            &peer_addr,
            "--echo",
            "--duration",
            "20",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let proc = Proc(child);
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let relayed: SocketAddr = v["relayed"].as_str().unwrap().parse().unwrap();
    assert!(v["lifetime_s"].as_u64().unwrap() > 0);
    assert!(v["mapped"].is_string());
    let mut progress = String::new();
    while !progress.contains("permission for 127.0.0.1") {
        let mut l = String::new();
        assert!(
            stderr.read_line(&mut l).unwrap() > 0,
            "floe relay ended early: {progress}"
        );
        progress.push_str(&l);
    }
    // The permission may land just after the line is printed: retry until echoed.
    let mut buf = [0u8; 1500];
    let mut echoed = 0;
    for i in 0..50u8 {
        peer.send_to(&[i; 100], relayed).unwrap();
        if let Ok((n, from)) = peer.recv_from(&mut buf) {
            assert_eq!(from, relayed);
            assert_eq!(&buf[..n], &[i; 100][..]);
            echoed += 1;
            if echoed == 10 {
                break;
            }
        }
    }
    assert_eq!(echoed, 10, "echoes through coturn over {transport}");
    drop(proc);
}

#[test]
#[ignore = "needs coturn (run by .ci/run)"]
fn floe_relay_echoes_through_coturn_over_udp_tcp_and_tls() {
    let dir = std::env::temp_dir().join(format!("floe-cli-coturn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    let (_coturn, port, tls_port) = turnserver(Some((&c, &k)));
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    relay_echo(server, "udp", &[]);
    relay_echo(server, "udp", &["--channel"]);
    relay_echo(server, "tcp", &[]);
    relay_echo(server, "tcp", &["--channel"]);
    let tls_server = SocketAddr::from(([127, 0, 0, 1], tls_port));
    let ca = c.to_str().unwrap();
    relay_echo(
        tls_server,
        "tls",
        &["--tls-ca", ca, "--server-name", "localhost"],
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn floe_relay_echoes_through_floe_serve_over_udp_and_tcp() {
    let (_serve, udp, tcp) = floe_serve();
    relay_echo(udp, "udp", &[]);
    relay_echo(udp, "udp", &["--channel"]);
    relay_echo(tcp, "tcp", &[]);
    relay_echo(tcp, "tcp", &["--channel"]);
}

#[test]
fn floe_relay_reports_an_unreachable_server_and_bad_credentials() {
    let (_serve, udp, _) = floe_serve();
    let out = Command::new(FLOE)
        .args([
            "relay",
            "--server",
            &udp.to_string(),
            "--user",
            "alice",
            "--password",
            "wrong",
            "--duration",
            "5",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(FLOE)
        .args([
            "relay",
            "--server",
            &udp.to_string(),
            "--user",
            "alice",
            "--password",
            "wonderland",
            "--peer",
            "127.0.0.1:9",
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert!(line["relayed"].as_str().unwrap().starts_with("127.0.0.1:"));
}
