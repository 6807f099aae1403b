//! Fleet quotas (fleet.rs) and stored users (stored_users.rs): parked Allocates, the
//! answers, places given back, and users known only by their long-term keys.

use std::sync::Arc;

use super::*;
use crate::server::{FleetAnswer, FleetOp, StoredKey, StoredUsers, PARK_TIMEOUT};

fn fleet_config() -> ServerConfig {
    let mut c = config();
    c.fleet_quota = true;
    c
}

fn ops(net: &mut Net) -> Vec<FleetOp> {
    std::iter::from_fn(|| net.server.poll_fleet_op()).collect()
}

fn acquire_ticket(ops: &[FleetOp], who: &str) -> u64 {
    ops.iter()
        .find_map(|op| match op {
            FleetOp::Acquire { ticket, user } if user == who => Some(*ticket),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Acquire for {who} in {ops:?}"))
}

fn answer(net: &mut Net, ticket: u64, a: FleetAnswer) -> bool {
    let now = net.now;
    let taken = net.server.handle_fleet_answer(now, ticket, a);
    net.settle();
    taken
}

#[test]
fn an_allocate_waits_for_the_fleet_and_is_made_when_granted() {
    let mut net = Net::new(fleet_config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    assert_eq!(net.server.fleet_parked(), 1);
    assert_ne!(net.clients[c].state(), &ClientState::Allocated);
    let first = ops(&mut net);
    let ticket = acquire_ticket(&first, "alice");
    assert_eq!(first.len(), 1, "one Acquire per Allocate: {first:?}");
    // The client retransmits while it waits: no second Acquire.
    net.run_for(Duration::from_millis(1600));
    assert!(ops(&mut net).is_empty());
    assert!(answer(&mut net, ticket, FleetAnswer::Granted));
    assert_eq!(net.clients[c].state(), &ClientState::Allocated);
    assert_eq!(net.server.fleet_parked(), 0);
    assert!(
        ops(&mut net).is_empty(),
        "the place is held, not given back"
    );
    // The place goes back when the allocation ends.
    net.clients[c].deallocate(net.now);
    net.settle();
    assert_eq!(
        ops(&mut net),
        [FleetOp::Release {
            user: "alice".into()
        }]
    );
}

#[test]
fn fleet_refusals_are_486_508_and_500() {
    for (a, expected) in [
        (FleetAnswer::UserFull, TurnError::QuotaReached),
        (FleetAnswer::FleetFull, TurnError::InsufficientCapacity),
        (
            FleetAnswer::Unavailable,
            TurnError::Other {
                code: 500,
                reason: "Server Error".into(),
            },
        ),
    ] {
        let mut net = Net::new(fleet_config());
        let c = net.client("alice", "wonderland");
        net.allocate(c);
        let ticket = acquire_ticket(&ops(&mut net), "alice");
        assert!(answer(&mut net, ticket, a));
        assert!(
            net.has_event(c, |e| *e == Event::AllocationFailed(expected.clone())),
            "{a:?}: {:?}",
            net.events
        );
        assert!(ops(&mut net).is_empty(), "{a:?}: nothing to give back");
        assert_eq!(net.server.stats().allocations, 0);
    }
}

#[test]
fn an_overdue_answer_is_500_and_a_late_grant_is_refused_for_the_runtime_to_give_back() {
    let mut net = Net::new(fleet_config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let ticket = acquire_ticket(&ops(&mut net), "alice");
    net.run_for(PARK_TIMEOUT + Duration::from_millis(10));
    assert_eq!(net.server.fleet_parked(), 0);
    assert!(net.has_event(c, |e| matches!(
        e,
        Event::AllocationFailed(TurnError::Other { code: 500, .. })
    )));
    assert!(!answer(&mut net, ticket, FleetAnswer::Granted));
    assert_eq!(net.server.stats().allocations, 0);
}

#[test]
fn a_grant_the_allocation_cannot_use_goes_back() {
    // Granted by the fleet, but the server started draining meanwhile: 508, and the
    // place is given back at once.
    let mut net = Net::new(fleet_config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let ticket = acquire_ticket(&ops(&mut net), "alice");
    let now = net.now;
    net.server.drain(now);
    assert!(answer(&mut net, ticket, FleetAnswer::Granted));
    assert!(net.has_event(c, |e| *e
        == Event::AllocationFailed(TurnError::InsufficientCapacity)));
    assert_eq!(
        ops(&mut net),
        [FleetOp::Release {
            user: "alice".into()
        }]
    );
}

#[test]
fn an_expired_allocation_gives_its_place_back() {
    let mut net = Net::new(fleet_config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    let ticket = acquire_ticket(&ops(&mut net), "alice");
    answer(&mut net, ticket, FleetAnswer::Granted);
    // The client stops refreshing (its server goes quiet for it).
    net.server_up = false;
    net.run_for(Duration::from_secs(700));
    assert_eq!(net.server.stats().allocations, 0);
    assert!(ops(&mut net).contains(&FleetOp::Release {
        user: "alice".into()
    }));
}

#[test]
fn parked_allocates_are_bounded() {
    let mut cfg = fleet_config();
    cfg.max_unauthenticated_per_second = 10_000;
    let mut net = Net::new(cfg);
    for i in 0..crate::server::MAX_PARKED + 3 {
        let port = 20_000 + i as u16;
        let c = net.add_client(ClientConfig::new(
            SocketAddr::new("198.51.100.7".parse().unwrap(), port),
            addr(SERVER),
            Transport::Udp,
            "alice",
            "wonderland",
        ));
        net.allocate(c);
    }
    assert_eq!(net.server.fleet_parked(), crate::server::MAX_PARKED);
    let refused = net
        .events
        .iter()
        .filter(|(_, e)| *e == Event::AllocationFailed(TurnError::InsufficientCapacity))
        .count();
    assert_eq!(refused, 3);
}

fn stored_net(stored: StoredUsers) -> Net {
    let mut net = Net::new(config());
    net.server.set_stored_users(Arc::new(stored));
    net
}

#[test]
fn a_stored_user_authenticates_with_md5_and_sha256_keys() {
    let mut stored = StoredUsers::new("floe");
    stored.insert(
        "carol",
        StoredKey::from_password("carol", "floe", "tunnels").unwrap(),
    );
    let mut net = stored_net(stored);
    // Our client picks SHA-256 when offered.
    let c = net.client("carol", "tunnels");
    net.allocate(c);
    assert_eq!(net.clients[c].state(), &ClientState::Allocated);
    let wrong = net.add_client(ClientConfig::new(
        addr("198.51.100.7:40001"),
        addr(SERVER),
        Transport::Udp,
        "carol",
        "tunnel",
    ));
    net.allocate(wrong);
    assert!(net.has_event(wrong, |e| *e
        == Event::AllocationFailed(TurnError::Unauthenticated)));
}

#[test]
fn a_stored_user_with_only_coturns_md5_key_authenticates_with_md5() {
    // A key as coturn's turnadmin writes it: MD5 only.
    let mut key = StoredKey::default();
    assert!(key.set_hex("bc807ee29df3c9ffa736523fb2c4e8ee"));
    let mut cfg = config();
    cfg.realm = "north.gov".into();
    let mut stored = StoredUsers::new("north.gov");
    stored.insert("ninefingers", key);
    let mut net = Net::new(cfg);
    net.server.set_stored_users(Arc::new(stored));
    // A request with MD5 and no PASSWORD-ALGORITHM: the RFC 5389 way, as coturn's
    // clients and most others sign.
    let nonce = challenge_nonce(&mut net);
    let key = IntegrityKey::long_term(
        "ninefingers",
        "north.gov",
        "youhavetoberealistic",
        floe_stun::credentials::Algorithm::Md5,
    )
    .unwrap();
    let resp = signed_allocate(&mut net, "ninefingers", "north.gov", &nonce, &key);
    assert_eq!(Message::parse(&resp).unwrap().class(), Class::Success);
}

/// The nonce of a 401 to an unauthenticated Allocate from CLIENT.
fn challenge_nonce(net: &mut Net) -> String {
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId([7; 12]),
    )
    .unwrap();
    b.add(&RequestedTransport::UDP).unwrap();
    let req = b.finish().to_vec();
    let now = net.now;
    net.server
        .handle_client(now, Transport::Udp, addr(SERVER), addr(CLIENT), &req);
    let t = net.server.poll_transmit().unwrap();
    let m = Message::parse(&t.data).unwrap();
    m.get::<Nonce>().unwrap().unwrap().0.to_owned()
}

fn signed_allocate(
    net: &mut Net,
    user: &str,
    realm: &str,
    nonce: &str,
    key: &IntegrityKey,
) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId([8; 12]),
    )
    .unwrap();
    b.add(&RequestedTransport::UDP).unwrap();
    b.add(&Username(user)).unwrap();
    b.add(&Realm(realm)).unwrap();
    b.add(&Nonce(nonce)).unwrap();
    b.add_message_integrity(key).unwrap();
    let n = b.len();
    let now = net.now;
    net.server
        .handle_client(now, Transport::Udp, addr(SERVER), addr(CLIENT), &buf[..n]);
    net.server.poll_transmit().unwrap().data
}

#[test]
fn revoked_users_get_403_on_their_next_request_and_their_allocation_expires() {
    let mut net = Net::new(config());
    let c = net.client("alice", "wonderland");
    net.allocate(c);
    assert_eq!(net.clients[c].state(), &ClientState::Allocated);
    let mut stored = StoredUsers::new("floe");
    stored.revoke("alice");
    net.server.set_stored_users(Arc::new(stored));
    net.clients[c].refresh(net.now);
    net.settle();
    assert!(
        net.has_event(c, |e| matches!(
            e,
            Event::AllocationLost(TurnError::Forbidden)
        )),
        "{:?}",
        net.events
    );
    assert_eq!(net.server.stats().auth_failures_of(AuthFailure::Revoked), 1);
    net.run_for(Duration::from_secs(700));
    assert_eq!(net.server.stats().allocations, 0);
}

#[test]
fn stored_rest_secrets_sign_rest_usernames() {
    let mut net = Net::new(config());
    let now = net.now;
    net.server.set_wall_clock(now, 1_700_000_000);
    let mut stored = StoredUsers::new("floe");
    stored.add_rest_secret("fleet-secret");
    net.server.set_stored_users(Arc::new(stored));
    let user = "1700003600:dave";
    let password = crate::rest::password("fleet-secret", user);
    let c = net.client(user, &password);
    net.allocate(c);
    assert_eq!(net.clients[c].state(), &ClientState::Allocated);
}
