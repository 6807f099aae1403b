//! [`Server::poll_event`]: one event per change in an allocation's life, with the fields
//! a runtime logs (user, 5-tuple, relayed addresses, bytes each way), and a bounded queue
//! for a runtime that never polls.

use super::*;
use crate::server::{AllocationChange, AllocationEvent, Event as ServerEvent, MAX_EVENTS};

fn allocation_events(net: &mut Net) -> Vec<AllocationEvent> {
    let mut out = Vec::new();
    while let Some(e) = net.server.poll_event() {
        let ServerEvent::Allocation(a) = e;
        out.push(a);
    }
    out
}

#[test]
fn created_refreshed_and_deleted_are_reported_with_user_tuple_relayed_and_bytes() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let relayed = net.clients[c].relayed().to_vec();
    let five_tuple = FiveTuple {
        transport: Transport::Udp,
        client: addr(CLIENT),
        server: addr(SERVER),
    };
    let created = allocation_events(&mut net);
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].five_tuple, five_tuple);
    assert_eq!(created[0].username, "alice");
    assert_eq!(created[0].relayed, relayed);
    assert_eq!(
        created[0].change,
        AllocationChange::Created(Duration::from_secs(600))
    );

    let now = net.now;
    net.clients[c]
        .create_permission(now, addr(PEER).ip())
        .unwrap();
    net.settle();
    let t = net.clients[c].send_to(addr(PEER), b"hello peer").unwrap();
    net.server
        .handle_client(net.now, t.transport, t.destination, t.source, &t.data);
    net.peer_sends(relayed[0], addr(PEER), b"hi");
    // A permission is not an allocation change.
    assert_eq!(allocation_events(&mut net), []);

    let now = net.now;
    net.clients[c].refresh(now);
    net.settle();
    let refreshed = allocation_events(&mut net);
    assert_eq!(refreshed.len(), 1, "{refreshed:?}");
    assert!(matches!(
        refreshed[0].change,
        AllocationChange::Refreshed(_)
    ));

    let now = net.now;
    net.clients[c].deallocate(now);
    net.settle();
    let deleted = allocation_events(&mut net);
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0].change, AllocationChange::Deleted("refresh"));
    assert_eq!(deleted[0].relayed, relayed);
    assert_eq!(
        (deleted[0].bytes_to_peers, deleted[0].bytes_to_clients),
        (10, 2)
    );
}

#[test]
fn an_abandoned_allocation_is_reported_expired() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    net.server_up = false;
    net.run_for(Duration::from_secs(601));
    let events = allocation_events(&mut net);
    let changes: Vec<_> = events.iter().map(|e| e.change).collect();
    assert_eq!(
        changes,
        [
            AllocationChange::Created(Duration::from_secs(600)),
            AllocationChange::Expired
        ]
    );
}

#[test]
fn a_closed_tcp_connection_is_reported_deleted() {
    let mut net = Net::new(config());
    let c = net.add_client(ClientConfig::new(
        addr(CLIENT),
        addr(SERVER),
        Transport::Tcp,
        "alice",
        "wonderland",
    ));
    net.allocate(c);
    let now = net.now;
    net.server
        .handle_connection_closed(now, addr(SERVER), addr(CLIENT));
    let changes: Vec<_> = allocation_events(&mut net)
        .iter()
        .map(|e| e.change)
        .collect();
    assert_eq!(
        changes,
        [
            AllocationChange::Created(Duration::from_secs(600)),
            AllocationChange::Deleted("connection closed")
        ]
    );
}

#[test]
fn a_runtime_that_never_polls_keeps_only_the_latest_events() {
    let mut cfg = config();
    cfg.max_unauthenticated_per_second = u32::MAX;
    let mut net = Net::new(cfg);
    // Each allocation is created and deleted: two events per round.
    for _ in 0..MAX_EVENTS {
        let c = net.client("alice", "wonderland");
        net.allocate(c);
        let now = net.now;
        net.clients[c].deallocate(now);
        net.settle();
    }
    let events = allocation_events(&mut net);
    assert_eq!(events.len(), MAX_EVENTS);
    assert_eq!(
        events.last().unwrap().change,
        AllocationChange::Deleted("refresh")
    );
}
