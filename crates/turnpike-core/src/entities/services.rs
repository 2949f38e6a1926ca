//! `services` (`kong/db/schema/entities/services.lua`).

use serde_json::{json, Value};

use crate::net::parse_url;
use crate::schema::{Entity, EntityCheck, Field, FieldMatch, Schema, Shorthand};
use crate::typedefs;

fn nonzero_timeout() -> Field {
    Field::integer().between(1.0, 2f64.powi(31) - 2.0)
}

/// The write-only `url` shorthand: `https://host:port/path` -> protocol, host, port, path.
fn expand_url(v: &Value) -> Option<Entity> {
    let parsed = parse_url(v.as_str()?);
    let port_num: Option<i64> = parsed.port.as_deref().and_then(|p| p.parse().ok());
    let implied = match port_num {
        Some(80) => Some("http"),
        Some(443) => Some("https"),
        _ => None,
    };
    let protocol =
        parsed.scheme.clone().or(implied.map(str::to_owned)).unwrap_or_else(|| "http".into());
    let port = match (port_num, &parsed.port) {
        (Some(n), _) => json!(n),
        (None, Some(raw)) => json!(raw),
        (None, None) => match protocol.as_str() {
            "https" => json!(443),
            _ => json!(80),
        },
    };
    let mut out = Entity::new();
    out.insert("protocol".into(), json!(protocol));
    out.insert("host".into(), parsed.host.map(Value::String).unwrap_or(Value::Null));
    out.insert("port".into(), port);
    out.insert("path".into(), parsed.path.map(Value::String).unwrap_or(Value::Null));
    Some(out)
}

fn tls_only(field: &str) -> EntityCheck {
    EntityCheck::conditional(
        "protocol",
        FieldMatch::new().not_one_of(["https", "tls"]),
        field,
        FieldMatch::new().eq_null(),
    )
}

pub(super) fn schema() -> Schema {
    let mut s = Schema::entity("services")
        .field("id", typedefs::uuid())
        .field("created_at", typedefs::auto_timestamp_s())
        .field("updated_at", typedefs::auto_timestamp_s())
        .field("name", typedefs::utf8_name())
        .field("retries", Field::integer().default(json!(5)).between(0.0, 32767.0))
        .field("protocol", typedefs::protocol().required().default(json!("http")))
        .field("host", typedefs::host().required())
        .field("port", typedefs::port().required().default(json!(80)))
        .field("path", typedefs::path())
        .field("connect_timeout", nonzero_timeout().default(json!(60000)))
        .field("write_timeout", nonzero_timeout().default(json!(60000)))
        .field("read_timeout", nonzero_timeout().default(json!(60000)))
        .field("tags", typedefs::tags())
        .field("client_certificate", Field::foreign("certificates"))
        .field("tls_verify", Field::boolean())
        .field("tls_verify_depth", Field::integer().default(Value::Null).between(0.0, 64.0))
        .field("ca_certificates", Field::array(Field::string().uuid()))
        .field("enabled", Field::boolean().required().default(json!(true)))
        .check(EntityCheck::conditional(
            "protocol",
            FieldMatch::new().one_of(["tcp", "tls", "udp", "grpc", "grpcs"]),
            "path",
            FieldMatch::new().eq_null(),
        ))
        .check(tls_only("client_certificate"))
        .check(tls_only("tls_verify"))
        .check(tls_only("tls_verify_depth"))
        .check(tls_only("ca_certificates"))
        .shorthand(
            "url",
            Shorthand { field: Field::string(), func: expand_url, deprecation: None },
        );
    s.endpoint_key = Some("name");
    s.workspaceable = true;
    s
}
