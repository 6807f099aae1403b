//! Result codes, the per-thread error message, caught panics, and the checks every
//! pointer from C goes through.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a call returns. Anything but `FLOE_RESULT_OK` leaves a message in
/// [`floe_last_error`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloeResult {
    /// It worked.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullPointer = 1,
    /// An argument was invalid: not UTF-8, an address or candidate line that does not
    /// parse, an unknown enum value.
    InvalidArgument = 2,
    /// The call does not fit the agent's state (sending before a pair is selected, after
    /// consent expired, or after close).
    InvalidState = 3,
    /// floe panicked inside this call (a bug): the agent is poisoned.
    Panic = 4,
    /// An earlier call panicked in this agent; only `floe_agent_free` works.
    Poisoned = 5,
    /// The wait ended before what it waited for happened.
    Timeout = 6,
    /// The send queue is full; the datagram was not taken (try again, or drop it as UDP
    /// would).
    WouldBlock = 7,
}

/// An error on its way to C: the code and the message for [`floe_last_error`].
#[derive(Debug)]
pub(crate) struct Error {
    pub(crate) code: FloeResult,
    pub(crate) message: String,
}

impl Error {
    pub(crate) fn new(code: FloeResult, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::new(FloeResult::InvalidArgument, message)
    }

    pub(crate) fn null(what: &str) -> Error {
        Error::new(FloeResult::NullPointer, format!("{what} is NULL"))
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // A message with a NUL in it (from a caller's string) is cut there.
    let bytes = message.split('\0').next().unwrap_or_default();
    let c = CString::new(bytes).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Runs `f`, catching a panic: what every exported function's body goes through. On an
/// error or a panic the message is stored for [`floe_last_error`] and `on_error` says
/// what to return; `poison` is called after a panic.
pub(crate) fn guard<T>(
    on_error: impl FnOnce(FloeResult) -> T,
    poison: impl FnOnce(),
    f: impl FnOnce() -> Result<T, Error>,
) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            on_error(e.code)
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            set_last_error(&format!("floe panicked (a bug; please report it): {what}"));
            poison();
            on_error(FloeResult::Panic)
        }
    }
}

/// Borrows a C string argument as UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a` and is not
/// written meanwhile.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::null(what));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string alive for 'a.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|_| Error::invalid(format!("{what} is not UTF-8")))
}

/// Borrows a byte buffer argument. NULL is allowed only with `len` 0.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that outlive `'a` and are not written
/// meanwhile.
pub(crate) unsafe fn bytes_arg<'a>(
    p: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Error> {
    if p.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Error::null(what))
        };
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!("{what}: length {len} is too large")));
    }
    // SAFETY: non-NULL, at most isize::MAX bytes, and the caller promises `len` readable
    // bytes alive and unchanged for 'a.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A Rust string as a `char *` the caller frees with [`floe_string_free`].
pub(crate) fn owned_c_string(s: &str) -> *mut c_char {
    CString::new(s.replace('\0', ""))
        .unwrap_or_default()
        .into_raw()
}

/// The message of the last failed call on this thread (empty if none failed yet).
/// Valid until the next floe call on this thread; do not free it.
#[no_mangle]
pub extern "C" fn floe_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Frees a string floe returned as `char *`. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a pointer floe returned as `char *` that was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn floe_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    // SAFETY: the caller promises `s` came from `CString::into_raw` in this crate
    // (`owned_c_string`) and is freed once.
    drop(unsafe { CString::from_raw(s) });
}

/// floe's version, e.g. "0.1.0". Static; do not free it.
#[no_mangle]
pub extern "C" fn floe_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"",
        };
    VERSION.as_ptr()
}
