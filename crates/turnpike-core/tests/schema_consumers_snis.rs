//! Port of Kong's `spec/01-unit/01-db/01-schema/14-consumers_spec.lua` and `11-snis_spec.lua`
//! (Kong 3.9), plus a few consumer cases derived from `entities/consumers.lua` and
//! `Schema:validate_update` (marked "derived").
//!
//! Cases give the input as JSON (Lua tables), how it is prepared (`Raw` = validated as given,
//! `Insert`/`Update` = `process_auto_fields(input, "insert"|"update")` first), how it is
//! validated (`Full` = `validate`, `UpdateMsgs` = `validate_update`) and what Kong returns.

mod common;

use common::{case, run, Case, Expect, Mode, Prep, VALID_NAMES};
use serde_json::json;
use turnpike_core::entities;

// ---- consumers --------------------------------------------------------------------------

fn consumer_cases() -> Vec<Case> {
    use Expect::*;
    use Prep::*;
    let at_least = "at least one of these fields must be non-empty: 'custom_id', 'username'";
    let mut v: Vec<Case> = VALID_NAMES
        .into_iter()
        .map(|n| {
            case(format!("username attribute accepts {n}"), Raw, json!({"username": n}), vec![Ok])
        })
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
