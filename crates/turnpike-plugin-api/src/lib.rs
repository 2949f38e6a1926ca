//! The plugin contract: which plugins a node has, their priorities, versions and config
//! schemas ([`PluginFactory`]), Kong's phases as a trait ([`Plugin`]), what a plugin sees of a
//! request ([`Ctx`]), and the compiled chains that decide which instance runs
//! ([`chain::Chains`]). A third-party plugin depends on this crate only.
//!
//! Bundled plugins that have no implementation yet are registered with a generic `config`
//! (any JSON object) so that they can be configured through the Admin API; they do not run.

pub mod chain;
pub mod consumer;
pub mod phase;

pub use chain::{BuildEnv, Chain, Chains, Factories, Instance, NodeInfo, PluginFactory};
pub use consumer::{Consumer, Consumers, Credential};
pub use phase::{Ctx, Exit, ExitBody, Phase, Plugin, Request, RequestState, ResponseHead};

use std::sync::Arc;

use serde_json::{json, Value};
use turnpike_core::entities::Registry;
use turnpike_core::schema::{Field, Schema};
use turnpike_core::typedefs;

/// A plugin this build knows about.
#[derive(Clone, Debug)]
pub struct PluginInfo {
    pub name: &'static str,
    pub priority: i64,
    pub version: &'static str,
}

const fn p(name: &'static str, priority: i64) -> PluginInfo {
    PluginInfo { name, priority, version: turnpike_core::KONG_COMPAT_VERSION }
}

/// Kong's bundled plugins that Turnpike provides, with Kong's priorities.
pub const BUNDLED: &[PluginInfo] = &[
    p("correlation-id", 100001),
    p("bot-detection", 2500),
    p("cors", 2000),
    p("jwt", 1450),
    p("key-auth", 1250),
    p("basic-auth", 1100),
    p("hmac-auth", 1030),
    p("ip-restriction", 990),
    p("request-size-limiting", 951),
    p("acl", 950),
    p("rate-limiting", 910),
    p("response-ratelimiting", 900),
    p("request-transformer", 801),
    p("response-transformer", 800),
    p("proxy-cache", 100),
    p("opentelemetry", 14),
    p("prometheus", 13),
    p("http-log", 12),
    p("file-log", 9),
    p("udp-log", 8),
    p("tcp-log", 7),
    p("syslog", 4),
    p("request-termination", 2),
];

/// The `plugins` setting: `bundled`, `off`, or a list (which may include `bundled`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginSelection {
    names: Vec<String>,
}

impl PluginSelection {
    /// Parses `plugins = bundled, my-plugin` / `off`. Unknown names are an error.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut names: Vec<String> = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                "off" => {}
                "bundled" => {
                    for b in BUNDLED {
                        if !names.iter().any(|n| n == b.name) {
                            names.push(b.name.to_owned());
                        }
                    }
                }
                other => {
                    if !BUNDLED.iter().any(|b| b.name == other) {
                        return Err(format!("plugin '{other}' is enabled but not installed"));
                    }
                    if !names.iter().any(|n| n == other) {
                        names.push(other.to_owned());
                    }
                }
            }
        }
        Ok(Self { names })
    }

    pub fn bundled() -> Self {
        Self { names: BUNDLED.iter().map(|b| b.name.to_owned()).collect() }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The enabled plugins with their metadata.
    pub fn enabled(&self) -> Vec<&'static PluginInfo> {
        BUNDLED.iter().filter(|b| self.names.iter().any(|n| n == b.name)).collect()
    }
}

fn require_object(v: &Value) -> Result<(), String> {
    if v.is_object() {
        Ok(())
    } else {
        Err("expected a record".into())
    }
}

/// The subschema of a plugin whose config schema is not implemented yet: any JSON object.
fn generic_subschema() -> Schema {
    Schema::record()
        .field("protocols", typedefs::protocols())
        .field("config", Field::json().default(json!({})).custom(require_object))
}

/// The schema registry for a node with these plugins enabled, every plugin with a generic
/// config (for tests of the store and Admin API that do not need plugin schemas).
pub fn registry(selection: &PluginSelection) -> Registry {
    registry_with(selection, &[], Vec::new())
}

/// The schema registry for a node with these plugins enabled: the subschema of each plugin
/// from its factory (a generic one when it has none), plus the plugins' own entities.
pub fn registry_with(
    selection: &PluginSelection,
    factories: &[Arc<dyn PluginFactory>],
    entities: Vec<Schema>,
) -> Registry {
    let generic = Arc::new(generic_subschema());
    let subschemas: Vec<(String, Arc<Schema>)> = selection
        .enabled()
        .iter()
        .map(|p| {
            let schema = factories
                .iter()
                .find(|f| f.name() == p.name)
                .map_or_else(|| generic.clone(), |f| Arc::new(f.schema()));
            (p.name.to_owned(), schema)
        })
        .collect();
    Registry::new(subschemas, entities)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections() {
        assert_eq!(PluginSelection::parse("bundled").unwrap().names().len(), BUNDLED.len());
        assert!(PluginSelection::parse("off").unwrap().names().is_empty());
        assert_eq!(PluginSelection::parse("key-auth, cors").unwrap().names(), ["key-auth", "cors"]);
        assert!(PluginSelection::parse("nope").is_err());
    }
}
