//! Kong's header rules end to end: what a real upstream receives (hop-by-hop headers, `Host`,
//! `Via`, `X-Forwarded-*`, `X-Real-IP`, `X-Kong-Request-Id`), what the client gets back
//! (`Server`, `Date`, `Via`, latency headers, the request id, hop-by-hop removal, the charset
//! nginx adds), how the `headers`, `headers_upstream`, `trusted_ips` and `real_ip_*` settings
//! change that, and the same for HTTP/1.0 and HTTP/2 clients.
//!
//! The expected values are Kong's (docs/research/kong-proxy-behaviour.md §2.4, §2.9, §3.2,
//! §3.5-§3.7, §3.10-§3.14, §5; Kong's 03-upstream_headers, 14-server_tokens, 15-upstream-status,
//! 33-request-id and 35-via specs), with `turnpike/<version>` where Kong says `kong/<version>`.

use std::net::Ipv4Addr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use turnpike_test::net::h2_requests;
use turnpike_test::{expect, raw_exchange, route_to, until_routed, Gateway, Resp, Upstream};

/// What the gateway calls itself in `Server` and `Via` (Kong: `kong/<version>`).
fn token() -> String {
    format!("turnpike/{}", env!("CARGO_PKG_VERSION"))
}

/// A gateway with these settings (`kong.conf` keys).
async fn gateway(conf: &[(&str, &str)]) -> Gateway {
    let mut b = Gateway::builder();
    for (k, v) in conf {
        b = b.conf(k, v);
    }
    b.start().await
}

/// A gateway with a route `/<name>` to the echo upstream `up` (strip_path on), live.
async fn echo_gateway(conf: &[(&str, &str)], up: &Upstream, name: &str) -> Gateway {
    let gw = gateway(conf).await;
    route_to(&gw, name, &up.url("http"), json!({"paths": [format!("/{name}")]})).await;
    until_routed(&gw, &format!("/{name}")).await;
    gw
}

/// Sends a request through the proxy and returns the response and what the upstream saw.
async fn through(
    gw: &Gateway,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (Resp, Value) {
    let res = gw.proxy().request(method, path, headers, "").await;
    assert_eq!(res.status, 200, "{method} {path}: {}", res.text());
    let seen = res.json();
    (res, seen)
}

/// One request header as the upstream received it (`Null` when absent; an array when
/// repeated).
fn up<'a>(seen: &'a Value, name: &str) -> &'a Value {
    &seen["headers"][name]
}

/// The proxy listener's port (`X-Forwarded-Port`).
fn proxy_port(gw: &Gateway) -> String {
    let url = gw.proxy_url().expect("proxy listener");
    url.rsplit(':').next().expect("a port").to_owned()
}

