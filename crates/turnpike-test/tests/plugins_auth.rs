//! The authentication and access-control plugins end to end, with the real binary and an echo
//! upstream that shows what went upstream: key-auth (Kong's getting-started walkthrough, spec
//! §9 item 3, on SQLite and PostgreSQL), basic-auth, anonymous consumers and the logical OR
//! between auth plugins, acl, and which plugin instance runs (spec §5 precedence).
//!
//! Expected values come from Kong's handlers (`kong/plugins/{key-auth,basic-auth,acl}`), their
//! specs (`spec/03-plugins/09-key-auth`, `10-basic-auth`, `18-acl`) and the PDK tests.

use base64::Engine as _;
use serde_json::{json, Value};
use turnpike_test::{
    assert_kong_error as assert_error, create, expect, new_uuid, route_to, s, until_routed,
    until_status, upstream_seen as upstream, Db, Gateway, Resp, Upstream,
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

/// POSTs JSON to the Admin API and expects 201; returns the entity.
async fn post(gw: &Gateway, path: &str, body: Value) -> Value {
    create(&gw.admin(), path, body, path).await
}

/// Sends `method path` with `headers` to the proxy.
async fn send(gw: &Gateway, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    gw.proxy().request(method, path, headers, "").await
}

/// Asserts a key-auth 401 (`WWW-Authenticate: Key`, or `Key realm="…"`).
#[track_caller]
fn assert_key_401(res: &Resp, message: &str, www: &str) {
    assert_error(res, 401, message);
    assert_eq!(res.header("www-authenticate").as_deref(), Some(www), "{message}");
}

/// Asserts a basic-auth 401: always `Unauthorized`.
#[track_caller]
fn assert_basic_401(res: &Resp, realm: &str, case: &str) {
    assert_eq!(res.status, 401, "{case}: {}", res.text());
    assert_error(res, 401, "Unauthorized");
    assert_eq!(res.header("www-authenticate"), Some(format!("Basic realm=\"{realm}\"")), "{case}");
}

/// One header the upstream received (`None` when absent).
fn up_header<'a>(seen: &'a Value, name: &str) -> Option<&'a str> {
    seen["headers"].get(name).map(|v| v.as_str().unwrap_or_else(|| panic!("{name}: {v}")))
}

/// The consumer headers Kong's auth plugins set upstream, as (id, custom id, username,
/// credential identifier, anonymous).
type ConsumerHeaders<'a> =
    (Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<&'a str>);

fn consumer_headers(seen: &Value) -> ConsumerHeaders<'_> {
    (
        up_header(seen, "x-consumer-id"),
        up_header(seen, "x-consumer-custom-id"),
        up_header(seen, "x-consumer-username"),
        up_header(seen, "x-credential-identifier"),
        up_header(seen, "x-anonymous-consumer"),
    )
}

fn basic(user_pass: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
}

/// Kong's stored basic-auth password: lowercase hex of `sha1(password .. consumer_id)`.
fn kong_basic_hash(password: &str, consumer_id: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(password.as_bytes());
    ctx.update(consumer_id.as_bytes());
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// key-auth

/// Spec §9 item 3, as documented: a consumer, its key, a global key-auth plugin created with
/// form fields, then the three documented requests, the consumer headers upstream and
/// disabling the plugin.
async fn key_auth_walkthrough(db: Db) {
    let case = db.name();
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().db(db.clone()).start().await;
    let admin = gw.admin();
    echo_route(&gw, &up, "example_service", "/mock").await;

    let res = admin.post_form("/consumers/", &[("username", "luka")]).await;
    let luka = expect(&res, 201, case);
    let res = admin.post_form("/consumers/luka/key-auth", &[("key", "top-secret-key")]).await;
    let cred = expect(&res, 201, case);
    assert_eq!(cred["key"], "top-secret-key", "{case}");
    assert_eq!(cred["consumer"], json!({"id": luka["id"]}), "{case}");
    let res =
        admin.post_form("/plugins/", &[("name", "key-auth"), ("config.key_names", "apikey")]).await;
    let plugin = expect(&res, 201, case);
    assert_eq!(plugin["config"]["key_names"], json!(["apikey"]), "{case}: scalar wrapped");
    assert_eq!(plugin["config"]["hide_credentials"], false, "{case}");
    assert_eq!(plugin["config"]["anonymous"], Value::Null, "{case}");

    let res = until_status(&gw, "/mock/anything", &[], 401).await;
    assert_key_401(&res, "No API key found in request", "Key");

    let res = send(&gw, "GET", "/mock/anything", &[("apikey", "bad-key")]).await;
    assert_key_401(&res, "Unauthorized", "Key");

    let res = send(&gw, "GET", "/mock/anything", &[("apikey", "top-secret-key")]).await;
    let seen = upstream(&res);
    assert_eq!(seen["path"], "/anything", "{case}");
    assert_eq!(
        consumer_headers(&seen),
        (Some(s(&luka["id"])), None, Some("luka"), Some(s(&cred["id"])), None),
        "{case}: consumer headers upstream"
    );
    assert_eq!(up_header(&seen, "apikey"), Some("top-secret-key"), "{case}: key kept upstream");

    let res = send(&gw, "GET", "/mock/anything?apikey=top-secret-key&x=1", &[]).await;
    let seen = upstream(&res);
    assert_eq!(seen["query"], "apikey=top-secret-key&x=1", "{case}: query kept upstream");
    assert_eq!(up_header(&seen, "x-consumer-username"), Some("luka"), "{case}");
    assert_eq!(up_header(&seen, "x-credential-identifier"), Some(s(&cred["id"])), "{case}");

    // "PATCH :8001/plugins/{id} --data enabled=false → requests succeed unauthenticated"
    let path = format!("/plugins/{}", s(&plugin["id"]));
    let res = admin.patch_form(&path, &[("enabled", "false")]).await;
    assert_eq!(expect(&res, 200, case)["enabled"], false, "{case}");
    let res = until_status(&gw, "/mock/anything", &[], 200).await;
    assert_eq!(consumer_headers(&res.json()), (None, None, None, None, None), "{case}");
}

#[tokio::test]
async fn key_auth_walkthrough_on_sqlite() {
    key_auth_walkthrough(Db::Sqlite).await;
}

#[tokio::test]
async fn key_auth_walkthrough_on_postgres() {
    let Some(url) = turnpike_store::testing::pg_url() else { return };
    key_auth_walkthrough(Db::Postgres(url)).await;
}

/// The consumer headers are the gateway's: whatever the client sent under those names is
/// replaced (or removed when the consumer has no such value).
#[tokio::test]
async fn key_auth_consumer_headers_cannot_be_spoofed() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "spoof", "/spoof").await;
    let lia = post(&gw, "/consumers", json!({"username": "lia", "custom_id": "c-42"})).await;
    let lia_key = post(&gw, "/consumers/lia/key-auth", json!({"key": "lia-key"})).await;
    let noname = post(&gw, "/consumers", json!({"custom_id": "only-custom"})).await;
    let noname_key =
        post(&gw, &format!("/consumers/{}/key-auth", s(&noname["id"])), json!({"key": "nn-key"}))
            .await;
    post(&gw, "/routes/spoof/plugins", json!({"name": "key-auth"})).await;
    until_status(&gw, "/spoof", &[], 401).await;

    let spoofed = [
        ("x-consumer-id", "00000000-0000-0000-0000-000000000000"),
        ("x-consumer-custom-id", "spoofed-custom"),
        ("x-consumer-username", "admin"),
        ("x-credential-identifier", "spoofed-credential"),
        ("x-anonymous-consumer", "true"),
    ];
    let mut headers = spoofed.to_vec();
    headers.push(("apikey", "lia-key"));
    let seen = upstream(&send(&gw, "GET", "/spoof", &headers).await);
    assert_eq!(
        consumer_headers(&seen),
        (Some(s(&lia["id"])), Some("c-42"), Some("lia"), Some(s(&lia_key["id"])), None)
    );

    let mut headers = spoofed.to_vec();
    headers.push(("apikey", "nn-key"));
    let seen = upstream(&send(&gw, "GET", "/spoof", &headers).await);
    assert_eq!(
        consumer_headers(&seen),
        (Some(s(&noname["id"])), Some("only-custom"), None, Some(s(&noname_key["id"])), None),
        "a consumer without a username: the client's X-Consumer-Username is cleared"
    );
}

