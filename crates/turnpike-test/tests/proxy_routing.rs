//! Routing end to end, through the real binary and real upstreams: which route answers a
//! request (hosts, methods, headers, paths, priorities, SNIs), the path and `Host` sent
//! upstream (`strip_path`, `path_handling`, `preserve_host`), the protocol rules (426,
//! redirects, trusted `X-Forwarded-Proto`, gRPC), routes without a usable service, the debug
//! headers, and configuration changes reaching one node, a second node, and a node whose
//! database went away.
//!
//! Kong's behaviour comes from the spec (§3, §6) and docs/research/kong-proxy-behaviour.md; the
//! "case N" comments refer to the tricky cases listed in spec §3 (taken from Kong's
//! `spec/01-unit/08-router_spec.lua` and `spec/02-integration/05-proxy/02-router_spec.lua`).
//!
//! Every route here points at the echo upstream through a service whose path is `/<name>`, so
//! the first segment of the path the upstream received names the route (or service) that
//! answered.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use turnpike_test::net::{exchange, h2_requests, tls_connect};
use turnpike_test::{
    create, databases, expect, grpc_frame, new_uuid, pg_env, raw_exchange, Db, Gateway, Resp,
    Upstream,
};

/// How long a change may take to reach the proxy.
const LIVE: Duration = Duration::from_secs(5);

// ---- fixtures -------------------------------------------------------------------------------

/// A service named `name` on the echo upstream, with path `/<name>`.
async fn service(gw: &Gateway, up: &Upstream, name: &str) -> Value {
    let url = format!("{}/{name}", up.url("http"));
    create(&gw.admin(), "/services", json!({"name": name, "url": url}), name).await
}

/// A route of the service `svc` (named `name` unless the body names it).
async fn route_of(gw: &Gateway, svc: &str, name: &str, mut body: Value) -> Value {
    if body.get("name").is_none() {
        body["name"] = json!(name);
    }
    create(&gw.admin(), &format!("/services/{svc}/routes"), body, name).await
}

/// A service and a route, both called `name`.
async fn add(gw: &Gateway, up: &Upstream, name: &str, route: Value) -> Value {
    service(gw, up, name).await;
    route_of(gw, name, name, route).await
}

/// Waits until everything configured so far is live: adds a service-less route on a host of
/// its own and polls until the proxy matches it (its 503 "no Service").
async fn settle(gw: &Gateway) {
    let name = format!("sentinel-{}", new_uuid());
    let host = format!("{name}.invalid");
    let body = json!({"name": name, "hosts": [host], "paths": ["/__sentinel"]});
    create(&gw.admin(), "/routes", body, "sentinel").await;
    until(&gw.proxy(), "GET", "/__sentinel", &[("host", &host)], "the sentinel route", |r| {
        r.status == 503
    })
    .await;
}

/// Sends the request until `done` accepts the response (or the deadline passes); returns it.
async fn until(
    c: &turnpike_test::Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    what: &str,
    done: impl Fn(&Resp) -> bool,
) -> Resp {
    until_for(c, method, path, headers, what, LIVE, done).await
}

