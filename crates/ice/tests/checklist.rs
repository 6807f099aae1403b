//! RFC 8445 checklist rules seen from outside the agent, one agent against hand-made
//! peer messages: pairing (§6.1.2.2-§6.1.2.5), Frozen/Waiting per foundation
//! (§6.1.2.6, §7.2.5.3.3), Ta pacing and the check RTO (§6.1.4.2, §14), what checks and
//! their answers carry (§7.2.2, §7.3), non-symmetric responses (§7.2.5.2.1), the
//! peer-reflexive learning limit (§7.3.1.3), regular nomination (§8.1.1) and the
//! failure timeout (RFC 8863).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_ice::{
    Agent, AgentConfig, Candidate, CandidateKind, ConnectionState, Credentials, Event, Nomination,
    PairState, Recovery, Role, TcpType, Transmit, TransportProtocol,
};
use floe_stun::attributes::{IceControlled, IceControlling, Priority, Username, XorMappedAddress};
use floe_stun::{
    AttrType, Class, IntegrityKey, Message, MessageBuilder, MessageType, ParseOptions,
    TransactionId,
};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn peer() -> Credentials {
    Credentials {
        ufrag: "peer".into(),
        pwd: "peer-password-0123456789".into(),
    }
}

fn peer_key() -> IntegrityKey {
    IntegrityKey::short_term(&peer().pwd).unwrap()
}

/// A remote host candidate; a higher `local_preference` ranks it higher.
fn remote(a: &str, local_preference: u16) -> Candidate {
    let a = addr(a);
    Candidate::new(CandidateKind::Host, a, a, None, local_preference)
}

/// An agent with host candidates on `hosts`, the peer's credentials, and `remotes`.
fn agent(
    config: AgentConfig,
    role: Role,
    now: Instant,
    hosts: &[&str],
    remotes: &[Candidate],
) -> Agent {
    let mut agent = Agent::new(config, role, now, 1);
    for (rank, h) in hosts.iter().enumerate() {
        agent.add_host(now, addr(h), rank);
    }
    agent.set_remote_credentials(peer());
    for r in remotes {
        assert!(agent.add_remote_candidate(now, r.clone()));
    }
    agent
}

fn states(agent: &Agent) -> Vec<(SocketAddr, PairState)> {
    agent.pair_stats().map(|(_, r, s, _)| (r, s)).collect()
}

/// Every Binding request the agent has queued.
fn requests(agent: &mut Agent) -> Vec<Transmit> {
    std::iter::from_fn(|| agent.poll_transmit())
        .filter(|t| Message::parse(&t.data).is_ok_and(|m| m.class() == Class::Request))
        .collect()
}

/// The peer's success response to `check`, signed with the peer's password.
fn success(check: &Transmit) -> Vec<u8> {
    let tid = Message::parse(&check.data).unwrap().transaction_id();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_SUCCESS, tid).unwrap();
    b.add(&XorMappedAddress(check.source)).unwrap();
    b.add_message_integrity(&peer_key())
        .unwrap()
        .add_fingerprint()
        .unwrap();
    b.finish().to_vec()
}

/// A check from the peer to `agent`, as the peer would send it.
fn check_from_peer(agent: &Agent, tid: u8) -> Vec<u8> {
    let ours = agent.local_credentials().clone();
    let key = IntegrityKey::short_term(&ours.pwd).unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([tid; 12]),
    )
    .unwrap();
    let user = format!("{}:{}", ours.ufrag, peer().ufrag);
    b.add(&Username(&user)).unwrap();
    b.add(&Priority(1_000)).unwrap();
    // The peer takes the other role, so that there is no role conflict.
    match agent.role() {
        Role::Controlling => b.add(&IceControlled(5)).unwrap(),
        Role::Controlled => b.add(&IceControlling(5)).unwrap(),
    };
    b.add_message_integrity(&key)
        .unwrap()
        .add_fingerprint()
        .unwrap();
    b.finish().to_vec()
}

