//! Bad input on the Admin API, against the real `turnpike` binary on every database: every
//! case must get Kong's status and a Kong-shaped JSON error (never a 500 or a hang) and must
//! leave the store unchanged (checked with follow-up GETs after every case).
//!
//! Expected bodies follow Kong 3.9: `kong/api/api_helpers.lua` (content types, JSON parsing,
//! 404/405), `kong/api/arguments.lua` (form and multipart decoding, argument limits),
//! `kong/api/endpoints.lua` (size, offset, tags), `kong/db/errors.lua` (error bodies) and
//! nginx's `client_max_body_size 10m` for the Admin API.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turnpike_test::{
    databases, form_urlencode, gateway, multipart_body, stable_headers, tls_fixture, Client,
    Gateway, Resp,
};

// ---- helpers -------------------------------------------------------------------------------

/// What a bad request must answer.
#[derive(Clone, Debug)]
enum Want {
    /// This exact JSON body.
    Exact(Value),
    /// A JSON body whose `message` is this.
    Message(String),
    /// A schema violation with these `fields`.
    Fields(Value),
    /// Any Kong-shaped JSON error: an object with a string `message`.
    Shaped,
}

#[derive(Clone, Debug)]
struct Case {
    name: String,
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    status: u16,
    want: Want,
}

fn case(
    name: &str,
    method: &'static str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Vec<u8>>,
    status: u16,
    want: Want,
) -> Case {
    Case {
        name: name.to_owned(),
        method,
        path: path.to_owned(),
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: body.into(),
        status,
        want,
    }
}

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];
const FORM: &[(&str, &str)] = &[("content-type", "application/x-www-form-urlencoded")];

fn json_case(
    name: &str,
    method: &'static str,
    path: &str,
    body: &Value,
    status: u16,
    want: Want,
) -> Case {
    case(name, method, path, JSON, serde_json::to_vec(body).unwrap(), status, want)
}

fn raw_json_case(
    name: &str,
    method: &'static str,
    path: &str,
    body: &str,
    status: u16,
    want: Want,
) -> Case {
    case(name, method, path, JSON, body.as_bytes().to_vec(), status, want)
}

fn form_case(
    name: &str,
    method: &'static str,
    path: &str,
    pairs: &[(&str, &str)],
    status: u16,
    want: Want,
) -> Case {
    case(name, method, path, FORM, form_urlencode(pairs), status, want)
}

const BOUNDARY: &str = "bad-input-boundary-x7Q";

fn multipart_case(
    name: &str,
    method: &'static str,
    path: &str,
    parts: &[(&str, &str)],
    status: u16,
    want: Want,
) -> Case {
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let parts: Vec<(&str, &str, &str)> = parts.iter().map(|(k, v)| (*k, "", *v)).collect();
    let body = multipart_body(BOUNDARY, &parts);
    case(name, method, path, &[("content-type", ct.as_str())], body, status, want)
}

fn msg(m: &str) -> Want {
    Want::Exact(json!({ "message": m }))
}

fn cannot_parse() -> Want {
    msg("Cannot parse JSON body")
}

fn not_found() -> Want {
    msg("Not found")
}

fn not_allowed() -> Want {
    msg("Method not allowed")
}

fn unsupported() -> Want {
    msg("Unsupported Media Type")
}

fn fields(v: Value) -> Want {
    Want::Fields(v)
}

/// A request with a deadline: a hang fails the case instead of the whole run.
async fn send(
    c: &Client,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Resp {
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    tokio::time::timeout(Duration::from_secs(60), c.request(method, path, &h, body))
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 60s"))
}

#[track_caller]
fn check(res: &Resp, status: u16, want: &Want, ctx: &str) {
    assert!(res.status < 500, "{ctx}: server error {}: {}", res.status, res.text());
    assert_eq!(res.status, status, "{ctx}: status; body {}", res.text());
    let v: Value = serde_json::from_slice(&res.body)
        .unwrap_or_else(|e| panic!("{ctx}: body is not JSON ({e}): {:?}", res.text()));
    assert!(
        res.header("content-type").unwrap_or_default().starts_with("application/json"),
        "{ctx}: content type {:?}",
        res.header("content-type")
    );
    match want {
        Want::Exact(w) => assert_eq!(&v, w, "{ctx}: body"),
        Want::Message(m) => assert_eq!(v["message"], json!(m), "{ctx}: message in {v}"),
        Want::Fields(f) => {
            assert_eq!(v["name"], "schema violation", "{ctx}: {v}");
            assert_eq!(v["code"], 2, "{ctx}: {v}");
            assert!(v["message"].is_string(), "{ctx}: message in {v}");
            assert_eq!(&v["fields"], f, "{ctx}: fields in {v}");
        }
        Want::Shaped => assert!(v["message"].is_string(), "{ctx}: Kong-shaped error expected: {v}"),
    }
}

const SNAPSHOT: &[&str] = &[
    "/services?size=1000",
    "/routes?size=1000",
    "/upstreams?size=1000",
    "/upstreams/up.test/targets/all?size=1000",
    "/consumers?size=1000",
    "/certificates?size=1000",
    "/snis?size=1000",
    "/ca_certificates?size=1000",
    "/plugins?size=1000",
];

/// Every collection, to check that bad input stored nothing.
async fn snapshot(c: &Client) -> Value {
    let mut out = serde_json::Map::new();
    for p in SNAPSHOT {
        let res = c.get(p).await;
        assert_eq!(res.status, 200, "snapshot {p}: {}", res.text());
        out.insert((*p).to_owned(), res.json());
    }
    Value::Object(out)
}

/// The entities every case runs against.
struct Fixture {
    svc_id: String,
    rt_id: String,
    cert_id: String,
}

async fn fixture(c: &Client) -> Fixture {
    let post = |path: &'static str, body: Value| {
        let c = c.clone();
        async move {
            let res = c.post_json(path, &body).await;
            assert_eq!(res.status, 201, "fixture {path}: {}", res.text());
            res.json()
        }
    };
    let svc = post("/services", json!({ "name": "svc", "host": "svc.test" })).await;
    post("/services", json!({ "name": "svc2", "host": "svc2.test" })).await;
    let rt =
        post("/routes", json!({ "name": "rt", "paths": ["/rt"], "service": { "id": svc["id"] } }))
            .await;
    post("/upstreams", json!({ "name": "up.test" })).await;
    post("/upstreams/up.test/targets", json!({ "target": "t1.test:80" })).await;
    post("/consumers", json!({ "username": "alice", "custom_id": "alice-1" })).await;
    let cert = post(
        "/certificates",
        json!({ "cert": tls_fixture("rsa.crt"), "key": tls_fixture("rsa.key"), "snis": ["cert.test"] }),
    )
    .await;
    post("/ca_certificates", json!({ "cert": tls_fixture("ca.crt") })).await;
    post("/plugins", json!({ "name": "cors", "route": { "id": rt["id"] } })).await;
    Fixture {
        svc_id: svc["id"].as_str().unwrap().to_owned(),
        rt_id: rt["id"].as_str().unwrap().to_owned(),
        cert_id: cert["id"].as_str().unwrap().to_owned(),
    }
}

