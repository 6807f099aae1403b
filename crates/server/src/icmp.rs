//! ICMP errors for relayed traffic (RFC 8656 §11.5), read from the relay sockets' error
//! queues on Linux (`IP_RECVERR` / `IPV6_RECVERR`, through nix: reading `MSG_ERRQUEUE`
//! and its control messages safely needs more than socket2 offers). The kernel queues
//! the error of a datagram that drew an ICMP message (port unreachable, fragmentation
//! needed, time exceeded) with the datagram's destination, which is the peer; the core
//! relays it to the client ([`floe_turn::server::Server::handle_peer_icmp`]). Elsewhere
//! nothing is read.

use std::net::SocketAddr;

use floe_stun::attributes::Icmp;

/// Turns on the error queue of a relay socket; false if the system refused (the relay
/// then works as before, without ICMP).
#[cfg(target_os = "linux")]
pub(crate) fn enable(socket: &std::net::UdpSocket, ipv6: bool) -> bool {
    use nix::sys::socket::{setsockopt, sockopt};
    if ipv6 {
        setsockopt(socket, sockopt::Ipv6RecvErr, &true).is_ok()
    } else {
        setsockopt(socket, sockopt::Ipv4RecvErr, &true).is_ok()
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn enable(_: &std::net::UdpSocket, _: bool) -> bool {
    false
}

/// The ICMP errors queued on `socket`: (the peer the failed datagram went to, the ICMP
/// type, code and data). Reads until the queue is empty, at most 64.
#[cfg(target_os = "linux")]
pub(crate) fn drain(socket: &impl std::os::fd::AsRawFd) -> Vec<(SocketAddr, Icmp)> {
    use std::io::IoSliceMut;

    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};

    /// `SO_EE_ORIGIN_ICMP` and `SO_EE_ORIGIN_ICMP6` (linux/errqueue.h).
    const ORIGIN_ICMP: u8 = 2;
    const ORIGIN_ICMP6: u8 = 3;
    let mut out = Vec::new();
    let mut payload = [0u8; 64];
    let mut cmsg = nix::cmsg_space!(libc_sock_extended_err, [u8; 28]);
    for _ in 0..64 {
        let mut iov = [IoSliceMut::new(&mut payload)];
        let Ok(msg) = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        ) else {
            break;
        };
        let peer = msg.address.and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::V4((*v4).into()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into())))
        });
        let Ok(cmsgs) = msg.cmsgs() else { continue };
        for c in cmsgs {
            let (err, origin) = match c {
                ControlMessageOwned::Ipv4RecvErr(e, _) => (e, ORIGIN_ICMP),
                ControlMessageOwned::Ipv6RecvErr(e, _) => (e, ORIGIN_ICMP6),
                _ => continue,
            };
            if err.ee_origin != origin {
                continue;
            }
            if let Some(peer) = peer {
                out.push((
                    peer,
                    Icmp {
                        icmp_type: err.ee_type,
                        code: err.ee_code,
                        error_data: err.ee_info,
                    },
                ));
            }
        }
    }
    out
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn drain<S>(_: &S) -> Vec<(SocketAddr, Icmp)> {
    Vec::new()
}

/// Room for one `struct sock_extended_err` in the control buffer.
#[cfg(target_os = "linux")]
#[allow(non_camel_case_types)]
type libc_sock_extended_err = [u32; 4];
