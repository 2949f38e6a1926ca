//! The `cors`, `ip-restriction` and `bot-detection` plugins end to end, through the real binary
//! and the echo upstream: preflights answered by the gateway, `Access-Control-*` headers on
//! proxied and plugin-generated responses, allowing and denying by client address (the
//! forwarded one from a trusted peer), refusing User-Agents, and the Admin API's checks.
//!
//! The expected values are Kong 3.9's: `kong/plugins/{cors,ip-restriction,bot-detection}/*.lua`
//! and the specs `spec/03-plugins/13-cors/01-access_spec.lua`,
//! `spec/03-plugins/17-ip-restriction/0{1,2}-*.lua` and
//! `spec/03-plugins/21-bot-detection/01-access_spec.lua`. Refusals go through
//! `kong.response.error` (Kong's error template with the request id).

use serde_json::{json, Value};
use turnpike_test::{create, expect, settle, Client, Gateway, Resp, Upstream};

// ---- fixtures -------------------------------------------------------------------------------

/// A route `/<name>` on the service `svc`, with the plugin `plugin` configured by `config`.
async fn plugin_route(a: &Client, svc: &str, name: &str, plugin: &str, config: Value) {
    let route = json!({"name": name, "paths": [format!("/{name}")]});
    create(a, &format!("/services/{svc}/routes"), route, name).await;
    add_plugin(a, name, plugin, config).await;
}

/// Adds the plugin `plugin` to the route `route`.
async fn add_plugin(a: &Client, route: &str, plugin: &str, config: Value) {
    let body = json!({"name": plugin, "config": config});
    create(a, &format!("/routes/{route}/plugins"), body, route).await;
}

/// A gateway (with these `kong.conf` settings) whose service `svc` points at a new echo
/// upstream, with one route per `(name, config)` carrying the plugin `plugin`; live.
async fn gateway_with(
    conf: &[(&str, &str)],
    plugin: &str,
    routes: &[(&str, Value)],
) -> (Gateway, Upstream) {
    let upstream = Upstream::http().start().await;
    let mut b = Gateway::builder();
    for (k, v) in conf {
        b = b.conf(k, v);
    }
    let gw = b.start().await;
    let a = gw.admin();
    create(&a, "/services", json!({"name": "svc", "url": upstream.url("http")}), "svc").await;
    for (name, config) in routes {
        plugin_route(&a, "svc", name, plugin, config.clone()).await;
    }
    settle(&gw).await;
    (gw, upstream)
}

/// Asserts a `kong.response.error` answer: the status and Kong's JSON error template with the
/// request id.
#[track_caller]
fn assert_error(res: &Resp, status: u16, message: &str, case: &str) {
    assert_eq!(res.status, status, "{case}: status; body {}", res.text());
    let rid = res.header("x-kong-request-id").unwrap_or_default();
    assert_eq!(
        res.text(),
        format!("{{\n  \"message\":\"{message}\",\n  \"request_id\":\"{rid}\"\n}}"),
        "{case}: body"
    );
    assert_eq!(
        res.header("content-type").as_deref(),
        Some("application/json; charset=utf-8"),
        "{case}: content type"
    );
}

/// Asserts a proxied 200 and returns what the upstream saw.
#[track_caller]
fn proxied(res: &Resp, case: &str) -> Value {
    assert_eq!(res.status, 200, "{case}: status; body {}", res.text());
    res.json()
}

// ---- cors -----------------------------------------------------------------------------------

const DEFAULT_METHODS: &str = "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT";

/// Every CORS response header, in this order: allow-origin, allow-methods, allow-headers,
/// expose-headers, allow-credentials, max-age.
const CORS_HEADERS: [&str; 6] = [
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-allow-credentials",
    "access-control-max-age",
];

/// Asserts the CORS headers of a response (`None`: absent) in [`CORS_HEADERS`] order, and its
/// `Vary` values.
#[track_caller]
fn assert_cors(res: &Resp, want: [Option<&str>; 6], vary: &[&str], case: &str) {
    for (name, want) in CORS_HEADERS.iter().zip(want) {
        assert_eq!(res.header(name).as_deref(), want, "{case}: {name}; headers {:?}", res.headers);
    }
    let got: Vec<String> = res
        .headers
        .get_all("vary")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    assert_eq!(got, vary, "{case}: vary");
}

/// The "accepts config options" configuration of Kong's spec (its `cors2.test`).
fn full_config() -> Value {
    json!({
        "origins": ["example.test"],
        "methods": ["GET"],
        "headers": ["origin", "type", "accepts"],
        "exposed_headers": ["x-auth-token"],
        "max_age": 23,
        "credentials": true,
    })
}