/// Runs the agent's timers from `start` to `until`, answering nothing; returns every
/// Binding request sent, with its time since `start`.
fn run_silent(agent: &mut Agent, start: Instant, until: Instant) -> Vec<(Duration, Transmit)> {
    let mut sent = Vec::new();
    let mut now = start;
    agent.handle_timeout(now);
    loop {
        sent.extend(requests(agent).into_iter().map(|t| (now - start, t)));
        match agent.poll_timeout() {
            Some(t) if t <= until => {
                now = t.max(now);
                agent.handle_timeout(now);
            }
            _ => return sent,
        }
    }
}

/// §6.1.2.2: a local candidate is paired only with remote candidates of its family.
#[test]
fn pairs_form_within_one_address_family_only() {
    let now = Instant::now();
    let agent = agent(
        AgentConfig::default(),
        Role::Controlling,
        now,
        &["192.0.2.1:5000", "[2001:db8::1]:5000"],
        &[
            remote("198.51.100.7:6000", 65_535),
            remote("[2001:db8::7]:6000", 65_535),
        ],
    );
    let mut pairs: Vec<_> = agent.pair_stats().map(|(l, r, _, _)| (l, r)).collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            (addr("192.0.2.1:5000"), addr("198.51.100.7:6000")),
            (addr("[2001:db8::1]:5000"), addr("[2001:db8::7]:6000")),
        ]
    );
}

/// §6.1.2.4: a server-reflexive local candidate is replaced by its base, which is
/// already paired as the host candidate, so it adds no pair of its own.
#[test]
fn server_reflexive_candidates_pair_through_their_base_only() {
    let now = Instant::now();
    let (local, server) = (addr("192.0.2.1:5000"), addr("203.0.113.5:3478"));
    let mut config = AgentConfig::default();
    config.stun_servers = vec![server];
    let mut agent = Agent::new(config, Role::Controlling, now, 1);
    agent.add_host(now, local, 0);
    let gather = std::iter::from_fn(|| agent.poll_transmit())
        .find(|t| t.destination == server)
        .expect("a Binding request to the STUN server");
    let tid = Message::parse(&gather.data).unwrap().transaction_id();
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_SUCCESS, tid).unwrap();
    b.add(&XorMappedAddress(addr("198.51.100.1:40000")))
        .unwrap();
    let answer = b.finish().to_vec();
    agent.handle_receive(now, local, server, &answer, |_, _| {});
    assert!(agent
        .local_candidates()
        .any(|c| c.kind == CandidateKind::ServerReflexive));
    agent.set_remote_credentials(peer());
    agent.add_remote_candidate(now, remote("198.51.100.7:6000", 65_535));
    let pairs: Vec<_> = agent.pair_stats().map(|(l, r, _, _)| (l, r)).collect();
    assert_eq!(pairs, [(local, addr("198.51.100.7:6000"))]);
}

/// RFC 6544 TCP candidates and candidates of other components are kept by the parser
/// but not paired: floe's agent checks UDP, component 1 only.
#[test]
fn tcp_candidates_and_other_components_are_not_paired() {
    let now = Instant::now();
    let mut agent = agent(
        AgentConfig::default(),
        Role::Controlling,
        now,
        &["192.0.2.1:5000"],
        &[],
    );
    let mut tcp = remote("198.51.100.7:9", 65_535);
    tcp.transport = TransportProtocol::Tcp;
    tcp.tcp_type = Some(TcpType::Active);
    assert!(!agent.add_remote_candidate(now, tcp));
    let mut rtcp = remote("198.51.100.7:6001", 65_535);
    rtcp.component = 2;
    assert!(!agent.add_remote_candidate(now, rtcp));
    assert_eq!(agent.pair_stats().count(), 0);
    assert!(agent.add_remote_candidate(now, remote("198.51.100.7:6000", 65_535)));
    assert_eq!(agent.pair_stats().count(), 1);
}

