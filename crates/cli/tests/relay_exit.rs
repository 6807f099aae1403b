//! `floe relay` exits 0 only when it did what it was asked: hold an allocation.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};

const FLOE: &str = env!("CARGO_BIN_EXE_floe");

#[test]
fn duration_running_out_before_any_allocation_exits_1() {
    // Bound and never read: the Allocate goes unanswered.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = Command::new(FLOE)
        .args([
            "relay",
            "--server",
            &silent.local_addr().unwrap().to_string(),
        ])
        .args([
            "--user",
            "alice",
            "--password",
            "secret",
            "--duration",
            "0.5",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no allocation within --duration"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn an_allocation_held_for_the_duration_exits_0() {
    let mut serve = Command::new(FLOE)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--relay-ip",
            "127.0.0.1",
        ])
        .args(["--user", "alice:secret"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let udp = v["listening"]["udp"][0].as_str().unwrap().to_owned();
    let out = Command::new(FLOE)
        .args(["relay", "--server", &udp])
        .args([
            "--user",
            "alice",
            "--password",
            "secret",
            "--duration",
            "0.5",
        ])
        .output()
        .unwrap();
    let _ = serve.kill();
    let _ = serve.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(
        v["relayed"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{v}"
    );
}
