//! `floe serve --threads N`: independent SO_REUSEPORT workers that share the allocation
//! quotas, so a user's quota holds for the whole server wherever the kernel puts each
//! client.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const FLOE: &str = env!("CARGO_BIN_EXE_floe");

#[test]
fn a_users_quota_holds_across_workers() {
    let mut server = Command::new(FLOE)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--relay-ip",
            "127.0.0.1",
        ])
        .args([
            "--user",
            "alice:secret",
            "--user-quota",
            "3",
            "--threads",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let udp = v["listening"]["udp"][0].as_str().unwrap().to_owned();
    // Eight clients at once, each from its own port (so spread over both workers), each
    // holding its allocation for 2 s: exactly three get one.
    let relays: Vec<_> = (0..8)
        .map(|_| {
            Command::new(FLOE)
                .args([
                    "relay",
                    "--server",
                    &udp,
                    "--user",
                    "alice",
                    "--password",
                    "secret",
                ])
                .args(["--duration", "2"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut allocated = 0;
    let mut refused = 0;
    for r in relays {
        let out = r.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => allocated += 1,
            Some(1) if err.contains("486") => refused += 1,
            other => panic!("floe relay: {other:?} {err}"),
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!((allocated, refused), (3, 5));
}
