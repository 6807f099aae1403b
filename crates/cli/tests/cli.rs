//! The command line: input kinds, stdin auto-detection, exit statuses, JSON keys,
//! bounded input.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn stdin_raw_bytes_hex_text_and_captures_are_told_apart() {
    let raw = from_hex(RESPONSE_2_2);
    let (status, out, _) = floe_with_stdin(&["decode"], &raw);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("192.0.2.1:32853"));

    // Hex text with colons, 0x prefixes, comments; two messages split by a blank line.
    let text = format!(
        "# from a log\n{}\n\n{}\n",
        RESPONSE_2_2.replace(' ', ":"),
        RESPONSE_2_3
            .split_whitespace()
            .map(|b| format!("0x{b}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (status, out, _) = floe_with_stdin(&["decode", "--password", PASSWORD], text.as_bytes());
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("message 1:") && out.contains("message 2:"),
        "{out}"
    );
    assert!(
        out.contains("[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
        "{out}"
    );

    // A capture on stdin, and the same with --pcap - and --file.
    let mut pcap = Vec::new();
    pcap.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    pcap.extend_from_slice(&[
        2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 101, 0, 0, 0,
    ]);
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    let total = (20 + 8 + raw.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0x0d, 0x96, 0x13, 0x88]);
    ip.extend_from_slice(&((8 + raw.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(&raw);
    for v in [1u32, 250_000, ip.len() as u32, ip.len() as u32] {
        pcap.extend_from_slice(&v.to_le_bytes());
    }
    pcap.extend_from_slice(&ip);
    for args in [&["decode"][..], &["decode", "--pcap", "-"][..]] {
        let (status, out, err) = floe_with_stdin(args, &pcap);
        assert_eq!(status, 0, "{out}{err}");
        assert!(
            out.contains("packet 1 1.250000 UDP 10.0.0.1:3478 -> 10.0.0.2:5000"),
            "{out}"
        );
        assert!(out.contains("192.0.2.1:32853"), "{out}");
    }
    let path = std::env::temp_dir().join(format!("floe-cli-test-{}.pcap", std::process::id()));
    std::fs::write(&path, &pcap).unwrap();
    let (status, out, _) = floe(&["decode", "--file", path.to_str().unwrap(), "--json"]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(status, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["packet"]["time"], "1.250000");
    assert_eq!(v["packet"]["transport"], "udp");
}

#[test]
fn usage_errors_exit_with_2() {
    let cases: [(&[&str], &str); 7] = [
        (&["decode"], "no input"),
        (
            &["decode", "--hex", "00 zz"],
            "invalid character 'z' at line 1, column 4",
        ),
        (&["decode", "--hex", "000"], "odd number of hex digits"),
        (
            &["decode", "--hex", "00", "--file", "x"],
            "cannot be used with",
        ),
        (
            &["decode", "--hex", "00", "--long-term", "nocolons"],
            "USER:REALM:PASSWORD",
        ),
        (
            &["decode", "--file", "/nonexistent/floe"],
            "cannot open /nonexistent/floe",
        ),
        (
            &["decode", "--pcap", "/dev/null"],
            "not a pcap or pcapng file",
        ),
    ];
    for (args, want) in cases {
        let (status, out, err) = floe(args);
        assert_eq!(status, 2, "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let (status, _, err) = floe(&["frobnicate"]);
    assert_eq!(status, 2, "{err}");
}

#[test]
fn json_top_level_keys_are_stable() {
    let (_, out, _) = decode_hex(RESPONSE_2_2, &["--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "message",
        "packet",
        "framing",
        "kind",
        "demux",
        "size",
        "verdict",
        "error",
        "problems",
        "notes",
        "stun",
        "channel_data",
    ];
    want.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, want);
    let stun: Vec<&str> = v["stun"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut stun = stun;
    stun.sort_unstable();
    assert_eq!(
        stun,
        [
            "attributes",
            "class",
            "credentials",
            "fingerprint",
            "length",
            "message_integrity",
            "message_integrity_sha256",
            "message_type",
            "method",
            "transaction_id"
        ]
    );
    // The order in the line is the documented one.
    assert!(out.starts_with("{\"message\":1,\"packet\":null,\"framing\":null,\"kind\":\"stun\""));
}

#[test]
fn huge_raw_input_is_refused_without_reading_it_all() {
    let big = vec![0u8; 64 << 20];
    let start = std::time::Instant::now();
    let (status, out, _) = floe_with_stdin(&["decode"], &big);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("input is longer than the largest STUN or ChannelData message"));
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn long_hex_streams_decode_message_by_message() {
    let one = format!("{RESPONSE_2_2}\n\n");
    let text = one.repeat(5000);
    let (status, out, _) = floe_with_stdin(&["decode", "--json"], text.as_bytes());
    assert_eq!(status, 0);
    assert_eq!(out.lines().count(), 5000);
    // A hex message longer than any STUN message is refused, and the next one still
    // decodes.
    let mut text = "00".repeat(70_000);
    text.push_str("\n\n");
    text.push_str(RESPONSE_2_2);
    let (status, out, _) = floe_with_stdin(&["decode"], text.as_bytes());
    assert_eq!(status, 1);
    assert!(out.contains("message longer than 65552 bytes"), "{out}");
    assert!(out.contains("192.0.2.1:32853"), "{out}");
}

#[test]
fn malformed_captures_report_and_fail() {
    // A classic pcap header and a record that claims 1 GiB.
    let mut pcap = Vec::new();
    pcap.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    pcap.extend_from_slice(&[
        2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 101, 0, 0, 0,
    ]);
    pcap.extend_from_slice(&[0; 8]);
    pcap.extend_from_slice(&(1u32 << 30).to_le_bytes());
    pcap.extend_from_slice(&(1u32 << 30).to_le_bytes());
    let (status, _, err) = floe_with_stdin(&["decode", "--pcap", "-"], &pcap);
    assert_eq!(status, 1);
    assert!(
        err.contains("a record has an unacceptable length 1073741824"),
        "{err}"
    );
}

#[test]
fn help_lists_decode() {
    let (status, out, _) = floe(&["--help"]);
    assert_eq!(status, 0);
    assert!(out.contains("decode"));
    let (status, out, _) = floe(&["decode", "--help"]);
    assert_eq!(status, 0);
    assert!(out.contains("--long-term <USER:REALM:PASSWORD>"));
}

#[test]
fn long_term_sha256_keys_follow_password_algorithm() {
    use floe_stun::attributes::{PasswordAlgorithm, Realm, Username};
    use floe_stun::credentials::Algorithm;
    use floe_stun::{IntegrityKey, MessageBuilder, MessageType, TransactionId};
    let key = IntegrityKey::long_term("alice", "example.org", "pw", Algorithm::Sha256).unwrap();
    let mut buf = [0u8; 256];
    let typ = MessageType::new(floe_stun::Method::ALLOCATE, floe_stun::Class::Request);
    let mut b = MessageBuilder::new(&mut buf, typ, TransactionId([5; 12])).unwrap();
    b.add(&Username("alice")).unwrap();
    b.add(&Realm("example.org")).unwrap();
    b.add(&PasswordAlgorithm::SHA256).unwrap();
    b.add_message_integrity_sha256(&key).unwrap();
    let hex = to_hex(b.finish());
    let (status, out, _) = decode_hex(&hex, &["--long-term", "alice:example.org:pw"]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("STUN Allocate request"), "{out}");
    assert!(
        out.contains("PASSWORD-ALGORITHM (0x001d), 4 bytes: SHA-256"),
        "{out}"
    );
    assert!(
        out.contains("MESSAGE-INTEGRITY-SHA256 ok (long-term credentials)"),
        "{out}"
    );
    let (status, out, _) = decode_hex(&hex, &["--long-term", "alice:example.org:nope"]);
    assert_eq!(status, 1);
    assert!(
        out.contains("error: MESSAGE-INTEGRITY-SHA256 does not match"),
        "{out}"
    );
}
