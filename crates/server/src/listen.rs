//! Listening sockets for the workers: with more than one worker every worker binds the
//! same address with `SO_REUSEPORT`, and the kernel's reuseport hash keeps a client's
//! 5-tuple (and a TCP connection) on one worker.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

fn socket(
    addr: SocketAddr,
    kind: Type,
    protocol: Protocol,
    reuse_port: bool,
) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if kind == Type::STREAM {
        // What std's TcpListener::bind does on Unix: a restarted server can bind at once.
        s.set_reuse_address(true)?;
    }
    // Linux's SO_REUSEPORT spreads datagrams and connections over the sockets by a
    // hash of the 5-tuple; other systems' differ (macOS gives everything to one
    // socket), so several workers are a Linux feature.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    if reuse_port {
        return Err(io::Error::other(
            "several workers need Linux's SO_REUSEPORT; run one worker here",
        ));
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}

/// A UDP socket on `addr`, shared by the workers when `reuse_port`.
pub(crate) fn udp(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let s = socket(addr, Type::DGRAM, Protocol::UDP, reuse_port)?;
    UdpSocket::from_std(s.into())
}

/// A TCP listener on `addr`, shared by the workers when `reuse_port`.
pub(crate) fn tcp(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let s = socket(addr, Type::STREAM, Protocol::TCP, reuse_port)?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}
