//! Request arguments as Kong decodes them (`kong/api/arguments.lua`,
//! `arguments_decoder.lua`).
//!
//! Query strings, form and multipart bodies are flat `key=value` lists: keys are decoded into
//! nested values (`config.minute=5`, `hosts[]=a`, `headers.x-foo=bar`, `config.key_names[1]=k`,
//! `service.name=x`) and values are then coerced by the entity's schema (`infer`). JSON bodies
//! are taken as they are.

use serde_json::{Map, Value};
use turnpike_core::schema::{Field, Schema, Type};

/// The deepest key (`a.b.c…`) decoded into nested values.
const MAX_KEY_DEPTH: usize = 32;
/// The largest explicit array index (`x[n]`) honoured.
const MAX_ARRAY_INDEX: usize = 1000;

/// Splits a key into path segments: `a.b[1][x].c` -> `a`, `b`, `[1]`, `[x]`, `c`.
/// Bracket segments keep their brackets so that `[]`, `[n]` and `[name]` can be told apart.
fn key_path(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = key.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        match c {
            '.' if !first && !cur.is_empty() => {
                out.push(std::mem::take(&mut cur));
            }
            // a dot right after a bracket segment (`x[1].y`) only separates
            '.' if !first && out.last().is_some_and(|l| l.ends_with(']')) => {}
            '[' if !first || !cur.is_empty() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                let mut inner = String::from("[");
                for n in chars.by_ref() {
                    inner.push(n);
                    if n == ']' {
                        break;
                    }
                }
                if !inner.ends_with(']') {
                    // unbalanced: treat the rest literally
                    cur.push_str(&inner);
                    continue;
                }
                out.push(inner);
            }
            _ => cur.push(c),
        }
        first = false;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether map syntax (`x[name]`) is allowed: only in request bodies of POST/PUT/PATCH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MapSyntax {
    Allowed,
    Forbidden,
}

fn set_in(container: &mut Value, path: &[String], value: Value) {
    let Some((head, rest)) = path.split_first() else { return };
    let (index, map_key) =
        if let Some(inner) = head.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            if inner.is_empty() {
                (Some(None), None)
            } else if let Ok(n) = inner.parse::<usize>() {
                (Some(Some(n)), None)
            } else {
                (None, Some(inner.to_owned()))
            }
        } else {
            (None, Some(head.clone()))
        };
    if let Some(idx) = index {
        if !container.is_array() {
            if container.as_object().is_some_and(|o| !o.is_empty()) {
                return;
            }
            *container = Value::Array(Vec::new());
        }
        let Value::Array(arr) = container else { return };
        match idx {
            None => {
                if rest.is_empty() {
                    match value {
                        Value::Array(items) => arr.extend(items),
                        v => arr.push(v),
                    }
                } else {
                    let mut child = Value::Object(Map::new());
                    set_in(&mut child, rest, value);
                    arr.push(child);
                }
            }
            Some(n) => {
                let pos = n.max(1) - 1;
                while arr.len() <= pos {
                    arr.push(Value::Null);
                }
                if rest.is_empty() {
                    arr[pos] = value;
                } else {
                    if !arr[pos].is_object() && !arr[pos].is_array() {
                        arr[pos] = Value::Object(Map::new());
                    }
                    set_in(&mut arr[pos], rest, value);
                }
            }
        }
        return;
    }
    let key = map_key.unwrap_or_default();
    if !container.is_object() {
        *container = Value::Object(Map::new());
    }
    let Value::Object(obj) = container else { return };
    if rest.is_empty() {
        obj.insert(key, value);
    } else {
        let child = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
        set_in(child, rest, value);
    }
}

/// Kong's `combine`: merges a decoded argument into the accumulated ones. Objects merge
/// recursively; a key seen twice becomes an array of its values.
fn combine(to: &mut Value, from: Value) {
    match (to, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    None => {
                        a.insert(k, v);
                    }
                    Some(existing) => combine(existing, v),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, v) in b.into_iter().enumerate() {
                if v.is_null() {
                    continue;
                }
                if i < a.len() && !a[i].is_null() {
                    combine(&mut a[i], v);
                } else {
                    while a.len() <= i {
                        a.push(Value::Null);
                    }
                    a[i] = v;
                }
            }
        }
        (Value::Array(a), v) => a.push(v),
        (slot, v) => {
            let old = std::mem::take(slot);
            *slot = Value::Array(vec![old, v]);
        }
    }
}

