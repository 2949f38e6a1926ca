//! Node information and schema endpoints (`kong/api/routes/kong.lua`, `health.lua`, …):
//! `GET /`, `/status`, `/endpoints`, `/schemas/…`, `/timers`, and the endpoints that only
//! apply to other modes (`/config`, `/clustering/…`).

use axum::http::{Method, StatusCode};
use serde_json::{json, Map, Value};
use turnpike_core::errors::DaoError;
use turnpike_core::schema::{Context, Schema};

use crate::http::{dao_error, message, no_content, ok, HResult};
use crate::{handler, Ctx, Routes};

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// Kong's `bytes_to_str(bytes, unit, scale)`.
fn bytes_to_str(bytes: u64, unit: &str, scale: usize) -> Result<Value, String> {
    let b = bytes as f64;
    match unit.to_ascii_lowercase().as_str() {
        "" | "b" => Ok(json!(bytes)),
        "k" => Ok(json!(format!("{:.*} KiB", scale, b / 1024.0))),
        "m" => Ok(json!(format!("{:.*} MiB", scale, b / 1048576.0))),
        "g" => Ok(json!(format!("{:.*} GiB", scale, b / 1073741824.0))),
        _ => Err(format!("invalid unit '{unit}' (expected 'k/K', 'm/M', or 'g/G')")),
    }
}

async fn root(ctx: Ctx) -> HResult<axum::response::Response> {
    let app = &ctx.app;
    let mut available = Map::new();
    for p in app.plugins.enabled() {
        available.insert(p.name.into(), json!({ "version": p.version, "priority": p.priority }));
    }
    let mut in_use: Vec<String> = Vec::new();
    match app.store.all("plugins").await {
        Ok(rows) => {
            for r in rows {
                if let Some(n) = r.get("name").and_then(Value::as_str) {
                    if !in_use.iter().any(|x| x == n) {
                        in_use.push(n.to_owned());
                    }
                }
            }
        }
        Err(e) => return Err(dao_error(&e)),
    }
    let mut configuration = app.node.configuration.clone();
    if let (Value::Object(c), Some(lc)) = (&mut configuration, &app.log_control) {
        c.insert("log_level".into(), json!(lc.level()));
    }
    let pid = std::process::id();
    Ok(ok(&json!({
        "tagline": "Welcome to kong",
        "version": turnpike_core::KONG_COMPAT_VERSION,
        "edition": "community",
        "hostname": app.node.hostname,
        "node_id": app.node.node_id,
        "timers": { "running": 0, "pending": 0 },
        "plugins": { "available_on_server": available, "enabled_in_cluster": in_use },
        "lua_version": "none",
        "configuration": configuration,
        "pids": { "master": pid, "workers": [pid] },
        "turnpike": { "version": turnpike_core::TURNPIKE_VERSION, "uptime_seconds": app.started.elapsed().as_secs() },
    })))
}

async fn status(ctx: Ctx) -> HResult<axum::response::Response> {
    let unit = ctx.input.query_arg("unit").unwrap_or_else(|| "m".into());
    // Kong: `tonumber(scale)`, so anything that is not a number means the default
    let scale =
        ctx.input.query_arg("scale").and_then(|s| s.trim().parse::<f64>().ok()).unwrap_or(2.0);
    let bytes_unit = unit.is_empty() || unit.eq_ignore_ascii_case("b");
    if !bytes_unit && scale < 0.0 {
        return Ok(message(StatusCode::BAD_REQUEST, "scale must be equal or greater than 0"));
    }
    let mem = match bytes_to_str(rss_bytes(), &unit, scale as usize) {
        Ok(v) => v,
        Err(e) => return Ok(message(StatusCode::BAD_REQUEST, &e)),
    };
    let reachable = ctx.app.store.ping().await;
    let mut body = json!({
        "memory": {
            "workers_lua_vms": [{ "http_allocated_gc": mem, "pid": std::process::id() }],
            "lua_shared_dicts": {},
        },
        "server": ctx.app.stats.snapshot(),
    });
    if ctx.app.store.backend() == turnpike_store::Backend::Off {
        let hash = crate::config::hash_of(&ctx.app)
            .unwrap_or_else(|| "00000000000000000000000000000000".to_owned());
        body["configuration_hash"] = json!(hash);
    } else {
        body["database"] = json!({ "reachable": reachable });
    }
    Ok(ok(&body))
}

