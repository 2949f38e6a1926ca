//! Port of Kong's `spec/01-unit/01-db/01-schema/05-services_spec.lua` (Kong 3.9).
//!
//! Every case gives the input as JSON (Lua tables), how it is prepared (`Raw` = validated as
//! given, `Insert`/`Update` = `process_auto_fields(input, "insert"|"update")` first), how it is
//! validated (`Full` = `Schema:validate(e)` / `validate_insert`, `UpdateMsgs` =
//! `validate_update`) and what Kong returns. Where Kong's spec only asserts one key of the error
//! table, the case does the same (`At`/`Has`/`Contains`); `Err` compares the whole error table,
//! derived from `kong/db/schema/init.lua` when the spec itself only asserted a key.

mod common;

use common::{
    case, is_uuid, obj, run, Case, Expect, Mode, Prep, A_VALID_UUID, INVALID_NAMES, REQUIRED,
    VALID_NAMES,
};
use serde_json::{json, Value};
use turnpike_core::entities;
use turnpike_core::errors::DaoError;
use turnpike_core::schema::Context;

// ---- cases ------------------------------------------------------------------------------

/// `it("validates a valid service")` .. `it("produces defaults")` (validation part).
fn basic_cases() -> Vec<Case> {
    use Expect::*;
    use Prep::*;
    let protocols = "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp";
    vec![
        case(
            "validates a valid service",
            Insert,
            json!({"id": A_VALID_UUID, "name": "my_service", "protocol": "http", "host": "example.com",
                   "port": 80, "path": "/foo", "connect_timeout": 50, "write_timeout": 100,
                   "read_timeout": 100}),
            vec![Ok],
        ),
        // spec asserts errs.protocol; full table derived from init.lua validate()/REQUIRED
        case(
            "null protocol produces error",
            Insert,
            json!({"protocol": null}),
            vec![Has("/protocol"), Err(json!({"protocol": REQUIRED, "host": REQUIRED}))],
        ),
        Case {
            name: "null protocol produces error on update".into(),
            prep: Update,
            mode: Mode::UpdateMsgs,
            input: json!({"protocol": null}),
            expect: vec![Has("/protocol"), Err(json!({"protocol": REQUIRED}))],
        },
        case(
            "invalid protocol produces error",
            Insert,
            json!({"protocol": "ftp"}),
            vec![Has("/protocol"), Err(json!({"protocol": protocols, "host": REQUIRED}))],
        ),
        case(
            "missing host produces error",
            Insert,
            json!({}),
            vec![Err(json!({"host": REQUIRED}))],
        ),
        case(
            "invalid retries (-1) produces error",
            Insert,
            json!({"retries": -1}),
            vec![Err(json!({"retries": "value should be between 0 and 32767", "host": REQUIRED}))],
        ),
        case(
            "invalid retries (10000000000) produces error",
            Insert,
            json!({"retries": 10000000000i64}),
            vec![Err(json!({"retries": "value should be between 0 and 32767", "host": REQUIRED}))],
        ),
        case("produces defaults (validates)", Insert, json!({"host": "www.example.com"}), vec![Ok]),
    ]
}

/// `describe("timeout attributes")`.
fn timeout_cases() -> Vec<Case> {
    use Expect::*;
    let between = "value should be between 1 and 2147483646";
    vec![
        // spec asserts the three timeouts; `enabled` is required and missing (Raw, full check)
        case(
            "timeouts should not be zero",
            Prep::Raw,
            json!({"host": "example.com", "port": 80, "protocol": "https",
                   "connect_timeout": 0, "read_timeout": 0, "write_timeout": 0}),
            vec![Err(json!({"connect_timeout": between, "read_timeout": between,
                            "write_timeout": between, "enabled": REQUIRED}))],
        ),
        case(
            "timeouts should be greater than zero",
            Prep::Raw,
            json!({"host": "example.com", "port": 80, "protocol": "https",
                   "connect_timeout": 1, "read_timeout": 10, "write_timeout": 100, "enabled": true}),
            vec![Ok],
        ),
    ]
}

