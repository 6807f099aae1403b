//! Logs of `floe serve` on stderr, through `tracing-subscriber`: human-readable text
//! (the default) or one JSON object per line for a log pipeline (`--log-format json`).
//!
//! The level comes from `--log-level`, else `RUST_LOG`, else `info`; either takes
//! `tracing` filter directives (`warn`, `floe_turn=debug,info`). At `info` the server
//! logs its state changes: listening, draining, stopping, and one line per allocation
//! created, refreshed, expired or deleted, each with the user, the 5-tuple, the relayed
//! addresses and the bytes relayed each way. Per-packet events are `debug`.
//! Passwords, keys and nonces are never logged.
//!
//! Lines are written by a thread of their own (`tracing-appender`'s non-blocking
//! writer): a log pipe that stalls (a full journald or a stopped `| less`) must not stall
//! the TURN cores that log allocation events. At most [`BUFFERED_LINES`] wait; past that,
//! new lines are dropped rather than blocking the cores, and counted
//! (`floe_log_lines_dropped_total` with `--metrics`).

use clap::ValueEnum;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// `2024-05-01T12:00:00.000000Z  INFO floe_server::events: allocation created user=alice ...`
    #[default]
    Text,
    /// `{"timestamp":"...","level":"INFO","message":"allocation created","user":"alice",...}`
    Json,
}

/// Most log lines waiting for a stalled stderr before lines are dropped.
pub const BUFFERED_LINES: usize = 65_536;

/// Installs the subscriber for the process; `level` overrides `RUST_LOG`. Keep the guard
/// until the process ends: dropping it writes out what is buffered. The counter says how
/// many lines were dropped (the metric `floe_log_lines_dropped_total`).
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(WorkerGuard, ErrorCounter), String> {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).map_err(|e| format!("--log-level {l}: {e}"))?,
        None => match std::env::var("RUST_LOG") {
            Ok(l) if !l.trim().is_empty() => {
                EnvFilter::try_new(&l).map_err(|e| format!("RUST_LOG={l}: {e}"))?
            }
            _ => EnvFilter::new("info"),
        },
    };
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("floe-log")
        .finish(std::io::stderr());
    let dropped = writer.error_counter();
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_env_filter(filter);
    let installed = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok((guard, dropped))
}
