//! The traffic plugins end to end, with the real binary and an echo upstream:
//! request-size-limiting and request-termination (Kong's `kong/plugins/*/handler.lua` and
//! their specs `spec/03-plugins/12-request-size-limiting`, `14-request-termination`), and the
//! Admin API's handling of plugin configs (schemas, defaults, Kong's validation errors).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use turnpike_test::{
    assert_kong_error as assert_error, create, expect, is_uuid, raw_exchange, route_to, s,
    until_routed, upstream_seen as upstream, without, Gateway, Resp, Upstream,
};

// ---------------------------------------------------------------------------------------------
// helpers

/// A service `name` to the echo upstream with one route `name` on `path`, live on the proxy;
/// returns the route.
async fn echo_route(gw: &Gateway, up: &Upstream, name: &str, path: &str) -> Value {
    route_to(gw, name, &up.url("http"), json!({"name": name, "paths": [path]})).await;
    until_routed(gw, path).await;
    expect(&gw.admin().get(&format!("/routes/{name}")).await, 200, "route")
}

/// Adds a plugin to route `route`; returns it.
async fn route_plugin(gw: &Gateway, route: &str, name: &str, config: Value) -> Value {
    let path = format!("/routes/{route}/plugins");
    create(&gw.admin(), &path, json!({"name": name, "config": config}), &path).await
}

/// Sends `method path` with `headers` and `body` to the proxy.
async fn send(
    gw: &Gateway,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    gw.proxy().request(method, path, headers, body.to_owned()).await
}

/// Sends GET `path` with `headers` until the proxy answers `status` (Admin API changes reach
/// the proxy asynchronously), for at most 10 s; returns that response.
async fn until_status(gw: &Gateway, path: &str, headers: &[(&str, &str)], status: u16) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = send(gw, "GET", path, headers, "").await;
        if res.status == status {
            return res;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} never answered {status}; last {}: {}",
            res.status,
            res.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A response read off a raw connection: status, lowercase headers, de-chunked body.
struct RawResp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("not JSON ({e}): {} {:?}", self.status, String::from_utf8_lossy(&self.body))
        })
    }
}

/// Writes `request` on a new connection to the proxy and reads the final response (after
/// any `100 Continue`) until the gateway closes the connection (the request says
/// `Connection: close`).
async fn raw(gw: &Gateway, request: &[u8]) -> RawResp {
    let (mut bytes, _) =
        raw_exchange(gw.proxy_url().expect("proxy"), request, Duration::from_secs(10)).await;
    while bytes.starts_with(b"HTTP/1.1 1") {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("interim head");
        bytes.drain(..end + 4);
    }
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&bytes)));
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut rest = &bytes[end + 4..];
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v == "chunked");
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
            let size_text = String::from_utf8_lossy(&rest[..eol]).into_owned();
            let size = usize::from_str_radix(size_text.trim(), 16).expect("chunk size");
            rest = &rest[eol + 2..];
            if size == 0 {
                break body;
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    } else {
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map_or(rest.len(), |(_, v)| v.parse().expect("content-length"));
        rest[..len].to_vec()
    };
    RawResp { status, headers, body }
}