/// `describe("path attribute")`.
fn path_cases() -> Vec<Case> {
    use Expect::*;
    let mut v = vec![
        case(
            "path must be a string",
            Prep::Raw,
            json!({"path": false}),
            vec![At("/path", json!("expected a string"))],
        ),
        // full table derived: the `conditional` protocol/path check runs (path present, protocol
        // absent and required by the check) and overwrites `protocol` with
        // REQUIRED_FOR_ENTITY_CHECK (init.lua run_entity_check, "Don't run check if a required
        // field is missing")
        case(
            "path must be a string (full error table)",
            Prep::Raw,
            json!({"path": false}),
            vec![Err(
                json!({"path": "expected a string", "protocol": "field required for entity check",
                            "host": REQUIRED, "port": REQUIRED, "enabled": REQUIRED}),
            )],
        ),
        case(
            "path must be a non-empty string",
            Prep::Raw,
            json!({"path": ""}),
            vec![At("/path", json!("length must be at least 1"))],
        ),
        case(
            "path must start with /",
            Prep::Raw,
            json!({"path": "foo"}),
            vec![At("/path", json!("should start with: /"))],
        ),
    ];
    for p in ["/foo//bar", "/foo/bar//", "//foo/bar"] {
        v.push(case(
            format!("path must not have empty segments: {p}"),
            Prep::Raw,
            json!({"path": p}),
            vec![At("/path", json!("must not have empty segments"))],
        ));
    }
    for p in ["/users/|foo/profile", "/users/(this|foo/profile)"] {
        v.push(case(
            format!("rejects non-rfc 3986 chars: {p}"),
            Prep::Raw,
            json!({"path": p}),
            vec![At(
                "/path",
                json!(format!(
                "invalid path: '{p}' (characters outside of the reserved list of RFC 3986 found)"
            )),
            )],
        ));
    }
    v.push(case(
        "accepts sub-delims characters from RFC 3986 (#6125)",
        Prep::Raw,
        json!({"host": "example.com", "port": 80, "protocol": "http",
               "path": "/hello/path$with$!&'()*+,;=stuff", "enabled": true}),
        vec![Ok],
    ));
    let bad = [
        ("/some%2words", "%2w"),
        ("/some%0Xwords", "%0X"),
        ("/some%2Gwords", "%2G"),
        ("/some%20words%", "%"),
        ("/some%20words%a", "%a"),
        ("/some%20words%ax", "%ax"),
    ];
    for (p, e) in bad {
        v.push(case(
            format!("rejects badly percent-encoded value {p}"),
            Prep::Raw,
            json!({"path": p}),
            vec![Contains("/path", format!("invalid url-encoded value: '{e}'"))],
        ));
    }
    for p in ["/", "/abcd~user~2", "/abcd%aa%10%ff%AA%FF", "/ovo/"] {
        v.push(case(
            format!("accepts path {p}"),
            Prep::Raw,
            json!({"protocol": "http", "host": "example.com", "path": p, "port": 80, "enabled": true}),
            vec![Ok],
        ));
    }
    v
}

/// `describe("host attribute")`.
fn host_cases() -> Vec<Case> {
    use Expect::*;
    let mut v = vec![
        case(
            "host must be a string",
            Prep::Raw,
            json!({"host": false}),
            vec![At("/host", json!("expected a string"))],
        ),
        case(
            "host must be a non-empty string",
            Prep::Raw,
            json!({"host": ""}),
            vec![At("/host", json!("length must be at least 1"))],
        ),
    ];
    let invalid = [
        "/example",
        ".example",
        "example:",
        "mock;bin",
        "example.com/org",
        "example-.org",
        "example.org-",
        "hello..example.com",
        "hello-.example.com",
        "*example.com",
        "www.example*",
        "mock*bin.com",
    ];
    for h in invalid {
        v.push(case(
            format!("rejects invalid hostname {h}"),
            Prep::Raw,
            json!({"host": h}),
            vec![At("/host", json!(format!("invalid value: {h}")))],
        ));
    }
    v.push(case(
        "rejects values with a valid port",
        Prep::Raw,
        json!({"host": "example.com:80"}),
        vec![At("/host", json!("must not have a port"))],
    ));
    v.push(case(
        "rejects values with an invalid port",
        Prep::Raw,
        json!({"host": "example.com:1000000"}),
        vec![At("/host", json!("must not have a port"))],
    ));
    let valid = [
        "hello.com",
        "hello.fr",
        "test.hello.com",
        "1991.io",
        "hello.COM",
        "HELLO.com",
        "123helloWORLD.com",
        "example.123",
        "example-api.com",
        "hello.abcd",
        "example_api.com",
        "localhost",
        "example.test.",
        "3B-ww4c5e180e575a65lsy2b",
        "-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n",
        "Hello-Another-Way--fc4qua05auwb3674vfr0b",
        "2-u9tlzr9756bt3uc0v",
        "MajiKoi5-783gue6qz075azm5e",
        "de-jg4avhby1noc0d",
        "d9juau41awczczp",
    ];
    for h in valid {
        v.push(case(
            format!("accepts host {h}"),
            Prep::Raw,
            json!({"protocol": "http", "host": h, "port": 80, "enabled": true}),
            vec![Ok],
        ));
    }
    v
}

