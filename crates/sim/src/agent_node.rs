//! floe-ice agents as floe-netsim nodes, and a two-agent scenario helper.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_ice::{Agent, ConnectionState, Event, Transport};
use floe_netsim::{NodeId, Simulator, StreamCommand, StreamEvent, StreamId, Transmit};

use crate::ice_tcp::{IceTcp, Route};

/// An agent on a simulated host, keeping its events and received data.
#[derive(Debug)]
pub struct AgentNode {
    /// The agent.
    pub agent: Agent,
    /// Every event, with its time.
    pub events: Vec<(Instant, Event)>,
    /// Application data received: (when, from, bytes).
    pub received: Vec<(Instant, SocketAddr, Vec<u8>)>,
    outbox: VecDeque<Transmit>,
    /// Streams to TURN servers (TCP; TLS is modelled as TCP), by (transport, server).
    streams: HashMap<(Transport, SocketAddr), StreamId>,
    commands: VecDeque<StreamCommand>,
    /// ICE-TCP connections (RFC 6544), for the agent's TCP candidates.
    ice_tcp: IceTcp,
    next_port: u16,
    now: Instant,
}

impl AgentNode {
    /// Wraps an agent created at `now` (virtual time: events are stamped with it).
    pub fn new(agent: Agent, now: Instant) -> AgentNode {
        AgentNode {
            agent,
            events: Vec::new(),
            received: Vec::new(),
            outbox: VecDeque::new(),
            streams: HashMap::new(),
            commands: VecDeque::new(),
            ice_tcp: IceTcp::default(),
            next_port: 40_000,
            now,
        }
    }

    /// Sends application data on the selected pair (nothing if not connected).
    pub fn send(&mut self, data: &[u8]) {
        let Ok(t) = self.agent.send(data) else { return };
        self.route(t);
    }

    /// Listens for ICE-TCP connections on `addr` and gives the agent its TCP host
    /// candidates there (the agent needs [`floe_ice::AgentConfig::ice_tcp`]). `addr`
    /// must not be one of the node's UDP candidate addresses (same IP and port).
    pub fn listen_tcp(&mut self, addr: SocketAddr) {
        self.ice_tcp.listen(addr);
        self.commands.push_back(StreamCommand::Listen(addr));
        self.agent.add_tcp_host(self.now, addr, 0);
    }

    fn next_local_port(&mut self) -> u16 {
        self.next_port = self.next_port.wrapping_add(1).max(40_000);
        self.next_port
    }

    /// An agent transmit on an ICE-TCP connection: written, or written once the
    /// connection from an active base opens; from a passive base with no connection, the
    /// agent hears it is closed.
    fn route_ice_tcp(&mut self, t: floe_ice::Transmit) {
        let port = self.next_local_port();
        match self.ice_tcp.route(t.source, t.destination, port) {
            Route::Send(id) => self.commands.push_back(StreamCommand::Send(id, t.data)),
            Route::Connect(id) => {
                self.commands.push_back(StreamCommand::Connect(id));
                self.commands.push_back(StreamCommand::Send(id, t.data));
            }
            Route::Closed => self
                .agent
                .handle_tcp_closed(self.now, t.source, t.destination),
        }
    }

    /// Puts an agent transmit on UDP, on an ICE-TCP connection, or on the stream to its
    /// TURN server (opened on first use, as a runtime does).
    fn route(&mut self, t: floe_ice::Transmit) {
        if t.transport == Transport::Tcp && self.agent.is_tcp_base(t.source) {
            self.route_ice_tcp(t);
            return;
        }
        if !t.transport.is_stream() {
            self.outbox.push_back(Transmit {
                source: t.source,
                destination: t.destination,
                bytes: t.data,
            });
            return;
        }
        let key = (t.transport, t.destination);
        let id = if let Some(id) = self.streams.get(&key) {
            *id
        } else {
            let port = self.next_local_port();
            let id = StreamId::new(SocketAddr::new(t.source.ip(), port), t.destination);
            self.streams.insert(key, id);
            self.commands.push_back(StreamCommand::Connect(id));
            id
        };
        self.commands.push_back(StreamCommand::Send(id, t.data));
    }

    /// Moves everything the agent wants to send into the outboxes.
    fn pump(&mut self) {
        self.collect();
        while let Some(t) = self.agent.poll_transmit() {
            self.route(t);
        }
        self.collect();
    }

    /// When the agent first reached `state`.
    pub fn reached(&self, state: ConnectionState) -> Option<Instant> {
        self.events
            .iter()
            .find(|(_, e)| *e == Event::ConnectionState(state))
            .map(|(t, _)| *t)
    }

