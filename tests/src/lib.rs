//! Shared helpers for floe's cross-crate integration tests (`tests/tests/`).
#![warn(missing_docs)]

pub mod ice_nodes;
pub mod turn_driver;
pub mod turn_nodes;