/// `describe("name attribute")`. The invalid-UTF-8 name (`string.char(105, 213, 205, 149)`)
/// cannot be expressed as a JSON string and is skipped.
fn name_cases() -> Vec<Case> {
    use Expect::*;
    let mut v = vec![
        case(
            "name must be a string",
            Prep::Raw,
            json!({"name": false}),
            vec![At("/name", json!("expected a string"))],
        ),
        case(
            "name must be a non-empty string",
            Prep::Raw,
            json!({"name": ""}),
            vec![At("/name", json!("length must be at least 1"))],
        ),
    ];
    for n in INVALID_NAMES {
        v.push(case(
            format!("rejects invalid name {n}"),
            Prep::Raw,
            json!({"url": "http://example.com", "name": n}),
            vec![Contains("/name", "invalid".into())],
        ));
    }
    for n in VALID_NAMES {
        v.push(case(format!("accepts name {n}"), Prep::Raw,
                    json!({"protocol": "http", "host": "example.com", "port": 80, "name": n, "enabled": true}),
                    vec![Ok]));
    }
    v
}

/// `describe("stream context")`.
fn stream_cases() -> Vec<Case> {
    use Expect::*;
    let mut v = Vec::new();
    for p in ["tcp", "tls", "udp", "grpc", "grpcs"] {
        v.push(case(
            format!("'protocol' accepts '{p}'"),
            Prep::Raw,
            json!({"protocol": p, "host": "x.y", "port": 80, "enabled": true}),
            vec![Ok],
        ));
    }
    for p in ["tcp", "tls", "udp", "grpc", "grpcs"] {
        // spec asserts errs.path; the `@entity` entry is the conditional's own message
        v.push(case(
            format!("if 'protocol = {p}', then 'path' is empty"),
            Prep::Raw,
            json!({"protocol": p, "host": "x.y", "port": 80, "path": "/", "enabled": true}),
            vec![
                At("/path", json!("value must be null")),
                Err(json!({"path": "value must be null",
                           "@entity": ["failed conditional validation given value of field 'protocol'"]})),
            ],
        ));
    }
    v
}

#[test]
fn services_basic() {
    run(&entities::services(), basic_cases());
}

#[test]
fn services_timeouts() {
    run(&entities::services(), timeout_cases());
}

#[test]
fn services_path_attribute() {
    run(&entities::services(), path_cases());
}

#[test]
fn services_host_attribute() {
    run(&entities::services(), host_cases());
}

#[test]
fn services_name_attribute() {
    run(&entities::services(), name_cases());
}

#[test]
fn services_stream_context() {
    run(&entities::services(), stream_cases());
}

/// `it("produces defaults")`: the values `process_auto_fields(e, "insert")` fills in.
#[test]
fn services_produces_defaults() {
    let s = entities::services();
    let e = s
        .process_auto_fields(&obj(&json!({"host": "www.example.com"})), Context::Insert, false)
        .unwrap();
    assert_eq!(s.validate(&e, true, false), Ok(()));
    assert!(e["id"].as_str().is_some_and(is_uuid), "id: {}", e["id"]);
    let want = [
        ("name", Value::Null),
        ("protocol", json!("http")),
        ("host", json!("www.example.com")),
        ("port", json!(80)),
        ("path", Value::Null),
        ("retries", json!(5)),
        ("connect_timeout", json!(60000)),
        ("write_timeout", json!(60000)),
        ("read_timeout", json!(60000)),
    ];
    for (k, v) in want {
        assert_eq!(e.get(k), Some(&v), "field {k} in {}", Value::Object(e.clone()));
    }
}

/// The schema-violation message Kong builds from the stream-context error table
/// (`kong/db/errors.lua` `schema_violation`: `@entity` messages first, then sorted fields).
#[test]
fn services_schema_violation_message() {
    let s = entities::services();
    let input =
        obj(&json!({"protocol": "tcp", "host": "x.y", "port": 80, "path": "/", "enabled": true}));
    let err = s.validate(&input, true, false).unwrap_err();
    assert_eq!(
        DaoError::schema_violation(&err).message,
        "2 schema violations (failed conditional validation given value of field 'protocol'; path: value must be null)"
    );
}

