//! TURN on tokio: the one place floe talks to TURN servers over real sockets.
//!
//! - [`TurnDriver`] drives a sans-IO [`floe_turn::client::Client`] (one allocation) over
//!   a [`TurnSocket`]: UDP, TCP or TLS (RFC 8656 §3.1, RFC 7065). `floe relay` and the
//!   integration tests against floe-server and coturn use it.
//! - [`connect_stream`] opens the TCP and TLS connections (from a chosen interface, with
//!   DSCP and timeouts); [`tls_client_config`] builds the rustls configuration for
//!   `turns:` servers. [`PeerConnection`](crate::PeerConnection) opens its connections to
//!   TURN servers with both: there the ICE agent owns the TURN clients and the
//!   connection only carries their bytes.
//! - [`TcpAllocation`] is TURN-TCP (RFC 6062): a TCP relayed address whose connections
//!   to and from peers are byte streams (`floe relay --tcp-connect` / `--tcp-accept`).

mod driver;
mod socket;
pub(crate) mod streams;
mod tcp;
mod tls;

pub mod proxy;

pub use driver::{DriverError, TurnDriver};
pub use floe_ice::Transport;
pub use proxy::{HttpProxy, ProxyRoute};
pub use socket::{connect_stream, ConnectError, StreamOptions, TlsConnect, TurnSocket, TurnStream};
pub use tcp::{TcpAllocation, TcpRelayConfig, TcpRelayError};
pub use tls::{load_pem_certificates, tls_client_config, TlsConfigError, TlsTrust};
