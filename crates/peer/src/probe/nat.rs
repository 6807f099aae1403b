//! NAT behaviour discovery (RFC 5780 §4) against a server that sends OTHER-ADDRESS: the
//! mapping behaviour (§4.3), the filtering behaviour (§4.4) and, when there is a NAT to
//! test, hairpinning (§3.4).
//!
//! The tests run on separate sockets because filtering is "sensitive to prior state on
//! the NAT" (§4.4): the mapping tests send to the server's alternate address, which
//! would open an address-dependent filter for the very answer the filtering test waits
//! for. The classification itself is in pure functions ([`mapping_behaviour`],
//! [`filtering_behaviour`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_stun::attributes::ChangeRequest;
use floe_stun::transaction::{ClientTransaction, Reliability, TransactionState};
use floe_stun::Message;
use tokio::net::UdpSocket;

use super::binding::{binding, binding_request, transaction_config, MAX_DATAGRAM};
use super::{unspecified_for, BindingError, BindingReply, ProbeConfig};

/// A NAT behaviour, as RFC 4787 names them (the same words for mapping and filtering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Endpoint-independent: the same for every remote address.
    EndpointIndependent,
    /// Address-dependent: depends on the remote IP only.
    AddressDependent,
    /// Address and port-dependent: depends on the remote IP and port.
    AddressAndPortDependent,
}

impl Behaviour {
    /// `endpoint-independent`, `address-dependent` or `address-and-port-dependent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::EndpointIndependent => "endpoint-independent",
            Behaviour::AddressDependent => "address-dependent",
            Behaviour::AddressAndPortDependent => "address-and-port-dependent",
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 5780 §4.3 from the XOR-MAPPED-ADDRESSes of test I (primary address), test II
/// (alternate IP, primary port) and test III (alternate IP and port). Test III is only
/// needed when I and II differ; `None` then means it is still to be run.
pub fn mapping_behaviour(
    test1: SocketAddr,
    test2: SocketAddr,
    test3: Option<SocketAddr>,
) -> Option<Behaviour> {
    if test1 == test2 {
        return Some(Behaviour::EndpointIndependent);
    }
    test3.map(|test3| {
        if test3 == test2 {
            Behaviour::AddressDependent
        } else {
            Behaviour::AddressAndPortDependent
        }
    })
}

/// RFC 5780 §4.4 from whether the answer to test II (CHANGE-REQUEST change IP and port)
/// and test III (change port) arrived. Test III is only needed when test II's answer was
/// lost; `None` then means it is still to be run.
pub fn filtering_behaviour(
    change_ip_and_port_answered: bool,
    change_port_answered: Option<bool>,
) -> Option<Behaviour> {
    if change_ip_and_port_answered {
        return Some(Behaviour::EndpointIndependent);
    }
    change_port_answered.map(|answered| {
        if answered {
            Behaviour::AddressDependent
        } else {
            Behaviour::AddressAndPortDependent
        }
    })
}

/// The tests of RFC 5780 §4.3 and §4.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NatTest {
    /// §4.3 test I: Binding to the primary address.
    MappingI,
    /// §4.3 test II: Binding to the alternate IP, primary port.
    MappingII,
    /// §4.3 test III: Binding to the alternate IP and port.
    MappingIII,
    /// §4.4 test I: Binding to the primary address, on a fresh socket.
    FilteringI,
    /// §4.4 test II: CHANGE-REQUEST change IP and port.
    FilteringII,
    /// §4.4 test III: CHANGE-REQUEST change port.
    FilteringIII,
}

impl fmt::Display for NatTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NatTest::MappingI => "mapping test I",
            NatTest::MappingII => "mapping test II",
            NatTest::MappingIII => "mapping test III",
            NatTest::FilteringI => "filtering test I",
            NatTest::FilteringII => "filtering test II",
            NatTest::FilteringIII => "filtering test III",
        })
    }
}

