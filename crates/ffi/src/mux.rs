//! `FloeMux`: many agents on one UDP socket ([`floe_ice::mux::Mux`]) for C, as a media
//! server runs them on a single port. The caller keys each session by a `uint64_t` of its
//! choosing (an index into its own table of agents), registers it with the agent's local
//! ufrag, and asks [`floe_mux_route`] whose each datagram is before handing it to that
//! agent's `floe_agent_handle_receive`.

use std::ffi::c_char;

use floe_ice::mux::{Mux, MuxError};

use crate::addr::{addr_arg, FloeAddr};
use crate::error::{bytes_arg, guard, str_arg, Error, FloeResult};

/// Sessions sharing one socket. Create it with [`floe_mux_new`], free it with
/// [`floe_mux_free`]. Use it from one thread at a time.
#[derive(Debug)]
pub struct FloeMux {
    mux: Mux<u64>,
}

/// Borrows the mux behind a handle.
///
/// # Safety
/// `p` is NULL or a pointer from [`floe_mux_new`] not yet freed, used by no other call
/// meanwhile.
unsafe fn mux_arg<'a>(p: *mut FloeMux) -> Result<&'a mut FloeMux, Error> {
    // SAFETY: the caller promises a live mux from floe_mux_new (a Box) with no other
    // reference to it for this call, or NULL, which as_mut turns into None.
    unsafe { p.as_mut() }.ok_or_else(|| Error::null("mux"))
}

fn mux_error(e: MuxError) -> Error {
    Error::invalid(e.to_string())
}

/// A mux with no sessions; free it with [`floe_mux_free`]. NULL only if allocation
/// failed in a way Rust reports (it aborts on out-of-memory).
#[no_mangle]
pub extern "C" fn floe_mux_new() -> *mut FloeMux {
    guard(
        |_| std::ptr::null_mut(),
        || {},
        || Ok(Box::into_raw(Box::new(FloeMux { mux: Mux::new() }))),
    )
}

/// Frees a mux. NULL is ignored.
///
/// # Safety
/// `mux` is NULL or a pointer from [`floe_mux_new`] not yet freed; it is not used
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn floe_mux_free(mux: *mut FloeMux) {
    if mux.is_null() {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the caller promises a live pointer from floe_mux_new (Box::into_raw),
        // freed once.
        drop(unsafe { Box::from_raw(mux) });
    }));
}

/// Registers session `key` whose agent's local ufrag is `ufrag` (from
/// `floe_agent_local_ufrag`). `INVALID_ARGUMENT` if the key or the ufrag is taken. After
/// `floe_agent_restart`, register the new ufrag with [`floe_mux_set_ufrag`].
///
/// # Safety
/// `mux` is a live mux; `ufrag` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn floe_mux_add_session(
    mux: *mut FloeMux,
    key: u64,
    ufrag: *const c_char,
) -> FloeResult {
    guard(
        |c| c,
        || {},
        || {
            // SAFETY: the caller's promise about `mux`.
            let m = unsafe { mux_arg(mux) }?;
            // SAFETY: the caller's promise about `ufrag`.
            let ufrag = unsafe { str_arg(ufrag, "ufrag") }?;
            m.mux.add_session(key, ufrag).map_err(mux_error)?;
            Ok(FloeResult::Ok)
        },
    )
}

/// Session `key`'s agent restarted ICE: its checks now carry `ufrag`.
///
/// # Safety
/// `mux` is a live mux; `ufrag` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn floe_mux_set_ufrag(
    mux: *mut FloeMux,
    key: u64,
    ufrag: *const c_char,
) -> FloeResult {
    guard(
        |c| c,
        || {},
        || {
            // SAFETY: the caller's promise about `mux`.
            let m = unsafe { mux_arg(mux) }?;
            // SAFETY: the caller's promise about `ufrag`.
            let ufrag = unsafe { str_arg(ufrag, "ufrag") }?;
            m.mux.set_ufrag(key, ufrag).map_err(mux_error)?;
            Ok(FloeResult::Ok)
        },
    )
}

/// Forgets session `key` (its ufrag and the addresses it was heard from).
///
/// # Safety
/// `mux` is a live mux.
#[no_mangle]
pub unsafe extern "C" fn floe_mux_remove_session(mux: *mut FloeMux, key: u64) -> FloeResult {
    guard(
        |c| c,
        || {},
        || {
            // SAFETY: the caller's promise about `mux`.
            let m = unsafe { mux_arg(mux) }?;
            m.mux.remove_session(key);
            Ok(FloeResult::Ok)
        },
    )
}

/// Whose datagram this is: `data` (`len` bytes) received on the caller's socket at
/// `local` from `remote`. True, with `*key` set, when a session takes it (give it to that
/// session's agent); false when nobody does (drop it: an unknown sender gets no answer
/// and costs nothing) or on an error (see `floe_last_error`).
///
/// # Safety
/// `mux` is a live mux; `local` and `remote` point to readable addresses; `data` points
/// to `len` readable bytes (or is NULL with `len` 0); `key` points to a writable
/// `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn floe_mux_route(
    mux: *mut FloeMux,
    local: *const FloeAddr,
    remote: *const FloeAddr,
    data: *const u8,
    len: usize,
    key: *mut u64,
) -> bool {
    guard(
        |_| false,
        || {},
        || {
            if key.is_null() {
                return Err(Error::null("key"));
            }
            // SAFETY: the caller's promise about `mux`.
            let m = unsafe { mux_arg(mux) }?;
            // SAFETY: the caller's promise about `local`.
            let local = unsafe { addr_arg(local, "local") }?;
            // SAFETY: the caller's promise about `remote`.
            let remote = unsafe { addr_arg(remote, "remote") }?;
            // SAFETY: the caller's promise about `data` and `len`.
            let bytes = unsafe { bytes_arg(data, len, "data") }?;
            match m.mux.route(local, remote, bytes) {
                Some(k) => {
                    // SAFETY: non-NULL, and the caller promises a writable u64.
                    unsafe { key.write(k) };
                    Ok(true)
                }
                None => Ok(false),
            }
        },
    )
}