async fn until_for(
    c: &turnpike_test::Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    what: &str,
    limit: Duration,
    done: impl Fn(&Resp) -> bool,
) -> Resp {
    let deadline = Instant::now() + limit;
    loop {
        let res = c.request(method, path, headers, Bytes::new()).await;
        if done(&res) {
            return res;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; last answer {} {}",
            res.status,
            res.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Which route (or service) answered: the first path segment the echo upstream received;
/// `404` for Kong's "no route"; otherwise the status and body.
fn who(res: &Resp) -> String {
    match res.status {
        200 => {
            let v: Value = serde_json::from_slice(&res.body).unwrap_or(Value::Null);
            match v["path"].as_str() {
                Some(p) => p.trim_start_matches('/').split('/').next().unwrap_or("").to_owned(),
                None => format!("200 {}", res.text()),
            }
        }
        404 if res.text().contains("no Route matched with those values") => "404".into(),
        s => format!("{s} {}", res.text()),
    }
}

/// One routing case: a request and the route expected to answer it.
struct Case {
    method: &'static str,
    host: String,
    path: String,
    headers: Vec<(String, String)>,
    want: String,
}

fn get(host: &str, path: &str, want: &str) -> Case {
    Case {
        method: "GET",
        host: host.to_owned(),
        path: path.to_owned(),
        headers: Vec::new(),
        want: want.to_owned(),
    }
}

impl Case {
    fn method(mut self, m: &'static str) -> Self {
        self.method = m;
        self
    }

    fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
}

/// Runs every case and reports all mismatches at once.
async fn check(gw: &Gateway, cases: &[Case]) {
    let proxy = gw.proxy();
    let mut wrong = Vec::new();
    for c in cases {
        let mut headers: Vec<(&str, &str)> =
            c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if !c.host.is_empty() {
            headers.push(("host", c.host.as_str()));
        }
        let res = proxy.request(c.method, &c.path, &headers, Bytes::new()).await;
        let got = who(&res);
        if got != c.want {
            wrong.push(format!(
                "{} {} (host {:?}, headers {:?}): want {}, got {got}",
                c.method, c.path, c.host, c.headers, c.want
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// The port of a `host:port` listener address.
fn port_of(addr: &str) -> u16 {
    addr.trim_start_matches("http://")
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr}"))
}

/// Kong's JSON error template (`kong/tools/http.lua`), exactly.
fn kong_json(message: &str, request_id: &str) -> String {
    format!("{{\n  \"message\":\"{message}\",\n  \"request_id\":\"{request_id}\"\n}}")
}

/// Asserts a Kong-generated error: status, JSON content type, and the exact template with the
/// response's request id.
#[track_caller]
fn assert_kong_error(res: &Resp, status: u16, message: &str) {
    assert_eq!(res.status, status, "{}", res.text());
    let rid = res.header("x-kong-request-id").expect("X-Kong-Request-Id");
    assert_eq!(rid.len(), 32, "{rid}");
    assert_eq!(res.text(), kong_json(message, &rid));
    assert_eq!(res.header("content-type").as_deref(), Some("application/json; charset=utf-8"));
}

/// Whether one of the response's `Connection` headers lists `token`.
fn connection_has(res: &Resp, token: &str) -> bool {
    res.headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == token)
}

// ---- raw HTTP/1.1 over TLS ------------------------------------------------------------------

/// A response read from a raw exchange.
#[derive(Debug)]
struct RawResp {
    status_line: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Which route answered (see [`who`]).
    fn who(&self) -> String {
        let res = Resp {
            status: self.status,
            headers: http::HeaderMap::new(),
            body: Bytes::from(self.body.clone()),
        };
        who(&res)
    }
}

fn parse_raw(bytes: &[u8]) -> RawResp {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_owned();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &bytes[end + 4..];
    let find = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v);
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(i) = rest[at..].windows(2).position(|w| w == b"\r\n") {
            let size_text = String::from_utf8_lossy(&rest[at..at + i]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or(0);
            at += i + 2;
            if size == 0 || at + size > rest.len() {
                break;
            }
            out.extend_from_slice(&rest[at..at + size]);
            at += size + 2;
        }
        out
    } else if let Some(n) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        rest[..n.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    RawResp { status_line, status, headers, body }
}

/// `GET path` over TLS to the listener `addr`, sending `sni` (none for `None`).
async fn https_get(addr: &str, sni: Option<&str>, host: &str, path: &str) -> RawResp {
    let mut tls = tls_connect(addr, sni, &["http/1.1"]).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let (bytes, _) = exchange(&mut tls, req.as_bytes(), Duration::from_secs(10)).await;
    parse_raw(&bytes)
}

/// `request` as raw bytes on a new plain connection to the first proxy listener.
async fn raw_request(gw: &Gateway, request: &str) -> RawResp {
    let addr = gw.proxy_url().expect("proxy listener");
    let (bytes, _) = raw_exchange(addr, request.as_bytes(), Duration::from_secs(10)).await;
    parse_raw(&bytes)
}

// ---- 1. route matching ----------------------------------------------------------------------

#[tokio::test]
async fn hosts_exact_wildcards_and_ports() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    let proxy_port = port_of(gw.proxy_url().expect("proxy"));
    // case 8
    add(&gw, &up, "exact", json!({"hosts": ["route.com"]})).await;
    add(&gw, &up, "wild-suffix", json!({"hosts": ["*.route.com"]})).await;
    add(&gw, &up, "wild-prefix", json!({"hosts": ["route.*"]})).await;
    add(&gw, &up, "plain", json!({"hosts": ["plain.route.com"]})).await;
    // case 1, with the ids of Kong's test: the two routes have the same priority and the
    // port-specific one wins the tie only by its larger id
    add(
        &gw,
        &up,
        "any-port",
        json!({"id": "e8fb37f1-102d-461e-9c51-6608a6bb8101", "hosts": ["domain-1.org"]}),
    )
    .await;
    add(
        &gw,
        &up,
        "port-321",
        json!({"id": "e8fb37f1-102d-461e-9c51-6608a6bb8113",
               "hosts": ["domain-1.org:321", "domain-2.org"]}),
    )
    .await;
    add(&gw, &up, "port-only", json!({"hosts": ["domain-3.org:321"]})).await;
    // a host with a port compares with net.dst.port: the listener's port when Host has none
    let own = format!("own-port.test:{proxy_port}");
    add(&gw, &up, "own-port", json!({"hosts": [own]})).await;
    // case 10
    add(&gw, &up, "c10-wild", json!({"hosts": ["*.c10.test"], "paths": ["/path1"]})).await;
    add(&gw, &up, "c10-plain", json!({"hosts": ["plain.c10.test"], "paths": ["/path2"]})).await;
    settle(&gw).await;

    check(
        &gw,
        &[
            get("route.com", "/", "exact"),
            get("route.com:8000", "/x", "exact"),
            get("route.org", "/", "wild-prefix"),
            get("route.net:9000", "/", "wild-prefix"),
            get("plain.route.com", "/", "plain"),
            get("foo.route.com", "/", "wild-suffix"),
            get("x.y.route.com", "/", "wild-suffix"),
            get("notroute.com", "/", "404"),
            get("domain-1.org", "/", "any-port"),
            get("domain-1.org:80", "/", "any-port"),
            get("domain-1.org:321", "/", "port-321"),
            get("domain-1.org:123", "/", "any-port"),
            get("domain-2.org:999", "/", "port-321"),
            get("domain-3.org:321", "/", "port-only"),
            get("domain-3.org:123", "/", "404"),
            get("domain-3.org", "/", "404"),
            get("own-port.test", "/", "own-port"),
            get(&own, "/", "own-port"),
            get("own-port.test:81", "/", "404"),
            get("plain.c10.test", "/path1", "c10-wild"),
            get("plain.c10.test", "/path2", "c10-plain"),
            get("other.c10.test", "/path2", "404"),
            get("plain.c10.test", "/path3", "404"),
            get("nothing.test", "/", "404"),
        ],
    )
    .await;
}

#[tokio::test]
async fn methods_select_routes() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    add(&gw, &up, "m-get", json!({"methods": ["GET"], "paths": ["/m"]})).await;
    add(&gw, &up, "m-write", json!({"methods": ["POST", "PUT"], "paths": ["/m"]})).await;
    // case 14: a method-only route loses to a path route and to a host route
    add(&gw, &up, "any-get", json!({"methods": ["GET"]})).await;
    add(&gw, &up, "example", json!({"paths": ["/example"]})).await;
    // (a plain host: a wildcard host route and a method-only route have equal priorities in
    // the ATC flavors, and Kong breaks that tie by route id)
    add(&gw, &up, "domain", json!({"hosts": ["domain.com"]})).await;
    settle(&gw).await;

    check(
        &gw,
        &[
            get("", "/m", "m-get"),
            get("", "/m/sub", "m-get"),
            get("", "/m", "m-write").method("POST"),
            get("", "/m", "m-write").method("PUT"),
            get("", "/m", "404").method("DELETE"),
            get("", "/m", "404").method("PATCH"),
            get("", "/example/status/200", "example"),
            get("", "/example", "example").method("DELETE"),
            get("domain.com", "/", "domain"),
            get("domain.com", "/", "domain").method("POST"),
            get("nothing.com", "/", "any-get"),
            get("nothing.com", "/", "404").method("POST"),
        ],
    )
    .await;
}

#[tokio::test]
async fn headers_select_routes() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    // case 19: header names are case-insensitive and `_` stands for `-`; `~*` is a regex
    add(
        &gw,
        &up,
        "ua-regex",
        json!({"paths": ["/h19"],
               "headers": {"USER_AGENT": [r"~*windows|linux|os\s+x\s*[\d\._]+|solaris|bsd"]}}),
    )
    .await;
    add(&gw, &up, "h19-plain", json!({"paths": ["/h19"]})).await;
    add(&gw, &up, "values", json!({"paths": ["/hv"], "headers": {"X-Version": ["v1", "V2"]}}))
        .await;
    // case 11: more headers win
    add(
        &gw,
        &up,
        "two-headers",
        json!({"paths": ["/h11"], "headers": {"version": ["v1"], "user_agent": ["agent"]}}),
    )
    .await;
    add(
        &gw,
        &up,
        "three-headers",
        json!({"paths": ["/h11"],
               "headers": {"version": ["v1"], "user_agent": ["agent"], "location": ["l1"]}}),
    )
    .await;
    // case 12: one value of a repeated header is enough
    add(
        &gw,
        &up,
        "r10",
        json!({"paths": ["/h12"], "headers": {"location": ["l1"], "version": ["v1", "v2"]}}),
    )
    .await;
    add(&gw, &up, "r9", json!({"paths": ["/h12"], "headers": {"location": ["l1", "l2"]}})).await;
    // case 13: more headers beat a longer path
    add(
        &gw,
        &up,
        "h13-long",
        json!({"paths": ["/my-route/hello"], "headers": {"version": ["v1"]}}),
    )
    .await;
    add(
        &gw,
        &up,
        "h13-headers",
        json!({"paths": ["/my-route"], "headers": {"version": ["v1"], "location": ["us-east"]}}),
    )
    .await;
    settle(&gw).await;

    let chrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
                  (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    check(
        &gw,
        &[
            get("", "/h19", "ua-regex").header("User-Agent", chrome),
            get("", "/h19", "ua-regex").header("user-agent", "curl (Linux)"),
            get("", "/h19", "ua-regex").header("user_agent", "FreeBSD"),
            get("", "/h19", "h19-plain").header("user-agent", "curl/8.0"),
            get("", "/h19", "h19-plain"),
            get("", "/hv", "values").header("X-VERSION", "v1"),
            get("", "/hv", "values").header("x-version", "v2"),
            get("", "/hv", "values").header("x-version", "V1"),
            get("", "/hv", "404").header("x-version", "v3"),
            get("", "/hv", "404"),
            get("", "/hv", "values").header("x-version", "v3").header("x-version", "v1"),
            get("", "/h11", "three-headers")
                .header("version", "v1")
                .header("user-agent", "agent")
                .header("location", "l1"),
            get("", "/h11", "two-headers").header("version", "v1").header("user-agent", "agent"),
            get("", "/h11", "404").header("version", "v1"),
            get("", "/h12", "r9")
                .header("location", "l3")
                .header("location", "l2")
                .header("version", "v2"),
            get("", "/h12", "r10").header("location", "l1").header("version", "v2"),
            get("", "/my-route/hello", "h13-headers")
                .header("version", "v1")
                .header("location", "us-east"),
            get("", "/my-route/hello", "h13-long").header("version", "v1"),
            get("", "/my-route/other", "404").header("version", "v1"),
        ],
    )
    .await;

    // case 19: a request without a Host (HTTP/1.0) still matches a route without hosts
    let res = raw_request(&gw, "GET /h19 HTTP/1.0\r\nUser-Agent: curl/8.0\r\n\r\n").await;
    assert_eq!(res.who(), "h19-plain", "{}", res.text());
}

#[tokio::test]
async fn paths_prefixes_regexes_and_priorities() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    // case 2
    add(&gw, &up, "c2-hello", json!({"paths": ["/my-route/hello"]})).await;
    add(&gw, &up, "c2-base", json!({"paths": ["/my-route"]})).await;
    // case 3
    add(&gw, &up, "c3-r1", json!({"paths": ["/something/my-route"]})).await;
    add(&gw, &up, "c3-r2", json!({"hosts": ["example.com"], "paths": ["/my-route"]})).await;
    // case 4
    add(&gw, &up, "c4-plain", json!({"paths": ["/route/persons"]})).await;
    add(&gw, &up, "c4-regex", json!({"paths": [r"~/route/persons/\d+/profile"]})).await;
    // case 5
    add(&gw, &up, "c5-plain", json!({"paths": ["/route/fixture"]})).await;
    add(&gw, &up, "c5-regex", json!({"paths": ["~/route/(fixture)"]})).await;
    // case 6
    add(&gw, &up, "c6-pat", json!({"hosts": ["c6.test"], "paths": ["/pat"]})).await;
    add(
        &gw,
        &up,
        "c6-post",
        json!({"hosts": ["c6.test"], "paths": ["/path"], "methods": ["POST"]}),
    )
    .await;
    add(&gw, &up, "c6-regex", json!({"hosts": ["c6.test"], "paths": ["~/(path)"]})).await;
    // case 7
    add(&gw, &up, "c7-regex", json!({"paths": ["~/prefix/[0-9]+"]})).await;
    // case 16: a catch-all never shadows longer paths
    add(&gw, &up, "c16-root", json!({"paths": ["/"]})).await;
    // case 17: regex_priority does not apply to prefix paths
    add(&gw, &up, "c17-root", json!({"hosts": ["c17.test"], "paths": ["/"], "regex_priority": 5}))
        .await;
    add(&gw, &up, "c17-v1", json!({"hosts": ["c17.test"], "paths": ["/v1"]})).await;
    // case 18: each path of a route has its own priority
    add(&gw, &up, "c18-r1", json!({"paths": ["~/some/thing/else", "/foo"]})).await;
    add(&gw, &up, "c18-r2", json!({"paths": ["/foo/bar"]})).await;
    add(&gw, &up, "c18-r3", json!({"paths": ["/baz", "/baz/bar/qux"]})).await;
    add(&gw, &up, "c18-r4", json!({"paths": ["/baz/bar"]})).await;
    settle(&gw).await;

    check(
        &gw,
        &[
            get("", "/my-route/hello/world", "c2-hello"),
            get("", "/my-route/hello", "c2-hello"),
            get("", "/my-route/world", "c2-base"),
            get("", "/my-route", "c2-base"),
            get("", "/my-routeX", "c2-base"),
            get("example.com", "/something/my-route", "c3-r1"),
            get("example.com", "/my-route/x", "c3-r2"),
            get("", "/route/persons/123/profile", "c4-regex"),
            get("", "/route/persons/abc/profile", "c4-plain"),
            get("", "/route/personsxyz", "c4-plain"),
            get("", "/route/fixture", "c5-regex"),
            get("c6.test", "/path", "c6-regex"),
            get("c6.test", "/path", "c6-post").method("POST"),
            get("c6.test", "/pat", "c6-pat"),
            get("", "/prefix/123", "c7-regex"),
            get("", "/extra/prefix/123", "c16-root"),
            get("", "/prefix/abc", "c16-root"),
            get("", "/", "c16-root"),
            get("", "/anything/else", "c16-root"),
            get("c17.test", "/v1", "c17-v1"),
            get("c17.test", "/v1/x", "c17-v1"),
            get("c17.test", "/v2", "c17-root"),
            get("", "/foo/bar", "c18-r2"),
            get("", "/foo", "c18-r1"),
            get("", "/foo/baz", "c18-r1"),
            get("", "/some/thing/else", "c18-r1"),
            get("", "/baz", "c18-r3"),
            get("", "/baz/bar", "c18-r4"),
            get("", "/baz/bar/qux", "c18-r3"),
            get("", "/baz/bar/quux", "c18-r4"),
            // the path is normalized before matching: dot segments, `//`, unreserved escapes
            get("", "/my-route/world/../hello/x", "c2-hello"),
            get("", "//my-route//hello", "c2-hello"),
            get("", "/route/%66ixture", "c5-regex"),
            get("", "/my-route/%2e%2e/something/my-route", "c3-r1"),
        ],
    )
    .await;
}

#[tokio::test]
async fn regex_priority_and_id_order_break_ties() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    // both regexes match /rp/abc: regex_priority decides, against the id order
    add(
        &gw,
        &up,
        "rx-low",
        json!({"id": "ffffffff-ffff-4fff-bfff-ffffffffffff", "paths": ["~/rp/[a-z]+"]}),
    )
    .await;
    let high = add(
        &gw,
        &up,
        "rx-high",
        json!({"id": "00000000-0000-4000-8000-000000000001",
               "paths": [r"~/rp/\w+"], "regex_priority": 10}),
    )
    .await;
    // equal priorities: the larger id wins (Kong's ATC router), not the older route
    add(
        &gw,
        &up,
        "tie-low",
        json!({"id": "10000000-0000-4000-8000-000000000000", "paths": ["/tie"]}),
    )
    .await;
    add(
        &gw,
        &up,
        "tie-high",
        json!({"id": "f0000000-0000-4000-8000-000000000000", "paths": ["/tie"]}),
    )
    .await;
    add(
        &gw,
        &up,
        "tie-old",
        json!({"id": "e0000000-0000-4000-8000-000000000000", "paths": ["/tie2"]}),
    )
    .await;
    add(
        &gw,
        &up,
        "tie-new",
        json!({"id": "d0000000-0000-4000-8000-000000000000", "paths": ["/tie2"]}),
    )
    .await;
    settle(&gw).await;
    check(
        &gw,
        &[
            get("", "/rp/abc", "rx-high"),
            get("", "/rp/123", "rx-high"),
            get("", "/tie", "tie-high"),
            get("", "/tie2", "tie-old"),
        ],
    )
    .await;

    // lowering the priority hands the request to the other regex
    let res = gw
        .admin()
        .patch_json(
            &format!("/routes/{}", high["id"].as_str().unwrap()),
            &json!({"regex_priority": 0}),
        )
        .await;
    expect(&res, 200, "patch regex_priority");
    settle(&gw).await;
    check(&gw, &[get("", "/rp/abc", "rx-low"), get("", "/rp/123", "rx-high")]).await;
}

#[tokio::test]
async fn snis_apply_only_to_https() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().conf("proxy_listen", "127.0.0.1:0, 127.0.0.1:0 ssl").start().await;
    let tls = gw.proxy_addrs().get(1).expect("the TLS listener").clone();
    add(
        &gw,
        &up,
        "sni-a",
        json!({"protocols": ["https"], "snis": ["a.sni.test"], "paths": ["/sni"]}),
    )
    .await;
    add(
        &gw,
        &up,
        "sni-wild",
        json!({"protocols": ["https"], "snis": ["*.wild.test"], "paths": ["/sni"]}),
    )
    .await;
    add(&gw, &up, "sni-none", json!({"protocols": ["http", "https"], "paths": ["/sni"]})).await;
    add(
        &gw,
        &up,
        "sni-h",
        json!({"protocols": ["http", "https"], "snis": ["h.sni.test"], "paths": ["/snih"]}),
    )
    .await;
    settle(&gw).await;

    let cases = [
        (Some("a.sni.test"), "/sni", "sni-a"),
        (Some("x.wild.test"), "/sni", "sni-wild"),
        (Some("deep.x.wild.test"), "/sni", "sni-wild"),
        (Some("other.test"), "/sni", "sni-none"),
        (None, "/sni", "sni-none"),
        (Some("h.sni.test"), "/snih", "sni-h"),
        // without the SNI, /snih falls back to the /sni prefix route
        (Some("other.test"), "/snih", "sni-none"),
        (None, "/snih", "sni-none"),
    ];
    let mut wrong = Vec::new();
    for (sni, path, want) in cases {
        // the Host header never stands in for the SNI
        let res = https_get(&tls, sni, "a.sni.test", path).await;
        if res.who() != want {
            wrong.push(format!("https {path} sni {sni:?}: want {want}, got {}", res.who()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // over plain http the SNI condition is not considered: the https-only SNI routes match
    // (and answer 426, as in Kong's #6425 test), the http one proxies
    check(&gw, &[get("", "/snih", "sni-h"), get("h.sni.test", "/snih", "sni-h")]).await;
    let res = gw.proxy().get("/sni").await;
    assert_kong_error(&res, 426, "Please use HTTPS protocol");
}

// ---- 2. strip_path, path_handling, preserve_host --------------------------------------------

/// (service path, route path (`None`: the route matches on its host only), strip_path,
/// request target, target the upstream must receive).
type PathRow = (&'static str, Option<&'static str>, bool, &'static str, &'static str);

const PATH_ROWS: &[PathRow] = &[
    // rows of Kong's spec/fixtures/router_path_handling_tests.lua (v0)
    ("/", Some("/"), false, "/route/req", "/route/req"),
    ("/", Some("/"), true, "/route/req", "/route/req"),
    ("/", Some("/route"), true, "/routereq", "/req"),
    ("/", Some("/route"), true, "/route/", "/"),
    ("/", Some("/route/"), true, "/route/req", "/req"),
    ("/srv", Some("/rou"), false, "/roureq", "/srv/roureq"),
    ("/srv", Some("/rou"), true, "/roureq", "/srv/req"),
    ("/srv/", Some("/rou"), true, "/rou", "/srv"),
    ("/service", Some("/"), true, "/route", "/service/route"),
    ("/service", Some("/"), false, "/", "/service"),
    ("/service", Some("/route"), true, "/route/", "/service/"),
    ("/service", Some("/route"), false, "/routereq", "/service/routereq"),
    ("/service/", Some("/route"), true, "/route", "/service"),
    ("/service/", Some("/"), false, "/route/", "/service/route/"),
    ("/service/", Some("/route/"), true, "/route/req", "/service/req"),
    ("/service", None, false, "/route/", "/service/route/"),
    ("/service/", None, true, "/", "/service/"),
    ("/service", Some("/route"), true, "/route%2E%2E/req", "/service/req"),
    ("/service", Some("/route"), true, "/route../req", "/service/req"),
    ("/service", Some("/route"), false, "/route%2e/req", "/service/route./req"),
    // the query string goes along verbatim, a trailing `?` too
    ("/service", Some("/route"), true, "/route/a?x=1&y=%2F&z", "/service/a?x=1&y=%2F&z"),
    ("/service", Some("/route"), true, "/route/q?", "/service/q?"),
    ("/", Some("/route"), false, "/route?", "/route?"),
    ("/service", Some("/route"), false, "/route?a=abc%7cdef", "/service/route?a=abc%7cdef"),
    // reserved escapes stay encoded (upper-cased), others are decoded and re-escaped
    ("/service", Some("/route"), true, "/route/a%2Fb/c", "/service/a%2Fb/c"),
    ("/service", Some("/route"), true, "/route/a%2fb", "/service/a%2Fb"),
    ("/service", Some("/route"), true, "/route/abc%7cdef%20x", "/service/abc%7Cdef%20x"),
    // a regex path strips the whole match
    ("/svc", Some(r"~/re/\d+"), true, "/re/123/rest?k=v", "/svc/rest?k=v"),
    ("/svc", Some(r"~/re/\d+"), false, "/re/123/rest", "/svc/re/123/rest"),
];

/// A path-handling row: service path, route path, strip_path, path_handling, request, expected
/// upstream URI.
type HandlingRow<'a> = (&'a str, Option<&'a str>, bool, &'a str, &'a str, &'a str);

/// One route per row, on a host of its own; returns the mismatches.
async fn run_path_rows(gw: &Gateway, up: &Upstream, rows: &[HandlingRow<'_>]) -> Vec<String> {
    let admin = gw.admin();
    for (i, (svc, route, strip, handling, _, _)) in rows.iter().enumerate() {
        let name = format!("row{i}");
        let url = format!("{}{svc}", up.url("http"));
        create(&admin, "/services", json!({"name": name, "url": url}), &name).await;
        let mut body = json!({"name": name, "hosts": [format!("{name}.test")],
                              "strip_path": strip, "path_handling": handling});
        if let Some(p) = route {
            body["paths"] = json!([p]);
        }
        create(&admin, &format!("/services/{name}/routes"), body, &name).await;
    }
    settle(gw).await;
    let proxy = gw.proxy();
    let mut wrong = Vec::new();
    for (i, (svc, route, strip, handling, request, want)) in rows.iter().enumerate() {
        let host = format!("row{i}.test");
        let res = proxy.request("GET", request, &[("host", &host)], Bytes::new()).await;
        let got = if res.status == 200 {
            res.json()["uri"].as_str().unwrap_or_default().to_owned()
        } else {
            format!("{} {}", res.status, res.text())
        };
        if got != *want {
            wrong.push(format!(
                "service {svc} route {route:?} strip {strip} {handling} request {request}: \
                 want {want}, got {got}"
            ));
        }
    }
    wrong
}

#[tokio::test]
async fn strip_path_and_path_handling_build_the_upstream_uri() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    let rows: Vec<_> =
        PATH_ROWS.iter().map(|&(s, r, strip, req, want)| (s, r, strip, "v0", req, want)).collect();
    let wrong = run_path_rows(&gw, &up, &rows).await;
    assert!(
        wrong.is_empty(),
        "{} of {} rows wrong:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

/// (service path, route path, strip_path, path_handling, request, upstream path under
/// `traditional_compatible`, under `traditional`).
const FLAVOR_ROWS: &[(&str, &str, bool, &str, &str, &str, &str)] = &[
    ("/srv", "/rou", true, "v1", "/roureq", "/srv/req", "/srvreq"),
    ("/srv", "/rou", false, "v1", "/roureq", "/srv/roureq", "/srvroureq"),
    ("/service", "/", false, "v1", "/route", "/service/route", "/serviceroute"),
    ("/service/", "/route", true, "v1", "/route", "/service", "/service/"),
    ("/service", "/route/", true, "v1", "/route/", "/service/", "/service"),
    ("/service", "/route", true, "v1", "/routereq?a=b", "/service/req?a=b", "/servicereq?a=b"),
    ("/service", "/route", true, "v0", "/routereq", "/service/req", "/service/req"),
    ("/srv", "/rou", true, "v0", "/roureq", "/srv/req", "/srv/req"),
];

#[tokio::test]
async fn path_handling_v1_acts_as_v0_unless_the_flavor_is_traditional() {
    let up = Upstream::http().start().await;
    for flavor in ["traditional_compatible", "traditional"] {
        let gw = Gateway::builder().conf("router_flavor", flavor).start().await;
        let rows: Vec<_> = FLAVOR_ROWS
            .iter()
            .map(|&(s, r, strip, h, req, compat, trad)| {
                (s, Some(r), strip, h, req, if flavor == "traditional" { trad } else { compat })
            })
            .collect();
        let wrong = run_path_rows(&gw, &up, &rows).await;
        assert!(wrong.is_empty(), "router_flavor = {flavor}:\n{}", wrong.join("\n"));
    }
}

#[tokio::test]
async fn preserve_host_sends_the_client_host() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    let proxy_port = port_of(gw.proxy_url().expect("proxy"));
    add(&gw, &up, "ph-on", json!({"paths": ["/ph-on"], "preserve_host": true})).await;
    add(&gw, &up, "ph-off", json!({"paths": ["/ph-off"]})).await;
    settle(&gw).await;
    let proxy = gw.proxy();

    let res = proxy.request("GET", "/ph-on", &[("host", "preserved.test:8123")], "").await;
    let seen = expect(&res, 200, "preserve_host");
    assert_eq!(seen["headers"]["host"], "preserved.test:8123", "the Host as sent, port included");
    assert_eq!(seen["headers"]["x-forwarded-host"], "preserved.test");
    assert_eq!(seen["headers"]["x-forwarded-port"], proxy_port.to_string());

    let res = proxy.request("GET", "/ph-on/x", &[("host", "preserved.test")], "").await;
    assert_eq!(expect(&res, 200, "preserve_host")["headers"]["host"], "preserved.test");

    let res = proxy.request("GET", "/ph-off", &[("host", "preserved.test:8123")], "").await;
    let seen = expect(&res, 200, "no preserve_host");
    assert_eq!(seen["headers"]["host"], format!("127.0.0.1:{}", up.port()));
    assert_eq!(seen["headers"]["x-forwarded-host"], "preserved.test");

    // turning preserve_host off is live
    let res = gw.admin().patch_json("/routes/ph-on", &json!({"preserve_host": false})).await;
    expect(&res, 200, "patch preserve_host");
    let want = format!("127.0.0.1:{}", up.port());
    until(&proxy, "GET", "/ph-on", &[("host", "preserved.test")], "preserve_host off", |r| {
        r.status == 200 && r.json()["headers"]["host"] == want.as_str()
    })
    .await;
}

/// A minimal HTTP/1.1 server on port 80 of a random loopback address (port 80 is the only way
/// to see the default port left out of `Host`): it answers every request with its head as the
/// body. `None` when this process may not bind port 80.
async fn port_80_server() -> Option<(String, JoinHandle<()>)> {
    for _ in 0..8 {
        let b = uuid::Uuid::new_v4().into_bytes();
        let ip = format!("127.{}.{}.{}", b[0], b[1], b[2].max(2));
        let listener = match TcpListener::bind((ip.as_str(), 80)).await {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return None,
            Err(_) => continue,
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else { continue };
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n",
                        head.len()
                    );
                    let _ = s.write_all(answer.as_bytes()).await;
                    let _ = s.write_all(&head).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        return Some((ip, task));
    }
    panic!("no free loopback address for port 80");
}

#[tokio::test]
async fn upstream_host_leaves_out_the_default_port() {
    let Some((ip, server)) = port_80_server().await else {
        eprintln!("note: cannot bind port 80 here; skipping the default-port Host check");
        return;
    };
    let gw = Gateway::builder().start().await;
    let admin = gw.admin();
    create(&admin, "/services", json!({"name": "p80", "url": format!("http://{ip}/p80")}), "svc")
        .await;
    create(&admin, "/services/p80/routes", json!({"paths": ["/p80"]}), "route").await;
    settle(&gw).await;
    let res = gw.proxy().request("GET", "/p80/x", &[("host", "client.test:8000")], "").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let head = res.text();
    assert!(head.starts_with("GET /p80/x HTTP/1.1\r\n"), "{head}");
    let host = head
        .lines()
        .find_map(|l| l.strip_prefix("Host: ").or_else(|| l.strip_prefix("host: ")))
        .unwrap_or_default();
    assert_eq!(host, ip, "port 80 of an http service is left out: {head}");
    server.abort();
}

// ---- 3. protocols ---------------------------------------------------------------------------

#[tokio::test]
async fn https_only_route_over_http_is_426() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().conf("proxy_listen", "127.0.0.1:0, 127.0.0.1:0 ssl").start().await;
    let tls = gw.proxy_addrs().get(1).expect("the TLS listener").clone();
    add(&gw, &up, "secure", json!({"protocols": ["https"], "paths": ["/secure"]})).await;
    add(&gw, &up, "both", json!({"protocols": ["http", "https"], "paths": ["/both"]})).await;
    settle(&gw).await;
    let proxy = gw.proxy();

    let res = proxy.get("/secure").await;
    assert_kong_error(&res, 426, "Please use HTTPS protocol");
    assert!(connection_has(&res, "Upgrade"), "{:?}", res.headers);
    assert_eq!(res.header("upgrade").as_deref(), Some("TLS/1.2, HTTP/1.1"));

    // the body follows Accept (kong.response.error)
    let res = proxy.request("GET", "/secure", &[("accept", "text/plain")], "").await;
    let rid = res.header("x-kong-request-id").unwrap_or_default();
    assert_eq!(res.text(), format!("Please use HTTPS protocol\nrequest_id: {rid}\n"));
    assert_eq!(res.header("content-type").as_deref(), Some("text/plain; charset=utf-8"));

    // nginx has no reason phrase for 426
    let raw =
        raw_request(&gw, "GET /secure HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n").await;
    assert_eq!(raw.status_line, "HTTP/1.1 426 ");
    assert_eq!(raw.header("upgrade"), Some("TLS/1.2, HTTP/1.1"));

    // an untrusted client's X-Forwarded-Proto changes nothing
    let res = proxy.request("GET", "/secure", &[("x-forwarded-proto", "https")], "").await;
    assert_kong_error(&res, 426, "Please use HTTPS protocol");

    assert_eq!(who(&proxy.get("/both").await), "both");

    // over TLS the route proxies
    let res = https_get(&tls, Some("secure.test"), "secure.test", "/secure/x").await;
    assert_eq!(res.who(), "secure", "{}", res.text());
    let seen: Value = serde_json::from_slice(&res.body).expect("echo JSON");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    assert_eq!(seen["path"], "/secure/x");
}

#[tokio::test]
async fn https_redirect_status_codes() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    for code in [301, 302, 307, 308] {
        let name = format!("r{code}");
        add(
            &gw,
            &up,
            &name,
            json!({"protocols": ["https"], "paths": [format!("/{name}")],
                   "https_redirect_status_code": code}),
        )
        .await;
    }
    settle(&gw).await;
    let proxy = gw.proxy();

    // (request target, Host, status, Location)
    let cases = [
        ("/r301/x?a=1&b=%2F", "Example.COM:8000", 301, "https://example.com/r301/x?a=1&b=%2F"),
        ("/r302", "example.com", 302, "https://example.com/r302"),
        ("/r302?foo=bar", "example.com", 302, "https://example.com/r302?foo=bar"),
        ("/r307/a%2Fb?", "example.com", 307, "https://example.com/r307/a%2Fb?"),
        ("/r308/p", "example.com:443", 308, "https://example.com/r308/p"),
    ];
    for (target, host, status, location) in cases {
        // an untrusted X-Forwarded-Host does not change the Location
        let res = proxy
            .request("GET", target, &[("host", host), ("x-forwarded-host", "evil.test")], "")
            .await;
        assert_eq!(res.status, status, "{target}: {}", res.text());
        assert_eq!(res.header("location").as_deref(), Some(location), "{target}");
        // nginx's own page for the status (Kong exits without a body)
        let title = match status {
            301 => "301 Moved Permanently",
            302 => "302 Found",
            307 => "307 Temporary Redirect",
            _ => "308 Permanent Redirect",
        };
        assert_eq!(
            res.text(),
            format!(
                "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}\
                 </h1></center>\r\n</body>\r\n</html>\r\n"
            ),
            "{target}"
        );
    }
    // any method is redirected
    let res = proxy.request("POST", "/r307", &[("host", "example.com")], "body").await;
    assert_eq!(res.status, 307);
    assert_eq!(res.header("location").as_deref(), Some("https://example.com/r307"));
    let raw =
        raw_request(&gw, "GET /r302 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
            .await;
    assert_eq!(raw.status_line, "HTTP/1.1 302 Moved Temporarily");
}

#[tokio::test]
async fn trusted_x_forwarded_proto_counts_as_https() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().conf("trusted_ips", "0.0.0.0/0,::/0").start().await;
    add(&gw, &up, "secure", json!({"protocols": ["https"], "paths": ["/secure"]})).await;
    add(
        &gw,
        &up,
        "moved",
        json!({"protocols": ["https"], "paths": ["/moved"], "https_redirect_status_code": 301}),
    )
    .await;
    settle(&gw).await;
    let proxy = gw.proxy();

    let res = proxy.request("GET", "/secure", &[("x-forwarded-proto", "https")], "").await;
    assert_eq!(who(&res), "secure");
    assert_eq!(res.json()["headers"]["x-forwarded-proto"], "https");
    let res = proxy.request("GET", "/moved/x", &[("x-forwarded-proto", "https")], "").await;
    assert_eq!(who(&res), "moved");

    // any other value is not https
    for proto in ["http", "foo"] {
        let res = proxy.request("GET", "/secure", &[("x-forwarded-proto", proto)], "").await;
        assert_kong_error(&res, 426, "Please use HTTPS protocol");
    }
    assert_kong_error(&proxy.get("/secure").await, 426, "Please use HTTPS protocol");

    // a trusted X-Forwarded-Host is the redirect's host
    let res = proxy
        .request(
            "GET",
            "/moved/x?q=1",
            &[("host", "example.com"), ("x-forwarded-host", "fwd.example")],
            "",
        )
        .await;
    assert_eq!(res.status, 301);
    assert_eq!(res.header("location").as_deref(), Some("https://fwd.example/moved/x?q=1"));
}

#[tokio::test]
async fn untrusted_clients_cannot_claim_https() {
    let up = Upstream::http().start().await;
    // a trusted list that does not hold the client
    let gw = Gateway::builder().conf("trusted_ips", "10.0.0.1").start().await;
    add(&gw, &up, "secure", json!({"protocols": ["https"], "paths": ["/secure"]})).await;
    add(&gw, &up, "open", json!({"paths": ["/open"]})).await;
    settle(&gw).await;
    let proxy = gw.proxy();

    let res = proxy.request("GET", "/secure", &[("x-forwarded-proto", "https")], "").await;
    assert_kong_error(&res, 426, "Please use HTTPS protocol");
    let res = proxy
        .request(
            "GET",
            "/open",
            &[("x-forwarded-proto", "https"), ("x-forwarded-host", "fwd.example")],
            "",
        )
        .await;
    let seen = expect(&res, 200, "open");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "http");
    assert_eq!(seen["headers"]["x-forwarded-host"], "127.0.0.1");
}

#[tokio::test]
async fn grpc_routes_check_the_protocol() {
    let up = Upstream::grpc().start().await;
    let gw = Gateway::builder().conf("proxy_listen", "127.0.0.1:0 http2").start().await;
    let admin = gw.admin();
    let url = up.url("grpc");
    create(&admin, "/services", json!({"name": "g", "url": url}), "grpc service").await;
    let body = json!({"name": "grpc", "protocols": ["grpc"], "paths": ["/grpc.test.Echo/"],
                      "strip_path": false});
    create(&admin, "/services/g/routes", body, "grpc route").await;
    let body = json!({"name": "grpcs", "protocols": ["grpcs"], "paths": ["/grpc.test.Secure/"],
                      "strip_path": false});
    create(&admin, "/services/g/routes", body, "grpcs route").await;
    settle(&gw).await;
    let proxy = gw.proxy();

    // HTTP/1.1 with a gRPC content type: use HTTP/2
    for ct in ["application/grpc", "application/grpc+proto"] {
        let res = proxy
            .request("POST", "/grpc.test.Echo/Echo", &[("content-type", ct)], grpc_frame(b"hi"))
            .await;
        assert_kong_error(&res, 426, "Please use HTTP2 protocol");
        assert_eq!(res.header("upgrade").as_deref(), Some("HTTP/2"));
        assert!(connection_has(&res, "Upgrade"), "{:?}", res.headers);
    }
    // not gRPC at all
    let res = proxy
        .request("POST", "/grpc.test.Echo/Echo", &[("content-type", "application/json")], "{}")
        .await;
    assert_kong_error(&res, 415, "Non-gRPC request matched gRPC route");
    assert_kong_error(
        &proxy.get("/grpc.test.Echo/Echo").await,
        415,
        "Non-gRPC request matched gRPC route",
    );

    // over HTTP/2 (cleartext, prior knowledge)
    let addr = gw.proxy_url().expect("proxy").trim_start_matches("http://").to_owned();
    let req = |path: &str, ct: &str, body: Bytes| {
        http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}{path}"))
            .header("content-type", ct)
            .header("te", "trailers")
            .body(Full::new(body))
            .expect("request")
    };
    let tcp = TcpStream::connect(&addr).await.expect("connect");
    let out = h2_requests(
        tcp,
        vec![
            req("/grpc.test.Echo/Echo", "application/grpc", grpc_frame(b"hello")),
            req("/grpc.test.Echo/Echo", "application/json", Bytes::from_static(b"{}")),
            req("/grpc.test.Secure/Echo", "application/grpc", grpc_frame(b"hello")),
        ],
    )
    .await;
    let ok = &out[0];
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("x-path").as_deref(), Some("/grpc.test.Echo/Echo"));
    assert_eq!(&ok.body[..], &grpc_frame(b"hello")[..]);
    let status = ok.trailers.as_ref().and_then(|t| t.get("grpc-status")).map(|v| v.as_bytes());
    assert_eq!(status, Some(&b"0"[..]), "{:?}", ok.trailers);

    let wrong = &out[1];
    assert_eq!(wrong.status, 415);
    let rid = wrong.header("x-kong-request-id").unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&wrong.body),
        kong_json("Non-gRPC request matched gRPC route", &rid)
    );

    // a grpcs-only route reached over cleartext
    let plain = &out[2];
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-type").as_deref(), Some("application/grpc"));
    assert_eq!(plain.header("grpc-status").as_deref(), Some("1"));
    assert_eq!(plain.header("grpc-message").as_deref(), Some("gRPC request matched gRPCs route"));
}

