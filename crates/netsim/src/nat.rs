//! NAT behaviour, exactly as RFC 4787 classifies it.
//!
//! A [`NatConfig`] picks each behaviour independently:
//!
//! - mapping ([`MappingBehavior`], RFC 4787 §4.1, REQ-1): when is an existing external
//!   address:port reused for a new destination;
//! - filtering ([`FilteringBehavior`], §5, REQ-8): which external endpoints may send back
//!   through a mapping;
//! - port assignment ([`PortAssignment`], §4.2, REQ-3): which external port a new mapping
//!   gets;
//! - hairpinning (§6, REQ-9): whether a packet from inside to the NAT's own external address
//!   is looped back in, with the sender's external address as its source (REQ-9a);
//! - mapping lifetime and refresh direction (§4.3, REQ-5, REQ-6);
//! - 1:1 NAT: one internal address is mapped statically to the external address, ports
//!   unchanged and nothing filtered (as cloud "elastic IPs" do).
//!
//! Filtering state is kept per internal endpoint `X:x` as §5 defines it: "X:x has sent
//! packets to Y:any (or Y:y) previously", through any of its mappings.
//!
//! # Example: a symmetric NAT gives each destination its own port
//!
//! ```
//! use std::time::Duration;
//! use floe_netsim::nodes::{Peer, UdpEcho};
//! use floe_netsim::{NatConfig, Simulator};
//!
//! let mut sim = Simulator::new(1);
//! let internet = sim.internet();
//! sim.add_host(internet, "198.51.100.1".parse().unwrap(), UdpEcho::new());
//! sim.add_host(internet, "198.51.100.2".parse().unwrap(), UdpEcho::new());
//! let (nat, lan) = sim.add_nat(internet, "203.0.113.1".parse().unwrap(), NatConfig::symmetric());
//! let host = sim.add_host(lan, "10.0.0.2".parse().unwrap(), Peer::new());
//!
//! let local = "10.0.0.2:5000".parse().unwrap();
//! let peer = sim.node_mut::<Peer>(host);
//! peer.send(local, "198.51.100.1:7".parse().unwrap(), &b"a"[..]);
//! peer.send(local, "198.51.100.2:7".parse().unwrap(), &b"b"[..]);
//! sim.run_for(Duration::from_millis(50));
//!
//! let mappings = sim.nat_mappings(nat);
//! assert_eq!(mappings.len(), 2);
//! assert_ne!(mappings[0].external.port(), mappings[1].external.port());
//! assert_eq!(sim.nat_stats(nat).mappings_created, 2);
//! ```

use std::collections::hash_map::Entry;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::hash::FxHashMap;
use crate::packet::Protocol;
use crate::trace::DropReason;

/// RFC 4787 §4.1: when a NAT reuses a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MappingBehavior {
    /// The same mapping for every destination (REQ-1: a NAT MUST behave like this).
    EndpointIndependent,
    /// A new mapping per destination IP address.
    AddressDependent,
    /// A new mapping per destination IP address and port ("symmetric NAT").
    AddressAndPortDependent,
}

/// RFC 4787 §5: which inbound packets a mapping lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FilteringBehavior {
    /// Anything sent to the mapping's external address and port.
    EndpointIndependent,
    /// Only from IP addresses the internal endpoint has sent to.
    AddressDependent,
    /// Only from IP addresses and ports the internal endpoint has sent to.
    AddressAndPortDependent,
}

/// RFC 4787 §4.2: which external port a new mapping gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PortAssignment {
    /// Keep the internal port when it is free on the external address ("port
    /// preservation"), otherwise the next free port sequentially.
    Preserve,
    /// The next free port after the previously assigned one.
    Sequential,
    /// A uniformly random free port from the range.
    Random,
}

/// RFC 4787 §4.1: which external address a NAT with several (a pool) gives a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressPooling {
    /// Every mapping of one internal address uses the same external address (REQ-2
    /// recommends this). Internal addresses are spread over the pool in order of first use.
    Paired,
    /// Each new mapping gets an external address drawn at random from the pool, so one
    /// host can appear from several public addresses (some carrier-grade NATs).
    Arbitrary,
}

