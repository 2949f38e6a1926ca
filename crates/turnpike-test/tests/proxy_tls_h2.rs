//! The proxy's TLS and HTTP/2 end to end: the listener certificate chosen by SNI, HTTP/2 by
//! ALPN and h2c prior knowledge, TLS towards upstreams (verification, CAs, client
//! certificates), gRPC and gRPCs, WebSocket tunnels, and graceful shutdown.
//!
//! Every gateway listens on `127.0.0.1:0, 127.0.0.1:0 ssl http2`: a cleartext listener first
//! (which speaks h2c too, since `http2` is server-wide in Kong) and a TLS one second.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use rustls::SignatureScheme;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use turnpike_test::net::{
    alpn, exchange, h2_requests, peer_cn, tls_connect, tls_connect_offering, FullResponse,
};
use turnpike_test::{expect, grpc_frame, tls_fixture, websocket_accept, Gateway, Upstream};

const LISTEN: &str = "127.0.0.1:0, 127.0.0.1:0 ssl http2";
/// How long a change may take to reach the proxy, or a connection to do what it should.
const PATIENCE: Duration = Duration::from_secs(10);

// ---- fixtures -------------------------------------------------------------------------------

async fn gateway() -> Gateway {
    Gateway::builder().conf("proxy_listen", LISTEN).start().await
}

fn plain_addr(gw: &Gateway) -> String {
    gw.proxy_addrs()[0].clone()
}

fn tls_addr(gw: &Gateway) -> String {
    gw.proxy_addrs()[1].clone()
}

/// Creates a service (`service` is its JSON, `name` included) and a route on it.
async fn service_route(gw: &Gateway, service: Value, route: Value) -> Value {
    let admin = gw.admin();
    let svc = expect(&admin.post_json("/services", &service).await, 201, "service");
    let name = svc["name"].as_str().expect("services here are named").to_owned();
    expect(&admin.post_json(&format!("/services/{name}/routes"), &route).await, 201, "route");
    svc
}

async fn route_to(gw: &Gateway, name: &str, url: &str, route: Value) -> Value {
    service_route(gw, json!({"name": name, "url": url}), route).await
}

async fn create(gw: &Gateway, path: &str, body: Value) -> Value {
    expect(&gw.admin().post_json(path, &body).await, 201, &format!("POST {path}"))
}

/// Polls `check` until it returns true; panics with `what` after [`PATIENCE`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until the proxy routes `path` (anything but "no Route matched").
async fn until_routed(gw: &Gateway, path: &str) {
    eventually(&format!("route for {path}"), || async {
        let res = gw.proxy().get(path).await;
        res.status != 404 || !res.text().contains("no Route matched")
    })
    .await;
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").port()
}

fn header_str(h: &http::HeaderMap, name: &str) -> Option<String> {
    h.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

// ---- TLS client helpers -----------------------------------------------------------------------

/// The CN the TLS listener presents for `sni`.
async fn cn_for(addr: &str, sni: Option<&str>) -> String {
    peer_cn(&tls_connect(addr, sni, &[]).await)
}

async fn until_cn(addr: &str, sni: Option<&str>, cn: &str) {
    eventually(&format!("SNI {sni:?} served CN {cn}"), || async { cn_for(addr, sni).await == cn })
        .await;
}

const RSA_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];
const ECDSA_SCHEMES: &[SignatureScheme] =
    &[SignatureScheme::ECDSA_NISTP256_SHA256, SignatureScheme::ECDSA_NISTP384_SHA384];

/// The DER of the certificate the listener presents to a client supporting only `schemes`.
async fn served_cert(addr: &str, sni: &str, schemes: &[SignatureScheme]) -> Vec<u8> {
    let tls = tls_connect_offering(addr, Some(sni), schemes).await;
    let certs = tls.get_ref().1.peer_certificates().expect("a certificate");
    certs[0].as_ref().to_vec()
}

fn fixture_der(name: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(tls_fixture(name).as_bytes()).expect("PEM").as_ref().to_vec()
}

// ---- HTTP/2 helpers ---------------------------------------------------------------------------

async fn h2_handshake<S>(io: S) -> SendRequest<Full<Bytes>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(io))
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    sender
}

async fn h2_send(mut sender: SendRequest<Full<Bytes>>, req: Request<Full<Bytes>>) -> FullResponse {
    sender.ready().await.expect("HTTP/2 connection ready");
    let res = sender.send_request(req).await.expect("HTTP/2 request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let collected = res.into_body().collect().await.expect("HTTP/2 body");
    let trailers = collected.trailers().cloned();
    FullResponse { status, headers, body: collected.to_bytes(), trailers }
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::builder().uri(uri).body(Full::new(Bytes::new())).expect("request")
}

/// A unary gRPC call (`uri` is absolute: its authority becomes `:authority`).
fn grpc_call(uri: &str, message: &[u8]) -> Request<Full<Bytes>> {
    Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(grpc_frame(message)))
        .expect("request")
}

/// `grpc-status`: from the trailers, or from the headers of a trailers-only response.
fn grpc_status(res: &FullResponse) -> Option<String> {
    res.trailers
        .as_ref()
        .and_then(|t| header_str(t, "grpc-status"))
        .or_else(|| res.header("grpc-status"))
}

fn grpc_message(res: &FullResponse) -> Option<String> {
    res.trailers
        .as_ref()
        .and_then(|t| header_str(t, "grpc-message"))
        .or_else(|| res.header("grpc-message"))
}

