use super::wire::{self, Question, CLASS_IN, TYPE_A, TYPE_AAAA, TYPE_ANY};
use super::*;

const NAME: &str = "1f0e3dad-9990-4c6b-9d7c-0a1b2c3d4e5f.local";

fn v4(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn published() -> Mdns {
    let mut m = Mdns::new(7);
    assert!(m.publish(NAME, "192.168.1.2".parse().unwrap()));
    m
}

fn drain(m: &mut Mdns) -> Vec<MdnsTransmit> {
    std::iter::from_fn(|| m.poll_transmit()).collect()
}

#[test]
fn host_names_are_version_4_uuids_in_local() {
    let name = host_name([0xFF; 16]);
    assert_eq!(name, "ffffffff-ffff-4fff-bfff-ffffffffffff.local");
    let name = host_name([0; 16]);
    assert_eq!(name, "00000000-0000-4000-8000-000000000000.local");
}

#[test]
fn a_multicast_query_for_our_name_is_answered_on_the_group_and_others_are_not() {
    let now = Instant::now();
    let mut m = published();
    let q = wire::query(0, &NAME.to_uppercase(), &[TYPE_A], false).unwrap();
    m.handle_receive(now, v4("192.168.1.3:5353"), &q);
    let out = drain(&mut m);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].socket, Socket::Responder);
    assert_eq!(out[0].destination, v4("224.0.0.251:5353"));
    let answer = wire::parse(&out[0].payload).unwrap();
    assert!(answer.response);
    assert_eq!(answer.answers.len(), 1);
    assert_eq!(
        answer.answers[0].address,
        Some("192.168.1.2".parse().unwrap())
    );
    assert!(answer.answers[0].cache_flush);
    assert_eq!(answer.answers[0].ttl, 120);

    // Another name, another type, another class: silence.
    for q in [
        wire::query(0, "other.local", &[TYPE_A], false).unwrap(),
        wire::query(0, NAME, &[TYPE_AAAA], false).unwrap(),
        wire::query(0, NAME, &[12], false).unwrap(),
    ] {
        m.handle_receive(now + Duration::from_secs(5), v4("192.168.1.3:5353"), &q);
    }
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.stats().answered, 1);
}

#[test]
fn a_record_is_multicast_at_most_once_a_second() {
    let now = Instant::now();
    let mut m = published();
    let q = wire::query(0, NAME, &[TYPE_ANY], false).unwrap();
    for ms in [0, 10, 500, 999] {
        m.handle_receive(now + Duration::from_millis(ms), v4("192.168.1.3:5353"), &q);
    }
    assert_eq!(drain(&mut m).len(), 1);
    assert_eq!(m.stats().rate_limited, 3);
    m.handle_receive(now + Duration::from_secs(1), v4("192.168.1.3:5353"), &q);
    assert_eq!(drain(&mut m).len(), 1);
}

#[test]
fn a_one_shot_query_gets_a_unicast_answer_with_its_id_and_question_and_a_short_ttl() {
    let now = Instant::now();
    let mut m = published();
    let q = wire::query(0x1234, NAME, &[TYPE_A], false).unwrap();
    m.handle_receive(now, v4("192.168.1.3:40000"), &q);
    let out = drain(&mut m);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].destination, v4("192.168.1.3:40000"));
    let answer = wire::parse(&out[0].payload).unwrap();
    assert_eq!(answer.id, 0x1234);
    assert_eq!(answer.questions, wire::parse(&q).unwrap().questions);
    assert_eq!(answer.questions[0].name, NAME);
    assert_eq!(answer.answers[0].ttl, 10);
    assert!(!answer.answers[0].cache_flush);
}

#[test]
fn unicast_answers_are_limited_to_twenty_a_second() {
    let now = Instant::now();
    let mut m = published();
    let q = wire::query(1, NAME, &[TYPE_A], true).unwrap();
    for i in 0..100u16 {
        m.handle_receive(
            now,
            SocketAddr::new("10.0.0.9".parse().unwrap(), 1000 + i),
            &q,
        );
    }
    assert_eq!(drain(&mut m).len(), 20);
    assert_eq!(m.stats().rate_limited, 80);
    m.handle_receive(now + Duration::from_secs(1), v4("10.0.0.9:999"), &q);
    assert_eq!(drain(&mut m).len(), 1);
}

#[test]
fn the_unicast_bit_from_port_5353_gets_a_unicast_answer() {
    let now = Instant::now();
    let mut m = published();
    let q = wire::query(0, NAME, &[TYPE_A], true).unwrap();
    m.handle_receive(now, v4("192.168.1.3:5353"), &q);
    let out = drain(&mut m);
    assert_eq!(out[0].destination, v4("192.168.1.3:5353"));
}

#[test]
fn a_known_answer_suppresses_ours() {
    let now = Instant::now();
    let mut m = published();
    // A query that carries our record in its answer section, with its TTL mostly left.
    let mut q = wire::response(
        0,
        &[Question {
            name: NAME.into(),
            qtype: TYPE_A,
            qclass: CLASS_IN,
            unicast_response: false,
        }],
        &[wire::Answer {
            name: NAME,
            address: "192.168.1.2".parse().unwrap(),
            ttl: 100,
            cache_flush: false,
        }],
    )
    .unwrap();
    q[2] = 0; // QR and AA off: a query
    m.handle_receive(now, v4("192.168.1.3:5353"), &q);
    assert!(drain(&mut m).is_empty());
}

