//! RFC 5769 test vectors through `floe decode`: the RFC's values, verified with its
//! passwords; any flipped bit fails a named check.

mod common;

use common::*;
use floe_inspect::{analyze, Credentials, Verdict};

#[test]
fn vector_2_1_request_decodes_with_the_rfc_values_and_verifies() {
    let (status, out, err) = decode_hex(REQUEST_2_1, &["--password", PASSWORD]);
    assert_eq!(status, 0, "{out}{err}");
    for want in [
        "message 1: STUN Binding request (type 0x0001, length 88, 108 bytes)",
        "transaction id b7e7a701bc34d686fa87dfae",
        "@20   SOFTWARE (0x8022), 16 bytes: \"STUN test client\"",
        "@40   PRIORITY (0x0024), 4 bytes: 1845494271",
        "@48   ICE-CONTROLLED (0x8029), 8 bytes: tie-breaker 0x932ff9b151263b36",
        "@60   USERNAME (0x0006), 9 bytes: \"evtj:h6vY\"",
        "@76   MESSAGE-INTEGRITY (0x0008), 20 bytes: 9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2",
        "@100  FINGERPRINT (0x8028), 4 bytes: 0xe57a3bcf",
        "FINGERPRINT ok, MESSAGE-INTEGRITY ok, MESSAGE-INTEGRITY-SHA256 absent (short-term credentials)",
        "verdict: ok",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

#[test]
fn vector_2_2_ipv4_response_decodes_with_the_rfc_values_and_verifies() {
    let (status, out, _) = decode_hex(RESPONSE_2_2, &["--password", PASSWORD]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("STUN Binding success response (type 0x0101, length 60, 80 bytes)"));
    assert!(out.contains("SOFTWARE (0x8022), 11 bytes: \"test vector\""));
    assert!(out.contains("XOR-MAPPED-ADDRESS (0x0020), 8 bytes: 192.0.2.1:32853"));
    assert!(out.contains("FINGERPRINT ok, MESSAGE-INTEGRITY ok"));
}

#[test]
fn vector_2_3_ipv6_response_decodes_with_the_rfc_values_and_verifies() {
    let (status, out, _) = decode_hex(RESPONSE_2_3, &["--password", PASSWORD, "--json"]);
    assert_eq!(status, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["verdict"], "ok");
    assert_eq!(v["stun"]["method"], "Binding");
    assert_eq!(v["stun"]["class"], "success response");
    let xma = &v["stun"]["attributes"][1];
    assert_eq!(xma["name"], "XOR-MAPPED-ADDRESS");
    assert_eq!(xma["offset"], 36);
    assert_eq!(xma["value"]["family"], "IPv6");
    assert_eq!(
        xma["value"]["address"],
        "2001:db8:1234:5678:11:2233:4455:6677"
    );
    assert_eq!(xma["value"]["port"], 32853);
    assert_eq!(v["stun"]["fingerprint"], "ok");
    assert_eq!(v["stun"]["message_integrity"], "ok");
}

#[test]
fn vector_2_4_long_term_request_decodes_and_verifies() {
    let creds = long_term_2_4();
    let (status, out, _) = decode_hex(REQUEST_2_4, &["--long-term", &creds]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains(&format!("USERNAME (0x0006), 18 bytes: \"{USERNAME_2_4}\"")));
    assert!(out.contains("NONCE (0x0015), 28 bytes: \"f//499k954d6OL34oL9FSTvy64sA\""));
    assert!(out.contains("REALM (0x0014), 11 bytes: \"example.org\""));
    assert!(out.contains(
        "FINGERPRINT absent, MESSAGE-INTEGRITY ok, MESSAGE-INTEGRITY-SHA256 absent (long-term credentials)"
    ));
    // The wrong password fails, naming the check.
    let wrong = format!("{USERNAME_2_4}:example.org:TheMatrix");
    let (status, out, _) = decode_hex(REQUEST_2_4, &["--long-term", &wrong]);
    assert_eq!(status, 1);
    assert!(
        out.contains("error: MESSAGE-INTEGRITY does not match"),
        "{out}"
    );
    assert!(out.contains("verdict: integrity check failed"), "{out}");
}

#[test]
fn without_credentials_integrity_is_not_checked_and_that_is_not_a_failure() {
    let (status, out, _) = decode_hex(RESPONSE_2_2, &[]);
    assert_eq!(status, 0);
    assert!(
        out.contains("FINGERPRINT ok, MESSAGE-INTEGRITY not checked"),
        "{out}"
    );
}

#[test]
fn a_flipped_bit_in_each_vector_fails_with_the_check_named() {
    // A bit of the SOFTWARE value (2.1-2.3) or of the NONCE (2.4).
    let cases = [
        (REQUEST_2_1, 25, "FINGERPRINT does not match"),
        (RESPONSE_2_2, 25, "FINGERPRINT does not match"),
        (RESPONSE_2_3, 25, "FINGERPRINT does not match"),
        (REQUEST_2_4, 50, "MESSAGE-INTEGRITY does not match"),
    ];
    for (vector, byte, check) in cases {
        let mut bytes = from_hex(vector);
        bytes[byte] ^= 0x01;
        let hex = to_hex(&bytes);
        let creds = long_term_2_4();
        let extra: &[&str] = if vector == REQUEST_2_4 {
            &["--long-term", &creds]
        } else {
            &["--password", PASSWORD]
        };
        let (status, out, _) = decode_hex(&hex, extra);
        assert_eq!(status, 1, "{out}");
        assert!(out.contains(&format!("error: {check}")), "{check}: {out}");
        // MESSAGE-INTEGRITY fails too, and is reported after FINGERPRINT.
        assert!(out.contains("MESSAGE-INTEGRITY does not match"), "{out}");
    }
    // A bit of the MESSAGE-INTEGRITY value itself: FINGERPRINT still catches it first.
    let mut bytes = from_hex(RESPONSE_2_2);
    bytes[60] ^= 0x80;
    let (status, out, _) = decode_hex(&to_hex(&bytes), &["--password", PASSWORD, "--json"]);
    assert_eq!(status, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["problems"][0]["check"], "fingerprint");
    assert_eq!(v["problems"][0]["offset"], 72);
    assert_eq!(v["problems"][1]["check"], "message_integrity");
    assert_eq!(v["problems"][1]["offset"], 48);
    assert_eq!(v["stun"]["message_integrity"], "failed");
}

#[test]
fn every_single_bit_flip_of_every_vector_is_caught() {
    let short = Credentials::ShortTerm(PASSWORD.to_owned());
    let long = Credentials::parse_long_term(&long_term_2_4()).unwrap();
    let known = [
        "structure",
        "method",
        "fingerprint",
        "attribute",
        "unknown_attribute",
        "placement",
        "message_integrity",
        "message_integrity_sha256",
        "demux",
        "channel_data",
    ];
    for (vector, creds) in [
        (REQUEST_2_1, &short),
        (RESPONSE_2_2, &short),
        (RESPONSE_2_3, &short),
        (REQUEST_2_4, &long),
    ] {
        let bytes = from_hex(vector);
        assert_eq!(analyze(&bytes, Some(creds)).verdict, Verdict::Ok);
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let r = analyze(&b, Some(creds));
            assert_ne!(r.verdict, Verdict::Ok, "bit {bit} of\n{vector}");
            let first = &r.problems[0];
            assert!(known.contains(&first.check), "{first:?}");
            assert_eq!(r.error.as_deref(), Some(first.message.as_str()));
        }
    }
}
