//! Feed arbitrary bytes, in arbitrary chunks, to the stream decoders: frames must be whole
//! and the buffer bounded.
#![no_main]

use floe_stun::framing::{Framing, StreamDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let chunk = usize::from(chunk.max(1));
    for framing in [Framing::StunTurn, Framing::Rfc4571] {
        let mut d = StreamDecoder::new(framing);
        'stream: for piece in rest.chunks(chunk) {
            if d.extend(piece).is_err() {
                break;
            }
            loop {
                match d.next_frame() {
                    Ok(Some((_, frame))) => {
                        let _ = floe_stun::Message::parse(frame);
                    }
                    Ok(None) => break,
                    Err(_) => break 'stream,
                }
            }
            assert!(d.buffered() <= StreamDecoder::MAX_BUFFERED);
        }
    }
});
