//! A worker's core loop: it takes the events its readers queued (in batches), feeds
//! them to the sans-IO TURN `Server`, logs its events (`events.rs`), publishes the
//! counters, and sends what the core produced (`send.rs`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use floe_turn::server::{FleetAnswer, FleetOp, Server, ServerStats, TcpOp};
use floe_turn::Transport;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::batch::Listeners;
use crate::fleet::FleetRequest;
use crate::relays::SocketRelays;
use crate::tcp_relay::TcpRuntime;
use crate::{send, Inbound};

/// Where a worker's core sends its fleet operations (fleet.rs).
#[derive(Debug, Clone)]
pub(crate) struct FleetTx {
    pub(crate) worker: usize,
    pub(crate) tx: mpsc::UnboundedSender<FleetRequest>,
}

impl FleetTx {
    /// Sends every operation the core has; an Allocate whose operation cannot be sent
    /// (the fleet task is gone) is answered 500 at once.
    fn forward(fleet: Option<&FleetTx>, server: &mut Server<SocketRelays>) {
        while let Some(op) = server.poll_fleet_op() {
            let ticket = match &op {
                FleetOp::Acquire { ticket, .. } => Some(*ticket),
                FleetOp::Release { .. } => None,
            };
            let sent = fleet.is_some_and(|f| {
                f.tx.send(FleetRequest {
                    worker: f.worker,
                    op,
                })
                .is_ok()
            });
            if let (false, Some(ticket)) = (sent, ticket) {
                server.handle_fleet_answer(Instant::now(), ticket, FleetAnswer::Unavailable);
            }
        }
    }
}

/// What a worker's core reads: its queue (relay sockets, connections, control) and its
/// listener sockets (read in place, `batch.rs`).
pub(crate) struct Inputs {
    pub(crate) rx: mpsc::Receiver<Inbound>,
    pub(crate) listeners: Listeners,
}

pub(crate) async fn run_core(
    mut server: Server<SocketRelays>,
    inputs: Inputs,
    udp: HashMap<SocketAddr, Arc<UdpSocket>>,
    stats: watch::Sender<ServerStats>,
    mut stop: oneshot::Receiver<()>,
    tasks: Vec<JoinHandle<()>>,
    fleet: Option<FleetTx>,
) {
    let Inputs {
        mut rx,
        mut listeners,
    } = inputs;
    let mut conns = send::Conns::new();
    let mut tcp = TcpRuntime::default();
    let mut sender = send::Sender::new(udp.values().next().map(|s| &**s));
    // Traffic counters are published at most every STATS_INTERVAL (each publication
    // wakes the task that sums the workers' counters, on another thread when there are
    // several); other changes at once.
    let mut published = tokio::time::Instant::now();
    let mut pending = false;
    // Drain requests answered once the counters that precede them are published.
    let mut acks = Vec::new();
    let timer = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(timer);
    loop {
        let core = server.poll_timeout().map(tokio::time::Instant::from_std);
        let publish = pending.then_some(published + STATS_INTERVAL);
        let deadline = match (core, publish) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // One timer for the loop's life, moved only when the deadline does: a new
        // `Sleep` per wake-up registered and removed a timer entry every time.
        if let Some(d) = deadline {
            if timer.deadline() != d {
                timer.as_mut().reset(d);
            }
        }
        tokio::select! {
            _ = &mut stop => break,
            () = &mut timer, if deadline.is_some() => {
                if core.is_some_and(|c| c <= tokio::time::Instant::now()) {
                    server.handle_timeout(Instant::now());
                }
            }
            i = std::future::poll_fn(|cx| listeners.poll_ready(cx)) => {
                let now = Instant::now();
                let mut handled = listeners.read(i, BATCH, |local, remote, data| {
                    server.handle_client(now, Transport::Udp, local, remote, data);
                });
                // The queue's share of the batch (relayed datagrams from peers).
                while handled < BATCH {
                    let Ok(ev) = rx.try_recv() else { break };
                    handled += handle(&mut server, &mut conns, &mut acks, &mut tcp, fleet.as_ref(), ev);
                }
            }
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                let mut handled = handle(&mut server, &mut conns, &mut acks, &mut tcp, fleet.as_ref(), ev);
                // Under load, take what is already queued without going back to the
                // scheduler: one wakeup, one flush (GSO runs) and one counter update per
                // batch instead of per datagram.
                while handled < BATCH {
                    let Ok(ev) = rx.try_recv() else { break };
                    handled += handle(&mut server, &mut conns, &mut acks, &mut tcp, fleet.as_ref(), ev);
                }
            }
        }
        FleetTx::forward(fleet.as_ref(), &mut server);
        crate::events::log_all(&mut server);
        // Counters before answers: a client that hears its answer finds the counters
        // (metrics, drain) already counting what the answer was about.
        let now = tokio::time::Instant::now();
        let current = server.stats();
        let only_traffic = without_traffic(current) == without_traffic(*stats.borrow());
        if now >= published + STATS_INTERVAL || !acks.is_empty() || !only_traffic {
            stats.send_if_modified(|s| {
                let changed = *s != current;
                *s = current;
                changed
            });
            published = now;
            for ack in acks.drain(..) {
                let _ = ack.send(());
            }
        }
        sender.flush(&mut server, &udp, &conns).await;
        // After the answers are queued on their connections (a ConnectionBind's
        // success goes before the first relayed byte).
        run_tcp_ops(&mut server, &mut tcp);
        for key in tcp.take_borrowed() {
            conns.remove(&key);
        }
        // What is not published yet (traffic within the interval, drops while sending)
        // is published when the interval ends.
        pending = server.stats() != *stats.borrow();
    }
    let last = server.stats();
    stats.send_replace(last);
    for t in tasks {
        t.abort();
    }
    server.relays_mut().close_all();
    tracing::info!("floe server stopped");
}

