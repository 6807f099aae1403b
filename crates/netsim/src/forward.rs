//! Packet forwarding: links, routing, NAT translation, firewalls and delivery.
//!
//! A packet moves hop by hop. Crossing a link takes an event (its delay); routing inside a
//! network and crossing a router's inside are instantaneous. A router's external link is
//! crossed after translation on the way out and before it on the way in.

use std::net::SocketAddr;

use crate::node::Transmit;
use crate::packet::{Packet, Protocol};
use crate::pcap::Capture;
use crate::sim::{EventKind, Simulator};
use crate::topology::{LinkId, NetId, NodeId, RouterId, Target};
use crate::trace::{DropReason, Hop, TraceEntry, Verdict};

/// The initial IP TTL of every packet; each router crossed decrements it.
pub(crate) const TTL: u8 = 64;

impl Simulator {
    /// A node's datagram enters the network.
    pub(crate) fn send_datagram(&mut self, node: NodeId, transmit: Transmit) {
        let Transmit {
            source,
            destination,
            bytes,
        } = transmit;
        self.next_packet += 1;
        let mut packet = Packet {
            id: self.next_packet,
            origin: node,
            protocol: Protocol::Udp,
            ttl: TTL,
            src: source,
            dst: destination,
            payload: bytes,
            segment: None,
        };
        self.stats.datagrams_sent += 1;
        let host = &mut self.hosts[node.0 as usize];
        host.stats.sent += 1;
        host.stats.bytes_sent += packet.payload.len() as u64;
        let Some(iface) = host.iface_for(source.ip(), destination.ip()) else {
            self.drop_packet(Hop::Node(node), &packet, DropReason::NoSuchInterface);
            return;
        };
        packet.src = SocketAddr::new(host.ifaces[iface].addr, source.port());
        self.record(
            Hop::Node(node),
            &packet,
            packet.src,
            packet.dst,
            Verdict::Sent,
        );
        self.send_on_interface(node, iface, packet);
    }

    /// Puts a packet on a node interface's uplink.
    pub(crate) fn send_on_interface(&mut self, node: NodeId, iface: usize, packet: Packet) {
        let now = self.clock.elapsed();
        let reliable = packet.segment.is_some();
        let len = packet.wire_len();
        let hop = Hop::Interface { node, iface };
        let Some(interface) = self.hosts[node.0 as usize].ifaces.get_mut(iface) else {
            self.drop_packet(hop, &packet, DropReason::NoSuchInterface);
            return;
        };
        if !interface.up {
            self.drop_packet(hop, &packet, DropReason::InterfaceDown);
            return;
        }
        let net = interface.net;
        match interface
            .link
            .up
            .transmit(now, len, reliable, &mut self.rng)
        {
            Ok(at) => {
                self.capture(LinkId::Interface(node, iface), &packet);
                self.schedule(at, EventKind::Network(net, packet));
            }
            Err(reason) => self.drop_packet(hop, &packet, reason),
        }
    }

    /// A packet is in network `net`: deliver it to a host or router there, or pass it up.
    pub(crate) fn route(&mut self, net: NetId, packet: Packet) {
        let now = self.clock.elapsed();
        let reliable = packet.segment.is_some();
        let network = &self.nets[net.0 as usize];
        match network.routes.get(&packet.dst.ip()).copied() {
            Some(Target::Iface(node, iface)) => {
                let hop = Hop::Interface { node, iface };
                let interface = &mut self.hosts[node.0 as usize].ifaces[iface];
                if !interface.up {
                    self.drop_packet(hop, &packet, DropReason::InterfaceDown);
                    return;
                }
                let len = packet.wire_len();
                match interface
                    .link
                    .down
                    .transmit(now, len, reliable, &mut self.rng)
                {
                    Ok(at) => {
                        self.capture(LinkId::Interface(node, iface), &packet);
                        self.schedule(at, EventKind::Deliver(node, iface, packet));
                    }
                    Err(reason) => self.drop_packet(hop, &packet, reason),
                }
            }
            Some(Target::Router(router)) => {
                let len = packet.wire_len();
                let link = &mut self.routers[router.0 as usize].link;
                match link.down.transmit(now, len, reliable, &mut self.rng) {
                    Ok(at) => {
                        self.capture(LinkId::Router(router), &packet);
                        self.schedule(at, EventKind::RouterInbound(router, packet));
                    }
                    Err(reason) => self.drop_packet(Hop::Router(router), &packet, reason),
                }
            }
            None => match network.parent {
                Some(router) => self.router_outbound(router, packet),
                None => self.drop_packet(Hop::Network(net), &packet, DropReason::NoRoute),
            },
        }
    }

