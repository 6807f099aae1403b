//! The fuzz seeds with hostile text attributes (`fuzz/README.md`): USERNAME at and past
//! its limits, REALM, NONCE, SOFTWARE and reason phrases of 128 characters and of 200
//! multi-byte characters, and a NONCE with a two-byte character across byte 21 (where a
//! floe nonce's expiry ends and its MAC begins). Plus well-formed streams for
//! `stun_stream`.
//!
//! `FLOE_WRITE_FUZZ_SEEDS=1 cargo test -p floe-tests --test fuzz_seeds` writes them into
//! `fuzz/corpus/<target>/`; a plain run checks the committed files are still exactly what
//! this file generates.

use std::path::PathBuf;

use floe_stun::attributes::{
    Attribute, Lifetime, Nonce, RawAttribute, Realm, RequestedTransport, Username,
    XorMappedAddress, XorRelayedAddress,
};
use floe_stun::credentials::Algorithm;
use floe_stun::{AttrType, IntegrityKey, MessageBuilder, MessageType, TransactionId};

const TID: TransactionId = TransactionId([7; 12]);

/// A text attribute value that is too long, not ASCII, or both.
struct Hostile {
    name: String,
    typ: AttrType,
    value: Vec<u8>,
}

fn hostile(name: impl Into<String>, typ: AttrType, value: impl Into<Vec<u8>>) -> Hostile {
    Hostile {
        name: name.into(),
        typ,
        value: value.into(),
    }
}

/// `len` bytes: ASCII, ending in a two-byte character when `two_byte_end`.
fn text_of_len(len: usize, two_byte_end: bool) -> String {
    if two_byte_end {
        format!("{}é", "u".repeat(len - 2))
    } else {
        "u".repeat(len)
    }
}

fn hostile_texts() -> Vec<Hostile> {
    let mut v = Vec::new();
    // USERNAME: fewer than 509 bytes may be sent, 513 are accepted (RFC 8489 §14.3, RFC
    // 5389); even lengths end in a two-byte character that straddles the last byte.
    for (len, two_byte_end) in [
        (509, false),
        (510, true),
        (511, false),
        (512, true),
        (513, false),
        (600, true),
    ] {
        let suffix = if two_byte_end { "-two-byte-end" } else { "" };
        v.push(hostile(
            format!("username-{len}{suffix}"),
            AttrType::USERNAME,
            text_of_len(len, two_byte_end),
        ));
    }
    // REALM, NONCE, SOFTWARE: fewer than 128 characters (RFC 8489 §14.9, §14.10, §14.14).
    for (name, typ) in [
        ("realm", AttrType::REALM),
        ("nonce", AttrType::NONCE),
        ("software", AttrType::SOFTWARE),
    ] {
        v.push(hostile(format!("{name}-128-ascii"), typ, "r".repeat(128)));
        v.push(hostile(
            format!("{name}-200-two-byte"),
            typ,
            "é".repeat(200),
        ));
    }
    v.push(hostile(
        "software-200-three-byte",
        AttrType::SOFTWARE,
        "€".repeat(200),
    ));
    // A floe nonce is 13 cookie, 8 expiry and 16 MAC characters; "é" covers bytes 20-21.
    v.push(hostile(
        "nonce-two-byte-across-byte-21",
        AttrType::NONCE,
        "obMatJos2wAAA0000001é0123456789abcde",
    ));
    v
}

/// ERROR-CODE values with hostile reason phrases (fewer than 128 characters, RFC 8489
/// §14.8).
fn hostile_reasons() -> Vec<Hostile> {
    let error = |code: u16, reason: &str| {
        let mut v = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
        v.extend_from_slice(reason.as_bytes());
        v
    };
    vec![
        hostile(
            "reason-128-ascii",
            AttrType::ERROR_CODE,
            error(400, &"r".repeat(128)),
        ),
        hostile(
            "reason-200-two-byte",
            AttrType::ERROR_CODE,
            error(403, &"é".repeat(200)),
        ),
        hostile(
            "reason-200-three-byte",
            AttrType::ERROR_CODE,
            error(486, &"€".repeat(200)),
        ),
    ]
}

fn encoded<'a, A: Attribute<'a>>(attr: &A) -> Vec<u8> {
    let mut v = vec![0; attr.value_len()];
    attr.encode(&TID, &mut v);
    v
}

/// The value `A` decodes from `value`, if it does.
fn decodes<'a, A: Attribute<'a>>(value: &'a [u8]) -> Option<A> {
    let raw = RawAttribute {
        typ: A::TYPE,
        value,
        offset: 20,
    };
    A::decode(&raw, &TID).ok()
}

