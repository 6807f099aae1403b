//! # floe-peer
//!
//! The thin tokio runtime around floe-ice: UDP sockets on every usable interface (or the
//! addresses you name), STUN and TURN servers from RFC 7064/7065 URIs (TURN over UDP, TCP
//! and TLS; a plain `turn:` URI races UDP and TCP), signalling through a small trait pair,
//! and [`PeerConnection`]: `connect().await` resolves once a path is selected; then
//! `send`/`recv` datagrams, watch the selected path and its RTT.
//!
//! ```no_run
//! # async fn run() -> Result<(), floe_peer::PeerError> {
//! use floe_peer::{memory_pair, PeerConfig, PeerConnection, Side};
//! let ((a_tx, a_rx), (b_tx, b_rx)) = memory_pair();
//! let (a, b) = tokio::join!(
//!     PeerConnection::connect(PeerConfig::default(), Side::Offer, a_tx, a_rx),
//!     PeerConnection::connect(PeerConfig::default(), Side::Answer, b_tx, b_rx),
//! );
//! let (a, mut b) = (a?, b?);
//! a.send(b"hello").await?;
//! assert_eq!(b.recv().await.as_deref(), Some(&b"hello"[..]));
//! println!("path: {:?}", a.selected());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod addresses;
mod config;
mod connection;
mod driver;
mod fast_path;
mod handshake;
mod host_names;
mod ice_tcp;
pub mod interfaces;
mod mdns;
pub mod mux_server;
mod ports;
pub mod probe;
mod session;
pub mod signal;
mod socket_reader;
mod sockopt;
pub mod turn;
pub mod uri;

pub use config::{
    CandidateInfo, PeerConfig, PeerError, PeerEvent, PeerEvents, PeerStats, Side, TurnServerConfig,
};
pub use connection::PeerConnection;
pub use fast_path::DataSender;
pub use interfaces::InterfacePolicy;
pub use mux_server::{MuxServer, MuxSession};
pub use signal::{
    memory_pair, Description, JsonLinesReceiver, JsonLinesSender, SignalMessage, SignalReceiver,
    SignalSender,
};
pub use uri::{IceServerUri, Scheme, UriTransport};
