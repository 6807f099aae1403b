//! Parse arbitrary bytes in every mode, walk every attribute, decode each typed value;
//! the parse index (`attribute_types`, `has`, the unknown-attribute check) agrees with a
//! walk of the message.
#![no_main]

use floe_stun::attributes::decode_known;
use floe_stun::{Message, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = floe_stun::demux::classify(data);
    for opts in [
        ParseOptions::default(),
        ParseOptions::strict(),
        ParseOptions::structure_only(),
    ] {
        if let Ok(msg) = Message::parse_with(data, opts) {
            let tid = msg.transaction_id();
            for raw in msg.all_attributes() {
                if let Ok(Some(attr)) = decode_known(&raw, &tid) {
                    // Formatting walks every borrowed value.
                    let _ = format!("{attr:?}");
                }
            }
            // The parse index answers as a walk of the message does.
            let walked: Vec<_> = msg.attributes().map(|a| a.typ).collect();
            assert_eq!(msg.attribute_types().collect::<Vec<_>>(), walked);
            assert!(walked.iter().all(|t| msg.has(*t)));
            assert_eq!(
                msg.has_unknown_comprehension_required(),
                msg.unknown_comprehension_required().next().is_some()
            );
            let _ = msg.check_fingerprint();
        }
    }
});
