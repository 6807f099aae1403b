//! A TURN client and server core talking to each other in memory, sans-IO: the
//! allocation with its 401 challenge (RFC 8656 §7, RFC 8489 §9.2), a permission, and a
//! datagram relayed each way. `cargo run -p floe-turn --example allocate`

use std::net::SocketAddr;
use std::time::Instant;

use floe_turn::client::{Client, ClientConfig, Event};
use floe_turn::server::{PortPool, Server, ServerConfig};
use floe_turn::Transport;
use rand::SeedableRng;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("an address")
}

/// Delivers everything queued between the client and the server until both are quiet;
/// returns what the server sent to peers.
fn settle(
    now: Instant,
    client: &mut Client,
    server: &mut Server<PortPool<rand_chacha::ChaCha8Rng>>,
) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut to_peers = Vec::new();
    loop {
        let mut moved = false;
        while let Some(t) = client.poll_transmit() {
            moved = true;
            server.handle_client(now, t.transport, t.destination, t.source, &t.data);
        }
        while let Some(t) = server.poll_transmit() {
            moved = true;
            if t.destination == client.config().local {
                client.handle_receive(now, &t.data, |peer, data| {
                    println!(
                        "client: {} bytes from peer {peer}: {:?}",
                        data.len(),
                        String::from_utf8_lossy(data)
                    );
                });
            } else {
                to_peers.push((t.destination, t.data));
            }
        }
        if !moved {
            return to_peers;
        }
    }
}

fn main() {
    let now = Instant::now();
    let mut config = ServerConfig::default();
    config.users.insert("alice".into(), "wonderland".into());
    let pool = PortPool::new(
        Some(addr("203.0.113.1:0").ip()),
        None,
        49_152..=65_535,
        rand_chacha::ChaCha8Rng::seed_from_u64(1),
    );
    let mut server = Server::new(config, pool, now, 2);

    let client_config = ClientConfig::new(
        addr("198.51.100.7:40000"),
        addr("203.0.113.1:3478"),
        Transport::Udp,
        "alice",
        "wonderland",
    );
    let mut client = Client::new(client_config, 3);
    client.allocate(now);
    settle(now, &mut client, &mut server);
    while let Some(e) = client.poll_event() {
        println!("client event: {e:?}");
    }
    let relayed = client.relayed()[0];

    let peer = addr("192.0.2.50:5000");
    client
        .create_permission(now, peer.ip())
        .expect("allocated, so a permission can be asked for");
    settle(now, &mut client, &mut server);
    let send = client
        .send_to(peer, b"hello peer")
        .expect("a Send indication");
    server.handle_client(
        now,
        send.transport,
        send.destination,
        send.source,
        &send.data,
    );
    let to_peers = settle(now, &mut client, &mut server);
    println!("server relayed to peers: {to_peers:?}");
    assert_eq!(to_peers, [(peer, b"hello peer".to_vec())]);

    server.handle_peer(now, relayed, peer, b"hello client");
    settle(now, &mut client, &mut server);
    while let Some(e) = client.poll_event() {
        assert!(!matches!(e, Event::AllocationLost(_)));
    }
    while let Some(e) = server.poll_event() {
        println!("server event: {e:?}");
    }
}
