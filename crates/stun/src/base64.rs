//! Standard base64 (RFC 4648 §4), the alphabet of the RFC 8489 §9.2 nonce cookie and of
//! TURN REST passwords (draft-uberti-behave-turn-rest §2.2). A few lines, not a
//! dependency.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The base64 digit (RFC 4648 §4) for the low six bits of `v`.
pub(crate) fn digit(v: u32) -> u8 {
    match (v & 0x3F) as u8 {
        v @ 0..=25 => b'A' + v,
        v @ 26..=51 => b'a' + (v - 26),
        v @ 52..=61 => b'0' + (v - 52),
        62 => b'+',
        _ => b'/',
    }
}

/// The six-bit value of base64 digit `c`, or `None` if it is not one.
pub(crate) fn value(c: u8) -> Option<u8> {
    B64.iter().position(|&b| b == c).map(|v| v as u8)
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [0, 1, 2].map(|i| chunk.get(i).copied().unwrap_or(0));
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(digit(n >> (18 - 6 * i))));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_digits_follow_the_rfc_4648_alphabet() {
        for (v, &expected) in (0u32..).zip(B64) {
            assert_eq!(digit(v), expected);
            assert_eq!(digit(v | 0xC0), expected, "only the low six bits count");
        }
    }

    #[test]
    fn value_inverts_digit() {
        for v in 0u8..64 {
            assert_eq!(value(digit(u32::from(v))), Some(v));
        }
        assert_eq!(value(b'='), None);
        assert_eq!(value(b'-'), None);
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(i.as_bytes()), o);
        }
    }

    #[test]
    fn base64_uses_every_digit_of_the_alphabet() {
        // The 64 six-bit values 0..=63 in order, packed into 48 bytes.
        let bits: Vec<u8> = (0u8..64).collect();
        let bytes: Vec<u8> = bits
            .chunks(4)
            .flat_map(|s| {
                let n = (u32::from(s[0]) << 18)
                    | (u32::from(s[1]) << 12)
                    | (u32::from(s[2]) << 6)
                    | u32::from(s[3]);
                [(n >> 16) as u8, (n >> 8) as u8, n as u8]
            })
            .collect();
        assert_eq!(
            encode(&bytes),
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        );
    }
}