/// Where keys are looked for (header, then query string, for each name in order), duplicate
/// and empty keys, `realm`, `key_in_header` / `key_in_query`.
#[tokio::test]
async fn key_auth_key_lookup() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "default", "/default").await;
    echo_route(&gw, &up, "names", "/names").await;
    echo_route(&gw, &up, "realm", "/realm").await;
    echo_route(&gw, &up, "headeronly", "/headeronly").await;
    echo_route(&gw, &up, "queryonly", "/queryonly").await;
    let c = post(&gw, "/consumers", json!({"username": "kim"})).await;
    post(&gw, "/consumers/kim/key-auth", json!({"key": "k1"})).await;
    post(&gw, "/routes/default/plugins", json!({"name": "key-auth"})).await;
    let names = json!({"key_names": ["apikey", "x-token"]});
    post(&gw, "/routes/names/plugins", json!({"name": "key-auth", "config": names})).await;
    post(&gw, "/routes/realm/plugins", json!({"name": "key-auth", "config": {"realm": "x"}})).await;
    let conf = json!({"key_in_query": false});
    post(&gw, "/routes/headeronly/plugins", json!({"name": "key-auth", "config": conf})).await;
    let conf = json!({"key_in_header": false});
    post(&gw, "/routes/queryonly/plugins", json!({"name": "key-auth", "config": conf})).await;
    for path in ["/default", "/names", "/realm", "/headeronly", "/queryonly"] {
        until_status(&gw, path, &[], 401).await;
    }

    // duplicates: the same name twice in the headers or in the query string
    let res = send(&gw, "GET", "/default", &[("apikey", "k1"), ("apikey", "k1")]).await;
    assert_key_401(&res, "Duplicate API key found", "Key");
    let res = send(&gw, "GET", "/default?apikey=k1&apikey=k1", &[]).await;
    assert_key_401(&res, "Duplicate API key found", "Key");
    // an empty key is no key
    let res = send(&gw, "GET", "/default?apikey=", &[]).await;
    assert_key_401(&res, "No API key found in request", "Key");
    let res = send(&gw, "GET", "/default", &[("apikey", "")]).await;
    assert_key_401(&res, "No API key found in request", "Key");
    // the header is looked at before the query string
    let res = send(&gw, "GET", "/default?apikey=wrong", &[("apikey", "k1")]).await;
    assert_eq!(up_header(&upstream(&res), "x-consumer-id"), Some(s(&c["id"])));
    let res = send(&gw, "GET", "/default?apikey=k1", &[("apikey", "wrong")]).await;
    assert_key_401(&res, "Unauthorized", "Key");
    // header names are case-insensitive
    let res = send(&gw, "GET", "/default", &[("APIKEY", "k1")]).await;
    assert_eq!(up_header(&upstream(&res), "x-consumer-username"), Some("kim"));

    // every configured name is tried, in order
    let res = send(&gw, "GET", "/names", &[("x-token", "k1")]).await;
    assert_eq!(up_header(&upstream(&res), "x-consumer-username"), Some("kim"));
    let res = send(&gw, "GET", "/names?x-token=k1", &[]).await;
    assert_eq!(up_header(&upstream(&res), "x-consumer-username"), Some("kim"));
    let res = send(&gw, "GET", "/names", &[("apikey", "wrong"), ("x-token", "k1")]).await;
    assert_key_401(&res, "Unauthorized", "Key");

    // realm
    let res = send(&gw, "GET", "/realm", &[]).await;
    assert_key_401(&res, "No API key found in request", "Key realm=\"x\"");
    let res = send(&gw, "GET", "/realm", &[("apikey", "nope")]).await;
    assert_key_401(&res, "Unauthorized", "Key realm=\"x\"");

    // key_in_query=false / key_in_header=false
    let res = send(&gw, "GET", "/headeronly?apikey=k1", &[]).await;
    assert_key_401(&res, "No API key found in request", "Key");
    upstream(&send(&gw, "GET", "/headeronly", &[("apikey", "k1")]).await);
    let res = send(&gw, "GET", "/queryonly", &[("apikey", "k1")]).await;
    assert_key_401(&res, "No API key found in request", "Key");
    upstream(&send(&gw, "GET", "/queryonly?apikey=k1", &[]).await);
}