fn is_request_id(v: &str) -> bool {
    v.len() == 32 && v.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_number(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// Every header the gateway adds to responses on its own (with the upstream sending none
/// of them).
const OURS: [&str; 7] = [
    "server",
    "via",
    "x-kong-upstream-latency",
    "x-kong-proxy-latency",
    "x-kong-response-latency",
    "x-kong-request-id",
    "x-kong-upstream-status",
];

/// Asserts which of [`OURS`] a response carries.
#[track_caller]
fn assert_ours(res: &Resp, present: &[&str], case: &str) {
    for h in OURS {
        assert_eq!(
            res.header(h).is_some(),
            present.contains(&h),
            "{case}: {h} {} expected; headers {:?}",
            if present.contains(&h) { "is" } else { "is not" },
            res.headers
        );
    }
}

/// A raw HTTP/1 response: status, headers in order, body.
struct RawResp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResp {
    fn parse(bytes: &[u8]) -> Self {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Self { status, headers, body: bytes[end + 4..].to_vec() }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

// ---- 1. upstream request headers -----------------------------------------------------------

#[tokio::test]
async fn hop_by_hop_request_headers_are_not_forwarded() {
    let upstream = Upstream::http().start().await;
    let gw = echo_gateway(&[], &upstream, "hop").await;

    let headers = [
        ("connection", "keep-alive, X-Foo, X-Bar"),
        ("keep-alive", "timeout=5, max=1000"),
        ("proxy", "Remove-Me"),
        ("proxy-connection", "close"),
        ("proxy-authenticate", "Basic"),
        ("proxy-authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
        ("te", "trailers, deflate;q=0.5"),
        ("upgrade", "example/1, foo/2"),
        ("expect", "100-continue"),
        ("x-foo", "Remove-Me"),
        ("x-bar", "Remove-Me"),
        ("x-foo-bar", "Keep-Me"),
        ("close", "Keep-Me"),
    ];
    let gone = ["keep-alive", "proxy", "proxy-connection", "upgrade", "expect", "x-foo", "x-bar"];

    // control: sent straight to the upstream, every one of them arrives
    let direct = turnpike_test::Client::new(&upstream.url("http"));
    let res = direct.request("POST", "/hop", &headers, "hello").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = res.json();
    for h in gone {
        assert!(!up(&seen, h).is_null(), "control: the client did not send {h}");
    }

    let res = gw.proxy().request("POST", "/hop", &headers, "hello").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = res.json();
    for h in gone {
        assert!(up(&seen, h).is_null(), "{h} reached the upstream: {}", seen["headers"]);
    }
    assert_eq!(up(&seen, "proxy-authenticate"), "Basic");
    assert_eq!(up(&seen, "proxy-authorization"), "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
    assert_eq!(up(&seen, "te"), "trailers", "only the trailers token of TE goes upstream");
    assert_eq!(up(&seen, "x-foo-bar"), "Keep-Me");
    assert_eq!(up(&seen, "close"), "Keep-Me");
    assert_eq!(up(&seen, "connection"), "keep-alive");
    assert_eq!(seen["body"], "hello", "the body still goes upstream");

    // a TE without `trailers` is not sent at all
    let (_, seen) = through(&gw, "GET", "/hop", &[("te", "deflate;q=0.5, gzip")]).await;
    assert!(up(&seen, "te").is_null(), "{}", seen["headers"]);
    assert_eq!(up(&seen, "connection"), "keep-alive");

    // a WebSocket upgrade request keeps Upgrade and gets `keep-alive, Upgrade`
    let (_, seen) = through(
        &gw,
        "GET",
        "/hop",
        &[("connection", "keep-alive, Upgrade"), ("upgrade", "websocket")],
    )
    .await;
    assert_eq!(up(&seen, "connection"), "keep-alive, Upgrade");
    assert_eq!(up(&seen, "upgrade"), "websocket");
}

#[tokio::test]
async fn upstream_host_is_the_service_host_unless_preserve_host() {
    let upstream = Upstream::http().start().await;
    let gw = gateway(&[]).await;
    route_to(&gw, "plain", &upstream.url("http"), json!({"paths": ["/plain"]})).await;
    route_to(
        &gw,
        "kept",
        &upstream.url("http"),
        json!({"paths": ["/kept"], "preserve_host": true}),
    )
    .await;
    until_routed(&gw, "/plain").await;
    until_routed(&gw, "/kept").await;

    let (_, seen) = through(&gw, "GET", "/plain", &[("host", "client.test")]).await;
    assert_eq!(up(&seen, "host"), format!("127.0.0.1:{}", upstream.port()).as_str());

    // the client's Host as sent, port and case included
    let (_, seen) = through(&gw, "GET", "/kept", &[("host", "Preserved.Test:8123")]).await;
    assert_eq!(up(&seen, "host"), "Preserved.Test:8123");
    assert_eq!(up(&seen, "x-forwarded-host"), "preserved.test");
}

/// An upstream on port 80 of a loopback address of its own; answers every request with the
/// request head it received (as text) and closes. `None` when port 80 cannot be bound here.
async fn head_echo_on_port_80() -> Option<(Ipv4Addr, tokio::task::JoinHandle<()>)> {
    let seed = std::process::id();
    for i in 0..32u32 {
        let n = seed.wrapping_mul(2_654_435_761).wrapping_add(i.wrapping_mul(40_503));
        let ip =
            Ipv4Addr::new(127, 100 + (n % 100) as u8, (n >> 8) as u8, 1 + (n >> 16) as u8 % 250);
        let listener = match TcpListener::bind((ip, 80)).await {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return None,
            Err(_) => continue,
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else { continue };
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        head.len()
                    );
                    let _ = tcp.write_all(answer.as_bytes()).await;
                    let _ = tcp.write_all(&head).await;
                    let _ = tcp.shutdown().await;
                });
            }
        });
        return Some((ip, task));
    }
    None
}

#[tokio::test]
async fn upstream_host_has_no_port_80_for_http() {
    let Some((ip, task)) = head_echo_on_port_80().await else {
        eprintln!("port 80 cannot be bound here (not root?): nothing to check");
        return;
    };
    let gw = gateway(&[]).await;
    route_to(&gw, "port80", &format!("http://{ip}"), json!({"paths": ["/port80"]})).await;
    until_routed(&gw, "/port80").await;
    let res = gw.proxy().get("/port80").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let head = res.text();
    let hosts: Vec<&str> = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.trim())
        .collect();
    assert_eq!(hosts, [ip.to_string()], "no :80 in Host; upstream saw {head:?}");
    task.abort();
}

#[tokio::test]
async fn upstream_host_of_an_upstream_entity_is_the_target() {
    let upstream = Upstream::http().start().await;
    let target = format!("127.0.0.1:{}", upstream.port());
    let gw = gateway(&[]).await;
    let admin = gw.admin();
    expect(&admin.post_json("/upstreams", &json!({"name": "targets.test"})).await, 201, "up");
    let res = admin.post_json("/upstreams/targets.test/targets", &json!({"target": target})).await;
    expect(&res, 201, "target");
    let res = admin
        .post_json("/upstreams", &json!({"name": "named.test", "host_header": "foo.test"}))
        .await;
    expect(&res, 201, "upstream with host_header");
    let res = admin.post_json("/upstreams/named.test/targets", &json!({"target": target})).await;
    expect(&res, 201, "target");
    route_to(&gw, "ups", "http://targets.test", json!({"paths": ["/ups"]})).await;
    route_to(&gw, "named", "http://named.test", json!({"paths": ["/named"]})).await;
    until_routed(&gw, "/ups").await;
    until_routed(&gw, "/named").await;

    // balancer/init.lua: the target's hostname, with the target's port (not 80)
    let (_, plain) = through(&gw, "GET", "/ups", &[]).await;
    let (_, named) = through(&gw, "GET", "/named", &[]).await;
    assert_eq!(
        (up(&plain, "host"), up(&named, "host")),
        (&json!(target), &json!(format!("foo.test:{}", upstream.port()))),
        "(Host without host_header, Host with host_header = foo.test)"
    );
}