#[test]
fn resolving_sends_one_shot_queries_each_second_and_an_answer_ends_it() {
    let now = Instant::now();
    let mut m = Mdns::new(100);
    m.resolve(now, "peer.local");
    let out = drain(&mut m);
    assert_eq!(out.len(), 2, "one query per family: {out:?}");
    assert!(out.iter().all(|t| t.socket == Socket::Querier));
    let q = wire::parse(&out[0].payload).unwrap();
    assert_ne!(q.id, 0);
    assert_eq!(q.questions.len(), 2);
    assert_eq!(m.poll_timeout(), Some(now + Duration::from_secs(1)));
    m.handle_timeout(now + Duration::from_secs(1));
    assert_eq!(drain(&mut m).len(), 2);
    // Asking again does not send again.
    m.resolve(now + Duration::from_millis(1100), "PEER.local");
    assert!(drain(&mut m).is_empty());

    // The answer, by legacy unicast from the peer's responder.
    let a = wire::response(
        q.id,
        &q.questions,
        &[wire::Answer {
            name: "peer.local",
            address: "192.168.1.9".parse().unwrap(),
            ttl: 10,
            cache_flush: false,
        }],
    )
    .unwrap();
    m.handle_receive(
        now + Duration::from_millis(1200),
        v4("192.168.1.9:5353"),
        &a,
    );
    assert_eq!(
        m.poll_event(),
        Some(MdnsEvent::Resolved {
            name: "peer.local".into(),
            address: Some("192.168.1.9".parse().unwrap())
        })
    );
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn an_unanswered_name_resolves_to_none_at_the_timeout() {
    let now = Instant::now();
    let mut m = Mdns::new(1).with_resolve_timeout(Duration::from_millis(2500));
    m.resolve(now, "gone.local");
    let mut t = now;
    while let Some(next) = m.poll_timeout() {
        t = next;
        m.handle_timeout(t);
    }
    assert_eq!(t, now + Duration::from_millis(2500));
    assert_eq!(
        drain(&mut m).len(),
        6,
        "sent at 0, 1 s and 2 s to both groups"
    );
    assert_eq!(
        m.poll_event(),
        Some(MdnsEvent::Resolved {
            name: "gone.local".into(),
            address: None
        })
    );
    assert_eq!(m.stats().unresolved, 1);
}

#[test]
fn our_own_names_resolve_at_once_and_unwritable_or_too_many_fail_at_once() {
    let now = Instant::now();
    let mut m = published();
    m.resolve(now, NAME);
    assert_eq!(
        m.poll_event(),
        Some(MdnsEvent::Resolved {
            name: NAME.into(),
            address: Some("192.168.1.2".parse().unwrap())
        })
    );
    m.resolve(now, "a..local");
    assert_eq!(
        m.poll_event(),
        Some(MdnsEvent::Resolved {
            name: "a..local".into(),
            address: None
        })
    );
    for i in 0..MAX_QUERIES {
        m.resolve(now, &format!("n{i}.local"));
    }
    assert_eq!(m.poll_event(), None);
    m.resolve(now, "one-more.local");
    assert_eq!(
        m.poll_event(),
        Some(MdnsEvent::Resolved {
            name: "one-more.local".into(),
            address: None
        })
    );
}

#[test]
fn publishing_is_bounded_and_a_name_keeps_its_address() {
    let mut m = published();
    assert!(!m.publish(NAME, "192.168.1.3".parse().unwrap()));
    assert!(m.publish(NAME, "192.168.1.2".parse().unwrap()));
    for i in 1..MAX_NAMES {
        assert!(m.publish(&format!("n{i}.local"), "10.0.0.1".parse().unwrap()));
    }
    assert!(!m.publish("full.local", "10.0.0.2".parse().unwrap()));
    m.unpublish("10.0.0.1".parse().unwrap());
    assert_eq!(m.names().count(), 1);
}

#[test]
fn responses_with_errors_or_other_opcodes_and_garbage_are_ignored() {
    let now = Instant::now();
    let mut m = Mdns::new(3);
    m.resolve(now, "peer.local");
    drain(&mut m);
    let good = wire::response(
        0,
        &[],
        &[wire::Answer {
            name: "peer.local",
            address: "10.1.1.1".parse().unwrap(),
            ttl: 120,
            cache_flush: true,
        }],
    )
    .unwrap();
    let mut rcode = good.clone();
    rcode[3] |= 3;
    let mut opcode = good.clone();
    opcode[2] |= 0x10;
    for bad in [&rcode[..], &opcode[..], &[1, 2, 3][..]] {
        m.handle_receive(now, v4("10.1.1.1:5353"), bad);
    }
    // §6: an answer from another port than 5353 is not an mDNS answer.
    m.handle_receive(now, v4("10.1.1.1:40000"), &good);
    assert_eq!(m.poll_event(), None);
    assert_eq!(m.stats().malformed, 1);
    m.handle_receive(now, v4("10.1.1.1:5353"), &good);
    assert!(matches!(
        m.poll_event(),
        Some(MdnsEvent::Resolved {
            address: Some(_),
            ..
        })
    ));
}

#[test]
fn ipv6_queries_are_answered_on_the_v6_group_in_the_querier_scope() {
    let now = Instant::now();
    let mut m = Mdns::new(1);
    m.publish(NAME, "fe80::2".parse().unwrap());
    let q = wire::query(0, NAME, &[TYPE_AAAA], false).unwrap();
    let from = SocketAddr::V6(SocketAddrV6::new("fe80::3".parse().unwrap(), 5353, 0, 4));
    m.handle_receive(now, from, &q);
    let out = drain(&mut m);
    assert_eq!(
        out[0].destination,
        SocketAddr::V6(SocketAddrV6::new(GROUP_V6, 5353, 0, 4))
    );
}
