//! Is it STUN, and is its message type one a receiver will take for STUN?
//!
//! RFC 7983 tells STUN from ZRTP, DTLS, TURN ChannelData, RTP/RTCP and QUIC by the first
//! byte: 0-3 is STUN. That holds for every method RFC 8489 §18.2 allows (0x000-0x0FF)
//! with the two most significant bits zero (§5). A message that breaks either rule has
//! its first byte elsewhere, yet its magic cookie, a length that is a multiple of 4 and
//! matches the datagram, and FINGERPRINT where it has one (§7.3, §14.7: FINGERPRINT is
//! there to tell STUN from other protocols) still say it is STUN. `floe decode` judges
//! such a message as STUN and says what is wrong with its type, rather than calling it
//! DTLS or QUIC; bytes without all of that stay "not STUN/TURN".

use floe_stun::attributes::{AttrType, RawAttribute};
use floe_stun::{fingerprint, Method, HEADER_LEN, MAGIC_COOKIE};

/// The attributes of a STUN message as far as their lengths fit, without judging them.
pub fn walk(bytes: &[u8]) -> impl Iterator<Item = RawAttribute<'_>> {
    let mut at = HEADER_LEN;
    std::iter::from_fn(move || {
        let &[t0, t1, l0, l1] = bytes.get(at..at.checked_add(4)?)? else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let start = at + 4;
        let value = bytes.get(start..start + len)?;
        let raw = RawAttribute {
            typ: AttrType(u16::from_be_bytes([t0, t1])),
            value,
            offset: at,
        };
        at = start + len.next_multiple_of(4);
        Some(raw)
    })
}

/// Whether `bytes`, whatever its first byte, is a STUN message by everything but the
/// first byte: the magic cookie, a length field that is a multiple of 4 and matches the
/// datagram, and a correct FINGERPRINT if the last attribute is one.
pub fn stun_by_cookie(bytes: &[u8]) -> bool {
    let Some(&[_, _, l0, l1, c0, c1, c2, c3]) = bytes.get(..8) else {
        return false;
    };
    let length = usize::from(u16::from_be_bytes([l0, l1]));
    if u32::from_be_bytes([c0, c1, c2, c3]) != MAGIC_COOKIE
        || length % 4 != 0
        || HEADER_LEN + length != bytes.len()
    {
        return false;
    }
    let last = walk(bytes).last();
    match last {
        Some(a) if a.typ == AttrType::FINGERPRINT && a.offset + 8 == bytes.len() => {
            match (bytes.get(..a.offset), <[u8; 4]>::try_from(a.value)) {
                (Some(covered), Ok(v)) => fingerprint::compute(covered) == u32::from_be_bytes(v),
                _ => false,
            }
        }
        _ => true,
    }
}

/// What is wrong with a message type whose two top bits are set (RFC 8489 §5).
pub fn top_bits(raw_type: u16, demux: &str) -> String {
    format!(
        "message type {raw_type:#06x}: the two most significant bits must be zero (RFC 8489 §5); its first byte {:#04x} is in the RFC 7983 range {demux}",
        raw_type >> 8
    )
}

/// A method outside the range RFC 8489 §18.2 gives STUN methods: a violation.
pub fn method_violation(method: Method, raw_type: u16, demux: &str) -> Option<String> {
    (method.value() > 0x0FF).then(|| {
        format!(
            "method {:#05x} is outside 0x000-0x0ff, the range of STUN methods (RFC 8489 §18.2; RFC 7983 §9.1 reserves 0x100-0xfff), so its first byte {:#04x} is in the RFC 7983 range {demux}: a receiver that demultiplexes by RFC 7983 does not take it for STUN",
            method.value(),
            raw_type >> 8
        )
    })
}

/// A method in range that floe does not know: a note.
pub fn method_note(method: Method) -> Option<String> {
    if method.value() > 0x0FF || method.name().is_some() {
        return None;
    }
    Some(match method.value() {
        0x000 => "method 0x000 is reserved (RFC 8489 §18.2)".to_owned(),
        0x002 => {
            "method 0x002 is reserved; it was SharedSecret before RFC 5389 (RFC 8489 §18.2)"
                .to_owned()
        }
        v => format!(
            "method {v:#05x} is not one floe knows (Binding of RFC 8489, the TURN methods of RFC 8656 and RFC 6062); it is within the STUN range 0x000-0x0ff (RFC 8489 §18.2)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(typ: u16, body: &[u8]) -> Vec<u8> {
        let mut m = typ.to_be_bytes().to_vec();
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        m.extend_from_slice(&[9; 12]);
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn cookie_and_length_say_stun_whatever_the_first_byte() {
        assert!(stun_by_cookie(&message(0x3EEF, &[])));
        assert!(stun_by_cookie(&message(
            0xC001,
            &[0x80, 0x22, 0, 1, b'x', 0, 0, 0]
        )));
        // Length not matching the datagram, not a multiple of 4, no cookie, too short.
        let mut m = message(0x3EEF, &[0; 8]);
        m.pop();
        assert!(!stun_by_cookie(&m));
        let mut m = message(0x3EEF, &[0; 8]);
        m[3] = 6;
        assert!(!stun_by_cookie(&m));
        let mut m = message(0x3EEF, &[]);
        m[4] ^= 1;
        assert!(!stun_by_cookie(&m));
        assert!(!stun_by_cookie(&[0x3E, 0xEF, 0, 0, 0x21, 0x12, 0xa4, 0x42]));
    }

    #[test]
    fn a_wrong_fingerprint_says_not_stun() {
        let mut m = message(0x3EEF, &[0x80, 0x28, 0, 4, 0, 0, 0, 0]);
        let crc = fingerprint::compute(&m[..20]);
        assert!(!stun_by_cookie(&m));
        m[24..28].copy_from_slice(&crc.to_be_bytes());
        assert!(stun_by_cookie(&m));
    }

    #[test]
    fn random_bytes_are_not_stun() {
        // A fixed xorshift stream: 100,000 datagrams of 20-200 bytes.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..100_000 {
            let len = 20 + (next() % 181) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            assert!(!stun_by_cookie(&bytes), "{bytes:?}");
        }
    }

    #[test]
    fn methods_are_judged_by_the_rfc_8489_range() {
        let fff = Method::new(0xFFF).unwrap();
        assert!(method_violation(fff, 0x3EEF, "DTLS (first byte 20-63)")
            .unwrap()
            .starts_with("method 0xfff is outside 0x000-0x0ff"));
        assert_eq!(method_note(fff), None);
        let unassigned = Method::new(0x0FF).unwrap();
        assert_eq!(method_violation(unassigned, 0x03EF, "STUN"), None);
        assert!(method_note(unassigned).is_some());
        assert_eq!(method_note(Method::BINDING), None);
        assert_eq!(method_violation(Method::BINDING, 0x0001, "STUN"), None);
    }
}