fn sort_endpoints(mut list: Vec<String>) -> Vec<String> {
    list.sort_by_key(|a| a.replace('/', "\0"));
    list.dedup();
    list
}

fn schema_json(s: &Schema) -> Value {
    let mut v = s.to_json();
    // foreign schemas are stripped in Kong's output; ours never embed them
    if let Value::Object(o) = &mut v {
        o.remove("name");
    }
    v
}

/// `POST /schemas/{entity}/validate`: `validate(process_auto_fields(params, "insert"))`.
fn validate_with(schema: &Schema, params: Map<String, Value>) -> axum::response::Response {
    let processed = match schema.process_auto_fields(&params, Context::Insert, false) {
        Ok(p) => p,
        Err(e) => return dao_error(&DaoError::schema_violation(&e)),
    };
    match schema.validate(&processed, true, false) {
        Ok(()) => ok(&json!({ "message": "schema validation successful" })),
        Err(e) => dao_error(&DaoError::schema_violation(&e)),
    }
}

/// `/status/ready`: ready once the node serves its configuration (the store answers).
async fn ready(ctx: Ctx) -> HResult<axum::response::Response> {
    if ctx.app.store.ping().await {
        Ok(ok(&json!({ "message": "ready" })))
    } else {
        Ok(message(StatusCode::SERVICE_UNAVAILABLE, "failed to connect to database"))
    }
}

/// `GET /endpoints`: registered last, so that it lists every other route.
pub(crate) fn install_endpoints(routes: &mut Routes) {
    let mut templates = routes.templates();
    for extra in ["/endpoints", "/robots.txt"] {
        templates.push(extra.to_owned());
    }
    // Kong names this parameter differently from `/schemas/{name}`
    for t in templates.iter_mut() {
        if t == "/schemas/{name}/validate" {
            *t = "/schemas/{db_entity_name}/validate".into();
        }
    }
    let templates = sort_endpoints(templates);
    routes.on(
        "/endpoints",
        Method::GET,
        handler(move |_ctx: Ctx| {
            let list = templates.clone();
            async move { Ok(ok(&json!({ "data": list }))) }
        }),
    );
}

pub(crate) fn install_status(routes: &mut Routes) {
    routes.on("/status", Method::GET, handler(status));
    routes.on("/status/ready", Method::GET, handler(ready));
}