/// §6.1.2.5: the checklist holds at most `max_pairs` pairs (100 by default).
#[test]
fn no_more_pairs_than_max_pairs_are_formed() {
    let now = Instant::now();
    let mut config = AgentConfig::default();
    config.max_pairs = 3;
    let remotes: Vec<_> = (0..6)
        .map(|i| remote(&format!("198.51.100.{}:6000", 10 + i), 65_535))
        .collect();
    let agent = agent(
        config,
        Role::Controlling,
        now,
        &["192.0.2.1:5000"],
        &remotes,
    );
    assert_eq!(agent.pair_stats().count(), 3);
    assert_eq!(AgentConfig::default().max_pairs, 100);
}

/// §6.1.2.5: at the limit the highest-priority pairs are kept: a remote candidate that
/// ranks above an unchecked pair takes its place; one that ranks below all is dropped.
#[test]
fn at_the_pair_limit_a_higher_priority_pair_replaces_the_lowest_unchecked_one() {
    let now = Instant::now();
    let mut config = AgentConfig::default();
    config.max_pairs = 3;
    // Three remotes on different IPs (three foundations, all Waiting), low preferences.
    let low: Vec<_> = (0..3)
        .map(|i| remote(&format!("198.51.100.{}:6000", 10 + i), 1000 + i))
        .collect();
    let mut agent = agent(config, Role::Controlling, now, &["192.0.2.1:5000"], &low);
    assert!(agent.add_remote_candidate(now, remote("198.51.100.99:6000", 65_000)));
    let remotes: Vec<SocketAddr> = states(&agent).into_iter().map(|(r, _)| r).collect();
    assert_eq!(remotes.len(), 3, "{remotes:?}");
    assert!(
        remotes.contains(&addr("198.51.100.99:6000")),
        "the best pair is kept: {remotes:?}"
    );
    assert!(
        !remotes.contains(&addr("198.51.100.10:6000")),
        "the lowest one gave way: {remotes:?}"
    );
    // One below everything is dropped.
    agent.add_remote_candidate(now, remote("198.51.100.50:6000", 10));
    let remotes: Vec<SocketAddr> = states(&agent).into_iter().map(|(r, _)| r).collect();
    assert!(
        !remotes.contains(&addr("198.51.100.50:6000")),
        "{remotes:?}"
    );
}

/// §6.1.2.6: the first pair of each foundation starts Waiting, the others Frozen;
/// §7.2.5.3.3: a success unfreezes the pairs of its foundation.
#[test]
fn one_pair_per_foundation_waits_and_a_success_unfreezes_the_rest() {
    let now = Instant::now();
    // The first three share a foundation (host candidates on one IP); the last has its
    // own.
    let mut agent = agent(
        AgentConfig::default(),
        Role::Controlled,
        now,
        &["192.0.2.1:5000"],
        &[
            remote("198.51.100.7:6000", 65_535),
            remote("198.51.100.7:6001", 65_000),
            remote("198.51.100.7:6002", 64_000),
            remote("198.51.100.8:6000", 60_000),
        ],
    );
    let state_list = |agent: &Agent| {
        states(agent)
            .into_iter()
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        state_list(&agent),
        [
            PairState::Waiting,
            PairState::Frozen,
            PairState::Frozen,
            PairState::Waiting
        ]
    );
    agent.handle_timeout(now);
    let first = requests(&mut agent);
    assert_eq!(first.len(), 1, "one check per Ta");
    assert_eq!(first[0].destination, addr("198.51.100.7:6000"));
    agent.handle_receive(
        now,
        first[0].source,
        first[0].destination,
        &success(&first[0]),
        |_, _| {},
    );
    assert_eq!(
        state_list(&agent),
        [
            PairState::Succeeded,
            PairState::Waiting,
            PairState::Waiting,
            PairState::Waiting
        ]
    );
}

