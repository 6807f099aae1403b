//! RFC 8839 candidate lines: arbitrary bytes (read as UTF-8, lossily) never panic the
//! parser, and whatever parses is written back to a line that parses to an equal
//! candidate.
#![no_main]

use floe_ice::sdp::{is_end_of_candidates, MAX_LINE_LEN};
use floe_ice::Candidate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = is_end_of_candidates(&line);
    if let Ok(candidate) = Candidate::parse(&line) {
        let written = candidate.to_string();
        assert!(written.len() <= MAX_LINE_LEN, "{written:?}");
        assert_eq!(
            Candidate::parse(&written).as_ref(),
            Ok(&candidate),
            "{line:?} -> {written:?}"
        );
    }
});
