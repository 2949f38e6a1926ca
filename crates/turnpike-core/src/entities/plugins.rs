//! `plugins` (`kong/db/schema/entities/plugins.lua`). The plugin-specific subschemas (one per
//! plugin name, each with its `config` record) come from the plugin registry.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::schema::{Field, OnDelete, Schema};
use crate::typedefs;

/// The plugins schema with the given subschemas (keyed by plugin name).
pub(super) fn schema(subschemas: impl IntoIterator<Item = (String, Arc<Schema>)>) -> Schema {
    let mut s = Schema::entity("plugins")
        .field("id", typedefs::uuid())
        .field("name", Field::string().required())
        .field("instance_name", typedefs::utf8_name())
        .field("created_at", typedefs::auto_timestamp_s())
        .field("updated_at", typedefs::auto_timestamp_s())
        .field("route", Field::foreign("routes").default(Value::Null).on_delete(OnDelete::Cascade))
        .field(
            "service",
            Field::foreign("services").default(Value::Null).on_delete(OnDelete::Cascade),
        )
        .field(
            "consumer",
            Field::foreign("consumers").default(Value::Null).on_delete(OnDelete::Cascade),
        )
        .field("config", Field::record(Schema::record()).abstract_())
        .field("protocols", typedefs::protocols())
        .field("enabled", Field::boolean().required().default(json!(true)))
        .field("tags", typedefs::tags());
    s.endpoint_key = Some("instance_name");
    s.cache_key = Some(vec!["name", "route", "service", "consumer"]);
    s.workspaceable = true;
    s.subschema_key = Some("name");
    s.subschema_error =
        Some("plugin '%s' not enabled; add it to the 'plugins' configuration property");
    s.subschemas = subschemas.into_iter().collect();
    s
}
