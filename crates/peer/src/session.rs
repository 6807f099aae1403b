//! The ICE session as the signalling sees it, sans-IO: which description answers which,
//! when an offer is an ICE restart (RFC 8445 §9), and which local candidates still
//! trickle (RFC 8838). The runtime moves [`SignalMessage`]s between this and the
//! application's channel; everything here is a function of the agent and the messages,
//! with no sockets, tasks or clock.

use std::time::Instant;

use floe_ice::{Agent, Candidate, Credentials, Event, GatheringState};

use crate::host_names::HostNames;
use crate::signal::{Description, SignalMessage};

/// The ICE option that says the sender accepts and sends renominations.
const RENOMINATION: &str = "renomination";

/// Whether this side's candidates still go out as they are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trickle {
    /// Each new local candidate is signalled (RFC 8838 §4.2).
    Open,
    /// End-of-candidates was signalled (§4.4); nothing more until a restart.
    Ended,
}

/// What signalling decided about one session of an [`Agent`].
#[derive(Debug)]
pub(crate) struct Session {
    /// The peer's current ufrag: a description with another one is an ICE restart.
    remote_ufrag: Option<String>,
    trickle: Trickle,
    /// Host candidates go out under mDNS names (`PeerConfig::mdns`).
    host_names: Option<HostNames>,
}

impl Session {
    pub(crate) fn new() -> Session {
        Session {
            remote_ufrag: None,
            trickle: Trickle::Open,
            host_names: None,
        }
    }

    /// Signals host candidates under mDNS names from now on.
    pub(crate) fn with_host_names(mut self, names: HostNames) -> Session {
        self.host_names = Some(names);
        self
    }

    /// A local candidate's line, as the peer may see it.
    fn line(&mut self, c: &Candidate) -> String {
        match &mut self.host_names {
            Some(names) => names.conceal(c).to_string(),
            None => c.to_string(),
        }
    }

    /// This side's credentials and the candidates known now (the rest trickle).
    pub(crate) fn description(&mut self, agent: &Agent) -> Description {
        let Credentials { ufrag, pwd } = agent.local_credentials().clone();
        Description {
            ufrag,
            pwd,
            lite: agent.is_lite(),
            ice_options: if agent.renomination_configured() {
                vec![RENOMINATION.into()]
            } else {
                Vec::new()
            },
            candidates: agent.local_candidates().map(|c| self.line(c)).collect(),
        }
    }

    /// Once this side's first description is out: end-of-candidates at once when
    /// gathering is already complete (host candidates only, say).
    pub(crate) fn described(&mut self, agent: &Agent) -> Option<SignalMessage> {
        if agent.gathering_state() == GatheringState::Complete {
            Some(self.end_of_candidates())
        } else {
            None
        }
    }

    /// The peer's offer at the start of the session: apply it and answer.
    pub(crate) fn answer(
        &mut self,
        agent: &mut Agent,
        now: Instant,
        offer: &Description,
    ) -> SignalMessage {
        self.remote_ufrag = Some(offer.ufrag.clone());
        apply_description(agent, now, offer);
        SignalMessage::Answer(self.description(agent))
    }

    /// A message from the peer once the session runs; returns what to send back.
    pub(crate) fn handle_signal(
        &mut self,
        agent: &mut Agent,
        now: Instant,
        msg: SignalMessage,
    ) -> Option<SignalMessage> {
        match msg {
            SignalMessage::Candidate { candidate } => {
                add_candidate(agent, now, &candidate);
                None
            }
            SignalMessage::EndOfCandidates => {
                agent.handle_end_of_remote_candidates(now);
                None
            }
            SignalMessage::RemoveCandidates { candidates } => {
                for line in candidates {
                    if let Ok(c) = line.parse::<Candidate>() {
                        agent.remove_remote_candidate(now, &c);
                    }
                }
                None
            }
            SignalMessage::Offer(d) => {
                // An offer with new credentials mid-session: the peer restarted ICE (RFC
                // 8445 §9); restart too and answer with ours.
                let restarted = self.remote_ufrag.as_deref().is_some_and(|u| u != d.ufrag);
                if restarted {
                    agent.restart(now);
                    self.trickle = Trickle::Open;
                }
                self.remote_ufrag = Some(d.ufrag.clone());
                apply_description(agent, now, &d);
                restarted.then(|| SignalMessage::Answer(self.description(agent)))
            }
            SignalMessage::Answer(d) => {
                self.remote_ufrag = Some(d.ufrag.clone());
                apply_description(agent, now, &d);
                None
            }
        }
    }