/// The configuration of a NAT. Start from a preset and adjust with the `with_*` methods.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NatConfig {
    /// Mapping behaviour (RFC 4787 §4.1).
    pub mapping: MappingBehavior,
    /// Filtering behaviour (RFC 4787 §5).
    pub filtering: FilteringBehavior,
    /// Port assignment (RFC 4787 §4.2).
    pub port_assignment: PortAssignment,
    /// Which external address a mapping gets when the router has several of one family
    /// (RFC 4787 §4.1, REQ-2). Default paired.
    pub pooling: AddressPooling,
    /// Hairpinning (RFC 4787 §6, REQ-9). Default on.
    pub hairpinning: bool,
    /// Idle lifetime of a UDP mapping. Default 5 minutes, the value RFC 4787 REQ-5c
    /// recommends (REQ-5 forbids less than 2 minutes on a real NAT; the simulator allows
    /// shorter to model broken NATs, e.g. Linux conntrack's 30 s).
    pub udp_mapping_lifetime: Duration,
    /// Idle lifetime of a UDP mapping once it has carried traffic in both directions, if
    /// different (Linux conntrack: 120 s for an "assured" entry). Default `None`.
    pub udp_established_lifetime: Option<Duration>,
    /// Idle lifetime of a TCP mapping. Default 2 h 4 min (RFC 5382 REQ-5).
    pub tcp_mapping_lifetime: Duration,
    /// Whether inbound packets refresh a mapping (RFC 4787 REQ-6a). Outbound packets always
    /// do (REQ-6). Default off.
    pub inbound_refresh: bool,
    /// External ports the NAT assigns from, inclusive. Default 1024..=65535 (REQ-3a).
    pub port_range: (u16, u16),
    /// Port parity preservation (RFC 4787 §4.2.2, REQ-4): an even internal port gets an
    /// even external port, an odd one an odd port. Default off, as most NATs do.
    pub port_parity: bool,
    /// 1:1 NAT: this internal address is mapped statically to the external address with
    /// ports unchanged and no filtering. Other internal hosts are NATed as configured.
    pub one_to_one: Option<IpAddr>,
}

impl Default for NatConfig {
    /// The RFC 4787 recommended NAT: endpoint-independent mapping (REQ-1),
    /// address-dependent filtering (REQ-8), port preservation, hairpinning (REQ-9).
    fn default() -> Self {
        Self {
            mapping: MappingBehavior::EndpointIndependent,
            filtering: FilteringBehavior::AddressDependent,
            port_assignment: PortAssignment::Preserve,
            pooling: AddressPooling::Paired,
            hairpinning: true,
            udp_mapping_lifetime: Duration::from_secs(300),
            udp_established_lifetime: None,
            tcp_mapping_lifetime: Duration::from_secs(7440),
            inbound_refresh: false,
            port_range: (1024, 65535),
            port_parity: false,
            one_to_one: None,
        }
    }
}

impl NatConfig {
    /// A NAT with these mapping and filtering behaviours and the defaults otherwise.
    pub fn new(mapping: MappingBehavior, filtering: FilteringBehavior) -> Self {
        Self {
            mapping,
            filtering,
            ..Self::default()
        }
    }

    /// "Full cone": endpoint-independent mapping and filtering.
    pub fn full_cone() -> Self {
        Self::new(
            MappingBehavior::EndpointIndependent,
            FilteringBehavior::EndpointIndependent,
        )
    }

    /// "(Address-)restricted cone": endpoint-independent mapping, address-dependent
    /// filtering.
    pub fn restricted_cone() -> Self {
        Self::new(
            MappingBehavior::EndpointIndependent,
            FilteringBehavior::AddressDependent,
        )
    }

    /// "Port-restricted cone": endpoint-independent mapping, address-and-port-dependent
    /// filtering. This is Linux `MASQUERADE` (see also [`NatConfig::linux_masquerade`]).
    pub fn port_restricted_cone() -> Self {
        Self::new(
            MappingBehavior::EndpointIndependent,
            FilteringBehavior::AddressAndPortDependent,
        )
    }

    /// "Symmetric": address-and-port-dependent mapping and filtering, sequential ports.
    pub fn symmetric() -> Self {
        Self::new(
            MappingBehavior::AddressAndPortDependent,
            FilteringBehavior::AddressAndPortDependent,
        )
        .with_port_assignment(PortAssignment::Sequential)
    }

