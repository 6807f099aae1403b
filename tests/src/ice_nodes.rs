//! floe-ice agents as floe-netsim nodes (they live in floe-cli, which `floe demo` uses).

pub use floe_sim::{exchange_candidates, run_until_connected, AgentNode};