/// Derived cases (not in the spec): TLS-only fields, update messages and the `url` shorthand,
/// with expectations from `entities/services.lua` and `kong/db/schema/init.lua`.
#[test]
fn services_derived() {
    use Expect::*;
    use Prep::*;
    let cond = json!(["failed conditional validation given value of field 'protocol'"]);
    let update = |name: &str, input: Value, expect: Vec<Expect>| Case {
        name: name.into(),
        prep: Update,
        mode: Mode::UpdateMsgs,
        input,
        expect,
    };
    run(
        &entities::services(),
        vec![
            case(
                "tls_verify needs https/tls",
                Insert,
                json!({"host": "x.y", "tls_verify": true}),
                vec![Err(json!({"tls_verify": "value must be null", "@entity": cond}))],
            ),
            case(
                "client_certificate needs https/tls",
                Insert,
                json!({"host": "x.y", "client_certificate": {"id": A_VALID_UUID}}),
                vec![Err(json!({"client_certificate": "value must be null", "@entity": cond}))],
            ),
            case(
                "tls_verify_depth on https",
                Insert,
                json!({"host": "x.y", "protocol": "https", "tls_verify": true, "tls_verify_depth": 65}),
                vec![Err(json!({"tls_verify_depth": "value should be between 0 and 64"}))],
            ),
            case(
                "ca_certificates must be uuids",
                Insert,
                json!({"host": "x.y", "protocol": "https", "ca_certificates": ["abc"]}),
                vec![Err(json!({"ca_certificates": ["expected a valid UUID"]}))],
            ),
            // conditional check: path present, protocol absent -> REQUIRED_FOR_ENTITY_CHECK,
            // rewritten by validate_update
            update(
                "update with path only",
                json!({"path": "/foo"}),
                vec![Err(json!({"protocol": "field required for entity check when updating"}))],
            ),
            update(
                "update tcp with a path",
                json!({"protocol": "tcp", "path": "/"}),
                vec![Err(json!({"path": "value must be null", "@entity": cond}))],
            ),
            update("update with host only", json!({"host": "example.com"}), vec![Ok]),
            // url shorthand (services.lua shorthand_fields.url)
            case(
                "url https://example.com/foo",
                Insert,
                json!({"url": "https://example.com/foo"}),
                vec![Ok],
            ),
            case(
                "url example.com (no scheme: path, no host)",
                Insert,
                json!({"url": "example.com"}),
                vec![Err(json!({"host": REQUIRED, "path": "should start with: /"}))],
            ),
            case(
                "url with a non-numeric port",
                Insert,
                json!({"url": "http://example.com:abc/"}),
                vec![Err(json!({"port": "expected an integer"}))],
            ),
            case(
                "url with an unknown scheme",
                Insert,
                json!({"url": "ftp://example.com"}),
                vec![At(
                    "/protocol",
                    json!(
                        "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp"
                    ),
                )],
            ),
        ],
    );
}

/// Derived: what the `url` shorthand expands to (`services.lua`: scheme, else 80->http /
/// 443->https, else http; port from the URL, else 80/443 by protocol; path or null).
#[test]
fn services_url_shorthand_expansion() {
    let s = entities::services();
    let cases = [
        (
            "https://example.com/foo",
            json!({"protocol": "https", "host": "example.com", "port": 443, "path": "/foo"}),
        ),
        (
            "http://example.com:8080",
            json!({"protocol": "http", "host": "example.com", "port": 8080, "path": null}),
        ),
        (
            "//example.com:443",
            json!({"protocol": "https", "host": "example.com", "port": 443, "path": null}),
        ),
        (
            "http://example.com:443/",
            json!({"protocol": "http", "host": "example.com", "port": 443, "path": "/"}),
        ),
        (
            "grpc://example.com",
            json!({"protocol": "grpc", "host": "example.com", "port": 80, "path": null}),
        ),
    ];
    let mut failures = Vec::new();
    for (url, want) in cases {
        let e = s.process_auto_fields(&obj(&json!({"url": url})), Context::Insert, false).unwrap();
        if e.contains_key("url") {
            failures.push(format!("{url}: url kept"));
        }
        for (k, v) in want.as_object().unwrap() {
            if e.get(k) != Some(v) {
                failures.push(format!("{url}: {k} = {:?}, want {v}", e.get(k)));
            }
        }
    }
    // a non-string url is rejected by the shorthand's own validation
    match s.process_auto_fields(&obj(&json!({"url": 42})), Context::Insert, false) {
        Err(e) if e.to_json() == json!({"url": "expected a string"}) => {}
        other => failures.push(format!("url = 42: {:?}", other.map_err(|e| e.to_json()))),
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
