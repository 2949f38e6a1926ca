//! The immutable configuration a data plane runs on: every entity it needs, typed.
//!
//! A [`Snapshot`] is built in one step from the entities as the store (or, later, a
//! declarative file or a control plane) returns them: Kong's JSON output shapes, already
//! validated. Only the fields the data plane reads are typed here; the rest stays in the
//! store. Building a snapshot is off the request path; the proxy compiles it further (router,
//! certificates, upstream TLS settings) and publishes the result atomically.

use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;
use serde_json::Value;

/// A reference to another entity: `{"id": "..."}`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Ref {
    pub id: String,
}

/// `null` and a missing field both give the type's default (Kong writes `null` for unset
/// optional fields).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A service (`kong/db/schema/entities/services.lua`).
#[derive(Clone, Debug, Deserialize)]
pub struct Service {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub protocol: String,
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default = "defaults::retries")]
    pub retries: u32,
    #[serde(default = "defaults::timeout")]
    pub connect_timeout: u64,
    #[serde(default = "defaults::timeout")]
    pub write_timeout: u64,
    #[serde(default = "defaults::timeout")]
    pub read_timeout: u64,
    #[serde(default)]
    pub tls_verify: Option<bool>,
    #[serde(default)]
    pub tls_verify_depth: Option<u32>,
    #[serde(default, deserialize_with = "null_default")]
    pub ca_certificates: Vec<String>,
    #[serde(default)]
    pub client_certificate: Option<Ref>,
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
}

/// A route (`kong/db/schema/entities/routes.lua`).
#[derive(Clone, Debug, Deserialize)]
pub struct Route {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub protocols: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub methods: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub hosts: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub paths: Vec<String>,
    /// Header name -> values, in the order Kong returns them.
    #[serde(default, deserialize_with = "null_default")]
    pub headers: indexmap::IndexMap<String, Vec<String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub snis: Vec<String>,
    #[serde(default)]
    pub regex_priority: i64,
    #[serde(default = "defaults::yes")]
    pub strip_path: bool,
    #[serde(default)]
    pub preserve_host: bool,
    #[serde(default = "defaults::v0")]
    pub path_handling: String,
    #[serde(default = "defaults::redirect")]
    pub https_redirect_status_code: u16,
    #[serde(default = "defaults::yes")]
    pub request_buffering: bool,
    #[serde(default = "defaults::yes")]
    pub response_buffering: bool,
    #[serde(default)]
    pub service: Option<Ref>,
    #[serde(default)]
    pub created_at: i64,
}

/// A certificate (`certificates.lua`): PEM chain and key, with an optional alternate pair
/// of the other key type (RSA / ECDSA).
#[derive(Clone, Deserialize)]
pub struct Certificate {
    pub id: String,
    pub cert: String,
    pub key: String,
    #[serde(default)]
    pub cert_alt: Option<String>,
    #[serde(default)]
    pub key_alt: Option<String>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate").field("id", &self.id).finish_non_exhaustive()
    }
}

/// A server name bound to a certificate (`snis.lua`); may start with `*.` or end with `.*`.
#[derive(Clone, Debug, Deserialize)]
pub struct Sni {
    pub id: String,
    pub name: String,
    pub certificate: Ref,
}

/// A trusted CA certificate (`ca_certificates.lua`).
#[derive(Clone, Debug, Deserialize)]
pub struct CaCertificate {
    pub id: String,
    pub cert: String,
}

/// An upstream (`upstreams.lua`); only what the data plane needs before load balancing
/// arrives.
#[derive(Clone, Debug, Deserialize)]
pub struct Upstream {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub host_header: Option<String>,
    #[serde(default)]
    pub client_certificate: Option<Ref>,
}

/// A target of an upstream (`targets.lua`): `host:port` and weight.
#[derive(Clone, Debug, Deserialize)]
pub struct Target {
    pub id: String,
    pub target: String,
    #[serde(default = "defaults::weight")]
    pub weight: u32,
    pub upstream: Ref,
}

mod defaults {
    pub(super) fn retries() -> u32 {
        5
    }
    pub(super) fn timeout() -> u64 {
        60_000
    }
    pub(super) fn yes() -> bool {
        true
    }
    pub(super) fn v0() -> String {
        "v0".into()
    }
    pub(super) fn redirect() -> u16 {
        426
    }
    pub(super) fn weight() -> u32 {
        100
    }
}

/// The entities the data plane runs on, at one configuration version.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Increases with every rebuild on this node (not comparable across nodes).
    pub version: u64,
    pub services: Vec<Service>,
    pub routes: Vec<Route>,
    pub certificates: Vec<Certificate>,
    pub snis: Vec<Sni>,
    pub ca_certificates: Vec<CaCertificate>,
    pub upstreams: Vec<Upstream>,
    pub targets: Vec<Target>,
    /// Plugins and consumers, as the store returns them, for the plugin runtime.
    pub plugins: Vec<Value>,
    pub consumers: Vec<Value>,
    /// The plugins' own entities ([`PLUGIN_ENTITIES`]: credentials), by entity name.
    pub plugin_entities: std::collections::HashMap<String, Vec<Value>>,
}

/// Entities of bundled plugins the data plane reads (credential lookup tables).
pub const PLUGIN_ENTITIES: &[&str] = &[
    "keyauth_credentials",
    "basicauth_credentials",
    "jwt_secrets",
    "hmacauth_credentials",
    "acls",
];

