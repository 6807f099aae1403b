//! The socket under a TURN client: a UDP socket, or a TCP/TLS stream to the server.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The transport to a TURN server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TurnTransport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

/// How to trust a TLS server.
#[derive(Debug, Clone, Default)]
pub struct TlsTrust {
    /// PEM file of certificates to trust (a CA, or the server's self-signed certificate).
    pub ca: Option<std::path::PathBuf>,
    /// Accept any certificate (testing only).
    pub insecure: bool,
    /// The name to verify; default: the server's IP address.
    pub server_name: Option<String>,
}

/// A byte stream to the server (TCP or TLS).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A connected transport.
pub enum TurnIo {
    /// A UDP socket (sends to the server address given with each message).
    Udp(UdpSocket),
    /// A TCP or TLS stream.
    Stream(Box<dyn Stream>),
}

impl std::fmt::Debug for TurnIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TurnIo::Udp(s) => write!(f, "TurnIo::Udp({s:?})"),
            TurnIo::Stream(_) => f.write_str("TurnIo::Stream(..)"),
        }
    }
}

impl TurnIo {
    /// Opens the transport to `server`; returns it with its local address.
    pub async fn connect(
        server: SocketAddr,
        transport: TurnTransport,
        trust: &TlsTrust,
    ) -> io::Result<(TurnIo, SocketAddr)> {
        match transport {
            TurnTransport::Udp => {
                let bind: SocketAddr = if server.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                }
                .parse()
                .map_err(io::Error::other)?;
                let s = UdpSocket::bind(bind).await?;
                s.connect(server).await?;
                let local = s.local_addr()?;
                Ok((TurnIo::Udp(s), local))
            }
            TurnTransport::Tcp => {
                let s = TcpStream::connect(server).await?;
                s.set_nodelay(true)?;
                let local = s.local_addr()?;
                Ok((TurnIo::Stream(Box::new(s)), local))
            }
            TurnTransport::Tls => {
                let config = tls_config(trust)?;
                let name = match &trust.server_name {
                    Some(n) => ServerName::try_from(n.clone()).map_err(io::Error::other)?,
                    None => ServerName::IpAddress(server.ip().into()),
                };
                let s = TcpStream::connect(server).await?;
                s.set_nodelay(true)?;
                let local = s.local_addr()?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, s)
                    .await?;
                Ok((TurnIo::Stream(Box::new(tls)), local))
            }
        }
    }

    /// Sends one message (a datagram, or bytes on the stream).
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            TurnIo::Udp(s) => s.send(data).await.map(|_| ()),
            TurnIo::Stream(s) => s.write_all(data).await,
        }
    }

    /// Receives a datagram, or whatever bytes the stream has (0 means it closed).
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            TurnIo::Udp(s) => s.recv(buf).await,
            TurnIo::Stream(s) => s.read(buf).await,
        }
    }
}

fn tls_config(trust: &TlsTrust) -> io::Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?;
    let config = if trust.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &trust.ca {
            for cert in load_certs(ca)? {
                roots.add(cert).map_err(io::Error::other)?;
            }
        }
        if roots.is_empty() {
            return Err(io::Error::other(
                "TLS needs --tls-ca FILE (the server's certificate or its CA) or --insecure",
            ));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

fn load_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
}

/// `--insecure`: accepts any certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
