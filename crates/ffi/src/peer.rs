//! `FloePeer`: floe-peer's socket-owning [`PeerConnection`] for C, in the shape of
//! libnice's `NiceAgent`: floe opens the sockets, gathers and checks on a thread of its
//! own, hands signalling messages and received data to the caller's callbacks, and takes
//! the peer's signalling messages and data to send from any thread.

use std::ffi::{c_char, c_void, CString};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use floe_ice::ConnectionState;
use floe_peer::{
    IceServerUri, PeerConfig, PeerConnection, PeerEvent, PeerStats, Side, SignalMessage,
    SignalReceiver, SignalSender, TurnServerConfig,
};
use tokio::sync::{mpsc, oneshot};

use crate::addr::{addr_arg, FloeAddr};
use crate::error::{bytes_arg, guard, str_arg, Error, FloeResult};
use crate::event::{FloeConnectionState, FloeSelectedPair};

/// Called with each signalling message floe wants delivered to the other peer: one JSON
/// line (the format of docs/connect.md, which `floe connect` speaks), valid during the
/// call.
pub type FloeSignalFn = Option<unsafe extern "C" fn(user: *mut c_void, line: *const c_char)>;
/// Called with each datagram from the peer, valid during the call.
pub type FloeDataFn = Option<unsafe extern "C" fn(user: *mut c_void, data: *const u8, len: usize)>;
/// Called on each connection state change.
pub type FloeStateFn = Option<unsafe extern "C" fn(user: *mut c_void, state: FloeConnectionState)>;

/// How [`floe_peer_new`] sets a peer up. Zero it (`{0}`) and fill what you need;
/// `on_signal` is required. The callbacks run on floe's own thread, one at a time; they
/// may call `floe_peer_handle_signal` and `floe_peer_send` on any peer, but not the
/// functions that wait (`floe_peer_wait`, `floe_peer_stats`, `floe_peer_free`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FloePeerConfig {
    /// Whether this side makes the offer (and controls ICE); the other side answers.
    pub offerer: bool,
    /// `stun:` URIs (RFC 7064), `stun_uri_count` of them.
    pub stun_uris: *const *const c_char,
    /// How many `stun_uris`.
    pub stun_uri_count: usize,
    /// `turn:`/`turns:` URIs (RFC 7065), `turn_uri_count` of them, with
    /// `turn_username` and `turn_password`.
    pub turn_uris: *const *const c_char,
    /// How many `turn_uris`.
    pub turn_uri_count: usize,
    /// The TURN username (required with TURN URIs).
    pub turn_username: *const c_char,
    /// The TURN password (required with TURN URIs).
    pub turn_password: *const c_char,
    /// Local addresses to bind (port 0 picks one), `bind_count` of them; none means every
    /// usable interface.
    pub bind: *const FloeAddr,
    /// How many `bind` addresses.
    pub bind_count: usize,
    /// Host candidate ports from `port_range_low`..=`port_range_high` (both 0: the OS
    /// picks), for a firewall that opens a known range.
    pub port_range_low: u16,
    /// The top of the port range.
    pub port_range_high: u16,
    /// Offer only relayed candidates.
    pub relay_only: bool,
    /// Give up connecting after this many milliseconds; 0 for floe's default.
    pub connect_timeout_ms: u32,
    /// Signalling out (required).
    pub on_signal: FloeSignalFn,
    /// Data in (optional: without it, received data is dropped).
    pub on_data: FloeDataFn,
    /// State changes (optional).
    pub on_state: FloeStateFn,
    /// Passed to every callback.
    pub user: *mut c_void,
}

/// The caller's callbacks, carried to floe's thread.
#[derive(Debug, Clone, Copy)]
struct Callbacks {
    on_signal: unsafe extern "C" fn(*mut c_void, *const c_char),
    on_data: FloeDataFn,
    on_state: FloeStateFn,
    user: *mut c_void,
}