    /// This side restarts ICE (RFC 8445 §9): new credentials and candidates, in an offer.
    pub(crate) fn restart(&mut self, agent: &mut Agent, now: Instant) -> SignalMessage {
        agent.restart(now);
        self.trickle = Trickle::Open;
        SignalMessage::Offer(self.description(agent))
    }

    /// An agent event; returns the trickle message it calls for, if any.
    pub(crate) fn handle_event(&mut self, event: &Event) -> Option<SignalMessage> {
        if let Event::LocalCandidatesRemoved(gone) = event {
            // Told even after end-of-candidates: the peer stops checking them and, if
            // its path used one, recovers at once (floe's extension; RFC 8838 has none).
            let candidates = gone
                .iter()
                .map(|c| match &mut self.host_names {
                    Some(names) => names.withdraw(c).to_string(),
                    None => c.to_string(),
                })
                .collect();
            return Some(SignalMessage::RemoveCandidates { candidates });
        }
        if self.trickle == Trickle::Ended {
            return None;
        }
        match event {
            Event::LocalCandidate(c) => Some(SignalMessage::Candidate {
                candidate: self.line(c),
            }),
            Event::GatheringState(GatheringState::Complete) => Some(self.end_of_candidates()),
            _ => None,
        }
    }

    fn end_of_candidates(&mut self) -> SignalMessage {
        self.trickle = Trickle::Ended;
        SignalMessage::EndOfCandidates
    }
}

/// The peer's credentials, ICE-lite flag, options and candidates.
fn apply_description(agent: &mut Agent, now: Instant, d: &Description) {
    agent.set_remote_credentials(Credentials {
        ufrag: d.ufrag.clone(),
        pwd: d.pwd.clone(),
    });
    // A lite peer makes this side controlling (RFC 8445 §6.1.1); renomination only when
    // both sides said so.
    agent.set_remote_lite(d.lite);
    agent.set_remote_renomination(d.ice_options.iter().any(|o| o == RENOMINATION));
    for c in &d.candidates {
        add_candidate(agent, now, c);
    }
}

/// One RFC 8839 `candidate:` line from the peer; a line that does not parse is ignored.
fn add_candidate(agent: &mut Agent, now: Instant, line: &str) {
    match line.parse::<Candidate>() {
        Ok(c) => {
            agent.add_remote_candidate(now, c);
        }
        Err(e) => tracing::debug!(line, error = %e, "ignoring remote candidate"),
    }
}

#[cfg(test)]
mod tests {
    use floe_ice::{AgentConfig, Role};

    use super::*;

    fn agent(role: Role, now: Instant, seed: u64) -> Agent {
        let mut a = Agent::new(AgentConfig::default(), role, now, seed);
        a.add_host(now, "192.0.2.1:5000".parse().unwrap(), 0);
        a
    }

    fn candidate() -> Event {
        Event::LocalCandidate(
            "candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host"
                .parse()
                .unwrap(),
        )
    }

    #[test]
    fn an_offer_with_the_same_ufrag_is_not_a_restart_and_a_new_one_is() {
        let now = Instant::now();
        let (mut a, mut b) = (
            agent(Role::Controlled, now, 1),
            agent(Role::Controlling, now, 2),
        );
        let mut session = Session::new();
        let offer = Session::new().description(&b);
        let SignalMessage::Answer(answer) = session.answer(&mut a, now, &offer) else {
            panic!("an offer is answered")
        };
        assert_eq!(answer.ufrag, a.local_credentials().ufrag);
        // The same offer again (a duplicate, or signalling replaying it): no restart.
        let ufrag = a.local_credentials().ufrag.clone();
        assert_eq!(
            session.handle_signal(&mut a, now, SignalMessage::Offer(offer)),
            None
        );
        assert_eq!(a.local_credentials().ufrag, ufrag);
        // New credentials from the peer: RFC 8445 §9, restart and answer with new ones.
        b.restart(now);
        let reply = session.handle_signal(
            &mut a,
            now,
            SignalMessage::Offer(Session::new().description(&b)),
        );
        let Some(SignalMessage::Answer(answer)) = reply else {
            panic!("a restart is answered: {reply:?}")
        };
        assert_ne!(answer.ufrag, ufrag);
        assert_eq!(answer.ufrag, a.local_credentials().ufrag);
    }

