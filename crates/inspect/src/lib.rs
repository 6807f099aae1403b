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
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! # floe-inspect
//!
//! Look inside STUN, TURN and ChannelData traffic: what `floe decode` does, as a library
//! that other tools can link. Captures (pcap, pcapng), hex text or raw bytes go in;
//! every message comes out with its fields decoded, FINGERPRINT and
//! MESSAGE-INTEGRITY(-SHA256) checked, and the first RFC rule it breaks.
//!
//! - [`analyze`] judges one message (a UDP payload, a TCP frame, a hex dump) and returns a
//!   [`Report`]: its [`Verdict`], every attribute, and the problems in byte order. What is
//!   judged and where the rule comes from:
//!   - STUN versus ChannelData versus other protocols by the first byte, RFC 7983 §7
//!     (and RFC 8489 §5: the magic cookie and the length say STUN whatever the first
//!     byte; see [`demux`]);
//!   - the STUN header and attribute layout, RFC 8489 §5 and §14 (padding, the
//!     MESSAGE-INTEGRITY / MESSAGE-INTEGRITY-SHA256 / FINGERPRINT order of §14.5-§14.7);
//!   - text attributes over RFC 8489 §14's send limits (USERNAME §14.3, REALM §14.9,
//!     NONCE §14.10, SOFTWARE §14.14, reason phrases §14.8), judged by floe-stun's own
//!     `Attribute::validate` (see [`limits`]);
//!   - repeated attributes, which RFC 8489 §14 lets a receiver ignore (a note, not a
//!     violation; see [`duplicates`]);
//!   - ChannelData framing, RFC 8656 §12.4 (channel numbers 0x4000-0x4FFF, the length
//!     field against the datagram).
//! - [`inspect`] drives a whole input (an [`Input`]) and hands each packet, message and
//!   skipped packet to a [`Sink`] as an [`Event`]; it returns the worst [`Status`] seen.
//! - [`pcap`] reads pcap and pcapng captures (through the `pcap-parser` crate), [`net`]
//!   cuts UDP and TCP payloads out of frames (through `etherparse`), and [`tcp`]
//!   reassembles STUN/TURN over TCP (RFC 8489 §6.2.2, RFC 6062, RFC 4571 framing).
//! - [`render_text`] and [`render_json`] format reports the way `floe decode` prints them
//!   (the JSON keys are documented in docs/decode.md).
//!
//! Nothing here panics on hostile input, and memory stays bounded: one message, one
//! capture block (at most [`pcap::MAX_BLOCK_LEN`] bytes) and at most
//! [`tcp::MAX_BUFFERED_TOTAL`] bytes of unfinished TCP frames at a time.
//!
//! ```
//! use std::ops::ControlFlow;
//! use floe_inspect::{analyze, inspect, Credentials, Event, Input, Status, Verdict};
//!
//! // RFC 5769 §2.2, a Binding success response.
//! let hex = "0101003c2112a442b7e7a701bc34d686fa87dfae\
//!            8022000b7465737420766563746f7220\
//!            002000080001a147e112a643\
//!            000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7\
//!            80280004c07d4c96";
//! let credentials = Credentials::ShortTerm("VOkJxbRl1RmTxUk/WvJxBt".to_owned());
//! let mut reports = Vec::new();
//! let status = inspect(Input::Hex(hex), Some(&credentials), &mut |event: Event<'_>| {
//!     if let Event::Message { report, .. } = event {
//!         reports.push(report.clone());
//!     }
//!     ControlFlow::Continue(())
//! });
//! assert_eq!(status, Status::Ok);
//! assert_eq!(reports[0].verdict, Verdict::Ok);
//! let text = floe_inspect::render_text::message(1, None, &reports[0]);
//! assert!(text.contains("XOR-MAPPED-ADDRESS (0x0020), 8 bytes: 192.0.2.1:32853"));
//! assert!(text.contains("MESSAGE-INTEGRITY ok"));
//!
//! // One message on its own, without credentials.
//! let bytes = [0x40, 0x00, 0x00, 0x02, 0xAB, 0xCD, 0x00, 0x00]; // ChannelData, padded
//! assert_eq!(analyze(&bytes, None).verdict, Verdict::Ok);
//! ```

use std::io::Read;
use std::net::SocketAddr;
use std::ops::ControlFlow;
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

