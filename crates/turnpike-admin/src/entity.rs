//! The endpoints Kong generates for every entity (`kong/api/endpoints.lua`):
//!
//! * `/{entities}`: GET (page), POST (create)
//! * `/{entities}/{id|key}`: GET, PUT (upsert), PATCH (merge), DELETE (idempotent)
//! * `/{entities}/{id}/{foreign}`: the entity a foreign key points to
//! * `/{parents}/{id}/{entities}` and `/{parents}/{id}/{entities}/{id}`: children of a parent

use std::sync::Arc;

use serde_json::{json, Map, Value};
use turnpike_core::schema::Schema;
use turnpike_store::{Key, Page, PageRequest, TagFilter};

use crate::args::infer_value;
use crate::http::{created, escape_uri, no_content, not_found, ok, HResult, OrRespond};
use crate::{App, Ctx};

/// What a generated endpoint serves.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// `/services`
    Collection,
    /// `/services/{services}`
    Entity,
    /// `/routes/{routes}/service`: `schema` is the child, `foreign` the referenced entity.
    ForeignEntity { field: String, foreign: Arc<Schema> },
    /// `/services/{services}/routes`: `schema` is the child.
    NestedCollection { parent: Arc<Schema>, field: String },
    /// `/services/{services}/routes/{routes}`: `schema` is the child.
    NestedEntity { parent: Arc<Schema>, field: String },
}

#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) schema: Arc<Schema>,
    pub(crate) kind: Kind,
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// Turns a URL segment into a key: a UUID is always an id, anything else the endpoint key.
pub(crate) fn key_for(schema: &Schema, raw: &str) -> Key {
    if is_uuid(raw) {
        return Key::Id(raw.to_owned());
    }
    match schema.endpoint_key.and_then(|k| schema.fields.get(k).map(|f| (k, f))) {
        Some((k, field)) => {
            Key::Field(k.to_owned(), infer_value(Value::String(raw.to_owned()), field))
        }
        None => Key::Id(raw.to_owned()),
    }
}

/// The primary key part of an entity, as foreign keys hold it.
pub(crate) fn pk_of(e: &Map<String, Value>) -> Value {
    json!({ "id": e.get("id").cloned().unwrap_or(Value::Null) })
}

fn fk_matches(child: &Map<String, Value>, field: &str, parent: &Map<String, Value>) -> bool {
    let fk = child.get(field).and_then(|v| v.get("id"));
    fk.is_some() && fk == parent.get("id")
}

pub(crate) fn page_body(page: Page, next: Option<String>) -> Value {
    let mut m = Map::new();
    m.insert("data".into(), Value::Array(page.data.into_iter().map(Value::Object).collect()));
    if let Some(o) = &page.offset {
        m.insert("offset".into(), json!(o));
    }
    m.insert("next".into(), next.map(Value::String).unwrap_or(Value::Null));
    Value::Object(m)
}

/// Reads `size`, `offset` and (for top-level collections) `tags` from the query.
pub(crate) fn page_request(ctx: &Ctx, schema: &Schema, with_tags: bool) -> HResult<PageRequest> {
    let size = PageRequest::parse_size(ctx.input.query_arg("size").as_deref()).or_respond()?;
    let mut req = PageRequest::new(size);
    req.offset = ctx.input.query_arg("offset");
    if with_tags
        && schema.fields.contains_key("tags")
        && ctx.input.query.iter().any(|(k, _)| k == "tags")
    {
        req.tags = Some(TagFilter::parse(ctx.input.query_arg("tags").as_deref()).or_respond()?);
    }
    Ok(req)
}

/// The `next` link of a top-level collection (keeps `tags` and `size`).
pub(crate) fn next_link(ctx: &Ctx, base: &str, offset: Option<&str>) -> Option<String> {
    let offset = offset?;
    let mut link = format!("{base}?offset={}", escape_uri(offset));
    if let Some(tags) = ctx.input.query_arg("tags") {
        link.push_str(&format!("&tags={}", escape_uri(&tags)));
    }
    if let Some(size) = ctx.input.query_arg("size") {
        link.push_str(&format!("&size={size}"));
    }
    Some(link)
}