// ---- 2. X-Forwarded-* and X-Real-IP ---------------------------------------------------------

/// Forwarding headers a client might send to fool the upstream.
const SPOOFED: [(&str, &str); 7] = [
    ("x-real-ip", "10.0.0.1"),
    ("x-forwarded-for", "10.0.0.1"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "example.test"),
    ("x-forwarded-port", "80"),
    ("x-forwarded-path", "/original-path"),
    ("x-forwarded-prefix", "/preserved"),
];

fn with_host<'a>(host: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("host", host)];
    h.extend_from_slice(extra);
    h
}

#[tokio::test]
async fn forwarded_headers_are_computed_for_an_untrusted_client() {
    let upstream = Upstream::http().start().await;
    let gw = echo_gateway(&[], &upstream, "xf").await;
    let port = proxy_port(&gw);

    // nothing sent: everything computed
    let (_, seen) =
        through(&gw, "GET", "/xf/Some%20Path?q=1&r", &[("host", "Headers-Inspect.TEST:1234")])
            .await;
    assert_eq!(up(&seen, "x-real-ip"), "127.0.0.1");
    assert_eq!(up(&seen, "x-forwarded-for"), "127.0.0.1");
    assert_eq!(up(&seen, "x-forwarded-proto"), "http");
    assert_eq!(up(&seen, "x-forwarded-host"), "headers-inspect.test", "lowercased, no port");
    assert_eq!(up(&seen, "x-forwarded-port"), port.as_str());
    assert_eq!(up(&seen, "x-forwarded-path"), "/xf/Some%20Path", "raw path, no query");
    assert_eq!(up(&seen, "x-forwarded-prefix"), "/xf");
    // the path as received, not normalised
    let (_, seen) = through(&gw, "GET", "/xf/a%2Fb/../c?q", &[]).await;
    assert_eq!(up(&seen, "x-forwarded-path"), "/xf/a%2Fb/../c");

    // sent by an untrusted client: replaced, except X-Forwarded-For which is appended to
    let (_, seen) =
        through(&gw, "GET", "/xf/a?b=c", &with_host("headers-inspect.test", &SPOOFED)).await;
    assert_eq!(up(&seen, "x-real-ip"), "127.0.0.1");
    assert_eq!(up(&seen, "x-forwarded-for"), "10.0.0.1, 127.0.0.1");
    assert_eq!(up(&seen, "x-forwarded-proto"), "http");
    assert_eq!(up(&seen, "x-forwarded-host"), "headers-inspect.test");
    assert_eq!(up(&seen, "x-forwarded-port"), port.as_str());
    assert_eq!(up(&seen, "x-forwarded-path"), "/xf/a");
    assert_eq!(up(&seen, "x-forwarded-prefix"), "/xf");
}

#[tokio::test]
async fn forwarded_prefix_only_when_a_prefix_is_stripped() {
    let upstream = Upstream::http().start().await;
    let gw = gateway(&[]).await;
    let url = upstream.url("http");
    route_to(&gw, "stripped", &url, json!({"paths": ["/foo"]})).await;
    route_to(&gw, "unstripped", &url, json!({"paths": ["/status"], "strip_path": false})).await;
    route_to(&gw, "root", &url, json!({"paths": ["/"]})).await;
    until_routed(&gw, "/foo").await;
    until_routed(&gw, "/status/200").await;
    until_routed(&gw, "/").await;

    let (_, seen) = through(&gw, "GET", "/foo/status/200", &[]).await;
    assert_eq!(up(&seen, "x-forwarded-prefix"), "/foo");
    assert_eq!(seen["path"], "/status/200");
    let (_, seen) = through(&gw, "GET", "/foo", &[("x-forwarded-prefix", "/replaced")]).await;
    assert_eq!(up(&seen, "x-forwarded-prefix"), "/foo");
    // nothing stripped, or only `/`: no header, and an untrusted client's one is dropped
    let (_, seen) = through(&gw, "GET", "/status/200", &[("x-forwarded-prefix", "/spoof")]).await;
    assert!(up(&seen, "x-forwarded-prefix").is_null(), "{}", seen["headers"]);
    let (_, seen) = through(&gw, "GET", "/", &[("x-forwarded-prefix", "/spoof")]).await;
    assert!(up(&seen, "x-forwarded-prefix").is_null(), "{}", seen["headers"]);
    assert_eq!(up(&seen, "x-forwarded-path"), "/");
}