    /// What every packet crossing router `id` passes first: the hop limit, then the
    /// router's firewall on `port` (the destination port going out, the source port
    /// coming in). A packet that fails is dropped and recorded here.
    fn router_admits(&mut self, id: RouterId, packet: &mut Packet, port: u16) -> bool {
        let hop = Hop::Router(id);
        if !decrement_ttl(packet) {
            self.drop_packet(hop, packet, DropReason::HopLimit);
            return false;
        }
        let router = &mut self.routers[id.0 as usize];
        if !router.firewall.allows(packet.protocol, port) {
            router.stats.dropped_firewall += 1;
            self.drop_packet(hop, packet, DropReason::Firewall);
            return false;
        }
        true
    }

    /// A packet from a router's inner network leaves through it.
    fn router_outbound(&mut self, id: RouterId, mut packet: Packet) {
        let now = self.clock.elapsed();
        let hop = Hop::Router(id);
        let port = packet.dst.port();
        if !self.router_admits(id, &mut packet, port) {
            return;
        }
        let router = &mut self.routers[id.0 as usize];
        let (src, dst) = (packet.src, packet.dst);
        let mut verdict = Verdict::Forwarded;
        let translates = router.nat_external(dst.ip()).is_some();
        if let (true, Some(nat)) = (translates, router.nat.as_mut()) {
            let pool = &router.external;
            if pool.contains(&dst.ip()) {
                // RFC 4787 §6: a packet to the NAT's own external address is hairpinned back
                // in, or dropped when hairpinning is off.
                if !nat.config.hairpinning {
                    nat.stats.dropped_hairpin += 1;
                    self.drop_packet(hop, &packet, DropReason::HairpinDisabled);
                    return;
                }
                // REQ-9a: the looped packet carries the sender's external address and port.
                let translated = nat
                    .outbound(now, packet.protocol, src, dst, pool, &mut self.rng)
                    .and_then(|new_src| {
                        nat.inbound(now, packet.protocol, new_src, dst)
                            .map(|new_dst| (new_src, new_dst))
                    });
                match translated {
                    Ok((new_src, new_dst)) => {
                        nat.stats.hairpinned += 1;
                        packet.src = new_src;
                        packet.dst = new_dst;
                        let inner = router.inner;
                        self.record(hop, &packet, src, dst, Verdict::Translated);
                        self.route(inner, packet);
                    }
                    Err(reason) => self.drop_packet(hop, &packet, reason),
                }
                return;
            }
            match nat.outbound(now, packet.protocol, src, dst, pool, &mut self.rng) {
                Ok(new_src) => {
                    packet.src = new_src;
                    verdict = Verdict::Translated;
                }
                Err(reason) => {
                    self.drop_packet(hop, &packet, reason);
                    return;
                }
            }
        }
        if let (Verdict::Forwarded, Some(conntrack)) = (verdict, router.conntrack.as_mut()) {
            // A stateful firewall remembers the flow so that replies get back in; its
            // "mapping" is the identity.
            let identity = [src.ip()];
            if let Err(reason) =
                conntrack.outbound(now, packet.protocol, src, dst, &identity, &mut self.rng)
            {
                self.drop_packet(hop, &packet, reason);
                return;
            }
        }
        router.stats.outbound += 1;
        let parent = router.parent;
        let len = packet.wire_len();
        let reliable = packet.segment.is_some();
        match router.link.up.transmit(now, len, reliable, &mut self.rng) {
            Ok(at) => {
                self.record(hop, &packet, src, dst, verdict);
                self.capture(LinkId::Router(id), &packet);
                self.schedule(at, EventKind::Network(parent, packet));
            }
            Err(reason) => self.drop_packet(hop, &packet, reason),
        }
    }

