//! floe-turn's client and server as floe-netsim nodes (they live in floe-cli, which
//! `floe demo` uses).

pub use floe_sim::{TurnClientNode, TurnServerNode};
