//! Property tests: every attribute and message class round-trips through the builder and
//! the parser, and no input makes the parser panic.

use std::net::{IpAddr, SocketAddr};

use floe_stun::attributes::*;
use floe_stun::{
    Class, IntegrityKey, Message, MessageBuilder, MessageType, Method, ParseOptions, TransactionId,
};
use proptest::prelude::*;

/// An owned description of one attribute, so proptest can generate it; `with` lends the
/// borrowed typed value to a closure.
#[derive(Debug, Clone)]
enum Owned {
    Addr(u8, SocketAddr),
    Text(u8, String),
    U32(u8, u32),
    U64(u8, u64),
    Flag(u8),
    ErrorCode(u16, String),
    Unknown(Vec<u16>),
    Bytes(u8, Vec<u8>),
    ChannelNumber(u16),
    Transport(u8),
    Family(bool, bool),
    EvenPort(bool),
    Token([u8; 8]),
    AddressError(bool, u16, String),
    Icmp(u8, u8, u32),
    Change(bool, bool),
    ResponsePort(u16),
    Algorithms(Vec<(u16, Vec<u8>)>),
    Algorithm(u16, Vec<u8>),
    UserHash([u8; 32]),
}

fn family(v6: bool) -> AddressFamily {
    if v6 {
        AddressFamily::Ipv6
    } else {
        AddressFamily::Ipv4
    }
}

/// Adds the attribute to `b` and returns what decoding must give back.
fn add_and_expect<'a>(
    o: &'a Owned,
    b: &mut MessageBuilder<'_>,
    tid: &TransactionId,
) -> AnyAttribute<'a> {
    macro_rules! put {
        ($v:expr, $variant:ident) => {{
            let v = $v;
            b.add(&v).unwrap();
            AnyAttribute::$variant(v)
        }};
    }
    let _ = tid;
    match o {
        Owned::Addr(k, a) => match k % 7 {
            0 => put!(MappedAddress(*a), MappedAddress),
            1 => put!(XorMappedAddress(*a), XorMappedAddress),
            2 => put!(XorPeerAddress(*a), XorPeerAddress),
            3 => put!(XorRelayedAddress(*a), XorRelayedAddress),
            4 => put!(AlternateServer(*a), AlternateServer),
            5 => put!(ResponseOrigin(*a), ResponseOrigin),
            _ => put!(OtherAddress(*a), OtherAddress),
        },
        Owned::Text(k, s) => match k % 5 {
            0 => put!(Username(s), Username),
            1 => put!(Realm(s), Realm),
            2 => put!(Nonce(s), Nonce),
            3 => put!(Software(s), Software),
            _ => put!(AlternateDomain(s), AlternateDomain),
        },
        Owned::U32(k, v) => match k % 4 {
            0 => put!(Priority(*v), Priority),
            1 => put!(Lifetime(*v), Lifetime),
            2 => put!(ConnectionId(*v), ConnectionId),
            _ => put!(Nomination(*v), Nomination),
        },
        Owned::U64(k, v) => match k % 2 {
            0 => put!(IceControlled(*v), IceControlled),
            _ => put!(IceControlling(*v), IceControlling),
        },
        Owned::Flag(k) => match k % 2 {
            0 => put!(UseCandidate, UseCandidate),
            _ => put!(DontFragment, DontFragment),
        },
        Owned::ErrorCode(code, reason) => put!(
            ErrorCode {
                code: *code,
                reason
            },
            ErrorCode
        ),
        Owned::Unknown(list) => {
            // Leak-free: the list lives in `o`; build AttrTypes on the fly.
            let types: Vec<AttrType> = list.iter().map(|t| AttrType(*t)).collect();
            b.add(&UnknownAttributes::from_types(&types)).unwrap();
            let bytes: &'a [u8] = Box::leak(
                list.iter()
                    .flat_map(|t| t.to_be_bytes())
                    .collect::<Vec<u8>>()
                    .into_boxed_slice(),
            );
            let raw = RawAttribute {
                typ: AttrType::UNKNOWN_ATTRIBUTES,
                value: bytes,
                offset: 0,
            };
            AnyAttribute::UnknownAttributes(UnknownAttributes::decode(&raw, tid).unwrap())
        }
        Owned::Bytes(k, v) => match k % 2 {
            0 => put!(Data(v), Data),
            _ => put!(Padding(v), Padding),
        },
        Owned::ChannelNumber(n) => put!(ChannelNumber(*n), ChannelNumber),
        Owned::Transport(p) => put!(RequestedTransport(*p), RequestedTransport),
        Owned::Family(additional, v6) => {
            if *additional {
                put!(
                    AdditionalAddressFamily(family(*v6)),
                    AdditionalAddressFamily
                )
            } else {
                put!(RequestedAddressFamily(family(*v6)), RequestedAddressFamily)
            }
        }
        Owned::EvenPort(r) => put!(EvenPort { reserve: *r }, EvenPort),
        Owned::Token(t) => put!(ReservationToken(*t), ReservationToken),
        Owned::AddressError(v6, code, reason) => {
            put!(
                AddressErrorCode {
                    family: family(*v6),
                    code: *code,
                    reason
                },
                AddressErrorCode
            )
        }
        Owned::Icmp(t, c, d) => put!(
            Icmp {
                icmp_type: t & 0x7F,
                code: *c,
                error_data: *d
            },
            Icmp
        ),
        Owned::Change(ip, port) => put!(
            ChangeRequest {
                change_ip: *ip,
                change_port: *port
            },
            ChangeRequest
        ),
        Owned::ResponsePort(p) => put!(ResponsePort(*p), ResponsePort),
        Owned::Algorithms(list) => {
            let entries: Vec<PasswordAlgorithm<'a>> = list
                .iter()
                .map(|(a, p)| PasswordAlgorithm {
                    algorithm: *a,
                    params: p,
                })
                .collect();
            let entries: &'a [PasswordAlgorithm<'a>] = Box::leak(entries.into_boxed_slice());
            put!(PasswordAlgorithms::from_list(entries), PasswordAlgorithms)
        }
        Owned::Algorithm(a, p) => put!(
            PasswordAlgorithm {
                algorithm: *a,
                params: p
            },
            PasswordAlgorithm
        ),
        Owned::UserHash(h) => put!(UserHash(h), UserHash),
    }
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
    ]
}

