//! ChannelData messages (RFC 8656 §12.4): a 4-byte header (channel number, length) and
//! the application data, padded to 4 bytes on stream transports (§12.5).

use crate::Error;

/// Lowest valid channel number (RFC 8656 §12).
pub const MIN_CHANNEL: u16 = 0x4000;
/// Highest valid channel number (RFC 8656 §12).
pub const MAX_CHANNEL: u16 = 0x4FFF;
/// Highest channel number RFC 5766 allowed (RFC 8656 §12 reserves 0x5000 and up).
pub const MAX_CHANNEL_RFC5766: u16 = 0x7FFF;
/// Size of the ChannelData header.
pub const HEADER_LEN: usize = 4;

/// A ChannelData message borrowing its bytes.
///
/// ```
/// use floe_turn::ChannelData;
/// let mut buf = [0u8; 16];
/// let n = ChannelData::encode(0x4001, b"hello", &mut buf, true)?;
/// assert_eq!(n, 12); // 4 + 5, padded to 12 for a stream
/// let cd = ChannelData::parse(&buf[..n])?;
/// assert_eq!((cd.channel, cd.data), (0x4001, &b"hello"[..]));
/// # Ok::<(), floe_turn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    /// The channel number, 0x4000-0x4FFF.
    pub channel: u16,
    /// The application data.
    pub data: &'a [u8],
    /// Bytes after the data (padding), 0-3.
    pub padding: usize,
}

impl<'a> ChannelData<'a> {
    /// Parses one ChannelData message that fills `buf` (a UDP datagram, or a frame cut
    /// from a stream). Up to 3 bytes of padding after the data are accepted, as RFC 8656
    /// §12.5 allows padding over UDP too.
    pub fn parse(buf: &'a [u8]) -> Result<ChannelData<'a>, Error> {
        ChannelData::parse_in_range(buf, MAX_CHANNEL)
    }

    /// Like [`ChannelData::parse`], accepting channel numbers up to `max_channel`
    /// (for example [`MAX_CHANNEL_RFC5766`] for RFC 5766 peers).
    pub fn parse_in_range(buf: &'a [u8], max_channel: u16) -> Result<ChannelData<'a>, Error> {
        let truncated = Error::Truncated {
            needed: HEADER_LEN,
            have: buf.len(),
        };
        let (&[c0, c1, l0, l1], rest) = buf.split_first_chunk().ok_or(truncated)?;
        let channel = u16::from_be_bytes([c0, c1]);
        if !(MIN_CHANNEL..=max_channel).contains(&channel) {
            return Err(Error::BadChannelNumber { channel });
        }
        let length = usize::from(u16::from_be_bytes([l0, l1]));
        let (data, trailing) = rest.split_at_checked(length).ok_or(Error::Truncated {
            needed: HEADER_LEN + length,
            have: buf.len(),
        })?;
        let padding = trailing.len();
        if padding > 3 {
            return Err(Error::ChannelDataTrailing {
                length,
                extra: padding,
            });
        }
        Ok(ChannelData {
            channel,
            data,
            padding,
        })
    }

    /// Writes a ChannelData message into `out` and returns its length; with `pad` (stream
    /// transports, §12.5) the length is rounded up to a multiple of 4 with zeros. Channel
    /// numbers up to 0x7FFF are written, so a server can answer RFC 5766 clients on the
    /// channels they bound.
    pub fn encode(channel: u16, data: &[u8], out: &mut [u8], pad: bool) -> Result<usize, Error> {
        if !(MIN_CHANNEL..=MAX_CHANNEL_RFC5766).contains(&channel) {
            return Err(Error::BadChannelNumber { channel });
        }
        let length = u16::try_from(data.len()).map_err(|_| Error::TooLong)?;
        let end = HEADER_LEN + data.len();
        let total = if pad { end.next_multiple_of(4) } else { end };
        let too_small = Error::BufferTooSmall {
            needed: total,
            have: out.len(),
        };
        // Once `..total` is there, both splits succeed: `HEADER_LEN + data.len() <= total`.
        let (head, rest) = out
            .get_mut(..total)
            .and_then(<[u8]>::split_first_chunk_mut::<HEADER_LEN>)
            .ok_or(too_small)?;
        let (out_data, padding) = rest.split_at_mut_checked(data.len()).ok_or(too_small)?;
        let [c0, c1] = channel.to_be_bytes();
        let [l0, l1] = length.to_be_bytes();
        *head = [c0, c1, l0, l1];
        out_data.copy_from_slice(data);
        padding.fill(0);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpadded_and_padded_forms_parse() {
        let mut buf = [0u8; 16];
        let n = ChannelData::encode(0x4FFF, b"abc", &mut buf, false).unwrap();
        assert_eq!(n, 7);
        assert_eq!(ChannelData::parse(&buf[..n]).unwrap().data, b"abc");
        let n = ChannelData::encode(0x4FFF, b"abc", &mut buf, true).unwrap();
        assert_eq!(n, 8);
        assert_eq!(ChannelData::parse(&buf[..n]).unwrap().padding, 1);
    }

    #[test]
    fn channel_numbers_outside_0x4000_to_0x4fff_are_refused() {
        assert_eq!(
            ChannelData::parse(&[0x50, 0, 0, 0]),
            Err(Error::BadChannelNumber { channel: 0x5000 })
        );
        assert_eq!(
            ChannelData::parse(&[0x3F, 0xFF, 0, 0]),
            Err(Error::BadChannelNumber { channel: 0x3FFF })
        );
        assert!(ChannelData::encode(0x3FFF, b"", &mut [0; 8], false).is_err());
        assert!(ChannelData::encode(0x8000, b"", &mut [0; 8], false).is_err());
    }

    #[test]
    fn rfc_5766_channel_numbers_parse_only_when_asked() {
        let buf = [0x7F, 0xFF, 0, 1, 9];
        assert!(ChannelData::parse(&buf).is_err());
        assert_eq!(
            ChannelData::parse_in_range(&buf, MAX_CHANNEL_RFC5766)
                .unwrap()
                .channel,
            0x7FFF
        );
        assert!(ChannelData::parse_in_range(&[0x80, 0, 0, 0], MAX_CHANNEL_RFC5766).is_err());
    }

    #[test]
    fn short_datagrams_are_truncated() {
        assert_eq!(
            ChannelData::parse(&[0x40, 0, 0, 5, 1, 2]),
            Err(Error::Truncated { needed: 9, have: 6 })
        );
        assert_eq!(
            ChannelData::parse(&[0x40, 0]),
            Err(Error::Truncated { needed: 4, have: 2 })
        );
    }

    #[test]
    fn more_than_three_trailing_bytes_are_refused() {
        assert_eq!(
            ChannelData::parse(&[0x40, 0, 0, 1, 9, 0, 0, 0, 0]),
            Err(Error::ChannelDataTrailing {
                length: 1,
                extra: 4
            })
        );
    }
}