/// A request with a chunked body (`extra` are more header lines, each ending in CRLF).
fn chunked_request(path: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Transfer-Encoding: chunked\r\n{extra}\r\n"
    )
    .into_bytes();
    if !body.is_empty() {
        r.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        r.extend_from_slice(body);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

// ---------------------------------------------------------------------------------------------
// request-size-limiting

const LIMIT_MSG: &str = "Request size limit exceeded";

/// A declared `Content-Length` over the limit is refused before the body is read: 413, or
/// 417 when the client waits for `100 Continue`; at or under the limit the body goes
/// upstream. The unit multiplies the size (1 KB = 1024 bytes, 1 MB = 2^20).
#[tokio::test]
async fn request_size_limiting_by_content_length() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "bytes", "/bytes").await;
    echo_route(&gw, &up, "kb", "/kb").await;
    echo_route(&gw, &up, "default", "/default").await;
    let conf = json!({"allowed_payload_size": 10, "size_unit": "bytes"});
    route_plugin(&gw, "bytes", "request-size-limiting", conf).await;
    let conf = json!({"allowed_payload_size": 1, "size_unit": "kilobytes"});
    route_plugin(&gw, "kb", "request-size-limiting", conf).await;
    let p = route_plugin(&gw, "default", "request-size-limiting", json!({})).await;
    assert_eq!(
        p["config"],
        json!({"allowed_payload_size": 128, "size_unit": "megabytes", "require_content_length": false})
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = send(&gw, "POST", "/default/count", &[], "x").await;
        let limited = send(&gw, "POST", "/bytes", &[], "12345678901").await;
        let kb = send(&gw, "POST", "/kb", &[], &"x".repeat(1025)).await;
        if res.status == 200 && limited.status == 413 && kb.status == 413 {
            break;
        }
        assert!(Instant::now() < deadline, "the size limits never became live");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let res = send(&gw, "POST", "/bytes", &[], "12345678901").await;
    assert_error(&res, 413, LIMIT_MSG);
    let res = send(&gw, "POST", "/bytes", &[("expect", "100-continue")], "12345678901").await;
    assert_error(&res, 417, LIMIT_MSG);
    let res = send(&gw, "POST", "/bytes", &[("expect", " 100-Continue ")], "12345678901").await;
    assert_error(&res, 417, LIMIT_MSG);
    let seen = upstream(&send(&gw, "POST", "/bytes", &[], "1234567890").await);
    assert_eq!((&seen["body"], &seen["body_len"]), (&json!("1234567890"), &json!(10)));
    let res = send(&gw, "POST", "/bytes", &[("expect", "100-continue")], "1234567890").await;
    assert_eq!(upstream(&res)["body_len"], 10, "at the limit with Expect");
    // no body at all
    upstream(&send(&gw, "GET", "/bytes", &[], "").await);

    let res = send(&gw, "POST", "/kb", &[], &"x".repeat(1025)).await;
    assert_error(&res, 413, LIMIT_MSG);
    assert_eq!(upstream(&send(&gw, "POST", "/kb", &[], &"x".repeat(1024)).await)["body_len"], 1024);

    // the default: 128 megabytes, judged on the header alone
    let over = format!(
        "POST /default HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n",
        128 * 1024 * 1024 + 1
    );
    let res = raw(&gw, over.as_bytes()).await;
    assert_eq!(res.status, 413);
    assert_eq!(res.json()["message"], LIMIT_MSG);
    assert_eq!(res.header("content-type"), Some("application/json; charset=utf-8"));
    let res = send(&gw, "POST", "/default/count", &[], &"x".repeat(1024 * 1024)).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), json!({"count": 1024 * 1024}));
}

/// `require_content_length`: a request without `Content-Length` (and not chunked) is 411; a
/// chunked one is measured instead.
#[tokio::test]
async fn request_size_limiting_require_content_length() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "strict", "/strict").await;
    let conf =
        json!({"allowed_payload_size": 10, "size_unit": "bytes", "require_content_length": true});
    route_plugin(&gw, "strict", "request-size-limiting", conf).await;

    let res = until_status(&gw, "/strict", &[], 411).await;
    assert_error(&res, 411, "A valid Content-Length header is required");
    let res = send(&gw, "POST", "/strict", &[("content-length", "0")], "").await;
    assert_eq!(upstream(&res)["body_len"], 0);
    let res = send(&gw, "POST", "/strict", &[], "12345").await;
    assert_eq!(upstream(&res)["body_len"], 5);
    let res = send(&gw, "POST", "/strict", &[], "12345678901").await;
    assert_error(&res, 413, LIMIT_MSG);

    let res = raw(&gw, &chunked_request("/strict", "", b"12345")).await;
    assert_eq!(res.status, 200, "chunked is allowed without Content-Length");
    assert_eq!(res.json()["body"], "12345");

    let res =
        raw(&gw, b"DELETE /strict HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await;
    assert_eq!(res.status, 411);
    assert_eq!(res.json()["message"], "A valid Content-Length header is required");
}