/// What [`discover_nat`] is about to do, for progress output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatStep {
    /// A test that must be answered: a Binding to `to`.
    Binding {
        /// Which test.
        test: NatTest,
        /// Where the request goes.
        to: SocketAddr,
    },
    /// A CHANGE-REQUEST test (RFC 5780 §7.2), whose lost answer is the signal.
    ChangeRequest {
        /// Which test.
        test: NatTest,
        /// Where the request goes.
        to: SocketAddr,
        /// Where the answer must come from.
        expected: SocketAddr,
    },
    /// The hairpinning test (§3.4): a Binding from `from` to the mapped address `to`.
    Hairpin {
        /// The sending socket.
        from: SocketAddr,
        /// The mapped address of the first socket.
        to: SocketAddr,
    },
}

impl fmt::Display for NatStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatStep::Binding { test, to } => write!(f, "{test}: Binding to {to}"),
            NatStep::ChangeRequest { test, to, expected } => write!(
                f,
                "{test}: Binding to {to} with CHANGE-REQUEST, answer expected from {expected}"
            ),
            NatStep::Hairpin { from, to } => write!(
                f,
                "hairpinning: Binding from {from} to the mapped address {to}"
            ),
        }
    }
}

/// How [`discover_nat`] waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatConfig {
    /// The tests that must be answered (retransmission from `rto`, given up at `timeout`).
    pub probe: ProbeConfig,
    /// How long a test whose silence is an answer (CHANGE-REQUEST, hairpinning) waits;
    /// capped by `probe.timeout`. Default 1 s (transmissions at 0, 0.25 and 0.75 s): a
    /// lost answer there means "filtered", so the wait is short.
    pub quiet_timeout: Duration,
}

/// The default [`NatConfig::quiet_timeout`].
pub const QUIET_TEST_TIMEOUT: Duration = Duration::from_secs(1);

impl NatConfig {
    /// Tests that must be answered wait `timeout`; quiet ones at most 1 s.
    pub fn with_timeout(timeout: Duration) -> NatConfig {
        NatConfig {
            probe: ProbeConfig::with_timeout(timeout),
            quiet_timeout: QUIET_TEST_TIMEOUT,
        }
    }
}

impl Default for NatConfig {
    fn default() -> NatConfig {
        NatConfig::with_timeout(ProbeConfig::default().timeout)
    }
}

/// What [`discover_nat`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatReport {
    /// The server's primary address.
    pub server: SocketAddr,
    /// Its OTHER-ADDRESS (RFC 5780 §7.4).
    pub other: SocketAddr,
    /// The local address of the mapping tests' socket.
    pub local: SocketAddr,
    /// The mapped address of mapping test I.
    pub mapped: SocketAddr,
    /// The mapping behaviour (§4.3).
    pub mapping: Behaviour,
    /// The mapped addresses of mapping tests II and III (III only when run).
    pub mapping_seen: (SocketAddr, Option<SocketAddr>),
    /// The filtering behaviour (§4.4).
    pub filtering: Behaviour,
    /// Whether a packet to the mapped address came back in (§3.4); `None` when there is
    /// no NAT (the mapped address is the local one).
    pub hairpinning: Option<bool>,
}

/// Why [`discover_nat`] could not classify the NAT.
#[derive(Debug)]
#[non_exhaustive]
pub enum NatError {
    /// A socket could not be bound (`None`: the unspecified address of the server's
    /// family).
    Bind(Option<SocketAddr>, io::Error),
    /// No route to the server.
    NoRoute(SocketAddr, io::Error),
    /// A socket has no local address.
    LocalAddress(io::Error),
    /// A test that must be answered failed.
    Test {
        /// Which test.
        test: NatTest,
        /// Where its request went.
        to: SocketAddr,
        /// Why.
        error: BindingError,
    },
    /// The server sent no OTHER-ADDRESS: it does not do RFC 5780 behaviour discovery.
    NoOtherAddress(SocketAddr),
    /// OTHER-ADDRESS does not differ from the server in both IP and port (§4.3), or is
    /// of the other family.
    BadOtherAddress {
        /// The server.
        server: SocketAddr,
        /// What it sent as OTHER-ADDRESS.
        other: SocketAddr,
    },
    /// A CHANGE-REQUEST was answered from the wrong address: the server does not honour
    /// it (§6.1), so filtering cannot be told.
    ChangeRequestIgnored {
        /// Which test.
        test: NatTest,
        /// Where the answer came from.
        source: SocketAddr,
        /// Where it should have come from.
        expected: SocketAddr,
    },
    /// The hairpinning test could not run.
    Hairpin(io::Error),
}

