//! floe-stun (work in progress).
