//! STUN codec benchmarks (filled in with floe-stun).
fn main() {}