// SAFETY: the C API documents that the callbacks run on floe's thread with `user`; the
// caller promises both may be used from there. floe itself never dereferences `user`.
unsafe impl Send for Callbacks {}
// SAFETY: as above; the callbacks are only called from floe's one runtime thread.
unsafe impl Sync for Callbacks {}

impl Callbacks {
    fn signal(&self, line: &str) {
        let c = CString::new(line.replace('\0', "")).unwrap_or_default();
        // SAFETY: a function pointer the caller gave for this purpose, with its `user`
        // and a NUL-terminated line valid for the call.
        unsafe { (self.on_signal)(self.user, c.as_ptr()) };
    }

    fn data(&self, bytes: &[u8]) {
        if let Some(f) = self.on_data {
            // SAFETY: the caller's callback with its `user`; `bytes` is valid for the call.
            unsafe { f(self.user, bytes.as_ptr(), bytes.len()) };
        }
    }

    fn state(&self, state: ConnectionState) {
        if let Some(f) = self.on_state {
            // SAFETY: the caller's callback with its `user`.
            unsafe { f(self.user, state.into()) };
        }
    }
}

/// Signalling out: each message as a JSON line to `on_signal`.
struct CallbackSender(Callbacks);

impl SignalSender for CallbackSender {
    async fn send(&mut self, msg: SignalMessage) -> std::io::Result<()> {
        let line = serde_json::to_string(&msg).map_err(std::io::Error::other)?;
        self.0.signal(&line);
        Ok(())
    }
}

/// Signalling in: what `floe_peer_handle_signal` parsed.
struct ChannelReceiver(mpsc::UnboundedReceiver<SignalMessage>);

impl SignalReceiver for ChannelReceiver {
    async fn recv(&mut self) -> std::io::Result<Option<SignalMessage>> {
        Ok(self.0.recv().await)
    }
}

/// What the caller's threads read: the state, and why it failed.
#[derive(Debug, Default)]
struct Status {
    state: Option<ConnectionState>,
    error: Option<String>,
    finished: bool,
}

#[derive(Debug, Default)]
struct Shared {
    status: Mutex<Status>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Status)) {
        let mut s = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut s);
        self.changed.notify_all();
    }

    fn state(&self) -> Option<ConnectionState> {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .state
    }
}

/// How many datagrams `floe_peer_send` queues before `FLOE_RESULT_WOULD_BLOCK`.
const SEND_QUEUE: usize = 1024;

/// A peer connection that owns its sockets. Create it with [`floe_peer_new`], free it
/// with [`floe_peer_free`]. Its functions may be called from any thread.
#[derive(Debug)]
pub struct FloePeer {
    runtime: Option<tokio::runtime::Runtime>,
    signals: mpsc::UnboundedSender<SignalMessage>,
    data: mpsc::Sender<Vec<u8>>,
    stats: mpsc::Sender<oneshot::Sender<Option<PeerStats>>>,
    shutdown: Option<oneshot::Sender<()>>,
    shared: Arc<Shared>,
}

/// Whether the calling thread is floe's own (a callback), where waiting would deadlock.
fn on_floe_thread() -> Result<(), Error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::new(
            FloeResult::InvalidState,
            "called from a floe callback: wait from your own thread",
        ));
    }
    Ok(())
}

/// Reads `count` C strings at `p`.
///
/// # Safety
/// `p` is NULL with `count` 0, or points to `count` pointers to NUL-terminated strings.
unsafe fn str_list(
    p: *const *const c_char,
    count: usize,
    what: &str,
) -> Result<Vec<String>, Error> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(Error::null(what));
    }
    if count > 64 {
        return Err(Error::invalid(format!("{what}: at most 64")));
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: i < count, and the caller promises `count` pointers at `p`.
        let at = unsafe { p.add(i) };
        // SAFETY: `at` is one of those `count` readable pointers.
        let item = unsafe { at.read() };
        // SAFETY: each is a NUL-terminated string (the caller's promise).
        out.push(unsafe { str_arg(item, what) }?.to_owned());
    }
    Ok(out)
}

