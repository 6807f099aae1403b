//! Malformed input: each rule the parser enforces, through the binary, asserting the exit
//! status and the reason reported.

mod common;

use common::*;
use floe_stun::{AttrType, IntegrityKey, MessageBuilder, MessageType, TransactionId};

const TID: TransactionId = TransactionId([3; 12]);

/// A Binding request with raw attributes (type, value).
fn with_attrs(attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TID).unwrap();
    for (t, v) in attrs {
        b.add_raw(AttrType(*t), v).unwrap();
    }
    b.finish().to_vec()
}

/// Decodes `bytes` and expects exit status 1 with `reason` as the first error.
fn rejects(bytes: &[u8], extra: &[&str], reason: &str) -> String {
    let (status, out, err) = decode_hex(&to_hex(bytes), extra);
    assert_eq!(status, 1, "{out}{err}");
    assert!(
        out.contains(&format!("  error: {reason}")),
        "want first error {reason:?}, got\n{out}"
    );
    out
}

#[test]
fn truncated_header() {
    rejects(
        &[0, 1, 0, 0, 0x21, 0x12],
        &[],
        "truncated: need 20 bytes, have 6",
    );
}

#[test]
fn length_field_longer_and_shorter_than_the_datagram() {
    let m = with_attrs(&[(0x8022, b"abcd")]);
    rejects(
        &m[..24],
        &[],
        "message length field says 8 bytes after the header, 4 present",
    );
    let mut long = m.clone();
    long.extend_from_slice(&[0; 4]);
    rejects(
        &long,
        &[],
        "message length field says 8 bytes after the header, 12 present",
    );
}

#[test]
fn length_not_a_multiple_of_four() {
    let mut m = with_attrs(&[(0x8022, b"abcd")]);
    m[3] = 7;
    rejects(&m, &[], "message length 7 is not a multiple of 4");
}

#[test]
fn attribute_length_runs_past_the_end_and_missing_padding() {
    let mut m = with_attrs(&[(0x8022, b"abcd")]);
    m[23] = 5; // 5 bytes need 3 of padding: 8 in all, only 4 present
    let out = rejects(
        &m,
        &[],
        "attribute 0x8022 (SOFTWARE) at offset 20: length 5 runs past the end of the message",
    );
    assert!(out.contains("verdict: malformed"));
}

#[test]
fn bad_attribute_lengths_name_the_attribute_and_its_offset() {
    let m = with_attrs(&[(0x0020, b"")]);
    rejects(
        &m,
        &[],
        "attribute 0x0020 (XOR-MAPPED-ADDRESS) at offset 20: length 0, XOR-MAPPED-ADDRESS needs 8 or 20",
    );
    let m = with_attrs(&[(0x0024, &[1, 2, 3])]);
    rejects(
        &m,
        &[],
        "attribute 0x0024 (PRIORITY) at offset 20: length 3, PRIORITY needs 4",
    );
    let m = with_attrs(&[(0x0008, &[0; 16])]);
    rejects(
        &m,
        &[],
        "attribute 0x0008 (MESSAGE-INTEGRITY) at offset 20: length 16, MESSAGE-INTEGRITY needs 20",
    );
}

#[test]
fn the_first_of_several_broken_attributes_is_the_error() {
    let m = with_attrs(&[(0x8022, b"ok"), (0x0024, &[1]), (0x0020, b"")]);
    let out = rejects(
        &m,
        &[],
        "attribute 0x0024 (PRIORITY) at offset 28: length 1, PRIORITY needs 4",
    );
    assert!(out.contains("  also: attribute 0x0020 (XOR-MAPPED-ADDRESS) at offset 36"));
}

#[test]
fn bad_address_families() {
    let m = with_attrs(&[(0x0020, &[0, 3, 0, 1, 1, 2, 3, 4])]);
    rejects(
        &m,
        &[],
        "attribute 0x0020 (XOR-MAPPED-ADDRESS) at offset 20: unknown address family 0x03",
    );
    // IPv4 with an IPv6 length.
    let mut v = vec![0, 1, 0, 1];
    v.extend_from_slice(&[0; 16]);
    let m = with_attrs(&[(0x0001, &v)]);
    rejects(
        &m,
        &[],
        "attribute 0x0001 (MAPPED-ADDRESS) at offset 20: length 20, MAPPED-ADDRESS needs 8 for IPv4",
    );
    let m = with_attrs(&[(0x0017, &[7, 0, 0, 0])]);
    rejects(
        &m,
        &[],
        "attribute 0x0017 (REQUESTED-ADDRESS-FAMILY) at offset 20: unknown address family 0x07",
    );
}

