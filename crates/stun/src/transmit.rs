//! The one vocabulary of what the sans-IO state machines ask the runtime to send: the
//! [`Transport`] a message travels over and the [`Transmit`] itself. STUN runs over UDP,
//! TCP and TLS-over-TCP (RFC 8489 §6.2), so both live here, in the lowest crate, and
//! floe-turn and floe-ice re-export them (`floe_turn::{Transport, Transmit}`,
//! `floe_ice::{Transport, Transmit}`).

use std::fmt;
use std::net::SocketAddr;

/// How a message reaches its destination: UDP datagrams, or a TCP or TLS byte stream.
/// The runtime owns any TLS session; to the state machines TLS is a stream like TCP
/// ([`is_stream`](Transport::is_stream)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// UDP: one message per datagram, requests retransmitted (RFC 8489 §6.2.1).
    Udp,
    /// A TCP connection: a byte stream, framed per RFC 8489 §6.2.2; TURN ChannelData is
    /// padded to 4 bytes (RFC 8656 §12.5).
    Tcp,
    /// TLS over TCP (RFC 8489 §6.2.3; `turns:`, RFC 7065): a stream like [`Tcp`](Self::Tcp).
    Tls,
}

impl Transport {
    /// Whether this is a byte stream (TCP or TLS).
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// `udp`, `tcp` or `tls`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message to send: `data` from `source` to `destination` over `transport`.
///
/// Over UDP a datagram from the local socket `source`; over [`Transport::Tcp`] or
/// [`Transport::Tls`] the bytes go on the runtime's connection `source` <-> `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// UDP, or the stream the bytes go on.
    pub transport: Transport,
    /// The local address to send from: a socket the runtime owns, a listener address, or
    /// (TURN server side) a relayed transport address.
    pub source: SocketAddr,
    /// Where to send.
    pub destination: SocketAddr,
    /// The bytes.
    pub data: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::Transport;

    #[test]
    fn streams_and_labels() {
        assert!(!Transport::Udp.is_stream());
        assert!(Transport::Tcp.is_stream());
        assert!(Transport::Tls.is_stream());
        assert_eq!(Transport::Tls.to_string(), "tls");
        assert_eq!(Transport::Udp.as_str(), "udp");
    }
}
