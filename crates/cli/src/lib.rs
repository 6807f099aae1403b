//! # floe-cli
//!
//! The library half of the `floe` binary: each subcommand's logic lives here, as a module
//! named after the subcommand, so that tests and fuzz targets can call it without
//! spawning the binary. `src/main.rs` only parses the command line and dispatches.
//!
//! - [`decode`]: `floe decode`, arguments and printing around floe-inspect (hex, raw bytes,
//!   pcap and pcapng).
//! - [`connect`]: `floe connect`, netcat over ICE.
//! - [`demo`]: `floe demo`, two peers connecting through simulated NATs.
//! - [`serve`]: `floe serve`, the STUN/TURN server, with its [`logging`].
//! - [`relay`]: `floe relay`, a TURN allocation held from the command line.
//! - [`stun`]: `floe stun`, one STUN Binding exchange (mapped address, RTT).
//! - [`nat`]: `floe nat`, RFC 5780 NAT behaviour discovery.
//! - [`user_key`]: `floe user-key`, a TURN user's long-term keys for a fleet's Redis.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod backstop;
pub mod connect;
pub mod connect_stats;
pub mod decode;
pub mod demo;
pub mod logging;
pub mod nat;
pub mod relay;
mod relay_tcp;
pub mod serve;
pub mod serve_config;
pub mod stun;
pub mod user_key;
