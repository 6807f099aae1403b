//! `FloeAgent`: the sans-IO ICE agent ([`floe_ice::Agent`]) for C.

use std::ffi::{c_char, CString};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_ice::{Agent, AgentConfig, Candidate, Credentials, Role, SendError, Transmit, TurnServer};

use crate::addr::{addr_arg, FloeAddr, FloeTransport};
use crate::error::{bytes_arg, guard, owned_c_string, str_arg, Error, FloeResult};
use crate::event::{FloeConnectionState, FloeEvent};

/// An ICE agent. Create it with [`floe_agent_new`], free it with [`floe_agent_free`].
/// Use it from one thread at a time.
#[derive(Debug)]
pub struct FloeAgent {
    pub(crate) agent: Agent,
    pub(crate) clock: Clock,
    /// Set when a call panicked: the agent's state may be half-changed.
    poisoned: bool,
    /// The transmit last handed out, which its `data` pointer borrows.
    transmit: Option<Transmit>,
    /// The text of the event last handed out.
    text: Option<CString>,
}

/// The caller's microseconds on the agent's `Instant`s. Time never goes backwards for
/// the agent: an earlier `now_us` than seen before counts as the latest seen.
#[derive(Debug)]
pub(crate) struct Clock {
    base: Instant,
    base_us: u64,
    latest: Instant,
}

impl Clock {
    fn new(now_us: u64) -> Clock {
        // Any Instant will do as the origin; only differences reach the agent.
        let base = Instant::now();
        Clock {
            base,
            base_us: now_us,
            latest: base,
        }
    }

    pub(crate) fn at(&mut self, now_us: u64) -> Instant {
        let since = Duration::from_micros(now_us.saturating_sub(self.base_us));
        let t = self.base.checked_add(since).unwrap_or(self.latest);
        self.latest = self.latest.max(t);
        self.latest
    }

    /// `t` in the caller's microseconds, rounded up, so that calling back at that
    /// microsecond is never early.
    fn micros(&self, t: Instant) -> u64 {
        let nanos = t.saturating_duration_since(self.base).as_nanos();
        let micros = u64::try_from(nanos.div_ceil(1000)).unwrap_or(u64::MAX);
        self.base_us.saturating_add(micros)
    }
}

/// How [`floe_agent_new`] sets an agent up. Start from [`floe_agent_config_default`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FloeAgentConfig {
    /// The controlling role (RFC 8445 §6.1.1: usually the offerer); controlled if false.
    pub controlling: bool,
    /// ICE-lite (RFC 8445 §2.5): host candidates only, no checks of its own.
    pub lite: bool,
    /// Offer only relayed candidates (privacy).
    pub relay_only: bool,
    /// Renominate to a better direct pair when the peer supports it (off by default).
    pub renomination: bool,
    /// Seed for credentials, transaction ids and tie-breakers; two agents need different
    /// seeds.
    pub seed: u64,
    /// STUN servers for server-reflexive candidates: `stun_server_count` addresses, or
    /// NULL with a count of 0. Copied; need not outlive the call.
    pub stun_servers: *const FloeAddr,
    /// How many addresses `stun_servers` holds.
    pub stun_server_count: usize,
    /// ICE-TCP (RFC 6544; off by default): pair the peer's TCP candidates with the ones
    /// `floe_agent_add_tcp_host` registers.
    pub ice_tcp: bool,
}

/// The defaults: controlling, full ICE, no relay-only, no renomination, seed 0, no STUN
/// servers.
#[no_mangle]
pub extern "C" fn floe_agent_config_default() -> FloeAgentConfig {
    FloeAgentConfig {
        controlling: true,
        lite: false,
        relay_only: false,
        renomination: false,
        seed: 0,
        stun_servers: std::ptr::null(),
        stun_server_count: 0,
        ice_tcp: false,
    }
}

