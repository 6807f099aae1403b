//! RFC 5769 test vectors: decode, verify, and re-encode byte for byte.

use std::net::SocketAddr;

use floe_stun::attributes::*;
use floe_stun::credentials::Algorithm;
use floe_stun::{
    Class, Error, IntegrityKey, IntegrityKind, Message, MessageBuilder, MessageType, Method,
    ParseOptions, TransactionId,
};

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

const PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";
const TID: [u8; 12] = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

fn request_2_1() -> Vec<u8> {
    hex("00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
         00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36
         00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
         00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
         80 28 00 04 e5 7a 3b cf")
}

fn response_2_2() -> Vec<u8> {
    hex("01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 08 00 01 a1 47 e1 12 a6 43
         00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
         80 28 00 04 c0 7d 4c 96")
}

fn response_2_3() -> Vec<u8> {
    hex("01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
         00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
         80 28 00 04 c8 fb 0b 4c")
}

fn request_2_4() -> Vec<u8> {
    hex("00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
         00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
         00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
         00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
         00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66")
}

const USERNAME_2_4: &str = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";

#[test]
fn vector_2_1_request_decodes_verifies_and_re_encodes() {
    let bytes = request_2_1();
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.message_type(), MessageType::BINDING_REQUEST);
    assert_eq!(msg.transaction_id(), TransactionId(TID));
    assert_eq!(
        msg.get::<Software>().unwrap(),
        Some(Software("STUN test client"))
    );
    assert_eq!(msg.get::<Priority>().unwrap(), Some(Priority(0x6e00_01ff)));
    assert_eq!(
        msg.get::<IceControlled>().unwrap(),
        Some(IceControlled(0x932f_f9b1_5126_3b36))
    );
    assert_eq!(msg.get::<Username>().unwrap(), Some(Username("evtj:h6vY")));
    let key = IntegrityKey::short_term(PASSWORD).unwrap();
    assert_eq!(msg.verify(&key), Ok(IntegrityKind::Sha1));
    msg.check_fingerprint().unwrap();

    let mut buf = [0u8; 512];
    let mut b =
        MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId(TID)).unwrap();
    b.set_padding_byte(b' ');
    b.add(&Software("STUN test client")).unwrap();
    b.add(&Priority(0x6e00_01ff)).unwrap();
    b.add(&IceControlled(0x932f_f9b1_5126_3b36)).unwrap();
    b.add(&Username("evtj:h6vY")).unwrap();
    b.add_message_integrity(&key).unwrap();
    b.add_fingerprint().unwrap();
    assert_eq!(b.finish(), &bytes[..]);
}

#[test]
fn vector_2_2_ipv4_response_decodes_verifies_and_re_encodes() {
    let bytes = response_2_2();
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(
        (msg.method(), msg.class()),
        (Method::BINDING, Class::Success)
    );
    let addr: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    assert_eq!(
        msg.get::<XorMappedAddress>().unwrap(),
        Some(XorMappedAddress(addr))
    );
    assert_eq!(
        msg.get::<Software>().unwrap(),
        Some(Software("test vector"))
    );
    let key = IntegrityKey::short_term(PASSWORD).unwrap();
    msg.verify(&key).unwrap();

    let mut buf = [0u8; 512];
    let mut b =
        MessageBuilder::new(&mut buf, MessageType::BINDING_SUCCESS, TransactionId(TID)).unwrap();
    b.set_padding_byte(b' ');
    b.add(&Software("test vector"))
        .unwrap()
        .add(&XorMappedAddress(addr))
        .unwrap();
    b.add_message_integrity(&key)
        .unwrap()
        .add_fingerprint()
        .unwrap();
    assert_eq!(b.finish(), &bytes[..]);
}

#[test]
fn vector_2_3_ipv6_response_decodes_verifies_and_re_encodes() {
    let bytes = response_2_3();
    let msg = Message::parse(&bytes).unwrap();
    let addr: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .unwrap();
    assert_eq!(
        msg.get::<XorMappedAddress>().unwrap(),
        Some(XorMappedAddress(addr))
    );
    let key = IntegrityKey::short_term(PASSWORD).unwrap();
    msg.verify(&key).unwrap();

    let mut buf = [0u8; 512];
    let mut b =
        MessageBuilder::new(&mut buf, MessageType::BINDING_SUCCESS, TransactionId(TID)).unwrap();
    b.set_padding_byte(b' ');
    b.add(&Software("test vector"))
        .unwrap()
        .add(&XorMappedAddress(addr))
        .unwrap();
    b.add_message_integrity(&key)
        .unwrap()
        .add_fingerprint()
        .unwrap();
    assert_eq!(b.finish(), &bytes[..]);
}

#[test]
fn vector_2_4_long_term_request_decodes_verifies_and_re_encodes() {
    let bytes = request_2_4();
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.get::<Username>().unwrap(), Some(Username(USERNAME_2_4)));
    assert_eq!(
        msg.get::<Nonce>().unwrap(),
        Some(Nonce("f//499k954d6OL34oL9FSTvy64sA"))
    );
    assert_eq!(msg.get::<Realm>().unwrap(), Some(Realm("example.org")));
    assert!(msg.fingerprint_offset().is_none());
    // RFC 5769 §2.4 computed the key with the SASLprep output "TheMatrIX" (RFC 5389);
    // RFC 8489's OpaqueString leaves that ASCII string as it is.
    let key =
        IntegrityKey::long_term(USERNAME_2_4, "example.org", "TheMatrIX", Algorithm::Md5).unwrap();
    msg.verify(&key).unwrap();
    let wrong =
        IntegrityKey::long_term(USERNAME_2_4, "example.org", "TheMatrix", Algorithm::Md5).unwrap();
    assert_eq!(
        msg.verify(&wrong),
        Err(Error::IntegrityMismatch {
            name: "MESSAGE-INTEGRITY"
        })
    );

    let mut buf = [0u8; 512];
    let tid = TransactionId(bytes[8..20].try_into().unwrap());
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, tid).unwrap();
    b.add(&Username(USERNAME_2_4)).unwrap();
    b.add(&Nonce("f//499k954d6OL34oL9FSTvy64sA")).unwrap();
    b.add(&Realm("example.org")).unwrap();
    b.add_message_integrity(&key).unwrap();
    assert_eq!(b.finish(), &bytes[..]);
}

#[test]
fn any_flipped_bit_in_a_vector_fails_a_named_check() {
    let key = IntegrityKey::short_term(PASSWORD).unwrap();
    for vector in [request_2_1(), response_2_2(), response_2_3()] {
        for bit in 0..vector.len() * 8 {
            let mut v = vector.clone();
            v[bit / 8] ^= 1 << (bit % 8);
            // Strict: these vectors carry FINGERPRINT, so losing it (a flip in its type
            // field turns it into an ignored attribute after MESSAGE-INTEGRITY) counts.
            let verdict =
                Message::parse_with(&v, ParseOptions::strict()).and_then(|m| m.verify(&key));
            // Even flips inside padding change the CRC, so FINGERPRINT catches them:
            // nothing may pass.
            assert!(
                verdict.is_err(),
                "bit {bit} flipped and the message still verified"
            );
        }
    }
}