// ---- 4. routes without a usable service, debug headers --------------------------------------

#[tokio::test]
async fn route_without_service_is_503() {
    let gw = Gateway::builder().start().await;
    create(&gw.admin(), "/routes", json!({"name": "lonely", "paths": ["/lonely"]}), "route").await;
    settle(&gw).await;
    let proxy = gw.proxy();
    assert_kong_error(&proxy.get("/lonely").await, 503, "no Service found with those values");
    assert_kong_error(
        &proxy.get("/lonely/deeper").await,
        503,
        "no Service found with those values",
    );
    let res = proxy.request("GET", "/lonely", &[("accept", "application/xml")], "").await;
    let rid = res.header("x-kong-request-id").unwrap_or_default();
    assert_eq!(res.status, 503);
    assert_eq!(
        res.text(),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>no Service found \
             with those values</message>\n  <requestid>{rid}</requestid>\n</error>\n"
        )
    );
}

#[tokio::test]
async fn routes_of_disabled_services_are_not_matched() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    let admin = gw.admin();
    let url = format!("{}/off-svc", up.url("http"));
    create(&admin, "/services", json!({"name": "off-svc", "url": url, "enabled": false}), "off")
        .await;
    route_of(&gw, "off-svc", "off-only", json!({"paths": ["/off-only"]})).await;
    route_of(&gw, "off-svc", "off-long", json!({"paths": ["/dis/longer"]})).await;
    service(&gw, &up, "on-svc").await;
    route_of(&gw, "on-svc", "on-short", json!({"paths": ["/dis"]})).await;
    settle(&gw).await;
    check(
        &gw,
        &[get("", "/off-only", "404"), get("", "/dis/longer", "on-svc"), get("", "/dis", "on-svc")],
    )
    .await;

    // enabling the service brings its routes in
    expect(&admin.patch_json("/services/off-svc", &json!({"enabled": true})).await, 200, "enable");
    settle(&gw).await;
    check(
        &gw,
        &[
            get("", "/off-only", "off-svc"),
            get("", "/dis/longer", "off-svc"),
            get("", "/dis", "on-svc"),
        ],
    )
    .await;
}

