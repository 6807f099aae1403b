//! The shape of the simulated network: hosts, networks and the routers between them.
//!
//! The public internet is the root [`NetId`] ([`Simulator::internet`](crate::Simulator::internet)).
//! Every router sits in a parent network with its external address(es) and owns one inner
//! network (a LAN) that hosts and further routers attach to, so NATs nest to any depth (a
//! home NAT behind a carrier-grade NAT). Addresses are unique per network, not globally:
//! two LANs may both use `192.168.1.0/24`.
//!
//! Routing inside a network is by exact address: a host interface, a router's external
//! address, or an address behind a non-translating router; anything else goes up through
//! the network's own router, and is dropped with [`DropReason::NoRoute`](crate::DropReason::NoRoute)
//! at the internet.
//!
//! A router translates the address families it has an external address for when it has a
//! [`NatConfig`]; other families (say IPv6 behind an IPv4 NAT) are routed unchanged, so
//! inner hosts with global IPv6 addresses are reachable from outside.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::firewall::Firewall;
use crate::hash::FxHashMap;
use crate::link::{Link, LinkConfig};
use crate::nat::{Nat, NatConfig};
use crate::node::{DynNode, NodeStats};
use crate::stream::{Endpoint, StreamId};

/// A node (host) in the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) u32);

/// A network (LAN, or the internet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetId(pub(crate) u32);

/// A router (NAT and/or firewall).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouterId(pub(crate) u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node{}", self.0)
    }
}

impl fmt::Display for NetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "net{}", self.0)
    }
}

impl fmt::Display for RouterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "router{}", self.0)
    }
}

/// Names a link, to read or change its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkId {
    /// The link of a node's interface (by index, in the order interfaces were added).
    Interface(NodeId, usize),
    /// The link between a router's external side and its parent network.
    Router(RouterId),
}

/// How to build a router. Start from [`RouterConfig::nat`] or [`RouterConfig::firewall`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RouterConfig {
    /// A name for traces and `Debug` output.
    pub name: String,
    /// External addresses in the parent network, at most one per family is used by the NAT.
    pub external: Vec<IpAddr>,
    /// NAT behaviour, or `None` for a plain (routing) router.
    pub nat: Option<NatConfig>,
    /// Firewall rules.
    pub firewall: Firewall,
    /// The link to the parent network (both directions).
    pub link: LinkConfig,
}

impl RouterConfig {
    /// A NAT with one external address.
    pub fn nat(external: IpAddr, nat: NatConfig) -> Self {
        Self {
            name: String::from("nat"),
            external: vec![external],
            nat: Some(nat),
            firewall: Firewall::open(),
            link: LinkConfig::default(),
        }
    }

    /// A plain router: no NAT, no firewall; the addresses behind it are reachable from
    /// its parent network.
    pub fn plain() -> Self {
        Self::firewall(Firewall::open()).with_name("router")
    }

    /// A plain router with firewall rules and no NAT.
    pub fn firewall(firewall: Firewall) -> Self {
        Self {
            name: String::from("firewall"),
            external: Vec::new(),
            nat: None,
            firewall,
            link: LinkConfig::default(),
        }
    }

    /// Sets the name.
    #[must_use]
    pub fn with_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// Adds an external address (e.g. an IPv6 one).
    #[must_use]
    pub fn with_external(mut self, addr: IpAddr) -> Self {
        self.external.push(addr);
        self
    }

    /// Sets the firewall rules.
    #[must_use]
    pub fn with_firewall(mut self, firewall: Firewall) -> Self {
        self.firewall = firewall;
        self
    }

    /// Sets the uplink settings.
    #[must_use]
    pub fn with_link(mut self, link: LinkConfig) -> Self {
        self.link = link;
        self
    }
}

/// Counters of one router beyond its NAT's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouterStats {
    /// Packets passed outward.
    pub outbound: u64,
    /// Packets passed inward.
    pub inbound: u64,
    /// Packets dropped by the firewall.
    pub dropped_firewall: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Iface(NodeId, usize),
    Router(RouterId),
}

#[derive(Debug)]
pub(crate) struct Network {
    pub(crate) name: String,
    pub(crate) parent: Option<RouterId>,
    pub(crate) routes: FxHashMap<IpAddr, Target>,
}

#[derive(Debug)]
pub(crate) struct Router {
    pub(crate) name: String,
    pub(crate) parent: NetId,
    pub(crate) inner: NetId,
    pub(crate) external: Vec<IpAddr>,
    pub(crate) link: Link,
    pub(crate) nat: Option<Nat>,
    pub(crate) firewall: Firewall,
    /// Connection tracking for a stateful firewall: a NAT whose mappings do not translate.
    pub(crate) conntrack: Option<Nat>,
    pub(crate) stats: RouterStats,
}

/// The connection-tracking state a stateful firewall needs.
pub(crate) fn conntrack_for(firewall: &Firewall) -> Option<Nat> {
    firewall.stateful.map(|filtering| {
        Nat::new(NatConfig::new(
            crate::nat::MappingBehavior::EndpointIndependent,
            filtering,
        ))
    })
}

impl Router {
    /// The external address the NAT translates `family_of` to, if it translates that family.
    pub(crate) fn nat_external(&self, family_of: IpAddr) -> Option<IpAddr> {
        self.nat.as_ref()?;
        self.external
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == family_of.is_ipv4())
    }
}

#[derive(Debug)]
pub(crate) struct Interface {
    pub(crate) addr: IpAddr,
    pub(crate) net: NetId,
    pub(crate) link: Link,
    pub(crate) up: bool,
}

pub(crate) struct Host {
    pub(crate) name: String,
    pub(crate) node: Box<dyn DynNode>,
    pub(crate) ifaces: Vec<Interface>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) timer_generation: u64,
    /// The last instant the timer fired and how many times in a row it fired then.
    pub(crate) timer_spin: (Duration, u32),
    pub(crate) stats: NodeStats,
    pub(crate) streams: FxHashMap<StreamId, Endpoint>,
    pub(crate) listeners: Vec<std::net::SocketAddr>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .field("ifaces", &self.ifaces)
            .field("timeout", &self.timeout)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// The interface a transmit from `ip` leaves by.
    pub(crate) fn iface_for(&self, ip: IpAddr, destination: IpAddr) -> Option<usize> {
        if ip.is_unspecified() {
            return self
                .ifaces
                .iter()
                .position(|i| i.addr.is_ipv4() == destination.is_ipv4());
        }
        self.ifaces.iter().position(|i| i.addr == ip)
    }
}
