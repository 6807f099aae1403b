//! ICE-TCP (RFC 6544) for the sans-IO agent: the caller owns the TCP listener and
//! connections, as it owns its UDP sockets. The contract is floe-ice's (`Agent::
//! add_tcp_host`): a passive candidate's base is the listener's address, an active
//! candidate's is its address with port 9 ("an ephemeral port of this address"). A
//! transmit from a TCP base (`floe_agent_is_tcp_base`) has transport
//! `FLOE_TRANSPORT_TCP` and bytes already framed (RFC 4571): write them on the connection
//! between its source and destination, opening one from the active base's address if
//! none exists. Accept every connection on the listener; split what arrives into RFC
//! 4571 frames (a 16-bit length, then the packet) and give each frame's payload to
//! `floe_agent_handle_tcp_receive`; report a connection that fails or closes with
//! `floe_agent_handle_tcp_closed`, and close one when `FLOE_EVENT_KIND_CLOSE_TCP` says.

use std::net::SocketAddr;

use crate::addr::{addr_arg, FloeAddr};
use crate::agent::{with_agent, FloeAgent, FloeReceived};
use crate::error::{bytes_arg, FloeResult};

/// Registers the caller's TCP listener at `listener` (needs `ice_tcp` in the config): a
/// passive host candidate on it and an active one on its address (a lite agent offers
/// the passive one only). The listener's address must not be one of the UDP addresses
/// given to `floe_agent_add_host`.
///
/// # Safety
/// `agent` is a live agent; `listener` points to a readable `FloeAddr`.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_add_tcp_host(
    agent: *mut FloeAgent,
    now_us: u64,
    listener: *const FloeAddr,
    rank: u32,
) -> FloeResult {
    let f = |a: &mut FloeAgent| {
        // SAFETY: the caller's promise about `listener`.
        let listener = unsafe { addr_arg(listener, "listener") }?;
        let now = a.clock.at(now_us);
        a.agent.add_tcp_host(now, listener, rank as usize);
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// Whether `addr` is the base of a local TCP candidate: a transmit from it goes on an
/// ICE-TCP connection, not to a TURN server. False on error.
///
/// # Safety
/// `agent` is a live agent; `addr` points to a readable `FloeAddr`.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_is_tcp_base(
    agent: *mut FloeAgent,
    addr: *const FloeAddr,
) -> bool {
    let f = |a: &mut FloeAgent| {
        // SAFETY: the caller's promise about `addr`.
        let addr = unsafe { addr_arg(addr, "addr") }?;
        Ok(a.agent.is_tcp_base(addr))
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |_| false, f) }
}

/// One RFC 4571 frame's payload arrived on the ICE-TCP connection between local base
/// `local` and `remote`. STUN is consumed; application data is described in `out` (NULL
/// to drop it), pointing into `data`.
///
/// # Safety
/// `agent` is a live agent; `local` and `remote` point to readable `FloeAddr`s; `data`
/// points to `len` readable bytes (or is NULL with `len` 0); `out` is NULL or points to
/// a writable `FloeReceived`.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_handle_tcp_receive(
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
            .handle_tcp_receive(now, local, remote, bytes, |from, d| {
                got = Some((from, d.as_ptr(), d.len()));
            });
        // SAFETY: the caller's promise about `out`.
        unsafe { FloeReceived::write(out, got) };
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}

/// The ICE-TCP connection between local base `local` and `remote` failed to open or
/// closed: its pairs fail (RFC 6544 §7.1).
///
/// # Safety
/// `agent` is a live agent; `local` and `remote` point to readable `FloeAddr`s.
#[no_mangle]
pub unsafe extern "C" fn floe_agent_handle_tcp_closed(
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
        a.agent.handle_tcp_closed(now, local, remote);
        Ok(FloeResult::Ok)
    };
    // SAFETY: the caller's promise about `agent`, passed on.
    unsafe { with_agent(agent, |c| c, f) }
}
