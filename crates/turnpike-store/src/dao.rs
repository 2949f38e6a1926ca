//! Kong's DAO semantics (`kong/db/dao/init.lua` and the custom DAOs of certificates, snis,
//! targets, plugins and CA certificates) on top of the SQL backends.
//!
//! Order of a write, as in Kong: expand shorthands and fill defaults, resolve foreign keys
//! given by endpoint key, validate, transform, compute the cache key, check that referenced
//! entities exist, write (constraint violations become Kong's errors), then run the entity's
//! hooks (e.g. a certificate's SNIs). All of it inside one transaction.

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use sqlx::AnyConnection;
use sqlx::Row;
use tokio::sync::watch;
use turnpike_core::entities::{format_target, Registry};
use turnpike_core::errors::{DaoError, ErrTree};
use turnpike_core::schema::{validate_field, Context, Entity, OnDelete, Schema, Type};

use crate::page::{decode_offset, encode_offset, Page, PageRequest};
use crate::sql::{db_error, row_entity, violation, SqlStore, Violation, P, Q};
use crate::{Backend, Key, Store};

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

fn id_of(e: &Entity) -> Option<&str> {
    e.get("id").and_then(Value::as_str)
}

fn fk_id<'a>(e: &'a Entity, field: &str) -> Option<&'a str> {
    e.get(field).and_then(|v| v.get("id")).and_then(Value::as_str)
}