/// Runs the cases on every database; each must answer as expected and change nothing.
async fn run(make: impl Fn(&Fixture) -> Vec<Case>) {
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        let fx = fixture(&c).await;
        let before = snapshot(&c).await;
        for k in make(&fx) {
            let ctx = format!("{}: {} ({} {})", db.name(), k.name, k.method, shorten(&k.path));
            let res = send(&c, k.method, &k.path, &k.headers, k.body.clone()).await;
            check(&res, k.status, &k.want, &ctx);
            assert_eq!(snapshot(&c).await, before, "{ctx}: the store changed");
        }
    }
}

fn shorten(s: &str) -> String {
    if s.len() > 120 {
        format!("{}...({} bytes)", &s[..120], s.len())
    } else {
        s.to_owned()
    }
}

// ---- malformed bodies ------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json() {
    run(|_| {
        vec![
            raw_json_case(
                "unterminated object",
                "POST",
                "/services",
                "{\"hello\": \"world\"",
                400,
                cannot_parse(),
            ),
            raw_json_case(
                "trailing comma",
                "POST",
                "/services",
                "{\"name\":\"x\",}",
                400,
                cannot_parse(),
            ),
            raw_json_case(
                "trailing garbage",
                "POST",
                "/services",
                "{\"host\":\"x.test\"}x",
                400,
                cannot_parse(),
            ),
            raw_json_case(
                "two documents",
                "POST",
                "/services",
                "{\"host\":\"x.test\"} {}",
                400,
                cannot_parse(),
            ),
            raw_json_case("empty body", "POST", "/services", "", 400, cannot_parse()),
            raw_json_case("bare word", "POST", "/services", "nul", 400, cannot_parse()),
            raw_json_case(
                "single quotes",
                "POST",
                "/services",
                "{'host':'x.test'}",
                400,
                cannot_parse(),
            ),
            raw_json_case("PATCH", "PATCH", "/services/svc", "{\"host\":", 400, cannot_parse()),
            raw_json_case("PUT", "PUT", "/services/svc3", "[", 400, cannot_parse()),
            raw_json_case(
                "nested target",
                "POST",
                "/upstreams/up.test/targets",
                "{\"target\":",
                400,
                cannot_parse(),
            ),
            raw_json_case("certificate", "POST", "/certificates", "{", 400, cannot_parse()),
            raw_json_case(
                "validate",
                "POST",
                "/schemas/services/validate",
                "{",
                400,
                cannot_parse(),
            ),
            case(
                "charset in content type",
                "POST",
                "/services",
                &[("content-type", "application/json; charset=utf-8")],
                "{",
                400,
                cannot_parse(),
            ),
            case(
                "invalid UTF-8",
                "POST",
                "/services",
                JSON,
                b"{\"name\":\"\xff\xfe\",\"host\":\"x.test\"}".to_vec(),
                400,
                Want::Shaped,
            ),
            raw_json_case("array body", "POST", "/services", "[1,2]", 400, Want::Shaped),
            raw_json_case("string body", "POST", "/services", "\"svc\"", 400, Want::Shaped),
            raw_json_case("number body", "POST", "/services", "5", 400, Want::Shaped),
            raw_json_case("null body", "POST", "/services", "null", 400, Want::Shaped),
            raw_json_case("true body", "PATCH", "/services/svc", "true", 400, Want::Shaped),
            raw_json_case(
                "number out of range",
                "POST",
                "/services",
                "{\"host\":\"x.test\",\"port\":1e400}",
                400,
                Want::Shaped,
            ),
            raw_json_case(
                "huge integer",
                "POST",
                "/services",
                "{\"host\":\"x.test\",\"port\":99999999999999999999999}",
                400,
                Want::Shaped,
            ),
        ]
    })
    .await;
}

#[tokio::test]
async fn deeply_nested_bodies() {
    run(move |_| {
        vec![
            raw_json_case(
                "10,000 levels of [",
                "POST",
                "/services",
                &"[".repeat(10_000),
                400,
                cannot_parse(),
            ),
            raw_json_case(
                "10,000 balanced levels",
                "POST",
                "/services",
                &format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
                400,
                Want::Shaped,
            ),
            raw_json_case(
                "10,000 levels of {\"a\":",
                "POST",
                "/services",
                &"{\"a\":".repeat(10_000),
                400,
                cannot_parse(),
            ),
            raw_json_case(
                "10,000 levels in a field",
                "POST",
                "/services",
                &format!("{{\"host\":\"x.test\",\"tags\":{}", "[".repeat(10_000)),
                400,
                cannot_parse(),
            ),
            raw_json_case(
                "10,000 levels in PATCH",
                "PATCH",
                "/services/svc",
                &"[".repeat(10_000),
                400,
                cannot_parse(),
            ),
            form_case(
                "form key with 500 dots",
                "POST",
                "/services",
                &[(&format!("a{}", ".a".repeat(500)), "1"), ("host", "x.test")],
                400,
                fields(json!({ "a": "unknown field" })),
            ),
        ]
    })
    .await;
    // GET with a deeply nested query key: filters are ignored, the page is served
    let gw = Gateway::builder().start().await;
    let deep = format!("a{}", ".a".repeat(9_999));
    let res = send(&gw.admin(), "GET", &format!("/services?{deep}=1"), &[], Vec::new()).await;
    assert_eq!(res.status, 200, "deep query key: {}", res.text());
    assert_eq!(res.json(), json!({ "data": [], "next": null }), "deep query key");
}

#[tokio::test]
async fn deeply_nested_form_keys() {
    let deep_key_dots = format!("a{}", ".a".repeat(9_999));
    let deep_key_brackets = format!("a{}", "[1]".repeat(10_000));
    let deep_key_map = format!("headers{}", "[x]".repeat(10_000));
    run(move |_| {
        vec![
            form_case(
                "form key with 1,000 dots",
                "POST",
                "/services",
                &[(&format!("a{}", ".a".repeat(1_000)), "1"), ("host", "x.test")],
                400,
                fields(json!({ "a": "unknown field" })),
            ),
            form_case(
                "form key with 10,000 dots",
                "POST",
                "/services",
                &[(&deep_key_dots, "1"), ("host", "x.test")],
                400,
                Want::Shaped,
            ),
            form_case(
                "form key with 10,000 indexes",
                "POST",
                "/services",
                &[(&deep_key_brackets, "1"), ("host", "x.test")],
                400,
                Want::Shaped,
            ),
            form_case(
                "form key with 10,000 map keys",
                "POST",
                "/routes",
                &[(&deep_key_map, "1"), ("paths", "/x")],
                400,
                Want::Shaped,
            ),
            multipart_case(
                "multipart key with 10,000 dots",
                "POST",
                "/services",
                &[(&deep_key_dots, "1"), ("host", "x.test")],
                400,
                Want::Shaped,
            ),
        ]
    })
    .await;
}

