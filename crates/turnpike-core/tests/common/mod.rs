//! The table-driven harness shared by the `schema_*` tests (ports of Kong's
//! `spec/01-unit/01-db/01-schema/*_spec.lua`).
//!
//! A [`Case`] gives the input as JSON (a Lua table), how it is prepared ([`Prep`]: `Raw` =
//! validated as given, `Insert`/`Update` = `process_auto_fields(input, "insert"|"update")`
//! first), how it is validated ([`Mode`]: `Full` = `Schema:validate(e)` / `validate_insert`,
//! `UpdateMsgs` = `validate_update`) and what Kong returns ([`Expect`]). Where Kong's spec only
//! asserts one key of the error table, the case does the same (`At`/`Has`/`Contains`/`Absent`);
//! `Err` compares the whole error table.
//!
//! [`run`] runs every case of a table and reports all failing ones at once.

// Every test binary compiles its own copy of this module and none uses all of it.
#![allow(dead_code)]

use serde_json::Value;
use turnpike_core::schema::{Context, Entity, Schema};

/// How a case's input is prepared before validation.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Prep {
    /// Validated as given.
    Raw,
    /// `process_auto_fields(input, "insert")` first.
    Insert,
    /// `process_auto_fields(input, "update")` first.
    Update,
}

/// How a case's entity is validated.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// `Schema:validate(e)` / `validate_insert`.
    Full,
    /// `validate_update`.
    UpdateMsgs,
}

/// What validation must give; a case may check several.
#[derive(Debug)]
pub(crate) enum Expect {
    Ok,
    /// The whole error table.
    Err(Value),
    /// The error at a JSON pointer equals the value.
    At(&'static str, Value),
    /// Something (non-null) is at the JSON pointer.
    Has(&'static str),
    /// The error at the JSON pointer is a string containing the substring.
    Contains(&'static str, String),
    /// Nothing is at the JSON pointer.
    Absent(&'static str),
}

/// One row of a table.
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) prep: Prep,
    pub(crate) mode: Mode,
    pub(crate) input: Value,
    pub(crate) expect: Vec<Expect>,
}

/// A case validated with [`Mode::Full`].
pub(crate) fn case(name: impl Into<String>, prep: Prep, input: Value, expect: Vec<Expect>) -> Case {
    Case { name: name.into(), prep, mode: Mode::Full, input, expect }
}

/// The input as an entity; panics when it is not a JSON object.
pub(crate) fn obj(v: &Value) -> Entity {
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

/// The first expectation `got` does not meet, described.
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
            (Expect::Absent(p), Err(e)) => {
                e.pointer(p).map(|v| format!("expected nothing at {p}, got {v} in {e}"))
            }
        };
        if problem.is_some() {
            return problem;
        }
    }
    None
}

/// Runs every case against `schema`; fails listing all the cases that did not pass.
#[track_caller]
pub(crate) fn run(schema: &Schema, cases: Vec<Case>) {
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
    assert_all_passed(total, &failures);
}

/// Fails listing `failures` (one line per failing case) unless there are none.
#[track_caller]
pub(crate) fn assert_all_passed(total: usize, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {total} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

pub(crate) const REQUIRED: &str = "required field missing";

/// Names Kong's specs accept for every `name`-like field (`typedefs.utf8_name`).
pub(crate) const VALID_NAMES: [&str; 11] = [
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
];

/// Names Kong's specs reject for `name` fields.
pub(crate) const INVALID_NAMES: [&str; 4] = ["examp:le", "examp;le", "examp/le", "examp le"];
pub(crate) const A_VALID_UUID: &str = "cbb297c0-a956-486d-ad1d-f9b42df9465a";

/// A canonical hyphenated UUID (any version).
pub(crate) fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}