fn owned() -> impl Strategy<Value = Owned> {
    let text = "[a-zA-Z0-9 :./é€]{0,40}";
    prop_oneof![
        (any::<u8>(), socket_addr()).prop_map(|(k, a)| Owned::Addr(k, a)),
        (any::<u8>(), "[a-zA-Z0-9.:-]{0,60}").prop_map(|(k, s)| Owned::Text(k, s)),
        (any::<u8>(), text).prop_map(|(k, s)| Owned::Text(k % 4, s)),
        (any::<u8>(), any::<u32>()).prop_map(|(k, v)| Owned::U32(k, v)),
        (any::<u8>(), any::<u64>()).prop_map(|(k, v)| Owned::U64(k, v)),
        any::<u8>().prop_map(Owned::Flag),
        (300u16..700, text).prop_map(|(c, r)| Owned::ErrorCode(c, r)),
        prop::collection::vec(any::<u16>(), 0..8).prop_map(Owned::Unknown),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..100))
            .prop_map(|(k, v)| Owned::Bytes(k, v)),
        any::<u16>().prop_map(Owned::ChannelNumber),
        any::<u8>().prop_map(Owned::Transport),
        (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Owned::Family(a, b)),
        any::<bool>().prop_map(Owned::EvenPort),
        any::<[u8; 8]>().prop_map(Owned::Token),
        (any::<bool>(), 300u16..700, text).prop_map(|(f, c, r)| Owned::AddressError(f, c, r)),
        (any::<u8>(), any::<u8>(), any::<u32>()).prop_map(|(t, c, d)| Owned::Icmp(t, c, d)),
        (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Owned::Change(a, b)),
        any::<u16>().prop_map(Owned::ResponsePort),
        prop::collection::vec(
            (any::<u16>(), prop::collection::vec(any::<u8>(), 0..9)),
            0..4
        )
        .prop_map(Owned::Algorithms),
        (any::<u16>(), prop::collection::vec(any::<u8>(), 0..9))
            .prop_map(|(a, p)| Owned::Algorithm(a, p)),
        any::<[u8; 32]>().prop_map(Owned::UserHash),
    ]
}