impl Endpoint {
    fn param<'a>(&self, ctx: &'a Ctx, name: &str) -> &'a str {
        ctx.params.get(name).map(String::as_str).unwrap_or_default()
    }

    /// The entity addressed by the URL parameter named after `schema` (404 when missing).
    async fn select_param(ctx: &Ctx, schema: &Schema) -> HResult<Map<String, Value>> {
        let raw = ctx.params.get(&schema.name).map(String::as_str).unwrap_or_default();
        Self::select_required(&ctx.app, schema, &key_for(schema, raw)).await
    }

    /// The key of a nested child: its id or endpoint key, or for `acls` (whose Kong API
    /// addresses a consumer's ACL by group name, `kong/plugins/acl/api.lua`) the id of the
    /// parent's ACL with that group.
    async fn nested_key(&self, ctx: &Ctx, parent: &Map<String, Value>) -> HResult<Key> {
        let s = &self.schema;
        let raw = self.param(ctx, &s.name);
        if s.name != "acls" || is_uuid(raw) {
            return Ok(key_for(s, raw));
        }
        let parent_id = parent.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let mut req = PageRequest::new(1000);
        req.foreign = Some(("consumer".to_owned(), parent_id));
        loop {
            let page = ctx.app.store.page(&s.name, &req).await.or_respond()?;
            let found =
                page.data.iter().find(|e| e.get("group").and_then(Value::as_str) == Some(raw));
            if let Some(e) = found {
                return Ok(Key::Id(e["id"].as_str().unwrap_or_default().to_owned()));
            }
            match page.offset {
                Some(o) => req.offset = Some(o),
                None => return Err(not_found()),
            }
        }
    }

    async fn select_required(app: &App, schema: &Schema, key: &Key) -> HResult<Map<String, Value>> {
        match app.store.select(&schema.name, key).await.or_respond()? {
            Some(e) => Ok(e),
            None => Err(not_found()),
        }
    }

    pub(crate) async fn get(&self, ctx: Ctx) -> HResult<axum::response::Response> {
        let app = &ctx.app;
        let s = &self.schema;
        match &self.kind {
            Kind::Collection => {
                let req = page_request(&ctx, s, true)?;
                let page = app.store.page(&s.name, &req).await.or_respond()?;
                let next = next_link(&ctx, &format!("/{}", s.api_name()), page.offset.as_deref());
                Ok(ok(&page_body(page, next)))
            }
            Kind::Entity => {
                let key = key_for(s, self.param(&ctx, &s.name));
                let e = Self::select_required(app, s, &key).await?;
                Ok(ok(&Value::Object(e)))
            }
            Kind::ForeignEntity { field, foreign } => {
                let child = Self::select_param(&ctx, s).await?;
                let Some(id) = child.get(field).and_then(|v| v.get("id")).and_then(Value::as_str)
                else {
                    return Err(not_found());
                };
                let e = Self::select_required(app, foreign, &Key::Id(id.to_owned())).await?;
                Ok(ok(&Value::Object(e)))
            }
            Kind::NestedCollection { parent, field } => {
                let raw = self.param(&ctx, &parent.name);
                let p = Self::select_required(app, parent, &key_for(parent, raw)).await?;
                let mut req = page_request(&ctx, s, false)?;
                req.foreign =
                    Some((field.clone(), p["id"].as_str().unwrap_or_default().to_owned()));
                let page = app.store.page(&s.name, &req).await.or_respond()?;
                let next = page.offset.as_deref().map(|o| {
                    format!(
                        "/{}/{}/{}?offset={}",
                        parent.api_name(),
                        raw,
                        s.api_nested_name(),
                        escape_uri(o)
                    )
                });
                Ok(ok(&page_body(page, next)))
            }
            Kind::NestedEntity { parent, field } => {
                let p = Self::select_param(&ctx, parent).await?;
                let key = self.nested_key(&ctx, &p).await?;
                let child = Self::select_required(app, s, &key).await?;
                if !fk_matches(&child, field, &p) {
                    return Err(not_found());
                }
                Ok(ok(&Value::Object(child)))
            }
        }
    }

    pub(crate) async fn post(&self, ctx: Ctx) -> HResult<axum::response::Response> {
        let app = &ctx.app;
        let s = &self.schema;
        let mut args = ctx.input.post_args(Some(s))?;
        if let Kind::NestedCollection { parent, field } = &self.kind {
            let p = Self::select_param(&ctx, parent).await?;
            args.insert(field.clone(), pk_of(&p));
        }
        let e = app.store.insert(&s.name, args).await.or_respond()?;
        Ok(created(&Value::Object(e)))
    }

    pub(crate) async fn put(&self, ctx: Ctx) -> HResult<axum::response::Response> {
        let app = &ctx.app;
        let s = &self.schema;
        match &self.kind {
            Kind::Entity => {
                let key = key_for(s, self.param(&ctx, &s.name));
                let args = ctx.input.post_args(Some(s))?;
                let e = app.store.upsert(&s.name, &key, args).await.or_respond()?;
                Ok(ok(&Value::Object(e)))
            }
            Kind::ForeignEntity { field, foreign } => {
                let child = Self::select_param(&ctx, s).await?;
                let existing = child
                    .get(field)
                    .and_then(|v| v.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let (target, associate) = match existing {
                    Some(id) => (id, false),
                    None => (uuid::Uuid::new_v4().to_string(), true),
                };
                let args = ctx.input.post_args(Some(foreign))?;
                let e =
                    app.store.upsert(&foreign.name, &Key::Id(target), args).await.or_respond()?;
                if associate {
                    let mut link = Map::new();
                    link.insert(field.clone(), pk_of(&e));
                    let child_key = Key::Id(child["id"].as_str().unwrap_or_default().to_owned());
                    app.store.update(&s.name, &child_key, link).await.or_respond()?;
                }
                Ok(ok(&Value::Object(e)))
            }
            Kind::NestedEntity { parent, field } => {
                let p = Self::select_param(&ctx, parent).await?;
                let mut args = ctx.input.post_args(Some(s))?;
                args.insert(field.clone(), pk_of(&p));
                let key = key_for(s, self.param(&ctx, &s.name));
                let e = app.store.upsert(&s.name, &key, args).await.or_respond()?;
                Ok(ok(&Value::Object(e)))
            }
            Kind::Collection | Kind::NestedCollection { .. } => {
                Err(crate::http::method_not_allowed())
            }
        }
    }

    pub(crate) async fn patch(
        &self,
        ctx: Ctx,
        args: Option<Map<String, Value>>,
    ) -> HResult<axum::response::Response> {
        let app = &ctx.app;
        let s = &self.schema;
        match &self.kind {
            Kind::Entity => {
                let key = key_for(s, self.param(&ctx, &s.name));
                let args = match args {
                    Some(a) => a,
                    None => ctx.input.post_args(Some(s))?,
                };
                let e = app.store.update(&s.name, &key, args).await.or_respond()?;
                Ok(ok(&Value::Object(e)))
            }
            Kind::ForeignEntity { field, foreign } => {
                let child = Self::select_param(&ctx, s).await?;
                let Some(id) = child.get(field).and_then(|v| v.get("id")).and_then(Value::as_str)
                else {
                    return Err(not_found());
                };
                let args = ctx.input.post_args(Some(foreign))?;
                let e = app
                    .store
                    .update(&foreign.name, &Key::Id(id.to_owned()), args)
                    .await
                    .or_respond()?;
                Ok(ok(&Value::Object(e)))
            }
            Kind::NestedEntity { parent, field } => {
                let p = Self::select_param(&ctx, parent).await?;
                let mut args = match args {
                    Some(a) => a,
                    None => ctx.input.post_args(Some(s))?,
                };
                args.entry(field.clone()).or_insert_with(|| pk_of(&p));
                let key = self.nested_key(&ctx, &p).await?;
                let child = Self::select_required(app, s, &key).await?;
                if !fk_matches(&child, field, &p) {
                    return Err(not_found());
                }
                let e = app.store.update(&s.name, &key, args).await.or_respond()?;
                Ok(ok(&Value::Object(e)))
            }
            Kind::Collection | Kind::NestedCollection { .. } => {
                Err(crate::http::method_not_allowed())
            }
        }
    }

    pub(crate) async fn delete(&self, ctx: Ctx) -> HResult<axum::response::Response> {
        let app = &ctx.app;
        let s = &self.schema;
        match &self.kind {
            Kind::Entity => {
                let key = key_for(s, self.param(&ctx, &s.name));
                app.store.delete(&s.name, &key).await.or_respond()?;
                Ok(no_content())
            }
            Kind::ForeignEntity { field, .. } => {
                let child = Self::select_param(&ctx, s).await?;
                match child.get(field) {
                    Some(Value::Object(_)) => Err(crate::http::method_not_allowed()),
                    _ => Err(not_found()),
                }
            }
            Kind::NestedEntity { parent, field } => {
                let p = Self::select_param(&ctx, parent).await?;
                let key = self.nested_key(&ctx, &p).await?;
                let child = Self::select_required(app, s, &key).await?;
                if !fk_matches(&child, field, &p) {
                    return Err(not_found());
                }
                app.store.delete(&s.name, &key).await.or_respond()?;
                Ok(no_content())
            }
            Kind::Collection | Kind::NestedCollection { .. } => {
                Err(crate::http::method_not_allowed())
            }
        }
    }
}