/// An RFC 8839 candidate line (`candidate:…`, with or without `a=`): `None` for a kind
/// floe does not use (ignored, not an error), an error if it does not parse.
fn candidate_line(line: &str) -> Result<Option<Candidate>, Error> {
    let text = line.trim().strip_prefix("a=").unwrap_or(line.trim());
    match Candidate::parse(text) {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.is_unsupported() => Ok(None),
        Err(e) => Err(Error::invalid(format!("candidate line: {e}"))),
    }
}

/// Borrows the agent behind a handle, refusing NULL and poisoned agents.
///
/// # Safety
/// `p` is NULL or a pointer from [`floe_agent_new`] not yet freed, used by no other call
/// meanwhile.
unsafe fn agent_arg<'a>(p: *mut FloeAgent) -> Result<&'a mut FloeAgent, Error> {
    // SAFETY: the caller promises a live agent from floe_agent_new (a Box) with no other
    // reference to it for the duration of this call, or NULL, which as_mut turns into
    // None.
    let a = unsafe { p.as_mut() }.ok_or_else(|| Error::null("agent"))?;
    if a.poisoned {
        return Err(Error::new(
            FloeResult::Poisoned,
            "an earlier call panicked in this agent; free it",
        ));
    }
    Ok(a)
}

/// Runs `f` on the agent behind `agent`: NULL, poison and panics handled, the agent
/// poisoned if `f` panics.
///
/// # Safety
/// As for [`agent_arg`].
pub(crate) unsafe fn with_agent<T>(
    agent: *mut FloeAgent,
    on_error: impl FnOnce(FloeResult) -> T,
    f: impl FnOnce(&mut FloeAgent) -> Result<T, Error>,
) -> T {
    guard(
        on_error,
        || {
            // SAFETY: the panic happened inside `f`, whose borrow of the agent has ended
            // with the unwind; the caller's promise that the pointer is live holds.
            if let Some(a) = unsafe { agent.as_mut() } {
                a.poisoned = true;
            }
        },
        || {
            // SAFETY: the caller's promise, passed on.
            let a = unsafe { agent_arg(agent) }?;
            f(a)
        },
    )
}

/// A new agent at `now_us`, or NULL on error (see [`floe_last_error`]). `config` may
/// be NULL for the defaults. Free it with [`floe_agent_free`].
///
/// [`floe_last_error`]: crate::floe_last_error
///
/// # Safety
/// `config` is NULL or points to a readable `FloeAgentConfig` whose `stun_servers` holds
/// `stun_server_count` readable addresses.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_new(
    config: *const FloeAgentConfig,
    now_us: u64,
) -> *mut FloeAgent {
    guard(
        |_| std::ptr::null_mut(),
        || {},
        || {
            // SAFETY: NULL or a readable config (the caller's promise); Copy.
            let c = unsafe { config.as_ref() }
                .copied()
                .unwrap_or_else(|| floe_agent_config_default());
            let mut stun_servers = Vec::new();
            if c.stun_server_count > 0 {
                if c.stun_servers.is_null() {
                    return Err(Error::null("config.stun_servers"));
                }
                if c.stun_server_count > 64 {
                    return Err(Error::invalid("config.stun_server_count: at most 64"));
                }
                for i in 0..c.stun_server_count {
                    // SAFETY: i < stun_server_count, and the caller promises that many
                    // readable addresses at stun_servers.
                    let p = unsafe { c.stun_servers.add(i) };
                    // SAFETY: p points to one of them.
                    stun_servers.push(unsafe { addr_arg(p, "config.stun_servers") }?);
                }
            }
            let mut config = AgentConfig::default();
            config.lite = c.lite;
            config.relay_only = c.relay_only;
            config.renomination = c.renomination;
            config.ice_tcp = c.ice_tcp;
            config.stun_servers = stun_servers;
            let role = if c.controlling {
                Role::Controlling
            } else {
                Role::Controlled
            };
            let mut clock = Clock::new(now_us);
            let now = clock.at(now_us);
            let agent = FloeAgent {
                agent: Agent::new(config, role, now, c.seed),
                clock,
                poisoned: false,
                transmit: None,
                text: None,
            };
            Ok(Box::into_raw(Box::new(agent)))
        },
    )
}

