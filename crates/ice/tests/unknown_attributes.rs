//! RFC 8489 §6.3.2-§6.3.4: responses and indications that carry a comprehension-required
//! attribute the agent does not know are discarded and counted. A check's (or a gather's)
//! transaction keeps waiting, so a valid response that follows still counts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_ice::{Agent, AgentConfig, Candidate, CandidateKind, Credentials, PairState, Role};
use floe_stun::attributes::{ErrorCode, XorMappedAddress};
use floe_stun::{
    AttrType, Class, IntegrityKey, Message, MessageBuilder, MessageType, TransactionId,
};

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

/// Comprehension-required (below 0x8000) and unknown to floe.
const UNKNOWN_REQUIRED: AttrType = AttrType(0x7FAA);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn peer() -> Credentials {
    Credentials {
        ufrag: "peer".into(),
        pwd: "peer-password-0123456789".into(),
    }
}

/// A controlling agent with one host and one remote candidate, its first check sent.
/// Returns the agent, its host, the remote and the check's transaction id.
fn agent_with_check_in_flight(now: Instant) -> (Agent, SocketAddr, SocketAddr, TransactionId) {
    let (local, remote) = (addr("192.0.2.1:5000"), addr("198.51.100.7:6000"));
    let mut agent = Agent::new(AgentConfig::default(), Role::Controlling, now, 1);
    agent.add_host(now, local, 0);
    agent.set_remote_credentials(peer());
    agent.add_remote_candidate(
        now,
        Candidate::new(CandidateKind::Host, remote, remote, None, 65_535),
    );
    agent.handle_timeout(now);
    let check = std::iter::from_fn(|| agent.poll_transmit())
        .find(|t| Message::parse(&t.data).is_ok_and(|m| m.class() == Class::Request))
        .expect("the agent sends its first check");
    assert_eq!((check.source, check.destination), (local, remote));
    let tid = Message::parse(&check.data).unwrap().transaction_id();
    (agent, local, remote, tid)
}

/// A Binding response (or indication) from the peer: XOR-MAPPED-ADDRESS or ERROR-CODE,
/// `extra` raw attributes, then MESSAGE-INTEGRITY with `key` (if any) and FINGERPRINT.
fn message(
    typ: MessageType,
    tid: TransactionId,
    mapped: SocketAddr,
    error: Option<ErrorCode<'_>>,
    extra: &[(AttrType, &[u8])],
    key: Option<&IntegrityKey>,
) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut b = MessageBuilder::new(&mut buf, typ, tid).unwrap();
    match error {
        Some(e) => b.add(&e).unwrap(),
        None => b.add(&XorMappedAddress(mapped)).unwrap(),
    };
    for (t, v) in extra {
        b.add_raw(*t, v).unwrap();
    }
    if let Some(key) = key {
        b.add_message_integrity(key).unwrap();
    }
    b.add_fingerprint().unwrap();
    b.finish().to_vec()
}

fn pair_state(agent: &Agent) -> PairState {
    let states: Vec<_> = agent.pair_stats().map(|(_, _, s, _)| s).collect();
    assert_eq!(states.len(), 1, "one pair: {states:?}");
    states[0]
}

#[test]
fn an_authenticated_success_with_an_unknown_required_attribute_does_not_make_the_pair_succeed() {
    let now = Instant::now();
    let (mut agent, local, remote, tid) = agent_with_check_in_flight(now);
    let key = IntegrityKey::short_term(&peer().pwd).unwrap();
    let forged = message(
        MessageType::BINDING_SUCCESS,
        tid,
        local,
        None,
        &[(UNKNOWN_REQUIRED, b"abcd")],
        Some(&key),
    );
    assert!(Message::parse(&forged).unwrap().verify(&key).is_ok());
    assert_eq!(received(&mut agent, now, local, remote, &forged), None);
    assert_eq!(pair_state(&agent), PairState::InProgress);
    assert!(agent.selected_pair().is_none());
    let stats = agent.stats();
    assert_eq!(
        (stats.unknown_required_attributes, stats.unauthenticated),
        (1, 0),
        "{stats:?}"
    );

    // The transaction still waits: a valid answer to the same check makes the pair valid.
    let now = now + Duration::from_millis(20);
    let valid = message(
        MessageType::BINDING_SUCCESS,
        tid,
        local,
        None,
        &[],
        Some(&key),
    );
    assert_eq!(received(&mut agent, now, local, remote, &valid), None);
    assert_eq!(pair_state(&agent), PairState::Succeeded);
    assert_eq!(agent.selected_pair().map(|s| s.remote), Some(remote));
    assert_eq!(agent.stats().unknown_transaction, 0);
}

