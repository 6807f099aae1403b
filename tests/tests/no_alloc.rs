//! Parsing, decoding every attribute and verifying an ICE Binding request allocate
//! nothing (floe-stun's zero-copy promise), measured with a counting global allocator.
#![allow(unsafe_code)] // the GlobalAlloc below; it only counts and forwards to System.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use floe_stun::attributes::*;
use floe_stun::{IntegrityKey, Message, MessageBuilder, MessageType, TransactionId};

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards every call unchanged to `System`; the counter is a thread-local Cell
// with a const initializer, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn parse_decode_and_verify_of_an_ice_check_allocate_nothing() {
    let key = IntegrityKey::short_term("asd88jdf0s9dfjs0d9f8jq").unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([1; 12]),
    )
    .unwrap();
    b.add(&Username("rR7x2mQ9:Lp4vK8sZ")).unwrap();
    b.add(&Priority(1_853_824_767)).unwrap();
    b.add(&IceControlling(7)).unwrap();
    b.add(&UseCandidate).unwrap();
    b.add_message_integrity(&key).unwrap();
    b.add_fingerprint().unwrap();
    let len = b.len();
    let bytes = &buf[..len];

    let mut seen = 0u64;
    let n = allocations_in(|| {
        let msg = Message::parse(bytes).unwrap();
        seen += msg.get::<Username>().unwrap().unwrap().0.len() as u64;
        seen += u64::from(msg.get::<Priority>().unwrap().unwrap().0);
        seen += msg.get::<IceControlling>().unwrap().unwrap().0;
        seen += u64::from(msg.get::<UseCandidate>().unwrap().is_some());
        for raw in msg.attributes() {
            let _ = decode_known(&raw, &msg.transaction_id()).unwrap();
        }
        msg.verify(&key).unwrap();
    });
    assert!(seen > 0);
    assert_eq!(n, 0, "parse + decode + verify allocated {n} times");
}

#[test]
fn encoding_into_a_caller_buffer_allocates_nothing() {
    let key = IntegrityKey::short_term("asd88jdf0s9dfjs0d9f8jq").unwrap();
    let mut buf = [0u8; 256];
    let n = allocations_in(|| {
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::BINDING_SUCCESS,
            TransactionId([2; 12]),
        )
        .unwrap();
        b.add(&XorMappedAddress(([203, 0, 113, 7], 49152).into()))
            .unwrap();
        b.add_message_integrity(&key).unwrap();
        b.add_fingerprint().unwrap();
    });
    assert_eq!(n, 0);
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations_in(|| drop(std::hint::black_box(vec![1u8; 10]))) >= 1);
}

/// The TURN server's relay paths allocate nothing once warm when the runtime recycles
/// what it sent (`Server::recycle`): ChannelData and Send indications from the client
/// to the peer, ChannelData and Data indications from the peer to the client.
#[test]
fn the_turn_servers_relay_paths_allocate_nothing_once_warm() {
    use floe_turn::client::{Client, ClientConfig};
    use floe_turn::server::{PortPool, Server, ServerConfig};
    use floe_turn::Transport;
    use rand::SeedableRng;
    use std::net::SocketAddr;
    use std::time::Instant;

    let server_addr: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let client_addr: SocketAddr = "198.51.100.2:40000".parse().unwrap();
    let (with_channel, without): (SocketAddr, SocketAddr) = (
        "203.0.113.9:5000".parse().unwrap(),
        "203.0.113.10:5000".parse().unwrap(),
    );
    let mut config = ServerConfig::default();
    config.users.insert("alice".into(), "wonderland".into());
    let pool = PortPool::new(
        Some("192.0.2.1".parse().unwrap()),
        None,
        49_152..=49_200,
        rand_chacha::ChaCha8Rng::seed_from_u64(1),
    );
    let now = Instant::now();
    let mut server = Server::new(config, pool, now, 7);
    let mut client = Client::new(
        ClientConfig::new(
            client_addr,
            server_addr,
            Transport::Udp,
            "alice",
            "wonderland",
        ),
        9,
    );
    // Control traffic until quiet.
    let exchange = |client: &mut Client, server: &mut Server<PortPool<_>>| {
        for _ in 0..20 {
            while let Some(t) = client.poll_transmit() {
                server.handle_client(now, t.transport, t.destination, t.source, &t.data);
            }
            let mut any = false;
            while let Some(t) = server.poll_transmit() {
                any = true;
                client.handle_receive(now, &t.data, |_, _| {});
            }
            if !any {
                break;
            }
        }
    };
    client.allocate(now);
    exchange(&mut client, &mut server);
    let relayed = client.relayed()[0];
    client.create_permission(now, without.ip()).unwrap();
    client.bind_channel(now, with_channel).unwrap();
    exchange(&mut client, &mut server);
    assert!(client.channel(with_channel).is_some());

    let payload = [0x5au8; 160];
    let mut up_channel = [0u8; 256];
    let n = client
        .encode_send(with_channel, &payload, &mut up_channel)
        .unwrap();
    let up_channel = &up_channel[..n];
    let mut up_send = [0u8; 256];
    let n = client.encode_send(without, &payload, &mut up_send).unwrap();
    let up_send = &up_send[..n];
    let relay = |server: &mut Server<PortPool<_>>| {
        let mut sent = 0;
        for _ in 0..50 {
            server.handle_client(now, Transport::Udp, server_addr, client_addr, up_channel);
            server.handle_client(now, Transport::Udp, server_addr, client_addr, up_send);
            server.handle_peer(now, relayed, with_channel, &payload);
            server.handle_peer(now, relayed, without, &payload);
            while let Some(t) = server.poll_transmit() {
                sent += 1;
                server.recycle(t.data);
            }
        }
        sent
    };
    assert_eq!(relay(&mut server), 200, "warm-up: every datagram relayed");
    let mut sent = 0;
    let allocations = allocations_in(|| sent = relay(&mut server));
    assert_eq!(sent, 200);
    assert_eq!(allocations, 0, "the relay paths allocated");
}
