//! `/config` in DB-less mode (`kong/api/routes/config.lua`): `POST` loads a whole
//! declarative configuration (JSON, YAML, form or multipart `config=…`), `GET` returns the
//! current one as YAML. The loading itself belongs to the node ([`Declarative`]); this module
//! is the HTTP side: bodies, options and Kong's responses.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use turnpike_core::declarative::DeclarativeError;

use crate::http::{json_response, message, BodyKind, HResult};
use crate::Ctx;

/// What a declarative configuration arrives as.
#[derive(Debug)]
pub enum DeclarativeInput {
    /// YAML or JSON text (its MD5 is the configuration hash).
    Text(Vec<u8>),
    /// A document already decoded (a JSON body holding `_format_version`).
    Document(Value),
}

/// The result of a load.
#[derive(Debug)]
pub enum Loaded {
    /// `check_hash` and the same configuration: nothing done.
    Unchanged,
    /// Loaded: the entities by type and id, as Kong's `POST /config` returns them (JSON,
    /// serialized by the loader, off the Admin API's threads).
    Entities(Vec<u8>),
}

/// Why a load failed.
#[derive(Debug)]
pub enum LoadError {
    /// Another load is in progress.
    Busy { retry_after: u64 },
    /// The configuration is invalid: nothing changed.
    Invalid(DeclarativeError),
    /// The node could not apply it.
    Failed(String),
}