/// `hide_credentials`: the key's header and query argument do not go upstream, the other
/// arguments do, in order.
#[tokio::test]
async fn key_auth_hide_credentials() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "hidden", "/hidden").await;
    post(&gw, "/consumers", json!({"username": "kim"})).await;
    post(&gw, "/consumers/kim/key-auth", json!({"key": "k1"})).await;
    let conf = json!({"hide_credentials": true});
    post(&gw, "/routes/hidden/plugins", json!({"name": "key-auth", "config": conf})).await;
    until_status(&gw, "/hidden", &[], 401).await;

    let seen =
        upstream(&send(&gw, "GET", "/hidden/x", &[("apikey", "k1"), ("x-other", "o")]).await);
    assert_eq!(up_header(&seen, "apikey"), None, "header removed");
    assert_eq!(up_header(&seen, "x-other"), Some("o"));
    assert_eq!(up_header(&seen, "x-consumer-username"), Some("kim"));

    let seen = upstream(&send(&gw, "GET", "/hidden/x?a=1&apikey=k1&b=2", &[]).await);
    assert_eq!(seen["query"], "a=1&b=2", "query argument removed, the others kept in order");
    assert_eq!(seen["path"], "/x");
    assert_eq!(up_header(&seen, "x-consumer-username"), Some("kim"));

    let seen = upstream(&send(&gw, "GET", "/hidden/x?apikey=k1", &[]).await);
    assert_eq!(seen["query"], Value::Null, "no query left: no `?` upstream");
    assert_eq!(seen["uri"], "/x");
}

/// Kong's `clear_query_arg` re-serializes what is left of the query string with `%20` for a
/// space (PDK test `t/01-pdk/06-service-request/14-clear_query_arg.t` TEST 8: `c+d=1+2`
/// becomes `c%20d=1%202`).
#[tokio::test]
async fn key_auth_hide_credentials_reencodes_spaces_like_kong() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "hidden", "/hidden").await;
    post(&gw, "/consumers", json!({"username": "kim"})).await;
    post(&gw, "/consumers/kim/key-auth", json!({"key": "k1"})).await;
    let conf = json!({"hide_credentials": true});
    post(&gw, "/routes/hidden/plugins", json!({"name": "key-auth", "config": conf})).await;
    until_status(&gw, "/hidden", &[], 401).await;

    let seen = upstream(&send(&gw, "GET", "/hidden?c+d=1+2&apikey=k1&q=a%20b", &[]).await);
    assert_eq!(seen["query"], "c%20d=1%202&q=a%20b");
}

/// POSTs `body` with `headers` to the proxy.
async fn post_body(gw: &Gateway, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    gw.proxy().request("POST", path, headers, body.to_owned()).await
}

