//! STUN/TURN over TCP in a capture: per-flow reassembly of in-order segments into
//! frames, with the framing guessed from the first bytes of each flow:
//!
//! - STUN/TURN framing (RFC 8489 §6.2.2, RFC 8656 §12.5, RFC 6062): messages and padded
//!   ChannelData back to back; recognised by the magic cookie at offset 4, or a first
//!   byte 0x40-0x4F with a ChannelData length that fits the segment.
//! - RFC 4571 framing (ICE-TCP, RFC 6544): a 16-bit length before each packet;
//!   recognised by the magic cookie at offset 6.
//!
//! Segments are taken in capture order: retransmitted or reordered segments are not
//! sorted out. Memory is bounded: each flow buffers at most one frame (floe-stun's
//! [`StreamDecoder`]), at most [`MAX_FLOWS`] flows are tracked, and all flows together
//! hold at most [`MAX_BUFFERED_TOTAL`] bytes of unfinished frames.

use std::collections::HashMap;
use std::net::SocketAddr;

use floe_stun::framing::{Framing, StreamDecoder};
use floe_stun::MAGIC_COOKIE;

/// Flows tracked at once; past this, all state is dropped and flows start afresh.
pub const MAX_FLOWS: usize = 4096;

/// Bytes of unfinished frames held across all flows. Without it, [`MAX_FLOWS`] flows each
/// holding most of a 64 KiB frame would keep a quarter of a gigabyte. Past it, the other
/// flows holding the most are dropped (and ignored until their next SYN), largest first.
pub const MAX_BUFFERED_TOTAL: usize = 16 * 1024 * 1024;

/// What a TCP segment produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A whole frame (a STUN message, ChannelData, or an RFC 4571 packet).
    Frame {
        /// The framing it was cut with: `stun-turn` or `rfc4571`.
        framing: &'static str,
        /// The frame.
        bytes: Vec<u8>,
    },
    /// The stream is not (or no longer) STUN/TURN; the flow is ignored from here on.
    NotStunTurn(String),
}

#[derive(Debug)]
enum Flow {
    Framed(StreamDecoder, Framing),
    Ignored,
}

type Key = (SocketAddr, SocketAddr);

/// Per-flow reassembly state.
#[derive(Debug, Default)]
pub struct Flows {
    table: HashMap<Key, Flow>,
    /// Sum of every flow's buffered bytes.
    buffered: usize,
    /// Flows whose unfinished frame was dropped to stay within [`MAX_BUFFERED_TOTAL`].
    dropped: u64,
}

fn held(flow: &Flow) -> usize {
    match flow {
        Flow::Framed(decoder, _) => decoder.buffered(),
        Flow::Ignored => 0,
    }
}

fn guess(payload: &[u8]) -> Option<Framing> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    // A capture that starts mid-stream may start with ChannelData; text protocols can
    // start with 0x40-0x4F too ("GET"), so the ChannelData length must fit the segment.
    let channel_data = match payload.get(..4) {
        Some(&[0x40..=0x4F, _, hi, lo]) => {
            4 + usize::from(u16::from_be_bytes([hi, lo])).next_multiple_of(4) <= payload.len()
        }
        _ => false,
    };
    if payload.get(4..8) == Some(&cookie[..]) || channel_data {
        Some(Framing::StunTurn)
    } else if payload.get(6..10) == Some(&cookie[..]) {
        Some(Framing::Rfc4571)
    } else {
        None
    }
}

impl Flows {
    /// Feeds one segment; `syn` starts the flow afresh.
    pub fn segment(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        syn: bool,
        payload: &[u8],
    ) -> Vec<Piece> {
        let key = (src, dst);
        if syn {
            self.set(key, None);
        }
        if payload.is_empty() {
            return Vec::new();
        }
        let before = self.table.get(&key).map_or(0, held);
        let out = self.feed(key, payload);
        let after = self.table.get(&key).map_or(0, held);
        self.buffered = self.buffered.saturating_sub(before).saturating_add(after);
        if self.buffered > MAX_BUFFERED_TOTAL {
            self.shed(key);
        }
        out
    }

    /// Replaces (or with `None` removes) a flow, keeping the byte count right.
    fn set(&mut self, key: Key, flow: Option<Flow>) {
        let old = match flow {
            Some(flow) => self.table.insert(key, flow),
            None => self.table.remove(&key),
        };
        self.buffered = self.buffered.saturating_sub(old.as_ref().map_or(0, held));
    }

    /// Drops the unfinished frames of the flows other than `keep` holding the most, until
    /// the total is within [`MAX_BUFFERED_TOTAL`]. Largest first, ties by address, so that
    /// the same capture always gives the same output.
    fn shed(&mut self, keep: Key) {
        let mut holders: Vec<(usize, Key)> = self
            .table
            .iter()
            .filter(|(k, _)| **k != keep)
            .map(|(k, f)| (held(f), *k))
            .filter(|(n, _)| *n > 0)
            .collect();
        holders.sort_unstable_by(|a, b| b.cmp(a));
        for (_, key) in holders {
            if self.buffered <= MAX_BUFFERED_TOTAL {
                break;
            }
            self.set(key, Some(Flow::Ignored));
            self.dropped += 1;
        }
    }

