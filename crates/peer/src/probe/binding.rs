//! One STUN Binding transaction over UDP (RFC 8489 §6), with the RFC 5780 §7.2
//! CHANGE-REQUEST when asked for.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use floe_stun::attributes::{
    ChangeRequest, ErrorCode, MappedAddress, OtherAddress, ResponseOrigin, XorMappedAddress,
};
use floe_stun::transaction::{
    check_response, ClientTransaction, Reliability, TransactionConfig, TransactionState,
};
use floe_stun::{Class, Message, MessageBuilder, MessageType, Method, TransactionId};
use tokio::net::UdpSocket;

use super::ProbeConfig;

/// Transaction settings that keep retransmitting (RTO doubling from `rto`, RFC 8489
/// §6.2.1) until `timeout`: Rc counts the transmissions that start before it, and Rm is
/// large enough that the transaction never gives up before the caller's deadline does.
pub fn transaction_config(rto: Duration, timeout: Duration) -> TransactionConfig {
    let mut config = TransactionConfig::default();
    config.rto = rto;
    let mut rc = 1;
    let mut next = rto;
    while next < timeout && rc < 16 {
        rc += 1;
        next = next * 2 + rto;
    }
    config.rc = rc;
    let rm = timeout.as_secs_f64() / rto.as_secs_f64().max(1e-3);
    config.rm = if rm.is_finite() && rm < f64::from(u32::MAX) {
        // Truncation is fine: one more RTO of margin is added.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rm = rm.ceil() as u32;
        rm.saturating_add(1)
    } else {
        u32::MAX
    };
    config
}

/// What a Binding success response said (RFC 8489 §6.3.1, RFC 5780 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingReply {
    /// Where the response came from (the datagram's source; another address of the
    /// server's when CHANGE-REQUEST was honoured).
    pub source: SocketAddr,
    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2), or MAPPED-ADDRESS from an RFC 3489 server
    /// (§14.1): this host's address as the server saw it.
    pub mapped: SocketAddr,
    /// OTHER-ADDRESS (RFC 5780 §7.4): the server's alternate address.
    pub other: Option<SocketAddr>,
    /// RESPONSE-ORIGIN (RFC 5780 §7.3).
    pub origin: Option<SocketAddr>,
    /// From the first transmission when the request was sent once; from the last
    /// transmission otherwise (RFC 6298 Karn: the first would overstate it).
    pub rtt: Duration,
}

/// Why a Binding transaction failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BindingError {
    /// No response before the deadline (RFC 8489 §6.2.1: the transaction timed out).
    TimedOut {
        /// How many times the request was sent.
        transmissions: u32,
        /// How long we waited.
        waited: Duration,
    },
    /// ICMP port unreachable (seen on a connected socket): nothing listens there.
    Refused,
    /// A socket error.
    Io(io::Error),
    /// An error response (RFC 8489 §6.3.4).
    ErrorResponse {
        /// ERROR-CODE's code (0 if the attribute was missing).
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// Responses to this transaction arrived, but every one was discarded (RFC 8489
    /// §6.3: unknown comprehension-required attributes; or nothing usable in it), and
    /// no valid one came before the deadline. Says what was wrong with the last.
    Invalid {
        /// How many responses were discarded.
        discarded: u32,
        /// What was wrong with the last one.
        last: String,
    },
    /// The request could not be built (a bug).
    Build(floe_stun::Error),
}

impl fmt::Display for BindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindingError::TimedOut {
                transmissions,
                waited,
            } => write!(
                f,
                "no response after {:.1} s ({transmissions} transmission{})",
                waited.as_secs_f64(),
                if *transmissions == 1 { "" } else { "s" }
            ),
            BindingError::Refused => f.write_str("port unreachable (ICMP): nothing listens there"),
            BindingError::Io(e) => write!(f, "socket error: {e}"),
            BindingError::ErrorResponse { code, reason } if reason.is_empty() => {
                write!(f, "error response {code}")
            }
            BindingError::ErrorResponse { code, reason } => {
                write!(f, "error response {code} {reason}")
            }
            BindingError::Invalid { discarded, last } => write!(
                f,
                "no valid response: {discarded} discarded, the last because {last}"
            ),
            BindingError::Build(e) => write!(f, "cannot build the request: {e}"),
        }
    }
}

