//! Upstream servers for end-to-end proxy tests, on port 0: an echo server speaking HTTP/1.1
//! and HTTP/2 (cleartext or TLS, optionally asking for a client certificate), a gRPC echo
//! server, and a WebSocket echo server.
//!
//! The echo server answers every request with a JSON description of what it received
//! (`method`, `uri`, `path`, `query`, `version`, `headers`, `body`, `body_len`, `tls`,
//! `client_cert`), which is how tests see what the gateway sent upstream. Some paths act:
//!
//! | path                     | answer                                                      |
//! |--------------------------|-------------------------------------------------------------|
//! | `/status/<code>`         | that status (with the JSON body, unless 204/304)            |
//! | `/delay/<ms>`            | waits, then the JSON                                        |
//! | `/bytes/<n>`             | `n` bytes of `x`, with `Content-Length`                     |
//! | `/stream/<n>`            | `n` chunks of `chunk\n`, chunked, 10 ms apart               |
//! | `/count`                 | reads the body as a stream and answers `{"count": bytes}`   |
//! | `/response-headers?k=v`  | the JSON, with each query pair as a response header         |
//!
//! [`Upstream::raw`] answers every request head with fixed bytes (an invalid response, or
//! nothing at all) and closes.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject as _;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> BoxBody {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

/// A running upstream; it stops when dropped.
pub struct Upstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// The echo server over cleartext HTTP/1.1 and HTTP/2 (prior knowledge).
    pub fn http() -> UpstreamBuilder {
        UpstreamBuilder { kind: Kind::Echo, tls: None }
    }

    /// The gRPC echo server (HTTP/2).
    pub fn grpc() -> UpstreamBuilder {
        UpstreamBuilder { kind: Kind::Grpc, tls: None }
    }

    /// A WebSocket echo server (HTTP/1.1 upgrade, then every byte echoed).
    pub fn websocket() -> UpstreamBuilder {
        UpstreamBuilder { kind: Kind::WebSocket, tls: None }
    }

    /// A server that reads a request head, writes `response` as is (possibly nothing) and
    /// closes the connection.
    pub fn raw(response: &[u8]) -> UpstreamBuilder {
        UpstreamBuilder { kind: Kind::Raw(Bytes::copy_from_slice(response)), tls: None }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>` (or `https://`, `grpc://`… as the caller needs).
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.addr.port())
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
enum Kind {
    Echo,
    Grpc,
    WebSocket,
    Raw(Bytes),
}

/// TLS settings of an upstream.
#[derive(Clone)]
struct TlsOpts {
    cert: String,
    key: String,
    /// Ask for (and require) a client certificate signed by this CA.
    client_ca: Option<String>,
}

/// Configures an upstream.
pub struct UpstreamBuilder {
    kind: Kind,
    tls: Option<TlsOpts>,
}

impl UpstreamBuilder {
    /// Serves TLS with `leaf.crt` (CN `leaf.test`, signed by the test CA `ca.crt`).
    pub fn tls(mut self) -> Self {
        self.tls = Some(TlsOpts {
            cert: crate::tls_fixture("leaf.crt"),
            key: crate::tls_fixture("leaf.key"),
            client_ca: None,
        });
        self
    }

    /// Serves TLS with a certificate of one's own.
    pub fn tls_with(mut self, cert: &str, key: &str) -> Self {
        self.tls = Some(TlsOpts { cert: cert.to_owned(), key: key.to_owned(), client_ca: None });
        self
    }

    /// Requires a client certificate signed by the test CA (`ca.crt`).
    pub fn require_client_cert(mut self) -> Self {
        let mut t = self.tls.take().unwrap_or(TlsOpts {
            cert: crate::tls_fixture("leaf.crt"),
            key: crate::tls_fixture("leaf.key"),
            client_ca: None,
        });
        t.client_ca = Some(crate::tls_fixture("ca.crt"));
        self.tls = Some(t);
        self
    }

