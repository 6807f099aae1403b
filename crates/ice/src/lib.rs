//! # floe-ice
//!
//! A sans-IO ICE agent (RFC 8445). Work in progress: host and server-reflexive
//! candidates, checklists with Ta pacing and triggered checks, peer-reflexive candidates,
//! role-conflict repair, lowest-latency nomination, consent freshness. Relayed candidates,
//! renomination, ICE restart and ICE-lite are not done yet.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod agent;
pub mod candidate;
pub mod checklist;
pub mod config;
pub mod event;
pub mod sdp;

pub use agent::{Agent, Credentials, SendError, Transmit};
pub use candidate::{Candidate, CandidateAddress, CandidateKind, TcpType, TransportProtocol};
pub use checklist::{PairState, PairStats};
pub use config::{AgentConfig, Nomination, Role};
pub use event::{ConnectionState, Event, GatheringState, SelectedPair};
