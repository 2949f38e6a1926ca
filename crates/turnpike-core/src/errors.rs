//! Kong's DAO errors (`kong/db/errors.lua`): codes, names, messages and `fields` shapes.
//!
//! Validation produces an [`ErrTree`] (a Lua-table-like tree of messages keyed by field name,
//! array index or `@entity`); [`DaoError`] turns it into the `{code, name, message, fields}`
//! body the Admin API returns.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Map, Value};

use crate::lua::{pretty_compact, pretty_key, quote, LuaKey};

/// A tree of validation errors, shaped like the Lua tables Kong builds.
#[derive(Clone, Debug, PartialEq)]
pub enum ErrTree {
    Msg(String),
    Table(BTreeMap<LuaKey, ErrTree>),
}

/// The key Kong uses for entity-level errors.
pub const ENTITY_KEY: &str = "@entity";

impl ErrTree {
    pub fn msg(s: impl Into<String>) -> Self {
        ErrTree::Msg(s.into())
    }

    pub fn table() -> Self {
        ErrTree::Table(BTreeMap::new())
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, ErrTree::Table(t) if t.is_empty())
    }

    /// Mutable access to the table (panics on a message; callers only call it on tables).
    pub fn entries(&mut self) -> &mut BTreeMap<LuaKey, ErrTree> {
        match self {
            ErrTree::Table(t) => t,
            ErrTree::Msg(_) => {
                *self = ErrTree::table();
                self.entries()
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&ErrTree> {
        match self {
            ErrTree::Table(t) => t.get(&LuaKey::Str(key.to_owned())),
            ErrTree::Msg(_) => None,
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn set(&mut self, key: impl Into<LuaKey>, err: ErrTree) {
        self.entries().insert(key.into(), err);
    }

    /// `set_field(errors, "a.b", msg)` from Kong's schema library.
    pub fn set_path(&mut self, path: &str, err: ErrTree) {
        match path.split_once('.') {
            None => self.set(path, err),
            Some((head, tail)) => {
                let entry = self
                    .entries()
                    .entry(LuaKey::Str(head.to_owned()))
                    .or_insert_with(ErrTree::table);
                if let ErrTree::Msg(_) = entry {
                    *entry = ErrTree::table();
                }
                entry.set_path(tail, err);
            }
        }
    }

    /// Appends to the `@entity` list.
    pub fn push_entity(&mut self, msg: impl Into<String>) {
        let list =
            self.entries().entry(LuaKey::Str(ENTITY_KEY.to_owned())).or_insert_with(ErrTree::table);
        let next = match list {
            ErrTree::Table(t) => t.len() + 1,
            ErrTree::Msg(_) => 1,
        };
        list.set(next, ErrTree::Msg(msg.into()));
    }

    /// The JSON form cjson produces: a table with only integer keys becomes an array (holes
    /// filled with null); any other non-empty table an object; an empty table `{}`.
    pub fn to_json(&self) -> Value {
        match self {
            ErrTree::Msg(s) => Value::String(s.clone()),
            ErrTree::Table(t) => {
                if !t.is_empty() && t.keys().all(|k| matches!(k, LuaKey::Int(_))) {
                    let max = t
                        .keys()
                        .map(|k| match k {
                            LuaKey::Int(i) => *i,
                            LuaKey::Str(_) => 0,
                        })
                        .max()
                        .unwrap_or(0);
                    let mut arr = vec![Value::Null; max];
                    for (k, v) in t {
                        if let LuaKey::Int(i) = k {
                            if *i >= 1 {
                                arr[i - 1] = v.to_json();
                            }
                        }
                    }
                    Value::Array(arr)
                } else {
                    let mut m = Map::new();
                    for (k, v) in t {
                        m.insert(k.to_string(), v.to_json());
                    }
                    Value::Object(m)
                }
            }
        }
    }

    /// Penlight's multi-line `pretty.write(t)`.
    pub fn pretty(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        let mut line = String::new();
        write_pretty(self, "", "  ", " = ", &mut lines, &mut line);
        eat_last_comma(&mut lines);
        lines.join("\n")
    }

    /// Penlight's `pretty.write(t, "")`: the same on one line, `key=value` without spaces.
    pub fn pretty_inline(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        let mut line = String::new();
        write_pretty(self, "", "", "=", &mut lines, &mut line);
        eat_last_comma(&mut lines);
        lines.concat()
    }
}

fn putln(lines: &mut Vec<String>, line: &mut String, s: &str) {
    if !line.is_empty() {
        line.push_str(s);
        lines.push(std::mem::take(line));
    } else {
        lines.push(s.to_owned());
    }
}

fn eat_last_comma(lines: &mut [String]) {
    if let Some(last) = lines.last_mut() {
        if last.ends_with(',') {
            last.pop();
        }
    }
}

fn write_pretty(
    t: &ErrTree,
    oldindent: &str,
    indent: &str,
    set: &str,
    lines: &mut Vec<String>,
    line: &mut String,
) {
    match t {
        ErrTree::Msg(s) => putln(lines, line, &format!("{},", quote(s))),
        ErrTree::Table(map) => {
            let newindent = if set == "=" { String::new() } else { format!("{indent}  ") };
            putln(lines, line, "{");
            let mut used = 0usize;
            // array part, as ipairs would walk it
            let mut i = 1;
            while let Some(v) = map.get(&LuaKey::Int(i)) {
                line.push_str(indent);
                write_pretty(v, indent, &newindent, set, lines, line);
                used = i;
                i += 1;
            }
            for (k, v) in map.iter().filter(|(k, _)| matches!(k, LuaKey::Str(_))) {
                line.push_str(&format!("{indent}{}{set}", pretty_key(k)));
                write_pretty(v, indent, &newindent, set, lines, line);
            }
            for (k, v) in map.iter() {
                if let LuaKey::Int(n) = k {
                    if *n > used {
                        line.push_str(&format!("{indent}{}{set}", pretty_key(k)));
                        write_pretty(v, indent, &newindent, set, lines, line);
                    }
                }
            }
            eat_last_comma(lines);
            putln(lines, line, &format!("{oldindent}}},"));
        }
    }
}

/// Kong's DAO error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidPrimaryKey = 1,
    SchemaViolation = 2,
    PrimaryKeyViolation = 3,
    ForeignKeyViolation = 4,
    UniqueViolation = 5,
    NotFound = 6,
    InvalidOffset = 7,
    DatabaseError = 8,
    InvalidSize = 9,
    InvalidUnique = 10,
    InvalidOptions = 11,
    OperationUnsupported = 12,
    ForeignKeysUnresolved = 13,
    DeclarativeConfig = 14,
    TransformationError = 15,
    InvalidForeignKey = 16,
    InvalidWorkspace = 17,
    InvalidUniqueGlobal = 18,
    ReferencedByOthers = 19,
    InvalidSearchQuery = 20,
}

impl ErrorCode {
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::InvalidPrimaryKey => "invalid primary key",
            ErrorCode::SchemaViolation => "schema violation",
            ErrorCode::PrimaryKeyViolation => "primary key violation",
            ErrorCode::ForeignKeyViolation => "foreign key violation",
            ErrorCode::UniqueViolation => "unique constraint violation",
            ErrorCode::NotFound => "not found",
            ErrorCode::InvalidOffset => "invalid offset",
            ErrorCode::DatabaseError => "database error",
            ErrorCode::InvalidSize => "invalid size",
            ErrorCode::InvalidUnique => "invalid unique %s",
            ErrorCode::InvalidOptions => "invalid options",
            ErrorCode::OperationUnsupported => "operation unsupported",
            ErrorCode::ForeignKeysUnresolved => "foreign keys unresolved",
            ErrorCode::DeclarativeConfig => "invalid declarative configuration",
            ErrorCode::TransformationError => "transformation error",
            ErrorCode::InvalidForeignKey => "invalid foreign key",
            ErrorCode::InvalidWorkspace => "invalid workspace",
            ErrorCode::InvalidUniqueGlobal => "invalid global query",
            ErrorCode::ReferencedByOthers => "referenced by others",
            ErrorCode::InvalidSearchQuery => "invalid search query",
        }
    }

    /// The HTTP status the Admin API answers with (`endpoints.lua` ERRORS_HTTP_CODES).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::UniqueViolation => 409,
            ErrorCode::NotFound => 404,
            ErrorCode::DatabaseError => 500,
            ErrorCode::OperationUnsupported => 405,
            ErrorCode::TransformationError
            | ErrorCode::InvalidWorkspace
            | ErrorCode::InvalidUniqueGlobal
            | ErrorCode::InvalidSearchQuery
            | ErrorCode::InvalidForeignKey => 400,
            _ => 400,
        }
    }
}

