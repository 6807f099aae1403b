//! The socket-owning peer from C's side: two `FloePeer`s in one process, signalling
//! through each other's callbacks, connect over loopback sockets floe opens, exchange
//! data both ways, report stats, and are freed while running. CI runs this under
//! AddressSanitizer.

#![allow(unsafe_code)]
#![allow(clippy::multiple_unsafe_ops_per_block, clippy::borrow_as_ptr)]

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use floe::*;

/// What the callbacks of one side see.
#[derive(Default)]
struct Side {
    /// The other side's peer, once created (signalling goes there).
    other: AtomicPtr<FloePeer>,
    /// Signalling lines that arrived before `other` existed.
    pending: Mutex<Vec<CString>>,
    data: Mutex<Vec<Vec<u8>>>,
    states: Mutex<Vec<FloeConnectionState>>,
}

unsafe extern "C" fn on_signal(user: *mut c_void, line: *const c_char) {
    // SAFETY: `user` is the &Side given in the config, alive for the test.
    let side = unsafe { &*(user as *const Side) };
    // SAFETY: floe passes a NUL-terminated line valid during the call.
    let line = unsafe { CStr::from_ptr(line) }.to_owned();
    let mut pending = side.pending.lock().unwrap();
    let other = side.other.load(Ordering::Acquire);
    if other.is_null() {
        pending.push(line);
        return;
    }
    for l in pending.drain(..).chain(std::iter::once(line)) {
        // SAFETY: `other` is a live peer (freed only after both are done).
        let rc = unsafe { floe_peer_handle_signal(other, l.as_ptr()) };
        assert_eq!(rc, FloeResult::Ok);
    }
}

unsafe extern "C" fn on_data(user: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: as in on_signal.
    let side = unsafe { &*(user as *const Side) };
    // SAFETY: `len` bytes valid during the call.
    let bytes = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
    side.data.lock().unwrap().push(bytes);
}

unsafe extern "C" fn on_state(user: *mut c_void, state: FloeConnectionState) {
    // SAFETY: as in on_signal.
    let side = unsafe { &*(user as *const Side) };
    side.states.lock().unwrap().push(state);
}

fn loopback() -> FloeAddr {
    let mut a = FloeAddr::default();
    let text = CString::new("127.0.0.1:0").unwrap();
    // SAFETY: valid pointers.
    let rc = unsafe { floe_addr_parse(text.as_ptr(), &mut a) };
    assert_eq!(rc, FloeResult::Ok);
    a
}

fn new_peer(offerer: bool, side: &Side, bind: &FloeAddr) -> *mut FloePeer {
    let config = FloePeerConfig {
        offerer,
        stun_uris: ptr::null(),
        stun_uri_count: 0,
        turn_uris: ptr::null(),
        turn_uri_count: 0,
        turn_username: ptr::null(),
        turn_password: ptr::null(),
        bind,
        bind_count: 1,
        port_range_low: 61_500,
        port_range_high: 61_540,
        relay_only: false,
        connect_timeout_ms: 10_000,
        on_signal: Some(on_signal),
        on_data: Some(on_data),
        on_state: Some(on_state),
        user: std::ptr::from_ref(side).cast_mut().cast::<c_void>(),
    };
    // SAFETY: a valid config; `side` outlives the peer.
    let p = unsafe { floe_peer_new(&config) };
    assert!(!p.is_null());
    p
}