impl fmt::Display for NatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatError::Bind(None, e) => write!(f, "cannot bind a UDP socket: {e}"),
            NatError::Bind(Some(a), e) => write!(f, "cannot bind {a}: {e}"),
            NatError::NoRoute(server, e) => write!(f, "no route to {server}: {e}"),
            NatError::LocalAddress(e) => write!(f, "no local address: {e}"),
            NatError::Test { test, to, error } => write!(f, "{test} ({to}): {error}"),
            NatError::NoOtherAddress(server) => write!(
                f,
                "{server} sent no OTHER-ADDRESS: it does not support RFC 5780 NAT behaviour \
                 discovery"
            ),
            NatError::BadOtherAddress { server, other } => write!(
                f,
                "{server}'s OTHER-ADDRESS {other} must differ from it in both IP and port \
                 (RFC 5780 §4.3) and be of the same family"
            ),
            NatError::ChangeRequestIgnored {
                test,
                source,
                expected,
            } => write!(
                f,
                "{test}: the answer came from {source}, not {expected}: the server does not \
                 honour CHANGE-REQUEST (RFC 5780 §6.1), so filtering cannot be told"
            ),
            NatError::Hairpin(e) => write!(f, "hairpinning test: {e}"),
        }
    }
}

impl std::error::Error for NatError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NatError::Bind(_, e)
            | NatError::NoRoute(_, e)
            | NatError::LocalAddress(e)
            | NatError::Hairpin(e) => Some(e),
            NatError::Test { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Binds a socket on the interface that routes to `server` (not the wildcard, so that
/// the local address can be compared with the mapped one, §4.3).
async fn bind_towards(server: SocketAddr) -> Result<UdpSocket, NatError> {
    let probe = UdpSocket::bind(unspecified_for(server))
        .await
        .map_err(|e| NatError::Bind(None, e))?;
    probe
        .connect(server)
        .await
        .map_err(|e| NatError::NoRoute(server, e))?;
    let bind = SocketAddr::new(local_of(&probe)?.ip(), 0);
    UdpSocket::bind(bind)
        .await
        .map_err(|e| NatError::Bind(Some(bind), e))
}

fn local_of(socket: &UdpSocket) -> Result<SocketAddr, NatError> {
    socket.local_addr().map_err(NatError::LocalAddress)
}

/// One run of the discovery: its configuration and where progress goes.
struct Discovery<'a, P> {
    config: &'a NatConfig,
    progress: P,
}

impl<P: FnMut(&NatStep)> Discovery<'_, P> {
    fn quiet(&self) -> ProbeConfig {
        ProbeConfig {
            timeout: self.config.quiet_timeout.min(self.config.probe.timeout),
            ..self.config.probe
        }
    }

    /// A test that must be answered.
    async fn answered(
        &mut self,
        socket: &UdpSocket,
        to: SocketAddr,
        test: NatTest,
    ) -> Result<BindingReply, NatError> {
        (self.progress)(&NatStep::Binding { test, to });
        binding(socket, to, ChangeRequest::default(), &self.config.probe)
            .await
            .map_err(|error| NatError::Test { test, to, error })
    }

    /// A CHANGE-REQUEST test: `true` if answered from `expected`, `false` if the answer
    /// was lost (the signal for filtering).
    async fn change_test(
        &mut self,
        socket: &UdpSocket,
        to: SocketAddr,
        change: ChangeRequest,
        expected: SocketAddr,
        test: NatTest,
    ) -> Result<bool, NatError> {
        (self.progress)(&NatStep::ChangeRequest { test, to, expected });
        match binding(socket, to, change, &self.quiet()).await {
            Ok(reply) if reply.source == expected => Ok(true),
            Ok(reply) => Err(NatError::ChangeRequestIgnored {
                test,
                source: reply.source,
                expected,
            }),
            Err(BindingError::TimedOut { .. }) => Ok(false),
            Err(error) => Err(NatError::Test { test, to, error }),
        }
    }
}

