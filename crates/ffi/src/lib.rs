//! floe's C API: the sans-IO ICE agent (RFC 8445) behind plain C structs.
//!
//! The header is `include/floe.h`, generated from this crate by cbindgen
//! (`crates/ffi/cbindgen.toml`); `docs/c-api.md` describes the lifecycle. The agent is
//! the Rust [`floe_ice::Agent`] with the same vocabulary: inputs are
//! `floe_agent_handle_*(agent, now_us, …)`, outputs `floe_agent_poll_transmit`,
//! `floe_agent_poll_event` and `floe_agent_poll_timeout`. The caller owns the sockets
//! and the clock: time is microseconds on any monotonic clock the caller picks.
//!
//! The rules at the boundary:
//! - every function returns a [`FloeResult`] (or a pointer that is NULL, or `false`, on
//!   failure) and sets a message for [`floe_last_error`] on the calling thread;
//! - nothing panics across the boundary: a panic inside floe is caught, reported as
//!   [`FloeResult::Panic`], and the agent it happened in refuses every later call
//!   ([`FloeResult::Poisoned`]) except `floe_agent_free`;
//! - strings floe returns as `char *` belong to the caller, who frees them with
//!   [`floe_string_free`]; `const char *` and `const uint8_t *` fields of structs floe
//!   fills stay valid until the next call on the same agent;
//! - an agent may be used from any thread, one call at a time (it is `Send`, not `Sync`).
//!
//! [`FloeMux`] sorts the datagrams of one socket shared by many agents (a media server's
//! single port) to their sessions.
//!
//! A second level, [`FloePeer`], owns its sockets and a thread, like libnice's
//! `NiceAgent`: signalling goes out through a callback and comes in as JSON lines, data
//! arrives through a callback.
//!
//! This is the one crate of the workspace where `unsafe` is allowed: every block says
//! why it is sound, and the tests run under AddressSanitizer in CI.

mod addr;
mod agent;
mod agent_tcp;
mod error;
mod event;
mod mux;
mod peer;

pub use addr::{floe_addr_format, floe_addr_parse, FloeAddr, FloeTransport};
pub use agent::{
    floe_agent_add_host, floe_agent_add_remote_candidate, floe_agent_add_turn_server,
    floe_agent_close, floe_agent_config_default, floe_agent_connection_state, floe_agent_free,
    floe_agent_handle_data_received, floe_agent_handle_end_of_remote_candidates,
    floe_agent_handle_mdns_resolved, floe_agent_handle_receive, floe_agent_handle_timeout,
    floe_agent_local_pwd, floe_agent_local_ufrag, floe_agent_new, floe_agent_poll_event,
    floe_agent_poll_timeout, floe_agent_poll_transmit, floe_agent_remove_host,
    floe_agent_remove_remote_candidate, floe_agent_restart, floe_agent_send,
    floe_agent_set_remote_credentials, floe_agent_set_remote_lite, FloeAgent, FloeAgentConfig,
    FloeReceived, FloeTransmit,
};
pub use agent_tcp::{
    floe_agent_add_tcp_host, floe_agent_handle_tcp_closed, floe_agent_handle_tcp_receive,
    floe_agent_is_tcp_base,
};
pub use error::{floe_last_error, floe_string_free, floe_version, FloeResult};
pub use event::{
    FloeCandidateKind, FloeConnectionState, FloeEvent, FloeEventKind, FloeGatheringState,
    FloeRecovery, FloeSelectedPair,
};
pub use mux::{
    floe_mux_add_session, floe_mux_free, floe_mux_new, floe_mux_remove_session, floe_mux_route,
    floe_mux_set_ufrag, FloeMux,
};
pub use peer::{
    floe_peer_free, floe_peer_handle_signal, floe_peer_new, floe_peer_send, floe_peer_stats,
    floe_peer_wait, FloeDataFn, FloePeer, FloePeerConfig, FloePeerStats, FloeSignalFn, FloeStateFn,
};
