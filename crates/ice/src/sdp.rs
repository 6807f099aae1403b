//! RFC 8839 §5.1 `candidate` attribute lines, with RFC 6544 `tcptype`, and the RFC 8838
//! end-of-candidates indication.
//!
//! The parser takes lines as peers actually send them (see `INTEROP.md`): with or
//! without `a=`, with or without `candidate:`, any case for `UDP`/`TCP` and the other
//! ABNF literals (RFC 5234 §2.3: quoted strings are case-insensitive), runs of spaces or
//! tabs, a trailing CR/LF, bracketless or bracketed IPv6, `.local` mDNS names, and
//! extension attributes it does not know. Lines it cannot use but that are well formed
//! (another transport, a non-mDNS hostname, an unknown candidate type) fail with errors
//! for which [`ParseError::is_unsupported`] is true, so a caller can ignore them quietly
//! (RFC 8839 §5.1: "MUST ignore").
//!
//! ```
//! use floe_ice::{Candidate, CandidateKind};
//!
//! let line = "a=candidate:2 1 UDP 1694498815 192.0.2.3 45664 typ srflx \
//!             raddr 203.0.113.141 rport 8998 generation 0\r\n";
//! let c: Candidate = line.parse()?;
//! assert_eq!(c.kind, CandidateKind::ServerReflexive);
//! assert_eq!(c.extension("generation"), Some("0"));
//! assert_eq!(
//!     c.to_string(),
//!     "candidate:2 1 udp 1694498815 192.0.2.3 45664 typ srflx \
//!      raddr 203.0.113.141 rport 8998 generation 0"
//! );
//! # Ok::<(), floe_ice::sdp::ParseError>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::candidate::{Candidate, CandidateAddress, CandidateKind, TcpType, TransportProtocol};

/// Longest accepted line, without surrounding whitespace. A candidate whose written form
/// ([`Candidate`]'s `Display`) would be longer is refused too, so that every parsed
/// candidate can be written and parsed again.
pub const MAX_LINE_LEN: usize = 1024;
/// Longest foundation (RFC 8839 §5.1: `1*32ice-char`).
pub const MAX_FOUNDATION_LEN: usize = 32;
/// Longest hostname (`connection-address`, `raddr`) or extension attribute name.
pub const MAX_NAME_LEN: usize = 255;
/// Most extension attributes kept from one line.
pub const MAX_EXTENSIONS: usize = 32;
/// Highest priority (RFC 8839 §5.1: 1 to 2^31 - 1). Enforced because RFC 8445 §6.1.2.3
/// pair priorities (`2^32*MIN(G,D) + 2*MAX(G,D) + ...`) fit a u64 only in that range.
/// Priority 0 is out of range too but harmless, and tolerated.
pub const MAX_PRIORITY: u32 = (1 << 31) - 1;

/// A field of a candidate line, named in [`ParseError`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// `foundation`.
    Foundation,
    /// `component-id`.
    Component,
    /// `transport`.
    Transport,
    /// `priority`.
    Priority,
    /// `connection-address`.
    Address,
    /// `port`.
    Port,
    /// The `typ` keyword.
    Typ,
    /// `candidate-types` after `typ`.
    CandidateType,
    /// `raddr`.
    RelatedAddress,
    /// `rport`.
    RelatedPort,
    /// RFC 6544 `tcptype`.
    TcpType,
    /// `extension-att-name`.
    ExtensionName,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Foundation => "foundation",
            Field::Component => "component id",
            Field::Transport => "transport",
            Field::Priority => "priority",
            Field::Address => "connection address",
            Field::Port => "port",
            Field::Typ => "`typ` keyword",
            Field::CandidateType => "candidate type",
            Field::RelatedAddress => "related address (raddr)",
            Field::RelatedPort => "related port (rport)",
            Field::TcpType => "tcptype",
            Field::ExtensionName => "extension attribute name",
        })
    }
}

/// Why a candidate line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The line, or the candidate written back, is over [`MAX_LINE_LEN`] bytes.
    #[error("candidate line of {len} bytes is over the {MAX_LINE_LEN}-byte limit")]
    LineTooLong {
        /// Its length.
        len: usize,
    },
    /// A control character (other than a tab, or a trailing CR/LF) is in the line.
    #[error("control character in candidate line")]
    ControlCharacter,
    /// An `a=` line that is not `a=candidate:`.
    #[error("not a candidate attribute")]
    NotACandidate,
    /// The line ends before this mandatory field (or an `raddr`/`rport`/`tcptype` value).
    #[error("candidate line ends before the {0}")]
    Missing(Field),
    /// The field does not follow the grammar or is out of range.
    #[error("invalid {0}")]
    Invalid(Field),
    /// The foundation is longer than [`MAX_FOUNDATION_LEN`].
    #[error("foundation of {len} characters is over the {MAX_FOUNDATION_LEN}-character limit")]
    FoundationTooLong {
        /// Its length.
        len: usize,
    },
    /// A hostname or extension name is longer than [`MAX_NAME_LEN`].
    #[error("{field} of {len} bytes is over the {MAX_NAME_LEN}-byte limit")]
    NameTooLong {
        /// Which name.
        field: Field,
        /// Its length.
        len: usize,
    },
    /// A well-formed transport other than UDP and TCP (`ssltcp`, `tls`, ...).
    #[error("unsupported transport {0:?}")]
    UnsupportedTransport(String),
    /// A hostname that is not an mDNS `.local` name (RFC 8839 §5.1: agents MUST ignore
    /// FQDN candidates).
    #[error("unresolved hostname {0:?}")]
    UnresolvedHostname(String),
    /// A candidate type other than `host`, `srflx`, `prflx` and `relay`.
    #[error("unknown candidate type {0:?}")]
    UnknownCandidateType(String),
    /// `raddr`, `rport` or `tcptype` appears twice.
    #[error("duplicate {0}")]
    Duplicate(Field),
    /// `raddr` without `rport`, or `rport` without `raddr`.
    #[error("raddr and rport must come together")]
    IncompleteRelatedAddress,
    /// More than [`MAX_EXTENSIONS`] extension attributes.
    #[error("more than {MAX_EXTENSIONS} extension attributes")]
    TooManyExtensions,
}