/// A preflight: OPTIONS with `Origin` and `Access-Control-Request-Method` (and `extra`).
async fn preflight(p: &Client, path: &str, origin: &str, extra: &[(&str, &str)]) -> Resp {
    let mut headers = vec![("origin", origin), ("access-control-request-method", "GET")];
    headers.extend_from_slice(extra);
    p.request("OPTIONS", path, &headers, "").await
}

/// "HTTP method: OPTIONS": the gateway answers preflights itself (an empty 200) with the
/// configured headers; the upstream never sees them.
#[tokio::test]
async fn cors_preflight_is_answered_by_the_gateway() {
    let routes = [
        ("defaults", json!({})),
        ("full", full_config()),
        ("private", json!({"origins": ["allowed-domain.test"], "private_network": true})),
    ];
    let (gw, upstream) = gateway_with(&[], "cors", &routes).await;
    let p = gw.proxy();

    let res = preflight(&p, "/full", "origin5.test", &[]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.text(), "");
    assert_eq!(res.header("content-length").as_deref(), Some("0"));
    let want = [
        Some("example.test"),
        Some("GET"),
        Some("origin,type,accepts"),
        None,
        Some("true"),
        Some("23"),
    ];
    assert_cors(&res, want, &["Origin"], "configured preflight");

    let res = preflight(&p, "/defaults/anything", "origin1.test", &[]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.text(), "");
    assert_eq!(res.header("content-length").as_deref(), Some("0"));
    assert_cors(&res, [Some("*"), Some(DEFAULT_METHODS), None, None, None, None], &[], "defaults");

    // without configured headers, the requested ones are allowed
    let acrh = [("access-control-request-headers", "origin,accepts")];
    let res = preflight(&p, "/defaults", "origin1.test", &acrh).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let want = [Some("*"), Some(DEFAULT_METHODS), Some("origin,accepts"), None, None, None];
    assert_cors(&res, want, &[], "requested headers");
    // configured headers win over the requested ones
    let res = preflight(&p, "/full", "origin5.test", &acrh).await;
    assert_eq!(res.header("access-control-allow-headers").as_deref(), Some("origin,type,accepts"));

    // "support private-network"
    let pna = [("access-control-request-private-network", "true")];
    let res = preflight(&p, "/private", "allowed-domain.test", &pna).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let want = [Some("allowed-domain.test"), Some(DEFAULT_METHODS), None, None, None, None];
    assert_cors(&res, want, &["Origin"], "private network");
    assert_eq!(res.header("access-control-allow-private-network").as_deref(), Some("true"));
    let res = preflight(&p, "/private", "allowed-domain.test", &[]).await;
    assert_eq!(res.header("access-control-allow-private-network"), None);

    assert_eq!(upstream.connections(), 0, "a preflight reached the upstream");

    // an OPTIONS without Access-Control-Request-Method is no preflight: it is proxied
    let res = p.request("OPTIONS", "/defaults/anything", &[("origin", "origin1.test")], "").await;
    let seen = proxied(&res, "OPTIONS without a request method");
    assert_eq!(seen["method"], "OPTIONS");
    assert_cors(&res, [Some("*"), None, None, None, None, None], &[], "non-preflight OPTIONS");
    assert!(upstream.connections() > 0);
}

/// A gateway with these cors routes:
/// - `/defaults`: `{}`;
/// - `/full`: [`full_config`];
/// - `/regex`: origins `.*\.?example(?:-foo)?.test` (Kong's `cors9.test`);
/// - `/sites`: origins `http://my-site.test`, `https://my-other-site.test:9000`;
/// - `/star-credentials`: origins `*`, credentials;
/// - `/star`: origins `*`;
/// - `/star-listed`: origins `foo.bar` and `*`;
/// - `/no-origins`: origins `[]`;
/// - `/listed-credentials`: Kong's `cors12.test` (two origins, credentials, headers…);
/// - `/continue`: preflight_continue;
/// - `/keyauth`: origins `(.*\.)?example\.test`, with key-auth on the same route.
async fn cors_gateway() -> (Gateway, Upstream) {
    let routes = [
        ("defaults", json!({})),
        ("full", full_config()),
        ("regex", json!({"origins": [r".*\.?example(?:-foo)?.test"]})),
        ("sites", json!({"origins": ["http://my-site.test", "https://my-other-site.test:9000"]})),
        ("star-credentials", json!({"origins": ["*"], "credentials": true})),
        ("star", json!({"origins": ["*"], "credentials": false})),
        ("star-listed", json!({"origins": ["foo.bar", "*"]})),
        ("no-origins", json!({"origins": []})),
        (
            "listed-credentials",
            json!({
                "credentials": true,
                "max_age": 1_728_000,
                "headers": ["DNT", "X-CustomHeader", "Keep-Alive", "User-Agent", "Authorization"],
                "origins": ["a.xxx.test", "allowed-domain.test"],
            }),
        ),
        (
            "continue",
            json!({"origins": ["example.test"], "methods": ["GET"], "preflight_continue": true}),
        ),
        ("keyauth", json!({"origins": [r"(.*\.)?example\.test"]})),
    ];
    let (gw, upstream) = gateway_with(&[], "cors", &routes).await;
    add_plugin(&gw.admin(), "keyauth", "key-auth", json!({})).await;
    settle(&gw).await;
    (gw, upstream)
}

