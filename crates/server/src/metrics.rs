//! Prometheus metrics at `GET /metrics` ([`ServerHandle::serve_metrics`]).
//!
//! The values are the core's own counters ([`ServerStats`], counted where each event
//! happens) plus what only the runtime knows (queue depth, start time). A
//! prometheus-client [`Collector`] reads the latest snapshot at each scrape and writes
//! it in the Prometheus text format (0.0.4), so nothing is counted twice and a scrape
//! costs the server core nothing.
//!
//! The HTTP side is a deliberately small HTTP/1.1 responder: one request per
//! connection, at most [`MAX_REQUEST_HEAD`] bytes of request line and headers (431
//! beyond), [`REQUEST_TIMEOUT`] for the whole exchange, and at most
//! [`MAX_CONNECTIONS`] connections at once (more are closed unanswered). It is meant
//! for a scraper on a private address, not for the open internet.
//!
//! [`ServerHandle::serve_metrics`]: crate::ServerHandle::serve_metrics

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use floe_turn::policy::PeerRefusal;
use floe_turn::server::{AllocationKind, AuthFailure, DropReason, QuotaLimit, ServerStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::Inbound;

/// Most bytes of request line and headers read (431 Request Header Fields Too Large
/// beyond).
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Time allowed for one connection, from accept to the last byte of the response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Request bytes read and discarded after answering, so that closing with unread input
/// does not reset the connection before the client reads the answer.
const MAX_DISCARD: usize = 64 * 1024;

/// What the collector reads at each scrape.
#[derive(Debug)]
pub(crate) struct Sources {
    /// Each worker's counters, summed at every scrape.
    pub(crate) stats: Vec<watch::Receiver<ServerStats>>,
    /// Each worker's inbound queue. Weak, so a scrape never keeps a
    /// stopped server's channel open.
    pub(crate) queues: Vec<mpsc::WeakSender<Inbound>>,
    /// When the server started, in seconds since the Unix epoch.
    pub(crate) started_unix: f64,
    /// The fleet's Redis health, with `--redis`.
    pub(crate) fleet: Option<Arc<crate::FleetHealth>>,
    /// TURN-TCP traffic.
    pub(crate) tcp_relays: Option<Arc<crate::TcpRelayCounters>>,
    /// Log lines the process dropped ([`crate::ServerHandle::set_log_lines_dropped`]).
    pub(crate) log_dropped: Option<crate::LogLinesDropped>,
}

/// One worker's queue: events waiting for the core, and the most it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Queue {
    pub(crate) depth: usize,
    pub(crate) capacity: usize,
}

impl Sources {
    fn queues(&self) -> Vec<Queue> {
        self.queues
            .iter()
            .map(|q| match q.upgrade() {
                Some(tx) => Queue {
                    depth: tx.max_capacity().saturating_sub(tx.capacity()),
                    capacity: tx.max_capacity(),
                },
                None => Queue {
                    depth: 0,
                    capacity: 0,
                },
            })
            .collect()
    }
}

impl Collector for Sources {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let stats = crate::sum_stats(&self.stats);
        encode(&mut encoder, &stats, &self.queues(), self.started_unix)?;
        if let Some(f) = &self.fleet {
            encode_fleet(&mut encoder, f)?;
        }
        if let Some(t) = &self.tcp_relays {
            encode_tcp_relays(&mut encoder, t)?;
        }
        if let Some(dropped) = &self.log_dropped {
            encoder
                .encode_descriptor(
                    "floe_log_lines_dropped",
                    "Log lines dropped because stderr did not keep up (its buffer was full).",
                    None,
                    MetricType::Counter,
                )?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
                    &dropped.get(),
                    None,
                )?;
        }
        Ok(())
    }
}

/// A registry holding the server's collector.
pub(crate) fn registry(sources: Sources) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(sources));
    r
}

/// The registry in the Prometheus text format.
pub(crate) fn render(registry: &Registry) -> Result<String, fmt::Error> {
    let mut out = String::with_capacity(8 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?;
    Ok(out)
}

/// One metric family being written: its HELP and TYPE are out, a sample per label set
/// follows.
struct Family<'a>(MetricEncoder<'a>);

impl Family<'_> {
    fn counter(&mut self, labels: &impl EncodeLabelSet, value: u64) -> fmt::Result {
        self.0
            .encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(&value, None)
    }

    fn gauge(
        &mut self,
        labels: &impl EncodeLabelSet,
        value: &impl EncodeGaugeValue,
    ) -> fmt::Result {
        self.0.encode_family(labels)?.encode_gauge(value)
    }
}

