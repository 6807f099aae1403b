//! How bytes leave the agent: the one [`Transport`] type of the crate and the
//! [`Transmit`] the runtime sends. Both the agent and its events name these types, so
//! they live here rather than in either (which keeps `event` from importing `agent`).

use std::fmt;
use std::net::SocketAddr;

/// How a local socket reaches its destination: UDP, or a stream to a TURN server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP datagrams (and all host and server-reflexive traffic).
    Udp,
    /// A TCP connection (RFC 8656 §3.1; framing per RFC 8489 §6.2.2).
    Tcp,
    /// TLS over TCP (`turns:`, RFC 7065); the runtime does the TLS.
    Tls,
}

impl Transport {
    /// Whether this is a byte stream (TCP or TLS).
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// `udp`, `tcp` or `tls`.
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

/// A datagram to send: from `source` (a local socket the runtime owns) to `destination`.
///
/// With [`Transport::Tcp`] or [`Transport::Tls`] the bytes go on the runtime's connection to
/// the TURN server `destination` instead (see
/// [`Agent::handle_stream_receive`](crate::Agent::handle_stream_receive)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// UDP, or the stream to a TURN server.
    pub transport: Transport,
    /// The local socket address to send from.
    pub source: SocketAddr,
    /// Where to.
    pub destination: SocketAddr,
    /// The bytes.
    pub data: Vec<u8>,
}
