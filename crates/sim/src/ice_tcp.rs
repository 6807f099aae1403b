//! ICE-TCP connections (RFC 6544) for an [`AgentNode`](crate::AgentNode): what a
//! runtime does for the agent's TCP candidates, on floe-netsim streams. The agent's side
//! of the contract is in `floe_ice::Agent::add_tcp_host`; this is the runtime's: open a
//! connection from an active base on first use, accept every connection to a passive
//! base, split what arrives into RFC 4571 frames, and report closed connections.

use std::collections::HashMap;
use std::net::SocketAddr;

use floe_ice::candidate::TCP_ACTIVE_PORT;
use floe_netsim::StreamId;
use floe_stun::framing::StreamDecoder;

/// One ICE-TCP connection: the agent's name for its ends, and its frame decoder.
#[derive(Debug)]
struct Connection {
    /// The local candidate's base (the listener, or the active base `ip:9`).
    base: SocketAddr,
    remote: SocketAddr,
    decoder: StreamDecoder,
}

/// The ICE-TCP connections of one node.
#[derive(Debug, Default)]
pub(crate) struct IceTcp {
    listeners: Vec<SocketAddr>,
    by_stream: HashMap<StreamId, Connection>,
    by_pair: HashMap<(SocketAddr, SocketAddr), StreamId>,
}

/// What to do with an agent's transmit from a TCP base.
pub(crate) enum Route {
    /// Write on this stream (connected, or queued behind the connect).
    Send(StreamId),
    /// Open this stream, then write.
    Connect(StreamId),
    /// No connection, and none can be opened (from a passive base).
    Closed,
}

impl IceTcp {
    pub(crate) fn listen(&mut self, addr: SocketAddr) {
        if !self.listeners.contains(&addr) {
            self.listeners.push(addr);
        }
    }

    /// The stream for bytes from `base` to `remote`; a new one from `local_port` if
    /// `base` is active and none exists.
    pub(crate) fn route(&mut self, base: SocketAddr, remote: SocketAddr, local_port: u16) -> Route {
        if let Some(id) = self.by_pair.get(&(base, remote)) {
            return Route::Send(*id);
        }
        if base.port() != TCP_ACTIVE_PORT || self.listeners.contains(&base) {
            return Route::Closed;
        }
        let id = StreamId::new(SocketAddr::new(base.ip(), local_port), remote);
        self.insert(id, base);
        Route::Connect(id)
    }

    /// A stream accepted on one of our listeners: an ICE-TCP connection if it is a
    /// passive base's.
    pub(crate) fn accepted(&mut self, id: StreamId) -> bool {
        if !self.listeners.contains(&id.local) {
            return false;
        }
        self.insert(id, id.local);
        true
    }

    fn insert(&mut self, id: StreamId, base: SocketAddr) {
        self.by_pair.insert((base, id.remote), id);
        self.by_stream.insert(
            id,
            Connection {
                base,
                remote: id.remote,
                decoder: StreamDecoder::new(StreamDecoder::RFC4571),
            },
        );
    }

    /// Bytes on `id`: the (base, remote) of its connection and the whole frames, or
    /// `None` if it is not an ICE-TCP stream. A corrupt stream yields `Err` with its
    /// ends (close it).
    #[allow(clippy::type_complexity)]
    pub(crate) fn data(
        &mut self,
        id: StreamId,
        bytes: &[u8],
    ) -> Option<Result<(SocketAddr, SocketAddr, Vec<Vec<u8>>), (SocketAddr, SocketAddr)>> {
        let c = self.by_stream.get_mut(&id)?;
        let ends = (c.base, c.remote);
        if c.decoder.extend(bytes).is_err() {
            return Some(Err(ends));
        }
        let mut frames = Vec::new();
        loop {
            match c.decoder.next_frame() {
                Ok(Some((_, f))) => frames.push(f.to_vec()),
                Ok(None) => break,
                Err(_) => return Some(Err(ends)),
            }
        }
        Some(Ok((ends.0, ends.1, frames)))
    }

    /// The stream between `base` and `remote`, forgotten (ICE closes it).
    pub(crate) fn close(&mut self, base: SocketAddr, remote: SocketAddr) -> Option<StreamId> {
        let id = self.by_pair.remove(&(base, remote))?;
        self.by_stream.remove(&id);
        Some(id)
    }

    /// The stream `id` is gone: its (base, remote), if it was an ICE-TCP one.
    pub(crate) fn closed(&mut self, id: StreamId) -> Option<(SocketAddr, SocketAddr)> {
        let c = self.by_stream.remove(&id)?;
        self.by_pair.remove(&(c.base, c.remote));
        Some((c.base, c.remote))
    }
}
