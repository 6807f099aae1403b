//! The last line of defence of `floe serve`: a panic anywhere ends the process.
//!
//! tokio catches a panicking task and keeps the runtime going, so a panic in the TURN
//! core used to leave a process that was up but answered nothing, on every transport,
//! and that no supervisor would restart. The hook installed here runs on the panicking
//! thread before any unwinding: it prints the panic (message and location) and the
//! latest counters, then exits with status 70 (`EX_SOFTWARE`), so systemd's
//! `Restart=on-failure` (docs/operations.md) brings the server back at once.

use std::io::Write;
use std::sync::Mutex;

use floe_turn::server::ServerStats;
use tokio::sync::watch;

/// The exit status after a panic (sysexits.h `EX_SOFTWARE`).
pub const PANIC_EXIT: i32 = 70;

/// Installs the hook. `stats` gives the counters to print; `None` before the server is
/// up.
pub fn install(stats: Option<watch::Receiver<ServerStats>>) {
    let stats = Mutex::new(stats);
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("floe serve: fatal: {info}");
        eprintln!("floe serve: exiting with status {PANIC_EXIT} so a supervisor restarts it");
        // `try_lock`: a second panic while printing must not wait on the first.
        if let Ok(guard) = stats.try_lock() {
            if let Some(rx) = guard.as_ref() {
                let line = crate::serve::stats_json(&rx.borrow());
                println!("{line}");
            }
        }
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        std::process::exit(PANIC_EXIT);
    }));
}

/// Debug builds only: `FLOE_TEST_PANIC_AFTER_MS=N` makes a task of the server panic
/// after N ms, so tests can show the backstop on the real binary. Release builds have
/// no such switch.
#[cfg(debug_assertions)]
pub fn test_panic_from_env() {
    let Some(ms) = std::env::var("FLOE_TEST_PANIC_AFTER_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        #[allow(clippy::panic)]
        {
            panic!("FLOE_TEST_PANIC_AFTER_MS: a task panicked on purpose");
        }
    });
}

/// Release builds: nothing.
#[cfg(not(debug_assertions))]
pub fn test_panic_from_env() {}