#[tokio::test]
#[ignore = "known difference: JSON is limited to 128 levels of nesting (serde_json), so deeper bodies are rejected as unparsable instead of validated; see docs/admin-api.md"]
async fn json_nested_within_kong_limit() {
    let gw = Gateway::builder().start().await;
    let body = format!("{{\"host\":\"x.test\",\"tags\":[{}{}]}}", "[".repeat(199), "]".repeat(199));
    let res = send(
        &gw.admin(),
        "POST",
        "/services",
        &[("content-type".into(), "application/json".into())],
        body.into_bytes(),
    )
    .await;
    check(&res, 400, &fields(json!({ "tags": ["expected a string"] })), "tags nested 200 levels");
}

// ---- schema violations ---------------------------------------------------------------------

#[tokio::test]
async fn unknown_fields_wrong_types_and_ranges() {
    run(|fx| {
        let svc = json!({ "id": fx.svc_id });
        vec![
            // unknown fields
            json_case("unknown field", "POST", "/services", &json!({ "name": "x", "host": "x.test", "foo": 1 }), 400, fields(json!({ "foo": "unknown field" }))),
            json_case("unknown field on PATCH", "PATCH", "/services/svc", &json!({ "nope": 1 }), 400, fields(json!({ "nope": "unknown field" }))),
            json_case("unknown field on PUT", "PUT", "/services/svc", &json!({ "host": "x.test", "nope": 1 }), 400, fields(json!({ "nope": "unknown field" }))),
            json_case("unknown route field", "POST", "/routes", &json!({ "paths": ["/x"], "service": svc, "bar": true }), 400, fields(json!({ "bar": "unknown field" }))),
            json_case("unknown nested field", "POST", "/upstreams", &json!({ "name": "u.test", "healthchecks": { "active": { "foo": 1 } } }), 400, fields(json!({ "healthchecks": { "active": { "foo": "unknown field" } } }))),
            form_case("unknown form field", "POST", "/services", &[("name", "x"), ("host", "x.test"), ("foo", "1")], 400, fields(json!({ "foo": "unknown field" }))),
            multipart_case("unknown multipart field", "POST", "/services", &[("host", "x.test"), ("foo", "1")], 400, fields(json!({ "foo": "unknown field" }))),
            json_case("unknown field in validate", "POST", "/schemas/services/validate", &json!({ "host": "x.test", "foo": 1 }), 400, fields(json!({ "foo": "unknown field" }))),
            // wrong types
            json_case("port as text", "POST", "/services", &json!({ "host": "x.test", "port": "abc" }), 400, fields(json!({ "port": "expected an integer" }))),
            json_case("retries as float", "POST", "/services", &json!({ "host": "x.test", "retries": 1.5 }), 400, fields(json!({ "retries": "expected an integer" }))),
            json_case("name as number", "POST", "/services", &json!({ "host": "x.test", "name": 123 }), 400, fields(json!({ "name": "expected a string" }))),
            json_case("host as object", "POST", "/services", &json!({ "host": { "a": 1 } }), 400, fields(json!({ "host": "expected a string" }))),
            json_case("enabled as text", "POST", "/services", &json!({ "host": "x.test", "enabled": "yes" }), 400, fields(json!({ "enabled": "expected a boolean" }))),
            json_case("tags as string", "POST", "/services", &json!({ "host": "x.test", "tags": "x" }), 400, fields(json!({ "tags": "expected a set" }))),
            json_case("paths as string", "POST", "/routes", &json!({ "paths": "/x", "service": svc }), 400, fields(json!({ "paths": "expected an array" }))),
            // Kong indexes the number as the subschema key (a Lua error, 500); a 400 is the requirement
            json_case("protocols as number", "POST", "/routes", &json!({ "paths": ["/x"], "protocols": 5 }), 400, Want::Shaped),
            json_case("healthchecks as string", "POST", "/upstreams", &json!({ "name": "u.test", "healthchecks": "x" }), 400, fields(json!({ "healthchecks": "expected a record" }))),
            json_case("service as string", "POST", "/routes", &json!({ "paths": ["/x"], "service": "svc" }), 400, Want::Shaped),
            json_case("username as array", "POST", "/consumers", &json!({ "username": ["a"] }), 400, fields(json!({ "username": "expected a string" }))),
            json_case("weight as text", "POST", "/upstreams/up.test/targets", &json!({ "target": "t9.test", "weight": "heavy" }), 400, fields(json!({ "weight": "expected an integer" }))),
            form_case("port as text (form)", "POST", "/services", &[("host", "x.test"), ("port", "abc")], 400, fields(json!({ "port": "expected an integer" }))),
            form_case("enabled as text (form)", "POST", "/services", &[("host", "x.test"), ("enabled", "yes")], 400, fields(json!({ "enabled": "expected a boolean" }))),
            // out of range
            json_case("port above range", "POST", "/services", &json!({ "host": "x.test", "port": 70000 }), 400, fields(json!({ "port": "value should be between 0 and 65535" }))),
            json_case("port below range", "POST", "/services", &json!({ "host": "x.test", "port": -1 }), 400, fields(json!({ "port": "value should be between 0 and 65535" }))),
            json_case("retries above range", "POST", "/services", &json!({ "host": "x.test", "retries": 40000 }), 400, fields(json!({ "retries": "value should be between 0 and 32767" }))),
            json_case("connect_timeout zero", "POST", "/services", &json!({ "host": "x.test", "connect_timeout": 0 }), 400, fields(json!({ "connect_timeout": "value should be between 1 and 2147483646" }))),
            json_case("slots below range", "POST", "/upstreams", &json!({ "name": "u.test", "slots": 5 }), 400, fields(json!({ "slots": "value should be between 10 and 65536" }))),
            json_case("weight below range", "POST", "/upstreams/up.test/targets", &json!({ "target": "t9.test", "weight": -1 }), 400, fields(json!({ "weight": "value should be between 0 and 65535" }))),
            json_case("redirect code not allowed", "POST", "/routes", &json!({ "paths": ["/x"], "https_redirect_status_code": 303 }), 400, fields(json!({ "https_redirect_status_code": "expected one of: 426, 301, 302, 307, 308" }))),
            json_case("port out of range on PATCH", "PATCH", "/services/svc", &json!({ "port": 65536 }), 400, fields(json!({ "port": "value should be between 0 and 65535" }))),
            json_case("empty host", "POST", "/services", &json!({ "host": "" }), 400, Want::Shaped),
            json_case("missing host", "POST", "/services", &json!({ "name": "x" }), 400, Want::Shaped),
            case("empty body, no content type", "POST", "/services", &[], "", 400, Want::Shaped),
        ]
    })
    .await;
}

