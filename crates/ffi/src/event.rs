//! The agent's events and states as flat C structs.

use std::ffi::{c_char, CString};

use floe_ice::{CandidateKind, ConnectionState, Event, GatheringState, Recovery, SelectedPair};

use crate::addr::{FloeAddr, FloeTransport};

/// RTCIceConnectionState.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloeConnectionState {
    /// Nothing yet.
    New = 0,
    /// Checks in flight, no usable pair.
    Checking = 1,
    /// A pair works and is selected.
    Connected = 2,
    /// Nominated and checks done.
    Completed = 3,
    /// No pair works, or consent was lost (RFC 7675).
    Failed = 4,
    /// Closed by the application.
    Closed = 5,
    /// The selected pair went quiet; the agent is recovering (`FLOE_EVENT_KIND_RECOVERY`).
    Disconnected = 6,
}

impl From<ConnectionState> for FloeConnectionState {
    fn from(s: ConnectionState) -> FloeConnectionState {
        match s {
            ConnectionState::New => FloeConnectionState::New,
            ConnectionState::Checking => FloeConnectionState::Checking,
            ConnectionState::Connected => FloeConnectionState::Connected,
            ConnectionState::Completed => FloeConnectionState::Completed,
            ConnectionState::Failed => FloeConnectionState::Failed,
            ConnectionState::Closed => FloeConnectionState::Closed,
            ConnectionState::Disconnected => FloeConnectionState::Disconnected,
        }
    }
}

/// RTCIceGatheringState.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloeGatheringState {
    /// Not started.
    New = 0,
    /// Waiting for STUN/TURN servers.
    Gathering = 1,
    /// Every server answered or timed out.
    Complete = 2,
}

impl From<GatheringState> for FloeGatheringState {
    fn from(s: GatheringState) -> FloeGatheringState {
        match s {
            GatheringState::New => FloeGatheringState::New,
            GatheringState::Gathering => FloeGatheringState::Gathering,
            GatheringState::Complete => FloeGatheringState::Complete,
        }
    }
}

/// A candidate's type (RFC 8445 §5.1.1).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloeCandidateKind {
    /// `typ host`.
    Host = 0,
    /// `typ srflx`.
    ServerReflexive = 1,
    /// `typ prflx`.
    PeerReflexive = 2,
    /// `typ relay`.
    Relayed = 3,
}

impl From<CandidateKind> for FloeCandidateKind {
    fn from(k: CandidateKind) -> FloeCandidateKind {
        match k {
            CandidateKind::Host => FloeCandidateKind::Host,
            CandidateKind::ServerReflexive => FloeCandidateKind::ServerReflexive,
            CandidateKind::PeerReflexive => FloeCandidateKind::PeerReflexive,
            CandidateKind::Relayed => FloeCandidateKind::Relayed,
        }
    }
}

/// A step of the recovery ladder when the selected pair goes quiet (docs/c-api.md).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloeRecovery {
    /// Not a recovery event.
    None = 0,
    /// The selected pair was quiet for `duration_us`: recovery starts (the state is
    /// `DISCONNECTED`). New local candidates may follow: trickle them.
    Started = 1,
    /// Another live pair carries data now (a `SELECTED_PAIR` event says which).
    Switched = 2,
    /// No other pair was live: every pair is checked again.
    Checking = 3,
    /// A pair is heard again, `duration_us` after recovery started.
    Recovered = 4,
    /// Nothing worked in time: restart ICE (`floe_agent_restart`) and signal again.
    RestartNeeded = 5,
}

impl FloeRecovery {
    /// The step and its duration in microseconds.
    fn of(r: &Recovery) -> (FloeRecovery, u64) {
        let us = |d: &std::time::Duration| d.as_micros().min(u128::from(u64::MAX)) as u64;
        match r {
            Recovery::Started { quiet_for } => (FloeRecovery::Started, us(quiet_for)),
            Recovery::Switched => (FloeRecovery::Switched, 0),
            Recovery::Checking { .. } => (FloeRecovery::Checking, 0),
            Recovery::Recovered { after } => (FloeRecovery::Recovered, us(after)),
            Recovery::RestartNeeded => (FloeRecovery::RestartNeeded, 0),
            _ => (FloeRecovery::None, 0),
        }
    }
}

/// The pair data goes through.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloeSelectedPair {
    /// The local socket (base) data is sent from.
    pub local: FloeAddr,
    /// The remote address data is sent to.
    pub remote: FloeAddr,
    /// Local candidate type.
    pub local_kind: FloeCandidateKind,
    /// Remote candidate type.
    pub remote_kind: FloeCandidateKind,
    /// Smoothed round-trip time of the pair's checks in microseconds, 0 if unknown.
    pub rtt_us: u64,
    /// Whether the pair is nominated (final) rather than the best valid pair so far.
    pub nominated: bool,
    /// `FLOE_TRANSPORT_TCP` for an ICE-TCP pair (data goes framed on the caller's TCP
    /// connection between `local` and `remote`), else `FLOE_TRANSPORT_UDP`.
    pub transport: FloeTransport,
}

