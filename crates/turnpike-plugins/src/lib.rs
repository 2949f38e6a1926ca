//! The bundled plugins: Kong's names, priorities, config schemas, behaviour, messages and
//! statuses (`kong/plugins/*`). Each plugin is a module; the pure parts (token parsing,
//! signature checks, matchers) are kept apart from the phase code so that they are unit-tested
//! without a request.
//!
//! Depends on `turnpike-plugin-api` (the contract) and `turnpike-core` (schemas) only: no
//! proxy, store or Admin API code.

use std::sync::Arc;

use turnpike_core::entities::Registry;
use turnpike_plugin_api::{Factories, PluginFactory, PluginSelection, BUNDLED};

/// A bundled plugin's name, Kong's priority for it (from [`BUNDLED`], the one list of them)
/// and its config schema, for its `PluginFactory` impl.
macro_rules! bundled_meta {
    ($name:literal) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn priority(&self) -> i64 {
            crate::priority_of($name)
        }
        fn schema(&self) -> turnpike_core::schema::Schema {
            crate::schemas::plugin_schema($name).unwrap_or_default()
        }
    };
}

/// Kong's priority of a bundled plugin.
fn priority_of(name: &str) -> i64 {
    BUNDLED.iter().find(|p| p.name == name).map_or(0, |p| p.priority)
}

mod acl;
mod auth;
mod basic_auth;
mod bot_detection;
pub mod bot_rules;
mod cors;
pub mod cors_rules;
pub mod daos;
mod hmac_auth;
pub mod hmac_sig;
pub mod ip_match;
mod ip_restriction;
mod jwt;
pub mod jwt_token;
mod key_auth;
mod request_size_limiting;
mod request_termination;
pub mod schemas;

/// Every plugin implementation of this build.
pub fn all() -> Vec<Arc<dyn PluginFactory>> {
    vec![
        Arc::new(bot_detection::Factory),
        Arc::new(cors::Factory),
        Arc::new(jwt::Factory),
        Arc::new(key_auth::Factory),
        Arc::new(basic_auth::Factory),
        Arc::new(hmac_auth::Factory),
        Arc::new(ip_restriction::Factory),
        Arc::new(request_size_limiting::Factory),
        Arc::new(acl::Factory),
        Arc::new(request_termination::Factory),
    ]
}

/// The implementations of the plugins `selection` enables.
pub fn enabled(selection: &PluginSelection) -> Factories {
    Factories(
        all().into_iter().filter(|f| selection.names().iter().any(|n| n == f.name())).collect(),
    )
}

/// The entity a credential plugin owns, if any.
fn entity_of(plugin: &str) -> Option<&'static str> {
    Some(match plugin {
        "key-auth" => "keyauth_credentials",
        "basic-auth" => "basicauth_credentials",
        "jwt" => "jwt_secrets",
        "hmac-auth" => "hmacauth_credentials",
        "acl" => "acls",
        _ => return None,
    })
}

/// The schema registry of a node with these plugins: their config schemas (a generic one for
/// bundled plugins without an implementation yet) and the entities of the enabled ones.
pub fn registry(selection: &PluginSelection) -> Registry {
    let factories = enabled(selection);
    let wanted: Vec<&str> = selection.names().iter().filter_map(|n| entity_of(n)).collect();
    let entities = daos::credential_entities()
        .into_iter()
        .filter(|e| wanted.contains(&e.name.as_str()))
        .collect();
    turnpike_plugin_api::registry_with(selection, &factories.0, entities)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_implementation_is_a_bundled_plugin_with_a_schema() {
        for f in all() {
            assert!(BUNDLED.iter().any(|b| b.name == f.name()), "{} is not bundled", f.name());
            assert_ne!(f.priority(), 0, "{}", f.name());
            assert!(f.schema().fields.contains_key("config"), "{} has no config schema", f.name());
        }
        assert_eq!(priority_of("key-auth"), 1250);
        assert_eq!(priority_of("request-termination"), 2);
    }
}