const DEBUG_HEADERS: [&str; 4] =
    ["kong-route-id", "kong-route-name", "kong-service-id", "kong-service-name"];

#[tokio::test]
async fn debug_headers_name_the_route_and_service() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().conf("allow_debug_header", "on").start().await;
    let svc = service(&gw, &up, "dbg-svc").await;
    let route = route_of(&gw, "dbg-svc", "dbg-route", json!({"paths": ["/dbg"]})).await;
    let lonely = create(
        &gw.admin(),
        "/routes",
        json!({"name": "dbg-lonely", "paths": ["/dbg-lonely"]}),
        "lonely",
    )
    .await;
    settle(&gw).await;
    let proxy = gw.proxy();

    // any value of Kong-Debug will do
    for value in ["1", "0"] {
        let res = proxy.request("GET", "/dbg", &[("kong-debug", value)], "").await;
        assert_eq!(who(&res), "dbg-svc");
        assert_eq!(res.header("kong-route-id").as_deref(), route["id"].as_str(), "{value}");
        assert_eq!(res.header("kong-route-name").as_deref(), Some("dbg-route"));
        assert_eq!(res.header("kong-service-id").as_deref(), svc["id"].as_str());
        assert_eq!(res.header("kong-service-name").as_deref(), Some("dbg-svc"));
    }
    let res = proxy.get("/dbg").await;
    assert_eq!(who(&res), "dbg-svc");
    for h in DEBUG_HEADERS {
        assert_eq!(res.header(h), None, "{h} without Kong-Debug");
    }
    // a route without a service: the route's headers only
    let res = proxy.request("GET", "/dbg-lonely", &[("kong-debug", "1")], "").await;
    assert_eq!(res.status, 503);
    assert_eq!(res.header("kong-route-id").as_deref(), lonely["id"].as_str());
    assert_eq!(res.header("kong-route-name").as_deref(), Some("dbg-lonely"));
    assert_eq!(res.header("kong-service-id"), None);
    assert_eq!(res.header("kong-service-name"), None);
    // no route, no headers
    let res = proxy.request("GET", "/nothing", &[("kong-debug", "1")], "").await;
    assert_eq!(res.status, 404);
    for h in DEBUG_HEADERS {
        assert_eq!(res.header(h), None, "{h} on a 404");
    }
}

