//! ICE-TCP (RFC 6544) rules seen from outside one agent, against hand-made peer
//! messages: which TCP pairs form (§6.2), how checks go out on TCP (framed per RFC 4571,
//! §7.1; sent once, no retransmission), what a closed connection does (§7.1), and the
//! passive side learning the peer's active candidate from its check (§7.2).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_ice::{
    Agent, AgentConfig, Candidate, CandidateKind, Credentials, PairState, Role, TcpType, Transmit,
    Transport,
};
use floe_stun::attributes::{IceControlling, Priority, Username};
use floe_stun::{Class, IntegrityKey, Message, MessageBuilder, MessageType, TransactionId};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn peer() -> Credentials {
    Credentials {
        ufrag: "peer".into(),
        pwd: "peer-password-0123456789".into(),
    }
}

fn tcp(a: &str, tcp_type: TcpType) -> Candidate {
    Candidate::tcp_host(addr(a), tcp_type, 0)
}

/// An ICE-TCP agent: UDP host 192.0.2.1:5000, TCP listener 192.0.2.1:6000.
fn agent(role: Role, now: Instant) -> Agent {
    let mut config = AgentConfig::default();
    config.ice_tcp = true;
    let mut agent = Agent::new(config, role, now, 7);
    agent.add_host(now, addr("192.0.2.1:5000"), 0);
    agent.add_tcp_host(now, addr("192.0.2.1:6000"), 0);
    agent.set_remote_credentials(peer());
    agent
}

/// The STUN message inside one RFC 4571 frame, checking the length prefix.
fn unframe(t: &Transmit) -> Message<'_> {
    assert_eq!(t.transport, Transport::Tcp);
    let (len, body) = t.data.split_at(2);
    assert_eq!(
        usize::from(u16::from_be_bytes([len[0], len[1]])),
        body.len()
    );
    Message::parse(body).expect("a STUN message in the frame")
}

fn transmits(agent: &mut Agent) -> Vec<Transmit> {
    std::iter::from_fn(|| agent.poll_transmit()).collect()
}

/// Runs the timers until `until`, returning everything sent.
fn run(agent: &mut Agent, mut now: Instant, until: Instant) -> Vec<Transmit> {
    let mut sent = Vec::new();
    agent.handle_timeout(now);
    loop {
        sent.extend(transmits(agent));
        match agent.poll_timeout() {
            Some(t) if t <= until => {
                now = t.max(now);
                agent.handle_timeout(now);
            }
            _ => return sent,
        }
    }
}

#[test]
fn tcp_host_candidates_are_one_passive_and_one_active_on_port_9() {
    let now = Instant::now();
    let agent = agent(Role::Controlling, now);
    let tcp: Vec<_> = agent
        .local_candidates()
        .filter(|c| floe_ice::Candidate::is_tcp(c))
        .collect();
    assert_eq!(tcp.len(), 2);
    assert_eq!(tcp[0].tcp_type, Some(TcpType::Passive));
    assert_eq!(tcp[0].addr(), Some(addr("192.0.2.1:6000")));
    assert_eq!(tcp[1].tcp_type, Some(TcpType::Active));
    assert_eq!(tcp[1].addr(), Some(addr("192.0.2.1:9")));
    // §4.2: below the UDP host candidate; active above passive.
    let udp = agent.local_candidates().find(|c| !c.is_tcp()).unwrap();
    assert!(udp.priority > tcp[1].priority && tcp[1].priority > tcp[0].priority);
    assert!(agent.is_tcp_base(addr("192.0.2.1:9")) && agent.is_tcp_base(addr("192.0.2.1:6000")));
    assert!(!agent.is_tcp_base(addr("192.0.2.1:5000")));
}

/// §6.2: active pairs with passive; a local passive candidate pairs with nothing signalled
/// (it cannot send first); simultaneous-open candidates are not used; TCP never pairs
/// with UDP.
#[test]
fn only_active_to_passive_tcp_pairs_form() {
    let now = Instant::now();
    let mut agent = agent(Role::Controlling, now);
    assert!(agent.add_remote_candidate(now, tcp("198.51.100.7:7000", TcpType::Passive)));
    assert!(agent.add_remote_candidate(now, tcp("198.51.100.8:7000", TcpType::Active)));
    assert!(!agent.add_remote_candidate(now, tcp("198.51.100.9:7000", TcpType::So)));
    let udp = Candidate::new(
        CandidateKind::Host,
        addr("198.51.100.7:7000"),
        addr("198.51.100.7:7000"),
        None,
        65_535,
    );
    // The same address and port on UDP is another candidate.
    assert!(agent.add_remote_candidate(now, udp));
    let mut pairs: Vec<_> = agent.pair_stats().map(|(l, r, _, _)| (l, r)).collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            (addr("192.0.2.1:9"), addr("198.51.100.7:7000")),
            (addr("192.0.2.1:5000"), addr("198.51.100.7:7000")),
        ]
    );
}

