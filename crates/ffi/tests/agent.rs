//! The C API from the caller's side, through the exported functions only: two agents
//! connect over an in-memory network in virtual time (microseconds), exchange data both
//! ways, and every misuse gets its code and message. CI runs these under
//! AddressSanitizer (`.ci/run`).

#![allow(unsafe_code)]
// A test of a C API calls it the way C does: several calls per unsafe block, and `&x`
// for `const T *` arguments.
#![allow(clippy::multiple_unsafe_ops_per_block, clippy::borrow_as_ptr)]

use std::ffi::{CStr, CString};
use std::ptr;

use floe::*;

fn addr(s: &str) -> FloeAddr {
    let text = CString::new(s).unwrap();
    let mut out = FloeAddr::default();
    // SAFETY: a valid C string and a writable FloeAddr.
    let rc = unsafe { floe_addr_parse(text.as_ptr(), &mut out) };
    assert_eq!(rc, FloeResult::Ok);
    out
}

fn last_error() -> String {
    // SAFETY: floe_last_error returns a valid C string for this thread.
    unsafe { CStr::from_ptr(floe_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Takes a `char *` floe returned, copies it, and frees it.
fn take(s: *mut std::ffi::c_char) -> String {
    assert!(!s.is_null(), "{}", last_error());
    // SAFETY: a string floe returned, not freed yet.
    let out = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
    // SAFETY: freed once.
    unsafe { floe_string_free(s) };
    out
}

struct Peer {
    agent: *mut FloeAgent,
    host: FloeAddr,
    connected: bool,
    state: FloeConnectionState,
    recovery: Vec<(FloeRecovery, u64)>,
    candidates: Vec<CString>,
    removed: Vec<String>,
    data: Vec<Vec<u8>>,
}

impl Peer {
    fn new(controlling: bool, seed: u64, host: &str) -> Peer {
        Peer::build(controlling, false, seed, host)
    }

    fn build(controlling: bool, lite: bool, seed: u64, host: &str) -> Peer {
        let mut config = floe_agent_config_default();
        config.controlling = controlling;
        config.lite = lite;
        config.seed = seed;
        // SAFETY: a valid config.
        let agent = unsafe { floe_agent_new(&config, 0) };
        assert!(!agent.is_null(), "{}", last_error());
        let host = addr(host);
        // SAFETY: a live agent and a valid address.
        let rc = unsafe { floe_agent_add_host(agent, 0, &host, 0) };
        assert_eq!(rc, FloeResult::Ok);
        Peer {
            agent,
            host,
            connected: false,
            state: FloeConnectionState::New,
            recovery: Vec::new(),
            candidates: Vec::new(),
            removed: Vec::new(),
            data: Vec::new(),
        }
    }

    fn events(&mut self) {
        let mut e = std::mem::MaybeUninit::<FloeEvent>::uninit();
        // SAFETY: a live agent and a writable event; `text` is read before the next call.
        while unsafe { floe_agent_poll_event(self.agent, e.as_mut_ptr()) } {
            // SAFETY: poll_event returned true, so it wrote the event.
            let e = unsafe { e.assume_init_ref() };
            match e.kind {
                FloeEventKind::LocalCandidate => {
                    assert!(!e.text.is_null());
                    // SAFETY: non-NULL text of the event just polled.
                    let line = unsafe { CStr::from_ptr(e.text) }.to_owned();
                    assert!(line.to_str().unwrap().starts_with("candidate:"), "{line:?}");
                    self.candidates.push(line);
                }
                FloeEventKind::LocalCandidatesRemoved => {
                    assert!(!e.text.is_null());
                    // SAFETY: non-NULL text of the event just polled.
                    let lines = unsafe { CStr::from_ptr(e.text) }
                        .to_str()
                        .unwrap()
                        .to_owned();
                    self.removed.extend(lines.split('\n').map(str::to_owned));
                }
                FloeEventKind::Recovery => self.recovery.push((e.recovery, e.duration_us)),
                FloeEventKind::ConnectionState => {
                    self.state = e.connection_state;
                    if matches!(
                        e.connection_state,
                        FloeConnectionState::Connected | FloeConnectionState::Completed
                    ) {
                        self.connected = true;
                    }
                }
                _ => {}
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SAFETY: the agent is live and freed once.
        unsafe { floe_agent_free(self.agent) };
    }
}

/// Delivers every transmit of `from` to `to` (the only other host) at `now`.
fn deliver(from: &mut Peer, to: &mut Peer, now: u64) -> usize {
    let mut n = 0;
    let mut t = std::mem::MaybeUninit::<FloeTransmit>::uninit();
    // SAFETY: a live agent and a writable transmit.
    while unsafe { floe_agent_poll_transmit(from.agent, t.as_mut_ptr()) } {
        // SAFETY: written by poll_transmit; its data is valid until the next call on
        // `from`, and is copied before that.
        let t = unsafe { t.assume_init_ref() };
        assert_eq!(t.transport, FloeTransport::Udp);
        assert_eq!(t.source, from.host);
        assert_eq!(t.destination, to.host);
        // SAFETY: `len` bytes at `data`, per the API.
        let bytes = unsafe { std::slice::from_raw_parts(t.data, t.len) }.to_vec();
        let mut r = std::mem::MaybeUninit::<FloeReceived>::uninit();
        // SAFETY: live agent, valid addresses, `bytes` readable, `r` writable.
        let rc = unsafe {
            floe_agent_handle_receive(
                to.agent,
                now,
                &to.host,
                &from.host,
                bytes.as_ptr(),
                bytes.len(),
                r.as_mut_ptr(),
            )
        };
        assert_eq!(rc, FloeResult::Ok, "{}", last_error());
        // SAFETY: handle_receive returned OK, so it wrote `r`.
        let r = unsafe { r.assume_init() };
        if r.is_data {
            assert_eq!(r.from, from.host);
            // The data points into our own buffer.
            let start = bytes.as_ptr() as usize;
            assert!(r.data as usize >= start && r.data as usize + r.len <= start + bytes.len());
            // SAFETY: a slice of `bytes`, which is alive.
            to.data
                .push(unsafe { std::slice::from_raw_parts(r.data, r.len) }.to_vec());
        }
        n += 1;
    }
    n
}

fn exchange_credentials(a: &Peer, b: &Peer) {
    for (from, to) in [(a, b), (b, a)] {
        // SAFETY: live agents.
        let ufrag = CString::new(take(unsafe { floe_agent_local_ufrag(from.agent) })).unwrap();
        // SAFETY: live agent.
        let pwd = CString::new(take(unsafe { floe_agent_local_pwd(from.agent) })).unwrap();
        // SAFETY: live agent, valid strings.
        let rc =
            unsafe { floe_agent_set_remote_credentials(to.agent, ufrag.as_ptr(), pwd.as_ptr()) };
        assert_eq!(rc, FloeResult::Ok);
    }
}

fn trickle(from: &mut Peer, to: &Peer, now: u64) {
    for line in from.candidates.drain(..) {
        // SAFETY: live agent, valid string.
        let rc = unsafe { floe_agent_add_remote_candidate(to.agent, now, line.as_ptr()) };
        assert_eq!(rc, FloeResult::Ok, "{}", last_error());
    }
}

/// Runs both agents until both are connected, in virtual time; returns the time.
fn connect(a: &mut Peer, b: &mut Peer) -> u64 {
    exchange_credentials(a, b);
    let mut now = 0u64;
    for _ in 0..10_000 {
        a.events();
        b.events();
        trickle(a, b, now);
        trickle(b, a, now);
        // SAFETY: (both) live agents.
        unsafe {
            floe_agent_handle_end_of_remote_candidates(a.agent, now);
            floe_agent_handle_end_of_remote_candidates(b.agent, now);
        }
        let moved = deliver(a, b, now) + deliver(b, a, now);
        a.events();
        b.events();
        if a.connected && b.connected {
            return now;
        }
        if moved == 0 {
            let mut next = u64::MAX;
            for p in [&*a, &*b] {
                let mut at = 0u64;
                // SAFETY: live agent, writable u64.
                if unsafe { floe_agent_poll_timeout(p.agent, &mut at) } {
                    next = next.min(at);
                }
            }
            assert_ne!(next, u64::MAX, "no timer and nothing to send");
            assert!(next >= now, "a timer in the past: {next} < {now}");
            now = next;
            for p in [&*a, &*b] {
                // SAFETY: live agent.
                let rc = unsafe { floe_agent_handle_timeout(p.agent, now) };
                assert_eq!(rc, FloeResult::Ok);
            }
        }
    }
    panic!("no connection");
}

fn send(from: &mut Peer, to: &mut Peer, now: u64, data: &[u8]) {
    let mut t = std::mem::MaybeUninit::<FloeTransmit>::uninit();
    // SAFETY: live agent, readable data, writable transmit.
    let rc = unsafe { floe_agent_send(from.agent, data.as_ptr(), data.len(), t.as_mut_ptr()) };
    assert_eq!(rc, FloeResult::Ok, "{}", last_error());
    // SAFETY: send returned OK, so it wrote `t`.
    let t = unsafe { t.assume_init_ref() };
    // SAFETY: `len` bytes at `data`, valid until the next call on `from`.
    let bytes = unsafe { std::slice::from_raw_parts(t.data, t.len) }.to_vec();
    assert_eq!(t.destination, to.host);
    let mut r = std::mem::MaybeUninit::<FloeReceived>::uninit();
    // SAFETY: as in `deliver`.
    let rc = unsafe {
        floe_agent_handle_receive(
            to.agent,
            now,
            &to.host,
            &from.host,
            bytes.as_ptr(),
            bytes.len(),
            r.as_mut_ptr(),
        )
    };
    assert_eq!(rc, FloeResult::Ok);
    // SAFETY: written by handle_receive.
    let r = unsafe { r.assume_init() };
    assert!(r.is_data);
    // SAFETY: a slice of `bytes`.
    to.data
        .push(unsafe { std::slice::from_raw_parts(r.data, r.len) }.to_vec());
}

#[test]
fn two_agents_connect_and_exchange_data_through_the_c_api() {
    let mut a = Peer::new(true, 1, "10.0.0.1:5000");
    let mut b = Peer::new(false, 2, "10.0.0.2:6000");
    let now = connect(&mut a, &mut b);
    // A direct host pair on a lossless network: well under a second of virtual time.
    assert!(now < 1_000_000, "connected only at {now} µs");
    send(&mut a, &mut b, now, b"hello from a");
    send(&mut b, &mut a, now, b"hello from b");
    assert_eq!(b.data, [b"hello from a".to_vec()]);
    assert_eq!(a.data, [b"hello from b".to_vec()]);
    // SAFETY: live agents.
    unsafe {
        assert!(matches!(
            floe_agent_connection_state(a.agent),
            FloeConnectionState::Connected | FloeConnectionState::Completed
        ));
        assert_eq!(floe_agent_close(a.agent, now), FloeResult::Ok);
        assert_eq!(
            floe_agent_connection_state(a.agent),
            FloeConnectionState::Closed
        );
    }
}

/// Runs `p`'s timers alone until `end` (µs), dropping everything it sends.
fn run_alone(p: &mut Peer, mut now: u64, end: u64) -> u64 {
    let mut t = std::mem::MaybeUninit::<FloeTransmit>::uninit();
    loop {
        // SAFETY: live agent, writable transmit (dropped unread).
        while unsafe { floe_agent_poll_transmit(p.agent, t.as_mut_ptr()) } {}
        let mut at = 0u64;
        // SAFETY: live agent, writable u64.
        if !unsafe { floe_agent_poll_timeout(p.agent, &mut at) } || at > end {
            p.events();
            return now.max(end);
        }
        now = at.max(now);
        // SAFETY: live agent.
        let rc = unsafe { floe_agent_handle_timeout(p.agent, now) };
        assert_eq!(rc, FloeResult::Ok);
    }
}

#[test]
fn a_silent_path_is_disconnected_with_recovery_events_and_a_fast_path_keeps_it_alive() {
    let mut a = Peer::new(true, 7, "10.0.0.1:5000");
    let mut b = Peer::new(false, 8, "10.0.0.2:6000");
    let now = connect(&mut a, &mut b);
    // Data reported by the caller's fast path every 200 ms: the pair stays live.
    let mut t = now;
    for _ in 0..10 {
        t += 200_000;
        // SAFETY: live agent, readable addresses.
        let rc = unsafe { floe_agent_handle_data_received(a.agent, t, &a.host, &b.host) };
        assert_eq!(rc, FloeResult::Ok);
        t = run_alone(&mut a, t, t);
    }
    assert!(a.recovery.is_empty(), "{:?}", a.recovery);
    assert!(matches!(
        a.state,
        FloeConnectionState::Connected | FloeConnectionState::Completed
    ));
    // Then nothing arrives for 1.5 s: disconnected, recovery started after ~1 s of quiet.
    let t = run_alone(&mut a, t, t + 1_500_000);
    assert_eq!(a.state, FloeConnectionState::Disconnected);
    // SAFETY: live agent.
    let state = unsafe { floe_agent_connection_state(a.agent) };
    assert_eq!(state, FloeConnectionState::Disconnected);
    let (step, quiet_us) = a.recovery[0];
    assert_eq!(step, FloeRecovery::Started);
    assert!((1_000_000..1_200_000).contains(&quiet_us), "{quiet_us}");
    assert_eq!(a.recovery[1].0, FloeRecovery::Checking);
    // The address goes away: accepted, and refused when NULL.
    // SAFETY: live agent, readable address; then a NULL address.
    unsafe {
        assert_eq!(floe_agent_remove_host(a.agent, t, &a.host), FloeResult::Ok);
        assert_eq!(
            floe_agent_remove_host(a.agent, t, ptr::null()),
            FloeResult::NullPointer
        );
        assert_eq!(
            floe_agent_handle_data_received(a.agent, t, &a.host, ptr::null()),
            FloeResult::NullPointer
        );
    }
    // Nothing can recover without an address: after the recovery timeout, a restart is
    // asked for.
    run_alone(&mut a, t, t + 6_000_000);
    assert!(
        a.recovery
            .iter()
            .any(|r| r.0 == FloeRecovery::RestartNeeded),
        "{:?}",
        a.recovery
    );
}

#[test]
fn a_removed_host_is_announced_and_the_peer_withdraws_it_and_recovers_at_once() {
    let mut a = Peer::new(true, 7, "10.0.0.1:5000");
    let mut b = Peer::new(false, 8, "10.0.0.2:6000");
    let now = connect(&mut a, &mut b);
    // SAFETY: live agent, readable address.
    let rc = unsafe { floe_agent_remove_host(a.agent, now, &a.host) };
    assert_eq!(rc, FloeResult::Ok);
    a.events();
    assert_eq!(a.removed.len(), 1, "{:?}", a.removed);
    assert!(
        a.removed[0].contains("10.0.0.1 5000 typ host"),
        "{:?}",
        a.removed
    );
    let line = CString::new(a.removed[0].clone()).unwrap();
    // SAFETY: live agent, NUL-terminated lines; then NULL and garbage.
    unsafe {
        assert_eq!(
            floe_agent_remove_remote_candidate(b.agent, now, line.as_ptr()),
            FloeResult::Ok
        );
        assert_eq!(
            floe_agent_remove_remote_candidate(b.agent, now, ptr::null()),
            FloeResult::NullPointer
        );
        let bad = CString::new("candidate:x").unwrap();
        assert_eq!(
            floe_agent_remove_remote_candidate(b.agent, now, bad.as_ptr()),
            FloeResult::InvalidArgument
        );
    }
    b.events();
    // The peer's path used it: recovery started at once, not after a second of quiet.
    assert_eq!(b.state, FloeConnectionState::Disconnected);
    assert_eq!(b.recovery.first().map(|r| r.0), Some(FloeRecovery::Started));
}

#[test]
fn an_ice_restart_reconnects_with_new_credentials() {
    let mut a = Peer::new(true, 3, "10.0.0.1:5000");
    let mut b = Peer::new(false, 4, "10.0.0.2:6000");
    let now = connect(&mut a, &mut b);
    // SAFETY: live agent.
    let old = take(unsafe { floe_agent_local_ufrag(a.agent) });
    // SAFETY: (both) live agents.
    unsafe {
        assert_eq!(floe_agent_restart(a.agent, now), FloeResult::Ok);
        assert_eq!(floe_agent_restart(b.agent, now), FloeResult::Ok);
    }
    // SAFETY: live agent.
    assert_ne!(take(unsafe { floe_agent_local_ufrag(a.agent) }), old);
    a.connected = false;
    b.connected = false;
    let now = connect(&mut a, &mut b);
    send(&mut a, &mut b, now, b"after restart");
    assert_eq!(b.data, [b"after restart".to_vec()]);
}

#[test]
fn misuse_gets_a_code_and_a_message() {
    let a = Peer::new(true, 5, "10.0.0.1:5000");
    let mut t = std::mem::MaybeUninit::<FloeTransmit>::uninit();
    // SAFETY: (all below) NULL or valid pointers; the API must refuse, not crash.
    unsafe {
        assert_eq!(
            floe_agent_send(a.agent, b"x".as_ptr(), 1, t.as_mut_ptr()),
            FloeResult::InvalidState
        );
        assert!(last_error().contains("not connected"), "{}", last_error());

        assert_eq!(
            floe_agent_add_host(ptr::null_mut(), 0, &a.host, 0),
            FloeResult::NullPointer
        );
        assert_eq!(last_error(), "agent is NULL");
        assert_eq!(
            floe_agent_add_host(a.agent, 0, ptr::null(), 0),
            FloeResult::NullPointer
        );

        let bad_family = FloeAddr {
            family: 5,
            port: 1,
            ip: [0; 16],
        };
        assert_eq!(
            floe_agent_add_host(a.agent, 0, &bad_family, 0),
            FloeResult::InvalidArgument
        );
        assert!(last_error().contains("family 5"), "{}", last_error());

        let line = CString::new("candidate:1 1 udp 1 10.0.0.9 notaport typ host").unwrap();
        assert_eq!(
            floe_agent_add_remote_candidate(a.agent, 0, line.as_ptr()),
            FloeResult::InvalidArgument
        );
        assert!(
            last_error().starts_with("candidate line"),
            "{}",
            last_error()
        );
        // A kind floe does not use is ignored, not an error.
        let tcp = CString::new("a=candidate:1 1 tcp 1 10.0.0.9 9 typ host tcptype active").unwrap();
        assert_eq!(
            floe_agent_add_remote_candidate(a.agent, 0, tcp.as_ptr()),
            FloeResult::Ok
        );

        let not_utf8 = [0xffu8, 0xfe, 0];
        assert_eq!(
            floe_agent_set_remote_credentials(
                a.agent,
                not_utf8.as_ptr().cast(),
                not_utf8.as_ptr().cast()
            ),
            FloeResult::InvalidArgument
        );
        assert_eq!(last_error(), "ufrag is not UTF-8");

        let user = CString::new("u").unwrap();
        assert_eq!(
            floe_agent_add_turn_server(
                a.agent,
                0,
                &a.host,
                &a.host,
                9,
                user.as_ptr(),
                user.as_ptr()
            ),
            FloeResult::InvalidArgument
        );
        assert!(last_error().contains("transport 9"));

        assert_eq!(
            floe_agent_handle_receive(
                a.agent,
                0,
                &a.host,
                &a.host,
                ptr::null(),
                5,
                ptr::null_mut()
            ),
            FloeResult::NullPointer
        );
        // Garbage is accepted and dropped.
        let junk = [0u8; 3];
        assert_eq!(
            floe_agent_handle_receive(
                a.agent,
                0,
                &a.host,
                &a.host,
                junk.as_ptr(),
                3,
                ptr::null_mut()
            ),
            FloeResult::Ok
        );
        assert!(!floe_agent_poll_transmit(a.agent, ptr::null_mut()));
        assert!(!floe_agent_poll_event(ptr::null_mut(), ptr::null_mut()));
        assert_eq!(
            floe_agent_connection_state(ptr::null_mut()),
            FloeConnectionState::Failed
        );
        floe_agent_free(ptr::null_mut());
        floe_string_free(ptr::null_mut());
    }
}

#[test]
fn addresses_parse_and_format_both_families() {
    for text in ["192.0.2.1:3478", "[2001:db8::1]:443", "0.0.0.0:0"] {
        let a = addr(text);
        let mut buf = [0 as std::ffi::c_char; 48];
        // SAFETY: a valid address and a 48-byte buffer.
        let n = unsafe { floe_addr_format(&a, buf.as_mut_ptr(), buf.len()) };
        // SAFETY: NUL-terminated by floe_addr_format.
        let back = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert_eq!((n, back), (text.len(), text));
    }
    let mut small = [0 as std::ffi::c_char; 4];
    // SAFETY: a valid address and a 4-byte buffer.
    let rc = unsafe { floe_addr_format(&addr("192.0.2.1:1"), small.as_mut_ptr(), 4) };
    assert_eq!(rc, 0);
    let bad = CString::new("192.0.2.1").unwrap();
    let mut out = FloeAddr::default();
    // SAFETY: valid pointers.
    let rc = unsafe { floe_addr_parse(bad.as_ptr(), &mut out) };
    assert_eq!(rc, FloeResult::InvalidArgument);
    // SAFETY: floe_version returns a static string.
    let v = unsafe { CStr::from_ptr(floe_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
}

/// Every transmit of `from`, delivered over one shared server port: routed by the mux to
/// the lite agent whose session it is, and the answers back to the peer they name.
fn deliver_muxed(mux: *mut FloeMux, from: &mut Peer, servers: &mut [Peer], now: u64) -> usize {
    let mut n = 0;
    let mut t = std::mem::MaybeUninit::<FloeTransmit>::uninit();
    // SAFETY: a live agent and a writable transmit.
    while unsafe { floe_agent_poll_transmit(from.agent, t.as_mut_ptr()) } {
        // SAFETY: written by poll_transmit; copied before the next call on `from`.
        let t = unsafe { t.assume_init_ref() };
        // SAFETY: `len` bytes at `data`, per the API.
        let bytes = unsafe { std::slice::from_raw_parts(t.data, t.len) }.to_vec();
        let (dst, src) = (t.destination, t.source);
        let mut key = u64::MAX;
        // SAFETY: live mux, readable addresses and bytes, writable key.
        let routed =
            unsafe { floe_mux_route(mux, &dst, &src, bytes.as_ptr(), bytes.len(), &mut key) };
        assert!(
            routed,
            "a check from a known peer is routed: {}",
            last_error()
        );
        let s = &mut servers[usize::try_from(key).unwrap()];
        // SAFETY: live agent, valid addresses, readable bytes; `out` NULL drops data.
        let rc = unsafe {
            floe_agent_handle_receive(
                s.agent,
                now,
                &dst,
                &src,
                bytes.as_ptr(),
                bytes.len(),
                ptr::null_mut(),
            )
        };
        assert_eq!(rc, FloeResult::Ok);
        // The lite agent's answers go back to whoever the peer is.
        let mut a = std::mem::MaybeUninit::<FloeTransmit>::uninit();
        // SAFETY: live agent, writable transmit.
        while unsafe { floe_agent_poll_transmit(s.agent, a.as_mut_ptr()) } {
            // SAFETY: written by poll_transmit.
            let a = unsafe { a.assume_init_ref() };
            assert_eq!(
                a.destination, from.host,
                "the answer goes to the peer that asked"
            );
            // SAFETY: `len` bytes at `data`.
            let answer = unsafe { std::slice::from_raw_parts(a.data, a.len) }.to_vec();
            // SAFETY: live agent, valid addresses and bytes.
            let rc = unsafe {
                floe_agent_handle_receive(
                    from.agent,
                    now,
                    &from.host,
                    &a.source,
                    answer.as_ptr(),
                    answer.len(),
                    ptr::null_mut(),
                )
            };
            assert_eq!(rc, FloeResult::Ok);
        }
        n += 1;
    }
    n
}

/// A media server's port through the C API: two ICE-lite agents share 10.0.0.1:3478;
/// `floe_mux_route` gives each peer's checks to its own session (by the ufrag, then by the
/// address), both peers connect, and a stranger's datagram is nobody's.
#[test]
fn a_mux_gives_each_peer_its_own_lite_session_on_one_port() {
    let port = "10.0.0.1:3478";
    let mut servers = vec![
        Peer::build(false, true, 11, port),
        Peer::build(false, true, 12, port),
    ];
    let mut peers = vec![
        Peer::new(true, 21, "192.0.2.1:5000"),
        Peer::new(true, 22, "192.0.2.2:5000"),
    ];
    let mux = floe_mux_new();
    assert!(!mux.is_null());
    for (i, (s, p)) in servers.iter_mut().zip(peers.iter_mut()).enumerate() {
        exchange_credentials(s, p);
        // SAFETY: live agent.
        let ufrag = CString::new(take(unsafe { floe_agent_local_ufrag(s.agent) })).unwrap();
        // SAFETY: live mux, valid string.
        let rc = unsafe { floe_mux_add_session(mux, i as u64, ufrag.as_ptr()) };
        assert_eq!(rc, FloeResult::Ok);
        // A ufrag taken already is refused.
        // SAFETY: as above.
        let rc = unsafe { floe_mux_add_session(mux, 99, ufrag.as_ptr()) };
        assert_eq!(rc, FloeResult::InvalidArgument);
        s.events();
        trickle(s, p, 0);
        // SAFETY: live agent.
        unsafe { floe_agent_handle_end_of_remote_candidates(p.agent, 0) };
    }
    let mut now = 0u64;
    while !peers.iter().all(|p| p.connected) {
        assert!(now < 10_000_000, "not connected in 10 s");
        for p in &mut peers {
            deliver_muxed(mux, p, &mut servers, now);
            p.events();
        }
        now += 10_000;
        for p in peers.iter().chain(servers.iter()) {
            // SAFETY: live agent.
            unsafe { floe_agent_handle_timeout(p.agent, now) };
        }
    }
    for s in &mut servers {
        s.events();
        assert!(s.connected);
    }
    // A stranger: nobody's, and no error.
    let stranger = addr("203.0.113.9:1234");
    let local = addr(port);
    let mut key = 7u64;
    // SAFETY: live mux, readable addresses and bytes, writable key.
    let routed = unsafe { floe_mux_route(mux, &local, &stranger, b"hello".as_ptr(), 5, &mut key) };
    assert!(!routed);
    assert_eq!(key, 7);
    // SAFETY: live mux; NULL key is refused.
    unsafe {
        assert!(!floe_mux_route(
            mux,
            &local,
            &stranger,
            b"x".as_ptr(),
            1,
            ptr::null_mut()
        ));
        assert_eq!(floe_mux_remove_session(mux, 0), FloeResult::Ok);
        assert_eq!(
            floe_mux_remove_session(ptr::null_mut(), 0),
            FloeResult::NullPointer
        );
        floe_mux_free(mux);
    }
}
