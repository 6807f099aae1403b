//! `floe demo`, the main job: runs without a network, exits 0, shows the chosen path.

use std::process::Command;

const FLOE: &str = env!("CARGO_BIN_EXE_floe");

fn demo(args: &[&str]) -> (i32, String) {
    let out = Command::new(FLOE).arg("demo").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_default_demo_connects_directly_through_two_home_nats() {
    let (code, text) = demo(&[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("3. The chosen path"), "{text}");
    assert!(text.contains("(srflx path, round trip"), "{text}");
    assert!(
        text.contains("alice -> bob: 10/10 datagrams arrived; bob -> alice: 10/10."),
        "{text}"
    );
    // The matrix: relay only where no direct path exists.
    let matrix: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("5. NAT matrix"))
        .skip(2)
        .take(6)
        .collect();
    assert_eq!(matrix.len(), 6, "{text}");
    let relays = matrix
        .iter()
        .map(|l| l.matches("relay").count())
        .sum::<usize>();
    assert_eq!(
        relays,
        3 + 11,
        "symmetric x port-restricted (both ways), symmetric x symmetric, and the UDP-blocked row and column:\n{text}"
    );
    assert!(
        matrix[5].starts_with("   udp-blocked"),
        "the last row is UDP-blocked:\n{text}"
    );
    assert!(!text.contains("failed"), "{text}");
}

#[test]
fn the_hotel_scenario_reaches_the_relay_over_tcp() {
    let (code, text) = demo(&["--scenario", "hotel", "--no-matrix"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("(relay path, round trip"), "{text}");
    assert!(text.contains("reached over TCP"), "{text}");
    assert!(
        text.contains("alice -> bob: 10/10 datagrams arrived; bob -> alice: 10/10."),
        "{text}"
    );
}

#[test]
fn the_symmetric_scenario_falls_back_to_the_relay() {
    let (code, text) = demo(&["--scenario", "symmetric", "--no-matrix"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("(relay path, round trip"), "{text}");
    assert!(text.contains("10/10"), "{text}");
}

#[test]
fn the_multipath_scenario_picks_the_faster_interface() {
    let (code, text) = demo(&["--scenario", "multipath", "--no-matrix"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("192.0.2.11:5000 -> 203.0.113.20:5000  (host path"),
        "{text}"
    );
}

#[test]
fn the_same_seed_gives_the_same_output_and_the_pcap_is_written() {
    let dir = std::env::temp_dir().join(format!("floe-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("demo.pcap");
    let (_, a) = demo(&["--seed", "7", "--no-matrix"]);
    let (code, b) = demo(&[
        "--seed",
        "7",
        "--no-matrix",
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        a.lines().take(20).collect::<Vec<_>>(),
        b.lines().take(20).collect::<Vec<_>>()
    );
    let bytes = std::fs::read(&pcap).unwrap();
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "classic pcap magic");
    // floe decode reads it back: STUN checks and TURN traffic.
    let out = Command::new(FLOE)
        .args(["decode", "--pcap", pcap.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "every STUN/TURN message in a full ICE run decodes"
    );
    assert!(
        text.contains("Binding request"),
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(text.contains("Allocate"), "TURN traffic in the capture");
    let _ = std::fs::remove_dir_all(dir);
}