/// §6.1.4.2 and §14.2: one check every Ta (50 ms), highest priority first; §14.3: a
/// check is retransmitted after RTO = max(500 ms, Ta × Waiting and In-Progress pairs).
#[test]
fn checks_go_out_one_per_ta_and_are_retransmitted_after_the_rto() {
    for (n, rto) in [(4u16, 500u64), (20, 1_000)] {
        let start = Instant::now();
        let remotes: Vec<_> = (0..n)
            .map(|i| remote(&format!("198.51.100.{}:6000", 10 + i), 65_535 - i))
            .collect();
        let mut agent = agent(
            AgentConfig::default(),
            Role::Controlled,
            start,
            &["192.0.2.1:5000"],
            &remotes,
        );
        let sent = run_silent(&mut agent, start, start + Duration::from_millis(rto + 10));
        let times: Vec<u128> = sent.iter().map(|(t, _)| t.as_millis()).collect();
        let mut expected: Vec<u128> = (0..u128::from(n))
            .map(|i| i * 50)
            .filter(|&t| t < u128::from(rto))
            .collect();
        expected.push(u128::from(rto));
        assert_eq!(times, expected, "{n} pairs");
        // In priority order, and the last send is the first check again.
        assert_eq!(sent[0].1.destination, addr("198.51.100.10:6000"));
        assert_eq!(sent[1].1.destination, addr("198.51.100.11:6000"));
        let last = &sent.last().unwrap().1;
        assert_eq!(last.destination, sent[0].1.destination);
        assert_eq!(last.data, sent[0].1.data, "a retransmission, same bytes");
    }
}

/// §7.2.2: a check carries USERNAME (remote ufrag ":" local ufrag), PRIORITY (as a
/// peer-reflexive candidate), ICE-CONTROLLING or ICE-CONTROLLED, MESSAGE-INTEGRITY with
/// the peer's password and FINGERPRINT; §7.3: the answer to the peer's check carries
/// XOR-MAPPED-ADDRESS (the check's source), MESSAGE-INTEGRITY with our password and
/// FINGERPRINT.
#[test]
fn checks_and_their_answers_carry_the_rfc_8445_attributes() {
    let now = Instant::now();
    let (local, far) = (addr("192.0.2.1:5000"), addr("198.51.100.7:6000"));
    for role in [Role::Controlling, Role::Controlled] {
        let mut agent = agent(
            AgentConfig::default(),
            role,
            now,
            &["192.0.2.1:5000"],
            &[remote("198.51.100.7:6000", 65_535)],
        );
        agent.handle_timeout(now);
        let check = requests(&mut agent).remove(0);
        assert_eq!((check.source, check.destination), (local, far));
        let m = Message::parse_with(&check.data, ParseOptions::strict()).unwrap();
        let ours = agent.local_credentials().clone();
        assert_eq!(
            m.get::<Username>().unwrap(),
            Some(Username(&format!("peer:{}", ours.ufrag)))
        );
        let priority = m.get::<Priority>().unwrap().unwrap().0;
        assert_eq!(priority >> 24, 110, "peer-reflexive type preference");
        match role {
            Role::Controlling => assert!(m.get::<IceControlling>().unwrap().is_some()),
            Role::Controlled => assert!(m.get::<IceControlled>().unwrap().is_some()),
        }
        assert!(
            !m.has(AttrType::USE_CANDIDATE),
            "no nomination in a first check"
        );
        assert!(m.verify(&peer_key()).is_ok());

        let request = check_from_peer(&agent, 7);
        agent.handle_receive(now, local, far, &request, |_, _| {});
        let answer = std::iter::from_fn(|| agent.poll_transmit())
            .find(|t| {
                Message::parse(&t.data)
                    .is_ok_and(|m| m.class() == Class::Success && m.transaction_id().0 == [7; 12])
            })
            .expect("the check is answered");
        assert_eq!((answer.source, answer.destination), (local, far));
        let m = Message::parse_with(&answer.data, ParseOptions::strict()).unwrap();
        assert_eq!(
            m.get::<XorMappedAddress>().unwrap(),
            Some(XorMappedAddress(far))
        );
        assert!(m
            .verify(&IntegrityKey::short_term(&ours.pwd).unwrap())
            .is_ok());
    }
}

