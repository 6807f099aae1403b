//! Building and sending the client's requests (RFC 8656 §7.1 Allocate, §8.1 Refresh,
//! §9.1 CreatePermission, §12.1 ChannelBind), each in its own RFC 8489 §6.2
//! [`ClientTransaction`], signed with the long-term credential once a challenge was
//! answered ([`super::auth`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use floe_stun::attributes::{
    AdditionalAddressFamily, AdditionalAddressFamilyDraft, AddressFamily, ChannelNumber, Lifetime,
    RequestedAddressFamily, RequestedTransport, Software, XorPeerAddress,
};
use floe_stun::transaction::{ClientTransaction, Reliability};
use floe_stun::{Class, MessageBuilder, MessageType, Method, TransactionId};
use rand::Rng;

use super::{Client, TurnError};
use crate::Transmit;

#[derive(Debug, Clone)]
pub(super) enum Request {
    Allocate,
    Refresh { lifetime: u32 },
    CreatePermission(Vec<IpAddr>),
    ChannelBind { peer: SocketAddr, channel: u16 },
    Connect(SocketAddr),
}

#[derive(Debug)]
pub(super) struct Pending {
    pub(super) request: Request,
    pub(super) transaction: ClientTransaction,
    /// 401/438 retries used for this request.
    pub(super) retries: u8,
}

impl Client {
    pub(super) fn to_server(&self, data: Vec<u8>) -> Transmit {
        Transmit {
            transport: self.config.transport,
            source: self.config.local,
            destination: self.config.server,
            data,
        }
    }

    pub(super) fn send_request(&mut self, now: Instant, request: Request, retries: u8) {
        let tid = TransactionId(self.rng.gen());
        let Ok(bytes) = self.build(&request, tid) else {
            self.on_failure(
                now,
                request,
                TurnError::Malformed("request could not be encoded"),
            );
            return;
        };
        let reliability = if self.config.transport.is_stream() {
            Reliability::Reliable
        } else {
            Reliability::Unreliable
        };
        match ClientTransaction::new(bytes, reliability, self.config.transaction) {
            Ok(transaction) => {
                self.pending.insert(
                    tid,
                    Pending {
                        request,
                        transaction,
                        retries,
                    },
                );
                self.flush(now);
            }
            Err(_) => self.on_failure(
                now,
                request,
                TurnError::Malformed("request could not be encoded"),
            ),
        }
    }

    pub(super) fn build(
        &self,
        request: &Request,
        tid: TransactionId,
    ) -> Result<Vec<u8>, floe_stun::Error> {
        let mut buf = vec![0u8; 1024];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::new(method_of(request), Class::Request),
            tid,
        )?;
        match request {
            Request::Allocate => {
                b.add(if self.config.tcp_relay {
                    &RequestedTransport::TCP
                } else {
                    &RequestedTransport::UDP
                })?;
                b.add(&Lifetime(self.config.lifetime.as_secs() as u32))?;
                if self.config.family == AddressFamily::Ipv6 {
                    b.add(&RequestedAddressFamily(AddressFamily::Ipv6))?;
                }
                if self.config.dual_stack {
                    b.add(&AdditionalAddressFamily(AddressFamily::Ipv6))?;
                    // coturn reads the draft codepoint only (docs/rfc-compliance.md).
                    b.add(&AdditionalAddressFamilyDraft(AddressFamily::Ipv6))?;
                }
            }
            Request::Refresh { lifetime } => {
                b.add(&Lifetime(*lifetime))?;
            }
            Request::CreatePermission(ips) => {
                for ip in ips {
                    b.add(&XorPeerAddress(SocketAddr::new(*ip, 0)))?;
                }
            }
            Request::ChannelBind { peer, channel } => {
                b.add(&ChannelNumber(*channel))?
                    .add(&XorPeerAddress(*peer))?;
            }
            Request::Connect(peer) => {
                b.add(&XorPeerAddress(*peer))?;
            }
        }
        if let Some(s) = &self.config.software {
            b.add(&Software(s))?;
        }
        self.sign(&mut b)?;
        b.add_fingerprint()?;
        let n = b.len();
        buf.truncate(n);
        Ok(buf)
    }

    /// Moves due transmissions of pending requests to the outgoing queue.
    pub(super) fn flush(&mut self, now: Instant) {
        let mut out = Vec::new();
        for p in self.pending.values_mut() {
            if let Some(bytes) = p.transaction.poll_transmit(now) {
                out.push(bytes.to_vec());
            }
        }
        for data in out {
            let t = self.to_server(data);
            self.transmits.push_back(t);
        }
    }
}

pub(super) fn method_of(request: &Request) -> Method {
    match request {
        Request::Allocate => Method::ALLOCATE,
        Request::Refresh { .. } => Method::REFRESH,
        Request::CreatePermission(_) => Method::CREATE_PERMISSION,
        Request::ChannelBind { .. } => Method::CHANNEL_BIND,
        Request::Connect(_) => Method::CONNECT,
    }
}