impl ParseError {
    /// Whether the line was well formed but describes a candidate floe cannot use
    /// (another transport, a hostname, a new candidate type). RFC 8839 §5.1 says to
    /// ignore such lines; the other errors are malformed input.
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            ParseError::UnsupportedTransport(_)
                | ParseError::UnresolvedHostname(_)
                | ParseError::UnknownCandidateType(_)
        )
    }
}

impl Candidate {
    /// Parses an RFC 8839 §5.1 candidate line (see the [module docs](crate::sdp) for
    /// what is tolerated).
    pub fn parse(line: &str) -> Result<Candidate, ParseError> {
        let line = line.trim_matches([' ', '\t', '\r', '\n']);
        if line.len() > MAX_LINE_LEN {
            return Err(ParseError::LineTooLong { len: line.len() });
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ParseError::ControlCharacter);
        }
        let body = match line.strip_prefix("a=") {
            Some(rest) => {
                strip_prefix_ignore_case(rest, "candidate:").ok_or(ParseError::NotACandidate)?
            }
            // RTCIceCandidate.candidate has no `a=`; some signalling drops `candidate:` too.
            None => strip_prefix_ignore_case(line, "candidate:").unwrap_or(line),
        };
        let mut tokens = body.split([' ', '\t']).filter(|t| !t.is_empty());
        let mut next = |field| tokens.next().ok_or(ParseError::Missing(field));

        let foundation = parse_foundation(next(Field::Foundation)?)?;
        let component = digits::<u16>(next(Field::Component)?)
            .filter(|c| (1..=256).contains(c))
            .ok_or(ParseError::Invalid(Field::Component))?;
        let transport = parse_transport(next(Field::Transport)?)?;
        let priority = digits::<u32>(next(Field::Priority)?)
            .filter(|p| *p <= MAX_PRIORITY)
            .ok_or(ParseError::Invalid(Field::Priority))?;
        let host = parse_host(next(Field::Address)?, Field::Address)?;
        let port = digits::<u16>(next(Field::Port)?).ok_or(ParseError::Invalid(Field::Port))?;
        let address = match host {
            Host::Ip(ip) => CandidateAddress::Ip(SocketAddr::new(ip, port)),
            Host::Name(name) if is_mdns(name) => CandidateAddress::Mdns {
                name: name.to_owned(),
                port,
            },
            Host::Name(name) => return Err(ParseError::UnresolvedHostname(name.to_owned())),
        };
        if !next(Field::Typ)?.eq_ignore_ascii_case("typ") {
            return Err(ParseError::Invalid(Field::Typ));
        }
        let kind = parse_kind(next(Field::CandidateType)?)?;

        let mut candidate = Candidate {
            foundation,
            component,
            transport,
            priority,
            address,
            kind,
            related: None,
            tcp_type: None,
            extensions: Vec::new(),
        };
        parse_attributes(&mut tokens, &mut candidate)?;

        // Normalising (dropping `a=`, spaces, leading zeros) only shortens a line, except
        // that an IPv4-mapped IPv6 address is written back dotted and a bare line gains
        // `candidate:`. Measure the written form so that what we accept we can also
        // write and read again.
        let mut written = Counter(0);
        if fmt::write(&mut written, format_args!("{candidate}")).is_err()
            || written.0 > MAX_LINE_LEN
        {
            return Err(ParseError::LineTooLong { len: written.0 });
        }
        Ok(candidate)
    }
}

impl FromStr for Candidate {
    type Err = ParseError;

    fn from_str(line: &str) -> Result<Candidate, ParseError> {
        Candidate::parse(line)
    }
}

/// Writes `candidate:FOUNDATION COMPONENT udp PRIORITY ADDR PORT typ KIND [raddr A rport P]
/// [tcptype T] [name value]...`, without `a=`. A candidate that [`Candidate::parse`]
/// returned parses back to an equal one. For a candidate built by hand that holds if its
/// fields follow the grammar: foundation of 1-32 ice-chars, component 1-256, an mDNS name
/// ending in `.local`, IPv6 addresses without scope id or flow info, extension names that
/// are tokens other than `raddr`/`rport`/`tcptype`, extension values without spaces or
/// control characters and non-empty except in the last one.
impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.transport {
            TransportProtocol::Udp => "udp",
            TransportProtocol::Tcp => "tcp",
        };
        write!(
            f,
            "candidate:{} {} {transport} {} ",
            self.foundation, self.component, self.priority
        )?;
        match &self.address {
            CandidateAddress::Ip(addr) => write!(f, "{} {}", addr.ip(), addr.port())?,
            CandidateAddress::Mdns { name, port } => write!(f, "{name} {port}")?,
        }
        write!(f, " typ {}", self.kind)?;
        if let Some(related) = self.related {
            write!(f, " raddr {} rport {}", related.ip(), related.port())?;
        }
        if let Some(tcp_type) = self.tcp_type {
            let tcp_type = match tcp_type {
                TcpType::Active => "active",
                TcpType::Passive => "passive",
                TcpType::So => "so",
            };
            write!(f, " tcptype {tcp_type}")?;
        }
        for (name, value) in &self.extensions {
            if value.is_empty() {
                write!(f, " {name}")?;
            } else {
                write!(f, " {name} {value}")?;
            }
        }
        Ok(())
    }
}

