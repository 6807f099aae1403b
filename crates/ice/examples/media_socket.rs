//! A media stack that owns its UDP socket and drives floe-ice on it, with DTLS and RTP
//! on the same socket (RFC 7983 demultiplexing). Two such stacks run here on loopback,
//! connect, and each sends the other a DTLS record and an RTP packet.
//!
//! `cargo run -p floe-ice --example media_socket`
//!
//! The pattern (docs/embedding.md):
//! - every datagram from the socket goes to [`Agent::handle_receive`]: the agent answers
//!   STUN checks, unwraps TURN, drops what nobody vouched for, and hands application
//!   bytes to `on_data`;
//! - `on_data` sorts them by their first byte with [`floe_stun::demux::classify`]:
//!   DTLS (20-63) to the DTLS stack, RTP/RTCP (128-191) to SRTP;
//! - outgoing media goes through [`Agent::send`], which returns the datagram as-is on a
//!   direct pair and wrapped for the TURN server on a relayed one.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use floe_ice::{Agent, AgentConfig, ConnectionState, Event, Role};
use floe_stun::demux::{classify, PacketKind};

/// One endpoint: the application's socket, its ICE agent and its "media stacks".
struct MediaStack {
    name: &'static str,
    socket: UdpSocket,
    local: SocketAddr,
    agent: Agent,
    /// Candidate lines to signal to the other side.
    outbox: Vec<String>,
    connected: bool,
    dtls_records: Vec<Vec<u8>>,
    rtp_packets: Vec<Vec<u8>>,
}

impl MediaStack {
    fn new(name: &'static str, role: Role, seed: u64, now: Instant) -> std::io::Result<MediaStack> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let mut agent = Agent::new(AgentConfig::default(), role, now, seed);
        agent.add_host(now, local, 0);
        Ok(MediaStack {
            name,
            socket,
            local,
            agent,
            outbox: Vec::new(),
            connected: false,
            dtls_records: Vec::new(),
            rtp_packets: Vec::new(),
        })
    }

    /// Sends what the agent queued and handles its events (the order of
    /// docs/architecture.md: transmits, then events, then the timer).
    fn drive(&mut self) -> std::io::Result<()> {
        while let Some(t) = self.agent.poll_transmit() {
            self.socket.send_to(&t.data, t.destination)?;
        }
        while let Some(e) = self.agent.poll_event() {
            match e {
                Event::LocalCandidate(c) => self.outbox.push(c.to_string()),
                Event::ConnectionState(ConnectionState::Connected | ConnectionState::Completed) => {
                    self.connected = true;
                }
                Event::SelectedPair(p) => {
                    println!("{}: path {} -> {}", self.name, p.local, p.remote);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads what arrived and routes it: everything through the agent, then the
    /// application bytes by RFC 7983 class.
    fn receive(&mut self, now: Instant) -> std::io::Result<()> {
        let mut buf = [0u8; 2048];
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            let (dtls, rtp) = (&mut self.dtls_records, &mut self.rtp_packets);
            self.agent.handle_receive(
                now,
                self.local,
                from,
                &buf[..n],
                |_peer, data| match classify(data) {
                    PacketKind::Dtls => dtls.push(data.to_vec()),
                    PacketKind::RtpRtcp => rtp.push(data.to_vec()),
                    // ZRTP, QUIC or nothing defined: not ours in this stack.
                    _ => {}
                },
            );
        }
    }

    /// Sends one media datagram on the selected path.
    fn send_media(&mut self, data: &[u8]) -> std::io::Result<()> {
        let t = self
            .agent
            .send(data)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.socket.send_to(&t.data, t.destination)?;
        Ok(())
    }
}

/// Signalling, in memory: credentials once, candidates as they are found.
fn signal(from: &mut MediaStack, to: &mut MediaStack, now: Instant) {
    for line in from.outbox.drain(..) {
        if let Ok(c) = floe_ice::Candidate::parse(&line) {
            to.agent.add_remote_candidate(now, c);
        }
    }
}

fn main() -> std::io::Result<()> {
    let start = Instant::now();
    let mut a = MediaStack::new("a", Role::Controlling, 1, start)?;
    let mut b = MediaStack::new("b", Role::Controlled, 2, start)?;
    a.agent
        .set_remote_credentials(b.agent.local_credentials().clone());
    b.agent
        .set_remote_credentials(a.agent.local_credentials().clone());

    // A DTLS handshake record header (content type 22) and an RTP packet (version 2).
    let dtls_hello = [22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let rtp = [
        0x80u8, 96, 0, 1, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0xde, 0xad,
    ];
    let mut media_sent = false;
    while start.elapsed() < Duration::from_secs(5) {
        let now = Instant::now();
        a.receive(now)?;
        b.receive(now)?;
        a.agent.handle_timeout(now);
        b.agent.handle_timeout(now);
        a.drive()?;
        b.drive()?;
        signal(&mut a, &mut b, now);
        signal(&mut b, &mut a, now);
        if a.connected && b.connected && !media_sent {
            for s in [&mut a, &mut b] {
                s.send_media(&dtls_hello)?;
                s.send_media(&rtp)?;
            }
            media_sent = true;
        }
        if !a.rtp_packets.is_empty() && !b.rtp_packets.is_empty() {
            break;
        }
        // A real stack sleeps in poll/epoll until the socket is readable or
        // `agent.poll_timeout()`; a short sleep keeps this example small.
        std::thread::sleep(Duration::from_millis(1));
    }
    for s in [&a, &b] {
        println!(
            "{}: {} DTLS record(s), {} RTP packet(s) after {:?}",
            s.name,
            s.dtls_records.len(),
            s.rtp_packets.len(),
            start.elapsed()
        );
        assert_eq!(s.dtls_records, [dtls_hello.to_vec()]);
        assert_eq!(s.rtp_packets, [rtp.to_vec()]);
    }
    Ok(())
}