/// A DAO error, as `{code, name, message, fields|options}`.
#[derive(Clone, Debug, PartialEq)]
pub struct DaoError {
    pub code: ErrorCode,
    pub name: String,
    pub message: String,
    /// `fields` (or `options` for code 11).
    pub detail: Option<Value>,
}

impl fmt::Display for DaoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DaoError {}

impl DaoError {
    fn new(code: ErrorCode, message: impl Into<String>, detail: Option<Value>) -> Self {
        Self { code, name: code.name().to_owned(), message: message.into(), detail }
    }

    pub fn status(&self) -> u16 {
        self.code.http_status()
    }

    /// The response body. Database errors never leak their text: the Admin API answers
    /// `{"message":"An unexpected error occurred"}` for them.
    pub fn to_json(&self) -> Value {
        if self.code == ErrorCode::DatabaseError {
            return json!({"message": "An unexpected error occurred"});
        }
        let mut m = Map::new();
        m.insert("code".into(), json!(self.code as u8));
        m.insert("name".into(), json!(self.name));
        m.insert("message".into(), json!(self.message));
        if let Some(d) = &self.detail {
            let key = if self.code == ErrorCode::InvalidOptions { "options" } else { "fields" };
            m.insert(key.into(), d.clone());
        }
        Value::Object(m)
    }