/// Whether a trickled line is the RFC 8838 §13 end-of-candidates indication (RFC 8840):
/// `a=end-of-candidates`, `end-of-candidates`, or the empty string a browser's
/// `RTCIceCandidate.candidate` carries for it.
pub fn is_end_of_candidates(line: &str) -> bool {
    let line = line.trim_matches([' ', '\t', '\r', '\n']);
    line.is_empty()
        || line.eq_ignore_ascii_case("end-of-candidates")
        || line.eq_ignore_ascii_case("a=end-of-candidates")
}

/// `raddr`/`rport`, `tcptype` and extension attributes after `typ`. RFC 8839 orders
/// them, but `tcptype` is an extension to RFC 6544 and some agents put it after others,
/// so the three known names are recognised wherever they appear.
fn parse_attributes<'a>(
    tokens: &mut impl Iterator<Item = &'a str>,
    candidate: &mut Candidate,
) -> Result<(), ParseError> {
    let mut raddr: Option<Option<IpAddr>> = None;
    let mut rport: Option<u16> = None;
    while let Some(name) = tokens.next() {
        if name.eq_ignore_ascii_case("raddr") {
            let value = tokens
                .next()
                .ok_or(ParseError::Missing(Field::RelatedAddress))?;
            if raddr.is_some() {
                return Err(ParseError::Duplicate(Field::RelatedAddress));
            }
            // The related address is only diagnostic (RFC 8839 §5.1); an mDNS name there
            // cannot be kept in a SocketAddr, so it is dropped rather than the candidate.
            raddr = Some(match parse_host(value, Field::RelatedAddress)? {
                Host::Ip(ip) => Some(ip),
                Host::Name(_) => None,
            });
        } else if name.eq_ignore_ascii_case("rport") {
            let value = tokens
                .next()
                .ok_or(ParseError::Missing(Field::RelatedPort))?;
            if rport.is_some() {
                return Err(ParseError::Duplicate(Field::RelatedPort));
            }
            rport = Some(digits(value).ok_or(ParseError::Invalid(Field::RelatedPort))?);
        } else if name.eq_ignore_ascii_case("tcptype") {
            let value = tokens.next().ok_or(ParseError::Missing(Field::TcpType))?;
            if candidate.tcp_type.is_some() {
                return Err(ParseError::Duplicate(Field::TcpType));
            }
            candidate.tcp_type = Some(parse_tcp_type(value)?);
        } else {
            if name.len() > MAX_NAME_LEN {
                return Err(ParseError::NameTooLong {
                    field: Field::ExtensionName,
                    len: name.len(),
                });
            }
            if !is_token(name) {
                return Err(ParseError::Invalid(Field::ExtensionName));
            }
            if candidate.extensions.len() == MAX_EXTENSIONS {
                return Err(ParseError::TooManyExtensions);
            }
            // `extension-att-value = *VCHAR`: a name at the very end has an empty value.
            let value = tokens.next().unwrap_or("");
            candidate
                .extensions
                .push((name.to_owned(), value.to_owned()));
        }
    }
    match (raddr, rport) {
        (None, None) => {}
        (Some(ip), Some(port)) => candidate.related = ip.map(|ip| SocketAddr::new(ip, port)),
        _ => return Err(ParseError::IncompleteRelatedAddress),
    }
    Ok(())
}

fn parse_foundation(token: &str) -> Result<String, ParseError> {
    if token.len() > MAX_FOUNDATION_LEN {
        return Err(ParseError::FoundationTooLong { len: token.len() });
    }
    // ice-char = ALPHA / DIGIT / "+" / "/"
    if token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        Ok(token.to_owned())
    } else {
        Err(ParseError::Invalid(Field::Foundation))
    }
}

fn parse_transport(token: &str) -> Result<TransportProtocol, ParseError> {
    if token.eq_ignore_ascii_case("udp") {
        Ok(TransportProtocol::Udp)
    } else if token.eq_ignore_ascii_case("tcp") {
        Ok(TransportProtocol::Tcp)
    } else if is_token(token) {
        Err(ParseError::UnsupportedTransport(token.to_owned()))
    } else {
        Err(ParseError::Invalid(Field::Transport))
    }
}

fn parse_kind(token: &str) -> Result<CandidateKind, ParseError> {
    [
        CandidateKind::Host,
        CandidateKind::ServerReflexive,
        CandidateKind::PeerReflexive,
        CandidateKind::Relayed,
    ]
    .into_iter()
    .find(|kind| token.eq_ignore_ascii_case(kind.as_str()))
    .ok_or_else(|| {
        if is_token(token) {
            ParseError::UnknownCandidateType(token.to_owned())
        } else {
            ParseError::Invalid(Field::CandidateType)
        }
    })
}

