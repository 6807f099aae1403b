//! What a [`PeerConnection`](crate::PeerConnection) is configured with and what it
//! reports: [`PeerConfig`], [`TurnServerConfig`], [`Side`], [`PeerError`], [`PeerEvent`],
//! [`PeerStats`], and how the configuration is read (the transports a TURN URI allows,
//! the TLS configuration for `turns:`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use floe_ice::{AgentConfig, ConnectionState, SelectedPair, Transport};
use rustls::pki_types::CertificateDer;
use tokio::sync::mpsc;

use crate::interfaces::InterfacePolicy;
use crate::turn::{TlsConfigError, TlsTrust};
use crate::uri::{IceServerUri, Scheme, UriTransport};

/// A TURN server as configured: its URI and credentials. The peer resolves it into one
/// [`floe_ice::TurnServer`] (an address and the transports to race) per local address.
///
/// The URI says how it is reached (RFC 7065): `turn:host:port` races UDP and, 150 ms
/// later ([`AgentConfig::turn_stagger`]), TCP, keeping the first allocation that succeeds;
/// `?transport=udp` or `?transport=tcp` pins one; `turns:` is TLS over TCP (default port
/// 5349), verified against [`PeerConfig::tls_roots`] or [`PeerConfig::tls`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnServerConfig {
    /// `turn:`/`turns:` URI.
    pub uri: IceServerUri,
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// How to connect.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PeerConfig {
    /// STUN servers (`stun:` URIs).
    pub stun: Vec<IceServerUri>,
    /// TURN servers.
    pub turn: Vec<TurnServerConfig>,
    /// Which interfaces to open sockets on.
    pub interfaces: InterfacePolicy,
    /// Bind exactly these local addresses instead of enumerating interfaces (port 0 picks
    /// a free port).
    pub bind: Vec<SocketAddr>,
    /// Ports for host candidates (pion's `SetEphemeralUDPPortRange`, for firewalls that
    /// open a known range): every socket bound with port 0 (each enumerated interface,
    /// and `bind` entries with port 0) takes a free port of this range instead of one
    /// the OS picks, trying from a random port onwards. `None` (default): the OS picks.
    pub port_range: Option<std::ops::RangeInclusive<u16>>,
    /// How long `connect` waits for a selected pair (default 30 s).
    pub connect_timeout: Option<Duration>,
    /// Agent settings (Ta, timers, limits, and `relay_only`: use only relayed
    /// candidates).
    pub agent: AgentConfig,
    /// DSCP code point (0-63, RFC 2474) for every packet: set as the IPv4 TOS / IPv6
    /// traffic class on the UDP sockets and the TCP/TLS connections to TURN servers.
    /// `None` (default) leaves the system's (0, best effort). E.g. 46 (EF) for voice.
    pub dscp: Option<u8>,
    /// Trust anchors (DER certificates of CAs, or of the servers themselves) for `turns:`
    /// servers. There is no built-in root store: pass the CAs you trust (e.g. the system
    /// bundle) or a whole [`PeerConfig::tls`].
    pub tls_roots: Vec<CertificateDer<'static>>,
    /// The rustls client configuration for `turns:` servers; overrides
    /// [`PeerConfig::tls_roots`].
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// How often the host's addresses are read again for continual gathering (default
    /// 500 ms; `None` turns it off). A new address gets a socket and its candidates; a
    /// vanished one is withdrawn, and a call on it recovers on another path. Only with
    /// enumerated interfaces (not with [`PeerConfig::bind`]).
    pub address_watch: Option<Duration>,
    /// Reach TURN servers over TCP and TLS through this HTTP CONNECT proxy, as browsers
    /// do behind corporate proxies (`http://[user:password@]host[:port]`). UDP is not
    /// proxied.
    pub proxy: Option<crate::turn::HttpProxy>,
    /// Signal host candidates under random `<uuid>.local` mDNS names instead of their
    /// addresses, as browsers do (draft-ietf-mmusic-mdns-ice-candidates-03), and answer
    /// mDNS queries for those names (and only those) on the link. Related addresses of
    /// the other candidates are signalled as `0.0.0.0 0`. A peer elsewhere then never
    /// learns a private address; a peer on the same link resolves the names. Default off.
    /// (The peer's `.local` candidates are resolved either way.)
    pub mdns: bool,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            stun: Vec::new(),
            turn: Vec::new(),
            interfaces: InterfacePolicy::default(),
            bind: Vec::new(),
            port_range: None,
            connect_timeout: None,
            agent: AgentConfig::default(),
            dscp: None,
            tls_roots: Vec::new(),
            tls: None,
            address_watch: Some(Duration::from_millis(500)),
            proxy: None,
            mdns: false,
        }
    }
}