    pub fn schema_violation(errors: &ErrTree) -> Self {
        let mut buf: Vec<String> = Vec::new();
        if let Some(ErrTree::Table(list)) = errors.get(ENTITY_KEY) {
            for v in list.values() {
                if let ErrTree::Msg(m) = v {
                    buf.push(m.clone());
                }
            }
        }
        if let ErrTree::Table(t) = errors {
            for (k, v) in t {
                if k == &LuaKey::Str(ENTITY_KEY.to_owned()) {
                    continue;
                }
                match v {
                    ErrTree::Msg(m) => buf.push(format!("{k}: {m}")),
                    ErrTree::Table(sub) => {
                        for (sk, sv) in sub {
                            let rendered = match sv {
                                ErrTree::Msg(m) => m.clone(),
                                table => table.pretty(),
                            };
                            buf.push(format!("{k}.{sk}: {rendered}"));
                        }
                    }
                }
            }
        }
        let message = if buf.len() == 1 {
            format!("schema violation ({})", buf[0])
        } else {
            format!("{} schema violations ({})", buf.len(), buf.join("; "))
        };
        Self::new(ErrorCode::SchemaViolation, message, Some(errors.to_json()))
    }

    /// A schema violation with a single field message.
    pub fn field_violation(field: &str, msg: impl Into<String>) -> Self {
        let mut t = ErrTree::table();
        t.set(field, ErrTree::msg(msg));
        Self::schema_violation(&t)
    }

    pub fn unique_violation(key: &Value) -> Self {
        Self::new(
            ErrorCode::UniqueViolation,
            format!("UNIQUE violation detected on '{}'", pretty_compact(key)),
            Some(key.clone()),
        )
    }

    pub fn primary_key_violation(pk: &Value) -> Self {
        Self::new(
            ErrorCode::PrimaryKeyViolation,
            format!("primary key violation on key '{}'", pretty_compact(pk)),
            Some(pk.clone()),
        )
    }

    pub fn invalid_primary_key(errors: &ErrTree) -> Self {
        let rendered = pretty_compact(&errors.to_json());
        Self::new(
            ErrorCode::InvalidPrimaryKey,
            format!("invalid primary key: '{rendered}'"),
            Some(errors.to_json()),
        )
    }

    pub fn foreign_key_violation_invalid_reference(fk: &Value, field: &str, parent: &str) -> Self {
        Self::new(
            ErrorCode::ForeignKeyViolation,
            format!(
                "the foreign key '{}' does not reference an existing '{parent}' entity.",
                pretty_compact(fk)
            ),
            Some(json!({ field: fk })),
        )
    }

    pub fn foreign_key_violation_restricted(parent: &str, child: &str) -> Self {
        Self::new(
            ErrorCode::ForeignKeyViolation,
            format!("an existing '{child}' entity references this '{parent}' entity"),
            Some(json!({ "@referenced_by": child })),
        )
    }

    /// `errors` maps foreign field name -> unique field name -> (value, parent schema).
    pub fn foreign_keys_unresolved(errors: &[(String, String, Value, String)]) -> Self {
        let mut fields = Map::new();
        let mut buf = Vec::new();
        let mut sorted: Vec<&(String, String, Value, String)> = errors.iter().collect();
        sorted.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        for (field, ufield, value, parent) in sorted {
            let msg = format!(
                "the foreign key cannot be resolved with '{}' for an existing '{parent}' entity",
                pretty_compact(&json!({ ufield.as_str(): value }))
            );
            buf.push(format!("{field}.{ufield}: {msg}"));
            let entry = fields.entry(field.clone()).or_insert_with(|| json!({}));
            if let Value::Object(o) = entry {
                o.insert(ufield.clone(), Value::String(msg));
            }
        }
        let message = if buf.len() == 1 {
            format!("foreign key unresolved ({})", buf[0])
        } else {
            format!("{} foreign keys unresolved ({})", buf.len(), buf.join("; "))
        };
        Self::new(ErrorCode::ForeignKeysUnresolved, message, Some(Value::Object(fields)))
    }

