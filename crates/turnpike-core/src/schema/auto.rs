//! `Schema:process_auto_fields`, `Schema:merge_values` and `Schema:transform`.

use serde_json::{Map, Value};

use super::validate::validate_field;
use super::{get_path, is_nonempty, Entity, Field, Schema, Type};
use crate::errors::ErrTree;
use crate::time;

/// The CRUD context of `process_auto_fields`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    Insert,
    Update,
    Upsert,
    /// Shaping a stored entity for output.
    Select,
}

/// Options of `process_auto_fields`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AutoOptions {
    /// Output unset fields as explicit nulls (the Admin API does).
    pub nulls: bool,
    /// Do not echo deprecated shorthands back on read.
    pub hide_shorthands: bool,
    /// Do not fill defaults for missing fields.
    pub no_defaults: bool,
}

fn handle_missing_field(field: &Field, opts: AutoOptions) -> Option<Value> {
    if let Some(d) = &field.default {
        if !opts.no_defaults {
            return Some(d.clone());
        }
    }
    if !field.required {
        return Some(Value::Null);
    }
    if field.is_abstract {
        return None;
    }
    if let Type::Record(schema) = &field.ty {
        return schema
            .process_auto_fields_opts(&Entity::new(), Context::Insert, AutoOptions::default())
            .ok()
            .map(Value::Object);
    }
    None
}

/// Kong's `make_set`: duplicates are dropped by Lua equality, so tables (records) are always
/// distinct while strings, numbers and booleans are compared by value.
fn dedupe_set(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for item in items {
        let primitive = !matches!(item, Value::Array(_) | Value::Object(_));
        if !(primitive && out.contains(&item)) {
            out.push(item);
        }
    }
    out
}

fn adjust_field_for_context(
    field: &Field,
    value: Option<Value>,
    context: Context,
    opts: AutoOptions,
) -> Result<Option<Value>, ErrTree> {
    if context == Context::Select && value == Some(Value::Null) && field.required {
        return Ok(handle_missing_field(field, opts));
    }
    if field.is_abstract {
        return Ok(value);
    }
    let mut value = value;
    match &field.ty {
        Type::Record(schema) => {
            let recurse = match context {
                Context::Update => !matches!(value, None | Some(Value::Null)),
                _ => value != Some(Value::Null) && (value.is_some() || field.required),
            };
            if recurse {
                if value.is_none() {
                    value = handle_missing_field(field, opts);
                }
                let as_table = match &value {
                    Some(Value::Object(o)) => Some(o.clone()),
                    Some(Value::Array(a)) if a.is_empty() => Some(Map::new()),
                    _ => None,
                };
                if let Some(o) = as_table {
                    return schema
                        .process_auto_fields_opts(&o, context, opts)
                        .map(|e| Some(Value::Object(e)));
                }
            }
        }
        Type::Array(el) | Type::Set(el) => {
            let is_set = matches!(field.ty, Type::Set(_));
            match value.take() {
                Some(Value::Array(items)) => {
                    let items = if is_set { dedupe_set(items) } else { items };
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        match adjust_field_for_context(el, Some(item), context, opts)? {
                            Some(v) => out.push(v),
                            None => out.push(Value::Null),
                        }
                    }
                    value = Some(Value::Array(out));
                }
                // `{}` decodes to an empty Lua table, which is a valid empty array.
                Some(Value::Object(o)) if o.is_empty() => value = Some(Value::Array(Vec::new())),
                other => value = other,
            }
        }
        Type::Map(_, values) => {
            if let Some(Value::Object(o)) = value {
                let mut out = Map::new();
                for (k, v) in o {
                    let v = adjust_field_for_context(values, Some(v), context, opts)?;
                    out.insert(k, v.unwrap_or(Value::Null));
                }
                value = Some(Value::Object(out));
            }
        }
        _ => {}
    }
    if value.is_none() && context != Context::Update {
        return Ok(handle_missing_field(field, opts));
    }
    Ok(value)
}

