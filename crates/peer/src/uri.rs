//! STUN and TURN server URIs (RFC 7064 `stun:`/`stuns:`, RFC 7065 `turn:`/`turns:`).

use std::fmt;

/// The scheme of an ICE server URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `stun:` (default port 3478).
    Stun,
    /// `stuns:` (default port 5349).
    Stuns,
    /// `turn:` (default port 3478).
    Turn,
    /// `turns:` (default port 5349, TLS).
    Turns,
}

/// The transport a `turn:` URI asks for (`?transport=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UriTransport {
    /// `?transport=udp`.
    Udp,
    /// `?transport=tcp`.
    Tcp,
}

/// A parsed ICE server URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IceServerUri {
    /// Scheme.
    pub scheme: Scheme,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port (the scheme's default when absent).
    pub port: u16,
    /// `?transport=` for TURN; `None` means "UDP and TCP" (RFC 7065 §3) for `turn:`.
    pub transport: Option<UriTransport>,
}

/// Why a URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad STUN/TURN URI {uri:?}: {reason}")]
pub struct UriError {
    /// The input.
    pub uri: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl std::str::FromStr for IceServerUri {
    type Err = UriError;

    fn from_str(uri: &str) -> Result<IceServerUri, UriError> {
        let err = |reason| UriError {
            uri: uri.to_owned(),
            reason,
        };
        let (scheme, rest) = uri
            .split_once(':')
            .ok_or_else(|| err("missing scheme (stun:, stuns:, turn:, turns:)"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "stun" => Scheme::Stun,
            "stuns" => Scheme::Stuns,
            "turn" => Scheme::Turn,
            "turns" => Scheme::Turns,
            _ => return Err(err("unknown scheme")),
        };
        if rest.starts_with("//") {
            return Err(err("no '//' after the scheme (RFC 7064 §3.1)"));
        }
        let (hostport, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        let transport = match query {
            None => None,
            Some(q) if matches!(scheme, Scheme::Turn | Scheme::Turns) => {
                match q.to_ascii_lowercase().as_str() {
                    "transport=udp" => Some(UriTransport::Udp),
                    "transport=tcp" => Some(UriTransport::Tcp),
                    _ => {
                        return Err(err(
                            "only ?transport=udp or ?transport=tcp is defined (RFC 7065 §3)",
                        ))
                    }
                }
            }
            Some(_) => return Err(err("stun: URIs take no query (RFC 7064 §3.1)")),
        };
        let default_port = if matches!(scheme, Scheme::Stuns | Scheme::Turns) {
            5349
        } else {
            3478
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| err("unclosed '['"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| err("bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(err("junk after ']'")),
            };
            (h.to_owned(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| err("bad port"))?),
                None => (hostport.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err(err("empty host"));
        }
        if scheme == Scheme::Turns && transport == Some(UriTransport::Udp) {
            return Err(err(
                "turns: is TLS over TCP; ?transport=udp would be DTLS, not supported",
            ));
        }
        Ok(IceServerUri {
            scheme,
            host,
            port,
            transport,
        })
    }
}

impl fmt::Display for IceServerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Stun => "stun",
            Scheme::Stuns => "stuns",
            Scheme::Turn => "turn",
            Scheme::Turns => "turns",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}:[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{scheme}:{}:{}", self.host, self.port)?;
        }
        match self.transport {
            Some(UriTransport::Udp) => f.write_str("?transport=udp"),
            Some(UriTransport::Tcp) => f.write_str("?transport=tcp"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7064_and_7065_examples_parse() {
        let u: IceServerUri = "stun:example.org".parse().unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.transport),
            (Scheme::Stun, "example.org", 3478, None)
        );
        let u: IceServerUri = "stuns:example.org".parse().unwrap();
        assert_eq!(u.port, 5349);
        let u: IceServerUri = "turn:example.org?transport=udp".parse().unwrap();
        assert_eq!(u.transport, Some(UriTransport::Udp));
        let u: IceServerUri = "turn:[2001:db8::1]:3479?transport=tcp".parse().unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.transport),
            ("2001:db8::1", 3479, Some(UriTransport::Tcp))
        );
        let u: IceServerUri = "turns:192.0.2.1:443".parse().unwrap();
        assert_eq!((u.scheme, u.port), (Scheme::Turns, 443));
        assert_eq!(u.to_string(), "turns:192.0.2.1:443");
    }

    #[test]
    fn bad_uris_are_refused_with_a_reason() {
        for bad in [
            "example.org",
            "http:x",
            "stun://example.org",
            "stun:x?transport=udp",
            "turn:x?transport=sctp",
            "turn:x:99999",
            "turn:",
            "turns:x?transport=udp",
            "turn:[::1",
        ] {
            let e = bad.parse::<IceServerUri>().unwrap_err();
            assert!(!e.reason.is_empty(), "{bad}");
        }
    }
}