impl Default for FloeSelectedPair {
    fn default() -> FloeSelectedPair {
        FloeSelectedPair {
            local: FloeAddr::default(),
            remote: FloeAddr::default(),
            local_kind: FloeCandidateKind::Host,
            remote_kind: FloeCandidateKind::Host,
            rtt_us: 0,
            nominated: false,
            transport: FloeTransport::Udp,
        }
    }
}

impl From<&SelectedPair> for FloeSelectedPair {
    fn from(p: &SelectedPair) -> FloeSelectedPair {
        FloeSelectedPair {
            local: p.local.into(),
            remote: p.remote.into(),
            local_kind: p.local_kind.into(),
            remote_kind: p.remote_kind.into(),
            rtt_us: p.rtt.map_or(0, |r| r.as_micros().max(1) as u64),
            nominated: p.nominated,
            transport: p.transport.into(),
        }
    }
}

/// What an event is about; the fields of [`FloeEvent`] it uses are listed with each.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloeEventKind {
    /// A local candidate to signal to the peer (trickle, RFC 8838): `text` is its
    /// `candidate:` line (RFC 8839 §5.1).
    LocalCandidate = 0,
    /// `gathering_state` changed.
    GatheringState = 1,
    /// `connection_state` changed.
    ConnectionState = 2,
    /// The selected pair changed: `pair`.
    SelectedPair = 3,
    /// A TURN allocation won its race: `server`, `transport`, `relayed`.
    RelayAllocated = 4,
    /// Close the caller's `transport` stream to `server`.
    CloseStream = 5,
    /// Resolve the mDNS name in `text` (RFC 6762) and give the answer to
    /// `floe_agent_handle_mdns_resolved`.
    ResolveMdns = 6,
    /// The STUN or TURN `server` failed; `text` says why. Gathering goes on.
    ServerFailed = 7,
    /// A step of recovery: `recovery`, with `duration_us`.
    Recovery = 8,
    /// Local candidates withdrawn because their address went away: `text` holds their
    /// `candidate:` lines, one per line (`\n`). Tell the peer if its side understands it
    /// (it then calls `floe_agent_remove_remote_candidate` for each); trickle ICE itself
    /// has no such message.
    LocalCandidatesRemoved = 9,
    /// A TURN server redirected an allocation (300 Try Alternate, RFC 8489 §10): the agent
    /// now allocates on `relayed` (the alternate) over `transport`; `server` redirected.
    /// Over TLS, check the alternate's certificate against `text` (ALTERNATE-DOMAIN,
    /// §14.16) or, when `text` is NULL, against the name used for `server`. Comes before
    /// the first transmit to the alternate.
    TurnRedirected = 10,
    /// RFC 6544 §8: close the caller's ICE-TCP connection between local base
    /// `pair.local` and `pair.remote` (ICE no longer needs it).
    CloseTcp = 11,
    /// An event this version of the C API does not describe.
    Other = 255,
}

/// One event. Only the fields its `kind` names are meaningful; `text` is NULL when
/// unused and otherwise valid until the next call on the agent.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FloeEvent {
    /// What happened.
    pub kind: FloeEventKind,
    /// A candidate line, an mDNS name or a failure reason; NULL otherwise.
    pub text: *const c_char,
    /// For `GATHERING_STATE`.
    pub gathering_state: FloeGatheringState,
    /// For `CONNECTION_STATE`.
    pub connection_state: FloeConnectionState,
    /// For `SELECTED_PAIR`.
    pub pair: FloeSelectedPair,
    /// The STUN/TURN server, for `RELAY_ALLOCATED`, `CLOSE_STREAM` and `SERVER_FAILED`.
    pub server: FloeAddr,
    /// The relayed address, for `RELAY_ALLOCATED`; the alternate server, for
    /// `TURN_REDIRECTED`.
    pub relayed: FloeAddr,
    /// For `RELAY_ALLOCATED`, `CLOSE_STREAM` and `TURN_REDIRECTED`.
    pub transport: FloeTransport,
    /// For `RECOVERY`: the step.
    pub recovery: FloeRecovery,
    /// For `RECOVERY`: how long the pair was quiet (`STARTED`) or recovery took
    /// (`RECOVERED`), in microseconds; 0 otherwise.
    pub duration_us: u64,
}