/// Frees an agent. NULL is ignored. Close it first ([`floe_agent_close`]) to release
/// TURN allocations politely.
///
/// # Safety
/// `agent` is NULL or a pointer from [`floe_agent_new`] not yet freed; it is not used
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_free(agent: *mut FloeAgent) {
    if agent.is_null() {
        return;
    }
    // Dropping runs floe's destructors, which do not panic; catch anyway, so nothing
    // unwinds into C.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the caller promises a live pointer from floe_agent_new (Box::into_raw),
        // freed once.
        drop(unsafe { Box::from_raw(agent) });
    }));
}

/// Adds a local socket address as a host candidate (RFC 8445 §5.1.1.1). `rank` orders
/// interfaces: 0 is the most preferred.
///
/// # Safety
/// `agent` is a live agent (see [`floe_agent_free`]); `addr` points to a readable
/// `FloeAddr`.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_add_host(
    agent: *mut FloeAgent,
    now_us: u64,
    addr: *const FloeAddr,
    rank: u32,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        // SAFETY: the caller's promise about `addr`.
        let addr = unsafe { addr_arg(addr, "addr") }?;
        let now = a.clock.at(now_us);
        a.agent.add_host(now, addr, rank as usize);
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// The local address `addr` went away (an interface down, an address removed): its
/// candidates are withdrawn and, if data went through it, recovery starts at once
/// (`FLOE_EVENT_KIND_RECOVERY`). `floe_agent_add_host` with the same address brings it
/// back; a new address is a new `floe_agent_add_host` (trickle its candidates).
///
/// # Safety
/// `agent` is a live agent; `addr` points to a readable `FloeAddr`.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_remove_host(
    agent: *mut FloeAgent,
    now_us: u64,
    addr: *const FloeAddr,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        // SAFETY: the caller's promise about `addr`.
        let addr = unsafe { addr_arg(addr, "addr") }?;
        let now = a.clock.at(now_us);
        a.agent.remove_host(now, addr);
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// Application data from `remote` arrived on local socket `local` without passing
/// through `floe_agent_handle_receive` (a fast path of the caller's): the pair counts as
/// heard, so no liveness checks go out while data flows.
///
/// # Safety
/// `agent` is a live agent; `local` and `remote` point to readable `FloeAddr`s.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_handle_data_received(
    agent: *mut FloeAgent,
    now_us: u64,
    local: *const FloeAddr,
    remote: *const FloeAddr,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        // SAFETY: the caller's promise about `local`.
        let local = unsafe { addr_arg(local, "local") }?;
        // SAFETY: the caller's promise about `remote`.
        let remote = unsafe { addr_arg(remote, "remote") }?;
        let now = a.clock.at(now_us);
        a.agent.handle_data_received(now, local, remote);
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// Allocates a relayed candidate on a TURN server (RFC 8656), sent from the local socket
/// `base` (a host added before) over `transport` (0 UDP, 1 TCP, 2 TLS: a stream the
/// caller opens when the first transmit to `server` with that transport appears).
///
/// # Safety
/// `agent` is a live agent; `base` and `server` point to readable `FloeAddr`s;
/// `username` and `password` are NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_add_turn_server(
    agent: *mut FloeAgent,
    now_us: u64,
    base: *const FloeAddr,
    server: *const FloeAddr,
    transport: u32,
    username: *const c_char,
    password: *const c_char,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        // SAFETY: the caller's promise about `base`.
        let base = unsafe { addr_arg(base, "base") }?;
        // SAFETY: the caller's promise about `server`.
        let server = unsafe { addr_arg(server, "server") }?;
        // SAFETY: the caller's promise about `username`.
        let username = unsafe { str_arg(username, "username") }?;
        // SAFETY: the caller's promise about `password`.
        let password = unsafe { str_arg(password, "password") }?;
        let transport = match transport {
            0 => FloeTransport::Udp,
            1 => FloeTransport::Tcp,
            2 => FloeTransport::Tls,
            t => return Err(Error::invalid(format!("transport {t} (want 0, 1 or 2)"))),
        };
        let now = a.clock.at(now_us);
        let ts =
            TurnServer::new(base, server, username, password).with_transports(&[transport.into()]);
        a.agent.add_turn_server_with(now, ts);
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// The local ice-ufrag, to signal to the peer; free it with `floe_string_free`. NULL on
/// error.
///
/// # Safety
/// `agent` is a live agent.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_local_ufrag(agent: *mut FloeAgent) -> *mut c_char {
    let f = |a: &mut FloeAgent| Ok(owned_c_string(&a.agent.local_credentials().ufrag));
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |_| std::ptr::null_mut(), f) }
}

