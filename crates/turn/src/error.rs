//! The error type of floe-turn's codecs and credential helpers.

/// What was wrong with TURN bytes or a TURN request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer bytes than the header or the length field needs.
    #[error("truncated: need {needed} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        have: usize,
    },
    /// A channel number outside 0x4000-0x4FFF (RFC 8656 §12).
    #[error("channel number {channel:#06x} is outside 0x4000-0x4FFF")]
    BadChannelNumber {
        /// The number found.
        channel: u16,
    },
    /// More than 3 bytes follow the data of a ChannelData message (RFC 8656 §12.5 allows
    /// only padding to a multiple of 4).
    #[error("ChannelData of length {length} is followed by {extra} bytes; at most 3 bytes of padding are allowed")]
    ChannelDataTrailing {
        /// The length field.
        length: usize,
        /// Bytes after the data.
        extra: usize,
    },
    /// The output buffer is too small.
    #[error("buffer too small: need {needed} bytes, have {have}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Capacity.
        have: usize,
    },
    /// The data does not fit a 16-bit length.
    #[error("data too long for a 16-bit length")]
    TooLong,
    /// A STUN-level error.
    #[error(transparent)]
    Stun(#[from] floe_stun::Error),
}
