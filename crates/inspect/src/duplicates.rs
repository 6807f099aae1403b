//! Repeated attributes.
//!
//! RFC 8489 §14: "Any attribute type MAY appear more than once in a STUN message. Unless
//! specified otherwise, the order of appearance is significant: only the first occurrence
//! needs to be processed by a receiver, and any duplicates MAY be ignored by a receiver."
//! A repeat therefore breaks no rule. `floe decode` notes it, because the receiver will
//! act on the first one only, except where a definition asks for repeats:
//!
//! - XOR-PEER-ADDRESS in a CreatePermission request, one per permission (RFC 8656
//!   §10.1-10.2: "MAY include more than one such attribute");
//! - a second XOR-RELAYED-ADDRESS of the other address family in an Allocate success
//!   response, for a dual allocation (RFC 8656 §7.2: "two XOR-RELAYED-ADDRESS
//!   attributes", one IPv4 and one IPv6).
//!
//! The repeats a specification forbids are violations found by other checks, before this
//! one: a second MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 follows the first and is
//! ignored (RFC 8489 §14.5-14.6, `placement`); a second FINGERPRINT follows the first,
//! which must be last (§14.7, `structure`). RFC 8445 §7.1 and §16.1 say nothing about
//! repeating PRIORITY, USE-CANDIDATE, ICE-CONTROLLED or ICE-CONTROLLING, so the general
//! rule applies to them: a note. Attributes ignored after MESSAGE-INTEGRITY are left out
//! here; they are reported as `placement` already.

use std::collections::HashMap;

use floe_stun::attributes::AttrType;
use floe_stun::{Class, Method};

use crate::verdict::AttributeReport;

/// Whether the definitions ask for this repeat (see the module documentation).
fn expected(
    method: Method,
    class: Class,
    first: &AttributeReport,
    again: &AttributeReport,
) -> bool {
    match AttrType(again.code) {
        AttrType::XOR_PEER_ADDRESS => {
            method == Method::CREATE_PERMISSION && class == Class::Request
        }
        AttrType::XOR_RELAYED_ADDRESS => {
            method == Method::ALLOCATE
                && class == Class::Success
                && first.value.get("family") != again.value.get("family")
        }
        _ => false,
    }
}

/// A note (offset, message) for each repeat the definitions do not ask for, in message
/// order.
pub fn notes(method: Method, class: Class, attributes: &[AttributeReport]) -> Vec<(usize, String)> {
    // Type -> the first occurrence, and how many of that type were expected repeats.
    let mut firsts: HashMap<u16, (&AttributeReport, usize)> = HashMap::new();
    let mut out = Vec::new();
    for a in attributes.iter().filter(|a| !a.ignored) {
        let Some((first, expected_repeats)) = firsts.get_mut(&a.code) else {
            firsts.insert(a.code, (a, 0));
            continue;
        };
        // A dual allocation has two XOR-RELAYED-ADDRESS attributes, not three.
        let allowed = if a.code == AttrType::XOR_RELAYED_ADDRESS.0 {
            *expected_repeats == 0
        } else {
            true
        };
        if allowed && expected(method, class, first, a) {
            *expected_repeats += 1;
            continue;
        }
        // Values that do not decode are reported on their own; compare the others.
        let same = match (&first.error, &a.error) {
            (None, None) if first.length == a.length && first.value == a.value => {
                " with the same value"
            }
            (None, None) => " with a different value",
            _ => "",
        };
        out.push((
            a.offset,
            format!(
                "attribute {} at offset {} repeats the one at offset {}{same}: only the first counts, receivers may ignore this one (RFC 8489 §14)",
                AttrType(a.code),
                a.offset,
                first.offset
            ),
        ));
    }
    out
}