#[test]
fn a_check_whose_responses_all_carry_an_unknown_required_attribute_is_retransmitted_then_fails() {
    let mut now = Instant::now();
    let (mut agent, local, remote, tid) = agent_with_check_in_flight(now);
    let key = IntegrityKey::short_term(&peer().pwd).unwrap();
    let forged = message(
        MessageType::BINDING_SUCCESS,
        tid,
        local,
        None,
        &[(UNKNOWN_REQUIRED, b"")],
        Some(&key),
    );
    let mut retransmissions = 0;
    let end = now + Duration::from_secs(60);
    while pair_state(&agent) != PairState::Failed && now < end {
        agent.handle_receive(now, local, remote, &forged, |_, _| {});
        now = agent.poll_timeout().unwrap_or(end).max(now);
        agent.handle_timeout(now);
        while let Some(t) = agent.poll_transmit() {
            if Message::parse(&t.data).is_ok_and(|m| m.transaction_id() == tid) {
                retransmissions += 1;
            }
        }
    }
    assert_eq!(pair_state(&agent), PairState::Failed);
    assert_eq!(
        retransmissions,
        AgentConfig::default().max_check_transmissions - 1,
        "the whole retransmission schedule runs"
    );
    assert!(agent.stats().unknown_required_attributes >= 1);
}

#[test]
fn an_authenticated_role_conflict_with_an_unknown_required_attribute_is_discarded() {
    let now = Instant::now();
    let (mut agent, local, remote, tid) = agent_with_check_in_flight(now);
    let key = IntegrityKey::short_term(&peer().pwd).unwrap();
    let conflict = message(
        MessageType::BINDING_ERROR,
        tid,
        local,
        Some(ErrorCode::ROLE_CONFLICT),
        &[(UNKNOWN_REQUIRED, b"x")],
        Some(&key),
    );
    agent.handle_receive(now, local, remote, &conflict, |_, _| {});
    assert_eq!(agent.role(), Role::Controlling, "no role switch");
    assert_eq!(pair_state(&agent), PairState::InProgress);
    assert_eq!(agent.stats().unknown_required_attributes, 1);
    // An error response without it is acted on (RFC 8445 §7.2.5.1).
    let conflict = message(
        MessageType::BINDING_ERROR,
        tid,
        local,
        Some(ErrorCode::ROLE_CONFLICT),
        &[],
        Some(&key),
    );
    agent.handle_receive(now, local, remote, &conflict, |_, _| {});
    assert_eq!(agent.role(), Role::Controlled);
}

#[test]
fn an_unauthenticated_response_with_an_unknown_required_attribute_counts_as_unauthenticated() {
    let now = Instant::now();
    let (mut agent, local, remote, tid) = agent_with_check_in_flight(now);
    let wrong = IntegrityKey::short_term("not-the-peers-password").unwrap();
    for key in [Some(&wrong), None] {
        let forged = message(
            MessageType::BINDING_SUCCESS,
            tid,
            local,
            None,
            &[(UNKNOWN_REQUIRED, b"")],
            key,
        );
        agent.handle_receive(now, local, remote, &forged, |_, _| {});
    }
    let stats = agent.stats();
    assert_eq!(
        (stats.unauthenticated, stats.unknown_required_attributes),
        (2, 0),
        "{stats:?}"
    );
    assert_eq!(pair_state(&agent), PairState::InProgress);
}

#[test]
fn indications_with_an_unknown_required_attribute_are_discarded_and_counted() {
    let now = Instant::now();
    let (mut agent, local, remote, _) = agent_with_check_in_flight(now);
    let keepalive = message(
        MessageType::BINDING_INDICATION,
        TransactionId([1; 12]),
        local,
        None,
        &[],
        None,
    );
    assert_eq!(received(&mut agent, now, local, remote, &keepalive), None);
    assert_eq!(agent.stats().unknown_required_attributes, 0);
    let odd = message(
        MessageType::BINDING_INDICATION,
        TransactionId([2; 12]),
        local,
        None,
        &[(UNKNOWN_REQUIRED, b"zz")],
        None,
    );
    assert_eq!(received(&mut agent, now, local, remote, &odd), None);
    // Comprehension-optional unknown attributes (0x8000 and up) are fine.
    let optional = message(
        MessageType::BINDING_INDICATION,
        TransactionId([3; 12]),
        local,
        None,
        &[(AttrType(0xFFAA), b"zz")],
        None,
    );
    assert_eq!(received(&mut agent, now, local, remote, &optional), None);
    assert_eq!(agent.stats().unknown_required_attributes, 1);
    assert!(std::iter::from_fn(|| agent.poll_transmit())
        .all(|t| Message::parse(&t.data).is_ok_and(|m| m.class() == Class::Request)));
}