    pub async fn start(self) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let acceptor = self
            .tls
            .as_ref()
            .map(|t| tokio_rustls::TlsAcceptor::from(server_config(t, &self.kind)));
        let kind = self.kind;
        let count = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let kind = kind.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    match acceptor {
                        None => serve(kind, tcp, None).await,
                        Some(a) => {
                            let Ok(tls) = a.accept(tcp).await else { return };
                            let cert = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .map(|c| subject_cn(c.as_ref()));
                            serve(kind, tls, Some(cert.unwrap_or_default())).await;
                        }
                    }
                });
            }
        });
        Upstream { addr, connections, task }
    }
}

fn server_config(t: &TlsOpts, kind: &Kind) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(t.cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("upstream certificate");
    let key =
        rustls_pki_types::PrivateKeyDer::from_pem_slice(t.key.as_bytes()).expect("upstream key");
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let builder = match &t.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(c.expect("ca")).expect("ca");
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).expect("upstream certificate and key");
    config.alpn_protocols = match kind {
        Kind::Grpc => vec![b"h2".to_vec()],
        _ => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    Arc::new(config)
}

/// The common name of a DER certificate (enough for tests: the last CN attribute).
pub(crate) fn subject_cn(der: &[u8]) -> String {
    // OID 2.5.4.3 (commonName) followed by a string tag and length
    let oid = [0x06, 0x03, 0x55, 0x04, 0x03];
    let mut cn = String::new();
    let mut i = 0;
    while i + oid.len() + 2 < der.len() {
        if der[i..i + oid.len()] == oid {
            let len = der[i + oid.len() + 1] as usize;
            let start = i + oid.len() + 2;
            if start + len <= der.len() {
                cn = String::from_utf8_lossy(&der[start..start + len]).into_owned();
            }
        }
        i += 1;
    }
    cn
}

async fn serve<S>(kind: Kind, io: S, client_cert: Option<String>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match kind {
        Kind::WebSocket => websocket(io).await,
        Kind::Raw(response) => {
            let mut io = io;
            if read_head(&mut io).await.is_some() {
                let _ = io.write_all(&response).await;
                let _ = io.shutdown().await;
            }
        }
        Kind::Echo | Kind::Grpc => {
            let tls = client_cert.is_some();
            let cert = client_cert.filter(|c| !c.is_empty());
            let grpc_kind = matches!(kind, Kind::Grpc);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let cert = cert.clone();
                async move {
                    Ok::<_, Infallible>(if grpc_kind {
                        grpc(req).await
                    } else {
                        echo(req, tls, cert).await
                    })
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(io), service)
                .await;
        }
    }
}

/// Reads a request head byte by byte (tests only); `None` if the connection closes first.
async fn read_head<S: tokio::io::AsyncRead + Unpin>(io: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match io.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn headers_json(h: &HeaderMap) -> Value {
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in h {
        let v = Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned());
        match m.get_mut(k.as_str()) {
            Some(Value::Array(a)) => a.push(v),
            Some(prev) => *prev = Value::Array(vec![prev.clone(), v]),
            None => {
                m.insert(k.as_str().to_owned(), v);
            }
        }
    }
    Value::Object(m.into_iter().collect::<Map<_, _>>())
}