/// An Allocate request carrying `h` in place of its own attribute of that type, signed
/// as `stun_verify` checks it in long-term mode (the key from the message's USERNAME and
/// REALM when they decode, "user" and "realm" otherwise, and the password "pw"), with
/// FINGERPRINT.
fn carrier(h: &Hostile, algorithm: Algorithm) -> Vec<u8> {
    let default_nonce = b"obMatJos2wAAA000000010123456789abcdef".to_vec();
    let mut attrs: Vec<(AttrType, Vec<u8>)> = vec![
        (
            AttrType::REQUESTED_TRANSPORT,
            encoded(&RequestedTransport::UDP),
        ),
        (AttrType::USERNAME, b"alice".to_vec()),
        (AttrType::REALM, b"floe".to_vec()),
        (AttrType::NONCE, default_nonce),
        (AttrType::SOFTWARE, b"floe fuzz seed".to_vec()),
    ];
    match attrs.iter_mut().find(|(t, _)| *t == h.typ) {
        Some(slot) => slot.1.clone_from(&h.value),
        None => attrs.push((h.typ, h.value.clone())),
    }
    let value_of = |t: AttrType| attrs.iter().find(|(a, _)| *a == t).map(|(_, v)| &v[..]);
    let user = value_of(AttrType::USERNAME)
        .and_then(decodes::<Username>)
        .map_or("user", |u| u.0);
    let realm = value_of(AttrType::REALM)
        .and_then(decodes::<Realm>)
        .map_or("realm", |r| r.0);
    let key = IntegrityKey::long_term(user, realm, "pw", algorithm).unwrap();
    let mut buf = vec![0u8; 4096];
    let typ = MessageType::new(floe_stun::Method::ALLOCATE, floe_stun::Class::Request);
    let mut b = MessageBuilder::new(&mut buf, typ, TID).unwrap();
    for (t, v) in &attrs {
        b.add_raw(*t, v).unwrap();
    }
    b.add_message_integrity(&key)
        .unwrap()
        .add_fingerprint()
        .unwrap();
    b.finish().to_vec()
}

/// A length as the TURN harnesses read it: one byte, or 0xFF and a big-endian u16.
fn len_prefix(n: usize) -> Vec<u8> {
    if n < 0xFF {
        vec![n as u8]
    } else {
        let [hi, lo] = u16::try_from(n).unwrap().to_be_bytes();
        vec![0xFF, hi, lo]
    }
}

/// One harness operation: the op byte, the length, the chunk.
fn op(code: u8, chunk: &[u8]) -> Vec<u8> {
    let mut v = vec![code];
    v.extend(len_prefix(chunk.len()));
    v.extend_from_slice(chunk);
    v
}

/// A (type, length, value) triple for the harnesses' signed messages.
fn triple(typ: AttrType, value: &[u8]) -> Vec<u8> {
    let mut v = typ.0.to_be_bytes().to_vec();
    v.extend(len_prefix(value.len()));
    v.extend_from_slice(value);
    v
}

/// `turn_server_receive`: an unauthenticated Allocate (the 401 teaches the harness the
/// nonce), the carrier as a raw datagram (its MESSAGE-INTEGRITY is not the server's), then
/// a correctly signed Allocate whose first attribute of the hostile type is the hostile
/// one. Odd seeds use TCP.
fn turn_server_seed(i: usize, h: &Hostile) -> Vec<u8> {
    let tcp = if i % 2 == 1 { 0x80 } else { 0 };
    let mut buf = [0u8; 64];
    let typ = MessageType::new(floe_stun::Method::ALLOCATE, floe_stun::Class::Request);
    let mut b = MessageBuilder::new(&mut buf, typ, TransactionId([1; 12])).unwrap();
    b.add(&RequestedTransport::UDP).unwrap();
    let unauthenticated = b.finish().to_vec();

    let mut signed = vec![0x03]; // Allocate
    signed.extend(triple(
        AttrType::REQUESTED_TRANSPORT,
        &encoded(&RequestedTransport::UDP),
    ));
    signed.extend(triple(h.typ, &h.value));

    let mut seed = op(tcp, &unauthenticated);
    seed.extend(op(tcp, &carrier(h, Algorithm::Md5)));
    seed.extend(op(2 | tcp, &signed));
    seed
}