/// A GET of `path` from `origin` (no `Origin` for `None`), expected to be proxied.
async fn get_from(p: &Client, path: &str, origin: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
    let res = p.request("GET", path, &headers, "").await;
    proxied(&res, &format!("GET {path} from {origin:?}"));
    res
}

/// "HTTP method: others": the headers on proxied responses, by configuration and `Origin`.
#[tokio::test]
async fn cors_headers_on_proxied_responses() {
    let (gw, _up) = cors_gateway().await;
    let p = gw.proxy();
    let get = |path, origin| get_from(&p, path, origin);

    let res = get("/defaults", None).await;
    assert_cors(&res, [Some("*"), None, None, None, None, None], &[], "defaults");
    let res = get("/defaults", Some("http://anywhere.test")).await;
    assert_cors(&res, [Some("*"), None, None, None, None, None], &[], "defaults with an origin");

    // a single plain origin is sent whatever the request's origin
    let want = [Some("example.test"), None, None, Some("x-auth-token"), Some("true"), None];
    let res = get("/full", None).await;
    assert_cors(&res, want, &["Origin"], "configured");
    let res = get("/full", Some("http://evil.test")).await;
    assert_cors(&res, want, &["Origin"], "configured, another origin");

    // a regex matches the origin's host, anchored
    for (origin, ok) in [
        ("example.test", true),
        ("www.example.test", true),
        ("example-foo.test", true),
        ("www.example-foo.test", true),
        ("www.example-fo0.test", false),
        ("http://www.example.net", false),
    ] {
        let res = get("/regex", Some(origin)).await;
        let acao = ok.then_some(origin);
        assert_cors(&res, [acao, None, None, None, None, None], &["Origin"], origin);
    }

    // a list of plain origins matches the normalized origin (scheme, host, non-default port)
    for (origin, acao) in [
        ("http://my-site.test", Some("http://my-site.test")),
        ("http://my-site.test:80", Some("http://my-site.test")),
        ("http://my-site.test:8000", None),
        ("https://my-site.test", None),
        ("https://my-other-site.test:9000", Some("https://my-other-site.test:9000")),
        ("https://my-other-site.test:9001", None),
        ("http://bad-guys.test", None),
        ("http://my-site.test.bad-guys.test", None),
    ] {
        let res = get("/sites", Some(origin)).await;
        assert_cors(&res, [acao, None, None, None, None, None], &["Origin"], origin);
    }

    // `*` with credentials answers with the request's origin
    for origin in ["http://www.example.net", "http://www.example.net:3000"] {
        let res = get("/star-credentials", Some(origin)).await;
        let want = [Some(origin), None, None, None, Some("true"), None];
        assert_cors(&res, want, &["Origin"], origin);
    }
    let res = get("/star-credentials", None).await;
    assert_cors(&res, [Some("*"), None, None, None, None, None], &[], "* credentials, no origin");
    let res = get("/star", Some("http://www.example.net")).await;
    assert_cors(&res, [Some("*"), None, None, None, None, None], &[], "* without credentials");
    // `*` among other origins, and no origins at all, allow every origin
    let res = get("/star-listed", Some("http://www.example.net")).await;
    let want = [Some("*"), None, None, None, None, None];
    assert_cors(&res, want, &["Origin"], "* among other origins");
    let res = get("/no-origins", Some("http://www.example.net")).await;
    assert_cors(&res, want, &[], "no origins");
}