fn parse_tcp_type(token: &str) -> Result<TcpType, ParseError> {
    if token.eq_ignore_ascii_case("active") {
        Ok(TcpType::Active)
    } else if token.eq_ignore_ascii_case("passive") {
        Ok(TcpType::Passive)
    } else if token.eq_ignore_ascii_case("so") {
        Ok(TcpType::So)
    } else {
        Err(ParseError::Invalid(Field::TcpType))
    }
}

/// A `connection-address`: an IP address or a syntactically valid hostname.
enum Host<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

fn parse_host(token: &str, field: Field) -> Result<Host<'_>, ParseError> {
    // RFC 8839 §5.1: a colon means IPv6. SDP writes it bare; accept brackets as well.
    if token.contains(':') {
        let bare = token
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(token);
        return bare
            .parse::<Ipv6Addr>()
            .map(|ip| Host::Ip(ip.into()))
            .map_err(|_| ParseError::Invalid(field));
    }
    if let Ok(ip) = token.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(ip.into()));
    }
    if token.len() > MAX_NAME_LEN {
        return Err(ParseError::NameTooLong {
            field,
            len: token.len(),
        });
    }
    // Digits and dots that are not an IPv4 address (`1.2.3.256`, `01.2.3.4`) are a bad
    // address, not a hostname.
    let numeric = token.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !numeric && is_hostname(token) {
        Ok(Host::Name(token))
    } else {
        Err(ParseError::Invalid(field))
    }
}

