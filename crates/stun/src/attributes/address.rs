//! Address attributes: MAPPED-ADDRESS and its XOR-ed form (RFC 8489 §14.1, §14.2), and the
//! attributes that share their encodings (XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS,
//! ALTERNATE-SERVER, RESPONSE-ORIGIN, OTHER-ADDRESS).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{AttrType, Attribute, RawAttribute};
use crate::{Error, TransactionId, MAGIC_COOKIE};

const FAMILY_V4: u8 = 0x01;
const FAMILY_V6: u8 = 0x02;

/// Decodes the shared address layout: 0x00, family, port, address (RFC 8489 §14.1).
/// With `xor`, port and address are XOR-ed with the cookie and transaction id (§14.2).
fn decode_address(
    raw: &RawAttribute<'_>,
    name: &'static str,
    xor: Option<&TransactionId>,
) -> Result<SocketAddr, Error> {
    let v = raw.value;
    let (&[_, family, p0, p1], address) = match v.split_first_chunk() {
        Some(split) if v.len() == 8 || v.len() == 20 => split,
        _ => return Err(raw.bad_length(name, "8 or 20")),
    };
    let port = u16::from_be_bytes([p0, p1]);
    let cookie = MAGIC_COOKIE.to_be_bytes();
    match family {
        FAMILY_V4 => {
            let &[a, b, c, d] = address else {
                return Err(raw.bad_length(name, "8 for IPv4"));
            };
            let mut ip = [a, b, c, d];
            let mut port = port;
            if xor.is_some() {
                port ^= (MAGIC_COOKIE >> 16) as u16;
                for (b, k) in ip.iter_mut().zip(cookie) {
                    *b ^= k;
                }
            }
            Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        FAMILY_V6 => {
            let Ok(&(mut ip)) = <&[u8; 16]>::try_from(address) else {
                return Err(raw.bad_length(name, "20 for IPv6"));
            };
            let mut port = port;
            if let Some(tid) = xor {
                port ^= (MAGIC_COOKIE >> 16) as u16;
                let key = cookie.iter().chain(tid.0.iter());
                for (b, k) in ip.iter_mut().zip(key) {
                    *b ^= k;
                }
            }
            Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        family => Err(Error::BadAddressFamily {
            typ: raw.typ,
            offset: raw.offset,
            family,
        }),
    }
}

fn address_len(addr: &SocketAddr) -> usize {
    if addr.is_ipv4() {
        8
    } else {
        20
    }
}

/// Writes the shared address layout; `out` is [`address_len`] bytes.
fn encode_address(addr: &SocketAddr, xor: Option<&TransactionId>, out: &mut [u8]) {
    let mut port = addr.port();
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let [p0, p1] = port.to_be_bytes();
    let cookie = MAGIC_COOKIE.to_be_bytes();
    match addr.ip() {
        IpAddr::V4(ip) => {
            let mut o = ip.octets();
            if xor.is_some() {
                for (b, k) in o.iter_mut().zip(cookie) {
                    *b ^= k;
                }
            }
            let [a0, a1, a2, a3] = o;
            out.copy_from_slice(&[0, FAMILY_V4, p0, p1, a0, a1, a2, a3]);
        }
        IpAddr::V6(ip) => {
            let mut o = ip.octets();
            if let Some(tid) = xor {
                for (b, k) in o.iter_mut().zip(cookie.iter().chain(tid.0.iter())) {
                    *b ^= k;
                }
            }
            let mut value = [0u8; 20];
            value[..4].copy_from_slice(&[0, FAMILY_V6, p0, p1]);
            value[4..].copy_from_slice(&o);
            out.copy_from_slice(&value);
        }
    }
}

macro_rules! address_attribute {
    ($(#[$doc:meta])* $name:ident, $konst:ident, $reg:literal, xor = $xor:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub SocketAddr);

        impl<'a> Attribute<'a> for $name {
            const TYPE: AttrType = AttrType::$konst;

            fn decode(raw: &RawAttribute<'a>, tid: &TransactionId) -> Result<Self, Error> {
                decode_address(raw, $reg, if $xor { Some(tid) } else { None }).map($name)
            }

            fn value_len(&self) -> usize {
                address_len(&self.0)
            }

            fn encode(&self, tid: &TransactionId, out: &mut [u8]) {
                encode_address(&self.0, if $xor { Some(tid) } else { None }, out);
            }
        }
    };
}

address_attribute!(
    /// MAPPED-ADDRESS (RFC 8489 §14.1): the reflexive address, not XOR-ed (kept for RFC
    /// 3489 compatibility; new servers send XOR-MAPPED-ADDRESS).
    MappedAddress, MAPPED_ADDRESS, "MAPPED-ADDRESS", xor = false
);
address_attribute!(
    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2): the reflexive transport address, XOR-ed with the
    /// magic cookie (and, for IPv6, the transaction id) so NATs that rewrite addresses in
    /// payloads leave it alone.
    XorMappedAddress, XOR_MAPPED_ADDRESS, "XOR-MAPPED-ADDRESS", xor = true
);
address_attribute!(
    /// XOR-PEER-ADDRESS (RFC 8656 §18.3): a peer's address as seen from the TURN server.
    XorPeerAddress, XOR_PEER_ADDRESS, "XOR-PEER-ADDRESS", xor = true
);
address_attribute!(
    /// XOR-RELAYED-ADDRESS (RFC 8656 §18.5): the relayed transport address of an allocation.
    XorRelayedAddress, XOR_RELAYED_ADDRESS, "XOR-RELAYED-ADDRESS", xor = true
);
address_attribute!(
    /// ALTERNATE-SERVER (RFC 8489 §14.15): a server to try instead (with 300 Try Alternate).
    AlternateServer, ALTERNATE_SERVER, "ALTERNATE-SERVER", xor = false
);
address_attribute!(
    /// RESPONSE-ORIGIN (RFC 5780 §7.3): the address the response was sent from.
    ResponseOrigin, RESPONSE_ORIGIN, "RESPONSE-ORIGIN", xor = false
);
address_attribute!(
    /// OTHER-ADDRESS (RFC 5780 §7.4): the server's alternate address and port.
    OtherAddress, OTHER_ADDRESS, "OTHER-ADDRESS", xor = false
);

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(typ: AttrType, value: &[u8]) -> RawAttribute<'_> {
        RawAttribute {
            typ,
            value,
            offset: 20,
        }
    }

    #[test]
    fn zero_length_address_names_the_allowed_lengths() {
        let tid = TransactionId([0; 12]);
        let err = XorMappedAddress::decode(&raw(AttrType::XOR_MAPPED_ADDRESS, &[]), &tid);
        let err = err.unwrap_err();
        assert_eq!(
            err.to_string(),
            "attribute 0x0020 (XOR-MAPPED-ADDRESS) at offset 20: length 0, XOR-MAPPED-ADDRESS needs 8 or 20"
        );
    }

    #[test]
    fn unknown_family_is_rejected() {
        let tid = TransactionId([0; 12]);
        let v = [0, 3, 0, 1, 1, 2, 3, 4];
        assert_eq!(
            MappedAddress::decode(&raw(AttrType::MAPPED_ADDRESS, &v), &tid),
            Err(Error::BadAddressFamily {
                typ: AttrType::MAPPED_ADDRESS,
                offset: 20,
                family: 3
            })
        );
    }

    #[test]
    fn family_must_match_length() {
        let tid = TransactionId([0; 12]);
        let mut v = [0u8; 20];
        v[1] = FAMILY_V4;
        assert!(matches!(
            MappedAddress::decode(&raw(AttrType::MAPPED_ADDRESS, &v), &tid),
            Err(Error::BadAttributeLength {
                expected: "8 for IPv4",
                ..
            })
        ));
        let mut v = [0u8; 8];
        v[1] = FAMILY_V6;
        assert!(matches!(
            MappedAddress::decode(&raw(AttrType::MAPPED_ADDRESS, &v), &tid),
            Err(Error::BadAttributeLength {
                expected: "20 for IPv6",
                ..
            })
        ));
    }
}
