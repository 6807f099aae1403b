//! The RFC 7983 first-byte demultiplexer (as updated by RFC 9443): one UDP port carries
//! STUN, TURN ChannelData, DTLS, RTP/RTCP, ZRTP and QUIC, told apart by the first byte.

/// What a datagram is, by its first byte (RFC 7983 §7, RFC 9443 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// 0-3: STUN.
    Stun,
    /// 16-19: ZRTP.
    Zrtp,
    /// 20-63: DTLS.
    Dtls,
    /// 64-79: TURN ChannelData (RFC 8656 §12.4).
    ChannelData,
    /// 80-127 and 192-255: QUIC (RFC 9443).
    Quic,
    /// 128-191: RTP or RTCP.
    RtpRtcp,
    /// 4-15, or an empty datagram: nothing defined; drop it.
    Unknown,
}

impl PacketKind {
    /// The range and name, for diagnostics: "DTLS (first byte 20-63)".
    pub fn description(self) -> &'static str {
        match self {
            PacketKind::Stun => "STUN (first byte 0-3)",
            PacketKind::Zrtp => "ZRTP (first byte 16-19)",
            PacketKind::Dtls => "DTLS (first byte 20-63)",
            PacketKind::ChannelData => "TURN ChannelData (first byte 64-79)",
            PacketKind::Quic => "QUIC (first byte 80-127 or 192-255)",
            PacketKind::RtpRtcp => "RTP/RTCP (first byte 128-191)",
            PacketKind::Unknown => "unassigned (first byte 4-15, or empty)",
        }
    }
}

/// Classifies a datagram by its first byte (RFC 7983 §7 with the RFC 9443 QUIC ranges).
pub fn classify(datagram: &[u8]) -> PacketKind {
    match datagram.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(16..=19) => PacketKind::Zrtp,
        Some(20..=63) => PacketKind::Dtls,
        Some(64..=79) => PacketKind::ChannelData,
        Some(80..=127 | 192..=255) => PacketKind::Quic,
        Some(128..=191) => PacketKind::RtpRtcp,
        Some(4..=15) | None => PacketKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_first_byte_falls_in_the_rfc_7983_ranges() {
        let expect = |b: u8| match b {
            0..=3 => PacketKind::Stun,
            4..=15 => PacketKind::Unknown,
            16..=19 => PacketKind::Zrtp,
            20..=63 => PacketKind::Dtls,
            64..=79 => PacketKind::ChannelData,
            128..=191 => PacketKind::RtpRtcp,
            _ => PacketKind::Quic,
        };
        for b in 0..=255u8 {
            assert_eq!(classify(&[b, 0, 0, 0]), expect(b), "first byte {b}");
        }
        assert_eq!(classify(&[]), PacketKind::Unknown);
    }
}
