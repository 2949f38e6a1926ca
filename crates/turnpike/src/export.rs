//! `kong config db_export` / `GET /config` in DB-less mode: the store as a declarative 3.0
//! document (`kong/db/declarative/export.lua`): `_format_version: "3.0"`, `_transform: false`
//! (so that importing it again keeps stored values such as password hashes), then every
//! exportable entity at the top level, parents first, foreign keys as plain ids.
//!
//! The output is deterministic (entities in dependency order, rows by id, fields in schema
//! order), so that export, import and export again give the same bytes.

use serde_json::{json, Map, Value};
use turnpike_core::entities::Registry;
use turnpike_core::schema::Schema;
use turnpike_store::Store;

/// Exportable entities, parents before children.
pub(crate) fn export_order(registry: &Registry) -> Vec<std::sync::Arc<Schema>> {
    registry
        .dependency_order()
        .into_iter()
        .filter(|s| s.db_export && !matches!(s.name.as_str(), "workspaces" | "tags"))
        .collect()
}

/// The store's configuration as a declarative document.
pub(crate) async fn export_value(store: &dyn Store) -> Result<Value, String> {
    let registry = store.registry().clone();
    let mut doc = Map::new();
    doc.insert("_format_version".into(), json!("3.0"));
    doc.insert("_transform".into(), json!(false));
    for schema in export_order(&registry) {
        let rows = store.all(&schema.name).await.map_err(|e| e.message)?;
        if rows.is_empty() {
            continue;
        }
        let fks: Vec<String> = schema.foreign_fields().map(|(f, _, _)| f.to_owned()).collect();
        let mut list = Vec::with_capacity(rows.len());
        for mut row in rows {
            for f in &fks {
                if let Some(id) = row.get(f).and_then(|v| v.get("id")).cloned() {
                    row.insert(f.clone(), id);
                }
            }
            for (name, field) in &schema.fields {
                if field.transient {
                    row.remove(name);
                }
            }
            row.remove("ws_id");
            list.push(Value::Object(row));
        }
        doc.insert(schema.name.clone(), Value::Array(list));
    }
    Ok(Value::Object(doc))
}

/// The store's configuration as declarative YAML.
pub(crate) async fn export_yaml(store: &dyn Store) -> Result<String, String> {
    let doc = export_value(store).await?;
    serde_yaml::to_string(&doc).map_err(|e| e.to_string())
}
