//! Reading what to decode: hex text (from `--hex`, a file or stdin) and raw bytes, with the
//! kind of input told apart by looking at its first bytes. Every reader is bounded: no
//! input, however long, makes floe hold more than one largest message (plus a read
//! buffer) at a time.

use std::fmt;
use std::io::{self, Read};

/// The largest message floe will decode: a STUN message with the largest 16-bit length
/// (RFC 8489 §5). A ChannelData message is at most 4 + 65535 + 3 bytes, which is smaller.
pub const MAX_MESSAGE_LEN: usize = floe_stun::MAX_MESSAGE_LEN;

/// Bytes looked at to tell hex text from raw bytes and capture files.
pub const SNIFF_LEN: usize = 512;

/// What went wrong in hex text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HexError {
    /// A character that is not a hex digit, a separator (whitespace, `:`, `,`, `-`) or a
    /// `0x` prefix.
    InvalidChar {
        /// The offending character.
        ch: char,
        /// 1-based line.
        line: usize,
        /// 1-based column (in bytes).
        column: usize,
    },
    /// An odd number of hex digits.
    OddDigits {
        /// Line where the message ended.
        line: usize,
    },
    /// More bytes than any STUN or ChannelData message can have.
    TooLong {
        /// Line where the limit was passed.
        line: usize,
    },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::InvalidChar { ch, line, column } => write!(
                f,
                "hex input: invalid character {ch:?} at line {line}, column {column}"
            ),
            HexError::OddDigits { line } => write!(
                f,
                "hex input: odd number of hex digits in the message ending at line {line}"
            ),
            HexError::TooLong { line } => write!(
                f,
                "hex input: message longer than {MAX_MESSAGE_LEN} bytes at line {line}"
            ),
        }
    }
}

impl std::error::Error for HexError {}

/// A streaming hex-text decoder. Messages are separated by blank lines; inside a message,
/// whitespace, line breaks, `:`, `,`, `-` and `0x` prefixes are ignored, so
/// `00 01 00 00`, `00:01:00:00`, `0x00, 0x01` and `0001 0000` are all the same bytes.
/// A `#` starts a comment that runs to the end of the line.
// The flags are the lexer's state; an enum would not make it clearer.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug)]
pub struct HexDecoder {
    bytes: Vec<u8>,
    high: Option<u8>,
    /// A `0` that starts a token: a digit, or the start of a `0x` prefix.
    zero_at_token_start: bool,
    /// The previous character was a separator (or the line start).
    at_token_start: bool,
    in_comment: bool,
    line: usize,
    column: usize,
    line_has_content: bool,
    /// The current message has failed; skip to the next blank line.
    error: Option<HexError>,
    /// The current message has any content (digits or an error).
    started: bool,
}

impl Default for HexDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl HexDecoder {
    /// A decoder at the start of its input.
    pub fn new() -> HexDecoder {
        HexDecoder {
            bytes: Vec::new(),
            high: None,
            zero_at_token_start: false,
            at_token_start: true,
            in_comment: false,
            line: 1,
            column: 0,
            line_has_content: false,
            error: None,
            started: false,
        }
    }

    /// Feeds a chunk of text; `emit` gets each message (or its error) as soon as the
    /// blank line after it is seen.
    pub fn feed(&mut self, chunk: &[u8], emit: &mut dyn FnMut(Result<Vec<u8>, HexError>)) {
        for &c in chunk {
            self.column += 1;
            if c == b'\n' {
                if !self.line_has_content {
                    self.end_message(emit);
                }
                self.flush_zero();
                self.line += 1;
                self.column = 0;
                self.line_has_content = false;
                self.in_comment = false;
                self.at_token_start = true;
                continue;
            }
            if self.in_comment {
                continue;
            }
            match c {
                b' ' | b'\t' | b'\r' | b':' | b',' | b'-' => {
                    self.flush_zero();
                    self.at_token_start = true;
                    if !matches!(c, b' ' | b'\t' | b'\r') {
                        self.line_has_content = true;
                    }
                }
                b'#' => {
                    self.flush_zero();
                    // A comment line is not a blank line: it does not end a message.
                    self.line_has_content = true;
                    self.in_comment = true;
                    self.at_token_start = true;
                }
                b'x' | b'X' if self.zero_at_token_start => {
                    // The `0` was the start of a `0x` prefix, not a digit.
                    self.zero_at_token_start = false;
                    self.at_token_start = false;
                }
                _ => {
                    self.line_has_content = true;
                    self.started = true;
                    if let Some(v) = hex_value(c) {
                        self.flush_zero();
                        if v == 0 && c == b'0' && self.at_token_start {
                            self.zero_at_token_start = true;
                        } else {
                            self.digit(v);
                        }
                        self.at_token_start = false;
                    } else {
                        self.fail(HexError::InvalidChar {
                            ch: char::from(c),
                            line: self.line,
                            column: self.column,
                        });
                    }
                }
            }
        }
    }

