//! TURN-TCP (RFC 6062) between real processes: `floe relay --tcp-connect` and
//! `--tcp-accept` through `floe serve` (always) and through coturn (`--ignored`; .ci/run
//! installs it), with TCP echo peers written here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{first_json_line, scrape, self_signed, Proc};

const FLOE: &str = env!("CARGO_BIN_EXE_floe");

/// `floe serve` with TCP listeners; its TCP address.
fn floe_serve() -> (Proc, SocketAddr) {
    let (p, tcp, _) = floe_serve_with_metrics();
    (p, tcp)
}

/// `floe serve` with TCP listeners and metrics: its TCP and metrics addresses.
fn floe_serve_with_metrics() -> (Proc, SocketAddr, SocketAddr) {
    let mut child = Command::new(FLOE)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tcp",
            "--relay-ip",
            "127.0.0.1",
        ])
        .args(["--user", "alice:wonderland", "--allow-loopback-peers"])
        .args(["--metrics", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let v = first_json_line(&mut child);
    let tcp = v["listening"]["tcp"][0].as_str().unwrap().parse().unwrap();
    let metrics = v["listening"]["metrics"].as_str().unwrap().parse().unwrap();
    (Proc(child), tcp, metrics)
}

/// coturn on a free loopback port (TCP relays on: coturn implements RFC 6062).
fn coturn() -> (Proc, SocketAddr) {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("turnserver")
        .args([
            "-n",
            "--no-cli",
            "--listening-ip",
            "127.0.0.1",
            "--relay-ip",
            "127.0.0.1",
        ])
        .args([
            "--allow-loopback-peers",
            "--listening-port",
            &port.to_string(),
        ])
        .args(["--min-port", "54000", "--max-port", "54999", "-a"])
        .args([
            "-u",
            "alice:wonderland",
            "-r",
            "floe",
            "--no-dtls",
            "--no-tls",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("coturn is needed (apt-get install coturn; .ci/run does)");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..100 {
        if TcpStream::connect(addr).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (Proc(child), addr)
}

/// A TCP peer that echoes every connection.
fn echo_peer() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn relay(server: SocketAddr, mode: &[&str]) -> (Proc, SocketAddr) {
    relay_over(server, &["--transport", "tcp"], mode)
}

fn relay_over(server: SocketAddr, transport: &[&str], mode: &[&str]) -> (Proc, SocketAddr) {
    let mut child = Command::new(FLOE)
        .args(["relay", "--server", &server.to_string()])
        .args(transport)
        .args([
            "--user",
            "alice",
            "--password",
            "wonderland",
            "--duration",
            "20",
        ])
        .args(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(v["tcp"], true);
    let relayed = v["relayed"].as_str().unwrap().parse().unwrap();
    child.stdout = Some(out.into_inner());
    (Proc(child), relayed)
}

/// `floe relay --tcp-connect` to a TCP echo peer: lines in, the same lines out.
fn connect_to_echo_peer(server: SocketAddr) {
    connect_to_echo_peer_over(server, &["--transport", "tcp"]);
}

fn connect_to_echo_peer_over(server: SocketAddr, transport: &[&str]) {
    let peer = echo_peer();
    let (mut p, _) = relay_over(server, transport, &["--tcp-connect", &peer.to_string()]);
    let mut stdin = p.0.stdin.take().unwrap();
    let mut stdout = BufReader::new(p.0.stdout.take().unwrap());
    for i in 0..20 {
        let line = format!("line {i} through a TURN TCP relay\n");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
        let mut got = String::new();
        stdout.read_line(&mut got).unwrap();
        assert_eq!(got, line);
    }
    // A large write goes through in order too.
    let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    stdin.write_all(&big).unwrap();
    stdin.write_all(b"\n").unwrap();
    stdin.flush().unwrap();
    let mut got = Vec::new();
    stdout.read_until(b'\n', &mut got).unwrap();
    assert_eq!(got.len(), big.len() + 1);
    assert_eq!(&got[..big.len()], &big[..]);
}

/// `floe relay --tcp-accept --echo`: a peer connects to the relayed address and gets
/// its bytes back.
fn peer_connects_in(server: SocketAddr) {
    let (_p, relayed) = relay(server, &["--tcp-accept", "--peer", "127.0.0.1:1", "--echo"]);
    let mut c = TcpStream::connect(relayed).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for i in 0..10u8 {
        c.write_all(&[i; 300]).unwrap();
        let mut got = [0u8; 300];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, [i; 300]);
    }
}

#[test]
fn floe_relay_connects_through_floe_serve_to_a_tcp_peer() {
    let (_s, server, metrics) = floe_serve_with_metrics();
    connect_to_echo_peer(server);
    // The bytes bypass the core but not the metrics: 20 lines and 200,001 bytes each way.
    let sent = (0..20u32)
        .map(|i| format!("line {i} through a TURN TCP relay\n").len() as u32)
        .sum::<u32>()
        + 200_001;
    for direction in ["to_peers", "to_clients"] {
        let name = format!("floe_tcp_relayed_bytes_total{{direction=\"{direction}\"}}");
        assert_eq!(scrape(metrics, &name), Some(f64::from(sent)), "{name}");
    }
}

#[test]
fn floe_relay_connects_over_tls_through_floe_serve_to_a_tcp_peer() {
    // The control and data connections are TLS; the peer's side is plain TCP.
    let (dir, c, k) = self_signed("floe-turn-tcp-tls");
    let mut child = Command::new(FLOE)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--relay-ip",
            "127.0.0.1",
        ])
        .args(["--tls-listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&c)
        .arg("--tls-key")
        .arg(&k)
        .args(["--user", "alice:wonderland", "--allow-loopback-peers"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let v = first_json_line(&mut child);
    let _serve = Proc(child);
    let tls: SocketAddr = v["listening"]["tls"][0].as_str().unwrap().parse().unwrap();
    let ca = c.display().to_string();
    connect_to_echo_peer_over(
        tls,
        &[
            "--transport",
            "tls",
            "--tls-ca",
            &ca,
            "--server-name",
            "localhost",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tcp_peer_connects_in_through_floe_serve() {
    let (_s, server) = floe_serve();
    peer_connects_in(server);
}

#[test]
#[ignore = "needs coturn (run by .ci/run)"]
fn floe_relay_connects_through_coturn_to_a_tcp_peer() {
    let (_s, server) = coturn();
    connect_to_echo_peer(server);
}

#[test]
#[ignore = "needs coturn (run by .ci/run)"]
fn a_tcp_peer_connects_in_through_coturn_to_floe_relay() {
    let (_s, server) = coturn();
    peer_connects_in(server);
}
