//! `floe demo`: two peers behind simulated NATs find each other through a floe STUN/TURN
//! server, entirely inside floe-netsim (no network, a few milliseconds of real time).
//! It shows the candidates, the checks, the chosen path and its RTT, a data exchange,
//! and a NAT-matrix summary of which path floe picks for every pair of NAT types.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use clap::Args;
use floe_ice::{
    Agent, AgentConfig, CandidateKind, ConnectionState, PairState, Role, Transport, TurnServer,
};
use floe_netsim::{
    Capture, Firewall, LinkConfig, NatConfig, NetId, NodeId, RouterConfig, Simulator,
};

use floe_sim::world::SERVER;
use floe_sim::{exchange_candidates, run_until_connected, AgentNode};

/// Arguments of `floe demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Which network to simulate.
    #[arg(long, value_enum, default_value = "home")]
    pub scenario: Scenario,
    /// Random seed (loss, jitter, NAT ports); the same seed replays the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write every packet of the main scenario to this pcap file (opens in Wireshark).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,
    /// Skip the NAT-matrix summary.
    #[arg(long)]
    pub no_matrix: bool,
}

/// The built-in scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Alice and Bob at home, each behind a Linux-style NAT (port-restricted cone): a
    /// direct path through both NATs.
    Home,
    /// Bob behind a symmetric (carrier-grade) NAT: no direct path, the relay carries it.
    Symmetric,
    /// Both on the same LAN: host candidates win.
    Lan,
    /// Alice has Wi-Fi (40 ms) and Ethernet (5 ms) to a public Bob: the faster path wins.
    Multipath,
    /// Bob is on hotel Wi-Fi whose firewall drops all UDP: TURN over TCP carries it
    /// (floe tries UDP first and TCP 150 ms later; TCP wins).
    Hotel,
}

/// The kinds of network a peer can sit behind, for scenarios and the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nat {
    Public,
    FullCone,
    Restricted,
    PortRestricted,
    Symmetric,
    UdpBlocked,
}

impl Nat {
    const ALL: [Nat; 6] = [
        Nat::Public,
        Nat::FullCone,
        Nat::Restricted,
        Nat::PortRestricted,
        Nat::Symmetric,
        Nat::UdpBlocked,
    ];

    fn name(self) -> &'static str {
        match self {
            Nat::Public => "public",
            Nat::FullCone => "full cone",
            Nat::Restricted => "restricted",
            Nat::PortRestricted => "port-restr.",
            Nat::Symmetric => "symmetric",
            Nat::UdpBlocked => "udp-blocked",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Nat::Public => "a public address (no NAT)",
            Nat::FullCone => "a full-cone NAT (anyone may answer its mapping)",
            Nat::Restricted => "a restricted-cone NAT (only addresses it sent to may answer)",
            Nat::PortRestricted => "a port-restricted NAT (like a Linux home router: only the exact address:port it sent to may answer)",
            Nat::Symmetric => "a symmetric NAT (a new public port for every destination, like many carrier-grade NATs)",
            Nat::UdpBlocked => "a NAT whose firewall drops all UDP (hotel or corporate guest Wi-Fi): only TCP gets out",
        }
    }

    fn config(self) -> Option<NatConfig> {
        match self {
            Nat::Public => None,
            Nat::FullCone => Some(NatConfig::full_cone()),
            Nat::Restricted => Some(NatConfig::restricted_cone()),
            // The UDP-blocked network adds a firewall to it (see `place`).
            Nat::PortRestricted | Nat::UdpBlocked => Some(NatConfig::port_restricted_cone()),
            Nat::Symmetric => Some(NatConfig::symmetric()),
        }
    }
}

const TURN_USER: &str = "demo";
const TURN_PASSWORD: &str = "demo-password";

/// A simulated world: a server and two peers.
struct World {
    sim: Simulator,
    alice: NodeId,
    bob: NodeId,
}

fn agent_config() -> AgentConfig {
    let mut c = AgentConfig::default();
    c.stun_servers = vec![SERVER];
    c
}

