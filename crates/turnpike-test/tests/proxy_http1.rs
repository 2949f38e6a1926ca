//! HTTP/1 on the proxy listener, end to end over raw sockets: strict request parsing,
//! keep-alive, request and response bodies, upstream failures, and Kong's error bodies and
//! their negotiation (docs/research/kong-proxy-behaviour.md §4 and §6).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use turnpike_test::{expect, raw_exchange, Gateway, Upstream};

/// How long a test waits for bytes (or a close) that should come at once.
const DEADLINE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// helpers

/// The proxy listener as `host:port`.
fn proxy_addr(gw: &Gateway) -> String {
    gw.proxy_url().expect("proxy listener").trim_start_matches("http://").to_owned()
}

/// Creates `service` (JSON with a `name`) and `route` on it, and waits until the route's first
/// path is routed.
async fn route(gw: &Gateway, service: Value, route: Value) {
    let admin = gw.admin();
    let name = service["name"].as_str().expect("service name").to_owned();
    expect(&admin.post_json("/services", &service).await, 201, "service");
    expect(&admin.post_json(&format!("/services/{name}/routes"), &route).await, 201, "route");
    let path = route["paths"][0].as_str().expect("a route path");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = gw.proxy().get(path).await;
        if res.status != 404 || !res.text().contains("no Route matched") {
            return;
        }
        assert!(Instant::now() < deadline, "the route {path} never became live");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A gateway with one route `/r` to an echo upstream (`/r/x` reaches the upstream as `/x`).
async fn echo_gateway(builder: turnpike_test::GatewayBuilder) -> (Gateway, Upstream) {
    let up = Upstream::http().start().await;
    let gw = builder.start().await;
    route(&gw, json!({"name": "echo", "url": up.url("http")}), json!({"paths": ["/r"]})).await;
    (gw, up)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A response read off a raw connection.
#[derive(Debug)]
struct RawResp {
    status: u16,
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The body came with `Transfer-Encoding: chunked`.
    chunked: bool,
}

impl RawResp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} {}", self.status_line, self.text()))
    }

    /// `X-Kong-Request-Id`, checked to be 32 lowercase hex digits.
    fn request_id(&self) -> String {
        let rid = self.header("x-kong-request-id").expect("X-Kong-Request-Id").to_owned();
        assert!(
            rid.len() == 32
                && rid.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "request id {rid:?}"
        );
        rid
    }
}

/// Parses the response at the start of `buf`; `None` while incomplete. `eof`: the peer
/// closed, which ends a close-delimited body.
fn parse_response(buf: &[u8], head_request: bool, eof: bool) -> Option<(RawResp, usize)> {
    let end = find(buf, b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end - 4])
        .unwrap_or_else(|_| panic!("response head is not UTF-8: {:?}", &buf[..end]));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_owned();
    assert!(status_line.starts_with("HTTP/1.1 "), "bad status line {status_line:?}");
    let status = status_line[9..]
        .get(..3)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap_or_else(|| panic!("bad header line {l:?}"));
            (k.to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut r = RawResp { status, status_line, headers, body: Vec::new(), chunked: false };
    let rest = &buf[end..];
    if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        return Some((r, end));
    }
    if r.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let (body, used) = dechunk(rest)?;
        r.body = body;
        r.chunked = true;
        return Some((r, end + used));
    }
    if let Some(n) = r.header("content-length") {
        let n: usize = n.parse().expect("Content-Length");
        if rest.len() < n {
            return None;
        }
        r.body = rest[..n].to_vec();
        return Some((r, end + n));
    }
    if !eof {
        return None;
    }
    r.body = rest.to_vec();
    Some((r, buf.len()))
}