/// The Rust configuration from the C one.
///
/// # Safety
/// As for [`floe_peer_new`].
unsafe fn peer_config(c: &FloePeerConfig) -> Result<(PeerConfig, Side, Callbacks), Error> {
    let on_signal = c.on_signal.ok_or_else(|| Error::null("config.on_signal"))?;
    let mut config = PeerConfig::default();
    // SAFETY: the caller's promise about stun_uris.
    for uri in unsafe { str_list(c.stun_uris, c.stun_uri_count, "config.stun_uris") }? {
        let u: IceServerUri = uri
            .parse()
            .map_err(|e| Error::invalid(format!("stun URI {uri:?}: {e}")))?;
        config.stun.push(u);
    }
    // SAFETY: the caller's promise about turn_uris.
    let turn = unsafe { str_list(c.turn_uris, c.turn_uri_count, "config.turn_uris") }?;
    if !turn.is_empty() {
        // SAFETY: the caller's promise about turn_username.
        let username = unsafe { str_arg(c.turn_username, "config.turn_username") }?;
        // SAFETY: the caller's promise about turn_password.
        let password = unsafe { str_arg(c.turn_password, "config.turn_password") }?;
        for uri in turn {
            let u: IceServerUri = uri
                .parse()
                .map_err(|e| Error::invalid(format!("turn URI {uri:?}: {e}")))?;
            config.turn.push(TurnServerConfig {
                uri: u,
                username: username.to_owned(),
                password: password.to_owned(),
            });
        }
    }
    if c.bind_count > 0 {
        if c.bind.is_null() {
            return Err(Error::null("config.bind"));
        }
        if c.bind_count > 64 {
            return Err(Error::invalid("config.bind: at most 64"));
        }
        for i in 0..c.bind_count {
            // SAFETY: i < bind_count, and the caller promises that many addresses.
            let p = unsafe { c.bind.add(i) };
            // SAFETY: p points to one of them.
            let a: SocketAddr = unsafe { addr_arg(p, "config.bind") }?;
            config.bind.push(a);
        }
    }
    match (c.port_range_low, c.port_range_high) {
        (0, 0) => {}
        (low, high) if low >= 1 && low <= high => config.port_range = Some(low..=high),
        (low, high) => {
            return Err(Error::invalid(format!(
                "port range {low}-{high}: want 1 <= low <= high"
            )));
        }
    }
    if c.relay_only && config.turn.is_empty() {
        return Err(Error::invalid("relay_only needs a TURN server"));
    }
    config.agent.relay_only = c.relay_only;
    config.agent.renomination = true;
    if c.connect_timeout_ms > 0 {
        config.connect_timeout = Some(Duration::from_millis(u64::from(c.connect_timeout_ms)));
    }
    let side = if c.offerer { Side::Offer } else { Side::Answer };
    let callbacks = Callbacks {
        on_signal,
        on_data: c.on_data,
        on_state: c.on_state,
        user: c.user,
    };
    Ok((config, side, callbacks))
}

/// Channels between the caller's threads and the peer's task.
struct Inputs {
    signals: mpsc::UnboundedReceiver<SignalMessage>,
    data: mpsc::Receiver<Vec<u8>>,
    stats: mpsc::Receiver<oneshot::Sender<Option<PeerStats>>>,
    shutdown: oneshot::Receiver<()>,
}

