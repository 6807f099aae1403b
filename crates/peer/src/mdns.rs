//! The peer's mDNS service: [`floe_ice::mdns::Mdns`] on real sockets, in a task of its
//! own. It answers for the host names this peer published (`PeerConfig::mdns`) and
//! resolves the peer's `.local` candidates without nss-mdns.
//!
//! Sockets, per family where the host has one: the responder on port 5353 (address and
//! port reuse, so avahi or another floe can share it) in the mDNS group on every
//! interface, and a querier on an ephemeral port. Queries go out on every interface of
//! their family; a multicast answer goes out on the interface of the address it gives
//! (IPv4) or in the querier's scope (IPv6). Datagrams leave with IP TTL / hop limit 255
//! (RFC 6762 §11). A socket that cannot be opened is logged and left out: resolution
//! then fails within its bound and the call goes on with the other candidates.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Instant;

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

    async fn send(&self, t: &MdnsTransmit) {
        let family = self.family(t.destination.ip());
        let socket = match t.socket {
            Socket::Responder => family.responder.as_ref(),
            Socket::Querier => family.querier.as_ref(),
        };
        let Some(socket) = socket else { return };
        let to_group = t.destination.ip().is_multicast();
        let result = match t.destination {
            SocketAddr::V4(_) if to_group => {
                // Queries on every interface; an answer on its address's interface.
                let via: Vec<Ipv4Addr> = match (t.socket, answered_v4(&t.payload)) {
                    (Socket::Responder, Some(ip)) => vec![ip],
                    _ => interfaces()
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
                let mut indices: Vec<u32> = interfaces()
                    .iter()
                    .filter(|i| i.ip().is_ipv6())
                    .filter_map(|i| i.index)
                    .collect();
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

/// The IPv4 address an answer gives, so it goes out on that address's interface.
fn answered_v4(payload: &[u8]) -> Option<Ipv4Addr> {
    let msg = floe_ice::mdns::wire::parse(payload).ok()?;
    msg.answers.iter().find_map(|a| match a.address {
        Some(IpAddr::V4(ip)) => Some(ip),
        _ => None,
    })
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
                self.sockets.send(&t).await;
            }
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
        if let Some(bytes) = bytes {
            self.mdns.handle_receive(Instant::now(), from, bytes);
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
