//! Where relayed transport addresses come from. The server core asks a
//! [`RelayAllocator`]; the runtime's implementation binds real sockets, the simulator's
//! hands out addresses, and [`PortPool`] is the plain in-memory one.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use floe_stun::attributes::AddressFamily;
use rand::Rng;

/// Hands out relayed transport addresses (RFC 8656 §7.2).
pub trait RelayAllocator {
    /// Whether addresses of `family` can be allocated at all (440 otherwise).
    fn supports(&self, family: AddressFamily) -> bool;

    /// A free relayed address of `family`. With `even`, its port is even; with
    /// `reserve_next`, port + 1 is taken too and returned second (EVEN-PORT R).
    fn allocate(
        &mut self,
        family: AddressFamily,
        even: bool,
        reserve_next: bool,
    ) -> Option<(SocketAddr, Option<SocketAddr>)>;

    /// Returns an address to the pool (UDP or TCP).
    fn release(&mut self, addr: SocketAddr);

    /// Whether TCP relayed addresses can be allocated (RFC 6062); 442 otherwise. The
    /// default says no.
    fn supports_tcp(&self) -> bool {
        false
    }

    /// A free TCP relayed address of `family`, listening for peers (RFC 6062 §5.1). The
    /// default has none.
    fn allocate_tcp(&mut self, family: AddressFamily) -> Option<SocketAddr> {
        let _ = family;
        None
    }

    /// Takes over `addr`, the second address an [`allocate`](Self::allocate) with
    /// `reserve_next` returned, for the allocation that redeems its RESERVATION-TOKEN
    /// (RFC 8656 §7.2 step 6). The allocator that reserved it may be another worker's
    /// when the server's workers share their reservations
    /// ([`ServerConfig::reservations`](super::ServerConfig::reservations)). `false`
    /// when the address is no longer held: the Allocate gets 508.
    fn claim(&mut self, addr: SocketAddr) -> bool;

    /// Whether `addr` is in the relay address space this allocator draws from (its IPs
    /// and port range), whoever holds it: another worker of the same server may. Used
    /// to hand relay-to-relay traffic over inside the server behind a 1:1 NAT
    /// ([`ServerConfig::external_ips`](super::ServerConfig::external_ips)). The default
    /// says no.
    fn in_relay_range(&self, addr: SocketAddr) -> bool {
        let _ = addr;
        false
    }
}

/// The relay address space of a server: one IPv4 and/or one IPv6 address and a port
/// range (RFC 8656 §7.2: SHOULD be within 49152-65535), and how a port is drawn from it
/// at random (RFC 6056). Every [`RelayAllocator`] of floe draws from one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayRange {
    /// The IPv4 relay address.
    pub ipv4: Option<IpAddr>,
    /// The IPv6 relay address.
    pub ipv6: Option<IpAddr>,
    /// The relay ports.
    pub ports: RangeInclusive<u16>,
}

impl RelayRange {
    /// The relay address of `family`, if any (440 otherwise).
    pub fn ip(&self, family: AddressFamily) -> Option<IpAddr> {
        match family {
            AddressFamily::Ipv4 => self.ipv4,
            AddressFamily::Ipv6 => self.ipv6,
        }
    }

    /// Whether `addr` is one of this range's addresses.
    pub fn contains(&self, addr: SocketAddr) -> bool {
        (Some(addr.ip()) == self.ipv4 || Some(addr.ip()) == self.ipv6)
            && self.ports.contains(&addr.port())
    }

    /// A random port that can start an allocation: even when `even`, and with room for
    /// port + 1 when `reserve_next` (EVEN-PORT R). `None` if the draw misses (the caller
    /// draws again).
    pub fn draw(&self, rng: &mut impl Rng, even: bool, reserve_next: bool) -> Option<u16> {
        let (lo, hi) = (*self.ports.start(), *self.ports.end());
        let port = rng.gen_range(lo..=hi);
        self.fits(port, even, reserve_next).then_some(port)
    }

    /// Whether `port` can start an allocation (see [`RelayRange::draw`]).
    pub fn fits(&self, port: u16, even: bool, reserve_next: bool) -> bool {
        self.ports.contains(&port)
            && (!even || port % 2 == 0)
            && (!reserve_next || port < *self.ports.end())
    }
}

/// Addresses from a [`RelayRange`], chosen at random (RFC 8656 §7.2 recommends RFC 6056
/// randomization), remembered in memory. Allocation tries a bounded number of random
/// ports, then scans.
#[derive(Debug, Clone)]
pub struct PortPool<G> {
    range: RelayRange,
    used: HashSet<SocketAddr>,
    rng: G,
}