// ---- HTTP/1 helpers ---------------------------------------------------------------------------

/// Reads one HTTP/1 response head from `io` (bytes after it are returned too).
async fn read_head<S: AsyncRead + Unpin>(io: &mut S) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            return (head, buf[end + 4..].to_vec());
        }
        let n = tokio::time::timeout(PATIENCE, io.read(&mut chunk))
            .await
            .expect("a response head in time")
            .expect("read");
        assert!(
            n > 0,
            "connection closed before a response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A header of a raw response head (first match, name case-insensitive).
fn head_field(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// Reads one response with a `Content-Length` body; the connection stays usable.
async fn read_response<S: AsyncRead + Unpin>(io: &mut S) -> (String, Vec<u8>) {
    let (head, mut body) = read_head(io).await;
    let len: usize = head_field(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a Content-Length: {head}"));
    let mut chunk = [0u8; 4096];
    while body.len() < len {
        let n = tokio::time::timeout(PATIENCE, io.read(&mut chunk))
            .await
            .expect("the body in time")
            .expect("read");
        assert!(n > 0, "connection closed inside the body");
        body.extend_from_slice(&chunk[..n]);
    }
    (head, body)
}

/// Whether the peer closes `io` (EOF or an error) within [`PATIENCE`].
async fn closes<S: AsyncRead + Unpin>(io: &mut S) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(PATIENCE, io.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

// ---- 1. the listener certificate by SNI -------------------------------------------------------

#[tokio::test]
async fn listener_certificate_is_chosen_by_sni_and_follows_changes() {
    let gw = gateway().await;
    let addr = tls_addr(&gw);
    // no certificate entities: the node's generated default (CN localhost)
    assert_eq!(cn_for(&addr, Some("ssl-example.com")).await, "localhost");
    assert_eq!(cn_for(&addr, None).await, "localhost");

    let rsa = create(
        &gw,
        "/certificates",
        json!({"cert": tls_fixture("rsa.crt"), "key": tls_fixture("rsa.key"),
               "snis": ["ssl-example.com"]}),
    )
    .await;
    until_cn(&addr, Some("ssl-example.com"), "ssl-example.com").await;
    assert_eq!(
        cn_for(&addr, Some("SSL-Example.COM")).await,
        "ssl-example.com",
        "names are case-insensitive"
    );
    assert_eq!(cn_for(&addr, Some("other.test")).await, "localhost", "an unknown name");
    // the rsa certificate covers *.example.org, but no SNI says so
    assert_eq!(cn_for(&addr, Some("a.example.org")).await, "localhost");

    // a prefix wildcard SNI on another certificate
    let other = create(
        &gw,
        "/certificates",
        json!({"cert": tls_fixture("ecdsa2.crt"), "key": tls_fixture("ecdsa2.key"),
               "snis": ["*.example.org"]}),
    )
    .await;
    until_cn(&addr, Some("a.example.org"), "other.example.com").await;
    assert_eq!(cn_for(&addr, Some("b.example.org")).await, "other.example.com");
    assert_eq!(
        cn_for(&addr, Some("x.a.example.org")).await,
        "localhost",
        "a wildcard is one label"
    );
    assert_eq!(cn_for(&addr, Some("ssl-example.com")).await, "ssl-example.com");

    // updating the SNI moves the name to the other certificate
    let res = gw
        .admin()
        .patch_json("/snis/ssl-example.com", &json!({"certificate": {"id": other["id"]}}))
        .await;
    expect(&res, 200, "PATCH sni");
    until_cn(&addr, Some("ssl-example.com"), "other.example.com").await;

    // deleting it falls back to the default
    let res = gw.admin().delete("/snis/ssl-example.com").await;
    assert_eq!(res.status, 204, "{}", res.text());
    until_cn(&addr, Some("ssl-example.com"), "localhost").await;

    // an SNI named `*` is the certificate for names nothing else matches
    create(&gw, "/snis", json!({"name": "*", "certificate": {"id": rsa["id"]}})).await;
    until_cn(&addr, Some("unknown.test"), "ssl-example.com").await;
    assert_eq!(cn_for(&addr, Some("ssl-example.com")).await, "ssl-example.com");
    assert_eq!(
        cn_for(&addr, Some("a.example.org")).await,
        "other.example.com",
        "a wildcard match beats `*`"
    );

    // deleting the certificate takes its SNIs away
    let res = gw.admin().delete(&format!("/certificates/{}", other["id"].as_str().unwrap())).await;
    assert_eq!(res.status, 204, "{}", res.text());
    until_cn(&addr, Some("a.example.org"), "ssl-example.com").await;
}

/// Kong's `find_certificate(nil)` returns the node default at once: the `*` SNI is looked up
/// only for a client that sent a name (`kong/runloop/certificate.lua`).
#[tokio::test]
async fn client_without_sni_gets_the_default_certificate_even_with_a_star_sni() {
    let gw = gateway().await;
    let addr = tls_addr(&gw);
    create(
        &gw,
        "/certificates",
        json!({"cert": tls_fixture("ecdsa2.crt"), "key": tls_fixture("ecdsa2.key"), "snis": ["*"]}),
    )
    .await;
    until_cn(&addr, Some("unknown.test"), "other.example.com").await;
    assert_eq!(cn_for(&addr, None).await, "localhost");
}

/// Kong builds the prefix wildcard with `([^.]+)(\.[^.]+\.\S+)` → `*$2`: a name of two labels
/// (`foo.test`) has none, so an SNI `*.test` does not cover it (`produce_wild_snis`).
#[tokio::test]
async fn prefix_wildcard_needs_three_labels() {
    let gw = gateway().await;
    let addr = tls_addr(&gw);
    create(
        &gw,
        "/certificates",
        json!({"cert": tls_fixture("ecdsa2.crt"), "key": tls_fixture("ecdsa2.key"),
               "snis": ["*.test", "sfx.*"]}),
    )
    .await;
    until_cn(&addr, Some("sfx.example"), "other.example.com").await;
    // Kong derives one prefix wildcard by replacing the first label, and only for names of three
    // labels or more: a.foo.test looks up *.foo.test, foo.test looks up no prefix wildcard
    assert_eq!(cn_for(&addr, Some("a.foo.test")).await, "localhost", "first label only");
    assert_eq!(cn_for(&addr, Some("foo.test")).await, "localhost", "two labels");
}

#[tokio::test]
async fn alternate_certificate_serves_the_other_key_type() {
    let gw = gateway().await;
    let addr = tls_addr(&gw);
    create(
        &gw,
        "/certificates",
        json!({"cert": tls_fixture("rsa.crt"), "key": tls_fixture("rsa.key"),
               "cert_alt": tls_fixture("ecdsa.crt"), "key_alt": tls_fixture("ecdsa.key"),
               "snis": ["ssl-example.com"]}),
    )
    .await;
    until_cn(&addr, Some("ssl-example.com"), "ssl-example.com").await;
    assert_eq!(
        served_cert(&addr, "ssl-example.com", RSA_SCHEMES).await,
        fixture_der("rsa.crt"),
        "an RSA-only client gets the RSA certificate"
    );
    assert_eq!(
        served_cert(&addr, "ssl-example.com", ECDSA_SCHEMES).await,
        fixture_der("ecdsa.crt"),
        "an ECDSA-only client gets the ECDSA certificate"
    );
}

// ---- 2. HTTP/2 ----------------------------------------------------------------------------------

#[tokio::test]
async fn http2_by_alpn_and_h2c_prior_knowledge_and_http1_on_both_listeners() {
    let up = Upstream::http().start().await;
    let gw = gateway().await;
    route_to(&gw, "echo", &up.url("http"), json!({"paths": ["/h2"]})).await;
    until_routed(&gw, "/h2").await;

    // TLS listener, ALPN h2
    let tls = tls_connect(&tls_addr(&gw), Some("h2.test"), &["h2", "http/1.1"]).await;
    assert_eq!(alpn(&tls).as_deref(), Some("h2"));
    let res = h2_requests(tls, vec![get("https://h2.test/h2/a?x=1")]).await.remove(0);
    assert_eq!(res.status, 200, "{:?}", res.body);
    let seen = res.json();
    assert_eq!(seen["uri"], "/a?x=1");
    assert_eq!(seen["version"], "HTTP/1.1", "upstream traffic stays HTTP/1.1");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    assert_eq!(seen["headers"]["host"], format!("127.0.0.1:{}", up.port()));
    let via = seen["headers"]["via"].as_str().unwrap_or_default();
    assert!(via.starts_with("2 turnpike/"), "upstream Via for an HTTP/2 client: {via}");
    let via = res.header("via").unwrap_or_default();
    assert!(via.starts_with("1.1 turnpike/"), "response Via: {via}");

    // cleartext listener, HTTP/2 with prior knowledge (http2 is server-wide)
    let tcp = TcpStream::connect(plain_addr(&gw)).await.expect("connect");
    let res = h2_requests(tcp, vec![get("http://h2c.test/h2/b")]).await.remove(0);
    assert_eq!(res.status, 200, "{:?}", res.body);
    let seen = res.json();
    assert_eq!(seen["uri"], "/b");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "http");
    assert!(seen["headers"]["via"].as_str().unwrap_or_default().starts_with("2 turnpike/"));

    // HTTP/1.1 still works on both listeners
    let res = gw.proxy().get("/h2/c").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.json()["headers"]["via"].as_str().unwrap_or_default().starts_with("1.1 turnpike/"));
    for offer in [&["http/1.1"][..], &["h2", "http/1.1"][..], &[][..]] {
        let mut tls = tls_connect(&tls_addr(&gw), Some("h1.test"), offer).await;
        let expected = if offer.is_empty() {
            None
        } else if offer.contains(&"h2") {
            Some("h2")
        } else {
            Some("http/1.1")
        };
        assert_eq!(alpn(&tls).as_deref(), expected, "ALPN for {offer:?}");
        if expected == Some("h2") {
            continue;
        }
        let (out, _) = exchange(
            &mut tls,
            b"GET /h2/d HTTP/1.1\r\nHost: h1.test\r\nConnection: close\r\n\r\n",
            PATIENCE,
        )
        .await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200"), "HTTP/1.1 over TLS ({offer:?}): {text}");
        assert!(text.contains("\"x-forwarded-proto\":\"https\""), "{text}");
    }
}

#[tokio::test]
async fn concurrent_streams_on_one_http2_connection() {
    let up = Upstream::http().start().await;
    let gw = gateway().await;
    route_to(&gw, "echo", &up.url("http"), json!({"paths": ["/c"]})).await;
    until_routed(&gw, "/c").await;

    for tls in [true, false] {
        let sender = if tls {
            h2_handshake(tls_connect(&tls_addr(&gw), Some("c.test"), &["h2"]).await).await
        } else {
            h2_handshake(TcpStream::connect(plain_addr(&gw)).await.expect("connect")).await
        };
        let calls = (0..8).map(|i| {
            let scheme = if tls { "https" } else { "http" };
            h2_send(sender.clone(), get(&format!("{scheme}://c.test/c/delay/200?n={i}")))
        });
        let results = futures_util::future::join_all(calls).await;
        for (i, res) in results.iter().enumerate() {
            assert_eq!(res.status, 200, "stream {i} (tls {tls}): {:?}", res.body);
            let seen = res.json();
            assert_eq!(seen["path"], "/delay/200");
            assert_eq!(seen["query"], format!("n={i}"), "each stream gets its own answer");
        }
    }
}

#[tokio::test]
async fn without_http2_the_tls_listener_selects_http1() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().conf("proxy_listen", "127.0.0.1:0, 127.0.0.1:0 ssl").start().await;
    route_to(&gw, "echo", &up.url("http"), json!({"paths": ["/n"]})).await;
    until_routed(&gw, "/n").await;
    let mut tls = tls_connect(&tls_addr(&gw), Some("n.test"), &["h2", "http/1.1"]).await;
    assert_eq!(alpn(&tls).as_deref(), Some("http/1.1"));
    let (out, _) = exchange(
        &mut tls,
        b"GET /n HTTP/1.1\r\nHost: n.test\r\nConnection: close\r\n\r\n",
        PATIENCE,
    )
    .await;
    assert!(out.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&out));
}