/// Kong's `table_merge`: a shallow merge of `b` over `a`.
fn table_merge(a: &Map<String, Value>, b: &Map<String, Value>) -> Map<String, Value> {
    let mut out = a.clone();
    for (k, v) in b {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// Kong's `null_aware_table_merge`: `b` fills keys of `a` that are absent or null.
fn null_aware_table_merge(a: &Map<String, Value>, b: &Map<String, Value>) -> Map<String, Value> {
    let mut out = a.clone();
    for (k, v) in b {
        if matches!(out.get(k), None | Some(Value::Null)) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn table_path(data: &Entity, path: &[&str]) -> Option<Value> {
    let mut cur: &Value = data.get(*path.first()?)?;
    for p in &path[1..] {
        cur = cur.as_object()?.get(*p)?;
    }
    Some(cur.clone())
}

impl Schema {
    /// `process_auto_fields(data, context)` without nulls in the output.
    pub fn process_auto_fields(
        &self,
        data: &Entity,
        context: Context,
        nulls: bool,
    ) -> Result<Entity, ErrTree> {
        self.process_auto_fields_opts(data, context, AutoOptions { nulls, ..Default::default() })
    }

    /// Fills auto fields (ids, timestamps) and defaults, expands shorthands, and on `Select`
    /// shapes an entity for output.
    pub fn process_auto_fields_opts(
        &self,
        data: &Entity,
        context: Context,
        opts: AutoOptions,
    ) -> Result<Entity, ErrTree> {
        let is_select = context == Context::Select;
        let mut data = data.clone();

        if !self.shorthand_fields.is_empty() {
            let mut errs = ErrTree::table();
            for (sname, sdata) in &self.shorthand_fields {
                if let Some(value) = data.get(sname).cloned() {
                    if let Err(e) = validate_field(&sdata.field, Some(&value)) {
                        errs.set(sname.as_str(), e);
                    } else if let Some(msg) = deprecation_mismatch(&data, &value, sname, sdata) {
                        errs.set(sname.as_str(), ErrTree::msg(msg));
                    } else {
                        data.remove(sname);
                        if let Some(new_values) = (sdata.func)(&value) {
                            let deprecated = sdata.deprecation.is_some();
                            for (k, v) in new_values {
                                if let Value::Object(vt) = &v {
                                    let source = match data.get(&k) {
                                        Some(Value::Object(o)) => o.clone(),
                                        _ => Map::new(),
                                    };
                                    let merged = if deprecated {
                                        null_aware_table_merge(vt, &source)
                                    } else {
                                        table_merge(&source, vt)
                                    };
                                    data.insert(k, Value::Object(merged));
                                } else if !deprecated
                                    || matches!(data.get(&k), None | Some(Value::Null))
                                {
                                    data.insert(k, v);
                                }
                            }
                        }
                    }
                }
                if is_select && !opts.hide_shorthands {
                    if let Some(dep) = &sdata.deprecation {
                        if let Some(path) = dep.replaced_with.first() {
                            let v = table_path(&data, path).unwrap_or(Value::Null);
                            data.insert(sname.clone(), v);
                        }
                    }
                }
            }
            if !errs.is_empty() {
                return Err(errs);
            }
        }

        let now_s = || Value::from(time::now_s());
        let now_ms = || Value::from(time::now_ms());
        // borrowed from the schema, not cloned: this runs for every row read
        let fields: Vec<(&str, &Field)> = self.each_field(Some(&data)).collect();
        for (key, field) in fields {
            let mut value = data.get(key).cloned();
            if !is_select && field.auto {
                let insertish = matches!(context, Context::Insert | Context::Upsert);
                if field.v.uuid {
                    if insertish && value.is_none() {
                        value = Some(Value::String(uuid::Uuid::new_v4().to_string()));
                    }
                } else if matches!(field.ty, Type::String) {
                    if insertish && value.is_none() {
                        value = Some(Value::String(crate::random::random_string()));
                    }
                } else if (key == "created_at"
                    && insertish
                    && matches!(value, None | Some(Value::Null)))
                    || (key == "updated_at" && (insertish || context == Context::Update))
                {
                    match field.ty {
                        Type::Number => value = Some(now_ms()),
                        Type::Integer => value = Some(now_s()),
                        _ => {}
                    }
                }
            }
            let mut value = adjust_field_for_context(field, value, context, opts)?;
            if is_select {
                match &value {
                    Some(Value::Null) if !opts.nulls => value = None,
                    Some(Value::Number(n)) if matches!(field.ty, Type::Integer) => {
                        if let (None, Some(f)) = (n.as_i64(), n.as_f64()) {
                            value = Some(Value::from(f.floor() as i64));
                        }
                    }
                    _ => {}
                }
            }
            match value {
                Some(v) => {
                    data.insert(key.to_owned(), v);
                }
                None => {
                    data.remove(key);
                }
            }
        }

        if !is_select {
            return Ok(data);
        }

        if self.ttl && data.get("ttl") == Some(&Value::Null) && !opts.nulls {
            data.remove("ttl");
        }
        let keys: Vec<String> = data.keys().cloned().collect();
        for key in keys {
            match self.fields.get(&key) {
                Some(field) => {
                    let len_min = field.v.len_min.unwrap_or(1);
                    if matches!(field.ty, Type::String)
                        && len_min > 0
                        && data.get(&key) == Some(&Value::String(String::new()))
                    {
                        if opts.nulls {
                            data.insert(key, Value::Null);
                        } else {
                            data.remove(&key);
                        }
                    }
                }
                None => {
                    if key == "ttl" && self.ttl {
                        continue;
                    }
                    let shown = !opts.hide_shorthands
                        && self
                            .shorthand_fields
                            .iter()
                            .any(|(n, s)| *n == key && s.deprecation.is_some());
                    if !shown {
                        data.remove(&key);
                    }
                }
            }
        }
        // Keep output in schema field order, with surviving shorthands after.
        let mut ordered = Map::new();
        for (k, _) in self.fields.iter() {
            if let Some(v) = data.remove(k) {
                ordered.insert(k.clone(), v);
            }
        }
        for (k, v) in data {
            ordered.insert(k, v);
        }
        Ok(ordered)
    }

    /// Schema-aware deep merge: records are merged field by field, other values replaced.
    pub fn merge_values(&self, top: &Entity, bottom: &Entity) -> Entity {
        let mut output = bottom.clone();
        for (k, v) in top {
            output.insert(k.clone(), v.clone());
        }
        let fields: Vec<(String, Field)> =
            self.each_field(Some(bottom)).map(|(k, f)| (k.to_owned(), f.clone())).collect();
        for (key, field) in fields {
            match top.get(&key) {
                None => {
                    if let Some(b) = bottom.get(&key) {
                        output.insert(key, b.clone());
                    }
                }
                Some(top_v) => {
                    if let (Type::Record(schema), Value::Object(t)) = (&field.ty, top_v) {
                        if !field.is_abstract {
                            let b = match bottom.get(&key) {
                                Some(Value::Object(o)) => o.clone(),
                                _ => Map::new(),
                            };
                            output.insert(key, Value::Object(schema.merge_values(t, &b)));
                            continue;
                        }
                    }
                    output.insert(key, top_v.clone());
                }
            }
        }
        output
    }

    /// Runs `on_write` (or `on_read` for `Select`) transformations.
    pub fn transform(
        &self,
        input: &Entity,
        original_input: Option<&Entity>,
        context: Context,
    ) -> Result<Entity, String> {
        let mut output = self.run_transformations(input, original_input, context)?;
        if let Some(sub) = self.subschema_for(input) {
            if !sub.transformations.is_empty() {
                output = sub.run_transformations(&output, original_input, context)?;
            }
        }
        Ok(output)
    }

    fn run_transformations(
        &self,
        input: &Entity,
        original_input: Option<&Entity>,
        context: Context,
    ) -> Result<Entity, String> {
        let mut output: Option<Entity> = None;
        for t in &self.transformations {
            let f = if context == Context::Select { t.on_read } else { t.on_write };
            let Some(f) = f else { continue };
            let current = output.as_ref().unwrap_or(input);
            let data = if t.input.is_empty() && t.needs.is_empty() {
                let whole = Value::Object(current.clone());
                f(&[&whole])
            } else {
                let source = original_input.unwrap_or(current);
                let mut args = Vec::new();
                let mut complete = true;
                for name in &t.input {
                    if !is_nonempty(get_path(source, name)) {
                        complete = false;
                        break;
                    }
                    args.push(get_path(current, name).cloned().unwrap_or(Value::Null));
                }
                for name in &t.needs {
                    if !complete {
                        break;
                    }
                    match get_path(current, name) {
                        Some(v) if is_nonempty(Some(v)) => args.push(v.clone()),
                        _ => complete = false,
                    }
                }
                if !complete {
                    continue;
                }
                let refs: Vec<&Value> = args.iter().collect();
                f(&refs)
            };
            let data = data.map_err(|e| format!("transformation failed: {e}"))?;
            output = Some(self.merge_values(&data, current));
        }
        Ok(output.unwrap_or_else(|| input.clone()))
    }
}

fn deprecation_mismatch(
    data: &Entity,
    value: &Value,
    name: &str,
    sdata: &super::Shorthand,
) -> Option<String> {
    if value.is_null() {
        return None;
    }
    let dep = sdata.deprecation.as_ref()?;
    for path in &dep.replaced_with {
        if let Some(new_value) = table_path(data, path) {
            if !new_value.is_null() && &new_value != value {
                return Some(format!(
                    "both deprecated and new field are used but their values mismatch: {name} = {} vs {} = {}",
                    super::validate::tostring(value),
                    path.join("."),
                    super::validate::tostring(&new_value)
                ));
            }
        }
    }
    None
}
