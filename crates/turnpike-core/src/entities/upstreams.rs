//! `upstreams` and `targets` (`upstreams.lua`, `targets.lua`).

use serde_json::{json, Value};

use crate::net::{normalize_ip, HostType};
use crate::schema::{Entity, EntityCheck, Field, FieldMatch, Schema, Shorthand};
use crate::typedefs;

const HASH_ON: &[&str] =
    &["none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture"];

fn hash_on() -> Field {
    Field::string().default(json!("none")).one_of(HASH_ON.iter().copied())
}

fn name_for_error(name: &str) -> String {
    format!("Invalid name ('{name}')")
}

fn validate_upstream_name(v: &Value) -> Result<(), String> {
    let name = v.as_str().unwrap_or_default();
    match normalize_ip(name) {
        Err(_) => Err(format!("{}; must be a valid hostname", name_for_error(name))),
        Ok(p) if p.ty != HostType::Name => {
            Err(format!("{}; no ip addresses allowed", name_for_error(name)))
        }
        Ok(p) if p.port.is_some() => Err(format!("{}; no port allowed", name_for_error(name))),
        Ok(_) => Ok(()),
    }
}

fn seconds() -> Field {
    Field::number().between(0.0, 65535.0)
}

fn one_byte() -> Field {
    Field::integer().between(0.0, 255.0)
}

fn http_statuses(default: Value) -> Field {
    Field::array(Field::integer().between(100.0, 999.0)).default(default)
}

fn check_type() -> Field {
    Field::string().one_of(["tcp", "http", "https", "grpc", "grpcs"]).default(json!("http"))
}

fn record(schema: Schema, default: Value) -> Field {
    Field::record(schema).default(default)
}

/// The default `healthchecks` value (fields without a default are absent, as in Kong).
pub fn healthchecks_default() -> Value {
    json!({
        "active": {
            "type": "http",
            "timeout": 1,
            "concurrency": 10,
            "http_path": "/",
            "https_verify_certificate": true,
            "healthy": {"interval": 0, "http_statuses": [200, 302], "successes": 0},
            "unhealthy": {
                "interval": 0,
                "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
                "tcp_failures": 0,
                "timeouts": 0,
                "http_failures": 0
            }
        },
        "passive": {
            "type": "http",
            "healthy": {
                "http_statuses": [200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                                  300, 301, 302, 303, 304, 305, 306, 307, 308],
                "successes": 0
            },
            "unhealthy": {
                "http_statuses": [429, 500, 503],
                "tcp_failures": 0,
                "timeouts": 0,
                "http_failures": 0
            }
        }
    })
}

fn healthchecks() -> Field {
    let d = healthchecks_default();
    let active = &d["active"];
    let passive = &d["passive"];
    let active_schema = Schema::record()
        .field("type", check_type())
        .field("timeout", seconds().default(json!(1)))
        .field("concurrency", Field::integer().between(1.0, 2f64.powi(31)).default(json!(10)))
        .field("http_path", typedefs::path().default(json!("/")))
        .field("https_sni", typedefs::sni())
        .field("https_verify_certificate", Field::boolean().required().default(json!(true)))
        .field("headers", typedefs::headers())
        .field(
            "healthy",
            record(
                Schema::record()
                    .field("interval", seconds().default(json!(0)))
                    .field("http_statuses", http_statuses(json!([200, 302])))
                    .field("successes", one_byte().default(json!(0))),
                active["healthy"].clone(),
            ),
        )
        .field(
            "unhealthy",
            record(
                Schema::record()
                    .field("interval", seconds().default(json!(0)))
                    .field(
                        "http_statuses",
                        http_statuses(active["unhealthy"]["http_statuses"].clone()),
                    )
                    .field("tcp_failures", one_byte().default(json!(0)))
                    .field("timeouts", one_byte().default(json!(0)))
                    .field("http_failures", one_byte().default(json!(0))),
                active["unhealthy"].clone(),
            ),
        );
    let passive_schema = Schema::record()
        .field("type", check_type())
        .field(
            "healthy",
            record(
                Schema::record()
                    .field(
                        "http_statuses",
                        http_statuses(passive["healthy"]["http_statuses"].clone()),
                    )
                    .field("successes", one_byte().default(json!(0))),
                passive["healthy"].clone(),
            ),
        )
        .field(
            "unhealthy",
            record(
                Schema::record()
                    .field(
                        "http_statuses",
                        http_statuses(passive["unhealthy"]["http_statuses"].clone()),
                    )
                    .field("tcp_failures", one_byte().default(json!(0)))
                    .field("timeouts", one_byte().default(json!(0)))
                    .field("http_failures", one_byte().default(json!(0))),
                passive["unhealthy"].clone(),
            ),
        );
    Field::record(
        Schema::record()
            .field("active", record(active_schema, active.clone()))
            .field("passive", record(passive_schema, passive.clone()))
            .field("threshold", Field::number().default(json!(0)).between(0.0, 100.0)),
    )
    .default(d)
}

fn hash_when(if_field: &str, value: &'static str, then_field: &str) -> EntityCheck {
    EntityCheck::conditional(
        if_field,
        FieldMatch::new().matches(value),
        then_field,
        FieldMatch::new().required(),
    )
}

fn fallback_one_of(hash_on_pattern: &'static str, allowed: &[&str]) -> EntityCheck {
    EntityCheck::conditional(
        "hash_on",
        FieldMatch::new().matches(hash_on_pattern),
        "hash_fallback",
        FieldMatch::new().one_of(allowed.iter().copied()),
    )
}

