//! RFC 8445 §12.2: an agent is prepared to receive data on a pair before its own check on
//! that pair has succeeded, once the peer's authenticated check arrived on it; data from
//! addresses that never proved the credentials is still dropped.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_ice::{Agent, AgentConfig, Role};
use floe_stun::{Class, Message};

/// What [`Agent::handle_receive`] hands to the application, if anything.
fn received(
    agent: &mut Agent,
    now: Instant,
    local: SocketAddr,
    remote: SocketAddr,
    bytes: &[u8],
) -> Option<Vec<u8>> {
    let mut got = None;
    agent.handle_receive(now, local, remote, bytes, |_, data| {
        got = Some(data.to_vec());
    });
    got
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn data_arrives_on_a_pair_the_peer_checked_before_our_own_check_succeeds() {
    let mut now = Instant::now();
    let (ha, hb) = (addr("10.0.0.1:5000"), addr("10.0.0.2:5000"));
    // B controls and will send as soon as its check succeeds; A's own checks are lost.
    let mut a = Agent::new(AgentConfig::default(), Role::Controlled, now, 1);
    let mut b = Agent::new(AgentConfig::default(), Role::Controlling, now, 2);
    a.add_host(now, ha, 0);
    b.add_host(now, hb, 0);
    a.set_remote_credentials(b.local_credentials().clone());
    b.set_remote_credentials(a.local_credentials().clone());
    let ca: Vec<_> = a.local_candidates().cloned().collect();
    let cb: Vec<_> = b.local_candidates().cloned().collect();
    for c in cb {
        a.add_remote_candidate(now, c);
    }
    for c in ca {
        b.add_remote_candidate(now, c);
    }
    let end = now + Duration::from_secs(2);
    while b.send(b"early").is_err() && now < end {
        a.handle_timeout(now);
        b.handle_timeout(now);
        while let Some(t) = b.poll_transmit() {
            a.handle_receive(now, t.destination, t.source, &t.data, |_, _| {});
        }
        while let Some(t) = a.poll_transmit() {
            // Only A's responses get through, never its own checks.
            if Message::parse(&t.data).is_ok_and(|m| m.class() == Class::Success) {
                b.handle_receive(now, t.destination, t.source, &t.data, |_, _| {});
            }
        }
        now += Duration::from_millis(10);
    }
    let t = b.send(b"early data").expect("B has a valid pair");
    assert_eq!(
        received(&mut a, now, t.destination, t.source, &t.data),
        Some(b"early data".to_vec()),
        "A must accept data on the pair B checked"
    );
    // From an address that never sent an authenticated check: dropped, and counted.
    assert_eq!(
        received(&mut a, now, ha, addr("10.0.0.3:5000"), b"spoofed"),
        None
    );
    assert_eq!(a.stats().data_dropped, 1);
}

#[test]
fn hostile_datagrams_are_dropped_and_counted() {
    let now = Instant::now();
    let (ha, stranger) = (addr("10.0.0.1:5000"), addr("10.0.0.9:7000"));
    let mut a = Agent::new(AgentConfig::default(), Role::Controlled, now, 1);
    a.add_host(now, ha, 0);
    let peer = floe_ice::Credentials {
        ufrag: "peer".into(),
        pwd: "peer-password-0123456789".into(),
    };
    a.set_remote_credentials(peer.clone());
    // Broken STUN (first byte 0-3 and the magic cookie) is not application data.
    let broken = [0, 1, 0, 8, 0x21, 0x12, 0xA4, 0x42, 1];
    assert_eq!(received(&mut a, now, ha, stranger, &broken), None);
    // A Binding request signed with the wrong password.
    let wrong = floe_stun::IntegrityKey::short_term("not-the-agents-password").unwrap();
    let username = format!("{}:peer", a.local_credentials().ufrag);
    let mut buf = [0u8; 256];
    let mut b = floe_stun::MessageBuilder::new(
        &mut buf,
        floe_stun::MessageType::BINDING_REQUEST,
        floe_stun::TransactionId([7; 12]),
    )
    .unwrap();
    b.add(&floe_stun::attributes::Username(&username)).unwrap();
    b.add_message_integrity(&wrong).unwrap();
    let n = b.len();
    assert_eq!(received(&mut a, now, ha, stranger, &buf[..n]), None);
    assert!(a.poll_transmit().is_none(), "no response to a forged check");
    // A success response to nothing the agent sent.
    let mut b = floe_stun::MessageBuilder::new(
        &mut buf,
        floe_stun::MessageType::BINDING_REQUEST.with_class(Class::Success),
        floe_stun::TransactionId([8; 12]),
    )
    .unwrap();
    b.add_fingerprint().unwrap();
    let n = b.len();
    assert_eq!(received(&mut a, now, ha, stranger, &buf[..n]), None);
    let stats = a.stats();
    assert_eq!(
        (
            stats.malformed,
            stats.unauthenticated,
            stats.unknown_transaction
        ),
        (1, 1, 1),
        "{stats:?}"
    );
    assert_eq!(a.pair_stats().count(), 0, "nothing learned from any of it");
}
