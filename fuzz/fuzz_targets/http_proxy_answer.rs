//! An HTTP proxy's answer to CONNECT (floe-peer's TURN-through-proxy path): whatever the
//! bytes, no panic, and success exactly when the first line is `HTTP/1.0` or `HTTP/1.1`,
//! a space, a 2xx code, and then the end of the line or a space; an error message stays
//! short.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match floe_peer::turn::proxy::answer_status(data) {
        Ok(code) => {
            assert!((200..300).contains(&code));
            assert!(data.starts_with(b"HTTP/1.0 ") || data.starts_with(b"HTTP/1.1 "));
            assert_eq!(data.get(9..12), Some(code.to_string().as_bytes()));
        }
        Err(e) => {
            // The status line, cut at 200 bytes (a U+FFFD is 3 bytes in UTF-8).
            assert!(e.len() <= 600, "{} bytes", e.len());
            let ok_prefix = data.len() >= 12
                && (data.starts_with(b"HTTP/1.0 ") || data.starts_with(b"HTTP/1.1 "))
                && data[9] == b'2'
                && data[10].is_ascii_digit()
                && data[11].is_ascii_digit()
                && matches!(data.get(12), None | Some(b' ' | b'\r'))
                && data.get(..12).is_some_and(|l| !l.contains(&b'\r'));
            assert!(!ok_prefix, "a 2xx status line refused: {e}");
        }
    }
});