#[test]
fn a_stun_server_response_with_an_unknown_required_attribute_gives_no_server_reflexive_candidate() {
    let now = Instant::now();
    let (local, server) = (addr("192.0.2.1:5000"), addr("203.0.113.5:3478"));
    let mut config = AgentConfig::default();
    config.stun_servers = vec![server];
    let mut agent = Agent::new(config, Role::Controlling, now, 1);
    agent.add_host(now, local, 0);
    let request = std::iter::from_fn(|| agent.poll_transmit())
        .find(|t| t.destination == server)
        .expect("a Binding request to the STUN server");
    let tid = Message::parse(&request.data).unwrap().transaction_id();
    let mapped = addr("198.51.100.1:40000");
    let srflx = |agent: &Agent| {
        agent
            .local_candidates()
            .filter(|c| c.kind == CandidateKind::ServerReflexive)
            .count()
    };
    let forged = message(
        MessageType::BINDING_SUCCESS,
        tid,
        mapped,
        None,
        &[(UNKNOWN_REQUIRED, b"")],
        None,
    );
    agent.handle_receive(now, local, server, &forged, |_, _| {});
    assert_eq!(srflx(&agent), 0);
    assert_eq!(agent.stats().unknown_required_attributes, 1);
    let error = message(
        MessageType::BINDING_ERROR,
        tid,
        mapped,
        Some(ErrorCode::ROLE_CONFLICT),
        &[(UNKNOWN_REQUIRED, b"")],
        None,
    );
    agent.handle_receive(now, local, server, &error, |_, _| {});
    assert_eq!(agent.stats().unknown_required_attributes, 2);
    assert!(
        std::iter::from_fn(|| agent.poll_event())
            .all(|e| !matches!(e, floe_ice::Event::ServerFailed { .. })),
        "the gather is still waiting"
    );
    let valid = message(MessageType::BINDING_SUCCESS, tid, mapped, None, &[], None);
    agent.handle_receive(now, local, server, &valid, |_, _| {});
    assert_eq!(srflx(&agent), 1);
}

/// RFC 8489 §6.3.1: an authenticated check carrying an unknown comprehension-required
/// attribute gets a signed 420 listing it and is not processed (no pair, no triggered
/// check); an unknown comprehension-optional one changes nothing.
#[test]
fn a_check_with_an_unknown_required_attribute_gets_420() {
    let now = Instant::now();
    let (mut agent, local, remote, _) = agent_with_check_in_flight(now);
    while agent.poll_transmit().is_some() {}
    let ours = agent.local_credentials().clone();
    let key = IntegrityKey::short_term(&ours.pwd).unwrap();
    let check = |extra: AttrType| {
        let mut buf = [0u8; 256];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::BINDING_REQUEST,
            TransactionId([7; 12]),
        )
        .unwrap();
        let user = format!("{}:peer", ours.ufrag);
        b.add(&floe_stun::attributes::Username(&user)).unwrap();
        b.add(&floe_stun::attributes::Priority(1_000)).unwrap();
        b.add(&floe_stun::attributes::IceControlled(5)).unwrap();
        b.add_raw(extra, &[0; 4]).unwrap();
        b.add_message_integrity(&key)
            .unwrap()
            .add_fingerprint()
            .unwrap();
        b.finish().to_vec()
    };
    agent.handle_receive(now, local, remote, &check(UNKNOWN_REQUIRED), |_, _| {});
    let answers: Vec<_> = std::iter::from_fn(|| agent.poll_transmit()).collect();
    assert_eq!(answers.len(), 1, "one 420, nothing else");
    let resp = Message::parse(&answers[0].data).unwrap();
    assert_eq!(resp.class(), Class::Error);
    assert_eq!(resp.get::<ErrorCode>().unwrap().unwrap().code, 420);
    let listed = resp
        .get::<floe_stun::attributes::UnknownAttributes>()
        .unwrap()
        .unwrap();
    assert_eq!(
        listed.iter().map(|t| t.0).collect::<Vec<_>>(),
        [UNKNOWN_REQUIRED.0]
    );
    assert!(resp.verify(&key).is_ok(), "the 420 is signed");
    assert_eq!(agent.stats().unknown_required_attributes, 1);
    // Comprehension-optional: answered with a success.
    agent.handle_receive(now, local, remote, &check(AttrType(0xC0AA)), |_, _| {});
    let ok = std::iter::from_fn(|| agent.poll_transmit()).find_map(|t| {
        Message::parse(&t.data)
            .ok()
            .filter(|m| m.class() == Class::Success)
            .map(|_| ())
    });
    assert!(ok.is_some(), "an optional unknown attribute is ignored");
}
