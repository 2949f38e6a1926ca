//! Kong's node-information Admin API specs, ported to the real `turnpike` binary on every
//! database: `spec/02-integration/04-admin_api/01-admin_api_spec.lua` (listeners) and
//! `02-kong_routes_spec.lua` (`/`, `/status`, `/endpoints`, `/schemas/...`,
//! `/plugins/enabled`, unknown paths, node id).
//!
//! Kong-internal expectations are adapted: `lua_version`, `pids` and the nginx memory
//! details of `/status` are only checked for their shape; the `Server` header is
//! `turnpike/<version>`; `version` is 3.9.1 and `configuration.database` names our backend.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use turnpike_test::{
    databases, expect_or_empty, gateway, is_uuid, listeners, stable_headers, Client, Gateway,
};

/// `%d+%.%d{scale} <unit>` as in Kong's memory stats assertions.
fn is_size(v: &Value, unit: &str, scale: usize) -> bool {
    let Some(s) = v.as_str() else { return false };
    let Some(num) = s.strip_suffix(&format!(" {unit}")) else { return false };
    let Some((int, frac)) = num.split_once('.') else { return false };
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.len() == scale
        && frac.bytes().all(|b| b.is_ascii_digit())
}

// ---- / -------------------------------------------------------------------------------------

#[tokio::test]
async fn root_endpoint() {
    for db in databases() {
        let gw = Gateway::builder().db(db.clone()).conf("pg_password", "hide_me").start().await;
        let c = gw.admin();
        let d = db.name();

        // returns headers with HEAD method
        let get = c.get("/").await;
        expect_or_empty(&get, 200, &format!("{d}: GET /"));
        assert!(!get.body.is_empty(), "{d}: GET / has a body");
        let head = c.request("HEAD", "/", &[], "").await;
        assert_eq!(head.status, 200, "{d}: HEAD /");
        assert!(head.body.is_empty(), "{d}: HEAD / has no body");
        assert_eq!(stable_headers(&head), stable_headers(&get), "{d}: HEAD / headers equal GET's");

        // returns allow and CORS headers with OPTIONS method
        let res = c.request("OPTIONS", "/", &[], "").await;
        assert_eq!(res.status, 204, "{d}: OPTIONS /");
        assert!(res.body.is_empty(), "{d}: OPTIONS / body");
        assert_eq!(res.header("allow").as_deref(), Some("GET, HEAD, OPTIONS"), "{d}: Allow");
        assert_eq!(
            res.header("access-control-allow-methods").as_deref(),
            Some("GET, HEAD, OPTIONS"),
            "{d}: Access-Control-Allow-Methods"
        );
        assert_eq!(
            res.header("access-control-allow-headers").as_deref(),
            Some("Content-Type"),
            "{d}: Access-Control-Allow-Headers"
        );
        assert_eq!(res.header("access-control-allow-origin").as_deref(), Some("*"), "{d}: ACAO");
        assert!(res.header("x-kong-admin-latency").is_some(), "{d}: X-Kong-Admin-Latency");

        // returns Kong's version number, edition info and tagline
        let root = get.json();
        assert_eq!(root["version"], "3.9.1", "{d}: version");
        assert_eq!(root["edition"], "community", "{d}: edition");
        assert_eq!(root["tagline"], "Welcome to kong", "{d}: tagline");
        // returns a UUID as the node_id
        assert!(is_uuid(&root["node_id"]), "{d}: node_id {}", root["node_id"]);
        assert!(root["hostname"].is_string(), "{d}: hostname");
        assert!(root["timers"]["running"].is_number(), "{d}: timers.running");
        assert!(root["timers"]["pending"].is_number(), "{d}: timers.pending");
        assert!(root["lua_version"].is_string(), "{d}: lua_version");
        // response has the correct Server header
        assert_eq!(
            get.header("server"),
            Some(format!("turnpike/{}", env!("CARGO_PKG_VERSION"))),
            "{d}: Server header"
        );
        assert!(get.header("via").is_none(), "{d}: no Via header");
        assert!(get.header("content-type").unwrap_or_default().starts_with("application/json"));

        // returns 405 on invalid method
        for method in ["POST", "PUT", "DELETE", "PATCH", "GEEEET"] {
            let res = c.request(method, "/", &[("content-type", "application/json")], "{}").await;
            let v = expect_or_empty(&res, 405, &format!("{d}: {method} /"));
            assert_eq!(v, json!({ "message": "Method not allowed" }), "{d}: {method} /");
        }

        // exposes the node's configuration
        let conf = &root["configuration"];
        assert!(conf.is_object(), "{d}: configuration");
        assert_eq!(conf["database"], d, "{d}: configuration.database");
        // enabled_in_cluster property is an array
        assert!(get.text().contains("\"enabled_in_cluster\":[]"), "{d}: enabled_in_cluster");
        // obfuscates sensitive settings from the configuration
        assert!(conf["pg_password"].is_string(), "{d}: pg_password shown as a string");
        assert_ne!(conf["pg_password"], "hide_me", "{d}: pg_password hidden");
        assert!(!get.text().contains("hide_me"), "{d}: the password is nowhere in GET /");
        // returns process ids
        assert!(root["pids"]["master"].is_u64(), "{d}: pids.master");
        let workers = root["pids"]["workers"].as_array().expect("pids.workers");
        assert!(!workers.is_empty() && workers.iter().all(Value::is_u64), "{d}: pids.workers");
        // does not return PRNG seeds
        assert!(root.get("prng_seeds").is_none(), "{d}: prng_seeds");

        // available plugins, loaded plugins and /plugins/enabled agree
        let available =
            root["plugins"]["available_on_server"].as_object().expect("available_on_server");
        assert!(!available.is_empty(), "{d}: available_on_server");
        for (name, p) in available {
            assert!(p["version"].is_string(), "{d}: {name} version");
            assert!(p["priority"].is_number(), "{d}: {name} priority");
        }
        let enabled = expect_or_empty(
            &c.get("/plugins/enabled").await,
            200,
            &format!("{d}: /plugins/enabled"),
        );
        let enabled_set: BTreeSet<String> = enabled["enabled_plugins"]
            .as_array()
            .expect("enabled_plugins array")
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let available_set: BTreeSet<String> = available.keys().cloned().collect();
        assert_eq!(enabled_set, available_set, "{d}: /plugins/enabled = available_on_server");
        assert!(enabled_set.contains("key-auth"), "{d}: bundled plugins enabled");
        if let Some(loaded) = conf["loaded_plugins"].as_object() {
            let loaded: BTreeSet<String> = loaded.keys().cloned().collect();
            assert_eq!(loaded, enabled_set, "{d}: configuration.loaded_plugins");
        }

        // enabled_in_cluster lists the distinct plugins configured
        for _ in 0..2 {
            let res =
                c.post_json("/plugins", &json!({ "name": "cors", "protocols": ["http"] })).await;
            if res.status == 409 {
                break;
            }
            expect_or_empty(&res, 201, &format!("{d}: POST /plugins"));
        }
        let root = expect_or_empty(&c.get("/").await, 200, d);
        assert_eq!(
            root["plugins"]["enabled_in_cluster"],
            json!(["cors"]),
            "{d}: enabled_in_cluster"
        );

        assert!(!gw.log().contains("hide_me"), "{d}: pg_password is not logged");
    }
}