/// Labels of 1-63 letters, digits, `-` or `_` (seen in the wild), separated by dots.
fn is_hostname(name: &str) -> bool {
    name.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// A hostname (already checked by [`is_hostname`]) in the mDNS `.local` domain
/// (RFC 6762), as browsers use to hide host addresses.
fn is_mdns(name: &str) -> bool {
    const LOCAL: &str = ".local";
    name.len() > LOCAL.len()
        && name
            .get(name.len() - LOCAL.len()..)
            .is_some_and(|suffix| suffix.eq_ignore_ascii_case(LOCAL))
}

/// RFC 3261 `token`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// A non-negative decimal: digits only (no sign, which `str::parse` would accept).
fn digits<T: FromStr>(token: &str) -> Option<T> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// Counts the bytes written through it.
struct Counter(usize);

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(line: &str) -> Candidate {
        match Candidate::parse(line) {
            Ok(c) => c,
            Err(e) => panic!("{line:?}: {e}"),
        }
    }

    fn err(line: &str) -> ParseError {
        match Candidate::parse(line) {
            Ok(c) => panic!("{line:?} parsed as {c:?}"),
            Err(e) => e,
        }
    }

    fn ip(addr: &str) -> CandidateAddress {
        CandidateAddress::Ip(addr.parse().unwrap())
    }

    fn assert_round_trips(c: &Candidate) {
        let line = c.to_string();
        assert_eq!(&parse(&line), c, "{line}");
    }

    #[test]
    fn chromium_host_line_keeps_generation_network_id_and_network_cost_in_order() {
        let c = parse(
            "candidate:3282253711 1 udp 2122260223 127.0.0.1 46462 typ host generation 0 \
             network-id 1 network-cost 50",
        );
        assert_eq!(
            c,
            Candidate {
                foundation: "3282253711".into(),
                component: 1,
                transport: TransportProtocol::Udp,
                priority: 2_122_260_223,
                address: ip("127.0.0.1:46462"),
                kind: CandidateKind::Host,
                related: None,
                tcp_type: None,
                extensions: vec![
                    ("generation".into(), "0".into()),
                    ("network-id".into(), "1".into()),
                    ("network-cost".into(), "50".into()),
                ],
            }
        );
        assert_eq!(
            c.to_string(),
            "candidate:3282253711 1 udp 2122260223 127.0.0.1 46462 typ host generation 0 \
             network-id 1 network-cost 50"
        );
    }

    #[test]
    fn chromium_mdns_host_candidate_keeps_the_local_name() {
        let c = parse(
            "candidate:1840965416 1 udp 2113937151 b2f6a1e0-5b8c-4d2f-9a3e-0c1d2e3f4a5b.local \
             54400 typ host generation 0 ufrag EsAw network-cost 999",
        );
        assert_eq!(
            c.address,
            CandidateAddress::Mdns {
                name: "b2f6a1e0-5b8c-4d2f-9a3e-0c1d2e3f4a5b.local".into(),
                port: 54400
            }
        );
        assert_eq!(c.addr(), None);
        assert_eq!(c.extension("ufrag"), Some("EsAw"));
        assert_round_trips(&c);
    }

    #[test]
    fn mdns_suffix_is_case_insensitive() {
        let c = parse("candidate:1 1 udp 1 Host-1.LOCAL 9 typ host");
        assert!(
            matches!(c.address, CandidateAddress::Mdns { ref name, port: 9 } if name == "Host-1.LOCAL")
        );
    }

    #[test]
    fn libnice_uppercase_transport_with_a_prefix_and_crlf_parses() {
        let c = parse("a=candidate:1 1 UDP 2013266431 192.168.1.20 47563 typ host\r\n");
        assert_eq!(c.foundation, "1");
        assert_eq!(c.transport, TransportProtocol::Udp);
        assert_eq!(c.address, ip("192.168.1.20:47563"));
        let c = parse("a=candidate:4 2 UDP 1677722110 203.0.113.7 40001 typ srflx raddr 192.168.1.20 rport 47564\n");
        assert_eq!(c.component, 2);
        assert_eq!(c.related, Some("192.168.1.20:47564".parse().unwrap()));
        assert!(c.to_string().starts_with("candidate:4 2 udp "));
    }

    #[test]
    fn aioice_32_hex_digit_foundations_are_accepted() {
        let c = parse(
            "candidate:0fd1e5ba6d9c4bd1b4d4e6fb36a0c2a3 1 udp 2130706431 10.0.0.5 51820 typ host",
        );
        assert_eq!(c.foundation.len(), 32);
        assert_round_trips(&c);
    }

    #[test]
    fn pion_srflx_and_relay_keep_wildcard_related_address() {
        let c = parse(
            "candidate:1987654321 1 udp 1694498815 198.51.100.23 61000 typ srflx raddr 0.0.0.0 rport 61000",
        );
        assert_eq!(c.kind, CandidateKind::ServerReflexive);
        assert_eq!(c.related, Some("0.0.0.0:61000".parse().unwrap()));
        let c = parse(
            "candidate:2203871293 1 udp 16777215 203.0.113.9 50123 typ relay raddr 0.0.0.0 rport 45872",
        );
        assert_eq!(c.kind, CandidateKind::Relayed);
        assert_eq!(c.related, Some("0.0.0.0:45872".parse().unwrap()));
        assert_round_trips(&c);
    }

    #[test]
    fn rfc_6544_tcp_candidates_keep_their_tcptype() {
        for (line, want) in [
            ("a=candidate:1 1 TCP 2128609279 10.0.1.1 9 typ host tcptype active", TcpType::Active),
            ("a=candidate:2 1 TCP 2124414975 10.0.1.1 8998 typ host tcptype passive", TcpType::Passive),
            ("a=candidate:3 1 TCP 2120220671 10.0.1.1 8999 typ host tcptype so", TcpType::So),
            (
                "a=candidate:4 1 TCP 1694498815 192.0.2.3 45664 typ srflx raddr 10.0.1.1 rport 8998 tcptype passive",
                TcpType::Passive,
            ),
        ] {
            let c = parse(line);
            assert_eq!(c.transport, TransportProtocol::Tcp, "{line}");
            assert_eq!(c.tcp_type, Some(want), "{line}");
            assert_round_trips(&c);
        }
    }

    #[test]
    fn chromium_tcp_candidate_with_tcptype_before_generation_parses() {
        let c = parse(
            "candidate:1606050086 1 tcp 1518280447 192.168.1.5 9 typ host tcptype active generation 0 network-id 1",
        );
        assert_eq!(c.tcp_type, Some(TcpType::Active));
        assert_eq!(c.extensions.len(), 2);
        assert_eq!(
            c.to_string(),
            "candidate:1606050086 1 tcp 1518280447 192.168.1.5 9 typ host tcptype active generation 0 network-id 1"
        );
    }

    #[test]
    fn tcptype_and_related_address_after_extensions_are_still_recognised() {
        let c = parse("candidate:1 1 tcp 5 10.0.0.1 9 typ srflx generation 0 tcptype so rport 7 raddr 10.0.0.2");
        assert_eq!(c.tcp_type, Some(TcpType::So));
        assert_eq!(c.related, Some("10.0.0.2:7".parse().unwrap()));
        assert_eq!(c.extensions, vec![("generation".into(), "0".into())]);
        assert_round_trips(&c);
    }

    #[test]
    fn rfc_8839_example_parses() {
        let c = parse("a=candidate:2 1 UDP 1694498815 192.0.2.3 45664 typ srflx raddr 203.0.113.141 rport 8998");
        assert_eq!(c.address, ip("192.0.2.3:45664"));
        assert_eq!(c.related, Some("203.0.113.141:8998".parse().unwrap()));
    }

    #[test]
    fn ipv6_addresses_parse_bracketless_and_bracketed() {
        let c = parse("candidate:1 1 udp 2122262783 2001:db8::1 50000 typ host generation 0");
        assert_eq!(c.address, ip("[2001:db8::1]:50000"));
        assert_eq!(
            c.to_string(),
            "candidate:1 1 udp 2122262783 2001:db8::1 50000 typ host generation 0"
        );
        let c = parse("candidate:1 1 udp 1 [2001:db8::2] 5 typ srflx raddr [fe80::1] rport 6");
        assert_eq!(c.address, ip("[2001:db8::2]:5"));
        assert_eq!(c.related, Some("[fe80::1]:6".parse().unwrap()));
        assert_round_trips(&c);
        let c = parse("candidate:1 1 udp 1 ::ffff:192.0.2.1 5 typ host");
        assert_eq!(c.address, ip("[::ffff:192.0.2.1]:5"));
    }

    #[test]
    fn bare_lines_without_candidate_prefix_parse() {
        let c = parse("3282253711 1 udp 2122260223 10.0.0.1 4000 typ host");
        assert_eq!(c.foundation, "3282253711");
        assert!(c.to_string().starts_with("candidate:3282253711 "));
    }

    #[test]
    fn extra_whitespace_tabs_and_uppercase_keywords_are_tolerated() {
        let c = parse(
            "  a=CANDIDATE:  7  1\tudp   42 10.0.0.1  4000 TYP Relay RADDR 10.0.0.2 RPORT 5 TCPTYPE Passive  x-y  z \r\n",
        );
        assert_eq!(c.foundation, "7");
        assert_eq!(c.kind, CandidateKind::Relayed);
        assert_eq!(c.related, Some("10.0.0.2:5".parse().unwrap()));
        assert_eq!(c.tcp_type, Some(TcpType::Passive));
        assert_eq!(c.extensions, vec![("x-y".into(), "z".into())]);
    }

    #[test]
    fn the_highest_rfc_priority_is_accepted_and_zero_tolerated() {
        assert_eq!(
            parse("candidate:1 1 udp 2147483647 10.0.0.1 5 typ host").priority,
            MAX_PRIORITY
        );
        assert_eq!(parse("candidate:1 1 udp 0 10.0.0.1 5 typ host").priority, 0);
    }

    #[test]
    fn leading_zeros_in_numbers_are_accepted() {
        let c = parse("candidate:1 001 udp 0042 10.0.0.1 08000 typ host");
        assert_eq!((c.component, c.priority, c.address.port()), (1, 42, 8000));
    }

    #[test]
    fn a_dangling_extension_name_gets_an_empty_value_and_round_trips() {
        let c = parse("candidate:1 1 udp 1 10.0.0.1 1 typ host generation 0 flag");
        assert_eq!(c.extension("flag"), Some(""));
        assert!(c.to_string().ends_with("generation 0 flag"));
        assert_round_trips(&c);
    }

    #[test]
    fn an_mdns_related_address_is_dropped_but_the_candidate_kept() {
        let c = parse("candidate:1 1 udp 1 198.51.100.1 5 typ srflx raddr abc.local rport 9");
        assert_eq!(c.related, None);
        assert_round_trips(&c);
    }

    #[test]
    fn non_ascii_extension_values_are_kept() {
        let c = parse("candidate:1 1 udp 1 10.0.0.1 5 typ host label caf\u{e9}");
        assert_eq!(c.extension("label"), Some("caf\u{e9}"));
        assert_round_trips(&c);
    }

    #[test]
    fn end_of_candidates_is_recognised_in_all_three_spellings() {
        for line in [
            "a=end-of-candidates",
            "end-of-candidates",
            "",
            "a=end-of-candidates\r\n",
            " \n",
        ] {
            assert!(is_end_of_candidates(line), "{line:?}");
        }
        for line in [
            "a=",
            "a=candidate:1 1 udp 1 10.0.0.1 5 typ host",
            "end-of-candidate",
        ] {
            assert!(!is_end_of_candidates(line), "{line:?}");
        }
        assert_eq!(err("a=end-of-candidates"), ParseError::NotACandidate);
    }

    #[test]
    fn unusable_but_well_formed_lines_are_marked_unsupported() {
        let e = err("candidate:1 1 ssltcp 1 10.0.0.1 443 typ host");
        assert_eq!(e, ParseError::UnsupportedTransport("ssltcp".into()));
        assert!(e.is_unsupported());
        let e = err("candidate:1 1 udp 1 turn.example.com 3478 typ host");
        assert_eq!(e, ParseError::UnresolvedHostname("turn.example.com".into()));
        assert!(e.is_unsupported());
        let e = err("candidate:1 1 udp 1 10.0.0.1 5 typ nat64");
        assert_eq!(e, ParseError::UnknownCandidateType("nat64".into()));
        assert!(e.is_unsupported());
        assert!(!err("candidate:1 1 udp 1 10.0.0.1 5 typ").is_unsupported());
    }

    #[test]
    fn every_missing_mandatory_field_is_named() {
        let full = [
            "candidate:1",
            "1",
            "udp",
            "1",
            "10.0.0.1",
            "5",
            "typ",
            "host",
        ];
        let fields = [
            Field::Foundation,
            Field::Component,
            Field::Transport,
            Field::Priority,
            Field::Address,
            Field::Port,
            Field::Typ,
            Field::CandidateType,
        ];
        for (n, field) in fields.into_iter().enumerate() {
            let mut line = full[..n].join(" ");
            if n == 0 {
                line = "candidate:".into();
            }
            assert_eq!(err(&line), ParseError::Missing(field), "{line:?}");
        }
        let base = "candidate:1 1 udp 1 10.0.0.1 5 typ srflx";
        assert_eq!(
            err(&format!("{base} raddr")),
            ParseError::Missing(Field::RelatedAddress)
        );
        assert_eq!(
            err(&format!("{base} raddr 1.1.1.1 rport")),
            ParseError::Missing(Field::RelatedPort)
        );
        assert_eq!(
            err(&format!("{base} tcptype")),
            ParseError::Missing(Field::TcpType)
        );
    }

    #[test]
    fn every_malformed_field_is_named() {
        for (line, field) in [
            (
                "candidate:ab-c 1 udp 1 10.0.0.1 5 typ host",
                Field::Foundation,
            ),
            ("candidate:1 0 udp 1 10.0.0.1 5 typ host", Field::Component),
            (
                "candidate:1 257 udp 1 10.0.0.1 5 typ host",
                Field::Component,
            ),
            ("candidate:1 +1 udp 1 10.0.0.1 5 typ host", Field::Component),
            ("candidate:1 1 u/dp 1 10.0.0.1 5 typ host", Field::Transport),
            (
                "candidate:1 1 udp 4294967296 10.0.0.1 5 typ host",
                Field::Priority,
            ),
            ("candidate:1 1 udp -1 10.0.0.1 5 typ host", Field::Priority),
            (
                "candidate:1 1 udp 2147483648 10.0.0.1 5 typ host",
                Field::Priority,
            ),
            ("candidate:1 1 udp 1 10.0.0.256 5 typ host", Field::Address),
            ("candidate:1 1 udp 1 010.0.0.1 5 typ host", Field::Address),
            ("candidate:1 1 udp 1 2001:db8::g 5 typ host", Field::Address),
            (
                "candidate:1 1 udp 1 fe80::1%eth0 5 typ host",
                Field::Address,
            ),
            ("candidate:1 1 udp 1 a..local 5 typ host", Field::Address),
            ("candidate:1 1 udp 1 [10.0.0.1] 5 typ host", Field::Address),
            ("candidate:1 1 udp 1 10.0.0.1 65536 typ host", Field::Port),
            ("candidate:1 1 udp 1 10.0.0.1 5 type host", Field::Typ),
            (
                "candidate:1 1 udp 1 10.0.0.1 5 typ ho(st",
                Field::CandidateType,
            ),
            (
                "candidate:1 1 udp 1 10.0.0.1 5 typ srflx raddr 1.2.3 rport 1",
                Field::RelatedAddress,
            ),
            (
                "candidate:1 1 udp 1 10.0.0.1 5 typ srflx raddr 1.2.3.4 rport x",
                Field::RelatedPort,
            ),
            (
                "candidate:1 1 tcp 1 10.0.0.1 5 typ host tcptype sideways",
                Field::TcpType,
            ),
            (
                "candidate:1 1 udp 1 10.0.0.1 5 typ host gen:eration 0",
                Field::ExtensionName,
            ),
        ] {
            assert_eq!(err(line), ParseError::Invalid(field), "{line}");
        }
    }

    #[test]
    fn a_line_that_is_not_a_candidate_attribute_is_refused() {
        assert_eq!(err("a=ice-ufrag:abcd"), ParseError::NotACandidate);
        assert_eq!(
            err("a=candidate 1 1 udp 1 10.0.0.1 5 typ host"),
            ParseError::NotACandidate
        );
    }

    #[test]
    fn control_characters_inside_a_line_are_refused() {
        assert_eq!(
            err("candidate:1 1 udp 1 10.0.0.1 5 typ host\r\na=ice-lite"),
            ParseError::ControlCharacter
        );
        assert_eq!(
            err("candidate:1 1 udp 1 10.0.0.1 5 typ host x \0"),
            ParseError::ControlCharacter
        );
    }

    #[test]
    fn duplicate_and_incomplete_related_addresses_are_refused() {
        let base = "candidate:1 1 tcp 1 10.0.0.1 5 typ srflx";
        assert_eq!(
            err(&format!("{base} raddr 1.1.1.1 rport 1 raddr 1.1.1.1")),
            ParseError::Duplicate(Field::RelatedAddress)
        );
        assert_eq!(
            err(&format!("{base} raddr 1.1.1.1 rport 1 rport 1")),
            ParseError::Duplicate(Field::RelatedPort)
        );
        assert_eq!(
            err(&format!("{base} tcptype so tcptype so")),
            ParseError::Duplicate(Field::TcpType)
        );
        assert_eq!(
            err(&format!("{base} raddr 1.1.1.1")),
            ParseError::IncompleteRelatedAddress
        );
        assert_eq!(
            err(&format!("{base} rport 1")),
            ParseError::IncompleteRelatedAddress
        );
    }

    #[test]
    fn limits_on_line_foundation_names_and_extensions_are_enforced() {
        let base = "candidate:1 1 udp 1 10.0.0.1 5 typ host";
        let long = format!("{base} x {}", "y".repeat(MAX_LINE_LEN));
        assert!(matches!(err(&long), ParseError::LineTooLong { len } if len == long.len()));

        let f = "f".repeat(MAX_FOUNDATION_LEN);
        assert_eq!(
            parse(&format!("candidate:{f} 1 udp 1 10.0.0.1 5 typ host")).foundation,
            f
        );
        assert_eq!(
            err(&format!("candidate:{f}f 1 udp 1 10.0.0.1 5 typ host")),
            ParseError::FoundationTooLong { len: 33 }
        );

        let name = "n".repeat(MAX_NAME_LEN + 1);
        assert_eq!(
            err(&format!("{base} {name} 1")),
            ParseError::NameTooLong {
                field: Field::ExtensionName,
                len: 256
            }
        );
        let host = format!("{}.local", vec!["a".repeat(60); 5].join("."));
        assert_eq!(
            err(&format!("candidate:1 1 udp 1 {host} 5 typ host")),
            ParseError::NameTooLong {
                field: Field::Address,
                len: host.len()
            }
        );

        let exts = |n: usize| {
            (0..n)
                .map(|i| format!(" e{i} {i}"))
                .collect::<Vec<_>>()
                .concat()
        };
        assert_eq!(
            parse(&format!("{base}{}", exts(MAX_EXTENSIONS)))
                .extensions
                .len(),
            MAX_EXTENSIONS
        );
        assert_eq!(
            err(&format!("{base}{}", exts(MAX_EXTENSIONS + 1))),
            ParseError::TooManyExtensions
        );
    }

    #[test]
    fn a_bare_line_that_would_grow_past_the_limit_when_written_is_refused() {
        // Within the limit as given, but `candidate:` and the dotted form of an
        // IPv4-mapped address would push the written line over it.
        let head = "1 1 udp 1 ::ffff:ffff:ffff 5 typ host x ";
        let line = format!("{head}{}", "y".repeat(MAX_LINE_LEN - head.len()));
        assert_eq!(line.len(), MAX_LINE_LEN);
        assert!(matches!(err(&line), ParseError::LineTooLong { len } if len > MAX_LINE_LEN));
    }

    #[test]
    fn errors_render_as_messages_naming_the_field() {
        assert_eq!(
            ParseError::Invalid(Field::Component).to_string(),
            "invalid component id"
        );
        assert_eq!(
            ParseError::Missing(Field::Typ).to_string(),
            "candidate line ends before the `typ` keyword"
        );
    }

    fn arb_candidate() -> impl Strategy<Value = Candidate> {
        let address = prop_oneof![
            (any::<IpAddr>(), any::<u16>())
                .prop_map(|(ip, port)| CandidateAddress::Ip(SocketAddr::new(ip, port))),
            (
                "[a-z0-9_-]{1,20}(\\.[a-zA-Z0-9]{1,8})?\\.(local|LOCAL)",
                any::<u16>()
            )
                .prop_map(|(name, port)| CandidateAddress::Mdns { name, port }),
        ];
        let kind = prop_oneof![
            Just(CandidateKind::Host),
            Just(CandidateKind::ServerReflexive),
            Just(CandidateKind::PeerReflexive),
            Just(CandidateKind::Relayed),
        ];
        let tcp_type = proptest::option::of(prop_oneof![
            Just(TcpType::Active),
            Just(TcpType::Passive),
            Just(TcpType::So),
        ]);
        let extension = (
            "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,15}".prop_filter("reserved", |n| {
                !["raddr", "rport", "tcptype"]
                    .iter()
                    .any(|r| n.eq_ignore_ascii_case(r))
            }),
            prop_oneof!["[!-~]{1,20}", "[^\\s\\p{Cc}]{1,6}"],
        );
        let extensions = (
            proptest::collection::vec(extension, 0..8),
            proptest::option::of("[a-z]{1,8}"),
        )
            .prop_map(|(mut exts, dangling)| {
                if let Some(name) =
                    dangling.filter(|n| !["raddr", "rport", "tcptype"].contains(&n.as_str()))
                {
                    exts.push((name, String::new()));
                }
                exts
            });
        (
            "[A-Za-z0-9+/]{1,32}",
            1..=256u16,
            prop_oneof![Just(TransportProtocol::Udp), Just(TransportProtocol::Tcp)],
            0..=MAX_PRIORITY,
            address,
            kind,
            proptest::option::of(
                (any::<IpAddr>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port)),
            ),
            tcp_type,
            extensions,
        )
            .prop_map(
                |(
                    foundation,
                    component,
                    transport,
                    priority,
                    address,
                    kind,
                    related,
                    tcp_type,
                    extensions,
                )| Candidate {
                    foundation,
                    component,
                    transport,
                    priority,
                    address,
                    kind,
                    related,
                    tcp_type,
                    extensions,
                },
            )
    }

    /// Plausible tokens, so that random lines reach every branch of the parser.
    fn token_soup() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("candidate:1".to_owned()),
            Just("a=candidate:x".to_owned()),
            Just("udp".to_owned()),
            Just("TCP".to_owned()),
            Just("typ".to_owned()),
            Just("host".to_owned()),
            Just("relay".to_owned()),
            Just("raddr".to_owned()),
            Just("rport".to_owned()),
            Just("tcptype".to_owned()),
            Just("so".to_owned()),
            Just("a.local".to_owned()),
            Just("::ffff:1.2.3.4".to_owned()),
            Just("[::1]".to_owned()),
            Just("10.0.0.1".to_owned()),
            "[0-9]{1,6}",
            "[a-z]{1,4}",
            "[ -~]{1,4}",
        ];
        (proptest::collection::vec(token, 0..16), "[ \t]{1,2}")
            .prop_map(|(tokens, sep)| tokens.join(&sep))
    }

    proptest! {
        #[test]
        fn every_valid_candidate_round_trips_through_its_line(c in arb_candidate()) {
            let line = c.to_string();
            prop_assert_eq!(Candidate::parse(&line), Ok(c.clone()));
            prop_assert_eq!(Candidate::parse(&format!("a={line}\r\n")), Ok(c));
        }

        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            if let Ok(c) = Candidate::parse(&s) {
                prop_assert_eq!(Candidate::parse(&c.to_string()), Ok(c));
            }
            let _ = is_end_of_candidates(&s);
        }

        #[test]
        fn candidate_like_token_soups_never_panic_and_round_trip_when_they_parse(
            s in token_soup(),
        ) {
            for line in [s.clone(), format!("candidate:1 1 udp 1 10.0.0.1 5 typ host {s}"), format!("candidate:1 1 udp 1 {s}")] {
                if let Ok(c) = Candidate::parse(&line) {
                    prop_assert_eq!(Candidate::parse(&c.to_string()), Ok(c));
                }
            }
        }
    }
}