/// §7.2.5.2.1: a response whose source is not where the check went, or that arrives on
/// another local address, fails the check.
#[test]
fn a_response_from_an_unexpected_address_fails_the_check() {
    let now = Instant::now();
    for (on, from) in [
        ("192.0.2.1:5000", "198.51.100.99:6000"),
        ("192.0.2.1:5000", "198.51.100.7:6999"),
        ("192.0.2.2:5000", "198.51.100.7:6000"),
    ] {
        let mut agent = agent(
            AgentConfig::default(),
            Role::Controlling,
            now,
            &["192.0.2.1:5000", "192.0.2.2:5000"],
            &[remote("198.51.100.7:6000", 65_535)],
        );
        agent.handle_timeout(now);
        let check = requests(&mut agent)
            .into_iter()
            .find(|t| t.source == addr("192.0.2.1:5000"))
            .unwrap();
        agent.handle_receive(now, addr(on), addr(from), &success(&check), |_, _| {});
        let pair = agent
            .pair_stats()
            .find(|(l, _, _, _)| *l == addr("192.0.2.1:5000"))
            .map(|(_, _, s, _)| s);
        assert_eq!(pair, Some(PairState::Failed), "on {on} from {from}");
        assert!(agent.selected_pair().is_none());
    }
}

/// §7.3.1.3: checks from unknown sources create peer-reflexive remote candidates, at
/// most `max_prflx_per_second` (20) a second; the rest are refused and counted.
#[test]
fn peer_reflexive_candidates_are_learned_at_a_bounded_rate() {
    let now = Instant::now();
    let local = addr("192.0.2.1:5000");
    let mut agent = agent(
        AgentConfig::default(),
        Role::Controlled,
        now,
        &["192.0.2.1:5000"],
        &[],
    );
    let check = check_from_peer(&agent, 1);
    for i in 0..25u16 {
        let from = SocketAddr::new(addr("198.51.100.7:1").ip(), 10_000 + i);
        agent.handle_receive(now, local, from, &check, |_, _| {});
    }
    assert_eq!(agent.pair_stats().count(), 20);
    assert_eq!(agent.stats().prflx_refused, 5);
    let later = now + Duration::from_secs(1);
    agent.handle_receive(later, local, addr("198.51.100.7:20000"), &check, |_, _| {});
    assert_eq!(
        agent.pair_stats().count(),
        21,
        "a new second, a new allowance"
    );
}

/// §8.1.1 with `Nomination::Regular`: the controlling agent nominates the first valid
/// pair in its next Ta slot, without the lowest-latency settle window; with the default
/// (`LowestLatency`) the next slot checks the other pair instead.
#[test]
fn regular_nomination_nominates_the_first_valid_pair_at_once() {
    for nomination in [Nomination::Regular, Nomination::LowestLatency] {
        let start = Instant::now();
        let mut config = AgentConfig::default();
        config.nomination = nomination;
        let mut agent = agent(
            config,
            Role::Controlling,
            start,
            &["192.0.2.1:5000"],
            &[
                remote("198.51.100.7:6000", 65_535),
                remote("198.51.100.8:6000", 60_000),
            ],
        );
        agent.handle_timeout(start);
        let first = requests(&mut agent).remove(0);
        assert_eq!(first.destination, addr("198.51.100.7:6000"));
        let now = start + Duration::from_millis(10);
        agent.handle_receive(
            now,
            first.source,
            first.destination,
            &success(&first),
            |_, _| {},
        );
        let next_slot = start + Duration::from_millis(50);
        agent.handle_timeout(next_slot);
        let next = requests(&mut agent);
        assert_eq!(next.len(), 1, "{nomination:?}");
        let m = Message::parse(&next[0].data).unwrap();
        match nomination {
            Nomination::Regular => {
                assert_eq!(next[0].destination, first.destination);
                assert!(m.has(AttrType::USE_CANDIDATE), "nominated at once");
            }
            Nomination::LowestLatency => {
                assert_eq!(next[0].destination, addr("198.51.100.8:6000"));
                assert!(!m.has(AttrType::USE_CANDIDATE));
            }
        }
    }
}