    /// A packet from a router's parent network, after its external link, enters it.
    pub(crate) fn router_inbound(&mut self, id: RouterId, mut packet: Packet) {
        let now = self.clock.elapsed();
        let hop = Hop::Router(id);
        let port = packet.src.port();
        if !self.router_admits(id, &mut packet, port) {
            return;
        }
        let router = &mut self.routers[id.0 as usize];
        let (src, dst) = (packet.src, packet.dst);
        let mut verdict = Verdict::Forwarded;
        if let (Some(_), Some(nat)) = (router.nat_external(dst.ip()), router.nat.as_mut()) {
            match nat.inbound(now, packet.protocol, src, dst) {
                Ok(new_dst) => {
                    packet.dst = new_dst;
                    verdict = Verdict::Translated;
                }
                Err(reason) => {
                    self.drop_packet(hop, &packet, reason);
                    return;
                }
            }
        }
        if verdict == Verdict::Forwarded && router.external.contains(&dst.ip()) {
            // Addressed to the router itself, which runs no services.
            self.drop_packet(hop, &packet, DropReason::NoRoute);
            return;
        }
        if let (Verdict::Forwarded, Some(conntrack)) = (verdict, router.conntrack.as_mut()) {
            if conntrack.inbound(now, packet.protocol, src, dst).is_err() {
                router.stats.dropped_firewall += 1;
                self.drop_packet(hop, &packet, DropReason::Firewall);
                return;
            }
        }
        router.stats.inbound += 1;
        let inner = router.inner;
        self.record(hop, &packet, src, dst, verdict);
        self.route(inner, packet);
    }

    /// A packet reaches a node's interface.
    pub(crate) fn deliver(&mut self, node: NodeId, iface: usize, packet: Packet) {
        let hop = Hop::Interface { node, iface };
        let host = &mut self.hosts[node.0 as usize];
        let valid = host
            .ifaces
            .get(iface)
            .is_some_and(|i| i.up && i.addr == packet.dst.ip());
        if !valid {
            // The interface went down or moved while the packet was in flight.
            self.drop_packet(hop, &packet, DropReason::InterfaceDown);
            return;
        }
        if packet.segment.is_some() {
            host.stats.segments_received += 1;
            self.stats.segments_delivered += 1;
            self.record(hop, &packet, packet.src, packet.dst, Verdict::Delivered);
            self.receive_segment(node, packet);
            return;
        }
        host.stats.received += 1;
        host.stats.bytes_received += packet.payload.len() as u64;
        self.stats.datagrams_delivered += 1;
        let now = self.clock.now();
        host.node
            .handle_receive(now, packet.dst, packet.src, &packet.payload);
        self.record(hop, &packet, packet.src, packet.dst, Verdict::Delivered);
        self.drain(node);
    }

    pub(crate) fn drop_packet(&mut self, hop: Hop, packet: &Packet, reason: DropReason) {
        self.stats.drops.count(reason);
        if let Some(host) = self.hosts.get_mut(packet.origin.0 as usize) {
            host.stats.dropped.count(reason);
        }
        self.record(
            hop,
            packet,
            packet.src,
            packet.dst,
            Verdict::Dropped(reason),
        );
        if let Some(segment) = packet.segment.as_deref() {
            if reason != DropReason::Loss {
                self.segment_dropped(segment);
            }
        }
    }

    #[inline]
    pub(crate) fn record(
        &mut self,
        hop: Hop,
        packet: &Packet,
        src: SocketAddr,
        dst: SocketAddr,
        verdict: Verdict,
    ) {
        if let Some(trace) = &mut self.trace {
            trace.push(TraceEntry {
                time: self.clock.elapsed(),
                packet: packet.id,
                hop,
                protocol: packet.protocol,
                src,
                dst,
                src_after: packet.src,
                dst_after: packet.dst,
                len: packet.payload.len(),
                verdict,
            });
        }
    }

    #[inline]
    fn capture(&mut self, link: LinkId, packet: &Packet) {
        if let Some((capture, writer)) = &mut self.pcap {
            let wanted = match capture {
                Capture::All => true,
                Capture::Links(links) => links.contains(&link),
            };
            if wanted {
                writer.write_packet(self.clock.elapsed(), packet);
            }
        }
    }
}

fn decrement_ttl(packet: &mut Packet) -> bool {
    packet.ttl = packet.ttl.saturating_sub(1);
    packet.ttl > 0
}
