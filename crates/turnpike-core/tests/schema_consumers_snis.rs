//! Port of Kong's `spec/01-unit/01-db/01-schema/14-consumers_spec.lua` and `11-snis_spec.lua`
//! (Kong 3.9), plus a few consumer cases derived from `entities/consumers.lua` and
//! `Schema:validate_update` (marked "derived").
//!
//! Cases give the input as JSON (Lua tables), how it is prepared (`Raw` = validated as given,
//! `Insert`/`Update` = `process_auto_fields(input, "insert"|"update")` first), how it is
//! validated (`Full` = `validate`, `UpdateMsgs` = `validate_update`) and what Kong returns.

// The table-driven harness is shared (copied) between the schema_* test files; not every
// variant is used in every file.
#![allow(dead_code)]

use serde_json::{json, Value};
use turnpike_core::entities;
use turnpike_core::schema::{Context, Entity, Schema};

// ---- table-driven harness ---------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Prep {
    Raw,
    Insert,
    Update,
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Full,
    UpdateMsgs,
}

#[derive(Debug)]
enum Expect {
    Ok,
    /// The whole error table.
    Err(Value),
    /// The error at a JSON pointer equals the value.
    At(&'static str, Value),
    /// Something (non-null) is at the JSON pointer.
    Has(&'static str),
    /// The error at the JSON pointer is a string containing the substring.
    Contains(&'static str, String),
}

struct Case {
    name: String,
    prep: Prep,
    mode: Mode,
    input: Value,
    expect: Vec<Expect>,
}

fn case(name: impl Into<String>, prep: Prep, input: Value, expect: Vec<Expect>) -> Case {
    Case { name: name.into(), prep, mode: Mode::Full, input, expect }
}

fn obj(v: &Value) -> Entity {
    v.as_object().cloned().expect("test input must be a JSON object")
}

fn prepare(schema: &Schema, prep: Prep, input: &Value) -> Result<Entity, Value> {
    let e = obj(input);
    match prep {
        Prep::Raw => Ok(e),
        Prep::Insert => {
            schema.process_auto_fields(&e, Context::Insert, false).map_err(|e| e.to_json())
        }
        Prep::Update => {
            schema.process_auto_fields(&e, Context::Update, false).map_err(|e| e.to_json())
        }
    }
}

fn check(expect: &[Expect], got: &Result<(), Value>) -> Option<String> {
    for ex in expect {
        let problem = match (ex, got) {
            (Expect::Ok, Ok(())) => None,
            (Expect::Ok, Err(e)) => Some(format!("expected ok, got {e}")),
            (_, Ok(())) => Some(format!("expected an error ({ex:?}), got ok")),
            (Expect::Err(want), Err(e)) => (want != e).then(|| format!("expected {want}, got {e}")),
            (Expect::At(p, want), Err(e)) => match e.pointer(p) {
                Some(v) if v == want => None,
                other => Some(format!("expected {p} = {want}, got {other:?} in {e}")),
            },
            (Expect::Has(p), Err(e)) => match e.pointer(p) {
                Some(v) if !v.is_null() => None,
                _ => Some(format!("expected an error at {p}, got {e}")),
            },
            (Expect::Contains(p, sub), Err(e)) => match e.pointer(p).and_then(Value::as_str) {
                Some(s) if s.contains(sub.as_str()) => None,
                other => Some(format!("expected {p} to contain {sub:?}, got {other:?} in {e}")),
            },
        };
        if problem.is_some() {
            return problem;
        }
    }
    None
}

fn run(schema: &Schema, cases: Vec<Case>) {
    let total = cases.len();
    let mut failures = Vec::new();
    for c in cases {
        let entity = match prepare(schema, c.prep, &c.input) {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!("[{}] process_auto_fields failed: {e}", c.name));
                continue;
            }
        };
        let got = match c.mode {
            Mode::Full => schema.validate(&entity, true, false),
            Mode::UpdateMsgs => schema.validate(&entity, false, true),
        }
        .map_err(|e| e.to_json());
        if let Some(p) = check(&c.expect, &got) {
            failures.push(format!("[{}] input {} -> {p}", c.name, c.input));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---- consumers --------------------------------------------------------------------------

fn consumer_cases() -> Vec<Case> {
    use Expect::*;
    use Prep::*;
    let at_least = "at least one of these fields must be non-empty: 'custom_id', 'username'";
    let mut v: Vec<Case> = [
        "example",
        "EXAMPLE",
        "exa.mp.le",
        "3x4mp13",
        "3x4-mp-13",
        "3x4_mp_13",
        "~3x4~mp~13",
        "~3..x4~.M-p~1__3_",
        "孔",
        "Конг",
        "🦍",
    ]
    .into_iter()
    .map(|n| case(format!("username attribute accepts {n}"), Raw, json!({"username": n}), vec![Ok]))
    .collect();
    // derived from consumers.lua `{ at_least_one_of = { "custom_id", "username" } }`
    v.push(case(
        "derived: insert without username/custom_id",
        Insert,
        json!({}),
        vec![Err(json!({"@entity": [at_least]}))],
    ));
    v.push(case(
        "derived: insert with custom_id only",
        Insert,
        json!({"custom_id": "abc"}),
        vec![Ok],
    ));
    v.push(Case {
        name: "derived: empty update".into(),
        prep: Update,
        mode: Mode::UpdateMsgs,
        input: json!({}),
        expect: vec![Ok],
    });
    // validate_update rewrites AT_LEAST_ONE_OF as "when updating, ..."
    v.push(Case {
        name: "derived: update with an empty username".into(),
        prep: Update,
        mode: Mode::UpdateMsgs,
        input: json!({"username": ""}),
        expect: vec![Err(json!({"username": "length must be at least 1",
                                "@entity": [format!("when updating, {at_least}")]}))],
    });
    v
}

#[test]
fn consumers_schema() {
    run(&entities::consumers(), consumer_cases());
}

// ---- snis -------------------------------------------------------------------------------

/// `describe("snis")`: `validate(b)` is `Snis:validate(Snis:process_auto_fields(b, "insert"))`.
fn sni_cases() -> Vec<Case> {
    use Expect::*;
    let certificate = json!({"id": "a4fbd24e-6a52-4937-bd78-2536713072d2"});
    let mut v = Vec::new();
    let mut add = |name: &str, expect: Vec<Expect>| {
        v.push(case(
            format!("name {name}"),
            Prep::Insert,
            json!({"name": name, "certificate": certificate}),
            expect,
        ));
    };
    // accepts a hostname / a * for default certificate / wildcards
    for n in [
        "valid.name",
        "foo.valid.name",
        "bar.foo.valid.name",
        "*",
        "*.wildcard.com",
        "wildcard.*",
        "test.wildcard.*",
        "foo.test.wildcard.*",
        "*.test.wildcard.com",
    ] {
        add(n, vec![Ok]);
    }
    for n in ["foo.*.com", "foo.*.wildcard.com"] {
        add(n, vec![Err(json!({"name": "wildcard must be leftmost or rightmost character"}))]);
    }
    for n in ["*.example.*", "*.foo.*.wildcard.com", "*.*.wildcard.*"] {
        add(n, vec![Err(json!({"name": "only one wildcard must be specified"}))]);
    }
    // "rejects wildcard with port": the spec accepts any of three messages per name; these
    // are the ones `typedefs.lua` validate_wildcard_host produces for each
    add("*.wildcard.com:8000", vec![Err(json!({"name": "must not have a port"}))]);
    add(
        "wildcard.*:80",
        vec![Err(json!({"name": "wildcard must be leftmost or rightmost character"}))],
    );
    add(
        "test.wildcard.*:80",
        vec![Err(json!({"name": "wildcard must be leftmost or rightmost character"}))],
    );
    add(
        "test.wildcard.com:*",
        vec![Err(json!({"name": "invalid value: test.wildcard.com:wildcard"}))],
    );
    for n in ["valid.name:8000", "foo.valid.name:443"] {
        add(n, vec![Err(json!({"name": "must not have a port"}))]);
    }
    for n in ["127.0.0.1", "10.0.0.1", "10.0.0.1:8001", "::1"] {
        add(n, vec![Err(json!({"name": "must not be an IP"}))]);
    }
    add("example^com", vec![Err(json!({"name": "invalid value: example^com"}))]);
    v
}

#[test]
fn snis_name() {
    run(&entities::snis(), sni_cases());
}
