//! Socket options applied to every socket a connection opens.

use std::io;
use std::net::SocketAddr;

use socket2::SockRef;

/// Marks the socket's packets with a DSCP code point (RFC 2474: the upper six bits of the
/// IPv4 TOS byte or the IPv6 traffic class; the lower two are ECN and stay 0).
///
/// `local` is the socket's address, which says which option applies. A value above 63
/// is refused.
pub(crate) fn set_dscp(socket: &SockRef<'_>, local: SocketAddr, dscp: u8) -> io::Result<()> {
    if dscp > 63 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("DSCP {dscp} is not a 6-bit value (0-63)"),
        ));
    }
    let tos = u32::from(dscp) << 2;
    if local.is_ipv4() {
        socket.set_tos_v4(tos)
    } else {
        socket.set_tclass_v6(tos)
    }
}

/// The DSCP code point a socket marks its packets with (the inverse of [`set_dscp`]).
#[cfg(test)]
pub(crate) fn dscp(socket: &SockRef<'_>, local: SocketAddr) -> io::Result<u8> {
    let tos = if local.is_ipv4() {
        socket.tos_v4()?
    } else {
        socket.tclass_v6()?
    };
    Ok(((tos >> 2) & 0x3f) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dscp_is_set_on_ipv4_udp_and_tcp_sockets_and_read_back() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = udp.local_addr().unwrap();
        assert_eq!(dscp(&SockRef::from(&udp), local).unwrap(), 0);
        set_dscp(&SockRef::from(&udp), local, 46).unwrap();
        assert_eq!(dscp(&SockRef::from(&udp), local).unwrap(), 46, "EF");
        assert_eq!(SockRef::from(&udp).tos_v4().unwrap(), 46 << 2);

        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        set_dscp(&SockRef::from(&tcp), local, 10).unwrap();
        assert_eq!(dscp(&SockRef::from(&tcp), local).unwrap(), 10, "AF11");
    }

    #[test]
    fn dscp_is_set_on_ipv6_sockets_as_the_traffic_class() {
        // Hosts without IPv6 cannot run this half.
        let Ok(udp) = std::net::UdpSocket::bind("[::1]:0") else {
            return;
        };
        let local = udp.local_addr().unwrap();
        set_dscp(&SockRef::from(&udp), local, 34).unwrap();
        assert_eq!(dscp(&SockRef::from(&udp), local).unwrap(), 34, "AF41");
        assert_eq!(SockRef::from(&udp).tclass_v6().unwrap(), 34 << 2);
    }

    #[test]
    fn dscp_above_six_bits_is_refused() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = udp.local_addr().unwrap();
        assert!(set_dscp(&SockRef::from(&udp), local, 64).is_err());
        assert_eq!(dscp(&SockRef::from(&udp), local).unwrap(), 0);
    }
}
