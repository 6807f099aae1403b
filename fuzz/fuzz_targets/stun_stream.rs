//! The stream decoders cut the same frames however the stream is split. The input is
//! fed once whole and once in chunks whose sizes come from the input; for both framings
//! the two runs must yield the same frames (kind and bytes), in the same order, then the
//! same end: the same error, or the same bytes left over. The buffer stays bounded and
//! every STUN frame goes to the parser.
//!
//! Input: a count n, n chunk sizes (0 means "all the rest"; none means one byte at a
//! time, used cyclically), then the stream.
#![no_main]

use floe_stun::framing::{FrameKind, Framing, StreamDecoder};
use floe_stun::Error;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum Event {
    Frame(FrameKind, Vec<u8>),
    Error(Error),
    End { buffered: usize },
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (sizes, stream) = rest.split_at(usize::from(n).min(rest.len()));
    // Fed whole, a stream longer than the bound is refused at once; chunked it might not
    // be, and then there is nothing to compare.
    if stream.len() > StreamDecoder::MAX_BUFFERED {
        return;
    }
    for framing in [Framing::StunTurn, Framing::Rfc4571] {
        let whole = decode(framing, &[stream]);
        let chunked = decode(framing, &chunks(stream, sizes));
        assert_eq!(whole, chunked, "{framing:?}, chunk sizes {sizes:?}");
    }
});

/// `stream` cut at sizes taken from `sizes` in turn (0: the rest; no sizes: 1 each).
fn chunks<'a>(mut stream: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut sizes = sizes.iter().cycle();
    while !stream.is_empty() {
        let size = match sizes.next() {
            None => 1,
            Some(0) => stream.len(),
            Some(&s) => usize::from(s),
        };
        let (chunk, rest) = stream.split_at(size.min(stream.len()));
        out.push(chunk);
        stream = rest;
    }
    out
}

fn decode(framing: Framing, chunks: &[&[u8]]) -> Vec<Event> {
    let mut d = StreamDecoder::new(framing);
    let mut events = Vec::new();
    for chunk in chunks {
        d.extend(chunk)
            .expect("the whole stream fits, so every chunk does");
        assert!(d.buffered() <= StreamDecoder::MAX_BUFFERED);
        loop {
            match d.next_frame() {
                Ok(Some((kind, frame))) => {
                    if kind == FrameKind::Stun {
                        let _ = floe_stun::Message::parse(frame);
                    }
                    events.push(Event::Frame(kind, frame.to_vec()));
                }
                Ok(None) => break,
                Err(e) => {
                    // The stream is corrupt and would be closed: nothing after counts.
                    events.push(Event::Error(e));
                    return events;
                }
            }
        }
    }
    events.push(Event::End {
        buffered: d.buffered(),
    });
    events
}