/// `key_in_body`: a key in a form or JSON body (Kong's `kong.request.get_body`), after the
/// header and the query string; a repeated field is a duplicate; `hide_credentials` removes the
/// field from the body sent upstream.
#[tokio::test]
async fn key_auth_key_in_body() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "body", "/body").await;
    echo_route(&gw, &up, "bodyhide", "/bodyhide").await;
    post(&gw, "/consumers", json!({"username": "kim"})).await;
    post(&gw, "/consumers/kim/key-auth", json!({"key": "k1"})).await;
    let conf = json!({"key_in_body": true});
    post(&gw, "/routes/body/plugins", json!({"name": "key-auth", "config": conf})).await;
    let conf = json!({"key_in_body": true, "hide_credentials": true});
    post(&gw, "/routes/bodyhide/plugins", json!({"name": "key-auth", "config": conf})).await;
    until_status(&gw, "/body", &[], 401).await;
    until_status(&gw, "/bodyhide", &[], 401).await;

    let form = [("content-type", "application/x-www-form-urlencoded")];
    let json_ct = [("content-type", "application/json")];
    let seen = upstream(&post_body(&gw, "/body", &form, "apikey=k1&x=1").await);
    assert_eq!(up_header(&seen, "x-consumer-username"), Some("kim"));
    assert_eq!(seen["body"], "apikey=k1&x=1", "the body goes upstream as sent");
    let seen = upstream(&post_body(&gw, "/body", &json_ct, r#"{"apikey":"k1"}"#).await);
    assert_eq!(up_header(&seen, "x-consumer-username"), Some("kim"));
    let res = post_body(&gw, "/body", &form, "apikey=k1&apikey=k1").await;
    assert_key_401(&res, "Duplicate API key found", "Key");
    let res = post_body(&gw, "/body", &json_ct, r#"{"apikey":["k1","k1"]}"#).await;
    assert_key_401(&res, "Duplicate API key found", "Key");
    let res = post_body(&gw, "/body", &json_ct, r#"{"apikey":123}"#).await;
    assert_key_401(&res, "No API key found in request", "Key");
    let res = post_body(&gw, "/body", &[("content-type", "text/plain")], "apikey=k1").await;
    assert_key_401(&res, "No API key found in request", "Key");
    // the header and the query string still count, and come first
    let res =
        gw.proxy().request("POST", "/body", &[("apikey", "nope"), form[0]], "apikey=k1").await;
    assert_key_401(&res, "Unauthorized", "Key");
    upstream(&post_body(&gw, "/body?apikey=k1", &form, "x=1").await);

    let seen = upstream(&post_body(&gw, "/bodyhide", &form, "apikey=k1&x=1").await);
    assert_eq!((&seen["body"], &seen["body_len"]), (&json!("x=1"), &json!(3)));
    let seen = upstream(&post_body(&gw, "/bodyhide", &json_ct, r#"{"apikey":"k1","x":1}"#).await);
    assert_eq!(seen["body"], r#"{"x":1}"#);
    assert_eq!(up_header(&seen, "x-consumer-username"), Some("kim"));
}

/// Credentials through the Admin API: a generated key, keys added and removed while the
/// plugin runs.
#[tokio::test]
async fn key_auth_credentials_are_live() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "r", "/r").await;
    post(&gw, "/consumers", json!({"username": "gen"})).await;
    post(&gw, "/plugins", json!({"name": "key-auth"})).await;
    until_status(&gw, "/r", &[], 401).await;

    // a key is generated when omitted: 32 alphanumerics (kong.tools.rand.random_string)
    let res = gw.admin().post_form("/consumers/gen/key-auth", &[]).await;
    let cred = expect(&res, 201, "generated key");
    let key = s(&cred["key"]).to_owned();
    assert!(key.len() == 32 && key.bytes().all(|b| b.is_ascii_alphanumeric()), "key {key:?}");
    let res = until_status(&gw, "/r", &[("apikey", &key)], 200).await;
    assert_eq!(up_header(&res.json(), "x-credential-identifier"), Some(s(&cred["id"])));
    let other = post(&gw, "/consumers/gen/key-auth", json!({})).await;
    assert_ne!(other["key"], cred["key"], "every generated key differs");

    // the global collection lists it; deleting it revokes it
    let j = expect(&gw.admin().get("/key-auths").await, 200, "/key-auths");
    assert_eq!(j["data"].as_array().map(Vec::len), Some(2), "{j}");
    let res = gw.admin().delete(&format!("/key-auths/{}", s(&cred["id"]))).await;
    expect(&res, 204, "delete");
    let res = until_status(&gw, "/r", &[("apikey", &key)], 401).await;
    assert_key_401(&res, "Unauthorized", "Key");
}

/// `run_on_preflight=false` lets OPTIONS through unauthenticated (and only OPTIONS); a
/// route's plugin leaves the other routes alone.
#[tokio::test]
async fn key_auth_preflight_and_route_scope() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "private", "/private").await;
    echo_route(&gw, &up, "preflight", "/preflight").await;
    echo_route(&gw, &up, "public", "/public").await;
    post(&gw, "/routes/private/plugins", json!({"name": "key-auth"})).await;
    let conf = json!({"run_on_preflight": false});
    post(&gw, "/routes/preflight/plugins", json!({"name": "key-auth", "config": conf})).await;
    until_status(&gw, "/private", &[], 401).await;
    until_status(&gw, "/preflight", &[], 401).await;

    let res = send(&gw, "OPTIONS", "/preflight", &[]).await;
    let seen = upstream(&res);
    assert_eq!(seen["method"], "OPTIONS");
    assert_eq!(consumer_headers(&seen), (None, None, None, None, None));
    let res = send(&gw, "POST", "/preflight", &[]).await;
    assert_key_401(&res, "No API key found in request", "Key");
    // run_on_preflight defaults to true
    let res = send(&gw, "OPTIONS", "/private", &[]).await;
    assert_key_401(&res, "No API key found in request", "Key");

    let seen = upstream(&send(&gw, "GET", "/public", &[]).await);
    assert_eq!(consumer_headers(&seen), (None, None, None, None, None));
}

// ---------------------------------------------------------------------------------------------
// basic-auth

#[tokio::test]
async fn basic_auth_credentials_and_failures() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    let admin = gw.admin();
    echo_route(&gw, &up, "basic", "/basic").await;
    echo_route(&gw, &up, "realm", "/realm").await;
    let bob = post(&gw, "/consumers", json!({"username": "bob"})).await;
    let bob_id = s(&bob["id"]).to_owned();

    // the password is stored hashed, Kong's way, and never returned in clear
    let cred =
        post(&gw, "/consumers/bob/basic-auth", json!({"username": "bob-user", "password": "kong"}))
            .await;
    let hash = kong_basic_hash("kong", &bob_id);
    assert_eq!(cred["password"], hash, "sha1(password .. consumer_id)");
    assert_eq!(cred["consumer"], json!({"id": bob_id}));
    let got = expect(&admin.get("/basic-auths/bob-user").await, 200, "GET by username");
    assert_eq!(got, cred);
    let got = expect(&admin.get("/consumers/bob/basic-auth").await, 200, "nested list");
    assert_eq!(got["data"], json!([cred]));
    let colon = post(
        &gw,
        "/consumers/bob/basic-auth",
        json!({"username": "colon-user", "password": "pa:ss word"}),
    )
    .await;
    assert_eq!(colon["password"], kong_basic_hash("pa:ss word", &bob_id));

    post(&gw, "/routes/basic/plugins", json!({"name": "basic-auth"})).await;
    let conf = json!({"realm": "my-realm"});
    post(&gw, "/routes/realm/plugins", json!({"name": "basic-auth", "config": conf})).await;
    until_status(&gw, "/basic", &[], 401).await;
    until_status(&gw, "/realm", &[], 401).await;

    let auth = basic("bob-user:kong");
    let seen = upstream(&send(&gw, "GET", "/basic", &[("authorization", &auth)]).await);
    assert_eq!(
        consumer_headers(&seen),
        (Some(bob_id.as_str()), None, Some("bob"), Some("bob-user"), None),
        "X-Credential-Identifier is the basic-auth username"
    );
    assert_eq!(up_header(&seen, "authorization"), Some(auth.as_str()), "kept upstream");
    // the scheme may be lowercase, the password may hold colons
    let lower = format!("basic {}", &basic("bob-user:kong")[6..]);
    upstream(&send(&gw, "GET", "/basic", &[("authorization", &lower)]).await);
    let auth = basic("colon-user:pa:ss word");
    let seen = upstream(&send(&gw, "GET", "/basic", &[("authorization", &auth)]).await);
    assert_eq!(up_header(&seen, "x-credential-identifier"), Some("colon-user"));
    // Proxy-Authorization is accepted too
    let auth = basic("bob-user:kong");
    let seen = upstream(&send(&gw, "GET", "/basic", &[("proxy-authorization", &auth)]).await);
    assert_eq!(up_header(&seen, "x-credential-identifier"), Some("bob-user"));

    // Proxy-Authorization is tried first; Authorization only when it names no credential
    let good = basic("bob-user:kong");
    for (case, proxy, status) in [
        ("unknown user in Proxy-Authorization", basic("alice:kong"), 200),
        ("malformed Proxy-Authorization", "Basic !!!".to_owned(), 200),
        ("known user, wrong password in Proxy-Authorization", basic("colon-user:nope"), 401),
    ] {
        let headers = [("authorization", good.as_str()), ("proxy-authorization", proxy.as_str())];
        let res = send(&gw, "GET", "/basic", &headers).await;
        assert_eq!(res.status, status, "{case}: {}", res.text());
    }

    let failures: &[(&str, Option<String>)] = &[
        ("no header", None),
        ("wrong password", Some(basic("bob-user:nope"))),
        ("stored hash as password", Some(basic(&format!("bob-user:{hash}")))),
        ("unknown user", Some(basic("alice:kong"))),
        ("no colon", Some(basic("bob-user"))),
        ("empty user", Some(basic(":kong"))),
        ("bad base64", Some("Basic !!!not-base64!!!".to_owned())),
        ("other scheme", Some(format!("Bearer {}", &basic("bob-user:kong")[6..]))),
        ("no credentials", Some("Basic".to_owned())),
    ];
    for (case, value) in failures {
        let headers: Vec<(&str, &str)> =
            value.iter().map(|v| ("authorization", v.as_str())).collect();
        let res = send(&gw, "GET", "/basic", &headers).await;
        assert_basic_401(&res, "service", case);
        let res = send(&gw, "GET", "/realm", &headers).await;
        assert_basic_401(&res, "my-realm", case);
    }
}

#[tokio::test]
async fn basic_auth_hide_credentials() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "hidden", "/hidden").await;
    post(&gw, "/consumers", json!({"username": "bob"})).await;
    post(&gw, "/consumers/bob/basic-auth", json!({"username": "bob", "password": "pw"})).await;
    let conf = json!({"hide_credentials": true});
    post(&gw, "/routes/hidden/plugins", json!({"name": "basic-auth", "config": conf})).await;
    until_status(&gw, "/hidden", &[], 401).await;

    let auth = basic("bob:pw");
    let seen = upstream(&send(&gw, "GET", "/hidden", &[("authorization", &auth)]).await);
    assert_eq!(up_header(&seen, "authorization"), None, "Authorization removed");
    assert_eq!(up_header(&seen, "x-consumer-username"), Some("bob"));
    let seen = upstream(&send(&gw, "GET", "/hidden", &[("proxy-authorization", &auth)]).await);
    assert_eq!(up_header(&seen, "proxy-authorization"), None, "Proxy-Authorization removed");
    assert_eq!(up_header(&seen, "x-consumer-username"), Some("bob"));
}

