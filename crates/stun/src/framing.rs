//! Message boundaries on byte streams.
//!
//! - STUN over TCP/TLS (RFC 8489 §6.2.2) and TURN over TCP/TLS (RFC 8656 §12.5): STUN
//!   messages and ChannelData frames back to back; the length comes from the header, and
//!   ChannelData is padded to a multiple of 4 on streams.
//! - RFC 4571 framing (ICE-TCP, RFC 6544 §3): a 16-bit length before every packet.

use crate::header::HEADER_LEN;
use crate::message::peek_header;
use crate::Error;

/// What a frame on a STUN/TURN stream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A STUN message.
    Stun,
    /// A TURN ChannelData message (RFC 8656 §12.4), padding included.
    ChannelData,
    /// An RFC 4571 packet, length prefix removed; classify it with
    /// [`crate::demux::classify`].
    Packet,
}

/// The kind and total length of the first frame in `buf` on a STUN/TURN stream, or
/// `Ok(None)` if more bytes are needed to know. An error means the stream is not
/// STUN/TURN (or is out of sync) and must be closed.
pub fn stream_frame_len(buf: &[u8]) -> Result<Option<(FrameKind, usize)>, Error> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    match first {
        0x00..=0x3F => {
            if buf.len() < HEADER_LEN {
                return Ok(None);
            }
            peek_header(buf).map(|(_, len)| Some((FrameKind::Stun, len)))
        }
        // RFC 8656 §12: channel numbers 0x4000-0x4FFF; RFC 5766 allowed up to 0x7FFF and
        // its clients still use them, so frames are cut for the whole range and the
        // channel number is judged by the TURN layer.
        0x40..=0x7F => {
            let Some(&[_, _, l0, l1]) = buf.first_chunk() else {
                return Ok(None);
            };
            let len = usize::from(u16::from_be_bytes([l0, l1]));
            // RFC 8656 §12.5: over stream transports ChannelData is padded to 4 bytes.
            Ok(Some((FrameKind::ChannelData, 4 + len.next_multiple_of(4))))
        }
        _ => Err(Error::NotStun { first_byte: first }),
    }
}

/// Reassembles frames from a byte stream with a bounded buffer.
///
/// ```
/// use floe_stun::framing::{FrameKind, StreamDecoder};
/// let mut d = StreamDecoder::new(StreamDecoder::STUN_TURN);
/// d.extend(&[0x40, 0x00, 0x00, 0x03, 1, 2, 3])?; // ChannelData, one padding byte missing
/// assert!(d.next_frame()?.is_none());
/// d.extend(&[0])?;
/// let (kind, frame) = d.next_frame()?.unwrap();
/// assert_eq!((kind, frame.len()), (FrameKind::ChannelData, 8));
/// # Ok::<(), floe_stun::Error>(())
/// ```
#[derive(Debug)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    start: usize,
    framing: Framing,
}

/// Which framing a [`StreamDecoder`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// STUN messages and ChannelData back to back (RFC 8489 §6.2.2, RFC 8656 §12.5).
    StunTurn,
    /// RFC 4571: a 16-bit length, then the packet.
    Rfc4571,
}

impl StreamDecoder {
    /// STUN/TURN stream framing.
    pub const STUN_TURN: Framing = Framing::StunTurn;
    /// RFC 4571 framing.
    pub const RFC4571: Framing = Framing::Rfc4571;

    /// Most bytes buffered at once: one largest frame plus one read's worth. A peer cannot
    /// make the decoder hold more, because no frame can be longer than this.
    pub const MAX_BUFFERED: usize = 2 + 0xFFFF + 4 + 65_536;

    /// A decoder for `framing`.
    pub fn new(framing: Framing) -> StreamDecoder {
        StreamDecoder {
            buf: Vec::new(),
            start: 0,
            framing,
        }
    }