    #[test]
    fn the_first_offer_outside_the_handshake_sets_the_ufrag_without_answering() {
        let now = Instant::now();
        let (mut a, b) = (
            agent(Role::Controlling, now, 1),
            agent(Role::Controlled, now, 2),
        );
        let mut session = Session::new();
        let offer = SignalMessage::Offer(Session::new().description(&b));
        assert_eq!(session.handle_signal(&mut a, now, offer), None);
        assert_eq!(
            session.remote_ufrag.as_deref(),
            Some(&*b.local_credentials().ufrag)
        );
    }

    #[test]
    fn candidates_trickle_until_end_of_candidates_and_again_after_a_restart() {
        let now = Instant::now();
        let mut a = agent(Role::Controlling, now, 1);
        let mut session = Session::new();
        assert!(matches!(
            session.handle_event(&candidate()),
            Some(SignalMessage::Candidate { .. })
        ));
        assert_eq!(
            session.handle_event(&Event::GatheringState(GatheringState::Gathering)),
            None
        );
        let complete = Event::GatheringState(GatheringState::Complete);
        assert_eq!(
            session.handle_event(&complete),
            Some(SignalMessage::EndOfCandidates)
        );
        // Said once; nothing trickles after it.
        assert_eq!(session.handle_event(&complete), None);
        assert_eq!(session.handle_event(&candidate()), None);
        assert!(matches!(
            session.restart(&mut a, now),
            SignalMessage::Offer(_)
        ));
        assert!(session.handle_event(&candidate()).is_some());
    }

    #[test]
    fn a_complete_gathering_ends_the_candidates_with_the_first_description() {
        let now = Instant::now();
        let a = agent(Role::Controlling, now, 1);
        let mut session = Session::new();
        // Host candidates only: gathering is complete at once.
        assert_eq!(a.gathering_state(), GatheringState::Complete);
        assert_eq!(session.described(&a), Some(SignalMessage::EndOfCandidates));
        assert_eq!(session.handle_event(&candidate()), None);
    }

    #[test]
    fn a_withdrawn_host_is_signalled_even_after_end_of_candidates_and_the_peer_stops_checking_it() {
        let now = Instant::now();
        let (mut a, mut b) = (
            agent(Role::Controlling, now, 1),
            agent(Role::Controlled, now, 2),
        );
        let (mut sa, mut sb) = (Session::new(), Session::new());
        let offer = sa.description(&a);
        let SignalMessage::Answer(answer) = sb.answer(&mut b, now, &offer) else {
            panic!("answered")
        };
        let _ = sa.handle_signal(&mut a, now, SignalMessage::Answer(answer));
        assert_eq!(sa.end_of_candidates(), SignalMessage::EndOfCandidates);
        assert_eq!(b.pair_stats().count(), 1);

        a.remove_host(now, "192.0.2.1:5000".parse().unwrap());
        let removed: Vec<Event> = std::iter::from_fn(|| a.poll_event())
            .filter(|e| matches!(e, Event::LocalCandidatesRemoved(_)))
            .collect();
        assert_eq!(removed.len(), 1);
        let msg = sa
            .handle_event(&removed[0])
            .expect("told although trickle ended");
        let SignalMessage::RemoveCandidates { candidates } = &msg else {
            panic!("{msg:?}")
        };
        assert!(
            candidates[0].contains("192.0.2.1 5000 typ host"),
            "{candidates:?}"
        );
        let _ = sb.handle_signal(&mut b, now, msg);
        assert_eq!(b.pair_stats().count(), 0, "the peer forgot its pair");
    }

    #[test]
    fn a_withdrawn_host_goes_out_under_its_mdns_name_which_is_then_withdrawn() {
        use crate::host_names::HostNames;
        use std::sync::{Arc, Mutex};
        let now = Instant::now();
        let mut a = agent(Role::Controlling, now, 1);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let mut s = Session::new().with_host_names(HostNames::new(3, move |c| {
            log.lock().unwrap().push(format!("{c:?}"));
        }));
        let offer = s.description(&a);
        let name = offer.candidates[0].split(' ').nth(4).unwrap().to_owned();
        assert!(std::path::Path::new(&name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("local")));
        a.remove_host(now, "192.0.2.1:5000".parse().unwrap());
        let e = std::iter::from_fn(|| a.poll_event())
            .find(|e| matches!(e, Event::LocalCandidatesRemoved(_)))
            .unwrap();
        let Some(SignalMessage::RemoveCandidates { candidates }) = s.handle_event(&e) else {
            panic!()
        };
        assert!(candidates[0].contains(&name), "{candidates:?}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[1].starts_with("Withdrawn"), "{seen:?}");
    }
}