    /// Linux netfilter `MASQUERADE`: a port-restricted cone with port preservation, no
    /// hairpinning, and conntrack's UDP timeouts: 30 s, or 120 s once both directions have
    /// been seen, refreshed by packets in either direction.
    pub fn linux_masquerade() -> Self {
        Self::port_restricted_cone()
            .with_hairpinning(false)
            .with_conntrack_timeouts()
    }

    /// Linux `MASQUERADE --random-fully`: symmetric with random ports, no hairpinning,
    /// conntrack timeouts as [`NatConfig::linux_masquerade`].
    pub fn linux_masquerade_random() -> Self {
        Self::symmetric()
            .with_port_assignment(PortAssignment::Random)
            .with_hairpinning(false)
            .with_conntrack_timeouts()
    }

    fn with_conntrack_timeouts(mut self) -> Self {
        self.udp_mapping_lifetime = Duration::from_secs(30);
        self.udp_established_lifetime = Some(Duration::from_secs(120));
        self.inbound_refresh = true;
        self
    }

    /// 1:1 NAT for `internal`: static address translation, ports unchanged, no filtering.
    pub fn one_to_one(internal: IpAddr) -> Self {
        Self {
            one_to_one: Some(internal),
            ..Self::full_cone()
        }
    }

    /// Sets the mapping behaviour.
    #[must_use]
    pub fn with_mapping(mut self, mapping: MappingBehavior) -> Self {
        self.mapping = mapping;
        self
    }

    /// Sets the filtering behaviour.
    #[must_use]
    pub fn with_filtering(mut self, filtering: FilteringBehavior) -> Self {
        self.filtering = filtering;
        self
    }

    /// Sets the port assignment.
    #[must_use]
    pub fn with_port_assignment(mut self, port_assignment: PortAssignment) -> Self {
        self.port_assignment = port_assignment;
        self
    }

    /// Sets the address pooling behaviour.
    #[must_use]
    pub fn with_pooling(mut self, pooling: AddressPooling) -> Self {
        self.pooling = pooling;
        self
    }

    /// Turns hairpinning on or off.
    #[must_use]
    pub fn with_hairpinning(mut self, hairpinning: bool) -> Self {
        self.hairpinning = hairpinning;
        self
    }

    /// Sets the idle lifetime of UDP mappings.
    #[must_use]
    pub fn with_udp_mapping_lifetime(mut self, lifetime: Duration) -> Self {
        self.udp_mapping_lifetime = lifetime;
        self
    }

    /// Sets whether inbound packets refresh mappings (REQ-6a).
    #[must_use]
    pub fn with_inbound_refresh(mut self, inbound_refresh: bool) -> Self {
        self.inbound_refresh = inbound_refresh;
        self
    }

    /// Sets the external port range (inclusive).
    #[must_use]
    pub fn with_port_range(mut self, low: u16, high: u16) -> Self {
        self.port_range = (low.min(high), high.max(low));
        self
    }

    /// Sets port parity preservation (REQ-4).
    #[must_use]
    pub fn with_port_parity(mut self, port_parity: bool) -> Self {
        self.port_parity = port_parity;
        self
    }

    /// Sets the idle lifetime of UDP mappings that have seen traffic both ways.
    #[must_use]
    pub fn with_udp_established_lifetime(mut self, lifetime: Duration) -> Self {
        self.udp_established_lifetime = Some(lifetime);
        self
    }

    fn lifetime_of(&self, protocol: Protocol, bidirectional: bool) -> Duration {
        match (protocol, bidirectional, self.udp_established_lifetime) {
            (Protocol::Udp, true, Some(established)) => established,
            _ => self.lifetime(protocol),
        }
    }

    fn lifetime(&self, protocol: Protocol) -> Duration {
        match protocol {
            Protocol::Udp => self.udp_mapping_lifetime,
            Protocol::Tcp => self.tcp_mapping_lifetime,
        }
    }
}

/// Counters of one NAT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatStats {
    /// Mappings created.
    pub mappings_created: u64,
    /// Mappings that timed out (counted when the NAT noticed).
    pub mappings_expired: u64,
    /// Packets translated inside -> outside.
    pub translated_outbound: u64,
    /// Packets translated outside -> inside.
    pub translated_inbound: u64,
    /// Packets looped back by hairpinning.
    pub hairpinned: u64,
    /// Inbound packets dropped for lack of a mapping.
    pub dropped_no_mapping: u64,
    /// Inbound packets dropped by the filtering behaviour.
    pub dropped_filtered: u64,
    /// Packets dropped because hairpinning is off.
    pub dropped_hairpin: u64,
    /// Outbound packets dropped because no external port was free.
    pub dropped_ports_exhausted: u64,
    /// Reboots.
    pub reboots: u64,
}

