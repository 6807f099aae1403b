//! Judges STUN/TURN messages given as hex text and prints them the way `floe decode` does.
//!
//! ```text
//! cargo run -p floe-inspect --example decode_hex                   # RFC 5769 §2.2
//! cargo run -p floe-inspect --example decode_hex -- 4000000461626364 [PASSWORD]
//! ```

use std::ops::ControlFlow;

use floe_inspect::{inspect, render_text, Credentials, Event, Input};

/// RFC 5769 §2.2: a Binding success response, and the password it is signed with.
const RFC5769_RESPONSE: &str = "0101003c2112a442b7e7a701bc34d686fa87dfae\
                                8022000b7465737420766563746f7220\
                                002000080001a147e112a643\
                                000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7\
                                80280004c07d4c96";
const RFC5769_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (hex, password) = match args.as_slice() {
        [] => (RFC5769_RESPONSE, Some(RFC5769_PASSWORD)),
        [hex] => (hex.as_str(), None),
        [hex, password, ..] => (hex.as_str(), Some(password.as_str())),
    };
    let credentials = password.map(|p| Credentials::ShortTerm(p.to_owned()));
    let mut index = 0;
    let status = inspect(
        Input::Hex(hex),
        credentials.as_ref(),
        &mut |event: Event<'_>| {
            match event {
                Event::Message {
                    framing, report, ..
                } => {
                    index += 1;
                    print!("{}", render_text::message(index, framing, report));
                }
                Event::Problem { text, .. } => eprintln!("decode_hex: {text}"),
                _ => {}
            }
            ControlFlow::Continue(())
        },
    );
    std::process::exit(i32::from(status.exit_code()));
}