#[tokio::test]
async fn node_id_and_plugins_from_configuration() {
    for db in databases() {
        let d = db.name();
        // node ID is set correctly
        let input = "592e1c2b-6678-45aa-80f9-78cfb29f5e31";
        let gw = Gateway::builder()
            .db(db.clone())
            .conf("node_id", input)
            .conf("plugins", "key-auth,cors")
            .start()
            .await;
        let c = gw.admin();
        let root = expect_or_empty(&c.get("/").await, 200, d);
        assert_eq!(root["node_id"], input, "{d}: configured node_id");
        let enabled = expect_or_empty(&c.get("/plugins/enabled").await, 200, d);
        let mut names: Vec<String> = enabled["enabled_plugins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["cors", "key-auth"], "{d}: plugins = key-auth,cors");
        let available: BTreeSet<&String> =
            root["plugins"]["available_on_server"].as_object().unwrap().keys().collect();
        assert_eq!(available.len(), 2, "{d}: available_on_server follows `plugins`");
        // a plugin that is not enabled cannot be configured
        let res = c.post_json("/plugins", &json!({ "name": "jwt" })).await;
        let v = expect_or_empty(&res, 400, &format!("{d}: disabled plugin"));
        assert_eq!(
            v["fields"]["name"],
            "plugin 'jwt' not enabled; add it to the 'plugins' configuration property",
            "{d}: disabled plugin"
        );
        let v = expect_or_empty(&c.get("/schemas/plugins/jwt").await, 404, d);
        assert_eq!(
            v,
            json!({ "message": "No plugin named 'jwt'" }),
            "{d}: schema of a disabled plugin"
        );
    }
}

#[tokio::test]
async fn admin_listeners() {
    // multiple
    let gw = Gateway::builder().conf("admin_listen", "127.0.0.1:0, 127.0.0.1:0").start().await;
    let l = listeners(gw.prefix());
    let admin = l["admin"].as_array().expect("admin listeners");
    assert_eq!(admin.len(), 2, "two admin listeners: {l}");
    assert_ne!(admin[0], admin[1], "distinct admin listeners");
    for a in admin {
        let c = Client::new(&format!("http://{}", a.as_str().unwrap()));
        expect_or_empty(&c.get("/").await, 200, &format!("GET / on {a}"));
    }
    drop(gw);
    // disabled
    let gw = Gateway::builder().conf("admin_listen", "off").start().await;
    let l = listeners(gw.prefix());
    assert_eq!(l["admin"], json!([]), "admin_listen = off: {l}");
    expect_or_empty(&gw.status().get("/status").await, 200, "status listener still up");
}

// ---- /endpoints ------------------------------------------------------------------------------

async fn endpoints(c: &Client) -> Vec<String> {
    let v = expect_or_empty(&c.get("/endpoints").await, 200, "/endpoints");
    v["data"].as_array().expect("data").iter().map(|e| e.as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn endpoints_lists_core_entity_endpoints_sorted() {
    let gw = Gateway::builder().start().await;
    let list = endpoints(&gw.admin()).await;
    for e in [
        "/",
        "/endpoints",
        "/plugins",
        "/plugins/{plugins}",
        "/plugins/enabled",
        "/plugins/schema/{name}",
        "/services/{services}/routes/{routes}",
        "/routes/{routes}/service",
        "/certificates/{certificates}/snis",
        "/certificates/{certificates}/snis/{snis}",
        "/snis/{snis}/certificate",
        "/ca_certificates/{ca_certificates}",
        "/upstreams/{upstreams}/targets",
        "/upstreams/{upstreams}/targets/all",
        "/upstreams/{upstreams}/targets/{targets}",
        "/targets",
        "/targets/{targets}",
        "/consumers/{consumers}/plugins",
        "/key-sets/{key_sets}/keys",
        "/vaults/{vaults}",
        "/tags/{tags}",
        "/status",
    ] {
        assert!(list.iter().any(|x| x == e), "/endpoints lists {e}: {list:?}");
    }
    // Kong's segment-wise order ('/' sorts before every other character), no duplicates
    let mut sorted = list.clone();
    sorted.sort_by_key(|a| a.replace('/', "\0"));
    sorted.dedup();
    assert_eq!(list, sorted, "/endpoints is sorted by segment and has no duplicates");
}

#[tokio::test]
async fn endpoints_lists_node_endpoints() {
    let gw = Gateway::builder().start().await;
    let list = endpoints(&gw.admin()).await;
    let missing: Vec<&str> = [
        "/schemas/{name}",
        "/schemas/plugins/{name}",
        "/schemas/plugins/validate",
        "/schemas/vaults/{name}",
        "/schemas/vaults/validate",
        "/timers",
        "/status/dns",
        "/config",
        "/cache",
        "/cache/{key}",
        "/debug/node/log-level",
        "/debug/node/log-level/{log_level}",
        "/clustering/data-planes",
        "/clustering/status",
    ]
    .into_iter()
    .filter(|e| !list.iter().any(|x| x == e))
    .collect();
    assert!(missing.is_empty(), "/endpoints misses {missing:?}");
}

#[tokio::test]
async fn endpoints_names_the_validate_route_like_kong() {
    let gw = Gateway::builder().start().await;
    let list = endpoints(&gw.admin()).await;
    assert!(
        list.iter().any(|x| x == "/schemas/{db_entity_name}/validate"),
        "/endpoints lists /schemas/{{db_entity_name}}/validate: {list:?}"
    );
}

#[tokio::test]
async fn endpoints_lists_plugin_entity_endpoints() {
    let gw = Gateway::builder().start().await;
    let list = endpoints(&gw.admin()).await;
    for e in [
        "/basic-auths/{basicauth_credentials}",
        "/consumers/{consumers}/basic-auth",
        "/key-auths",
        "/acls",
    ] {
        assert!(list.iter().any(|x| x == e), "/endpoints lists {e}");
    }
}

// ---- /status -------------------------------------------------------------------------------

async fn check_status(c: &Client, ctx: &str) {
    let v = expect_or_empty(&c.get("/status").await, 200, ctx);
    for k in [
        "connections_accepted",
        "connections_active",
        "connections_handled",
        "connections_reading",
        "connections_writing",
        "connections_waiting",
        "total_requests",
    ] {
        assert!(v["server"][k].is_number(), "{ctx}: server.{k} in {v}");
    }
    assert!(v.get("configuration_hash").is_none(), "{ctx}: no configuration_hash in DB mode");
    assert_eq!(v["database"], json!({ "reachable": true }), "{ctx}: database.reachable");
    assert!(v["memory"]["lua_shared_dicts"].is_object(), "{ctx}: lua_shared_dicts");
    let vms = v["memory"]["workers_lua_vms"].as_array().expect("workers_lua_vms");
    assert!(!vms.is_empty(), "{ctx}: workers_lua_vms");
    for w in vms {
        assert!(is_size(&w["http_allocated_gc"], "MiB", 2), "{ctx}: http_allocated_gc {w}");
        assert!(w["pid"].is_u64(), "{ctx}: pid {w}");
    }

    // unit and scale
    for (query, unit, scale) in [
        ("unit=k", "KiB", 2),
        ("unit=K", "KiB", 2),
        ("unit=g", "GiB", 2),
        ("unit=M", "MiB", 2),
        ("scale=3", "MiB", 3),
        ("scale=0&unit=k", "KiB", 0),
    ] {
        let v = expect_or_empty(
            &c.get(&format!("/status?{query}")).await,
            200,
            &format!("{ctx}: ?{query}"),
        );
        let gc = &v["memory"]["workers_lua_vms"][0]["http_allocated_gc"];
        if scale == 0 {
            let s = gc.as_str().unwrap_or_default();
            assert!(s.ends_with(" KiB") && !s.contains('.'), "{ctx}: ?{query} gives {gc}");
        } else {
            assert!(is_size(gc, unit, scale), "{ctx}: ?{query} gives {gc}");
        }
    }
    for query in ["unit=b", "unit=B", "unit="] {
        let v = expect_or_empty(
            &c.get(&format!("/status?{query}")).await,
            200,
            &format!("{ctx}: ?{query}"),
        );
        assert!(
            v["memory"]["workers_lua_vms"][0]["http_allocated_gc"].is_u64(),
            "{ctx}: ?{query} gives numbers"
        );
    }
    let v = expect_or_empty(&c.get("/status?unit=V").await, 400, &format!("{ctx}: unit=V"));
    assert_eq!(
        v,
        json!({ "message": "invalid unit 'V' (expected 'k/K', 'm/M', or 'g/G')" }),
        "{ctx}: unit=V"
    );
    let v = expect_or_empty(&c.get("/status?scale=-1").await, 400, &format!("{ctx}: scale=-1"));
    assert_eq!(v, json!({ "message": "scale must be equal or greater than 0" }), "{ctx}: scale=-1");
}

#[tokio::test]
async fn status_endpoint() {
    for db in databases() {
        let gw = gateway(&db).await;
        check_status(&gw.admin(), &format!("{}: admin /status", db.name())).await;
        check_status(&gw.status(), &format!("{}: status API /status", db.name())).await;
        let v = expect_or_empty(&gw.status().get("/status/ready").await, 200, db.name());
        assert_eq!(v, json!({ "message": "ready" }), "{}: /status/ready", db.name());
        // the Status API serves nothing else
        let v = expect_or_empty(&gw.status().get("/services").await, 404, db.name());
        assert_eq!(v, json!({ "message": "Not found" }), "{}: status API /services", db.name());
    }
}

#[tokio::test]
async fn status_scale_like_kong() {
    let gw = Gateway::builder().start().await;
    let c = gw.admin();
    // Kong: `scale = tonumber(query.scale)` -> nil -> default 2 (health.lua)
    let v = expect_or_empty(&c.get("/status?scale=abc").await, 200, "scale=abc");
    assert!(
        is_size(&v["memory"]["workers_lua_vms"][0]["http_allocated_gc"], "MiB", 2),
        "scale=abc"
    );
    // Kong: bytes_to_str returns before checking scale when the unit is bytes
    let v = expect_or_empty(&c.get("/status?unit=b&scale=-1").await, 200, "unit=b&scale=-1");
    assert!(v["memory"]["workers_lua_vms"][0]["http_allocated_gc"].is_u64(), "unit=b&scale=-1");
}

// ---- /schemas --------------------------------------------------------------------------------

const ENTITIES: &[&str] = &[
    "services",
    "routes",
    "consumers",
    "plugins",
    "upstreams",
    "targets",
    "certificates",
    "snis",
    "ca_certificates",
    "tags",
    "vaults",
    "key_sets",
    "keys",
    "workspaces",
];

#[tokio::test]
async fn schemas_endpoints() {
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        let d = db.name();

        // returns the schema of all DB entities: exactly `fields` and `entity_checks`
        for name in ENTITIES {
            let v = expect_or_empty(
                &c.get(&format!("/schemas/{name}")).await,
                200,
                &format!("{d}: /schemas/{name}"),
            );
            assert!(v["fields"].is_array(), "{d}: /schemas/{name} fields");
            assert!(v["entity_checks"].is_array(), "{d}: /schemas/{name} entity_checks");
            let keys: BTreeSet<&String> = v.as_object().unwrap().keys().collect();
            assert_eq!(
                keys.len(),
                2,
                "{d}: /schemas/{name} has only fields and entity_checks: {keys:?}"
            );
            for f in v["fields"].as_array().unwrap() {
                let o = f.as_object().unwrap_or_else(|| panic!("{d}: /schemas/{name} field {f}"));
                assert_eq!(o.len(), 1, "{d}: /schemas/{name}: one name per field entry: {f}");
            }
        }
        // field details Kong documents
        let v = expect_or_empty(&c.get("/schemas/services").await, 200, d);
        let field = |v: &Value, name: &str| -> Value {
            v["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|f| f.get(name).cloned())
                .unwrap_or(Value::Null)
        };
        assert_eq!(
            field(&v, "id"),
            json!({ "type": "string", "uuid": true, "auto": true }),
            "{d}: services.id"
        );
        assert_eq!(field(&v, "retries")["default"], 5, "{d}: services.retries default");
        assert_eq!(field(&v, "port")["between"], json!([0, 65535]), "{d}: services.port between");
        assert_eq!(field(&v, "protocol")["default"], "http", "{d}: services.protocol default");
        // does not return schema of a foreign key
        let v = expect_or_empty(&c.get("/schemas/routes").await, 200, d);
        let service = field(&v, "service");
        assert_eq!(service["type"], "foreign", "{d}: routes.service type");
        assert_eq!(service["reference"], "services", "{d}: routes.service reference");
        assert!(service.get("schema").is_none(), "{d}: routes.service has no schema");
        // returns 404 on a missing entity
        let v = expect_or_empty(&c.get("/schemas/not-present").await, 404, d);
        assert_eq!(v, json!({ "message": "No entity named 'not-present'" }), "{d}: missing entity");

        // vaults
        let v =
            expect_or_empty(&c.get("/schemas/vaults/env").await, 200, &format!("{d}: vault env"));
        assert!(v["fields"].is_array(), "{d}: vault env fields");
        let v = expect_or_empty(&c.get("/schemas/vaults/not-present").await, 404, d);
        assert_eq!(v, json!({ "message": "No vault named 'not-present'" }), "{d}: missing vault");
        // does not return 405 on /schemas/vaults/validate
        let v =
            expect_or_empty(&c.request("POST", "/schemas/vaults/validate", &[], "").await, 400, d);
        assert_eq!(
            v["message"], "schema violation (name: required field missing)",
            "{d}: vaults/validate"
        );

        // plugins: the schema of every enabled plugin
        let enabled = expect_or_empty(&c.get("/plugins/enabled").await, 200, d);
        for p in enabled["enabled_plugins"].as_array().unwrap() {
            let p = p.as_str().unwrap();
            let v = expect_or_empty(
                &c.get(&format!("/schemas/plugins/{p}")).await,
                200,
                &format!("{d}: plugin {p}"),
            );
            assert!(v["fields"].is_array(), "{d}: plugin {p} fields");
            assert!(v["entity_checks"].is_array(), "{d}: plugin {p} entity_checks");
        }
        let v = expect_or_empty(&c.get("/schemas/plugins/not-present").await, 404, d);
        assert_eq!(v, json!({ "message": "No plugin named 'not-present'" }), "{d}: missing plugin");
        let v = expect_or_empty(&c.get("/plugins/schema/not-present").await, 404, d);
        assert_eq!(
            v,
            json!({ "message": "No plugin named 'not-present'" }),
            "{d}: deprecated route"
        );

        // /schemas/:db_entity_name/validate
        let validate = |path: &str, body: Value| {
            let c = c.clone();
            let path = path.to_owned();
            async move { c.post_json(&path, &body).await }
        };
        let ok = json!({ "message": "schema validation successful" });
        let res = validate("/schemas/services/validate", json!({ "host": "example.com" })).await;
        assert_eq!(expect_or_empty(&res, 200, d), ok, "{d}: valid service");
        let cert = turnpike_test::tls_fixture("rsa.crt");
        let key = turnpike_test::tls_fixture("rsa.key");
        let res = validate(
            "/schemas/certificates/validate",
            json!({ "cert": cert, "key": key, "snis": ["a", "b", "c"] }),
        )
        .await;
        assert_eq!(expect_or_empty(&res, 200, d), ok, "{d}: certificate with snis");
        let res = validate(
            "/schemas/certificates/validate",
            json!({ "cert": cert, "key": key, "snis": ["120.0.9.32:90"] }),
        )
        .await;
        assert_eq!(
            expect_or_empty(&res, 400, d),
            json!({
                "fields": { "snis": ["must not be an IP"] },
                "name": "schema violation",
                "message": "schema violation (snis.1: must not be an IP)",
                "code": 2,
            }),
            "{d}: certificate with an IP sni"
        );
        let res =
            validate("/schemas/services/validate", json!({ "host": "example.com", "port": 70000 }))
                .await;
        let v = expect_or_empty(&res, 400, d);
        assert_eq!(
            v["fields"],
            json!({ "port": "value should be between 0 and 65535" }),
            "{d}: invalid service"
        );
        let res = validate("/schemas/not-present/validate", json!({})).await;
        assert_eq!(
            expect_or_empty(&res, 404, d),
            json!({ "message": "No entity named 'not-present'" }),
            "{d}: validate missing"
        );
        let res = validate("/schemas/plugins/validate", json!({ "name": "key-auth", "config": { "key_names": ["foo", "bar"], "hide_credentials": true } })).await;
        assert_eq!(expect_or_empty(&res, 200, d), ok, "{d}: valid plugin");
        let res = validate(
            "/schemas/plugins/validate",
            json!({ "name": "file-log", "config": { "path": "tmp/test", "custom_fields_by_lua": { "new_field": "return 123", "request.headers.myheader": "return nil" } } }),
        )
        .await;
        assert_eq!(expect_or_empty(&res, 200, d), ok, "{d}: plugin with dots in map keys");
        // validation never writes
        let v = expect_or_empty(&c.get("/services").await, 200, d);
        assert_eq!(v["data"], json!([]), "{d}: validate stores nothing");
        let v = expect_or_empty(&c.get("/certificates").await, 200, d);
        assert_eq!(v["data"], json!([]), "{d}: validate stores nothing");
    }
}

#[tokio::test]
async fn plugin_config_schemas() {
    let gw = Gateway::builder().start().await;
    let c = gw.admin();
    // returns 400 on an invalid plugin subschema
    let res = c
        .post_json(
            "/schemas/plugins/validate",
            &json!({ "name": "key-auth", "config": { "keys": "foo" } }),
        )
        .await;
    let v = expect_or_empty(&res, 400, "invalid key-auth config");
    assert_eq!(v["name"], "schema violation", "invalid key-auth config");
    // the plugin schema describes config as a record
    let v = expect_or_empty(&c.get("/schemas/plugins/key-auth").await, 200, "key-auth schema");
    let config =
        v["fields"].as_array().unwrap().iter().find_map(|f| f.get("config").cloned()).unwrap();
    assert_eq!(config["type"], "record", "key-auth config type");
    let v = expect_or_empty(
        &c.get("/plugins/schema/key-auth").await,
        200,
        "deprecated key-auth schema",
    );
    assert!(
        v["fields"].as_array().is_some_and(|f| !f.is_empty()),
        "deprecated key-auth schema fields: {v}"
    );
    // a created plugin gets its defaults
    let res = c.post_json("/plugins", &json!({ "name": "key-auth" })).await;
    let v = expect_or_empty(&res, 201, "key-auth");
    assert_eq!(v["config"]["key_names"], json!(["apikey"]), "key-auth defaults");
    assert_eq!(v["config"]["hide_credentials"], false, "key-auth defaults");
}

// ---- unknown paths -----------------------------------------------------------------------------

#[tokio::test]
async fn non_existing_paths() {
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        let d = db.name();
        // returns 404 with HEAD
        let res = c.request("HEAD", "/non-existing", &[], "").await;
        assert_eq!(res.status, 404, "{d}: HEAD /non-existing");
        assert!(res.body.is_empty(), "{d}: HEAD /non-existing body");
        for method in ["OPTIONS", "GET", "POST", "PUT", "PATCH", "DELETE"] {
            let res = c.request(method, "/non-existing", &[], "").await;
            let v = expect_or_empty(&res, 404, &format!("{d}: {method} /non-existing"));
            assert_eq!(v, json!({ "message": "Not found" }), "{d}: {method} /non-existing");
        }
    }
}

#[tokio::test]
async fn timers_and_log_level() {
    let gw = Gateway::builder().start().await;
    let c = gw.admin();
    let v = expect_or_empty(&c.get("/timers").await, 200, "/timers");
    assert!(
        v["worker"]["id"].is_number() && v["worker"]["count"].is_number(),
        "/timers worker: {v}"
    );
    assert!(v["stats"].is_object(), "/timers stats");
    let v = expect_or_empty(&c.get("/debug/node/log-level").await, 200, "log level");
    assert_eq!(v, json!({ "message": "log level: debug" }), "log level (TURNPIKE_LOG_LEVEL=debug)");
    let v = expect_or_empty(
        &c.request("PUT", "/debug/node/log-level/warn", &[], "").await,
        200,
        "set warn",
    );
    assert_eq!(v, json!({ "message": "log level changed" }), "set warn");
    let v = expect_or_empty(&c.get("/debug/node/log-level").await, 200, "log level");
    assert_eq!(v, json!({ "message": "log level: warn" }), "log level after change");
    let root = expect_or_empty(&c.get("/").await, 200, "GET /");
    assert_eq!(root["configuration"]["log_level"], "warn", "configuration.log_level follows");
    let v = expect_or_empty(
        &c.request("PUT", "/debug/node/log-level/loud", &[], "").await,
        400,
        "unknown level",
    );
    assert_eq!(v, json!({ "message": "unknown log level: loud" }), "unknown level");
}

#[tokio::test]
async fn log_level_already_set() {
    let gw = Gateway::builder().start().await;
    let c = gw.admin();
    let v = expect_or_empty(
        &c.request("PUT", "/debug/node/log-level/debug", &[], "").await,
        200,
        "same level",
    );
    assert_eq!(v, json!({ "message": "log level is already debug" }), "same level");
}
