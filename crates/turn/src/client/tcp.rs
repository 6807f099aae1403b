//! TURN-TCP (RFC 6062) in the client: Connect on the control connection, the
//! ConnectionAttempt indications a peer's connection brings, and the ConnectionBind a
//! runtime sends on each new data connection. The runtime owns every connection; once a
//! ConnectionBind succeeds, the data connection carries the peer's bytes as they are.

use std::net::SocketAddr;
use std::time::Instant;

use floe_stun::attributes::{ConnectionId, ErrorCode, Nonce, Realm, XorPeerAddress};
use floe_stun::{Class, Message, MessageBuilder, MessageType, Method, TransactionId};
use rand::Rng;

use super::requests::Request;
use super::{Client, ClientState, Event, TurnError};

/// A ConnectionBind in flight on a data connection: what to check its answer against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBind {
    /// The request's transaction ID.
    pub transaction: TransactionId,
    /// The CONNECTION-ID being bound.
    pub id: u32,
}

impl Client {
    /// Asks the server to connect the TCP allocation to `peer` (RFC 6062 §4.3); the
    /// result is [`Event::TcpConnected`] or [`Event::TcpConnectFailed`]. Not for a peer
    /// with a Connect already in flight (§4.3).
    pub fn connect(&mut self, now: Instant, peer: SocketAddr) -> Result<(), TurnError> {
        if self.state != ClientState::Allocated || !self.config.tcp_relay {
            return Err(TurnError::NoAllocation);
        }
        let busy = self
            .pending
            .values()
            .any(|p| matches!(p.request, Request::Connect(q) if q == peer));
        if busy {
            return Err(TurnError::Other {
                code: 446,
                reason: "a Connect to this peer is in flight".into(),
            });
        }
        self.send_request(now, Request::Connect(peer), 0);
        Ok(())
    }

    /// The ConnectionBind request for CONNECTION-ID `id` (RFC 6062 §4.3, §4.4), signed
    /// with the allocation's credentials, to send as the first message on a new
    /// connection to the server; check its answer with
    /// [`Client::handle_connection_bind_response`]. Over TCP nothing is retransmitted.
    pub fn connection_bind(&mut self, id: u32) -> Result<(Vec<u8>, ConnectionBind), TurnError> {
        if self.key.is_none() {
            return Err(TurnError::NoAllocation);
        }
        let tid = TransactionId(self.rng.gen());
        let build = || {
            let mut buf = vec![0u8; 1024];
            let mut b = MessageBuilder::new(
                &mut buf,
                MessageType::new(Method::CONNECTION_BIND, Class::Request),
                tid,
            )?;
            b.add(&ConnectionId(id))?;
            self.sign(&mut b)?;
            b.add_fingerprint()?;
            let n = b.len();
            buf.truncate(n);
            Ok::<_, floe_stun::Error>(buf)
        };
        let bytes =
            build().map_err(|_| TurnError::Malformed("ConnectionBind could not be encoded"))?;
        Ok((
            bytes,
            ConnectionBind {
                transaction: tid,
                id,
            },
        ))
    }

    /// The answer to a [`Client::connection_bind`] on its data connection: `Ok` when the
    /// connection now carries the peer's bytes. A 438 updates the nonce, so a new
    /// [`Client::connection_bind`] on the same connection can follow.
    pub fn handle_connection_bind_response(
        &mut self,
        bind: &ConnectionBind,
        bytes: &[u8],
    ) -> Result<(), TurnError> {
        let msg = Message::parse(bytes).map_err(|_| TurnError::Malformed("not STUN"))?;
        if msg.transaction_id() != bind.transaction
            || msg.method() != Method::CONNECTION_BIND
            || !matches!(msg.class(), Class::Success | Class::Error)
        {
            return Err(TurnError::Malformed("not the ConnectionBind's answer"));
        }
        let code = msg.get::<ErrorCode>().ok().flatten();
        if let Some(c) = code.filter(|c| c.code == 438) {
            if let Ok(Some(n)) = msg.get::<Nonce>() {
                self.nonce = Some(n.0.to_owned());
                if let Ok(Some(r)) = msg.get::<Realm>() {
                    self.realm = Some(r.0.to_owned());
                }
            }
            return Err(TurnError::from_code(c.code, c.reason));
        }
        // RFC 8489 §9.2.5: the answer must carry our integrity.
        let key = self.key.as_ref().ok_or(TurnError::NoAllocation)?;
        if msg.verify(key).is_err() {
            return Err(TurnError::Malformed(
                "ConnectionBind answer fails integrity",
            ));
        }
        match (msg.class(), code) {
            (Class::Success, _) => Ok(()),
            (_, Some(c)) => Err(TurnError::from_code(c.code, c.reason)),
            (_, None) => Err(TurnError::Malformed("error response without ERROR-CODE")),
        }
    }

    /// A Connect's success: its CONNECTION-ID.
    pub(super) fn on_connected(&mut self, peer: SocketAddr, msg: &Message<'_>) {
        match msg.get::<ConnectionId>() {
            Ok(Some(ConnectionId(id))) => self.events.push_back(Event::TcpConnected { peer, id }),
            _ => self.events.push_back(Event::TcpConnectFailed(
                peer,
                TurnError::Malformed("Connect success without CONNECTION-ID"),
            )),
        }
    }

    /// A ConnectionAttempt indication (§4.4), from a peer we gave a permission.
    pub(super) fn on_connection_attempt(&mut self, msg: &Message<'_>) {
        let (Ok(Some(XorPeerAddress(peer))), Ok(Some(ConnectionId(id)))) =
            (msg.get::<XorPeerAddress>(), msg.get::<ConnectionId>())
        else {
            self.discarded += 1;
            return;
        };
        if self.config.tcp_relay && self.permissions.contains_key(&peer.ip()) {
            self.events.push_back(Event::ConnectionAttempt { peer, id });
        } else {
            self.discarded += 1;
        }
    }
}
