//! Two ICE agents in two homes behind port-restricted NATs, with a STUN server on the
//! simulated internet: they gather, swap candidates and connect, in virtual time and
//! with a fixed seed, so every run is the same. `cargo run -p floe-sim --example two_homes`

use std::net::IpAddr;
use std::time::Duration;

use floe_ice::{AgentConfig, Role};
use floe_netsim::NatConfig;
use floe_sim::world::{add_agent, gathered, TwoHomes, SERVER};
use floe_sim::{exchange_candidates, run_until_connected, AgentNode};

fn main() {
    let seed = 7;
    let mut w = TwoHomes::new(
        seed,
        "user",
        "password",
        NatConfig::port_restricted_cone(),
        NatConfig::port_restricted_cone(),
    );
    let mut config = AgentConfig::default();
    config.stun_servers = vec![SERVER];
    let ip: IpAddr = "192.168.1.2".parse().expect("an address");
    let a = add_agent(
        &mut w.sim,
        w.lan_a,
        ip,
        config.clone(),
        Role::Controlling,
        1,
    );
    let b = add_agent(&mut w.sim, w.lan_b, ip, config, Role::Controlled, 2);
    assert!(
        gathered(&mut w.sim, &[a, b], Duration::from_secs(5)),
        "gathering timed out"
    );
    exchange_candidates(&mut w.sim, a, b);
    let start = w.sim.now();
    assert!(
        run_until_connected(&mut w.sim, a, b, Duration::from_secs(5)),
        "no connection (seed {seed})"
    );
    let pair = w.sim.node::<AgentNode>(a).agent.selected_pair();
    println!(
        "connected after {:?} of simulated time on {pair:?}",
        w.sim.now() - start
    );
}
