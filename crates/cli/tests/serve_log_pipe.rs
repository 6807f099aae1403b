//! `floe serve` whose log pipe nobody reads (a stalled journald, a stopped pager) keeps
//! serving: its lines go through a writer thread with a bounded buffer, so the TURN core
//! that logs each allocation's life never blocks on stderr.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use floe_stun::attributes::{Lifetime, Nonce, Realm, RequestedTransport, Username};
use floe_stun::credentials::Algorithm;
use floe_stun::{Class, IntegrityKey, Message, MessageBuilder, MessageType, Method, TransactionId};

/// Sends a request and waits for its answer (the class and its attributes' bytes).
fn ask(sock: &UdpSocket, req: &[u8], tid: [u8; 12]) -> Vec<u8> {
    sock.send(req).unwrap();
    let mut buf = [0u8; 1500];
    loop {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no answer within 3 s: the server is stuck ({e})"));
        let answer = buf[..n].to_vec();
        if Message::parse(&answer).is_ok_and(|m| m.transaction_id().0 == tid) {
            return answer;
        }
    }
}

/// The realm and nonce of a 401 to an unsigned Allocate.
fn challenge(sock: &UdpSocket) -> (String, String) {
    let allocate = MessageType::new(Method::ALLOCATE, Class::Request);
    let mut buf = [0u8; 512];
    let tid = [0xee; 12];
    let mut b = MessageBuilder::new(&mut buf, allocate, TransactionId(tid)).unwrap();
    b.add(&RequestedTransport(17)).unwrap();
    let first = b.finish().to_vec();
    let answer = ask(sock, &first, tid);
    let answer = Message::parse(&answer).unwrap();
    assert_eq!(answer.message_type().class, Class::Error);
    let Realm(realm) = answer.get::<Realm>().unwrap().unwrap();
    let Nonce(nonce) = answer.get::<Nonce>().unwrap().unwrap();
    (realm.to_owned(), nonce.to_owned())
}

/// One signed Allocate and Refresh(LIFETIME 0): two lines of log.
fn cycle(sock: &UdpSocket, realm: &str, nonce: &str, n: u32) {
    let key = IntegrityKey::long_term("alice", realm, "wonderland", Algorithm::Md5).unwrap();
    let signed = |ty: MessageType, k: u32, lifetime: Option<u32>| {
        let mut t = [0u8; 12];
        t[..4].copy_from_slice(&n.to_be_bytes());
        t[4..8].copy_from_slice(&k.to_be_bytes());
        let mut buf = [0u8; 512];
        let mut b = MessageBuilder::new(&mut buf, ty, TransactionId(t)).unwrap();
        if ty.method == Method::ALLOCATE {
            b.add(&RequestedTransport(17)).unwrap();
        }
        if let Some(l) = lifetime {
            b.add(&Lifetime(l)).unwrap();
        }
        b.add(&Username("alice"))
            .unwrap()
            .add(&Realm(realm))
            .unwrap()
            .add(&Nonce(nonce))
            .unwrap()
            .add_message_integrity(&key)
            .unwrap();
        (b.finish().to_vec(), t)
    };
    let (req, t) = signed(MessageType::new(Method::ALLOCATE, Class::Request), 1, None);
    let ok = ask(sock, &req, t);
    let ok = Message::parse(&ok).unwrap();
    assert_eq!(
        ok.message_type().class,
        Class::Success,
        "cycle {n}: Allocate"
    );
    let (req, t) = signed(
        MessageType::new(Method::REFRESH, Class::Request),
        2,
        Some(0),
    );
    let gone = ask(sock, &req, t);
    let gone = Message::parse(&gone).unwrap();
    assert_eq!(
        gone.message_type().class,
        Class::Success,
        "cycle {n}: Refresh"
    );
}

#[test]
fn a_log_pipe_nobody_reads_does_not_stop_the_server() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_floe"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--user",
            "alice:wonderland",
            "--drain-seconds",
            "0",
        ])
        .stdout(Stdio::piped())
        // Never read: once the pipe's 64 KiB are full, a write to it blocks.
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let listening = common::first_json_line(&mut child);
    let server: SocketAddr = listening["listening"]["udp"][0]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(server).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    // Each cycle logs two lines of about 200 bytes: 600 cycles are 240 KB, past any
    // pipe buffer.
    let (realm, nonce) = challenge(&sock);
    for n in 0..600 {
        cycle(&sock, &realm, &nonce, n);
    }
    let _ = child.kill();
    let _ = child.wait();
}
