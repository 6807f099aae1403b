//! Attribute values in words (for the text output) and as JSON values. The JSON shape of
//! each attribute is documented in docs/decode.md.

use std::net::SocketAddr;

use floe_stun::attributes::{default_reason, AddressFamily, AnyAttribute};
use serde_json::{json, Value};

use crate::verdict::{hex, hex_short};

/// One attribute value, described twice.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    /// For `--json`.
    pub json: Value,
    /// For people.
    pub text: String,
}

fn d(json: Value, text: String) -> Described {
    Described { json, text }
}

fn address(a: SocketAddr) -> Described {
    let family = if a.is_ipv4() { "IPv4" } else { "IPv6" };
    d(
        json!({ "family": family, "address": a.ip().to_string(), "port": a.port() }),
        a.to_string(),
    )
}

fn text(s: &str) -> Described {
    d(json!(s), format!("{s:?}"))
}

fn family(f: AddressFamily) -> &'static str {
    match f {
        AddressFamily::Ipv4 => "IPv4",
        AddressFamily::Ipv6 => "IPv6",
    }
}

fn opaque(bytes: &[u8]) -> Described {
    d(json!(hex(bytes)), hex_short(bytes))
}

fn number(n: u64) -> Described {
    d(json!(n), n.to_string())
}

fn flag() -> Described {
    d(json!(true), "(flag)".to_owned())
}

fn algorithm_name(a: u16) -> String {
    match a {
        1 => "MD5".to_owned(),
        2 => "SHA-256".to_owned(),
        n => format!("{n:#06x}"),
    }
}

/// Describes a decoded attribute value.
pub fn describe(a: &AnyAttribute<'_>) -> Described {
    use AnyAttribute as A;
    match a {
        A::MappedAddress(v) => address(v.0),
        A::XorMappedAddress(v) => address(v.0),
        A::XorPeerAddress(v) => address(v.0),
        A::XorRelayedAddress(v) => address(v.0),
        A::AlternateServer(v) => address(v.0),
        A::ResponseOrigin(v) => address(v.0),
        A::OtherAddress(v) => address(v.0),
        A::Username(v) => text(v.0),
        A::Realm(v) => text(v.0),
        A::Nonce(v) => text(v.0),
        A::Software(v) => text(v.0),
        A::AlternateDomain(v) => text(v.0),
        A::ErrorCode(v) => {
            let standard = default_reason(v.code);
            d(
                json!({ "code": v.code, "reason": v.reason }),
                if standard.is_empty() || standard == v.reason {
                    format!("{} {:?}", v.code, v.reason)
                } else {
                    format!("{} {:?} (standard reason: {standard})", v.code, v.reason)
                },
            )
        }
        A::AddressErrorCode(v) => d(
            json!({ "family": family(v.family), "code": v.code, "reason": v.reason }),
            format!("{} {} {:?}", family(v.family), v.code, v.reason),
        ),
        A::UnknownAttributes(v) => {
            let types: Vec<String> = v.iter().map(|t| format!("{:#06x}", t.0)).collect();
            let words: Vec<String> = v.iter().map(|t| t.to_string()).collect();
            d(json!(types), words.join(", "))
        }
        A::MessageIntegrity(v) => opaque(&v.0[..]),
        A::MessageIntegritySha256(v) => opaque(v.0),
        A::UserHash(v) => opaque(&v.0[..]),
        A::Data(v) => opaque(v.0),
        A::Padding(v) => d(json!(hex(v.0)), format!("{} bytes", v.0.len())),
        A::ReservationToken(v) => opaque(&v.0),
        A::Fingerprint(v) => d(json!(v.0), format!("{:#010x}", v.0)),
        A::ChannelNumber(v) => d(
            json!(v.0),
            if v.is_valid() {
                format!("{:#06x}", v.0)
            } else {
                format!("{:#06x} (outside 0x4000-0x4fff, RFC 8656 §12)", v.0)
            },
        ),
        A::Lifetime(v) => d(json!(v.0), format!("{} s", v.0)),
        A::RequestedTransport(v) => {
            let name = match v.0 {
                17 => " (UDP)",
                6 => " (TCP)",
                _ => "",
            };
            d(json!(v.0), format!("{}{name}", v.0))
        }
        A::RequestedAddressFamily(v) => d(json!(family(v.0)), family(v.0).to_owned()),
        A::AdditionalAddressFamily(v) => d(json!(family(v.0)), family(v.0).to_owned()),
        A::EvenPort(v) => d(
            json!({ "reserve": v.reserve }),
            if v.reserve {
                "reserve the next port".to_owned()
            } else {
                "no reservation".to_owned()
            },
        ),
        A::DontFragment(_) | A::UseCandidate(_) => flag(),
        A::Priority(v) => number(u64::from(v.0)),
        A::Nomination(v) => number(u64::from(v.0)),
        A::IceControlled(v) => d(json!(v.0), format!("tie-breaker {:#018x}", v.0)),
        A::IceControlling(v) => d(json!(v.0), format!("tie-breaker {:#018x}", v.0)),
        A::ConnectionId(v) => number(u64::from(v.0)),
        A::ResponsePort(v) => number(u64::from(v.0)),
        A::ChangeRequest(v) => d(
            json!({ "change_ip": v.change_ip, "change_port": v.change_port }),
            format!("change IP: {}, change port: {}", v.change_ip, v.change_port),
        ),
        A::PasswordAlgorithm(v) => d(
            json!({ "algorithm": v.algorithm, "parameters": hex(v.params) }),
            algorithm_name(v.algorithm),
        ),
        A::PasswordAlgorithms(v) => {
            let list: Vec<Value> = v
                .iter()
                .map(|p| json!({ "algorithm": p.algorithm, "parameters": hex(p.params) }))
                .collect();
            let words: Vec<String> = v.iter().map(|p| algorithm_name(p.algorithm)).collect();
            d(json!(list), words.join(", "))
        }
        A::Icmp(v) => d(
            json!({ "type": v.icmp_type, "code": v.code, "error_data": v.error_data }),
            format!(
                "type {} code {} data {:#010x}",
                v.icmp_type, v.code, v.error_data
            ),
        ),
        // AnyAttribute is non-exhaustive: a newer floe-stun may know more attributes.
        other => d(json!(format!("{other:?}")), format!("{other:?}")),
    }
}