/// Which side of the offer/answer exchange this is; the offerer controls (RFC 8445 §6.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Sends the offer; controlling.
    Offer,
    /// Waits for the offer and answers; controlled.
    Answer,
}

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// Sockets could not be opened.
    #[error("cannot open sockets: {0}")]
    Io(#[from] io::Error),
    /// A server could not be resolved.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// Signalling closed or broke.
    #[error("signalling: {0}")]
    Signalling(String),
    /// The configuration cannot work (e.g. `turns:` without trust anchors).
    #[error("configuration: {0}")]
    Config(String),
    /// No path worked.
    #[error("ICE failed: no candidate pair works")]
    Failed,
    /// Nothing connected in time.
    #[error("timed out after {0:?} without a working path")]
    Timeout(Duration),
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

/// What the application sees change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerEvent {
    /// Connection state changed.
    State(ConnectionState),
    /// The selected pair changed ([`SelectedPair::turn_transport`] says how a relayed
    /// pair reaches its TURN server).
    Selected(SelectedPair),
    /// A TURN server's allocation succeeded; `transport` won the race (UDP, TCP or TLS).
    TurnTransport {
        /// The TURN server.
        server: SocketAddr,
        /// How it is reached.
        transport: Transport,
        /// The relayed address.
        relayed: SocketAddr,
    },
    /// A server failed during gathering.
    ServerFailed {
        /// The server.
        server: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A step of recovery after the selected pair went quiet (the network changed). When
    /// recovery runs out of time the controlling side restarts ICE through signalling.
    Recovery(floe_ice::Recovery),
}

/// A snapshot of a connection, in the spirit of the W3C RTCIceCandidatePairStats and
/// RTCIceCandidateStats ([`PeerConnection::stats`](crate::PeerConnection::stats)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerStats {
    /// The connection state.
    pub state: ConnectionState,
    /// The selected pair.
    pub selected: Option<SelectedPair>,
    /// Every pair the agent still holds (after nomination, only the selected one and
    /// those it keeps measuring): local base, remote address, state, counters and RTTs.
    pub pairs: Vec<(
        SocketAddr,
        SocketAddr,
        floe_ice::PairState,
        floe_ice::PairStats,
    )>,
    /// The local candidates offered, as RTCIceCandidateStats describes them.
    pub local_candidates: Vec<CandidateInfo>,
    /// The remote candidates known (signalled, and learned as peer-reflexive).
    pub remote_candidates: Vec<floe_ice::Candidate>,
    /// TURN allocations in use: server, the transport that won the race, relayed address.
    pub relays: Vec<(SocketAddr, Transport, SocketAddr)>,
    /// What the agent refused (malformed, unauthenticated, unvouched data...).
    pub refused: floe_ice::AgentStats,
}

/// A local candidate in the stats (W3C RTCIceCandidateStats).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CandidateInfo {
    /// The candidate.
    pub candidate: floe_ice::Candidate,
    /// The STUN or TURN server URI it came from (`url`), for server-reflexive and relayed
    /// candidates.
    pub url: Option<String>,
    /// How a relayed candidate's TURN server is reached (`relayProtocol`).
    pub relay_protocol: Option<Transport>,
}

/// A [`PeerConnection`](crate::PeerConnection)'s state and path changes, taken with
/// [`PeerConnection::take_events`](crate::PeerConnection::take_events).
#[derive(Debug)]
pub struct PeerEvents(pub(crate) mpsc::UnboundedReceiver<PeerEvent>);

impl PeerEvents {
    /// The next event; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<PeerEvent> {
        self.0.recv().await
    }
}

/// The transports a TURN URI allows, in racing order (RFC 7065 §3: `turn:` without
/// `?transport=` may use UDP and TCP; `turns:` is TLS over TCP). `None` for STUN URIs.
pub(crate) fn turn_transports(uri: &IceServerUri) -> Option<&'static [Transport]> {
    match (uri.scheme, uri.transport) {
        (Scheme::Turns, _) => Some(&[Transport::Tls]),
        (Scheme::Turn, Some(UriTransport::Udp)) => Some(&[Transport::Udp]),
        (Scheme::Turn, Some(UriTransport::Tcp)) => Some(&[Transport::Tcp]),
        (Scheme::Turn, None) => Some(&[Transport::Udp, Transport::Tcp]),
        (Scheme::Stun | Scheme::Stuns, _) => None,
    }
}

/// The TLS client configuration for `turns:` servers.
pub(crate) fn tls_client_config(
    config: &PeerConfig,
) -> Result<Arc<rustls::ClientConfig>, PeerError> {
    if let Some(tls) = &config.tls {
        return Ok(tls.clone());
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(config.tls_roots.iter().cloned());
    crate::turn::tls_client_config(TlsTrust::Roots(roots)).map_err(|e| match e {
        TlsConfigError::NoTrustAnchors => PeerError::Config(
            "turns: needs trust anchors (PeerConfig::tls_roots or PeerConfig::tls)".into(),
        ),
        e => PeerError::Config(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_uris_map_to_the_transports_rfc_7065_allows() {
        let t = |s: &str| turn_transports(&s.parse().unwrap());
        assert_eq!(
            t("turn:192.0.2.1"),
            Some(&[Transport::Udp, Transport::Tcp][..])
        );
        assert_eq!(
            t("turn:192.0.2.1?transport=udp"),
            Some(&[Transport::Udp][..])
        );
        assert_eq!(
            t("turn:192.0.2.1?transport=tcp"),
            Some(&[Transport::Tcp][..])
        );
        assert_eq!(t("turns:192.0.2.1"), Some(&[Transport::Tls][..]));
        assert_eq!(
            t("turns:192.0.2.1?transport=tcp"),
            Some(&[Transport::Tls][..])
        );
        assert_eq!(t("stun:192.0.2.1"), None);
    }

    #[test]
    fn turns_without_trust_anchors_is_a_configuration_error() {
        assert!(matches!(
            tls_client_config(&PeerConfig::default()),
            Err(PeerError::Config(_))
        ));
    }
}