#[tokio::test]
async fn debug_headers_also_on_protocol_errors() {
    // Kong sets them when the route matches (`add_debug_headers` in router/atc.lua), before the
    // protocol checks answer
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().conf("allow_debug_header", "on").start().await;
    let svc = service(&gw, &up, "dbg-svc").await;
    let route = route_of(
        &gw,
        "dbg-svc",
        "dbg-secure",
        json!({"protocols": ["https"], "paths": ["/dbg-secure"]}),
    )
    .await;
    settle(&gw).await;
    let res = gw.proxy().request("GET", "/dbg-secure", &[("kong-debug", "1")], "").await;
    assert_kong_error(&res, 426, "Please use HTTPS protocol");
    assert_eq!(res.header("kong-route-id").as_deref(), route["id"].as_str());
    assert_eq!(res.header("kong-route-name").as_deref(), Some("dbg-secure"));
    assert_eq!(res.header("kong-service-id").as_deref(), svc["id"].as_str());
    assert_eq!(res.header("kong-service-name").as_deref(), Some("dbg-svc"));
}

#[tokio::test]
async fn no_debug_headers_by_default() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    add(&gw, &up, "dbg", json!({"paths": ["/dbg"]})).await;
    create(&gw.admin(), "/routes", json!({"name": "dbg-lonely", "paths": ["/dbg-lonely"]}), "r")
        .await;
    settle(&gw).await;
    for path in ["/dbg", "/dbg-lonely"] {
        let res = gw.proxy().request("GET", path, &[("kong-debug", "1")], "").await;
        assert!(matches!(res.status, 200 | 503), "{path}: {}", res.text());
        for h in DEBUG_HEADERS {
            assert_eq!(res.header(h), None, "{path}: {h} without allow_debug_header");
        }
    }
}