impl<G: Rng> PortPool<G> {
    /// A pool over `ports` (RFC 8656 §7.2: SHOULD be within 49152-65535) on the given
    /// relay addresses.
    pub fn new(
        ipv4: Option<IpAddr>,
        ipv6: Option<IpAddr>,
        ports: RangeInclusive<u16>,
        rng: G,
    ) -> PortPool<G> {
        PortPool {
            range: RelayRange { ipv4, ipv6, ports },
            used: HashSet::new(),
            rng,
        }
    }

    /// Addresses in use.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }

    fn free(&self, a: SocketAddr) -> bool {
        !self.used.contains(&a)
    }
}

impl<G: Rng> RelayAllocator for PortPool<G> {
    fn in_relay_range(&self, addr: SocketAddr) -> bool {
        self.range.contains(addr)
    }

    fn supports(&self, family: AddressFamily) -> bool {
        self.range.ip(family).is_some()
    }

    fn allocate(
        &mut self,
        family: AddressFamily,
        even: bool,
        reserve_next: bool,
    ) -> Option<(SocketAddr, Option<SocketAddr>)> {
        let ip = self.range.ip(family)?;
        let ok = |pool: &Self, port: u16| {
            pool.range.fits(port, even, reserve_next)
                && pool.free(SocketAddr::new(ip, port))
                && (!reserve_next || pool.free(SocketAddr::new(ip, port + 1)))
        };
        let mut port = None;
        for _ in 0..32 {
            if let Some(p) = self.range.draw(&mut self.rng, even, reserve_next) {
                if ok(self, p) {
                    port = Some(p);
                    break;
                }
            }
        }
        let port = port.or_else(|| self.range.ports.clone().find(|&p| ok(self, p)))?;
        let addr = SocketAddr::new(ip, port);
        self.used.insert(addr);
        let next = reserve_next.then(|| SocketAddr::new(ip, port + 1));
        if let Some(n) = next {
            self.used.insert(n);
        }
        Some((addr, next))
    }

    /// Addresses only: the same pool serves TCP (a simulator or test connects them).
    fn supports_tcp(&self) -> bool {
        true
    }

    fn allocate_tcp(&mut self, family: AddressFamily) -> Option<SocketAddr> {
        self.allocate(family, false, false).map(|(a, _)| a)
    }

    fn release(&mut self, addr: SocketAddr) {
        self.used.remove(&addr);
    }

    /// A pool's own reservations are in its used set already. Addresses of the same
    /// range reserved by another pool are marked used here too; that pool keeps its own
    /// mark, so pools of workers sharing reservations should not share ports (the
    /// runtime's `SocketRelays` lets the operating system decide instead).
    fn claim(&mut self, addr: SocketAddr) -> bool {
        if !self.range.contains(addr) {
            return false;
        }
        self.used.insert(addr);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn pool_hands_out_distinct_even_pairs_until_exhausted() {
        let rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut pool = PortPool::new(
            Some("192.0.2.1".parse().unwrap()),
            None,
            50_000..=50_007,
            rng,
        );
        assert!(!pool.supports(AddressFamily::Ipv6));
        let mut seen = HashSet::new();
        for _ in 0..4 {
            let (a, b) = pool.allocate(AddressFamily::Ipv4, true, true).unwrap();
            assert_eq!(a.port() % 2, 0);
            assert_eq!(b.unwrap().port(), a.port() + 1);
            assert!(seen.insert(a) && seen.insert(b.unwrap()));
        }
        assert!(pool.allocate(AddressFamily::Ipv4, false, false).is_none());
        pool.release("192.0.2.1:50003".parse().unwrap());
        assert_eq!(
            pool.allocate(AddressFamily::Ipv4, false, false)
                .unwrap()
                .0
                .port(),
            50_003
        );
    }

    /// RFC 8656 §7.2 (RFC 6056): relayed ports are drawn at random from the configured
    /// range (49152-65535 by default in `floe serve`), not handed out in order.
    #[test]
    fn ports_are_drawn_at_random_from_the_range() {
        let draw = |seed: u64| {
            let mut pool = PortPool::new(
                Some("192.0.2.1".parse().unwrap()),
                None,
                49_152..=65_535,
                rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            );
            (0..16)
                .map(|_| {
                    pool.allocate(AddressFamily::Ipv4, false, false)
                        .unwrap()
                        .0
                        .port()
                })
                .collect::<Vec<u16>>()
        };
        let ports = draw(1);
        assert!(ports.iter().all(|p| (49_152..=65_535).contains(p)));
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        let consecutive = ports.windows(2).filter(|w| w[1] == w[0] + 1).count();
        assert!(consecutive < 2, "ports in order: {ports:?}");
        let (lo, hi) = (ports.iter().min().unwrap(), ports.iter().max().unwrap());
        assert!(hi - lo > 4096, "ports bunched together: {ports:?}");
        assert_ne!(draw(2), ports, "another seed, other ports");
    }
}
