//! Shared helpers for the floe criterion benches (see `benches/`).