/// RFC 5780 §4: classifies the NAT between this host and `server` (which must send
/// OTHER-ADDRESS, §7.4, and honour CHANGE-REQUEST, §7.2). Opens its own UDP sockets on
/// the interface that routes to `server`: one for the mapping tests (§4.3), a fresh one
/// for the filtering tests (§4.4), and a third for hairpinning (§3.4) when there is a
/// NAT. `progress` hears each test before it runs.
pub async fn discover_nat(
    server: SocketAddr,
    config: &NatConfig,
    progress: impl FnMut(&NatStep),
) -> Result<NatReport, NatError> {
    let mut run = Discovery { config, progress };

    // Mapping, RFC 5780 §4.3.
    let a = bind_towards(server).await?;
    let local = local_of(&a)?;
    let first = run.answered(&a, server, NatTest::MappingI).await?;
    let Some(other) = first.other else {
        return Err(NatError::NoOtherAddress(server));
    };
    if other.ip() == server.ip()
        || other.port() == server.port()
        || other.is_ipv4() != server.is_ipv4()
    {
        return Err(NatError::BadOtherAddress { server, other });
    }
    let mapped = first.mapped;
    let alt_ip = SocketAddr::new(other.ip(), server.port());
    let second = run.answered(&a, alt_ip, NatTest::MappingII).await?.mapped;
    let mut third = None;
    let mapping = match mapping_behaviour(mapped, second, None) {
        Some(b) => b,
        None => {
            let seen = run.answered(&a, other, NatTest::MappingIII).await?.mapped;
            third = Some(seen);
            mapping_behaviour(mapped, second, third).unwrap_or(Behaviour::AddressAndPortDependent)
        }
    };

    // Filtering, RFC 5780 §4.4, on a socket that has talked to the primary address only.
    let b = bind_towards(server).await?;
    run.answered(&b, server, NatTest::FilteringI).await?;
    let both = ChangeRequest {
        change_ip: true,
        change_port: true,
    };
    let ip_and_port = run
        .change_test(&b, server, both, other, NatTest::FilteringII)
        .await?;
    let filtering = match filtering_behaviour(ip_and_port, None) {
        Some(f) => f,
        None => {
            let port_only = ChangeRequest {
                change_ip: false,
                change_port: true,
            };
            let expected = SocketAddr::new(server.ip(), other.port());
            let port = run
                .change_test(&b, server, port_only, expected, NatTest::FilteringIII)
                .await?;
            filtering_behaviour(false, Some(port)).unwrap_or(Behaviour::AddressAndPortDependent)
        }
    };

    // Hairpinning, RFC 5780 §3.4: only meaningful through a NAT.
    let hairpinning = if mapped == local {
        None
    } else {
        let c = bind_towards(server).await?;
        (run.progress)(&NatStep::Hairpin {
            from: local_of(&c)?,
            to: mapped,
        });
        let quiet = run.quiet();
        Some(
            hairpin(&a, &c, mapped, &quiet)
                .await
                .map_err(NatError::Hairpin)?,
        )
    };
    Ok(NatReport {
        server,
        other,
        local,
        mapped,
        mapping,
        mapping_seen: (second, third),
        filtering,
        hairpinning,
    })
}

