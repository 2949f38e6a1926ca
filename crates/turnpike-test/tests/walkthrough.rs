//! Kong's getting-started walkthrough, Admin API steps (spec §9 items 1 and 2), against the
//! real binary on every database: the documented bodies, field for field.

use serde_json::{json, Value};
use turnpike_test::{databases, gateway, is_uuid};

fn assert_uuid(v: &Value) {
    assert!(is_uuid(v), "not a UUID: {v}");
}

fn assert_timestamp(v: &Value) {
    let n = v.as_i64().unwrap_or_else(|| panic!("expected integer seconds, got {v}"));
    assert!(n > 1_600_000_000 && n < 4_000_000_000, "not a seconds timestamp: {n}");
}

/// Compares an entity with the expected body, ignoring generated values that are checked
/// separately (ids and timestamps).
fn assert_body(got: &Value, want: &Value, generated: &[&str]) {
    let got_obj = got.as_object().expect("object body");
    let want_obj = want.as_object().expect("object");
    let mut got_keys: Vec<&String> = got_obj.keys().collect();
    let mut want_keys: Vec<&String> = want_obj.keys().collect();
    for g in generated {
        assert!(got_obj.contains_key(*g), "missing generated field {g} in {got}");
    }
    got_keys.retain(|k| !generated.contains(&k.as_str()));
    got_keys.sort();
    want_keys.sort();
    assert_eq!(got_keys, want_keys, "field set differs: {got}");
    for (k, v) in want_obj {
        assert_eq!(&got_obj[k], v, "field {k} differs in {got}");
    }
}

#[tokio::test]
async fn getting_started_admin_steps() {
    for db in databases() {
        let gw = gateway(&db).await;
        let admin = gw.admin();

        // 1. services
        let res = admin
            .post_form(
                "/services",
                &[("name", "example_service"), ("url", "https://httpbin.konghq.com")],
            )
            .await;
        assert_eq!(res.status, 201, "{}: {}", db.name(), res.text());
        assert!(res.header("content-type").unwrap().starts_with("application/json"));
        let svc = res.json();
        let want = json!({
            "name": "example_service", "protocol": "https", "host": "httpbin.konghq.com", "port": 443,
            "path": null, "retries": 5, "connect_timeout": 60000, "write_timeout": 60000,
            "read_timeout": 60000, "tags": null, "client_certificate": null, "tls_verify": null,
            "tls_verify_depth": null, "ca_certificates": null, "enabled": true
        });
        assert_body(&svc, &want, &["id", "created_at", "updated_at"]);
        assert_uuid(&svc["id"]);
        assert_timestamp(&svc["created_at"]);
        assert_timestamp(&svc["updated_at"]);

        let res = admin.get("/services/example_service").await;
        assert_eq!(res.status, 200);
        assert_eq!(res.json(), svc);

        let res = admin.patch_form("/services/example_service", &[("retries", "6")]).await;
        assert_eq!(res.status, 200, "{}", res.text());
        let patched = res.json();
        assert_eq!(patched["retries"], 6);
        let mut want6 = want.clone();
        want6["retries"] = json!(6);
        assert_body(&patched, &want6, &["id", "created_at", "updated_at"]);
        assert_eq!(patched["id"], svc["id"]);
        assert_eq!(patched["created_at"], svc["created_at"]);

        let res = admin.get("/services").await;
        assert_eq!(res.status, 200);
        assert_eq!(res.json(), json!({ "data": [patched], "next": null }));

        // 2. routes
        let res = admin
            .post_form(
                "/services/example_service/routes",
                &[("paths[]", "/mock"), ("name", "example_route")],
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
        let route = res.json();
        let want_route = json!({
            "name": "example_route", "protocols": ["http", "https"], "methods": null, "hosts": null,
            "paths": ["/mock"], "headers": null, "https_redirect_status_code": 426, "regex_priority": 0,
            "strip_path": true, "path_handling": "v0", "preserve_host": false, "request_buffering": true,
            "response_buffering": true, "snis": null, "sources": null, "destinations": null, "tags": null,
            "service": { "id": svc["id"] }
        });
        assert_body(&route, &want_route, &["id", "created_at", "updated_at"]);

        let res = admin
            .patch_form("/services/example_service/routes/example_route", &[("tags", "tutorial")])
            .await;
        assert_eq!(res.status, 200, "{}", res.text());
        let tagged = res.json();
        assert_eq!(tagged["tags"], json!(["tutorial"]));

        let res = admin.get("/routes").await;
        assert_eq!(res.status, 200);
        assert_eq!(res.json(), json!({ "next": null, "data": [tagged] }));

        let res = admin.get("/").await;
        let root = res.json();
        assert_eq!(root["configuration"]["database"], db.name());
        assert_eq!(root["configuration"]["router_flavor"], "traditional_compatible");
        assert_eq!(root["edition"], "community");
        assert!(root["version"].as_str().unwrap().starts_with("3."));
    }
}