/// With `trusted_ips` covering the client, its forwarding headers are passed on as they are.
async fn trusted_client_is_believed(trusted_ips: &str) {
    let upstream = Upstream::http().start().await;
    let gw = gateway(&[("trusted_ips", trusted_ips)]).await;
    let url = upstream.url("http");
    route_to(&gw, "stripped", &url, json!({"paths": ["/foo"]})).await;
    route_to(&gw, "unstripped", &url, json!({"paths": ["/status"], "strip_path": false})).await;
    until_routed(&gw, "/foo").await;
    until_routed(&gw, "/status/200").await;
    let port = proxy_port(&gw);

    let (_, seen) = through(&gw, "GET", "/foo/x", &[("host", "headers-inspect.test")]).await;
    assert_eq!(up(&seen, "x-real-ip"), "127.0.0.1", "{trusted_ips}");
    assert_eq!(up(&seen, "x-forwarded-for"), "127.0.0.1", "{trusted_ips}");
    assert_eq!(up(&seen, "x-forwarded-proto"), "http", "{trusted_ips}");
    assert_eq!(up(&seen, "x-forwarded-host"), "headers-inspect.test", "{trusted_ips}");
    assert_eq!(up(&seen, "x-forwarded-port"), port.as_str(), "{trusted_ips}");
    assert_eq!(up(&seen, "x-forwarded-path"), "/foo/x", "{trusted_ips}");
    assert_eq!(up(&seen, "x-forwarded-prefix"), "/foo", "{trusted_ips}");

    for path in ["/foo/status/200", "/status/200"] {
        let (_, seen) =
            through(&gw, "GET", path, &with_host("headers-inspect.test", &SPOOFED)).await;
        let case = format!("{trusted_ips} {path}");
        assert_eq!(up(&seen, "x-real-ip"), "10.0.0.1", "{case}");
        assert_eq!(up(&seen, "x-forwarded-for"), "10.0.0.1, 127.0.0.1", "{case}");
        assert_eq!(up(&seen, "x-forwarded-proto"), "https", "{case}");
        assert_eq!(up(&seen, "x-forwarded-host"), "example.test", "{case}");
        assert_eq!(up(&seen, "x-forwarded-port"), "80", "{case}");
        assert_eq!(up(&seen, "x-forwarded-path"), "/original-path", "{case}");
        assert_eq!(up(&seen, "x-forwarded-prefix"), "/preserved", "{case}");
    }

    // X-Forwarded-For, when absent, is the client address after realip (a trusted X-Real-IP)
    let (_, seen) = through(&gw, "GET", "/foo", &[("x-real-ip", "10.0.0.7")]).await;
    assert_eq!(up(&seen, "x-real-ip"), "10.0.0.7", "{trusted_ips}");
    assert_eq!(up(&seen, "x-forwarded-for"), "10.0.0.7", "{trusted_ips}");
}

#[tokio::test]
async fn trusted_client_forwarded_headers_pass_through() {
    trusted_client_is_believed("127.0.0.1").await;
}

#[tokio::test]
async fn trusting_every_address_passes_forwarded_headers_through() {
    trusted_client_is_believed("0.0.0.0/0,::/0").await;
}

#[tokio::test]
async fn a_client_outside_trusted_ips_is_not_believed() {
    let upstream = Upstream::http().start().await;
    let gw = echo_gateway(&[("trusted_ips", "10.0.0.1")], &upstream, "foo").await;
    let port = proxy_port(&gw);
    let (_, seen) =
        through(&gw, "GET", "/foo/bar", &with_host("headers-inspect.test", &SPOOFED)).await;
    assert_eq!(up(&seen, "x-real-ip"), "127.0.0.1");
    assert_eq!(up(&seen, "x-forwarded-for"), "10.0.0.1, 127.0.0.1");
    assert_eq!(up(&seen, "x-forwarded-proto"), "http");
    assert_eq!(up(&seen, "x-forwarded-host"), "headers-inspect.test");
    assert_eq!(up(&seen, "x-forwarded-port"), port.as_str());
    assert_eq!(up(&seen, "x-forwarded-path"), "/foo/bar");
    assert_eq!(up(&seen, "x-forwarded-prefix"), "/foo");
}

#[tokio::test]
async fn real_ip_from_x_forwarded_for_recursively() {
    let upstream = Upstream::http().start().await;
    let conf = [
        ("real_ip_header", "X-Forwarded-For"),
        ("real_ip_recursive", "on"),
        ("trusted_ips", "127.0.0.1,172.16.0.1,192.168.0.1"),
    ];
    let gw = echo_gateway(&conf, &upstream, "rip").await;

    let (_, seen) = through(&gw, "GET", "/rip", &[]).await;
    assert_eq!(up(&seen, "x-real-ip"), "127.0.0.1");
    assert_eq!(up(&seen, "x-forwarded-for"), "127.0.0.1");

    // the last address that is not trusted, walking the list from the right
    let xff = "127.0.0.1, 10.0.0.1, 192.168.0.1, 127.0.0.1, 172.16.0.1";
    let (_, seen) =
        through(&gw, "GET", "/rip", &[("x-forwarded-for", xff), ("x-real-ip", "10.0.0.2")]).await;
    assert_eq!(up(&seen, "x-real-ip"), "10.0.0.1");
    assert_eq!(up(&seen, "x-forwarded-for"), format!("{xff}, 127.0.0.1").as_str());

    // addresses with ports; a trusted X-Forwarded-Port is kept
    let xff = "127.0.0.1:14, 10.0.0.1:15, 192.168.0.1:16, 127.0.0.1:17, 172.16.0.1:18";
    let (_, seen) = through(
        &gw,
        "GET",
        "/rip",
        &[("x-forwarded-for", xff), ("x-real-ip", "10.0.0.2"), ("x-forwarded-port", "14")],
    )
    .await;
    assert_eq!(up(&seen, "x-real-ip"), "10.0.0.1");
    assert_eq!(up(&seen, "x-forwarded-for"), format!("{xff}, 127.0.0.1").as_str());
    assert_eq!(up(&seen, "x-forwarded-port"), "14");
}

