//! `floe decode --pcap` on arbitrary bytes: the pcap/pcapng reader, the link/IP/UDP/TCP
//! parsers, TCP framing and both renderers must never panic, and memory stays bounded.
#![no_main]

use floe_cli::decode::{pcap::CaptureReader, run, DecodeArgs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The reader alone: every frame within the limit.
    if let Ok(mut r) = CaptureReader::new(data) {
        while let Ok(Some(frame)) = r.next_frame() {
            assert!(frame.data.len() <= floe_cli::decode::pcap::MAX_BLOCK_LEN);
            let _ = floe_cli::decode::net::parse_frame(frame.link_type, &frame.data);
        }
    }
    // The whole command, text and JSON, with credentials so integrity is computed.
    for json in [false, true] {
        let args = DecodeArgs {
            pcap: Some("-".into()),
            password: Some("pw".to_owned()),
            json,
            ..DecodeArgs::default()
        };
        let status = run(&args, &mut &data[..], &mut std::io::sink(), &mut std::io::sink());
        assert!(status <= 2);
    }
});