/// The local ice-pwd, to signal to the peer; free it with `floe_string_free`. NULL on
/// error.
///
/// # Safety
/// `agent` is a live agent.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_local_pwd(agent: *mut FloeAgent) -> *mut c_char {
    let f = |a: &mut FloeAgent| Ok(owned_c_string(&a.agent.local_credentials().pwd));
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |_| std::ptr::null_mut(), f) }
}

/// Sets the peer's ice-ufrag and ice-pwd (RFC 8445 §5.3).
///
/// # Safety
/// `agent` is a live agent; `ufrag` and `pwd` are NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_set_remote_credentials(
    agent: *mut FloeAgent,
    ufrag: *const c_char,
    pwd: *const c_char,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        // SAFETY: the caller's promise about `ufrag`.
        let ufrag = unsafe { str_arg(ufrag, "ufrag") }?;
        // SAFETY: the caller's promise about `pwd`.
        let pwd = unsafe { str_arg(pwd, "pwd") }?;
        if ufrag.is_empty() || pwd.is_empty() {
            return Err(Error::invalid("empty ufrag or pwd"));
        }
        a.agent.set_remote_credentials(Credentials {
            ufrag: ufrag.to_owned(),
            pwd: pwd.to_owned(),
        });
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// Tells the agent whether the peer is ICE-lite (`a=ice-lite`; a lite peer makes a
/// full agent controlling, RFC 8445 §6.1.1).
///
/// # Safety
/// `agent` is a live agent.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_set_remote_lite(
    agent: *mut FloeAgent,
    lite: bool,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        a.agent.set_remote_lite(lite);
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// Adds a remote candidate from its RFC 8839 line (`candidate:…`, with or without
/// `a=`). A line of a kind floe does not use (TCP without ICE-TCP, an unknown type) is
/// ignored with `FLOE_RESULT_OK`; one that does not parse is `INVALID_ARGUMENT`.
///
/// # Safety
/// `agent` is a live agent; `line` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_add_remote_candidate(
    agent: *mut FloeAgent,
    now_us: u64,
    line: *const c_char,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        // SAFETY: the caller's promise about `line`.
        let line = unsafe { str_arg(line, "line") }?;
        if let Some(c) = candidate_line(line)? {
            let now = a.clock.at(now_us);
            a.agent.add_remote_candidate(now, c);
        }
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// The peer withdrew a candidate (its `FLOE_EVENT_KIND_LOCAL_CANDIDATES_REMOVED`, sent
/// over the caller's signalling): pairs with its address stop being checked, and if the
/// selected pair used it, recovery starts at once. A line that does not parse is
/// `INVALID_ARGUMENT`; one the agent does not know is ignored with `FLOE_RESULT_OK`.
///
/// # Safety
/// `agent` is a live agent; `line` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_remove_remote_candidate(
    agent: *mut FloeAgent,
    now_us: u64,
    line: *const c_char,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        // SAFETY: the caller's promise about `line`.
        let line = unsafe { str_arg(line, "line") }?;
        if let Some(c) = candidate_line(line)? {
            let now = a.clock.at(now_us);
            a.agent.remove_remote_candidate(now, &c);
        }
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// The peer sent all its candidates (RFC 8838 §8.2).
///
/// # Safety
/// `agent` is a live agent.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_handle_end_of_remote_candidates(
    agent: *mut FloeAgent,
    now_us: u64,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        let now = a.clock.at(now_us);
        a.agent.handle_end_of_remote_candidates(now);
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// The answer to a `FLOE_EVENT_KIND_RESOLVE_MDNS` event: `name`'s address (its port is
/// ignored), or NULL if it did not resolve.
///
/// # Safety
/// `agent` is a live agent; `name` is a NUL-terminated string; `address` is NULL or
/// points to a readable `FloeAddr`.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_handle_mdns_resolved(
    agent: *mut FloeAgent,
    now_us: u64,
    name: *const c_char,
    address: *const FloeAddr,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        // SAFETY: the caller's promise about `name`.
        let name = unsafe { str_arg(name, "name") }?;
        let ip = if address.is_null() {
            None
        } else {
            // SAFETY: non-NULL, so a readable FloeAddr by the caller's promise.
            Some(unsafe { addr_arg(address, "address") }?.ip())
        };
        let now = a.clock.at(now_us);
        a.agent.handle_mdns_resolved(now, name, ip);
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// What [`floe_agent_handle_receive`] found in a datagram: application data, or not.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FloeReceived {
    /// Whether the datagram carried application data.
    pub is_data: bool,
    /// Who sent it (for data relayed by a TURN server, the peer behind the relay).
    pub from: FloeAddr,
    /// The data: a pointer into the caller's own `data` buffer (valid as long as that
    /// is), or NULL.
    pub data: *const u8,
    /// Its length.
    pub len: usize,
}

