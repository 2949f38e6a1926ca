//! Kong's core entities and the registry of every schema the node knows.
//!
//! The registry holds the core entities (services, routes, consumers, plugins, upstreams,
//! targets, certificates, snis, ca_certificates, key sets, keys, vaults, tags) plus whatever
//! the plugin registry contributes (plugin subschemas and credential entities). The store and
//! the Admin API are generated from it.

mod certificates;
mod consumers;
mod keys;
mod plugins;
mod routes;
mod services;
mod upstreams;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;

use crate::schema::{OnDelete, Schema};

pub use upstreams::{format_target, healthchecks_default, TARGET_DEFAULT_PORT};

/// The workspace id used by DB-less mode (Kong's `DECLARATIVE_DEFAULT_WORKSPACE_ID`).
pub const DEFAULT_WORKSPACE_ID: &str = "0dc6f45b-8f8d-40d2-a504-473544ee190b";

pub fn services() -> Schema {
    services::schema()
}
pub fn routes() -> Schema {
    routes::schema()
}
pub fn consumers() -> Schema {
    consumers::schema()
}
pub fn upstreams() -> Schema {
    upstreams::upstreams()
}
pub fn targets() -> Schema {
    upstreams::targets()
}
pub fn certificates() -> Schema {
    certificates::certificates()
}
pub fn snis() -> Schema {
    certificates::snis()
}
pub fn ca_certificates() -> Schema {
    certificates::ca_certificates()
}
pub fn key_sets() -> Schema {
    keys::key_sets()
}
pub fn keys() -> Schema {
    keys::keys()
}
pub fn vaults() -> Schema {
    keys::vaults()
}
pub fn tags() -> Schema {
    keys::tags()
}
pub fn workspaces() -> Schema {
    keys::workspaces()
}
/// The plugins schema with the given per-plugin subschemas.
pub fn plugins(subschemas: impl IntoIterator<Item = (String, Arc<Schema>)>) -> Schema {
    plugins::schema(subschemas)
}

/// Core entities in Kong's order (`constants.CORE_ENTITIES`), without plugin subschemas.
fn core(plugin_subschemas: Vec<(String, Arc<Schema>)>) -> Vec<Schema> {
    vec![
        workspaces(),
        consumers(),
        certificates(),
        services(),
        routes(),
        snis(),
        upstreams(),
        targets(),
        plugins(plugin_subschemas),
        tags(),
        ca_certificates(),
        vaults(),
        key_sets(),
        keys(),
    ]
}

static CORE: OnceLock<HashMap<String, Schema>> = OnceLock::new();

/// A core schema by entity name (used to validate foreign keys against their entity).
pub fn lookup(name: &str) -> Option<&'static Schema> {
    CORE.get_or_init(|| core(Vec::new()).into_iter().map(|s| (s.name.clone(), s)).collect())
        .get(name)
}

/// A reference from one entity to another.
#[derive(Clone, Debug)]
pub struct Reference {
    /// The referencing entity (e.g. `routes`).
    pub child: Arc<Schema>,
    /// Its foreign field (e.g. `service`).
    pub field: String,
    pub on_delete: OnDelete,
}

/// Every schema this node knows, by entity name.
#[derive(Clone, Debug)]
pub struct Registry {
    schemas: IndexMap<String, Arc<Schema>>,
}

impl Registry {
    /// The core entities with the given plugin subschemas and additional (plugin) entities.
    pub fn new(plugin_subschemas: Vec<(String, Arc<Schema>)>, extra: Vec<Schema>) -> Self {
        let schemas = core(plugin_subschemas)
            .into_iter()
            .chain(extra)
            .map(|s| (s.name.clone(), Arc::new(s)))
            .collect();
        Self { schemas }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Schema>> {
        self.schemas.get(name)
    }

    /// Looks an entity up by its Admin API collection name (`key-sets`, `services`).
    pub fn by_api_name(&self, api_name: &str) -> Option<&Arc<Schema>> {
        self.schemas.values().find(|s| s.api_name() == api_name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Schema>> {
        self.schemas.values()
    }

    /// Entities whose foreign fields reference `name`.
    pub fn references_to(&self, name: &str) -> Vec<Reference> {
        let mut out = Vec::new();
        for child in self.schemas.values() {
            for (field, target, on_delete) in child.foreign_fields() {
                if target == name {
                    out.push(Reference {
                        child: child.clone(),
                        field: field.to_owned(),
                        on_delete,
                    });
                }
            }
        }
        out
    }

    /// Every schema, parents before children (an entity comes after every entity its foreign
    /// keys reference); registry order otherwise. Used wherever entities are written or read
    /// in bulk (declarative files, imports, exports).
    pub fn dependency_order(&self) -> Vec<Arc<Schema>> {
        let all: Vec<&Arc<Schema>> = self.schemas.values().collect();
        let mut placed: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut out: Vec<Arc<Schema>> = Vec::with_capacity(all.len());
        while out.len() < all.len() {
            let before = out.len();
            for s in &all {
                if placed.contains(s.name.as_str()) {
                    continue;
                }
                let ready = s.foreign_fields().all(|(_, target, _)| {
                    target == s.name
                        || placed.contains(target)
                        || !self.schemas.contains_key(target)
                });
                if ready {
                    placed.insert(s.name.as_str());
                    out.push((*s).clone());
                }
            }
            if out.len() == before {
                // a reference cycle (none among Kong's entities): keep the registry order
                for s in &all {
                    if placed.insert(s.name.as_str()) {
                        out.push((*s).clone());
                    }
                }
            }
        }
        out
    }

    /// The names of plugins with a subschema.
    pub fn plugin_names(&self) -> Vec<String> {
        self.get("plugins").map(|p| p.subschemas.keys().cloned().collect()).unwrap_or_default()
    }
}
