//! A client transaction as a sans-IO timer (RFC 8489 §6.2): retransmissions over UDP
//! with RTO doubling, Rc transmissions and a final wait of Rm * RTO; a single send and a
//! 39.5 s timeout over reliable transports; response matching by transaction id.

use std::time::{Duration, Instant};

use crate::header::TransactionId;
use crate::message::{peek_header, Message};
use crate::Error;

/// Retransmission settings (RFC 8489 §6.2.1). The defaults are the RFC's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionConfig {
    /// Initial retransmission timeout (RFC 8489 §6.2.1: SHOULD be > 500 ms; default 500 ms).
    /// Callers that cached an RTO for this server pass it here.
    pub rto: Duration,
    /// Maximum number of transmissions, Rc (default 7).
    pub rc: u32,
    /// Final wait multiplier, Rm (default 16): after the last transmission the client
    /// waits Rm * RTO.
    pub rm: u32,
    /// Transaction timeout over reliable transports, Ti (default 39.5 s, §6.2.2).
    pub reliable_timeout: Duration,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        TransactionConfig {
            rto: Duration::from_millis(500),
            rc: 7,
            rm: 16,
            reliable_timeout: Duration::from_millis(39_500),
        }
    }
}

/// Whether the transport retransmits for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    /// UDP or DTLS: the transaction retransmits.
    Unreliable,
    /// TCP or TLS: one transmission, one long timeout.
    Reliable,
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionState {
    /// Waiting for a response.
    Pending,
    /// A response arrived.
    Answered,
    /// No response within the timeout (RFC 8489 §6.2.1).
    TimedOut,
}

/// One outstanding request. Sans-IO: the caller sends what [`poll_transmit`] returns,
/// sleeps until [`poll_timeout`], calls [`handle_timeout`], and feeds responses to
/// [`handle_response`].
///
/// [`poll_transmit`]: ClientTransaction::poll_transmit
/// [`poll_timeout`]: ClientTransaction::poll_timeout
/// [`handle_timeout`]: ClientTransaction::handle_timeout
/// [`handle_response`]: ClientTransaction::handle_response
///
/// ```
/// use std::time::{Duration, Instant};
/// use floe_stun::transaction::{ClientTransaction, Reliability, TransactionConfig, TransactionState};
/// # let request = { let mut b = [0u8; 20]; floe_stun::MessageBuilder::new(&mut b, floe_stun::MessageType::BINDING_REQUEST, floe_stun::TransactionId([1; 12]))?.finish().to_vec() };
/// let start = Instant::now(); // the runtime's clock, passed in
/// let mut t = ClientTransaction::new(request, Reliability::Unreliable, TransactionConfig::default())?;
/// let mut now = start;
/// let mut sends = 0;
/// while t.state() == TransactionState::Pending {
///     while t.poll_transmit(now).is_some() { sends += 1; }
///     now = t.poll_timeout().unwrap();
///     t.handle_timeout(now);
/// }
/// assert_eq!((sends, now - start), (7, Duration::from_millis(39_500)));
/// # Ok::<(), floe_stun::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientTransaction {
    request: Vec<u8>,
    tid: TransactionId,
    reliability: Reliability,
    config: TransactionConfig,
    state: TransactionState,
    transmissions: u32,
    transmit_due: bool,
    rto: Duration,
    first_sent: Option<Instant>,
    deadline: Option<Instant>,
    rtt: Option<Duration>,
    discarded: u32,
    last_discarded: Option<String>,
}

impl ClientTransaction {
    /// A transaction for `request` (a whole encoded STUN request or indication-free
    /// message; its transaction id is read from the header).
    pub fn new(
        request: Vec<u8>,
        reliability: Reliability,
        config: TransactionConfig,
    ) -> Result<ClientTransaction, Error> {
        peek_header(&request)?;
        let tid = crate::message::peek_transaction_id(&request).ok_or(Error::Truncated {
            needed: 20,
            have: request.len(),
        })?;
        Ok(ClientTransaction {
            request,
            tid,
            reliability,
            config,
            state: TransactionState::Pending,
            transmissions: 0,
            transmit_due: true,
            rto: config.rto,
            first_sent: None,
            deadline: None,
            rtt: None,
            discarded: 0,
            last_discarded: None,
        })
    }

