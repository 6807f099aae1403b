//! floe-inspect's capture path (`floe decode --pcap`) on arbitrary bytes: the pcap/pcapng reader, the link/IP/UDP/TCP
//! parsers, TCP framing and both renderers never panic and memory stays bounded; every
//! UDP payload is judged with the properties of `common/decode.rs` (deterministic,
//! consistent, clean means floe-stun accepts it, JSON parses); and the whole command gives
//! the same output twice, with JSON lines that parse.
#![no_main]

use floe_inspect::pcap::CaptureReader;
use libfuzzer_sys::fuzz_target;

#[path = "common/decode.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    // The reader alone: every frame within the limit.
    if let Ok(mut r) = CaptureReader::new(data) {
        let mut judged = 0;
        while let Ok(Some(frame)) = r.next_frame() {
            assert!(frame.data.len() <= floe_inspect::pcap::MAX_BLOCK_LEN);
            if let Ok(segment) = floe_inspect::net::parse_frame(frame.link_type, &frame.data) {
                if judged < 8 {
                    judged += 1;
                    common::check_message(segment.payload);
                }
            }
        }
    }
    // The whole command, text and JSON, with credentials so integrity is computed.
    for json in [false, true] {
        common::check_run(common::Source::Capture(data), Some("pw"), json);
    }
});