// ---------------------------------------------------------------------------------------------
// anonymous consumers, several auth plugins

/// `config.anonymous` by username and by id: a failed authentication goes on as that
/// consumer, with `X-Anonymous-Consumer: true` and no credential; a missing consumer is
/// Kong's 500.
#[tokio::test]
async fn key_auth_anonymous_consumer() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "by-name", "/by-name").await;
    echo_route(&gw, &up, "by-id", "/by-id").await;
    echo_route(&gw, &up, "missing", "/missing").await;
    let anon = post(&gw, "/consumers", json!({"username": "anon", "custom_id": "anon-c"})).await;
    let user = post(&gw, "/consumers", json!({"username": "user"})).await;
    let key = post(&gw, "/consumers/user/key-auth", json!({"key": "user-key"})).await;
    let conf = json!({"anonymous": "anon"});
    post(&gw, "/routes/by-name/plugins", json!({"name": "key-auth", "config": conf})).await;
    let conf = json!({"anonymous": anon["id"]});
    post(&gw, "/routes/by-id/plugins", json!({"name": "key-auth", "config": conf})).await;
    let conf = json!({"anonymous": "ghost"});
    post(&gw, "/routes/missing/plugins", json!({"name": "key-auth", "config": conf})).await;

    let res = until_status(&gw, "/missing", &[], 500).await;
    assert_error(&res, 500, "anonymous consumer ghost is configured but doesn't exist");
    let anon_headers = (Some(s(&anon["id"])), Some("anon-c"), Some("anon"), None, Some("true"));
    for path in ["/by-name", "/by-id"] {
        let res = until_status(&gw, path, &[("x-credential-identifier", "spoofed")], 200).await;
        assert_eq!(consumer_headers(&res.json()), anon_headers, "{path}: no key");
        let res = send(&gw, "GET", path, &[("apikey", "wrong")]).await;
        assert_eq!(consumer_headers(&upstream(&res)), anon_headers, "{path}: wrong key");
        let res =
            send(&gw, "GET", path, &[("apikey", "user-key"), ("x-anonymous-consumer", "true")])
                .await;
        assert_eq!(
            consumer_headers(&upstream(&res)),
            (Some(s(&user["id"])), None, Some("user"), Some(s(&key["id"])), None),
            "{path}: right key"
        );
        let res = send(&gw, "GET", path, &[("apikey", "a"), ("apikey", "b")]).await;
        assert_eq!(consumer_headers(&upstream(&res)), anon_headers, "{path}: duplicate key");
    }
    let res = send(&gw, "GET", "/missing", &[("apikey", "user-key")]).await;
    assert_eq!(up_header(&upstream(&res), "x-consumer-username"), Some("user"));
}