#[tokio::test]
async fn real_ip_from_x_forwarded_for_of_an_untrusted_client() {
    let upstream = Upstream::http().start().await;
    let conf = [
        ("real_ip_header", "X-Forwarded-For"),
        ("real_ip_recursive", "on"),
        ("trusted_ips", "10.0.0.1,172.16.0.1,192.168.0.1"),
    ];
    let gw = echo_gateway(&conf, &upstream, "rip").await;
    let port = proxy_port(&gw);

    let xff = "10.0.0.1, 127.0.0.2, 10.0.0.1, 192.168.0.1, 172.16.0.1";
    let (_, seen) =
        through(&gw, "GET", "/rip", &[("x-forwarded-for", xff), ("x-real-ip", "10.0.0.2")]).await;
    assert_eq!(up(&seen, "x-real-ip"), "127.0.0.1");
    assert_eq!(up(&seen, "x-forwarded-for"), format!("{xff}, 127.0.0.1").as_str());

    let xff = "127.0.0.1:14, 10.0.0.1:15, 192.168.0.1:16, 127.0.0.1:17, 172.16.0.1:18";
    let (_, seen) =
        through(&gw, "GET", "/rip", &[("x-forwarded-for", xff), ("x-forwarded-port", "14")]).await;
    assert_eq!(up(&seen, "x-real-ip"), "127.0.0.1");
    assert_eq!(up(&seen, "x-forwarded-for"), format!("{xff}, 127.0.0.1").as_str());
    assert_eq!(up(&seen, "x-forwarded-port"), port.as_str());
}

// ---- 3. Via -------------------------------------------------------------------------------

#[tokio::test]
async fn via_is_appended_both_ways() {
    let upstream = Upstream::http().start().await;
    let gw = echo_gateway(&[], &upstream, "via").await;
    let token = token();

    let (res, seen) = through(&gw, "GET", "/via", &[]).await;
    assert_eq!(up(&seen, "via"), format!("1.1 {token}").as_str());
    assert_eq!(res.header("via"), Some(format!("1.1 {token}")));

    let (_, seen) = through(&gw, "GET", "/via", &[("via", "1.1 dev")]).await;
    assert_eq!(up(&seen, "via"), format!("1.1 dev, 1.1 {token}").as_str());

    let (res, _) = through(&gw, "GET", "/via/response-headers?via=2%20nginx", &[]).await;
    let vias: Vec<_> = res.headers.get_all("via").iter().collect();
    assert_eq!(vias.len(), 1, "{vias:?}");
    assert_eq!(res.header("via"), Some(format!("2 nginx, 1.1 {token}")));
}

#[tokio::test]
async fn via_of_an_http_1_0_request_says_1() {
    let upstream = Upstream::http().start().await;
    let gw = echo_gateway(&[], &upstream, "via").await;
    let addr = gw.proxy_url().expect("proxy").to_owned();
    let request = b"GET /via HTTP/1.0\r\nHost: one.test\r\nVia: 1.1 dev\r\n\r\n";
    let (bytes, closed) = raw_exchange(&addr, request, Duration::from_secs(10)).await;
    assert!(closed, "an HTTP/1.0 exchange ends with the connection");
    let res = RawResp::parse(&bytes);
    assert_eq!(res.status, 200, "{:?}", String::from_utf8_lossy(&bytes));
    let seen: Value = serde_json::from_slice(&res.body).expect("echo JSON");
    assert_eq!(up(&seen, "via"), format!("1.1 dev, 1 {}", token()).as_str());
    assert_eq!(seen["version"], "HTTP/1.1", "upstream traffic is HTTP/1.1");
    assert_eq!(res.header("via"), Some(format!("1.1 {}", token()).as_str()));
}

// ---- 4. response headers -------------------------------------------------------------------

#[tokio::test]
async fn server_and_date_of_the_upstream_are_kept() {
    let upstream = Upstream::http().start().await;
    let gw = echo_gateway(&[], &upstream, "srv").await;

    let date = "Wed, 21 Oct 2015 07:28:00 GMT";
    let (res, _) = through(
        &gw,
        "GET",
        "/srv/response-headers?server=upstream-srv&date=Wed,%2021%20Oct%202015%2007:28:00%20GMT",
        &[],
    )
    .await;
    let servers: Vec<_> = res.headers.get_all("server").iter().collect();
    assert_eq!(servers, ["upstream-srv"]);
    let dates: Vec<_> = res.headers.get_all("date").iter().collect();
    assert_eq!(dates, [date]);

    // an upstream without Server: the gateway's
    let (res, _) = through(&gw, "GET", "/srv", &[]).await;
    assert_eq!(res.header("server"), Some(token()));
    assert!(res.header("date").is_some());
}

