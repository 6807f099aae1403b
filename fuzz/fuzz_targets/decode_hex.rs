//! The hex reader on arbitrary text: chunked streaming gives the same messages as one
//! pass, no message exceeds the limit, and the whole command (stdin auto-detection, raw
//! and hex paths, both renderers) never panics.
#![no_main]

use floe_cli::decode::input::{parse_hex, stream_hex, MAX_MESSAGE_LEN};
use floe_cli::decode::{run, DecodeArgs};
use libfuzzer_sys::fuzz_target;

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
    let Some((&chunk, text)) = data.split_first() else { return };
    let whole = parse_hex(text);
    for m in whole.iter().flatten() {
        assert!(m.len() <= MAX_MESSAGE_LEN);
    }
    let mut streamed = Vec::new();
    let mut r = Chunked { data: text, chunk: usize::from(chunk.max(1)) };
    stream_hex(&mut r, &mut |m| {
        streamed.push(m);
        true
    })
    .unwrap();
    assert_eq!(whole, streamed);

    let args = DecodeArgs { json: chunk & 1 == 1, ..DecodeArgs::default() };
    let status = run(&args, &mut &text[..], &mut std::io::sink(), &mut std::io::sink());
    assert!(status <= 2);
    if let Ok(s) = std::str::from_utf8(text) {
        let args = DecodeArgs::hex(s).with_password("pw");
        let status = run(&args, &mut std::io::empty(), &mut std::io::sink(), &mut std::io::sink());
        assert!(status <= 2);
    }
});
