//! The peer's mDNS service: [`floe_ice::mdns::Mdns`] on real sockets, in a task of its
//! own. It answers for the host names this peer published (`PeerConfig::mdns`) and
//! resolves the peer's `.local` candidates without nss-mdns.
//!
//! Sockets, per family where the host has one: the responder on port 5353 (address and
//! port reuse, so avahi or another floe can share it) in the mDNS group on every
//! interface, and a querier on an ephemeral port. Queries go out on every interface of
//! their family. Only datagrams from the local link are read (RFC 6762 §11): a source on
//! one of the host's subnets, or IPv6 link-local; a peer elsewhere that learned a name
//! from signalling cannot ask port 5353 for the private address behind it. A multicast
//! answer goes out on the interface the query came from. Datagrams leave with IP TTL / hop limit 255
//! (RFC 6762 §11). A socket that cannot be opened is logged and left out: resolution
//! then fails within its bound and the call goes on with the other candidates.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use floe_ice::mdns::{Mdns, MdnsEvent, MdnsTransmit, Socket, GROUP_V4, GROUP_V6, MDNS_PORT};
use socket2::{Domain, Protocol, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// What the driver asks of the service.
#[derive(Debug)]
enum Command {
    Publish(String, IpAddr),
    Unpublish(IpAddr),
    Resolve(String, oneshot::Sender<Option<IpAddr>>),
}

/// A handle on the running service; the task ends when every handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct MdnsService {
    tx: mpsc::UnboundedSender<Command>,
}

impl MdnsService {
    /// Opens the sockets and starts the task (on the current tokio runtime).
    pub(crate) fn start() -> MdnsService {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = Task {
            mdns: Mdns::new(rand::random()),
            sockets: Sockets::open(),
            waiting: HashMap::new(),
            links: (Vec::new(), None),
            ingress: None,
        };
        tokio::spawn(task.run(rx));
        MdnsService { tx }
    }

    /// Answers for `name` with `address` from now on.
    pub(crate) fn publish(&self, name: String, address: IpAddr) {
        let _ = self.tx.send(Command::Publish(name, address));
    }

    /// Stops answering for `address`'s names.
    pub(crate) fn unpublish(&self, address: IpAddr) {
        let _ = self.tx.send(Command::Unpublish(address));
    }

    /// Resolves a `.local` name: its address, or `None` within the resolver's bound (3 s).
    pub(crate) async fn resolve(&self, name: String) -> Option<IpAddr> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Command::Resolve(name, reply)).ok()?;
        answer.await.ok().flatten()
    }
}

/// One family's sockets.
#[derive(Debug, Default)]
struct Family {
    responder: Option<UdpSocket>,
    querier: Option<UdpSocket>,
}

#[derive(Debug)]
struct Sockets {
    v4: Family,
    v6: Family,
}

impl Sockets {
    fn open() -> Sockets {
        let opened = |what: &str, r: io::Result<UdpSocket>| match r {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "mDNS: cannot open the {what} socket");
                None
            }
        };
        let sockets = Sockets {
            v4: Family {
                responder: opened("IPv4 responder", responder(Domain::IPV4)),
                querier: opened("IPv4 querier", querier(Domain::IPV4)),
            },
            v6: Family {
                responder: opened("IPv6 responder", responder(Domain::IPV6)),
                querier: opened("IPv6 querier", querier(Domain::IPV6)),
            },
        };
        sockets.join_groups();
        sockets
    }

    /// Joins the groups on every interface (again: joining twice is refused and ignored).
    fn join_groups(&self) {
        for i in interfaces() {
            match (i.ip(), &self.v4.responder, &self.v6.responder, i.index) {
                (IpAddr::V4(ip), Some(s), _, _) => {
                    let _ = socket2::SockRef::from(s).join_multicast_v4(&GROUP_V4, &ip);
                }
                (IpAddr::V6(_), _, Some(s), Some(index)) => {
                    let _ = socket2::SockRef::from(s).join_multicast_v6(&GROUP_V6, index);
                }
                _ => {}
            }
        }
    }

    fn family(&self, ip: IpAddr) -> &Family {
        if ip.is_ipv4() {
            &self.v4
        } else {
            &self.v6
        }
    }

    async fn send(&self, t: &MdnsTransmit, ingress: Option<&if_addrs::Interface>) {
        let family = self.family(t.destination.ip());
        let socket = match t.socket {
            Socket::Responder => family.responder.as_ref(),
            Socket::Querier => family.querier.as_ref(),
        };
        let Some(socket) = socket else { return };
        let to_group = t.destination.ip().is_multicast();
        let result = match t.destination {
            SocketAddr::V4(_) if to_group => {
                // Queries on every interface; an answer on the one its query came from.
                let from_link = ingress.and_then(|i| match i.ip() {
                    IpAddr::V4(ip) => Some(ip),
                    IpAddr::V6(_) => None,
                });
                let via: Vec<Ipv4Addr> = match (t.socket, from_link) {
                    (Socket::Responder, Some(ip)) => vec![ip],
                    (Socket::Responder, None) => Vec::new(),
                    (Socket::Querier, _) => interfaces()
                        .iter()
                        .filter_map(|i| match i.ip() {
                            IpAddr::V4(ip) => Some(ip),
                            IpAddr::V6(_) => None,
                        })
                        .collect(),
                };
                let mut result = Ok(0);
                for ip in via {
                    let _ = socket2::SockRef::from(socket).set_multicast_if_v4(&ip);
                    result = socket.send_to(&t.payload, t.destination).await;
                }
                result
            }
            SocketAddr::V6(d) if to_group && d.scope_id() == 0 => {
                let mut result = Ok(0);
                let mut indices: Vec<u32> = match (t.socket, ingress.and_then(|i| i.index)) {
                    (Socket::Responder, Some(index)) => vec![index],
                    (Socket::Responder, None) => Vec::new(),
                    (Socket::Querier, _) => interfaces()
                        .iter()
                        .filter(|i| i.ip().is_ipv6())
                        .filter_map(|i| i.index)
                        .collect(),
                };
                indices.dedup();
                for index in indices {
                    let to = SocketAddrV6::new(GROUP_V6, MDNS_PORT, 0, index);
                    result = socket.send_to(&t.payload, to).await;
                }
                result
            }
            to => socket.send_to(&t.payload, to).await,
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, to = %t.destination, "mDNS send failed");
        }
    }
}