/// One datagram arrived on the caller's socket `local` from `remote`. STUN and TURN are
/// consumed; application data is described in `out` (which may be NULL to drop it).
/// Any bytes at all are accepted: what is not for floe is dropped and counted.
///
/// # Safety
/// `agent` is a live agent; `local` and `remote` point to readable `FloeAddr`s; `data`
/// points to `len` readable bytes (or is NULL with `len` 0); `out` is NULL or points to
/// a writable `FloeReceived`.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_handle_receive(
    agent: *mut FloeAgent,
    now_us: u64,
    local: *const FloeAddr,
    remote: *const FloeAddr,
    data: *const u8,
    len: usize,
    out: *mut FloeReceived,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        // SAFETY: the caller's promise about `local`.
        let local = unsafe { addr_arg(local, "local") }?;
        // SAFETY: the caller's promise about `remote`.
        let remote = unsafe { addr_arg(remote, "remote") }?;
        // SAFETY: the caller's promise about `data` and `len`.
        let bytes = unsafe { bytes_arg(data, len, "data") }?;
        let now = a.clock.at(now_us);
        let mut got: Option<(SocketAddr, *const u8, usize)> = None;
        a.agent
            .handle_receive(now, local, remote, bytes, |from, d| {
                got = Some((from, d.as_ptr(), d.len()));
            });
        // SAFETY: the caller's promise about `out`.
        unsafe { FloeReceived::write(out, got) };
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

