//! One story of the store's behaviour, told against every backend: SQLite always,
//! PostgreSQL when `TURNPIKE_TEST_PG_URL` is set (CI sets it and requires it).

use std::sync::Arc;

use serde_json::{json, Value};
use turnpike_core::errors::ErrorCode;
use turnpike_core::schema::Entity;
use turnpike_plugin_api::{registry, PluginSelection};
use turnpike_store::{migrations, testing, DbConfig, Key, PageRequest, SqlStore, Store, TagFilter};

fn obj(v: Value) -> Entity {
    v.as_object().cloned().expect("object")
}

fn fixture(name: &str) -> String {
    let path = format!("{}/../turnpike-test/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn open(cfg: &DbConfig) -> Arc<dyn Store> {
    migrations::bootstrap(cfg).await.expect("bootstrap");
    let reg = Arc::new(registry(&PluginSelection::bundled()));
    Arc::new(SqlStore::open(cfg, reg).await.expect("open"))
}

#[tokio::test]
async fn story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DbConfig::Sqlite { path: dir.path().join("turnpike.db") };
    story(open(&cfg).await).await;
    migrations_story(&cfg).await;
}

#[tokio::test]
async fn story_on_postgres() {
    let Some(url) = testing::pg_url() else { return };
    let pg = testing::scratch_schema(&url).await;
    let cfg = DbConfig::Postgres(pg.clone());
    story(open(&cfg).await).await;
    migrations_story(&cfg).await;
    testing::drop_schema(&pg).await;
}

async fn migrations_story(cfg: &DbConfig) {
    let (done, pending) = migrations::list(cfg).await.unwrap();
    let all: Vec<&str> = migrations::MIGRATIONS.iter().map(|m| m.name).collect();
    assert_eq!(done.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), all);
    assert!(pending.is_empty());
    assert_eq!(migrations::state(cfg).await.unwrap(), migrations::State::UpToDate);
    assert!(migrations::bootstrap(cfg).await.is_err(), "bootstrap twice must fail");
    migrations::reset(cfg).await.unwrap();
    assert_eq!(migrations::state(cfg).await.unwrap(), migrations::State::NeedsBootstrap);
    assert!(migrations::up(cfg, false).await.is_err());
    assert_eq!(migrations::up(cfg, true).await.unwrap(), all);
}

async fn story(s: Arc<dyn Store>) {
    services_and_routes(&*s).await;
    pagination_and_tags(&*s).await;
    certificates(&*s).await;
    upstreams_and_targets(&*s).await;
    plugins(&*s).await;
}