#[tokio::test]
async fn invalid_uuids() {
    run(|fx| {
        vec![
            // in URLs: entities without an endpoint key need a UUID (invalid primary key)
            case("GET ca_certificate by non-UUID", "GET", "/ca_certificates/not-a-uuid", &[], "", 400, Want::Exact(json!({
                "code": 1, "name": "invalid primary key",
                "message": "invalid primary key: '{id=\"expected a valid UUID\"}'",
                "fields": { "id": "expected a valid UUID" },
            }))),
            json_case("PATCH ca_certificate by non-UUID", "PATCH", "/ca_certificates/not-a-uuid", &json!({}), 400, Want::Message("invalid primary key: '{id=\"expected a valid UUID\"}'".into())),
            case("DELETE ca_certificate by non-UUID", "DELETE", "/ca_certificates/not-a-uuid", &[], "", 400, Want::Message("invalid primary key: '{id=\"expected a valid UUID\"}'".into())),
            // entities with an endpoint key look the segment up by name
            case("GET service by unknown name", "GET", "/services/not-a-uuid", &[], "", 404, not_found()),
            case("GET service by 36-char non-UUID", "GET", "/services/00000000-0000-0000-0000-00000000000z", &[], "", 404, not_found()),
            case("GET routes of unknown service UUID", "GET", &format!("/services/{}/routes", uuid::Uuid::new_v4()), &[], "", 404, not_found()),
            json_case("POST routes of unknown service UUID", "POST", &format!("/services/{}/routes", uuid::Uuid::new_v4()), &json!({ "paths": ["/x"] }), 404, not_found()),
            case("GET service of unknown route", "GET", "/routes/nope/service", &[], "", 404, not_found()),
            case("GET unknown target", "GET", "/upstreams/up.test/targets/not-a-target", &[], "", 404, not_found()),
            case("GET target of unknown upstream", "GET", &format!("/upstreams/{}/targets/t1.test:80", uuid::Uuid::new_v4()), &[], "", 404, not_found()),
            case("GET certificate by unknown sni", "GET", "/certificates/not-a-uuid", &[], "", 404, msg("SNI not found")),
            // Kong: ngx.unescape_uri leaves `%zz`, select_by_name rejects the value (invalid unique)
            case("invalid percent-escape", "GET", "/services/%zz", &[], "", 400, Want::Exact(json!({
                "code": 10, "name": "invalid unique name",
                "message": "invalid value '%zz': the only accepted ascii characters are alphanumerics or ., -, _, and ~",
            }))),
            case("percent-encoded invalid UTF-8", "GET", "/services/%FF%FE", &[], "", 400, Want::Shaped),
            case("name with a space", "GET", "/services/a%20b", &[], "", 400, Want::Shaped),
            // in bodies
            json_case("id not a UUID", "POST", "/services", &json!({ "id": "bad", "host": "x.test" }), 400, fields(json!({ "id": "expected a valid UUID" }))),
            json_case("foreign id not a UUID", "POST", "/routes", &json!({ "paths": ["/x"], "service": { "id": "bad" } }), 400, fields(json!({ "service": { "id": "expected a valid UUID" } }))),
            json_case("UUID array element", "POST", "/services", &json!({ "url": "https://x.test", "ca_certificates": ["bad"] }), 400, fields(json!({ "ca_certificates": ["expected a valid UUID"] }))),
            form_case("foreign id not a UUID (form)", "POST", "/routes", &[("paths", "/x"), ("service.id", "bad")], 400, fields(json!({ "service": { "id": "expected a valid UUID" } }))),
            json_case("PATCH to a non-UUID foreign id", "PATCH", &format!("/routes/{}", fx.rt_id), &json!({ "service": { "id": "bad" } }), 400, fields(json!({ "service": { "id": "expected a valid UUID" } }))),
        ]
    })
    .await;
}

#[tokio::test]
async fn unique_and_foreign_key_violations() {
    run(|fx| {
        let missing = "00000000-0000-4000-8000-000000000009";
        let unique = |field: &str, value: &str| {
            Want::Exact(json!({
                "code": 5, "name": "unique constraint violation",
                "message": format!("UNIQUE violation detected on '{{{field}=\"{value}\"}}'"),
                "fields": { field: value },
            }))
        };
        let dangling = |field: &str, parent: &str| {
            Want::Exact(json!({
                "code": 4, "name": "foreign key violation",
                "message": format!("the foreign key '{{id=\"{missing}\"}}' does not reference an existing '{parent}' entity."),
                "fields": { field: { "id": missing } },
            }))
        };
        vec![
            // duplicate unique values
            json_case("duplicate service name", "POST", "/services", &json!({ "name": "svc", "host": "x.test" }), 409, unique("name", "svc")),
            form_case("duplicate service name (form)", "POST", "/services", &[("name", "svc"), ("host", "x.test")], 409, unique("name", "svc")),
            json_case("rename onto an existing name", "PATCH", "/services/svc2", &json!({ "name": "svc" }), 409, unique("name", "svc")),
            json_case("PUT a new id with an existing name", "PUT", &format!("/services/{}", uuid::Uuid::new_v4()), &json!({ "name": "svc", "host": "x.test" }), 409, unique("name", "svc")),
            json_case("duplicate route name", "POST", "/routes", &json!({ "name": "rt", "paths": ["/y"] }), 409, unique("name", "rt")),
            json_case("duplicate username", "POST", "/consumers", &json!({ "username": "alice" }), 409, unique("username", "alice")),
            json_case("duplicate custom_id", "POST", "/consumers", &json!({ "username": "bob", "custom_id": "alice-1" }), 409, unique("custom_id", "alice-1")),
            json_case("duplicate upstream name", "POST", "/upstreams", &json!({ "name": "up.test" }), 409, unique("name", "up.test")),
            json_case("duplicate sni", "POST", "/snis", &json!({ "name": "cert.test", "certificate": { "id": fx.cert_id } }), 409, unique("name", "cert.test")),
            json_case("duplicate target", "POST", "/upstreams/up.test/targets", &json!({ "target": "t1.test:80" }), 409, Want::Shaped),
            json_case("duplicate CA certificate", "POST", "/ca_certificates", &json!({ "cert": tls_fixture("ca.crt") }), 409, Want::Shaped),
            json_case("duplicate plugin", "POST", "/plugins", &json!({ "name": "cors", "route": { "id": fx.rt_id } }), 409, Want::Shaped),
            // dangling foreign keys
            json_case("route to a missing service", "POST", "/routes", &json!({ "paths": ["/x"], "service": { "id": missing } }), 400, dangling("service", "services")),
            json_case("PATCH route to a missing service", "PATCH", "/routes/rt", &json!({ "service": { "id": missing } }), 400, dangling("service", "services")),
            json_case("plugin on a missing route", "POST", "/plugins", &json!({ "name": "cors", "route": { "id": missing } }), 400, dangling("route", "routes")),
            json_case("plugin on a missing consumer", "POST", "/plugins", &json!({ "name": "request-termination", "consumer": { "id": missing } }), 400, dangling("consumer", "consumers")),
            json_case("sni of a missing certificate", "POST", "/snis", &json!({ "name": "new.test", "certificate": { "id": missing } }), 400, dangling("certificate", "certificates")),
            json_case("service with a missing client certificate", "POST", "/services", &json!({ "url": "https://x.test", "client_certificate": { "id": missing } }), 400, dangling("client_certificate", "certificates")),
            form_case("route to an unknown service name", "POST", "/routes", &[("paths", "/x"), ("service.name", "nope")], 400, Want::Exact(json!({
                "code": 13, "name": "foreign keys unresolved",
                "message": "foreign key unresolved (service.name: the foreign key cannot be resolved with '{name=\"nope\"}' for an existing 'services' entity)",
                "fields": { "service": { "name": "the foreign key cannot be resolved with '{name=\"nope\"}' for an existing 'services' entity" } },
            }))),
            case("delete a referenced service", "DELETE", "/services/svc", &[], "", 400, Want::Exact(json!({
                "code": 4, "name": "foreign key violation",
                "message": "an existing 'routes' entity references this 'services' entity",
                "fields": { "@referenced_by": "routes" },
            }))),
            case("delete a referenced service by id", "DELETE", &format!("/services/{}", fx.svc_id), &[], "", 400, Want::Message("an existing 'routes' entity references this 'services' entity".into())),
        ]
    })
    .await;
}