// ---- 5. live configuration ------------------------------------------------------------------

#[tokio::test]
async fn changes_are_live_on_one_node() {
    for db in databases() {
        let ctx = db.name();
        let up = Upstream::http().start().await;
        let gw = Gateway::builder().db(db.clone()).start().await;
        let proxy = gw.proxy();
        let admin = gw.admin();
        // no settle(): the first change is waited for through the proxy itself
        add(&gw, &up, "live", json!({"paths": ["/live"]})).await;
        until(&proxy, "GET", "/live", &[], ctx, |r| who(r) == "live").await;

        // the service's URL
        let url = format!("{}/moved-svc", up.url("http"));
        expect(&admin.patch_json("/services/live", &json!({"url": url})).await, 200, ctx);
        until(&proxy, "GET", "/live", &[], ctx, |r| who(r) == "moved-svc").await;

        // the route's hosts
        expect(&admin.patch_json("/routes/live", &json!({"hosts": ["live.test"]})).await, 200, ctx);
        until(&proxy, "GET", "/live", &[], ctx, |r| r.status == 404).await;
        let res = proxy.request("GET", "/live", &[("host", "live.test")], "").await;
        assert_eq!(who(&res), "moved-svc", "{ctx}");

        // a new route of the same service, then the old one deleted
        route_of(&gw, "live", "live-2", json!({"paths": ["/second"]})).await;
        until(&proxy, "GET", "/second", &[], ctx, |r| who(r) == "moved-svc").await;
        expect(&admin.delete("/routes/live").await, 204, ctx);
        until(&proxy, "GET", "/live", &[("host", "live.test")], ctx, |r| r.status == 404).await;
        assert_eq!(who(&proxy.get("/second").await), "moved-svc", "{ctx}");
    }
}

