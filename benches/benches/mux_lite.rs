//! 10,000 ICE-lite sessions on one UDP port (`floe_ice::mux::Mux` sorting datagrams to
//! their `Agent`), as a media server runs them: Binding checks from 10,000 peers, each
//! routed and answered, against a same-run baseline of what any STUN server must do per
//! check: parse, verify MESSAGE-INTEGRITY and FINGERPRINT, encode the signed answer.
//!
//! Goal (issue: floe inside other media software): checks handled per second >= 0.8x the
//! baseline. The memory per session (goal <= 8 KiB) is measured by
//! `tests/tests/agent_memory.rs` (`ten_thousand_lite_sessions_on_one_port_hold_at_most_8_kib_each`),
//! which has a counting allocator. Results: docs/benchmarks.md.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use floe_ice::mux::{Mux, Routed};
use floe_ice::{Agent, AgentConfig, Credentials, Role};
use floe_stun::attributes::{IceControlling, Priority, UseCandidate, Username, XorMappedAddress};
use floe_stun::{IntegrityKey, Message, MessageBuilder, MessageType, TransactionId};

const SESSIONS: usize = 10_000;
const PORT: &str = "10.0.0.1:3478";

fn peer_credentials(i: usize) -> Credentials {
    Credentials {
        ufrag: format!("p{i:07}"),
        pwd: format!("peer-password-{i:010}"),
    }
}

fn peer_address(i: usize) -> SocketAddr {
    SocketAddr::new(
        std::net::Ipv4Addr::from(0xC633_0000 + u32::try_from(i).unwrap()).into(),
        40_000 + u16::try_from(i % 20_000).unwrap(),
    )
}

/// A peer's check to session `i`, signed with the session's password.
fn check(agent: &Agent, i: usize, nominate: bool) -> Vec<u8> {
    let ours = agent.local_credentials();
    let key = IntegrityKey::short_term(&ours.pwd).unwrap();
    let user = format!("{}:{}", ours.ufrag, peer_credentials(i).ufrag);
    let mut buf = [0u8; 256];
    let mut tid = [0u8; 12];
    tid[..8].copy_from_slice(&u64::try_from(i).unwrap().to_be_bytes());
    let mut b =
        MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId(tid)).unwrap();
    b.add(&Username(&user)).unwrap();
    b.add(&Priority(1_853_824_767)).unwrap();
    b.add(&IceControlling(0x1234_5678_9abc_def0)).unwrap();
    if nominate {
        b.add(&UseCandidate).unwrap();
    }
    b.add_message_integrity(&key).unwrap();
    b.add_fingerprint().unwrap();
    b.finish().to_vec()
}

struct Server {
    /// The shared port's address (parsed once: the baseline parses no strings either).
    local: SocketAddr,
    mux: Mux<usize>,
    agents: Vec<Agent>,
    checks: Vec<Vec<u8>>,
    keys: Vec<IntegrityKey>,
    now: Instant,
}

/// The sessions, each answered once (a connected lite session).
fn server() -> Server {
    let now = Instant::now();
    let local: SocketAddr = PORT.parse().unwrap();
    let mut mux = Mux::new();
    let mut agents = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        let mut config = AgentConfig::default();
        config.lite = true;
        let mut a = Agent::new(config, Role::Controlled, now, u64::try_from(i).unwrap());
        a.add_host(now, local, 0);
        a.set_remote_credentials(peer_credentials(i));
        mux.add_session(i, &a.local_credentials().ufrag).unwrap();
        agents.push(a);
    }
    let checks: Vec<Vec<u8>> = (0..SESSIONS).map(|i| check(&agents[i], i, false)).collect();
    let nominating: Vec<Vec<u8>> = (0..SESSIONS).map(|i| check(&agents[i], i, true)).collect();
    let keys = agents
        .iter()
        .map(|a| IntegrityKey::short_term(&a.local_credentials().pwd).unwrap())
        .collect();
    let mut s = Server {
        local,
        mux,
        agents,
        checks,
        keys,
        now,
    };
    // Every session hears its peer once, nominating (as a controlling peer's check does
    // at once with aggressive nomination, or soon after): a peer-reflexive candidate, a
    // pair, an answer; the mux then holds the session's fast answer.
    for (i, first) in nominating.iter().enumerate() {
        let from = peer_address(i);
        assert_eq!(s.mux.route(local, from, first), Some(i));
        let a = &mut s.agents[i];
        a.handle_receive(now, local, from, first, |_, _| {});
        assert!(a.poll_transmit().is_some(), "session {i} did not answer");
        while a.poll_transmit().is_some() {}
        while a.poll_event().is_some() {}
        let fast = a.fast_answer().expect("nominated");
        s.mux.set_fast_answer(i, Some(&fast));
    }
    s
}

