//! Field validation and entity checks (`Schema:validate_field`, `Schema:validate`,
//! `Schema.entity_checkers`), with Kong's messages.

use std::collections::HashSet;

use serde_json::Value;

use super::{get_path, is_nonempty, set_path, Entity, EntityCheck, Field, Schema, Type};
use crate::errors::ErrTree;
use crate::lua::{lua_float, lua_number};

pub(crate) const REQUIRED: &str = "required field missing";
pub(crate) const UNKNOWN: &str = "unknown field";
const MISSING_PK: &str = "missing primary key";

/// Lua's `tostring` for a JSON value, as used in validator messages.
pub(crate) fn tostring(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => lua_number(n),
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => "table".into(),
    }
}

fn fmt_int(f: f64) -> String {
    format!("{}", f as i64)
}

/// `quoted_list({"a", "b"})` -> `'a', 'b'`
pub(crate) fn quoted_list(names: &[String]) -> String {
    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}

fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Lua equality for the primitive values validators compare.
fn lua_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(_), _) | (Value::Object(_), _) => false,
        _ => a == b,
    }
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn value_len(field: &Field, v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.len(),
        Value::Object(o) if matches!(field.ty, Type::Map(..)) => o.len(),
        _ => 0,
    }
}

fn join_values(vs: &[Value]) -> String {
    vs.iter().map(tostring).collect::<Vec<_>>().join(", ")
}

/// The field definition used for a UUID primary key.
fn pk_field() -> Field {
    Field::string().uuid().auto()
}

/// Validates a foreign key value: it must be a table holding a valid primary key.
fn validate_foreign(reference: &str, value: &Value) -> Result<(), ErrTree> {
    let mut pk_err = ErrTree::table();
    match value.as_object().and_then(|o| o.get("id")) {
        None | Some(Value::Bool(false)) => pk_err.set("id", ErrTree::msg(MISSING_PK)),
        Some(Value::Null) => pk_err.set("id", ErrTree::msg(REQUIRED)),
        Some(v) => {
            if let Err(e) = validate_field(&pk_field(), Some(v)) {
                pk_err.set("id", e);
            }
        }
    }
    if pk_err.is_empty() {
        return Ok(());
    }
    if let (Value::Object(obj), Some(schema)) = (value, crate::entities::lookup(reference)) {
        schema.validate(obj, false, false)?;
    }
    Err(pk_err)
}