    fn feed(&mut self, key: Key, payload: &[u8]) -> Vec<Piece> {
        if !self.table.contains_key(&key) {
            if self.table.len() >= MAX_FLOWS {
                self.table.clear();
                self.buffered = 0;
            }
            let flow = match guess(payload) {
                Some(framing) => Flow::Framed(StreamDecoder::new(framing), framing),
                None => {
                    self.table.insert(key, Flow::Ignored);
                    return vec![Piece::NotStunTurn(
                        "TCP stream is neither STUN/TURN framing nor RFC 4571 framing of STUN"
                            .to_owned(),
                    )];
                }
            };
            self.table.insert(key, flow);
        }
        let Some(Flow::Framed(decoder, framing)) = self.table.get_mut(&key) else {
            return Vec::new();
        };
        let name = match framing {
            Framing::StunTurn => "stun-turn",
            Framing::Rfc4571 => "rfc4571",
        };
        let mut out = Vec::new();
        // Feed in pieces no larger than the decoder's read allowance, draining frames in
        // between, so that a large segment never overflows the bounded buffer.
        for chunk in payload.chunks(32 * 1024) {
            if let Err(e) = decoder.extend(chunk) {
                out.push(Piece::NotStunTurn(format!("TCP stream out of sync: {e}")));
                self.table.insert(key, Flow::Ignored);
                return out;
            }
            loop {
                match decoder.next_frame() {
                    Ok(Some((_, frame))) => {
                        out.push(Piece::Frame {
                            framing: name,
                            bytes: frame.to_vec(),
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Piece::NotStunTurn(format!("TCP stream out of sync: {e}")));
                        self.table.insert(key, Flow::Ignored);
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Bytes of unfinished frames held across all flows.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Flows whose unfinished frame was dropped to stay within [`MAX_BUFFERED_TOTAL`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Flows with bytes buffered that never made a whole frame, for a note at the end.
    pub fn incomplete(&self) -> Vec<(SocketAddr, SocketAddr, usize)> {
        let mut v: Vec<_> = self
            .table
            .iter()
            .filter_map(|((s, d), f)| match f {
                Flow::Framed(dec, _) if dec.buffered() > 0 => Some((*s, *d, dec.buffered())),
                _ => None,
            })
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Vec<u8> {
        let mut m = vec![0, 1, 0, 0];
        m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        m.extend_from_slice(&[7; 12]);
        m
    }

    fn a() -> SocketAddr {
        "10.0.0.1:1".parse().unwrap()
    }

    fn b() -> SocketAddr {
        "10.0.0.2:2".parse().unwrap()
    }

    #[test]
    fn whole_and_split_messages_are_framed() {
        let mut f = Flows::default();
        let mut two = binding();
        two.extend(binding());
        let pieces = f.segment(a(), b(), false, &two);
        assert_eq!(pieces.len(), 2);
        // A message split over two segments comes out with the second.
        let m = binding();
        assert!(f.segment(a(), b(), false, &m[..7]).is_empty());
        assert_eq!(f.incomplete(), vec![(a(), b(), 7)]);
        let pieces = f.segment(a(), b(), false, &m[7..]);
        assert_eq!(
            pieces,
            vec![Piece::Frame {
                framing: "stun-turn",
                bytes: m
            }]
        );
    }

    #[test]
    fn rfc4571_framing_is_recognised() {
        let mut f = Flows::default();
        let m = binding();
        let mut framed = (m.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&m);
        let pieces = f.segment(a(), b(), false, &framed);
        assert_eq!(
            pieces,
            vec![Piece::Frame {
                framing: "rfc4571",
                bytes: m
            }]
        );
    }

    #[test]
    fn unfinished_frames_across_flows_stay_within_the_total_budget() {
        // Regression: 4096 flows each holding most of a 64 KiB frame kept ~256 MiB.
        // Each flow here holds 60,020 bytes of a message whose length says 65,532.
        let mut partial = vec![0, 1, 0xFF, 0xFC];
        partial.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        partial.resize(60_020, 7);
        let mut f = Flows::default();
        let flows = MAX_BUFFERED_TOTAL / partial.len() + 20;
        let src = |i: usize| SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1000));
        for i in 0..flows {
            assert!(f.segment(src(i), b(), true, &partial).is_empty());
            assert!(
                f.buffered() <= MAX_BUFFERED_TOTAL,
                "{} after {i}",
                f.buffered()
            );
        }
        assert!(f.dropped() >= 20, "{}", f.dropped());
        let held: usize = f.incomplete().iter().map(|(_, _, n)| n).sum();
        assert_eq!(held, f.buffered());
        // The newest flow is never the one dropped: its frame still completes.
        let rest = vec![0; 20 + 0xFFFC - partial.len()];
        let pieces = f.segment(src(flows - 1), b(), false, &rest);
        assert!(matches!(&pieces[..], [Piece::Frame { .. }]), "{pieces:?}");
    }

    #[test]
    fn other_streams_are_ignored_after_one_note() {
        let mut f = Flows::default();
        assert!(matches!(
            f.segment(a(), b(), false, b"GET / HTTP/1.1\r\n")[..],
            [Piece::NotStunTurn(_)]
        ));
        assert!(f.segment(a(), b(), false, b"more").is_empty());
        // A new connection (SYN) is judged afresh.
        assert_eq!(f.segment(a(), b(), true, &binding()).len(), 1);
    }
}