/// Kong stores UUIDs in `uuid` columns, which prints them in lower case; we lower-case ids
/// and foreign keys on the way in so that lookups and output agree.
fn lowercase_ids(schema: &Schema, e: &mut Entity) {
    if let Some(Value::String(id)) = e.get_mut("id") {
        if is_uuid(id) {
            *id = id.to_ascii_lowercase();
        }
    }
    let fks: Vec<String> = schema.foreign_fields().map(|(f, _, _)| f.to_owned()).collect();
    for f in fks {
        if let Some(Value::Object(o)) = e.get_mut(&f) {
            if let Some(Value::String(id)) = o.get_mut("id") {
                if is_uuid(id) {
                    *id = id.to_ascii_lowercase();
                }
            }
        }
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// `DAO:cache_key(entity)`: `name:v1:v2:…:ws`.
pub(crate) fn cache_key(schema: &Schema, e: &Entity, ws_id: &str) -> String {
    let mut values = vec![schema.name.clone()];
    let mut use_pk = true;
    if let Some(ck) = &schema.cache_key {
        for f in ck {
            let v = match e.get(*f) {
                Some(Value::Object(o)) => o.get("id").and_then(value_text),
                Some(v) => value_text(v),
                None => None,
            };
            if v.is_some() {
                use_pk = false;
            }
            values.push(v.unwrap_or_default());
        }
    }
    if use_pk {
        values.truncate(1);
        for f in &schema.primary_key {
            values.push(e.get(*f).and_then(value_text).unwrap_or_default());
        }
    }
    while values.len() < 6 {
        values.push(String::new());
    }
    values.push(if schema.workspaceable { ws_id.to_owned() } else { String::new() });
    values.join(":")
}

/// The cache-key fields of an entity as Kong shows them in a unique violation.
fn cache_key_json(schema: &Schema, e: &Entity) -> Value {
    let mut m = Map::new();
    for f in schema.cache_key.iter().flatten() {
        let v = match e.get(*f) {
            Some(Value::Object(o)) => json!({ "id": o.get("id").cloned().unwrap_or(Value::Null) }),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        m.insert((*f).to_owned(), v);
    }
    Value::Object(m)
}

fn schema_violation(e: ErrTree) -> DaoError {
    DaoError::schema_violation(&e)
}

/// How a row is written.
/// The entities of a registry that have tables, parents before children.
fn flat_order(registry: &Registry) -> Vec<String> {
    registry
        .dependency_order()
        .into_iter()
        .filter(|s| !matches!(s.name.as_str(), "tags" | "workspaces"))
        .map(|s| s.name.clone())
        .collect()
}

enum Write<'a> {
    Insert,
    Update(&'a str),
    Upsert,
}

impl SqlStore {
    /// DB-less mode refuses Admin API writes as Kong's `off` strategy does.
    fn writable(&self, schema: &Schema, op: &str, key: Option<&Key>) -> Result<(), DaoError> {
        if !self.dbless {
            return Ok(());
        }
        let name = &schema.name;
        Err(DaoError::operation_unsupported(match key {
            Some(Key::Field(f, _)) => {
                format!("cannot {op} '{name}' entities by '{f}' when not using a database")
            }
            _ => format!("cannot {op} '{name}' entities when not using a database"),
        }))
    }

    /// Writes a flattened declarative configuration in one transaction (`kong config
    /// db_import`, and DB-less loads with `replace`): the rows go in as they are, since the
    /// declarative layer validated them; the database still refuses duplicates of what it
    /// holds. With `replace`, every entity is deleted first. Nothing is written on error.
    pub async fn import(
        &self,
        flat: &turnpike_core::declarative::Flat,
        replace: bool,
    ) -> Result<usize, DaoError> {
        match self.import_with(flat, replace, true).await {
            Ok(n) => Ok(n),
            // a multi-row statement cannot say which row failed: go again row by row (in a
            // new transaction) for the precise error
            Err(_) => self.import_with(flat, replace, false).await,
        }
    }

    async fn import_with(
        &self,
        flat: &turnpike_core::declarative::Flat,
        replace: bool,
        batched: bool,
    ) -> Result<usize, DaoError> {
        let mut tx = self.tx().await?;
        if replace {
            // children first, so that no foreign key is left dangling on the way
            let names: Vec<String> = flat_order(&self.registry).into_iter().rev().collect();
            for name in names {
                let schema = self.schema(&name)?;
                Q::new(self.dialect, &format!("DELETE FROM {}", schema.table()))
                    .execute(&mut tx)
                    .await
                    .map_err(db_error)?;
            }
        }
        let mut n = 0;
        for (entity, rows) in &flat.entities {
            let schema = self.schema(entity)?;
            if batched {
                self.insert_rows(&mut tx, &schema, rows).await?;
                n += rows.len();
                continue;
            }
            for e in rows {
                self.write_row(&mut tx, &schema, e, Write::Insert).await?;
                n += 1;
            }
        }
        self.commit_write(tx).await?;
        Ok(n)
    }

    /// Commits a write that changed configuration: increments `config_version` (and queues
    /// the PostgreSQL notification) last in the transaction, commits, then tells this node's
    /// listeners without waiting for the notification to come back. Every configuration write
    /// ends here.
    async fn commit_write(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<(), DaoError> {
        let version = crate::feed::next_version(&mut tx, self.dialect, self.channel.as_deref())
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.feed.observe(version);
        Ok(())
    }

    fn output(&self, schema: &Schema, stored: &Entity) -> Result<Entity, DaoError> {
        let mut e =
            schema.process_auto_fields(stored, Context::Select, true).map_err(schema_violation)?;
        if schema.name == "targets" {
            if let Some(t) = e.get("target").and_then(Value::as_str) {
                if let Ok(f) = format_target(t) {
                    e.insert("target".into(), Value::String(f));
                }
            }
        }
        Ok(e)
    }

    async fn fetch_by(
        &self,
        conn: &mut AnyConnection,
        table: &str,
        col: &str,
        value: &str,
    ) -> Result<Option<Entity>, DaoError> {
        let row = Q::new(self.dialect, &format!("SELECT entity FROM {table} WHERE {col} = "))
            .text(value)
            .fetch_optional(conn)
            .await
            .map_err(db_error)?;
        row.map(|r| row_entity(&r, "entity")).transpose()
    }

    async fn exists(
        &self,
        conn: &mut AnyConnection,
        table: &str,
        col: &str,
        value: &str,
    ) -> Result<bool, DaoError> {
        let row = Q::new(self.dialect, &format!("SELECT 1 FROM {table} WHERE {col} = "))
            .text(value)
            .sql(" LIMIT 1")
            .fetch_optional(conn)
            .await
            .map_err(db_error)?;
        Ok(row.is_some())
    }

    /// Reads the stored row addressed by `key`, validating a unique-field key as Kong does.
    async fn select_stored(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        key: &Key,
    ) -> Result<Option<Entity>, DaoError> {
        match key {
            Key::Id(id) => {
                if !is_uuid(id) {
                    let mut e = ErrTree::table();
                    e.set("id", ErrTree::msg("expected a valid UUID"));
                    return Err(DaoError::invalid_primary_key(&e));
                }
                self.fetch_by(conn, schema.table(), "id", &id.to_ascii_lowercase()).await
            }
            Key::Field(f, v) => {
                let Some(field) = schema.fields.get(f) else {
                    return Ok(None);
                };
                if let Err(e) = validate_field(field, Some(v)) {
                    return Err(DaoError::invalid_unique(f, &e));
                }
                if !field.unique {
                    return Ok(None);
                }
                match value_text(v) {
                    Some(s) => self.fetch_by(conn, schema.table(), f, &s).await,
                    None => Ok(None),
                }
            }
        }
    }

    /// Replaces `{name = "x"}`-style foreign keys with `{id = …}` (`resolve_foreign`).
    async fn resolve_foreign(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        e: &mut Entity,
    ) -> Result<(), DaoError> {
        let mut unresolved = Vec::new();
        let fks: Vec<(String, &'static str)> =
            schema.foreign_fields().map(|(f, r, _)| (f.to_owned(), r)).collect();
        for (field, reference) in fks {
            let Some(Value::Object(obj)) = e.get(&field).cloned() else { continue };
            let Some(fschema) = self.registry.get(reference).cloned() else { continue };
            if fschema.validate_primary_key(&obj, true).is_ok() {
                // a foreign key is its primary key only (Kong keeps `service_id`, not the rest)
                e.insert(field.clone(), json!({ "id": obj.get("id") }));
                continue;
            }
            for (uname, ufield) in fschema.fields.iter() {
                if !(ufield.unique || fschema.endpoint_key == Some(uname.as_str())) {
                    continue;
                }
                let Some(uval) = obj.get(uname) else { continue };
                if uval.is_null() || validate_field(ufield, Some(uval)).is_err() {
                    continue;
                }
                let found = match (ufield.unique, value_text(uval)) {
                    (true, Some(s)) => self.fetch_by(conn, fschema.table(), uname, &s).await?,
                    _ => None,
                };
                match found {
                    Some(f) => {
                        e.insert(field.clone(), json!({ "id": id_of(&f) }));
                        break;
                    }
                    None => unresolved.push((
                        field.clone(),
                        uname.clone(),
                        uval.clone(),
                        fschema.name.clone(),
                    )),
                }
            }
        }
        if unresolved.is_empty() {
            Ok(())
        } else {
            Err(DaoError::foreign_keys_unresolved(&unresolved))
        }
    }

    /// Foreign keys must reference existing entities.
    async fn check_references(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        e: &Entity,
    ) -> Result<(), DaoError> {
        for (field, reference, _) in schema.foreign_fields() {
            let Some(id) = fk_id(e, field) else { continue };
            let Some(fschema) = self.registry.get(reference) else { continue };
            if !self.exists(conn, fschema.table(), "id", id).await? {
                return Err(DaoError::foreign_key_violation_invalid_reference(
                    &json!({ "id": id }),
                    field,
                    reference,
                ));
            }
        }
        Ok(())
    }

    fn map_write_error(&self, err: sqlx::Error, schema: &Schema, e: &Entity) -> DaoError {
        match violation(&err, schema.table()) {
            Some(Violation::Unique(col)) if col == "id" => {
                DaoError::primary_key_violation(&json!({ "id": e.get("id") }))
            }
            Some(Violation::Unique(col)) if col == "cache_key" => {
                DaoError::unique_violation(&cache_key_json(schema, e))
            }
            Some(Violation::Unique(col)) => {
                let v = e.get(&col).cloned().unwrap_or(Value::Null);
                DaoError::unique_violation(&json!({ col: v }))
            }
            Some(Violation::ForeignKey(col)) => {
                let field = col
                    .or_else(|| {
                        schema
                            .foreign_fields()
                            .find(|(f, _, _)| fk_id(e, f).is_some())
                            .map(|(f, _, _)| f.to_owned())
                    })
                    .unwrap_or_default();
                let reference = schema.fields.get(&field).and_then(|f| match f.ty {
                    Type::Foreign(r) => Some(r),
                    _ => None,
                });
                DaoError::foreign_key_violation_invalid_reference(
                    &json!({ "id": fk_id(e, &field) }),
                    &field,
                    reference.unwrap_or("unknown"),
                )
            }
            None => db_error(err),
        }
    }

    /// The columns of an entity's row and their values (the key columns, then `entity`).
    fn row_columns(&self, schema: &Schema, e: &Entity) -> (Vec<String>, Vec<P>) {
        let mut stored = e.clone();
        for (name, f) in schema.fields.iter() {
            if f.transient {
                stored.remove(name);
            }
        }
        let mut cols: Vec<String> = Vec::new();
        let mut vals: Vec<P> = Vec::new();
        let id = id_of(e).unwrap_or_default().to_owned();
        cols.push("id".into());
        vals.push(P::T(Some(id)));
        if schema.workspaceable {
            cols.push("ws_id".into());
            vals.push(P::T(Some(self.ws_id.clone())));
        }
        for (name, _) in schema.unique_fields() {
            cols.push(name.to_owned());
            vals.push(P::T(e.get(name).and_then(value_text)));
        }
        if schema.has_composite_cache_key() {
            cols.push("cache_key".into());
            vals.push(P::T(Some(cache_key(schema, e, &self.ws_id))));
        }
        for (field, _, _) in schema.foreign_fields() {
            cols.push(format!("{field}_id"));
            vals.push(P::T(fk_id(e, field).map(str::to_owned)));
        }
        cols.push("entity".into());
        vals.push(P::T(Some(Value::Object(stored).to_string())));
        (cols, vals)
    }

    /// Inserts many rows of one entity with multi-row statements (a declarative import).
    async fn insert_rows(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        rows: &[Entity],
    ) -> Result<(), DaoError> {
        const PER_STATEMENT: usize = 200;
        let has_tags = schema.fields.contains_key("tags");
        for chunk in rows.chunks(PER_STATEMENT) {
            let mut q = Q::new(self.dialect, "");
            for (n, e) in chunk.iter().enumerate() {
                let (cols, vals) = self.row_columns(schema, e);
                if n == 0 {
                    q.sql(&format!("INSERT INTO {} ({}) VALUES ", schema.table(), cols.join(", ")));
                } else {
                    q.sql(", ");
                }
                q.sql("(");
                for (i, v) in vals.into_iter().enumerate() {
                    if i > 0 {
                        q.sql(", ");
                    }
                    q.arg(v);
                }
                q.sql(")");
            }
            q.execute(conn).await.map_err(|err| self.map_write_error(err, schema, &chunk[0]))?;
            if has_tags {
                for e in chunk {
                    if e.get("tags").is_some_and(|t| !t.is_null()) {
                        let id = id_of(e).unwrap_or_default().to_owned();
                        self.write_tags(conn, schema, &id, e.get("tags"), true).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the row (with its key columns) for an entity that passed validation.
    async fn write_row(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        e: &Entity,
        mode: Write<'_>,
    ) -> Result<(), DaoError> {
        let (cols, vals) = self.row_columns(schema, e);
        let id = id_of(e).unwrap_or_default().to_owned();
        let table = schema.table();
        let mut q = Q::new(self.dialect, "");
        match mode {
            Write::Insert | Write::Upsert => {
                q.sql(&format!("INSERT INTO {table} ({}) VALUES (", cols.join(", ")));
                for (i, v) in vals.into_iter().enumerate() {
                    if i > 0 {
                        q.sql(", ");
                    }
                    q.arg(v);
                }
                q.sql(")");
                if let Write::Upsert = mode {
                    let sets: Vec<String> =
                        cols.iter().skip(1).map(|c| format!("{c} = excluded.{c}")).collect();
                    q.sql(&format!(" ON CONFLICT (id) DO UPDATE SET {}", sets.join(", ")));
                }
            }
            Write::Update(old_id) => {
                q.sql(&format!("UPDATE {table} SET "));
                for (i, (c, v)) in cols.iter().zip(vals).enumerate() {
                    if i > 0 {
                        q.sql(", ");
                    }
                    q.sql(&format!("{c} = "));
                    q.arg(v);
                }
                q.sql(" WHERE id = ");
                q.text(old_id);
            }
        }
        q.execute(conn).await.map_err(|err| self.map_write_error(err, schema, e))?;
        if schema.fields.contains_key("tags") {
            let fresh = matches!(mode, Write::Insert);
            self.write_tags(conn, schema, &id, e.get("tags"), fresh).await?;
        }
        Ok(())
    }

    async fn write_tags(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        id: &str,
        tags: Option<&Value>,
        fresh: bool,
    ) -> Result<(), DaoError> {
        if !fresh {
            Q::new(self.dialect, "DELETE FROM tags WHERE entity_id = ")
                .text(id)
                .execute(conn)
                .await
                .map_err(db_error)?;
        }
        let Some(Value::Array(tags)) = tags else { return Ok(()) };
        for (i, tag) in tags.iter().filter_map(Value::as_str).enumerate() {
            Q::new(
                self.dialect,
                "INSERT INTO tags (entity_id, entity_name, tag, ordinality) VALUES (",
            )
            .text(id)
            .sql(", ")
            .text(schema.name.as_str())
            .sql(", ")
            .text(tag)
            .sql(", ")
            .arg(P::I(i as i64 + 1))
            .sql(")")
            .execute(conn)
            .await
            .map_err(db_error)?;
        }
        Ok(())
    }

    // ---- entity hooks ------------------------------------------------------------------

    /// Kong's `parse_name_list`: the certificate's `snis` input, sorted, without duplicates.
    fn sni_list(input: &Entity) -> Result<Option<Vec<String>>, DaoError> {
        let list = match input.get("snis") {
            None => return Ok(None),
            Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
            }
            Some(_) => return Ok(None),
        };
        let mut seen = std::collections::HashSet::new();
        for n in &list {
            if !seen.insert(n.clone()) {
                return Err(DaoError::field_violation("snis", format!("{n} is duplicated")));
            }
        }
        let mut list = list;
        list.sort();
        Ok(Some(list))
    }

    async fn snis_of(
        &self,
        conn: &mut AnyConnection,
        cert_id: &str,
    ) -> Result<Vec<String>, DaoError> {
        let rows = Q::new(self.dialect, "SELECT name FROM snis WHERE certificate_id = ")
            .text(cert_id)
            .sql(" ORDER BY name")
            .fetch_all(conn)
            .await
            .map_err(db_error)?;
        rows.iter().map(|r| r.try_get::<String, _>(0).map_err(db_error)).collect()
    }

    async fn check_snis_are_new(
        &self,
        conn: &mut AnyConnection,
        names: &[String],
        cert_id: Option<&str>,
    ) -> Result<(), DaoError> {
        for name in names {
            if let Some(row) = self.fetch_by(conn, "snis", "name", name).await? {
                let owner = fk_id(&row, "certificate").unwrap_or_default();
                if Some(owner) != cert_id {
                    return Err(DaoError::field_violation(
                        "snis",
                        format!("{name} already associated with existing certificate '{owner}'"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Makes the certificate's SNIs exactly `names`.
    async fn sync_snis(
        &self,
        conn: &mut AnyConnection,
        cert_id: &str,
        names: &[String],
    ) -> Result<(), DaoError> {
        let current = self.snis_of(conn, cert_id).await?;
        for name in names.iter().filter(|n| !current.contains(n)) {
            let input: Entity = json!({ "name": name, "certificate": { "id": cert_id } })
                .as_object()
                .cloned()
                .unwrap_or_default();
            let schema = self.schema("snis")?;
            Box::pin(self.insert_in(conn, &schema, input)).await?;
        }
        for name in current.iter().filter(|n| !names.contains(n)) {
            let schema = self.schema("snis")?;
            Box::pin(self.delete_in(conn, &schema, &Key::Field("name".into(), json!(name))))
                .await?;
        }
        Ok(())
    }

    async fn decorate(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        e: &mut Entity,
    ) -> Result<(), DaoError> {
        if schema.name == "certificates" {
            let id = id_of(e).unwrap_or_default().to_owned();
            let names = self.snis_of(conn, &id).await?;
            e.insert("snis".into(), json!(names));
        }
        Ok(())
    }

    /// `check_protocols_match` of the plugins DAO.
    async fn check_plugin_protocols(
        &self,
        conn: &mut AnyConnection,
        e: &Entity,
    ) -> Result<(), DaoError> {
        let Some(Value::Array(protocols)) = e.get("protocols") else { return Ok(()) };
        let common = |route: &Entity| {
            route
                .get("protocols")
                .and_then(Value::as_array)
                .is_some_and(|rp| protocols.iter().any(|p| rp.contains(p)))
        };
        if let Some(route_id) = fk_id(e, "route").filter(|id| is_uuid(id)) {
            if let Some(route) =
                self.fetch_by(conn, "routes", "id", &route_id.to_ascii_lowercase()).await?
            {
                if !common(&route) {
                    return Err(DaoError::field_violation(
                        "protocols",
                        "must match the associated route's protocols",
                    ));
                }
            }
        } else if let Some(service_id) = fk_id(e, "service").filter(|id| is_uuid(id)) {
            let rows = Q::new(self.dialect, "SELECT entity FROM routes WHERE service_id = ")
                .text(service_id.to_ascii_lowercase())
                .fetch_all(conn)
                .await
                .map_err(db_error)?;
            let routes: Vec<Entity> =
                rows.iter().map(|r| row_entity(r, "entity")).collect::<Result<_, _>>()?;
            if !routes.is_empty() && !routes.iter().any(common) {
                return Err(DaoError::field_violation(
                    "protocols",
                    "must match the protocols of at least one route pointing to this Plugin's service",
                ));
            }
        }
        Ok(())
    }

    fn format_target_input(schema: &Schema, e: &mut Entity) -> Result<(), DaoError> {
        if schema.name == "targets" {
            if let Some(t) = e.get("target").and_then(Value::as_str) {
                let f = format_target(t).map_err(|err| DaoError::field_violation("target", err))?;
                e.insert("target".into(), Value::String(f));
            }
        }
        Ok(())
    }

    /// Runs `on_write` transformations and computes derived state.
    fn transform(
        schema: &Schema,
        e: Entity,
        original: &Entity,
        ctx: Context,
    ) -> Result<Entity, DaoError> {
        schema.transform(&e, Some(original), ctx).map_err(DaoError::transformation_error)
    }

    // ---- operations (inside a transaction) ---------------------------------------------

    /// What every write does to its input first: ids lower-cased, a target's address
    /// normalized, a certificate's SNI list read.
    fn prepare(schema: &Schema, input: Entity) -> Result<(Entity, Option<Vec<String>>), DaoError> {
        let mut input = input;
        lowercase_ids(schema, &mut input);
        Self::format_target_input(schema, &mut input)?;
        let names = if schema.name == "certificates" { Self::sni_list(&input)? } else { None };
        Ok((input, names))
    }

    /// What every write does once the entity is valid: transform, check references, write the
    /// row, shape the output, then the entity's hooks.
    async fn finish(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        (e, input): (Entity, &Entity),
        mode: Write<'_>,
        names: Option<Vec<String>>,
    ) -> Result<Entity, DaoError> {
        let ctx = match mode {
            Write::Insert => Context::Insert,
            Write::Update(_) => Context::Update,
            Write::Upsert => Context::Upsert,
        };
        let e = Self::transform(schema, e, input, ctx)?;
        self.check_references(conn, schema, &e).await?;
        self.write_row(conn, schema, &e, mode).await?;
        let mut out = self.output(schema, &e)?;
        if let Some(names) = names {
            let id = id_of(&e).unwrap_or_default().to_owned();
            self.sync_snis(conn, &id, &names).await?;
        }
        self.decorate(conn, schema, &mut out).await?;
        Ok(out)
    }

    pub(crate) async fn insert_in(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        input: Entity,
    ) -> Result<Entity, DaoError> {
        let (input, names) = Self::prepare(schema, input)?;
        if let Some(names) = &names {
            self.check_snis_are_new(conn, names, None).await?;
        }
        if schema.name == "plugins" {
            self.check_plugin_protocols(conn, &input).await?;
        }
        let mut e =
            schema.process_auto_fields(&input, Context::Insert, false).map_err(schema_violation)?;
        self.resolve_foreign(conn, schema, &mut e).await?;
        schema.validate_with(&e, true, false, Some(&input), None).map_err(schema_violation)?;
        self.finish(conn, schema, (e, &input), Write::Insert, names).await
    }

    async fn update_in(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        key: &Key,
        input: Entity,
    ) -> Result<Entity, DaoError> {
        let (input, names) = Self::prepare(schema, input)?;
        let partial =
            schema.process_auto_fields(&input, Context::Update, false).map_err(schema_violation)?;
        let Some(rbw) = self.select_stored(conn, schema, key).await? else {
            return Err(match key {
                Key::Id(id) => DaoError::not_found(&json!({ "id": id })),
                Key::Field(..) => DaoError::not_found_by_field(&key.to_json()),
            });
        };
        let id = id_of(&rbw).unwrap_or_default().to_owned();
        if let Some(names) = &names {
            self.check_snis_are_new(conn, names, Some(&id)).await?;
        }
        if schema.name == "plugins"
            && ["protocols", "service", "route"].iter().any(|f| input.contains_key(*f))
        {
            // Kong fills in what the update leaves out before comparing protocols
            let mut probe = input.clone();
            for f in ["protocols", "service", "route"] {
                if let (false, Some(v)) = (probe.contains_key(f), rbw.get(f)) {
                    probe.insert(f.into(), v.clone());
                }
            }
            self.check_plugin_protocols(conn, &probe).await?;
        }
        let rbw_shaped =
            schema.process_auto_fields(&rbw, Context::Select, true).map_err(schema_violation)?;
        let mut e = schema.merge_values(&partial, &rbw_shaped);
        self.resolve_foreign(conn, schema, &mut e).await?;
        schema
            .validate_with(&e, false, true, Some(&input), Some(&rbw_shaped))
            .map_err(schema_violation)?;
        self.finish(conn, schema, (e, &input), Write::Update(&id), names).await
    }

    async fn upsert_in(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        key: &Key,
        input: Entity,
    ) -> Result<Entity, DaoError> {
        let (input, names) = Self::prepare(schema, input)?;
        let rbw = self.select_stored(conn, schema, key).await?;
        if schema.name == "plugins" {
            self.check_plugin_protocols(conn, &input).await?;
        }
        let mut e =
            schema.process_auto_fields(&input, Context::Upsert, false).map_err(schema_violation)?;
        match key {
            Key::Id(id) => {
                e.insert("id".into(), Value::String(id.to_ascii_lowercase()));
            }
            Key::Field(f, v) => {
                e.insert(f.clone(), v.clone());
                if let Some(existing) = rbw.as_ref().and_then(id_of) {
                    e.insert("id".into(), Value::String(existing.to_owned()));
                }
            }
        }
        if let Some(names) = &names {
            self.check_snis_are_new(conn, names, id_of(&e)).await?;
        }
        self.resolve_foreign(conn, schema, &mut e).await?;
        schema.validate_with(&e, true, false, Some(&input), None).map_err(schema_violation)?;
        self.finish(conn, schema, (e, &input), Write::Upsert, names).await
    }

    /// Collects the entities deleted by cascade from (`schema`, `id`), depth first.
    fn cascade_children<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        schema: &'a Schema,
        id: &'a str,
        out: &'a mut Vec<String>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), DaoError>> + Send + 'a>>
    {
        Box::pin(async move {
            for r in self.registry.references_to(&schema.name) {
                if r.on_delete != OnDelete::Cascade {
                    continue;
                }
                let rows = Q::new(
                    self.dialect,
                    &format!("SELECT id FROM {} WHERE {}_id = ", r.child.table(), r.field),
                )
                .text(id)
                .fetch_all(&mut *conn)
                .await
                .map_err(db_error)?;
                let ids: Vec<String> = rows
                    .iter()
                    .map(|row| row.try_get::<String, _>(0))
                    .collect::<Result<_, _>>()
                    .map_err(db_error)?;
                for child_id in ids {
                    self.cascade_children(&mut *conn, &r.child, &child_id, &mut *out).await?;
                    out.push(child_id);
                }
            }
            Ok(())
        })
    }

    /// Deletes the entity (with its cascade); `Ok(false)` when it did not exist.
    async fn delete_in(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        key: &Key,
    ) -> Result<bool, DaoError> {
        let Some(stored) = self.select_stored(conn, schema, key).await? else {
            return Ok(false);
        };
        let id = id_of(&stored).unwrap_or_default().to_owned();
        if schema.name == "certificates" {
            let snis = self.schema("snis")?;
            for name in self.snis_of(conn, &id).await? {
                Box::pin(self.delete_in(conn, &snis, &Key::Field("name".into(), json!(name))))
                    .await?;
            }
        }
        if schema.name == "ca_certificates" {
            self.check_ca_references(conn, &id).await?;
        }
        for r in self.registry.references_to(&schema.name) {
            if r.on_delete == OnDelete::Restrict
                && self.exists(conn, r.child.table(), &format!("{}_id", r.field), &id).await?
            {
                return Err(DaoError::foreign_key_violation_restricted(
                    &schema.name,
                    r.child.table(),
                ));
            }
        }
        let mut cascaded = Vec::new();
        self.cascade_children(conn, schema, &id, &mut cascaded).await?;
        cascaded.push(id.clone());
        for chunk in cascaded.chunks(500) {
            Q::new(self.dialect, "DELETE FROM tags WHERE entity_id IN ")
                .text_list(chunk)
                .execute(conn)
                .await
                .map_err(db_error)?;
        }
        Q::new(self.dialect, &format!("DELETE FROM {} WHERE id = ", schema.table()))
            .text(&id)
            .execute(conn)
            .await
            .map_err(|err| match violation(&err, schema.table()) {
                Some(Violation::ForeignKey(_)) => {
                    DaoError::foreign_key_violation_restricted(&schema.name, "unknown")
                }
                _ => db_error(err),
            })?;
        Ok(true)
    }

    /// A CA certificate referenced by a service's `ca_certificates` cannot be deleted.
    async fn check_ca_references(
        &self,
        conn: &mut AnyConnection,
        id: &str,
    ) -> Result<(), DaoError> {
        let rows = Q::new(self.dialect, "SELECT entity FROM services WHERE entity LIKE ")
            .text(format!("%{id}%"))
            .fetch_all(conn)
            .await
            .map_err(db_error)?;
        for row in rows {
            let svc = row_entity(&row, "entity")?;
            let refs = svc.get("ca_certificates").and_then(Value::as_array);
            if refs.is_some_and(|a| {
                a.iter().any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(id)))
            }) {
                return Err(DaoError::referenced_by_others(format!(
                    "ca certificate {id} is still referenced by services (id = {})",
                    id_of(&svc).unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    async fn page_in(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        req: &PageRequest,
    ) -> Result<Page, DaoError> {
        if let (Some((_, parent)), false) = (&req.foreign, req.raw) {
            if schema.name == "targets" {
                return self.page_targets(conn, schema, parent, req).await;
            }
        }
        let mut q =
            Q::new(self.dialect, &format!("SELECT id, entity FROM {} WHERE 1 = 1", schema.table()));
        if let Some((field, parent)) = &req.foreign {
            q.sql(&format!(" AND {field}_id = ")).text(parent.to_ascii_lowercase());
        }
        if let Some(tags) = &req.tags {
            q.sql(" AND id IN (SELECT entity_id FROM tags WHERE entity_name = ")
                .text(schema.name.as_str())
                .sql(" AND tag IN ")
                .text_list(&tags.tags);
            if !tags.any {
                q.sql(&format!(" GROUP BY entity_id HAVING COUNT(*) = {}", tags.tags.len()));
            }
            q.sql(")");
        }
        if let Some(token) = &req.offset {
            let values = decode_offset(token)?;
            match values.first().and_then(Value::as_str) {
                Some(last) => {
                    q.sql(" AND id > ").text(last);
                }
                None => return Ok(Page::default()),
            }
        }
        q.sql(&format!(" ORDER BY id LIMIT {}", req.size + 1));
        let rows = q.fetch_all(conn).await.map_err(db_error)?;
        let mut data = Vec::with_capacity(rows.len().min(req.size));
        let mut offset = None;
        for (i, row) in rows.iter().enumerate() {
            if i == req.size {
                let last: String = rows[req.size - 1].try_get("id").map_err(db_error)?;
                offset = Some(encode_offset(&[json!(last)]));
                break;
            }
            data.push(self.output(schema, &row_entity(row, "entity")?)?);
        }
        if schema.name == "certificates" {
            for e in data.iter_mut() {
                self.decorate(conn, schema, e).await?;
            }
        }
        Ok(Page { data, offset })
    }

    /// Targets of an upstream, newest first, with a numeric offset (`page_for_upstream`).
    async fn page_targets(
        &self,
        conn: &mut AnyConnection,
        schema: &Schema,
        parent: &str,
        req: &PageRequest,
    ) -> Result<Page, DaoError> {
        let rows = Q::new(self.dialect, "SELECT entity FROM targets WHERE upstream_id = ")
            .text(parent.to_ascii_lowercase())
            .fetch_all(conn)
            .await
            .map_err(db_error)?;
        let mut all: Vec<Entity> =
            rows.iter().map(|r| row_entity(r, "entity")).collect::<Result<_, _>>()?;
        let created = |e: &Entity| e.get("created_at").and_then(Value::as_f64).unwrap_or(0.0);
        all.sort_by(|a, b| created(b).total_cmp(&created(a)).then_with(|| id_of(b).cmp(&id_of(a))));
        let start: usize = match &req.offset {
            Some(o) => o.parse().map_err(|_| DaoError::invalid_offset(o, "bad offset"))?,
            None => 0,
        };
        let mut data = Vec::new();
        for e in all.iter().skip(start).take(req.size) {
            data.push(self.output(schema, e)?);
        }
        let offset = (all.len() > start + req.size).then(|| (start + req.size).to_string());
        Ok(Page { data, offset })
    }

    async fn tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, DaoError> {
        self.writer.begin().await.map_err(db_error)
    }

    async fn read_conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, DaoError> {
        self.reader.acquire().await.map_err(db_error)
    }
}

#[async_trait]
impl Store for SqlStore {
    fn registry(&self) -> &std::sync::Arc<Registry> {
        &self.registry
    }

    fn backend(&self) -> Backend {
        if self.dbless {
            return Backend::Off;
        }
        match self.dialect {
            crate::Dialect::Sqlite => Backend::Sqlite,
            crate::Dialect::Postgres => Backend::Postgres,
        }
    }

    async fn select(&self, entity: &str, key: &Key) -> Result<Option<Entity>, DaoError> {
        let schema = self.schema(entity)?;
        let mut conn = self.read_conn().await?;
        let Some(stored) = self.select_stored(&mut conn, &schema, key).await? else {
            return Ok(None);
        };
        let mut out = self.output(&schema, &stored)?;
        self.decorate(&mut conn, &schema, &mut out).await?;
        Ok(Some(out))
    }

    async fn page(&self, entity: &str, req: &PageRequest) -> Result<Page, DaoError> {
        let schema = self.schema(entity)?;
        let mut conn = self.read_conn().await?;
        self.page_in(&mut conn, &schema, req).await
    }

    async fn insert(&self, entity: &str, input: Entity) -> Result<Entity, DaoError> {
        let schema = self.schema(entity)?;
        self.writable(&schema, "create", None)?;
        let mut tx = self.tx().await?;
        let out = self.insert_in(&mut tx, &schema, input).await?;
        self.commit_write(tx).await?;
        Ok(out)
    }

    async fn update(&self, entity: &str, key: &Key, input: Entity) -> Result<Entity, DaoError> {
        let schema = self.schema(entity)?;
        self.writable(&schema, "update", Some(key))?;
        let mut tx = self.tx().await?;
        let out = self.update_in(&mut tx, &schema, key, input).await?;
        self.commit_write(tx).await?;
        Ok(out)
    }

    async fn upsert(&self, entity: &str, key: &Key, input: Entity) -> Result<Entity, DaoError> {
        let schema = self.schema(entity)?;
        self.writable(&schema, "create or update", Some(key))?;
        let mut tx = self.tx().await?;
        let out = self.upsert_in(&mut tx, &schema, key, input).await?;
        self.commit_write(tx).await?;
        Ok(out)
    }

    async fn delete(&self, entity: &str, key: &Key) -> Result<(), DaoError> {
        let schema = self.schema(entity)?;
        self.writable(&schema, "remove", Some(key))?;
        let mut tx = self.tx().await?;
        if self.delete_in(&mut tx, &schema, key).await? {
            self.commit_write(tx).await?;
        }
        // else: nothing to delete, nothing changed (the transaction rolls back when dropped)
        Ok(())
    }

    async fn page_tags(
        &self,
        tag: Option<&str>,
        size: usize,
        offset: Option<&str>,
    ) -> Result<Page, DaoError> {
        let mut conn = self.read_conn().await?;
        let mut q = Q::new(
            self.dialect,
            "SELECT entity_id, entity_name, tag, ordinality FROM tags WHERE 1 = 1",
        );
        if let Some(t) = tag {
            q.sql(" AND tag = ").text(t);
        }
        if let Some(token) = offset {
            let values = decode_offset(token)?;
            let last_id = values.first().and_then(Value::as_str).unwrap_or_default().to_owned();
            match (tag, values.get(1).and_then(Value::as_i64)) {
                (None, Some(ord)) => {
                    q.sql(" AND (entity_id > ")
                        .text(last_id.clone())
                        .sql(" OR (entity_id = ")
                        .text(last_id)
                        .sql(" AND ordinality > ")
                        .arg(P::I(ord))
                        .sql("))");
                }
                _ => {
                    q.sql(" AND entity_id > ").text(last_id);
                }
            }
        }
        q.sql(&format!(" ORDER BY entity_id, ordinality LIMIT {}", size + 1));
        let rows = q.fetch_all(&mut conn).await.map_err(db_error)?;
        let mut data = Vec::new();
        let mut offset_out = None;
        for (i, row) in rows.iter().enumerate() {
            if i == size {
                let last = &rows[size - 1];
                let id: String = last.try_get(0).map_err(db_error)?;
                let ord: i64 = last.try_get(3).map_err(db_error)?;
                offset_out = Some(if tag.is_some() {
                    encode_offset(&[json!(id)])
                } else {
                    encode_offset(&[json!(id), json!(ord)])
                });
                break;
            }
            let entity_id: String = row.try_get(0).map_err(db_error)?;
            let entity_name: String = row.try_get(1).map_err(db_error)?;
            let t: String = row.try_get(2).map_err(db_error)?;
            let mut m = Map::new();
            m.insert("entity_name".into(), json!(entity_name));
            m.insert("entity_id".into(), json!(entity_id));
            m.insert("tag".into(), json!(t));
            data.push(m);
        }
        Ok(Page { data, offset: offset_out })
    }

    async fn all(&self, entity: &str) -> Result<Vec<Entity>, DaoError> {
        let schema = self.schema(entity)?;
        let mut conn = self.read_conn().await?;
        let rows =
            Q::new(self.dialect, &format!("SELECT entity FROM {} ORDER BY id", schema.table()))
                .fetch_all(&mut conn)
                .await
                .map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut e = self.output(&schema, &row_entity(&row, "entity")?)?;
            self.decorate(&mut conn, &schema, &mut e).await?;
            out.push(e);
        }
        Ok(out)
    }

    async fn ping(&self) -> bool {
        match self.reader.acquire().await {
            Ok(mut c) => Q::new(self.dialect, "SELECT 1").fetch_optional(&mut c).await.is_ok(),
            Err(_) => false,
        }
    }

    async fn config_version(&self) -> Result<u64, DaoError> {
        let mut conn = self.read_conn().await?;
        crate::feed::read_version(&mut conn, self.dialect).await.map_err(db_error)
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.feed.subscribe()
    }
}