/// A DB-less node's configuration: what `/config` and `/status` drive.
pub trait Declarative: Send + Sync {
    /// Validates and applies a whole configuration, atomically.
    fn load(
        &self,
        input: DeclarativeInput,
        check_hash: bool,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Loaded, LoadError>> + Send + '_>>;

    /// The hash of the configuration in service (32 zeros before any).
    fn hash(&self) -> String;

    /// The configuration in service, as a declarative YAML document.
    fn export(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + '_>>;
}

/// Kong's `truthy()` for `flatten_errors`.
fn truthy(v: Option<&str>) -> bool {
    matches!(v.map(str::to_ascii_lowercase).as_deref(), Some("true" | "1" | "on" | "yes"))
}

fn not_dbless() -> Response {
    message(
        StatusCode::BAD_REQUEST,
        "this endpoint is only available when Kong is configured to not use a database",
    )
}

/// The body of a configuration Kong refuses (`errors:declarative_config`).
pub fn invalid_body(e: &DeclarativeError) -> Value {
    let fields = match e {
        DeclarativeError::Invalid(tree) => tree.to_json(),
        DeclarativeError::Parse(p) => {
            json!({ "error": format!("failed parsing declarative configuration: {p}") })
        }
        DeclarativeError::NotATable => {
            json!({ "error": "failed parsing declarative configuration: expected an object" })
        }
    };
    let message = match e {
        DeclarativeError::Invalid(tree) => {
            format!("declarative config is invalid: {}", tree.pretty_inline())
        }
        other => {
            let inner = match other {
                DeclarativeError::Parse(p) => {
                    format!("failed parsing declarative configuration: {p}")
                }
                _ => "failed parsing declarative configuration: expected an object".to_owned(),
            };
            format!("declarative config is invalid: {{error=\"{inner}\"}}")
        }
    };
    json!({
        "code": 14,
        "name": "invalid declarative configuration",
        "message": message,
        "fields": fields,
    })
}

/// `flattened_errors` (`errors:declarative_config_flattened`): one entry per entity with
/// errors (nested ones included), naming it; what is flattened leaves `fields`. Errors filed
/// under a name rather than a position (references) cannot be matched to an entity and are
/// dropped, as Kong drops them.
fn flattened(
    e: &DeclarativeError,
    input: Option<&Value>,
    registry: &turnpike_core::entities::Registry,
) -> Value {
    let mut body = invalid_body(e);
    let DeclarativeError::Invalid(tree) = e else {
        // the document did not parse: nothing to flatten
        return body;
    };
    let Some(Value::Object(doc)) = input else {
        body["flattened_errors"] = json!({});
        return body;
    };
    // the child entities of an entity: those with a foreign key to it
    let is_child = |parent: &str, key: &str| {
        registry.get(key).is_some_and(|child| {
            let parent_name = registry.by_api_name(parent).map_or(parent, |p| p.name.as_str());
            child.foreign_fields().any(|(_, target, _)| target == parent_name)
        })
    };
    let mut list = Vec::new();
    let mut rest = Map::new();
    if let Value::Object(by_entity) = tree.to_json() {
        for (key, errs) in by_entity {
            match (doc.get(&key), errs) {
                (Some(Value::Array(items)), Value::Array(per_item)) => {
                    flatten_list(&key, items, &per_item, &is_child, &mut list);
                }
                // errors filed under a name (references) cannot be matched: dropped
                (Some(Value::Array(_)), Value::Object(_)) => {}
                // metadata errors, and errors of entities the file does not list at that
                // place (a nested entity's duplicate filed under its own type), stay
                (_, other) => {
                    rest.insert(key, other);
                }
            }
        }
    }
    let remaining = Value::Object(rest);
    body["message"] =
        json!(format!("declarative config is invalid: {}", tree_of(&remaining).pretty_inline()));
    body["fields"] = remaining;
    body["flattened_errors"] = if list.is_empty() { json!({}) } else { Value::Array(list) };
    body
}

/// An error table back from its JSON form (to print what is left of it as Kong does).
fn tree_of(v: &Value) -> turnpike_core::errors::ErrTree {
    use turnpike_core::errors::ErrTree;
    use turnpike_core::lua::LuaKey;
    match v {
        Value::Object(o) => {
            let mut t = ErrTree::table();
            for (k, v) in o {
                t.set(LuaKey::Str(k.clone()), tree_of(v));
            }
            t
        }
        Value::Array(items) => {
            let mut t = ErrTree::table();
            for (i, v) in items.iter().enumerate().filter(|(_, v)| !v.is_null()) {
                t.set(LuaKey::Int(i + 1), tree_of(v));
            }
            t
        }
        Value::String(s) => ErrTree::msg(s.clone()),
        other => ErrTree::msg(other.to_string()),
    }
}

/// Flattens the errors of one entity list (`per_item` is positional, like `items`).
fn flatten_list(
    entity: &str,
    items: &[Value],
    per_item: &[Value],
    is_child: &dyn Fn(&str, &str) -> bool,
    out: &mut Vec<Value>,
) {
    for (item, errs) in items.iter().zip(per_item) {
        let (Value::Object(obj), false) = (item, errs.is_null()) else { continue };
        let mut own = match errs {
            Value::Object(o) => o.clone(),
            Value::String(msg) => {
                let mut m = Map::new();
                m.insert("@entity".into(), json!([msg]));
                m
            }
            _ => continue,
        };
        // errors of nested children are their own entries
        let mut entity_view = obj.clone();
        for (k, v) in obj {
            if !is_child(entity, k) {
                continue;
            }
            if let (Value::Array(children), Some(Value::Array(child_errs))) = (v, own.get(k)) {
                let child_errs = child_errs.clone();
                flatten_list(k, children, &child_errs, is_child, out);
                own.remove(k);
            }
            entity_view.remove(k);
        }
        if own.is_empty() {
            continue;
        }
        let mut errors = Vec::new();
        collect_flat(&Value::Object(own), "", &mut errors);
        let mut entry = Map::new();
        entry.insert("entity_type".into(), json!(singular(entity)));
        for (field, key) in [("id", "entity_id"), ("name", "entity_name"), ("tags", "entity_tags")]
        {
            if let Some(v) = obj.get(field).filter(|v| !v.is_null()) {
                entry.insert(key.into(), v.clone());
            }
        }
        entry.insert("entity".into(), Value::Object(entity_view));
        entry.insert("errors".into(), Value::Array(errors));
        out.push(Value::Object(entry));
    }
}

/// Kong names entity types in flattened errors by their singular.
fn singular(entity: &str) -> String {
    match entity {
        "ca_certificates" => "ca_certificate".into(),
        "keyauth_credentials" => "keyauth_credential".into(),
        "basicauth_credentials" => "basicauth_credential".into(),
        "hmacauth_credentials" => "hmacauth_credential".into(),
        "jwt_secrets" => "jwt_secret".into(),
        other => other.strip_suffix('s').unwrap_or(other).to_owned(),
    }
}

fn collect_flat(err: &Value, prefix: &str, out: &mut Vec<Value>) {
    match err {
        Value::String(msg) => {
            if prefix.is_empty() {
                out.push(json!({ "type": "entity", "message": msg }));
            } else {
                out.push(json!({ "type": "field", "field": prefix, "message": msg }));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                if v.is_string() && prefix.is_empty() {
                    collect_flat(v, "", out);
                } else if v.is_string() {
                    collect_flat(v, prefix, out);
                } else if !v.is_null() {
                    collect_flat(v, &format!("{prefix}[{i}]"), out);
                }
            }
        }
        Value::Object(o) => {
            for (k, v) in o {
                if k == "@entity" {
                    if let Value::Array(msgs) = v {
                        for m in msgs {
                            collect_flat(m, "", out);
                        }
                    }
                    continue;
                }
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                collect_flat(v, &path, out);
            }
        }
        _ => {}
    }
}

/// What the request carries: a document, `config=<text>`, or the raw body.
fn input_of(ctx: &Ctx) -> Result<DeclarativeInput, Response> {
    let expected = || {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "message": "expected a declarative configuration" }),
        )
    };
    match &ctx.input.body {
        BodyKind::Json(Value::Object(o)) if o.contains_key("_format_version") => {
            let mut doc: Map<String, Value> = o.clone();
            doc.remove("flatten_errors");
            doc.remove("check_hash");
            Ok(DeclarativeInput::Document(Value::Object(doc)))
        }
        BodyKind::Json(Value::Object(o)) => match o.get("config") {
            Some(Value::String(text)) => Ok(DeclarativeInput::Text(text.as_bytes().to_vec())),
            _ if !ctx.input.raw.is_empty() => Ok(DeclarativeInput::Text(ctx.input.raw.to_vec())),
            _ => Err(expected()),
        },
        BodyKind::Form(pairs) => match pairs.iter().find(|(k, _)| k == "config") {
            Some((_, Value::String(text))) => Ok(DeclarativeInput::Text(text.as_bytes().to_vec())),
            _ if !ctx.input.raw.is_empty() => Ok(DeclarativeInput::Text(ctx.input.raw.to_vec())),
            _ => Err(expected()),
        },
        _ if !ctx.input.raw.is_empty() => Ok(DeclarativeInput::Text(ctx.input.raw.to_vec())),
        _ => Err(expected()),
    }
}