/// The endpoints Kong generates for one schema: (path template, endpoint).
pub(crate) fn generate(
    schema: &Arc<Schema>,
    registry: &turnpike_core::entities::Registry,
) -> Vec<(String, Endpoint)> {
    let mut out = Vec::new();
    let n = schema.api_name();
    out.push((format!("/{n}"), Endpoint { schema: schema.clone(), kind: Kind::Collection }));
    out.push((
        format!("/{n}/{{{}}}", schema.name),
        Endpoint { schema: schema.clone(), kind: Kind::Entity },
    ));
    for (field, reference, _) in schema.foreign_fields() {
        let Some(foreign) = registry.get(reference) else { continue };
        out.push((
            format!("/{n}/{{{}}}/{field}", schema.name),
            Endpoint {
                schema: schema.clone(),
                kind: Kind::ForeignEntity { field: field.to_owned(), foreign: foreign.clone() },
            },
        ));
        out.push((
            format!("/{}/{{{}}}/{}", foreign.api_name(), foreign.name, schema.api_nested_name()),
            Endpoint {
                schema: schema.clone(),
                kind: Kind::NestedCollection { parent: foreign.clone(), field: field.to_owned() },
            },
        ));
        out.push((
            format!(
                "/{}/{{{}}}/{}/{{{}}}",
                foreign.api_name(),
                foreign.name,
                schema.api_nested_name(),
                schema.name
            ),
            Endpoint {
                schema: schema.clone(),
                kind: Kind::NestedEntity { parent: foreign.clone(), field: field.to_owned() },
            },
        ));
    }
    out
}
