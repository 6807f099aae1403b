//! The text output: one block per message, attributes one per line with their offsets,
//! the checks, and the first broken rule.

use std::fmt::Write as _;
use std::time::Duration;

use crate::verdict::{Kind, Report};
use crate::PacketInfo;

/// Formats a capture time as seconds with 6 decimals (9 where the capture has
/// nanoseconds).
pub fn time(t: Option<Duration>) -> String {
    match t {
        None => "-".to_owned(),
        Some(t) if t.subsec_nanos() % 1000 != 0 => {
            format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
        }
        Some(t) => format!("{}.{:06}", t.as_secs(), t.subsec_micros()),
    }
}

fn tcp_flags(flags: u8) -> String {
    let names = [
        (0x02, "SYN"),
        (0x01, "FIN"),
        (0x04, "RST"),
        (0x08, "PSH"),
        (0x10, "ACK"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    set.join(",")
}

/// The header line of a captured packet.
pub fn packet_line(p: &PacketInfo) -> String {
    let mut s = format!(
        "packet {} {} {} {} -> {}",
        p.number,
        time(p.time),
        p.transport.to_uppercase(),
        p.src.map_or_else(|| "-".to_owned(), |a| a.to_string()),
        p.dst.map_or_else(|| "-".to_owned(), |a| a.to_string()),
    );
    if let Some(flags) = p.tcp_flags {
        let _ = write!(s, " [{}]", tcp_flags(flags));
    }
    if p.captured < p.length {
        let _ = write!(s, " (captured {} of {} bytes)", p.captured, p.length);
    }
    s
}

/// A whole message block, ending with a newline.
pub fn message(index: u64, framing: Option<&str>, r: &Report) -> String {
    let mut s = String::new();
    let via = framing
        .map(|f| format!(", {f} framing"))
        .unwrap_or_default();
    match r.kind {
        Kind::Stun => match &r.stun {
            Some(h) => {
                let _ = writeln!(
                    s,
                    "message {index}: STUN {} {} (type {}, length {}, {} bytes{via})",
                    h.method, h.class, h.message_type, h.length, r.size
                );
                let _ = writeln!(s, "  transaction id {}", h.transaction_id);
                for a in &h.attributes {
                    let name = a.name.unwrap_or("unknown");
                    let value = match &a.error {
                        Some(e) => format!("<{e}>"),
                        None => a.text.clone(),
                    };
                    let ignored = if a.ignored {
                        "  [ignored: after MESSAGE-INTEGRITY]"
                    } else {
                        ""
                    };
                    let _ = writeln!(
                        s,
                        "  @{:<4} {name} ({}), {} bytes: {value}{ignored}",
                        a.offset, a.typ, a.length
                    );
                }
                let creds = h
                    .credentials
                    .map(|c| format!(" ({c} credentials)"))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "  FINGERPRINT {}, MESSAGE-INTEGRITY {}, MESSAGE-INTEGRITY-SHA256 {}{creds}",
                    h.fingerprint.text(),
                    h.message_integrity.text(),
                    h.message_integrity_sha256.text()
                );
            }
            None => {
                let _ = writeln!(s, "message {index}: STUN? ({} bytes{via})", r.size);
            }
        },
        Kind::ChannelData => {
            let _ = writeln!(
                s,
                "message {index}: TURN ChannelData ({} bytes{via})",
                r.size
            );
            if let Some(cd) = &r.channel_data {
                let _ = writeln!(
                    s,
                    "  channel {:#06x}, length {}, padding {}",
                    cd.channel, cd.length, cd.padding
                );
                let shown = cd.data.len().min(64);
                let more = if cd.data.len() > shown { "..." } else { "" };
                let data = cd.data.get(..shown).unwrap_or_default();
                let _ = writeln!(s, "  data {data}{more}");
            }
        }
        Kind::Other => {
            let _ = writeln!(s, "message {index}: {} bytes{via}", r.size);
        }
    }
    if let Some((first, rest)) = r.problems.split_first() {
        let _ = writeln!(s, "  error: {}", first.message);
        for p in rest {
            let _ = writeln!(s, "  also: {}", p.message);
        }
    }
    for n in &r.notes {
        let _ = writeln!(s, "  note: {}", n.message);
    }
    let _ = writeln!(s, "  verdict: {}", r.verdict.text());
    s
}
