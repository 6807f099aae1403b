//! The `--json` output: one JSON object per line, per message (and per captured packet
//! that carries none). The keys are documented in docs/decode.md.

use serde::Serialize;

use crate::verdict::Report;
use crate::PacketInfo;

/// The packet a message came in, as JSON.
#[derive(Debug, Serialize)]
struct JsonPacket<'a> {
    number: u64,
    time: Option<String>,
    transport: &'a str,
    src: Option<String>,
    dst: Option<String>,
    tcp_flags: Option<u8>,
    captured: usize,
    length: usize,
}

impl<'a> From<&'a PacketInfo> for JsonPacket<'a> {
    fn from(p: &'a PacketInfo) -> Self {
        JsonPacket {
            number: p.number,
            time: p.time.map(|t| crate::render_text::time(Some(t))),
            transport: p.transport,
            src: p.src.map(|a| a.to_string()),
            dst: p.dst.map(|a| a.to_string()),
            tcp_flags: p.tcp_flags,
            captured: p.captured,
            length: p.length,
        }
    }
}

#[derive(Debug, Serialize)]
struct MessageLine<'a> {
    message: u64,
    packet: Option<JsonPacket<'a>>,
    framing: Option<&'a str>,
    #[serde(flatten)]
    report: &'a Report,
}

#[derive(Debug, Serialize)]
struct SkippedLine<'a> {
    packet: JsonPacket<'a>,
    skipped: &'a str,
}

/// One message as a JSON line (without the newline).
pub fn message(
    index: u64,
    packet: Option<&PacketInfo>,
    framing: Option<&str>,
    report: &Report,
) -> String {
    let line = MessageLine {
        message: index,
        packet: packet.map(JsonPacket::from),
        framing,
        report,
    };
    serde_json::to_string(&line).unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
}

/// A captured packet with no message in it, as a JSON line.
pub fn skipped(packet: &PacketInfo, why: &str) -> String {
    let line = SkippedLine {
        packet: JsonPacket::from(packet),
        skipped: why,
    };
    serde_json::to_string(&line).unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
}