/// "sets Vary and don't override existing Vary header", "removes upstream ACAO header when no
/// match is found", and the headers on an upstream error.
#[tokio::test]
async fn cors_headers_merge_with_the_upstreams() {
    let (gw, _up) = cors_gateway().await;
    let p = gw.proxy();

    let res = p
        .request("GET", "/full/response-headers?vary=Accept-Encoding", &[("origin", "x.test")], "")
        .await;
    proxied(&res, "upstream Vary");
    let want = [Some("example.test"), None, None, Some("x-auth-token"), Some("true"), None];
    assert_cors(&res, want, &["Accept-Encoding", "Origin"], "upstream Vary");

    let path = "/listed-credentials/response-headers?Response-Header=is-added&\
                Access-Control-Allow-Origin=*";
    let res = p.request("GET", path, &[("origin", "allowed-domain.test")], "").await;
    let seen = proxied(&res, "allowed origin");
    assert_eq!(seen["headers"]["origin"], "allowed-domain.test");
    assert_eq!(res.header("response-header").as_deref(), Some("is-added"));
    let want = [Some("allowed-domain.test"), None, None, None, Some("true"), None];
    assert_cors(&res, want, &["Origin"], "allowed origin");
    let res = p.request("GET", path, &[("origin", "disallowed-domain.test")], "").await;
    proxied(&res, "disallowed origin");
    assert_eq!(res.header("response-header").as_deref(), Some("is-added"));
    assert_cors(&res, [None, None, None, None, Some("true"), None], &["Origin"], "disallowed");

    let res = p.request("GET", "/defaults/status/404", &[], "").await;
    assert_eq!(res.status, 404, "{}", res.text());
    assert_cors(&res, [Some("*"), None, None, None, None, None], &[], "upstream 404");
    let res = p.request("GET", "/full/status/500", &[], "").await;
    assert_eq!(res.status, 500, "{}", res.text());
    let want = [Some("example.test"), None, None, Some("x-auth-token"), Some("true"), None];
    assert_cors(&res, want, &["Origin"], "upstream 500");
}

/// "preflight_continue enabled": the preflight goes to the upstream and its answer gets no CORS
/// headers.
#[tokio::test]
async fn cors_preflight_continue_proxies_the_preflight() {
    let (gw, _up) = cors_gateway().await;
    let p = gw.proxy();
    let res = preflight(&p, "/continue/status/201", "example.test", &[]).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let seen = res.json();
    assert_eq!(seen["method"], "OPTIONS");
    assert_eq!(seen["path"], "/status/201");
    assert_eq!(seen["headers"]["access-control-request-method"], "GET");
    assert_cors(&res, [None; 6], &[], "preflight_continue");

    // other requests still get the headers
    let res = p.request("GET", "/continue", &[("origin", "example.test")], "").await;
    proxied(&res, "GET");
    assert_cors(&res, [Some("example.test"), None, None, None, None, None], &["Origin"], "GET");
}

/// "works with 40x responses returned by another plugin": key-auth's 401 gets the CORS headers
/// (header_filter runs on plugin-generated responses), and a preflight is answered before
/// key-auth (cors has the higher priority).
#[tokio::test]
async fn cors_headers_on_a_key_auth_refusal() {
    let (gw, _up) = cors_gateway().await;
    let p = gw.proxy();

    let res = p.request("GET", "/keyauth", &[("origin", "http://www.example.test")], "").await;
    assert_error(&res, 401, "No API key found in request", "key-auth");
    assert_eq!(res.header("www-authenticate").as_deref(), Some("Key"));
    let want = [Some("http://www.example.test"), None, None, None, None, None];
    assert_cors(&res, want, &["Origin"], "key-auth 401");

    let res = p.request("GET", "/keyauth", &[("origin", "http://example.org")], "").await;
    assert_error(&res, 401, "No API key found in request", "key-auth, another origin");
    assert_cors(&res, [None; 6], &["Origin"], "key-auth 401, origin not allowed");

    let res = preflight(&p, "/keyauth", "http://www.example.test", &[]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.text(), "");
    let want = [Some("http://www.example.test"), Some(DEFAULT_METHODS), None, None, None, None];
    assert_cors(&res, want, &["Origin"], "preflight before key-auth");
}

// ---- ip-restriction -------------------------------------------------------------------------

