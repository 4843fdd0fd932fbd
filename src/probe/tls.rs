//! TLS for https checks (rustls, ring provider). By default the server's
//! certificate is not verified: real servers are checked by address and
//! their certificates name the service. With `verify`, the system CA store
//! and the SNI name are used, as a browser would.

use super::{wire, Expect, ProbeError};
use crate::ocf::Deadline;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// Accepts any certificate (the check is about the service answering).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
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

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Client configs are built once per process (the CA store is read once).
fn config(verify: bool) -> Result<Arc<ClientConfig>, String> {
    static INSECURE: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    static VERIFYING: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    if !verify {
        return INSECURE
            .get_or_init(|| {
                let p = provider();
                ClientConfig::builder_with_provider(p.clone())
                    .with_safe_default_protocol_versions()
                    .map(|b| {
                        let verifier = Arc::new(NoVerify(p));
                        Arc::new(b.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth())
                    })
                    .map_err(|e| e.to_string())
            })
            .clone();
    }
    VERIFYING
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err("no CA certificates found in the system store".into());
            }
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// A TLS client session over `tcp` (handshake on first use), for the
/// line protocols that start in TLS (pops, imaps, ldaps).
pub fn wrap(
    addr: SocketAddr,
    sni: &str,
    tcp: std::net::TcpStream,
) -> Result<StreamOwned<ClientConnection, std::net::TcpStream>, ProbeError> {
    let tls_err = |why: String| ProbeError::Tls { addr, why };
    let cfg = config(false).map_err(tls_err)?;
    let name = ServerName::try_from(sni.to_string()).map_err(|e| tls_err(format!("SNI name {sni:?}: {e}")))?;
    let conn = ClientConnection::new(cfg, name).map_err(|e| tls_err(e.to_string()))?;
    Ok(StreamOwned::new(conn, tcp))
}

/// Connect, handshake with `sni`, send `request`, read the answer (bounded).
pub fn exchange(
    addr: SocketAddr,
    sni: &str,
    verify: bool,
    request: &[u8],
    d: &Deadline,
) -> Result<Vec<u8>, ProbeError> {
    let tls_err = |why: String| ProbeError::Tls { addr, why };
    let cfg = config(verify).map_err(tls_err)?;
    let name = ServerName::try_from(sni.to_string()).map_err(|e| tls_err(format!("SNI name {sni:?}: {e}")))?;
    let conn = ClientConnection::new(cfg, name).map_err(|e| tls_err(e.to_string()))?;
    let tcp = wire::connect(addr, d)?;
    let left = d.remaining().max(std::time::Duration::from_millis(1));
    let _ = tcp.set_read_timeout(Some(left));
    let _ = tcp.set_write_timeout(Some(left));
    let mut s = StreamOwned::new(conn, tcp);
    let io_err = |e: std::io::Error| match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => ProbeError::Timeout { addr },
        ErrorKind::InvalidData => tls_err(e.to_string()),
        _ => ProbeError::Io { addr, op: "TLS exchange", source: e },
    };
    s.write_all(request).map_err(io_err)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while out.len() < super::MAX_RESPONSE {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n.min(super::MAX_RESPONSE - out.len())]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Servers often close without close_notify after HTTP/1.0.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof && !out.is_empty() => break,
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok(out)
}

/// The https variant of the HTTP check.
pub fn check_https(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: Option<&str>,
    verify: bool,
    expect: &Expect,
    d: &Deadline,
) -> Result<(), ProbeError> {
    let host_header = host.map(str::to_string).unwrap_or_else(|| addr.ip().to_string());
    let sni = host.map(|h| h.split(':').next().unwrap_or(h).to_string()).unwrap_or_else(|| addr.ip().to_string());
    let raw = exchange(addr, &sni, verify, &super::http::request_bytes(method, path, &host_header), d)?;
    super::http::judge(addr, &raw, expect)
}