/// The peer's task: connect, then relay data, states and stats requests until closed.
async fn run(
    config: PeerConfig,
    side: Side,
    cb: Callbacks,
    mut inputs: Inputs,
    shared: Arc<Shared>,
) {
    let connect = PeerConnection::connect(
        config,
        side,
        CallbackSender(cb),
        ChannelReceiver(inputs.signals),
    );
    let mut pc = tokio::select! {
        r = connect => match r {
            Ok(pc) => pc,
            Err(e) => {
                shared.update(|s| {
                    s.state = Some(ConnectionState::Failed);
                    s.error = Some(e.to_string());
                    s.finished = true;
                });
                cb.state(ConnectionState::Failed);
                return;
            }
        },
        _ = &mut inputs.shutdown => {
            shared.update(|s| s.finished = true);
            return;
        }
    };
    let mut reported = pc.state();
    shared.update(|s| s.state = Some(reported));
    cb.state(reported);
    let mut events = pc.take_events();
    let sender = pc.sender();
    let mut events_open = true;
    loop {
        tokio::select! {
            d = pc.recv() => match d {
                Some(bytes) => cb.data(&bytes),
                None => break,
            },
            e = events.next(), if events_open => match e {
                // The events include those from before `connect` returned (Checking,
                // then Connected), already reported above as the current state: report
                // the state as it is now, and only when it changed. Replaying them once
                // set the state back to Checking after Connected and made the first
                // floe_peer_send fail.
                Some(PeerEvent::State(_)) => {
                    let state = pc.state();
                    if state != reported {
                        reported = state;
                        shared.update(|s| s.state = Some(state));
                        cb.state(state);
                    }
                }
                Some(_) => {}
                None => events_open = false,
            },
            Some(data) = inputs.data.recv() => {
                // A failed send on an established connection is lost like a UDP
                // datagram; the state and stats show why.
                let _ = sender.send(&data).await;
            }
            Some(reply) = inputs.stats.recv() => {
                let _ = reply.send(pc.stats().await);
            }
            _ = &mut inputs.shutdown => break,
        }
    }
    // Datagrams floe_peer_send accepted before floe_peer_free still go out (CI saw a
    // peer freed right after a send lose it under load).
    while let Ok(data) = inputs.data.try_recv() {
        let _ = sender.send(&data).await;
    }
    pc.close().await;
    shared.update(|s| {
        s.state = Some(ConnectionState::Closed);
        s.finished = true;
    });
}

/// A new peer: it opens its sockets, gathers and starts signalling through
/// `config->on_signal` at once, on a thread of its own. NULL on error (see
/// `floe_last_error`).
///
/// # Safety
/// `config` points to a readable `FloePeerConfig` whose pointers and counts describe
/// readable strings and addresses; the callbacks and `user` stay valid until
/// `floe_peer_free` returns.
#[no_mangle]
pub unsafe extern "C" fn floe_peer_new(config: *const FloePeerConfig) -> *mut FloePeer {
    guard(
        |_| std::ptr::null_mut(),
        || {},
        || {
            // SAFETY: NULL or readable (the caller's promise); Copy.
            let c = unsafe { config.as_ref() }.ok_or_else(|| Error::null("config"))?;
            // SAFETY: the caller's promises about the config's pointers.
            let (config, side, callbacks) = unsafe { peer_config(c) }?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("floe-peer")
                .enable_all()
                .build()
                .map_err(|e| Error::new(FloeResult::InvalidState, format!("runtime: {e}")))?;
            let (signals, signals_rx) = mpsc::unbounded_channel();
            let (data, data_rx) = mpsc::channel(SEND_QUEUE);
            let (stats, stats_rx) = mpsc::channel(4);
            let (shutdown, shutdown_rx) = oneshot::channel();
            let shared = Arc::new(Shared::default());
            let inputs = Inputs {
                signals: signals_rx,
                data: data_rx,
                stats: stats_rx,
                shutdown: shutdown_rx,
            };
            runtime.spawn(run(config, side, callbacks, inputs, shared.clone()));
            Ok(Box::into_raw(Box::new(FloePeer {
                runtime: Some(runtime),
                signals,
                data,
                stats,
                shutdown: Some(shutdown),
                shared,
            })))
        },
    )
}

/// Borrows a peer handle.
///
/// # Safety
/// `p` is NULL or a live pointer from [`floe_peer_new`].
unsafe fn peer_arg<'a>(p: *const FloePeer) -> Result<&'a FloePeer, Error> {
    // SAFETY: NULL or a live FloePeer (the caller's promise); only shared access, and
    // every field used through it is thread-safe.
    unsafe { p.as_ref() }.ok_or_else(|| Error::null("peer"))
}