/// Hands `side` its peer's address and flushes what it queued meanwhile.
fn link(side: &Side, other: *mut FloePeer) {
    let mut pending = side.pending.lock().unwrap();
    side.other.store(other, Ordering::Release);
    for l in pending.drain(..) {
        // SAFETY: a live peer and a valid line.
        let rc = unsafe { floe_peer_handle_signal(other, l.as_ptr()) };
        assert_eq!(rc, FloeResult::Ok);
    }
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn two_peers_connect_over_loopback_and_exchange_data_through_the_c_api() {
    let (sa, sb) = (Side::default(), Side::default());
    let bind = loopback();
    let a = new_peer(true, &sa, &bind);
    let b = new_peer(false, &sb, &bind);
    link(&sa, b);
    link(&sb, a);
    // SAFETY: live peers; floe_last_error is this thread's message.
    unsafe {
        for (p, s) in [(a, &sa), (b, &sb)] {
            let rc = floe_peer_wait(p, 10_000);
            assert_eq!(
                rc,
                FloeResult::Ok,
                "{}; states {:?}",
                CStr::from_ptr(floe_last_error()).to_string_lossy(),
                s.states.lock().unwrap()
            );
        }
        for (p, s, msg) in [(a, &sa, b"hello b"), (b, &sb, b"hello a")] {
            let rc = floe_peer_send(p, msg.as_ptr(), msg.len());
            assert_eq!(
                rc,
                FloeResult::Ok,
                "{}; states {:?}",
                CStr::from_ptr(floe_last_error()).to_string_lossy(),
                s.states.lock().unwrap()
            );
        }
    }
    wait_for("data both ways", || {
        !sa.data.lock().unwrap().is_empty() && !sb.data.lock().unwrap().is_empty()
    });
    assert_eq!(sb.data.lock().unwrap()[0], b"hello b");
    assert_eq!(sa.data.lock().unwrap()[0], b"hello a");
    assert!(sa.states.lock().unwrap().iter().any(|s| matches!(
        s,
        FloeConnectionState::Connected | FloeConnectionState::Completed
    )));

    let mut stats = std::mem::MaybeUninit::<FloePeerStats>::uninit();
    // SAFETY: a live peer and a writable struct.
    let rc = unsafe { floe_peer_stats(a, stats.as_mut_ptr()) };
    assert_eq!(rc, FloeResult::Ok);
    // SAFETY: written by floe_peer_stats.
    let stats = unsafe { stats.assume_init() };
    assert!(stats.has_selected);
    assert_eq!(stats.selected.local.ip[..4], [127, 0, 0, 1]);
    assert!((61_500..=61_540).contains(&stats.selected.local.port));
    assert!((61_500..=61_540).contains(&stats.selected.remote.port));
    assert!(stats.responses_received >= 1, "{stats:?}");

    // Free both while they run; no callback may reach `sa`/`sb` afterwards.
    // SAFETY: live peers, freed once.
    unsafe {
        floe_peer_free(a);
        floe_peer_free(b);
    }
}

#[test]
fn a_peer_refuses_what_it_cannot_do_yet_and_bad_input() {
    let side = Side::default();
    let bind = loopback();
    let a = new_peer(true, &side, &bind);
    let junk = CString::new("{\"type\":\"nonsense\"}").unwrap();
    // SAFETY: a live peer and valid arguments.
    unsafe {
        assert_eq!(
            floe_peer_send(a, b"x".as_ptr(), 1),
            FloeResult::InvalidState
        );
        assert_eq!(
            floe_peer_handle_signal(a, junk.as_ptr()),
            FloeResult::InvalidArgument
        );
        // Nobody answers: the wait times out.
        assert_eq!(floe_peer_wait(a, 50), FloeResult::Timeout);
        assert_eq!(floe_peer_wait(ptr::null(), 50), FloeResult::NullPointer);
        floe_peer_free(a);
        floe_peer_free(ptr::null_mut());
    }
    // No on_signal: refused.
    let config = FloePeerConfig {
        offerer: true,
        stun_uris: ptr::null(),
        stun_uri_count: 0,
        turn_uris: ptr::null(),
        turn_uri_count: 0,
        turn_username: ptr::null(),
        turn_password: ptr::null(),
        bind: ptr::null(),
        bind_count: 0,
        port_range_low: 0,
        port_range_high: 0,
        relay_only: true,
        connect_timeout_ms: 0,
        on_signal: None,
        on_data: None,
        on_state: None,
        user: ptr::null_mut(),
    };
    // SAFETY: a valid config.
    assert!(unsafe { floe_peer_new(&config) }.is_null());
    let bad_uri = [c"stun:".as_ptr()];
    let config = FloePeerConfig {
        on_signal: Some(on_signal),
        relay_only: false,
        stun_uris: bad_uri.as_ptr(),
        stun_uri_count: 1,
        ..config
    };
    // SAFETY: a valid config.
    assert!(unsafe { floe_peer_new(&config) }.is_null());
}
