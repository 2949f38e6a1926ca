//! Kong's declarative configuration (`kong.yml`, `POST /config`, `kong config db_import`):
//! the file format, its validation with Kong's errors, and its flattening into the entity
//! rows a store or a snapshot takes (`kong/db/schema/others/declarative_config.lua`).
//!
//! A file holds `_format_version` ("1.1", "2.1" or "3.0"), optional `_transform`,
//! `_comment` and `_ignore`, and one array per entity type. Entities may nest their children
//! (`services[].routes[].plugins[]`, `consumers[].keyauth_credentials[]`, …): a nested child
//! gets its parent as foreign key and may not name another one. Top-level entities refer to
//! others by id or endpoint key (`service: my-service`). Ids the file leaves out are derived
//! from the entity's cache key or endpoint key, as Kong derives them, so that every node
//! gives an entity the same id.
//!
//! Flattening validates everything before anything is applied: a file with one error changes
//! nothing. Errors come back as Kong's nested error table.

mod ids;
mod migrate;
pub mod parse;

use std::collections::HashMap;

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use crate::entities::Registry;
use crate::errors::ErrTree;
use crate::lua::LuaKey;
use crate::schema::{Context, Entity, Schema};

pub use parse::{Limits, ParseError};

/// The format versions Kong reads.
pub const FORMAT_VERSIONS: &[&str] = &["1.1", "2.1", "3.0"];

/// A validated configuration, flattened: every entity as the store keeps it (defaults filled
/// in, foreign keys as `{"id": …}`, write transformations applied), by entity name, parents
/// before children.
#[derive(Debug, Clone, Default)]
pub struct Flat {
    pub entities: IndexMap<String, Vec<Entity>>,
    /// `_format_version` after migration (always "3.0"), `_transform`, `_comment`.
    pub meta: Map<String, Value>,
}

