//! Client-side connections for proxy tests: TLS with a chosen SNI and ALPN (certificates are
//! not verified, but reported), HTTP/2 requests over any stream, and raw HTTP/1 exchanges.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Accepts any certificate; offers `schemes` as signature algorithms when given (the way to
/// make a client that supports one key type only), else every one the provider has.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>, Option<Vec<SignatureScheme>>);

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
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match &self.1 {
            Some(schemes) => schemes.clone(),
            None => self.0.signature_verification_algorithms.supported_schemes(),
        }
    }
}

/// A TLS connection to `addr` (`host:port`) sending `sni` (none when `None` or an IP) and
/// offering `alpn` (e.g. `["h2", "http/1.1"]`).
pub async fn tls_connect(addr: &str, sni: Option<&str>, alpn: &[&str]) -> TlsStream<TcpStream> {
    connect(addr, sni, alpn, None).await
}

/// A TLS connection that offers only `schemes` as signature algorithms.
pub async fn tls_connect_offering(
    addr: &str,
    sni: Option<&str>,
    schemes: &[SignatureScheme],
) -> TlsStream<TcpStream> {
    connect(addr, sni, &[], Some(schemes.to_vec())).await
}

async fn connect(
    addr: &str,
    sni: Option<&str>,
    alpn: &[&str],
    schemes: Option<Vec<SignatureScheme>>,
) -> TlsStream<TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider, schemes.clone())))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    config.enable_sni = sni.is_some();
    let name = ServerName::try_from(sni.unwrap_or("127.0.0.1").to_owned()).expect("server name");
    let tcp = TcpStream::connect(addr.trim_start_matches("http://")).await.expect("connect");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS handshake (offering {schemes:?}): {e}"))
}

/// The subject common name of the certificate the server presented.
pub fn peer_cn(stream: &TlsStream<TcpStream>) -> String {
    let der =
        stream.get_ref().1.peer_certificates().and_then(|c| c.first()).expect("a certificate");
    crate::upstream::subject_cn(der.as_ref())
}

/// The ALPN protocol the server chose.
pub fn alpn(stream: &TlsStream<TcpStream>) -> Option<String> {
    stream.get_ref().1.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned())
}

/// A response read in full, trailers included.
#[derive(Debug)]
pub struct FullResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub trailers: Option<http::HeaderMap>,
}

impl FullResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends HTTP/2 requests (prior knowledge) over `io`, one after the other, and reads each
/// response in full.
pub async fn h2_requests<S>(io: S, reqs: Vec<Request<Full<Bytes>>>) -> Vec<FullResponse>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(io))
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let mut out = Vec::new();
    for req in reqs {
        let res: Response<hyper::body::Incoming> =
            sender.send_request(req).await.expect("HTTP/2 request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let collected = res.into_body().collect().await.expect("HTTP/2 body");
        let trailers = collected.trailers().cloned();
        out.push(FullResponse { status, headers, body: collected.to_bytes(), trailers });
    }
    out
}

/// Writes `request` on `io` and reads until the peer closes or nothing comes for `idle`;
/// returns the bytes and whether the peer closed the connection.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    request: &[u8],
    idle: Duration,
) -> (Vec<u8>, bool) {
    io.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match tokio::time::timeout(idle, io.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}
