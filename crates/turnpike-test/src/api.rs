//! Helpers for the Admin API tests ported from Kong's specs: sending one JSON value as JSON,
//! form or multipart (as Kong's spec client does), checking responses, creating fixtures,
//! and the small conversions the specs use.

use std::path::Path;

use serde_json::{json, Value};

use crate::client::{Client, Resp};
use crate::gateway::{Db, Gateway};

// ---- content types --------------------------------------------------------------------------

/// The content type a case sends its body with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ct {
    /// `application/x-www-form-urlencoded`, the body flattened by [`flatten`].
    Form,
    /// `multipart/form-data`, the body flattened by [`flatten`], one part a field.
    Multipart,
    /// `application/json`.
    Json,
}

/// Every content type: what Kong's spec runs most cases with.
pub const ALL: [Ct; 3] = [Ct::Form, Ct::Multipart, Ct::Json];

/// The content types of cases where Kong's spec skips multipart ("the client doesn't play
/// well with this").
pub const FORM_JSON: [Ct; 2] = [Ct::Form, Ct::Json];

impl Ct {
    /// The `Content-Type` (without a multipart boundary).
    pub fn header(self) -> &'static str {
        match self {
            Ct::Form => "application/x-www-form-urlencoded",
            Ct::Multipart => "multipart/form-data",
            Ct::Json => "application/json",
        }
    }
}

/// Kong's `encode_args` as its spec client uses it for form bodies: object keys sorted and
/// joined as `a.b`, array items as `a[1]`, `a[2]`..., null as "".
pub fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for k in keys {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, &o[k], out);
            }
        }
        Value::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{}]", i + 1), item, out);
            }
        }
        Value::Null => out.push((prefix.to_owned(), String::new())),
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// Sends `body` with `method`, encoded as `ct` (flattened by [`flatten`] unless JSON).
pub async fn send(c: &Client, ct: Ct, method: &str, path: &str, body: &Value) -> Resp {
    match ct {
        Ct::Json => c.send_json(method, path, body).await,
        Ct::Form | Ct::Multipart => {
            let mut fields = Vec::new();
            flatten("", body, &mut fields);
            send_fields(c, ct == Ct::Multipart, method, path, &fields).await
        }
    }
}

/// Sends already flattened fields as a form, or as multipart parts (without a content type
/// of their own) when `multipart`.
pub async fn send_fields(
    c: &Client,
    multipart: bool,
    method: &str,
    path: &str,
    fields: &[(String, String)],
) -> Resp {
    if multipart {
        let parts: Vec<(&str, &str, &str)> =
            fields.iter().map(|(k, v)| (k.as_str(), "", v.as_str())).collect();
        c.send_multipart(method, path, &parts).await
    } else {
        let pairs: Vec<(&str, &str)> =
            fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        c.send_form(method, path, &pairs).await
    }
}

/// A GET carrying a body that is not JSON (Kong ignores bodies of GET requests).
pub async fn get_with_bad_body(c: &Client, path: &str) -> Resp {
    c.request("GET", path, &[("content-type", "application/json")], "this fails if decoded as json")
        .await
}

/// Sends `GET <raw path>` over a plain socket, so that the request line carries raw UTF-8
/// bytes as Kong's spec client sends them (the `http` crate only accepts ASCII URIs).
/// Returns the status and the JSON body (`Null` when it is not JSON).
pub async fn raw_get(c: &Client, raw_path: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = c.base().trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {raw_path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

// ---- responses ------------------------------------------------------------------------------

/// Asserts the status and returns the JSON body: a 204 must have an empty body (`Null` is
/// returned), any other status a JSON one.
#[track_caller]
pub fn expect(res: &Resp, status: u16, case: &str) -> Value {
    assert_eq!(res.status, status, "{case}: unexpected status; body: {}", res.text());
    if status == 204 {
        assert_eq!(res.text(), "", "{case}: 204 must have an empty body");
        return Value::Null;
    }
    res.json()
}

/// Asserts the status and returns the JSON body, or `Null` when the body is empty (whatever
/// the status); a non-empty body must be JSON.
#[track_caller]
pub fn expect_or_empty(res: &Resp, status: u16, ctx: &str) -> Value {
    assert_eq!(res.status, status, "{ctx}: status; body {}", res.text());
    if res.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&res.body)
            .unwrap_or_else(|e| panic!("{ctx}: body is not JSON ({e}): {}", res.text()))
    }
}

/// The response headers without those that legitimately differ between two requests
/// (`Date`, `X-Kong-Admin-Latency`), sorted.
pub fn stable_headers(res: &Resp) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = res
        .headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-kong-admin-latency"))
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    h.sort();
    h
}