impl Flat {
    /// How many entities of every kind.
    pub fn len(&self) -> usize {
        self.entities.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows of one entity.
    pub fn rows(&self, entity: &str) -> &[Entity] {
        self.entities.get(entity).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Why a declarative configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeclarativeError {
    /// The text is not YAML or JSON, or is too large.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The document is not a table (`expected a declarative configuration`).
    #[error("expected a declarative configuration")]
    NotATable,
    /// Schema, reference or uniqueness errors, as Kong's error table.
    #[error("declarative config is invalid: {}", .0.pretty_inline())]
    Invalid(ErrTree),
}

/// Parses and flattens a declarative text.
pub fn load(text: &[u8], registry: &Registry, limits: &Limits) -> Result<Flat, DeclarativeError> {
    let value = parse::parse(text, limits)?;
    flatten(value, registry)
}

/// The entities a declarative file may hold, parents before children (Kong's topological
/// sort of its known entities; `tags` is not an entity here).
fn known_entities(registry: &Registry) -> Vec<std::sync::Arc<Schema>> {
    registry.dependency_order().into_iter().filter(|s| s.name != "tags").collect()
}

/// An entity of the file, with where it came from.
struct Item {
    entity: usize,
    value: Entity,
    /// Its place in the file (for schema errors): `["services", 1, "routes", 2]`.
    path: Vec<LuaKey>,
    /// Where Kong files its reference and uniqueness errors: `[parent, parent_index, entity,
    /// index]` or `[entity, index]`.
    short: Vec<LuaKey>,
    /// Top-level references still to resolve: (field, value as written).
    refs: Vec<(String, String)>,
}

struct Walker<'r> {
    schemas: Vec<std::sync::Arc<Schema>>,
    index: HashMap<&'r str, usize>,
    /// For each entity, its children: (child entity index, the child's foreign field).
    children: Vec<Vec<(usize, String)>>,
    items: Vec<Item>,
    errors: ErrTree,
}

fn set_at(tree: &mut ErrTree, path: &[LuaKey], err: ErrTree) {
    match path {
        [] => *tree = err,
        [last] => tree.set(last.clone(), err),
        [head, rest @ ..] => {
            let entry = tree.entries().entry(head.clone()).or_insert_with(ErrTree::table);
            if let ErrTree::Msg(_) = entry {
                *entry = ErrTree::table();
            }
            set_at(entry, rest, err);
        }
    }
}

/// Merges `err` into the tree at `path` (tables merge key by key).
fn merge_at(tree: &mut ErrTree, path: &[LuaKey], err: ErrTree) {
    let mut node = tree;
    for k in path {
        let entry = node.entries().entry(k.clone()).or_insert_with(ErrTree::table);
        if let ErrTree::Msg(_) = entry {
            *entry = ErrTree::table();
        }
        node = entry;
    }
    match err {
        ErrTree::Table(t) => {
            for (k, v) in t {
                node.entries().insert(k, v);
            }
        }
        msg => *node = msg,
    }
}

/// Appends a message to the list at `path`.
fn push_at(tree: &mut ErrTree, path: &[LuaKey], msg: String) {
    let mut node = tree;
    for k in path {
        let entry = node.entries().entry(k.clone()).or_insert_with(ErrTree::table);
        if let ErrTree::Msg(_) = entry {
            *entry = ErrTree::table();
        }
        node = entry;
    }
    let next = node.entries().len() + 1;
    node.set(next, ErrTree::msg(msg));
}

fn uniqueness(entity: &str, key: &str, value: &str) -> String {
    format!("uniqueness violation: '{entity}' entity with {key} set to '{value}' already declared")
}

/// The string form Kong uses for a key value in ids and messages.
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl<'r> Walker<'r> {
    fn new(schemas: &'r [std::sync::Arc<Schema>]) -> Self {
        let index: HashMap<&str, usize> =
            schemas.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        let mut children = vec![Vec::new(); schemas.len()];
        for (ci, s) in schemas.iter().enumerate() {
            for (field, target, _) in s.foreign_fields() {
                if let Some(&pi) = index.get(target) {
                    children[pi].push((ci, field.to_owned()));
                }
            }
        }
        Self {
            schemas: schemas.to_vec(),
            index,
            children,
            items: Vec::new(),
            errors: ErrTree::table(),
        }
    }

    /// Kong's `build_cache_key`: `entity:ws:v1:v2…`, or `None` when a part is not known yet.
    fn cache_key(
        &self,
        schema: &Schema,
        item: &Entity,
        parent: Option<(&str, &str)>,
    ) -> Option<String> {
        let ck = schema.cache_key.as_ref()?;
        let mut parts = vec![schema.name.clone(), "*".to_owned()];
        for k in ck {
            let field = schema.fields.get(*k)?;
            if field.auto {
                return None;
            }
            match item.get(*k) {
                Some(Value::String(s)) => parts.push(s.clone()),
                None | Some(Value::Null) => match parent {
                    Some((child_key, parent_id)) if child_key == *k => {
                        parts.push(parent_id.to_owned())
                    }
                    _ if field.required => return None,
                    _ => parts.push(String::new()),
                },
                // a table (a nested foreign key) or another type: Kong's code leaves it out
                Some(_) => {}
            }
        }
        Some(parts.join(":"))
    }

    /// Kong's `get_key_for_uuid_gen` + `generate_uuid`: the id an entity without one gets.
    fn generate_id(&self, schema: &Schema, item: &Entity, parent: Option<(&str, &str)>) -> String {
        if schema.cache_key.is_some() {
            return match self.cache_key(schema, item, parent) {
                Some(k) => ids::generate(&schema.name, &k),
                None => ids::random(),
            };
        }
        let Some(ek) = schema.endpoint_key else { return ids::random() };
        let Some(value) = item.get(ek).and_then(key_text) else { return ids::random() };
        let mut key = value;
        let field = schema.fields.get(ek);
        if !field.is_some_and(|f| f.unique) {
            for (fname, _, on_delete) in schema.foreign_fields() {
                if on_delete != crate::schema::OnDelete::Cascade {
                    continue;
                }
                match parent {
                    Some((_, parent_id)) => {
                        key.push(':');
                        key.push_str(parent_id);
                    }
                    None => {
                        if let Some(v) = item.get(fname).and_then(key_text) {
                            key.push(':');
                            key.push_str(&v);
                        }
                    }
                }
            }
            if !field.is_some_and(|f| f.unique_across_ws) {
                key.push_str(":*");
            }
        }
        ids::generate(&schema.name, &key)
    }

    /// Collects the items of one entity array (top-level or nested).
    fn collect(
        &mut self,
        ei: usize,
        list: &Value,
        path: Vec<LuaKey>,
        parent: Option<(usize, usize, String, String)>,
    ) {
        let Value::Array(list) = list else {
            set_at(&mut self.errors, &path, ErrTree::msg("expected an array"));
            return;
        };
        let schema = self.schemas[ei].clone();
        for (i, raw) in list.iter().enumerate() {
            let idx = i + 1;
            let mut ipath = path.clone();
            ipath.push(LuaKey::Int(idx));
            let Value::Object(obj) = raw else {
                set_at(&mut self.errors, &ipath, ErrTree::msg("expected a record"));
                continue;
            };
            let mut item = obj.clone();
            let mut errs = ErrTree::table();
            match item.remove("_comment") {
                None | Some(Value::String(_)) | Some(Value::Null) => {}
                Some(_) => errs.set("_comment", ErrTree::msg("expected a string")),
            }
            match item.remove("_ignore") {
                None | Some(Value::Array(_)) | Some(Value::Null) => {}
                Some(_) => errs.set("_ignore", ErrTree::msg("expected an array")),
            }
            // nested children come out of the record (unless the name is a real field)
            let mut nested: Vec<(usize, String, Value)> = Vec::new();
            for (ci, fk) in self.children[ei].clone() {
                let name = self.schemas[ci].name.clone();
                let is_field = schema.fields.get(&name).is_some_and(|f| !f.transient);
                if is_field {
                    continue;
                }
                if let Some(v) = item.remove(&name) {
                    nested.push((ci, fk, v));
                }
            }
            let mut refs = Vec::new();
            let parent_ref = parent.as_ref().map(|(_, _, fk, id)| (fk.as_str(), id.as_str()));
            for (fname, _, _) in schema.foreign_fields() {
                let v = item.get(fname).cloned();
                match (&parent, v) {
                    (_, None) | (_, Some(Value::Null)) => {}
                    (Some(_), Some(_)) => {
                        // a nested entity gets its parent, and may not name another one
                        errs.set(fname, ErrTree::msg("value must be null"));
                    }
                    (None, Some(Value::String(s))) => {
                        refs.push((fname.to_owned(), s));
                    }
                    (None, Some(Value::Object(o))) if o.get("id").is_some_and(Value::is_string) => {
                        let id = o.get("id").and_then(Value::as_str).unwrap_or_default();
                        refs.push((fname.to_owned(), id.to_owned()));
                    }
                    (None, Some(_)) => errs.set(fname, ErrTree::msg("expected a string")),
                }
            }
            if let Some((_, _, fk, pid)) = &parent {
                item.insert(fk.clone(), json!({ "id": pid }));
            }
            let id = match item.get("id") {
                Some(Value::String(s)) if !s.is_empty() => s.to_ascii_lowercase(),
                Some(Value::String(_)) | None | Some(Value::Null) => {
                    let mut probe = item.clone();
                    // the cache key uses foreign keys as written (names at the top level)
                    for (f, v) in &refs {
                        probe.insert(f.clone(), Value::String(v.clone()));
                    }
                    if let Some((fk, _)) = parent_ref {
                        probe.remove(fk);
                    }
                    let id = self.generate_id(&schema, &probe, parent_ref);
                    item.insert("id".into(), Value::String(id.clone()));
                    id
                }
                Some(_) => {
                    // the schema check reports the type; keep going with a throwaway id
                    ids::random()
                }
            };
            if !errs.is_empty() {
                merge_at(&mut self.errors, &ipath, errs);
            }
            let short = match &parent {
                Some((pe, pidx, _, _)) => vec![
                    LuaKey::Str(self.schemas[*pe].name.clone()),
                    LuaKey::Int(*pidx),
                    LuaKey::Str(schema.name.clone()),
                    LuaKey::Int(idx),
                ],
                None => vec![LuaKey::Str(schema.name.clone()), LuaKey::Int(idx)],
            };
            self.items.push(Item { entity: ei, value: item, path: ipath.clone(), short, refs });
            for (ci, fk, v) in nested {
                let mut cpath = ipath.clone();
                cpath.push(LuaKey::Str(self.schemas[ci].name.clone()));
                self.collect(ci, &v, cpath, Some((ei, idx, fk, id.clone())));
            }
        }
    }
}

/// Validates and flattens a parsed declarative document.
pub fn flatten(input: Value, registry: &Registry) -> Result<Flat, DeclarativeError> {
    let Value::Object(mut doc) = input else { return Err(DeclarativeError::NotATable) };
    let schemas = known_entities(registry);
    let mut w = Walker::new(&schemas);

    // the metadata fields
    let version = match doc.remove("_format_version") {
        None | Some(Value::Null) => {
            w.errors.set("_format_version", ErrTree::msg("required field missing"));
            None
        }
        Some(Value::String(v)) if FORMAT_VERSIONS.contains(&v.as_str()) => Some(v),
        Some(Value::String(_)) => {
            w.errors.set("_format_version", ErrTree::msg("expected one of: 1.1, 2.1, 3.0"));
            None
        }
        Some(_) => {
            w.errors.set("_format_version", ErrTree::msg("expected a string"));
            None
        }
    };
    let transform = match doc.remove("_transform") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            w.errors.set("_transform", ErrTree::msg("expected a boolean"));
            true
        }
    };
    let comment = match doc.remove("_comment") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            w.errors.set("_comment", ErrTree::msg("expected a string"));
            None
        }
    };
    match doc.remove("_ignore") {
        None | Some(Value::Null) | Some(Value::Array(_)) => {}
        Some(_) => w.errors.set("_ignore", ErrTree::msg("expected an array")),
    }
    if let Some(v) = &version {
        if v != "3.0" {
            migrate::route_paths(&mut doc);
        }
    }

    for key in doc.keys() {
        if !w.index.contains_key(key.as_str()) {
            w.errors.set(key.as_str(), ErrTree::msg("unknown field"));
        }
    }
    for (ei, schema) in schemas.iter().enumerate() {
        let name = schema.name.clone();
        if let Some(list) = doc.get(&name) {
            if list.is_null() {
                continue;
            }
            w.collect(ei, list, vec![LuaKey::Str(name)], None);
        }
    }
    if !w.errors.is_empty() {
        return Err(DeclarativeError::Invalid(w.errors));
    }

    // ids and endpoint keys, for references and uniqueness
    let mut by_id: Vec<HashMap<String, usize>> = vec![HashMap::new(); schemas.len()];
    let mut by_key: Vec<HashMap<String, usize>> = vec![HashMap::new(); schemas.len()];
    let mut dup_errors = ErrTree::table();
    for (n, item) in w.items.iter().enumerate() {
        let schema = &schemas[item.entity];
        let id = item.value.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let mut failed = false;
        if let Some(ek) = schema.endpoint_key {
            if schema.fields.get(ek).is_some_and(|f| f.unique) {
                if let Some(k) = item.value.get(ek).and_then(key_text) {
                    if by_key[item.entity].insert(k.clone(), n).is_some() {
                        // filed under the entity's own list, nested or not
                        let at = [
                            LuaKey::Str(schema.name.clone()),
                            item.short[item.short.len() - 1].clone(),
                        ];
                        set_at(
                            &mut dup_errors,
                            &at,
                            ErrTree::msg(uniqueness(&schema.name, ek, &k)),
                        );
                        failed = true;
                    }
                }
            }
        }
        match by_id[item.entity].entry(id) {
            std::collections::hash_map::Entry::Occupied(o) => {
                if !failed {
                    set_at(
                        &mut dup_errors,
                        &item.short,
                        ErrTree::msg(uniqueness(&schema.name, "primary key", o.key())),
                    );
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(n);
            }
        }
    }
    // references by endpoint key or id (reported together with duplicates, after schema
    // errors, as Kong's `validate_references` does)
    let mut ref_errors = dup_errors;
    let mut resolved: Vec<Vec<(String, String)>> = Vec::with_capacity(w.items.len());
    for item in &w.items {
        let schema = &schemas[item.entity];
        let mut out = Vec::new();
        for (field, value) in &item.refs {
            let target = schema
                .foreign_fields()
                .find(|(f, _, _)| f == field)
                .map(|(_, t, _)| t)
                .unwrap_or_default();
            let Some(&ti) = w.index.get(target) else { continue };
            let found = by_key[ti]
                .get(value)
                .or_else(|| by_id[ti].get(&value.to_ascii_lowercase()))
                .map(|&n| {
                    w.items[n]
                        .value
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                });
            match found {
                Some(id) => out.push((field.clone(), id)),
                None => {
                    let at = schema
                        .endpoint_key
                        .filter(|ek| schema.fields.get(*ek).is_some_and(|f| f.unique))
                        .and_then(|ek| item.value.get(ek).and_then(key_text))
                        .or_else(|| item.value.get("id").and_then(key_text))
                        .map_or(
                            LuaKey::Int(item.short.last().map_or(0, |k| match k {
                                LuaKey::Int(i) => *i,
                                LuaKey::Str(_) => 0,
                            })),
                            LuaKey::Str,
                        );
                    push_at(
                        &mut ref_errors,
                        &[LuaKey::Str(schema.name.clone()), at],
                        format!(
                            "invalid reference '{field}: {value}' (no such entry in '{target}')"
                        ),
                    );
                }
            }
        }
        resolved.push(out);
    }

    // every entity through its schema: defaults, checks, write transformations
    let mut schema_errors = ErrTree::table();
    let mut out: IndexMap<String, Vec<Entity>> = IndexMap::new();
    for s in &schemas {
        out.insert(s.name.clone(), Vec::new());
    }
    for (item, refs) in w.items.iter().zip(resolved) {
        let schema = &schemas[item.entity];
        let mut input = item.value.clone();
        for (field, id) in refs {
            input.insert(field, json!({ "id": id }));
        }
        for (field, _) in &item.refs {
            // an unresolved reference still validates (its error is reported separately)
            if !input.get(field).is_some_and(Value::is_object) {
                input.insert(field.clone(), json!({ "id": ids::random() }));
            }
        }
        match entity_row(schema, input, transform) {
            Ok(row) => out[schema.name.as_str()].push(row),
            Err(e) => merge_at(&mut schema_errors, &item.path, e),
        }
    }
    if !schema_errors.is_empty() {
        return Err(DeclarativeError::Invalid(schema_errors));
    }
    if !ref_errors.is_empty() {
        return Err(DeclarativeError::Invalid(ref_errors));
    }

    // other unique fields (custom_id, …) across the file
    let mut unique_errors = ErrTree::table();
    for s in &schemas {
        let rows = &out[s.name.as_str()];
        for (fname, _) in s.unique_fields() {
            if s.endpoint_key == Some(fname) || fname == "id" {
                continue;
            }
            let mut seen: HashMap<String, ()> = HashMap::new();
            for row in rows {
                let Some(v) = row.get(fname).and_then(key_text) else { continue };
                if seen.insert(v.clone(), ()).is_some() {
                    let at = s
                        .endpoint_key
                        .and_then(|ek| row.get(ek).and_then(key_text))
                        .or_else(|| row.get("id").and_then(key_text))
                        .unwrap_or_default();
                    set_at(
                        &mut unique_errors,
                        &[LuaKey::Str(s.name.clone()), LuaKey::Str(at)],
                        ErrTree::msg(uniqueness(&s.name, fname, &v)),
                    );
                }
            }
        }
    }
    if !unique_errors.is_empty() {
        return Err(DeclarativeError::Invalid(unique_errors));
    }

    out.retain(|_, rows| !rows.is_empty());
    let mut meta = Map::new();
    meta.insert("_format_version".into(), json!("3.0"));
    meta.insert("_transform".into(), json!(transform));
    if let Some(c) = comment {
        meta.insert("_comment".into(), json!(c));
    }
    Ok(Flat { entities: out, meta })
}