#[tokio::test]
async fn basic_auth_anonymous_consumer() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "anon", "/anon").await;
    echo_route(&gw, &up, "missing", "/missing").await;
    let anon = post(&gw, "/consumers", json!({"username": "anon"})).await;
    post(&gw, "/consumers", json!({"username": "bob"})).await;
    post(&gw, "/consumers/bob/basic-auth", json!({"username": "bob", "password": "pw"})).await;
    let conf = json!({"anonymous": "anon"});
    post(&gw, "/routes/anon/plugins", json!({"name": "basic-auth", "config": conf})).await;
    let id = new_uuid(); // no consumer has it
    let conf = json!({"anonymous": id});
    post(&gw, "/routes/missing/plugins", json!({"name": "basic-auth", "config": conf})).await;

    let res = until_status(&gw, "/missing", &[], 500).await;
    assert_error(&res, 500, &format!("anonymous consumer {id} is configured but doesn't exist"));
    let res = until_status(&gw, "/anon", &[], 200).await;
    assert_eq!(
        consumer_headers(&res.json()),
        (Some(s(&anon["id"])), None, Some("anon"), None, Some("true"))
    );
    let res = send(&gw, "GET", "/anon", &[("authorization", &basic("bob:wrong"))]).await;
    assert_eq!(up_header(&upstream(&res), "x-consumer-username"), Some("anon"));
    let res = send(&gw, "GET", "/anon", &[("authorization", &basic("bob:pw"))]).await;
    let seen = upstream(&res);
    assert_eq!(up_header(&seen, "x-consumer-username"), Some("bob"));
    assert_eq!(up_header(&seen, "x-anonymous-consumer"), None);
}

/// key-auth and basic-auth on one route: with `anonymous` on both, either credential is enough
/// (logical OR, 09-key-auth/02-access_spec.lua "multiple auth with anonymous"); without it,
/// both are required (logical AND) and the last plugin to run (basic-auth) sets the consumer.
#[tokio::test]
async fn two_auth_plugins_or_and_and() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "or", "/or").await;
    echo_route(&gw, &up, "and", "/and").await;
    let anon = post(&gw, "/consumers", json!({"username": "anon"})).await;
    let user1 = post(&gw, "/consumers", json!({"username": "user1"})).await;
    let user2 = post(&gw, "/consumers", json!({"username": "user2"})).await;
    post(&gw, "/consumers/user1/key-auth", json!({"key": "Mouse"})).await;
    post(
        &gw,
        "/consumers/user2/basic-auth",
        json!({"username": "Aladdin", "password": "OpenSesame"}),
    )
    .await;
    let anon_conf = json!({"anonymous": anon["id"]});
    post(&gw, "/routes/or/plugins", json!({"name": "key-auth", "config": anon_conf})).await;
    post(&gw, "/routes/or/plugins", json!({"name": "basic-auth", "config": anon_conf})).await;
    post(&gw, "/routes/and/plugins", json!({"name": "key-auth"})).await;
    post(&gw, "/routes/and/plugins", json!({"name": "basic-auth"})).await;
    let both: &[(&str, &str)] =
        &[("apikey", "Mouse"), ("authorization", "Basic QWxhZGRpbjpPcGVuU2VzYW1l")];

    // the /and plugins were created last: once they run, every plugin does
    let res = until_status(&gw, "/and", &[], 401).await;
    assert_key_401(&res, "No API key found in request", "Key");

    // logical OR
    let seen = upstream(&send(&gw, "GET", "/or", &[]).await);
    assert_eq!(up_header(&seen, "x-anonymous-consumer"), Some("true"), "no credential");
    assert_eq!(up_header(&seen, "x-consumer-id"), Some(s(&anon["id"])), "no credential");
    let seen = upstream(&send(&gw, "GET", "/or", both).await);
    assert_eq!(up_header(&seen, "x-anonymous-consumer"), None, "both");
    assert_eq!(up_header(&seen, "x-consumer-id"), Some(s(&user1["id"])), "both: key-auth first");
    let seen = upstream(&send(&gw, "GET", "/or", &both[..1]).await);
    assert_eq!(up_header(&seen, "x-anonymous-consumer"), None, "key only");
    assert_eq!(up_header(&seen, "x-consumer-id"), Some(s(&user1["id"])), "key only");
    let seen = upstream(&send(&gw, "GET", "/or", &both[1..]).await);
    assert_eq!(up_header(&seen, "x-anonymous-consumer"), None, "basic only");
    assert_eq!(up_header(&seen, "x-consumer-id"), Some(s(&user2["id"])), "basic only");
    assert_eq!(up_header(&seen, "x-credential-identifier"), Some("Aladdin"), "basic only");

    // logical AND
    let res = send(&gw, "GET", "/and", &both[1..]).await;
    assert_key_401(&res, "No API key found in request", "Key");
    let res = send(&gw, "GET", "/and", &both[..1]).await;
    assert_basic_401(&res, "service", "key only");
    let seen = upstream(&send(&gw, "GET", "/and", both).await);
    assert_eq!(up_header(&seen, "x-consumer-id"), Some(s(&user2["id"])), "both: basic-auth last");
    assert_eq!(up_header(&seen, "x-credential-identifier"), Some("Aladdin"));
}

// ---------------------------------------------------------------------------------------------
// acl