#[tokio::test]
async fn changes_reach_another_node() {
    let Some(url) = turnpike_store::testing::pg_url() else { return };
    let up = Upstream::http().start().await;
    let a = Gateway::builder().db(Db::Postgres(url)).start().await;
    let b = Gateway::builder().same_db_as(&a).start().await;
    let (pa, pb) = (a.proxy(), b.proxy());

    // created on A, routed by B
    add(&a, &up, "shared", json!({"name": "shared-r", "paths": ["/shared"]})).await;
    until(&pb, "GET", "/shared", &[], "B routes A's new route", |r| who(r) == "shared").await;

    // changed on A
    expect(
        &a.admin().patch_json("/routes/shared-r", &json!({"paths": ["/moved"]})).await,
        200,
        "patch",
    );
    until(&pb, "GET", "/moved", &[], "B follows A's change", |r| who(r) == "shared").await;
    until(&pb, "GET", "/shared", &[], "B drops the old path", |r| r.status == 404).await;

    // created on B, routed by A
    add(&b, &up, "from-b", json!({"paths": ["/from-b"]})).await;
    until(&pa, "GET", "/from-b", &[], "A routes B's new route", |r| who(r) == "from-b").await;

    // deleted on A
    expect(&a.admin().delete("/routes/shared-r").await, 204, "delete route");
    expect(&a.admin().delete("/services/shared").await, 204, "delete service");
    until(&pb, "GET", "/moved", &[], "B forgets the deleted route", |r| r.status == 404).await;
    assert_eq!(who(&pb.get("/from-b").await), "from-b");
}