#[test]
fn oversized_and_non_utf8_text_attributes() {
    let long = vec![b'a'; 514];
    rejects(
        &with_attrs(&[(0x0006, &long)]),
        &[],
        "attribute 0x0006 (USERNAME) at offset 20: length 514, USERNAME needs at most 513",
    );
    let long = vec![b'r'; 764];
    rejects(
        &with_attrs(&[(0x0014, &long)]),
        &[],
        "attribute 0x0014 (REALM) at offset 20: length 764, REALM needs at most 763",
    );
    rejects(
        &with_attrs(&[(0x8022, &[0xff, 0xfe])]),
        &[],
        "attribute 0x8022 (SOFTWARE) at offset 20: value is not UTF-8",
    );
}

#[test]
fn text_attributes_over_the_rfc_8489_send_limits_are_violations_with_their_offset() {
    // What floe-stun's parser accepts (for RFC 5389 peers) but `validate` refuses.
    let at_limit = "u".repeat(508);
    let (status, out, _) = decode_hex(&to_hex(&with_attrs(&[(0x0006, at_limit.as_bytes())])), &[]);
    assert_eq!(status, 0, "{out}");
    let over = "u".repeat(509);
    let out = rejects(
        &with_attrs(&[(0x8022, b"ok"), (0x0006, over.as_bytes())]),
        &[],
        "attribute 0x0006 (USERNAME) at offset 28: USERNAME must be fewer than 509 bytes (RFC 8489 §14.3); this one has 509 characters in 509 bytes",
    );
    assert!(out.contains("verdict: malformed"), "{out}");

    // REALM, NONCE, SOFTWARE: fewer than 128 characters, counted as characters.
    let fine = "é".repeat(127);
    let long = "é".repeat(128);
    for (typ, name, section) in [
        (0x0014, "REALM", "§14.9"),
        (0x0015, "NONCE", "§14.10"),
        (0x8022, "SOFTWARE", "§14.14"),
    ] {
        let (status, out, _) = decode_hex(&to_hex(&with_attrs(&[(typ, fine.as_bytes())])), &[]);
        assert_eq!(status, 0, "{out}");
        rejects(
            &with_attrs(&[(typ, long.as_bytes())]),
            &[],
            &format!(
                "attribute {typ:#06x} ({name}) at offset 20: {name} must be fewer than 128 characters (RFC 8489 {section}); this one has 128 characters in 256 bytes"
            ),
        );
    }

    // The ERROR-CODE reason phrase (RFC 8489 §14.8), in an error response.
    let mut value = vec![0, 0, 4, 0];
    value.extend_from_slice("x".repeat(128).as_bytes());
    let mut buf = vec![0u8; 512];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(floe_stun::Method::BINDING, floe_stun::Class::Error),
        TID,
    )
    .unwrap();
    b.add_raw(AttrType(0x0009), &value).unwrap();
    let m = b.finish().to_vec();
    rejects(
        &m,
        &[],
        "attribute 0x0009 (ERROR-CODE) at offset 20: reason phrase must be fewer than 128 characters (RFC 8489 §14.8); this one has 128 characters in 128 bytes",
    );

    // In JSON the problem carries the attribute's offset.
    let (_, out, _) = decode_hex(
        &to_hex(&with_attrs(&[(0x8022, b"ok"), (0x0006, over.as_bytes())])),
        &["--json"],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["problems"][0]["check"], "attribute");
    assert_eq!(v["problems"][0]["offset"], 28);
    assert_eq!(v["verdict"], "malformed");
}

#[test]
fn error_code_out_of_range() {
    // Class 7 is outside 3..=6 (RFC 8489 §14.8).
    let out = rejects(
        &with_attrs(&[(0x0009, &[0, 0, 7, 0, b'x'])]),
        &[],
        "attribute 0x0009 (ERROR-CODE) at offset 20: invalid value",
    );
    assert!(out.contains("verdict: malformed"));
}

#[test]
fn attribute_after_fingerprint() {
    rejects(
        &with_attrs(&[(0x8028, &[0; 4]), (0x8022, b"late")]),
        &[],
        "attribute 0x8022 (SOFTWARE) at offset 28 follows FINGERPRINT, which must be last",
    );
}

