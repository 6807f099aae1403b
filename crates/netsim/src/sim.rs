//! The [`Simulator`]: topology building, the event loop, and access to nodes and counters.
//!
//! Why one file of ~775 lines: the topology builders, the event loop and the node
//! accessors are all methods of the one `Simulator` and share its private event queue
//! and tables; the packet-handling rules themselves live elsewhere (`forward.rs`,
//! `nat.rs`, `link.rs`, `firewall.rs`, `stream.rs`).

use std::any::type_name;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::firewall::Firewall;
use crate::hash::FxHashMap;
use crate::link::{Link, LinkConfig};
use crate::nat::{Mapping, Nat, NatConfig, NatStats};
use crate::node::{Node, NodeStats};
use crate::packet::Packet;
use crate::pcap::{Capture, PcapWriter};
use crate::stats::SimStats;
use crate::stream::StreamId;
use crate::time::Clock;
use crate::topology::{
    Host, Interface, LinkId, NetId, Network, NodeId, Router, RouterConfig, RouterId, RouterStats,
    Target,
};
use crate::trace::TraceEntry;

/// How often a node's timer may fire at one instant before the simulator calls it a bug
/// (a `poll_timeout` that never moves forward would otherwise hang the run).
const MAX_TIMER_SPIN: u32 = 10_000;

/// Settings of a simulation run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// The seed of the one RNG all randomness (loss, jitter, random ports) comes from.
    pub seed: u64,
    /// The link settings (both directions) of interfaces added without explicit settings.
    pub default_link: LinkConfig,
    /// How long an unanswered stream connect waits before it is reset (a SYN dropped by a
    /// firewall or a NAT). Default 10 s.
    pub stream_connect_timeout: Duration,
    /// How long after one of its segments is dropped by a router (firewall, NAT filter,
    /// lost mapping) an established stream is reset, as TCP gives up retransmitting.
    /// Default 10 s.
    pub stream_abort_timeout: Duration,
}

impl SimConfig {
    /// Defaults with this seed.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            default_link: LinkConfig::default(),
            stream_connect_timeout: Duration::from_secs(10),
            stream_abort_timeout: Duration::from_secs(10),
        }
    }

    /// Defaults with the seed from the environment variable `FLOE_NETSIM_SEED` if it is
    /// set and parses, else `default`: tests stay fixed-seed, and a failing seed printed by
    /// a run (or a sweep over many seeds) can be replayed without editing the test.
    pub fn from_env_or(default: u64) -> Self {
        let seed = std::env::var("FLOE_NETSIM_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default);
        Self::new(seed)
    }

    /// Sets the default link settings.
    #[must_use]
    pub fn with_default_link(mut self, link: LinkConfig) -> Self {
        self.default_link = link;
        self
    }
}

#[derive(Debug)]
pub(crate) enum EventKind {
    /// A packet arrives in a network (from a link or a router).
    Network(NetId, Packet),
    /// A packet arrives at a router's external side from its parent network.
    RouterInbound(RouterId, Packet),
    /// A packet arrives at a node's interface.
    Deliver(NodeId, usize, Packet),
    /// A node's timer, valid if the generation still matches.
    Timer(NodeId, u64),
    /// A stream connect timed out, if still connecting.
    StreamConnectTimeout(NodeId, Box<StreamId>),
    /// A stream gives up after a segment was dropped.
    StreamAbort(NodeId, Box<StreamId>),
}

#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) time: Duration,
    seq: u64,
    pub(crate) kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.time == other.time && self.seq == other.seq
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    /// Reversed, so that `BinaryHeap` pops the earliest event; ties in insertion order.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .time
            .cmp(&self.time)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// A deterministic discrete-event network simulator.