/// Walks the collection at `path`, holding `total` entities, in pages of `size` by following
/// each page's `offset`: every page must be a 200 with `size` entities (the last one with the
/// rest) and differ from the page before. `check` gets each page with its number (from 1).
/// Returns the `offset` of the last page.
pub async fn walk_pages(
    c: &Client,
    path: &str,
    size: usize,
    total: usize,
    ctx: &str,
    mut check: impl FnMut(usize, &Value),
) -> Option<String> {
    let pages = total.div_ceil(size);
    let mut offset: Option<String> = None;
    let mut prev: Option<Value> = None;
    for i in 1..=pages {
        let url = match &offset {
            Some(o) => format!("{path}?size={size}&offset={}", escape_uri(o)),
            None => format!("{path}?size={size}"),
        };
        let page = expect(&c.get(&url).await, 200, &format!("{ctx}: page {i}"));
        let want = if i < pages { size } else { total - size * (pages - 1) };
        assert_eq!(page["data"].as_array().map(Vec::len), Some(want), "{ctx}: page {i} size");
        if let Some(p) = &prev {
            assert_ne!(p, &page, "{ctx}: page {i} differs from the one before");
        }
        check(i, &page);
        offset = page.get("offset").and_then(Value::as_str).map(str::to_owned);
        prev = Some(page);
    }
    offset
}

// ---- fixtures -------------------------------------------------------------------------------

/// Starts a gateway with the default configuration on `db`.
pub async fn gateway(db: &Db) -> Gateway {
    Gateway::builder().db(db.clone()).start().await
}

/// POSTs JSON and expects 201; returns the created entity.
pub async fn create(c: &Client, path: &str, body: Value, case: &str) -> Value {
    let res = c.post_json(path, &body).await;
    expect(&res, 201, &format!("{case} (setup POST {path} {body})"))
}

/// A fresh random (v4) UUID.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `v` is a string holding a hyphenated UUID.
pub fn is_uuid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == 36 && uuid::Uuid::parse_str(s).is_ok())
}

/// The listeners a node started with `prefix` reports (`turnpike.listeners`).
pub fn listeners(prefix: &Path) -> Value {
    let text = std::fs::read_to_string(prefix.join("turnpike.listeners")).expect("listeners file");
    serde_json::from_str(&text).expect("listeners JSON")
}

// ---- values ---------------------------------------------------------------------------------

/// The string in `v`; panics when it is not one.
pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("expected a string, got {v}"))
}

/// `v` without `keys` (when it is an object).
pub fn without(v: &Value, keys: &[&str]) -> Value {
    let mut v = v.clone();
    if let Value::Object(o) = &mut v {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

/// `ngx.escape_uri`: percent-encodes every byte but ASCII letters, digits and `-_.~`.
pub fn escape_uri(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Creates a service named `name` at `url` and one route on it (`route` is its JSON).
pub async fn route_to(gw: &crate::Gateway, name: &str, url: &str, route: Value) {
    let admin = gw.admin();
    expect(&admin.post_json("/services", &json!({"name": name, "url": url})).await, 201, "service");
    let res = admin.post_json(&format!("/services/{name}/routes"), &route).await;
    expect(&res, 201, "route");
}

/// Waits (up to 5 s) until the proxy answers `path` with something other than "no route".
pub async fn until_routed(gw: &crate::Gateway, path: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let res = gw.proxy().get(path).await;
        if res.status != 404 || !res.text().contains("no Route matched") {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the route to {path} never became live");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Sends GET `path` with `headers` to the proxy until it answers `status` (Admin API changes
/// reach the proxy asynchronously), for at most 10 s; returns that response.
pub async fn until_status(
    gw: &crate::Gateway,
    path: &str,
    headers: &[(&str, &str)],
    status: u16,
) -> Resp {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let res = gw.proxy().request("GET", path, headers, "").await;
        if res.status == status {
            return res;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "GET {path} {headers:?} never answered {status}; last {}: {}",
            res.status,
            res.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Asserts a `kong.response.error` answer: the status and Kong's JSON body (3.5+: with the
/// request id of the `X-Kong-Request-Id` header).
#[track_caller]
pub fn assert_kong_error(res: &Resp, status: u16, message: &str) {
    assert_eq!(res.status, status, "body: {}", res.text());
    let rid = res.header("x-kong-request-id").expect("X-Kong-Request-Id");
    assert_eq!(res.json(), json!({"message": message, "request_id": rid}), "{message}");
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/json; charset=utf-8"),
        "{message}"
    );
}

/// Waits until everything written to the Admin API so far is live on the proxy.
///
/// Adds a fresh service and a route on it, and polls until the proxy matches that route. A
/// configuration snapshot loads services, then routes, then plugins, consumers and
/// credentials (`SNAPSHOT_ENTITIES`), so the first snapshot that routes the sentinel was read
/// after every earlier write. The sentinel's upstream is a closed port (no test upstream sees
/// the probes): any answer but "no Route matched" will do.
pub async fn settle(gw: &crate::Gateway) {
    let name = format!("sentinel-{}", new_uuid());
    let a = gw.admin();
    create(&a, "/services", json!({"name": name, "url": "http://127.0.0.1:9"}), "sentinel").await;
    let path = format!("/{name}");
    let route = json!({"paths": [path]});
    create(&a, &format!("/services/{name}/routes"), route, "sentinel route").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let res = gw.proxy().get(&path).await;
        if res.status != 404 || !res.text().contains("no Route matched") {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the configuration never became live");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The request the echo upstream received (the response must be its 200).
#[track_caller]
pub fn upstream_seen(res: &Resp) -> Value {
    assert_eq!(res.status, 200, "not proxied: {}", res.text());
    res.json()
}