    /// Tells the node the time (for events raised by calls made between simulator steps,
    /// through [`Simulator::with_node`]).
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    fn collect(&mut self) {
        while let Some(e) = self.agent.poll_event() {
            if let Event::CloseStream { transport, server } = e {
                if let Some(id) = self.streams.remove(&(transport, server)) {
                    self.commands.push_back(StreamCommand::Close(id));
                }
            }
            if let Event::CloseTcp { local, remote } = e {
                if let Some(id) = self.ice_tcp.close(local, remote) {
                    self.commands.push_back(StreamCommand::Close(id));
                }
            }
            self.events.push((self.now, e));
        }
    }
}

impl AgentNode {
    /// A stream event of an ICE-TCP connection, handled; `false` for other streams.
    fn ice_tcp_event(&mut self, now: Instant, event: &StreamEvent) -> bool {
        match event {
            StreamEvent::Accepted(id) => self.ice_tcp.accepted(*id),
            StreamEvent::Data(id, bytes) => match self.ice_tcp.data(*id, bytes) {
                None => false,
                Some(Ok((base, remote, frames))) => {
                    let received = &mut self.received;
                    for frame in frames {
                        self.agent
                            .handle_tcp_receive(now, base, remote, &frame, |from, data| {
                                received.push((now, from, data.to_vec()));
                            });
                    }
                    true
                }
                Some(Err((base, remote))) => {
                    self.ice_tcp.closed(*id);
                    self.commands.push_back(StreamCommand::Reset(*id));
                    self.agent.handle_tcp_closed(now, base, remote);
                    true
                }
            },
            StreamEvent::Closed(id) | StreamEvent::Reset(id) => match self.ice_tcp.closed(*id) {
                Some((base, remote)) => {
                    self.agent.handle_tcp_closed(now, base, remote);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }
}

impl floe_netsim::Node for AgentNode {
    fn handle_receive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        self.now = now;
        let received = &mut self.received;
        // Recorded from the address the datagram came from (a TURN server's for relayed
        // data), as before the callback gave the peer's.
        self.agent
            .handle_receive(now, local, remote, bytes, |_, data| {
                received.push((now, remote, data.to_vec()));
            });
        self.collect();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.pump();
        self.outbox.pop_front()
    }

    fn poll_stream_command(&mut self) -> Option<StreamCommand> {
        self.pump();
        self.commands.pop_front()
    }

    fn handle_stream_event(&mut self, now: Instant, event: StreamEvent) {
        self.now = now;
        let key_of = |streams: &HashMap<(Transport, SocketAddr), StreamId>, id: StreamId| {
            streams.iter().find(|(_, v)| **v == id).map(|(k, _)| *k)
        };
        if self.ice_tcp_event(now, &event) {
            self.collect();
            return;
        }
        match event {
            StreamEvent::Data(id, bytes) => {
                let Some((transport, server)) = key_of(&self.streams, id) else {
                    return;
                };
                let received = &mut self.received;
                self.agent
                    .handle_stream_receive(now, transport, server, &bytes, |from, data| {
                        received.push((now, from, data.to_vec()));
                    });
            }
            StreamEvent::Closed(id) | StreamEvent::Reset(id) => {
                if let Some((transport, server)) = key_of(&self.streams, id) {
                    self.streams.remove(&(transport, server));
                    self.agent.handle_stream_closed(now, transport, server);
                }
            }
            _ => {}
        }
        self.collect();
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.agent.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.agent.handle_timeout(now);
        self.collect();
    }
}

/// Gives each agent the other's credentials and candidates (what signalling does), then
/// end-of-candidates. Returns the time the exchange happened.
pub fn exchange_candidates(sim: &mut Simulator, a: NodeId, b: NodeId) -> Instant {
    let (ca, creds_a) = {
        let n = sim.node::<AgentNode>(a);
        (
            n.agent.local_candidates().cloned().collect::<Vec<_>>(),
            n.agent.local_credentials().clone(),
        )
    };
    let (cb, creds_b) = {
        let n = sim.node::<AgentNode>(b);
        (
            n.agent.local_candidates().cloned().collect::<Vec<_>>(),
            n.agent.local_credentials().clone(),
        )
    };
    sim.with_node(a, |n: &mut AgentNode, now| {
        n.set_now(now);
        n.agent.set_remote_credentials(creds_b);
        for c in cb {
            n.agent.add_remote_candidate(now, c);
        }
        n.agent.handle_end_of_remote_candidates(now);
    });
    sim.with_node(b, |n: &mut AgentNode, now| {
        n.set_now(now);
        n.agent.set_remote_credentials(creds_a);
        for c in ca {
            n.agent.add_remote_candidate(now, c);
        }
        n.agent.handle_end_of_remote_candidates(now);
    });
    sim.now()
}

/// Runs until both agents are connected (or `limit` passes); returns whether they are.
pub fn run_until_connected(sim: &mut Simulator, a: NodeId, b: NodeId, limit: Duration) -> bool {
    sim.run_until_condition(limit, |s| {
        let ok = |id| {
            let n = s.node::<AgentNode>(id);
            matches!(
                n.agent.connection_state(),
                ConnectionState::Connected | ConnectionState::Completed
            )
        };
        ok(a) && ok(b)
    })
}
