//! `floe decode`: the command-line face of [`floe_inspect`]. This module only parses the
//! arguments, opens the input and prints what the library finds (text or JSON lines);
//! the decoding, judging and capture reading live in floe-inspect. See docs/decode.md.
//!
//! ```
//! use floe_cli::decode::{run, DecodeArgs};
//! // RFC 5769 §2.2, a Binding success response.
//! let hex = "0101003c2112a442b7e7a701bc34d686fa87dfae\
//!            8022000b7465737420766563746f7220\
//!            002000080001a147e112a643\
//!            000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7\
//!            80280004c07d4c96";
//! let args = DecodeArgs::hex(hex).with_password("VOkJxbRl1RmTxUk/WvJxBt");
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let status = run(&args, &mut std::io::empty(), &mut out, &mut err);
//! let out = String::from_utf8(out).unwrap();
//! assert_eq!(status, 0);
//! assert!(out.contains("XOR-MAPPED-ADDRESS (0x0020), 8 bytes: 192.0.2.1:32853"));
//! assert!(out.contains("MESSAGE-INTEGRITY ok"));
//! ```

use std::fs::File;
use std::io::{self, Read, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;

use floe_inspect::{render_json, render_text, Credentials, Event, Input};

/// Exit status: every message decoded (and verified, where credentials were given).
pub const EXIT_OK: u8 = 0;
/// Exit status: a message is malformed or fails verification.
pub const EXIT_BAD_MESSAGE: u8 = 1;
/// Exit status: usage error (bad flags, unreadable input, not hex, not a capture).
pub const EXIT_USAGE: u8 = 2;

/// Arguments of `floe decode`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(
    about = "Decode STUN, TURN and ChannelData messages (hex, raw bytes, pcap/pcapng)",
    long_about = "Decode STUN, TURN and ChannelData messages: every field, FINGERPRINT and \
MESSAGE-INTEGRITY checked, and the first RFC rule a message breaks.\n\nWith no input flag, \
reads stdin: hex text (messages separated by blank lines), raw bytes (one message), or a \
pcap/pcapng capture.\n\nExit status: 0 all messages fine, 1 a message is malformed or fails \
verification, 2 usage error."
)]
pub struct DecodeArgs {
    /// Hex text of one or more messages (separated by blank lines); spaces, colons and 0x
    /// prefixes are ignored.
    #[arg(long, value_name = "HEX", group = "input")]
    pub hex: Option<String>,
    /// A file holding hex text, one raw message, or a capture (`-` for stdin).
    #[arg(long, value_name = "FILE", group = "input")]
    pub file: Option<PathBuf>,
    /// A pcap or pcapng capture (UDP and TCP over IPv4/IPv6; `-` for stdin).
    #[arg(long, value_name = "FILE", group = "input")]
    pub pcap: Option<PathBuf>,
    /// Short-term password (ICE `ice-pwd`) to verify MESSAGE-INTEGRITY(-SHA256) with.
    #[arg(long, value_name = "PW", conflicts_with = "long_term")]
    pub password: Option<String>,
    /// Long-term credentials (TURN) to verify MESSAGE-INTEGRITY(-SHA256) with; split at
    /// the last two colons.
    #[arg(long, value_name = "USER:REALM:PASSWORD")]
    pub long_term: Option<String>,
    /// One JSON object per message (keys in docs/decode.md).
    #[arg(long)]
    pub json: bool,
}

impl DecodeArgs {
    /// Arguments that decode `hex`.
    pub fn hex(hex: &str) -> DecodeArgs {
        DecodeArgs {
            hex: Some(hex.to_owned()),
            ..DecodeArgs::default()
        }
    }

    /// The same with a short-term password.
    #[must_use]
    pub fn with_password(mut self, password: &str) -> DecodeArgs {
        self.password = Some(password.to_owned());
        self
    }
}

/// Prints events as they come: text blocks or JSON lines on `out`, problems on `err`.
struct Printer<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    json: bool,
    messages: u64,
}

impl Printer<'_> {
    fn write(&mut self, s: &str) -> ControlFlow<()> {
        if self.out.write_all(s.as_bytes()).is_err() {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn event(&mut self, event: Event<'_>) -> ControlFlow<()> {
        match event {
            Event::Packet(p) if !self.json => self.write(&(render_text::packet_line(p) + "\n")),
            Event::Message {
                packet,
                framing,
                report,
            } => {
                self.messages += 1;
                let text = if self.json {
                    render_json::message(self.messages, packet, framing, report) + "\n"
                } else {
                    render_text::message(self.messages, framing, report)
                };
                self.write(&text)?;
                // Each message shows as soon as it is decoded (`tail -f log | floe decode`).
                if self.out.flush().is_err() {
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            }
            Event::Skipped { packet, why } => {
                let line = if self.json {
                    render_json::skipped(packet, why)
                } else {
                    format!("  ({why})")
                };
                self.write(&(line + "\n"))
            }
            Event::Problem { text, .. } => {
                let _ = writeln!(self.err, "floe decode: {text}");
                ControlFlow::Continue(())
            }
            _ => ControlFlow::Continue(()),
        }
    }
}

/// Runs `floe decode` with `args`, reading stdin from `stdin`; returns the exit status.
/// Never panics, whatever the input.
pub fn run(
    args: &DecodeArgs,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let credentials = match (&args.password, &args.long_term) {
        (Some(pw), _) => Some(Credentials::ShortTerm(pw.clone())),
        (None, Some(lt)) => match Credentials::parse_long_term(lt) {
            Some(c) => Some(c),
            None => {
                let _ = writeln!(
                    err,
                    "floe decode: --long-term wants USER:REALM:PASSWORD, got {lt:?}"
                );
                return EXIT_USAGE;
            }
        },
        (None, None) => None,
    };
    // The input, opened before anything is printed.
    let mut file;
    let input = if let Some(hex) = &args.hex {
        Input::Hex(hex)
    } else if let Some((path, capture)) = args
        .pcap
        .as_ref()
        .map(|p| (p, true))
        .or(args.file.as_ref().map(|p| (p, false)))
    {
        let r: &mut dyn Read = if path.as_os_str() == "-" {
            stdin
        } else {
            match File::open(path) {
                Ok(f) => {
                    file = io::BufReader::new(f);
                    &mut file
                }
                Err(e) => {
                    let _ = writeln!(err, "floe decode: cannot open {}: {e}", path.display());
                    return EXIT_USAGE;
                }
            }
        };
        if capture {
            Input::Capture(r)
        } else {
            Input::Sniff(r)
        }
    } else {
        Input::Sniff(stdin)
    };
    let mut printer = Printer {
        out,
        err,
        json: args.json,
        messages: 0,
    };
    let status = floe_inspect::inspect(input, credentials.as_ref(), &mut |e: Event<'_>| {
        printer.event(e)
    });
    let _ = printer.out.flush();
    status.exit_code()
}