fn family<'a>(
    encoder: &'a mut DescriptorEncoder<'_>,
    name: &'a str,
    help: &str,
    typ: MetricType,
) -> Result<Family<'a>, fmt::Error> {
    Ok(Family(encoder.encode_descriptor(name, help, None, typ)?))
}

fn counter(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    e.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn gauge(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: &impl EncodeGaugeValue,
) -> fmt::Result {
    e.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(value)
}

/// TURN-TCP (RFC 6062) traffic, which bypasses the core's relayed counters.
fn encode_tcp_relays(e: &mut DescriptorEncoder<'_>, t: &crate::TcpRelayCounters) -> fmt::Result {
    let mut f = family(
        e,
        "floe_tcp_relayed_bytes",
        "Bytes relayed over TURN-TCP (RFC 6062) data connections, by direction (to_peers, to_clients).",
        MetricType::Counter,
    )?;
    f.counter(&[("direction", "to_peers")], t.bytes_to_peers())?;
    f.counter(&[("direction", "to_clients")], t.bytes_to_clients())?;
    gauge(
        e,
        "floe_tcp_relay_connections",
        "TURN-TCP client data connections joined to their peer now.",
        &i64::try_from(t.joined()).unwrap_or(i64::MAX),
    )
}

/// The fleet's Redis health.
fn encode_fleet(e: &mut DescriptorEncoder<'_>, f: &crate::FleetHealth) -> fmt::Result {
    gauge(
        e,
        "floe_redis_up",
        "1 when the last exchange with the fleet's Redis worked.",
        &i64::from(f.up()),
    )?;
    counter(
        e,
        "floe_redis_errors",
        "Failed connections and commands to the fleet's Redis.",
        f.errors(),
    )?;
    let mut fam = family(
        e,
        "floe_redis_unavailable_allocates",
        "Allocates answered while the fleet's Redis could not be asked, by outcome (refused: 500; granted: --redis-fail-open).",
        MetricType::Counter,
    )?;
    fam.counter(&[("outcome", "refused")], f.refused_unavailable())?;
    fam.counter(&[("outcome", "granted")], f.granted_unavailable())?;
    gauge(
        e,
        "floe_redis_users",
        "Users with long-term keys read from the fleet's Redis.",
        &i64::try_from(f.users()).unwrap_or(i64::MAX),
    )
}

/// Every metric. Counter names get `_total` from the encoder.
pub(crate) fn encode(
    e: &mut DescriptorEncoder<'_>,
    s: &ServerStats,
    queues: &[Queue],
    started_unix: f64,
) -> fmt::Result {
    let kind_labels = |k: &AllocationKind| {
        [
            ("transport", k.transport.as_str()),
            ("family", k.family.as_str()),
        ]
    };
    let mut f = family(
        e,
        "floe_allocations",
        "TURN allocations alive now, by client transport (tls counts as tcp) and relayed address family.",
        MetricType::Gauge,
    )?;
    for k in &AllocationKind::ALL {
        f.gauge(&kind_labels(k), &s.allocations_of(*k).current)?;
    }
    let mut f = family(
        e,
        "floe_allocations_created",
        "TURN allocations created.",
        MetricType::Counter,
    )?;
    for k in &AllocationKind::ALL {
        f.counter(&kind_labels(k), s.allocations_of(*k).created)?;
    }
    let mut f = family(
        e,
        "floe_allocations_expired",
        "TURN allocations whose lifetime ran out without a refresh.",
        MetricType::Counter,
    )?;
    for k in &AllocationKind::ALL {
        f.counter(&kind_labels(k), s.allocations_of(*k).expired)?;
    }
    let mut f = family(
        e,
        "floe_allocations_deleted",
        "TURN allocations ended by the client: Refresh with lifetime 0, or its TCP/TLS connection closed.",
        MetricType::Counter,
    )?;
    for k in &AllocationKind::ALL {
        f.counter(&kind_labels(k), s.allocations_of(*k).deleted)?;
    }
    gauge(
        e,
        "floe_permissions",
        "TURN permissions alive now, over all allocations.",
        &s.permissions,
    )?;
    gauge(
        e,
        "floe_channels",
        "TURN channels bound now, over all allocations.",
        &s.channels,
    )?;
    let mut f = family(
        e,
        "floe_relayed_packets",
        "Datagrams relayed, by direction.",
        MetricType::Counter,
    )?;
    f.counter(&[("direction", "to_peers")], s.packets_to_peers)?;
    f.counter(&[("direction", "to_clients")], s.packets_to_clients)?;
    let mut f = family(
        e,
        "floe_relayed_bytes",
        "Payload bytes relayed, by direction.",
        MetricType::Counter,
    )?;
    f.counter(&[("direction", "to_peers")], s.bytes_to_peers)?;
    f.counter(&[("direction", "to_clients")], s.bytes_to_clients)?;
    counter(
        e,
        "floe_icmp_relayed",
        "ICMP errors for relayed traffic sent to clients in Data indications (RFC 8656 section 11.5).",
        s.icmp_to_clients,
    )?;
    let mut f = family(
        e,
        "floe_auth_failures",
        "Requests refused, by error code: 401 and 438 after credentials were offered, 441 wrong credentials for the allocation, 486 user allocation quota, 508 a server limit (not draining).",
        MetricType::Counter,
    )?;
    for a in &AuthFailure::ALL {
        f.counter(&[("code", a.code())], s.auth_failures_of(*a))?;
    }
    let mut f = family(
        e,
        "floe_quota_refusals",
        "Requests refused by a configured limit (486 or 508), by limit.",
        MetricType::Counter,
    )?;
    for l in &QuotaLimit::ALL {
        f.counter(&[("limit", l.as_str())], s.quota_refusals_of(*l))?;
    }
    let mut f = family(
        e,
        "floe_peers_refused",
        "Peer addresses refused by the peer policy (403), by address kind, or denied for an operator deny range.",
        MetricType::Counter,
    )?;
    for r in &PeerRefusal::ALL {
        f.counter(&[("kind", r.as_str())], s.peers_refused_as(*r))?;
    }
    let mut f = family(
        e,
        "floe_dropped",
        "Datagrams dropped, by reason.",
        MetricType::Counter,
    )?;
    for r in &DropReason::ALL {
        f.counter(&[("reason", r.as_str())], s.dropped_for(*r))?;
    }
    counter(
        e,
        "floe_bindings",
        "STUN Binding requests answered.",
        s.bindings,
    )?;
    counter(
        e,
        "floe_challenges",
        "401 challenges sent (realm and nonce for a request without credentials, or after a failed one).",
        s.challenges,
    )?;
    counter(
        e,
        "floe_rate_limited",
        "Unauthenticated requests dropped by the per-source 401 rate limit.",
        s.rate_limited,
    )?;
    counter(
        e,
        "floe_drain_refusals",
        "Allocates refused (508 or 300 Try Alternate) while draining.",
        s.drain_refusals,
    )?;
    let mut f = family(
        e,
        "floe_queue_depth",
        "Events waiting in a worker's queue for the TURN core (client UDP datagrams wait in the listener sockets).",
        MetricType::Gauge,
    )?;
    for (i, q) in queues.iter().enumerate() {
        f.gauge(&[("worker", i)], &q.depth)?;
    }
    let mut f = family(
        e,
        "floe_queue_capacity",
        "Most events a worker's queue holds; readers wait when it is full.",
        MetricType::Gauge,
    )?;
    for (i, q) in queues.iter().enumerate() {
        f.gauge(&[("worker", i)], &q.capacity)?;
    }
    gauge(
        e,
        "process_start_time_seconds",
        "Start time of the server since the Unix epoch, in seconds.",
        &started_unix,
    )?;
    let mut f = family(
        e,
        "floe_build_info",
        "Always 1; the version is the label.",
        MetricType::Gauge,
    )?;
    f.gauge(&[("version", env!("CARGO_PKG_VERSION"))], &1u64)?;
    Ok(())
}

/// Serves `GET /metrics` on `listener` until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::debug!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%remote, "metrics: too many connections; closed");
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(REQUEST_TIMEOUT, exchange(stream, &registry)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%remote, error = %e, "metrics: connection failed"),
                Err(_) => tracing::debug!(%remote, "metrics: request timed out"),
            }
        });
    }
}