/// A live NAT mapping, for inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mapping {
    /// UDP or TCP.
    pub protocol: Protocol,
    /// The internal endpoint `X:x`.
    pub internal: SocketAddr,
    /// The external endpoint `X':x'` the NAT assigned.
    pub external: SocketAddr,
    /// For address(-and-port)-dependent mapping, the destination the mapping is bound to
    /// (port 0 for address-dependent); `None` for endpoint-independent mapping.
    pub destination: Option<SocketAddr>,
    /// Virtual time at which the mapping expires unless refreshed.
    pub expires: Duration,
    /// Whether an inbound packet has passed through the mapping.
    pub bidirectional: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct MapKey {
    protocol: Protocol,
    internal: SocketAddr,
    destination: Option<SocketAddr>,
}

/// The translation state of one NAT.
#[derive(Debug, Clone)]
pub(crate) struct Nat {
    pub(crate) config: NatConfig,
    pub(crate) stats: NatStats,
    by_key: FxHashMap<MapKey, SocketAddr>,
    by_external: FxHashMap<(Protocol, SocketAddr), Mapping>,
    /// Filtering permissions per internal endpoint: (protocol, X:x, masked remote) -> expiry.
    permissions: FxHashMap<(Protocol, SocketAddr, SocketAddr), Duration>,
    next_port: u16,
    /// Paired pooling: the external address each internal address was given.
    paired: FxHashMap<IpAddr, IpAddr>,
    /// Paired pooling: the next pool index to hand out.
    next_pooled: usize,
    /// Table insertions since the last sweep of expired entries.
    inserts_since_sweep: usize,
}

/// Expired mappings and permissions are dropped lazily when looked up, and in a sweep after
/// this many insertions, so that tables stay bounded by the live flows.
const SWEEP_EVERY: usize = 4096;

fn mask(addr: SocketAddr, keep_port: bool) -> SocketAddr {
    if keep_port {
        addr
    } else {
        SocketAddr::new(addr.ip(), 0)
    }
}

impl Nat {
    pub(crate) fn new(config: NatConfig) -> Self {
        let next_port = config.port_range.0;
        Self {
            config,
            stats: NatStats::default(),
            by_key: FxHashMap::default(),
            by_external: FxHashMap::default(),
            permissions: FxHashMap::default(),
            next_port,
            paired: FxHashMap::default(),
            next_pooled: 0,
            inserts_since_sweep: 0,
        }
    }

    /// Forgets every mapping and permission, as a reboot does.
    pub(crate) fn reboot(&mut self) {
        self.by_key.clear();
        self.by_external.clear();
        self.permissions.clear();
        self.paired.clear();
        self.next_pooled = 0;
        self.next_port = self.config.port_range.0;
        self.stats.reboots += 1;
    }

    /// Forgets expired mappings and permissions. The outcome does not depend on the
    /// tables' iteration order, so runs stay deterministic.
    fn sweep(&mut self, now: Duration) {
        let before = self.by_external.len();
        self.by_external.retain(|_, m| m.expires > now);
        self.stats.mappings_expired += (before - self.by_external.len()) as u64;
        let by_external = &self.by_external;
        self.by_key
            .retain(|k, ext| by_external.contains_key(&(k.protocol, *ext)));
        self.permissions.retain(|_, expires| *expires > now);
        self.inserts_since_sweep = 0;
    }

    /// Live mappings, sorted.
    pub(crate) fn mappings(&self, now: Duration) -> Vec<Mapping> {
        let mut all: Vec<Mapping> = self
            .by_external
            .values()
            .filter(|m| m.expires > now)
            .copied()
            .collect();
        all.sort();
        all
    }