fn validate_elements(elements: &Field, items: &[Value]) -> Result<(), ErrTree> {
    let mut el = elements.clone();
    el.required = true;
    let mut errs = ErrTree::table();
    for (i, item) in items.iter().enumerate() {
        if let Err(e) = validate_field(&el, Some(item)) {
            errs.set(i + 1, e);
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// `Schema:validate_field(field, value)`. `None` is Lua's `nil` (absent), `Some(Null)` is
/// `ngx.null` (explicitly null).
pub fn validate_field(field: &Field, value: Option<&Value>) -> Result<(), ErrTree> {
    let field_err = |default: String| ErrTree::Msg(field.err.clone().unwrap_or(default));
    if let Some(Value::Null) = value {
        if field.v.ne == Some(Value::Null) {
            return Err(field_err("value must not be null".into()));
        }
        if let Some(eq) = &field.v.eq {
            if !eq.is_null() {
                return Err(ErrTree::msg(format!("value must be {}", tostring(eq))));
            }
        }
        if field.required {
            return Err(ErrTree::msg(REQUIRED));
        }
        return Ok(());
    }
    if field.v.eq == Some(Value::Null) {
        return Err(field_err("value must be null".into()));
    }
    if field.is_abstract {
        return Err(ErrTree::msg("error in schema definition: abstract field was not specialized"));
    }
    let Some(value) = value else {
        return Err(ErrTree::msg(type_error(&field.ty)));
    };

    let mut string_len_min = None;
    match (&field.ty, value) {
        (Type::Array(el), Value::Array(items)) | (Type::Set(el), Value::Array(items)) => {
            validate_elements(el, items)?;
        }
        (Type::Array(_) | Type::Set(_), Value::Object(o)) if o.is_empty() => {}
        (Type::Array(_) | Type::Set(_), _) => return Err(ErrTree::msg(type_error(&field.ty))),
        (Type::Map(keys, values), Value::Object(o)) => {
            let mut k_field = (**keys).clone();
            k_field.required = true;
            let mut v_field = (**values).clone();
            v_field.required = true;
            for (k, v) in o {
                validate_field(&k_field, Some(&Value::String(k.clone())))?;
                validate_field(&v_field, Some(v))?;
            }
        }
        (Type::Map(keys, _), Value::Array(items)) => {
            if !items.is_empty() {
                let mut k_field = (**keys).clone();
                k_field.required = true;
                validate_field(&k_field, Some(&Value::from(1)))?;
            }
        }
        (Type::Map(..), _) => return Err(ErrTree::msg("expected a map")),
        (Type::Record(schema), Value::Object(o)) => {
            let copy = schema.process_auto_fields(o, super::Context::Insert, false)?;
            schema.validate(&copy, true, false)?;
        }
        (Type::Record(schema), Value::Array(a)) if a.is_empty() => {
            let copy = schema.process_auto_fields(&Entity::new(), super::Context::Insert, false)?;
            schema.validate(&copy, true, false)?;
        }
        (Type::Record(_), _) => return Err(ErrTree::msg("expected a record")),
        (Type::Foreign(reference), v) => validate_foreign(reference, v)?,
        (Type::Integer, Value::Number(n)) => {
            let ok = n.is_i64()
                || n.is_u64()
                || n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.is_finite());
            if !ok {
                return Err(ErrTree::msg("expected an integer"));
            }
        }
        (Type::Integer, _) => return Err(ErrTree::msg("expected an integer")),
        (Type::Number, Value::Number(_)) => {}
        (Type::Number, _) => return Err(ErrTree::msg("expected a number")),
        (Type::Boolean, Value::Bool(_)) => {}
        (Type::Boolean, _) => return Err(ErrTree::msg("expected a boolean")),
        (Type::String, Value::String(s)) => {
            if field.v.len_min.is_none() {
                string_len_min = Some(1);
            }
            if field.referenceable && crate::vault::is_reference(s) {
                return Ok(());
            }
        }
        (Type::String, _) => return Err(ErrTree::msg("expected a string")),
        (Type::Json, _) => {}
    }

    run_validators(field, value, string_len_min).map_err(field_err)
}

fn type_error(ty: &Type) -> String {
    match ty {
        Type::Array(_) => "expected an array",
        Type::Set(_) => "expected a set",
        Type::Map(..) => "expected a map",
        Type::Record(_) => "expected a record",
        Type::String => "expected a string",
        Type::Number => "expected a number",
        Type::Boolean => "expected a boolean",
        Type::Integer => "expected an integer",
        Type::Foreign(_) | Type::Json => "expected a record",
    }
    .to_owned()
}

fn run_validators(
    field: &Field,
    value: &Value,
    implied_len_min: Option<usize>,
) -> Result<(), String> {
    let v = &field.v;
    if let Some(eq) = &v.eq {
        if !lua_eq(value, eq) {
            return Err(format!("value must be {}", tostring(eq)));
        }
    }
    if let Some(ne) = &v.ne {
        if lua_eq(value, ne) {
            return Err(format!("value must not be {}", tostring(value)));
        }
    }
    if let Some(list) = &v.not_one_of {
        if list.iter().any(|o| lua_eq(value, o)) {
            return Err(format!("must not be one of: {}", join_values(list)));
        }
    }
    if let Some(list) = &v.one_of {
        if !list.iter().any(|o| lua_eq(value, o)) {
            return Err(format!("expected one of: {}", join_values(list)));
        }
    }
    if let Some(limit) = v.gt {
        if !as_f64(value).is_some_and(|x| x > limit) {
            return Err(format!("value must be greater than {}", lua_float(limit)));
        }
    }
    if v.timestamp && !as_f64(value).is_some_and(|x| x > 0.0) {
        return Err("expected a valid timestamp".into());
    }
    if v.uuid && !value.as_str().is_some_and(is_uuid) {
        return Err("expected a valid UUID".into());
    }
    if v.is_regex {
        if let Some(s) = value.as_str() {
            if regex::Regex::new(s).is_err() {
                return Err(format!("not a valid regex: {s}"));
            }
        }
    }
    if let Some((lo, hi)) = v.between {
        if let Some(x) = as_f64(value) {
            if x < lo || x > hi {
                return Err(format!("value should be between {} and {}", fmt_int(lo), fmt_int(hi)));
            }
        }
    }
    if let Some(n) = v.len_eq {
        if value_len(field, value) != n {
            return Err(format!("length must be {n}"));
        }
    }
    if let Some(n) = v.len_min.or(implied_len_min) {
        if value_len(field, value) < n {
            return Err(format!("length must be at least {n}"));
        }
    }
    if let Some(n) = v.len_max {
        if value_len(field, value) > n {
            return Err(format!("length must be at most {n}"));
        }
    }
    if let Some(s) = value.as_str() {
        if let Some(prefix) = &v.starts_with {
            if !s.starts_with(prefix.as_str()) {
                return Err(format!("should start with: {prefix}"));
            }
        }
        if let Some(p) = &v.not_match {
            if p.is_match(s) {
                return Err(format!("invalid value: {s}"));
            }
        }
        for (p, err) in &v.match_none {
            if p.is_match(s) {
                return Err(err.clone());
            }
        }
        if let Some(p) = &v.match_ {
            if !p.is_match(s) {
                return Err(format!("invalid value: {s}"));
            }
        }
        for (p, err) in &v.match_all {
            if !p.is_match(s) {
                return Err(err.clone());
            }
        }
        if let Some((patterns, err)) = &v.match_any {
            if !patterns.iter().any(|p| p.is_match(s)) {
                return Err(err.clone());
            }
        }
    }
    if let Some(wanted) = &v.contains {
        let found = value.as_array().is_some_and(|a| a.iter().any(|x| lua_eq(x, wanted)));
        if !found {
            return Err(format!("expected to contain: {}", tostring(wanted)));
        }
    }
    if let Some(custom) = &v.custom {
        (custom.0)(value)?;
    }
    if let Some(subsets) = &v.mutually_exclusive_subsets {
        if let Some(items) = value.as_array() {
            let mut member_of: Vec<&Vec<String>> = Vec::new();
            for item in items.iter().filter_map(Value::as_str) {
                if let Some(set) = subsets.iter().find(|s| s.iter().any(|x| x == item)) {
                    if !member_of.iter().any(|m| std::ptr::eq(*m, set)) {
                        member_of.push(set);
                    }
                }
            }
            if member_of.len() > 1 {
                let groups: Vec<String> =
                    member_of.iter().map(|s| format!("({})", quoted_list(s))).collect();
                return Err(format!("these sets are mutually exclusive: {}", groups.join(", ")));
            }
        }
    }
    Ok(())
}

/// Messages that `validate_update` rewrites "when updating".
#[derive(Clone, Copy)]
struct Messages {
    update: bool,
}

impl Messages {
    fn required_for_check(self) -> &'static str {
        if self.update {
            "field required for entity check when updating"
        } else {
            "field required for entity check"
        }
    }
    fn at_least_one_of(self, list: &str) -> String {
        let base = format!("at least one of these fields must be non-empty: {list}");
        if self.update {
            format!("when updating, {base}")
        } else {
            base
        }
    }
}

/// A view of a schema with an optional subschema overriding its fields.
#[derive(Clone, Copy)]
struct View<'a> {
    schema: &'a Schema,
    sub: Option<&'a Schema>,
}