/// A TCP relay to PostgreSQL that can be cut and restored, so that a node can lose its
/// database without touching the database itself.
struct Relay {
    addr: SocketAddr,
    target: String,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let mut relay = Relay { addr, target, accept: None, conns: Arc::default() };
        relay.serve(listener);
        relay
    }

    fn serve(&mut self, listener: TcpListener) {
        let (target, conns) = (self.target.clone(), self.conns.clone());
        self.accept = Some(tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns.lock().expect("relay connections").push(task);
            }
        }));
    }

    /// Closes the listener and every relayed connection.
    fn cut(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        for c in self.conns.lock().expect("relay connections").drain(..) {
            c.abort();
        }
    }

    /// Listens again on the same address.
    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind relay");
        self.serve(listener);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Drops a scratch schema when the test ends, however it ends.
struct Schema(Option<turnpike_store::PgConfig>);

impl Drop for Schema {
    fn drop(&mut self) {
        if let Some(cfg) = self.0.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(turnpike_store::testing::drop_schema(&cfg));
                }
            })
            .join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_keeps_its_configuration_while_the_database_is_unreachable() {
    let Some(url) = turnpike_store::testing::pg_url() else { return };
    let cfg = turnpike_store::testing::scratch_schema(&url).await;
    let _schema = Schema(Some(cfg.clone()));
    let mut relay = Relay::start(format!("{}:{}", cfg.host, cfg.port)).await;
    let mut through_relay = cfg.clone();
    through_relay.host = "127.0.0.1".into();
    through_relay.port = relay.addr.port();
    let with = |b: turnpike_test::GatewayBuilder, c: &turnpike_store::PgConfig| {
        pg_env(c).iter().fold(b, |b, (k, v)| b.env(k, v))
    };
    // A reaches the database through the relay; B directly
    let a = with(Gateway::builder(), &through_relay).start().await;
    let b = with(Gateway::builder(), &cfg).start().await;
    let up = Upstream::http().start().await;
    add(&b, &up, "kept", json!({"paths": ["/kept"]})).await;
    until(&a.proxy(), "GET", "/kept", &[], "A routes /kept", |r| who(r) == "kept").await;

    relay.cut();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !a.log().contains("cannot read the configuration version") {
        assert!(Instant::now() < deadline, "A never noticed the outage; log:\n{}", a.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // changes A cannot see
    add(&b, &up, "new", json!({"paths": ["/new"]})).await;
    expect(&b.admin().delete("/routes/kept").await, 204, "delete on B");
    until(&b.proxy(), "GET", "/new", &[], "B routes /new", |r| who(r) == "new").await;
    for _ in 0..5 {
        assert_eq!(who(&a.proxy().get("/kept").await), "kept", "A keeps its configuration");
        assert_eq!(who(&a.proxy().get("/new").await), "404");
    }

    // back online: A catches up
    relay.restore().await;
    let limit = Duration::from_secs(30);
    until_for(&a.proxy(), "GET", "/new", &[], "A catches up", limit, |r| who(r) == "new").await;
    until_for(&a.proxy(), "GET", "/kept", &[], "A drops /kept", limit, |r| r.status == 404).await;
}