    /// The external address (of `destination`'s family) a new mapping for `internal` gets
    /// from the router's `pool`.
    fn pick_external(
        &mut self,
        internal: IpAddr,
        destination: IpAddr,
        pool: &[IpAddr],
        rng: &mut ChaCha8Rng,
    ) -> Option<IpAddr> {
        let family = || {
            pool.iter()
                .copied()
                .filter(move |a| a.is_ipv4() == destination.is_ipv4())
        };
        let count = family().count();
        match (count, self.config.pooling) {
            (0, _) => None,
            (1, _) => family().next(),
            (_, AddressPooling::Arbitrary) => family().nth(rng.gen_range(0..count)),
            (_, AddressPooling::Paired) => {
                if let Some(ip) = self.paired.get(&internal) {
                    return Some(*ip);
                }
                let ip = family().nth(self.next_pooled % count)?;
                self.next_pooled += 1;
                self.paired.insert(internal, ip);
                Some(ip)
            }
        }
    }

    /// Translates the source of a packet going out: returns the external source address.
    pub(crate) fn outbound(
        &mut self,
        now: Duration,
        protocol: Protocol,
        src: SocketAddr,
        dst: SocketAddr,
        pool: &[IpAddr],
        rng: &mut ChaCha8Rng,
    ) -> Result<SocketAddr, DropReason> {
        if self.config.one_to_one == Some(src.ip()) {
            let external_ip = pool
                .iter()
                .find(|a| a.is_ipv4() == dst.is_ipv4())
                .ok_or(DropReason::NoRoute)?;
            self.stats.translated_outbound += 1;
            return Ok(SocketAddr::new(*external_ip, src.port()));
        }
        let config = &self.config;
        let key = MapKey {
            protocol,
            internal: src,
            destination: match self.config.mapping {
                MappingBehavior::EndpointIndependent => None,
                MappingBehavior::AddressDependent => Some(mask(dst, false)),
                MappingBehavior::AddressAndPortDependent => Some(dst),
            },
        };
        let initial_lifetime = config.lifetime(protocol);
        let established = config.lifetime_of(protocol, true);
        let existing = self.by_key.get(&key).copied();
        let (external, lifetime) =
            if let Some(mapping) = existing.and_then(|ext| self.live(now, protocol, ext)) {
                // RFC 4787 REQ-6: outbound traffic refreshes the mapping.
                let lifetime = if mapping.bidirectional {
                    established
                } else {
                    initial_lifetime
                };
                mapping.expires = now + lifetime;
                (mapping.external, lifetime)
            } else {
                // `live` already removed an expired mapping from both tables.
                self.by_key.remove(&key);
                let external_ip = self
                    .pick_external(src.ip(), dst.ip(), pool, rng)
                    .ok_or(DropReason::NoRoute)?;
                let port = self
                    .assign_port(now, protocol, external_ip, src.port(), rng)
                    .ok_or_else(|| {
                        self.stats.dropped_ports_exhausted += 1;
                        DropReason::PortsExhausted
                    })?;
                let external = SocketAddr::new(external_ip, port);
                self.by_key.insert(key, external);
                self.by_external.insert(
                    (protocol, external),
                    Mapping {
                        protocol,
                        internal: src,
                        external,
                        destination: key.destination,
                        expires: now + initial_lifetime,
                        bidirectional: false,
                    },
                );
                self.stats.mappings_created += 1;
                self.inserts_since_sweep += 1;
                (external, initial_lifetime)
            };
        if self.config.filtering != FilteringBehavior::EndpointIndependent {
            let remote = mask(
                dst,
                self.config.filtering == FilteringBehavior::AddressAndPortDependent,
            );
            if self
                .permissions
                .insert((protocol, src, remote), now + lifetime)
                .is_none()
            {
                self.inserts_since_sweep += 1;
            }
        }
        if self.inserts_since_sweep >= SWEEP_EVERY {
            self.sweep(now);
        }
        self.stats.translated_outbound += 1;
        Ok(external)
    }

