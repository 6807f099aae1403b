//! # floe-ice
//!
//! A sans-IO ICE agent (RFC 8445). Work in progress: candidates and their RFC 8839 lines
//! so far.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod candidate;

pub use candidate::{Candidate, CandidateAddress, CandidateKind, TcpType, TransportProtocol};