impl<'a> View<'a> {
    /// `get_schema_field(schema, "a.b")`.
    fn field(&self, path: &str) -> Option<&'a Field> {
        let (head, tail) = match path.split_once('.') {
            Some((h, t)) => (h, Some(t)),
            None => (path, None),
        };
        let f =
            self.sub.and_then(|s| s.fields.get(head)).or_else(|| self.schema.fields.get(head))?;
        match tail {
            None => Some(f),
            Some(t) => View { schema: f.record_schema()?, sub: None }.field(t),
        }
    }
}

struct CheckSpec {
    fields: Vec<String>,
    required: HashSet<String>,
    run_with_missing: bool,
    run_with_invalid: bool,
}

fn spec(check: &EntityCheck) -> CheckSpec {
    let all = |names: &Vec<String>, missing: bool, invalid: bool| CheckSpec {
        fields: names.clone(),
        required: names.iter().cloned().collect(),
        run_with_missing: missing,
        run_with_invalid: invalid,
    };
    match check {
        EntityCheck::AtLeastOneOf(n) => all(n, true, true),
        EntityCheck::OnlyOneOf(n) | EntityCheck::Distinct(n) => all(n, false, true),
        EntityCheck::MutuallyRequired(n) | EntityCheck::MutuallyExclusive(n) => all(n, true, false),
        EntityCheck::MutuallyExclusiveSets { set1, set2 } => CheckSpec {
            fields: set1.iter().chain(set2).cloned().collect(),
            required: HashSet::new(),
            run_with_missing: true,
            run_with_invalid: false,
        },
        EntityCheck::Conditional { if_field, then_field, .. } => CheckSpec {
            fields: vec![if_field.clone(), then_field.clone()],
            required: [if_field.clone()].into_iter().collect(),
            run_with_missing: false,
            run_with_invalid: true,
        },
        EntityCheck::ConditionalAtLeastOneOf {
            if_field,
            then_at_least_one_of,
            else_then_at_least_one_of,
            ..
        } => CheckSpec {
            fields: std::iter::once(if_field.clone())
                .chain(then_at_least_one_of.iter().cloned())
                .chain(else_then_at_least_one_of.iter().cloned())
                .collect(),
            required: HashSet::new(),
            run_with_missing: true,
            run_with_invalid: true,
        },
        EntityCheck::Custom { field_sources, run_with_missing_fields, .. } => CheckSpec {
            fields: field_sources.clone(),
            required: field_sources.iter().cloned().collect(),
            run_with_missing: *run_with_missing_fields,
            run_with_invalid: false,
        },
    }
}

