//! [`PeerConnection`]: one ICE agent driven by one tokio task over real UDP sockets.
//! `connect` opens the sockets, builds the agent and does the first offer/answer
//! ([`crate::handshake`]), starts the [`crate::driver`], and waits
//! for a selected pair; the methods talk to the driver, or to the
//! [fast path](crate::fast_path) directly.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use floe_ice::{ConnectionState, SelectedPair};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{PeerConfig, PeerError, PeerEvent, PeerEvents, PeerStats, Side};
use crate::driver::{self, Command, Handles};
use crate::fast_path::{DataSender, FastPath};
use crate::handshake::{build_agent, exchange};
use crate::host_names::{HostNames, NameChange};
use crate::interfaces::local_addresses;
use crate::mdns::MdnsService;
use crate::session::Session;
use crate::signal::{SignalReceiver, SignalSender};

/// A connection to one peer.
#[derive(Debug)]
pub struct PeerConnection {
    commands: mpsc::Sender<Command>,
    fast: watch::Receiver<Option<FastPath>>,
    data: mpsc::Receiver<crate::socket_reader::Received>,
    /// The rest of the last batch the readers handed over.
    pending: std::collections::VecDeque<Bytes>,
    events: mpsc::UnboundedReceiver<PeerEvent>,
    selected: watch::Receiver<Option<SelectedPair>>,
    state: watch::Receiver<ConnectionState>,
    local_addrs: Vec<SocketAddr>,
    task: JoinHandle<()>,
}

impl PeerConnection {
    /// Opens sockets, gathers, signals, and resolves once a pair is selected.
    pub async fn connect<S: SignalSender, R: SignalReceiver>(
        config: PeerConfig,
        side: Side,
        mut tx: S,
        mut rx: R,
    ) -> Result<PeerConnection, PeerError> {
        let (sockets, ranked) = bind_sockets(&config).await?;
        let (mut agent, streams, server_urls) = build_agent(&config, side, &ranked).await?;
        let mut tcp_listeners = Vec::new();
        if config.agent.ice_tcp && !config.agent.relay_only {
            let now = std::time::Instant::now();
            for (addr, rank, listener) in crate::ice_tcp::bind_listeners(&ranked).await? {
                agent.add_tcp_host(now, addr, rank);
                tcp_listeners.push(listener);
            }
        }
        let mdns = config.mdns.then(MdnsService::start);
        let mut session = Session::new();
        if let Some(service) = mdns.clone() {
            let names = HostNames::new(rand::random(), move |change| match change {
                NameChange::Published(name, ip) => service.publish(name.to_owned(), ip),
                NameChange::Withdrawn(ip) => service.unpublish(ip),
            });
            session = session.with_host_names(names);
        }
        let early_events = exchange(&mut agent, &mut session, side, &mut tx, &mut rx).await?;
        let local_addrs: Vec<SocketAddr> = sockets.keys().copied().collect();
        let Handles {
            commands,
            fast,
            data,
            events,
            selected,
            state: mut state_rx,
            task,
        } = driver::spawn(
            agent,
            session,
            sockets,
            streams,
            (tx, rx),
            early_events,
            driver::Runtime {
                watch: watch_of(&config),
                server_urls,
                mdns,
                tcp_listeners,
            },
        );

        let limit = config.connect_timeout.unwrap_or(Duration::from_secs(30));
        let waited = tokio::time::timeout(limit, async {
            loop {
                match *state_rx.borrow_and_update() {
                    ConnectionState::Connected | ConnectionState::Completed => return Ok(()),
                    ConnectionState::Failed => return Err(PeerError::Failed),
                    ConnectionState::Closed => return Err(PeerError::Closed),
                    _ => {}
                }
                if state_rx.changed().await.is_err() {
                    return Err(PeerError::Closed);
                }
            }
        })
        .await;
        let pc = PeerConnection {
            commands,
            fast,
            data,
            pending: std::collections::VecDeque::new(),
            events,
            selected,
            state: state_rx,
            local_addrs,
            task,
        };
        match waited {
            Ok(Ok(())) => Ok(pc),
            Ok(Err(e)) => {
                pc.close().await;
                Err(e)
            }
            Err(_) => {
                pc.close().await;
                Err(PeerError::Timeout(limit))
            }
        }
    }

    /// Sends one datagram to the peer on the selected path.
    pub async fn send(&self, data: &[u8]) -> Result<(), PeerError> {
        self.sender().send(data).await
    }

    /// A handle that sends from another task while this one receives.
    pub fn sender(&self) -> DataSender {
        DataSender {
            commands: self.commands.clone(),
            fast: self.fast.clone(),
        }
    }

    /// The next datagram from the peer; `None` once closed. On a direct path the bytes are
    /// the ones the socket wrote (no copy).
    pub async fn recv(&mut self) -> Option<Bytes> {
        if let Some(d) = self.pending.pop_front() {
            return Some(d);
        }
        // Cancel-safe: nothing is lost if the caller drops this future at the await.
        match self.data.recv().await? {
            crate::socket_reader::Received::One(d) => Some(d),
            crate::socket_reader::Received::Many(batch) => {
                self.pending.extend(batch);
                self.pending.pop_front()
            }
        }
    }

    /// The next state or path change.
    pub async fn next_event(&mut self) -> Option<PeerEvent> {
        self.events.recv().await
    }