/// The entity names a snapshot is built from, in the order they are loaded.
pub const SNAPSHOT_ENTITIES: &[&str] = &[
    "services",
    "routes",
    "certificates",
    "snis",
    "ca_certificates",
    "upstreams",
    "targets",
    "plugins",
    "consumers",
    "keyauth_credentials",
    "basicauth_credentials",
    "jwt_secrets",
    "hmacauth_credentials",
    "acls",
];

/// An entity that could not be read into the snapshot (a store bug or a schema mismatch).
#[derive(Debug, thiserror::Error)]
#[error("cannot read {entity} '{id}': {source}")]
pub struct SnapshotError {
    pub entity: &'static str,
    pub id: String,
    #[source]
    pub source: serde_json::Error,
}

fn typed<T: DeserializeOwned>(
    entity: &'static str,
    rows: Vec<Value>,
) -> Result<Vec<T>, SnapshotError> {
    rows.into_iter()
        .map(|v| {
            let id = v.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
            serde_json::from_value(v).map_err(|source| SnapshotError { entity, id, source })
        })
        .collect()
}

/// Typed rows read by reference (no copy of the source rows).
fn typed_ref<T: DeserializeOwned>(
    entity: &'static str,
    rows: &[serde_json::Map<String, Value>],
) -> Result<Vec<T>, SnapshotError> {
    rows.iter()
        .map(|m| {
            T::deserialize(m).map_err(|source| SnapshotError {
                entity,
                id: m.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
                source,
            })
        })
        .collect()
}

impl Snapshot {
    /// Builds a snapshot from borrowed rows (a flattened declarative configuration): the typed
    /// entities are read in place; only the plugins' rows are copied.
    pub fn from_rows<'a>(
        version: u64,
        rows: impl Fn(&str) -> &'a [serde_json::Map<String, Value>],
    ) -> Result<Self, SnapshotError> {
        let owned = |name: &str| -> Vec<Value> {
            rows(name).iter().map(|m| Value::Object(m.clone())).collect()
        };
        Ok(Self {
            version,
            services: typed_ref("services", rows("services"))?,
            routes: typed_ref("routes", rows("routes"))?,
            certificates: typed_ref("certificates", rows("certificates"))?,
            snis: typed_ref("snis", rows("snis"))?,
            ca_certificates: typed_ref("ca_certificates", rows("ca_certificates"))?,
            upstreams: typed_ref("upstreams", rows("upstreams"))?,
            targets: typed_ref("targets", rows("targets"))?,
            plugins: owned("plugins"),
            consumers: owned("consumers"),
            plugin_entities: PLUGIN_ENTITIES
                .iter()
                .map(|name| ((*name).to_owned(), owned(name)))
                .collect(),
        })
    }

    /// Builds a snapshot from the rows of every entity in [`SNAPSHOT_ENTITIES`]; `rows(name)`
    /// returns that entity's rows (missing entities, such as the credentials of plugins that
    /// are not enabled, count as empty).
    pub fn from_entities(
        version: u64,
        mut rows: impl FnMut(&str) -> Vec<Value>,
    ) -> Result<Self, SnapshotError> {
        Ok(Self {
            version,
            services: typed("services", rows("services"))?,
            routes: typed("routes", rows("routes"))?,
            certificates: typed("certificates", rows("certificates"))?,
            snis: typed("snis", rows("snis"))?,
            ca_certificates: typed("ca_certificates", rows("ca_certificates"))?,
            upstreams: typed("upstreams", rows("upstreams"))?,
            targets: typed("targets", rows("targets"))?,
            plugins: rows("plugins"),
            consumers: rows("consumers"),
            plugin_entities: PLUGIN_ENTITIES
                .iter()
                .map(|name| ((*name).to_owned(), rows(name)))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kong_output_shapes_with_nulls() {
        let snap = Snapshot::from_entities(3, |name| match name {
            "services" => vec![json!({
                "id": "s1", "name": null, "protocol": "http", "host": "example.com", "port": 80,
                "path": null, "retries": 5, "connect_timeout": 60000, "write_timeout": 60000,
                "read_timeout": 60000, "tls_verify": null, "tls_verify_depth": null,
                "ca_certificates": null, "client_certificate": null, "enabled": true, "tags": null
            })],
            "routes" => vec![json!({
                "id": "r1", "protocols": ["http", "https"], "methods": null, "hosts": ["a.com"],
                "paths": null, "headers": {"x-a": ["1", "2"]}, "snis": null, "sources": null,
                "regex_priority": 0, "strip_path": true, "preserve_host": false,
                "path_handling": "v0", "https_redirect_status_code": 426,
                "request_buffering": true, "response_buffering": true,
                "service": {"id": "s1"}, "created_at": 1
            })],
            _ => Vec::new(),
        })
        .expect("snapshot");
        assert_eq!(snap.version, 3);
        assert_eq!(snap.services[0].ca_certificates, Vec::<String>::new());
        assert_eq!(snap.services[0].tls_verify, None);
        assert_eq!(snap.routes[0].headers["x-a"], vec!["1", "2"]);
        assert!(snap.routes[0].methods.is_empty());
        assert_eq!(snap.routes[0].service.as_ref().map(|r| r.id.as_str()), Some("s1"));
    }

    #[test]
    fn a_bad_row_names_the_entity() {
        let err = Snapshot::from_entities(1, |name| match name {
            "services" => vec![json!({"id": "s1", "protocol": "http"})],
            _ => Vec::new(),
        })
        .expect_err("host is missing");
        assert_eq!(err.entity, "services");
        assert_eq!(err.id, "s1");
    }
}
