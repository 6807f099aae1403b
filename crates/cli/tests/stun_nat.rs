//! `floe stun` and `floe nat` against `floe serve` (and a scripted RFC 5780 server) on
//! loopback, through the real binary.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_stun::attributes::{ChangeRequest, OtherAddress, XorMappedAddress};
use floe_stun::{Message, MessageBuilder, MessageType};

const FLOE: &str = env!("CARGO_BIN_EXE_floe");

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `floe serve` on 127.0.0.1 (port chosen by the OS) with `extra` arguments and
/// returns it with its UDP address, read from its first stdout line.
fn floe_serve(extra: &[&str]) -> (Proc, SocketAddr) {
    let mut child = Command::new(FLOE)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--relay-ip",
            "127.0.0.1",
        ])
        .args(extra)
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
    (Proc(child), udp)
}

fn floe(args: &[&str]) -> Output {
    Command::new(FLOE).args(args).output().unwrap()
}

fn stdout_json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let line = lines.next().unwrap_or_default();
    assert_eq!(lines.next(), None, "one line expected: {text}");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn stun_json_reports_the_local_address_as_mapped_on_loopback() {
    let (_serve, udp) = floe_serve(&[]);
    let out = floe(&["stun", &udp.to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = stdout_json(&out);
    let mapped: SocketAddr = v["mapped"].as_str().unwrap().parse().unwrap();
    let local: SocketAddr = v["local"].as_str().unwrap().parse().unwrap();
    assert_eq!(mapped, local);
    assert_eq!(mapped.ip(), udp.ip());
    assert!(v["rtt_ms"].as_f64().is_some_and(|r| r >= 0.0), "{v}");
    assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
}

#[test]
fn stun_accepts_an_rfc7064_uri_and_prints_text_by_default() {
    let (_serve, udp) = floe_serve(&[]);
    let out = floe(&["stun", &format!("stun:{udp}"), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout_json(&out)["mapped"].is_string());

    let out = floe(&["stun", &udp.to_string(), "--local", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "mapped  127.0.0.1:",
        "local   127.0.0.1:",
        "rtt     ",
        "no NAT",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
}

#[test]
fn stun_to_a_port_with_nothing_listening_fails_within_the_timeout() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = Instant::now();
    let out = floe(&["stun", &format!("127.0.0.1:{port}"), "--timeout", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(start.elapsed() < Duration::from_secs(5));
    let err = stderr(&out);
    assert!(err.starts_with("floe stun: 127.0.0.1:"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn stun_to_a_silent_server_times_out_after_retransmitting() {
    // Bound but never read: no ICMP, so only the timeout ends it.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    let out = floe(&[
        "stun",
        &silent.local_addr().unwrap().to_string(),
        "--timeout",
        "1",
    ]);
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("no response after 1.0 s (3 transmissions)"),
        "{err}"
    );
}

#[test]
fn stun_usage_errors_exit_2() {
    for args in [
        &["stun"][..],
        &["stun", "stuns:example.org"],
        &["stun", "127.0.0.1:0"],
        &["stun", "127.0.0.1:3478", "--timeout", "-1"],
    ] {
        assert_eq!(floe(args).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn nat_on_loopback_finds_no_nat_and_endpoint_independent_behaviour() {
    let (_serve, udp) = floe_serve(&["--alt-address", "127.0.0.2:0"]);
    let out = floe(&["nat", &udp.to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = stdout_json(&out);
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
    assert_eq!(v["mapping"], "endpoint-independent");
    assert_eq!(v["filtering"], "endpoint-independent");
    // No NAT on loopback: nothing to hairpin through.
    assert!(v["hairpinning"].is_null(), "{v}");
    assert_eq!(v["mapped"], v["local"]);
    let other: SocketAddr = v["other_address"].as_str().unwrap().parse().unwrap();
    assert_eq!(other.ip().to_string(), "127.0.0.2");
    assert_ne!(other.port(), udp.port());

    let out = floe(&["nat", &format!("stun:{udp}")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "mapping      endpoint-independent",
        "filtering    endpoint-independent",
        "hairpinning  not applicable",
        &format!("other address {other}"),
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
}

#[test]
fn nat_without_other_address_says_so_and_exits_1() {
    let (_serve, udp) = floe_serve(&[]);
    let out = floe(&["nat", &udp.to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no OTHER-ADDRESS"), "{err}");
    assert!(out.stdout.is_empty());
}

/// A scripted RFC 5780 server on 127.0.0.1:P and 127.0.0.2:P that sends OTHER-ADDRESS
/// (127.0.0.2:Q) but drops every CHANGE-REQUEST: what a client behind an address and
/// port-dependent filter sees.
struct DroppingServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl DroppingServer {
    fn start() -> DroppingServer {
        let primary = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = primary.local_addr().unwrap();
        let alt_ip = UdpSocket::bind(SocketAddr::new([127, 0, 0, 2].into(), addr.port())).unwrap();
        let other: SocketAddr = "127.0.0.2:9".parse().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let threads = [primary, alt_ip]
            .into_iter()
            .map(|s| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                    let mut buf = [0u8; 1500];
                    while !stop.load(Ordering::Relaxed) {
                        let Ok((n, from)) = s.recv_from(&mut buf) else {
                            continue;
                        };
                        let Ok(req) = Message::parse(&buf[..n]) else {
                            continue;
                        };
                        if req.get::<ChangeRequest>().unwrap().is_some() {
                            continue;
                        }
                        let mut out = [0u8; 256];
                        let mut b = MessageBuilder::new(
                            &mut out,
                            MessageType::BINDING_SUCCESS,
                            req.transaction_id(),
                        )
                        .unwrap();
                        b.add(&XorMappedAddress(from)).unwrap();
                        b.add(&OtherAddress(other)).unwrap();
                        b.add_fingerprint().unwrap();
                        let _ = s.send_to(b.finish(), from);
                    }
                })
            })
            .collect();
        DroppingServer {
            addr,
            stop,
            threads,
        }
    }
}

impl Drop for DroppingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn nat_reads_lost_change_request_answers_as_port_dependent_filtering() {
    let server = DroppingServer::start();
    let start = Instant::now();
    let out = floe(&["nat", &server.addr.to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_eq!(v["mapping"], "endpoint-independent");
    assert_eq!(v["filtering"], "address-and-port-dependent");
    assert_eq!(v["other_address"], "127.0.0.2:9");
    // Two CHANGE-REQUEST tests of about 1 s each, not two 5 s timeouts.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    let err = stderr(&out);
    assert!(err.contains("filtering test III"), "{err}");
}
