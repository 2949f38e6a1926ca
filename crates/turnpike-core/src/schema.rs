//! A port of Kong's schema library (`kong/db/schema/init.lua`).
//!
//! Entities are JSON objects validated against a [`Schema`]: typed fields with defaults and
//! validators, entity checks across fields, shorthand (write-only) fields, subschemas (route
//! protocols, plugin names) and write transformations. The behaviour (and every message) follows
//! Kong's, so that the Admin API answers invalid input exactly as Kong does:
//!
//! * [`Schema::process_auto_fields`] fills ids, timestamps and defaults (insert/update/upsert)
//!   and shapes output (select, with every field present),
//! * [`Schema::validate`] checks an entity and returns an [`ErrTree`] of Kong's messages,
//! * [`Schema::merge_values`] merges a partial update into the stored entity,
//! * [`Schema::to_json`] renders the schema for `GET /schemas/{entity}`.
//!
//! This module knows nothing about storage or HTTP.

mod auto;
mod json;
mod validate;

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::lua::LuaPattern;

pub use auto::{AutoOptions, Context};
pub use validate::validate_field;

/// An entity or record value: a JSON object.
pub type Entity = Map<String, Value>;

/// A custom field validator: `Ok(())` or Kong's error message.
pub type CustomValidator = fn(&Value) -> Result<(), String>;

/// A custom entity check over the projected entity.
pub type CustomCheck = fn(&Entity) -> Result<(), String>;

/// A shorthand expansion: the value given for the shorthand field becomes these fields.
pub type ShorthandFn = fn(&Value) -> Option<Entity>;

/// A transformation's `on_write`/`on_read` function, given the values of its input fields.
pub type TransformFn = fn(&[&Value]) -> Result<Entity, String>;

/// The type of a field.
#[derive(Clone, Debug)]
pub enum Type {
    String,
    Number,
    Integer,
    Boolean,
    Array(Box<Field>),
    Set(Box<Field>),
    Map(Box<Field>, Box<Field>),
    Record(Box<Schema>),
    /// A reference to another entity by primary key (`{ "id": … }`).
    Foreign(&'static str),
    /// Free-form JSON (not validated beyond being present).
    Json,
}

impl Type {
    pub fn name(&self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Number => "number",
            Type::Integer => "integer",
            Type::Boolean => "boolean",
            Type::Array(_) => "array",
            Type::Set(_) => "set",
            Type::Map(..) => "map",
            Type::Record(_) => "record",
            Type::Foreign(_) => "foreign",
            Type::Json => "json",
        }
    }
}

/// What happens to a referencing entity when its foreign entity is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDelete {
    Cascade,
    Restrict,
}

/// A named custom validator (the function is not shown in schema output, like Kong's).
#[derive(Clone, Copy)]
pub struct Custom(pub CustomValidator);

impl fmt::Debug for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<custom_validator>")
    }
}

/// Field validators, applied in Kong's order (`Schema.validators_order`).
#[derive(Clone, Debug, Default)]
pub struct Validators {
    pub eq: Option<Value>,
    pub ne: Option<Value>,
    pub not_one_of: Option<Vec<Value>>,
    pub one_of: Option<Vec<Value>>,
    pub gt: Option<f64>,
    pub timestamp: bool,
    pub uuid: bool,
    pub is_regex: bool,
    pub between: Option<(f64, f64)>,
    pub len_eq: Option<usize>,
    pub len_min: Option<usize>,
    pub len_max: Option<usize>,
    pub starts_with: Option<String>,
    pub not_match: Option<LuaPattern>,
    pub match_none: Vec<(LuaPattern, String)>,
    pub match_: Option<LuaPattern>,
    pub match_all: Vec<(LuaPattern, String)>,
    pub match_any: Option<(Vec<LuaPattern>, String)>,
    pub contains: Option<Value>,
    pub custom: Option<Custom>,
    pub mutually_exclusive_subsets: Option<Vec<Vec<String>>>,
}

/// A field definition.
#[derive(Clone, Debug)]
pub struct Field {
    pub ty: Type,
    pub required: bool,
    /// `required = false` written out in Kong's schema (and so printed by `/schemas`).
    pub explicit_optional: bool,
    pub default: Option<Value>,
    pub auto: bool,
    pub unique: bool,
    pub unique_across_ws: bool,
    pub immutable: bool,
    pub is_abstract: bool,
    pub transient: bool,
    pub referenceable: bool,
    pub encrypted: bool,
    pub description: Option<&'static str>,
    /// Replaces any validator's message.
    pub err: Option<String>,
    pub on_delete: Option<OnDelete>,
    pub v: Validators,
}