// ---- 3. TLS towards upstreams -------------------------------------------------------------------

#[tokio::test]
async fn https_upstream_is_not_verified_by_default() {
    let up = Upstream::http().tls().start().await;
    let gw = gateway().await;
    route_to(&gw, "unset", &up.url("https"), json!({"paths": ["/unset"]})).await;
    service_route(
        &gw,
        json!({"name": "off", "url": up.url("https"), "tls_verify": false}),
        json!({"paths": ["/off"]}),
    )
    .await;
    until_routed(&gw, "/off").await;
    for path in ["/unset/x", "/off/x"] {
        let res = gw.proxy().get(path).await;
        assert_eq!(res.status, 200, "{path}: {}", res.text());
        let seen = res.json();
        assert_eq!(seen["tls"], true, "{path}");
        assert_eq!(seen["path"], "/x");
        assert_eq!(seen["version"], "HTTP/1.1");
    }
}

/// With verification on, the certificate must chain to a trusted CA (the system store unless
/// `ca_certificates` is set) and be valid for the service host (the SNI and verification name;
/// for an upstream entity, Kong's `$upstream_host`: the target host, or `host_header`).
#[tokio::test]
async fn tls_verify_needs_a_trusted_ca_and_a_matching_name() {
    let up = Upstream::http().tls().start().await;
    let gw = gateway().await;
    let ca = create(&gw, "/ca_certificates", json!({"cert": tls_fixture("ca.crt")})).await;
    // the test CA is not in the system store
    service_route(
        &gw,
        json!({"name": "system", "url": up.url("https"), "tls_verify": true}),
        json!({"paths": ["/system"]}),
    )
    .await;
    // trusted CA, but the leaf is for leaf.test, not 127.0.0.1
    service_route(
        &gw,
        json!({"name": "by-ip", "url": up.url("https"), "tls_verify": true,
               "ca_certificates": [ca["id"]]}),
        json!({"paths": ["/by-ip"]}),
    )
    .await;
    // trusted CA and the name leaf.test, through an upstream entity resolving to 127.0.0.1
    create(&gw, "/upstreams", json!({"name": "leaf.test", "host_header": "leaf.test"})).await;
    create(
        &gw,
        "/upstreams/leaf.test/targets",
        json!({"target": format!("127.0.0.1:{}", up.port())}),
    )
    .await;
    service_route(
        &gw,
        json!({"name": "by-name", "url": "https://leaf.test", "tls_verify": true,
               "ca_certificates": [ca["id"]]}),
        json!({"paths": ["/by-name"]}),
    )
    .await;
    until_routed(&gw, "/by-name").await;

    let res = gw.proxy().get("/system").await;
    assert_eq!(res.status, 502, "untrusted CA: {}", res.text());
    let res = gw.proxy().get("/by-ip").await;
    assert_eq!(res.status, 502, "name mismatch: {}", res.text());
    let res = gw.proxy().get("/by-name/ok").await;
    assert_eq!(res.status, 200, "trusted CA and matching name: {}", res.text());
    assert_eq!(res.json()["tls"], true);
    assert_eq!(res.json()["path"], "/ok");
}