/// One request and its answer.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    registry: &Registry,
) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_REQUEST_HEAD];
    let mut len = 0;
    let answer = loop {
        let read = buf.get(..len).unwrap_or_default();
        if let Some(end) = head_end(read) {
            break answer(read.get(..end).unwrap_or_default(), registry);
        }
        let Some(free) = buf.get_mut(len..).filter(|f| !f.is_empty()) else {
            break Answer::status("431 Request Header Fields Too Large");
        };
        let n = stream.read(free).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    };
    stream.write_all(&answer.to_bytes()).await?;
    stream.shutdown().await?;
    // Lingering close: read what the client still sends (up to a bound), so the answer
    // is not lost to a reset.
    let mut discarded = 0;
    while discarded < MAX_DISCARD {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => discarded += n,
        }
    }
    Ok(())
}

/// Where the request head ends (after the blank line), if it has.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// A response.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: &'static str,
    content_type: &'static str,
    body: String,
    /// HEAD: the headers of the body without it.
    head_only: bool,
    allow: bool,
}

impl Answer {
    fn status(status: &'static str) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{status}\n"),
            head_only: false,
            allow: false,
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        if self.allow {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        if !self.head_only {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

/// The answer to a request head: the metrics for `GET /metrics` (or `HEAD`), 405 for
/// other methods there, 404 for any other path, 400 for what is not an HTTP/1.x
/// request line.
fn answer(head: &[u8], registry: &Registry) -> Answer {
    let line = head
        .split(|b| *b == b'\n')
        .next()
        .unwrap_or_default()
        .strip_suffix(b"\r")
        .unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Answer::status("400 Bad Request");
    };
    if !version.starts_with(b"HTTP/1.") || method.is_empty() {
        return Answer::status("400 Bad Request");
    }
    let path = target.split(|b| *b == b'?').next().unwrap_or_default();
    if path != b"/metrics" {
        return Answer::status("404 Not Found");
    }
    let head_only = match method {
        b"GET" => false,
        b"HEAD" => true,
        _ => {
            let mut a = Answer::status("405 Method Not Allowed");
            a.allow = true;
            return a;
        }
    };
    match render(registry) {
        Ok(body) => Answer {
            status: "200 OK",
            content_type: prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            body,
            head_only,
            allow: false,
        },
        Err(_) => Answer::status("500 Internal Server Error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_registry() -> Registry {
        let (_tx, rx) = watch::channel(ServerStats::default());
        registry(Sources {
            stats: vec![rx],
            queues: Vec::new(),
            started_unix: 1_700_000_000.5,
            // With the fleet's and TURN-TCP's metrics, so the format checks cover them.
            fleet: Some(Arc::new(crate::FleetHealth::default())),
            tcp_relays: Some(Arc::new(crate::TcpRelayCounters::default())),
            log_dropped: Some(crate::LogLinesDropped::new(|| 7)),
        })
    }

    #[test]
    fn every_sample_line_is_name_labels_value_and_every_family_has_help() {
        let text = render(&test_registry()).unwrap();
        let mut helped = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.insert(rest.split(' ').next().unwrap().to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (name, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
            let bare = name.split('{').next().unwrap();
            assert!(helped.contains(bare), "{bare} has no HELP");
            assert!(
                bare.starts_with("floe_") || bare.starts_with("process_"),
                "{bare}"
            );
        }
        assert!(text.contains("floe_allocations{transport=\"udp\",family=\"ipv4\"} 0\n"));
        assert!(text.contains("floe_auth_failures_total{code=\"486\"} 0\n"));
        assert!(text.contains("floe_peers_refused_total{kind=\"denied\"} 0\n"));
        assert!(text.contains("floe_dropped_total{reason=\"queue_full\"} 0\n"));
        assert!(text.contains("process_start_time_seconds 1700000000.5\n"));
        assert!(text.contains("floe_log_lines_dropped_total 7\n"));
        assert!(text.contains(&format!(
            "floe_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn only_get_and_head_of_metrics_are_answered() {
        let r = test_registry();
        let get = answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r);
        assert_eq!(get.status, "200 OK");
        assert!(get.body.contains("floe_bindings_total 0"));
        let head = answer(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n", &r);
        assert_eq!(head.status, "200 OK");
        assert!(!String::from_utf8(head.to_bytes())
            .unwrap()
            .contains("floe_"));
        assert_eq!(
            answer(b"GET / HTTP/1.1\r\n\r\n", &r).status,
            "404 Not Found"
        );
        assert_eq!(
            answer(b"GET /metricsx HTTP/1.1\r\n\r\n", &r).status,
            "404 Not Found"
        );
        let post = answer(b"POST /metrics HTTP/1.1\r\n\r\n", &r);
        assert_eq!(post.status, "405 Method Not Allowed");
        assert!(String::from_utf8(post.to_bytes())
            .unwrap()
            .contains("Allow: GET, HEAD"));
        for bad in [
            &b"\r\n\r\n"[..],
            b"GET /metrics\r\n\r\n",
            b"GET /metrics SPDY/3\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1 x\r\n\r\n",
        ] {
            assert_eq!(answer(bad, &r).status, "400 Bad Request", "{bad:?}");
        }
    }

    #[tokio::test]
    async fn an_oversized_request_head_gets_431() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let r = test_registry();
        let task = tokio::spawn(async move { exchange(server, &r).await });
        let mut big = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
        big.resize(MAX_REQUEST_HEAD + 100, b'a');
        client.write_all(&big).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = client.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        drop(client);
        task.await.unwrap().unwrap();
        assert!(
            got.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{}",
            String::from_utf8_lossy(&got)
        );
    }
}