// ---- content types and body limits ---------------------------------------------------------

#[tokio::test]
async fn content_types() {
    run(|_| {
        vec![
            case(
                "text/plain",
                "POST",
                "/services",
                &[("content-type", "text/plain")],
                "host=x.test",
                415,
                unsupported(),
            ),
            case(
                "application/xml",
                "POST",
                "/services",
                &[("content-type", "application/xml")],
                "<host/>",
                415,
                unsupported(),
            ),
            case(
                "text/html on PUT",
                "PUT",
                "/services/svc3",
                &[("content-type", "text/html")],
                "<p>",
                415,
                unsupported(),
            ),
            case(
                "YAML outside /config",
                "POST",
                "/services",
                &[("content-type", "application/yaml")],
                "host: x.test",
                415,
                unsupported(),
            ),
            case(
                "no content type with a body",
                "POST",
                "/services",
                &[],
                "{\"host\":\"x.test\"}",
                415,
                unsupported(),
            ),
            case(
                "no content type with a form body",
                "PATCH",
                "/services/svc",
                &[],
                "host=y.test",
                415,
                unsupported(),
            ),
            case(
                "no content type on PUT",
                "PUT",
                "/services/svc3",
                &[],
                "host=y.test",
                415,
                unsupported(),
            ),
            case(
                "empty content type",
                "POST",
                "/services",
                &[("content-type", "")],
                "host=x.test",
                415,
                unsupported(),
            ),
            case(
                "multipart without boundary",
                "POST",
                "/services",
                &[("content-type", "multipart/form-data")],
                "host=x.test",
                400,
                Want::Shaped,
            ),
        ]
    })
    .await;
}

#[tokio::test]
async fn content_type_prefix_is_case_sensitive() {
    run(|_| {
        vec![case(
            "Application/JSON",
            "POST",
            "/services",
            &[("content-type", "Application/JSON")],
            "{\"host\":\"x.test\"}",
            415,
            unsupported(),
        )]
    })
    .await;
}

#[tokio::test]
async fn multiple_content_type_headers() {
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        fixture(&c).await;
        let before = snapshot(&c).await;
        let d = db.name();
        for (method, path) in
            [("POST", "/services"), ("PATCH", "/services/svc"), ("PUT", "/services/svc3")]
        {
            let res = c
                .request(
                    method,
                    path,
                    &[("content-type", "application/json"), ("content-type", "application/json")],
                    "{\"host\":\"y.test\"}",
                )
                .await;
            assert_eq!(res.status, 400, "{d}: {method} {path}: {}", res.text());
            // Kong: kong.response.exit(400, "Multiple Content-Type headers not allowed")
            let text = res.text();
            let ok = text == "Multiple Content-Type headers not allowed"
                || serde_json::from_str::<Value>(&text).is_ok_and(|v| {
                    v == json!({ "message": "Multiple Content-Type headers not allowed" })
                });
            assert!(ok, "{d}: {method} {path}: body {text:?}");
            assert_eq!(snapshot(&c).await, before, "{d}: {method} {path}: the store changed");
        }
    }
}

#[tokio::test]
async fn multiple_content_types_on_get() {
    let gw = Gateway::builder().start().await;
    let c = gw.admin();
    for method in ["GET", "DELETE", "HEAD"] {
        let res = c
            .request(method, "/services", &[("content-type", "a/b"), ("content-type", "c/d")], "")
            .await;
        assert!(
            matches!(res.status, 200 | 204 | 405),
            "{method} with two content types: {} {}",
            res.status,
            res.text()
        );
        assert_ne!(res.status, 400, "{method} with two content types");
    }
}

/// Sends raw bytes and reads the whole response (the request must say `Connection: close`).
async fn raw_http(addr: &str, head: &str, body_chunks: impl Iterator<Item = Vec<u8>>) -> String {
    let work = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let _ = s.write_all(head.as_bytes()).await;
        for chunk in body_chunks {
            if s.write_all(&chunk).await.is_err() {
                break; // the server answered early and closed
            }
        }
        let _ = s.flush().await;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(120), work).await.expect("no answer within 120s")
}

/// POSTs 10 MiB + 1 KiB to `/services` over a raw connection; returns the status and the
/// (de-chunked) body. The server may answer before the body is sent and close.
async fn raw_oversized_post(addr: &str, ct: &str, chunked: bool) -> (u16, String) {
    const LEN: usize = 10 * 1024 * 1024 + 1024;
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {LEN}")
    };
    let head = format!("POST /services HTTP/1.1\r\nHost: localhost\r\nContent-Type: {ct}\r\n{framing}\r\nConnection: close\r\n\r\n");
    // ten pieces of 1 MiB and one of 1 KiB: exactly LEN bytes of payload
    let chunks = (0..11).map(move |i| {
        let data = vec![b'a'; if i < 10 { 1024 * 1024 } else { 1024 }];
        if chunked {
            let mut c = format!("{:x}\r\n", data.len()).into_bytes();
            c.extend_from_slice(&data);
            c.extend_from_slice(b"\r\n");
            c
        } else {
            data
        }
    });
    let tail = if chunked { b"0\r\n\r\n".to_vec() } else { Vec::new() };
    let resp = raw_http(addr, &head, chunks.chain(std::iter::once(tail))).await;
    let status = resp.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (headers, body) = resp.split_once("\r\n\r\n").unwrap_or((resp.as_str(), ""));
    let body = if headers.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body.split("\r\n").filter(|l| l.starts_with('{')).collect::<String>()
    } else {
        body.to_owned()
    };
    (status, body)
}

#[tokio::test]
async fn body_size_limit() {
    const MAX: usize = 10 * 1024 * 1024;
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        fixture(&c).await;
        let before = snapshot(&c).await;
        let d = db.name();

        let addr = gw.admin_url().trim_start_matches("http://").to_owned();
        for (name, ct, chunked) in [
            ("JSON with a Content-Length", "application/json", false),
            ("form with a Content-Length", "application/x-www-form-urlencoded", false),
            ("chunked JSON", "application/json", true),
            ("chunked multipart", "multipart/form-data; boundary=x", true),
        ] {
            let (status, body) = raw_oversized_post(&addr, ct, chunked).await;
            assert_eq!(status, 413, "{d}: {name} over 10 MB: {body}");
            let v: Value = serde_json::from_str(body.trim())
                .unwrap_or_else(|e| panic!("{d}: {name}: 413 body is not JSON ({e}): {body:?}"));
            assert!(v["message"].is_string(), "{d}: {name}: 413 body {v}");
            assert_eq!(snapshot(&c).await, before, "{d}: {name}: 413 stored nothing");
        }

        // a body of exactly 10 MiB is accepted (and then rejected by validation)
        let mut exact = b"{\"host\":\"x.test\",\"foo\":\"".to_vec();
        exact.resize(MAX - 2, b'a');
        exact.extend_from_slice(b"\"}");
        assert_eq!(exact.len(), MAX);
        let res = send(
            &c,
            "POST",
            "/services",
            &[("content-type".into(), "application/json".into())],
            exact,
        )
        .await;
        check(
            &res,
            400,
            &fields(json!({ "foo": "unknown field" })),
            &format!("{d}: exactly 10 MiB"),
        );
        assert_eq!(snapshot(&c).await, before, "{d}: the store changed");
    }
}