fn algorithm_shorthand(v: &Value) -> Option<Entity> {
    let mut out = Entity::new();
    out.insert("algorithm".into(), v.clone());
    if matches!(v.as_str(), Some("least-connections" | "latency")) {
        out.insert("hash_on".into(), Value::Null);
    }
    Some(out)
}

fn hash_on_shorthand(v: &Value) -> Option<Entity> {
    let mut out = Entity::new();
    match v {
        Value::Null => {
            out.insert("hash_on".into(), json!("none"));
        }
        Value::String(s) if s == "none" => {
            out.insert("hash_on".into(), v.clone());
            out.insert("algorithm".into(), json!("round-robin"));
        }
        _ => {
            out.insert("hash_on".into(), v.clone());
            out.insert("algorithm".into(), json!("consistent-hashing"));
        }
    }
    Some(out)
}

pub(super) fn upstreams() -> Schema {
    let simple_param = || Field::string().len_min(1);
    let mut s = Schema::entity("upstreams")
        .field("id", typedefs::uuid())
        .field("created_at", typedefs::auto_timestamp_s())
        .field("name", Field::string().required().unique().custom(validate_upstream_name))
        .field("updated_at", typedefs::auto_timestamp_s())
        .field(
            "algorithm",
            Field::string().default(json!("round-robin")).one_of([
                "consistent-hashing",
                "least-connections",
                "round-robin",
                "latency",
            ]),
        )
        .field("hash_on", hash_on())
        .field("hash_fallback", hash_on())
        .field("hash_on_header", typedefs::header_name())
        .field("hash_fallback_header", typedefs::header_name())
        .field("hash_on_cookie", typedefs::cookie_name())
        .field("hash_on_cookie_path", typedefs::path().default(json!("/")))
        .field("hash_on_query_arg", simple_param())
        .field("hash_fallback_query_arg", simple_param())
        .field("hash_on_uri_capture", simple_param())
        .field("hash_fallback_uri_capture", simple_param())
        .field("slots", Field::integer().default(json!(10000)).between(10.0, 65536.0))
        .field("healthchecks", healthchecks())
        .field("tags", typedefs::tags())
        .field("host_header", typedefs::host_with_optional_port())
        .field("client_certificate", Field::foreign("certificates"))
        .field("use_srv_name", Field::boolean().default(json!(false)))
        .check(hash_when("hash_on", "^header$", "hash_on_header"))
        .check(hash_when("hash_fallback", "^header$", "hash_fallback_header"))
        .check(hash_when("hash_on", "^cookie$", "hash_on_cookie"))
        .check(hash_when("hash_fallback", "^cookie$", "hash_on_cookie"))
        .check(fallback_one_of("^none$", &["none"]))
        .check(fallback_one_of("^cookie$", &["none"]))
        .check(fallback_one_of(
            "^consumer$",
            &["none", "ip", "header", "cookie", "path", "query_arg", "uri_capture"],
        ))
        .check(fallback_one_of(
            "^ip$",
            &["none", "consumer", "header", "cookie", "path", "query_arg", "uri_capture"],
        ))
        .check(fallback_one_of(
            "^path$",
            &["none", "consumer", "header", "cookie", "query_arg", "ip", "uri_capture"],
        ))
        .check(EntityCheck::distinct(&["hash_on_header", "hash_fallback_header"]))
        .check(hash_when("hash_on", "^query_arg$", "hash_on_query_arg"))
        .check(hash_when("hash_fallback", "^query_arg$", "hash_fallback_query_arg"))
        .check(EntityCheck::distinct(&["hash_on_query_arg", "hash_fallback_query_arg"]))
        .check(hash_when("hash_on", "^uri_capture$", "hash_on_uri_capture"))
        .check(hash_when("hash_fallback", "^uri_capture$", "hash_fallback_uri_capture"))
        .check(EntityCheck::distinct(&["hash_on_uri_capture", "hash_fallback_uri_capture"]))
        .shorthand(
            "algorithm",
            Shorthand { field: Field::string(), func: algorithm_shorthand, deprecation: None },
        )
        .shorthand(
            "hash_on",
            Shorthand { field: Field::string(), func: hash_on_shorthand, deprecation: None },
        );
    s.endpoint_key = Some("name");
    s.workspaceable = true;
    s
}

/// The default port of a target given without one.
pub const TARGET_DEFAULT_PORT: u16 = 8000;

fn validate_target(v: &Value) -> Result<(), String> {
    let t = v.as_str().unwrap_or_default();
    normalize_ip(t)
        .map(|_| ())
        .map_err(|_| format!("Invalid target ('{t}'); not a valid hostname or ip address"))
}

/// `host[:port]` with the port defaulted to 8000 (`format_target` in `dao/targets.lua`).
pub fn format_target(target: &str) -> Result<String, String> {
    let p = normalize_ip(target)
        .map_err(|_| "Invalid target; not a valid hostname or ip address".to_owned())?;
    Ok(crate::net::format_host(&p, Some(TARGET_DEFAULT_PORT)))
}

pub(super) fn targets() -> Schema {
    let mut s = Schema::entity("targets")
        .field("id", typedefs::uuid())
        .field("created_at", typedefs::auto_timestamp_ms())
        .field("updated_at", typedefs::auto_timestamp_ms())
        .field(
            "upstream",
            Field::foreign("upstreams").required().on_delete(crate::schema::OnDelete::Cascade),
        )
        .field("target", Field::string().required().custom(validate_target))
        .field("weight", Field::integer().default(json!(100)).between(0.0, 65535.0))
        .field("tags", typedefs::tags());
    s.endpoint_key = Some("target");
    s.cache_key = Some(vec!["upstream", "target"]);
    s.workspaceable = true;
    s
}