#[tokio::test]
async fn latency_and_request_id_headers_by_default() {
    let upstream = Upstream::http().start().await;
    let gw = echo_gateway(&[], &upstream, "lat").await;

    // proxied
    let (res, seen) = through(&gw, "GET", "/lat", &[]).await;
    assert_ours(
        &res,
        &["server", "via", "x-kong-upstream-latency", "x-kong-proxy-latency", "x-kong-request-id"],
        "proxied",
    );
    assert!(is_number(res.header("x-kong-upstream-latency").as_deref()), "{:?}", res.headers);
    assert!(is_number(res.header("x-kong-proxy-latency").as_deref()), "{:?}", res.headers);
    let rid = res.header("x-kong-request-id").expect("request id");
    assert!(is_request_id(&rid), "{rid}");
    assert_eq!(up(&seen, "x-kong-request-id"), rid.as_str(), "the upstream gets the same id");

    // a client's X-Kong-Request-Id is overridden upstream
    let (res, seen) = through(&gw, "GET", "/lat", &[("x-kong-request-id", "client-made")]).await;
    let rid2 = res.header("x-kong-request-id").expect("request id");
    assert!(is_request_id(&rid2) && rid2 != rid, "a new id per request: {rid} {rid2}");
    assert_eq!(up(&seen, "x-kong-request-id"), rid2.as_str());

    // an upstream error is a proxied response, passed through as it is
    let res = gw.proxy().get("/lat/status/503").await;
    assert_eq!(res.status, 503);
    assert_eq!(res.json()["path"], "/status/503", "the upstream's body, not an error page");
    assert_ours(
        &res,
        &["server", "via", "x-kong-upstream-latency", "x-kong-proxy-latency", "x-kong-request-id"],
        "proxied 503",
    );

    // generated by the gateway (no route)
    let res = gw.proxy().get("/nothing-here").await;
    assert_eq!(res.status, 404);
    assert_ours(&res, &["server", "x-kong-response-latency", "x-kong-request-id"], "404");
    assert_eq!(res.header("server"), Some(token()));
    assert!(is_number(res.header("x-kong-response-latency").as_deref()), "{:?}", res.headers);
    let rid = res.header("x-kong-request-id").expect("request id");
    assert!(is_request_id(&rid), "{rid}");
    assert_eq!(res.json()["request_id"], rid.as_str());
}

#[tokio::test]
async fn headers_off_adds_none() {
    let upstream = Upstream::http().start().await;
    let gw = echo_gateway(&[("headers", "off")], &upstream, "off").await;

    let (res, seen) = through(&gw, "GET", "/off", &[]).await;
    assert_ours(&res, &[], "proxied");
    assert_eq!(
        up(&seen, "via"),
        format!("1.1 {}", token()).as_str(),
        "`headers` is about responses only"
    );
    assert!(is_request_id(up(&seen, "x-kong-request-id").as_str().unwrap_or("")), "{seen}");

    let (res, _) = through(&gw, "GET", "/off/response-headers?server=upstream-srv", &[]).await;
    assert_eq!(res.header("server").as_deref(), Some("upstream-srv"));

    let res = gw.proxy().get("/nothing-here").await;
    assert_eq!(res.status, 404);
    assert_ours(&res, &[], "404");
}

#[tokio::test]
async fn headers_server_tokens_only() {
    let upstream = Upstream::http().start().await;
    let gw = echo_gateway(&[("headers", "server_tokens")], &upstream, "st").await;
    let (res, _) = through(&gw, "GET", "/st", &[]).await;
    assert_ours(&res, &["server", "via"], "proxied");
    assert_eq!(res.header("via"), Some(format!("1.1 {}", token())));
    assert_eq!(res.header("server"), Some(token()));
    let res = gw.proxy().get("/nothing-here").await;
    assert_eq!(res.status, 404);
    assert_ours(&res, &["server"], "404");
}

#[tokio::test]
async fn headers_latency_tokens_only() {
    let upstream = Upstream::http().start().await;
    let gw = echo_gateway(&[("headers", "latency_tokens")], &upstream, "lt").await;
    let (res, _) = through(&gw, "GET", "/lt", &[]).await;
    assert_ours(&res, &["x-kong-upstream-latency", "x-kong-proxy-latency"], "proxied");
    let res = gw.proxy().get("/nothing-here").await;
    assert_eq!(res.status, 404);
    assert_ours(&res, &["x-kong-response-latency"], "404");
}