async fn services_and_routes(s: &dyn Store) {
    let changes = s.changes();
    let before = *changes.borrow();
    let svc = s
        .insert(
            "services",
            obj(json!({"name": "example_service", "url": "https://httpbin.konghq.com"})),
        )
        .await
        .unwrap();
    assert!(*changes.borrow() > before, "writes notify listeners");
    assert_eq!(svc["protocol"], "https");
    assert_eq!(svc["host"], "httpbin.konghq.com");
    assert_eq!(svc["port"], 443);
    assert_eq!(svc["path"], Value::Null);
    assert_eq!(svc["retries"], 5);
    assert_eq!(svc["enabled"], true);
    assert_eq!(svc["tags"], Value::Null);
    assert!(svc.get("url").is_none(), "url is write-only");
    let id = svc["id"].as_str().unwrap().to_owned();

    // unique names
    let dup = s
        .insert("services", obj(json!({"name": "example_service", "host": "x.test"})))
        .await
        .unwrap_err();
    assert_eq!(dup.code, ErrorCode::UniqueViolation);
    assert_eq!(dup.message, r#"UNIQUE violation detected on '{name="example_service"}'"#);
    assert_eq!(dup.to_json()["fields"], json!({"name": "example_service"}));

    // lookups by id (any case) and by endpoint key
    let by_name =
        s.select("services", &Key::Field("name".into(), json!("example_service"))).await.unwrap();
    assert_eq!(by_name.unwrap()["id"], id.as_str());
    let upper = s.select("services", &Key::Id(id.to_uppercase())).await.unwrap();
    assert!(upper.is_some());
    let bad =
        s.select("services", &Key::Field("name".into(), json!("bad name"))).await.unwrap_err();
    assert_eq!(bad.code, ErrorCode::InvalidUnique);

    // PATCH merges and bumps updated_at only
    let patched = s
        .update(
            "services",
            &Key::Field("name".into(), json!("example_service")),
            obj(json!({"retries": 6})),
        )
        .await
        .unwrap();
    assert_eq!(patched["retries"], 6);
    assert_eq!(patched["host"], "httpbin.konghq.com");
    assert_eq!(patched["created_at"], svc["created_at"]);
    let missing = s
        .update("services", &Key::Id(uuid::Uuid::new_v4().to_string()), obj(json!({"retries": 1})))
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);

    // invalid input is rejected with Kong's messages and changes nothing
    let bad =
        s.insert("services", obj(json!({"name": "bad", "url": "httpbin.org"}))).await.unwrap_err();
    assert_eq!(bad.code, ErrorCode::SchemaViolation);
    assert_eq!(
        bad.to_json()["fields"],
        json!({"host": "required field missing", "path": "should start with: /"})
    );
    assert!(s
        .select("services", &Key::Field("name".into(), json!("bad")))
        .await
        .unwrap()
        .is_none());

    // routes reference services by id or by endpoint key
    let route = s
        .insert(
            "routes",
            obj(json!({"name": "example_route", "paths": ["/mock"], "service": {"name": "example_service"}})),
        )
        .await
        .unwrap();
    assert_eq!(route["service"], json!({"id": id}));
    assert_eq!(route["protocols"], json!(["http", "https"]));
    assert_eq!(route["https_redirect_status_code"], 426);
    assert_eq!(route["path_handling"], "v0");
    assert_eq!(route["strip_path"], true);

    let unresolved = s
        .insert("routes", obj(json!({"paths": ["/x"], "service": {"name": "nope"}})))
        .await
        .unwrap_err();
    assert_eq!(unresolved.code, ErrorCode::ForeignKeysUnresolved);
    assert_eq!(
        unresolved.message,
        r#"foreign key unresolved (service.name: the foreign key cannot be resolved with '{name="nope"}' for an existing 'services' entity)"#
    );
    let ghost = uuid::Uuid::new_v4().to_string();
    let dangling = s
        .insert("routes", obj(json!({"paths": ["/x"], "service": {"id": ghost}})))
        .await
        .unwrap_err();
    assert_eq!(dangling.code, ErrorCode::ForeignKeyViolation);
    assert_eq!(
        dangling.message,
        format!("the foreign key '{{id=\"{ghost}\"}}' does not reference an existing 'services' entity.")
    );

    // children of a parent
    let mut req = PageRequest::new(100);
    req.foreign = Some(("service".into(), id.clone()));
    assert_eq!(s.page("routes", &req).await.unwrap().data.len(), 1);

    // restrict vs cascade
    let plugin = s
        .insert("plugins", obj(json!({"name": "key-auth", "route": {"id": route["id"]}})))
        .await
        .unwrap();
    let restricted = s.delete("services", &Key::Id(id.clone())).await.unwrap_err();
    assert_eq!(restricted.code, ErrorCode::ForeignKeyViolation);
    assert_eq!(restricted.message, "an existing 'routes' entity references this 'services' entity");
    s.delete("routes", &Key::Field("name".into(), json!("example_route"))).await.unwrap();
    assert!(
        s.select("plugins", &Key::Id(plugin["id"].as_str().unwrap().into()))
            .await
            .unwrap()
            .is_none(),
        "plugins cascade with their route"
    );
    s.delete("services", &Key::Id(id.clone())).await.unwrap();
    s.delete("services", &Key::Id(id.clone())).await.unwrap();

    // PUT creates and replaces
    let put = s
        .upsert(
            "services",
            &Key::Field("name".into(), json!("svc-put")),
            obj(json!({"host": "a.test", "retries": 1})),
        )
        .await
        .unwrap();
    let put_id = put["id"].as_str().unwrap().to_owned();
    let replaced = s
        .upsert(
            "services",
            &Key::Field("name".into(), json!("svc-put")),
            obj(json!({"host": "b.test"})),
        )
        .await
        .unwrap();
    assert_eq!(replaced["id"], put_id.as_str(), "PUT by name keeps the id");
    assert_eq!(replaced["retries"], 5, "PUT replaces: unset fields get defaults");
    let fixed_id = uuid::Uuid::new_v4().to_string();
    let by_id = s
        .upsert("services", &Key::Id(fixed_id.clone()), obj(json!({"host": "c.test"})))
        .await
        .unwrap();
    assert_eq!(by_id["id"], fixed_id.as_str());
    s.delete("services", &Key::Id(put_id)).await.unwrap();
    s.delete("services", &Key::Id(fixed_id)).await.unwrap();
}

