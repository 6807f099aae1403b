//! The worlds scenarios are built in: a simulated internet with one floe STUN/TURN server
//! on it, homes behind NATs, and agents in them. `floe demo`, the ICE netsim tests and
//! the benches all start from here, so the fixture is written once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use floe_ice::{Agent, AgentConfig, GatheringState, Role};
use floe_netsim::{NatConfig, NetId, NodeId, RouterId, Simulator};
use floe_turn::server::ServerConfig;

use crate::{AgentNode, TurnServerNode};

/// Where the world's STUN/TURN server listens: 198.51.100.1:3478 (TEST-NET-2).
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 3478);

/// The port every agent's host socket binds.
pub const AGENT_PORT: u16 = 5000;

/// A simulated internet (seeded with `seed`) with a floe STUN/TURN server at [`SERVER`]
/// that lets `user` allocate with `password`.
pub fn internet_with_server(seed: u64, user: &str, password: &str) -> Simulator {
    let mut sim = Simulator::new(seed);
    let internet = sim.internet();
    let now = sim.now();
    let mut config = ServerConfig::default();
    config.users.insert(user.into(), password.into());
    sim.add_host(
        internet,
        SERVER.ip(),
        TurnServerNode::new(SERVER, config, now, seed),
    );
    sim
}

/// Two homes on the internet, each behind its own NAT (public addresses 203.0.113.1
/// and 203.0.113.2, TEST-NET-3), with the STUN/TURN server of [`internet_with_server`].
#[derive(Debug)]
pub struct TwoHomes {
    /// The simulator.
    pub sim: Simulator,
    /// Home A's NAT (to reboot it, say) and the network behind it.
    pub nat_a: RouterId,
    /// The network behind home A's NAT.
    pub lan_a: NetId,
    /// Home B's NAT.
    pub nat_b: RouterId,
    /// The network behind home B's NAT.
    pub lan_b: NetId,
}

impl TwoHomes {
    /// Builds the world, with home A behind `a` and home B behind `b`.
    pub fn new(seed: u64, user: &str, password: &str, a: NatConfig, b: NatConfig) -> TwoHomes {
        let mut sim = internet_with_server(seed, user, password);
        let internet = sim.internet();
        let (nat_a, lan_a) = sim.add_nat(internet, IpAddr::from([203, 0, 113, 1]), a);
        let (nat_b, lan_b) = sim.add_nat(internet, IpAddr::from([203, 0, 113, 2]), b);
        TwoHomes {
            sim,
            nat_a,
            lan_a,
            nat_b,
            lan_b,
        }
    }
}

/// Adds an agent with `config` on `net` at `ip`:[`AGENT_PORT`] and registers its host
/// socket (it starts gathering).
pub fn add_agent(
    sim: &mut Simulator,
    net: NetId,
    ip: IpAddr,
    config: AgentConfig,
    role: Role,
    seed: u64,
) -> NodeId {
    let now = sim.now();
    let id = sim.add_host(
        net,
        ip,
        AgentNode::new(Agent::new(config, role, now, seed), now),
    );
    let local = SocketAddr::new(ip, AGENT_PORT);
    sim.with_node(id, |n: &mut AgentNode, now| n.agent.add_host(now, local, 0));
    id
}

/// Runs until every agent of `ids` has gathered, or `limit` passes; says which.
pub fn gathered(sim: &mut Simulator, ids: &[NodeId], limit: Duration) -> bool {
    sim.run_until_condition(limit, |s| {
        ids.iter()
            .all(|id| s.node::<AgentNode>(*id).agent.gathering_state() == GatheringState::Complete)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{exchange_candidates, run_until_connected};

    #[test]
    fn two_homes_behind_port_restricted_nats_connect() {
        let mut w = TwoHomes::new(
            1,
            "u",
            "p",
            NatConfig::port_restricted_cone(),
            NatConfig::port_restricted_cone(),
        );
        let mut config = AgentConfig::default();
        config.stun_servers = vec![SERVER];
        let ip: IpAddr = "192.168.1.2".parse().unwrap();
        let a = add_agent(
            &mut w.sim,
            w.lan_a,
            ip,
            config.clone(),
            Role::Controlling,
            2,
        );
        let b = add_agent(&mut w.sim, w.lan_b, ip, config, Role::Controlled, 3);
        assert!(gathered(&mut w.sim, &[a, b], Duration::from_secs(5)));
        exchange_candidates(&mut w.sim, a, b);
        assert!(run_until_connected(
            &mut w.sim,
            a,
            b,
            Duration::from_secs(5)
        ));
    }
}
