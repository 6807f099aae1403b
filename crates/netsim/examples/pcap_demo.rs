//! Writes a pcap of a short simulated run for Wireshark: a host behind two nested NATs asks a
//! STUN server (floe-stun messages) for its server-reflexive address, then opens a TCP
//! stream to a relay on port 443 and sends a few bytes.
//!
//! `cargo run -p floe-netsim --example pcap_demo -- /tmp/demo.pcap`, then open the file in
//! Wireshark: the STUN exchange decodes as STUN on port 3478, once per hop.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_netsim::nodes::{Peer, UdpEcho};
use floe_netsim::{Capture, NatConfig, Node, Simulator, StreamCommand, StreamId, Transmit};
use floe_stun::attributes::XorMappedAddress;
use floe_stun::{Message, MessageBuilder, MessageType, TransactionId};

/// Answers STUN Binding requests with XOR-MAPPED-ADDRESS.
#[derive(Default)]
struct StunServer(VecDeque<Transmit>);

impl Node for StunServer {
    fn handle_receive(&mut self, _: Instant, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        let Ok(request) = Message::parse(bytes) else {
            return;
        };
        let mut buf = [0u8; 128];
        let Ok(mut builder) = MessageBuilder::new(
            &mut buf,
            MessageType::BINDING_SUCCESS,
            request.transaction_id(),
        ) else {
            return;
        };
        if builder.add(&XorMappedAddress(remote)).is_ok() && builder.add_fingerprint().is_ok() {
            self.0.push_back(Transmit {
                source: local,
                destination: remote,
                bytes: builder.finish().to_vec(),
            });
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.0.pop_front()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "netsim-demo.pcap".to_owned());
    let mut sim = Simulator::new(1);
    sim.enable_pcap(Capture::All);
    let internet = sim.internet();
    sim.add_host(internet, "198.51.100.1".parse()?, StunServer::default());
    let relay: SocketAddr = "198.51.100.2:443".parse()?;
    sim.add_host(internet, relay.ip(), UdpEcho::new().listen(relay));
    let (_, isp) = sim.add_nat(internet, "203.0.113.1".parse()?, NatConfig::symmetric());
    let (_, lan) = sim.add_nat(isp, "100.64.0.2".parse()?, NatConfig::linux_masquerade());
    let host = sim.add_host(lan, "192.168.1.2".parse()?, Peer::new());

    let mut buf = [0u8; 64];
    let mut builder = MessageBuilder::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([7; 12]),
    )?;
    builder.add_fingerprint()?;
    let request = builder.finish().to_vec();
    let local: SocketAddr = "192.168.1.2:5000".parse()?;
    let stream = StreamId::new("192.168.1.2:40000".parse()?, relay);
    let peer = sim.node_mut::<Peer>(host);
    peer.send(local, "198.51.100.1:3478".parse()?, request);
    peer.command(StreamCommand::Connect(stream));
    peer.command(StreamCommand::Send(stream, b"hello relay".to_vec()));
    peer.command(StreamCommand::Close(stream));
    sim.run_for(Duration::from_secs(1));

    let response = &sim.node::<Peer>(host).received[0].bytes;
    let mapped = Message::parse(response)?.get::<XorMappedAddress>()?;
    println!("server-reflexive address: {mapped:?}");
    sim.write_pcap(&path)?;
    println!("wrote {path}");
    Ok(())
}