    /// Ends the input: `emit` gets the last message, if any.
    pub fn finish(&mut self, emit: &mut dyn FnMut(Result<Vec<u8>, HexError>)) {
        self.flush_zero();
        self.end_message(emit);
    }

    fn flush_zero(&mut self) {
        if self.zero_at_token_start {
            self.zero_at_token_start = false;
            self.digit(0);
        }
    }

    fn digit(&mut self, v: u8) {
        self.started = true;
        if self.error.is_some() {
            return;
        }
        match self.high.take() {
            None => self.high = Some(v),
            Some(high) => {
                if self.bytes.len() >= MAX_MESSAGE_LEN {
                    self.fail(HexError::TooLong { line: self.line });
                } else {
                    self.bytes.push((high << 4) | v);
                }
            }
        }
    }

    fn fail(&mut self, error: HexError) {
        self.started = true;
        if self.error.is_none() {
            self.error = Some(error);
            self.bytes = Vec::new();
            self.high = None;
        }
    }

    fn end_message(&mut self, emit: &mut dyn FnMut(Result<Vec<u8>, HexError>)) {
        if !self.started {
            return;
        }
        if self.error.is_none() && self.high.is_some() {
            self.error = Some(HexError::OddDigits { line: self.line });
        }
        let result = match self.error.take() {
            Some(e) => Err(e),
            None => Ok(std::mem::take(&mut self.bytes)),
        };
        self.bytes = Vec::new();
        self.high = None;
        self.started = false;
        emit(result);
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex text (one or more messages separated by blank lines) held in memory.
pub fn parse_hex(text: &[u8]) -> Vec<Result<Vec<u8>, HexError>> {
    let mut out = Vec::new();
    let mut d = HexDecoder::new();
    d.feed(text, &mut |m| out.push(m));
    d.finish(&mut |m| out.push(m));
    out
}

/// What an input stream holds, judged by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// Hex text.
    Hex,
    /// One raw message.
    Raw,
    /// A classic pcap or pcapng capture.
    Capture,
    /// Nothing at all.
    Empty,
}

/// Tells hex text from raw bytes and captures. Raw STUN starts with a byte 0x00-0x03 and
/// ChannelData with 0x40-0x4F, so neither can be mistaken for text made only of hex
/// digits and separators.
pub fn sniff(head: &[u8]) -> InputKind {
    if head.is_empty() {
        return InputKind::Empty;
    }
    if crate::pcap::is_capture(head) {
        return InputKind::Capture;
    }
    let texty = |c: &u8| {
        c.is_ascii_hexdigit()
            || matches!(
                c,
                b' ' | b'\t' | b'\r' | b'\n' | b':' | b',' | b'-' | b'x' | b'X'
            )
    };
    // A comment may hold anything printable.
    let mut in_comment = false;
    let all_text = head.iter().all(|c| {
        if *c == b'\n' {
            in_comment = false;
            return true;
        }
        if in_comment {
            return c.is_ascii_graphic() || *c == b' ' || *c == b'\t' || *c == b'\r' || *c >= 0x80;
        }
        if *c == b'#' {
            in_comment = true;
            return true;
        }
        texty(c)
    });
    if all_text {
        InputKind::Hex
    } else {
        InputKind::Raw
    }
}

/// Reads up to [`SNIFF_LEN`] bytes (fewer only at the end of input), for [`sniff`].
pub fn read_head(r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; SNIFF_LEN];
    let mut have = 0;
    while let Some(rest @ [_, ..]) = head.get_mut(have..) {
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => have = have.saturating_add(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(have);
    Ok(head)
}

/// Raw input that is longer than any message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

/// Reads one raw message: at most [`MAX_MESSAGE_LEN`] bytes; longer input is refused
/// without reading it all.
pub fn read_raw(r: &mut dyn Read) -> io::Result<Result<Vec<u8>, TooLong>> {
    let mut buf = Vec::new();
    r.take(MAX_MESSAGE_LEN as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > MAX_MESSAGE_LEN {
        return Ok(Err(TooLong));
    }
    Ok(Ok(buf))
}

/// Streams hex text from `r` through a [`HexDecoder`], handing each message to `emit` as
/// it completes. Memory stays bounded by one message and one read buffer.
pub fn stream_hex(
    r: &mut dyn Read,
    emit: &mut dyn FnMut(Result<Vec<u8>, HexError>) -> bool,
) -> io::Result<()> {
    let mut d = HexDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut go_on = true;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let Some(read) = buf.get(..n) else {
            return Err(io::Error::other(
                "the reader returned more bytes than asked for",
            ));
        };
        d.feed(read, &mut |m| {
            if go_on {
                go_on = emit(m);
            }
        });
        if !go_on {
            return Ok(());
        }
    }
    d.finish(&mut |m| {
        if go_on {
            go_on = emit(m);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<Vec<u8>, HexError> {
        let mut all = parse_hex(text.as_bytes());
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    #[test]
    fn separators_and_prefixes_are_ignored() {
        let want = vec![0x00, 0x01, 0xab, 0x0f];
        assert_eq!(one("00 01 ab 0f"), Ok(want.clone()));
        assert_eq!(one("00:01:AB:0F"), Ok(want.clone()));
        assert_eq!(one("0x00, 0x01, 0xab, 0x0f"), Ok(want.clone()));
        assert_eq!(one("0001\nab0f\n"), Ok(want.clone()));
        assert_eq!(one("  0x0001ab0f  # a comment: zz\n"), Ok(want.clone()));
        assert_eq!(one("0 0 0 1 a b 0 f"), Ok(want));
    }

    #[test]
    fn blank_lines_separate_messages() {
        let all = parse_hex(b"0001\n0203\n\n  \n0405\r\n\r\n0607");
        assert_eq!(
            all,
            vec![Ok(vec![0, 1, 2, 3]), Ok(vec![4, 5]), Ok(vec![6, 7])]
        );
    }

    #[test]
    fn bad_characters_and_odd_digits_are_reported_with_their_place() {
        assert_eq!(
            one("00 01\n00 zz"),
            Err(HexError::InvalidChar {
                ch: 'z',
                line: 2,
                column: 4
            })
        );
        assert_eq!(one("000"), Err(HexError::OddDigits { line: 1 }));
        // An error spoils only its own message.
        let all = parse_hex(b"0g\n\n0102");
        assert!(all[0].is_err());
        assert_eq!(all[1], Ok(vec![1, 2]));
    }

    #[test]
    fn huge_hex_input_is_refused_at_the_limit() {
        let text = "00".repeat(MAX_MESSAGE_LEN + 10);
        assert!(matches!(one(&text), Err(HexError::TooLong { .. })));
    }

    #[test]
    fn sniffing_tells_text_from_bytes() {
        assert_eq!(sniff(b"0001 0000 2112a442"), InputKind::Hex);
        assert_eq!(sniff(b"# from the log\n00 01"), InputKind::Hex);
        assert_eq!(sniff(&[0, 1, 0, 0, 0x21, 0x12]), InputKind::Raw);
        assert_eq!(sniff(&[0x40, 0x01, 0, 0]), InputKind::Raw);
        assert_eq!(sniff(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]), InputKind::Capture);
        assert_eq!(sniff(b""), InputKind::Empty);
    }

    /// Hands out more bytes than asked for, breaking `Read`'s contract.
    struct Liar;

    impl Read for Liar {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            buf.fill(b'0');
            Ok(buf.len() + 1000)
        }
    }

    #[test]
    fn a_reader_that_claims_too_many_bytes_does_not_panic() {
        // Regression: `&buf[..n]` in `stream_hex` panicked on such a reader.
        assert_eq!(read_head(&mut Liar).unwrap().len(), SNIFF_LEN);
        assert!(stream_hex(&mut Liar, &mut |_| true).is_err());
    }

    #[test]
    fn raw_input_is_bounded() {
        let big = vec![0u8; MAX_MESSAGE_LEN + 100];
        assert_eq!(read_raw(&mut &big[..]).unwrap(), Err(TooLong));
        let ok = vec![0u8; 20];
        assert_eq!(read_raw(&mut &ok[..]).unwrap(), Ok(ok));
    }
}