#[tokio::test]
async fn oversized_body_answered_to_a_streaming_client() {
    let gw = Gateway::builder().start().await;
    let mut big = b"{\"host\":\"x.test\",\"name\":\"".to_vec();
    big.resize(10 * 1024 * 1024 + 1024, b'a');
    big.extend_from_slice(b"\"}");
    let res = send(
        &gw.admin(),
        "POST",
        "/services",
        &[("content-type".into(), "application/json".into())],
        big,
    )
    .await;
    check(&res, 413, &Want::Shaped, "10 MB + 1 KiB through the HTTP client");
}

#[tokio::test]
async fn too_many_arguments() {
    let many = |n: usize| (1..=n).map(|i| format!("a{i}=1")).collect::<Vec<_>>().join("&");
    let many_form = many(1001);
    let many_query = many(1001);
    run(move |_| {
        vec![
            case(
                "1001 form arguments",
                "POST",
                "/services",
                FORM,
                many_form.clone(),
                400,
                msg("Too many arguments"),
            ),
            case(
                "1001 query arguments",
                "GET",
                &format!("/services?{many_query}"),
                &[],
                "",
                400,
                msg("Too many arguments"),
            ),
        ]
    })
    .await;
    // 1000 arguments are fine (Kong's max_uri_args / max_post_args)
    let gw = Gateway::builder().start().await;
    let res = send(&gw.admin(), "GET", &format!("/services?{}", many(1000)), &[], Vec::new()).await;
    assert_eq!(res.status, 200, "1000 query arguments: {}", res.text());
}

// ---- query arguments -----------------------------------------------------------------------

#[tokio::test]
async fn size_offset_and_tags() {
    run(|_| {
        let size = |m: &str| Want::Exact(json!({ "code": 9, "name": "invalid size", "message": m }));
        let not_number = "size must be a number";
        let range = "size must be an integer between 1 and 1000";
        let offset = |o: &str, why: &str| Want::Exact(json!({ "code": 7, "name": "invalid offset", "message": format!("'{o}' is not a valid offset: {why}") }));
        let option = |m: &str| Want::Exact(json!({ "code": 11, "name": "invalid options", "message": format!("invalid option (tags: {m})"), "options": { "tags": m } }));
        let get = |name: &str, path: &str, want: Want| case(name, "GET", path, &[], "", 400, want);
        vec![
            get("size=abc", "/services?size=abc", size(not_number)),
            get("size=", "/services?size=", size(not_number)),
            get("size=0", "/services?size=0", size(range)),
            get("size=-5", "/services?size=-5", size(range)),
            get("size=1001", "/services?size=1001", size(range)),
            get("size=1.5", "/services?size=1.5", size(range)),
            get("nested size=abc", "/services/svc/routes?size=abc", size(not_number)),
            get("targets/all size=0", "/upstreams/up.test/targets/all?size=0", size(range)),
            get("nested targets size=2000", "/upstreams/up.test/targets?size=2000", size(range)),
            get("/tags size=abc", "/tags?size=abc", size(not_number)),
            get("/tags/x size=0", "/tags/x?size=0", size(range)),
            get("/certificates size=abc", "/certificates?size=abc", size(not_number)),
            get("offset=garbage", "/services?offset=garbage", offset("garbage", "bad base64 encoding")),
            get("nested offset=garbage", "/services/svc/routes?offset=garbage", offset("garbage", "bad base64 encoding")),
            get("offset not base64", "/routes?offset=%25%25%25", offset("%%%", "bad base64 encoding")),
            get("tags=", "/services?tags=", option("cannot be null")),
            get("tags=a,/b", "/services?tags=a,/b", option("invalid filter syntax")),
            get("tags=a,,b", "/services?tags=a,,b", option("invalid filter syntax")),
            get("six tags", "/services?tags=a,b,c,d,e,f", option("cannot query more than 5 tags")),
            get("tags on /routes", "/routes?tags=", option("cannot be null")),
        ]
    })
    .await;
}

#[tokio::test]
async fn valid_query_arguments() {
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        fixture(&c).await;
        let d = db.name();
        for path in [
            "/services?tags=a/b",
            "/services?tags=a,b",
            "/services?tags=a",
            "/services?size=1000",
            "/services?size=1",
            "/services?foo=bar",
            "/services?size=1&tags=x",
        ] {
            let res = c.get(path).await;
            assert_eq!(res.status, 200, "{d}: {path}: {}", res.text());
        }
        // a page link keeps `tags` and `size`
        let v = c.get("/services?size=1").await.json();
        let next = v["next"].as_str().unwrap_or_else(|| panic!("{d}: next link in {v}"));
        assert!(
            next.starts_with("/services?offset=") && next.ends_with("&size=1"),
            "{d}: next {next}"
        );
        assert_eq!(c.get(next).await.status, 200, "{d}: following {next}");
        let v = c.get("/services?size=1&tags=none").await.json();
        assert_eq!(v, json!({ "data": [], "next": null }), "{d}: unknown tag");
    }
}

// ---- routing: slashes, HEAD, OPTIONS, 404, 405 ---------------------------------------------

