//! Malformed input: each broken rule gives its own typed error.

use floe_stun::attributes::*;
use floe_stun::{
    AttrType, Error, IntegrityKey, Message, MessageBuilder, MessageType, ParseOptions,
    TransactionId,
};

const TID: TransactionId = TransactionId([3; 12]);

/// A Binding request with the given raw attributes (type, value) and padding.
fn with_attrs(attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TID).unwrap();
    for (t, v) in attrs {
        b.add_raw(AttrType(*t), v).unwrap();
    }
    b.finish().to_vec()
}

#[test]
fn truncated_header() {
    assert_eq!(
        Message::parse(&[0, 1, 0, 0, 0x21, 0x12]).unwrap_err(),
        Error::Truncated {
            needed: 20,
            have: 6
        }
    );
    assert_eq!(
        Message::parse(&[]).unwrap_err(),
        Error::Truncated {
            needed: 20,
            have: 0
        }
    );
}

#[test]
fn first_two_bits_set_is_not_stun() {
    let mut m = with_attrs(&[]);
    m[0] = 0x80;
    assert_eq!(
        Message::parse(&m).unwrap_err(),
        Error::NotStun { first_byte: 0x80 }
    );
}

#[test]
fn classic_rfc_3489_message_is_rejected_cleanly() {
    let mut m = with_attrs(&[]);
    m[4..8].copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(
        Message::parse(&m).unwrap_err(),
        Error::ClassicStun { found: 0x0102_0304 }
    );
}

#[test]
fn length_not_a_multiple_of_four() {
    let mut m = with_attrs(&[(0x8022, b"abcd")]);
    m[3] = 7;
    assert_eq!(
        Message::parse(&m).unwrap_err(),
        Error::LengthNotAligned { length: 7 }
    );
}

#[test]
fn length_field_disagrees_with_the_datagram() {
    let mut m = with_attrs(&[(0x8022, b"abcd")]);
    m.extend_from_slice(&[0; 4]);
    assert_eq!(
        Message::parse(&m).unwrap_err(),
        Error::LengthMismatch {
            declared: 8,
            actual: 12
        }
    );
    let m = with_attrs(&[(0x8022, b"abcd")]);
    assert_eq!(
        Message::parse(&m[..24]).unwrap_err(),
        Error::LengthMismatch {
            declared: 8,
            actual: 4
        }
    );
}

#[test]
fn attribute_length_past_the_end() {
    let mut m = with_attrs(&[(0x8022, b"abcd")]);
    m[23] = 5; // SOFTWARE claims 5 bytes: 8 with padding, only 4 present
    assert_eq!(
        Message::parse(&m).unwrap_err(),
        Error::AttributeOverflow {
            typ: AttrType::SOFTWARE,
            offset: 20,
            length: 5
        }
    );
}

#[test]
fn message_integrity_of_the_wrong_size() {
    let m = with_attrs(&[(0x0008, &[0; 16])]);
    let err = Message::parse(&m).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadAttributeLength {
                typ: AttrType::MESSAGE_INTEGRITY,
                length: 16,
                ..
            }
        ),
        "{err}"
    );
    let m = with_attrs(&[(0x001C, &[0; 12])]);
    let err = Message::parse(&m).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadAttributeLength {
                typ: AttrType::MESSAGE_INTEGRITY_SHA256,
                ..
            }
        ),
        "{err}"
    );
}

/// RFC 8489 §14.6: MESSAGE-INTEGRITY-SHA256 is 16 to 32 bytes, a multiple of 4.
#[test]
fn message_integrity_sha256_is_16_to_32_bytes_in_steps_of_4() {
    for len in 0..=40usize {
        let m = with_attrs(&[(0x001C, &vec![0; len])]);
        let allowed = (16..=32).contains(&len) && len % 4 == 0;
        match Message::parse(&m) {
            Ok(msg) => {
                assert!(allowed, "{len} bytes accepted");
                assert!(msg.has(AttrType::MESSAGE_INTEGRITY_SHA256));
            }
            Err(err) => {
                assert!(!allowed, "{len} bytes refused: {err}");
                assert!(
                    matches!(
                        err,
                        Error::BadAttributeLength {
                            typ: AttrType::MESSAGE_INTEGRITY_SHA256,
                            ..
                        }
                    ),
                    "{len}: {err}"
                );
            }
        }
    }
}

#[test]
fn attributes_after_fingerprint() {
    let m = with_attrs(&[(0x8028, &[0; 4]), (0x8022, b"late")]);
    assert_eq!(
        Message::parse_with(&m, ParseOptions::structure_only()).unwrap_err(),
        Error::AttributeAfterFingerprint {
            typ: AttrType::SOFTWARE,
            offset: 28
        }
    );
}

