//! Host candidate ports from a configured range ([`PeerConfig::port_range`]).
//!
//! [`PeerConfig::port_range`]: crate::PeerConfig::port_range

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use rand::Rng;
use tokio::net::UdpSocket;

/// Binds a UDP socket on `ip` at a free port of `range`: from a random port onwards,
/// wrapping around, each port tried once. Two peers on one host then rarely contend
/// for the same first port. The error names the range when every port is taken.
pub(crate) async fn bind_in_range(
    ip: IpAddr,
    range: &RangeInclusive<u16>,
) -> io::Result<UdpSocket> {
    let (start, end) = (u32::from(*range.start()), u32::from(*range.end()));
    if start > end {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty port range",
        ));
    }
    let size = end - start + 1;
    let first = rand::thread_rng().gen_range(0..size);
    let mut last_error = None;
    for i in 0..size {
        let port = start + (first + i) % size;
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        match UdpSocket::bind(SocketAddr::new(ip, port)).await {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_error = Some(e),
            // Not a busy port (no such address, no permission): no other port will do.
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!(
            "every port of {start}-{end} on {ip} is in use ({})",
            last_error.map_or_else(|| "none tried".to_owned(), |e| e.to_string())
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ports above the Linux ephemeral range (32768-60999), so the OS hands none of them
    // to other tests meanwhile.
    #[tokio::test]
    async fn sockets_take_free_ports_of_the_range_until_it_is_full() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let range = 61_200..=61_203;
        let mut held = Vec::new();
        for _ in 0..4 {
            let s = bind_in_range(ip, &range).await.unwrap();
            let port = s.local_addr().unwrap().port();
            assert!(range.contains(&port), "{port}");
            assert!(!held
                .iter()
                .any(|h: &UdpSocket| h.local_addr().unwrap().port() == port));
            held.push(s);
        }
        let full = bind_in_range(ip, &range).await.unwrap_err();
        assert_eq!(full.kind(), io::ErrorKind::AddrInUse);
        assert!(full.to_string().contains("61200-61203"), "{full}");
        drop(held.pop());
        assert!(bind_in_range(ip, &range).await.is_ok());
    }

    #[tokio::test]
    async fn an_address_that_does_not_exist_fails_at_once() {
        // TEST-NET-1 is not on any interface here.
        let e = bind_in_range("192.0.2.1".parse().unwrap(), &(61_210..=61_260))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrNotAvailable);
    }
}
