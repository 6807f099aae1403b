//! The hex reader on arbitrary text: chunked streaming gives the same messages as one
//! pass and no message exceeds the limit. Every message is then judged with the
//! properties of `common/decode.rs` (deterministic, consistent, clean means floe-stun
//! accepts it, JSON parses), and the whole command (stdin auto-detection, raw and hex
//! paths, both renderers) gives the same output twice, JSON lines that parse.
#![no_main]

use floe_inspect::input::{parse_hex, stream_hex, MAX_MESSAGE_LEN};
use libfuzzer_sys::fuzz_target;

#[path = "common/decode.rs"]
mod common;

/// A reader that hands out at most `chunk` bytes per read.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl std::io::Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.len().min(self.chunk).min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, text)) = data.split_first() else {
        return;
    };
    let whole = parse_hex(text);
    for m in whole.iter().flatten() {
        assert!(m.len() <= MAX_MESSAGE_LEN);
    }
    let mut streamed = Vec::new();
    let mut r = Chunked {
        data: text,
        chunk: usize::from(chunk.max(1)),
    };
    stream_hex(&mut r, &mut |m| {
        streamed.push(m);
        true
    })
    .unwrap();
    assert_eq!(whole, streamed);

    // Each message judged from its hex, and the input itself as one raw message.
    for m in whole.iter().flatten().take(8) {
        common::check_message(m);
    }
    common::check_message(text);

    common::check_run(common::Source::Sniff(text), None, chunk & 1 == 1);
    if let Ok(s) = std::str::from_utf8(text) {
        for json in [false, true] {
            common::check_run(common::Source::Hex(s), Some("pw"), json);
        }
    }
});