#[tokio::test]
async fn acl_allow_deny_and_groups_header() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    for name in ["allow", "deny", "hidden", "noauth", "anon", "anon-nogroups"] {
        echo_route(&gw, &up, name, &format!("/{name}")).await;
    }
    for (user, groups) in [("alice", &["admin", "dev"][..]), ("bob", &["guest"]), ("carol", &[])] {
        post(&gw, "/consumers", json!({"username": user})).await;
        post(&gw, &format!("/consumers/{user}/key-auth"), json!({"key": format!("{user}-key")}))
            .await;
        for g in groups {
            let acl = post(&gw, &format!("/consumers/{user}/acls"), json!({"group": g})).await;
            assert_eq!(acl["group"], *g);
        }
    }
    let anon = post(&gw, "/consumers", json!({"username": "anon"})).await;
    post(&gw, "/consumers/anon/acls", json!({"group": "public"})).await;
    post(&gw, "/consumers", json!({"username": "nobody"})).await;
    let listed = expect(&gw.admin().get("/consumers/alice/acls").await, 200, "acls");
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(2), "{listed}");

    for (route, conf) in [
        ("allow", json!({"allow": ["admin"]})),
        ("deny", json!({"deny": ["admin"]})),
        ("hidden", json!({"allow": ["admin"], "hide_groups_header": true})),
        ("anon", json!({"allow": ["public"]})),
        ("anon-nogroups", json!({"allow": ["public"]})),
    ] {
        let auth = match route {
            "anon" => json!({"anonymous": "anon"}),
            "anon-nogroups" => json!({"anonymous": "nobody"}),
            _ => json!({}),
        };
        post(&gw, &format!("/routes/{route}/plugins"), json!({"name": "key-auth", "config": auth}))
            .await;
        post(&gw, &format!("/routes/{route}/plugins"), json!({"name": "acl", "config": conf}))
            .await;
    }
    post(&gw, "/routes/noauth/plugins", json!({"name": "acl", "config": {"allow": ["admin"]}}))
        .await;
    let res = until_status(&gw, "/noauth", &[], 401).await;
    assert_error(&res, 401, "Unauthorized");
    assert_eq!(res.header("www-authenticate"), None, "acl's 401 carries no challenge");
    until_status(&gw, "/hidden", &[], 401).await;

    let key = |user: &str| format!("{user}-key");
    let get = |path: &'static str, user: &'static str| {
        let gw = &gw;
        let k = key(user);
        async move { send(gw, "GET", path, &[("apikey", k.as_str())]).await }
    };
    let forbidden = "You cannot consume this service";

    // allow list
    let seen = upstream(&get("/allow", "alice").await);
    let mut groups: Vec<&str> =
        up_header(&seen, "x-consumer-groups").expect("X-Consumer-Groups").split(", ").collect();
    groups.sort_unstable();
    assert_eq!(groups, ["admin", "dev"], "the consumer's groups, joined by \", \"");
    assert_error(&get("/allow", "bob").await, 403, forbidden);
    assert_error(&get("/allow", "carol").await, 403, forbidden);
    // deny list
    assert_error(&get("/deny", "alice").await, 403, forbidden);
    let seen = upstream(&get("/deny", "bob").await);
    assert_eq!(up_header(&seen, "x-consumer-groups"), Some("guest"));
    upstream(&get("/deny", "carol").await);
    // hide_groups_header
    let seen = upstream(&get("/hidden", "alice").await);
    assert_eq!(up_header(&seen, "x-consumer-groups"), None);
    assert_error(&get("/hidden", "bob").await, 403, forbidden);
    // acl after an anonymous consumer: the anonymous consumer's groups count
    let seen = upstream(&send(&gw, "GET", "/anon", &[]).await);
    assert_eq!(up_header(&seen, "x-consumer-id"), Some(s(&anon["id"])));
    assert_eq!(up_header(&seen, "x-consumer-groups"), Some("public"));
    assert_error(&get("/anon", "alice").await, 403, forbidden);
    // an anonymous consumer without any group, on an allow list: no credential, so 401
    assert_error(&send(&gw, "GET", "/anon-nogroups", &[]).await, 401, "Unauthorized");
    // acl without any authentication plugin
    assert_error(&get("/noauth", "alice").await, 401, "Unauthorized");

    // a group added later counts once the change is live
    post(&gw, "/consumers/bob/acls", json!({"group": "admin"})).await;
    let res = until_status(&gw, "/allow", &[("apikey", "bob-key")], 200).await;
    let seen = res.json();
    let mut groups: Vec<&str> =
        up_header(&seen, "x-consumer-groups").expect("X-Consumer-Groups").split(", ").collect();
    groups.sort_unstable();
    assert_eq!(groups, ["admin", "guest"]);
}

/// acl's entity checks: exactly one of `allow` and `deny` (Kong's `only_one_of` message).
#[tokio::test]
async fn acl_config_with_allow_and_deny_is_rejected() {
    let gw = Gateway::builder().start().await;
    let admin = gw.admin();
    let msg = "exactly one of these fields must be non-empty: 'config.allow', 'config.deny'";
    let want = json!({
        "code": 2,
        "name": "schema violation",
        "message": format!("schema violation ({msg})"),
        "fields": {"@entity": [msg]},
    });
    let body = json!({"name": "acl", "config": {"allow": ["a"], "deny": ["b"]}});
    assert_eq!(expect(&admin.post_json("/plugins", &body).await, 400, "POST"), want);
    let res = admin
        .post_form("/plugins", &[("name", "acl"), ("config.allow", "a"), ("config.deny", "b")])
        .await;
    assert_eq!(expect(&res, 400, "POST form"), want);
    assert_eq!(
        expect(&admin.post_json("/schemas/plugins/validate", &body).await, 400, "validate"),
        want
    );
    // nothing was stored
    let j = expect(&admin.get("/plugins").await, 200, "list");
    assert_eq!(j["data"], json!([]));
    // and PATCHing an allow-only instance into both is refused as well
    let p = post(&gw, "/plugins", json!({"name": "acl", "config": {"allow": ["a"]}})).await;
    let res = admin
        .patch_json(&format!("/plugins/{}", s(&p["id"])), &json!({"config": {"deny": ["b"]}}))
        .await;
    assert_eq!(expect(&res, 400, "PATCH"), want);
}

