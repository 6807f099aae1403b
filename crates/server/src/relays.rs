//! Relayed transport addresses backed by real UDP sockets: the runtime's
//! [`RelayAllocator`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};

use floe_stun::attributes::AddressFamily;
use floe_turn::server::{RelayAllocator, RelayRange};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::datagrams::Datagrams;
use crate::Inbound;

/// One relay socket and the task reading it.
#[derive(Debug)]
struct Relay {
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
}

/// Reserved relay sockets (EVEN-PORT R, RFC 8656 §7.2): bound, so the port stays
/// taken, but not read by anyone until an Allocate redeems the token. Shared by the
/// workers of one server, so whichever worker the second Allocate reaches takes the
/// socket over ([`RelayAllocator::claim`]) and reads it from then on.
pub(crate) type Parked = Arc<Mutex<HashMap<SocketAddr, std::net::UdpSocket>>>;

/// Binds relay sockets in a port range, at random ports (RFC 8656 §7.2, RFC 6056).
#[derive(Debug)]
pub(crate) struct SocketRelays {
    range: RelayRange,
    sockets: HashMap<SocketAddr, Relay>,
    parked: Parked,
    /// TURN-TCP relayed listeners (RFC 6062), and the ports every worker's use.
    tcp: crate::tcp_relay::Listeners,
    tcp_ports: crate::tcp_relay::TcpPorts,
    inbound: mpsc::Sender<Inbound>,
}

impl SocketRelays {
    pub(crate) fn new(
        ipv4: Option<IpAddr>,
        ipv6: Option<IpAddr>,
        ports: RangeInclusive<u16>,
        parked: Parked,
        tcp_ports: crate::tcp_relay::TcpPorts,
        inbound: mpsc::Sender<Inbound>,
    ) -> SocketRelays {
        SocketRelays {
            range: RelayRange { ipv4, ipv6, ports },
            sockets: HashMap::new(),
            parked,
            tcp: crate::tcp_relay::Listeners::default(),
            tcp_ports,
            inbound,
        }
    }

    /// Connects from the TCP relayed address `relayed` to `peer` for Connect `id`.
    pub(crate) fn connect_tcp(&self, id: u32, relayed: SocketAddr, peer: SocketAddr) {
        crate::tcp_relay::connect(id, relayed, peer, self.inbound.clone());
    }

    pub(crate) fn socket(&self, addr: &SocketAddr) -> Option<&Arc<UdpSocket>> {
        self.sockets.get(addr).map(|r| &r.socket)
    }

    fn bind(&mut self, addr: SocketAddr) -> Option<SocketAddr> {
        let std = std::net::UdpSocket::bind(addr).ok()?;
        self.start(std)
    }

    /// Reads a bound socket from now on, in this worker.
    fn start(&mut self, std: std::net::UdpSocket) -> Option<SocketAddr> {
        std.set_nonblocking(true).ok()?;
        // ICMP errors for what the relay sends (RFC 8656 §11.5) queue on the socket.
        let ipv6 = std.local_addr().ok()?.is_ipv6();
        crate::icmp::enable(&std, ipv6);
        let socket = Arc::new(UdpSocket::from_std(std).ok()?);
        crate::set_buffers(&socket, crate::RELAY_BUFFER);
        let local = socket.local_addr().ok()?;
        let reader = tokio::spawn(read_relay(socket.clone(), local, self.inbound.clone()));
        self.sockets.insert(local, Relay { socket, reader });
        Some(local)
    }

    fn parked(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, std::net::UdpSocket>> {
        // A worker that panicked holding the lock ends the process (floe serve's
        // backstop); the map is consistent between statements.
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn close_all(&mut self) {
        for (_, r) in self.sockets.drain() {
            r.reader.abort();
        }
        self.parked().clear();
        self.tcp.close_all(&self.tcp_ports);
    }
}

thread_local! {
    /// One receive buffer per runtime thread, shared by every relay socket's reader:
    /// a datagram is copied out of it (to exactly its length) before the reader awaits
    /// anything, so no reader keeps a buffer of its own. With a 64 KiB buffer per
    /// socket, 2,000 idle allocations cost 59 KB each in RSS (benches/turn_memory.sh).
    static RELAY_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 65_536]);
}

