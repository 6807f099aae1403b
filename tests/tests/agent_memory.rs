//! Memory per ICE agent: with 10 local and 10 remote candidates (100 pairs), an agent that
//! has connected and gone idle holds at most 8 KiB of heap (floe-ice issue goal), measured
//! with a counting global allocator. After nomination the agent prunes the pairs it no
//! longer needs (RFC 8445 §8.1.2) and gives back buffer capacity.
#![allow(unsafe_code)] // the GlobalAlloc below; it only counts and forwards to System.
#![allow(clippy::cast_possible_wrap)] // allocation sizes are far below isize::MAX

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_ice::{Agent, AgentConfig, ConnectionState, Role};

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

struct Counting;

fn add(n: isize) {
    // `try_with`: the thread-local may already be gone during thread teardown.
    let _ = LIVE.try_with(|c| c.set(c.get() + n));
}

// SAFETY: forwards every call unchanged to `System`; the counter is a thread-local Cell
// with a const initializer, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

fn hosts(prefix: &str) -> Vec<SocketAddr> {
    (1..=10)
        .map(|i| format!("{prefix}.{i}:5000").parse().unwrap())
        .collect()
}

/// Delivers every pending transmit of `from` to `to` when it is addressed to one of
/// `to_hosts` (a flat network where everything reaches everything).
fn deliver(now: Instant, from: &mut Agent, to: &mut Agent, to_hosts: &[SocketAddr]) -> bool {
    let mut any = false;
    while let Some(t) = from.poll_transmit() {
        any = true;
        if to_hosts.contains(&t.destination) {
            to.handle_receive(now, t.destination, t.source, &t.data, |_, _| {});
        }
    }
    any
}

/// Builds two agents with 10 host candidates each, connects them in virtual time and lets
/// them idle for `idle`; returns them.
fn connected_pair(idle: Duration) -> (Agent, Agent) {
    let mut now = Instant::now();
    let (ha, hb) = (hosts("10.0.0"), hosts("10.1.0"));
    let mut a = Agent::new(AgentConfig::default(), Role::Controlling, now, 1);
    let mut b = Agent::new(AgentConfig::default(), Role::Controlled, now, 2);
    for (i, h) in ha.iter().enumerate() {
        a.add_host(now, *h, i);
    }
    for (i, h) in hb.iter().enumerate() {
        b.add_host(now, *h, i);
    }
    a.set_remote_credentials(b.local_credentials().clone());
    b.set_remote_credentials(a.local_credentials().clone());
    let (ca, cb): (Vec<_>, Vec<_>) = (
        a.local_candidates().cloned().collect(),
        b.local_candidates().cloned().collect(),
    );
    for c in cb {
        a.add_remote_candidate(now, c);
    }
    for c in ca {
        b.add_remote_candidate(now, c);
    }
    a.handle_end_of_remote_candidates(now);
    b.handle_end_of_remote_candidates(now);
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    let end_of_setup = now + Duration::from_secs(10);
    let mut completed_at = None;
    loop {
        while deliver(now, &mut a, &mut b, &hb) || deliver(now, &mut b, &mut a, &ha) {}
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
        let done = a.connection_state() == ConnectionState::Completed
            && b.connection_state() == ConnectionState::Completed;
        if done && completed_at.is_none() {
            completed_at = Some(now);
        }
        if completed_at.is_some_and(|t| now >= t + idle) {
            break;
        }
        assert!(now < end_of_setup + idle, "agents did not complete");
        let next = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        now = next.max(now);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    (a, b)
}

#[test]
fn an_idle_connected_agent_with_ten_by_ten_candidates_holds_at_most_8_kib() {
    let before = live();
    let (a, b) = connected_pair(Duration::from_secs(12));
    drop(b);
    let with_a = live();
    drop(a);
    let after = live();
    let per_agent = with_a - after;
    println!("heap held by one idle connected agent (10x10 candidates): {per_agent} bytes");
    println!(
        "and the inline size of Agent: {} bytes",
        std::mem::size_of::<Agent>()
    );
    assert!(after - before <= 64, "leak: {} bytes", after - before);
    assert!(
        per_agent + std::mem::size_of::<Agent>() as isize <= 8 * 1024,
        "{per_agent} bytes of heap + {} inline",
        std::mem::size_of::<Agent>()
    );
}

/// A media server's port (issue: floe inside other media software): 10,000 ICE-lite
/// sessions behind one `floe_ice::mux::Mux`, each having answered its peer's check (a
/// peer-reflexive candidate, a pair, a selected path), hold at most 8 KiB each: the
/// `Agent` struct, its heap and its share of the mux's maps.
#[test]
fn ten_thousand_lite_sessions_on_one_port_hold_at_most_8_kib_each() {
    use floe_ice::mux::Mux;
    use floe_ice::Credentials;
    use floe_stun::attributes::{IceControlling, Priority, Username};
    use floe_stun::{IntegrityKey, MessageBuilder, MessageType, TransactionId};

    const SESSIONS: usize = 10_000;
    let now = Instant::now();
    let port: SocketAddr = "10.0.0.1:3478".parse().unwrap();
    let before = live();
    let mut mux = Mux::new();
    let mut agents = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        let mut config = AgentConfig::default();
        config.lite = true;
        let mut a = Agent::new(config, Role::Controlled, now, i as u64);
        a.add_host(now, port, 0);
        a.set_remote_credentials(Credentials {
            ufrag: format!("p{i:07}"),
            pwd: format!("peer-password-{i:010}"),
        });
        mux.add_session(i, &a.local_credentials().ufrag).unwrap();
        agents.push(a);
    }
    let held_before_checks = live() - before;
    for i in 0..SESSIONS {
        let from = SocketAddr::new(
            std::net::Ipv4Addr::from(0xC633_0000 + i as u32).into(),
            40_000,
        );
        let check = {
            let ours = agents[i].local_credentials();
            let key = IntegrityKey::short_term(&ours.pwd).unwrap();
            let user = format!("{}:p{i:07}", ours.ufrag);
            let mut buf = [0u8; 256];
            let mut b = MessageBuilder::new(
                &mut buf,
                MessageType::BINDING_REQUEST,
                TransactionId([1; 12]),
            )
            .unwrap();
            b.add(&Username(&user)).unwrap();
            b.add(&Priority(1_853_824_767)).unwrap();
            b.add(&IceControlling(7)).unwrap();
            b.add_message_integrity(&key).unwrap();
            b.add_fingerprint().unwrap();
            b.finish().to_vec()
        };
        let k = mux.route(port, from, &check).expect("routed by its ufrag");
        agents[k].handle_receive(now, port, from, &check, |_, _| {});
        assert!(agents[k].poll_transmit().is_some(), "session {i} answered");
        while agents[k].poll_event().is_some() {}
        assert!(agents[k].selected_pair().is_some());
    }
    let held = live() - before;
    let per_session = held / SESSIONS as isize;
    println!(
        "10,000 lite sessions on one port: {held} bytes, {per_session} bytes per session ({} before any check; Agent struct {} bytes)",
        held_before_checks / SESSIONS as isize,
        std::mem::size_of::<Agent>()
    );
    assert!(per_session <= 8 * 1024, "{per_session} bytes per session");
    assert_eq!(mux.stats().by_ufrag, SESSIONS as u64);
}
