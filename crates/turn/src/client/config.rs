//! Client configuration.

use std::net::SocketAddr;
use std::time::Duration;

use floe_stun::attributes::AddressFamily;
use floe_stun::transaction::TransactionConfig;

use crate::Transport;

/// Configuration of one TURN allocation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The local address the client sends from (the runtime's socket, or the local end of
    /// the TCP connection).
    pub local: SocketAddr,
    /// The TURN server.
    pub server: SocketAddr,
    /// UDP, or TCP/TLS (a byte stream; the runtime owns the connection).
    pub transport: Transport,
    /// Long-term credential username (or a TURN REST username, see [`crate::rest`]).
    pub username: String,
    /// The password.
    pub password: String,
    /// The lifetime to ask for (RFC 8656 §7.1: default 10 min).
    pub lifetime: Duration,
    /// The family of the relayed address (REQUESTED-ADDRESS-FAMILY; IPv4 is the default
    /// and is not sent).
    pub family: AddressFamily,
    /// Ask for an IPv6 relayed address as well (ADDITIONAL-ADDRESS-FAMILY, RFC 8656 §7.1).
    pub dual_stack: bool,
    /// SOFTWARE to send, if any.
    pub software: Option<String>,
    /// Retransmission settings for requests over UDP.
    pub transaction: TransactionConfig,
    /// When to refresh a permission (RFC 8656 §9: permissions last 300 s).
    pub permission_refresh: Duration,
    /// When to refresh a channel (RFC 8656 §12: bindings last 600 s).
    pub channel_refresh: Duration,
    /// How many outstanding permissions and channels the client keeps.
    pub max_peers: usize,
    /// Ask for a TCP relayed address (RFC 6062: REQUESTED-TRANSPORT TCP; needs a TCP or
    /// TLS `transport`): data then goes over a connection per peer
    /// ([`Client::connect`](super::Client::connect), [`Client::connection_bind`](super::Client::connection_bind)).
    pub tcp_relay: bool,
}

impl ClientConfig {
    /// A configuration with the defaults for everything but the addresses and credentials.
    pub fn new(
        local: SocketAddr,
        server: SocketAddr,
        transport: Transport,
        username: &str,
        password: &str,
    ) -> ClientConfig {
        ClientConfig {
            local,
            server,
            transport,
            username: username.to_owned(),
            password: password.to_owned(),
            lifetime: Duration::from_secs(600),
            family: AddressFamily::Ipv4,
            dual_stack: false,
            software: None,
            transaction: TransactionConfig::default(),
            permission_refresh: Duration::from_secs(240),
            channel_refresh: Duration::from_secs(540),
            max_peers: 256,
            tcp_relay: false,
        }
    }
}