impl std::error::Error for BindingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BindingError::Io(e) => Some(e),
            BindingError::Build(e) => Some(e),
            _ => None,
        }
    }
}

/// Builds a Binding request with a random transaction id, CHANGE-REQUEST when asked for
/// (RFC 5780 §7.2) and FINGERPRINT (RFC 8489 §14.7).
pub(super) fn binding_request(change: ChangeRequest) -> Result<Vec<u8>, floe_stun::Error> {
    let mut buf = [0u8; 64];
    let tid = TransactionId::random(&mut rand::thread_rng());
    let mut b = MessageBuilder::new(&mut buf, MessageType::BINDING_REQUEST, tid)?;
    if change.change_ip || change.change_port {
        b.add(&change)?;
    }
    b.add_fingerprint()?;
    Ok(b.finish().to_vec())
}

/// What a Binding response says, or why it cannot be used.
enum Content {
    /// A usable success: mapped, OTHER-ADDRESS, RESPONSE-ORIGIN.
    Mapped(SocketAddr, Option<SocketAddr>, Option<SocketAddr>),
    /// An error response (it answers the transaction).
    Error(BindingError),
    /// Nothing usable (discarded; the transaction keeps waiting).
    Unusable(String),
}

/// Reads a Binding response to a request sent to `server`. A success must carry an
/// XOR-MAPPED-ADDRESS (or an RFC 3489 server's MAPPED-ADDRESS, RFC 8489 §14.1) of the
/// request's own address family, with a real address and port: a reflexive address of
/// the other family, or `0.0.0.0:0`, is not an answer anyone can use.
fn read_reply(msg: &Message<'_>, server: SocketAddr) -> Content {
    if msg.class() == Class::Error {
        let (code, reason) = match msg.get::<ErrorCode>() {
            Ok(Some(e)) => (e.code, e.reason.to_owned()),
            _ => (0, String::new()),
        };
        return Content::Error(BindingError::ErrorResponse { code, reason });
    }
    let mapped = match msg.get::<XorMappedAddress>() {
        Ok(Some(XorMappedAddress(a))) => a,
        // RFC 8489 §14.1: MAPPED-ADDRESS is what an RFC 3489 server sends instead.
        _ => match msg.get::<MappedAddress>() {
            Ok(Some(MappedAddress(a))) => a,
            _ => {
                return Content::Unusable(
                    "it had neither XOR-MAPPED-ADDRESS nor MAPPED-ADDRESS".into(),
                )
            }
        },
    };
    if mapped.is_ipv4() != server.is_ipv4() {
        return Content::Unusable(format!(
            "its mapped address {mapped} is not of the family the request was sent over              (IPv{})",
            if server.is_ipv4() { 4 } else { 6 }
        ));
    }
    if mapped.port() == 0 || mapped.ip().is_unspecified() || mapped.ip().is_multicast() {
        return Content::Unusable(format!("its mapped address {mapped} is not an address"));
    }
    Content::Mapped(
        mapped,
        msg.get::<OtherAddress>().ok().flatten().map(|a| a.0),
        msg.get::<ResponseOrigin>().ok().flatten().map(|a| a.0),
    )
}

/// The largest UDP payload: a response is read whole, whatever its size.
pub(super) const MAX_DATAGRAM: usize = 65_535;

