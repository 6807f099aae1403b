//! Firewalls: routers that drop UDP (or TCP), or all of it but some ports.
//!
//! Networks that drop all outgoing UDP are common (hotels, offices); there TURN over TCP or
//! TLS to port 443 or 3478 is the only way out. A [`Firewall`] on a router models them. Rules
//! are stateless and apply per protocol: outbound packets are checked by destination port,
//! inbound packets by source port (so replies from an allowed service get back in).
//!
//! A firewall can also be stateful, like an IPv6 home router (RFC 6092): traffic it routes
//! without translating is let in only as a reply, with the same choice of
//! [`FilteringBehavior`] as a NAT's (RFC 4787 §5) and connection tracking that times out
//! like a NAT mapping.

use crate::nat::FilteringBehavior;
use crate::packet::Protocol;

/// What a firewall lets through for one protocol.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PortPolicy {
    /// Everything (the default).
    #[default]
    AllowAll,
    /// Nothing.
    DenyAll,
    /// Only these remote ports.
    AllowOnly(Vec<u16>),
}

impl PortPolicy {
    fn allows(&self, port: u16) -> bool {
        match self {
            PortPolicy::AllowAll => true,
            PortPolicy::DenyAll => false,
            PortPolicy::AllowOnly(ports) => ports.contains(&port),
        }
    }
}

/// A stateless port filter on a router, applied in both directions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Firewall {
    /// Policy for UDP, by remote port.
    pub udp: PortPolicy,
    /// Policy for TCP streams, by remote port.
    pub tcp: PortPolicy,
    /// Stateful filtering of the traffic the router forwards without translation: inbound
    /// packets pass only if the internal endpoint has sent to the remote first. `None`
    /// (the default) is stateless.
    pub stateful: Option<FilteringBehavior>,
}

impl Firewall {
    /// Lets everything through.
    pub fn open() -> Self {
        Self::default()
    }

    /// A firewall with these per-protocol policies, stateless.
    pub fn new(udp: PortPolicy, tcp: PortPolicy) -> Self {
        Self {
            udp,
            tcp,
            stateful: None,
        }
    }

    /// Lets everything out and only replies in (RFC 6092 "simple security" for IPv6 CPE),
    /// with the given filtering behaviour.
    pub fn stateful(filtering: FilteringBehavior) -> Self {
        Self {
            stateful: Some(filtering),
            ..Self::default()
        }
    }

    /// Makes these rules stateful as [`Firewall::stateful`] does.
    #[must_use]
    pub fn with_stateful(mut self, filtering: FilteringBehavior) -> Self {
        self.stateful = Some(filtering);
        self
    }

    /// Drops all UDP; TCP passes.
    pub fn block_udp() -> Self {
        Self::new(PortPolicy::DenyAll, PortPolicy::AllowAll)
    }

    /// Drops UDP except to and from the given remote ports; TCP passes.
    pub fn allow_udp_ports(ports: &[u16]) -> Self {
        Self::new(PortPolicy::AllowOnly(ports.to_vec()), PortPolicy::AllowAll)
    }

    /// Drops all UDP and all TCP except to and from the given remote ports (e.g. 443).
    pub fn only_tcp_ports(ports: &[u16]) -> Self {
        Self::new(PortPolicy::DenyAll, PortPolicy::AllowOnly(ports.to_vec()))
    }

    /// Whether a packet of `protocol` to or from `remote_port` may pass.
    pub fn allows(&self, protocol: Protocol, remote_port: u16) -> bool {
        match protocol {
            Protocol::Udp => self.udp.allows(remote_port),
            Protocol::Tcp => self.tcp.allows(remote_port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_block_lets_tcp_through() {
        let fw = Firewall::block_udp();
        assert!(!fw.allows(Protocol::Udp, 3478));
        assert!(fw.allows(Protocol::Tcp, 443));
    }

    #[test]
    fn port_allow_list_admits_only_listed_ports() {
        let fw = Firewall::allow_udp_ports(&[3478]);
        assert!(fw.allows(Protocol::Udp, 3478));
        assert!(!fw.allows(Protocol::Udp, 5000));
    }
}