#[tokio::test]
async fn trailing_slashes_head_and_options() {
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        let fx = fixture(&c).await;
        let d = db.name();

        // trailing slashes
        for (slash, plain) in [
            ("/services/", "/services"),
            ("/services/svc/", "/services/svc"),
            ("/services/svc/routes/", "/services/svc/routes"),
            ("/routes/rt/service/", "/routes/rt/service"),
            ("/upstreams/up.test/targets/", "/upstreams/up.test/targets"),
            ("/upstreams/up.test/targets/all/", "/upstreams/up.test/targets/all"),
            ("/certificates/cert.test/", "/certificates/cert.test"),
            ("/status/", "/status"),
            ("/schemas/services/", "/schemas/services"),
            ("/services/?size=1", "/services?size=1"),
        ] {
            let a = c.get(slash).await;
            let b = c.get(plain).await;
            assert_eq!(a.status, 200, "{d}: GET {slash}: {}", a.text());
            if !plain.starts_with("/status") {
                assert_eq!(a.json(), b.json(), "{d}: GET {slash} = GET {plain}");
            }
        }
        let res =
            c.post_json("/services/", &json!({ "name": "slash", "host": "slash.test" })).await;
        assert_eq!(res.status, 201, "{d}: POST /services/: {}", res.text());
        let res = c.patch_json("/services/slash/", &json!({ "port": 8080 })).await;
        assert_eq!(res.status, 200, "{d}: PATCH /services/slash/: {}", res.text());
        assert_eq!(res.json()["port"], 8080, "{d}: PATCH /services/slash/");
        assert_eq!(c.delete("/services/slash/").await.status, 204, "{d}: DELETE /services/slash/");
        assert_eq!(
            c.get("/services/slash").await.status,
            404,
            "{d}: deleted through a trailing slash"
        );

        // HEAD mirrors GET (status and headers, no body)
        for path in [
            "/".to_owned(),
            "/services".into(),
            "/services/svc".into(),
            "/routes/rt/service".into(),
            format!("/routes/{}", fx.rt_id),
            "/upstreams/up.test/targets/all".into(),
            "/status".into(),
            "/endpoints".into(),
            "/schemas/routes".into(),
            "/services/nope".into(),
            "/nope".into(),
            "/services?size=abc".into(),
            "/ca_certificates/not-a-uuid".into(),
        ] {
            let get = c.get(&path).await;
            let head = c.request("HEAD", &path, &[], "").await;
            assert_eq!(head.status, get.status, "{d}: HEAD {path} status");
            assert!(head.body.is_empty(), "{d}: HEAD {path} has no body");
            assert_eq!(stable_headers(&head), stable_headers(&get), "{d}: HEAD {path} headers");
        }

        // OPTIONS answers 204 with Allow
        let crud = "DELETE, GET, HEAD, OPTIONS, PATCH, PUT";
        for (path, allow) in [
            ("/services".to_owned(), "GET, HEAD, OPTIONS, POST"),
            ("/services/svc".into(), crud),
            ("/services/svc/routes".into(), "GET, HEAD, OPTIONS, POST"),
            ("/services/svc/routes/rt".into(), crud),
            ("/routes/rt/service".into(), crud),
            (format!("/certificates/{}", fx.cert_id), crud),
            ("/certificates/cert.test/snis".into(), "GET, HEAD, OPTIONS, POST"),
            ("/upstreams/up.test/targets".into(), "GET, HEAD, OPTIONS, POST"),
            ("/upstreams/up.test/targets/all".into(), "GET, HEAD, OPTIONS"),
            ("/upstreams/up.test/targets/t1.test:80".into(), crud),
            ("/plugins/enabled".into(), "GET, HEAD, OPTIONS"),
            ("/schemas/services".into(), "GET, HEAD, OPTIONS"),
            ("/schemas/services/validate".into(), "OPTIONS, POST"),
            ("/status".into(), "GET, HEAD, OPTIONS"),
            ("/endpoints".into(), "GET, HEAD, OPTIONS"),
            ("/tags/x".into(), "GET, HEAD, OPTIONS"),
            ("/services/".into(), "GET, HEAD, OPTIONS, POST"),
        ] {
            let res = c.request("OPTIONS", &path, &[], "").await;
            assert_eq!(res.status, 204, "{d}: OPTIONS {path}: {}", res.text());
            assert!(res.body.is_empty(), "{d}: OPTIONS {path} body");
            assert_eq!(res.header("allow").as_deref(), Some(allow), "{d}: OPTIONS {path} Allow");
            assert_eq!(
                res.header("access-control-allow-methods").as_deref(),
                Some(allow),
                "{d}: OPTIONS {path} ACAM"
            );
        }
        // CORS: the origin and the requested headers are echoed
        let res = c
            .request(
                "OPTIONS",
                "/services",
                &[
                    ("origin", "http://ui.test"),
                    ("access-control-request-headers", "X-Foo, Content-Type"),
                ],
                "",
            )
            .await;
        assert_eq!(res.status, 204, "{d}: CORS preflight");
        assert_eq!(
            res.header("access-control-allow-origin").as_deref(),
            Some("http://ui.test"),
            "{d}: ACAO"
        );
        assert_eq!(
            res.header("access-control-allow-credentials").as_deref(),
            Some("true"),
            "{d}: ACAC"
        );
        assert_eq!(
            res.header("access-control-allow-headers").as_deref(),
            Some("X-Foo, Content-Type"),
            "{d}: ACAH"
        );
        let res = c.request("GET", "/services", &[("origin", "http://ui.test")], "").await;
        assert_eq!(
            res.header("access-control-allow-origin").as_deref(),
            Some("http://ui.test"),
            "{d}: GET ACAO"
        );
    }
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods() {
    run(|fx| {
        let mut cases = Vec::new();
        for path in [
            "/nope".to_owned(),
            "/services/svc/nope".into(),
            "/services/svc/routes/rt/nope".into(),
            "/services/svc/routes/rt/service".into(),
            "/routes/rt/service/nope".into(),
            "/upstreams/up.test/targets/t1.test:80/x/y".into(),
            format!("/certificates/{}/snis/cert.test/x", fx.cert_id),
            "/schemas".into(),
            "/schemas/plugins/key-auth/nope".into(),
            "/status/nope".into(),
            "/Services".into(),
            "/services%2Fsvc".into(),
        ] {
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
                cases.push(case(
                    &format!("unknown path {path}"),
                    method,
                    &path,
                    &[],
                    "",
                    404,
                    not_found(),
                ));
            }
        }
        for (method, path) in [
            ("POST", "/services/svc"),
            ("PUT", "/services"),
            ("PATCH", "/services"),
            ("DELETE", "/services"),
            ("POST", "/services/svc/routes/rt"),
            ("PUT", "/services/svc/routes"),
            ("POST", "/routes/rt/service"),
            ("POST", "/status"),
            ("DELETE", "/status"),
            ("DELETE", "/endpoints"),
            ("PUT", "/plugins/enabled"),
            ("POST", "/plugins/enabled"),
            ("GET", "/schemas/services/validate"),
            ("PUT", "/schemas/services"),
            ("POST", "/upstreams/up.test/targets/all"),
            ("DELETE", "/upstreams/up.test/targets"),
            ("POST", "/upstreams/up.test/targets/t1.test:80"),
            ("POST", "/certificates/cert.test"),
            ("DELETE", "/certificates"),
            ("FOO", "/services"),
            ("PATCH", "/"),
        ] {
            cases.push(case(
                &format!("wrong method {method} {path}"),
                method,
                path,
                &[],
                "",
                405,
                not_allowed(),
            ));
        }
        // a wrong method with a body that would be rejected: the method is checked first
        cases.push(case(
            "wrong method, bad content type",
            "PUT",
            "/services",
            &[("content-type", "text/plain")],
            "x",
            405,
            not_allowed(),
        ));
        cases.push(raw_json_case(
            "wrong method, malformed JSON",
            "POST",
            "/services/svc",
            "{",
            405,
            not_allowed(),
        ));
        cases
    })
    .await;
}

// ---- form syntax and multipart ---------------------------------------------------------------

