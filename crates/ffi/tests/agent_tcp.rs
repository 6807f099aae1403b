//! ICE-TCP (RFC 6544) through the C API: two agents whose UDP is dropped connect over
//! their TCP candidates, with the caller (this test) owning the "connections": frames
//! written as the agents framed them (RFC 4571), payloads handed back with
//! `floe_agent_handle_tcp_receive`, and `FLOE_EVENT_KIND_CLOSE_TCP` honoured. CI runs
//! this under AddressSanitizer (`.ci/run`).

#![allow(unsafe_code)]
#![allow(clippy::multiple_unsafe_ops_per_block, clippy::borrow_as_ptr)]

use std::ffi::{CStr, CString};

use floe::*;

fn addr(s: &str) -> FloeAddr {
    let text = CString::new(s).unwrap();
    let mut out = FloeAddr::default();
    // SAFETY: a valid C string and a writable FloeAddr.
    let rc = unsafe { floe_addr_parse(text.as_ptr(), &mut out) };
    assert_eq!(rc, FloeResult::Ok);
    out
}

fn take(s: *mut std::ffi::c_char) -> CString {
    assert!(!s.is_null());
    // SAFETY: a string floe returned, not freed yet.
    let out = unsafe { CStr::from_ptr(s) }.to_owned();
    // SAFETY: freed once.
    unsafe { floe_string_free(s) };
    out
}

struct Peer {
    agent: *mut FloeAgent,
    /// The peer's TCP listener's address.
    listener: FloeAddr,
    ip_port: &'static str,
    candidates: Vec<CString>,
    connected: bool,
    selected: Option<FloeSelectedPair>,
    closed_tcp: Vec<(FloeAddr, FloeAddr)>,
    data: Vec<Vec<u8>>,
}

impl Peer {
    fn new(controlling: bool, seed: u64, udp: &str, tcp: &'static str) -> Peer {
        let mut config = floe_agent_config_default();
        config.controlling = controlling;
        config.seed = seed;
        config.ice_tcp = true;
        // SAFETY: a valid config.
        let agent = unsafe { floe_agent_new(&config, 0) };
        assert!(!agent.is_null());
        let (udp, listener) = (addr(udp), addr(tcp));
        // SAFETY: a live agent and valid addresses.
        unsafe {
            assert_eq!(floe_agent_add_host(agent, 0, &udp, 0), FloeResult::Ok);
            assert_eq!(
                floe_agent_add_tcp_host(agent, 0, &listener, 0),
                FloeResult::Ok
            );
            assert!(floe_agent_is_tcp_base(agent, &listener));
            assert!(!floe_agent_is_tcp_base(agent, &udp));
        }
        Peer {
            agent,
            listener,
            ip_port: tcp,
            candidates: Vec::new(),
            connected: false,
            selected: None,
            closed_tcp: Vec::new(),
            data: Vec::new(),
        }
    }

