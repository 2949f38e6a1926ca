//! Renders schemas the way `GET /schemas/{entity}` does (`api_helpers.schema_to_jsonable`):
//! `{"fields": [{"name": {…}}, …], "entity_checks": [{"check": {…}}, …]}`.

use serde_json::{json, Map, Value};

use super::{EntityCheck, Field, FieldMatch, OnDelete, Schema, Type, Validators};

fn validators_json(v: &Validators, out: &mut Map<String, Value>) {
    if let Some(x) = &v.eq {
        out.insert("eq".into(), x.clone());
    }
    if let Some(x) = &v.ne {
        out.insert("ne".into(), x.clone());
    }
    if let Some(x) = &v.not_one_of {
        out.insert("not_one_of".into(), Value::Array(x.clone()));
    }
    if let Some(x) = &v.one_of {
        out.insert("one_of".into(), Value::Array(x.clone()));
    }
    if let Some(x) = v.gt {
        out.insert("gt".into(), num(x));
    }
    if v.timestamp {
        out.insert("timestamp".into(), json!(true));
    }
    if v.uuid {
        out.insert("uuid".into(), json!(true));
    }
    if v.is_regex {
        out.insert("is_regex".into(), json!(true));
    }
    if let Some((lo, hi)) = v.between {
        out.insert("between".into(), json!([num(lo), num(hi)]));
    }
    if let Some(x) = v.len_eq {
        out.insert("len_eq".into(), json!(x));
    }
    if let Some(x) = v.len_min {
        out.insert("len_min".into(), json!(x));
    }
    if let Some(x) = v.len_max {
        out.insert("len_max".into(), json!(x));
    }
    if let Some(x) = &v.starts_with {
        out.insert("starts_with".into(), json!(x));
    }
    if let Some(x) = &v.not_match {
        out.insert("not_match".into(), json!(x.as_str()));
    }
    if !v.match_none.is_empty() {
        let list: Vec<Value> =
            v.match_none.iter().map(|(p, e)| json!({"pattern": p.as_str(), "err": e})).collect();
        out.insert("match_none".into(), Value::Array(list));
    }
    if let Some(x) = &v.match_ {
        out.insert("match".into(), json!(x.as_str()));
    }
    if !v.match_all.is_empty() {
        let list: Vec<Value> =
            v.match_all.iter().map(|(p, e)| json!({"pattern": p.as_str(), "err": e})).collect();
        out.insert("match_all".into(), Value::Array(list));
    }
    if let Some((patterns, err)) = &v.match_any {
        let ps: Vec<&str> = patterns.iter().map(|p| p.as_str()).collect();
        out.insert("match_any".into(), json!({"patterns": ps, "err": err}));
    }
    if let Some(x) = &v.contains {
        out.insert("contains".into(), x.clone());
    }
    if let Some(x) = &v.mutually_exclusive_subsets {
        out.insert("mutually_exclusive_subsets".into(), json!(x));
    }
}

fn num(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        json!(f as i64)
    } else {
        json!(f)
    }
}

impl Field {
    /// The field's properties as Kong renders them (functions omitted).
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("type".into(), json!(self.ty.name()));
        if let Some(d) = self.description {
            out.insert("description".into(), json!(d));
        }
        if self.required {
            out.insert("required".into(), json!(true));
        } else if self.explicit_optional {
            out.insert("required".into(), json!(false));
        }
        if let Some(d) = &self.default {
            out.insert("default".into(), d.clone());
        }
        if self.auto {
            out.insert("auto".into(), json!(true));
        }
        if self.unique {
            out.insert("unique".into(), json!(true));
        }
        if self.unique_across_ws {
            out.insert("unique_across_ws".into(), json!(true));
        }
        if self.immutable {
            out.insert("immutable".into(), json!(true));
        }
        if self.is_abstract {
            out.insert("abstract".into(), json!(true));
        }
        if self.transient {
            out.insert("transient".into(), json!(true));
        }
        if self.referenceable {
            out.insert("referenceable".into(), json!(true));
        }
        if self.encrypted {
            out.insert("encrypted".into(), json!(true));
        }
        if let Some(e) = &self.err {
            out.insert("err".into(), json!(e));
        }
        if let Some(o) = self.on_delete {
            let s = match o {
                OnDelete::Cascade => "cascade",
                OnDelete::Restrict => "restrict",
            };
            out.insert("on_delete".into(), json!(s));
        }
        validators_json(&self.v, &mut out);
        match &self.ty {
            Type::Array(e) | Type::Set(e) => {
                out.insert("elements".into(), e.to_json());
            }
            Type::Map(k, v) => {
                out.insert("keys".into(), k.to_json());
                out.insert("values".into(), v.to_json());
            }
            Type::Record(s) => {
                out.insert("fields".into(), s.fields_json());
                if !s.entity_checks.is_empty() {
                    out.insert("entity_checks".into(), s.checks_json());
                }
            }
            Type::Foreign(r) => {
                out.insert("reference".into(), json!(r));
            }
            _ => {}
        }
        Value::Object(out)
    }
}

