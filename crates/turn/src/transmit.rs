//! What the sans-IO state machines ask the runtime to send.

use std::net::SocketAddr;

/// The transport between a TURN client and its server (RFC 8656 §3.1). TLS is TCP as far
/// as the state machines are concerned: the runtime owns the TLS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// UDP: one message per datagram, requests retransmitted.
    Udp,
    /// TCP or TLS-over-TCP: a byte stream; ChannelData is padded to 4 bytes (§12.5).
    Tcp,
}

impl Transport {
    /// Whether the transport is a byte stream.
    pub fn is_stream(self) -> bool {
        self == Transport::Tcp
    }

    /// `udp` or `tcp`, for logs and metric labels (TLS is `tcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// One message to send: `data` from `source` to `destination` over `transport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// UDP datagram, or bytes on the TCP connection `source` <-> `destination`.
    pub transport: Transport,
    /// The local address to send from: a listener address, or (server side) a relayed
    /// transport address.
    pub source: SocketAddr,
    /// Where to send.
    pub destination: SocketAddr,
    /// The bytes.
    pub data: Vec<u8>,
}
