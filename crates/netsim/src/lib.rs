//! floe-netsim: a deterministic, discrete-event simulated network with every RFC 4787 NAT
//! behaviour, for testing sans-IO protocol stacks (ICE agents, STUN and TURN servers).
//!
//! - **Virtual time.** No threads, no sleeping, no clock reads after the simulator is
//!   created: minutes of simulated time run in milliseconds ([`time`]).
//! - **Deterministic.** All randomness (loss, jitter, random NAT ports) comes from one
//!   seeded ChaCha8 RNG; the same seed gives the same run, bit for bit. A simulator dropped
//!   during a panic prints its seed.
//! - **Topology.** The internet is the root network; [NAT routers](nat) and
//!   [firewalls](firewall) own inner networks and nest to any depth; hosts have one or more
//!   IPv4/IPv6 interfaces ([`topology`]).
//! - **Links** with delay, jitter, random and bursty loss, rate limits with bounded queues,
//!   per direction and changeable mid-run ([`link`]).
//! - **NATs** with RFC 4787 mapping, filtering, port assignment, hairpinning, mapping
//!   lifetime and refresh, 1:1 NAT, and presets ([`NatConfig`]).
//! - **Faults**: [NAT reboot](Simulator::reboot_nat), [interface down](Simulator::set_interface_up),
//!   [link cut](Simulator::set_link_up), [host move](Simulator::move_interface).
//! - **Streams**: a minimal reliable, ordered TCP through NATs and firewalls ([`stream`]).
//! - **Observability**: an in-memory [packet log](trace), [pcap] files, and counters
//!   per node, per link, per NAT and per run.
//!
//! Nodes are any sans-IO state machine implementing [`Node`]. The simulator delivers
//! datagrams with [`Node::handle_receive`], drains [`Node::poll_transmit`] and
//! [`Node::poll_stream_command`], and calls [`Node::handle_timeout`] at the instant
//! [`Node::poll_timeout`] asked for. [`nodes`] has two ready-made ones for tests: a UDP
//! (and stream) echo server and a scriptable [`Peer`](nodes::Peer).
//!
//! Tests drive a run with [`Simulator::run_for`], [`Simulator::run_until`],
//! [`Simulator::run_until_condition`] or [`Simulator::step`], and reach into nodes between
//! steps with [`Simulator::node`] / [`Simulator::node_mut`] (downcast to the concrete type).
//! `docs/architecture.md` in the repository describes the design and how floe's tests use
//! it.
//!
//! # Example: two hosts behind two NATs punch a hole
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use floe_netsim::{nodes::Peer, DropReason, NatConfig, Simulator};
//!
//! let addr = |s: &str| -> SocketAddr { s.parse().unwrap() };
//! let mut sim = Simulator::new(7);
//! let internet = sim.internet();
//! let (nat_a, lan_a) = sim.add_nat(internet, "203.0.113.1".parse().unwrap(), NatConfig::port_restricted_cone());
//! let (nat_b, lan_b) = sim.add_nat(internet, "203.0.113.2".parse().unwrap(), NatConfig::port_restricted_cone());
//! // Both LANs use the same private address.
//! let a = sim.add_host(lan_a, "192.168.1.2".parse().unwrap(), Peer::new());
//! let b = sim.add_host(lan_b, "192.168.1.2".parse().unwrap(), Peer::new());
//! // The NATs preserve ports, so the public addresses (exchanged over signalling) are:
//! let (a_local, a_public) = (addr("192.168.1.2:5000"), addr("203.0.113.1:5000"));
//! let (b_local, b_public) = (addr("192.168.1.2:6000"), addr("203.0.113.2:6000"));
//!
//! // A's first packet opens A's filter towards B, but B's NAT has no mapping yet.
//! sim.node_mut::<Peer>(a).send(a_local, b_public, &b"punch"[..]);
//! sim.run_for(Duration::from_millis(10));
//! assert_eq!(sim.nat_stats(nat_b).dropped_no_mapping, 1);
//!
//! // B's packet creates B's mapping and passes A's filter: the hole is open both ways.
//! sim.node_mut::<Peer>(b).send(b_local, a_public, &b"hello"[..]);
//! sim.run_for(Duration::from_millis(10));
//! sim.node_mut::<Peer>(a).send(a_local, b_public, &b"hi"[..]);
//! sim.run_for(Duration::from_millis(10));
//!
//! let at_a = &sim.node::<Peer>(a).received[0];
//! assert_eq!((at_a.remote, at_a.bytes.as_slice()), (b_public, &b"hello"[..]));
//! let at_b = &sim.node::<Peer>(b).received[0];
//! assert_eq!((at_b.remote, at_b.bytes.as_slice()), (a_public, &b"hi"[..]));
//! // Four links of 1 ms each from host to host.
//! assert_eq!(at_b.at - sim.clock().base(), Duration::from_millis(24));
//! assert_eq!(sim.stats().dropped(DropReason::NoMapping), 1);
//! assert_eq!(sim.nat_mappings(nat_a)[0].external, a_public);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod firewall;
mod forward;
mod hash;
pub mod link;
pub mod nat;
pub mod node;
pub mod nodes;
mod packet;
pub mod pcap;
mod sim;
pub mod stats;
pub mod stream;
pub mod time;
pub mod topology;
pub mod trace;

pub use firewall::{Firewall, PortPolicy};
pub use link::{Direction, Link, LinkConfig, LinkStats, LossModel};
pub use nat::{
    AddressPooling, FilteringBehavior, Mapping, MappingBehavior, NatConfig, NatStats,
    PortAssignment,
};
pub use node::{Node, NodeStats, Transmit};
pub use packet::{Protocol, TcpFlags};
pub use pcap::Capture;
pub use sim::{SimConfig, Simulator};
pub use stats::{DropCounts, SimStats};
pub use stream::{StreamCommand, StreamEvent, StreamId};
pub use topology::{LinkId, NetId, NodeId, RouterConfig, RouterId, RouterStats};
pub use trace::{DropReason, Hop, TraceEntry, Verdict};