/// A signalling message from the other peer: one JSON line as its `on_signal` produced
/// it. Any thread, including a callback.
///
/// # Safety
/// `peer` is a live peer; `line` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn floe_peer_handle_signal(
    peer: *const FloePeer,
    line: *const c_char,
) -> FloeResult {
    guard(
        |c| c,
        || {},
        || {
            // SAFETY: the caller's promise about `peer`.
            let p = unsafe { peer_arg(peer) }?;
            // SAFETY: the caller's promise about `line`.
            let line = unsafe { str_arg(line, "line") }?;
            let msg: SignalMessage = serde_json::from_str(line.trim())
                .map_err(|e| Error::invalid(format!("signalling message: {e}")))?;
            p.signals
                .send(msg)
                .map_err(|_| Error::new(FloeResult::InvalidState, "the peer is closed"))?;
            Ok(FloeResult::Ok)
        },
    )
}

/// Waits up to `timeout_ms` until the peer is connected (`FLOE_RESULT_OK`); it failed or
/// closed (`INVALID_STATE`, with the reason); or time ran out (`TIMEOUT`). Not from a
/// callback.
///
/// # Safety
/// `peer` is a live peer.
#[no_mangle]
pub unsafe extern "C" fn floe_peer_wait(peer: *const FloePeer, timeout_ms: u32) -> FloeResult {
    guard(
        |c| c,
        || {},
        || {
            // SAFETY: the caller's promise about `peer`.
            let p = unsafe { peer_arg(peer) }?;
            on_floe_thread()?;
            let status = p
                .shared
                .status
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let (status, _) = p
                .shared
                .changed
                .wait_timeout_while(status, Duration::from_millis(u64::from(timeout_ms)), |s| {
                    !matches!(
                        s.state,
                        Some(
                            ConnectionState::Connected
                                | ConnectionState::Completed
                                | ConnectionState::Failed
                                | ConnectionState::Closed
                        )
                    ) && !s.finished
                })
                .unwrap_or_else(PoisonError::into_inner);
            match status.state {
                Some(ConnectionState::Connected | ConnectionState::Completed) => Ok(FloeResult::Ok),
                Some(ConnectionState::Failed | ConnectionState::Closed) => Err(Error::new(
                    FloeResult::InvalidState,
                    status
                        .error
                        .clone()
                        .unwrap_or_else(|| "the connection failed".into()),
                )),
                _ if status.finished => {
                    Err(Error::new(FloeResult::InvalidState, "the peer is closed"))
                }
                _ => Err(Error::new(
                    FloeResult::Timeout,
                    format!("not connected after {timeout_ms} ms"),
                )),
            }
        },
    )
}

/// Queues one datagram for the peer (copied). `INVALID_STATE` before it is connected
/// or after it failed; `WOULD_BLOCK` when the queue is full. Any thread, including a
/// callback.
///
/// # Safety
/// `peer` is a live peer; `data` points to `len` readable bytes (or is NULL with `len`
/// 0).
#[no_mangle]
pub unsafe extern "C" fn floe_peer_send(
    peer: *const FloePeer,
    data: *const u8,
    len: usize,
) -> FloeResult {
    guard(
        |c| c,
        || {},
        || {
            // SAFETY: the caller's promise about `peer`.
            let p = unsafe { peer_arg(peer) }?;
            // SAFETY: the caller's promise about `data`.
            let bytes = unsafe { bytes_arg(data, len, "data") }?;
            // Disconnected: recovery runs, and data goes on the pair it selects.
            if !matches!(
                p.shared.state(),
                Some(
                    ConnectionState::Connected
                        | ConnectionState::Completed
                        | ConnectionState::Disconnected
                )
            ) {
                return Err(Error::new(FloeResult::InvalidState, "not connected"));
            }
            match p.data.try_send(bytes.to_vec()) {
                Ok(()) => Ok(FloeResult::Ok),
                Err(mpsc::error::TrySendError::Full(_)) => Err(Error::new(
                    FloeResult::WouldBlock,
                    format!("{SEND_QUEUE} datagrams queued already"),
                )),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    Err(Error::new(FloeResult::InvalidState, "the peer is closed"))
                }
            }
        },
    )
}

