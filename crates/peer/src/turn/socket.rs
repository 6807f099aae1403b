//! The transport under a TURN client (RFC 8656 §3.1): a UDP socket, or a TCP or TLS
//! connection to the server (RFC 8489 §6.2.2 framing is the client's, not the socket's).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use floe_ice::Transport;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// A byte stream to a TURN server (TCP, or TLS over TCP).
pub trait TurnStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> TurnStream for T {}

/// What a TLS connection to a `turns:` server needs.
#[derive(Debug, Clone)]
pub struct TlsConnect {
    /// The client configuration (see [`tls_client_config`](super::tls_client_config)).
    pub config: Arc<rustls::ClientConfig>,
    /// The name the server's certificate must carry (a DNS name or an IP address).
    pub server_name: ServerName<'static>,
}

/// How [`connect_stream`] opens a connection.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StreamOptions {
    /// Connect from this IP (its interface), any port; `None`, or an address of the
    /// other family or unspecified: the system's choice.
    pub source: Option<IpAddr>,
    /// DSCP code point (0-63, RFC 2474) for the connection's packets.
    pub dscp: Option<u8>,
    /// TLS over the TCP connection (`turns:`, RFC 7065).
    pub tls: Option<TlsConnect>,
    /// How long the TCP connect, and then the TLS handshake, may each take; `None`: as
    /// long as the system lets them.
    pub timeout: Option<Duration>,
    /// Go through this HTTP CONNECT proxy; TLS then runs end to end inside the tunnel.
    pub proxy: Option<super::ProxyRoute>,
}

/// Why [`connect_stream`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The TCP connection could not be made (or timed out).
    #[error("connect: {0}")]
    Connect(io::Error),
    /// The TLS handshake failed (or timed out).
    #[error("TLS: {0}")]
    Tls(io::Error),
}

impl ConnectError {
    /// The underlying I/O error.
    pub fn io(&self) -> &io::Error {
        match self {
            ConnectError::Connect(e) | ConnectError::Tls(e) => e,
        }
    }
}

async fn within<T>(
    limit: Option<Duration>,
    what: &str,
    f: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match limit {
        None => f.await,
        Some(limit) => tokio::time::timeout(limit, f)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, what.to_owned()))),
    }
}

/// Opens a TCP connection to `server` (with `TCP_NODELAY`: STUN transactions and
/// ChannelData are small and latency-bound), then TLS over it when asked for. Returns
/// the stream and its local address.
pub async fn connect_stream(
    server: SocketAddr,
    options: &StreamOptions,
) -> Result<(Box<dyn TurnStream>, SocketAddr), ConnectError> {
    let tcp = match &options.proxy {
        None => within(
            options.timeout,
            "connect timed out",
            tcp(server, options.source, options.dscp),
        )
        .await
        .map_err(ConnectError::Connect)?,
        Some(route) => within(options.timeout, "proxy connect timed out", async {
            let mut s = tcp(route.proxy, options.source, options.dscp).await?;
            super::proxy::http_connect(&mut s, server, route).await?;
            Ok(s)
        })
        .await
        .map_err(ConnectError::Connect)?,
    };
    let local = tcp.local_addr().map_err(ConnectError::Connect)?;
    let Some(tls) = &options.tls else {
        return Ok((Box::new(tcp), local));
    };
    let handshake =
        tokio_rustls::TlsConnector::from(tls.config.clone()).connect(tls.server_name.clone(), tcp);
    let stream = within(options.timeout, "TLS handshake timed out", handshake)
        .await
        .map_err(ConnectError::Tls)?;
    Ok((Box::new(stream), local))
}

/// A TCP connection to `server` from `source`'s interface, any port.
async fn tcp(
    server: SocketAddr,
    source: Option<IpAddr>,
    dscp: Option<u8>,
) -> io::Result<TcpStream> {
    let socket = if server.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Some(ip) = source.filter(|ip| ip.is_ipv4() == server.is_ipv4() && !ip.is_unspecified()) {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    if let Some(dscp) = dscp {
        crate::sockopt::set_dscp(&socket2::SockRef::from(&socket), server, dscp)?;
    }
    let stream = socket.connect(server).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The socket a [`TurnDriver`](super::TurnDriver) talks to its server over.
pub enum TurnSocket {
    /// A UDP socket (connected to the server or not: each message goes to the server).
    Udp(UdpSocket),
    /// A TCP or TLS connection to the server.
    Stream(Box<dyn TurnStream>),
}

impl std::fmt::Debug for TurnSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TurnSocket::Udp(s) => write!(f, "TurnSocket::Udp({s:?})"),
            TurnSocket::Stream(_) => f.write_str("TurnSocket::Stream(..)"),
        }
    }
}

impl TurnSocket {
    /// Opens a transport to `server`: a UDP socket on the unspecified address of its
    /// family, connected to it (so ICMP errors surface); or a TCP connection, with TLS
    /// over it for [`Transport::Tls`] (`tls` is then required). Returns it with its local
    /// address.
    pub async fn connect(
        server: SocketAddr,
        transport: Transport,
        tls: Option<TlsConnect>,
    ) -> io::Result<(TurnSocket, SocketAddr)> {
        match transport {
            Transport::Udp => {
                let bind = if server.is_ipv4() {
                    SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)
                } else {
                    SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)
                };
                let s = UdpSocket::bind(bind).await?;
                s.connect(server).await?;
                let local = s.local_addr()?;
                Ok((TurnSocket::Udp(s), local))
            }
            Transport::Tcp | Transport::Tls => {
                let tls = match transport {
                    Transport::Tls => Some(tls.ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidInput, "TLS without a configuration")
                    })?),
                    _ => None,
                };
                let options = StreamOptions {
                    tls,
                    ..StreamOptions::default()
                };
                let (stream, local) = connect_stream(server, &options)
                    .await
                    .map_err(|e| io::Error::new(e.io().kind(), e.io().to_string()))?;
                Ok((TurnSocket::Stream(stream), local))
            }
        }
    }

    /// Whether this is a byte stream (TCP or TLS).
    pub fn is_stream(&self) -> bool {
        matches!(self, TurnSocket::Stream(_))
    }

    /// Sends one message to `to` (a datagram; on a stream, bytes in order: `to` is the
    /// stream's server).
    pub async fn send(&mut self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        match self {
            TurnSocket::Udp(s) => s.send_to(data, to).await.map(|_| ()),
            TurnSocket::Stream(s) => s.write_all(data).await,
        }
    }

    /// Receives a datagram, or whatever bytes the stream has (0: the stream closed).
    /// Cancel-safe.
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            TurnSocket::Udp(s) => s.recv(buf).await,
            TurnSocket::Stream(s) => s.read(buf).await,
        }
    }
}