/// Outcome of a checker: `Ok` or (message argument, custom message).
type CheckResult = Result<(), (String, Option<String>)>;

fn nonempty_any(entity: &Entity, names: &[String]) -> bool {
    names.iter().any(|n| is_nonempty(get_path(entity, n)))
}

fn run_checker(
    check: &EntityCheck,
    input: &Entity,
    view: View<'_>,
    errors: &mut ErrTree,
) -> CheckResult {
    match check {
        EntityCheck::AtLeastOneOf(names) => {
            if nonempty_any(input, names) {
                Ok(())
            } else {
                Err((quoted_list(names), None))
            }
        }
        EntityCheck::OnlyOneOf(names) => {
            let n = names.iter().filter(|n| is_nonempty(get_path(input, n))).count();
            if n == 1 {
                Ok(())
            } else {
                Err((quoted_list(names), None))
            }
        }
        EntityCheck::Distinct(names) => {
            let mut seen: Vec<&Value> = Vec::new();
            for n in names {
                let v = get_path(input, n);
                if is_nonempty(v) {
                    let v = v.unwrap_or(&Value::Null);
                    if seen.iter().any(|s| lua_eq(s, v)) {
                        return Err((quoted_list(names), None));
                    }
                    seen.push(v);
                }
            }
            Ok(())
        }
        EntityCheck::MutuallyRequired(names) => {
            let n = names.iter().filter(|n| is_nonempty(get_path(input, n))).count();
            if n == 0 || n == names.len() {
                Ok(())
            } else {
                Err((quoted_list(names), None))
            }
        }
        EntityCheck::MutuallyExclusive(names) => {
            let n = names.iter().filter(|n| is_nonempty(get_path(input, n))).count();
            if n <= 1 {
                Ok(())
            } else {
                Err((quoted_list(names), None))
            }
        }
        EntityCheck::MutuallyExclusiveSets { set1, set2 } => {
            let ne1: Vec<String> =
                set1.iter().filter(|n| is_nonempty(get_path(input, n))).cloned().collect();
            let ne2: Vec<String> =
                set2.iter().filter(|n| is_nonempty(get_path(input, n))).cloned().collect();
            if !ne1.is_empty() && !ne2.is_empty() {
                Err((format!("({}), ({})", quoted_list(&ne1), quoted_list(&ne2)), None))
            } else {
                Ok(())
            }
        }
        EntityCheck::Conditional { if_field, if_match, then_field, then_match, then_err } => {
            let if_value = get_path(input, if_field);
            let then_value = get_path(input, then_field).cloned().unwrap_or(Value::Null);
            let if_def = if_match.apply(view.field(if_field));
            if validate_field(&if_def, if_value).is_err() {
                return Ok(());
            }
            if then_match.required == Some(true) && then_value.is_null() {
                errors.set_path(then_field, ErrTree::msg(REQUIRED));
                return Err((if_field.clone(), None));
            }
            let then_def = then_match.apply(view.field(then_field));
            if let Err(e) = validate_field(&then_def, Some(&then_value)) {
                errors.set_path(then_field, e);
                return Err((
                    if_field.clone(),
                    then_err.as_ref().map(|t| t.replace("%s", if_field)),
                ));
            }
            Ok(())
        }
        EntityCheck::ConditionalAtLeastOneOf {
            if_field,
            if_match,
            then_at_least_one_of,
            then_err,
            else_match,
            else_then_at_least_one_of,
            else_then_err,
        } => {
            let Some(if_value) = get_path(input, if_field) else {
                return Ok(());
            };
            let base = view.field(if_field);
            if validate_field(&if_match.apply(base), Some(if_value)).is_err() {
                let Some(else_match) = else_match else {
                    return Ok(());
                };
                if validate_field(&else_match.apply(base), Some(if_value)).is_err() {
                    return Ok(());
                }
                if nonempty_any(input, else_then_at_least_one_of) {
                    return Ok(());
                }
                let list = quoted_list(else_then_at_least_one_of);
                let custom = else_then_err.as_ref().map(|e| e.replace("%s", &list));
                return Err((list, custom));
            }
            if nonempty_any(input, then_at_least_one_of) {
                return Ok(());
            }
            let list = quoted_list(then_at_least_one_of);
            let custom = then_err.as_ref().map(|e| e.replace("%s", &list));
            Err((list, custom))
        }
        EntityCheck::Custom { check, .. } => (check.0)(input).map_err(|e| (e, None)),
    }
}