/// A snapshot of a peer connection.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FloePeerStats {
    /// The connection state.
    pub state: FloeConnectionState,
    /// Whether `selected` is set.
    pub has_selected: bool,
    /// The selected pair.
    pub selected: FloeSelectedPair,
    /// Application bytes sent on the selected pair.
    pub bytes_sent: u64,
    /// Application bytes received on the selected pair.
    pub bytes_received: u64,
    /// Connectivity and consent checks sent on the selected pair.
    pub requests_sent: u64,
    /// Their answers received.
    pub responses_received: u64,
}

/// Fills `out` with the connection's state, selected pair and its counters. Not from a
/// callback; `INVALID_STATE` before the peer connected.
///
/// # Safety
/// `peer` is a live peer; `out` points to a writable `FloePeerStats`.
#[no_mangle]
pub unsafe extern "C" fn floe_peer_stats(
    peer: *const FloePeer,
    out: *mut FloePeerStats,
) -> FloeResult {
    guard(
        |c| c,
        || {},
        || {
            // SAFETY: the caller's promise about `peer`.
            let p = unsafe { peer_arg(peer) }?;
            if out.is_null() {
                return Err(Error::null("out"));
            }
            on_floe_thread()?;
            let (tx, rx) = oneshot::channel();
            p.stats
                .try_send(tx)
                .map_err(|_| Error::new(FloeResult::InvalidState, "the peer is not running"))?;
            let stats = rx
                .blocking_recv()
                .ok()
                .flatten()
                .ok_or_else(|| Error::new(FloeResult::InvalidState, "not connected"))?;
            let pair = stats.selected.as_ref().and_then(|s| {
                stats
                    .pairs
                    .iter()
                    .find(|(l, r, _, _)| *l == s.local && *r == s.remote)
            });
            let c = FloePeerStats {
                state: stats.state.into(),
                has_selected: stats.selected.is_some(),
                selected: stats.selected.as_ref().map(Into::into).unwrap_or_default(),
                bytes_sent: pair.map_or(0, |p| p.3.bytes_sent),
                bytes_received: pair.map_or(0, |p| p.3.bytes_received),
                requests_sent: pair.map_or(0, |p| p.3.requests_sent),
                responses_received: pair.map_or(0, |p| p.3.responses_received),
            };
            // SAFETY: non-NULL and writable (the caller's promise).
            unsafe { out.write(c) };
            Ok(FloeResult::Ok)
        },
    )
}

/// Closes the connection, stops floe's thread and frees the peer; no callback runs after
/// it returns. Datagrams `floe_peer_send` accepted go out first. NULL is ignored. Not from a callback (there, the peer is closed in the
/// background and callbacks may still run briefly).
///
/// # Safety
/// `peer` is NULL or a live pointer from [`floe_peer_new`], freed once and not used
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn floe_peer_free(peer: *mut FloePeer) {
    if peer.is_null() {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: a live pointer from floe_peer_new (Box::into_raw), freed once.
        let mut p = unsafe { Box::from_raw(peer) };
        if let Some(s) = p.shutdown.take() {
            let _ = s.send(());
        }
        let runtime = p.runtime.take();
        let finish = move || {
            {
                let status = p
                    .shared
                    .status
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let _ = p
                    .shared
                    .changed
                    .wait_timeout_while(status, Duration::from_secs(2), |s| !s.finished);
            }
            if let Some(rt) = runtime {
                rt.shutdown_timeout(Duration::from_secs(1));
            }
        };
        if on_floe_thread().is_ok() {
            finish();
        } else {
            std::thread::spawn(finish);
        }
    }));
}