/// RFC 8863 §5 (and RFC 8445 §8.1.2): without a valid pair, checking fails 39.5 s after
/// it started, even while remote candidates may still trickle in.
#[test]
fn checking_fails_39_5_seconds_after_it_started_without_a_valid_pair() {
    let start = Instant::now();
    let mut agent = agent(
        AgentConfig::default(),
        Role::Controlling,
        start,
        &["192.0.2.1:5000"],
        &[remote("198.51.100.7:6000", 65_535)],
    );
    let _ = run_silent(&mut agent, start, start + Duration::from_millis(39_499));
    assert_eq!(agent.connection_state(), ConnectionState::Checking);
    let _ = run_silent(
        &mut agent,
        start + Duration::from_millis(39_499),
        start + Duration::from_millis(39_500),
    );
    assert_eq!(agent.connection_state(), ConnectionState::Failed);
}

/// RFC 7675 §5.1: once a pair is selected, consent checks go out on it every 5 s,
/// randomized by ±20 % (4-6 s), and answered ones keep the connection up.
#[test]
fn consent_checks_go_out_every_4_to_6_seconds() {
    let start = Instant::now();
    // Liveness checks (on a quiet pair, every 500 ms) off: consent alone.
    let mut config = AgentConfig::default();
    config.liveness_interval = Duration::MAX;
    config.disconnected_timeout = Duration::MAX;
    let mut agent = agent(
        config,
        Role::Controlling,
        start,
        &["192.0.2.1:5000"],
        &[remote("198.51.100.7:6000", 65_535)],
    );
    let mut now = start;
    let mut after_nomination = Vec::new();
    agent.handle_timeout(now);
    while now < start + Duration::from_secs(120) {
        for t in requests(&mut agent) {
            if agent.connection_state() == ConnectionState::Completed {
                after_nomination.push(now);
            }
            agent.handle_receive(now, t.source, t.destination, &success(&t), |_, _| {});
        }
        now = agent.poll_timeout().expect("timers run").max(now);
        agent.handle_timeout(now);
    }
    assert_eq!(agent.connection_state(), ConnectionState::Completed);
    let gaps: Vec<Duration> = after_nomination.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() >= 18, "{gaps:?}");
    assert!(
        gaps.iter()
            .all(|g| (Duration::from_secs(4)..=Duration::from_secs(6)).contains(g)),
        "{gaps:?}"
    );
    assert!(gaps.iter().any(|g| *g != gaps[0]), "randomized: {gaps:?}");
}