impl FloeReceived {
    /// Writes what the agent gave `on_data` (or that there was no data) to `out`, if not
    /// NULL.
    ///
    /// # Safety
    /// `out` is NULL or points to a writable `FloeReceived`.
    pub(crate) unsafe fn write(
        out: *mut FloeReceived,
        got: Option<(SocketAddr, *const u8, usize)>,
    ) {
        let received = match got {
            Some((from, p, n)) => FloeReceived {
                is_data: true,
                from: from.into(),
                data: p,
                len: n,
            },
            None => FloeReceived {
                is_data: false,
                from: FloeAddr::default(),
                data: std::ptr::null(),
                len: 0,
            },
        };
        // SAFETY: NULL or a writable FloeReceived (the caller's promise).
        if let Some(out) = unsafe { out.as_mut() } {
            *out = received;
        }
    }
}

/// A datagram (or stream chunk) to send, filled by [`floe_agent_poll_transmit`] and
/// [`floe_agent_send`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FloeTransmit {
    /// How: UDP, or the caller's TCP/TLS stream to `destination`.
    pub transport: FloeTransport,
    /// The local socket to send from.
    pub source: FloeAddr,
    /// Where to.
    pub destination: FloeAddr,
    /// The bytes, valid until the next call on the agent.
    pub data: *const u8,
    /// Their length.
    pub len: usize,
}

impl FloeAgent {
    /// Keeps `t` and describes it for C.
    fn hand_out(&mut self, t: Transmit) -> FloeTransmit {
        let t = self.transmit.insert(t);
        FloeTransmit {
            transport: t.transport.into(),
            source: t.source.into(),
            destination: t.destination.into(),
            data: t.data.as_ptr(),
            len: t.data.len(),
        }
    }
}

/// The next thing to send: fills `out` and returns true, or returns false when nothing
/// is queued (or on error). Call it until false after every input.
///
/// # Safety
/// `agent` is a live agent; `out` points to a writable `FloeTransmit`.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_poll_transmit(
    agent: *mut FloeAgent,
    out: *mut FloeTransmit,
) -> bool {
    let f = |a: &mut FloeAgent| {
        if out.is_null() {
            return Err(Error::null("out"));
        }
        let Some(t) = a.agent.poll_transmit() else {
            a.transmit = None;
            return Ok(false);
        };
        let c = a.hand_out(t);
        // SAFETY: non-NULL and writable by the caller's promise.
        unsafe { out.write(c) };
        Ok(true)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |_| false, f) }
}

/// The next event: fills `out` and returns true, or returns false when none is queued
/// (or on error).
///
/// # Safety
/// `agent` is a live agent; `out` points to a writable `FloeEvent`.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_poll_event(agent: *mut FloeAgent, out: *mut FloeEvent) -> bool {
    let f = |a: &mut FloeAgent| {
        if out.is_null() {
            return Err(Error::null("out"));
        }
        let Some(e) = a.agent.poll_event() else {
            a.text = None;
            return Ok(false);
        };
        let c = FloeEvent::from_event(&e, &mut a.text);
        // SAFETY: non-NULL and writable by the caller's promise.
        unsafe { out.write(c) };
        Ok(true)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |_| false, f) }
}

/// When [`floe_agent_handle_timeout`] should run next, in the caller's microseconds:
/// fills `at_us` and returns true, or returns false when no timer is pending.
///
/// # Safety
/// `agent` is a live agent; `at_us` points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_poll_timeout(agent: *mut FloeAgent, at_us: *mut u64) -> bool {
    let f = |a: &mut FloeAgent| {
        if at_us.is_null() {
            return Err(Error::null("at_us"));
        }
        let Some(t) = a.agent.poll_timeout() else {
            return Ok(false);
        };
        // SAFETY: non-NULL and writable by the caller's promise.
        unsafe { at_us.write(a.clock.micros(t)) };
        Ok(true)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |_| false, f) }
}