async fn pagination_and_tags(s: &dyn Store) {
    for i in 0..25 {
        let tags = if i % 2 == 0 { json!(["even", "all"]) } else { json!(["odd", "all"]) };
        s.insert("consumers", obj(json!({"username": format!("user-{i:02}"), "tags": tags})))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut req = PageRequest::new(10);
    loop {
        let page = s.page("consumers", &req).await.unwrap();
        assert!(page.data.len() <= 10);
        seen.extend(page.data.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match page.offset {
            Some(o) => req.offset = Some(o),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages are ordered by primary key");

    let mut req = PageRequest::new(100);
    req.tags = Some(TagFilter::parse(Some("even,all")).unwrap());
    assert_eq!(s.page("consumers", &req).await.unwrap().data.len(), 13);
    req.tags = Some(TagFilter::parse(Some("even,odd")).unwrap());
    assert_eq!(s.page("consumers", &req).await.unwrap().data.len(), 0);
    req.tags = Some(TagFilter::parse(Some("even/odd")).unwrap());
    assert_eq!(s.page("consumers", &req).await.unwrap().data.len(), 25);

    let tags = s.page_tags(Some("odd"), 100, None).await.unwrap();
    assert_eq!(tags.data.len(), 12);
    assert_eq!(tags.data[0]["entity_name"], "consumers");
    let all = s.page_tags(None, 20, None).await.unwrap();
    assert_eq!(all.data.len(), 20);
    let rest = s.page_tags(None, 100, all.offset.as_deref()).await.unwrap();
    assert_eq!(rest.data.len(), 30);

    let bad = s
        .page("consumers", &PageRequest { offset: Some("%%%".into()), ..PageRequest::new(10) })
        .await
        .unwrap_err();
    assert_eq!(bad.code, ErrorCode::InvalidOffset);

    for i in 0..25 {
        s.delete("consumers", &Key::Field("username".into(), json!(format!("user-{i:02}"))))
            .await
            .unwrap();
    }
    assert!(
        s.page_tags(None, 100, None).await.unwrap().data.is_empty(),
        "tags go with their entity"
    );
}

async fn certificates(s: &dyn Store) {
    let cert = s
        .insert(
            "certificates",
            obj(json!({"cert": fixture("rsa.crt"), "key": fixture("rsa.key"), "snis": ["b.example.com", "a.example.com"]})),
        )
        .await
        .unwrap();
    assert_eq!(cert["snis"], json!(["a.example.com", "b.example.com"]));
    let cert_id = cert["id"].as_str().unwrap().to_owned();
    let sni = s
        .select("snis", &Key::Field("name".into(), json!("a.example.com")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sni["certificate"], json!({"id": cert_id}));

    let mismatch = s
        .insert(
            "certificates",
            obj(json!({"cert": fixture("rsa.crt"), "key": fixture("other.key")})),
        )
        .await
        .unwrap_err();
    assert_eq!(mismatch.message, "schema violation (certificate does not match key)");

    // an SNI owned by another certificate makes the whole write fail, leaving nothing behind
    let before = s.all("certificates").await.unwrap().len();
    let taken = s
        .insert(
            "certificates",
            obj(json!({"cert": fixture("ecdsa.crt"), "key": fixture("ecdsa.key"), "snis": ["a.example.com"]})),
        )
        .await
        .unwrap_err();
    assert_eq!(
        taken.message,
        format!("schema violation (snis: a.example.com already associated with existing certificate '{cert_id}')")
    );
    assert_eq!(s.all("certificates").await.unwrap().len(), before);

    let updated = s
        .update("certificates", &Key::Id(cert_id.clone()), obj(json!({"snis": ["c.example.com"]})))
        .await
        .unwrap();
    assert_eq!(updated["snis"], json!(["c.example.com"]));
    assert!(s
        .select("snis", &Key::Field("name".into(), json!("a.example.com")))
        .await
        .unwrap()
        .is_none());

    // services may reference the certificate as a client certificate: restrict
    let svc = s
        .insert(
            "services",
            obj(json!({"url": "https://up.test", "client_certificate": {"id": cert_id}})),
        )
        .await
        .unwrap();
    let err = s.delete("certificates", &Key::Id(cert_id.clone())).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ForeignKeyViolation);
    assert!(s
        .select("snis", &Key::Field("name".into(), json!("c.example.com")))
        .await
        .unwrap()
        .is_some());
    s.delete("services", &Key::Id(svc["id"].as_str().unwrap().into())).await.unwrap();
    s.delete("certificates", &Key::Id(cert_id)).await.unwrap();
    assert!(s
        .select("snis", &Key::Field("name".into(), json!("c.example.com")))
        .await
        .unwrap()
        .is_none());

    // CA certificates: digest, CA constraint, expiry
    let ca = s.insert("ca_certificates", obj(json!({"cert": fixture("ca.crt")}))).await.unwrap();
    assert_eq!(ca["cert_digest"].as_str().unwrap().len(), 64);
    let dup =
        s.insert("ca_certificates", obj(json!({"cert": fixture("ca.crt")}))).await.unwrap_err();
    assert_eq!(dup.code, ErrorCode::UniqueViolation);
    let leaf =
        s.insert("ca_certificates", obj(json!({"cert": fixture("leaf.crt")}))).await.unwrap_err();
    assert!(leaf.message.contains("missing the \"CA\" basic constraint"), "{}", leaf.message);
    let expired = s
        .insert("ca_certificates", obj(json!({"cert": fixture("expired-ca.crt")})))
        .await
        .unwrap_err();
    assert!(expired.message.contains("certificate expired"), "{}", expired.message);
    let ca_id = ca["id"].as_str().unwrap().to_owned();
    let svc = s
        .insert("services", obj(json!({"url": "https://up.test", "ca_certificates": [ca_id]})))
        .await
        .unwrap();
    let referenced = s.delete("ca_certificates", &Key::Id(ca_id.clone())).await.unwrap_err();
    assert_eq!(referenced.code, ErrorCode::ReferencedByOthers);
    s.delete("services", &Key::Id(svc["id"].as_str().unwrap().into())).await.unwrap();
    s.delete("ca_certificates", &Key::Id(ca_id)).await.unwrap();
}

async fn upstreams_and_targets(s: &dyn Store) {
    let up = s
        .insert("upstreams", obj(json!({"name": "example_upstream", "hash_on": "ip"})))
        .await
        .unwrap();
    assert_eq!(up["algorithm"], "consistent-hashing");
    assert_eq!(up["healthchecks"]["threshold"], 0);
    assert_eq!(up["healthchecks"]["active"]["https_sni"], Value::Null);
    let up_id = up["id"].as_str().unwrap().to_owned();
    let t = s
        .insert("targets", obj(json!({"target": "httpbin.test", "upstream": {"id": up_id}})))
        .await
        .unwrap();
    assert_eq!(t["target"], "httpbin.test:8000");
    assert_eq!(t["weight"], 100);
    assert!(t["created_at"].is_f64() || t["created_at"].is_number());
    let dup = s
        .insert("targets", obj(json!({"target": "httpbin.test:8000", "upstream": {"id": up_id}})))
        .await
        .unwrap_err();
    assert_eq!(dup.code, ErrorCode::UniqueViolation);
    s.insert(
        "targets",
        obj(json!({"target": "10.0.0.1:80", "upstream": {"name": "example_upstream"}})),
    )
    .await
    .unwrap();
    let mut req = PageRequest::new(1);
    req.foreign = Some(("upstream".into(), up_id.clone()));
    let first = s.page("targets", &req).await.unwrap();
    assert_eq!(first.data.len(), 1);
    assert_eq!(first.offset.as_deref(), Some("1"));
    s.delete("upstreams", &Key::Field("name".into(), json!("example_upstream"))).await.unwrap();
    assert!(s.all("targets").await.unwrap().is_empty(), "targets cascade with their upstream");
}

async fn plugins(s: &dyn Store) {
    let svc =
        s.insert("services", obj(json!({"name": "plugged", "host": "up.test"}))).await.unwrap();
    let p = s
        .insert("plugins", obj(json!({"name": "rate-limiting", "service": {"name": "plugged"}, "config": {"minute": 5}})))
        .await
        .unwrap();
    assert_eq!(p["config"], json!({"minute": 5}));
    assert_eq!(p["protocols"], json!(["grpc", "grpcs", "http", "https"]));
    let dup = s
        .insert("plugins", obj(json!({"name": "rate-limiting", "service": {"id": svc["id"]}})))
        .await
        .unwrap_err();
    assert_eq!(dup.code, ErrorCode::UniqueViolation);
    assert_eq!(
        dup.message,
        format!(
            "UNIQUE violation detected on '{{consumer=null,name=\"rate-limiting\",route=null,service={{id=\"{}\"}}}}'",
            svc["id"].as_str().unwrap()
        )
    );
    let unknown = s.insert("plugins", obj(json!({"name": "nope"}))).await.unwrap_err();
    assert_eq!(
        unknown.message,
        "schema violation (name: plugin 'nope' not enabled; add it to the 'plugins' configuration property)"
    );
    s.delete("services", &Key::Id(svc["id"].as_str().unwrap().into())).await.unwrap();
    assert!(s.all("plugins").await.unwrap().is_empty(), "plugins cascade with their service");
}