impl Server {
    /// Routes and answers session `i`'s check (the mux itself on the nominated pair, the
    /// agent told at most every 100 ms; the agent otherwise); returns the datagrams sent.
    fn handle(&mut self, i: usize, out: &mut [u8]) -> usize {
        let local = self.local;
        let from = peer_address(i);
        match self
            .mux
            .route_or_answer(self.now, local, from, &self.checks[i], out)
        {
            Routed::Answered { key, len, tell } => {
                black_box(&out[..len]);
                if tell {
                    self.agents[key].handle_check_answered(self.now, local, from);
                }
                1
            }
            Routed::Session(k) => {
                let agent = &mut self.agents[k];
                agent.handle_receive(self.now, local, from, &self.checks[i], |_, _| {});
                let mut sent = 0;
                while let Some(t) = agent.poll_transmit() {
                    black_box(&t);
                    sent += 1;
                }
                sent
            }
            Routed::Dropped => 0,
        }
    }
}

/// What any STUN server does per check: parse, verify, encode the signed answer.
fn baseline(check: &[u8], key: &IntegrityKey, from: SocketAddr, out: &mut [u8]) -> usize {
    let msg = Message::parse(check).unwrap();
    msg.verify(key).unwrap();
    let mut b =
        MessageBuilder::new(out, MessageType::BINDING_SUCCESS, msg.transaction_id()).unwrap();
    b.add(&XorMappedAddress(from)).unwrap();
    b.add_message_integrity(key).unwrap();
    b.add_fingerprint().unwrap();
    b.len()
}

fn bench(c: &mut Criterion) {
    let mut s = server();
    let mut g = c.benchmark_group("mux_lite");
    g.throughput(Throughput::Elements(u64::try_from(SESSIONS).unwrap()));
    g.measurement_time(Duration::from_secs(8));
    g.sample_size(20);
    let mut out = [0u8; 256];
    g.bench_function("route_and_answer_10k_sessions", |b| {
        b.iter(|| {
            s.now += Duration::from_millis(1);
            let mut sent = 0;
            for i in 0..SESSIONS {
                sent += s.handle(i, &mut out);
            }
            assert_eq!(sent, SESSIONS);
        });
    });
    paired_rounds(&mut s, &mut out);
    assert!(
        s.mux.stats().answered >= s.mux.stats().by_address / 2,
        "the mux answered too few: {:?}",
        s.mux.stats()
    );
    // The same checks with every answer left to the agents (no fast answers).
    for i in 0..SESSIONS {
        s.mux.set_fast_answer(i, None);
    }
    g.bench_function("route_to_agents_10k_sessions", |b| {
        b.iter(|| {
            s.now += Duration::from_millis(1);
            let mut sent = 0;
            for i in 0..SESSIONS {
                sent += s.handle(i, &mut out);
            }
            assert_eq!(sent, SESSIONS);
        });
    });
    g.bench_function("baseline_parse_verify_encode", |b| {
        b.iter(|| {
            let mut n = 0;
            for i in 0..SESSIONS {
                n += baseline(&s.checks[i], &s.keys[i], peer_address(i), &mut out);
            }
            black_box(n)
        });
    });
    g.finish();
}

/// The goal's ratio from alternating rounds (one pass over every session with the mux's
/// fast answers, then one of the baseline; medians): criterion's groups run minutes
/// apart, and on this shared machine their ratio drifts by 10 % between runs.
fn paired_rounds(s: &mut Server, out: &mut [u8]) {
    const ROUNDS: usize = 61;
    let per_check =
        |d: Duration| d.as_secs_f64() * 1e9 / f64::from(u32::try_from(SESSIONS).unwrap());
    let (mut mux, mut base, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        s.now += Duration::from_millis(1);
        let t = Instant::now();
        let mut sent = 0;
        for i in 0..SESSIONS {
            sent += s.handle(i, out);
        }
        let m = per_check(t.elapsed());
        assert_eq!(sent, SESSIONS);
        let t = Instant::now();
        let mut n = 0;
        for i in 0..SESSIONS {
            n += baseline(&s.checks[i], &s.keys[i], peer_address(i), out);
        }
        black_box(n);
        let b = per_check(t.elapsed());
        mux.push(m);
        base.push(b);
        ratios.push(b / m);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "mux_lite paired rounds ({ROUNDS}): mux fast answers {:.0} ns/check, baseline {:.0} ns/check; \
         checks/s ratio (mux / baseline) {:.3}, median of the rounds' ratios",
        median(&mut mux),
        median(&mut base),
        median(&mut ratios)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
