//! `floe connect --stats SECONDS`: the connection's stats as one JSON line, shaped like
//! the W3C RTCIceCandidatePairStats and RTCIceCandidateStats (camelCase names, times as
//! Unix milliseconds, RTTs in seconds as WebRTC reports them).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use floe_ice::{Candidate, CandidateKind, PairState, PairStats};
use floe_peer::{CandidateInfo, PeerStats};
use serde_json::{json, Value};

/// An `Instant` as Unix milliseconds, given the clock pair (`now`, `wall`) read together.
fn unix_ms(t: Instant, now: Instant, wall: SystemTime) -> f64 {
    let at = wall
        .checked_sub(now.saturating_duration_since(t))
        .unwrap_or(UNIX_EPOCH);
    let ms = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
        * 1e3;
    ms.round()
}

fn state(s: PairState) -> &'static str {
    // RTCStatsIceCandidatePairState.
    match s {
        PairState::Frozen => "frozen",
        PairState::Waiting => "waiting",
        PairState::InProgress => "in-progress",
        PairState::Succeeded => "succeeded",
        PairState::Failed => "failed",
    }
}

fn kind(k: CandidateKind) -> &'static str {
    match k {
        CandidateKind::Host => "host",
        CandidateKind::ServerReflexive => "srflx",
        CandidateKind::PeerReflexive => "prflx",
        CandidateKind::Relayed => "relay",
    }
}

fn pair(
    (local, remote, s, st): &(SocketAddr, SocketAddr, PairState, PairStats),
    selected: bool,
    now: Instant,
    wall: SystemTime,
) -> Value {
    let ts = |t: Option<Instant>| t.map(|t| unix_ms(t, now, wall));
    json!({
        "local": local,
        "remote": remote,
        "state": state(*s),
        "nominated": st.nominated,
        "selected": selected,
        "packetsSent": st.packets_sent,
        "packetsReceived": st.packets_received,
        "bytesSent": st.bytes_sent,
        "bytesReceived": st.bytes_received,
        "lastPacketSentTimestamp": ts(st.last_packet_sent),
        "lastPacketReceivedTimestamp": ts(st.last_packet_received),
        "totalRoundTripTime": st.total_round_trip_time.as_secs_f64(),
        "currentRoundTripTime": st.current_rtt.map(|r| r.as_secs_f64()),
        "requestsSent": st.requests_sent,
        "requestsReceived": st.requests_received,
        "responsesSent": st.responses_sent,
        "responsesReceived": st.responses_received,
        "consentRequestsSent": st.consent_requests_sent,
    })
}

fn candidate(c: &Candidate) -> Value {
    json!({
        "candidateType": kind(c.kind),
        "address": c.addr().map(|a| a.ip().to_string()),
        "port": c.addr().map(|a| a.port()),
        "protocol": "udp",
        "priority": c.priority,
        "foundation": c.foundation,
    })
}

fn local(c: &CandidateInfo) -> Value {
    let mut v = candidate(&c.candidate);
    v["url"] = c.url.clone().into();
    v["relayProtocol"] = c.relay_protocol.map(floe_ice::Transport::as_str).into();
    v
}

/// The stats line: `{"event":"stats","state":...,"pairs":[...],"localCandidates":[...],
/// "remoteCandidates":[...]}`.
pub fn stats_json(s: &PeerStats) -> Value {
    let (now, wall) = (Instant::now(), SystemTime::now());
    let selected = s.selected.as_ref().map(|p| (p.local, p.remote));
    json!({
        "event": "stats",
        "timestamp": unix_ms(now, now, wall),
        "state": format!("{:?}", s.state).to_lowercase(),
        "pairs": s.pairs.iter().map(|p| pair(p, selected == Some((p.0, p.1)), now, wall)).collect::<Vec<_>>(),
        "localCandidates": s.local_candidates.iter().map(local).collect::<Vec<_>>(),
        "remoteCandidates": s.remote_candidates.iter().map(candidate).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_become_unix_milliseconds() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_000);
        let earlier = now.checked_sub(Duration::from_millis(250)).unwrap();
        assert!((unix_ms(now, now, wall) - 1_000_000.0).abs() < 0.5);
        assert!((unix_ms(earlier, now, wall) - 999_750.0).abs() < 0.5);
    }
}
