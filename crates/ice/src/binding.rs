//! The STUN Binding messages of ICE, built in one place: the request that checks a pair
//! and refreshes consent (RFC 8445 §7.2.2, RFC 7675 §5.1), and the answers to a check
//! (RFC 8445 §7.3.1.1, §7.3.1.4; RFC 8489 §6.3.1).

use std::net::SocketAddr;

use floe_stun::attributes::{
    ErrorCode, IceControlled, IceControlling, Nomination as NominationAttr, Priority,
    UnknownAttributes, UseCandidate, Username, XorMappedAddress,
};
use floe_stun::TransactionId;
use floe_stun::{AttrType, Class, IntegrityKey, Message, MessageBuilder, MessageType, Sha1Key};

use crate::config::Role;

/// What a Binding request from this agent carries besides its transaction id.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    /// `remote-ufrag:local-ufrag` (RFC 8445 §7.2.2).
    pub(crate) username: &'a str,
    /// The peer-reflexive priority the pair's local candidate would have (§7.2.2).
    pub(crate) priority: u32,
    /// ICE-CONTROLLING or ICE-CONTROLLED with the tie-breaker (§7.2.2, §7.3.1.1).
    pub(crate) role: Role,
    pub(crate) tie_breaker: u64,
    /// Whether it nominates its pair.
    pub(crate) nominate: Nominate,
    /// The peer's password: short-term credentials (§7.2.2).
    pub(crate) key: &'a IntegrityKey,
}

/// Whether a check nominates its pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nominate {
    /// A plain check (and every consent check).
    No,
    /// USE-CANDIDATE (RFC 8445 §8.1.1).
    Yes,
    /// USE-CANDIDATE and NOMINATION with this counter (renomination, as libwebrtc has it).
    Again(u32),
}

/// The request's bytes, signed and with a FINGERPRINT.
pub(crate) fn request(tid: TransactionId, r: &Request<'_>) -> Result<Vec<u8>, floe_stun::Error> {
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, tid)?;
    b.add(&Username(r.username))?.add(&Priority(r.priority))?;
    match r.role {
        Role::Controlling => b.add(&IceControlling(r.tie_breaker))?,
        Role::Controlled => b.add(&IceControlled(r.tie_breaker))?,
    };
    match r.nominate {
        Nominate::No => {}
        Nominate::Yes => {
            b.add(&UseCandidate)?;
        }
        Nominate::Again(n) => {
            b.add(&UseCandidate)?.add(&NominationAttr(n))?;
        }
    }
    b.add_message_integrity(r.key)?.add_fingerprint()?;
    Ok(b.finish().to_vec())
}

/// The answer to an authenticated check: success with XOR-MAPPED-ADDRESS `remote`
/// (RFC 8445 §7.3.1.4), or `error` (487 for a role conflict, §7.3.1.1), signed with our
/// password.
pub(crate) fn response(
    msg: &Message<'_>,
    remote: SocketAddr,
    error: Option<ErrorCode<'_>>,
    key: &IntegrityKey,
) -> Result<Vec<u8>, floe_stun::Error> {
    let mut buf = [0u8; 256];
    let n = write_response(msg, remote, error, key.sha1(), &mut buf)?;
    Ok(buf.get(..n).unwrap_or_default().to_vec())
}

/// [`response`] written into `out`; its length.
pub(crate) fn write_response(
    msg: &Message<'_>,
    remote: SocketAddr,
    error: Option<ErrorCode<'_>>,
    key: &Sha1Key,
    out: &mut [u8],
) -> Result<usize, floe_stun::Error> {
    let buf = out;
    let class = if error.is_some() {
        Class::Error
    } else {
        Class::Success
    };
    let mut b = MessageBuilder::new(
        buf,
        msg.message_type().with_class(class),
        msg.transaction_id(),
    )?;
    match error {
        Some(e) => b.add(&e)?,
        None => b.add(&XorMappedAddress(remote))?,
    };
    b.add_message_integrity(key)?.add_fingerprint()?;
    Ok(b.len())
}

/// RFC 8445 §7.3: whether a check's USERNAME (`LFRAG:RFRAG`) names the agent whose ufrag
/// is `ufrag`: the part before the first colon is it (compared in place).
pub(crate) fn names_us(username: &[u8], ufrag: &[u8]) -> bool {
    username.starts_with(ufrag) && username.get(ufrag.len()).is_none_or(|b| *b == b':')
}

/// A 420 with UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1), signed like every response.
pub(crate) fn unknown_attributes(
    msg: &Message<'_>,
    unknown: &[AttrType],
    key: &IntegrityKey,
) -> Result<Vec<u8>, floe_stun::Error> {
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        msg.message_type().with_class(Class::Error),
        msg.transaction_id(),
    )?;
    b.add(&ErrorCode::UNKNOWN_ATTRIBUTE)?
        .add(&UnknownAttributes::from_types(unknown))?
        .add_message_integrity(key)?
        .add_fingerprint()?;
    Ok(b.finish().to_vec())
}