/// Reads one relay socket: waits for readiness, then drains what is queued through the
/// thread's shared buffer into batches ([`Datagrams`]), one queue event each. The task
/// holds the socket, its address and a channel sender, and no buffer while it waits.
async fn read_relay(socket: Arc<UdpSocket>, local: SocketAddr, inbound: mpsc::Sender<Inbound>) {
    loop {
        // An ICMP error alone makes the socket report an error, not readability (EPOLLERR
        // without EPOLLIN): wait for either.
        let interest = tokio::io::Interest::READABLE | tokio::io::Interest::ERROR;
        let Ok(ready) = socket.ready(interest).await else {
            return;
        };
        if ready.is_error() {
            // ICMP errors for datagrams the relay sent (RFC 8656 §11.5): read from the
            // error queue (which tokio's readiness does not gate) and go to the core.
            let errors = crate::icmp::drain(&*socket);
            if !errors.is_empty()
                && inbound
                    .send(Inbound::PeerIcmp {
                        relayed: local,
                        errors,
                    })
                    .await
                    .is_err()
            {
                return;
            }
            // The error readiness stays set until an operation with that interest would
            // block: clear it, or the wait above would spin.
            let _ = socket.try_io(tokio::io::Interest::ERROR, || {
                Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
            });
        }
        if !ready.is_readable() {
            continue;
        }
        let mut batch = Datagrams::default();
        loop {
            let got = RELAY_BUF.with(|buf| {
                let mut buf = buf.borrow_mut();
                let (n, peer) = socket.try_recv_from(&mut buf)?;
                if let Some(data) = buf.get(..n) {
                    batch.push(peer, data);
                }
                Ok::<_, std::io::Error>(())
            });
            let drained = match got {
                Ok(()) => false,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
                // An ICMP error for a datagram the relay sent: the socket stays usable;
                // the errors queued go to the core, which tells the client (§11.5).
                // A pending socket error (an ICMP error's ECONNREFUSED): the socket
                // stays usable, and the error queue is read above.
                Err(_) => continue,
            };
            if (drained || batch.is_full()) && !batch.is_empty() {
                let datagrams = std::mem::take(&mut batch);
                if inbound
                    .send(Inbound::Peer {
                        relayed: local,
                        datagrams,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if drained {
                break;
            }
        }
    }
}

impl RelayAllocator for SocketRelays {
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
        let mut rng = rand::thread_rng();
        // Random ports, then give up: the OS decides what is free (binding is the test).
        for _ in 0..64 {
            let Some(port) = self.range.draw(&mut rng, even, reserve_next) else {
                continue;
            };
            let Some(addr) = self.bind(SocketAddr::new(ip, port)) else {
                continue;
            };
            if !reserve_next {
                return Some((addr, None));
            }
            let next = SocketAddr::new(ip, port + 1);
            if let Ok(socket) = std::net::UdpSocket::bind(next) {
                self.parked().insert(next, socket);
                return Some((addr, Some(next)));
            }
            self.release(addr);
        }
        None
    }

    fn release(&mut self, addr: SocketAddr) {
        if let Some(r) = self.sockets.remove(&addr) {
            r.reader.abort();
        } else if !self.tcp.close(addr, &self.tcp_ports) {
            self.parked().remove(&addr);
        }
    }

    fn supports_tcp(&self) -> bool {
        true
    }

    fn allocate_tcp(&mut self, family: AddressFamily) -> Option<SocketAddr> {
        let ip = self.range.ip(family)?;
        let mut rng = rand::thread_rng();
        for _ in 0..64 {
            let Some(port) = self.range.draw(&mut rng, false, false) else {
                continue;
            };
            if let Some(a) =
                self.tcp
                    .listen(SocketAddr::new(ip, port), &self.tcp_ports, &self.inbound)
            {
                return Some(a);
            }
        }
        None
    }

    fn claim(&mut self, addr: SocketAddr) -> bool {
        let socket = self.parked().remove(&addr);
        socket.and_then(|s| self.start(s)).is_some()
    }
}
