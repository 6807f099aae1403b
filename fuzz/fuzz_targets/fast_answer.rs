//! The mux answering checks for a lite session (`floe_ice::fast_answer`) against the
//! session's own agent, on hostile input: a lite agent is nominated by its peer's first
//! check, the mux holds its fast answer, and the input is a series of records, each a
//! Binding request signed with the session's password whose attributes (and USERNAME's
//! ufrag, and whether it is signed right) come from the input, or raw bytes. Every record
//! goes to `Mux::route_or_answer` and then, whatever the mux did, to the agent.
//!
//! Properties, beyond no panic: whenever the mux answers, the agent answers the same
//! datagram with exactly one transmit of the same bytes, to the same address, and its
//! state (connection state, selected pair) does not change: the mux answers only what the
//! agent would answer without changing anything. The mux never answers raw bytes that are
//! not an authenticated check.
#![no_main]

use std::net::SocketAddr;
use std::time::Instant;

use floe_ice::mux::{Mux, Routed};
use floe_ice::{Agent, AgentConfig, Credentials, Role};
use floe_stun::attributes::{IceControlling, UseCandidate, Username};
use floe_stun::{AttrType, IntegrityKey, MessageBuilder, MessageType, TransactionId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let local: SocketAddr = "10.0.0.1:3478".parse().unwrap();
    let remote: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    let mut config = AgentConfig::default();
    config.lite = true;
    let mut agent = Agent::new(config, Role::Controlled, now, 3);
    agent.add_host(now, local, 0);
    agent.set_remote_credentials(Credentials {
        ufrag: "peer".into(),
        pwd: "peer-password-0123456789".into(),
    });
    let ours = agent.local_credentials().clone();
    let key = IntegrityKey::short_term(&ours.pwd).unwrap();
    let build = |tid: u8, ufrag: &str, attrs: &[u8], use_candidate: bool, sign: &IntegrityKey| {
        let mut buf = vec![0u8; 1024];
        let mut b =
            MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId([tid; 12]))
                .ok()?;
        b.add(&Username(&format!("{ufrag}:peer"))).ok()?;
        b.add(&IceControlling(9)).ok()?;
        if use_candidate {
            b.add(&UseCandidate).ok()?;
        }
        let mut rest = attrs;
        while let [t0, t1, l, tail @ ..] = rest {
            let l = usize::from(*l).min(tail.len());
            let _ = b.add_raw(AttrType(u16::from_be_bytes([*t0, *t1])), &tail[..l]);
            rest = &tail[l..];
        }
        b.add_message_integrity(sign).ok()?.add_fingerprint().ok()?;
        let n = b.len();
        buf.truncate(n);
        Some(buf)
    };
    let first = build(0, &ours.ufrag, &[], true, &key).unwrap();
    let mut mux = Mux::new();
    mux.add_session(7u32, &ours.ufrag).unwrap();
    assert_eq!(mux.route(local, remote, &first), Some(7));
    agent.handle_receive(now, local, remote, &first, |_, _| {});
    while agent.poll_transmit().is_some() {}
    while agent.poll_event().is_some() {}
    let Some(fast) = agent.fast_answer() else {
        panic!("not nominated by a USE-CANDIDATE check");
    };
    mux.set_fast_answer(7, Some(&fast));
    let wrong = IntegrityKey::short_term("not-the-password").unwrap();

    let mut rest = data;
    let mut tid = 1u8;
    while let [kind, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (chunk, next) = tail.split_at(len);
        rest = next;
        tid = tid.wrapping_add(1);
        let bytes = match kind % 4 {
            0 => chunk.to_vec(),
            k => {
                let ufrag = if kind & 0x10 != 0 { "zzzz" } else { ours.ufrag.as_str() };
                let sign = if k == 3 { &wrong } else { &key };
                match build(tid, ufrag, chunk, kind & 0x20 != 0, sign) {
                    Some(b) => b,
                    None => continue,
                }
            }
        };
        let mut out = [0u8; 256];
        let routed = mux.route_or_answer(now, local, remote, &bytes, &mut out);
        let before = (agent.connection_state(), agent.selected_pair());
        agent.handle_receive(now, local, remote, &bytes, |_, _| {});
        let sent: Vec<_> = std::iter::from_fn(|| agent.poll_transmit()).collect();
        while agent.poll_event().is_some() {}
        if let Routed::Answered { len, .. } = routed {
            assert_eq!(sent.len(), 1, "the agent sent {} datagrams for a check the mux answered", sent.len());
            assert_eq!(sent[0].destination, remote);
            assert_eq!(sent[0].data, out[..len], "the mux's answer differs from the agent's");
            assert_eq!(
                (agent.connection_state(), agent.selected_pair()),
                before,
                "the agent changed on a check the mux answered"
            );
        }
    }
});