/// The link a datagram came from: the host's interface whose subnet holds the source
/// (or, for an IPv6 link-local source, the interface of its scope). `None`: not from the
/// local link (RFC 6762 §11), so it is not read.
fn ingress(from: SocketAddr, interfaces: &[if_addrs::Interface]) -> Option<if_addrs::Interface> {
    match from {
        SocketAddr::V4(f) => interfaces
            .iter()
            .find(|i| match &i.addr {
                if_addrs::IfAddr::V4(a) => {
                    let mask = u32::from(a.netmask);
                    u32::from(a.ip) & mask == u32::from(*f.ip()) & mask
                }
                if_addrs::IfAddr::V6(_) => false,
            })
            .cloned(),
        SocketAddr::V6(f) => {
            let link_local = f.ip().segments()[0] & 0xffc0 == 0xfe80;
            interfaces
                .iter()
                .find(|i| match &i.addr {
                    if_addrs::IfAddr::V6(a) if link_local => {
                        i.index == Some(f.scope_id())
                            || (f.scope_id() == 0 && a.ip.segments()[0] & 0xffc0 == 0xfe80)
                    }
                    if_addrs::IfAddr::V6(a) => {
                        let mask = u128::from(a.netmask);
                        u128::from(a.ip) & mask == u128::from(*f.ip()) & mask
                    }
                    if_addrs::IfAddr::V4(_) => false,
                })
                .cloned()
        }
    }
}

/// The host's interfaces with a usable address for mDNS (loopback included: a
/// namespace's only link may be it).
fn interfaces() -> Vec<if_addrs::Interface> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.ip().is_unspecified() && !i.ip().is_multicast())
        .collect()
}

/// The socket on port 5353, shared with other responders on the host.
fn responder(domain: Domain) -> io::Result<UdpSocket> {
    let s = socket2::Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    #[cfg(unix)]
    s.set_reuse_port(true)?;
    let any: SocketAddr = if domain == Domain::IPV4 {
        (Ipv4Addr::UNSPECIFIED, MDNS_PORT).into()
    } else {
        s.set_only_v6(true)?;
        (Ipv6Addr::UNSPECIFIED, MDNS_PORT).into()
    };
    s.bind(&any.into())?;
    configure(&s, domain)?;
    UdpSocket::from_std(s.into())
}