/// One Binding transaction (RFC 8489 §6) from `socket` to `server`, retransmitted from
/// `config.rto` (§6.2.1) and abandoned at `config.timeout`; with CHANGE-REQUEST (RFC 5780
/// §7.2) when `change` asks for it.
///
/// Responses may come from any address (CHANGE-REQUEST answers come from the server's
/// other address); they are matched by transaction id (§6.3). A response that breaks
/// [`check_response`] or whose mapped address is unusable is discarded and the
/// transaction keeps waiting; if nothing valid arrives, the error says what was wrong
/// with the last one ([`BindingError::Invalid`]). On a connected socket, ICMP port
/// unreachable ends it at once ([`BindingError::Refused`]).
pub async fn binding(
    socket: &UdpSocket,
    server: SocketAddr,
    change: ChangeRequest,
    config: &ProbeConfig,
) -> Result<BindingReply, BindingError> {
    let request = binding_request(change).map_err(BindingError::Build)?;
    let mut tx = ClientTransaction::new(
        request,
        Reliability::Unreliable,
        transaction_config(config.rto, config.timeout),
    )
    .map_err(BindingError::Build)?;
    let start = Instant::now();
    let deadline = start + config.timeout;
    let mut last_sent = start;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let timed_out = |tx: &ClientTransaction, waited: Duration| match tx.last_discarded() {
        Some(last) => BindingError::Invalid {
            discarded: tx.discarded(),
            last: last.to_owned(),
        },
        None => BindingError::TimedOut {
            transmissions: tx.transmissions(),
            waited,
        },
    };
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(&tx, now - start));
        }
        if let Some(data) = tx.poll_transmit(now) {
            last_sent = now;
            match socket.send_to(data, server).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    return Err(BindingError::Refused)
                }
                Err(e) => return Err(BindingError::Io(e)),
            }
        }
        if tx.state() != TransactionState::Pending {
            return Err(timed_out(&tx, now - start));
        }
        let wake = tx.poll_timeout().map_or(deadline, |t| t.min(deadline));
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => tx.handle_timeout(Instant::now()),
            r = socket.recv_from(&mut buf) => {
                let (n, source) = match r {
                    Ok(x) => x,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        return Err(BindingError::Refused)
                    }
                    Err(e) => return Err(BindingError::Io(e)),
                };
                let now = Instant::now();
                // Anything that is not an answer to this transaction is dropped (RFC
                // 8489 §6.3: unmatched responses are discarded).
                let Some(data) = buf.get(..n) else { continue };
                let Ok(msg) = Message::parse(data) else { continue };
                if msg.method() != Method::BINDING || !tx.matches(&msg) {
                    continue;
                }
                // An answer that is broken or useless is discarded, and the
                // transaction waits for a valid one (a forged datagram cannot end it).
                if let Err(why) = check_response(&msg) {
                    tx.discard(why);
                    continue;
                }
                let content = read_reply(&msg, server);
                if let Content::Unusable(why) = content {
                    tx.discard(why);
                    continue;
                }
                if !tx.handle_response(now, &msg) {
                    continue;
                }
                let rtt = tx.rtt().unwrap_or_else(|| now.saturating_duration_since(last_sent));
                return match content {
                    Content::Mapped(mapped, other, origin) => Ok(BindingReply {
                        source,
                        mapped,
                        other,
                        origin,
                        rtt,
                    }),
                    Content::Error(e) => Err(e),
                    Content::Unusable(why) => Err(BindingError::Invalid { discarded: 1, last: why }),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::PROBE_RTO;

    #[test]
    fn transaction_config_retransmits_until_the_timeout_and_no_longer() {
        // Sends at 0, 0.25, 0.75, 1.75 and 3.75 s fit in 5 s; 7.75 s does not.
        let c = transaction_config(PROBE_RTO, Duration::from_secs(5));
        assert_eq!(c.rto, PROBE_RTO);
        assert_eq!(c.rc, 5);
        assert!(PROBE_RTO * c.rm >= Duration::from_secs(5));
        // One second: 0, 0.25 and 0.75 s.
        assert_eq!(transaction_config(PROBE_RTO, Duration::from_secs(1)).rc, 3);
        // Shorter than one RTO: a single transmission.
        assert_eq!(
            transaction_config(PROBE_RTO, Duration::from_millis(100)).rc,
            1
        );
    }

    #[test]
    fn error_responses_carry_their_code() {
        let mut buf = [0u8; 128];
        let mut b =
            MessageBuilder::new(&mut buf, MessageType::BINDING_ERROR, TransactionId([3; 12]))
                .unwrap();
        b.add(&ErrorCode::BAD_REQUEST).unwrap();
        let bytes = b.finish().to_vec();
        let msg = Message::parse(&bytes).unwrap();
        let src: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        let Content::Error(e) = read_reply(&msg, src) else {
            panic!("an error response answers the transaction")
        };
        assert!(e.to_string().starts_with("error response 400"), "{e}");
    }

    #[test]
    fn mapped_address_is_the_fallback_for_rfc3489_servers() {
        let seen: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let mut buf = [0u8; 128];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::BINDING_SUCCESS,
            TransactionId([4; 12]),
        )
        .unwrap();
        b.add(&MappedAddress(seen)).unwrap();
        let bytes = b.finish().to_vec();
        let msg = Message::parse(&bytes).unwrap();
        let src: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        assert!(matches!(read_reply(&msg, src), Content::Mapped(m, None, None) if m == seen));
    }
}