    /// Moves the event stream out, to read it while another task receives data (after
    /// this, [`PeerConnection::next_event`] returns `None`).
    pub fn take_events(&mut self) -> PeerEvents {
        let (_, closed) = mpsc::unbounded_channel();
        PeerEvents(std::mem::replace(&mut self.events, closed))
    }

    /// The selected path.
    pub fn selected(&self) -> Option<SelectedPair> {
        self.selected.borrow().clone()
    }

    /// The connection state.
    pub fn state(&self) -> ConnectionState {
        *self.state.borrow()
    }

    /// The local sockets.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Restarts ICE (RFC 8445 §9): new credentials and candidates are signalled in a new
    /// offer; the peer restarts and answers. Data stops until the new path is selected
    /// (watch [`PeerConnection::next_event`] or [`PeerConnection::state`]).
    pub async fn restart(&self) -> Result<(), PeerError> {
        self.commands
            .send(Command::Restart)
            .await
            .map_err(|_| PeerError::Closed)
    }

    /// A snapshot of the pairs, their counters and RTTs, and the TURN allocations with
    /// their transports. `None` once the connection is closed.
    pub async fn stats(&self) -> Option<PeerStats> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands.send(Command::Stats(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Closes the connection and its sockets.
    pub async fn close(self) {
        let _ = self.commands.send(Command::Close).await;
        let _ = self.task.await;
    }
}

/// What the address watcher needs, when it runs: only for sockets on enumerated
/// interfaces (not for `bind`), and not turned off.
fn watch_of(config: &PeerConfig) -> Option<crate::addresses::Watch> {
    let interval = config.address_watch.filter(|_| config.bind.is_empty())?;
    Some(crate::addresses::Watch {
        policy: config.interfaces.clone(),
        interval,
        port_range: config.port_range.clone(),
        dscp: config.dscp,
    })
}

/// Opens one UDP socket on `addr` (a port of `port_range` when the port is 0 and a range
/// is set) with the DSCP mark; returns its address.
pub(crate) async fn bind_one(
    addr: SocketAddr,
    port_range: Option<&std::ops::RangeInclusive<u16>>,
    dscp: Option<u8>,
) -> io::Result<(SocketAddr, UdpSocket)> {
    let s = match port_range {
        Some(range) if addr.port() == 0 => crate::ports::bind_in_range(addr.ip(), range).await?,
        _ => UdpSocket::bind(addr).await?,
    };
    let local = s.local_addr()?;
    if let Some(dscp) = dscp {
        crate::sockopt::set_dscp(&socket2::SockRef::from(&s), local, dscp)?;
    }
    Ok((local, s))
}

/// Opens the UDP sockets: the addresses asked for, or one per usable interface address.
/// Returns them with `(address, interface rank)` in preference order.
async fn bind_sockets(
    config: &PeerConfig,
) -> Result<
    (
        HashMap<SocketAddr, Arc<UdpSocket>>,
        Vec<(SocketAddr, usize)>,
    ),
    PeerError,
> {
    if config.dscp.is_some_and(|d| d > 63) {
        return Err(PeerError::Config(format!(
            "DSCP {} is not a 6-bit value (0-63)",
            config.dscp.unwrap_or_default()
        )));
    }
    let mut sockets: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let binds: Vec<(SocketAddr, usize)> = if config.bind.is_empty() {
        local_addresses(&config.interfaces)
            .into_iter()
            .map(|(ip, rank)| (SocketAddr::new(ip, 0), rank))
            .collect()
    } else {
        config
            .bind
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, i))
            .collect()
    };
    if let Some(range) = &config.port_range {
        if range.is_empty() || *range.start() == 0 {
            return Err(PeerError::Config(format!(
                "port range {}-{} is empty or starts at 0",
                range.start(),
                range.end()
            )));
        }
    }
    let mut ranked = Vec::new();
    let mut last_error = None;
    for (addr, rank) in binds {
        match bind_one(addr, config.port_range.as_ref(), config.dscp).await {
            Ok((local, s)) => {
                ranked.push((local, rank));
                sockets.insert(local, Arc::new(s));
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, "cannot bind");
                last_error = Some(format!("{addr}: {e}"));
            }
        }
    }
    if sockets.is_empty() {
        let why = last_error.map_or_else(String::new, |e| format!(" ({e})"));
        return Err(PeerError::Io(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("no usable local address{why}"),
        )));
    }
    Ok((sockets, ranked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dscp_from_the_config_is_set_on_every_udp_socket() {
        let mut config = PeerConfig {
            bind: vec![
                "127.0.0.1:0".parse().unwrap(),
                "127.0.0.1:0".parse().unwrap(),
            ],
            dscp: Some(46),
            ..PeerConfig::default()
        };
        let (sockets, ranked) = bind_sockets(&config).await.unwrap();
        assert_eq!((sockets.len(), ranked.len()), (2, 2));
        for (local, socket) in &sockets {
            assert_eq!(
                crate::sockopt::dscp(&socket2::SockRef::from(socket.as_ref()), *local).unwrap(),
                46
            );
        }
        config.dscp = None;
        for (local, socket) in &bind_sockets(&config).await.unwrap().0 {
            assert_eq!(
                crate::sockopt::dscp(&socket2::SockRef::from(socket.as_ref()), *local).unwrap(),
                0
            );
        }
        config.dscp = Some(64);
        assert!(matches!(
            bind_sockets(&config).await,
            Err(PeerError::Config(_))
        ));
    }
}