/// Kong's balancer sets `$upstream_host` to the target's host when the upstream entity has no
/// `host_header` (`balancer/init.lua` `set_host_header`), and nginx verifies against
/// `proxy_ssl_name $upstream_host`: an upstream named leaf.test with target 127.0.0.1 is
/// checked against 127.0.0.1, which the leaf certificate does not cover.
#[tokio::test]
async fn tls_verify_name_of_an_upstream_entity_is_the_target_host() {
    let up = Upstream::http().tls().start().await;
    let gw = gateway().await;
    let ca = create(&gw, "/ca_certificates", json!({"cert": tls_fixture("ca.crt")})).await;
    create(&gw, "/upstreams", json!({"name": "leaf.test"})).await;
    create(
        &gw,
        "/upstreams/leaf.test/targets",
        json!({"target": format!("127.0.0.1:{}", up.port())}),
    )
    .await;
    service_route(
        &gw,
        json!({"name": "no-host-header", "url": "https://leaf.test", "tls_verify": true,
               "ca_certificates": [ca["id"]]}),
        json!({"paths": ["/nhh"]}),
    )
    .await;
    until_routed(&gw, "/nhh").await;
    let res = gw.proxy().get("/nhh").await;
    assert_eq!(res.status, 502, "verified against 127.0.0.1: {}", res.text());
}