    fn events(&mut self) {
        let mut e = std::mem::MaybeUninit::<FloeEvent>::uninit();
        // SAFETY: a live agent and a writable event; `text` is read before the next call.
        while unsafe { floe_agent_poll_event(self.agent, e.as_mut_ptr()) } {
            // SAFETY: written by poll_event.
            let e = unsafe { e.assume_init_ref() };
            match e.kind {
                FloeEventKind::LocalCandidate => {
                    // SAFETY: non-NULL text of the event just polled.
                    self.candidates
                        .push(unsafe { CStr::from_ptr(e.text) }.to_owned());
                }
                FloeEventKind::ConnectionState => {
                    self.connected |= matches!(
                        e.connection_state,
                        FloeConnectionState::Connected | FloeConnectionState::Completed
                    );
                }
                FloeEventKind::SelectedPair => self.selected = Some(e.pair),
                FloeEventKind::CloseTcp => self.closed_tcp.push((e.pair.local, e.pair.remote)),
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

/// A connection: each side's (local base, remote) names.
#[derive(Clone, Copy)]
struct Conn {
    /// Which peer opened it (0 or 1).
    opener: usize,
    ends: [(FloeAddr, FloeAddr); 2],
}

struct Net {
    conns: Vec<Conn>,
    next_port: u16,
    udp_dropped: usize,
}

impl Net {
    /// Moves everything `from` (index `i`) sends; returns how many transmits moved.
    fn deliver(&mut self, peers: &mut [Peer; 2], i: usize, now: u64) -> usize {
        let mut moved = 0;
        let mut t = std::mem::MaybeUninit::<FloeTransmit>::uninit();
        // SAFETY: live agent and writable transmit; copied before the next call.
        while unsafe { floe_agent_poll_transmit(peers[i].agent, t.as_mut_ptr()) } {
            moved += 1;
            // SAFETY: written by poll_transmit.
            let t = unsafe { t.assume_init_ref() };
            // SAFETY: `len` bytes at `data`.
            let bytes = unsafe { std::slice::from_raw_parts(t.data, t.len) }.to_vec();
            if t.transport == FloeTransport::Udp {
                self.udp_dropped += 1;
                continue;
            }
            assert_eq!(t.transport, FloeTransport::Tcp);
            // SAFETY: live agent, readable address.
            assert!(unsafe { floe_agent_is_tcp_base(peers[i].agent, &t.source) });
            let (len, body) = bytes.split_at(2);
            assert_eq!(
                usize::from(u16::from_be_bytes([len[0], len[1]])),
                body.len()
            );
            let j = 1 - i;
            let key = (t.source, t.destination);
            let conn = match self.conns.iter().find(|c| c.ends[i] == key) {
                Some(c) => *c,
                None if t.destination == peers[j].listener => {
                    // Opened from the active base's address, on an ephemeral port.
                    self.next_port += 1;
                    let ip = peers[i].ip_port.rsplit_once(':').unwrap().0;
                    let eph = addr(&format!("{ip}:{}", self.next_port));
                    let mut ends = [key, key];
                    ends[j] = (t.destination, eph);
                    let c = Conn { opener: i, ends };
                    self.conns.push(c);
                    c
                }
                None => {
                    // No connection and none can be opened (from a passive base).
                    // SAFETY: live agent, readable addresses.
                    let rc = unsafe {
                        floe_agent_handle_tcp_closed(peers[i].agent, now, &t.source, &t.destination)
                    };
                    assert_eq!(rc, FloeResult::Ok);
                    continue;
                }
            };
            let (local, remote) = conn.ends[j];
            let mut r = std::mem::MaybeUninit::<FloeReceived>::uninit();
            // SAFETY: live agent, readable addresses and bytes, writable `r`.
            let rc = unsafe {
                floe_agent_handle_tcp_receive(
                    peers[j].agent,
                    now,
                    &local,
                    &remote,
                    body.as_ptr(),
                    body.len(),
                    r.as_mut_ptr(),
                )
            };
            assert_eq!(rc, FloeResult::Ok);
            // SAFETY: written by handle_tcp_receive.
            let r = unsafe { r.assume_init() };
            if r.is_data {
                // SAFETY: a slice of `body`, alive.
                peers[j]
                    .data
                    .push(unsafe { std::slice::from_raw_parts(r.data, r.len) }.to_vec());
            }
        }
        moved
    }
}

/// Runs both agents (signalling trickled at once, transmits delivered at once, timers in
/// virtual time) until `done` or a second after `from`, or 10 s in all; returns the time.
fn run(peers: &mut [Peer; 2], net: &mut Net, from: u64, done: impl Fn(&[Peer; 2]) -> bool) -> u64 {
    let mut now = from;
    for _ in 0..100_000 {
        for i in 0..2 {
            peers[i].events();
            for line in std::mem::take(&mut peers[i].candidates) {
                // SAFETY: live agent, valid string.
                let rc = unsafe {
                    floe_agent_add_remote_candidate(peers[1 - i].agent, now, line.as_ptr())
                };
                assert_eq!(rc, FloeResult::Ok);
            }
        }
        let moved = net.deliver(peers, 0, now) + net.deliver(peers, 1, now);
        peers[0].events();
        peers[1].events();
        if done(peers) {
            return now;
        }
        if moved == 0 {
            let mut soonest = u64::MAX;
            for p in peers.iter() {
                let mut at = 0u64;
                // SAFETY: live agent, writable u64.
                if unsafe { floe_agent_poll_timeout(p.agent, &mut at) } {
                    soonest = soonest.min(at);
                }
            }
            assert!(soonest < 10_000_000, "stuck at {now} µs");
            if from > 0 && soonest > from + 1_000_000 {
                return now;
            }
            now = soonest.max(now);
            for p in peers.iter() {
                // SAFETY: live agent.
                let rc = unsafe { floe_agent_handle_timeout(p.agent, now) };
                assert_eq!(rc, FloeResult::Ok);
            }
        }
    }
    panic!("no end at {now} µs");
}

#[test]
fn two_agents_whose_udp_is_dropped_connect_over_ice_tcp_through_the_c_api() {
    let mut peers = [
        Peer::new(true, 1, "10.0.0.1:5000", "10.0.0.1:5100"),
        Peer::new(false, 2, "10.0.0.2:6000", "10.0.0.2:6100"),
    ];
    for (i, j) in [(0, 1), (1, 0)] {
        // SAFETY: live agents, valid strings.
        unsafe {
            let ufrag = take(floe_agent_local_ufrag(peers[i].agent));
            let pwd = take(floe_agent_local_pwd(peers[i].agent));
            let rc =
                floe_agent_set_remote_credentials(peers[j].agent, ufrag.as_ptr(), pwd.as_ptr());
            assert_eq!(rc, FloeResult::Ok);
        }
    }
    let mut net = Net {
        conns: Vec::new(),
        next_port: 40_000,
        udp_dropped: 0,
    };
    let nominated = |ps: &[Peer; 2]| ps.iter().all(|p| p.selected.is_some_and(|s| s.nominated));
    let now = run(&mut peers, &mut net, 0, nominated);
    // A second on, pruning has happened (RFC 6544 §8 closes what it drops).
    let now = run(&mut peers, &mut net, now, |_| false).max(now + 1_000_000);
    for p in &peers {
        assert!(p.connected);
        let s = p.selected.expect("a selected pair");
        assert!(s.nominated);
        assert_eq!(s.transport, FloeTransport::Tcp);
    }
    assert!(net.udp_dropped > 0, "UDP was tried and dropped");
    // Data both ways on the selected TCP pair.
    for i in 0..2 {
        let msg = format!("over tcp from {i}");
        let mut t = std::mem::MaybeUninit::<FloeTransmit>::uninit();
        // SAFETY: live agent, readable data, writable transmit.
        let rc =
            unsafe { floe_agent_send(peers[i].agent, msg.as_ptr(), msg.len(), t.as_mut_ptr()) };
        assert_eq!(rc, FloeResult::Ok);
        // SAFETY: written by send.
        let t = unsafe { t.assume_init_ref() };
        assert_eq!(t.transport, FloeTransport::Tcp);
        // Put it back through the network as the next transmit would go.
        // SAFETY: `len` bytes at `data`.
        let bytes = unsafe { std::slice::from_raw_parts(t.data, t.len) }.to_vec();
        let key = (t.source, t.destination);
        let conn = *net
            .conns
            .iter()
            .find(|c| c.ends[i] == key)
            .expect("its connection");
        let (local, remote) = conn.ends[1 - i];
        let mut r = std::mem::MaybeUninit::<FloeReceived>::uninit();
        // SAFETY: as in `deliver`.
        let rc = unsafe {
            floe_agent_handle_tcp_receive(
                peers[1 - i].agent,
                now,
                &local,
                &remote,
                bytes[2..].as_ptr(),
                bytes.len() - 2,
                r.as_mut_ptr(),
            )
        };
        assert_eq!(rc, FloeResult::Ok);
        // SAFETY: written by handle_tcp_receive.
        let r = unsafe { r.assume_init() };
        assert!(r.is_data);
        // SAFETY: a slice of `bytes`.
        let got = unsafe { std::slice::from_raw_parts(r.data, r.len) };
        assert_eq!(got, msg.as_bytes());
    }
    // RFC 6544 §8: after nomination, the other connection (each side opened one) is
    // closed on at least one side.
    assert_eq!(net.conns.len(), 2, "each side opened one connection");
    assert_ne!(net.conns[0].opener, net.conns[1].opener);
    assert!(
        peers.iter().any(|p| !p.closed_tcp.is_empty()),
        "no FLOE_EVENT_KIND_CLOSE_TCP"
    );
}