async fn echo(req: Request<Incoming>, tls: bool, client_cert: Option<String>) -> Response<BoxBody> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let respond = |status: u16, body: BoxBody| {
        let mut r = Response::new(body);
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        r
    };
    match segs.as_slice() {
        ["bytes", n] => {
            let n: usize = n.parse().unwrap_or(0);
            let mut r = respond(200, full(vec![b'x'; n]));
            r.headers_mut()
                .insert("content-type", "application/octet-stream".parse().expect("header"));
            return r;
        }
        ["stream", n] => {
            let n: usize = n.parse().unwrap_or(1);
            let stream = futures_stream(n);
            return respond(200, StreamBody::new(stream).boxed());
        }
        ["count"] => {
            let mut body = body;
            let mut count: u64 = 0;
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(d) = frame.into_data() {
                    count += d.len() as u64;
                }
            }
            return respond(200, full(json!({ "count": count }).to_string()));
        }
        _ => {}
    }
    if let ["delay", ms] = segs.as_slice() {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let description = json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "path": path,
        "query": parts.uri.query(),
        "version": format!("{:?}", parts.version),
        "headers": headers_json(&parts.headers),
        "body": String::from_utf8_lossy(&bytes),
        "body_len": bytes.len(),
        "tls": tls,
        "client_cert": client_cert,
    });
    let status = match segs.as_slice() {
        ["status", code] => code.parse().unwrap_or(200),
        _ => 200,
    };
    let body = if status == 204 || status == 304 {
        full(Bytes::new())
    } else {
        full(description.to_string())
    };
    let mut r = respond(status, body);
    r.headers_mut().insert("content-type", "application/json".parse().expect("header"));
    if path == "/response-headers" {
        for (k, v) in form_pairs(parts.uri.query().unwrap_or("")) {
            if let (Ok(k), Ok(v)) =
                (http::HeaderName::from_bytes(k.as_bytes()), http::HeaderValue::from_str(&v))
            {
                r.headers_mut().append(k, v);
            }
        }
    }
    r
}

fn form_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn futures_stream(
    n: usize,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + Sync {
    futures_util::stream::unfold(0usize, move |i| async move {
        if i >= n {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Some((Ok(Frame::data(Bytes::from_static(b"chunk\n"))), i + 1))
    })
}

/// gRPC echo: `/<service>/Echo` answers the request message, `/<service>/Fail` answers
/// status 3 (`INVALID_ARGUMENT`) with a message; the path and `:authority` come back in
/// response headers (`x-path`, `x-authority`) so tests can see what was sent.
async fn grpc(req: Request<Incoming>) -> Response<BoxBody> {
    let path = req.uri().path().to_owned();
    let authority = req.uri().authority().map(|a| a.to_string()).unwrap_or_default();
    let headers = headers_json(req.headers()).to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let (status, message) =
        if path.ends_with("/Fail") { ("3", "invalid argument from upstream") } else { ("0", "") };
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", status.parse().expect("header"));
    if !message.is_empty() {
        trailers.insert("grpc-message", message.parse().expect("header"));
    }
    let frames = vec![Ok::<_, Infallible>(Frame::data(body)), Ok(Frame::trailers(trailers))];
    let mut r = Response::new(StreamBody::new(futures_util::stream::iter(frames)).boxed());
    let h = r.headers_mut();
    h.insert("content-type", "application/grpc".parse().expect("header"));
    h.insert("x-path", path.parse().expect("header"));
    if let Ok(a) = authority.parse() {
        h.insert("x-authority", a);
    }
    if let Ok(v) = http::HeaderValue::from_str(&headers) {
        h.insert("x-request-headers", v);
    }
    r
}

/// A gRPC message frame: not compressed, 4-byte big-endian length, the payload.
pub fn grpc_frame(payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 5);
    out.push(0);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// The WebSocket handshake answer for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn websocket_accept(key: &str) -> String {
    use base64::Engine as _;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key.trim().as_bytes());
    ctx.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(ctx.finish().as_ref())
}

/// WebSocket echo: answers the upgrade, then echoes bytes as they come (the frames are the
/// client's business; the gateway must only relay them).
async fn websocket<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut io: S) {
    let Some(text) = read_head(&mut io).await else { return };
    let key = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case("sec-websocket-key").then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    let request_line = text.lines().next().unwrap_or_default().to_owned();
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nX-Request-Line: {}\r\n\r\n",
        websocket_accept(&key),
        request_line
    );
    if io.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if io.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Sends raw bytes on a new connection and reads until the peer closes or `timeout` passes
/// without data; returns what came back and whether the peer closed.
pub async fn raw_exchange(addr: &str, request: &[u8], timeout: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(addr.trim_start_matches("http://")).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(timeout, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}
