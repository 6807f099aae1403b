//! TLS for `turns:` servers (RFC 7065 §3, RFC 8656 §3.1): the rustls client
//! configuration both the peer and [`TurnSocket`](super::TurnSocket) use.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Whom a TLS connection to a TURN server trusts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TlsTrust {
    /// These trust anchors (CAs, or the servers' own self-signed certificates). There is
    /// no built-in root store: pass the CAs you trust (e.g. the system bundle).
    Roots(rustls::RootCertStore),
    /// Any certificate, still checking the handshake signatures. For tests against
    /// servers with throwaway certificates only: it gives up TLS's authentication.
    AcceptAnyCertificate,
}

/// Why [`tls_client_config`] could not build a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// [`TlsTrust::Roots`] was empty: nothing could ever be verified.
    #[error("no trust anchors")]
    NoTrustAnchors,
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A rustls client configuration (ring, the safe default protocol versions, no client
/// authentication) that trusts `trust`.
pub fn tls_client_config(trust: TlsTrust) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match trust {
        TlsTrust::AcceptAnyCertificate => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth(),
        TlsTrust::Roots(roots) if roots.is_empty() => return Err(TlsConfigError::NoTrustAnchors),
        TlsTrust::Roots(roots) => builder.with_root_certificates(roots).with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Every certificate in a PEM file (errors name the file).
pub fn load_pem_certificates(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
}

/// [`TlsTrust::AcceptAnyCertificate`]: accepts any certificate but still checks the
/// handshake signatures.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_root_store_is_refused() {
        assert!(matches!(
            tls_client_config(TlsTrust::Roots(rustls::RootCertStore::empty())),
            Err(TlsConfigError::NoTrustAnchors)
        ));
        assert!(tls_client_config(TlsTrust::AcceptAnyCertificate).is_ok());
    }
}