    /// Adds bytes read from the stream. Fails if that would buffer more than
    /// [`StreamDecoder::MAX_BUFFERED`] (read less at a time, and drain frames first).
    pub fn extend(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.len() + bytes.len() > Self::MAX_BUFFERED {
            return Err(Error::BufferTooSmall {
                needed: self.buf.len() + bytes.len(),
                have: Self::MAX_BUFFERED,
            });
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Bytes buffered that are not yet a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Takes the bytes buffered past the last whole frame, leaving the decoder empty:
    /// for a stream that stops being framed (a TURN-TCP data connection after its
    /// ConnectionBind, RFC 6062 §5.4, carries raw bytes from then on).
    pub fn take_remaining(&mut self) -> Vec<u8> {
        let rest = self.buf.get(self.start..).unwrap_or_default().to_vec();
        self.buf.clear();
        self.start = 0;
        rest
    }

    /// The next whole frame, if one is buffered. An error means the stream is corrupt
    /// and should be closed.
    pub fn next_frame(&mut self) -> Result<Option<(FrameKind, &[u8])>, Error> {
        // `start` only moves past whole frames, so it is never beyond the end.
        let pending = self.buf.get(self.start..).unwrap_or_default();
        let (kind, skip, len) = match self.framing {
            Framing::StunTurn => match stream_frame_len(pending)? {
                Some((kind, len)) => (kind, 0, len),
                None => return Ok(None),
            },
            Framing::Rfc4571 => {
                let Some(&head) = pending.first_chunk() else {
                    return Ok(None);
                };
                (FrameKind::Packet, 2, usize::from(u16::from_be_bytes(head)))
            }
        };
        let Some(frame) = pending.get(skip..skip + len) else {
            return Ok(None);
        };
        self.start += skip + len;
        Ok(Some((kind, frame)))
    }
}

/// Writes the RFC 4571 length prefix for a packet of `len` bytes.
pub fn rfc4571_prefix(len: usize) -> Result<[u8; 2], Error> {
    u16::try_from(len)
        .map(u16::to_be_bytes)
        .map_err(|_| Error::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_messages_split_at_the_header_length() {
        let mut msg = vec![0u8; 28];
        msg[..2].copy_from_slice(&[0x00, 0x01]);
        msg[2..4].copy_from_slice(&8u16.to_be_bytes());
        msg[4..8].copy_from_slice(&crate::MAGIC_COOKIE.to_be_bytes());
        let mut stream = msg.clone();
        stream.extend_from_slice(&msg);
        let mut d = StreamDecoder::new(Framing::StunTurn);
        // Feed one byte at a time: frames appear exactly when complete.
        let mut frames = 0;
        for b in &stream {
            d.extend(&[*b]).unwrap();
            while let Some((kind, frame)) = d.next_frame().unwrap() {
                assert_eq!(kind, FrameKind::Stun);
                assert_eq!(frame, &msg[..]);
                frames += 1;
            }
        }
        assert_eq!(frames, 2);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn the_bytes_after_the_last_frame_can_be_taken() {
        let mut msg = vec![0u8; 20];
        msg[..2].copy_from_slice(&[0x00, 0x0B]);
        msg[4..8].copy_from_slice(&crate::MAGIC_COOKIE.to_be_bytes());
        let mut stream = msg.clone();
        stream.extend_from_slice(b"raw bytes, not framed");
        let mut d = StreamDecoder::new(Framing::StunTurn);
        d.extend(&stream).unwrap();
        assert_eq!(d.next_frame().unwrap().map(|(_, f)| f.len()), Some(20));
        assert_eq!(d.take_remaining(), b"raw bytes, not framed");
        assert_eq!(d.buffered(), 0);
        assert_eq!(d.take_remaining(), b"");
    }

    #[test]
    fn garbage_on_a_stun_stream_is_an_error() {
        let mut d = StreamDecoder::new(Framing::StunTurn);
        d.extend(&[0x80, 1, 2, 3]).unwrap();
        assert_eq!(d.next_frame(), Err(Error::NotStun { first_byte: 0x80 }));
        let mut d = StreamDecoder::new(Framing::StunTurn);
        d.extend(&[0x7F, 0xFF, 0, 1, 1, 0, 0, 0]).unwrap();
        assert_eq!(
            d.next_frame().unwrap().map(|(k, f)| (k, f.len())),
            Some((FrameKind::ChannelData, 8))
        );
    }

    #[test]
    fn rfc4571_frames_strip_the_prefix() {
        let mut d = StreamDecoder::new(Framing::Rfc4571);
        d.extend(&[0, 3, 9, 8, 7, 0, 0, 0, 1]).unwrap();
        assert_eq!(
            d.next_frame().unwrap().map(|(_, f)| f.to_vec()),
            Some(vec![9, 8, 7])
        );
        assert_eq!(
            d.next_frame().unwrap().map(|(_, f)| f.to_vec()),
            Some(vec![])
        );
        assert_eq!(d.next_frame().unwrap(), None);
        assert_eq!(rfc4571_prefix(3).unwrap(), [0, 3]);
        assert!(rfc4571_prefix(70_000).is_err());
    }

    #[test]
    fn the_buffer_is_bounded() {
        let mut d = StreamDecoder::new(Framing::Rfc4571);
        d.extend(&[0xFF, 0xFF]).unwrap();
        let chunk = vec![0u8; 65_536];
        d.extend(&chunk).unwrap();
        d.extend(&chunk).unwrap();
        assert!(d.extend(&chunk).is_err());
        assert!(d.buffered() <= StreamDecoder::MAX_BUFFERED);
    }
}