/// How an input went, worst first when compared: `Usage > BadMessage > Ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Every message decoded (and verified, where credentials were given). Traffic in a
    /// capture that is not STUN/TURN does not count against it.
    Ok,
    /// A message is malformed or fails verification, or a capture is broken part way.
    BadMessage,
    /// The input is unusable: not hex, not a capture, empty.
    Usage,
}

impl Status {
    /// The exit status `floe decode` uses: 0, 1 or 2.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::BadMessage => 1,
            Status::Usage => 2,
        }
    }
}

/// What to inspect.
#[non_exhaustive]
pub enum Input<'a> {
    /// Hex text of one or more messages, separated by blank lines (see
    /// [`input::HexDecoder`] for the accepted spellings).
    Hex(&'a str),
    /// A pcap or pcapng capture.
    Capture(&'a mut dyn Read),
    /// Hex text, one raw message, or a capture, told apart by the first bytes
    /// ([`input::sniff`]).
    Sniff(&'a mut dyn Read),
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Hex(h) => f.debug_tuple("Hex").field(h).finish(),
            Input::Capture(_) => f.write_str("Capture(..)"),
            Input::Sniff(_) => f.write_str("Sniff(..)"),
        }
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

/// What [`inspect`] found, in input order.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A captured packet starts (its messages and skips follow).
    Packet(&'a PacketInfo),
    /// A message was judged.
    Message {
        /// The packet it came in (captures only).
        packet: Option<&'a PacketInfo>,
        /// The TCP framing it was cut with: `stun-turn` or `rfc4571`.
        framing: Option<&'a str>,
        /// The judgement.
        report: &'a Report,
    },
    /// A captured packet (or part of a TCP stream) carries nothing to judge.
    Skipped {
        /// The packet.
        packet: &'a PacketInfo,
        /// Why, in words.
        why: &'a str,
    },
    /// Something about the input as a whole: an unreadable capture, a read error, TCP
    /// frames left unfinished at the end.
    Problem {
        /// What it does to the outcome (`Ok` for a note).
        status: Status,
        /// In words.
        text: String,
    },
}

/// Where [`inspect`] sends what it finds. Return `ControlFlow::Break(())` to stop early
/// (for a closed pipe, say). Any `FnMut(Event<'_>) -> ControlFlow<()>` is a sink.
pub trait Sink {
    /// Takes one event.
    fn event(&mut self, event: Event<'_>) -> ControlFlow<()>;
}

impl<F: FnMut(Event<'_>) -> ControlFlow<()>> Sink for F {
    fn event(&mut self, event: Event<'_>) -> ControlFlow<()> {
        self(event)
    }
}

struct Run<'s, 'c> {
    sink: &'s mut dyn Sink,
    credentials: Option<&'c Credentials>,
    status: Status,
    messages: u64,
    stopped: bool,
}

impl Run<'_, '_> {
    fn send(&mut self, event: Event<'_>) {
        if !self.stopped && self.sink.event(event).is_break() {
            self.stopped = true;
        }
    }

    fn problem(&mut self, status: Status, text: String) {
        self.status = self.status.max(status);
        // Delivered even after the sink asked to stop: a closed stdout still leaves stderr.
        let _ = self.sink.event(Event::Problem { status, text });
    }

    fn message(&mut self, bytes: &[u8], packet: Option<&PacketInfo>, framing: Option<&str>) {
        let report = analyze(bytes, self.credentials);
        self.report(&report, packet, framing);
    }

    fn report(&mut self, report: &Report, packet: Option<&PacketInfo>, framing: Option<&str>) {
        self.messages += 1;
        match report.verdict {
            Verdict::Ok => {}
            Verdict::NotStunTurn if packet.is_some() => {}
            _ => self.status = self.status.max(Status::BadMessage),
        }
        self.send(Event::Message {
            packet,
            framing,
            report,
        });
    }

    fn hex_message(&mut self, m: Result<Vec<u8>, input::HexError>) {
        match m {
            Ok(bytes) => self.message(&bytes, None, None),
            Err(e @ input::HexError::TooLong { .. }) => {
                self.report(&Report::input_error(e.to_string()), None, None);
            }
            Err(e) => self.problem(Status::Usage, e.to_string()),
        }
    }
}

/// Inspects `input`, judging every message with `credentials` (when given), and sends
/// what it finds to `sink`; returns the worst [`Status`]. Never panics, whatever the
/// input; holds at most one message or capture block, plus bounded TCP state, at a time.
pub fn inspect(input: Input<'_>, credentials: Option<&Credentials>, sink: &mut dyn Sink) -> Status {
    let mut run = Run {
        sink,
        credentials,
        status: Status::Ok,
        messages: 0,
        stopped: false,
    };
    match input {
        Input::Hex(hex) => {
            for m in input::parse_hex(hex.as_bytes()) {
                if run.stopped {
                    break;
                }
                run.hex_message(m);
            }
            if run.messages == 0 && run.status == Status::Ok {
                run.problem(Status::Usage, "--hex holds no hex digits".to_owned());
            }
        }
        Input::Capture(r) => capture(&mut run, r),
        Input::Sniff(r) => sniffed(&mut run, r),
    }
    run.status
}

/// Input whose kind is told from its first bytes: hex text, one raw message, a capture.
fn sniffed(run: &mut Run<'_, '_>, r: &mut dyn Read) {
    let head = match input::read_head(r) {
        Ok(h) => h,
        Err(e) => {
            run.problem(Status::Usage, format!("read error: {e}"));
            return;
        }
    };
    let kind = input::sniff(&head);
    let mut all = (&head[..]).chain(r);
    match kind {
        input::InputKind::Empty => run.problem(
            Status::Usage,
            "no input (give --hex, --file or --pcap, or pipe hex, bytes or a capture)".to_owned(),
        ),
        input::InputKind::Capture => capture(run, &mut all),
        input::InputKind::Hex => {
            let result = input::stream_hex(&mut all, &mut |m| {
                run.hex_message(m);
                !run.stopped
            });
            if let Err(e) = result {
                run.problem(Status::Usage, format!("read error: {e}"));
            }
        }
        input::InputKind::Raw => match input::read_raw(&mut all) {
            Ok(Ok(bytes)) => run.message(&bytes, None, None),
            Ok(Err(input::TooLong)) => run.report(
                &Report::input_error(format!(
                    "input is longer than the largest STUN or ChannelData message ({} bytes)",
                    input::MAX_MESSAGE_LEN
                )),
                None,
                None,
            ),
            Err(e) => run.problem(Status::Usage, format!("read error: {e}")),
        },
    }
}

/// A pcap or pcapng capture, packet by packet.
fn capture(run: &mut Run<'_, '_>, r: &mut dyn Read) {
    let mut reader = match pcap::CaptureReader::new(r) {
        Ok(reader) => reader,
        Err(e) => {
            run.problem(Status::Usage, e.to_string());
            return;
        }
    };
    let mut flows = tcp::Flows::default();
    while !run.stopped {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                run.problem(Status::BadMessage, format!("capture: {e}"));
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
                run.send(Event::Packet(&info));
                let why = skip.to_string();
                run.send(Event::Skipped {
                    packet: &info,
                    why: &why,
                });
                continue;
            }
        };
        info.src = Some(segment.src);
        info.dst = Some(segment.dst);
        match segment.transport {
            net::CaptureTransport::Udp => {
                info.transport = "udp";
                run.send(Event::Packet(&info));
                run.message(segment.payload, Some(&info), None);
            }
            net::CaptureTransport::Tcp { flags } => {
                info.transport = "tcp";
                info.tcp_flags = Some(flags);
                run.send(Event::Packet(&info));
                let pieces =
                    flows.segment(segment.src, segment.dst, flags & 0x02 != 0, segment.payload);
                if pieces.is_empty() {
                    let why = if segment.payload.is_empty() {
                        "no payload".to_owned()
                    } else {
                        format!("{} bytes of an unfinished frame", segment.payload.len())
                    };
                    run.send(Event::Skipped {
                        packet: &info,
                        why: &why,
                    });
                }
                for piece in pieces {
                    match piece {
                        tcp::Piece::Frame { framing, bytes } => {
                            run.message(&bytes, Some(&info), Some(framing));
                        }
                        tcp::Piece::NotStunTurn(why) => run.send(Event::Skipped {
                            packet: &info,
                            why: &why,
                        }),
                    }
                }
            }
        }
    }
    if flows.dropped() > 0 {
        run.problem(
            Status::Ok,
            format!(
                "{} TCP flows dropped their unfinished frame and were ignored until their next SYN: more than {} bytes were buffered across flows",
                flows.dropped(),
                tcp::MAX_BUFFERED_TOTAL
            ),
        );
    }
    for (src, dst, n) in flows.incomplete() {
        run.problem(
            Status::Ok,
            format!(
                "TCP {src} -> {dst}: {n} bytes at the end of the capture never made a whole frame"
            ),
        );
    }
}
