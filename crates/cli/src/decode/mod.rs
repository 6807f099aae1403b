#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]
//! `floe decode`: look inside STUN, TURN and ChannelData traffic (hex, raw bytes, pcap and
//! pcapng captures), with every field decoded and the first RFC rule each message
//! breaks. See docs/decode.md.
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
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub mod demux;
pub mod duplicates;
pub mod input;
pub mod limits;
pub mod net;
pub mod pcap;
pub mod render_json;
pub mod render_text;
pub mod tcp;
pub mod value;
pub mod verdict;

pub use verdict::{analyze, Credentials, Report, Verdict};

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

/// The captured packet a message came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketInfo {
    /// 1-based packet number in the capture.
    pub number: u64,
    /// Capture timestamp.
    pub time: Option<Duration>,
    /// `udp`, `tcp`, or `-` when the packet is not UDP/TCP.
    pub transport: &'static str,
    /// Source address.
    pub src: Option<SocketAddr>,
    /// Destination address.
    pub dst: Option<SocketAddr>,
    /// TCP flags.
    pub tcp_flags: Option<u8>,
    /// Bytes captured.
    pub captured: usize,
    /// Bytes on the wire.
    pub length: usize,
}

/// Where output goes, and the exit status so far.
struct Output<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    json: bool,
    credentials: Option<Credentials>,
    status: u8,
    messages: u64,
    /// Writing failed (a closed pipe): stop decoding.
    closed: bool,
}