fn class() -> impl Strategy<Value = Class> {
    prop_oneof![
        Just(Class::Request),
        Just(Class::Indication),
        Just(Class::Success),
        Just(Class::Error)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_attribute_and_class_round_trips(
        method in 0u16..0x1000,
        class in class(),
        tid in any::<[u8; 12]>(),
        attrs in prop::collection::vec(owned(), 0..12),
        integrity in 0u8..4,
        fingerprint in any::<bool>(),
    ) {
        let tid = TransactionId(tid);
        let typ = MessageType::new(Method::new(method).unwrap(), class);
        let key = IntegrityKey::short_term("proptest-password").unwrap();
        let mut buf = vec![0u8; 8192];
        let mut b = MessageBuilder::new(&mut buf, typ, tid).unwrap();
        let expected: Vec<AnyAttribute<'_>> = attrs.iter().map(|o| add_and_expect(o, &mut b, &tid)).collect();
        if integrity & 1 != 0 { b.add_message_integrity(&key).unwrap(); }
        if integrity & 2 != 0 { b.add_message_integrity_sha256(&key).unwrap(); }
        if fingerprint { b.add_fingerprint().unwrap(); }
        let bytes = b.finish().to_vec();

        let msg = Message::parse(&bytes).unwrap();
        prop_assert_eq!(msg.message_type(), typ);
        prop_assert_eq!(msg.transaction_id(), tid);
        let decoded: Vec<AnyAttribute<'_>> = msg
            .attributes()
            .filter(|a| !matches!(a.typ, AttrType::MESSAGE_INTEGRITY | AttrType::MESSAGE_INTEGRITY_SHA256 | AttrType::FINGERPRINT))
            .map(|raw| decode_known(&raw, &tid).unwrap().unwrap())
            .collect();
        prop_assert_eq!(decoded, expected);
        if integrity != 0 {
            prop_assert!(msg.verify(&key).is_ok());
        }
        prop_assert_eq!(msg.fingerprint_offset().is_some(), fingerprint);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        walk(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(
        attrs in prop::collection::vec(owned(), 1..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let tid = TransactionId([5; 12]);
        let mut buf = vec![0u8; 8192];
        let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, tid).unwrap();
        for o in &attrs { add_and_expect(o, &mut b, &tid); }
        b.add_message_integrity(&IntegrityKey::short_term("pw").unwrap()).unwrap();
        b.add_fingerprint().unwrap();
        let mut bytes = b.finish().to_vec();
        for (i, v) in flips {
            let i = i.index(bytes.len());
            bytes[i] = v;
        }
        walk(&bytes);
    }
}

/// Parses in every mode, walks and decodes every attribute, verifies.
fn walk(bytes: &[u8]) {
    let key = IntegrityKey::short_term("pw").unwrap();
    for opts in [
        ParseOptions::default(),
        ParseOptions::strict(),
        ParseOptions::structure_only(),
    ] {
        if let Ok(msg) = Message::parse_with(bytes, opts) {
            let tid = msg.transaction_id();
            for raw in msg.all_attributes() {
                let _ = decode_known(&raw, &tid);
            }
            let _ = msg.verify(&key);
            let _ = msg.check_fingerprint();
            let _ = msg.unknown_comprehension_required().count();
        }
    }
}
