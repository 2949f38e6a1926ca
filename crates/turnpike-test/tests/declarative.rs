//! Declarative configuration through the real binary: DB-less mode (`database = off` with a
//! file or a string, `POST /config`, `GET /config`, the configuration hash, refused writes),
//! and the `turnpike config` commands (init, parse, db_import, db_export).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use turnpike_test::{expect, Client, Gateway, Upstream};

/// A DB-less gateway started with `config` (YAML or JSON) as `declarative_config_string`.
async fn dbless(config: Option<&str>) -> Gateway {
    let mut b = Gateway::builder().env("TURNPIKE_DATABASE", "off");
    if let Some(c) = config {
        b = b.env("TURNPIKE_DECLARATIVE_CONFIG_STRING", c);
    }
    b.start().await
}

/// Polls a proxy path until it answers `status` (configuration changes are live within
/// milliseconds; the deadline only bounds a failure).
async fn until_status(proxy: &Client, path: &str, headers: &[(&str, &str)], status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = proxy.request("GET", path, headers, Vec::new()).await;
        if res.status == status {
            return serde_json::from_slice(&res.body).unwrap_or(Value::Null);
        }
        assert!(Instant::now() < deadline, "{path}: still {} ({})", res.status, res.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn md5_hex(s: &str) -> String {
    // a tiny independent MD5 would be overkill: Python's hashlib is on every test machine
    let out = std::process::Command::new("python3")
        .args(["-c", "import hashlib,sys; print(hashlib.md5(sys.stdin.buffer.read()).hexdigest())"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .expect("python3 for md5");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn basic_config(upstream: &str) -> String {
    format!(
        r#"_format_version: "3.0"
_comment: a small but complete configuration
services:
- name: orders
  url: {upstream}/v1
  routes:
  - name: orders-route
    paths: [/orders]
    plugins:
    - name: key-auth
  plugins:
  - name: request-size-limiting
    config:
      allowed_payload_size: 1
consumers:
- username: alice
  custom_id: A-1
  keyauth_credentials:
  - key: alice-key
  acls:
  - group: staff
- username: bob
  basicauth_credentials:
  - username: bob
    password: s3cret
routes:
- name: public
  service: orders
  paths: [/public]
"#
    )
}

#[tokio::test]
async fn dbless_serves_the_declarative_string() {
    let up = Upstream::http().start().await;
    let config = basic_config(&up.url("http"));
    let gw = dbless(Some(&config)).await;
    let proxy = gw.proxy();
    let admin = gw.admin();

    // routed at once, with the nested plugin on the nested route
    let res = proxy.request("GET", "/orders/x", &[], Vec::new()).await;
    assert_eq!(res.status, 401, "{}", res.text());
    let echo = until_status(&proxy, "/orders/x", &[("apikey", "alice-key")], 200).await;
    assert_eq!(echo["path"], "/v1/x");
    assert_eq!(echo["headers"]["x-consumer-username"], "alice");
    assert_eq!(echo["headers"]["x-consumer-custom-id"], "A-1");
    let echo = until_status(&proxy, "/public", &[], 200).await;
    assert_eq!(echo["path"], "/v1");

    // the Admin API reads the configuration
    let svc = expect(&admin.get("/services/orders").await, 200, "service");
    assert_eq!(svc["host"], "127.0.0.1");
    assert_eq!(svc["path"], "/v1");
    let routes = expect(&admin.get("/services/orders/routes").await, 200, "routes");
    assert_eq!(routes["data"].as_array().map(Vec::len), Some(2));
    let keys = expect(&admin.get("/consumers/alice/key-auth").await, 200, "keys");
    assert_eq!(keys["data"][0]["key"], "alice-key");
    let basic = expect(&admin.get("/consumers/bob/basic-auth").await, 200, "basic");
    let stored = basic["data"][0]["password"].as_str().unwrap_or_default().to_owned();
    assert_eq!(stored.len(), 40, "the password is stored hashed: {stored}");
    assert_ne!(stored, "s3cret");

    // the hash is the MD5 of the text; writes are refused as Kong refuses them
    let status = expect(&gw.status().get("/status").await, 200, "status");
    assert_eq!(status["configuration_hash"], md5_hex(&config));
    let root = expect(&admin.get("/").await, 200, "root");
    assert_eq!(root["configuration"]["database"], "off");
    let res = admin.post_json("/services", &json!({"name": "x", "url": "http://x.test"})).await;
    assert_eq!(
        expect(&res, 405, "insert"),
        json!({"code": 12, "name": "operation unsupported",
               "message": "cannot create 'services' entities when not using a database"})
    );
    let res = admin.patch_json("/services/orders", &json!({"retries": 1})).await;
    assert_eq!(
        expect(&res, 405, "update by name")["message"],
        "cannot update 'services' entities by 'name' when not using a database"
    );
    let res = admin.delete(&format!("/services/{}", svc["id"].as_str().unwrap_or_default())).await;
    assert_eq!(
        expect(&res, 405, "delete")["message"],
        "cannot remove 'services' entities when not using a database"
    );
}

#[tokio::test]
async fn ids_are_the_same_on_every_node() {
    let up = Upstream::http().start().await;
    let config = basic_config(&up.url("http"));
    let a = dbless(Some(&config)).await;
    let b = dbless(Some(&config)).await;
    for path in ["/services/orders", "/routes/orders-route", "/consumers/alice", "/routes/public"] {
        let ia = expect(&a.admin().get(path).await, 200, path)["id"].clone();
        let ib = expect(&b.admin().get(path).await, 200, path)["id"].clone();
        assert_eq!(ia, ib, "{path}");
    }
    // Kong's recipe: uuid5(uuid5(fd02801f-0957-4a15-a55a-c8d9606f30b5, "services"), "orders"),
    // computed independently with Python's uuid module
    let id = expect(&a.admin().get("/services/orders").await, 200, "svc")["id"].clone();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import uuid; ns=uuid.uuid5(uuid.UUID('fd02801f-0957-4a15-a55a-c8d9606f30b5'),'services'); print(uuid.uuid5(ns,'orders'))",
        ])
        .output()
        .expect("python3");
    assert_eq!(id, String::from_utf8_lossy(&out.stdout).trim());
}

#[tokio::test]
async fn post_config_replaces_everything_atomically() {
    let up = Upstream::http().start().await;
    let gw = dbless(None).await;
    let admin = gw.admin();
    let proxy = gw.proxy();
    let status = expect(&gw.status().get("/status").await, 200, "status");
    assert_eq!(status["configuration_hash"], "00000000000000000000000000000000");
    assert_eq!(proxy.get("/one").await.status, 404);

    // YAML body
    let one = format!(
        "_format_version: '3.0'\nservices:\n- name: one\n  url: {}\n  routes:\n  - paths: [/one]\n",
        up.url("http")
    );
    let res = admin.request("POST", "/config", &[("content-type", "text/yaml")], one.clone()).await;
    let body = expect(&res, 201, "yaml");
    assert!(body["services"].as_object().is_some_and(|m| m.len() == 1), "{body}");
    until_status(&proxy, "/one", &[], 200).await;

    // the same text again with check_hash: 304, nothing done
    let res = admin
        .request("POST", "/config?check_hash=1", &[("content-type", "text/yaml")], one.clone())
        .await;
    assert_eq!(res.status, 304, "{}", res.text());

    // a JSON document replaces it: /one is gone, /two is there
    let two = json!({
        "_format_version": "3.0",
        "services": [{"name": "two", "url": up.url("http"), "routes": [{"paths": ["/two"]}]}]
    });
    let res = admin.post_json("/config", &two).await;
    expect(&res, 201, "json document");
    until_status(&proxy, "/two", &[], 200).await;
    until_status(&proxy, "/one", &[], 404).await;
    expect(&admin.get("/services/one").await, 404, "old service gone");

    // form and multipart `config=`
    let three = format!(
        "{{\"_format_version\":\"3.0\",\"services\":[{{\"name\":\"three\",\"url\":\"{}\",\"routes\":[{{\"paths\":[\"/three\"]}}]}}]}}",
        up.url("http")
    );
    expect(&admin.post_form("/config", &[("config", three.as_str())]).await, 201, "form");
    until_status(&proxy, "/three", &[], 200).await;
    let four = one.replace("one", "four");
    let res = admin.send_multipart("POST", "/config", &[("config", "", four.as_str())]).await;
    expect(&res, 201, "multipart");
    until_status(&proxy, "/four", &[], 200).await;

    // an invalid configuration changes nothing
    let bad = "_format_version: '3.0'\nservices:\n- name: bad\n  port: 99999\n";
    let res = admin.request("POST", "/config", &[("content-type", "text/yaml")], bad).await;
    let err = expect(&res, 400, "invalid");
    assert_eq!(err["code"], 14);
    assert_eq!(err["name"], "invalid declarative configuration");
    assert!(err["message"]
        .as_str()
        .unwrap_or_default()
        .starts_with("declarative config is invalid: "));
    assert!(err["fields"]["services"][0]["port"].is_string(), "{err}");
    until_status(&proxy, "/four", &[], 200).await;
    expect(&admin.get("/services/four").await, 200, "still there");

    // no body at all
    let res = admin.request("POST", "/config", &[], Vec::new()).await;
    assert_eq!(expect(&res, 400, "empty")["message"], "expected a declarative configuration");

    // GET /config gives YAML that loads back to the same configuration
    let exported = expect(&admin.get("/config").await, 200, "export")["config"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        exported.contains("_format_version: '3.0'")
            || exported.contains("_format_version: \"3.0\""),
        "{exported}"
    );
    let res =
        admin.request("POST", "/config", &[("content-type", "text/yaml")], exported.clone()).await;
    expect(&res, 201, "re-import");
    let again = expect(&admin.get("/config").await, 200, "export again")["config"].clone();
    assert_eq!(again.as_str(), Some(exported.as_str()), "export is stable");
    until_status(&proxy, "/four", &[], 200).await;
}

#[tokio::test]
async fn errors_name_the_entity_and_field() {
    let gw = dbless(None).await;
    let admin = gw.admin();
    let post = |body: &'static str| {
        let admin = admin.clone();
        async move { admin.request("POST", "/config", &[("content-type", "text/yaml")], body).await }
    };

    let res = post("services: []\n").await;
    assert_eq!(
        expect(&res, 400, "no version")["fields"],
        json!({"_format_version": "required field missing"})
    );
    let res = post("_format_version: '9.9'\n").await;
    assert_eq!(
        expect(&res, 400, "bad version")["fields"],
        json!({"_format_version": "expected one of: 1.1, 2.1, 3.0"})
    );
    let res = post("_format_version: '3.0'\nbogus: []\n").await;
    assert_eq!(expect(&res, 400, "unknown")["fields"], json!({"bogus": "unknown field"}));
    let res = post(
        "_format_version: '3.0'\nservices:\n- name: a\n  host: a.test\n- name: a\n  host: b.test\n",
    )
    .await;
    let err = expect(&res, 400, "duplicate");
    assert_eq!(
        err["fields"]["services"][1],
        "uniqueness violation: 'services' entity with name set to 'a' already declared"
    );
    let res =
        post("_format_version: '3.0'\nroutes:\n- name: r\n  paths: [/r]\n  service: nope\n").await;
    let err = expect(&res, 400, "dangling");
    assert_eq!(
        err["fields"]["routes"]["r"],
        json!(["invalid reference 'service: nope' (no such entry in 'services')"])
    );
    let res = post("_format_version: '3.0'\nservices:\n- name: s\n  host: s.test\n  routes:\n  - paths: /not-a-list\n").await;
    let err = expect(&res, 400, "wrong type");
    assert_eq!(err["fields"]["services"][0]["routes"][0]["paths"], "expected an array");
    let res = post("_format_version: '3.0'\nconsumers:\n- tags: [x]\n").await;
    let err = expect(&res, 400, "consumer without a name");
    assert!(err["fields"]["consumers"][0]["@entity"].is_array(), "{err}");
    let res = post("_format_version: '3.0'\nservices:\n- name: s\n  host: s.test\n  routes:\n  - paths: [/x]\n    service: s\n").await;
    let err = expect(&res, 400, "nested with its own parent");
    assert_eq!(err["fields"]["services"][0]["routes"][0]["service"], "value must be null");
    let res = post("_format_version: '3.0'\nplugins:\n- name: no-such-plugin\n").await;
    let err = expect(&res, 400, "unknown plugin");
    assert!(err["fields"]["plugins"][0]["name"].is_string(), "{err}");
    let res =
        post("_format_version: '3.0'\nplugins:\n- name: key-auth\n  config:\n    key_names: 5\n")
            .await;
    let err = expect(&res, 400, "bad plugin config");
    assert!(err["fields"]["plugins"][0]["config"]["key_names"].is_string(), "{err}");

    // flattened errors name the entity
    let res = admin
        .request(
            "POST",
            "/config?flatten_errors=1",
            &[("content-type", "text/yaml")],
            "_format_version: '3.0'\nservices:\n- name: s\n  port: 99999\n  tags: [t1]\n",
        )
        .await;
    let err = expect(&res, 400, "flattened");
    let flat = &err["flattened_errors"][0];
    assert_eq!(flat["entity_type"], "service");
    assert_eq!(flat["entity_name"], "s");
    assert_eq!(flat["entity_tags"], json!(["t1"]));
    assert!(
        flat["errors"].as_array().is_some_and(|e| e.iter().any(|x| x["field"] == "port")),
        "{err}"
    );

    // nothing of it was applied
    let status = expect(&gw.status().get("/status").await, 200, "status");
    assert_eq!(status["configuration_hash"], "00000000000000000000000000000000");
}

#[tokio::test]
async fn hostile_input_is_bounded() {
    let gw = dbless(None).await;
    let admin = gw.admin();
    let bomb =
        "_format_version: '3.0'\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
                c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
                e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
                g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n\
                i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\nj: [*i,*i,*i,*i,*i,*i,*i,*i,*i]\n";
    let res = admin.request("POST", "/config", &[("content-type", "text/yaml")], bomb).await;
    let err = expect(&res, 400, "alias bomb");
    assert_eq!(err["code"], 14, "{err}");

    // 50 MB: refused before it is parsed
    let big = format!("_format_version: '3.0'\n_comment: '{}'\n", "x".repeat(50 << 20));
    let res = admin.request("POST", "/config", &[("content-type", "text/yaml")], big).await;
    assert_eq!(res.status, 413, "{}", res.text());
    // and the node still answers
    expect(&gw.status().get("/status").await, 200, "alive");
}

#[tokio::test]
async fn config_commands() {
    let up = Upstream::http().start().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("kong.yml");
    let file_s = file.to_str().expect("utf-8 path");

    // init writes a file that parses
    let gw = Gateway::builder().start().await;
    let out = gw.command(&["config", "init", file_s]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = gw.command(&["config", "parse", file_s]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("parse successful"));

    // a bad file: exit 1 and the error
    std::fs::write(&file, "_format_version: '3.0'\nservices:\n- name: x\n").expect("write");
    let out = gw.command(&["config", "parse", file_s]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("declarative config is invalid"), "{err}");

    // db_import into the running gateway's database, which then routes it
    std::fs::write(&file, basic_config(&up.url("http"))).expect("write");
    let out = gw.command(&["config", "db_import", file_s]);
    assert!(
        out.status.success(),
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let proxy = gw.proxy();
    until_status(&proxy, "/orders/a", &[("apikey", "alice-key")], 200).await;
    // importing the same again fails on uniqueness and changes nothing
    let out = gw.command(&["config", "db_import", file_s]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));

    // export, import elsewhere, export again: the same bytes
    let first = dir.path().join("first.yml");
    let out = gw.command(&["config", "db_export", first.to_str().expect("path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let other = Gateway::builder().start().await;
    let out = other.command(&["config", "db_import", first.to_str().expect("path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let second = dir.path().join("second.yml");
    let out = other.command(&["config", "db_export", second.to_str().expect("path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let a = std::fs::read_to_string(&first).expect("first");
    let b = std::fs::read_to_string(&second).expect("second");
    assert_eq!(a, b, "export is byte-stable across import");
    assert!(a.contains("_transform: false"));
    // the hashed password survived unchanged (no second hashing with _transform: false)
    let p1 = expect(&gw.admin().get("/consumers/bob/basic-auth").await, 200, "a")["data"][0]
        ["password"]
        .clone();
    let p2 = expect(&other.admin().get("/consumers/bob/basic-auth").await, 200, "b")["data"][0]
        ["password"]
        .clone();
    assert_eq!(p1, p2);
    until_status(&other.proxy(), "/orders/a", &[("apikey", "alice-key")], 200).await;
}

#[tokio::test]
async fn legacy_formats_migrate_regex_paths() {
    let up = Upstream::http().start().await;
    let config = format!(
        "_format_version: '1.1'\nservices:\n- name: legacy\n  url: {}\n  routes:\n  - name: users\n    paths:\n    - /users/\\d+$\n  - name: plain\n    paths: [/plain]\n",
        up.url("http")
    );
    let gw = dbless(Some(&config)).await;
    let route = expect(&gw.admin().get("/routes/users").await, 200, "route");
    assert_eq!(route["paths"], json!(["~/users/\\d+$"]));
    let plain = expect(&gw.admin().get("/routes/plain").await, 200, "plain");
    assert_eq!(plain["paths"], json!(["/plain"]));
    until_status(&gw.proxy(), "/users/42", &[], 200).await;
    assert_eq!(gw.proxy().get("/users/x").await.status, 404);
}