/// Decodes flat `key=value` pairs (repeated keys allowed) into a nested object.
pub(crate) fn decode_pairs(
    pairs: Vec<(String, Value)>,
    map_syntax: MapSyntax,
) -> Map<String, Value> {
    // group repeated keys, keeping first-seen order
    let mut grouped: Vec<(String, Vec<Value>)> = Vec::new();
    for (k, v) in pairs {
        match grouped.iter_mut().find(|(gk, _)| *gk == k) {
            Some((_, vs)) => vs.push(v),
            None => grouped.push((k, vec![v])),
        }
    }
    let mut out = Value::Object(Map::new());
    for (key, mut values) in grouped {
        let value = if values.len() == 1 { values.remove(0) } else { Value::Array(values) };
        let key =
            key.replace("%5B", "[").replace("%5D", "]").replace("%5b", "[").replace("%5d", "]");
        let path = key_path(&key);
        let has_map_brackets = path.iter().any(|p| {
            p.strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .is_some_and(|inner| !inner.is_empty() && inner.parse::<usize>().is_err())
        });
        // Bounded work for hostile keys: no deeper than MAX_KEY_DEPTH, no array index beyond
        // MAX_ARRAY_INDEX (such keys stay literal and fail validation as unknown fields).
        let too_big_index = path.iter().any(|p| {
            p.strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .and_then(|inner| inner.parse::<usize>().ok())
                .is_some_and(|n| n > MAX_ARRAY_INDEX)
        });
        // beyond the depth limit, the rest of the key stays one literal segment
        let path = if path.len() > MAX_KEY_DEPTH {
            let mut cut: Vec<String> = path[..MAX_KEY_DEPTH - 1].to_vec();
            cut.push(path[MAX_KEY_DEPTH - 1..].join("."));
            cut
        } else {
            path
        };
        let path = if path.is_empty()
            || too_big_index
            || key.starts_with('.')
            || key.ends_with('.')
            || (has_map_brackets && map_syntax == MapSyntax::Forbidden)
        {
            vec![key.clone()]
        } else {
            path
        };
        let mut decoded = Value::Object(Map::new());
        set_in(&mut decoded, &path, value);
        combine(&mut out, decoded);
    }
    match out {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

/// Lua's `tonumber` on a string.
fn to_number(s: &str) -> Option<Value> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok().map(Value::from);
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(Value::from(i));
    }
    let f: f64 = t.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        return Some(Value::from(f as i64));
    }
    serde_json::Number::from_f64(f).map(Value::Number)
}

/// A best-effort coercion for free-form (JSON) fields, whose types Kong cannot know.
fn infer_loose(value: Value) -> Value {
    match value {
        Value::String(s) => match s.as_str() {
            "" => Value::Null,
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => to_number(&s).unwrap_or(Value::String(s)),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(infer_loose).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, infer_loose(v))).collect())
        }
        other => other,
    }
}

/// `infer_value(value, field)`.
pub(crate) fn infer_value(value: Value, field: &Field) -> Value {
    if let Value::String(s) = &value {
        if s.is_empty() {
            return Value::Null;
        }
    }
    if value.is_null() {
        return Value::Null;
    }
    match &field.ty {
        Type::Number | Type::Integer => match &value {
            Value::String(s) => to_number(s).unwrap_or(value),
            _ => value,
        },
        Type::Boolean => match value.as_str() {
            Some("true") => Value::Bool(true),
            Some("false") => Value::Bool(false),
            _ => value,
        },
        Type::Array(el) | Type::Set(el) => {
            let items = match value {
                Value::Array(items) => items,
                other => vec![other],
            };
            Value::Array(items.into_iter().map(|v| infer_value(v, el)).collect())
        }
        Type::Foreign(reference) => match value {
            Value::Object(o) => match turnpike_core::entities::lookup(reference) {
                Some(s) => Value::Object(infer(o, s)),
                None => Value::Object(o),
            },
            other => other,
        },
        Type::Map(_, values) => match value {
            Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, infer_value(v, values))).collect())
            }
            other => other,
        },
        Type::Record(schema) if !field.is_abstract => match value {
            Value::Object(o) => Value::Object(infer(o, schema)),
            other => other,
        },
        Type::Json => infer_loose(value),
        _ => value,
    }
}