    pub fn not_found(pk: &Value) -> Self {
        Self::new(
            ErrorCode::NotFound,
            format!("could not find the entity with primary key '{}'", pretty_compact(pk)),
            Some(pk.clone()),
        )
    }

    pub fn not_found_by_field(filter: &Value) -> Self {
        Self::new(
            ErrorCode::NotFound,
            format!("could not find the entity with '{}'", pretty_compact(filter)),
            Some(filter.clone()),
        )
    }

    pub fn invalid_offset(offset: &str, err: &str) -> Self {
        Self::new(
            ErrorCode::InvalidOffset,
            format!("'{offset}' is not a valid offset: {err}"),
            None,
        )
    }

    pub fn invalid_size(err: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidSize, err, None)
    }

    pub fn invalid_unique(name: &str, errors: &ErrTree) -> Self {
        let message = match errors {
            ErrTree::Msg(m) => m.clone(),
            t => pretty_compact(&t.to_json()),
        };
        let mut e = Self::new(ErrorCode::InvalidUnique, message, None);
        e.name = format!("invalid unique {name}");
        e
    }

    /// `options` is a flat or one-level-nested map of option errors.
    pub fn invalid_options(options: &Value) -> Self {
        let mut buf = Vec::new();
        if let Value::Object(m) = options {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for k in keys {
                match &m[k] {
                    Value::Object(sub) => {
                        let mut sk: Vec<&String> = sub.keys().collect();
                        sk.sort();
                        for s in sk {
                            buf.push(format!("{k}.{s}: {}", value_text(&sub[s])));
                        }
                    }
                    v => buf.push(format!("{k}: {}", value_text(v))),
                }
            }
        }
        let message = if buf.len() == 1 {
            format!("invalid option ({})", buf[0])
        } else {
            format!("{} option violations ({})", buf.len(), buf.join("; "))
        };
        Self::new(ErrorCode::InvalidOptions, message, Some(options.clone()))
    }

    pub fn operation_unsupported(err: impl Into<String>) -> Self {
        Self::new(ErrorCode::OperationUnsupported, err, None)
    }

    pub fn database_error(err: impl Into<String>) -> Self {
        Self::new(ErrorCode::DatabaseError, err, None)
    }

    pub fn transformation_error(err: impl Into<String>) -> Self {
        Self::new(ErrorCode::TransformationError, err, None)
    }

    pub fn referenced_by_others(err: impl Into<String>) -> Self {
        Self::new(ErrorCode::ReferencedByOthers, err, None)
    }

    pub fn declarative_config(fields: &Value) -> Self {
        Self::new(
            ErrorCode::DeclarativeConfig,
            format!("declarative config is invalid: {}", pretty_compact(fields)),
            Some(fields.clone()),
        )
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => pretty_compact(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_violation_messages() {
        let mut e = ErrTree::table();
        e.set("name", ErrTree::msg("required field missing"));
        let d = DaoError::schema_violation(&e);
        assert_eq!(d.message, "schema violation (name: required field missing)");

        let mut e = ErrTree::table();
        e.set("path", ErrTree::msg("should start with: /"));
        e.set("host", ErrTree::msg("required field missing"));
        e.push_entity("failed conditional validation given value of field 'protocol'");
        let d = DaoError::schema_violation(&e);
        assert_eq!(
            d.message,
            "3 schema violations (failed conditional validation given value of field 'protocol'; \
             host: required field missing; path: should start with: /)"
        );
        assert_eq!(
            d.to_json()["fields"]["@entity"],
            json!(["failed conditional validation given value of field 'protocol'"])
        );
    }

    #[test]
    fn nested_errors_render_like_penlight() {
        let mut e = ErrTree::table();
        e.set_path(
            "healthchecks.active.timeout",
            ErrTree::msg("value should be between 0 and 65535"),
        );
        let d = DaoError::schema_violation(&e);
        assert_eq!(
            d.message,
            "schema violation (healthchecks.active: {\n  timeout = \"value should be between 0 and 65535\"\n})"
        );
        let mut e = ErrTree::table();
        let mut arr = ErrTree::table();
        arr.set(2usize, ErrTree::msg("bad"));
        e.set("hosts", arr);
        assert_eq!(e.to_json(), json!({"hosts": [null, "bad"]}));
        assert_eq!(DaoError::schema_violation(&e).message, "schema violation (hosts.2: bad)");
    }

    #[test]
    fn unique_and_fk_messages() {
        assert_eq!(
            DaoError::unique_violation(&json!({"name": "x"})).message,
            r#"UNIQUE violation detected on '{name="x"}'"#
        );
        assert_eq!(
            DaoError::foreign_key_violation_restricted("services", "routes").message,
            "an existing 'routes' entity references this 'services' entity"
        );
    }
}
