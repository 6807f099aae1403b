//! # floe-sim
//!
//! floe's sans-IO state machines as floe-netsim nodes: what `floe demo` runs, and what
//! the integration tests in `tests/` and the benches build their scenarios from. A
//! library, so that none of them depends on the `floe` binary's crate.

mod agent_node;
mod ice_tcp;
mod turn_nodes;
pub mod world;

pub use agent_node::{exchange_candidates, run_until_connected, AgentNode};
pub use turn_nodes::{TurnClientNode, TurnServerNode};
