//! # floe-turn
//!
//! TURN (RFC 8656) as sans-IO state machines: the ChannelData codec, a [`client`] that
//! allocates, refreshes, installs permissions and channels and wraps data, and a
//! [`server`] core with long-term and TURN REST credentials, quotas and a peer-address
//! [`policy`]. Time is always an argument; nothing here opens a socket or reads a clock.
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

mod channel_data;
pub mod client;
mod error;
pub mod policy;
pub mod rest;
pub mod server;

pub use channel_data::{
    ChannelData, HEADER_LEN as CHANNEL_DATA_HEADER_LEN, MAX_CHANNEL, MAX_CHANNEL_RFC5766,
    MIN_CHANNEL,
};
pub use error::Error;
pub use floe_stun::{Transmit, Transport};
