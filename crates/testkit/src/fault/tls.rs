//! The proxy's HTTPS side: a throwaway certificate authority ([`test_ca`]), the server
//! configuration, and the client stream that is either plain TCP or TLS.

use std::io;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A server identity for [`FaultProxy::start_tls`](super::FaultProxy::start_tls): a certificate
/// chain and its key, DER.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    /// The server certificate first, then its issuers.
    pub chain: Vec<Vec<u8>>,
    /// PKCS#8 private key.
    pub key: Vec<u8>,
}

/// A throwaway certificate authority and a server certificate it signed for `127.0.0.1` and
/// `localhost`. Returns the CA certificate as PEM (for `AWS_CA_BUNDLE`) and the server
/// identity.
pub fn test_ca() -> Result<(String, TlsIdentity)> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, "testkit fault-proxy CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "testkit fault proxy");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate()?;
    let cert = leaf.signed_by(&leaf_key, &ca)?;
    Ok((
        ca.pem(),
        TlsIdentity {
            chain: vec![cert.der().to_vec(), ca.der().to_vec()],
            key: leaf_key.serialize_der(),
        },
    ))
}

/// The acceptor of the proxy's HTTPS side, serving `identity` with aws-lc-rs.
pub(super) fn acceptor(identity: &TlsIdentity) -> Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls;
    let chain = identity
        .chain
        .iter()
        .map(|c| rustls::pki_types::CertificateDer::from(c.clone()))
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        identity.key.clone(),
    ));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("TLS server certificate")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A client connection, plain or TLS.
pub(super) enum Downstream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Downstream {
    /// Makes the coming close an abortive one (RST) where possible.
    pub(super) fn abort(&self) {
        let tcp = match self {
            Downstream::Plain(s) => s,
            Downstream::Tls(s) => s.get_ref().0,
        };
        let _ = tcp.set_zero_linger();
    }
}

impl AsyncRead for Downstream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Downstream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Downstream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Downstream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Downstream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Downstream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Downstream::Plain(s) => Pin::new(s).poll_flush(cx),
            Downstream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Downstream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Downstream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