/// §7.1: the check goes out framed on the connection from the active candidate, once
/// (TCP retransmits); a connection that cannot be opened fails the pair.
#[test]
fn tcp_checks_are_framed_sent_once_and_fail_with_their_connection() {
    let start = Instant::now();
    let mut agent = agent(Role::Controlling, start);
    agent.add_remote_candidate(start, tcp("198.51.100.7:7000", TcpType::Passive));
    let sent = run(&mut agent, start, start + Duration::from_secs(20));
    let checks: Vec<_> = sent
        .iter()
        .filter(|t| t.transport == Transport::Tcp)
        .collect();
    assert_eq!(checks.len(), 1, "one check, no retransmission: {checks:?}");
    let t = checks[0];
    assert_eq!(
        (t.source, t.destination),
        (addr("192.0.2.1:9"), addr("198.51.100.7:7000"))
    );
    let msg = unframe(t);
    assert_eq!(msg.class(), Class::Request);
    // PRIORITY is the peer-reflexive TCP priority (RFC 8445 §7.2.2, RFC 6544 §4.2).
    let p = msg.get::<Priority>().unwrap().unwrap().0;
    assert_eq!(
        p,
        floe_ice::candidate::tcp_priority(CandidateKind::PeerReflexive, TcpType::Active, 0, 1)
    );
    let state = |agent: &Agent| agent.pair_stats().map(|(_, _, s, _)| s).next().unwrap();
    assert_eq!(state(&agent), PairState::InProgress);
    agent.handle_tcp_closed(start + Duration::from_secs(20), t.source, t.destination);
    assert_eq!(state(&agent), PairState::Failed);
}

/// §7.1: without an answer the TCP check times out when the UDP schedule would have
/// (500 ms × 64 with the defaults), not after TCP's 39.5 s.
#[test]
fn an_unanswered_tcp_check_fails_after_the_udp_schedule() {
    let start = Instant::now();
    let mut agent = agent(Role::Controlling, start);
    agent.add_remote_candidate(start, tcp("198.51.100.7:7000", TcpType::Passive));
    run(&mut agent, start, start + Duration::from_secs(31));
    let state = |agent: &Agent| agent.pair_stats().map(|(_, _, s, _)| s).next().unwrap();
    assert_eq!(state(&agent), PairState::InProgress);
    run(
        &mut agent,
        start + Duration::from_secs(31),
        start + Duration::from_secs(34),
    );
    assert_eq!(state(&agent), PairState::Failed);
}

/// §7.2: a check on a connection the peer opened to our passive candidate is answered on
/// it, the peer's active candidate is learned as peer-reflexive, and the triggered check
/// goes back on the same connection.
#[test]
fn a_check_on_the_passive_candidate_is_answered_and_checked_back_on_its_connection() {
    let now = Instant::now();
    let mut agent = agent(Role::Controlled, now);
    let listener = addr("192.0.2.1:6000");
    let from = addr("198.51.100.7:51234");
    let ours = agent.local_credentials().clone();
    let key = IntegrityKey::short_term(&ours.pwd).unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([3; 12]),
    )
    .unwrap();
    let user = format!("{}:{}", ours.ufrag, peer().ufrag);
    b.add(&Username(&user)).unwrap();
    b.add(&Priority(1_000)).unwrap();
    b.add(&IceControlling(5)).unwrap();
    b.add_message_integrity(&key)
        .unwrap()
        .add_fingerprint()
        .unwrap();
    let request = b.finish().to_vec();
    // Not a TCP base: ignored.
    agent.handle_tcp_receive(now, addr("192.0.2.1:5000"), from, &request, |_, _| {});
    assert!(transmits(&mut agent).is_empty());
    agent.handle_tcp_receive(now, listener, from, &request, |_, _| panic!("not data"));
    agent.handle_timeout(now);
    let sent = transmits(&mut agent);
    let response = sent
        .iter()
        .find(|t| unframe(t).class() == Class::Success)
        .expect("a response");
    assert_eq!((response.source, response.destination), (listener, from));
    let remote = agent
        .remote_candidates()
        .find(|c| c.addr() == Some(from))
        .expect("a peer-reflexive remote candidate");
    assert_eq!(remote.kind, CandidateKind::PeerReflexive);
    assert_eq!(remote.tcp_type, Some(TcpType::Active));
    let check = sent
        .iter()
        .find(|t| unframe(t).class() == Class::Request)
        .expect("a triggered check");
    assert_eq!((check.source, check.destination), (listener, from));
    // Its connection closes: the pair fails.
    agent.handle_tcp_closed(now, listener, from);
    assert!(agent
        .pair_stats()
        .filter(|(l, _, _, _)| *l == listener)
        .all(|(_, _, s, _)| s == PairState::Failed));
}