/// Routes `/<name>` to services on an upstream entity whose `host_header` is `host`, with one
/// target (the TLS upstream `up`), verified against ca.crt with each `tls_verify_depth`.
async fn verified_routes(gw: &Gateway, up: &Upstream, host: &str, depths: &[(&str, u32)]) {
    let ca = create(gw, "/ca_certificates", json!({"cert": tls_fixture("ca.crt")})).await;
    create(gw, "/upstreams", json!({"name": "verified-up", "host_header": host})).await;
    let target = json!({"target": format!("127.0.0.1:{}", up.port())});
    create(gw, "/upstreams/verified-up/targets", target).await;
    for (name, depth) in depths {
        service_route(
            gw,
            json!({"name": name, "url": "https://verified-up", "tls_verify": true,
                   "tls_verify_depth": depth, "ca_certificates": [ca["id"]]}),
            json!({"paths": [format!("/{name}")]}),
        )
        .await;
    }
    for (name, _) in depths {
        until_routed(gw, &format!("/{name}")).await;
    }
}

/// `tls_verify_depth` is OpenSSL's verify depth: the number of intermediate CAs allowed
/// between the leaf and the trust anchor. 0 allows a leaf signed directly by a trusted CA,
/// which is the case of leaf.crt and ca.crt.
#[tokio::test]
async fn tls_verify_depth_zero_accepts_a_leaf_signed_by_the_trusted_ca() {
    let up = Upstream::http().tls().start().await;
    let gw = gateway().await;
    verified_routes(&gw, &up, "leaf.test", &[("depth0", 0)]).await;
    let res = gw.proxy().get("/depth0").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["tls"], true);
}

/// OpenSSL looks the leaf's issuer up in the trust store first (`X509_V_FLAG_TRUSTED_FIRST`,
/// the default): a root the server sends along is not an intermediate and does not count
/// against the depth, so depth 0 still verifies.
#[tokio::test]
async fn tls_verify_depth_zero_accepts_a_chain_that_includes_the_root() {
    let chain = format!("{}{}", tls_fixture("leaf.crt"), tls_fixture("ca.crt"));
    let up = Upstream::http().tls_with(&chain, &tls_fixture("leaf.key")).start().await;
    let gw = gateway().await;
    verified_routes(&gw, &up, "leaf.test", &[("depth0", 0)]).await;
    let res = gw.proxy().get("/depth0").await;
    assert_eq!(res.status, 200, "{}", res.text());
}

/// One intermediate between the upstream's certificate and the trusted CA: depth 0 refuses the
/// chain, depth 1 accepts it (and a root sent along still does not count).
#[tokio::test]
async fn tls_verify_depth_counts_intermediates() {
    let chain = format!(
        "{}{}{}",
        tls_fixture("chain-leaf.crt"),
        tls_fixture("inter.crt"),
        tls_fixture("ca.crt")
    );
    let up = Upstream::http().tls_with(&chain, &tls_fixture("chain-leaf.key")).start().await;
    let gw = gateway().await;
    verified_routes(&gw, &up, "chain.test", &[("d0", 0), ("d1", 1)]).await;
    let res = gw.proxy().get("/d0").await;
    assert_eq!(res.status, 502, "one intermediate exceeds depth 0: {}", res.text());
    let res = gw.proxy().get("/d1").await;
    assert_eq!(res.status, 200, "{}", res.text());
    // the upstream's host_header names the TLS server and, with the target's port, the Host
    assert_eq!(res.json()["headers"]["host"], format!("chain.test:{}", up.port()));
}

#[tokio::test]
async fn client_certificate_is_presented_to_the_upstream() {
    let up = Upstream::http().tls().require_client_cert().start().await;
    let gw = gateway().await;
    let cert = create(
        &gw,
        "/certificates",
        json!({"cert": tls_fixture("leaf.crt"), "key": tls_fixture("leaf.key")}),
    )
    .await;
    service_route(
        &gw,
        json!({"name": "mtls", "url": up.url("https"), "client_certificate": {"id": cert["id"]}}),
        json!({"paths": ["/mtls"]}),
    )
    .await;
    route_to(&gw, "anonymous", &up.url("https"), json!({"paths": ["/anonymous"]})).await;
    until_routed(&gw, "/anonymous").await;

    let res = gw.proxy().get("/mtls").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = res.json();
    assert_eq!(seen["tls"], true);
    assert_eq!(seen["client_cert"], "leaf.test");

    let res = gw.proxy().get("/anonymous").await;
    assert_eq!(res.status, 502, "the upstream requires a client certificate: {}", res.text());
}

