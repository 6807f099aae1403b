//! The mux answering checks on a lite session's nominated pair (`floe_ice::fast_answer`):
//! it answers exactly the checks the agent would answer without changing anything, with
//! the agent's own bytes, and leaves every other datagram to the agent.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_ice::mux::{Mux, Routed};
use floe_ice::{Agent, AgentConfig, ConnectionState, Credentials, Role};
use floe_stun::attributes::{
    IceControlled, IceControlling, Nomination, Priority, UseCandidate, Username,
};
use floe_stun::{AttrType, IntegrityKey, MessageBuilder, MessageType, TransactionId};

const LOCAL: &str = "10.0.0.1:3478";
const PEER: &str = "198.51.100.7:40000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn peer() -> Credentials {
    Credentials {
        ufrag: "peer".into(),
        pwd: "peer-password-0123456789".into(),
    }
}

/// The ways a test check can differ from a plain consent check.
#[derive(Clone, Copy, Default)]
#[allow(clippy::struct_excessive_bools)] // independent switches of a test's input
struct Check {
    tid: u8,
    use_candidate: bool,
    controlled: bool,
    nomination: bool,
    unknown_required: bool,
    wrong_ufrag: bool,
    wrong_key: bool,
    /// No ICE-CONTROLLING nor ICE-CONTROLLED.
    no_role: bool,
    /// MESSAGE-INTEGRITY-SHA256 after MESSAGE-INTEGRITY.
    sha256: bool,
}

fn check(agent: &Agent, c: Check) -> Vec<u8> {
    let ours = agent.local_credentials();
    let pwd = if c.wrong_key {
        "not-the-password-at-all"
    } else {
        &ours.pwd
    };
    let key = IntegrityKey::short_term(pwd).unwrap();
    let ufrag = if c.wrong_ufrag { "zzzz" } else { &ours.ufrag };
    let user = format!("{ufrag}:{}", peer().ufrag);
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([c.tid; 12]),
    )
    .unwrap();
    b.add(&Username(&user)).unwrap();
    b.add(&Priority(1_853_824_767)).unwrap();
    if c.controlled {
        b.add(&IceControlled(1)).unwrap();
    } else if !c.no_role {
        b.add(&IceControlling(1)).unwrap();
    }
    if c.use_candidate {
        b.add(&UseCandidate).unwrap();
    }
    if c.nomination {
        b.add(&Nomination(7)).unwrap();
    }
    if c.unknown_required {
        b.add_raw(AttrType(0x0042), &[0, 0, 0, 0]).unwrap();
    }
    b.add_message_integrity(&key).unwrap();
    if c.sha256 {
        b.add_message_integrity_sha256(&key).unwrap();
    }
    b.add_fingerprint().unwrap();
    b.finish().to_vec()
}

/// A lite session nominated by the peer's first check, its mux holding the fast answer.
fn nominated() -> (Agent, Mux<u32>, Instant) {
    let now = Instant::now();
    let mut config = AgentConfig::default();
    config.lite = true;
    let mut agent = Agent::new(config, Role::Controlled, now, 9);
    agent.add_host(now, addr(LOCAL), 0);
    agent.set_remote_credentials(peer());
    let mut mux = Mux::new();
    mux.add_session(1, &agent.local_credentials().ufrag)
        .unwrap();
    assert!(agent.fast_answer().is_none(), "nothing nominated yet");
    let first = check(
        &agent,
        Check {
            tid: 1,
            use_candidate: true,
            ..Check::default()
        },
    );
    assert_eq!(mux.route(addr(LOCAL), addr(PEER), &first), Some(1));
    agent.handle_receive(now, addr(LOCAL), addr(PEER), &first, |_, _| {});
    while agent.poll_transmit().is_some() {}
    while agent.poll_event().is_some() {}
    assert_eq!(agent.connection_state(), ConnectionState::Completed);
    // Nominated before its first timer: the timer does not send it back to Checking.
    agent.handle_timeout(now);
    assert_eq!(agent.connection_state(), ConnectionState::Completed);
    let fast = agent.fast_answer().expect("a nominated lite pair");
    assert_eq!(fast.tuple(), (addr(LOCAL), addr(PEER)));
    mux.set_fast_answer(1, Some(&fast));
    (agent, mux, now)
}

/// The agent's own answer to `bytes`.
fn agents_answer(agent: &mut Agent, now: Instant, bytes: &[u8]) -> Vec<Vec<u8>> {
    agent.handle_receive(now, addr(LOCAL), addr(PEER), bytes, |_, _| {});
    std::iter::from_fn(|| agent.poll_transmit())
        .map(|t| t.data)
        .collect()
}

#[test]
fn a_consent_check_on_the_nominated_pair_gets_the_agents_own_answer() {
    let (mut agent, mut mux, now) = nominated();
    for (i, use_candidate) in [(2u8, false), (3, true)] {
        let c = check(
            &agent,
            Check {
                tid: i,
                use_candidate,
                ..Check::default()
            },
        );
        let mut out = [0u8; 256];
        let Routed::Answered { key, len, tell } =
            mux.route_or_answer(now, addr(LOCAL), addr(PEER), &c, &mut out)
        else {
            panic!("not answered by the mux");
        };
        assert_eq!(key, 1);
        assert_eq!(tell, i == 2, "told at most every 100 ms");
        let theirs = agents_answer(&mut agent, now, &c);
        assert_eq!(
            theirs,
            vec![out[..len].to_vec()],
            "the same bytes as the agent's"
        );
    }
    assert_eq!(mux.stats().answered, 2);
}

