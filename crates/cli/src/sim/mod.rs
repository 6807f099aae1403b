//! floe's sans-IO state machines as floe-netsim nodes: what `floe demo` runs, and what
//! the integration tests in `tests/` build their scenarios from.

mod agent_node;
mod turn_nodes;

pub use agent_node::{exchange_candidates, run_until_connected, AgentNode};
pub use turn_nodes::{TurnClientNode, TurnServerNode};