    /// The transaction id responses must carry.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// The request bytes.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// The current state.
    pub fn state(&self) -> TransactionState {
        self.state
    }

    /// How many times the request was sent.
    pub fn transmissions(&self) -> u32 {
        self.transmissions
    }

    /// The round-trip time, known when the response answered a request that was sent
    /// only once (Karn's rule: a retransmitted request's response is ambiguous).
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The request bytes if a transmission is due now; schedules the next timer.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<&[u8]> {
        if !self.transmit_due || self.state != TransactionState::Pending {
            return None;
        }
        self.transmit_due = false;
        self.transmissions += 1;
        self.first_sent.get_or_insert(now);
        self.deadline = Some(match self.reliability {
            Reliability::Reliable => now + self.config.reliable_timeout,
            // RFC 8489 §6.2.1: after the Rc-th transmission, wait Rm times the initial
            // RTO; before it, wait the current RTO, doubling each time.
            Reliability::Unreliable if self.transmissions >= self.config.rc => {
                now + self.config.rto * self.config.rm
            }
            Reliability::Unreliable => now + self.rto,
        });
        Some(&self.request)
    }

    /// When [`ClientTransaction::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            TransactionState::Pending if !self.transmit_due => self.deadline,
            _ => None,
        }
    }

    /// Advances timers: a retransmission becomes due, or the transaction times out.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if self.state != TransactionState::Pending || self.transmit_due || now < deadline {
            return;
        }
        if self.reliability == Reliability::Reliable || self.transmissions >= self.config.rc {
            self.state = TransactionState::TimedOut;
        } else {
            self.rto *= 2;
            self.transmit_due = true;
        }
    }

    /// Whether `msg` is a response to this transaction (same id, response class).
    pub fn matches(&self, msg: &Message<'_>) -> bool {
        msg.transaction_id() == self.tid
            && matches!(msg.class(), crate::Class::Success | crate::Class::Error)
    }

    /// Feeds a parsed message; returns `true` if it answered this transaction (which is
    /// then [`TransactionState::Answered`]). Checking the response's integrity is the
    /// caller's job, before calling this.
    ///
    /// A response to this transaction that breaks [`check_response`] (an unknown
    /// comprehension-required attribute, RFC 8489 §6.3.3 and §6.3.4) does not answer it:
    /// it is [discarded](ClientTransaction::discard) and the transaction keeps waiting
    /// for a valid response until its retransmission schedule ends, so one forged or
    /// broken datagram cannot end it. The final error can then say what arrived
    /// ([`ClientTransaction::last_discarded`]).
    pub fn handle_response(&mut self, now: Instant, msg: &Message<'_>) -> bool {
        if self.state != TransactionState::Pending || !self.matches(msg) {
            return false;
        }
        if let Err(why) = check_response(msg) {
            self.discard(why);
            return false;
        }
        self.state = TransactionState::Answered;
        if self.transmissions == 1 {
            self.rtt = self.first_sent.map(|t| now.saturating_duration_since(t));
        }
        true
    }

    /// Records that a response to this transaction was discarded because it failed the
    /// caller's validation (integrity, a missing or impossible address, ...). The
    /// transaction keeps waiting; `why` is kept for the final error.
    pub fn discard(&mut self, why: impl Into<String>) {
        self.discarded = self.discarded.saturating_add(1);
        self.last_discarded = Some(why.into());
    }

    /// How many responses to this transaction were discarded.
    pub fn discarded(&self) -> u32 {
        self.discarded
    }

    /// What was wrong with the last discarded response, if any: for the error a caller
    /// reports when the transaction times out.
    pub fn last_discarded(&self) -> Option<&str> {
        self.last_discarded.as_deref()
    }
}

/// RFC 3489 attributes that servers of the RFC 5389 era still put in Binding responses
/// for old clients: RESPONSE-ADDRESS (0x0002), SOURCE-ADDRESS (0x0004), CHANGED-ADDRESS
/// (0x0005) and REFLECTED-FROM (0x000B). RFC 8489 §18.3.1 reserves them; floe knows
/// what they meant and needs none of them, so a response carrying them is understood,
/// not refused (refusing it would cost every user of such a server its
/// server-reflexive candidate).
pub const LEGACY_RFC3489_ATTRIBUTES: [u16; 4] = [0x0002, 0x0004, 0x0005, 0x000B];

