//! `floe serve --config FILE`, `--print-config` and SIGHUP reload of users, REST
//! secrets and the TLS certificate, without dropping a live TLS allocation.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const FLOE: &str = env!("CARGO_BIN_EXE_floe");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("floe-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A self-signed certificate for 127.0.0.1, written as cert.pem and key.pem in `dir`.
fn certificate(dir: &Path, tag: &str) -> (PathBuf, PathBuf) {
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert, key) = (
        dir.join(format!("{tag}-cert.pem")),
        dir.join(format!("{tag}-key.pem")),
    );
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

fn line(out: &mut BufReader<ChildStdout>) -> serde_json::Value {
    let mut l = String::new();
    out.read_line(&mut l).unwrap();
    serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l:?}"))
}

/// `floe relay` with these credentials and transport; its exit status and stderr.
fn relay(server: &str, user: &str, pw: &str, tls_ca: Option<&Path>, secs: &str) -> Child {
    let mut c = Command::new(FLOE);
    c.args([
        "relay",
        "--server",
        server,
        "--user",
        user,
        "--password",
        pw,
        "--duration",
        secs,
    ]);
    if let Some(ca) = tls_ca {
        c.args(["--transport", "tls", "--tls-ca", ca.to_str().unwrap()]);
    }
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(mut child: Child) -> (Option<i32>, String) {
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "floe relay hangs"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, err)
}

#[test]
fn print_config_shows_the_file_with_command_line_overrides_and_redacted_secrets() {
    let dir = scratch("print-config");
    let file = dir.join("serve.toml");
    std::fs::write(
        &file,
        "realm = \"from-file\"\nuser = [\"alice:secret\"]\nmax_bps = 64000\ntcp = true\nlisten = [\"127.0.0.1:3478\"]\n",
    )
    .unwrap();
    let out = Command::new(FLOE)
        .args([
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--realm",
            "from-cli",
            "--print-config",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let table: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(table["realm"].as_str(), Some("from-cli"), "{text}");
    assert_eq!(table["max-bps"].as_integer(), Some(64_000));
    assert_eq!(table["tcp"].as_bool(), Some(true));
    assert_eq!(
        table["user"].as_array().unwrap()[0].as_str(),
        Some("alice:<redacted>")
    );
    assert!(!text.contains("alice:secret"), "{text}");
    // Every flag has a key (defaults included).
    for key in ["drain-seconds", "min-port", "allow-loopback-peers"] {
        assert!(table.contains_key(key), "{key}: {text}");
    }
    // An unknown key is refused, naming it.
    std::fs::write(&file, "no_such_flag = 1\n").unwrap();
    let out = Command::new(FLOE)
        .args([
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--print-config",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-flag"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sighup_reloads_users_and_the_certificate_and_keeps_a_live_tls_allocation() {
    let dir = scratch("reload");
    let (cert_a, key_a) = certificate(&dir, "a");
    let (cert_b, key_b) = certificate(&dir, "b");
    let file = dir.join("serve.toml");
    let write = |user: &str, cert: &Path, key: &Path| {
        std::fs::write(
            &file,
            format!(
                "listen = [\"127.0.0.1:0\"]\ntls-listen = [\"127.0.0.1:0\"]\nrelay-ip = [\"127.0.0.1\"]\n\
                 user = [\"{user}\"]\ntls-cert = \"{}\"\ntls-key = \"{}\"\n",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
    };
    write("alice:one", &cert_a, &key_a);
    let mut server = Command::new(FLOE)
        .args(["serve", "--config", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let listening = line(&mut out);
    let udp = listening["listening"]["udp"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let tls = listening["listening"]["tls"][0]
        .as_str()
        .unwrap()
        .to_owned();

    // A TLS allocation with the first certificate, held across the reload.
    let mut live = relay(&tls, "alice", "one", Some(&cert_a), "4");
    let mut live_out = BufReader::new(live.stdout.take().unwrap());
    assert!(line(&mut live_out)["relayed"].is_string());

    write("bob:two", &cert_b, &key_b);
    assert!(Command::new("kill")
        .args(["-HUP", &server.id().to_string()])
        .status()
        .unwrap()
        .success());
    let reloaded = line(&mut out);
    assert_eq!(reloaded["reloaded"]["users"], 1, "{reloaded}");
    assert_eq!(reloaded["reloaded"]["tls"], true, "{reloaded}");

    // The old user is refused, the new one works; new TLS handshakes get the new
    // certificate (the old CA no longer verifies it).
    let (code, err) = finish(relay(&udp, "alice", "one", None, "0.2"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("401"), "{err}");
    let (code, err) = finish(relay(&udp, "bob", "two", None, "0.2"));
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = finish(relay(&tls, "bob", "two", Some(&cert_b), "0.2"));
    assert_eq!(code, Some(0), "{err}");
    let (code, _) = finish(relay(&tls, "bob", "two", Some(&cert_a), "0.2"));
    assert_eq!(code, Some(1), "the old certificate is no longer served");

    // The TLS allocation made before the reload stayed up: its connection was not
    // dropped, and it lived to its --duration (alice is gone, so the server refuses its
    // closing Refresh, which the relay reports).
    let start = Instant::now();
    let status = loop {
        if let Some(s) = live.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(15));
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    live.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        !err.contains("closed the connection"),
        "the TLS connection was dropped: {err}"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "it lived to its duration: {status:?} {err}"
    );
    let _ = server.kill();
    let _ = server.wait();
    std::fs::remove_dir_all(&dir).unwrap();
}