/// `infer(args, schema)`: coerces every known field (the subschema selected by the args
/// applies, so a plugin's `config` is coerced with that plugin's schema).
pub(crate) fn infer(mut args: Map<String, Value>, schema: &Schema) -> Map<String, Value> {
    let fields: Vec<(String, Field)> =
        schema.each_field(Some(&args)).map(|(k, f)| (k.to_owned(), f.clone())).collect();
    for (name, field) in fields {
        if let Some(v) = args.remove(&name) {
            args.insert(name, infer_value(v, &field));
        }
    }
    for (name, sh) in &schema.shorthand_fields {
        if let Some(v) = args.remove(name) {
            args.insert(name.clone(), infer_value(v, &sh.field));
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, Value)> {
        items.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect()
    }

    #[test]
    fn decodes_kong_key_syntax() {
        let cases: Vec<(Vec<(&str, &str)>, Value)> = vec![
            (vec![("config.minute", "5")], json!({"config": {"minute": "5"}})),
            (vec![("hosts[]", "a"), ("hosts[]", "b")], json!({"hosts": ["a", "b"]})),
            (vec![("hosts", "a"), ("hosts", "b")], json!({"hosts": ["a", "b"]})),
            (vec![("config.key_names[1]", "apikey")], json!({"config": {"key_names": ["apikey"]}})),
            (vec![("headers.region", "north")], json!({"headers": {"region": "north"}})),
            (vec![("headers[x-foo]", "v")], json!({"headers": {"x-foo": "v"}})),
            (vec![("service.name", "x")], json!({"service": {"name": "x"}})),
            (vec![("config.a", "1"), ("config.b", "2")], json!({"config": {"a": "1", "b": "2"}})),
            (vec![("hosts[1]", "a"), ("hosts[2]", "b")], json!({"hosts": ["a", "b"]})),
            (vec![("paths%5B%5D", "/x")], json!({"paths": ["/x"]})),
            (vec![("name", "x")], json!({"name": "x"})),
            (
                vec![("sources[1].ip", "10.0.0.1"), ("sources[1].port", "80")],
                json!({"sources": [{"ip": "10.0.0.1", "port": "80"}]}),
            ),
        ];
        for (input, want) in cases {
            let got = Value::Object(decode_pairs(pairs(&input), MapSyntax::Allowed));
            assert_eq!(got, want, "{input:?}");
        }
        let deep = "a.".repeat(2000) + "a";
        let got = decode_pairs(pairs(&[(deep.as_str(), "1")]), MapSyntax::Allowed);
        let mut depth = 0;
        let mut cur = &Value::Object(got);
        while let Some(Value::Object(o)) = Some(cur) {
            let Some((_, v)) = o.iter().next() else { break };
            depth += 1;
            cur = v;
        }
        assert_eq!(depth, MAX_KEY_DEPTH, "keys nest no deeper than the limit");
        let got = decode_pairs(pairs(&[("hosts[999999999]", "x")]), MapSyntax::Allowed);
        assert!(got.contains_key("hosts[999999999]"), "huge indexes stay literal");
        let got = decode_pairs(pairs(&[("tags[x]", "1")]), MapSyntax::Forbidden);
        assert_eq!(Value::Object(got), json!({"tags[x]": "1"}));
    }

    #[test]
    fn infers_by_schema() {
        let s = turnpike_core::entities::services();
        let got = infer(
            json!({"retries": "6", "enabled": "false", "port": "x", "tags": "a", "path": "", "url": "http://h"})
                .as_object()
                .cloned()
                .unwrap(),
            &s,
        );
        assert_eq!(
            Value::Object(got),
            json!({"retries": 6, "enabled": false, "port": "x", "tags": ["a"], "path": null, "url": "http://h"})
        );
        let r = turnpike_core::entities::routes();
        let got = infer(
            json!({"paths": "/a,/b", "service": {"id": "x"}}).as_object().cloned().unwrap(),
            &r,
        );
        assert_eq!(Value::Object(got), json!({"paths": ["/a,/b"], "service": {"id": "x"}}));
    }
}