#[test]
fn attributes_after_message_integrity_are_ignored_and_reported() {
    let key = IntegrityKey::short_term("pw").unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TID).unwrap();
    b.add_raw(AttrType(0x8022), b"ok").unwrap();
    b.add_message_integrity(&key).unwrap();
    let mut m = b.finish().to_vec();
    // Append SOFTWARE after MESSAGE-INTEGRITY by hand (the builder refuses to).
    m.extend_from_slice(&[0x80, 0x22, 0, 4, b'l', b'a', b't', b'e']);
    let len = (m.len() - 20) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    let out = rejects(
        &m,
        &["--password", "pw"],
        "attribute 0x8022 (SOFTWARE) at offset 52 follows MESSAGE-INTEGRITY and is ignored (RFC 8489 §14.5)",
    );
    assert!(out.contains("[ignored: after MESSAGE-INTEGRITY]"), "{out}");
    // MESSAGE-INTEGRITY itself still verifies: it covers what came before it.
    assert!(out.contains("MESSAGE-INTEGRITY ok"), "{out}");
    // MESSAGE-INTEGRITY after MESSAGE-INTEGRITY-SHA256 is ignored too (RFC 8489 §14.6).
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TID).unwrap();
    b.add_message_integrity_sha256(&key).unwrap();
    let mut m = b.finish().to_vec();
    m.extend_from_slice(&[0, 8, 0, 20]);
    m.extend_from_slice(&[0; 20]);
    let len = (m.len() - 20) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    rejects(
        &m,
        &[],
        "attribute 0x0008 (MESSAGE-INTEGRITY) at offset 56 follows MESSAGE-INTEGRITY and is ignored",
    );
}

/// A message of `typ` with raw attributes (type, value).
fn message(typ: MessageType, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut b = MessageBuilder::new(&mut buf, typ, TID).unwrap();
    for (t, v) in attrs {
        b.add_raw(AttrType(*t), v).unwrap();
    }
    b.finish().to_vec()
}

/// Decodes `bytes` and expects exit status 0, verdict ok, and these notes.
fn notes(bytes: &[u8], want: &[&str]) -> String {
    let (status, out, err) = decode_hex(&to_hex(bytes), &[]);
    assert_eq!(status, 0, "{out}{err}");
    assert!(out.contains("verdict: ok"), "{out}");
    let got: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("  note: "))
        .collect();
    assert_eq!(got, want, "{out}");
    out
}

#[test]
fn repeated_attributes_are_notes_as_rfc_8489_section_14_allows_them() {
    // RFC 8489 §14: only the first counts. A note, status 0.
    let out = notes(
        &with_attrs(&[(0x0024, &[0, 0, 0, 1]), (0x8022, b"x"), (0x0024, &[0, 0, 0, 2])]),
        &["attribute 0x0024 (PRIORITY) at offset 36 repeats the one at offset 20 with a different value: only the first counts, receivers may ignore this one (RFC 8489 §14)"],
    );
    assert!(!out.contains("error:"), "{out}");
    // RFC 8445 says nothing about repeating its attributes: notes too.
    let tie = [1, 2, 3, 4, 5, 6, 7, 8];
    notes(
        &with_attrs(&[(0x802a, &tie), (0x0025, b""), (0x802a, &tie), (0x0025, b"")]),
        &[
            "attribute 0x802a (ICE-CONTROLLING) at offset 36 repeats the one at offset 20 with the same value: only the first counts, receivers may ignore this one (RFC 8489 §14)",
            "attribute 0x0025 (USE-CANDIDATE) at offset 48 repeats the one at offset 32 with the same value: only the first counts, receivers may ignore this one (RFC 8489 §14)",
        ],
    );
    // In JSON: under "notes", with the offset; "problems" stays empty.
    let (status, out, _) = decode_hex(
        &to_hex(&with_attrs(&[
            (0x0024, &[0, 0, 0, 1]),
            (0x0024, &[0, 0, 0, 1]),
        ])),
        &["--json"],
    );
    assert_eq!(status, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["verdict"], "ok");
    assert_eq!(v["problems"], serde_json::json!([]));
    assert_eq!(v["notes"][0]["check"], "duplicate");
    assert_eq!(v["notes"][0]["offset"], 28);
}