#[test]
fn duplicate_attributes_are_rejected_in_strict_mode_and_first_wins_otherwise() {
    let m = with_attrs(&[(0x0024, &[0, 0, 0, 1]), (0x0024, &[0, 0, 0, 2])]);
    let mut strict = ParseOptions::default();
    strict.reject_duplicates = true;
    assert_eq!(
        Message::parse_with(&m, strict).unwrap_err(),
        Error::DuplicateAttribute {
            typ: AttrType::PRIORITY,
            offset: 28
        }
    );
    let msg = Message::parse(&m).unwrap();
    assert_eq!(msg.get::<Priority>().unwrap(), Some(Priority(1)));
    // XOR-PEER-ADDRESS may repeat (RFC 8656 §9.1), even in strict mode.
    let peer = |port: u16| {
        let mut v = [0u8; 8];
        XorPeerAddress(([198, 51, 100, 1], port).into()).encode(&TID, &mut v);
        v
    };
    let (a, b) = (peer(1000), peer(2000));
    let m = with_attrs(&[(0x0012, &a), (0x0012, &b)]);
    let msg = Message::parse_with(&m, strict).unwrap();
    let ports: Vec<u16> = msg
        .get_all::<XorPeerAddress>()
        .map(|p| p.unwrap().0.port())
        .collect();
    assert_eq!(ports, [1000, 2000]);
    // So may XOR-RELAYED-ADDRESS: a dual allocation's success has one per family
    // (RFC 8656 §7.3).
    let mut v4 = [0u8; 8];
    XorRelayedAddress(([203, 0, 113, 1], 50_000).into()).encode(&TID, &mut v4);
    let mut v6 = [0u8; 20];
    XorRelayedAddress(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 50_002).into()).encode(&TID, &mut v6);
    let m = with_attrs(&[(0x0016, &v4), (0x0016, &v6)]);
    let msg = Message::parse_with(&m, strict).unwrap();
    assert_eq!(msg.get_all::<XorRelayedAddress>().count(), 2);
}

#[test]
fn zero_length_address_attribute() {
    let m = with_attrs(&[(0x0020, &[])]);
    let msg = Message::parse(&m).unwrap();
    let err = msg.get::<XorMappedAddress>().unwrap_err();
    assert_eq!(err.to_string(), "attribute 0x0020 (XOR-MAPPED-ADDRESS) at offset 20: length 0, XOR-MAPPED-ADDRESS needs 8 or 20");
}

#[test]
fn bad_address_family() {
    let m = with_attrs(&[(0x0001, &[0, 9, 0, 80, 1, 2, 3, 4])]);
    let msg = Message::parse(&m).unwrap();
    assert_eq!(
        msg.get::<MappedAddress>().unwrap_err(),
        Error::BadAddressFamily {
            typ: AttrType::MAPPED_ADDRESS,
            offset: 20,
            family: 9
        }
    );
}

#[test]
fn wrong_fingerprint() {
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TID).unwrap();
    b.add_fingerprint().unwrap();
    let mut m = b.finish().to_vec();
    m[27] ^= 1;
    assert!(matches!(
        Message::parse(&m).unwrap_err(),
        Error::FingerprintMismatch { .. }
    ));
    // Structure-only parsing leaves the check to the caller.
    let msg = Message::parse_with(&m, ParseOptions::structure_only()).unwrap();
    assert!(matches!(
        msg.check_fingerprint(),
        Err(Error::FingerprintMismatch { .. })
    ));
}

#[test]
fn missing_fingerprint_when_required() {
    let m = with_attrs(&[]);
    let mut opts = ParseOptions::default();
    opts.require_fingerprint = true;
    assert_eq!(
        Message::parse_with(&m, opts).unwrap_err(),
        Error::MissingFingerprint
    );
}

#[test]
fn attributes_after_message_integrity_are_ignored_and_not_trusted() {
    let key = IntegrityKey::short_term("pw").unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TID).unwrap();
    b.add(&Username("a:b"))
        .unwrap()
        .add_message_integrity(&key)
        .unwrap();
    let mut m = b.finish().to_vec();
    // An attacker appends USE-CANDIDATE after MESSAGE-INTEGRITY and fixes the length.
    m.extend_from_slice(&[0x00, 0x25, 0x00, 0x00]);
    let len = (m.len() - 20) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    let msg = Message::parse(&m).unwrap();
    assert!(msg.verify(&key).is_ok());
    assert!(!msg.has(AttrType::USE_CANDIDATE));
    assert_eq!(msg.ignored_after_integrity(), 1);
    assert_eq!(msg.all_attributes().count(), 3);
}

#[test]
fn message_integrity_after_sha256_is_ignored() {
    let key = IntegrityKey::short_term("pw").unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TID).unwrap();
    b.add_message_integrity_sha256(&key).unwrap();
    let mut m = b.finish().to_vec();
    m.extend_from_slice(&[0x00, 0x08, 0x00, 0x14]);
    m.extend_from_slice(&[0; 20]);
    let len = (m.len() - 20) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    let msg = Message::parse(&m).unwrap();
    assert_eq!(msg.integrity_offset(), None);
    assert_eq!(msg.verify(&key), Ok(floe_stun::IntegrityKind::Sha256));
}

