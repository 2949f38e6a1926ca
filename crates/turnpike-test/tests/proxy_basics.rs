//! The proxy end to end: a route to a real upstream, what the upstream receives, what the
//! client gets back, and live configuration changes.

use std::time::{Duration, Instant};

use serde_json::json;
use turnpike_test::{databases, expect, route_to, until_routed, Gateway, Upstream};

#[tokio::test]
async fn proxies_to_an_upstream_with_kong_headers() {
    let up = Upstream::http().start().await;
    let gw = Gateway::builder().start().await;
    route_to(&gw, "echo", &format!("{}/base", up.url("http")), json!({"paths": ["/echo"]})).await;
    until_routed(&gw, "/echo").await;

    let res = gw.proxy().request("GET", "/echo/a%2Fb/c?x=1&y", &[("x-custom", "v")], "").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = res.json();
    assert_eq!(seen["uri"], "/base/a%2Fb/c?x=1&y", "strip_path + service path, escaping kept");
    assert_eq!(seen["headers"]["x-custom"], "v");
    assert_eq!(seen["headers"]["host"], format!("127.0.0.1:{}", up.port()));
    assert_eq!(seen["headers"]["x-forwarded-prefix"], "/echo");
    assert_eq!(seen["headers"]["x-forwarded-path"], "/echo/a%2Fb/c");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "http");
    assert_eq!(seen["headers"]["x-real-ip"], "127.0.0.1");
    let rid = res.header("x-kong-request-id").expect("request id");
    assert_eq!(rid.len(), 32);
    assert_eq!(seen["headers"]["x-kong-request-id"], rid.as_str());
    assert!(res.header("via").is_some_and(|v| v.starts_with("1.1 turnpike/")));
    assert!(res.header("x-kong-upstream-latency").is_some());
    assert!(res.header("x-kong-proxy-latency").is_some());
}

#[tokio::test]
async fn no_route_is_kongs_404() {
    let gw = Gateway::builder().start().await;
    let res = gw.proxy().get("/nothing").await;
    assert_eq!(res.status, 404);
    let rid = res.header("x-kong-request-id").expect("request id");
    assert_eq!(
        res.text(),
        format!("{{\n  \"message\":\"no Route matched with those values\",\n  \"request_id\":\"{rid}\"\n}}")
    );
    assert_eq!(res.header("content-type").as_deref(), Some("application/json; charset=utf-8"));
    assert!(res.header("server").is_some_and(|s| s.starts_with("turnpike/")));
    assert!(res.header("x-kong-response-latency").is_some());
}

#[tokio::test]
async fn changes_are_live_on_the_node() {
    for db in databases() {
        let up = Upstream::http().start().await;
        let gw = Gateway::builder().db(db.clone()).start().await;
        route_to(&gw, "live", &up.url("http"), json!({"name": "r", "paths": ["/live"]})).await;
        until_routed(&gw, "/live").await;
        assert_eq!(gw.proxy().get("/live").await.status, 200);
        // a path change is picked up, the old path stops matching
        let res = gw.admin().patch_json("/routes/r", &json!({"paths": ["/moved"]})).await;
        expect(&res, 200, "patch");
        until_routed(&gw, "/moved").await;
        assert_eq!(gw.proxy().get("/live").await.status, 404, "{}", db.name());
        // disabling the service takes its routes out
        expect(
            &gw.admin().patch_json("/services/live", &json!({"enabled": false})).await,
            200,
            "disable",
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while gw.proxy().get("/moved").await.status != 404 {
            assert!(Instant::now() < deadline, "disabled service still routed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