/// An option from the query string or the body (Kong reads both as `self.params`).
fn option(ctx: &Ctx, name: &str) -> Option<String> {
    if let Some(v) = ctx.input.query_arg(name) {
        return Some(v);
    }
    match &ctx.input.body {
        BodyKind::Json(Value::Object(o)) => o.get(name).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        BodyKind::Form(pairs) => {
            pairs.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_str().map(str::to_owned))
        }
        _ => None,
    }
}

pub(crate) async fn post(ctx: Ctx) -> HResult<Response> {
    let Some(dc) = ctx.app.declarative.clone() else { return Ok(not_dbless()) };
    let flatten_errors = truthy(option(&ctx, "flatten_errors").as_deref());
    let check_hash = option(&ctx, "check_hash").as_deref() == Some("1");
    let input = match input_of(&ctx) {
        Ok(i) => i,
        Err(r) => return Ok(r),
    };
    let doc_for_errors = match (&input, flatten_errors) {
        (DeclarativeInput::Document(v), true) => Some(v.clone()),
        (DeclarativeInput::Text(t), true) => {
            turnpike_core::declarative::parse::parse(t, &Default::default()).ok()
        }
        _ => None,
    };
    Ok(match dc.load(input, check_hash).await {
        Ok(Loaded::Unchanged) => StatusCode::NOT_MODIFIED.into_response(),
        Ok(Loaded::Entities(body)) => {
            let mut r = (StatusCode::CREATED, body).into_response();
            r.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            r
        }
        Err(LoadError::Busy { retry_after }) => {
            let mut r =
                message(StatusCode::TOO_MANY_REQUESTS, "Currently loading previous configuration");
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                r.headers_mut().insert("retry-after", v);
            }
            r
        }
        Err(LoadError::Invalid(e)) => {
            let body = if flatten_errors {
                flattened(&e, doc_for_errors.as_ref(), ctx.app.store.registry())
            } else {
                invalid_body(&e)
            };
            json_response(StatusCode::BAD_REQUEST, &body)
        }
        Err(LoadError::Failed(e)) => {
            tracing::error!(error = %e, "declarative configuration not loaded");
            message(StatusCode::INTERNAL_SERVER_ERROR, "An unexpected error occurred")
        }
    })
}

pub(crate) async fn get(ctx: Ctx) -> HResult<Response> {
    let Some(dc) = ctx.app.declarative.clone() else { return Ok(not_dbless()) };
    Ok(match dc.export().await {
        Ok(yaml) => json_response(StatusCode::OK, &json!({ "config": yaml })),
        Err(e) => {
            tracing::error!(error = %e, "failed exporting config");
            message(StatusCode::INTERNAL_SERVER_ERROR, "An unexpected error occurred")
        }
    })
}

/// The configuration hash `/status` reports in DB-less mode.
pub(crate) fn hash_of(app: &crate::App) -> Option<String> {
    app.declarative.as_ref().map(|d| d.hash())
}