/// `turn_client_receive`: after the harness's genuine 401, a signed response to the
/// client's Allocate: a 438 carrying the hostile REALM or NONCE (the client learns them
/// and must build its retry), an error with the hostile reason phrase, or a success with
/// the hostile attribute next to the relayed address. Then time passes with a
/// permission, a channel and a send. Odd seeds use TCP.
fn turn_client_seed(i: usize, h: &Hostile) -> Vec<u8> {
    let relayed = encoded(&XorRelayedAddress("192.0.2.1:50000".parse().unwrap()));
    let mapped = encoded(&XorMappedAddress("198.51.100.1:4000".parse().unwrap()));
    let mut response = Vec::new();
    match h.typ {
        AttrType::REALM | AttrType::NONCE => {
            response.push(1); // error class
            response.extend(triple(
                AttrType::ERROR_CODE,
                &[0, 0, 4, 38, b'S', b't', b'a', b'l', b'e'],
            ));
            let realm = if h.typ == AttrType::REALM {
                h.value.clone()
            } else {
                b"floe".to_vec()
            };
            let nonce = if h.typ == AttrType::NONCE {
                h.value.clone()
            } else {
                b"nonce-2".to_vec()
            };
            response.extend(triple(AttrType::REALM, &realm));
            response.extend(triple(AttrType::NONCE, &nonce));
        }
        AttrType::ERROR_CODE => {
            response.push(1);
            response.extend(triple(AttrType::ERROR_CODE, &h.value));
        }
        _ => {
            response.push(0); // success class
            response.extend(triple(AttrType::XOR_RELAYED_ADDRESS, &relayed));
            response.extend(triple(AttrType::LIFETIME, &encoded(&Lifetime(600))));
            response.extend(triple(AttrType::XOR_MAPPED_ADDRESS, &mapped));
            response.extend(triple(h.typ, &h.value));
        }
    }
    let mut seed = vec![u8::from(i % 2 == 1)];
    seed.extend(op(1, &response));
    seed.extend(op(3, &[1, 1]));
    seed
}

/// `stun_stream`: the first byte counts the chunk-size bytes after it, the rest is the
/// stream.
fn stream_seed(sizes: &[u8], frames: &[&[u8]]) -> Vec<u8> {
    let mut seed = vec![u8::try_from(sizes.len()).unwrap()];
    seed.extend_from_slice(sizes);
    for f in frames {
        seed.extend_from_slice(f);
    }
    seed
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let texts = hostile_texts();
    let reasons = hostile_reasons();
    for (i, h) in texts.iter().chain(&reasons).enumerate() {
        let algorithm = if i % 2 == 0 {
            Algorithm::Md5
        } else {
            Algorithm::Sha256
        };
        let message = carrier(h, algorithm);
        out.push((format!("stun_parse/seed-text-{}", h.name), message.clone()));
        // stun_verify: mode 1 is long-term MD5, 2 long-term SHA-256; then the password.
        let mut verify = vec![if i % 2 == 0 { 1 } else { 2 }];
        verify.extend_from_slice(b"pw\0");
        verify.extend_from_slice(&message);
        out.push((format!("stun_verify/seed-text-{}", h.name), verify));
        out.push((
            format!("turn_client_receive/seed-text-{}", h.name),
            turn_client_seed(i, h),
        ));
    }
    for (i, h) in texts.iter().enumerate() {
        out.push((
            format!("turn_server_receive/seed-text-{}", h.name),
            turn_server_seed(i, h),
        ));
    }

    let request = carrier(&hostile("", AttrType::USERNAME, "alice"), Algorithm::Md5);
    let channel_data = [
        0x40, 0x00, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o', 0, 0, 0,
    ];
    out.push((
        "stun_stream/seed-frames-mixed-chunks".to_owned(),
        stream_seed(&[7, 1, 0], &[&request, &channel_data, &request]),
    ));
    out.push((
        "stun_stream/seed-frames-then-garbage-bytewise".to_owned(),
        stream_seed(&[], &[&channel_data, &request, &[0x80, 1, 2, 3]]),
    ));
    out
}

#[test]
fn fuzz_seeds_are_what_this_file_generates() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let write = std::env::var_os("FLOE_WRITE_FUZZ_SEEDS").is_some();
    if !write && !corpus.is_dir() {
        return; // a packaged crate without the fuzz directory
    }
    for (name, bytes) in seeds() {
        let path = corpus.join(&name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let found = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{name}: {e}; regenerate with FLOE_WRITE_FUZZ_SEEDS=1"));
            assert!(
                found == bytes,
                "{name} differs from what this test generates; regenerate with FLOE_WRITE_FUZZ_SEEDS=1"
            );
        }
    }
}

#[test]
fn hostile_texts_are_what_their_names_say() {
    for h in hostile_texts() {
        let s = std::str::from_utf8(&h.value).unwrap();
        if let Some(len) = h.name.strip_prefix("username-") {
            let len: usize = len.split('-').next().unwrap().parse().unwrap();
            assert_eq!(s.len(), len, "{}", h.name);
        } else if h.name.contains("-128-") {
            assert_eq!(s.chars().count(), 128, "{}", h.name);
        } else if h.name.contains("-200-") {
            assert_eq!(s.chars().count(), 200, "{}", h.name);
            assert!(!s.is_ascii());
        } else {
            assert_eq!(s.len(), 37);
            assert!(
                !s.is_char_boundary(21),
                "the two-byte character covers byte 21"
            );
        }
    }
    assert!(decodes::<Username>(text_of_len(513, false).as_bytes()).is_some());
    assert!(decodes::<Username>(text_of_len(600, true).as_bytes()).is_none());
    assert!(decodes::<Nonce>("é".repeat(200).as_bytes()).is_some());
}