    /// Translates the destination of a packet coming in on the external side: returns the
    /// internal destination, or why the packet is dropped.
    pub(crate) fn inbound(
        &mut self,
        now: Duration,
        protocol: Protocol,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Result<SocketAddr, DropReason> {
        let established = self.config.lifetime_of(protocol, true);
        let filtering = self.config.filtering;
        let inbound_refresh = self.config.inbound_refresh;
        let Some(mapping) = live(
            &mut self.by_external,
            &mut self.by_key,
            &mut self.stats,
            now,
            protocol,
            dst,
        ) else {
            if let Some(internal) = self.config.one_to_one {
                self.stats.translated_inbound += 1;
                return Ok(SocketAddr::new(internal, dst.port()));
            }
            self.stats.dropped_no_mapping += 1;
            return Err(DropReason::NoMapping);
        };
        let internal = mapping.internal;
        if filtering != FilteringBehavior::EndpointIndependent {
            let remote = mask(src, filtering == FilteringBehavior::AddressAndPortDependent);
            match self.permissions.get_mut(&(protocol, internal, remote)) {
                Some(expires) if *expires > now => {
                    if inbound_refresh {
                        *expires = now + established;
                    }
                }
                _ => {
                    self.stats.dropped_filtered += 1;
                    return Err(DropReason::Filtered);
                }
            }
        }
        mapping.bidirectional = true;
        if inbound_refresh {
            // RFC 4787 REQ-6a: inbound refresh, when configured.
            mapping.expires = now + established;
        }
        self.stats.translated_inbound += 1;
        Ok(internal)
    }

    /// The live mapping with this external address, removing it if it has expired.
    fn live(
        &mut self,
        now: Duration,
        protocol: Protocol,
        external: SocketAddr,
    ) -> Option<&mut Mapping> {
        live(
            &mut self.by_external,
            &mut self.by_key,
            &mut self.stats,
            now,
            protocol,
            external,
        )
    }

    fn is_free(&mut self, now: Duration, protocol: Protocol, ip: IpAddr, port: u16) -> bool {
        self.live(now, protocol, SocketAddr::new(ip, port))
            .is_none()
    }

    fn assign_port(
        &mut self,
        now: Duration,
        protocol: Protocol,
        ip: IpAddr,
        internal_port: u16,
        rng: &mut ChaCha8Rng,
    ) -> Option<u16> {
        let (low, high) = self.config.port_range;
        let parity = self.config.port_parity;
        let fits = |port: u16| !parity || port % 2 == internal_port % 2;
        match self.config.port_assignment {
            PortAssignment::Preserve => {
                // RFC 4787 §4.2.1: port preservation when the port is free.
                if internal_port != 0 && self.is_free(now, protocol, ip, internal_port) {
                    return Some(internal_port);
                }
            }
            PortAssignment::Random => {
                for _ in 0..64 {
                    let port = rng.gen_range(low..=high);
                    if fits(port) && self.is_free(now, protocol, ip, port) {
                        return Some(port);
                    }
                }
            }
            PortAssignment::Sequential => {}
        }
        let span = u32::from(high - low) + 1;
        for _ in 0..span {
            let port = self.next_port.clamp(low, high);
            self.next_port = if port >= high { low } else { port + 1 };
            if fits(port) && self.is_free(now, protocol, ip, port) {
                return Some(port);
            }
        }
        None
    }
}

/// The live mapping with this external address in `by_external`, removing it (and its
/// `by_key` entry) if it has expired. One hash lookup in the common case.
fn live<'a>(
    by_external: &'a mut FxHashMap<(Protocol, SocketAddr), Mapping>,
    by_key: &mut FxHashMap<MapKey, SocketAddr>,
    stats: &mut NatStats,
    now: Duration,
    protocol: Protocol,
    external: SocketAddr,
) -> Option<&'a mut Mapping> {
    match by_external.entry((protocol, external)) {
        Entry::Vacant(_) => None,
        Entry::Occupied(entry) if entry.get().expires > now => Some(entry.into_mut()),
        Entry::Occupied(entry) => {
            let m = entry.remove();
            let map_key = MapKey {
                protocol,
                internal: m.internal,
                destination: m.destination,
            };
            if by_key.get(&map_key) == Some(&external) {
                by_key.remove(&map_key);
            }
            stats.mappings_expired += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const EXT: &str = "203.0.113.1";

    fn out(nat: &mut Nat, now: u64, src: &str, dst: &str) -> SocketAddr {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        nat.outbound(
            Duration::from_secs(now),
            Protocol::Udp,
            sa(src),
            sa(dst),
            &[EXT.parse().unwrap()],
            &mut rng,
        )
        .unwrap()
    }

    #[test]
    fn endpoint_independent_mapping_reuses_the_port_for_every_destination() {
        let mut nat = Nat::new(NatConfig::full_cone());
        let a = out(&mut nat, 0, "10.0.0.2:5000", "1.1.1.1:3478");
        let b = out(&mut nat, 0, "10.0.0.2:5000", "2.2.2.2:9");
        assert_eq!(a, b);
        assert_eq!(a, sa("203.0.113.1:5000"), "port preserved");
        assert_eq!(nat.stats.mappings_created, 1);
    }

    #[test]
    fn address_dependent_mapping_differs_per_address_not_per_port() {
        let mut nat = Nat::new(NatConfig::new(
            MappingBehavior::AddressDependent,
            FilteringBehavior::AddressDependent,
        ));
        let a = out(&mut nat, 0, "10.0.0.2:5000", "1.1.1.1:1");
        let b = out(&mut nat, 0, "10.0.0.2:5000", "1.1.1.1:2");
        let c = out(&mut nat, 0, "10.0.0.2:5000", "2.2.2.2:1");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn sequential_assignment_counts_up_from_the_range_start() {
        let mut nat = Nat::new(NatConfig::symmetric().with_port_range(40000, 40010));
        let a = out(&mut nat, 0, "10.0.0.2:5000", "1.1.1.1:1");
        let b = out(&mut nat, 0, "10.0.0.2:5000", "1.1.1.1:2");
        assert_eq!(a.port(), 40000);
        assert_eq!(b.port(), 40001);
    }

    #[test]
    fn port_parity_keeps_odd_ports_odd_and_even_ports_even() {
        let mut nat = Nat::new(
            NatConfig::symmetric()
                .with_port_range(40000, 40010)
                .with_port_parity(true),
        );
        let odd = out(&mut nat, 0, "10.0.0.2:5001", "1.1.1.1:1");
        let even = out(&mut nat, 0, "10.0.0.2:5000", "1.1.1.1:1");
        let odd2 = out(&mut nat, 0, "10.0.0.2:5003", "1.1.1.1:1");
        assert_eq!(
            (odd.port(), even.port(), odd2.port()),
            (40001, 40002, 40003)
        );
    }

    #[test]
    fn tables_stay_bounded_by_the_live_flows() {
        let mut nat =
            Nat::new(NatConfig::symmetric().with_udp_mapping_lifetime(Duration::from_secs(10)));
        for i in 0..20_000u32 {
            let dst = format!("1.1.{}.{}:9", (i / 250) % 250, i % 250);
            out(&mut nat, u64::from(i), "10.0.0.2:5000", &dst);
        }
        assert!(nat.by_external.len() <= SWEEP_EVERY + 10);
        assert!(nat.permissions.len() <= SWEEP_EVERY + 10);
        assert_eq!(nat.mappings(Duration::from_secs(19_999)).len(), 10);
    }

    #[test]
    fn exhausted_port_range_drops_new_flows() {
        let mut nat = Nat::new(NatConfig::symmetric().with_port_range(40000, 40001));
        out(&mut nat, 0, "10.0.0.2:5000", "1.1.1.1:1");
        out(&mut nat, 0, "10.0.0.2:5000", "1.1.1.1:2");
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let third = nat.outbound(
            Duration::ZERO,
            Protocol::Udp,
            sa("10.0.0.2:5000"),
            sa("1.1.1.1:3"),
            &[EXT.parse().unwrap()],
            &mut rng,
        );
        assert_eq!(third, Err(DropReason::PortsExhausted));
    }

    #[test]
    fn expired_mapping_frees_its_port_and_is_counted() {
        let mut nat =
            Nat::new(NatConfig::full_cone().with_udp_mapping_lifetime(Duration::from_secs(30)));
        out(&mut nat, 0, "10.0.0.2:5000", "1.1.1.1:1");
        assert_eq!(
            nat.inbound(
                Duration::from_secs(31),
                Protocol::Udp,
                sa("1.1.1.1:1"),
                sa("203.0.113.1:5000")
            ),
            Err(DropReason::NoMapping)
        );
        assert_eq!(nat.stats.mappings_expired, 1);
    }

    #[test]
    fn one_to_one_nat_forwards_unsolicited_inbound_packets() {
        let mut nat = Nat::new(NatConfig::one_to_one("10.0.0.9".parse().unwrap()));
        assert_eq!(
            nat.inbound(
                Duration::ZERO,
                Protocol::Udp,
                sa("1.1.1.1:1"),
                sa("203.0.113.1:7000")
            ),
            Ok(sa("10.0.0.9:7000"))
        );
        assert_eq!(
            out(&mut nat, 0, "10.0.0.9:7000", "1.1.1.1:1"),
            sa("203.0.113.1:7000")
        );
    }
}