/// Timers: retransmissions, paced checks, consent, TURN refreshes.
///
/// # Safety
/// `agent` is a live agent.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_handle_timeout(
    agent: *mut FloeAgent,
    now_us: u64,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        let now = a.clock.at(now_us);
        a.agent.handle_timeout(now);
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// Wraps application data for the selected pair (a ChannelData or Send indication when
/// it is relayed) and describes the datagram in `out`; `INVALID_STATE` before a pair is
/// selected or after consent expired (RFC 7675).
///
/// # Safety
/// `agent` is a live agent; `data` points to `len` readable bytes (or is NULL with `len`
/// 0); `out` points to a writable `FloeTransmit`.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_send(
    agent: *mut FloeAgent,
    data: *const u8,
    len: usize,
    out: *mut FloeTransmit,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        // SAFETY: the caller's promise about `data`.
        let bytes = unsafe { bytes_arg(data, len, "data") }?;
        if out.is_null() {
            return Err(Error::null("out"));
        }
        let t = a.agent.send(bytes).map_err(|e| {
            let why = match e {
                SendError::NotConnected => "not connected: no pair is selected",
                SendError::ConsentExpired => "consent to send expired (RFC 7675)",
            };
            Error::new(FloeResult::InvalidState, why)
        })?;
        let c = a.hand_out(t);
        // SAFETY: non-NULL and writable by the caller's promise.
        unsafe { out.write(c) };
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// Starts an ICE restart (RFC 8445 §9): new local credentials to signal, gathering
/// again.
///
/// # Safety
/// `agent` is a live agent.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_restart(agent: *mut FloeAgent, now_us: u64) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        let now = a.clock.at(now_us);
        a.agent.restart(now);
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// Closes the agent: TURN allocations are released (send what
/// [`floe_agent_poll_transmit`] returns), and the state becomes `CLOSED`.
///
/// # Safety
/// `agent` is a live agent.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_close(agent: *mut FloeAgent, now_us: u64) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        let now = a.clock.at(now_us);
        a.agent.close(now);
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// The connection state (RTCIceConnectionState); `FAILED` for a NULL or poisoned agent.
///
/// # Safety
/// `agent` is NULL or a live agent.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_connection_state(agent: *mut FloeAgent) -> FloeConnectionState {
    let f = |a: &mut FloeAgent| Ok(a.agent.connection_state().into());
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |_| FloeConnectionState::Failed, f) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_rounds_deadlines_up_and_never_goes_back() {
        let mut c = Clock::new(1_000);
        let t0 = c.at(1_000);
        assert_eq!(c.micros(t0), 1_000);
        let later = t0 + Duration::from_nanos(1_500);
        // 1.5 µs after 1000 µs is reported as 1002: calling back then is not early.
        assert_eq!(c.micros(later), 1_002);
        assert!(c.at(1_002) >= later);
        // An earlier time than seen counts as the latest seen.
        let t5 = c.at(5_000);
        assert_eq!(c.at(2_000), t5);
        assert_eq!(c.at(0), t5);
        // A far-future time does not overflow.
        let _ = c.at(u64::MAX);
    }

    #[test]
    fn a_panic_inside_a_call_poisons_the_agent_and_reaches_c_as_a_code() {
        let config = floe_agent_config_default();
        // SAFETY: a valid config.
        let agent = unsafe { floe_agent_new(&raw const config, 0) };
        // SAFETY: a live agent; the closure panics, as a floe bug would.
        let rc = unsafe {
            with_agent(
                agent,
                |c| c,
                |_| -> Result<FloeResult, Error> { panic!("boom") },
            )
        };
        assert_eq!(rc, FloeResult::Panic);
        // SAFETY: floe_last_error returns a valid string.
        let msg = unsafe { std::ffi::CStr::from_ptr(crate::floe_last_error()) };
        assert!(msg.to_str().unwrap().contains("boom"), "{msg:?}");
        // SAFETY: a live (poisoned) agent.
        let rc = unsafe { floe_agent_handle_timeout(agent, 1) };
        assert_eq!(rc, FloeResult::Poisoned);
        // SAFETY: freed once; freeing works on a poisoned agent.
        unsafe { floe_agent_free(agent) };
    }
}
