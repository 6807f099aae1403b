//! # floe-ice
//!
//! A sans-IO ICE agent (RFC 8445): host, server-reflexive, peer-reflexive and relayed
//! candidates (TURN over UDP, TCP or TLS, raced), checklists with Ta pacing and triggered
//! checks, role-conflict repair, lowest-latency nomination with relay fallback,
//! renomination, consent freshness (RFC 7675), recovery when the selected pair goes quiet
//! (another live pair, pairs checked again, then a restart), trickle (RFC 8838), ICE restart.
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

pub mod agent;
mod binding;
pub mod candidate;
pub mod checklist;
pub mod config;
mod consent;
mod credentials;
pub mod event;
pub mod fast_answer;
mod gather;
mod liveness;
pub mod mdns;
pub mod mux;
mod nomination;
pub mod sdp;
pub mod stats;
mod transactions;
mod tuple_hash;

pub use agent::{Agent, Credentials, SendError, TurnServer};
pub use candidate::{Candidate, CandidateAddress, CandidateKind, TcpType, TransportProtocol};
pub use checklist::{PairState, PairStats};
pub use config::{AgentConfig, Nomination, Role};
pub use event::{ConnectionState, Event, GatheringState, Recovery, SelectedPair};
pub use floe_stun::{Transmit, Transport};
pub use stats::{AgentStats, CandidateStats};
