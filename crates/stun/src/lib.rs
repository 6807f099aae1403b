//! # floe-stun
//!
//! A zero-copy, sans-IO STUN codec (RFC 8489) with the TURN (RFC 8656), ICE (RFC 8445),
//! NAT behaviour discovery (RFC 5780) and TCP-relay (RFC 6062) attributes.
//!
//! - [`Message`] is a validated view over `&[u8]`: header checks, one attribute walk
//!   with length, padding and placement checks; attributes decode on demand with
//!   [`Message::get`]. Parsing allocates nothing.
//! - [`MessageBuilder`] writes into a caller's buffer and appends MESSAGE-INTEGRITY,
//!   MESSAGE-INTEGRITY-SHA256 and FINGERPRINT in place.
//! - [`IntegrityKey`] is built once per credential ([`IntegrityKey::short_term`],
//!   [`IntegrityKey::long_term`]) and reused: per message the cost is the bare HMAC.
//! - [`transaction::ClientTransaction`] is the RFC 8489 §6.2 retransmission timer,
//!   driven with `poll_transmit` / `poll_timeout` / `handle_timeout(now)`.
//! - [`framing`] cuts messages out of TCP/TLS streams; [`demux::classify`] is the RFC 7983
//!   first-byte demultiplexer.
//!
//! No input can panic the parser; every problem is an [`Error`] naming the rule and the
//! byte offset.
//!
//! ## A Binding request and its response
//!
//! ```
//! use std::net::SocketAddr;
//! use floe_stun::{attributes::*, IntegrityKey, Message, MessageBuilder, MessageType, TransactionId};
//!
//! // The client: an ICE connectivity check (RFC 8445 §7.1).
//! let key = IntegrityKey::short_term("remote-ice-pwd-22chars")?;
//! let tid = TransactionId([1; 12]); // use TransactionId::random(&mut rng)
//! let mut buf = [0u8; 1280];
//! let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, tid)?;
//! b.add(&Username("rfrag:lfrag"))?.add(&Priority(1_853_824_767))?.add(&IceControlling(42))?;
//! b.add_message_integrity(&key)?.add_fingerprint()?;
//! let request = b.finish().to_vec();
//!
//! // The server: parse, verify, answer with the source address it saw.
//! let req = Message::parse(&request)?;
//! req.verify(&key)?;
//! let seen: SocketAddr = "192.0.2.1:32853".parse().unwrap();
//! let mut out = [0u8; 1280];
//! let mut b = MessageBuilder::new(&mut out, MessageType::BINDING_SUCCESS, req.transaction_id())?;
//! b.add(&XorMappedAddress(seen))?.add_message_integrity(&key)?.add_fingerprint()?;
//! let response = b.finish();
//!
//! // The client again.
//! let resp = Message::parse(response)?;
//! resp.verify(&key)?;
//! assert_eq!(resp.get::<XorMappedAddress>()?, Some(XorMappedAddress(seen)));
//! # Ok::<(), floe_stun::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod attributes;
pub mod base64;
mod builder;
pub mod credentials;
pub mod demux;
mod error;
pub mod fingerprint;
pub mod framing;
mod header;
mod integrity;
mod message;
pub mod transaction;
mod transmit;

pub use attributes::{AttrType, Attribute, RawAttribute};
pub use builder::MessageBuilder;
pub use error::Error;
pub use header::{
    Class, MessageType, Method, TransactionId, HEADER_LEN, MAGIC_COOKIE, MAX_MESSAGE_LEN,
};
pub use integrity::{IntegrityKey, IntegrityKind, Sha1Key};
pub use message::{
    has_magic_cookie, peek_header, peek_transaction_id, Attributes, Message, ParseOptions,
};
pub use transmit::{Transmit, Transport};