// ---- 4. gRPC ------------------------------------------------------------------------------------

#[tokio::test]
async fn grpc_over_h2c() {
    let up = Upstream::grpc().start().await;
    let gw = gateway().await;
    route_to(&gw, "grpc", &up.url("grpc"), json!({"protocols": ["grpc"], "paths": ["/x.Svc/"]}))
        .await;
    route_to(
        &gw,
        "grpc-preserve",
        &up.url("grpc"),
        json!({"protocols": ["grpc"], "paths": ["/p.Svc/"], "preserve_host": true}),
    )
    .await;
    until_routed(&gw, "/p.Svc/Echo").await;

    let tcp = TcpStream::connect(plain_addr(&gw)).await.expect("connect");
    let mut out = h2_requests(
        tcp,
        vec![
            grpc_call("http://grpc.client.test:1234/x.Svc/Echo", b"hello"),
            grpc_call("http://grpc.client.test:1234/x.Svc/Fail", b"hello"),
            grpc_call("http://grpc.client.test:1234/p.Svc/Echo", b"kept"),
        ],
    )
    .await
    .into_iter();
    let (echo, fail, preserved) =
        (out.next().expect("echo"), out.next().expect("fail"), out.next().expect("preserved"));

    assert_eq!(echo.status, 200);
    assert_eq!(echo.body, grpc_frame(b"hello"), "the message comes back");
    assert_eq!(grpc_status(&echo).as_deref(), Some("0"), "{echo:?}");
    assert_eq!(echo.header("content-type").as_deref(), Some("application/grpc"));
    assert_eq!(echo.header("x-path").as_deref(), Some("/x.Svc/Echo"), "gRPC routes do not strip");
    assert_eq!(
        echo.header("x-authority"),
        Some(format!("127.0.0.1:{}", up.port())),
        ":authority is the service's host:port"
    );
    let via = echo.header("via").unwrap_or_default();
    assert!(via.starts_with("2 turnpike/"), "response Via of a gRPC upstream: {via}");
    let sent: Value =
        serde_json::from_str(&echo.header("x-request-headers").expect("headers")).expect("JSON");
    assert_eq!(sent["te"], "trailers");
    assert_eq!(sent["content-type"], "application/grpc");
    assert_eq!(sent["x-forwarded-proto"], "http");
    assert!(sent["via"].as_str().unwrap_or_default().starts_with("2 turnpike/"), "{sent}");

    assert_eq!(fail.status, 200);
    assert_eq!(grpc_status(&fail).as_deref(), Some("3"), "{fail:?}");
    assert_eq!(grpc_message(&fail).as_deref(), Some("invalid argument from upstream"));

    assert_eq!(grpc_status(&preserved).as_deref(), Some("0"));
    assert_eq!(preserved.body, grpc_frame(b"kept"));
    assert_eq!(preserved.header("x-authority").as_deref(), Some("grpc.client.test:1234"));

    // the same route, not gRPC: HTTP/1 with a gRPC content type, HTTP/2 without one
    let res = gw
        .proxy()
        .request("POST", "/x.Svc/Echo", &[("content-type", "application/grpc")], grpc_frame(b"x"))
        .await;
    assert_eq!(res.status, 426, "{}", res.text());
    assert_eq!(res.json()["message"], "Please use HTTP2 protocol");
    assert_eq!(res.header("upgrade").as_deref(), Some("HTTP/2"));
    let tcp = TcpStream::connect(plain_addr(&gw)).await.expect("connect");
    let res = h2_requests(tcp, vec![get("http://grpc.client.test/x.Svc/Echo")]).await.remove(0);
    assert_eq!(res.status, 415);
    assert_eq!(res.json()["message"], "Non-gRPC request matched gRPC route");
}

#[tokio::test]
async fn grpcs_through_the_tls_listener() {
    let up = Upstream::grpc().tls().start().await;
    let gw = gateway().await;
    route_to(&gw, "grpcs", &up.url("grpcs"), json!({"protocols": ["grpcs"], "paths": ["/x.Svc/"]}))
        .await;
    until_routed(&gw, "/x.Svc/Echo").await;

    let tls = tls_connect(&tls_addr(&gw), Some("grpc.test"), &["h2"]).await;
    assert_eq!(alpn(&tls).as_deref(), Some("h2"));
    let mut out = h2_requests(
        tls,
        vec![
            grpc_call("https://grpc.test/x.Svc/Echo", b"over tls"),
            grpc_call("https://grpc.test/x.Svc/Fail", b""),
        ],
    )
    .await
    .into_iter();
    let (echo, fail) = (out.next().expect("echo"), out.next().expect("fail"));
    assert_eq!(echo.status, 200);
    assert_eq!(echo.body, grpc_frame(b"over tls"));
    assert_eq!(grpc_status(&echo).as_deref(), Some("0"), "{echo:?}");
    assert_eq!(echo.header("x-authority"), Some(format!("127.0.0.1:{}", up.port())));
    assert!(echo.header("via").unwrap_or_default().starts_with("2 turnpike/"));
    let sent: Value =
        serde_json::from_str(&echo.header("x-request-headers").expect("headers")).expect("JSON");
    assert_eq!(sent["x-forwarded-proto"], "https");
    assert_eq!(grpc_status(&fail).as_deref(), Some("3"));
}

