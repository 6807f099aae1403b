//! `floe serve --redis`: a fleet of two `floe serve` processes sharing users and
//! allocation quotas through a real `redis-server` (docs/fleet.md).
//!
//! Ignored by default: they need `redis-server` and `redis-cli` on the PATH, which
//! `.ci/run` installs before running them with `--ignored`. Without them they fail
//! loudly, never skip.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use floe_turn::server::StoredKey;

mod common;

const FLOE: &str = env!("CARGO_BIN_EXE_floe");
const REALM: &str = "fleet.test";

/// A `redis-server` on a loopback port of its own, stopped on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
    /// Extra `redis-server` arguments (TLS, ACL users).
    server_args: Vec<String>,
    /// Extra `redis-cli` arguments to reach it.
    cli_args: Vec<String>,
    url: String,
}

impl Redis {
    fn start() -> Redis {
        let port = free_port();
        let url = format!("redis://127.0.0.1:{port}/0");
        Redis::start_with(port, url, Vec::new(), Vec::new())
    }

    fn start_with(
        port: u16,
        url: String,
        server_args: Vec<String>,
        cli_args: Vec<String>,
    ) -> Redis {
        let mut r = Redis {
            child: None,
            port,
            server_args,
            cli_args,
            url,
        };
        r.restart();
        r
    }