/// RFC 5780 §3.4: sends a Binding request from `sender` to `target` (the mapped address
/// of `listener`), retransmitting per `config`, and reports whether `listener` receives
/// it before `config.timeout`.
pub async fn hairpin(
    listener: &UdpSocket,
    sender: &UdpSocket,
    target: SocketAddr,
    config: &ProbeConfig,
) -> io::Result<bool> {
    let request = binding_request(ChangeRequest::default()).map_err(io::Error::other)?;
    let mut tx = ClientTransaction::new(
        request,
        Reliability::Unreliable,
        transaction_config(config.rto, config.timeout),
    )
    .map_err(io::Error::other)?;
    let tid = tx.transaction_id();
    let deadline = Instant::now() + config.timeout;
    // Read whole: a hairpinned Binding may be any legal size.
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let now = Instant::now();
        if now >= deadline || tx.state() != TransactionState::Pending {
            return Ok(false);
        }
        if let Some(data) = tx.poll_transmit(now) {
            sender.send_to(data, target).await?;
        }
        let wake = tx.poll_timeout().map_or(deadline, |t| t.min(deadline));
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => tx.handle_timeout(Instant::now()),
            r = listener.recv_from(&mut buf) => {
                // Errors on an unconnected socket are per-datagram; keep listening.
                let Ok((n, _)) = r else { continue };
                let own = buf
                    .get(..n)
                    .and_then(|d| Message::parse(d).ok())
                    .is_some_and(|m| m.transaction_id() == tid);
                if own {
                    return Ok(true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn same_mapping_towards_the_alternate_ip_is_endpoint_independent() {
        let x = a("203.0.113.1:4000");
        assert_eq!(
            mapping_behaviour(x, x, None),
            Some(Behaviour::EndpointIndependent)
        );
    }

    #[test]
    fn a_new_mapping_per_ip_needs_test_three_to_classify() {
        let (x1, x2) = (a("203.0.113.1:4000"), a("203.0.113.1:4001"));
        assert_eq!(mapping_behaviour(x1, x2, None), None);
        assert_eq!(
            mapping_behaviour(x1, x2, Some(x2)),
            Some(Behaviour::AddressDependent)
        );
        assert_eq!(
            mapping_behaviour(x1, x2, Some(a("203.0.113.1:4002"))),
            Some(Behaviour::AddressAndPortDependent)
        );
    }

    #[test]
    fn filtering_follows_which_changed_answers_got_through() {
        assert_eq!(
            filtering_behaviour(true, None),
            Some(Behaviour::EndpointIndependent)
        );
        assert_eq!(filtering_behaviour(false, None), None);
        assert_eq!(
            filtering_behaviour(false, Some(true)),
            Some(Behaviour::AddressDependent)
        );
        assert_eq!(
            filtering_behaviour(false, Some(false)),
            Some(Behaviour::AddressAndPortDependent)
        );
    }

    #[test]
    fn behaviours_have_the_rfc_4787_spellings() {
        assert_eq!(
            [
                Behaviour::EndpointIndependent,
                Behaviour::AddressDependent,
                Behaviour::AddressAndPortDependent
            ]
            .map(Behaviour::as_str),
            [
                "endpoint-independent",
                "address-dependent",
                "address-and-port-dependent"
            ]
        );
    }

    #[test]
    fn steps_and_tests_read_as_progress_lines() {
        let to = a("192.0.2.1:3478");
        assert_eq!(
            NatStep::Binding {
                test: NatTest::MappingII,
                to
            }
            .to_string(),
            "mapping test II: Binding to 192.0.2.1:3478"
        );
        assert_eq!(
            NatStep::ChangeRequest {
                test: NatTest::FilteringIII,
                to,
                expected: a("192.0.2.1:3479")
            }
            .to_string(),
            "filtering test III: Binding to 192.0.2.1:3478 with CHANGE-REQUEST, answer expected from 192.0.2.1:3479"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hairpin_probe_reports_whether_the_request_arrived() {
        let listener = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let config = ProbeConfig::with_timeout(Duration::from_secs(2));
        assert!(hairpin(&listener, &sender, target, &config).await.unwrap());
        // Sent somewhere else: the listener never sees it.
        let elsewhere = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let start = Instant::now();
        let config = ProbeConfig::with_timeout(Duration::from_millis(600));
        let got = hairpin(&listener, &sender, elsewhere.local_addr().unwrap(), &config)
            .await
            .unwrap();
        assert!(!got);
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