/// Places a peer: on the internet at `public_ip`, or behind `nat` (external `public_ip`)
/// at `lan_ip`, with a link of `delay` one way.
fn place(
    sim: &mut Simulator,
    nat: Nat,
    public_ip: IpAddr,
    lan_ip: IpAddr,
    role: Role,
    seed: u64,
    delay: Duration,
) -> (NodeId, SocketAddr) {
    let internet = sim.internet();
    let net: NetId = match nat.config() {
        Some(c) if nat == Nat::UdpBlocked => {
            let router = RouterConfig::nat(public_ip, c).with_firewall(Firewall::block_udp());
            sim.add_router(internet, router).1
        }
        Some(c) => sim.add_nat(internet, public_ip, c).1,
        None => internet,
    };
    let ip = if nat == Nat::Public {
        public_ip
    } else {
        lan_ip
    };
    let now = sim.now();
    let mut link = LinkConfig::default();
    link.delay = delay;
    let id = sim.add_host_with_link(
        net,
        ip,
        link,
        AgentNode::new(Agent::new(agent_config(), role, now, seed), now),
    );
    let local = SocketAddr::new(ip, 5000);
    sim.with_node(id, |n: &mut AgentNode, now| {
        n.agent.add_host(now, local, 0);
        // UDP first, TCP 150 ms later; the first allocation wins.
        n.agent.add_turn_server_with(
            now,
            TurnServer::new(local, SERVER, TURN_USER, TURN_PASSWORD),
        );
    });
    (id, local)
}

fn world(seed: u64, alice_nat: Nat, bob_nat: Nat, delay: Duration) -> World {
    let mut sim = simulator_with_server(seed);
    let (alice, _) = place(
        &mut sim,
        alice_nat,
        "203.0.113.10".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        "192.168.1.10".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        Role::Controlling,
        seed ^ 0xA,
        delay,
    );
    let (bob, _) = place(
        &mut sim,
        bob_nat,
        "203.0.113.20".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        "10.0.0.20".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        Role::Controlled,
        seed ^ 0xB,
        delay,
    );
    World { sim, alice, bob }
}

fn gather(w: &mut World) -> bool {
    let (a, b) = (w.alice, w.bob);
    w.sim.run_until_condition(Duration::from_secs(10), |s| {
        [a, b].iter().all(|id| {
            s.node::<AgentNode>(*id).agent.gathering_state() == floe_ice::GatheringState::Complete
        })
    })
}

/// The outcome of connecting two peers.
struct Outcome {
    connected_after: Option<Duration>,
    selected: Option<floe_ice::SelectedPair>,
}

/// Exchanges candidates and waits for the final (nominated) pair.
fn connect(w: &mut World) -> Outcome {
    let start = exchange_candidates(&mut w.sim, w.alice, w.bob);
    let ok = run_until_connected(&mut w.sim, w.alice, w.bob, Duration::from_secs(30));
    let alice = w.alice;
    // Let nomination settle (it is quick; a relay waits at most a second).
    w.sim.run_until_condition(Duration::from_secs(5), |s| {
        s.node::<AgentNode>(alice)
            .agent
            .selected_pair()
            .is_some_and(|p| p.nominated)
    });
    let node = w.sim.node::<AgentNode>(w.alice);
    Outcome {
        connected_after: ok
            .then(|| {
                node.reached(ConnectionState::Connected)
                    .or(node.reached(ConnectionState::Completed))
                    .map(|t| t - start)
            })
            .flatten(),
        selected: node.agent.selected_pair(),
    }
}

fn kind_label(p: &floe_ice::SelectedPair) -> &'static str {
    if p.local_kind == CandidateKind::Relayed || p.remote_kind == CandidateKind::Relayed {
        "relay"
    } else if p.remote_kind == CandidateKind::PeerReflexive
        || p.local_kind == CandidateKind::PeerReflexive
    {
        "prflx"
    } else if p.remote_kind == CandidateKind::ServerReflexive {
        "srflx"
    } else {
        "host"
    }
}