pub(crate) fn install(routes: &mut Routes) {
    routes.on("/", Method::GET, handler(root));
    install_status(routes);
    routes.on(
        "/status/dns",
        Method::GET,
        handler(|_ctx: Ctx| async {
            Ok(message(StatusCode::NOT_IMPLEMENTED, "not implemented with the legacy DNS client"))
        }),
    );
    routes.on(
        "/schemas/{name}",
        Method::GET,
        handler(|ctx: Ctx| async move {
            let name = ctx.params.get("name").cloned().unwrap_or_default();
            match ctx.app.store.registry().get(&name) {
                Some(s) => Ok(ok(&schema_json(s))),
                None => Ok(message(StatusCode::NOT_FOUND, &format!("No entity named '{name}'"))),
            }
        }),
    );
    routes.on(
        "/schemas/{name}/validate",
        Method::POST,
        handler(|ctx: Ctx| async move {
            let name = ctx.params.get("name").cloned().unwrap_or_default();
            let Some(schema) = ctx.app.store.registry().get(&name).cloned() else {
                return Ok(message(StatusCode::NOT_FOUND, &format!("No entity named '{name}'")));
            };
            Ok(validate_with(&schema, ctx.input.params()?))
        }),
    );
    for (kind, entity, label) in [("plugins", "plugins", "plugin"), ("vaults", "vaults", "vault")] {
        let path = format!("/schemas/{kind}/{{name}}");
        routes.on(
            &path,
            Method::GET,
            handler(move |ctx: Ctx| async move {
                let name = ctx.params.get("name").cloned().unwrap_or_default();
                let sub = ctx
                    .app
                    .store
                    .registry()
                    .get(entity)
                    .and_then(|s| s.subschemas.get(&name).cloned());
                match sub {
                    Some(s) => Ok(ok(&schema_json(&s))),
                    None => {
                        Ok(message(StatusCode::NOT_FOUND, &format!("No {label} named '{name}'")))
                    }
                }
            }),
        );
        routes.on(
            &format!("/schemas/{kind}/validate"),
            Method::POST,
            handler(move |ctx: Ctx| async move {
                let Some(schema) = ctx.app.store.registry().get(entity).cloned() else {
                    return Ok(message(
                        StatusCode::NOT_FOUND,
                        &format!("No entity named '{entity}'"),
                    ));
                };
                Ok(validate_with(&schema, ctx.input.params()?))
            }),
        );
    }

    routes.on("/timers", Method::GET, handler(|_ctx: Ctx| async {
        Ok(ok(&json!({
            "worker": { "id": 0, "count": 1 },
            "stats": { "flamegraph": { "running": "", "pending": "", "elapsed_time": "" }, "sys": { "running": 0, "runs": 0, "pending": 0, "waiting": 0, "total": 0 }, "timers": {} }
        })))
    }));

    routes.on("/config", Method::GET, handler(crate::config::get));
    routes.on("/config", Method::POST, handler(crate::config::post));
    routes.accept_yaml("/config");

    // Turnpike keeps no per-entity cache to purge: configuration is compiled into snapshots.
    routes.on("/cache", Method::DELETE, handler(|_ctx: Ctx| async { Ok(no_content()) }));
    routes.on(
        "/cache/{key}",
        Method::GET,
        handler(|_ctx: Ctx| async { Ok(crate::http::not_found()) }),
    );
    routes.on("/cache/{key}", Method::DELETE, handler(|_ctx: Ctx| async { Ok(no_content()) }));

    routes.on(
        "/debug/node/log-level",
        Method::GET,
        handler(|ctx: Ctx| async move {
            let level =
                ctx.app.log_control.as_ref().map(|l| l.level()).unwrap_or_else(|| "info".into());
            Ok(ok(&json!({ "message": format!("log level: {level}") })))
        }),
    );
    routes.on(
        "/debug/node/log-level/{log_level}",
        Method::PUT,
        handler(|ctx: Ctx| async move { put_log_level(ctx).await }),
    );

    for path in ["/clustering/data-planes", "/clustering/status"] {
        routes.on(path, Method::GET, handler(|_ctx: Ctx| async {
            Ok(message(
                StatusCode::BAD_REQUEST,
                "this endpoint is only available when Kong is configured to run as Control Plane for the cluster",
            ))
        }));
    }
}

/// `PUT /debug/node/log-level/{level}[?timeout=s]` (`kong/api/routes/debug.lua`).
async fn put_log_level(ctx: Ctx) -> HResult<axum::response::Response> {
    if ctx.app.store.backend() == turnpike_store::Backend::Off {
        return Ok(message(
            StatusCode::METHOD_NOT_ALLOWED,
            "cannot change log level when not using a database",
        ));
    }
    let level = ctx.params.get("log_level").cloned().unwrap_or_default();
    const LEVELS: &[&str] = &["debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"];
    if !LEVELS.contains(&level.as_str()) {
        return Ok(message(StatusCode::BAD_REQUEST, &format!("unknown log level: {level}")));
    }
    let timeout = match ctx.input.query_arg("timeout").and_then(|t| t.trim().parse::<f64>().ok()) {
        Some(t) if t < 0.0 => {
            return Ok(message(
                StatusCode::BAD_REQUEST,
                "timeout must be greater than or equal to 0",
            ))
        }
        Some(t) => t.ceil() as u64,
        None => 60,
    };
    let Some(lc) = &ctx.app.log_control else {
        return Ok(message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed setting log level: not supported",
        ));
    };
    if lc.level() == level {
        return Ok(ok(&json!({ "message": format!("log level is already {level}") })));
    }
    match lc.set_level(&level, timeout) {
        Ok(()) => Ok(ok(&json!({ "message": "log level changed" }))),
        Err(e) => Ok(message(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("failed setting log level: {e}"),
        )),
    }
}