/// What RFC 8489 requires of every response and indication before its content is used:
/// no unknown comprehension-required attribute (§6.3.2 for indications, §6.3.3 and
/// §6.3.4 for responses; the attribute types floe decodes are known, and so are
/// [`LEGACY_RFC3489_ATTRIBUTES`]). The error names the first such attribute. The one
/// home of this rule: the transactions, the TURN client and the ICE agent call it.
pub fn check_response(msg: &Message<'_>) -> Result<(), String> {
    match msg
        .unknown_comprehension_required()
        .find(|t| !LEGACY_RFC3489_ATTRIBUTES.contains(&t.0))
    {
        None => Ok(()),
        Some(t) => Err(format!(
            "unknown comprehension-required attribute 0x{:04x} (RFC 8489 §6.3)",
            t.0
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MessageBuilder, MessageType};

    fn request() -> Vec<u8> {
        let mut buf = [0u8; 20];
        MessageBuilder::new(
            &mut buf,
            MessageType::BINDING_REQUEST,
            TransactionId([9; 12]),
        )
        .unwrap()
        .finish()
        .to_vec()
    }

    fn send_times(
        reliability: Reliability,
        config: TransactionConfig,
    ) -> (Vec<Duration>, Duration) {
        let start = Instant::now();
        let mut t = ClientTransaction::new(request(), reliability, config).unwrap();
        let mut now = start;
        let mut sends = Vec::new();
        while t.state() == TransactionState::Pending {
            while t.poll_transmit(now).is_some() {
                sends.push(now - start);
            }
            now = t.poll_timeout().unwrap();
            t.handle_timeout(now);
        }
        assert_eq!(t.state(), TransactionState::TimedOut);
        (sends, now - start)
    }

    #[test]
    fn udp_retransmits_at_the_rfc_8489_schedule() {
        // RFC 8489 §6.2.1: with RTO 500 ms, sends at 0, 500, 1500, 3500, 7500, 15500,
        // 31500 ms, and the transaction fails at 39500 ms.
        let (sends, end) = send_times(Reliability::Unreliable, TransactionConfig::default());
        let ms: Vec<u128> = sends.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(end, Duration::from_millis(39_500));
    }

    #[test]
    fn schedule_follows_configured_rc_rm_and_rto() {
        let config = TransactionConfig {
            rto: Duration::from_millis(100),
            rc: 3,
            rm: 4,
            ..Default::default()
        };
        let (sends, end) = send_times(Reliability::Unreliable, config);
        let ms: Vec<u128> = sends.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 100, 300]);
        assert_eq!(end, Duration::from_millis(700));
    }

    #[test]
    fn reliable_transport_sends_once_and_waits_ti() {
        let (sends, end) = send_times(Reliability::Reliable, TransactionConfig::default());
        assert_eq!(sends, [Duration::ZERO]);
        assert_eq!(end, Duration::from_millis(39_500));
    }

    #[test]
    fn response_with_matching_id_completes_and_measures_rtt() {
        let start = Instant::now();
        let mut t = ClientTransaction::new(
            request(),
            Reliability::Unreliable,
            TransactionConfig::default(),
        )
        .unwrap();
        assert!(t.poll_transmit(start).is_some());
        let mut buf = [0u8; 20];
        let other = MessageBuilder::new(
            &mut buf,
            MessageType::BINDING_SUCCESS,
            TransactionId([8; 12]),
        )
        .unwrap()
        .finish();
        assert!(!t.handle_response(start, &Message::parse(other).unwrap()));
        let mut buf = [0u8; 20];
        let ok = MessageBuilder::new(
            &mut buf,
            MessageType::BINDING_SUCCESS,
            TransactionId([9; 12]),
        )
        .unwrap()
        .finish();
        assert!(t.handle_response(
            start + Duration::from_millis(42),
            &Message::parse(ok).unwrap()
        ));
        assert_eq!(t.state(), TransactionState::Answered);
        assert_eq!(t.rtt(), Some(Duration::from_millis(42)));
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn a_response_with_an_unknown_required_attribute_is_discarded_and_waiting_goes_on() {
        let start = Instant::now();
        let mut t = ClientTransaction::new(
            request(),
            Reliability::Unreliable,
            TransactionConfig::default(),
        )
        .unwrap();
        t.poll_transmit(start);
        let mut buf = [0u8; 64];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::BINDING_SUCCESS,
            TransactionId([9; 12]),
        )
        .unwrap();
        b.add_raw(crate::AttrType(0x7faa), &[1, 2, 3, 4]).unwrap();
        let bad = b.finish();
        assert!(!t.handle_response(start, &Message::parse(bad).unwrap()));
        assert_eq!(t.state(), TransactionState::Pending);
        assert_eq!(t.discarded(), 1);
        assert!(t.last_discarded().unwrap().contains("0x7faa"));
        // An unknown optional attribute (0x8000 and up) is fine.
        let mut buf = [0u8; 64];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::BINDING_SUCCESS,
            TransactionId([9; 12]),
        )
        .unwrap();
        b.add_raw(crate::AttrType(0xc0aa), &[1, 2, 3, 4]).unwrap();
        // Nor are RFC 3489's SOURCE-ADDRESS and CHANGED-ADDRESS, which old-style
        // servers still send.
        b.add_raw(crate::AttrType(0x0004), &[0, 1, 0, 1, 192, 0, 2, 1])
            .unwrap();
        b.add_raw(crate::AttrType(0x0005), &[0, 1, 0, 2, 192, 0, 2, 2])
            .unwrap();
        let ok = b.finish();
        assert!(t.handle_response(start, &Message::parse(ok).unwrap()));
        assert_eq!(t.state(), TransactionState::Answered);
    }

    /// RFC 3489's RESPONSE-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS and REFLECTED-FROM
    /// (reserved by RFC 8489 §18.3.1) do not make a response unusable; any other unknown
    /// comprehension-required attribute does.
    #[test]
    fn the_four_rfc_3489_attributes_are_tolerated_in_responses() {
        let response = |typ: u16| {
            let mut buf = [0u8; 64];
            let mut b = MessageBuilder::new(
                &mut buf,
                MessageType::BINDING_SUCCESS,
                TransactionId([9; 12]),
            )
            .unwrap();
            b.add_raw(crate::AttrType(typ), &[0, 1, 0, 1, 192, 0, 2, 1])
                .unwrap();
            b.finish().to_vec()
        };
        for typ in [0x0002, 0x0004, 0x0005, 0x000B] {
            let m = response(typ);
            assert_eq!(
                check_response(&Message::parse(&m).unwrap()),
                Ok(()),
                "{typ:#06x}"
            );
        }
        for typ in [0x0007, 0x000E, 0x7FAA] {
            let m = response(typ);
            let err = check_response(&Message::parse(&m).unwrap()).unwrap_err();
            assert!(err.contains(&format!("0x{typ:04x}")), "{err}");
        }
    }

    #[test]
    fn discarded_responses_do_not_stop_the_schedule_and_explain_the_timeout() {
        let start = Instant::now();
        let mut t = ClientTransaction::new(
            request(),
            Reliability::Unreliable,
            TransactionConfig::default(),
        )
        .unwrap();
        let mut now = start;
        let mut sends = 0;
        while t.state() == TransactionState::Pending {
            while t.poll_transmit(now).is_some() {
                sends += 1;
                t.discard("no XOR-MAPPED-ADDRESS");
            }
            now = t.poll_timeout().unwrap();
            t.handle_timeout(now);
        }
        assert_eq!(sends, 7);
        assert_eq!(t.state(), TransactionState::TimedOut);
        assert_eq!(t.discarded(), 7);
        assert_eq!(t.last_discarded(), Some("no XOR-MAPPED-ADDRESS"));
    }

    #[test]
    fn rtt_is_not_measured_after_a_retransmission() {
        let start = Instant::now();
        let mut t = ClientTransaction::new(
            request(),
            Reliability::Unreliable,
            TransactionConfig::default(),
        )
        .unwrap();
        t.poll_transmit(start);
        let at = t.poll_timeout().unwrap();
        t.handle_timeout(at);
        assert!(t.poll_transmit(at).is_some());
        let mut buf = [0u8; 20];
        let ok = MessageBuilder::new(&mut buf, MessageType::BINDING_ERROR, TransactionId([9; 12]))
            .unwrap()
            .finish();
        assert!(t.handle_response(at, &Message::parse(ok).unwrap()));
        assert_eq!(t.rtt(), None);
    }
}