    /// Starts (again) on the same port, empty.
    fn restart(&mut self) {
        let port_flag = if self.cli_args.iter().any(|a| a == "--tls") {
            [
                "--port".to_owned(),
                "0".to_owned(),
                "--tls-port".to_owned(),
                self.port.to_string(),
            ]
        } else {
            [
                "--port".to_owned(),
                self.port.to_string(),
                "--bind".to_owned(),
                "127.0.0.1".to_owned(),
            ]
        };
        let child = Command::new("redis-server")
            .args(port_flag)
            .args(&self.server_args)
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is needed (apt-get install redis-server; .ci/run does)");
        self.child = Some(child);
        let start = Instant::now();
        while self.try_cli(&["PING"]).as_deref() != Some("PONG") {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        self.url.clone()
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(&self.cli_args)
            .args(args)
            .output()
            .expect("redis-cli is needed (apt-get install redis-server; .ci/run does)");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
    }

    /// Stores `user`'s long-term keys with the commands `floe user-key` prints.
    fn add_user(&self, user: &str, password: &str) {
        let out = Command::new(FLOE)
            .args(["user-key", "--user", user, "--realm", REALM])
            .args(["--password", password])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        for line in text.lines() {
            let args: Vec<&str> = line.split(' ').collect();
            self.cli(&args);
        }
        // The keys are what floe-turn computes for this user.
        let key = StoredKey::from_password(user, REALM, password).unwrap();
        let md5 = key.md5.unwrap().iter().fold(String::new(), |mut h, x| {
            let _ = write!(h, "{x:02x}");
            h
        });
        assert!(text.contains(&md5), "{text}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `floe serve` process in the fleet; killed on drop.
struct Serve {
    child: Child,
    udp: SocketAddr,
    metrics: Option<SocketAddr>,
}

impl Serve {
    fn start(redis: &Redis, extra: &[&str]) -> Serve {
        let mut child = Command::new(FLOE)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--relay-ip",
                "127.0.0.1",
            ])
            .args(["--realm", REALM, "--allow-loopback-peers"])
            .args(["--redis", &redis.url()])
            .args(["--redis-poll", "0.2", "--redis-lease", "2"])
            .args(extra)
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
        let udp = v["listening"]["udp"][0].as_str().unwrap().parse().unwrap();
        let metrics = v["listening"]["metrics"]
            .as_str()
            .map(|m| m.parse().unwrap());
        Serve {
            child,
            udp,
            metrics,
        }
    }

    /// The value of the sample `name` in a real HTTP scrape.
    fn metric(&self, name: &str) -> Option<f64> {
        common::scrape(self.metrics?, name)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `floe relay` holding an allocation; killed on drop.
struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Allocates on `server` as `user`: the relay (holding the allocation) and its
/// relayed address, or the error `floe relay` printed.
fn relay(
    server: &Serve,
    user: &str,
    password: &str,
    extra: &[&str],
) -> Result<(Relay, SocketAddr), String> {
    let mut child = Command::new(FLOE)
        .args(["relay", "--server", &server.udp.to_string()])
        .args(["--user", user, "--password", password, "--duration", "60"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.is_empty() {
        let _ = child.wait();
        let mut err = String::new();
        child
            .stderr
            .as_mut()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        return Err(err);
    }
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let relayed = v["relayed"].as_str().unwrap().parse().unwrap();
    Ok((Relay(child), relayed))
}

fn refused_with(r: Result<(Relay, SocketAddr), String>, code: &str) {
    match r {
        Ok((_, relayed)) => panic!("expected {code}, got an allocation at {relayed}"),
        Err(e) => assert!(e.contains(code), "expected {code}: {e}"),
    }
}

/// Retries `f` until it returns true or `limit` passes.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
#[ignore = "needs redis-server (.ci/run installs it)"]
fn a_users_quota_holds_across_two_instances() {
    let redis = Redis::start();
    redis.add_user("carol", "tunnels");
    let a = Serve::start(&redis, &["--user-quota", "2"]);
    let b = Serve::start(&redis, &["--user-quota", "2"]);
    let (_one, _) = relay(&a, "carol", "tunnels", &[]).expect("first allocation, on A");
    let (_two, _) = relay(&b, "carol", "tunnels", &[]).expect("second allocation, on B");
    refused_with(relay(&a, "carol", "tunnels", &[]), "486");
    refused_with(relay(&b, "carol", "tunnels", &[]), "486");
    // The realm's quota key overrides the flag, fleet-wide.
    redis.cli(&["SET", &format!("turn/realm/{REALM}/user-quota"), "3"]);
    let mut third = None;
    assert!(
        eventually(Duration::from_secs(5), || {
            third = relay(&a, "carol", "tunnels", &[]).ok();
            third.is_some()
        }),
        "a third allocation once the quota is 3"
    );
}

#[test]
#[ignore = "needs redis-server (.ci/run installs it)"]
fn a_killed_instances_places_come_back_within_its_lease() {
    let redis = Redis::start();
    redis.add_user("carol", "tunnels");
    let mut a = Serve::start(&redis, &["--user-quota", "1"]);
    let b = Serve::start(&redis, &["--user-quota", "1"]);
    let (held, _) = relay(&a, "carol", "tunnels", &[]).expect("allocation on A");
    refused_with(relay(&b, "carol", "tunnels", &[]), "486");
    // SIGKILL: A cannot give its place back; its lease (2 s) ends it.
    a.kill();
    drop(held);
    let killed = Instant::now();
    let mut kept = None;
    assert!(
        eventually(Duration::from_secs(6), || {
            match relay(&b, "carol", "tunnels", &[]) {
                Ok(r) => {
                    kept = Some(r);
                    true
                }
                Err(_) => false,
            }
        }),
        "B never got the place back"
    );
    eprintln!("place back after {:?}", killed.elapsed());
    assert!(killed.elapsed() < Duration::from_secs(5));
}

#[test]
#[ignore = "needs redis-server (.ci/run installs it)"]
fn users_removed_or_revoked_in_redis_are_refused_on_every_instance() {
    let redis = Redis::start();
    redis.add_user("carol", "tunnels");
    redis.add_user("dave", "ladders");
    let a = Serve::start(&redis, &[]);
    let b = Serve::start(&redis, &[]);
    relay(&a, "carol", "tunnels", &[]).expect("carol on A");
    relay(&b, "dave", "ladders", &[]).expect("dave on B");
    // Removed: unknown from the next poll on, so 401 everywhere.
    redis.cli(&["DEL", &format!("turn/realm/{REALM}/user/carol/key")]);
    redis.cli(&["DEL", &format!("turn/realm/{REALM}/user/carol/key-sha256")]);
    // Revoked: right credentials, 403 everywhere.
    redis.cli(&["SADD", &format!("turn/realm/{REALM}/revoked"), "dave"]);
    std::thread::sleep(Duration::from_millis(800));
    for s in [&a, &b] {
        refused_with(relay(s, "carol", "tunnels", &[]), "401");
        refused_with(relay(s, "dave", "ladders", &[]), "403");
    }
    // A user added in Redis works everywhere within a poll, with no restart.
    redis.add_user("erin", "bridges");
    std::thread::sleep(Duration::from_millis(800));
    for s in [&a, &b] {
        relay(s, "erin", "bridges", &[]).expect("erin, added while running");
    }
}

#[test]
#[ignore = "needs redis-server (.ci/run installs it)"]
fn rest_secrets_in_redis_are_rotated_fleet_wide() {
    let redis = Redis::start();
    let a = Serve::start(&redis, &[]);
    let b = Serve::start(&redis, &[]);
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let user = format!("{expiry}:frank");
    let password = floe_turn::rest::password("new-secret", &user);
    refused_with(relay(&a, &user, &password, &[]), "401");
    redis.cli(&["SADD", &format!("turn/realm/{REALM}/secret"), "new-secret"]);
    std::thread::sleep(Duration::from_millis(800));
    for s in [&a, &b] {
        relay(s, &user, &password, &[]).expect("REST credentials of the new secret");
    }
}

/// Sends `msg` from `peer` to `relayed` and waits for the echo.
fn echoes(peer: &UdpSocket, relayed: SocketAddr, msg: &[u8]) -> bool {
    let mut buf = [0u8; 1500];
    for _ in 0..10 {
        peer.send_to(msg, relayed).unwrap();
        if let Ok((n, from)) = peer.recv_from(&mut buf) {
            if from == relayed && &buf[..n] == msg {
                return true;
            }
        }
    }
    false
}

#[test]
#[ignore = "needs redis-server (.ci/run installs it)"]
fn without_redis_relays_flow_and_allocates_follow_the_policy_then_service_resumes() {
    let mut redis = Redis::start();
    redis.add_user("carol", "tunnels");
    let closed = Serve::start(&redis, &["--user-quota", "5", "--metrics", "127.0.0.1:0"]);
    assert_eq!(closed.metric("floe_redis_up"), Some(1.0));
    assert_eq!(closed.metric("floe_redis_users"), Some(1.0));
    let open = Serve::start(&redis, &["--user-quota", "5", "--redis-fail-open"]);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let peer_addr = peer.local_addr().unwrap().to_string();
    let echo = ["--peer", &peer_addr, "--echo"];
    let (_r, relayed) = relay(&closed, "carol", "tunnels", &echo).expect("allocation");
    assert!(echoes(&peer, relayed, b"before"), "relay before the outage");

    redis.stop();
    assert!(echoes(&peer, relayed, b"during"), "relay during the outage");
    // Default policy: 500. Fail-open: granted by the local limits.
    refused_with(relay(&closed, "carol", "tunnels", &[]), "500");
    assert_eq!(closed.metric("floe_redis_up"), Some(0.0));
    assert!(closed.metric("floe_redis_errors_total").unwrap_or(0.0) >= 1.0);
    assert_eq!(
        closed.metric("floe_redis_unavailable_allocates_total{outcome=\"refused\"}"),
        Some(1.0)
    );
    let (_granted, _) = relay(&open, "carol", "tunnels", &[]).expect("fail-open allocation");
    assert!(echoes(&peer, relayed, b"still"), "relay still flowing");

    redis.restart();
    redis.add_user("carol", "tunnels");
    // Back within the reconnection backoff (at most 5 s), with both instances' places
    // published again: closed holds 1, open holds 1 (granted while Redis was away).
    let mut resumed = None;
    assert!(
        eventually(Duration::from_secs(10), || {
            match relay(&closed, "carol", "tunnels", &[]) {
                Ok(r) => {
                    resumed = Some(r);
                    true
                }
                Err(_) => false,
            }
        }),
        "service did not resume"
    );
    let mut sum = 0;
    assert!(
        eventually(Duration::from_secs(5), || {
            let totals = redis.cli(&["--scan", "--pattern", "turn/realm/*/floe/instance/*/total"]);
            sum = totals
                .lines()
                .map(|k| redis.cli(&["GET", k]).parse::<u64>().unwrap_or(0))
                .sum();
            sum == 3
        }),
        "counts after the outage: {sum}, expected 3 (1 + 1 published again, 1 new)"
    );
    assert!(echoes(&peer, relayed, b"after"), "relay after the outage");
    assert_eq!(closed.metric("floe_redis_up"), Some(1.0));
}

#[test]
#[ignore = "needs redis-server (.ci/run installs it)"]
fn a_tls_redis_with_an_acl_user_and_a_private_ca() {
    let (dir, c, k) = common::self_signed("floe-fleet-tls");
    let (c, k) = (c.display().to_string(), k.display().to_string());
    let port = free_port();
    let server_args = [
        "--tls-cert-file",
        &c,
        "--tls-key-file",
        &k,
        "--tls-auth-clients",
        "no",
        // An ACL user for floe with only what docs/fleet.md asks for; the default
        // user is off.
        "--user",
        "floe",
        "on",
        ">hunter2",
        "~turn/realm/*",
        "+@read",
        "+@write",
        "+@scripting",
        "+@keyspace",
        "+time",
        "--user",
        "admin",
        "on",
        ">admin",
        "~*",
        "+@all",
        "--user",
        "default",
        "off",
    ];
    let cli_args = [
        "--tls",
        "--cacert",
        &c,
        "--sni",
        "localhost",
        "--user",
        "admin",
        "--pass",
        "admin",
        "--no-auth-warning",
    ];
    let redis = Redis::start_with(
        port,
        format!("rediss://floe:hunter2@localhost:{port}/0"),
        server_args.iter().map(ToString::to_string).collect(),
        cli_args.iter().map(ToString::to_string).collect(),
    );
    redis.add_user("carol", "tunnels");
    let a = Serve::start(&redis, &["--user-quota", "1", "--redis-ca", &c]);
    let b = Serve::start(&redis, &["--user-quota", "1", "--redis-ca", &c]);
    let (_held, _) = relay(&a, "carol", "tunnels", &[]).expect("allocation through a TLS Redis");
    refused_with(relay(&b, "carol", "tunnels", &[]), "486");
    // Without the CA, the Redis certificate is not trusted: no users, and Allocates
    // get 401 (unknown user) rather than anything the untrusted server said.
    let untrusting = Serve::start(&redis, &[]);
    refused_with(relay(&untrusting, "carol", "tunnels", &[]), "401");
    let _ = std::fs::remove_dir_all(&dir);
}