/// One entity through its schema, as an insert would take it: defaults and auto fields,
/// the full check, then (with `_transform`) the write transformations.
fn entity_row(schema: &Schema, mut input: Entity, transform: bool) -> Result<Entity, ErrTree> {
    if schema.name == "targets" {
        if let Some(t) = input.get("target").and_then(Value::as_str) {
            match crate::entities::format_target(t) {
                Ok(f) => {
                    input.insert("target".into(), Value::String(f));
                }
                Err(e) => {
                    let mut errs = ErrTree::table();
                    errs.set("target", ErrTree::msg(e));
                    return Err(errs);
                }
            }
        }
    }
    let mut e = schema.process_auto_fields(&input, Context::Insert, false)?;
    // an insert stamps `updated_at` with the time; a file that states it (an export) keeps
    // it, so that export, import and export again give the same file
    if let Some(t @ Value::Number(_)) = input.get("updated_at") {
        if e.contains_key("updated_at") {
            e.insert("updated_at".into(), t.clone());
        }
    }
    schema.validate_with(&e, true, false, Some(&input), None)?;
    if !transform {
        return Ok(e);
    }
    schema.transform(&e, Some(&input), Context::Insert).map_err(|msg| {
        let mut errs = ErrTree::table();
        errs.push_entity(msg);
        errs
    })
}