impl Output<'_> {
    fn line(&mut self, s: &str) {
        if !self.closed && writeln!(self.out, "{s}").is_err() {
            self.closed = true;
        }
    }

    fn text(&mut self, s: &str) {
        if !self.closed && self.out.write_all(s.as_bytes()).is_err() {
            self.closed = true;
        }
    }

    fn error(&mut self, s: &str) {
        let _ = writeln!(self.err, "floe decode: {s}");
    }

    fn worse(&mut self, status: u8) {
        self.status = self.status.max(status);
    }

    /// Decodes and prints one message. In captures, traffic that is not STUN/TURN is
    /// shown but does not make the exit status fail.
    fn message(&mut self, bytes: &[u8], packet: Option<&PacketInfo>, framing: Option<&str>) {
        let report = analyze(bytes, self.credentials.as_ref());
        self.report(&report, packet, framing);
    }

    fn report(&mut self, report: &Report, packet: Option<&PacketInfo>, framing: Option<&str>) {
        self.messages += 1;
        match report.verdict {
            Verdict::Ok => {}
            Verdict::NotStunTurn if packet.is_some() => {}
            _ => self.worse(EXIT_BAD_MESSAGE),
        }
        if self.json {
            let line = render_json::message(self.messages, packet, framing, report);
            self.line(&line);
        } else {
            let block = render_text::message(self.messages, framing, report);
            self.text(&block);
        }
        // Each message shows as soon as it is decoded (`tail -f log | floe decode`).
        if !self.closed && self.out.flush().is_err() {
            self.closed = true;
        }
    }

    fn packet_header(&mut self, p: &PacketInfo) {
        if !self.json {
            let line = render_text::packet_line(p);
            self.line(&line);
        }
    }

    fn skipped(&mut self, p: &PacketInfo, why: &str) {
        if self.json {
            let line = render_json::skipped(p, why);
            self.line(&line);
        } else {
            let line = format!("  ({why})");
            self.line(&line);
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
    let mut o = Output {
        out,
        err,
        json: args.json,
        credentials,
        status: EXIT_OK,
        messages: 0,
        closed: false,
    };
    if let Some(hex) = &args.hex {
        for m in input::parse_hex(hex.as_bytes()) {
            hex_message(&mut o, m);
        }
        if o.messages == 0 && o.status == EXIT_OK {
            o.error("--hex holds no hex digits");
            o.worse(EXIT_USAGE);
        }
    } else if let Some(path) = &args.pcap {
        with_file(&mut o, path, stdin, |o, r| capture(o, r));
    } else if let Some(path) = &args.file {
        with_file(&mut o, path, stdin, |o, r| sniffed(o, r));
    } else {
        sniffed(&mut o, stdin);
    }
    let _ = o.out.flush();
    o.status
}

fn with_file(
    o: &mut Output<'_>,
    path: &PathBuf,
    stdin: &mut dyn Read,
    f: impl FnOnce(&mut Output<'_>, &mut dyn Read),
) {
    if path.as_os_str() == "-" {
        f(o, stdin);
        return;
    }
    match File::open(path) {
        Ok(file) => f(o, &mut io::BufReader::new(file)),
        Err(e) => {
            o.error(&format!("cannot open {}: {e}", path.display()));
            o.worse(EXIT_USAGE);
        }
    }
}

fn hex_message(o: &mut Output<'_>, m: Result<Vec<u8>, input::HexError>) {
    match m {
        Ok(bytes) => o.message(&bytes, None, None),
        Err(e @ input::HexError::TooLong { .. }) => {
            o.report(&Report::input_error(e.to_string()), None, None);
        }
        Err(e) => {
            o.error(&e.to_string());
            o.worse(EXIT_USAGE);
        }
    }
}

/// Input whose kind is told from its first bytes: hex text, one raw message, a capture.
fn sniffed(o: &mut Output<'_>, r: &mut dyn Read) {
    let head = match input::read_head(r) {
        Ok(h) => h,
        Err(e) => {
            o.error(&format!("read error: {e}"));
            o.worse(EXIT_USAGE);
            return;
        }
    };
    let kind = input::sniff(&head);
    let mut all = (&head[..]).chain(r);
    match kind {
        input::InputKind::Empty => {
            o.error("no input (give --hex, --file or --pcap, or pipe hex, bytes or a capture)");
            o.worse(EXIT_USAGE);
        }
        input::InputKind::Capture => capture(o, &mut all),
        input::InputKind::Hex => {
            let result = input::stream_hex(&mut all, &mut |m| {
                hex_message(o, m);
                !o.closed
            });
            if let Err(e) = result {
                o.error(&format!("read error: {e}"));
                o.worse(EXIT_USAGE);
            }
        }
        input::InputKind::Raw => match input::read_raw(&mut all) {
            Ok(Ok(bytes)) => o.message(&bytes, None, None),
            Ok(Err(input::TooLong)) => o.report(
                &Report::input_error(format!(
                    "input is longer than the largest STUN or ChannelData message ({} bytes)",
                    input::MAX_MESSAGE_LEN
                )),
                None,
                None,
            ),
            Err(e) => {
                o.error(&format!("read error: {e}"));
                o.worse(EXIT_USAGE);
            }
        },
    }
}

/// A pcap or pcapng capture, packet by packet.
fn capture(o: &mut Output<'_>, r: &mut dyn Read) {
    let mut reader = match pcap::CaptureReader::new(r) {
        Ok(reader) => reader,
        Err(e) => {
            o.error(&e.to_string());
            o.worse(EXIT_USAGE);
            return;
        }
    };
    let mut flows = tcp::Flows::default();
    while !o.closed {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                o.error(&format!("capture: {e}"));
                o.worse(EXIT_BAD_MESSAGE);
                break;
            }
        };
        let mut info = PacketInfo {
            number: frame.number,
            time: frame.time,
            transport: "-",
            src: None,
            dst: None,
            tcp_flags: None,
            captured: frame.data.len(),
            length: frame.original_len,
        };
        let segment = match net::parse_frame(frame.link_type, &frame.data) {
            Ok(s) => s,
            Err(skip) => {
                o.packet_header(&info);
                o.skipped(&info, &skip.to_string());
                continue;
            }
        };
        info.src = Some(segment.src);
        info.dst = Some(segment.dst);
        match segment.transport {
            net::Transport::Udp => {
                info.transport = "udp";
                o.packet_header(&info);
                o.message(segment.payload, Some(&info), None);
            }
            net::Transport::Tcp { flags } => {
                info.transport = "tcp";
                info.tcp_flags = Some(flags);
                o.packet_header(&info);
                let pieces =
                    flows.segment(segment.src, segment.dst, flags & 0x02 != 0, segment.payload);
                if pieces.is_empty() {
                    let why = if segment.payload.is_empty() {
                        "no payload".to_owned()
                    } else {
                        format!("{} bytes of an unfinished frame", segment.payload.len())
                    };
                    o.skipped(&info, &why);
                }
                for piece in pieces {
                    match piece {
                        tcp::Piece::Frame { framing, bytes } => {
                            o.message(&bytes, Some(&info), Some(framing));
                        }
                        tcp::Piece::NotStunTurn(why) => o.skipped(&info, &why),
                    }
                }
            }
        }
    }
    if flows.dropped() > 0 {
        o.error(&format!(
            "{} TCP flows dropped their unfinished frame and were ignored until their next SYN: more than {} bytes were buffered across flows",
            flows.dropped(),
            tcp::MAX_BUFFERED_TOTAL
        ));
    }
    for (src, dst, n) in flows.incomplete() {
        o.error(&format!(
            "TCP {src} -> {dst}: {n} bytes at the end of the capture never made a whole frame"
        ));
    }
}
