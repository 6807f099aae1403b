//! TURN over TCP or TLS through an HTTP CONNECT proxy (RFC 9110 §9.3.6), as browsers do
//! behind corporate proxies: the TCP connection goes to the proxy, a `CONNECT` request
//! names the TURN server, and after a 2xx answer the connection is the server's (TLS
//! runs inside it, end to end). `http://user:password@host:port` adds Basic proxy
//! authentication (RFC 7617).

use std::fmt;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest proxy answer read (status line and headers).
const MAX_ANSWER: usize = 8 * 1024;

/// An HTTP proxy, from an `http://[user:password@]host[:port]` URL (port 8080 by
/// default, as curl's `http_proxy` has it: 1080 is SOCKS).
#[derive(Clone, PartialEq, Eq)]
pub struct HttpProxy {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `user:password` for Basic proxy authentication.
    pub credentials: Option<String>,
}

impl fmt::Debug for HttpProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("HttpProxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.credentials.as_ref().map(|_| "…"))
            .finish()
    }
}

impl std::str::FromStr for HttpProxy {
    type Err = String;

    fn from_str(url: &str) -> Result<HttpProxy, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: a proxy URL starts with http://"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(format!("{url}: a proxy URL has no path"));
        }
        let (credentials, hostport) = match rest.rsplit_once('@') {
            Some((c, h)) if c.contains(':') => (Some(c.to_owned()), h),
            Some(_) => return Err(format!("{url}: credentials are user:password")),
            None => (None, rest),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, tail) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url}: unclosed [ in the host"))?;
            (h, tail.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{url}: bad port {p:?}"))?,
            None => 8080,
        };
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        Ok(HttpProxy {
            host: host.to_owned(),
            port,
            credentials,
        })
    }
}

/// How to reach a TURN server through a proxy: the proxy's address, `user:password` for
/// Basic authentication, and the server's host name when its URI had one (the CONNECT
/// then names it, as browsers do, and the proxy resolves it; some proxies allow names
/// only).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyRoute {
    /// The proxy's address.
    pub proxy: SocketAddr,
    /// `user:password`, for Basic proxy authentication.
    pub credentials: Option<String>,
    /// The TURN server's host name, for the CONNECT request target.
    pub server_name: Option<String>,
}

impl fmt::Debug for ProxyRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyRoute")
            .field("proxy", &self.proxy)
            .field("credentials", &self.credentials.as_ref().map(|_| "…"))
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// `host:port` as a request target (brackets around IPv6).
fn authority(server: SocketAddr) -> String {
    match server {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// Asks the proxy on `stream` to connect to `server`; returns once it answered 2xx.
/// Reads no byte past the answer's empty line (the TURN server's bytes follow it).
pub(crate) async fn http_connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    server: SocketAddr,
    route: &ProxyRoute,
) -> io::Result<()> {
    let target = match &route.server_name {
        Some(name) if name.contains(':') => format!("[{name}]:{}", server.port()),
        Some(name) => format!("{name}:{}", server.port()),
        None => authority(server),
    };
    let credentials = route.credentials.as_deref();
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(c) = credentials {
        request.push_str("Proxy-Authorization: Basic ");
        request.push_str(&floe_stun::base64::encode(c.as_bytes()));
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    // Byte by byte: the answer is short, and anything after it is the server's.
    let mut answer = Vec::with_capacity(128);
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= MAX_ANSWER {
            return Err(refused("an answer longer than 8 KiB"));
        }
        let mut b = [0u8; 1];
        if stream.read(&mut b).await? == 0 {
            return Err(refused("the proxy closed the connection"));
        }
        answer.push(b[0]);
    }
    answer_status(&answer).map(|_| ()).map_err(|e| refused(&e))
}

/// The status of a proxy's answer to CONNECT (`head`: its status line and headers):
/// the code when it is 2xx, else the status line (or what came instead) as the error.
/// Remote bytes: never panics, whatever `head` holds (fuzzed: `fuzz/fuzz_targets/
/// http_proxy_answer.rs`).
pub fn answer_status(head: &[u8]) -> Result<u16, String> {
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let status = String::from_utf8_lossy(line.get(..200).unwrap_or(line));
    let code = status
        .strip_prefix("HTTP/1.")
        .filter(|s| s.starts_with(['0', '1']))
        .and_then(|s| s.get(1..))
        .and_then(|s| s.strip_prefix(' '))
        .filter(|s| {
            s.get(3..)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
        })
        .and_then(|s| s.get(..3))
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(c @ 200..=299) => Ok(c),
        _ if status.trim().is_empty() => Err("an empty answer".into()),
        _ => Err(status.trim().to_owned()),
    }
}