impl FloeEvent {
    fn empty(kind: FloeEventKind) -> FloeEvent {
        FloeEvent {
            kind,
            text: std::ptr::null(),
            gathering_state: FloeGatheringState::New,
            connection_state: FloeConnectionState::New,
            pair: FloeSelectedPair::default(),
            server: FloeAddr::default(),
            relayed: FloeAddr::default(),
            transport: FloeTransport::Udp,
            recovery: FloeRecovery::None,
            duration_us: 0,
        }
    }

    /// The C form of `event`; its text, if any, is kept in `text` (which must outlive
    /// the pointer the event holds).
    pub(crate) fn from_event(event: &Event, text: &mut Option<CString>) -> FloeEvent {
        let mut keep = |s: String| {
            let c = CString::new(s.replace('\0', "")).unwrap_or_default();
            text.insert(c).as_ptr()
        };
        match event {
            Event::LocalCandidate(c) => FloeEvent {
                text: keep(c.to_string()),
                ..FloeEvent::empty(FloeEventKind::LocalCandidate)
            },
            Event::LocalCandidatesRemoved(cs) => FloeEvent {
                text: keep(
                    cs.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                ..FloeEvent::empty(FloeEventKind::LocalCandidatesRemoved)
            },
            Event::GatheringState(s) => FloeEvent {
                gathering_state: (*s).into(),
                ..FloeEvent::empty(FloeEventKind::GatheringState)
            },
            Event::ConnectionState(s) => FloeEvent {
                connection_state: (*s).into(),
                ..FloeEvent::empty(FloeEventKind::ConnectionState)
            },
            Event::SelectedPair(p) => FloeEvent {
                pair: p.into(),
                ..FloeEvent::empty(FloeEventKind::SelectedPair)
            },
            Event::RelayAllocated {
                server,
                transport,
                relayed,
            } => FloeEvent {
                server: (*server).into(),
                transport: (*transport).into(),
                relayed: (*relayed).into(),
                ..FloeEvent::empty(FloeEventKind::RelayAllocated)
            },
            Event::CloseStream { transport, server } => FloeEvent {
                server: (*server).into(),
                transport: (*transport).into(),
                ..FloeEvent::empty(FloeEventKind::CloseStream)
            },
            Event::TurnRedirected {
                server,
                alternate,
                transport,
                domain,
            } => FloeEvent {
                text: domain.clone().map_or(std::ptr::null(), &mut keep),
                server: (*server).into(),
                relayed: (*alternate).into(),
                transport: (*transport).into(),
                ..FloeEvent::empty(FloeEventKind::TurnRedirected)
            },
            Event::CloseTcp { local, remote } => FloeEvent {
                pair: FloeSelectedPair {
                    local: (*local).into(),
                    remote: (*remote).into(),
                    ..FloeSelectedPair::default()
                },
                transport: FloeTransport::Tcp,
                ..FloeEvent::empty(FloeEventKind::CloseTcp)
            },
            Event::ResolveMdns { name } => FloeEvent {
                text: keep(name.clone()),
                ..FloeEvent::empty(FloeEventKind::ResolveMdns)
            },
            Event::ServerFailed { server, reason } => FloeEvent {
                server: (*server).into(),
                text: keep(reason.clone()),
                ..FloeEvent::empty(FloeEventKind::ServerFailed)
            },
            Event::Recovery(r) => {
                let (recovery, duration_us) = FloeRecovery::of(r);
                FloeEvent {
                    recovery,
                    duration_us,
                    ..FloeEvent::empty(FloeEventKind::Recovery)
                }
            }
            _ => FloeEvent::empty(FloeEventKind::Other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn a_redirect_carries_both_servers_the_transport_and_the_domain_when_there_is_one() {
        let server = "192.0.2.1:5349".parse().unwrap();
        let alternate = "192.0.2.2:5349".parse().unwrap();
        for domain in [Some("relay-b.example.org".to_owned()), None] {
            let mut text = None;
            let e = FloeEvent::from_event(
                &Event::TurnRedirected {
                    server,
                    alternate,
                    transport: floe_ice::Transport::Tls,
                    domain: domain.clone(),
                },
                &mut text,
            );
            assert_eq!(e.kind, FloeEventKind::TurnRedirected);
            assert_eq!(e.server, server.into());
            assert_eq!(e.relayed, alternate.into());
            assert_eq!(e.transport, FloeTransport::Tls);
            match domain {
                // SAFETY: non-NULL text that `text` keeps alive.
                Some(d) => assert_eq!(unsafe { CStr::from_ptr(e.text) }.to_str().unwrap(), d),
                None => assert!(e.text.is_null()),
            }
        }
    }
}