#[test]
fn repeats_a_definition_asks_for_are_not_even_notes() {
    let peer = [0, 1, 0x21, 0x13, 0x21, 0x12, 0xa4, 0x43];
    let peer2 = [0, 1, 0x21, 0x13, 0x21, 0x12, 0xa4, 0x44];
    // RFC 8656 §10.1-10.2: several XOR-PEER-ADDRESS in a CreatePermission request.
    let create_permission = MessageType::new(
        floe_stun::Method::CREATE_PERMISSION,
        floe_stun::Class::Request,
    );
    notes(
        &message(create_permission, &[(0x0012, &peer), (0x0012, &peer2)]),
        &[],
    );
    // Elsewhere (here a Send indication) the general rule applies.
    let send = MessageType::new(floe_stun::Method::SEND, floe_stun::Class::Indication);
    notes(
        &message(send, &[(0x0012, &peer), (0x0012, &peer2)]),
        &["attribute 0x0012 (XOR-PEER-ADDRESS) at offset 32 repeats the one at offset 20 with a different value: only the first counts, receivers may ignore this one (RFC 8489 §14)"],
    );
    // RFC 8656 §7.2: a dual allocation answers with one IPv4 and one IPv6
    // XOR-RELAYED-ADDRESS; a second of the same family, or a third, is a note.
    let v4 = [0, 1, 0x21, 0x13, 0x21, 0x12, 0xa4, 0x43];
    let mut v6 = vec![0, 2, 0x21, 0x13];
    v6.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    v6.extend_from_slice(&[3; 12]);
    let allocated = MessageType::new(floe_stun::Method::ALLOCATE, floe_stun::Class::Success);
    notes(&message(allocated, &[(0x0016, &v4), (0x0016, &v6)]), &[]);
    notes(
        &message(allocated, &[(0x0016, &v4), (0x0016, &v4)]),
        &["attribute 0x0016 (XOR-RELAYED-ADDRESS) at offset 32 repeats the one at offset 20 with the same value: only the first counts, receivers may ignore this one (RFC 8489 §14)"],
    );
    notes(
        &message(allocated, &[(0x0016, &v4), (0x0016, &v6), (0x0016, &v6)]),
        &["attribute 0x0016 (XOR-RELAYED-ADDRESS) at offset 56 repeats the one at offset 20 with a different value: only the first counts, receivers may ignore this one (RFC 8489 §14)"],
    );
}

#[test]
fn repeats_a_specification_forbids_stay_violations() {
    // A second FINGERPRINT follows the first, which must be last (RFC 8489 §14.7).
    rejects(
        &with_attrs(&[(0x8028, &[0; 4]), (0x8028, &[0; 4])]),
        &[],
        "attribute 0x8028 (FINGERPRINT) at offset 28 follows FINGERPRINT, which must be last",
    );
    // A second MESSAGE-INTEGRITY follows the first and is ignored (RFC 8489 §14.5).
    let out = rejects(
        &with_attrs(&[(0x0008, &[0; 20]), (0x0008, &[0; 20])]),
        &[],
        "attribute 0x0008 (MESSAGE-INTEGRITY) at offset 44 follows MESSAGE-INTEGRITY and is ignored (RFC 8489 §14.5)",
    );
    assert!(!out.contains("note:"), "{out}");
    // The same for MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).
    rejects(
        &with_attrs(&[(0x001c, &[0; 32]), (0x001c, &[0; 32])]),
        &[],
        "attribute 0x001c (MESSAGE-INTEGRITY-SHA256) at offset 56 follows MESSAGE-INTEGRITY and is ignored",
    );
}

#[test]
fn unknown_comprehension_required_attributes_are_reported_and_optional_ones_are_not() {
    rejects(
        &with_attrs(&[(0x7777, b"??")]),
        &[],
        "attribute 0x7777 at offset 20 is comprehension-required (below 0x8000) and unknown",
    );
    let (status, out, _) = decode_hex(&to_hex(&with_attrs(&[(0xc0de, b"ok")])), &[]);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("@20   unknown (0xc0de), 2 bytes: 0x6f6b"),
        "{out}"
    );
}

#[test]
fn classic_stun_and_bad_top_bits() {
    let mut m = with_attrs(&[]);
    m[4..8].copy_from_slice(&[1, 2, 3, 4]);
    rejects(
        &m,
        &[],
        "magic cookie 0x01020304 is not 0x2112a442: a classic RFC 3489 message, not supported",
    );
}