#[tokio::test]
async fn headers_upstream_status_is_opt_in() {
    let upstream = Upstream::http().start().await;
    let gw = echo_gateway(&[("headers", "X-Kong-Upstream-Status")], &upstream, "us").await;
    let res = gw.proxy().get("/us/status/201").await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_ours(&res, &["x-kong-upstream-status"], "proxied 201");
    assert_eq!(res.header("x-kong-upstream-status").as_deref(), Some("201"));
    let res = gw.proxy().get("/nothing-here").await;
    assert_eq!(res.status, 404);
    assert_ours(&res, &[], "404");

    // not in the default set
    let gw = echo_gateway(&[], &upstream, "us").await;
    let res = gw.proxy().get("/us/status/201").await;
    assert_eq!(res.status, 201);
    assert!(res.header("x-kong-upstream-status").is_none(), "{:?}", res.headers);
}

#[tokio::test]
async fn headers_single_tokens() {
    let upstream = Upstream::http().start().await;
    // (headers, on a proxied response, on a 404 the gateway generates)
    let cases: [(&str, &[&str], &[&str]); 6] = [
        ("Server", &["server"], &["server"]),
        ("Via", &["via"], &[]),
        ("X-Kong-Proxy-Latency", &["x-kong-proxy-latency"], &[]),
        ("X-Kong-Upstream-Latency", &["x-kong-upstream-latency"], &[]),
        ("X-Kong-Response-Latency", &[], &["x-kong-response-latency"]),
        ("x-kong-request-id", &["x-kong-request-id"], &["x-kong-request-id"]),
    ];
    for (headers, proxied, generated) in cases {
        let gw = echo_gateway(&[("headers", headers)], &upstream, "tok").await;
        let (res, _) = through(&gw, "GET", "/tok", &[]).await;
        assert_ours(&res, proxied, &format!("headers = {headers}, proxied"));
        let res = gw.proxy().get("/nothing-here").await;
        assert_eq!(res.status, 404);
        assert_ours(&res, generated, &format!("headers = {headers}, 404"));
    }
}

#[tokio::test]
async fn headers_off_counts_only_in_first_position() {
    let upstream = Upstream::http().start().await;
    let conf = [("headers", "server_tokens, off, X-Kong-Proxy-Latency")];
    let gw = echo_gateway(&conf, &upstream, "late").await;
    let (res, _) = through(&gw, "GET", "/late", &[]).await;
    assert_ours(&res, &["server", "via", "x-kong-proxy-latency"], "proxied");
}

#[tokio::test]
async fn headers_upstream_off_sends_no_request_id() {
    let upstream = Upstream::http().start().await;
    let gw = echo_gateway(&[("headers_upstream", "off")], &upstream, "hu").await;
    let (res, seen) = through(&gw, "GET", "/hu", &[]).await;
    assert!(up(&seen, "x-kong-request-id").is_null(), "{}", seen["headers"]);
    assert!(res.header("x-kong-request-id").is_some_and(|r| is_request_id(&r)));
}

// ---- 5. response hop-by-hop headers --------------------------------------------------------

#[tokio::test]
async fn response_hop_by_hop_headers_are_removed() {
    let upstream = Upstream::http().start().await;
    let gw = echo_gateway(&[], &upstream, "rh").await;
    let path = "/rh/response-headers?connection=x-secret&x-secret=1&keep-alive=timeout%3D5\
                &upgrade=h2c&trailer=Expires&x-kept=1";

    // control: the upstream does send them
    let direct = turnpike_test::Client::new(&upstream.url("http"));
    let res = direct.get(path.trim_start_matches("/rh")).await;
    for sent in ["connection", "x-secret", "keep-alive", "upgrade", "trailer"] {
        assert!(res.header(sent).is_some(), "control: the upstream did not send {sent}");
    }

    let (res, _) = through(&gw, "GET", path, &[]).await;
    for gone in ["x-secret", "keep-alive", "upgrade", "trailer"] {
        assert!(res.header(gone).is_none(), "{gone} reached the client: {:?}", res.headers);
    }
    assert_eq!(res.header("x-kept").as_deref(), Some("1"));

    // a client asking for trailers keeps Trailer
    let (res, _) = through(&gw, "GET", path, &[("te", "trailers")]).await;
    assert_eq!(res.header("trailer").as_deref(), Some("Expires"));
    assert!(res.header("x-secret").is_none(), "{:?}", res.headers);
}

// ---- 6. charset ----------------------------------------------------------------------------

/// Routes `/ct<i>` to raw upstreams answering with each content type; returns what the client
/// gets for each.
async fn content_types(conf: &[(&str, &str)], types: &[&str]) -> Vec<Option<String>> {
    let gw = gateway(conf).await;
    let mut upstreams = Vec::new();
    for (i, ct) in types.iter().enumerate() {
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        );
        let u = Upstream::raw(response.as_bytes()).start().await;
        route_to(&gw, &format!("ct{i}"), &u.url("http"), json!({"paths": [format!("/ct{i}")]}))
            .await;
        upstreams.push(u);
    }
    let mut out = Vec::new();
    for i in 0..types.len() {
        until_routed(&gw, &format!("/ct{i}")).await;
        let res = gw.proxy().get(&format!("/ct{i}")).await;
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(res.text(), "ok");
        let all: Vec<_> = res.headers.get_all("content-type").iter().collect();
        assert!(all.len() <= 1, "one Content-Type: {all:?}");
        out.push(res.header("content-type"));
    }
    out
}