/// Decodes a complete chunked body; returns it and the bytes it took.
fn dechunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut b = buf;
    let mut out = Vec::new();
    loop {
        let eol = find(b, b"\r\n")?;
        let line = std::str::from_utf8(&b[..eol]).expect("chunk size line");
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
        b = &b[eol + 2..];
        if size == 0 {
            // trailers, then the empty line
            loop {
                let eol = find(b, b"\r\n")?;
                b = &b[eol + 2..];
                if eol == 0 {
                    return Some((out, buf.len() - b.len()));
                }
            }
        }
        if b.len() < size + 2 {
            return None;
        }
        assert_eq!(&b[size..size + 2], b"\r\n", "chunk data must end with CRLF");
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// A raw client connection to the proxy.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Conn {
    async fn open(gw: &Gateway) -> Self {
        let s = TcpStream::connect(proxy_addr(gw)).await.expect("connect to the proxy");
        Self { s, buf: Vec::new(), eof: false }
    }

    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.s.write_all(bytes.as_ref()).await.expect("write to the proxy");
    }

    /// Reads more bytes; panics when none come within the deadline.
    async fn fill(&mut self) {
        let mut chunk = [0u8; 16384];
        match tokio::time::timeout(DEADLINE, self.s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => self.eof = true,
            Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            Err(_) => panic!(
                "nothing from the gateway within {DEADLINE:?}; so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// The next response on the connection.
    async fn response(&mut self, head_request: bool) -> RawResp {
        loop {
            if let Some((r, used)) = parse_response(&self.buf, head_request, self.eof) {
                self.buf.drain(..used);
                return r;
            }
            assert!(
                !self.eof,
                "the connection closed before a complete response: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.fill().await;
        }
    }

    /// Asserts that the gateway closes the connection without sending anything more.
    async fn assert_closed(&mut self) {
        assert!(
            self.buf.is_empty(),
            "unexpected bytes after the response: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        if self.eof {
            return;
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(DEADLINE, self.s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => self.eof = true,
            Ok(Ok(n)) => {
                panic!(
                    "unexpected bytes instead of a close: {:?}",
                    String::from_utf8_lossy(&chunk[..n])
                )
            }
            Err(_) => panic!("the gateway kept the connection open for {DEADLINE:?}"),
        }
    }
}

/// Sends `request` on a new connection and reads what comes back until the gateway closes;
/// returns the single response and whether the connection was closed.
async fn one_shot(gw: &Gateway, request: &[u8]) -> (RawResp, bool) {
    let (out, closed) = raw_exchange(&proxy_addr(gw), request, DEADLINE).await;
    let (r, used) = parse_response(&out, false, closed)
        .unwrap_or_else(|| panic!("no complete response: {:?}", String::from_utf8_lossy(&out)));
    assert_eq!(
        used,
        out.len(),
        "bytes after the response: {:?}",
        String::from_utf8_lossy(&out[used..])
    );
    (r, closed)
}

/// Kong's error templates (`kong/tools/http.lua`).
#[derive(Clone, Copy, Debug)]
enum Fmt {
    Plain,
    Json,
    Html,
    Xml,
}

impl Fmt {
    fn content_type(self) -> &'static str {
        match self {
            Fmt::Plain => "text/plain; charset=utf-8",
            Fmt::Json => "application/json; charset=utf-8",
            Fmt::Html => "text/html; charset=utf-8",
            Fmt::Xml => "application/xml; charset=utf-8",
        }
    }

    fn body(self, message: &str, rid: &str) -> String {
        match self {
            Fmt::Plain => format!("{message}\nrequest_id: {rid}\n"),
            Fmt::Json => format!("{{\n  \"message\":\"{message}\",\n  \"request_id\":\"{rid}\"\n}}"),
            Fmt::Html => format!(
                "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    <p>{message}.</p>\n    <p>request_id: {rid}</p>\n  </body>\n</html>\n"
            ),
            Fmt::Xml => format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>{message}</message>\n  <requestid>{rid}</requestid>\n</error>\n"
            ),
        }
    }
}

/// Asserts a raw response is Kong's error `message` in `fmt`, with the request id of its
/// `X-Kong-Request-Id`.
#[track_caller]
fn assert_kong_error(r: &RawResp, case: &str, status_line: &str, fmt: Fmt, message: &str) {
    assert_eq!(r.status_line, status_line, "{case}: {}", r.text());
    let rid = r.request_id();
    assert_eq!(r.header("content-type"), Some(fmt.content_type()), "{case}");
    assert_eq!(r.text(), fmt.body(message, &rid), "{case}");
}

/// The same for a response read by the hyper client.
#[track_caller]
fn assert_kong_error_resp(
    r: &turnpike_test::Resp,
    case: &str,
    status: u16,
    fmt: Fmt,
    message: &str,
) {
    assert_eq!(r.status, status, "{case}: {}", r.text());
    let rid = r.header("x-kong-request-id").expect("X-Kong-Request-Id");
    assert_eq!(rid.len(), 32, "{case}: request id {rid:?}");
    assert_eq!(r.header("content-type").as_deref(), Some(fmt.content_type()), "{case}");
    assert_eq!(r.text(), fmt.body(message, &rid), "{case}");
}

/// `n` bytes of printable text.
fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// `body` in the chunked coding, in chunks of `size`.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A field of `/proc/<pid>/status`, in KiB.
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

// ---------------------------------------------------------------------------------------------
// 1. strict request parsing

/// Heads nginx refuses with 400 before routing; the body is the `error_default_type` template
/// and the connection is closed.
const BAD_HEADS: &[(&str, &[u8])] = &[
    (
        "Content-Length with Transfer-Encoding",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "duplicate Content-Length",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    ),
    ("Content-Length +5", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello"),
    ("Content-Length 5a", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\nhello"),
    ("obs-fold continuation", b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n"),
    ("whitespace before the colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-Space : a\r\n\r\n"),
    ("control character in a value", b"GET / HTTP/1.1\r\nHost: a\r\nX-Ctl: a\x01b\r\n\r\n"),
    ("NUL in a value", b"GET / HTTP/1.1\r\nHost: a\r\nX-Ctl: a\x00b\r\n\r\n"),
    ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"),
    ("lowercase method", b"get / HTTP/1.1\r\nHost: a\r\n\r\n"),
    (
        "Transfer-Encoding in HTTP/1.0",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
];

#[tokio::test]
async fn malformed_heads_get_400_and_a_closed_connection() {
    let gw = Gateway::builder().start().await;
    for (case, request) in BAD_HEADS {
        let (r, closed) = one_shot(&gw, request).await;
        assert_kong_error(&r, case, "HTTP/1.1 400 Bad Request", Fmt::Plain, "Bad request");
        assert!(closed, "{case}: the connection must be closed after a 400");
    }
}

/// Refusals with other statuses, each with its message, all closing the connection.
#[tokio::test]
async fn oversized_and_unsupported_heads_get_kongs_statuses() {
    let gw = Gateway::builder().start().await;
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
    let long_header =
        format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "b".repeat(10 * 1024));
    let cases: &[(&str, &[u8], &str, &str)] = &[
        (
            "TRACE",
            b"TRACE / HTTP/1.1\r\nHost: a\r\n\r\n",
            "HTTP/1.1 405 Not Allowed",
            "Method not allowed",
        ),
        (
            "request line over 8 KB",
            long_line.as_bytes(),
            "HTTP/1.1 414 Request-URI Too Large",
            "URI too long",
        ),
        (
            "header line over 8 KB (494 answered as 400)",
            long_header.as_bytes(),
            "HTTP/1.1 400 Bad Request",
            "Request header or cookie too large",
        ),
    ];
    for (case, request, status_line, message) in cases {
        let (r, closed) = one_shot(&gw, request).await;
        assert_kong_error(&r, case, status_line, Fmt::Plain, message);
        assert!(closed, "{case}: the connection must be closed");
    }

    let (r, closed) = one_shot(
        &gw,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(r.status_line, "HTTP/1.1 501 Not Implemented", "{}", r.text());
    assert!(closed, "an unsupported Transfer-Encoding closes the connection");
}

/// 501 is not in Kong's `error_page` list (nginx_kong.lua:103-105), so nginx answers with its
/// own page (research §2.3, §4.4), not with Kong's template.
#[tokio::test]
async fn an_unsupported_transfer_encoding_gets_nginxs_own_501_page() {
    let gw = Gateway::builder().start().await;
    let (r, closed) = one_shot(
        &gw,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(r.status_line, "HTTP/1.1 501 Not Implemented");
    assert!(closed);
    assert!(
        r.header("content-type").is_some_and(|ct| ct.starts_with("text/html")),
        "{:?}",
        r.headers
    );
    let body = r.text();
    assert!(body.contains("<head><title>501 Not Implemented</title></head>"), "{body}");
    assert!(body.contains("<center><h1>501 Not Implemented</h1></center>"), "{body}");
    assert!(!body.contains("request_id"), "{body}");
}

#[tokio::test]
async fn a_bad_chunk_size_is_400_after_routing() {
    let (gw, up) = echo_gateway(Gateway::builder()).await;
    let before = up.connections();
    let (r, closed) = one_shot(
        &gw,
        b"POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_kong_error(&r, "bad chunk size", "HTTP/1.1 400 Bad Request", Fmt::Plain, "Bad request");
    assert!(closed, "the connection must be closed after a bad body");
    assert_eq!(
        up.connections(),
        before,
        "a buffered request body is refused before going upstream"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. keep-alive

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let (gw, _up) = echo_gateway(Gateway::builder()).await;
    let mut c = Conn::open(&gw).await;
    c.send("GET /r/one HTTP/1.1\r\nHost: a\r\n\r\nGET /r/two HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let first = c.response(false).await;
    let second = c.response(false).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json()["path"], "/one");
    assert_eq!(first.header("connection"), Some("keep-alive"));
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.json()["path"], "/two");
    assert_ne!(first.request_id(), second.request_id());
    // the connection goes on
    c.send("GET /r/three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    assert_eq!(c.response(false).await.json()["path"], "/three");
    c.assert_closed().await;
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let (gw, _up) = echo_gateway(Gateway::builder()).await;
    let mut c = Conn::open(&gw).await;
    c.send("GET /r HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    c.assert_closed().await;
}

#[tokio::test]
async fn http10_closes_unless_keep_alive_is_asked_for() {
    let (gw, _up) = echo_gateway(Gateway::builder()).await;

    let mut c = Conn::open(&gw).await;
    c.send("GET /r HTTP/1.0\r\nHost: a\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["path"], "/");
    assert_eq!(r.header("connection"), Some("close"));
    c.assert_closed().await;

    let mut c = Conn::open(&gw).await;
    c.send("GET /r/one HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("connection"), Some("keep-alive"));
    // the same connection serves another request
    c.send("GET /r/two HTTP/1.0\r\nHost: a\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.json()["path"], "/two");
    c.assert_closed().await;
}

#[tokio::test]
async fn a_head_that_does_not_arrive_in_time_is_dropped_without_a_response() {
    let gw = Gateway::builder().conf("nginx_http_client_header_timeout", "1s").start().await;
    let mut c = Conn::open(&gw).await;
    c.send("GET / HTTP/1.1\r\nHost: a\r\n").await;
    // nginx terminates the request on client_header_timeout: no 408 is sent
    c.assert_closed().await;
}

// ---------------------------------------------------------------------------------------------
// 3. bodies

#[tokio::test]
async fn request_bodies_reach_the_upstream_intact() {
    let (gw, _up) = echo_gateway(Gateway::builder()).await;

    // Content-Length
    let res =
        gw.proxy().request("POST", "/r", &[("content-type", "text/plain")], "hello world").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = res.json();
    assert_eq!(seen["body"], "hello world");
    assert_eq!(seen["headers"]["content-length"], "11");

    // small chunked body: buffered, sent with a length
    let mut c = Conn::open(&gw).await;
    c.send(b"POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json();
    assert_eq!(seen["body"], "hello world");
    assert_eq!(seen["headers"]["content-length"], "11", "{seen}");
    assert!(seen["headers"]["transfer-encoding"].is_null(), "{seen}");

    // chunked body larger than client_body_buffer_size (8k): streamed chunked
    let big = payload(20_000);
    let mut request = b"POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    request.extend_from_slice(&chunked(&big, 1000));
    c.send(&request).await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json();
    assert_eq!(seen["body_len"], 20_000);
    assert_eq!(seen["body"].as_str().map(str::as_bytes), Some(&big[..]));
    assert_eq!(seen["headers"]["transfer-encoding"], "chunked", "{}", seen["headers"]);
    assert!(seen["headers"]["content-length"].is_null(), "{}", seen["headers"]);
}

#[tokio::test]
async fn an_unbuffered_route_streams_the_body_chunked() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    route(
        &gw,
        json!({"name": "echo", "url": up.url("http")}),
        json!({"paths": ["/u"], "request_buffering": false}),
    )
    .await;
    let mut c = Conn::open(&gw).await;
    c.send(b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json();
    assert_eq!(seen["body"], "hello world");
    assert_eq!(seen["headers"]["transfer-encoding"], "chunked", "{}", seen["headers"]);
    assert!(seen["headers"]["content-length"].is_null(), "{}", seen["headers"]);
}

#[tokio::test]
async fn expect_100_continue_gets_an_interim_response() {
    let (gw, _up) = echo_gateway(Gateway::builder()).await;
    let mut c = Conn::open(&gw).await;
    c.send("POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let interim = c.response(false).await;
    assert_eq!(interim.status_line, "HTTP/1.1 100 Continue");
    assert!(c.buf.is_empty(), "nothing after the 100 before the body is sent");
    c.send("hello world").await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json();
    assert_eq!(seen["body"], "hello world");
    assert!(seen["headers"]["expect"].is_null(), "Expect is never forwarded: {}", seen["headers"]);
}

#[tokio::test]
async fn a_body_over_client_max_body_size_is_413_and_closes() {
    let (gw, up) =
        echo_gateway(Gateway::builder().conf("nginx_http_client_max_body_size", "1k")).await;
    let before = up.connections();
    let body = payload(2048);

    let mut request = b"POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 2048\r\n\r\n".to_vec();
    request.extend_from_slice(&body);
    let (r, closed) = one_shot(&gw, &request).await;
    assert_kong_error(
        &r,
        "Content-Length over the limit",
        "HTTP/1.1 413 Request Entity Too Large",
        Fmt::Plain,
        "Payload too large",
    );
    assert!(closed, "a 413 closes the connection");

    let mut request = b"POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    request.extend_from_slice(&chunked(&body, 512));
    let (r, closed) = one_shot(&gw, &request).await;
    assert_kong_error(
        &r,
        "chunked body over the limit",
        "HTTP/1.1 413 Request Entity Too Large",
        Fmt::Plain,
        "Payload too large",
    );
    assert!(closed, "a 413 closes the connection");
    assert_eq!(up.connections(), before, "the upstream is not contacted");

    // a body within the limit passes
    let res = gw.proxy().request("POST", "/r", &[], payload(1024)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["body_len"], 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_streams_through_in_bounded_memory() {
    const TOTAL: u64 = 256 << 20;
    const LIMIT_KIB: u64 = 128 << 10;
    let (gw, _up) = echo_gateway(Gateway::builder()).await;
    let pid = gw.pid().expect("gateway pid");
    let base = proc_status_kib(pid, "VmRSS");

    let upload = async {
        let mut c = Conn::open(&gw).await;
        c.send(format!("POST /r/count HTTP/1.1\r\nHost: a\r\nContent-Length: {TOTAL}\r\n\r\n"))
            .await;
        let chunk = vec![b'u'; 1 << 16];
        let mut sent = 0u64;
        let mut peak = base;
        while sent < TOTAL {
            c.send(&chunk).await;
            sent += chunk.len() as u64;
            if sent % (8 << 20) == 0 {
                peak = peak.max(proc_status_kib(pid, "VmRSS"));
            }
        }
        (c.response(false).await, peak)
    };
    let (r, peak) = tokio::time::timeout(Duration::from_secs(600), upload)
        .await
        .expect("the upload did not finish within 10 minutes");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["count"], TOTAL);
    // the high-water mark covers every moment of the upload
    let peak = peak.max(proc_status_kib(pid, "VmHWM"));
    assert!(
        peak.saturating_sub(base) < LIMIT_KIB,
        "the gateway grew by {} MiB during a {} MiB upload",
        peak.saturating_sub(base) >> 10,
        TOTAL >> 20
    );
}

#[tokio::test]
async fn response_bodies_keep_their_framing() {
    let (gw, _up) = echo_gateway(Gateway::builder()).await;

    let res = gw.proxy().get("/r/bytes/5000000").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-length").as_deref(), Some("5000000"));
    assert!(res.header("transfer-encoding").is_none());
    assert_eq!(res.body.len(), 5_000_000);
    assert!(res.body.iter().all(|&b| b == b'x'));

    // unknown length: chunked to an HTTP/1.1 client
    let mut c = Conn::open(&gw).await;
    c.send("GET /r/stream/5 HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200);
    assert!(r.chunked, "{:?}", r.headers);
    assert!(r.header("content-length").is_none());
    assert_eq!(r.text(), "chunk\n".repeat(5));

    // ... and close-delimited to an HTTP/1.0 client
    let mut c = Conn::open(&gw).await;
    c.send("GET /r/stream/5 HTTP/1.0\r\nHost: a\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.status, 200);
    assert!(r.header("transfer-encoding").is_none(), "{:?}", r.headers);
    assert!(r.header("content-length").is_none(), "{:?}", r.headers);
    assert!(c.eof, "a close-delimited body ends with the connection");
    assert_eq!(r.text(), "chunk\n".repeat(5));
}

#[tokio::test]
async fn head_gets_no_body() {
    let (gw, _up) = echo_gateway(Gateway::builder()).await;
    let mut c = Conn::open(&gw).await;
    // the GET's response must follow the HEAD's head immediately
    c.send(
        "HEAD /r/bytes/100 HTTP/1.1\r\nHost: a\r\n\r\nGET /r/after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    let head = c.response(true).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("100"));
    let next = c.response(false).await;
    assert_eq!(next.status, 200, "{}", next.text());
    assert_eq!(next.json()["path"], "/after");
    c.assert_closed().await;
}

// ---------------------------------------------------------------------------------------------
// 4. upstream failures

#[tokio::test]
async fn a_refused_connection_is_502() {
    let gw = Gateway::builder().start().await;
    let url = format!("http://127.0.0.1:{}", closed_port());
    route(&gw, json!({"name": "down", "url": url}), json!({"paths": ["/down"]})).await;
    let res = gw.proxy().get("/down").await;
    assert_kong_error_resp(
        &res,
        "refused",
        502,
        Fmt::Plain,
        "An invalid response was received from the upstream server",
    );
}

#[tokio::test]
async fn an_invalid_status_line_is_502_and_not_retried() {
    let up = Upstream::raw(b"HTTP/1.1 2x0 NOPE\r\n\r\n").start().await;
    let gw = Gateway::builder().start().await;
    route(&gw, json!({"name": "bad", "url": up.url("http")}), json!({"paths": ["/bad"]})).await;
    let before = up.connections();
    let res = gw.proxy().get("/bad").await;
    assert_kong_error_resp(
        &res,
        "invalid status line",
        502,
        Fmt::Plain,
        "An invalid response was received from the upstream server",
    );
    assert_eq!(up.connections() - before, 1, "invalid_header is not in proxy_next_upstream");
}

#[tokio::test]
async fn a_read_timeout_is_504() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    route(
        &gw,
        json!({"name": "slow", "url": up.url("http"), "read_timeout": 200, "retries": 1}),
        json!({"paths": ["/slow"]}),
    )
    .await;
    let res = gw.proxy().get("/slow/delay/2000").await;
    assert_kong_error_resp(
        &res,
        "read timeout",
        504,
        Fmt::Plain,
        "The upstream server is timing out",
    );
}

#[tokio::test]
async fn an_unresolvable_host_is_kongs_503() {
    let gw = Gateway::builder().start().await;
    route(
        &gw,
        json!({"name": "nx", "url": "http://no-such-host.invalid"}),
        json!({"paths": ["/nx"]}),
    )
    .await;
    let res = gw.proxy().get("/nx").await;
    // a Kong error (kong.response.error): JSON without Accept, whatever error_default_type says
    assert_kong_error_resp(&res, "NXDOMAIN", 503, Fmt::Json, "name resolution failed");
    let res = gw.proxy().request("GET", "/nx", &[("accept", "text/html")], "").await;
    assert_kong_error_resp(&res, "NXDOMAIN, Accept html", 503, Fmt::Html, "name resolution failed");
}

/// A route to an upstream that accepts and closes without answering, with `retries`.
async fn silent_upstream(retries: u32) -> (Gateway, Upstream) {
    let up = Upstream::raw(b"").start().await;
    let gw = Gateway::builder().start().await;
    route(
        &gw,
        json!({"name": "silent", "url": up.url("http"), "retries": retries}),
        json!({"paths": ["/silent"]}),
    )
    .await;
    (gw, up)
}

const BAD_GATEWAY: &str = "An invalid response was received from the upstream server";

#[tokio::test]
async fn a_get_is_tried_retries_plus_one_times() {
    let (gw, up) = silent_upstream(2).await;
    let before = up.connections();
    let res = gw.proxy().get("/silent").await;
    assert_kong_error_resp(&res, "retries = 2", 502, Fmt::Plain, BAD_GATEWAY);
    assert_eq!(up.connections() - before, 3, "retries = 2: three tries");
}

#[tokio::test]
async fn a_post_is_not_retried_once_sent() {
    let (gw, up) = silent_upstream(2).await;
    let before = up.connections();
    let res = gw.proxy().request("POST", "/silent", &[], "data").await;
    assert_kong_error_resp(&res, "POST", 502, Fmt::Plain, BAD_GATEWAY);
    assert_eq!(up.connections() - before, 1, "POST is not idempotent");
}

#[tokio::test]
async fn zero_retries_is_one_try() {
    let (gw, up) = silent_upstream(0).await;
    let before = up.connections();
    let res = gw.proxy().get("/silent").await;
    assert_kong_error_resp(&res, "retries = 0", 502, Fmt::Plain, BAD_GATEWAY);
    assert_eq!(up.connections() - before, 1);
}

// ---------------------------------------------------------------------------------------------
// 5. error negotiation for nginx-level errors

#[tokio::test]
async fn nginx_errors_negotiate_their_format() {
    let gw = Gateway::builder().start().await;
    let url = format!("http://127.0.0.1:{}", closed_port());
    route(&gw, json!({"name": "down", "url": url, "retries": 0}), json!({"paths": ["/down"]}))
        .await;
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Fmt);
    let cases: &[Case<'_>] = &[
        ("no Accept", &[], Fmt::Plain),
        ("Accept json", &[("accept", "application/json")], Fmt::Json),
        ("Accept html", &[("accept", "text/html")], Fmt::Html),
        ("Accept xml", &[("accept", "application/xml")], Fmt::Xml),
        (
            "q-values",
            &[("accept", "text/plain;q=0.7,application/json;q=0.8,text/html;q=0.5")],
            Fmt::Json,
        ),
        ("Content-Type json, no Accept", &[("content-type", "application/json")], Fmt::Json),
        (
            "Accept wins over Content-Type",
            &[("content-type", "application/json"), ("accept", "application/xml")],
            Fmt::Xml,
        ),
    ];
    for (case, headers, fmt) in cases {
        let res = gw.proxy().request("GET", "/down", headers, "").await;
        assert_kong_error_resp(&res, case, 502, *fmt, BAD_GATEWAY);
    }
}

#[tokio::test]
async fn error_default_type_applies_without_accept() {
    let gw = Gateway::builder().conf("error_default_type", "text/html").start().await;
    let url = format!("http://127.0.0.1:{}", closed_port());
    route(&gw, json!({"name": "down", "url": url, "retries": 0}), json!({"paths": ["/down"]}))
        .await;
    let res = gw.proxy().get("/down").await;
    assert_kong_error_resp(&res, "502, no Accept", 502, Fmt::Html, BAD_GATEWAY);
    let res = gw.proxy().request("GET", "/down", &[("accept", "application/json")], "").await;
    assert_kong_error_resp(&res, "502, Accept json", 502, Fmt::Json, BAD_GATEWAY);

    // a head that cannot be parsed has no Accept: the default type decides
    let (r, closed) = one_shot(&gw, b"get / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_kong_error(&r, "malformed head", "HTTP/1.1 400 Bad Request", Fmt::Html, "Bad request");
    assert!(closed);

    // Kong's own errors are JSON without Accept, whatever the default type
    let res = gw.proxy().get("/nothing-here").await;
    assert_kong_error_resp(&res, "no route", 404, Fmt::Json, "no Route matched with those values");
}
