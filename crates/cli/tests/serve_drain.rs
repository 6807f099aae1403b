//! `floe serve` on SIGTERM: drains (new Allocates refused, existing ones served) and
//! exits 0 with its counters once none remain.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FLOE: &str = env!("CARGO_BIN_EXE_floe");

fn serve(extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(FLOE)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--relay-ip",
            "127.0.0.1",
        ])
        .args(["--user", "alice:secret"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    (child, v["listening"]["udp"][0].as_str().unwrap().to_owned())
}

fn relay(server: &str, seconds: &str) -> Child {
    Command::new(FLOE)
        .args([
            "relay",
            "--server",
            server,
            "--user",
            "alice",
            "--password",
            "secret",
        ])
        .args(["--duration", seconds])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for the first stdout line of a `floe relay` (its allocation).
fn allocated(child: &mut Child) -> serde_json::Value {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn sigterm_drains_refuses_new_allocations_and_exits_0_when_none_remain() {
    let (mut server, udp) = serve(&["--drain-seconds", "30"]);
    let mut old = relay(&udp, "2");
    assert!(allocated(&mut old)["relayed"].is_string());
    sigterm(&server);
    std::thread::sleep(Duration::from_millis(200));
    // A new allocation is refused with 508 while the old one is held.
    let mut new = relay(&udp, "5");
    let code = wait(&mut new, Duration::from_secs(10));
    let mut err = String::new();
    new.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("508"), "{err}");
    assert!(
        server.try_wait().unwrap().is_none(),
        "still serving the old allocation"
    );
    // The old relay deallocates at the end of its 2 s; the server then exits 0.
    assert_eq!(wait(&mut old, Duration::from_secs(10)), Some(0));
    assert_eq!(wait(&mut server, Duration::from_secs(10)), Some(0));
    let mut out = String::new();
    server
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["stats"]["drain_refusals"], 1, "{out}");
    assert_eq!(v["stats"]["allocations"], 0, "{out}");
}

#[test]
fn a_draining_server_with_an_alternate_sends_300() {
    let (mut server, udp) = serve(&["--alternate-server", "127.0.0.1:3478"]);
    let mut old = relay(&udp, "3");
    allocated(&mut old);
    sigterm(&server);
    std::thread::sleep(Duration::from_millis(200));
    let mut new = relay(&udp, "5");
    assert_eq!(wait(&mut new, Duration::from_secs(10)), Some(1));
    let mut err = String::new();
    new.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(
        err.contains("300") && err.contains("127.0.0.1:3478"),
        "{err}"
    );
    let _ = server.kill();
    let _ = old.kill();
    let _ = server.wait();
    let _ = old.wait();
}