#[tokio::test]
async fn charset_is_added_to_text_types() {
    let types = ["text/plain", "text/html; charset=iso-8859-1", "application/json", "text/html"];
    let got = content_types(&[], &types).await;
    assert_eq!(
        got,
        [
            Some("text/plain; charset=UTF-8".to_owned()),
            Some("text/html; charset=iso-8859-1".to_owned()),
            Some("application/json".to_owned()),
            Some("text/html; charset=UTF-8".to_owned()),
        ]
    );
}

#[tokio::test]
async fn charset_off_leaves_content_types_alone() {
    let types = ["text/plain", "text/plain; charset=utf-8"];
    let got = content_types(&[("nginx_http_charset", "off")], &types).await;
    assert_eq!(got, [Some("text/plain".to_owned()), Some("text/plain; charset=utf-8".to_owned())]);
}

// ---- 7. HTTP/2 clients ---------------------------------------------------------------------

fn h2_get(uri: &str, headers: &[(&str, &str)]) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::builder().method("GET").uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::new())).expect("request")
}

#[tokio::test]
async fn http2_client_upstream_gets_http_1_1_with_via_2() {
    let upstream = Upstream::http().start().await;
    let gw = gateway(&[("proxy_listen", "127.0.0.1:0 http2")]).await;
    route_to(&gw, "h2", &upstream.url("http"), json!({"paths": ["/h2"]})).await;
    route_to(&gw, "h2p", &upstream.url("http"), json!({"paths": ["/pres"], "preserve_host": true}))
        .await;
    until_routed(&gw, "/h2").await;
    until_routed(&gw, "/pres").await;
    let addr = gw.proxy_addrs()[0].clone();
    let port = proxy_port(&gw);
    let token = token();

    let tcp = TcpStream::connect(&addr).await.expect("connect");
    let res = h2_requests(
        tcp,
        vec![
            h2_get("http://Preserved.Test:9443/pres/x?y=1", &[("via", "1.1 dev")]),
            h2_get("http://Authority.Test:9443/h2/x", &[]),
        ],
    )
    .await;

    assert_eq!(res[0].status, 200, "{:?}", res[0].body);
    let seen = res[0].json();
    assert_eq!(seen["version"], "HTTP/1.1");
    assert_eq!(up(&seen, "via"), format!("1.1 dev, 2 {token}").as_str());
    assert_eq!(up(&seen, "host"), "Preserved.Test:9443", ":authority, as sent");
    assert_eq!(up(&seen, "connection"), "keep-alive");
    assert_eq!(up(&seen, "x-forwarded-host"), "preserved.test");
    assert_eq!(up(&seen, "x-forwarded-proto"), "http");
    assert_eq!(up(&seen, "x-forwarded-port"), port.as_str());
    assert_eq!(up(&seen, "x-forwarded-path"), "/pres/x");
    assert_eq!(up(&seen, "x-forwarded-prefix"), "/pres");
    assert_eq!(up(&seen, "x-real-ip"), "127.0.0.1");
    let rid = res[0].header("x-kong-request-id").expect("request id");
    assert_eq!(up(&seen, "x-kong-request-id"), rid.as_str());
    assert_eq!(res[0].header("via"), Some(format!("1.1 {token}")));

    assert_eq!(res[1].status, 200, "{:?}", res[1].body);
    let seen = res[1].json();
    assert_eq!(up(&seen, "via"), format!("2 {token}").as_str());
    assert_eq!(up(&seen, "host"), format!("127.0.0.1:{}", upstream.port()).as_str());
    assert_eq!(up(&seen, "x-forwarded-host"), "authority.test");
}

#[tokio::test]
async fn http2_client_response_has_no_connection_headers() {
    let upstream = Upstream::http().start().await;
    let gw = gateway(&[("proxy_listen", "127.0.0.1:0 http2")]).await;
    route_to(&gw, "h2", &upstream.url("http"), json!({"paths": ["/h2"]})).await;
    until_routed(&gw, "/h2").await;
    let addr = gw.proxy_addrs()[0].clone();

    let tcp = TcpStream::connect(&addr).await.expect("connect");
    let res = h2_requests(
        tcp,
        vec![
            h2_get(
                "http://h2.test/h2/response-headers?connection=x-secret&x-secret=1\
                 &keep-alive=timeout%3D5&upgrade=h2c&proxy-connection=keep-alive&x-kept=1",
                &[],
            ),
            // a chunked upstream response
            h2_get("http://h2.test/h2/stream/2", &[]),
        ],
    )
    .await;
    for (i, r) in res.iter().enumerate() {
        assert_eq!(r.status, 200, "{i}: {:?}", r.body);
        for gone in ["connection", "keep-alive", "upgrade", "proxy-connection", "transfer-encoding"]
        {
            assert!(r.header(gone).is_none(), "{i}: {gone} in {:?}", r.headers);
        }
        assert_eq!(r.header("via"), Some(format!("1.1 {}", token())), "{i}");
    }
    assert!(res[0].header("x-secret").is_none(), "{:?}", res[0].headers);
    assert_eq!(res[0].header("x-kept").as_deref(), Some("1"));
    assert_eq!(&res[1].body[..], b"chunk\nchunk\n");
}