impl FieldMatch {
    fn to_json(&self) -> Value {
        let mut out = Map::new();
        if let Some(r) = self.required {
            out.insert("required".into(), json!(r));
        }
        if let Some(e) = &self.elements {
            out.insert("elements".into(), e.to_json());
        }
        validators_json(&self.v, &mut out);
        Value::Object(out)
    }
}

impl EntityCheck {
    pub fn to_json(&self) -> Value {
        match self {
            EntityCheck::AtLeastOneOf(n) => json!({"at_least_one_of": n}),
            EntityCheck::OnlyOneOf(n) => json!({"only_one_of": n}),
            EntityCheck::Distinct(n) => json!({"distinct": n}),
            EntityCheck::MutuallyRequired(n) => json!({"mutually_required": n}),
            EntityCheck::MutuallyExclusive(n) => json!({"mutually_exclusive": n}),
            EntityCheck::MutuallyExclusiveSets { set1, set2 } => {
                json!({"mutually_exclusive_sets": {"set1": set1, "set2": set2}})
            }
            EntityCheck::Conditional { if_field, if_match, then_field, then_match, then_err } => {
                let mut c = Map::new();
                c.insert("if_field".into(), json!(if_field));
                c.insert("if_match".into(), if_match.to_json());
                c.insert("then_field".into(), json!(then_field));
                c.insert("then_match".into(), then_match.to_json());
                if let Some(e) = then_err {
                    c.insert("then_err".into(), json!(e));
                }
                json!({"conditional": c})
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
                let mut c = Map::new();
                c.insert("if_field".into(), json!(if_field));
                c.insert("if_match".into(), if_match.to_json());
                c.insert("then_at_least_one_of".into(), json!(then_at_least_one_of));
                if let Some(e) = then_err {
                    c.insert("then_err".into(), json!(e));
                }
                if let Some(m) = else_match {
                    c.insert("else_match".into(), m.to_json());
                }
                if !else_then_at_least_one_of.is_empty() {
                    c.insert("else_then_at_least_one_of".into(), json!(else_then_at_least_one_of));
                }
                if let Some(e) = else_then_err {
                    c.insert("else_then_err".into(), json!(e));
                }
                json!({"conditional_at_least_one_of": c})
            }
            EntityCheck::Custom { field_sources, run_with_missing_fields, .. } => {
                let mut c = Map::new();
                c.insert("field_sources".into(), json!(field_sources));
                if *run_with_missing_fields {
                    c.insert("run_with_missing_fields".into(), json!(true));
                }
                json!({"custom_entity_check": c})
            }
        }
    }
}

impl Schema {
    fn fields_json(&self) -> Value {
        Value::Array(self.fields.iter().map(|(k, f)| json!({ k.as_str(): f.to_json() })).collect())
    }

    fn checks_json(&self) -> Value {
        Value::Array(self.entity_checks.iter().map(EntityCheck::to_json).collect())
    }

    /// `GET /schemas/{name}` body.
    pub fn to_json(&self) -> Value {
        json!({ "fields": self.fields_json(), "entity_checks": self.checks_json() })
    }
}