/// Liveness: a selected pair that has been quiet for 500 ms is checked at once, and each
/// 500 ms while it stays quiet; data arriving on it (through the agent, or reported with
/// `handle_data_received` by a fast path) keeps it quiet of checks, leaving only consent
/// (4-6 s). With no answers, it is Disconnected after 1 s of quiet and recovery starts.
#[test]
fn a_quiet_selected_pair_is_checked_each_half_second_and_a_silent_one_disconnects() {
    let start = Instant::now();
    let mut agent = agent(
        AgentConfig::default(),
        Role::Controlling,
        start,
        &["192.0.2.1:5000"],
        &[remote("198.51.100.7:6000", 65_535)],
    );
    let (local, far) = (addr("192.0.2.1:5000"), addr("198.51.100.7:6000"));
    let mut now = start;
    let mut completed = None;
    let mut probes = Vec::new();
    agent.handle_timeout(now);
    // Phase 1 (to 5 s after completion): no data, every check answered.
    while completed.is_none_or(|c| now < c + Duration::from_secs(5)) {
        for t in requests(&mut agent) {
            if completed.is_some() {
                probes.push(now);
            }
            agent.handle_receive(now, t.source, t.destination, &success(&t), |_, _| {});
        }
        if completed.is_none() && agent.connection_state() == ConnectionState::Completed {
            completed = Some(now);
        }
        now = agent.poll_timeout().expect("timers run").max(now);
        agent.handle_timeout(now);
    }
    let gaps: Vec<Duration> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(probes.len() >= 9, "{gaps:?}");
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_millis(520)),
        "a quiet pair is checked each 500 ms: {gaps:?}"
    );
    // Phase 2 (10 s): data every 100 ms, half of it reported by a fast path.
    let phase = now;
    let mut checks = Vec::new();
    let mut tick = 0u32;
    while now < phase + Duration::from_secs(10) {
        for t in requests(&mut agent) {
            checks.push(now - phase);
            agent.handle_receive(now, t.source, t.destination, &success(&t), |_, _| {});
        }
        now += Duration::from_millis(100);
        tick += 1;
        if tick % 2 == 0 {
            let mut got = false;
            agent.handle_receive(now, local, far, b"media", |_, _| got = true);
            assert!(got);
        } else {
            agent.handle_data_received(now, local, far);
        }
        if agent.poll_timeout().is_some_and(|t| t <= now) {
            agent.handle_timeout(now);
        }
    }
    assert!(
        !checks.is_empty() && checks.len() <= 3,
        "only consent checks while data flows: {checks:?}"
    );
    // Phase 3: silence, nothing answered.
    let cut = now;
    let sent = run_silent(&mut agent, cut, cut + Duration::from_secs(3));
    assert!(sent.len() >= 3, "checked while quiet: {sent:?}");
    assert_eq!(agent.connection_state(), ConnectionState::Disconnected);
    let events: Vec<Event> = std::iter::from_fn(|| agent.poll_event()).collect();
    assert!(events.contains(&Event::ConnectionState(ConnectionState::Disconnected)));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Recovery(Recovery::Started { quiet_for }) if *quiet_for <= Duration::from_millis(1100)
    )));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Recovery(Recovery::Checking { pairs: 1 }))));
}

/// RFC 8838: a candidate trickled after every earlier pair was done is checked in the
/// next Ta slot, not whenever something else wakes the checklist (found with the
/// recovery work: the check timer had stopped, and the new pair waited for seconds).
#[test]
fn a_candidate_trickled_after_checks_went_idle_is_checked_at_once() {
    let start = Instant::now();
    let mut agent = agent(
        AgentConfig::default(),
        Role::Controlled,
        start,
        &["192.0.2.1:5000"],
        &[remote("198.51.100.7:6000", 65_535)],
    );
    let mut now = start;
    agent.handle_timeout(now);
    for t in requests(&mut agent) {
        agent.handle_receive(now, t.source, t.destination, &success(&t), |_, _| {});
    }
    // Idle for two seconds (only the agent's own timers).
    let _ = run_silent(&mut agent, now, now + Duration::from_secs(2));
    now += Duration::from_secs(2);
    assert!(agent.add_remote_candidate(now, remote("198.51.100.8:6000", 100)));
    let due = agent.poll_timeout().expect("the check timer runs");
    assert!(due <= now + Duration::from_millis(50), "{:?}", due - now);
    agent.handle_timeout(due.max(now));
    let sent = requests(&mut agent);
    assert!(
        sent.iter()
            .any(|t| t.destination == addr("198.51.100.8:6000")),
        "{sent:?}"
    );
}

/// RFC 8838 §14: after the peer's end-of-candidates, newly received candidates are
/// ignored (and counted); an ICE restart accepts candidates again.
#[test]
fn candidates_after_end_of_candidates_are_ignored_until_a_restart() {
    let now = Instant::now();
    let mut agent = agent(
        AgentConfig::default(),
        Role::Controlling,
        now,
        &["192.0.2.1:5000"],
        &[remote("198.51.100.7:6000", 65_535)],
    );
    agent.handle_end_of_remote_candidates(now);
    assert!(!agent.add_remote_candidate(now, remote("198.51.100.8:6000", 100)));
    assert_eq!(agent.stats().late_candidates, 1);
    assert_eq!(states(&agent).len(), 1, "no pair for it");
    agent.restart(now);
    agent.set_remote_credentials(peer());
    assert!(agent.add_remote_candidate(now, remote("198.51.100.8:6000", 100)));
}