/// "deny" and "allow": the peer address (127.0.0.1 here) against the lists, deny first.
#[tokio::test]
async fn ip_restriction_by_peer_address() {
    let routes = [
        ("deny-me", json!({"deny": ["127.0.0.1"]})),
        ("deny-other", json!({"deny": ["127.0.0.2"]})),
        ("deny-cidr", json!({"deny": ["127.0.0.0/24"]})),
        ("deny-all", json!({"deny": ["0.0.0.0/0"]})),
        ("allow-other", json!({"allow": ["10.0.0.0/8", "127.0.0.2"]})),
        ("allow-cidr", json!({"allow": ["127.0.0.0/8"]})),
        ("allow-v6", json!({"allow": ["::1"]})),
        ("deny-wins", json!({"allow": ["127.0.0.0/8"], "deny": ["127.0.0.1"]})),
        ("custom", json!({"deny": ["127.0.0.1"], "status": 401, "message": "Forbidden"})),
        ("untrusted", json!({"allow": ["127.0.0.3"]})),
    ];
    let (gw, _up) = gateway_with(&[], "ip-restriction", &routes).await;
    let p = gw.proxy();
    let refused = "IP address not allowed: 127.0.0.1";

    for (path, ok) in [
        ("/deny-me", false),
        ("/deny-other", true),
        ("/deny-cidr", false),
        ("/deny-all", false),
        ("/allow-other", false),
        ("/allow-cidr", true),
        ("/allow-v6", false),
        ("/deny-wins", false),
    ] {
        let res = p.get(path).await;
        if ok {
            proxied(&res, path);
        } else {
            assert_error(&res, 403, refused, path);
        }
    }
    let res = p.get("/custom").await;
    assert_error(&res, 401, "Forbidden", "custom status and message");

    // X-Forwarded-For from a peer outside trusted_ips is not believed
    let res = p.request("GET", "/untrusted", &[("x-forwarded-for", "127.0.0.3")], "").await;
    assert_error(&res, 403, refused, "untrusted X-Forwarded-For");
}

/// "X-Forwarded-For": with `trusted_ips` covering the peer and `real_ip_header`, the forwarded
/// address decides (the last one of the header, `real_ip_recursive` being off).
#[tokio::test]
async fn ip_restriction_by_forwarded_address_from_a_trusted_peer() {
    let conf = [("trusted_ips", "127.0.0.1/32"), ("real_ip_header", "X-Forwarded-For")];
    let routes =
        [("allow3", json!({"allow": ["127.0.0.3"]})), ("deny4", json!({"deny": ["127.0.0.4"]}))];
    let (gw, _up) = gateway_with(&conf, "ip-restriction", &routes).await;
    let p = gw.proxy();
    let xff = |v: &'static str| [("x-forwarded-for", v)];

    let res = p.get("/allow3").await;
    assert_error(&res, 403, "IP address not allowed: 127.0.0.1", "no X-Forwarded-For");
    let res = p.request("GET", "/allow3", &xff("127.0.0.3"), "").await;
    let seen = proxied(&res, "allowed forwarded address");
    assert_eq!(seen["headers"]["x-real-ip"], "127.0.0.3");
    let res = p.request("GET", "/allow3", &xff("127.0.0.4"), "").await;
    assert_error(&res, 403, "IP address not allowed: 127.0.0.4", "forwarded address not allowed");
    let res = p.request("GET", "/allow3", &xff("127.0.0.4, 127.0.0.3"), "").await;
    proxied(&res, "allowed last forwarded address");

    let res = p.get("/deny4").await;
    proxied(&res, "peer not denied");
    let res = p.request("GET", "/deny4", &xff("127.0.0.4"), "").await;
    assert_error(&res, 403, "IP address not allowed: 127.0.0.4", "denied forwarded address");
    let res = p.request("GET", "/deny4", &xff("127.0.0.3"), "").await;
    proxied(&res, "forwarded address not denied");
    let res = p.request("GET", "/deny4", &xff("127.0.0.3, 127.0.0.4"), "").await;
    assert_error(&res, 403, "IP address not allowed: 127.0.0.4", "denied last forwarded address");
}