/// Without `Content-Length`, Kong reads the body and measures it (spec "without
/// Content-Length (chunked request body)").
#[tokio::test]
async fn request_size_limiting_measures_chunked_bodies() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "bytes", "/bytes").await;
    let conf = json!({"allowed_payload_size": 10, "size_unit": "bytes"});
    route_plugin(&gw, "bytes", "request-size-limiting", conf).await;
    until_limited(&gw, "/bytes").await;

    let res = raw(&gw, &chunked_request("/bytes", "", b"1234567890")).await;
    assert_eq!(res.status, 200, "at the limit");
    assert_eq!(res.json()["body"], "1234567890");
    let res = raw(&gw, &chunked_request("/bytes", "", b"12345678901")).await;
    assert_eq!(res.status, 413);
    assert_eq!(res.json()["message"], LIMIT_MSG);
    let res = raw(&gw, &chunked_request("/bytes", "Expect: 100-continue\r\n", b"1234567890")).await;
    assert_eq!(res.status, 200, "at the limit, with Expect");
}

/// Kong's `check_size` answers 417 to a client that sent `Expect: 100-continue`, whether the
/// size came from `Content-Length` or from reading a chunked body (spec "blocks if size is
/// greater than limit and Expect header", chunked variant).
#[tokio::test]
async fn request_size_limiting_chunked_over_limit_with_expect_is_417() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "bytes", "/bytes").await;
    let conf = json!({"allowed_payload_size": 10, "size_unit": "bytes"});
    route_plugin(&gw, "bytes", "request-size-limiting", conf).await;
    until_limited(&gw, "/bytes").await;

    let res =
        raw(&gw, &chunked_request("/bytes", "Expect: 100-continue\r\n", b"12345678901")).await;
    assert_eq!(res.status, 417);
    assert_eq!(res.json()["message"], LIMIT_MSG);
}

