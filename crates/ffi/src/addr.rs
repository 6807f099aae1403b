//! Socket addresses and transports as plain C values.

use std::ffi::c_char;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use floe_ice::Transport;

use crate::error::{guard, str_arg, Error, FloeResult};

/// An IPv4 or IPv6 socket address. `family` is 4 or 6; an IPv4 address is in the first
/// four bytes of `ip`; `port` is in host byte order. (An IPv6 scope id is not carried.)
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FloeAddr {
    /// 4 or 6.
    pub family: u8,
    /// The port, host byte order.
    pub port: u16,
    /// The address bytes, network order: 4 used for IPv4, 16 for IPv6.
    pub ip: [u8; 16],
}

impl From<SocketAddr> for FloeAddr {
    fn from(a: SocketAddr) -> FloeAddr {
        let mut ip = [0u8; 16];
        let family = match a.ip() {
            IpAddr::V4(v4) => {
                ip[..4].copy_from_slice(&v4.octets());
                4
            }
            IpAddr::V6(v6) => {
                ip = v6.octets();
                6
            }
        };
        FloeAddr {
            family,
            port: a.port(),
            ip,
        }
    }
}

impl FloeAddr {
    /// The Rust address, or an error for a family other than 4 or 6.
    pub(crate) fn to_socket_addr(self) -> Result<SocketAddr, Error> {
        let a = self;
        let ip = match a.family {
            4 => IpAddr::V4(Ipv4Addr::new(a.ip[0], a.ip[1], a.ip[2], a.ip[3])),
            6 => IpAddr::V6(Ipv6Addr::from(a.ip)),
            f => return Err(Error::invalid(format!("address family {f} (want 4 or 6)"))),
        };
        Ok(SocketAddr::new(ip, a.port))
    }
}

/// Reads a `FloeAddr` argument.
///
/// # Safety
/// `p` is NULL or points to a readable `FloeAddr`.
pub(crate) unsafe fn addr_arg(p: *const FloeAddr, what: &str) -> Result<SocketAddr, Error> {
    if p.is_null() {
        return Err(Error::null(what));
    }
    // SAFETY: non-NULL and the caller promises a readable FloeAddr; it is Copy and every
    // bit pattern of its fields is a valid value.
    let a = unsafe { *p };
    a.to_socket_addr()
        .map_err(|e| Error::invalid(format!("{what}: {}", e.message)))
}

/// How a transmit travels: `UDP` datagrams, or a `TCP` or `TLS` stream to a TURN server
/// that the caller owns (RFC 4571 framing is floe's).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloeTransport {
    /// UDP.
    Udp = 0,
    /// TCP.
    Tcp = 1,
    /// TLS over TCP (the caller runs the TLS).
    Tls = 2,
}

impl From<Transport> for FloeTransport {
    fn from(t: Transport) -> FloeTransport {
        match t {
            Transport::Tcp => FloeTransport::Tcp,
            Transport::Tls => FloeTransport::Tls,
            Transport::Udp => FloeTransport::Udp,
        }
    }
}

impl From<FloeTransport> for Transport {
    fn from(t: FloeTransport) -> Transport {
        match t {
            FloeTransport::Udp => Transport::Udp,
            FloeTransport::Tcp => Transport::Tcp,
            FloeTransport::Tls => Transport::Tls,
        }
    }
}

/// Parses `192.0.2.1:3478` or `[2001:db8::1]:3478` into `out`.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string; `out` is NULL or points to a writable
/// `FloeAddr`.
#[no_mangle]
pub unsafe extern "C" fn floe_addr_parse(text: *const c_char, out: *mut FloeAddr) -> FloeResult {
    guard(
        |code| code,
        || {},
        || {
            // SAFETY: the caller's promise about `text`, passed on.
            let text = unsafe { str_arg(text, "text") }?;
            if out.is_null() {
                return Err(Error::null("out"));
            }
            let a: SocketAddr = text
                .parse()
                .map_err(|_| Error::invalid(format!("{text:?} is not IP:PORT")))?;
            // SAFETY: non-NULL, and the caller promises a writable FloeAddr.
            unsafe { out.write(a.into()) };
            Ok(FloeResult::Ok)
        },
    )
}

/// Writes `addr` as text (`192.0.2.1:3478`, `[2001:db8::1]:3478`) into `buf` of `len`
/// bytes, NUL-terminated. Returns the length without the NUL, or 0 if `addr` is invalid
/// or `buf` too small (48 bytes always suffice).
///
/// # Safety
/// `addr` is NULL or points to a readable `FloeAddr`; `buf` is NULL or points to `len`
/// writable bytes.
#[no_mangle]
pub unsafe extern "C" fn floe_addr_format(
    addr: *const FloeAddr,
    buf: *mut c_char,
    len: usize,
) -> usize {
    guard(
        |_| 0,
        || {},
        || {
            // SAFETY: the caller's promise about `addr`, passed on.
            let a = unsafe { addr_arg(addr, "addr") }?;
            if buf.is_null() {
                return Err(Error::null("buf"));
            }
            let text = a.to_string();
            if text.len() + 1 > len {
                return Err(Error::invalid(format!(
                    "buf: {len} bytes, need {}",
                    text.len() + 1
                )));
            }
            // SAFETY: `buf` is non-NULL with `len` writable bytes (the caller's promise),
            // and text.len() + 1 <= len; the source is a fresh String, so no overlap.
            let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
            out[..text.len()].copy_from_slice(text.as_bytes());
            out[text.len()] = 0;
            Ok(text.len())
        },
    )
}