impl Field {
    pub fn new(ty: Type) -> Self {
        Self {
            ty,
            required: false,
            explicit_optional: false,
            default: None,
            auto: false,
            unique: false,
            unique_across_ws: false,
            immutable: false,
            is_abstract: false,
            transient: false,
            referenceable: false,
            encrypted: false,
            description: None,
            err: None,
            on_delete: None,
            v: Validators::default(),
        }
    }

    pub fn string() -> Self {
        Self::new(Type::String)
    }
    pub fn integer() -> Self {
        Self::new(Type::Integer)
    }
    pub fn number() -> Self {
        Self::new(Type::Number)
    }
    pub fn boolean() -> Self {
        Self::new(Type::Boolean)
    }
    pub fn json() -> Self {
        Self::new(Type::Json)
    }
    pub fn array(elements: Field) -> Self {
        Self::new(Type::Array(Box::new(elements)))
    }
    pub fn set(elements: Field) -> Self {
        Self::new(Type::Set(Box::new(elements)))
    }
    pub fn map(keys: Field, values: Field) -> Self {
        Self::new(Type::Map(Box::new(keys), Box::new(values)))
    }
    pub fn record(schema: Schema) -> Self {
        Self::new(Type::Record(Box::new(schema)))
    }
    pub fn foreign(reference: &'static str) -> Self {
        Self::new(Type::Foreign(reference))
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// `required = false`, stated explicitly (Kong prints it in `/schemas`).
    pub fn optional(mut self) -> Self {
        self.required = false;
        self.explicit_optional = true;
        self
    }
    pub fn default(mut self, v: Value) -> Self {
        self.default = Some(v);
        self
    }
    pub fn no_default(mut self) -> Self {
        self.default = None;
        self
    }
    pub fn auto(mut self) -> Self {
        self.auto = true;
        self
    }
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    pub fn unique_across_ws(mut self) -> Self {
        self.unique_across_ws = true;
        self
    }
    pub fn immutable(mut self) -> Self {
        self.immutable = true;
        self
    }
    pub fn abstract_(mut self) -> Self {
        self.is_abstract = true;
        self
    }
    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }
    pub fn referenceable(mut self) -> Self {
        self.referenceable = true;
        self
    }
    pub fn encrypted(mut self) -> Self {
        self.encrypted = true;
        self
    }
    pub fn description(mut self, d: &'static str) -> Self {
        self.description = Some(d);
        self
    }
    pub fn err(mut self, e: impl Into<String>) -> Self {
        self.err = Some(e.into());
        self
    }
    pub fn on_delete(mut self, o: OnDelete) -> Self {
        self.on_delete = Some(o);
        self
    }
    pub fn eq(mut self, v: Value) -> Self {
        self.v.eq = Some(v);
        self
    }
    /// `eq = null`: the field must not be set.
    pub fn eq_null(self) -> Self {
        self.eq(Value::Null)
    }
    pub fn ne(mut self, v: Value) -> Self {
        self.v.ne = Some(v);
        self
    }
    pub fn gt(mut self, n: f64) -> Self {
        self.v.gt = Some(n);
        self
    }
    pub fn between(mut self, lo: f64, hi: f64) -> Self {
        self.v.between = Some((lo, hi));
        self
    }
    pub fn one_of<I, V>(mut self, items: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        self.v.one_of = Some(items.into_iter().map(Into::into).collect());
        self
    }
    pub fn not_one_of<I, V>(mut self, items: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        self.v.not_one_of = Some(items.into_iter().map(Into::into).collect());
        self
    }
    pub fn len_eq(mut self, n: usize) -> Self {
        self.v.len_eq = Some(n);
        self
    }
    pub fn len_min(mut self, n: usize) -> Self {
        self.v.len_min = Some(n);
        self
    }
    pub fn len_max(mut self, n: usize) -> Self {
        self.v.len_max = Some(n);
        self
    }
    pub fn starts_with(mut self, s: &str) -> Self {
        self.v.starts_with = Some(s.to_owned());
        self
    }
    pub fn matches(mut self, pattern: &'static str) -> Self {
        self.v.match_ = Some(LuaPattern::new(pattern));
        self
    }
    pub fn not_match(mut self, pattern: &'static str) -> Self {
        self.v.not_match = Some(LuaPattern::new(pattern));
        self
    }
    pub fn match_none(mut self, pattern: &'static str, err: &str) -> Self {
        self.v.match_none.push((LuaPattern::new(pattern), err.to_owned()));
        self
    }
    pub fn match_all(mut self, pattern: &'static str, err: &str) -> Self {
        self.v.match_all.push((LuaPattern::new(pattern), err.to_owned()));
        self
    }
    pub fn match_any(mut self, patterns: &[&'static str], err: &str) -> Self {
        self.v.match_any =
            Some((patterns.iter().map(|p| LuaPattern::new(*p)).collect(), err.to_owned()));
        self
    }
    pub fn uuid(mut self) -> Self {
        self.v.uuid = true;
        self
    }
    pub fn timestamp(mut self) -> Self {
        self.v.timestamp = true;
        self
    }
    pub fn is_regex(mut self) -> Self {
        self.v.is_regex = true;
        self
    }
    pub fn contains(mut self, v: Value) -> Self {
        self.v.contains = Some(v);
        self
    }
    pub fn custom(mut self, f: CustomValidator) -> Self {
        self.v.custom = Some(Custom(f));
        self
    }
    pub fn mutually_exclusive_subsets(mut self, sets: &[&[&str]]) -> Self {
        self.v.mutually_exclusive_subsets =
            Some(sets.iter().map(|s| s.iter().map(|x| (*x).to_owned()).collect()).collect());
        self
    }

    /// The element definition of an array or set.
    pub fn elements(&self) -> Option<&Field> {
        match &self.ty {
            Type::Array(e) | Type::Set(e) => Some(e),
            _ => None,
        }
    }

    /// The record schema of a record field.
    pub fn record_schema(&self) -> Option<&Schema> {
        match &self.ty {
            Type::Record(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_foreign(&self) -> bool {
        matches!(self.ty, Type::Foreign(_))
    }
}

/// A partial field definition used by conditional entity checks (`if_match`/`then_match`):
/// it overrides the schema's field definition for one validation.
#[derive(Clone, Debug, Default)]
pub struct FieldMatch {
    pub required: Option<bool>,
    pub elements: Option<Box<Field>>,
    pub v: Validators,
}

impl FieldMatch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn required(mut self) -> Self {
        self.required = Some(true);
        self
    }
    pub fn elements(mut self, f: Field) -> Self {
        self.elements = Some(Box::new(f));
        self
    }
    pub fn eq(mut self, v: Value) -> Self {
        self.v.eq = Some(v);
        self
    }
    pub fn eq_null(self) -> Self {
        self.eq(Value::Null)
    }
    pub fn one_of<I, V>(mut self, items: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        self.v.one_of = Some(items.into_iter().map(Into::into).collect());
        self
    }
    pub fn not_one_of<I, V>(mut self, items: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        self.v.not_one_of = Some(items.into_iter().map(Into::into).collect());
        self
    }
    pub fn matches(mut self, pattern: &'static str) -> Self {
        self.v.match_ = Some(LuaPattern::new(pattern));
        self
    }
    pub fn contains(mut self, v: Value) -> Self {
        self.v.contains = Some(v);
        self
    }
    pub fn len_eq(mut self, n: usize) -> Self {
        self.v.len_eq = Some(n);
        self
    }
    pub fn gt(mut self, n: f64) -> Self {
        self.v.gt = Some(n);
        self
    }

    /// Applies the overrides to a copy of `base` (Lua's `__index` fallback to the schema field).
    pub fn apply(&self, base: Option<&Field>) -> Field {
        let mut f = base.cloned().unwrap_or_else(|| Field::new(Type::Json));
        if let Some(r) = self.required {
            f.required = r;
        }
        if let Some(e) = &self.elements {
            match &mut f.ty {
                Type::Array(el) | Type::Set(el) => *el = e.clone(),
                _ => f.ty = Type::Array(e.clone()),
            }
        }
        let p = &self.v;
        let v = &mut f.v;
        macro_rules! take {
            ($($name:ident),*) => { $( if p.$name.is_some() { v.$name = p.$name.clone(); } )* };
        }
        take!(
            eq,
            ne,
            not_one_of,
            one_of,
            gt,
            between,
            len_eq,
            len_min,
            len_max,
            starts_with,
            not_match,
            match_,
            match_any,
            contains,
            custom,
            mutually_exclusive_subsets
        );
        if !p.match_none.is_empty() {
            v.match_none = p.match_none.clone();
        }
        if !p.match_all.is_empty() {
            v.match_all = p.match_all.clone();
        }
        v.uuid |= p.uuid;
        v.timestamp |= p.timestamp;
        v.is_regex |= p.is_regex;
        f
    }
}

/// Cross-field validation rules (`Schema.entity_checkers`).
#[derive(Clone, Debug)]
pub enum EntityCheck {
    AtLeastOneOf(Vec<String>),
    OnlyOneOf(Vec<String>),
    Distinct(Vec<String>),
    MutuallyRequired(Vec<String>),
    MutuallyExclusive(Vec<String>),
    MutuallyExclusiveSets {
        set1: Vec<String>,
        set2: Vec<String>,
    },
    Conditional {
        if_field: String,
        if_match: FieldMatch,
        then_field: String,
        then_match: FieldMatch,
        then_err: Option<String>,
    },
    ConditionalAtLeastOneOf {
        if_field: String,
        if_match: FieldMatch,
        then_at_least_one_of: Vec<String>,
        then_err: Option<String>,
        else_match: Option<FieldMatch>,
        else_then_at_least_one_of: Vec<String>,
        else_then_err: Option<String>,
    },
    Custom {
        field_sources: Vec<String>,
        run_with_missing_fields: bool,
        check: CustomCheckFn,
    },
}

/// Wrapper so that checks can derive `Debug`.
#[derive(Clone, Copy)]
pub struct CustomCheckFn(pub CustomCheck);

impl fmt::Debug for CustomCheckFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<fn>")
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

impl EntityCheck {
    pub fn at_least_one_of(names: &[&str]) -> Self {
        EntityCheck::AtLeastOneOf(strings(names))
    }
    pub fn only_one_of(names: &[&str]) -> Self {
        EntityCheck::OnlyOneOf(strings(names))
    }
    pub fn distinct(names: &[&str]) -> Self {
        EntityCheck::Distinct(strings(names))
    }
    pub fn mutually_required(names: &[&str]) -> Self {
        EntityCheck::MutuallyRequired(strings(names))
    }
    pub fn mutually_exclusive(names: &[&str]) -> Self {
        EntityCheck::MutuallyExclusive(strings(names))
    }
    pub fn conditional(
        if_field: &str,
        if_match: FieldMatch,
        then_field: &str,
        then_match: FieldMatch,
    ) -> Self {
        EntityCheck::Conditional {
            if_field: if_field.to_owned(),
            if_match,
            then_field: then_field.to_owned(),
            then_match,
            then_err: None,
        }
    }
    pub fn custom(field_sources: &[&str], check: CustomCheck) -> Self {
        EntityCheck::Custom {
            field_sources: strings(field_sources),
            run_with_missing_fields: false,
            check: CustomCheckFn(check),
        }
    }
    /// Adds a custom error to a conditional check.
    pub fn with_then_err(mut self, err: &str) -> Self {
        if let EntityCheck::Conditional { then_err, .. } = &mut self {
            *then_err = Some(err.to_owned());
        }
        self
    }
}

/// How a deprecated shorthand maps back onto the field that replaced it (shown on read).
#[derive(Clone, Debug)]
pub struct Deprecation {
    pub message: &'static str,
    pub removal_in_version: &'static str,
    /// Paths of the fields that replace the shorthand; the first is echoed back on read.
    pub replaced_with: Vec<Vec<&'static str>>,
}

/// A write-only field expanded into real fields (`url` on services, `redis_host` on plugins).
#[derive(Clone)]
pub struct Shorthand {
    pub field: Field,
    pub func: ShorthandFn,
    pub deprecation: Option<Deprecation>,
}

impl fmt::Debug for Shorthand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shorthand").field("field", &self.field).finish()
    }
}

/// A value transformation applied on write (e.g. `cert_digest` computed from `cert`).
#[derive(Clone)]
pub struct Transformation {
    pub input: Vec<&'static str>,
    pub needs: Vec<&'static str>,
    pub on_write: Option<TransformFn>,
    pub on_read: Option<TransformFn>,
}

impl fmt::Debug for Transformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transformation").field("input", &self.input).finish()
    }
}