/// Waits until a 10-byte limit on `path` is live (an 11-byte body is refused).
async fn until_limited(gw: &Gateway, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while send(gw, "POST", path, &[], "12345678901").await.status != 413 {
        assert!(Instant::now() < deadline, "the size limit on {path} never became live");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// request-termination

#[tokio::test]
async fn request_termination_responses() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    let routes: [(&str, Value); 6] = [
        ("default", json!({})),
        ("custom", json!({"status_code": 406, "message": "Invalid"})),
        ("notfound", json!({"status_code": 404})),
        ("nomessage", json!({"status_code": 418})),
        (
            "html",
            json!({"status_code": 451, "content_type": "text/html", "body": "<html><body><h1>Service is down due to content infringement</h1></body></html>"}),
        ),
        ("trigger", json!({"status_code": 409, "message": "triggered", "trigger": "x-trigger"})),
    ];
    for (name, conf) in &routes {
        echo_route(&gw, &up, name, &format!("/{name}")).await;
        let p = route_plugin(&gw, name, "request-termination", conf.clone()).await;
        if *name == "default" {
            assert_eq!(
                p["config"],
                json!({"status_code": 503, "message": null, "content_type": null, "body": null, "echo": false, "trigger": null})
            );
        }
    }
    until_status(&gw, "/trigger", &[("x-trigger", "1")], 409).await;

    // kong.response.exit(status, {message = …}): the table as JSON, no request id
    let res = send(&gw, "GET", "/default", &[], "").await;
    assert_eq!(res.status, 503);
    assert_eq!(res.text(), r#"{"message":"Service unavailable"}"#);
    assert_eq!(res.header("content-type").as_deref(), Some("application/json; charset=utf-8"));
    assert!(res.header("server").is_some_and(|s| s.starts_with("turnpike/")), "Server header");
    let res = send(&gw, "POST", "/custom/x?y=1", &[], "a body").await;
    assert_eq!((res.status, res.json()), (406, json!({"message": "Invalid"})));
    let res = send(&gw, "GET", "/notfound", &[], "").await;
    assert_eq!((res.status, res.json()), (404, json!({"message": "Not found"})));
    // no default message for 418: no body
    let res = send(&gw, "GET", "/nomessage", &[], "").await;
    assert_eq!((res.status, res.text()), (418, String::new()));
    // a raw body with its content type
    let res = send(&gw, "GET", "/html", &[], "").await;
    assert_eq!(res.status, 451);
    assert_eq!(
        res.text(),
        "<html><body><h1>Service is down due to content infringement</h1></body></html>"
    );
    assert_eq!(res.header("content-type").as_deref(), Some("text/html"));

    // trigger: a header or a query argument of that name, with or without a value
    let seen = upstream(&send(&gw, "GET", "/trigger/a?b=c", &[("x-other", "1")], "").await);
    assert_eq!(seen["uri"], "/a?b=c", "no trigger: proxied");
    for (path, headers) in [
        ("/trigger", &[("x-trigger", "1")][..]),
        ("/trigger", &[("X-Trigger", "yes")][..]),
        ("/trigger?x-trigger=1", &[][..]),
        ("/trigger?a=1&x-trigger", &[][..]),
    ] {
        let res = send(&gw, "GET", path, headers, "").await;
        assert_eq!((res.status, res.json()), (409, json!({"message": "triggered"})), "{path}");
    }
}

/// `echo=true`: the request described back as JSON, with the trigger as header or query.
#[tokio::test]
async fn request_termination_echo() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    let route = echo_route(&gw, &up, "echo", "/echo").await;
    echo_route(&gw, &up, "echotrigger", "/echotrigger").await;
    route_plugin(&gw, "echo", "request-termination", json!({"echo": true, "status_code": 404}))
        .await;
    let conf = json!({"echo": true, "trigger": "gimme-an-echo"});
    route_plugin(&gw, "echotrigger", "request-termination", conf).await;
    until_status(&gw, "/echotrigger", &[("gimme-an-echo", "1")], 503).await;

    let res = send(&gw, "GET", "/echo/status/200?hello=there", &[("accept", "*/*")], "").await;
    assert_eq!(res.status, 404);
    assert_eq!(res.header("content-type").as_deref(), Some("application/json; charset=utf-8"));
    let j = res.json();
    assert_eq!(j["message"], "Not found");
    assert_eq!(j["request"]["method"], "GET");
    assert_eq!(j["request"]["path"], "/echo/status/200");
    assert_eq!(j["request"]["query"], json!({"hello": "there"}));
    assert_eq!(j["request"]["scheme"], "http");
    assert_eq!(j["request"]["headers"]["accept"], "*/*");
    assert_eq!(j["matched_route"]["id"], route["id"]);
    assert_eq!(j["matched_service"]["id"], route["service"]["id"]);

    upstream(&send(&gw, "GET", "/echotrigger", &[], "").await);
    let res = send(&gw, "GET", "/echotrigger?gimme-an-echo=x", &[], "").await;
    assert_eq!(res.status, 503);
    let j = res.json();
    assert_eq!(j["message"], "Service unavailable");
    assert_eq!(j["request"]["query"], json!({"gimme-an-echo": "x"}));
}

/// A gateway with an echo route `/echo` whose request-termination echoes (status 404) when the
/// `gimme-an-echo` trigger is present; returns the echo of a POST with a body and a query.
async fn kong_echo(up: &Upstream) -> (Gateway, Value) {
    let gw = Gateway::builder().start().await;
    echo_route(&gw, up, "echo", "/echo").await;
    let conf = json!({"echo": true, "status_code": 404, "trigger": "gimme-an-echo"});
    route_plugin(&gw, "echo", "request-termination", conf).await;
    let trigger = [("gimme-an-echo", "anything will do")];
    until_status(&gw, "/echo", &trigger, 404).await;
    let res = send(&gw, "POST", "/echo/status/200?hello=there", &trigger, "cool body").await;
    assert_eq!(res.status, 404);
    let j = res.json();
    (gw, j)
}

/// Kong's echo of the request (14-request-termination/02-access_spec.lua "echos a request if
/// the trigger is specified as a header"): every request header (the trigger's too), host,
/// port, raw body, URI captures (`unnamed` is an array: `cjson.array_mt`), and the node.
#[tokio::test]
async fn request_termination_echo_like_kong() {
    let up = Upstream::http().start().await;
    let (gw, j) = kong_echo(&up).await;
    let port: u16 = gw.proxy_url().and_then(|u| u.rsplit(':').next()).unwrap().parse().unwrap();
    assert_eq!(j["message"], "Not found", "{j}");
    // (`body` is checked with the matched entities below)
    assert_eq!(
        without(&j["request"], &["body"]),
        json!({
            "scheme": "http",
            "host": "127.0.0.1",
            "port": port,
            "headers": {
                "gimme-an-echo": "anything will do",
                "host": format!("127.0.0.1:{port}"),
                "content-length": "9",
            },
            "query": {"hello": "there"},
            "raw_body": "cool body",
            "method": "POST",
            "path": "/echo/status/200",
            "uri_captures": {"named": {}, "unnamed": []},
        }),
        "{j}"
    );
    assert!(is_uuid(&j["kong"]["node_id"]), "{j}");
    assert!(j["kong"]["worker_pid"].is_u64(), "{j}");
    assert!(j["kong"]["hostname"].is_string(), "{j}");
}

/// The rest of Kong's echo: `matched_route` and `matched_service` are the entities
/// (`kong.router.get_route()` / `get_service()`), and `body` is absent when
/// `kong.request.get_body()` returns nil (no Content-Type).
#[tokio::test]
#[ignore = "known difference: request-termination echo gives only the ids of matched_route/matched_service (Kong: the whole entities); see docs/plugins.md"]
async fn request_termination_echo_matched_entities_like_kong() {
    let up = Upstream::http().start().await;
    let (gw, j) = kong_echo(&up).await;
    let route = expect(&gw.admin().get("/routes/echo").await, 200, "route");
    assert_eq!(j["matched_route"]["id"], route["id"], "{j}");
    assert_eq!(j["matched_route"]["name"], "echo", "{j}");
    assert_eq!(j["matched_route"]["paths"], json!(["/echo"]), "{j}");
    assert_eq!(j["matched_route"]["service"], route["service"], "{j}");
    assert_eq!(j["matched_service"]["id"], route["service"]["id"], "{j}");
    assert_eq!(j["matched_service"]["name"], "echo", "{j}");
    assert_eq!(j["matched_service"]["host"], "127.0.0.1", "{j}");
    assert_eq!(j["matched_service"]["port"], up.port(), "{j}");
    assert_eq!(j["request"].get("body"), None, "{j}");
}

// ---------------------------------------------------------------------------------------------
// the Admin API and plugin configs

fn violation(message: &str, fields: Value) -> Value {
    json!({
        "code": 2,
        "name": "schema violation",
        "message": format!("schema violation ({message})"),
        "fields": fields,
    })
}

/// Kong's schema violations for plugin configs, on POST /plugins and on
/// /schemas/plugins/validate alike; nothing is stored.
#[tokio::test]
async fn plugin_configs_are_validated() {
    let gw = Gateway::builder().start().await;
    let admin = gw.admin();
    let consumer = create(&admin, "/consumers", json!({"username": "c"}), "consumer").await;
    let cases = [
        (
            json!({"name": "key-auth", "config": {"nope": 1}}),
            violation("config.nope: unknown field", json!({"config": {"nope": "unknown field"}})),
        ),
        (
            json!({"name": "request-termination", "config": {"status_code": 600}}),
            violation(
                "config.status_code: value should be between 100 and 599",
                json!({"config": {"status_code": "value should be between 100 and 599"}}),
            ),
        ),
        (
            json!({"name": "request-termination", "config": {"message": "m", "body": "b"}}),
            violation(
                "config: message cannot be used with content_type or body",
                json!({"config": "message cannot be used with content_type or body"}),
            ),
        ),
        (
            json!({"name": "request-termination", "config": {"content_type": "text/plain"}}),
            violation(
                "config: content_type requires a body",
                json!({"config": "content_type requires a body"}),
            ),
        ),
        (
            json!({"name": "request-size-limiting", "config": {"size_unit": "gigabytes"}}),
            violation(
                "config.size_unit: expected one of: megabytes, kilobytes, bytes",
                json!({"config": {"size_unit": "expected one of: megabytes, kilobytes, bytes"}}),
            ),
        ),
        (
            json!({"name": "key-auth", "config": {"hide_credentials": "yes"}}),
            violation(
                "config.hide_credentials: expected a boolean",
                json!({"config": {"hide_credentials": "expected a boolean"}}),
            ),
        ),
        (
            json!({"name": "key-auth", "consumer": {"id": consumer["id"]}}),
            violation("consumer: value must be null", json!({"consumer": "value must be null"})),
        ),
        (
            json!({"name": "basic-auth", "consumer": {"id": consumer["id"]}}),
            violation("consumer: value must be null", json!({"consumer": "value must be null"})),
        ),
        (
            json!({"name": "foo"}),
            violation(
                "name: plugin 'foo' not enabled; add it to the 'plugins' configuration property",
                json!({"name": "plugin 'foo' not enabled; add it to the 'plugins' configuration property"}),
            ),
        ),
    ];
    for (body, want) in &cases {
        let res = admin.post_json("/plugins", body).await;
        assert_eq!(&expect(&res, 400, &format!("POST {body}")), want, "POST {body}");
        let res = admin.post_json("/schemas/plugins/validate", body).await;
        assert_eq!(&expect(&res, 400, &format!("validate {body}")), want, "validate {body}");
    }
    let res = admin.post_form("/plugins", &[("name", "key-auth"), ("config.nope", "1")]).await;
    assert_eq!(expect(&res, 400, "form"), cases[0].1);
    assert_eq!(expect(&admin.get("/plugins").await, 200, "list")["data"], json!([]));

    let ok = json!({"message": "schema validation successful"});
    for body in [
        json!({"name": "key-auth", "config": {"key_names": ["x-key"], "realm": "r"}}),
        json!({"name": "request-termination", "config": {"body": "b", "content_type": "text/plain"}}),
        json!({"name": "request-termination", "consumer": {"id": consumer["id"]}}),
        json!({"name": "acl", "config": {"deny": ["d"]}}),
    ] {
        let res = admin.post_json("/schemas/plugins/validate", &body).await;
        assert_eq!(expect(&res, 200, &format!("validate {body}")), ok, "{body}");
    }
    assert_eq!(expect(&admin.get("/plugins").await, 200, "list")["data"], json!([]));
}

/// What a created plugin looks like: Kong's defaults filled into `config`, the HTTP protocols.
#[tokio::test]
async fn plugin_defaults() {
    let gw = Gateway::builder().start().await;
    let admin = gw.admin();
    let cases = [
        (
            json!({"name": "key-auth"}),
            json!({"key_names": ["apikey"], "hide_credentials": false, "anonymous": null, "key_in_header": true, "key_in_query": true, "key_in_body": false, "run_on_preflight": true, "realm": null}),
        ),
        (
            json!({"name": "basic-auth"}),
            json!({"anonymous": null, "hide_credentials": false, "realm": "service"}),
        ),
        (
            json!({"name": "acl", "config": {"allow": ["a"]}}),
            json!({"allow": ["a"], "deny": null, "hide_groups_header": false, "always_use_authenticated_groups": false}),
        ),
        (
            json!({"name": "request-size-limiting"}),
            json!({"allowed_payload_size": 128, "size_unit": "megabytes", "require_content_length": false}),
        ),
        (
            json!({"name": "request-termination"}),
            json!({"status_code": 503, "message": null, "content_type": null, "body": null, "echo": false, "trigger": null}),
        ),
    ];
    for (body, config) in cases {
        let p = create(&admin, "/plugins", body.clone(), "plugin").await;
        assert_eq!(p["config"], config, "{body}");
        assert_eq!(p["protocols"], json!(["grpc", "grpcs", "http", "https"]), "{body}");
        assert_eq!(
            (&p["enabled"], &p["route"], &p["service"], &p["consumer"]),
            (&json!(true), &Value::Null, &Value::Null, &Value::Null),
            "{body}"
        );
        assert_eq!(expect(&admin.get(&format!("/plugins/{}", s(&p["id"]))).await, 200, "GET"), p);
    }
}

/// Removes every `description` (Kong documents each field; the shape is what is compared).
fn strip_descriptions(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.remove("description");
            o.values_mut().for_each(strip_descriptions);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}

/// The `config` record of a plugin schema from GET /schemas/plugins/{name}.
fn config_record(schema: &Value) -> Value {
    let mut config = schema["fields"]
        .as_array()
        .and_then(|f| f.iter().find_map(|f| f.get("config").cloned()))
        .unwrap_or_else(|| panic!("no config field in {schema}"));
    strip_descriptions(&mut config);
    config
}

#[tokio::test]
async fn plugin_schemas_and_enabled_list() {
    let gw = Gateway::builder().start().await;
    let admin = gw.admin();
    let j = expect(&admin.get("/plugins/enabled").await, 200, "enabled");
    let enabled = j["enabled_plugins"].as_array().expect("enabled_plugins");
    for name in ["key-auth", "basic-auth", "acl", "request-size-limiting", "request-termination"] {
        assert!(enabled.contains(&json!(name)), "{name} in {j}");
        let schema = expect(&admin.get(&format!("/schemas/plugins/{name}")).await, 200, name);
        assert_eq!(config_record(&schema)["type"], "record", "{name}");
    }

    let schema = expect(&admin.get("/schemas/plugins/key-auth").await, 200, "key-auth");
    let fields = schema["fields"].as_array().expect("fields");
    let names: Vec<&str> =
        fields.iter().filter_map(|f| f.as_object()?.keys().next().map(String::as_str)).collect();
    assert_eq!(names, ["consumer", "protocols", "config"]);
    assert_eq!(fields[0]["consumer"]["type"], "foreign");
    assert_eq!(fields[0]["consumer"]["reference"], "consumers");
    assert_eq!(fields[0]["consumer"]["eq"], Value::Null);
    assert_eq!(fields[1]["protocols"]["default"], json!(["grpc", "grpcs", "http", "https"]));
    let config = config_record(&schema);
    let by_name = |n: &str| -> Value {
        config["fields"]
            .as_array()
            .and_then(|f| f.iter().find_map(|f| f.get(n).cloned()))
            .unwrap_or_else(|| panic!("no config.{n} in {config}"))
    };
    assert_eq!(
        by_name("key_names"),
        json!({"type": "array", "required": true, "default": ["apikey"], "elements": {"type": "string"}})
    );
    for (name, default) in [
        ("hide_credentials", false),
        ("key_in_header", true),
        ("key_in_query", true),
        ("key_in_body", false),
        ("run_on_preflight", true),
    ] {
        assert_eq!(
            by_name(name),
            json!({"type": "boolean", "required": true, "default": default}),
            "{name}"
        );
    }
    assert_eq!(by_name("anonymous"), json!({"type": "string"}));
    assert_eq!(by_name("realm")["type"], "string");

    let schema = expect(&admin.get("/schemas/plugins/acl").await, 200, "acl");
    assert_eq!(
        schema["entity_checks"],
        json!([
            {"only_one_of": ["config.allow", "config.deny"]},
            {"at_least_one_of": ["config.allow", "config.deny"]}
        ])
    );
    let res = admin.get("/schemas/plugins/not-a-plugin").await;
    assert_eq!(expect(&res, 404, "unknown"), json!({"message": "No plugin named 'not-a-plugin'"}));
}

/// key-auth's config record as Kong's `schema_to_jsonable` prints it (descriptions aside):
/// field order, and `required = false` on `realm` as `schema.lua` declares it.
#[tokio::test]
async fn key_auth_schema_like_kong() {
    let gw = Gateway::builder().start().await;
    let schema = expect(&gw.admin().get("/schemas/plugins/key-auth").await, 200, "key-auth");
    let bool_field = |d: bool| json!({"type": "boolean", "required": true, "default": d});
    assert_eq!(
        config_record(&schema)["fields"],
        json!([
            {"key_names": {"type": "array", "required": true, "default": ["apikey"], "elements": {"type": "string"}}},
            {"hide_credentials": bool_field(false)},
            {"anonymous": {"type": "string"}},
            {"key_in_header": bool_field(true)},
            {"key_in_query": bool_field(true)},
            {"key_in_body": bool_field(false)},
            {"run_on_preflight": bool_field(true)},
            {"realm": {"type": "string", "required": false}},
        ])
    );
}
