//! STUN probes over a UDP socket: what an application asks a STUN server before (or
//! instead of) running ICE.
//!
//! - [`binding()`]: one Binding transaction (RFC 8489 §6): the server-reflexive (mapped)
//!   address, the round-trip time, and the RFC 5780 §7.3/§7.4 RESPONSE-ORIGIN and
//!   OTHER-ADDRESS when the server sends them. `floe stun` is this call.
//! - [`discover_nat`]: RFC 5780 §4 NAT behaviour discovery: the mapping (§4.3) and
//!   filtering (§4.4) behaviours and hairpinning (§3.4), against a server that sends
//!   OTHER-ADDRESS. `floe nat` is this call.
//!
//! Both treat what the network sends as hostile: a response is read whole (up to 64 KiB),
//! matched by transaction id, checked with [`floe_stun::transaction::check_response`]
//! (unknown comprehension-required attributes, RFC 8489 §6.3), and refused when its mapped
//! address is impossible (another family, `0.0.0.0:0`, multicast). A refused response is
//! discarded and the probe keeps waiting for a valid one until its deadline, so a single
//! forged datagram can neither end nor poison it.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use floe_peer::probe::{binding, ProbeConfig};
//! let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
//! let reply = binding(&socket, "192.0.2.1:3478".parse()?, Default::default(), &ProbeConfig::default()).await?;
//! println!("mapped {} in {:?}", reply.mapped, reply.rtt);
//! # Ok(()) }
//! ```

mod binding;
mod nat;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

pub use binding::{binding, transaction_config, BindingError, BindingReply};
pub use floe_stun::attributes::ChangeRequest;
pub use nat::{
    discover_nat, filtering_behaviour, hairpin, mapping_behaviour, Behaviour, NatConfig, NatError,
    NatReport, NatStep, NatTest, QUIET_TEST_TIMEOUT,
};

/// The default STUN port (RFC 8489 §18.6, RFC 7064 §3.2).
pub const DEFAULT_PORT: u16 = 3478;

/// The first retransmission timeout of a probe. RFC 8489 §6.2.1 recommends 500 ms for an
/// unknown path; a probe with a 5 s budget halves it so that five transmissions fit (0,
/// 0.25, 0.75, 1.75, 3.75 s).
pub const PROBE_RTO: Duration = Duration::from_millis(250);

/// How a probe retransmits and when it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeConfig {
    /// The first retransmission timeout (RFC 8489 §6.2.1 RTO); default [`PROBE_RTO`].
    pub rto: Duration,
    /// How long to wait for a valid response, retransmitting meanwhile; default 5 s.
    pub timeout: Duration,
}

impl ProbeConfig {
    /// Retransmits from [`PROBE_RTO`] until `timeout`.
    pub fn with_timeout(timeout: Duration) -> ProbeConfig {
        ProbeConfig {
            rto: PROBE_RTO,
            timeout,
        }
    }
}

impl Default for ProbeConfig {
    fn default() -> ProbeConfig {
        ProbeConfig::with_timeout(Duration::from_secs(5))
    }
}

/// The unspecified address of `server`'s family, port 0: where a probe socket binds when
/// the caller names no local address.
pub fn unspecified_for(server: SocketAddr) -> SocketAddr {
    match server {
        SocketAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        SocketAddr::V6(_) => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
    }
}