///
/// Build a topology with [`add_nat`](Simulator::add_nat), [`add_router`](Simulator::add_router)
/// and [`add_host`](Simulator::add_host), then drive it with [`run_for`](Simulator::run_for),
/// [`run_until`](Simulator::run_until), [`run_until_condition`](Simulator::run_until_condition)
/// or [`step`](Simulator::step). See the [crate documentation](crate) for an example.
///
/// If a thread panics while a `Simulator` is alive (a failing test), the simulator prints its
/// seed and virtual time to stderr when it is dropped, so the run can be replayed.
pub struct Simulator {
    pub(crate) config: SimConfig,
    pub(crate) clock: Clock,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) hosts: Vec<Host>,
    pub(crate) nets: Vec<Network>,
    pub(crate) routers: Vec<Router>,
    events: BinaryHeap<Event>,
    seq: u64,
    pub(crate) next_packet: u64,
    dirty: Vec<NodeId>,
    pub(crate) stats: SimStats,
    pub(crate) trace: Option<Vec<TraceEntry>>,
    pub(crate) pcap: Option<(Capture, PcapWriter)>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("seed", &self.config.seed)
            .field("elapsed", &self.clock.elapsed())
            .field("hosts", &self.hosts)
            .field("nets", &self.nets)
            .field("routers", &self.routers)
            .field("pending_events", &self.events.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "floe-netsim: run failed with seed {} at t={:?}; replay with SimConfig::new({}) \
                 or FLOE_NETSIM_SEED={} (for SimConfig::from_env_or)",
                self.config.seed,
                self.clock.elapsed(),
                self.config.seed,
                self.config.seed
            );
        }
    }
}

impl Simulator {
    /// A simulator with default settings and this seed.
    pub fn new(seed: u64) -> Self {
        Self::with_config(SimConfig::new(seed))
    }