fn check_message(check: &EntityCheck, arg: String, msgs: Messages) -> String {
    match check {
        EntityCheck::AtLeastOneOf(_) | EntityCheck::ConditionalAtLeastOneOf { .. } => {
            msgs.at_least_one_of(&arg)
        }
        EntityCheck::OnlyOneOf(_) => {
            format!("exactly one of these fields must be non-empty: {arg}")
        }
        EntityCheck::Distinct(_) => format!("values of these fields must be distinct: {arg}"),
        EntityCheck::MutuallyRequired(_) => {
            format!("all or none of these fields must be set: {arg}")
        }
        EntityCheck::MutuallyExclusive(_) => {
            format!("only one or none of these fields must be set: {arg}")
        }
        EntityCheck::MutuallyExclusiveSets { .. } => {
            format!("these sets are mutually exclusive: {arg}")
        }
        EntityCheck::Conditional { .. } => {
            format!("failed conditional validation given value of field '{arg}'")
        }
        EntityCheck::Custom { .. } => arg,
    }
}

fn run_entity_check(
    check: &EntityCheck,
    input: &Entity,
    view: View<'_>,
    full_check: bool,
    msgs: Messages,
    errors: &mut ErrTree,
) {
    let spec = spec(check);
    let mut check_input = Entity::new();
    let mut missing = Vec::new();
    let mut all_nil = true;
    let mut all_ok = true;
    for fname in &spec.fields {
        let value = get_path(input, fname);
        match value {
            None => {
                if !spec.run_with_missing && spec.required.contains(fname) {
                    missing.push(fname.clone());
                }
            }
            Some(v) => {
                all_nil = false;
                if let (Some(f), Value::String(s)) = (view.field(fname), v) {
                    if f.referenceable && crate::vault::is_reference(s) {
                        return;
                    }
                }
                set_path(&mut check_input, fname, v.clone());
            }
        }
        if errors.has(fname) {
            all_ok = false;
        }
    }
    if !all_ok && !spec.run_with_invalid {
        return;
    }
    if all_nil && !(spec.run_with_missing && full_check) {
        return;
    }
    if !missing.is_empty() {
        for m in missing {
            errors.set_path(&m, ErrTree::msg(msgs.required_for_check()));
        }
        return;
    }
    if let Err((arg, custom)) = run_checker(check, &check_input, view, errors) {
        let msg = custom.unwrap_or_else(|| check_message(check, arg, msgs));
        errors.push_entity(msg);
    }
}

impl Schema {
    /// `Schema:validate(input, full_check)`; `update` selects the "when updating" messages of
    /// `validate_update`.
    pub fn validate(&self, input: &Entity, full_check: bool, update: bool) -> Result<(), ErrTree> {
        self.validate_with(input, full_check, update, None, None)
    }