#[test]
fn both_integrity_attributes_verify_and_sha256_is_preferred() {
    let key = IntegrityKey::short_term("pw").unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TID).unwrap();
    b.add(&Username("u")).unwrap();
    b.add_message_integrity(&key)
        .unwrap()
        .add_message_integrity_sha256(&key)
        .unwrap()
        .add_fingerprint()
        .unwrap();
    let msg = Message::parse(b.finish()).unwrap();
    assert_eq!(msg.verify(&key), Ok(floe_stun::IntegrityKind::Sha256));
    assert_eq!(msg.verify_sha1(&key), Ok(()));
    let other = IntegrityKey::short_term("other").unwrap();
    assert_eq!(
        msg.verify(&other),
        Err(Error::IntegrityMismatch {
            name: "MESSAGE-INTEGRITY-SHA256"
        })
    );
    assert_eq!(
        msg.verify_sha1(&other),
        Err(Error::IntegrityMismatch {
            name: "MESSAGE-INTEGRITY"
        })
    );
}

#[test]
fn missing_integrity_is_its_own_error() {
    let msg_bytes = with_attrs(&[]);
    let msg = Message::parse(&msg_bytes).unwrap();
    assert_eq!(
        msg.verify(&IntegrityKey::short_term("pw").unwrap()),
        Err(Error::MissingIntegrity)
    );
}

#[test]
fn unknown_comprehension_required_attributes_are_reported_for_420() {
    let m = with_attrs(&[
        (0x7F01, b"x"),
        (0xFF01, b"y"),
        (0x0024, &[0, 0, 0, 1]),
        (0x0033, &[]),
    ]);
    let msg = Message::parse(&m).unwrap();
    let unknown: Vec<AttrType> = msg.unknown_comprehension_required().collect();
    assert_eq!(unknown, [AttrType(0x7F01), AttrType(0x0033)]);
    // And the 420 response carries them.
    let mut buf = [0u8; 128];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_ERROR, TID).unwrap();
    b.add(&ErrorCode::UNKNOWN_ATTRIBUTE)
        .unwrap()
        .add(&UnknownAttributes::from_types(&unknown))
        .unwrap();
    let resp = Message::parse(b.finish()).unwrap();
    assert_eq!(resp.get::<ErrorCode>().unwrap().unwrap().code, 420);
    assert_eq!(
        resp.get::<UnknownAttributes>()
            .unwrap()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        unknown
    );
}

#[test]
fn builder_refuses_attributes_after_integrity_and_fingerprint() {
    let key = IntegrityKey::short_term("pw").unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TID).unwrap();
    b.add_message_integrity(&key).unwrap();
    assert!(matches!(
        b.add(&Priority(1)),
        Err(Error::BadAttributeOrder {
            after: "MESSAGE-INTEGRITY",
            ..
        })
    ));
    assert!(b.add_message_integrity(&key).is_err());
    b.add_fingerprint().unwrap();
    assert!(matches!(
        b.add_fingerprint(),
        Err(Error::BadAttributeOrder {
            after: "FINGERPRINT",
            ..
        })
    ));
    assert!(b.add_message_integrity_sha256(&key).is_err());
}

#[test]
fn builder_reports_a_small_buffer_and_oversized_values() {
    let mut buf = [0u8; 30];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TID).unwrap();
    assert_eq!(
        b.add(&Software("0123456789")).unwrap_err(),
        Error::BufferTooSmall {
            needed: 36,
            have: 30
        }
    );
    let mut big = vec![0u8; 70_000];
    let mut b = MessageBuilder::new(&mut big, MessageType::BINDING_REQUEST, TID).unwrap();
    assert_eq!(b.add(&Data(&vec![0; 65_536])).unwrap_err(), Error::TooLong);
    assert!(b.add(&Username(&"x".repeat(509))).is_err());
    assert!(MessageBuilder::new(&mut [0u8; 19], MessageType::BINDING_REQUEST, TID).is_err());
}

#[test]
fn oversized_text_attributes_are_rejected_on_decode() {
    let long = vec![b'a'; 764];
    let m = with_attrs(&[(0x0015, &long)]);
    let msg = Message::parse(&m).unwrap();
    assert!(matches!(
        msg.get::<Nonce>().unwrap_err(),
        Error::BadAttributeLength {
            name: "NONCE",
            length: 764,
            ..
        }
    ));
    let m = with_attrs(&[(0x0006, &[b'u'; 514])]);
    let msg = Message::parse(&m).unwrap();
    assert!(msg.get::<Username>().is_err());
}

#[test]
fn get_finds_attributes_beyond_the_parse_index() {
    let values: Vec<[u8; 4]> = (0u32..20).map(u32::to_be_bytes).collect();
    let attrs: Vec<(u16, &[u8])> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (0x8100 + i as u16, &v[..]))
        .collect();
    let mut attrs = attrs;
    attrs.push((0x0024, &[0, 0, 0, 42]));
    let m = with_attrs(&attrs);
    let msg = Message::parse(&m).unwrap();
    assert_eq!(msg.get::<Priority>().unwrap(), Some(Priority(42)));
    assert_eq!(
        msg.get_raw(AttrType(0x8113)).unwrap().value,
        &19u32.to_be_bytes()
    );
    assert_eq!(msg.get_raw(AttrType(0x8100)).unwrap().offset, 20);
    assert!(msg.get_raw(AttrType(0x8200)).is_none());
}