#[tokio::test]
async fn form_syntax_and_multipart() {
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        let fx = fixture(&c).await;
        let d = db.name();
        let form = |path: &str, pairs: &[(&str, &str)]| {
            let c = c.clone();
            let path = path.to_owned();
            let body = form_urlencode(pairs);
            async move { c.request("POST", &path, FORM, body).await }
        };

        // hosts[]=, headers.x-foo=, service.name=, repeated keys
        let res = form(
            "/routes",
            &[
                ("name", "f1"),
                ("service.name", "svc"),
                ("hosts[]", "a.test"),
                ("hosts[]", "b.test"),
                ("headers.x-foo", "bar"),
                ("paths", "/a"),
                ("paths", "/b"),
                ("methods", "GET"),
                ("strip_path", "false"),
                ("regex_priority", "7"),
            ],
        )
        .await;
        assert_eq!(res.status, 201, "{d}: form route: {}", res.text());
        let v = res.json();
        assert_eq!(v["hosts"], json!(["a.test", "b.test"]), "{d}: hosts[]=");
        assert_eq!(v["headers"], json!({ "x-foo": ["bar"] }), "{d}: headers.x-foo=bar");
        assert_eq!(v["paths"], json!(["/a", "/b"]), "{d}: paths=a&paths=b");
        assert_eq!(v["methods"], json!(["GET"]), "{d}: a single value for a set");
        assert_eq!(
            v["service"],
            json!({ "id": fx.svc_id }),
            "{d}: service.name=svc resolves to the id"
        );
        assert_eq!(v["strip_path"], false, "{d}: boolean inferred");
        assert_eq!(v["regex_priority"], 7, "{d}: integer inferred");

        // hosts=a&hosts=b, headers[x-bar]=, hosts[1]/hosts[2], service.id=
        let res = form(
            "/routes",
            &[
                ("name", "f2"),
                ("service.id", &fx.svc_id),
                ("hosts", "c.test"),
                ("hosts", "d.test"),
                ("headers[x-bar]", "baz"),
                ("headers[x-bar]", "qux"),
                ("snis[1]", "s1.test"),
                ("snis[2]", "s2.test"),
                ("protocols", "https"),
            ],
        )
        .await;
        assert_eq!(res.status, 201, "{d}: form route 2: {}", res.text());
        let v = res.json();
        assert_eq!(v["hosts"], json!(["c.test", "d.test"]), "{d}: hosts=c&hosts=d");
        assert_eq!(v["headers"], json!({ "x-bar": ["baz", "qux"] }), "{d}: headers[x-bar] twice");
        assert_eq!(v["snis"], json!(["s1.test", "s2.test"]), "{d}: snis[1], snis[2]");
        assert_eq!(v["protocols"], json!(["https"]), "{d}: protocols");

        // config.x=1 on a plugin
        let res = form(
            "/plugins",
            &[("name", "rate-limiting"), ("config.minute", "5"), ("route.id", &fx.rt_id)],
        )
        .await;
        assert_eq!(res.status, 201, "{d}: form plugin: {}", res.text());
        let v = res.json();
        assert_eq!(v["config"]["minute"], 5, "{d}: config.minute=5");
        assert_eq!(v["route"], json!({ "id": fx.rt_id }), "{d}: route.id");

        // an empty value clears a field (JSON null)
        let res =
            c.request("PATCH", "/services/svc2", FORM, form_urlencode(&[("path", "/p")])).await;
        assert_eq!(res.json()["path"], "/p", "{d}: set path");
        let res = c.request("PATCH", "/services/svc2", FORM, form_urlencode(&[("path", "")])).await;
        assert_eq!(res.status, 200, "{d}: clear path: {}", res.text());
        assert_eq!(res.json()["path"], Value::Null, "{d}: path= clears the path");

        // multipart bodies
        let mp = |path: &str, parts: &[(&str, &str)]| {
            let c = c.clone();
            let path = path.to_owned();
            let parts: Vec<(String, String)> =
                parts.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            async move {
                let p: Vec<(&str, &str, &str)> =
                    parts.iter().map(|(k, v)| (k.as_str(), "", v.as_str())).collect();
                c.send_multipart("POST", &path, &p).await
            }
        };
        let res = mp(
            "/routes",
            &[
                ("name", "m1"),
                ("service.id", &fx.svc_id),
                ("paths[1]", "/m1"),
                ("paths[2]", "/m2"),
                ("headers.x-m", "v"),
                ("hosts", "m.test"),
            ],
        )
        .await;
        assert_eq!(res.status, 201, "{d}: multipart route: {}", res.text());
        let v = res.json();
        assert_eq!(v["paths"], json!(["/m1", "/m2"]), "{d}: multipart paths[n]");
        assert_eq!(v["headers"], json!({ "x-m": ["v"] }), "{d}: multipart headers.x-m");
        assert_eq!(v["hosts"], json!(["m.test"]), "{d}: multipart hosts");
        let res = c
            .send_multipart(
                "POST",
                "/services",
                &[
                    ("name", "", "mp"),
                    ("url", "", "http://mp.test:8080/p"),
                    ("tags", "", "t1"),
                    ("retries", "", "3"),
                ],
            )
            .await;
        assert_eq!(res.status, 201, "{d}: multipart service: {}", res.text());
        let v = res.json();
        assert_eq!(
            (v["host"].clone(), v["port"].clone(), v["path"].clone()),
            (json!("mp.test"), json!(8080), json!("/p")),
            "{d}: url shorthand"
        );
        assert_eq!(v["tags"], json!(["t1"]), "{d}: multipart tags");
        assert_eq!(v["retries"], 3, "{d}: multipart integer");

        // form syntax errors are ordinary schema violations and store nothing
        let before = snapshot(&c).await;
        for (name, path, pairs, want) in [
            (
                "service.id not a UUID",
                "/routes",
                vec![("paths", "/x"), ("service.id", "bad")],
                fields(json!({ "service": { "id": "expected a valid UUID" } })),
            ),
            (
                "port=abc",
                "/services",
                vec![("host", "x.test"), ("port", "abc")],
                fields(json!({ "port": "expected an integer" })),
            ),
            (
                "map syntax on an array",
                "/routes",
                vec![("paths[x]", "/x"), ("service.id", fx.svc_id.as_str())],
                Want::Shaped,
            ),
            (
                "headers.host is not allowed",
                "/routes",
                vec![("paths", "/x"), ("headers.host", "h.test")],
                Want::Shaped,
            ),
            (
                "config not an object",
                "/plugins",
                vec![("name", "cors"), ("config", "x"), ("route.id", fx.rt_id.as_str())],
                Want::Shaped,
            ),
            ("dotted key on a scalar", "/services", vec![("host.x", "y")], Want::Shaped),
            ("empty key", "/services", vec![("", "x"), ("host", "x.test")], Want::Shaped),
        ] {
            let res = form(path, &pairs).await;
            check(&res, 400, &want, &format!("{d}: form {name}"));
            assert_eq!(snapshot(&c).await, before, "{d}: form {name}: the store changed");
        }
        // truncated or boundary-less multipart bodies carry no arguments (Kong logs and ignores)
        let res = c
            .request(
                "POST",
                "/services",
                &[("content-type", "multipart/form-data; boundary=zz")],
                "--zz\r\nContent-Disposition: form-data; name=\"host\"\r\n\r\nx.te",
            )
            .await;
        check(&res, 400, &Want::Shaped, &format!("{d}: truncated multipart"));
        assert_eq!(snapshot(&c).await, before, "{d}: truncated multipart: the store changed");
    }
}