/// An entity (or record) schema.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    pub name: String,
    pub table_name: Option<&'static str>,
    pub admin_api_name: Option<&'static str>,
    pub admin_api_nested_name: Option<&'static str>,
    pub primary_key: Vec<&'static str>,
    pub endpoint_key: Option<&'static str>,
    pub cache_key: Option<Vec<&'static str>>,
    pub workspaceable: bool,
    pub ttl: bool,
    pub generate_admin_api: bool,
    pub db_export: bool,
    pub fields: IndexMap<String, Field>,
    pub entity_checks: Vec<EntityCheck>,
    pub shorthand_fields: Vec<(String, Shorthand)>,
    pub subschema_key: Option<&'static str>,
    pub subschema_error: Option<&'static str>,
    pub subschemas: IndexMap<String, Arc<Schema>>,
    pub transformations: Vec<Transformation>,
}

impl Schema {
    /// An entity schema with Kong's defaults (`id` primary key, Admin API generated).
    pub fn entity(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            primary_key: vec!["id"],
            generate_admin_api: true,
            db_export: true,
            ..Self::default()
        }
    }

    /// A record (nested) schema.
    pub fn record() -> Self {
        Self::default()
    }

    pub fn field(mut self, name: &str, field: Field) -> Self {
        self.fields.insert(name.to_owned(), field);
        self
    }

    pub fn check(mut self, check: EntityCheck) -> Self {
        self.entity_checks.push(check);
        self
    }

    pub fn shorthand(mut self, name: &str, shorthand: Shorthand) -> Self {
        self.shorthand_fields.push((name.to_owned(), shorthand));
        self
    }

    pub fn transformation(mut self, t: Transformation) -> Self {
        self.transformations.push(t);
        self
    }

    /// The name used in Admin API paths (`key-auths`, `services`).
    pub fn api_name(&self) -> &str {
        self.admin_api_name.unwrap_or(&self.name)
    }

    /// The name used for nested collections (`/consumers/{c}/key-auth`).
    pub fn api_nested_name(&self) -> &str {
        self.admin_api_nested_name.or(self.admin_api_name).unwrap_or(&self.name)
    }

    /// The SQL table name.
    pub fn table(&self) -> &str {
        self.table_name.unwrap_or(&self.name)
    }

    /// The subschema selected by the entity's subschema key (first matching protocol for
    /// routes, the plugin name for plugins).
    pub fn subschema_for(&self, input: &Entity) -> Option<&Arc<Schema>> {
        let key = self.subschema_key?;
        match input.get(key)? {
            Value::String(s) => self.subschemas.get(s.as_str()),
            Value::Array(items) => {
                items.iter().filter_map(Value::as_str).find_map(|s| self.subschemas.get(s))
            }
            _ => None,
        }
    }

    /// The definition of `name`, specialised by `subschema` when it overrides it.
    pub fn resolve_field<'a>(
        &'a self,
        name: &str,
        subschema: Option<&'a Schema>,
    ) -> Option<&'a Field> {
        let base = self.fields.get(name)?;
        Some(subschema.and_then(|s| s.fields.get(name)).unwrap_or(base))
    }

    /// Fields in schema order, specialised by the subschema selected for `values`.
    pub fn each_field<'a>(
        &'a self,
        values: Option<&Entity>,
    ) -> impl Iterator<Item = (&'a str, &'a Field)> + 'a {
        let sub = values.and_then(|v| self.subschema_for(v)).map(|s| &**s);
        self.fields.iter().map(move |(k, f)| {
            let f = sub.and_then(|s| s.fields.get(k)).unwrap_or(f);
            (k.as_str(), f)
        })
    }

    /// Foreign-key fields: (field name, referenced entity, on-delete rule).
    pub fn foreign_fields(&self) -> impl Iterator<Item = (&str, &'static str, OnDelete)> + '_ {
        self.fields.iter().filter_map(|(k, f)| match f.ty {
            Type::Foreign(r) => Some((k.as_str(), r, f.on_delete.unwrap_or(OnDelete::Restrict))),
            _ => None,
        })
    }

    /// Fields with a unique constraint.
    pub fn unique_fields(&self) -> impl Iterator<Item = (&str, &Field)> + '_ {
        self.fields.iter().filter(|(_, f)| f.unique).map(|(k, f)| (k.as_str(), f))
    }

    /// The cache key is stored in its own unique column when it spans several fields.
    pub fn has_composite_cache_key(&self) -> bool {
        self.cache_key.as_ref().is_some_and(|c| c.len() > 1)
    }
}

/// Returns `true` unless the value is absent, null, an empty string or an empty table.
pub fn is_nonempty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// `get_field(tbl, "a.b.c")`.
pub fn get_path<'a>(entity: &'a Entity, path: &str) -> Option<&'a Value> {
    match path.split_once('.') {
        None => entity.get(path),
        Some((head, tail)) => match entity.get(head)? {
            Value::Object(o) => get_path(o, tail),
            _ => None,
        },
    }
}

/// `set_field(tbl, "a.b.c", v)`.
pub fn set_path(entity: &mut Entity, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            entity.insert(path.to_owned(), value);
        }
        Some((head, tail)) => {
            let sub = entity.entry(head.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if !sub.is_object() {
                *sub = Value::Object(Map::new());
            }
            if let Value::Object(o) = sub {
                set_path(o, tail, value);
            }
        }
    }
}