    /// A simulator with these settings. Captures the one real clock reading of the run.
    pub fn with_config(config: SimConfig) -> Self {
        let internet = Network {
            name: String::from("internet"),
            parent: None,
            routes: FxHashMap::default(),
        };
        Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            clock: Clock::new(Instant::now()),
            hosts: Vec::new(),
            nets: vec![internet],
            routers: Vec::new(),
            events: BinaryHeap::new(),
            seq: 0,
            next_packet: 0,
            dirty: Vec::new(),
            stats: SimStats::default(),
            trace: None,
            pcap: None,
        }
    }

    /// The seed of this run.
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// A new seed drawn from the simulator's RNG, for seeding a node's own RNG so that the
    /// whole run stays reproducible from one seed.
    pub fn derive_seed(&mut self) -> u64 {
        self.rng.next_u64()
    }

    // ---- time -------------------------------------------------------------------------

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Virtual time since the start of the run.
    pub fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    /// The virtual-time clock (to convert between [`Instant`]s and elapsed time).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    // ---- topology ---------------------------------------------------------------------

    /// The public internet, the root network.
    pub fn internet(&self) -> NetId {
        NetId(0)
    }

    /// Adds a NAT in `parent` with external address `external`; returns it and its inner
    /// network, to which hosts (or more NATs) can then be added.
    pub fn add_nat(
        &mut self,
        parent: NetId,
        external: IpAddr,
        nat: NatConfig,
    ) -> (RouterId, NetId) {
        self.add_router(parent, RouterConfig::nat(external, nat))
    }

    /// Adds a router (NAT and/or firewall) in `parent`; returns it and its inner network.
    pub fn add_router(&mut self, parent: NetId, config: RouterConfig) -> (RouterId, NetId) {
        let id = RouterId(self.routers.len() as u32);
        let inner = NetId(self.nets.len() as u32);
        self.nets.push(Network {
            name: format!("{}-lan", config.name),
            parent: Some(id),
            routes: FxHashMap::default(),
        });
        self.routers.push(Router {
            name: config.name,
            parent,
            inner,
            external: config.external,
            link: Link::symmetric(config.link),
            nat: config.nat.map(Nat::new),
            conntrack: crate::topology::conntrack_for(&config.firewall),
            firewall: config.firewall,
            stats: RouterStats::default(),
        });
        self.rebuild_routes();
        (id, inner)
    }

    /// Adds a host with one interface at `addr` in `net`, running `node`, with the default
    /// link settings.
    pub fn add_host<N: Node>(&mut self, net: NetId, addr: IpAddr, node: N) -> NodeId {
        let link = self.config.default_link.clone();
        self.add_host_with_link(net, addr, link, node)
    }

    /// Adds a host with one interface at `addr` in `net` whose link has `link` settings in
    /// both directions.
    pub fn add_host_with_link<N: Node>(
        &mut self,
        net: NetId,
        addr: IpAddr,
        link: LinkConfig,
        node: N,
    ) -> NodeId {
        let id = NodeId(self.hosts.len() as u32);
        self.hosts.push(Host {
            name: format!(
                "{}#{}",
                type_name::<N>().rsplit("::").next().unwrap_or("node"),
                id.0
            ),
            node: Box::new(node),
            ifaces: Vec::new(),
            timeout: None,
            timer_generation: 0,
            timer_spin: (Duration::ZERO, 0),
            stats: NodeStats::default(),
            streams: FxHashMap::default(),
            listeners: Vec::new(),
        });
        self.add_interface_with_link(id, net, addr, link);
        // The node may want to send or set a timer straight away.
        self.mark_dirty(id);
        id
    }

    /// Adds another interface (another network, or another address family on the same
    /// one) to a node; returns its index.
    pub fn add_interface(&mut self, node: NodeId, net: NetId, addr: IpAddr) -> usize {
        let link = self.config.default_link.clone();
        self.add_interface_with_link(node, net, addr, link)
    }

    /// Adds another interface with these link settings; returns its index.
    pub fn add_interface_with_link(
        &mut self,
        node: NodeId,
        net: NetId,
        addr: IpAddr,
        link: LinkConfig,
    ) -> usize {
        let host = &mut self.hosts[node.0 as usize];
        host.ifaces.push(Interface {
            addr,
            net,
            link: Link::symmetric(link),
            up: true,
        });
        let index = host.ifaces.len() - 1;
        self.rebuild_routes();
        index
    }

    /// The address of a node's interface.
    pub fn addr(&self, node: NodeId, iface: usize) -> IpAddr {
        self.hosts[node.0 as usize].ifaces[iface].addr
    }

    /// A router's external addresses.
    pub fn external_addrs(&self, router: RouterId) -> &[IpAddr] {
        &self.routers[router.0 as usize].external
    }

    /// A router's inner network.
    pub fn inner_net(&self, router: RouterId) -> NetId {
        self.routers[router.0 as usize].inner
    }

    /// The name of a router.
    pub fn router_name(&self, router: RouterId) -> &str {
        &self.routers[router.0 as usize].name
    }

    /// The name of a network.
    pub fn net_name(&self, net: NetId) -> &str {
        &self.nets[net.0 as usize].name
    }

    /// Recomputes every network's routing table. Called after any topology change.
    fn rebuild_routes(&mut self) {
        for net in &mut self.nets {
            net.routes.clear();
        }
        for (n, host) in self.hosts.iter().enumerate() {
            for (i, iface) in host.ifaces.iter().enumerate() {
                self.nets[iface.net.0 as usize]
                    .routes
                    .entry(iface.addr)
                    .or_insert(Target::Iface(NodeId(n as u32), i));
            }
        }
        for (r, router) in self.routers.iter().enumerate() {
            for addr in &router.external {
                self.nets[router.parent.0 as usize]
                    .routes
                    .entry(*addr)
                    .or_insert(Target::Router(RouterId(r as u32)));
            }
        }
        // Addresses behind routers that do not translate their family are reachable from the
        // parent through the router; deepest routers first so that they propagate upward.
        let mut order: Vec<(usize, usize)> = (0..self.routers.len())
            .map(|r| (self.depth(self.routers[r].parent), r))
            .collect();
        order.sort_by(|a, b| b.cmp(a));
        for (_, r) in order {
            let router = &self.routers[r];
            let routed: Vec<IpAddr> = self.nets[router.inner.0 as usize]
                .routes
                .keys()
                .copied()
                .filter(|addr| router.nat_external(*addr).is_none())
                .collect();
            let parent = router.parent.0 as usize;
            for addr in routed {
                self.nets[parent]
                    .routes
                    .entry(addr)
                    .or_insert(Target::Router(RouterId(r as u32)));
            }
        }
    }

    fn depth(&self, mut net: NetId) -> usize {
        let mut depth = 0;
        while let Some(r) = self.nets[net.0 as usize].parent {
            net = self.routers[r.0 as usize].parent;
            depth += 1;
        }
        depth
    }

    // ---- faults and changes during a run -------------------------------------------------

    /// A link, to read its settings and counters.
    pub fn link(&self, link: LinkId) -> &Link {
        match link {
            LinkId::Interface(node, i) => &self.hosts[node.0 as usize].ifaces[i].link,
            LinkId::Router(r) => &self.routers[r.0 as usize].link,
        }
    }

    /// A link, to change its settings (per direction) during a run.
    pub fn link_mut(&mut self, link: LinkId) -> &mut Link {
        match link {
            LinkId::Interface(node, i) => &mut self.hosts[node.0 as usize].ifaces[i].link,
            LinkId::Router(r) => &mut self.routers[r.0 as usize].link,
        }
    }

    /// Sets both directions of a link to `config`.
    pub fn set_link(&mut self, link: LinkId, config: &LinkConfig) {
        let link = self.link_mut(link);
        link.up.config = config.clone();
        link.down.config = config.clone();
    }

    /// Cuts (or restores) a link in both directions; packets in flight still arrive.
    pub fn set_link_up(&mut self, link: LinkId, up: bool) {
        let link = self.link_mut(link);
        link.up.config.up = up;
        link.down.config.up = up;
    }

    /// Takes a node's interface down (or up). A down interface neither sends nor receives.
    pub fn set_interface_up(&mut self, node: NodeId, iface: usize, up: bool) {
        self.hosts[node.0 as usize].ifaces[iface].up = up;
    }

    /// Moves a node's interface to another network with a new address (a laptop moving from
    /// Wi-Fi to a mobile network).
    pub fn move_interface(&mut self, node: NodeId, iface: usize, net: NetId, addr: IpAddr) {
        let iface = &mut self.hosts[node.0 as usize].ifaces[iface];
        iface.net = net;
        iface.addr = addr;
        self.rebuild_routes();
    }

    /// Reboots a NAT: every mapping is lost. With `new_external`, the external address of
    /// that family changes too (as a home router's DHCP lease may).
    pub fn reboot_nat(&mut self, router: RouterId, new_external: Option<IpAddr>) {
        let r = &mut self.routers[router.0 as usize];
        if let Some(nat) = &mut r.nat {
            nat.reboot();
        }
        if let Some(addr) = new_external {
            match r
                .external
                .iter_mut()
                .find(|a| a.is_ipv4() == addr.is_ipv4())
            {
                Some(old) => *old = addr,
                None => r.external.push(addr),
            }
            self.rebuild_routes();
        }
    }

    /// Replaces a router's firewall rules.
    pub fn set_firewall(&mut self, router: RouterId, firewall: Firewall) {
        let router = &mut self.routers[router.0 as usize];
        router.conntrack = crate::topology::conntrack_for(&firewall);
        router.firewall = firewall;
    }

    // ---- nodes ----------------------------------------------------------------------------

    /// Every node's id, in the order they were added (find one by type with
    /// [`Simulator::try_node`]).
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> {
        (0..self.hosts.len()).filter_map(|i| u32::try_from(i).ok().map(NodeId))
    }

    /// The node `id`, as its concrete type.
    ///
    /// # Panics
    /// If `id` is not a node of type `T`.
    pub fn node<T: Node>(&self, id: NodeId) -> &T {
        self.try_node(id)
            .unwrap_or_else(|| panic!("{id} is not a {}", type_name::<T>()))
    }

    /// The node `id` as type `T`, or `None` if it is of another type.
    pub fn try_node<T: Node>(&self, id: NodeId) -> Option<&T> {
        self.hosts.get(id.0 as usize)?.node.as_any().downcast_ref()
    }

    /// The node `id`, mutably, to call its methods mid-run (add a remote candidate, send
    /// data). Its transmits, stream commands and timeout are polled before the next event.
    ///
    /// # Panics
    /// If `id` is not a node of type `T`.
    pub fn node_mut<T: Node>(&mut self, id: NodeId) -> &mut T {
        self.mark_dirty(id);
        self.hosts
            .get_mut(id.0 as usize)
            .and_then(|h| h.node.as_any_mut().downcast_mut())
            .unwrap_or_else(|| panic!("{id} is not a {}", type_name::<T>()))
    }

    /// Calls `f` on node `id` with the current time, then drains its output at once.
    pub fn with_node<T: Node, R>(&mut self, id: NodeId, f: impl FnOnce(&mut T, Instant) -> R) -> R {
        let now = self.now();
        let result = f(self.node_mut::<T>(id), now);
        self.flush_dirty();
        result
    }

    /// Counters of one node.
    pub fn node_stats(&self, id: NodeId) -> NodeStats {
        self.hosts[id.0 as usize].stats
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.hosts.len()
    }

    // ---- NATs and counters --------------------------------------------------------------

    /// Counters of a router's NAT (all zero for a router without NAT).
    pub fn nat_stats(&self, router: RouterId) -> NatStats {
        self.routers[router.0 as usize]
            .nat
            .as_ref()
            .map(|n| n.stats)
            .unwrap_or_default()
    }

    /// Counters of a router.
    pub fn router_stats(&self, router: RouterId) -> RouterStats {
        self.routers[router.0 as usize].stats
    }

    /// The live mappings of a router's NAT, sorted.
    pub fn nat_mappings(&self, router: RouterId) -> Vec<Mapping> {
        self.routers[router.0 as usize]
            .nat
            .as_ref()
            .map(|n| n.mappings(self.clock.elapsed()))
            .unwrap_or_default()
    }

    /// Simulator-wide counters.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    // ---- observability ------------------------------------------------------------------

    /// Starts recording every hop of every packet in memory (see [`trace`](Simulator::trace)).
    ///
    /// The log grows by a few entries per packet until taken with
    /// [`take_trace`](Simulator::take_trace); leave it off for long or bulk runs.
    pub fn enable_trace(&mut self) {
        self.trace.get_or_insert_with(Vec::new);
    }

    /// The packet log so far (empty unless [`enable_trace`](Simulator::enable_trace) was
    /// called).
    pub fn trace(&self) -> &[TraceEntry] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// Takes the packet log recorded so far, leaving recording on with an empty log.
    pub fn take_trace(&mut self) -> Vec<TraceEntry> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Starts capturing packets as they cross the links selected by `capture`, for a pcap
    /// file (see [`pcap_bytes`](Simulator::pcap_bytes)). Calling it again starts a new,
    /// empty capture. The capture is kept in memory until the simulator is dropped.
    pub fn enable_pcap(&mut self, capture: Capture) {
        self.pcap = Some((capture, PcapWriter::new()));
    }

    /// The capture so far as a classic pcap file (LINKTYPE_RAW) that Wireshark opens.
    pub fn pcap_bytes(&self) -> Vec<u8> {
        self.pcap.as_ref().map_or_else(
            || PcapWriter::new().into_bytes(),
            |(_, w)| w.bytes().to_vec(),
        )
    }

    /// Writes the capture so far to a pcap file.
    pub fn write_pcap(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        std::fs::write(path, self.pcap_bytes())
    }

    // ---- the event loop -------------------------------------------------------------------

    pub(crate) fn schedule(&mut self, time: Duration, kind: EventKind) {
        self.seq += 1;
        self.events.push(Event {
            time: time.max(self.clock.elapsed()),
            seq: self.seq,
            kind,
        });
    }

    fn mark_dirty(&mut self, id: NodeId) {
        if !self.dirty.contains(&id) {
            self.dirty.push(id);
        }
    }

    /// Drains nodes touched through `node_mut` (or just added), in the order they were
    /// first touched.
    fn flush_dirty(&mut self) {
        while !self.dirty.is_empty() {
            for id in std::mem::take(&mut self.dirty) {
                self.drain(id);
            }
        }
    }

    /// The virtual time of the next event, if any.
    pub fn next_event_time(&mut self) -> Option<Instant> {
        self.flush_dirty();
        self.events.peek().map(|e| self.clock.instant(e.time))
    }

    /// Processes the next event; returns `false` if there was none.
    pub fn step(&mut self) -> bool {
        self.flush_dirty();
        let Some(event) = self.events.pop() else {
            return false;
        };
        self.clock.advance_to(event.time);
        self.stats.events += 1;
        self.dispatch(event.kind, event.time);
        true
    }

    /// Runs every event up to and including `deadline`, then sets the clock to `deadline`.
    pub fn run_until(&mut self, deadline: Instant) {
        let deadline = self.clock.offset(deadline);
        loop {
            self.flush_dirty();
            match self.events.peek() {
                Some(e) if e.time <= deadline => {
                    self.step();
                }
                _ => break,
            }
        }
        if deadline > self.clock.elapsed() {
            self.clock.advance_to(deadline);
        }
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        let deadline = self.now() + duration;
        self.run_until(deadline);
    }

    /// Runs until `condition` holds (checked before the first event and after each one) or
    /// `limit` of virtual time has passed. Returns whether the condition was met.
    pub fn run_until_condition(
        &mut self,
        limit: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> bool {
        let deadline = self.clock.elapsed() + limit;
        loop {
            self.flush_dirty();
            if condition(self) {
                return true;
            }
            match self.events.peek() {
                Some(e) if e.time <= deadline => {
                    self.step();
                }
                _ => break,
            }
        }
        if deadline > self.clock.elapsed() {
            self.clock.advance_to(deadline);
        }
        condition(self)
    }

    /// Runs until no events are left or `limit` of virtual time has passed. Returns whether
    /// the network went idle.
    pub fn run_until_idle(&mut self, limit: Duration) -> bool {
        self.run_until_condition(limit, |sim| sim.events.is_empty())
    }

    fn dispatch(&mut self, kind: EventKind, time: Duration) {
        match kind {
            EventKind::Network(net, packet) => self.route(net, packet),
            EventKind::RouterInbound(router, packet) => self.router_inbound(router, packet),
            EventKind::Deliver(node, iface, packet) => self.deliver(node, iface, packet),
            EventKind::Timer(node, generation) => {
                let host = &mut self.hosts[node.0 as usize];
                if host.timer_generation == generation && host.timeout == Some(time) {
                    host.timeout = None;
                    host.timer_spin = match host.timer_spin {
                        (at, n) if at == time => (at, n + 1),
                        _ => (time, 1),
                    };
                    assert!(
                        host.timer_spin.1 <= MAX_TIMER_SPIN,
                        "{} ({node}) asked for a timeout at t={time:?} {MAX_TIMER_SPIN} times \
                         in a row: its poll_timeout must move past now after handle_timeout",
                        host.name
                    );
                    let now = self.clock.now();
                    host.node.handle_timeout(now);
                    self.drain(node);
                }
            }
            EventKind::StreamConnectTimeout(node, id) => self.stream_timeout(node, *id, false),
            EventKind::StreamAbort(node, id) => self.stream_timeout(node, *id, true),
        }
    }

    /// Polls a node for everything it wants to do after an input.
    pub(crate) fn drain(&mut self, id: NodeId) {
        let index = id.0 as usize;
        loop {
            let mut busy = false;
            while let Some(transmit) = self.hosts[index].node.poll_transmit() {
                busy = true;
                self.send_datagram(id, transmit);
            }
            while let Some(command) = self.hosts[index].node.poll_stream_command() {
                busy = true;
                self.stream_command(id, command);
            }
            if !busy {
                break;
            }
        }
        let now = self.clock.elapsed();
        let host = &mut self.hosts[index];
        let timeout = host
            .node
            .poll_timeout()
            .map(|t| self.clock.offset(t).max(now));
        if timeout != host.timeout {
            host.timeout = timeout;
            host.timer_generation += 1;
            if let Some(at) = timeout {
                let generation = host.timer_generation;
                self.schedule(at, EventKind::Timer(id, generation));
            }
        }
    }
}
