//! Before the driver runs: the agent built from a [`PeerConfig`] (servers resolved, TURN
//! transports chosen from their URIs, RFC 7065) and the first offer/answer over the
//! application's signalling (RFC 8445 §6.1.1: the offerer controls).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use floe_ice::{Agent, Event, Role, Transport};
use rustls::pki_types::ServerName;

use crate::config::{tls_client_config, turn_transports, PeerConfig, PeerError, Side};
use crate::session::Session;
use crate::signal::{SignalMessage, SignalReceiver, SignalSender};
use crate::turn::streams::StreamConfig;
use crate::uri::Scheme;

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, PeerError> {
    tokio::net::lookup_host((host, port))
        .await
        .map(Iterator::collect)
        .map_err(|e| PeerError::Resolve(format!("{host}:{port}: {e}")))
}

/// The agent for `side` with a host candidate per bound address (`ranked`: address and
/// interface rank) and the configured STUN and TURN servers, how to open the TURN
/// servers' TCP/TLS connections, and the URI each server address came from.
pub(crate) async fn build_agent(
    config: &PeerConfig,
    side: Side,
    ranked: &[(SocketAddr, usize)],
) -> Result<(Agent, StreamConfig, HashMap<SocketAddr, String>), PeerError> {
    let mut agent_config = config.agent.clone();
    let mut urls = HashMap::new();
    for uri in &config.stun {
        if uri.scheme == Scheme::Stun {
            for server in resolve(&uri.host, uri.port).await? {
                urls.insert(server, uri.to_string());
                agent_config.stun_servers.push(server);
            }
        }
    }
    let mut turn = Vec::new();
    let mut streams = StreamConfig {
        dscp: config.dscp,
        ..StreamConfig::default()
    };
    if let Some(p) = &config.proxy {
        let addr = resolve(&p.host, p.port)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| PeerError::Config(format!("proxy {}: no address", p.host)))?;
        streams.proxy = Some(crate::turn::ProxyRoute {
            proxy: addr,
            credentials: p.credentials.clone(),
            server_name: None,
        });
    }
    for t in &config.turn {
        let Some(transports) = turn_transports(&t.uri) else {
            tracing::warn!(uri = %t.uri, "not a turn: or turns: URI; ignored");
            continue;
        };
        let tls_name = if transports == [Transport::Tls] {
            let name = ServerName::try_from(t.uri.host.clone())
                .map_err(|e| PeerError::Config(format!("{}: bad TLS server name: {e}", t.uri)))?;
            if streams.tls.is_none() {
                streams.tls = Some(tls_client_config(config)?);
            }
            Some(name)
        } else {
            None
        };
        for server in resolve(&t.uri.host, t.uri.port).await? {
            urls.entry(server).or_insert_with(|| t.uri.to_string());
            if t.uri.host.parse::<std::net::IpAddr>().is_err() {
                streams.names.insert(server, t.uri.host.clone());
            }
            if let Some(name) = &tls_name {
                streams.tls_names.insert(server, name.clone());
            }
            turn.push((server, transports, t.username.clone(), t.password.clone()));
        }
    }
    let role = if side == Side::Offer {
        Role::Controlling
    } else {
        Role::Controlled
    };
    let now = Instant::now();
    let mut agent = Agent::new(agent_config, role, now, rand::random());
    for (local, rank) in ranked {
        agent.add_host(now, *local, *rank);
    }
    for (server, transports, user, pass) in &turn {
        if let Some((base, _)) = ranked.iter().find(|(l, _)| l.is_ipv4() == server.is_ipv4()) {
            let ts =
                floe_ice::TurnServer::new(*base, *server, user, pass).with_transports(transports);
            agent.add_turn_server_with(now, ts);
        }
    }
    Ok((agent, streams, urls))
}

/// Sends the offer (or waits for it and answers) with what is known now; the rest
/// trickles once the driver runs. Returns the agent's events so far, without the
/// candidates the description already carried.
pub(crate) async fn exchange<S: SignalSender, R: SignalReceiver>(
    agent: &mut Agent,
    session: &mut Session,
    side: Side,
    tx: &mut S,
    rx: &mut R,
) -> Result<Vec<Event>, PeerError> {
    let now = Instant::now();
    let early_events: Vec<Event> = std::iter::from_fn(|| agent.poll_event())
        .filter(|e| !matches!(e, Event::LocalCandidate(_)))
        .collect();
    let sig = |e: io::Error| PeerError::Signalling(e.to_string());
    match side {
        Side::Offer => tx
            .send(SignalMessage::Offer(session.description(agent)))
            .await
            .map_err(sig)?,
        Side::Answer => loop {
            match rx.recv().await.map_err(sig)? {
                Some(SignalMessage::Offer(d)) => {
                    let answer = session.answer(agent, now, &d);
                    tx.send(answer).await.map_err(sig)?;
                    break;
                }
                Some(SignalMessage::Answer(_)) => {
                    return Err(PeerError::Signalling(
                        "got an answer, expected an offer".into(),
                    ))
                }
                Some(msg) => {
                    // Candidates (or their end) trickled ahead of the offer.
                    let _ = session.handle_signal(agent, now, msg);
                }
                None => return Err(PeerError::Signalling("closed before the offer".into())),
            }
        },
    }
    if let Some(end) = session.described(agent) {
        tx.send(end).await.map_err(sig)?;
    }
    Ok(early_events)
}
