//! The realistic declarative files in `fixtures/declarative/` (hand-written in the styles of
//! real projects; facts in docs/research/kong-declarative.md) through the real binary: every
//! valid file loads in DB-less mode with the ids Kong gives its entities and routes traffic,
//! and loads through `config db_import` too; every invalid file gets Kong's answer.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use turnpike_test::{expect, Client, Gateway, Upstream};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/declarative")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const VALID: &[&str] = &[
    "nested-3.0.yml",
    "toplevel-refs-3.0.yml",
    "legacy-1.1.yml",
    "legacy-2.1.yml",
    "deck-style.yaml",
    "minimal.json",
    "transform-false-3.0.yml",
];

async fn post_config(admin: &Client, name: &str, text: &str) -> turnpike_test::Resp {
    let ct = if name.ends_with(".json") { "application/json" } else { "text/yaml" };
    if ct == "application/json" {
        let doc: Value = serde_json::from_str(text).expect("json fixture");
        return admin.post_json("/config", &doc).await;
    }
    admin.request("POST", "/config", &[("content-type", ct)], text.to_owned()).await
}

#[tokio::test]
async fn valid_files_load_with_kongs_ids_and_route() {
    let up = Upstream::http().start().await;
    let port = up.port().to_string();
    let gw = Gateway::builder().env("TURNPIKE_DATABASE", "off").start().await;
    let admin = gw.admin();
    for name in VALID {
        let text = read(name).replace("18999", &port);
        let res = post_config(&admin, name, &text).await;
        let body = expect(&res, 201, name);
        assert!(body.as_object().is_some_and(|o| !o.is_empty()), "{name}: {body}");

        // the ids Kong gives (where they do not depend on randomness or the port)
        let ids_file = fixtures().join(name.replace(".yml", ".ids.json"));
        if name.ends_with(".yml") && ids_file.exists() {
            let ids: Value =
                serde_json::from_str(&std::fs::read_to_string(&ids_file).expect("ids"))
                    .expect("json");
            for entry in ids["ids"].as_array().into_iter().flatten() {
                let id = entry["id"].as_str().unwrap_or_default();
                let entity = entry["entity"].as_str().unwrap_or_default();
                if id == "random" || entity == "targets" {
                    continue;
                }
                let loaded = &body[entity][id];
                assert!(
                    loaded.is_object(),
                    "{name}: {} ({entity}) should have id {id} (key {}); loaded ids: {:?}",
                    entry["path"],
                    entry["key"],
                    body[entity].as_object().map(|o| o.keys().collect::<Vec<_>>())
                );
            }
            for (entity, n) in ids["entity_counts"].as_object().into_iter().flatten() {
                let got = body[entity].as_object().map_or(0, |o| o.len());
                assert_eq!(Some(got as u64), n.as_u64(), "{name}: count of {entity}");
            }
        }

        // legacy paths migrated as Kong migrates them
        let paths_file = fixtures().join(name.replace(".yml", ".expected-paths.json"));
        if name.ends_with(".yml") && paths_file.exists() {
            let want: Value =
                serde_json::from_str(&std::fs::read_to_string(&paths_file).expect("paths"))
                    .expect("json");
            for (route, paths) in want.as_object().into_iter().flatten() {
                if route.starts_with('_') {
                    continue;
                }
                let r = expect(&admin.get(&format!("/routes/{route}")).await, 200, route);
                assert_eq!(&r["paths"], paths, "{name}: paths of {route}");
            }
        }

        // every route with a plain path answers through the proxy (200 from the upstream,
        // or the 401 of an authentication plugin: routed either way, not 404)
        let routes = expect(&admin.get("/routes?size=1000").await, 200, "routes");
        let proxy = gw.proxy();
        for r in routes["data"].as_array().into_iter().flatten() {
            let Some(path) = r["paths"].get(0).and_then(Value::as_str) else { continue };
            if path.starts_with('~')
                || r["hosts"].is_array()
                || r["methods"].is_array()
                || r["headers"].is_object()
                || r["snis"].is_array()
            {
                continue;
            }
            let protocols = r["protocols"].as_array().cloned().unwrap_or_default();
            if !protocols.iter().any(|p| p == "http") {
                continue;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let res = proxy.get(path).await;
                if res.status != 404 {
                    break;
                }
                assert!(Instant::now() < deadline, "{name}: {path} is not routed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test]
async fn valid_files_import_into_a_database() {
    let up = Upstream::http().start().await;
    let port = up.port().to_string();
    let dir = tempfile::tempdir().expect("dir");
    for name in VALID {
        let gw = Gateway::builder().start().await;
        let file = dir.path().join(name);
        std::fs::write(&file, read(name).replace("18999", &port)).expect("write");
        let out = gw.command(&["config", "db_import", file.to_str().expect("path")]);
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let services = expect(&gw.admin().get("/services").await, 200, "services");
        assert!(services["data"].as_array().is_some_and(|a| !a.is_empty()), "{name}: {services}");
    }
}

#[tokio::test]
async fn invalid_files_get_kongs_answer() {
    let gw = Gateway::builder().env("TURNPIKE_DATABASE", "off").start().await;
    let admin = gw.admin();
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("invalid-") && n.ends_with(".yml"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    let mut mismatches = Vec::new();
    for name in &names {
        let text = read(name);
        let want: Value =
            serde_json::from_str(&read(&name.replace(".yml", ".expected.json"))).expect("json");
        let res = post_config(&admin, name, &text).await;
        assert_eq!(
            u64::from(res.status),
            want["status"].as_u64().unwrap_or(0),
            "{name}: {}",
            res.text()
        );
        let got = res.json();
        if got["fields"] != want["body"]["fields"] || got["code"] != want["body"]["code"] {
            mismatches.push(format!(
                "{name}:\n  want fields {}\n  got  fields {}",
                want["body"]["fields"], got["fields"]
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));

    // the same with ?flatten_errors=1 (ids Kong generates for validation are not compared)
    let strip_ids = |mut v: Value| {
        if let Some(list) = v.get_mut("flattened_errors").and_then(Value::as_array_mut) {
            for e in list {
                if let Some(o) = e.as_object_mut() {
                    o.remove("entity_id");
                    if let Some(ent) = o.get_mut("entity").and_then(Value::as_object_mut) {
                        ent.remove("id");
                    }
                }
            }
        }
        v
    };
    for name in &names {
        let text = read(name);
        let want: Value =
            serde_json::from_str(&read(&name.replace(".yml", ".expected.json"))).expect("json");
        if !want["flatten_errors_body"].is_object() {
            continue;
        }
        let res = admin
            .request(
                "POST",
                "/config?flatten_errors=1",
                &[("content-type", "text/yaml")],
                text.clone(),
            )
            .await;
        let got = strip_ids(res.json());
        let expected = strip_ids(want["flatten_errors_body"].clone());
        for key in ["fields", "flattened_errors", "message"] {
            if got[key] != expected[key] {
                mismatches.push(format!(
                    "{name} (flattened) {key}:\n  want {}\n  got  {}",
                    expected[key], got[key]
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // nothing was loaded
    let status = expect(&gw.status().get("/status").await, 200, "status");
    assert_eq!(status["configuration_hash"], "00000000000000000000000000000000");
}