/// After `close`, the agent answers no check and sends nothing (found in review: its
/// relays are released, so an answer "from" a relayed address would leave as plain UDP).
#[test]
fn a_closed_agent_answers_nothing() {
    let now = Instant::now();
    let mut agent = agent(
        AgentConfig::default(),
        Role::Controlled,
        now,
        &["192.0.2.1:5000"],
        &[remote("198.51.100.7:6000", 65_535)],
    );
    let _ = requests(&mut agent);
    let ours = agent.local_credentials().clone();
    let key = IntegrityKey::short_term(&ours.pwd).unwrap();
    let mut buf = [0u8; 256];
    let mut b = floe_stun::MessageBuilder::new(
        &mut buf,
        floe_stun::MessageType::BINDING_REQUEST,
        floe_stun::TransactionId([3; 12]),
    )
    .unwrap();
    let user = format!("{}:peer", ours.ufrag);
    b.add(&floe_stun::attributes::Username(&user)).unwrap();
    b.add(&floe_stun::attributes::Priority(1)).unwrap();
    b.add(&floe_stun::attributes::IceControlling(9)).unwrap();
    b.add_message_integrity(&key)
        .unwrap()
        .add_fingerprint()
        .unwrap();
    let check = b.finish().to_vec();
    agent.close(now);
    while agent.poll_transmit().is_some() {}
    agent.handle_receive(
        now,
        addr("192.0.2.1:5000"),
        addr("198.51.100.7:6000"),
        &check,
        |_, _| {},
    );
    assert!(
        agent.poll_transmit().is_none(),
        "a closed agent sent something"
    );
    assert_eq!(agent.poll_timeout(), None);
}

/// A candidate the peer withdrew (floe-peer's remove-candidates): its pairs leave and
/// are not formed again (a new host address pairs with the other remotes only), until an
/// authenticated check from it or the same candidate signalled again brings it back.
#[test]
fn a_withdrawn_remote_candidate_is_not_checked_until_it_comes_back() {
    let now = Instant::now();
    let gone = remote("198.51.100.7:6000", 65_535);
    let mut agent = agent(
        AgentConfig::default(),
        Role::Controlled,
        now,
        &["192.0.2.1:5000"],
        &[gone.clone(), remote("198.51.100.8:6000", 100)],
    );
    assert_eq!(states(&agent).len(), 2);
    assert!(agent.remove_remote_candidate(now, &gone));
    assert_eq!(
        states(&agent).iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        [addr("198.51.100.8:6000")]
    );
    // Unknown candidates are no-ops.
    assert!(!agent.remove_remote_candidate(now, &remote("203.0.113.1:1", 1)));
    // A new local address pairs only with what is left.
    agent.add_host(now, addr("192.0.2.2:5000"), 1);
    assert!(states(&agent)
        .iter()
        .all(|(r, _)| *r == addr("198.51.100.8:6000")));
    let mut t = now;
    for _ in 0..50 {
        agent.handle_timeout(t);
        assert!(requests(&mut agent)
            .iter()
            .all(|r| r.destination != addr("198.51.100.7:6000")));
        t += Duration::from_millis(50);
    }
    // Signalled again: its pairs are back.
    assert!(agent.add_remote_candidate(t, gone.clone()));
    assert_eq!(
        states(&agent)
            .iter()
            .filter(|(r, _)| *r == addr("198.51.100.7:6000"))
            .count(),
        2
    );
    // Withdrawn again, then an authenticated check from it: a pair forms again.
    assert!(agent.remove_remote_candidate(t, &gone));
    let check = check_from_peer(&agent, 9);
    agent.handle_receive(
        t,
        addr("192.0.2.1:5000"),
        addr("198.51.100.7:6000"),
        &check,
        |_, _| {},
    );
    assert!(states(&agent)
        .iter()
        .any(|(r, _)| *r == addr("198.51.100.7:6000")));
}
