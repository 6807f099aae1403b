//! `floe serve` against hostile input and its own panics: one packet must never leave
//! a process that is up but deaf.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use floe_stun::attributes::{Nonce, Realm, RequestedTransport, Username};
use floe_stun::credentials::Algorithm;
use floe_stun::{IntegrityKey, Message, MessageBuilder, MessageType, TransactionId};

const FLOE: &str = env!("CARGO_BIN_EXE_floe");

fn serve(env: &[(&str, &str)]) -> (Child, SocketAddr) {
    let mut child = Command::new(FLOE)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--relay-ip",
            "127.0.0.1",
            "--tcp",
        ])
        .args(["--user", "alice:secret"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("floe serve");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let udp = v["listening"]["udp"][0].as_str().unwrap().parse().unwrap();
    (child, udp)
}

/// One Binding over UDP; whether it was answered within 2 s.
fn answers_binding(server: SocketAddr) -> bool {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    let req = MessageBuilder::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([3; 12]),
    )
    .unwrap()
    .finish()
    .to_vec();
    let mut resp = [0u8; 1500];
    for _ in 0..10 {
        s.send_to(&req, server).unwrap();
        if let Ok((n, _)) = s.recv_from(&mut resp) {
            return Message::parse(&resp[..n]).is_ok();
        }
    }
    false
}

/// The datagram that silenced floe serve: an Allocate whose NONCE is as long as a real
/// one with a two-byte UTF-8 character across byte 8 after the cookie.
#[test]
fn a_nonce_with_a_multibyte_character_does_not_silence_the_server() {
    let (mut child, udp) = serve(&[]);
    let nonce = format!("obMatJos2////{}é{}", "0".repeat(8), "0".repeat(14));
    assert_eq!(nonce.len(), 37);
    let key = IntegrityKey::long_term("alice", "floe", "secret", Algorithm::Md5).unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(floe_stun::Method::ALLOCATE, floe_stun::Class::Request),
        TransactionId([9; 12]),
    )
    .unwrap();
    b.add(&RequestedTransport::UDP).unwrap();
    b.add(&Username("alice")).unwrap();
    b.add(&Realm("floe")).unwrap();
    b.add(&Nonce(&nonce)).unwrap();
    b.add_message_integrity(&key).unwrap();
    let hostile = b.finish().to_vec();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(&hostile, udp).unwrap();
    let mut resp = [0u8; 1500];
    let (n, _) = s
        .recv_from(&mut resp)
        .expect("an answer to the hostile Allocate");
    let msg = Message::parse(&resp[..n]).unwrap();
    let code = msg
        .get::<floe_stun::attributes::ErrorCode>()
        .unwrap()
        .unwrap()
        .code;
    assert_eq!(code, 438, "a nonce that is not ours is stale");
    assert!(answers_binding(udp), "the server went deaf");
    let _ = child.kill();
    let _ = child.wait();
}

/// A panicking task ends the process with status 70, the panic message on stderr and
/// the counters on stdout, instead of leaving it up and deaf.
#[test]
fn a_panic_in_any_task_ends_the_process_with_the_counters() {
    let (mut child, udp) = serve(&[("FLOE_TEST_PANIC_AFTER_MS", "500")]);
    assert!(answers_binding(udp));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still running after a panic"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(70), "stderr: {err}");
    assert!(err.contains("panicked on purpose"), "{err}");
    let last = out.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(v["stats"]["bindings"].as_u64().unwrap() >= 1, "{out}");
}