// ---------------------------------------------------------------------------------------------
// precedence: which instance of a plugin runs

/// request-termination's body for `kong.response.exit(status, {message = …})`: the table as
/// JSON, without a request id.
#[track_caller]
fn assert_terminated(res: &Resp, status: u16, message: &str) {
    assert_eq!(res.status, status, "{message}: {}", res.text());
    assert_eq!(res.json(), json!({"message": message}), "{message}");
}

/// route > service > global, one instance per plugin name.
#[tokio::test]
async fn route_and_service_instances_win_over_global() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    let admin = gw.admin();
    echo_route(&gw, &up, "plain", "/plain").await;
    echo_route(&gw, &up, "routed", "/routed").await;
    echo_route(&gw, &up, "svc", "/svc").await;
    let svc = expect(&admin.get("/services/svc").await, 200, "service");
    let both = create(
        &admin,
        "/routes",
        json!({"name": "svc-route", "paths": ["/svc-route"], "service": {"id": svc["id"]}}),
        "route",
    )
    .await;
    until_routed(&gw, "/svc-route").await;

    post(&gw, "/plugins", json!({"name": "request-termination"})).await;
    let conf = json!({"status_code": 410, "message": "Gone away"});
    post(&gw, "/routes/routed/plugins", json!({"name": "request-termination", "config": conf}))
        .await;
    let conf = json!({"status_code": 404});
    post(&gw, "/services/svc/plugins", json!({"name": "request-termination", "config": conf}))
        .await;
    let conf = json!({"status_code": 405});
    let path = format!("/routes/{}/plugins", s(&both["id"]));
    post(&gw, &path, json!({"name": "request-termination", "config": conf})).await;

    assert_terminated(&until_status(&gw, "/plain", &[], 503).await, 503, "Service unavailable");
    assert_terminated(&until_status(&gw, "/routed", &[], 410).await, 410, "Gone away");
    assert_terminated(&until_status(&gw, "/svc", &[], 404).await, 404, "Not found");
    assert_terminated(&until_status(&gw, "/svc-route", &[], 405).await, 405, "Method not allowed");
}

/// A consumer+route instance runs only for that consumer on that route, once key-auth
/// authenticated it; a consumer-only instance on every route.
#[tokio::test]
async fn consumer_scoped_instance_applies_after_authentication() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    let r = echo_route(&gw, &up, "r", "/r").await;
    echo_route(&gw, &up, "other", "/other").await;
    let mut ids = Vec::new();
    for user in ["luka", "mia", "noor"] {
        let c = post(&gw, "/consumers", json!({"username": user})).await;
        post(&gw, &format!("/consumers/{user}/key-auth"), json!({"key": format!("{user}-key")}))
            .await;
        ids.push(c["id"].clone());
    }
    post(&gw, "/plugins", json!({"name": "key-auth"})).await;
    let conf = json!({"status_code": 429, "message": "luka is paused on r"});
    post(
        &gw,
        "/plugins",
        json!({"name": "request-termination", "consumer": {"id": ids[0]}, "route": {"id": r["id"]}, "config": conf}),
    )
    .await;
    let conf = json!({"status_code": 403, "message": "noor is paused"});
    post(
        &gw,
        "/plugins",
        json!({"name": "request-termination", "consumer": {"id": ids[2]}, "config": conf}),
    )
    .await;

    let res = until_status(&gw, "/r", &[("apikey", "luka-key")], 429).await;
    assert_terminated(&res, 429, "luka is paused on r");
    let seen = upstream(&send(&gw, "GET", "/other", &[("apikey", "luka-key")]).await);
    assert_eq!(up_header(&seen, "x-consumer-username"), Some("luka"), "luka elsewhere");
    let seen = upstream(&send(&gw, "GET", "/r", &[("apikey", "mia-key")]).await);
    assert_eq!(up_header(&seen, "x-consumer-username"), Some("mia"), "another consumer");
    for path in ["/r", "/other"] {
        let res = send(&gw, "GET", path, &[("apikey", "noor-key")]).await;
        assert_terminated(&res, 403, "noor is paused");
    }
    // no consumer yet: key-auth answers before any consumer-scoped instance could run
    let res = send(&gw, "GET", "/r", &[]).await;
    assert_key_401(&res, "No API key found in request", "Key");
}

/// A disabled instance neither runs nor hides a less specific enabled one; enabling it makes
/// it win.
#[tokio::test]
async fn disabled_instance_does_not_run_or_shadow_global() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    echo_route(&gw, &up, "x", "/x").await;
    echo_route(&gw, &up, "y", "/y").await;
    let conf = json!({"status_code": 410, "message": "route level"});
    let route_level = post(
        &gw,
        "/routes/x/plugins",
        json!({"name": "request-termination", "enabled": false, "config": conf}),
    )
    .await;
    assert_eq!(route_level["enabled"], false);
    post(&gw, "/routes/y/plugins", json!({"name": "key-auth", "enabled": false})).await;
    let conf = json!({"status_code": 451, "message": "global"});
    post(&gw, "/plugins", json!({"name": "request-termination", "config": conf})).await;
    assert_terminated(&until_status(&gw, "/x", &[], 451).await, 451, "global");
    assert_terminated(&until_status(&gw, "/y", &[], 451).await, 451, "global");

    let path = format!("/plugins/{}", s(&route_level["id"]));
    expect(&gw.admin().patch_json(&path, &json!({"enabled": true})).await, 200, "enable");
    assert_terminated(&until_status(&gw, "/x", &[], 410).await, 410, "route level");
    assert_terminated(&send(&gw, "GET", "/y", &[]).await, 451, "global");
}