/// The counters without the relayed packets and bytes, which change with every
/// datagram: a change elsewhere (an allocation made, a refusal) is published at once.
fn without_traffic(mut s: ServerStats) -> ServerStats {
    s.packets_to_peers = 0;
    s.bytes_to_peers = 0;
    s.packets_to_clients = 0;
    s.bytes_to_clients = 0;
    s
}

/// How often, at most, a worker publishes its counters while only the relayed packets
/// and bytes change.
const STATS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(5);

/// Datagrams (or other events) the core handles, at least, before sending what they
/// produced, when that many are queued.
const BATCH: usize = 512;

/// Handles one event; returns how many datagrams (or other events: 1) it held.
fn handle(
    server: &mut Server<SocketRelays>,
    conns: &mut send::Conns,
    acks: &mut Vec<oneshot::Sender<()>>,
    tcp: &mut TcpRuntime,
    fleet: Option<&FleetTx>,
    ev: Inbound,
) -> usize {
    let now = Instant::now();
    match ev {
        Inbound::Client {
            transport,
            local,
            remote,
            data,
        } => server.handle_client(now, transport, local, remote, &data),
        Inbound::PeerIcmp { relayed, errors } => {
            for (peer, icmp) in &errors {
                server.handle_peer_icmp(now, relayed, *peer, *icmp);
            }
            return errors.len();
        }
        Inbound::Peer { relayed, datagrams } => {
            for (peer, data) in datagrams.iter() {
                server.handle_peer(now, relayed, peer, data);
            }
            return datagrams.len();
        }
        Inbound::Opened {
            local,
            remote,
            writer,
        } => {
            conns.insert((local, remote), writer);
        }
        Inbound::Closed { local, remote } => {
            conns.remove(&(local, remote));
            server.handle_connection_closed(Instant::now(), local, remote);
        }
        Inbound::Reload {
            users,
            rest_secrets,
        } => {
            tracing::info!(
                users = users.len(),
                rest_secrets = rest_secrets.len(),
                "credentials reloaded"
            );
            server.reload_credentials(users, rest_secrets);
        }
        Inbound::Fleet {
            ticket,
            user,
            answer,
        } => {
            // A place granted for an Allocate that gave up waiting goes back.
            if !server.handle_fleet_answer(now, ticket, answer) && answer == FleetAnswer::Granted {
                if let Some(f) = fleet {
                    let op = FleetOp::Release { user };
                    let _ = f.tx.send(FleetRequest {
                        worker: f.worker,
                        op,
                    });
                }
            }
        }
        Inbound::StoredUsers(stored) => server.set_stored_users(stored),
        Inbound::PeerTcp {
            relayed,
            peer,
            stream,
        } => {
            if let Some(id) = server.handle_tcp_peer_connection(now, relayed, peer) {
                tcp.keep(id, stream);
            }
        }
        Inbound::TcpConnected { id, stream } => {
            if server.handle_tcp_connected(now, id, stream.is_some()) {
                if let Some(s) = stream {
                    tcp.keep(id, s);
                }
            }
        }
        Inbound::ConnectionBind {
            transport,
            local,
            remote,
            data,
            reply,
            writer,
        } => {
            // The connection may be another worker's: answer on its writer.
            if let std::collections::hash_map::Entry::Vacant(e) = conns.entry((local, remote)) {
                e.insert(writer);
                tcp.borrowed(local, remote);
            }
            tcp.wait_bind(local, remote, reply);
            server.handle_client(now, transport, local, remote, &data);
        }
        Inbound::TcpClosed { id } => {
            tcp.ended(id);
            server.handle_tcp_closed(now, id);
        }
        Inbound::Drain(ack) => {
            tracing::info!("draining: new allocations are refused");
            server.drain(Instant::now());
            acks.push(ack);
        }
        Inbound::Publish(ack) => acks.push(ack),
    }
    1
}

/// Carries out what the core decided for TURN-TCP (tcp_relay.rs).
fn run_tcp_ops(server: &mut Server<SocketRelays>, tcp: &mut TcpRuntime) {
    while let Some(op) = server.poll_tcp_op() {
        match op {
            TcpOp::Connect { id, relayed, peer } => {
                server.relays_mut().connect_tcp(id, relayed, peer);
            }
            TcpOp::Bind { id, local, remote } => {
                if !tcp.bind(id, local, remote) {
                    // The peer or the client went away meanwhile.
                    tcp.close(id);
                    server.handle_tcp_closed(Instant::now(), id);
                }
            }
            TcpOp::Close { id } => tcp.close(id),
        }
    }
    tcp.refuse_unbound();
}