/// A header of type `typ` with `body`, and FINGERPRINT when asked.
fn typed(typ: u16, body: &[u8], fingerprint: bool) -> Vec<u8> {
    let mut m = typ.to_be_bytes().to_vec();
    let len = body.len() + if fingerprint { 8 } else { 0 };
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.extend_from_slice(&floe_stun::MAGIC_COOKIE.to_be_bytes());
    m.extend_from_slice(&TID.0);
    m.extend_from_slice(body);
    if fingerprint {
        let crc = floe_stun::fingerprint::compute(&m);
        m.extend_from_slice(&[0x80, 0x28, 0, 4]);
        m.extend_from_slice(&crc.to_be_bytes());
    }
    m
}

#[test]
fn a_method_above_0x0ff_is_stun_with_a_violation_not_dtls() {
    // Method 0xfff, request: type 0x3eef, first byte 0x3e (RFC 7983's DTLS range).
    let m = MessageType::new(
        floe_stun::Method::new(0xFFF).unwrap(),
        floe_stun::Class::Request,
    );
    assert_eq!(m.to_u16(), 0x3EEF);
    let software = [0x80, 0x22, 0, 2, b'o', b'k', 0, 0];
    for fingerprint in [false, true] {
        let out = rejects(
            &typed(0x3EEF, &software, fingerprint),
            &[],
            "method 0xfff is outside 0x000-0x0ff, the range of STUN methods (RFC 8489 §18.2; RFC 7983 §9.1 reserves 0x100-0xfff), so its first byte 0x3e is in the RFC 7983 range DTLS (first byte 20-63): a receiver that demultiplexes by RFC 7983 does not take it for STUN",
        );
        assert!(
            out.contains("message 1: STUN 0xfff request (type 0x3eef, length"),
            "{out}"
        );
        assert!(
            out.contains("@20   SOFTWARE (0x8022), 2 bytes: \"ok\""),
            "{out}"
        );
        assert!(out.contains("verdict: malformed"), "{out}");
    }
    let (_, out, _) = decode_hex(&to_hex(&typed(0x3EEF, &software, true)), &["--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["kind"], "stun");
    assert_eq!(v["demux"], "DTLS (first byte 20-63)");
    assert_eq!(v["problems"][0]["check"], "method");
    assert_eq!(v["problems"][0]["offset"], 0);
    assert_eq!(v["stun"]["fingerprint"], "ok");

    // A wrong FINGERPRINT, a length that does not match, or no cookie: not STUN.
    let mut bad = typed(0x3EEF, &software, true);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let mut short = typed(0x3EEF, &software, false);
    short.truncate(short.len() - 4);
    let mut classic = typed(0x3EEF, &software, false);
    classic[4] = 0;
    for m in [bad, short, classic] {
        let (status, out, _) = decode_hex(&to_hex(&m), &[]);
        assert_eq!(status, 1, "{out}");
        assert!(
            out.contains("error: not STUN/TURN: first byte 0x3e is in the RFC 7983 range DTLS"),
            "{out}"
        );
    }
}

#[test]
fn top_bits_set_are_a_violation_at_offset_0() {
    let software = [0x80, 0x22, 0, 2, b'o', b'k', 0, 0];
    let out = rejects(
        &typed(0xC001, &software, true),
        &[],
        "message type 0xc001: the two most significant bits must be zero (RFC 8489 §5); its first byte 0xc0 is in the RFC 7983 range QUIC (first byte 80-127 or 192-255)",
    );
    // The fields are still shown.
    assert!(
        out.contains("message 1: STUN Binding request (type 0xc001"),
        "{out}"
    );
    assert!(
        out.contains("@20   SOFTWARE (0x8022), 2 bytes: \"ok\""),
        "{out}"
    );
    let (_, out, _) = decode_hex(&to_hex(&typed(0x4001, &[], false)), &["--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["kind"], "stun");
    assert_eq!(v["problems"][0]["check"], "structure");
    assert_eq!(v["problems"][0]["offset"], 0);
}

#[test]
fn an_unassigned_method_in_range_is_a_note() {
    // Method 0x0ff, request: type 0x02ef, first byte 0x02.
    let (status, out, _) = decode_hex(&to_hex(&typed(0x02EF, &[], true)), &[]);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("message 1: STUN 0x0ff request (type 0x02ef"),
        "{out}"
    );
    assert!(
        out.contains("note: method 0x0ff is not one floe knows (Binding of RFC 8489, the TURN methods of RFC 8656 and RFC 6062); it is within the STUN range 0x000-0x0ff (RFC 8489 §18.2)"),
        "{out}"
    );
    assert!(out.contains("verdict: ok"), "{out}");
    // SharedSecret's old number.
    let (status, out, _) = decode_hex(&to_hex(&typed(0x0002, &[], false)), &[]);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("note: method 0x002 is reserved; it was SharedSecret before RFC 5389"),
        "{out}"
    );
}

#[test]
fn fingerprint_mismatch_is_its_own_check() {
    let mut buf = [0u8; 128];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TID).unwrap();
    b.add_raw(AttrType(0x8022), b"abcd").unwrap();
    b.add_fingerprint().unwrap();
    let mut m = b.finish().to_vec();
    m[24] ^= 0x20;
    let out = rejects(&m, &[], "FINGERPRINT does not match (expected");
    assert!(out.contains("FINGERPRINT FAILED"), "{out}");
}

#[test]
fn requests_without_integrity_fail_when_credentials_are_given() {
    let m = with_attrs(&[(0x8022, b"abcd")]);
    let (status, out, _) = decode_hex(&to_hex(&m), &["--password", "pw"]);
    assert_eq!(status, 1);
    assert!(out.contains(
        "error: credentials were given but this request has no MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256"
    ));
    // Without credentials the same message is fine.
    assert_eq!(decode_hex(&to_hex(&m), &[]).0, 0);
}

#[test]
fn channel_data_rules() {
    rejects(
        &[0x40, 0x01, 0x00, 0x08, 1, 2],
        &[],
        "ChannelData: truncated: need 12 bytes, have 6",
    );
    rejects(
        &[0x40, 0x01, 0x00, 0x01, 9, 0, 0, 0, 0],
        &[],
        "ChannelData: ChannelData of length 1 is followed by 4 bytes; at most 3 bytes of padding are allowed",
    );
    let (status, out, _) = decode_hex("4fff 0003 616263 00", &[]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("channel 0x4fff, length 3, padding 1"), "{out}");
}

#[test]
fn other_protocols_are_named_by_their_rfc_7983_range() {
    for (first, range) in [
        ("16", "DTLS (first byte 20-63)"),
        ("80", "RTP/RTCP (first byte 128-191)"),
        ("11", "ZRTP (first byte 16-19)"),
        ("c0", "QUIC (first byte 80-127 or 192-255)"),
        ("05", "unassigned (first byte 4-15, or empty)"),
    ] {
        let (status, out, _) = decode_hex(&format!("{first}fefd0000"), &[]);
        assert_eq!(status, 1, "{out}");
        assert!(
            out.contains(&format!("is in the RFC 7983 range {range}")),
            "{out}"
        );
        assert!(out.contains("verdict: not STUN/TURN"), "{out}");
    }

    // An RFC 5766 channel number above 0x4fff is named as such.
    let (status, out, _) = decode_hex("5001 0002 6869", &[]);
    assert_eq!(status, 1);
    assert!(
        out.contains("it would be ChannelData on channel 0x5001 under RFC 5766"),
        "{out}"
    );
}

/// RFC 8656 §11.5: a Data indication that carries an ICMP error (XOR-PEER-ADDRESS and
/// ICMP, no DATA) is shown with the peer and the ICMP type, code and data, and is valid.
#[test]
fn a_data_indication_carrying_icmp_is_shown_and_valid() {
    use floe_stun::attributes::{Icmp, XorPeerAddress};
    use floe_stun::{Class, Method};
    let mut buf = vec![0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::new(Method::DATA, Class::Indication),
        TID,
    )
    .unwrap();
    b.add(&XorPeerAddress("192.0.2.50:0".parse().unwrap()))
        .unwrap();
    b.add(&Icmp {
        icmp_type: 3,
        code: 3,
        error_data: 0,
    })
    .unwrap();
    let bytes = b.finish().to_vec();
    let (status, out, err) = decode_hex(&to_hex(&bytes), &[]);
    assert_eq!(status, 0, "{out}{err}");
    assert!(out.contains("STUN Data indication"), "{out}");
    assert!(
        out.contains("XOR-PEER-ADDRESS (0x0012), 8 bytes: 192.0.2.50:0"),
        "{out}"
    );
    assert!(
        out.contains("ICMP (0x8004), 8 bytes: type 3 code 3 data 0x00000000"),
        "{out}"
    );
    assert!(out.contains("verdict: ok"), "{out}");
}
