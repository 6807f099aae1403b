//! ChannelData parsing (RFC 8656 §12.4) in both channel ranges; what parses must
//! re-encode to the same bytes (up to padding).
#![no_main]

use floe_turn::{ChannelData, MAX_CHANNEL_RFC5766};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ChannelData::parse(data);
    if let Ok(cd) = ChannelData::parse_in_range(data, MAX_CHANNEL_RFC5766) {
        let mut out = vec![0u8; cd.data.len() + 8];
        let n = ChannelData::encode(cd.channel, cd.data, &mut out, false).expect("re-encode");
        assert_eq!(&out[..n], &data[..4 + cd.data.len()]);
    }
});