#[test]
fn checks_the_agent_must_see_go_to_it() {
    let (agent, mut mux, now) = nominated();
    let must_see = [
        Check {
            controlled: true,
            ..Check::default()
        },
        Check {
            nomination: true,
            ..Check::default()
        },
        Check {
            unknown_required: true,
            ..Check::default()
        },
        Check {
            wrong_ufrag: true,
            ..Check::default()
        },
        Check {
            wrong_key: true,
            ..Check::default()
        },
        Check {
            no_role: true,
            ..Check::default()
        },
        // The agent verifies MESSAGE-INTEGRITY-SHA256 when present; the mux's record
        // holds only the MESSAGE-INTEGRITY key.
        Check {
            sha256: true,
            ..Check::default()
        },
    ];
    for (i, mut c) in must_see.into_iter().enumerate() {
        c.tid = 10 + i as u8;
        let bytes = check(&agent, c);
        let mut out = [0u8; 256];
        assert_eq!(
            mux.route_or_answer(now, addr(LOCAL), addr(PEER), &bytes, &mut out),
            Routed::Session(1),
            "case {i}"
        );
    }
    // Data and responses too; and another 5-tuple is not the nominated pair.
    let mut out = [0u8; 256];
    assert_eq!(
        mux.route_or_answer(now, addr(LOCAL), addr(PEER), b"\x80media", &mut out),
        Routed::Session(1)
    );
    let ok = check(
        &agent,
        Check {
            tid: 30,
            ..Check::default()
        },
    );
    assert_eq!(
        mux.route_or_answer(now, addr(LOCAL), addr("198.51.100.8:1"), &ok, &mut out),
        Routed::Session(1),
        "a new 5-tuple is routed by USERNAME to the agent"
    );
    assert_eq!(
        mux.route_or_answer(now, addr(LOCAL), addr("198.51.100.9:1"), b"junk", &mut out),
        Routed::Dropped
    );
    // Cleared (a restart, a close): the agent answers again.
    mux.set_fast_answer(1, None);
    assert_eq!(
        mux.route_or_answer(now, addr(LOCAL), addr(PEER), &ok, &mut out),
        Routed::Session(1)
    );
}

#[test]
fn the_agent_told_of_answered_checks_keeps_its_consent() {
    let (mut agent, mut mux, start) = nominated();
    // 40 s of checks every 2 s answered by the mux alone, the agent told when asked:
    // consent (30 s) never lapses.
    let mut now = start;
    for i in 0..20u8 {
        now += Duration::from_secs(2);
        agent.handle_timeout(now);
        let c = check(
            &agent,
            Check {
                tid: 40 + i,
                ..Check::default()
            },
        );
        let mut out = [0u8; 256];
        match mux.route_or_answer(now, addr(LOCAL), addr(PEER), &c, &mut out) {
            Routed::Answered { tell: true, .. } => {
                agent.handle_check_answered(now, addr(LOCAL), addr(PEER));
            }
            other => panic!("{other:?}"),
        }
        while agent.poll_transmit().is_some() {}
        while agent.poll_event().is_some() {}
    }
    assert_eq!(agent.connection_state(), ConnectionState::Completed);
    // Untold, the same silence fails consent (RFC 7675: 30 s), and the timers move on.
    let (mut quiet, _, start) = nominated();
    let end = start + Duration::from_secs(40);
    let mut t = start;
    for _ in 0..1000 {
        let Some(next) = quiet.poll_timeout().filter(|n| *n <= end) else {
            break;
        };
        // A timer once handled is not due again at the same instant (no busy loop).
        assert!(next > t || t == start, "timer stuck at {:?}", next - start);
        t = next.max(t);
        quiet.handle_timeout(t);
        while quiet.poll_transmit().is_some() {}
        while quiet.poll_event().is_some() {}
    }
    quiet.handle_timeout(end);
    assert_ne!(quiet.connection_state(), ConnectionState::Completed);
}

/// RFC 8445 §6.1.1: a lite agent stays controlled. A peer that also claims the controlled
/// role gets 487 whatever the tie-breakers, and the mux's fast answers (which answer only
/// the controlling side's checks) stay the agent's.
#[test]
fn a_lite_agent_never_takes_the_controlling_role() {
    let (mut agent, mut mux, now) = nominated();
    // ICE-CONTROLLED with tie-breaker 1: a full agent would switch to controlling here.
    let c = check(
        &agent,
        Check {
            tid: 60,
            controlled: true,
            ..Check::default()
        },
    );
    let sent = agents_answer(&mut agent, now, &c);
    assert_eq!(sent.len(), 1);
    let msg = floe_stun::Message::parse(&sent[0]).unwrap();
    assert_eq!(msg.class(), floe_stun::Class::Error);
    assert_eq!(agent.role(), Role::Controlled);
    // The next plain check: the mux and the agent still answer it the same.
    let c = check(
        &agent,
        Check {
            tid: 61,
            ..Check::default()
        },
    );
    let mut out = [0u8; 256];
    let Routed::Answered { len, .. } =
        mux.route_or_answer(now, addr(LOCAL), addr(PEER), &c, &mut out)
    else {
        panic!("not answered");
    };
    assert_eq!(
        agents_answer(&mut agent, now, &c),
        vec![out[..len].to_vec()]
    );
}
