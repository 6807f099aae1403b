//! floe-ice agents as floe-netsim nodes, and a two-agent scenario helper.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_ice::{Agent, ConnectionState, Event};
use floe_netsim::{NodeId, Simulator, Transmit};

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
            now,
        }
    }

    /// Sends application data on the selected pair (nothing if not connected).
    pub fn send(&mut self, data: &[u8]) {
        let Ok(t) = self.agent.send(data) else { return };
        self.outbox.push_back(Transmit {
            source: t.source,
            destination: t.destination,
            bytes: t.data,
        });
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
        if let Some(data) = self.agent.handle_receive(now, local, remote, bytes) {
            self.received.push((now, remote, data.to_vec()));
        }
        self.collect();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.collect();
        if let Some(t) = self.outbox.pop_front() {
            return Some(t);
        }
        self.agent.poll_transmit().map(|t| Transmit {
            source: t.source,
            destination: t.destination,
            bytes: t.data,
        })
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
        n.agent.end_of_remote_candidates();
    });
    sim.with_node(b, |n: &mut AgentNode, now| {
        n.set_now(now);
        n.agent.set_remote_credentials(creds_a);
        for c in ca {
            n.agent.add_remote_candidate(now, c);
        }
        n.agent.end_of_remote_candidates();
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
