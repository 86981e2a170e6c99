//! https on the request loop (rustls): the connection's socket is plain TCP or TLS over it, read and
//! written the same way. One client configuration serves every connection of a run, so sessions are
//! resumed across them (rustls's in-memory cache) and a storm of connects costs abbreviated
//! handshakes. ALPN offers http/1.1 only: the request loop speaks nothing else.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Whose certificates a run trusts (`target.cacert`, `target.insecure`; `--cacert`, `--insecure`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Trust {
    /// The platform's root certificates.
    #[default]
    Platform,
    /// The certificates of this PEM file and no others, as curl's `--cacert`.
    CaFile(PathBuf),
    /// Any certificate, for a self-signed test server (curl's `--insecure`): encrypted, not verified.
    Insecure,
}

/// The client configuration every connection of a run shares (and the clients beside the request
/// loop: setup, SSE posts, the metrics scrape). A mistake is one line saying what to do.
pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, String> {
    // ring (not aws-lc-rs, which needs cmake to build): classical key exchange only, which is what a
    // load test measures against anyway.
    // Key exchange X25519 first, as browsers, curl and wrk (OpenSSL) offer it: ring's default puts
    // P-384 first, whose generic arithmetic made every new connection cost 0.9 ms of CPU (perf).
    #[allow(deprecated)]
    let provider = Arc::new(CryptoProvider {
        kx_groups: vec![
            rustls::crypto::ring::kx_group::X25519,
            rustls::crypto::ring::kx_group::SECP256R1,
            rustls::crypto::ring::kx_group::SECP384R1,
        ],
        ..rustls::crypto::ring::default_provider()
    });
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let mut config = match trust {
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
        Trust::Platform => {
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if added == 0 {
                return Err("TLS: this machine has no trusted root certificates: give --cacert FILE".into());
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::CaFile(path) => {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cacert {shown}: cannot read PEM certificates: {e}"))?;
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "cacert {shown}: no certificate in it (a PEM file of CA certificates)"
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// TLS towards one server: the shared configuration and the name its certificate must carry.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls({:?})", self.server_name)
    }
}

impl Tls {
    /// For the server `host` (a name or an IP address, without the port).
    pub fn new(config: Arc<ClientConfig>, host: &str) -> Result<Tls, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare.to_owned()).map_err(|e| format!("TLS: {host:?}: {e}"))?;
        Ok(Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::clone(&config)),
            config,
            server_name,
        })
    }

    /// A client connection's TLS state, for a loop that moves its bytes itself (the direct loop).
    pub fn client(&self) -> Result<rustls::ClientConnection, rustls::Error> {
        rustls::ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
    }

    /// The handshake on a connected socket. An error says why in one line (an unknown issuer, a name
    /// the certificate does not carry, a server that does not speak TLS).
    pub async fn handshake(&self, tcp: TcpStream) -> io::Result<Socket> {
        let stream = self.connector.connect(self.server_name.clone(), tcp).await?;
        Ok(Socket::new(Io::Tls(Box::new(stream))))
    }
}

/// A connection's socket, plain or TLS over TCP, and the bytes of answers read from it (decrypted:
/// what the server sent, heads and bodies).
pub struct Socket {
    io: Io,
    pub bytes_read: u64,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Socket {
    pub fn plain(tcp: TcpStream) -> Socket {
        Socket::new(Io::Plain(tcp))
    }

    fn new(io: Io) -> Socket {
        Socket { io, bytes_read: 0 }
    }

    /// The TCP socket underneath (for its options: a reset on close).
    pub fn tcp(&self) -> &TcpStream {
        match &self.io {
            Io::Plain(s) => s,
            Io::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        this.bytes_read += (buf.filled().len() - before) as u64;
        polled
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// `--insecure`: any certificate is taken, but the handshake's signatures are still checked, so the
/// session is what the server's key made it.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