/// `kong.response.exit(200, nil, {content-type = application/grpc, grpc-status = 1,
/// grpc-message = "gRPC request matched gRPCs route"})` (handler.lua; spec 19-grpc_proxy).
#[tokio::test]
async fn grpcs_only_route_refuses_cleartext_grpc() {
    let up = Upstream::grpc().tls().start().await;
    let gw = gateway().await;
    route_to(&gw, "grpcs", &up.url("grpcs"), json!({"protocols": ["grpcs"], "paths": ["/x.Svc/"]}))
        .await;
    until_routed(&gw, "/x.Svc/Echo").await;
    let tcp = TcpStream::connect(plain_addr(&gw)).await.expect("connect");
    let res =
        h2_requests(tcp, vec![grpc_call("http://grpc.test/x.Svc/Echo", b"hello")]).await.remove(0);
    assert_eq!(res.status, 200);
    assert_eq!(grpc_status(&res).as_deref(), Some("1"), "{res:?}");
    assert_eq!(grpc_message(&res).as_deref(), Some("gRPC request matched gRPCs route"));
    assert_eq!(up.connections(), 0, "nothing went upstream");
}

/// A refused connection is nginx's 502; Kong's error handler answers a gRPC request
/// (`Content-Type: application/grpc`) with `kong.response.exit(502, {message = …})`: HTTP 502,
/// `grpc-status: 13`, the message in `grpc-message` (research doc §4.6-4.7).
#[tokio::test]
async fn grpc_upstream_unreachable() {
    let port = closed_port().await;
    let gw = gateway().await;
    route_to(
        &gw,
        "gone",
        &format!("grpc://127.0.0.1:{port}"),
        json!({"protocols": ["grpc"], "paths": ["/x.Svc/"]}),
    )
    .await;
    until_routed(&gw, "/x.Svc/Echo").await;
    let tcp = TcpStream::connect(plain_addr(&gw)).await.expect("connect");
    let res =
        h2_requests(tcp, vec![grpc_call("http://grpc.test/x.Svc/Echo", b"hello")]).await.remove(0);
    assert_eq!(res.status, 502, "{res:?}");
    assert_eq!(grpc_status(&res).as_deref(), Some("13"));
    assert_eq!(
        grpc_message(&res).as_deref(),
        Some("An invalid response was received from the upstream server")
    );
}

// ---- 5. WebSocket -------------------------------------------------------------------------------