fn refused(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionRefused,
        format!("HTTP proxy: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    #[test]
    fn only_a_2xx_http_1_status_line_is_success() {
        assert_eq!(
            answer_status(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            Ok(200)
        );
        assert_eq!(answer_status(b"HTTP/1.0 204 OK\r\n\r\n"), Ok(204));
        for bad in [
            &b"HTTP/1.1 403 Forbidden\r\n\r\n"[..],
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 2000 x\r\n",
            b"HTTP/1.1 +20 x\r\n",
            b"HTTP/1.11 200 x\r\n",
            b"\xff\xfe\r\n",
            b"",
        ] {
            assert!(answer_status(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn proxy_urls_parse_with_defaults_credentials_and_ipv6() {
        let p: HttpProxy = "http://proxy.corp:3128".parse().unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.credentials),
            ("proxy.corp", 3128, None)
        );
        let p: HttpProxy = "http://alice:s3cret@10.0.0.1/".parse().unwrap();
        assert_eq!((p.host.as_str(), p.port), ("10.0.0.1", 8080));
        assert_eq!(p.credentials.as_deref(), Some("alice:s3cret"));
        assert!(!format!("{p:?}").contains("s3cret"), "never printed");
        let p: HttpProxy = "http://[2001:db8::1]:8888".parse().unwrap();
        assert_eq!((p.host.as_str(), p.port), ("2001:db8::1", 8888));
        for bad in [
            "https://p:1",
            "p:1",
            "http://:1",
            "http://p:0",
            "http://p:x",
            "http://p:1/path",
            "http://user@p:1",
            "http://[::1:1",
        ] {
            assert!(bad.parse::<HttpProxy>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_2xx_answer_hands_over_the_stream_without_eating_the_servers_bytes() {
        let (mut client, mut proxy) = duplex(4096);
        let server: SocketAddr = "[2001:db8::7]:3478".parse().unwrap();
        let fake = tokio::spawn(async move {
            let mut got = vec![0u8; 512];
            let n = proxy.read(&mut got).await.unwrap();
            got.truncate(n);
            proxy
                .write_all(b"HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\nTURN")
                .await
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        let route = ProxyRoute {
            proxy: "127.0.0.1:1".parse().unwrap(),
            credentials: Some("alice:pw".into()),
            server_name: None,
        };
        assert!(!format!("{route:?}").contains("alice:pw"), "never printed");
        http_connect(&mut client, server, &route).await.unwrap();
        let mut rest = [0u8; 4];
        client.read_exact(&mut rest).await.unwrap();
        assert_eq!(
            &rest, b"TURN",
            "the server's first bytes are left in the stream"
        );
        let request = fake.await.unwrap();
        assert!(
            request.starts_with("CONNECT [2001:db8::7]:3478 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("Host: [2001:db8::7]:3478\r\n"));
        // base64("alice:pw")
        assert!(request.contains("Proxy-Authorization: Basic YWxpY2U6cHc=\r\n"));
        assert!(request.ends_with("\r\n\r\n"));
    }

    #[tokio::test]
    async fn a_server_with_a_host_name_is_connected_by_name() {
        let (mut client, mut proxy) = duplex(4096);
        let fake = tokio::spawn(async move {
            let mut got = vec![0u8; 512];
            let n = proxy.read(&mut got).await.unwrap();
            proxy.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
            String::from_utf8(got[..n].to_vec()).unwrap()
        });
        let route = ProxyRoute {
            proxy: "127.0.0.1:1".parse().unwrap(),
            credentials: None,
            server_name: Some("turn.example.org".into()),
        };
        http_connect(&mut client, "192.0.2.1:5349".parse().unwrap(), &route)
            .await
            .unwrap();
        let request = fake.await.unwrap();
        assert!(
            request.starts_with(
                "CONNECT turn.example.org:5349 HTTP/1.1\r\nHost: turn.example.org:5349\r\n"
            ),
            "{request}"
        );
        assert!(!request.contains("Proxy-Authorization"));
    }

    #[tokio::test]
    async fn a_refusal_or_a_closed_proxy_is_an_error_naming_it() {
        for (answer, expect) in [
            (&b"HTTP/1.1 403 Forbidden\r\n\r\n"[..], "403 Forbidden"),
            (
                &b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n"[..],
                "407",
            ),
            (&b"SSH-2.0-OpenSSH\r\n\r\n"[..], "SSH-2.0"),
            (&b"HTTP/1.1 200 OK\r\n"[..], "closed"),
        ] {
            let (mut client, mut proxy) = duplex(4096);
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let _ = proxy.read(&mut buf).await;
                proxy.write_all(answer).await.unwrap();
            });
            let route = ProxyRoute {
                proxy: "127.0.0.1:1".parse().unwrap(),
                credentials: None,
                server_name: Some("turn.example.org".into()),
            };
            let e = http_connect(&mut client, "192.0.2.1:3478".parse().unwrap(), &route)
                .await
                .unwrap_err();
            assert!(e.to_string().contains(expect), "{e}");
        }
    }
}
