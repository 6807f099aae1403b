//! `floe stun` against a scripted server that answers what RFC 8489 says a client must
//! reject (§6.3), or answers legally but unusually: the command prints an address only
//! from a valid answer, and keeps waiting past broken ones.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use floe_stun::attributes::XorMappedAddress;
use floe_stun::{AttrType, Class, Message, MessageBuilder, MessageType, Method};

const FLOE: &str = env!("CARGO_BIN_EXE_floe");

/// What the scripted server sends for one request: each answer built from the request.
type Script = Vec<Box<dyn Fn(&Message<'_>) -> Vec<u8> + Send>>;

/// A success answer with `mapped` and raw `extra` attributes.
fn success(req: &Message<'_>, mapped: SocketAddr, extra: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut buf = vec![0u8; 8192];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::Success),
        req.transaction_id(),
    )
    .unwrap();
    for (t, v) in extra {
        b.add_raw(AttrType(*t), v).unwrap();
    }
    b.add(&XorMappedAddress(mapped)).unwrap();
    b.finish().to_vec()
}

/// Runs `floe stun --json --timeout T` against a server thread that plays `script` to
/// the first request (and ignores retransmissions).
fn stun_against(script: Script, timeout: &str) -> Output {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let player = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let mut script = Some(script);
        // The socket stays open (and silent) after the script, so retransmissions meet
        // no ICMP port unreachable.
        while !stopped.load(Ordering::Relaxed) {
            let Ok((n, client)) = server.recv_from(&mut buf) else {
                continue;
            };
            let req = Message::parse(&buf[..n]).unwrap();
            for answer in script.take().unwrap_or_default() {
                server.send_to(&answer(&req), client).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    let out = Command::new(FLOE)
        .args(["stun", &addr.to_string(), "--json", "--timeout", timeout])
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    player.join().unwrap();
    out
}

fn mapped_of(out: &Output) -> Option<String> {
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().next()?).ok()?;
    v["mapped"].as_str().map(str::to_owned)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const GOOD: &str = "192.0.2.44:4444";

#[test]
fn a_success_with_an_unknown_required_attribute_is_not_an_answer() {
    let out = stun_against(
        vec![Box::new(|r| {
            success(r, GOOD.parse().unwrap(), &[(0x7faa, vec![0; 4])])
        })],
        "1",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("0x7faa"), "{}", stderr(&out));
    // Followed by a valid answer, that one is printed.
    let out = stun_against(
        vec![
            Box::new(|r| {
                success(
                    r,
                    "192.0.2.66:6666".parse().unwrap(),
                    &[(0x7faa, vec![0; 4])],
                )
            }),
            Box::new(|r| success(r, GOOD.parse().unwrap(), &[])),
        ],
        "3",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mapped_of(&out).as_deref(), Some(GOOD));
}

#[test]
fn an_ipv6_mapped_address_is_no_answer_to_an_ipv4_request() {
    let out = stun_against(
        vec![Box::new(|r| {
            success(r, "[2001:db8::7]:4444".parse().unwrap(), &[])
        })],
        "1",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("not of the family") && err.contains("IPv4"),
        "{err}"
    );
    for unusable in ["0.0.0.0:4444", "192.0.2.44:0"] {
        let out = stun_against(
            vec![Box::new(move |r| {
                success(r, unusable.parse().unwrap(), &[])
            })],
            "1",
        );
        assert_eq!(out.status.code(), Some(1), "{unusable}");
        assert!(
            stderr(&out).contains("is not an address"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn a_legal_4_kb_response_is_read_whole() {
    // 60 unknown comprehension-optional attributes of 64 bytes: about 4 KB.
    let extra: Vec<(u16, Vec<u8>)> = (0..60).map(|i| (0x8100 + i, vec![i as u8; 64])).collect();
    let out = stun_against(
        vec![Box::new(move |r| {
            let bytes = success(r, GOOD.parse().unwrap(), &extra);
            assert!(bytes.len() > 4000, "{}", bytes.len());
            bytes
        })],
        "2",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mapped_of(&out).as_deref(), Some(GOOD));
}

#[test]
fn an_empty_answer_with_the_right_id_does_not_end_the_wait() {
    let empty = |r: &Message<'_>| {
        let mut buf = [0u8; 20];
        MessageBuilder::new(
            &mut buf,
            MessageType::new(Method::BINDING, Class::Success),
            r.transaction_id(),
        )
        .unwrap()
        .finish()
        .to_vec()
    };
    let out = stun_against(
        vec![
            Box::new(empty),
            Box::new(|r| success(r, GOOD.parse().unwrap(), &[])),
        ],
        "3",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mapped_of(&out).as_deref(), Some(GOOD));
    // Alone, it ends in an error that says what was wrong with it.
    let out = stun_against(vec![Box::new(empty)], "1");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("neither XOR-MAPPED-ADDRESS"),
        "{}",
        stderr(&out)
    );
}