/// 01-schema_spec.lua through the Admin API: an invalid CIDR, and neither list.
#[tokio::test]
async fn ip_restriction_admin_checks() {
    let gw = Gateway::builder().start().await;
    let a = gw.admin();

    let body = json!({"name": "ip-restriction", "config": {"allow": ["0.0.0.0/33"]}});
    let res = a.post_json("/plugins", &body).await;
    let msg = "invalid ip or cidr range: '0.0.0.0/33'";
    assert_eq!(
        expect(&res, 400, "invalid CIDR"),
        json!({
            "code": 2,
            "name": "schema violation",
            "message": format!("schema violation (config.allow: {{\n  \"{msg}\"\n}})"),
            "fields": {"config": {"allow": [msg]}},
        })
    );

    let body = json!({"name": "ip-restriction", "config": {"deny": ["hello"]}});
    let res = a.post_json("/plugins", &body).await;
    let j = expect(&res, 400, "not an address");
    assert_eq!(j["fields"], json!({"config": {"deny": ["invalid ip or cidr range: 'hello'"]}}));

    let at_least = "at least one of these fields must be non-empty: 'config.allow', 'config.deny'";
    let res = a.post_json("/plugins", &json!({"name": "ip-restriction", "config": {}})).await;
    assert_eq!(
        expect(&res, 400, "neither allow nor deny"),
        json!({
            "code": 2,
            "name": "schema violation",
            "message": format!("schema violation ({at_least})"),
            "fields": {"@entity": [at_least]},
        })
    );

    let body = json!({"name": "ip-restriction", "config": {"allow": ["::/0", "10.0.0.0/8"]}});
    let res = a.post_json("/plugins", &body).await;
    let p = expect(&res, 201, "valid lists");
    assert_eq!(p["config"]["allow"], json!(["::/0", "10.0.0.0/8"]));
    assert_eq!(p["config"]["deny"], Value::Null);
    assert_eq!(p["config"]["status"], Value::Null);
    assert_eq!(p["config"]["message"], Value::Null);
}

// ---- bot-detection --------------------------------------------------------------------------

const CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_5) AppleWebKit/537.36 \
                      (KHTML, like Gecko) Chrome/50.0.2661.102 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
const FACEBOOK: &str = "facebookexternalhit/1.1";

/// Sends a GET with this User-Agent (none for `None`).
async fn with_agent(p: &Client, path: &str, agent: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = agent.map(|a| ("user-agent", a)).into_iter().collect();
    p.request("GET", path, &headers, "").await
}

/// 01-access_spec.lua "allows regular requests", "blocks bots", "blocks denied user-agents",
/// "allows allowed user-agents".
#[tokio::test]
async fn bot_detection_by_user_agent() {
    let routes = [
        ("bots", json!({})),
        ("deny-hello", json!({"deny": ["HelloWorld"]})),
        ("deny-firefox", json!({"deny": [r"^Mozilla/5\.0 \(X11; Linux.*Firefox/\d+"]})),
        ("allow-facebook", json!({"allow": [FACEBOOK]})),
        ("allow-over-deny", json!({"allow": ["Friendly"], "deny": ["Friend"]})),
    ];
    let (gw, _up) = gateway_with(&[], "bot-detection", &routes).await;
    let p = gw.proxy();

    let res = with_agent(&p, "/bots", None).await;
    let seen = proxied(&res, "no User-Agent");
    assert_eq!(seen["headers"]["user-agent"], Value::Null);
    for (path, agent, ok) in [
        ("/bots", CHROME, true),
        ("/bots", FIREFOX, true),
        ("/bots", "HelloWorld", true),
        // Kong's rules do not list curl
        ("/bots", "curl/7.43.0", true),
        ("/bots", "Googlebot/2.1 (+http://www.google.com/bot.html)", false),
        ("/bots", FACEBOOK, false),
        ("/bots", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", false),
        ("/bots", "Go-http-client/1.1", false),
        ("/bots", "Python-urllib/3.11", false),
        ("/bots", "Scrapy/2.11.0 (+https://scrapy.org)", false),
        ("/deny-hello", "HelloWorld", false),
        ("/deny-hello", CHROME, true),
        ("/deny-firefox", FIREFOX, false),
        ("/deny-firefox", CHROME, true),
        ("/allow-facebook", FACEBOOK, true),
        ("/allow-facebook", "Googlebot/2.1 (+http://www.google.com/bot.html)", false),
        ("/allow-over-deny", "Friendly/1.0", true),
        ("/allow-over-deny", "Friend/1.0", false),
    ] {
        let res = with_agent(&p, path, Some(agent)).await;
        let case = format!("{path} {agent}");
        if ok {
            let seen = proxied(&res, &case);
            assert_eq!(seen["headers"]["user-agent"], agent, "{case}");
        } else {
            assert_error(&res, 403, "Forbidden", &case);
        }
    }

    let two = [("user-agent", CHROME), ("user-agent", "HelloWorld")];
    let res = p.request("GET", "/bots", &two, "").await;
    assert_error(&res, 400, "Only one User-Agent header allowed", "two User-Agent headers");
}