fn explain(kind: CandidateKind) -> &'static str {
    match kind {
        CandidateKind::Host => "its own interface address",
        CandidateKind::ServerReflexive => "its public address as the STUN server saw it",
        CandidateKind::PeerReflexive => "an address learned from the other peer's checks",
        CandidateKind::Relayed => "an address on the TURN relay",
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Runs the demo and returns its text (the binary prints it).
pub fn render(args: &DemoArgs) -> Result<String, String> {
    let mut out = String::new();
    let (alice_nat, bob_nat, delay) = match args.scenario {
        Scenario::Home => (
            Nat::PortRestricted,
            Nat::PortRestricted,
            Duration::from_millis(10),
        ),
        Scenario::Symmetric => (
            Nat::PortRestricted,
            Nat::Symmetric,
            Duration::from_millis(10),
        ),
        Scenario::Hotel => (
            Nat::PortRestricted,
            Nat::UdpBlocked,
            Duration::from_millis(10),
        ),
        Scenario::Lan | Scenario::Multipath => {
            (Nat::PortRestricted, Nat::Public, Duration::from_millis(10))
        }
    };
    let _ = writeln!(out, "floe demo: two peers find the fastest path between them (simulated network, seed {}, no real packets)\n", args.seed);
    let mut w = match args.scenario {
        Scenario::Lan => lan_world(args.seed),
        Scenario::Multipath => multipath_world(args.seed),
        _ => world(args.seed, alice_nat, bob_nat, delay),
    };
    if args.pcap.is_some() {
        w.sim.enable_pcap(Capture::All);
    }
    let _ = writeln!(out, "The network");
    match args.scenario {
        Scenario::Lan => {
            let _ = writeln!(
                out,
                "  alice and bob share a home LAN behind {}.",
                Nat::PortRestricted.describe()
            );
        }
        Scenario::Multipath => {
            let _ = writeln!(out, "  alice has two interfaces: Wi-Fi with 40 ms to the internet and Ethernet with 5 ms.");
            let _ = writeln!(out, "  bob has a public address.");
        }
        _ => {
            let _ = writeln!(out, "  alice is behind {}.", alice_nat.describe());
            let _ = writeln!(out, "  bob is behind {}.", bob_nat.describe());
            let _ = writeln!(out, "  Every access link adds {} one way.", ms(delay));
        }
    }
    let _ = writeln!(
        out,
        "  A floe STUN/TURN server runs on the public internet at {SERVER}.\n"
    );

    if !gather(&mut w) {
        return Err("gathering did not finish".into());
    }
    let _ = writeln!(
        out,
        "1. Gathering: each peer collects the addresses it might be reached at"
    );
    for (name, id) in [("alice", w.alice), ("bob", w.bob)] {
        for c in w.sim.node::<AgentNode>(id).agent.local_candidates() {
            let a = c.addr().map_or_else(|| "?".into(), |a| a.to_string());
            let _ = writeln!(
                out,
                "   {name:<5} {:<5} {a:<22} {}",
                c.kind.as_str(),
                explain(c.kind)
            );
        }
    }
    let _ = writeln!(
        out,
        "   They swap these over signalling (the application's job; here, direct).\n"
    );

    let outcome = connect(&mut w);
    let _ = writeln!(
        out,
        "2. Connectivity checks: each peer sends STUN checks on every pair of addresses"
    );
    let node = w.sim.node::<AgentNode>(w.alice);
    let mut rows: Vec<_> = node.agent.pair_stats().collect();
    rows.sort_by_key(|r| (r.2 != PairState::Succeeded, r.3.smoothed_rtt));
    for (local, remote, state, stats) in rows.iter().take(8) {
        let result = match state {
            PairState::Succeeded => format!(
                "works, round trip {}",
                stats.smoothed_rtt.map_or_else(|| "?".into(), ms)
            ),
            PairState::Failed => "no answer (a NAT or firewall drops it)".into(),
            _ => "not needed any more (a better pair already works)".into(),
        };
        let _ = writeln!(out, "   alice {local:<21} -> {remote:<21} {result}");
    }
    if rows.len() > 8 {
        let _ = writeln!(out, "   ... and {} more pairs", rows.len() - 8);
    }
    let _ = writeln!(out);

    let _ = writeln!(out, "3. The chosen path");
    match (&outcome.selected, outcome.connected_after) {
        (Some(p), Some(after)) => {
            let _ = writeln!(
                out,
                "   {} -> {}  ({} path, round trip {})",
                p.local,
                p.remote,
                kind_label(p),
                p.rtt.map_or_else(|| "?".into(), ms)
            );
            let why = if kind_label(p) == "relay" {
                if w.sim
                    .node::<AgentNode>(w.bob)
                    .agent
                    .selected_pair()
                    .and_then(|p| p.turn_transport)
                    == Some(Transport::Tcp)
                    || p.turn_transport == Some(Transport::Tcp)
                {
                    "no direct pair got through (UDP is blocked), so the relay carries the data, reached over TCP"
                } else {
                    "no direct pair got through, so the relay carries the data"
                }
            } else {
                "the lowest-latency direct path; the relay stays unused"
            };
            let _ = writeln!(
                out,
                "   {why}; connected {} after the candidates were exchanged.\n",
                ms(after)
            );
        }
        _ => {
            let _ = writeln!(out, "   no path found\n");
            return Ok(out);
        }
    }

    let _ = writeln!(out, "4. Data");
    let sent = 10;
    for i in 0..sent {
        let msg = format!("hello bob #{i}");
        w.sim.node_mut::<AgentNode>(w.alice).send(msg.as_bytes());
        let reply = format!("hi alice #{i}");
        w.sim.node_mut::<AgentNode>(w.bob).send(reply.as_bytes());
        w.sim.run_for(Duration::from_millis(20));
    }
    w.sim.run_for(Duration::from_millis(500));
    let at_bob = w.sim.node::<AgentNode>(w.bob).received.len();
    let at_alice = w.sim.node::<AgentNode>(w.alice).received.len();
    let _ = writeln!(
        out,
        "   alice -> bob: {at_bob}/{sent} datagrams arrived; bob -> alice: {at_alice}/{sent}.\n"
    );
    if let Some(path) = &args.pcap {
        w.sim
            .write_pcap(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = writeln!(
            out,
            "   Every packet is in {} (Wireshark decodes it as STUN/TURN).\n",
            path.display()
        );
    }

    if !args.no_matrix {
        let _ = writeln!(out, "5. NAT matrix: the path floe picks for every pair of NAT types (alice down, bob across)");
        let _ = write!(out, "   {:<12}", "");
        for b in Nat::ALL {
            let _ = write!(out, "{:<14}", b.name());
        }
        let _ = writeln!(out);
        for a in Nat::ALL {
            let _ = write!(out, "   {:<12}", a.name());
            for b in Nat::ALL {
                let mut cell = world(args.seed, a, b, Duration::from_millis(10));
                let label = if gather(&mut cell) {
                    let o = connect(&mut cell);
                    match (o.selected, o.connected_after) {
                        (Some(p), Some(t)) => {
                            format!("{} {:.0}ms", kind_label(&p), t.as_secs_f64() * 1000.0)
                        }
                        _ => "failed".into(),
                    }
                } else {
                    "failed".into()
                };
                let _ = write!(out, "{label:<14}");
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "   (time = from candidate exchange to connected; the relay is used only where RFC 4787 says no direct path exists)");
    }
    Ok(out)
}

/// A simulated internet with the demo's STUN/TURN server on it.
fn simulator_with_server(seed: u64) -> Simulator {
    floe_sim::world::internet_with_server(seed, TURN_USER, TURN_PASSWORD)
}

fn lan_world(seed: u64) -> World {
    let mut sim = simulator_with_server(seed);
    let internet = sim.internet();
    let now = sim.now();
    let (_, lan) = sim.add_nat(
        internet,
        "203.0.113.10".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        NatConfig::port_restricted_cone(),
    );
    let mut ids = Vec::new();
    for (ip, role, s) in [
        ("192.168.1.10", Role::Controlling, 0xA),
        ("192.168.1.11", Role::Controlled, 0xB),
    ] {
        let ip: IpAddr = ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let id = sim.add_host(
            lan,
            ip,
            AgentNode::new(Agent::new(agent_config(), role, now, seed ^ s), now),
        );
        let local = SocketAddr::new(ip, 5000);
        sim.with_node(id, |n: &mut AgentNode, now| {
            n.agent.add_host(now, local, 0);
            n.agent
                .add_turn_server(now, local, SERVER, TURN_USER, TURN_PASSWORD);
        });
        ids.push(id);
    }
    World {
        sim,
        alice: ids[0],
        bob: ids[1],
    }
}

fn multipath_world(seed: u64) -> World {
    let mut sim = simulator_with_server(seed);
    let internet = sim.internet();
    let now = sim.now();
    let mut slow = LinkConfig::default();
    slow.delay = Duration::from_millis(40);
    let mut fast = LinkConfig::default();
    fast.delay = Duration::from_millis(5);
    let wifi: IpAddr = "192.0.2.10".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let eth: IpAddr = "192.0.2.11".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let alice = sim.add_host_with_link(
        internet,
        wifi,
        slow,
        AgentNode::new(
            Agent::new(agent_config(), Role::Controlling, now, seed ^ 0xA),
            now,
        ),
    );
    sim.add_interface_with_link(alice, internet, eth, fast);
    let bob_ip: IpAddr = "203.0.113.20".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let bob = sim.add_host(
        internet,
        bob_ip,
        AgentNode::new(
            Agent::new(agent_config(), Role::Controlled, now, seed ^ 0xB),
            now,
        ),
    );
    sim.with_node(alice, |n: &mut AgentNode, now| {
        // Wi-Fi is listed first, so it ranks first by RFC 8421 local preference.
        n.agent.add_host(now, SocketAddr::new(wifi, 5000), 0);
        n.agent.add_host(now, SocketAddr::new(eth, 5000), 1);
    });
    sim.with_node(bob, |n: &mut AgentNode, now| {
        n.agent.add_host(now, SocketAddr::new(bob_ip, 5000), 0);
    });
    World { sim, alice, bob }
}

/// Runs `floe demo`; returns the exit status.
pub fn run(args: &DemoArgs) -> u8 {
    let started = Instant::now();
    match render(args) {
        Ok(text) => {
            print!("{text}");
            eprintln!("(simulated in {} of real time)", ms(started.elapsed()));
            0
        }
        Err(e) => {
            eprintln!("floe demo: {e}");
            1
        }
    }
}
