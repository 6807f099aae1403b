//! floe-netsim: a deterministic simulated network (work in progress).