/// A socket on an ephemeral port for one-shot queries (RFC 6762 §5.1).
fn querier(domain: Domain) -> io::Result<UdpSocket> {
    let s = socket2::Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    let any: SocketAddr = if domain == Domain::IPV4 {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        s.set_only_v6(true)?;
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    s.bind(&any.into())?;
    configure(&s, domain)?;
    UdpSocket::from_std(s.into())
}

fn configure(s: &socket2::Socket, domain: Domain) -> io::Result<()> {
    s.set_nonblocking(true)?;
    if domain == Domain::IPV4 {
        s.set_multicast_ttl_v4(255)?;
        s.set_ttl_v4(255)?;
        s.set_multicast_loop_v4(true)
    } else {
        s.set_multicast_hops_v6(255)?;
        s.set_unicast_hops_v6(255)?;
        s.set_multicast_loop_v6(true)
    }
}

#[derive(Debug)]
struct Task {
    mdns: Mdns,
    sockets: Sockets,
    waiting: HashMap<String, Vec<oneshot::Sender<Option<IpAddr>>>>,
    /// The host's interfaces, read again at most every 2 s.
    links: (Vec<if_addrs::Interface>, Option<Instant>),
    /// The link of the datagram being answered.
    ingress: Option<if_addrs::Interface>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        // mDNS messages fit 9000 bytes (RFC 6762 §17).
        let (mut b0, mut b1, mut b2, mut b3) =
            (vec![0; 9000], vec![0; 9000], vec![0; 9000], vec![0; 9000]);
        loop {
            let deadline = self.mdns.poll_timeout().map(tokio::time::Instant::from_std);
            let (b0, b1, b2, b3) = (&mut b0, &mut b1, &mut b2, &mut b3);
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => return,
                    Some(Command::Publish(name, ip)) => {
                        if !self.mdns.publish(&name, ip) {
                            tracing::warn!(%name, "mDNS: name not published (64 already, or taken)");
                        }
                        self.sockets.join_groups();
                    }
                    Some(Command::Unpublish(ip)) => self.mdns.unpublish(ip),
                    Some(Command::Resolve(name, reply)) => {
                        self.waiting.entry(name.to_ascii_lowercase()).or_default().push(reply);
                        self.mdns.resolve(Instant::now(), &name);
                    }
                },
                Some((n, from)) = recv(self.sockets.v4.responder.as_ref(), b0) => self.receive(from, b0.get(..n)),
                Some((n, from)) = recv(self.sockets.v4.querier.as_ref(), b1) => self.receive(from, b1.get(..n)),
                Some((n, from)) = recv(self.sockets.v6.responder.as_ref(), b2) => self.receive(from, b2.get(..n)),
                Some((n, from)) = recv(self.sockets.v6.querier.as_ref(), b3) => self.receive(from, b3.get(..n)),
                () = sleep_until(deadline) => self.mdns.handle_timeout(Instant::now()),
            }
            while let Some(t) = self.mdns.poll_transmit() {
                self.sockets.send(&t, self.ingress.as_ref()).await;
            }
            self.ingress = None;
            while let Some(MdnsEvent::Resolved { name, address }) = self.mdns.poll_event() {
                tracing::debug!(%name, ?address, "mDNS name resolved");
                for reply in self
                    .waiting
                    .remove(&name.to_ascii_lowercase())
                    .unwrap_or_default()
                {
                    let _ = reply.send(address);
                }
            }
        }
    }

    fn receive(&mut self, from: SocketAddr, bytes: Option<&[u8]>) {
        let now = Instant::now();
        if self
            .links
            .1
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(2))
        {
            self.links = (interfaces(), Some(now));
        }
        let Some(link) = ingress(from, &self.links.0) else {
            tracing::debug!(%from, "mDNS datagram from off the local link: not read");
            return;
        };
        if let Some(bytes) = bytes {
            self.ingress = Some(link);
            self.mdns.handle_receive(now, from, bytes);
        }
    }
}

/// A datagram from `socket`, or never when there is none.
async fn recv(socket: Option<&UdpSocket>, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(name: &str, ip: &str, mask: &str, index: u32) -> if_addrs::Interface {
        if_addrs::Interface {
            name: name.into(),
            addr: if_addrs::IfAddr::V4(if_addrs::Ifv4Addr {
                ip: ip.parse().unwrap(),
                netmask: mask.parse().unwrap(),
                prefixlen: 24,
                broadcast: None,
            }),
            index: Some(index),
        }
    }

    fn v6(name: &str, ip: &str, prefix: u8, index: u32) -> if_addrs::Interface {
        if_addrs::Interface {
            name: name.into(),
            addr: if_addrs::IfAddr::V6(if_addrs::Ifv6Addr {
                ip: ip.parse().unwrap(),
                netmask: Ipv6Addr::from(u128::MAX << (128 - u32::from(prefix))),
                prefixlen: prefix,
                broadcast: None,
            }),
            index: Some(index),
        }
    }

    /// RFC 6762 §11: only the local link is read; a query from elsewhere (the peer that
    /// learned a name from signalling, asking our public address) is not answered.
    #[test]
    fn only_sources_on_a_local_subnet_or_link_local_are_on_the_link() {
        let links = [
            v4("eth0", "192.168.1.2", "255.255.255.0", 2),
            v4("wg0", "10.8.0.2", "255.255.0.0", 3),
            v6("eth0", "fe80::2", 64, 2),
            v6("eth0", "2001:db8:1::2", 64, 2),
        ];
        let at = |s: &str| ingress(s.parse().unwrap(), &links).map(|i| (i.name.clone(), i.ip()));
        assert_eq!(
            at("192.168.1.77:5353"),
            Some(("eth0".into(), "192.168.1.2".parse().unwrap()))
        );
        assert_eq!(
            at("10.8.200.1:40000"),
            Some(("wg0".into(), "10.8.0.2".parse().unwrap()))
        );
        assert_eq!(at("203.0.113.9:5353"), None, "off-link IPv4");
        assert_eq!(at("[fe80::9%2]:5353").map(|l| l.0), Some("eth0".into()));
        assert_eq!(
            at("[2001:db8:1::77]:5353").map(|l| l.0),
            Some("eth0".into())
        );
        assert_eq!(at("[2001:db8:2::77]:5353"), None, "off-link IPv6");
    }
}
