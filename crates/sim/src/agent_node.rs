//! floe-ice agents as floe-netsim nodes, and a two-agent scenario helper.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_ice::{Agent, ConnectionState, Event, Transport};
use floe_netsim::{NodeId, Simulator, StreamCommand, StreamEvent, StreamId, Transmit};

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
            next_port: 40_000,
            now,
        }
    }

    /// Sends application data on the selected pair (nothing if not connected).
    pub fn send(&mut self, data: &[u8]) {
        let Ok(t) = self.agent.send(data) else { return };
        self.route(t);
    }

    /// Puts an agent transmit on UDP, or on the stream to its TURN server (opened on
    /// first use, as a runtime does).
    fn route(&mut self, t: floe_ice::Transmit) {
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
            self.next_port = self.next_port.wrapping_add(1).max(40_000);
            let id = StreamId::new(
                SocketAddr::new(t.source.ip(), self.next_port),
                t.destination,
            );
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
            self.events.push((self.now, e));
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