/// The upgrade handshake through the proxy, three echoed round trips, then the client closes
/// its side and the tunnel ends.
async fn websocket_session<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, host: &str) {
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let request = format!(
        "GET /ws/chat HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    io.write_all(request.as_bytes()).await.expect("write");
    let (head, early) = read_head(&mut io).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(head_field(&head, "sec-websocket-accept"), Some(websocket_accept(key)), "{head}");
    assert!(head_field(&head, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")));
    assert!(head_field(&head, "connection").is_some_and(|c| c.eq_ignore_ascii_case("upgrade")));
    assert!(head_field(&head, "via").is_some_and(|v| v.starts_with("1.1 turnpike/")), "{head}");
    // the upstream got the path as routed (strip_path)
    assert_eq!(head_field(&head, "x-request-line").as_deref(), Some("GET /chat HTTP/1.1"));
    assert!(early.is_empty(), "nothing after the 101 yet");

    for (i, msg) in
        [&b"\x81\x05hello"[..], &[0x82, 0x03, 1, 2, 3][..], &[b'z'; 5000][..]].iter().enumerate()
    {
        io.write_all(msg).await.expect("write");
        let mut back = vec![0u8; msg.len()];
        tokio::time::timeout(PATIENCE, io.read_exact(&mut back))
            .await
            .unwrap_or_else(|_| panic!("round trip {i}: no echo"))
            .expect("read");
        assert_eq!(&back, msg, "round trip {i}");
    }
    io.shutdown().await.expect("shutdown");
    assert!(closes(&mut io).await, "closing the client side ends the tunnel");
}

async fn websocket_gateway(up: &Upstream) -> Gateway {
    let gw = gateway().await;
    route_to(&gw, "ws", &up.url("http"), json!({"paths": ["/ws"]})).await;
    // a plain request to the WebSocket upstream is no probe: it answers 101 to anything
    let probe = Upstream::http().start().await;
    route_to(&gw, "probe", &probe.url("http"), json!({"paths": ["/probe"]})).await;
    until_routed(&gw, "/probe").await;
    gw
}

#[tokio::test]
async fn websocket_upgrade_is_tunnelled() {
    let up = Upstream::websocket().start().await;
    let gw = websocket_gateway(&up).await;
    let tcp = TcpStream::connect(plain_addr(&gw)).await.expect("connect");
    websocket_session(tcp, "ws.test").await;
}

#[tokio::test]
async fn websocket_upgrade_over_the_tls_listener() {
    let up = Upstream::websocket().start().await;
    let gw = websocket_gateway(&up).await;
    let tls = tls_connect(&tls_addr(&gw), Some("ws.test"), &["http/1.1"]).await;
    assert_eq!(alpn(&tls).as_deref(), Some("http/1.1"));
    websocket_session(tls, "ws.test").await;
}

// ---- 6. graceful shutdown -----------------------------------------------------------------------

/// Whether the process has exited (it stays a zombie until the harness reaps it).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

fn signal(gw: &Gateway, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(gw.pid().expect("running") as i32).expect("pid");
    rustix::process::kill_process(pid, sig).expect("kill");
}

/// A gateway with a slow route (`/slow/delay/<ms>` to its own upstream, so that its
/// connection count says when the request got there) and a fast one.
struct Drain {
    gw: Gateway,
    slow: Upstream,
    _fast: Upstream,
}

async fn drain_setup() -> Drain {
    let slow = Upstream::http().start().await;
    let fast = Upstream::http().start().await;
    let gw = gateway().await;
    route_to(&gw, "slow", &slow.url("http"), json!({"paths": ["/slow"]})).await;
    route_to(&gw, "fast", &fast.url("http"), json!({"paths": ["/fast"]})).await;
    until_routed(&gw, "/fast").await;
    assert_eq!(slow.connections(), 0);
    Drain { gw, slow, _fast: fast }
}

impl Drain {
    /// Starts a request to `/slow/delay/<ms>` and returns once the upstream has it.
    async fn in_flight(&self, ms: u32) -> tokio::task::JoinHandle<turnpike_test::Resp> {
        let client = self.gw.proxy();
        let path = format!("/slow/delay/{ms}");
        let task = tokio::spawn(async move { client.get(&path).await });
        eventually("the slow request reached the upstream", || async {
            self.slow.connections() > 0
        })
        .await;
        task
    }

    /// Polls until both listeners refuse connections; asserts it happens while `slow` is
    /// still being served.
    async fn until_refused(&self, slow: &tokio::task::JoinHandle<turnpike_test::Resp>) {
        for addr in self.gw.proxy_addrs() {
            eventually(&format!("{addr} refuses connections"), || async {
                TcpStream::connect(addr).await.is_err()
            })
            .await;
        }
        assert!(!slow.is_finished(), "listeners closed while the in-flight request is served");
    }
}

async fn assert_completed(slow: tokio::task::JoinHandle<turnpike_test::Resp>) {
    let res = tokio::time::timeout(PATIENCE, slow).await.expect("in time").expect("task");
    assert_eq!(res.status, 200, "the in-flight request completes: {}", res.text());
    assert_eq!(res.json()["path"], "/delay/3000");
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    let mut d = drain_setup().await;
    let slow = d.in_flight(3000).await;
    signal(&d.gw, rustix::process::Signal::TERM);
    d.until_refused(&slow).await;
    assert_completed(slow).await;
    let pid = d.gw.pid().expect("pid");
    eventually("the process exits", || async { exited(pid) }).await;
    let status = d.gw.stop().await.expect("an exit status");
    assert!(status.success(), "graceful stop exits 0: {status:?}\n{}", d.gw.log());
}

#[tokio::test]
async fn quit_command_drains_in_flight_requests() {
    let mut d = drain_setup().await;
    let slow = d.in_flight(3000).await;
    // `turnpike quit` waits for the process to exit: run it off the test's event loop
    let mut quit = std::process::Command::new(turnpike_test::binary());
    quit.arg("quit").arg("-p").arg(d.gw.prefix());
    quit.envs(d.gw.env().iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let quit = tokio::task::spawn_blocking(move || quit.output().expect("run turnpike quit"));
    d.until_refused(&slow).await;
    assert_completed(slow).await;
    let out = tokio::time::timeout(Duration::from_secs(60), quit)
        .await
        .expect("quit returns")
        .expect("task");
    assert!(
        out.status.success(),
        "turnpike quit: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = d.gw.pid().expect("pid");
    assert!(exited(pid), "the process is gone when quit returns");
    let status = d.gw.stop().await.expect("an exit status");
    assert!(status.success(), "{status:?}");
}

/// Idle keep-alive connections (HTTP/1.1 cleartext and TLS, HTTP/2) are closed when the drain
/// starts instead of being held while in-flight requests finish.
#[tokio::test]
async fn idle_connections_close_at_shutdown() {
    let d = drain_setup().await;
    let request = b"GET /fast/x HTTP/1.1\r\nHost: idle.test\r\n\r\n";
    let mut plain = TcpStream::connect(plain_addr(&d.gw)).await.expect("connect");
    plain.write_all(request).await.expect("write");
    let (head, _) = read_response(&mut plain).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut tls = tls_connect(&tls_addr(&d.gw), Some("idle.test"), &["http/1.1"]).await;
    tls.write_all(request).await.expect("write");
    let (head, _) = read_response(&mut tls).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Full<Bytes>>(TokioIo::new(
            TcpStream::connect(plain_addr(&d.gw)).await.expect("connect"),
        ))
        .await
        .expect("HTTP/2 handshake");
    let h2_conn = tokio::spawn(conn);
    let res = sender.send_request(get("http://idle.test/fast/x")).await.expect("HTTP/2 request");
    assert_eq!(res.status(), 200);
    drop(res.into_body().collect().await);

    let slow = d.in_flight(3000).await;
    signal(&d.gw, rustix::process::Signal::TERM);
    assert!(closes(&mut plain).await, "the idle HTTP/1.1 connection is closed");
    assert!(closes(&mut tls).await, "the idle TLS connection is closed");
    tokio::time::timeout(PATIENCE, h2_conn)
        .await
        .expect("the idle HTTP/2 connection is closed")
        .ok();
    assert!(!slow.is_finished(), "idle connections closed before the drain ended");
    assert_completed(slow).await;
}