    /// `validate` with the original (pre-defaults) input and the read-before-write entity, used by
    /// transformation checks.
    pub fn validate_with(
        &self,
        input: &Entity,
        full_check: bool,
        update: bool,
        original_input: Option<&Entity>,
        rbw: Option<&Entity>,
    ) -> Result<(), ErrTree> {
        let msgs = Messages { update };
        if let Some(key) = self.subschema_key {
            let key_value = input.get(key);
            if matches!(key_value, None | Some(Value::Null)) {
                let mut e = ErrTree::table();
                e.set(key, ErrTree::msg(REQUIRED));
                return Err(e);
            }
            if self.subschema_for(input).is_none() {
                let shown = match key_value {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(a)) => {
                        a.first().map(tostring).unwrap_or_else(|| "nil".into())
                    }
                    Some(v) => tostring(v),
                    None => String::new(),
                };
                let fmt = self.subschema_error.unwrap_or("unknown type: %s");
                let mut e = ErrTree::table();
                e.set(key, ErrTree::msg(fmt.replace("%s", &shown)));
                return Err(e);
            }
        }
        let sub = self.subschema_for(input).map(|s| &**s);

        let mut errors = ErrTree::table();
        for (k, v) in input {
            if k == "updated_at" || (k == "ttl" && self.ttl) {
                continue;
            }
            match self.resolve_field(k, sub) {
                None => errors.set(k.as_str(), ErrTree::msg(UNKNOWN)),
                Some(f) => {
                    if let Err(e) = validate_field(f, Some(v)) {
                        errors.set(k.as_str(), e);
                    }
                }
            }
        }
        for (name, field) in &self.fields {
            if field.required {
                let missing = match input.get(name) {
                    Some(Value::Null) => true,
                    None => full_check,
                    Some(_) => false,
                };
                if missing {
                    errors.set(name.as_str(), ErrTree::msg(REQUIRED));
                }
            }
        }

        let view = View { schema: self, sub };
        for check in &self.entity_checks {
            run_entity_check(
                check,
                input,
                View { schema: self, sub: None },
                full_check,
                msgs,
                &mut errors,
            );
        }
        if let Some(s) = sub {
            for check in &s.entity_checks {
                run_entity_check(check, input, view, full_check, msgs, &mut errors);
            }
        }
        self.run_transformation_checks(input, original_input, rbw, &mut errors);
        if let Some(s) = sub {
            s.run_transformation_checks(input, original_input, rbw, &mut errors);
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn run_transformation_checks(
        &self,
        input: &Entity,
        original_input: Option<&Entity>,
        rbw: Option<&Entity>,
        errors: &mut ErrTree,
    ) {
        let source = original_input.unwrap_or(input);
        for t in &self.transformations {
            if t.input.is_empty() && t.needs.is_empty() {
                continue;
            }
            let none_set = !t.input.iter().any(|n| is_nonempty(get_path(source, n)));
            let needs_changed = rbw
                .is_some_and(|rbw| t.needs.iter().any(|n| get_path(source, n) != get_path(rbw, n)));
            if !needs_changed && none_set {
                continue;
            }
            let args: Vec<String> =
                t.input.iter().chain(t.needs.iter()).map(|s| (*s).to_owned()).collect();
            let check_on = if needs_changed { source } else { input };
            let set = args.iter().filter(|n| is_nonempty(get_path(check_on, n))).count();
            if set != 0 && set != args.len() {
                errors.push_entity(format!(
                    "all or none of these fields must be set: {}",
                    quoted_list(&args)
                ));
                continue;
            }
            let inputs: Vec<String> = t.input.iter().map(|s| (*s).to_owned()).collect();
            let set = inputs.iter().filter(|n| is_nonempty(get_path(source, n))).count();
            if set != 0 && set != inputs.len() {
                errors.push_entity(format!(
                    "all or none of these fields must be set: {}",
                    quoted_list(&inputs)
                ));
            }
        }
    }

    /// `Schema:validate_primary_key(pk, ignore_others)`.
    pub fn validate_primary_key(&self, pk: &Entity, ignore_others: bool) -> Result<(), ErrTree> {
        let mut errors = ErrTree::table();
        for k in &self.primary_key {
            let Some(field) = self.fields.get(*k) else { continue };
            match pk.get(*k) {
                None | Some(Value::Bool(false)) => errors.set(*k, ErrTree::msg(MISSING_PK)),
                Some(Value::Null) if field.required || field.auto => {
                    errors.set(*k, ErrTree::msg(REQUIRED))
                }
                Some(v) => {
                    if let Err(e) = validate_field(field, Some(v)) {
                        errors.set(*k, e);
                    }
                }
            }
        }
        if !ignore_others {
            for k in pk.keys() {
                if !self.primary_key.contains(&k.as_str()) {
                    errors.set(k.as_str(), ErrTree::msg("not a primary key"));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}
