//! Typed TURN failures a client reports (RFC 8656 §19, RFC 8489 §19).

use std::net::SocketAddr;

/// Why a TURN request (or the allocation) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TurnError {
    /// No response within the RFC 8489 §6.2 transaction timeout.
    #[error("no response from the TURN server (transaction timed out)")]
    Timeout,
    /// The transaction ran out of time, and what did arrive was discarded: the reason
    /// for the last one (an unknown comprehension-required attribute, failed integrity).
    #[error("no valid response from the TURN server: {0}")]
    InvalidResponse(String),

    /// 401 after credentials were sent: the user or password is wrong.
    #[error("401 Unauthenticated: the server refused the credentials")]
    Unauthenticated,
    /// 438 kept coming back after fresh nonces.
    #[error("438 Stale Nonce repeated")]
    StaleNonce,
    /// 441: the request used other credentials than the allocation's.
    #[error("441 Wrong Credentials")]
    WrongCredentials,
    /// 486: the user's allocation quota is used up.
    #[error("486 Allocation Quota Reached")]
    QuotaReached,
    /// 437: no allocation on this 5-tuple (or one already exists, for Allocate).
    #[error("437 Allocation Mismatch")]
    AllocationMismatch,
    /// 508: the server has no capacity (ports, allocations, permissions, channels).
    #[error("508 Insufficient Capacity")]
    InsufficientCapacity,
    /// 442: the server does not relay the requested transport.
    #[error("442 Unsupported Transport Protocol")]
    UnsupportedTransport,
    /// 440: the server does not allocate the requested address family.
    #[error("440 Address Family not Supported")]
    AddressFamilyNotSupported,
    /// 443: the peer's address family differs from the allocation's.
    #[error("443 Peer Address Family Mismatch")]
    PeerAddressFamilyMismatch,
    /// 403: the server refuses the peer address (policy).
    #[error("403 Forbidden")]
    Forbidden,
    /// 400.
    #[error("400 Bad Request: {reason}")]
    BadRequest {
        /// The server's reason phrase.
        reason: String,
    },
    /// 420: the server did not understand these attributes.
    #[error("420 Unknown Attribute: {attributes:04x?}")]
    UnknownAttribute {
        /// The attribute types it listed.
        attributes: Vec<u16>,
    },
    /// 300: try another server (RFC 8489 §10; RFC 8656 §7.4).
    #[error("300 Try Alternate: {server}")]
    TryAlternate {
        /// ALTERNATE-SERVER.
        server: SocketAddr,
        /// ALTERNATE-DOMAIN (RFC 8489 §14.16): over TLS, the name the alternate's
        /// certificate must carry; without it, the original server's name.
        domain: Option<String>,
    },
    /// Any other error response.
    #[error("{code} {reason}")]
    Other {
        /// The error code.
        code: u16,
        /// The reason phrase.
        reason: String,
    },
    /// A success response without an attribute it must carry.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// The client was asked to do something it cannot in its state.
    #[error("no allocation")]
    NoAllocation,
}

impl TurnError {
    /// The error for an error response code and reason.
    pub(crate) fn from_code(code: u16, reason: &str) -> TurnError {
        match code {
            401 => TurnError::Unauthenticated,
            403 => TurnError::Forbidden,
            437 => TurnError::AllocationMismatch,
            438 => TurnError::StaleNonce,
            440 => TurnError::AddressFamilyNotSupported,
            441 => TurnError::WrongCredentials,
            442 => TurnError::UnsupportedTransport,
            443 => TurnError::PeerAddressFamilyMismatch,
            486 => TurnError::QuotaReached,
            508 => TurnError::InsufficientCapacity,
            400 => TurnError::BadRequest {
                reason: reason.to_owned(),
            },
            _ => TurnError::Other {
                code,
                reason: reason.to_owned(),
            },
        }
    }
}
