//! Port of Kong's `spec/01-unit/01-db/01-schema/09-upstreams_spec.lua` and
//! `08-targets_spec.lua` (Kong 3.9).
//!
//! Cases give the input as JSON (Lua tables), how it is prepared (`Raw` = validated as given,
//! `Insert`/`Update` = `process_auto_fields(input, "insert"|"update")` first) and what Kong
//! returns. Where the spec only asserts one key of the error table the case does the same
//! (`At`/`Has`/`Contains`); `Err` compares the whole error table.

mod common;

use common::{case, is_uuid, obj, run, Case, Expect, Prep, A_VALID_UUID, REQUIRED};
use serde_json::{json, Value};
use turnpike_core::entities;
use turnpike_core::schema::Context;

fn cond(field: &str) -> Value {
    json!([format!("failed conditional validation given value of field '{field}'")])
}

// ---- upstreams --------------------------------------------------------------------------

/// `describe("load upstreams")`: the `validate(b)` helper is
/// `Upstreams:validate(Upstreams:process_auto_fields(b, "insert"))`.
fn upstream_cases() -> Vec<Case> {
    use Expect::*;
    use Prep::*;
    let fallback_not_consumer =
        "expected one of: none, ip, header, cookie, path, query_arg, uri_capture";
    let fallback_not_ip =
        "expected one of: none, consumer, header, cookie, path, query_arg, uri_capture";
    let fallback_not_path =
        "expected one of: none, consumer, header, cookie, query_arg, ip, uri_capture";
    vec![
        case(
            "validates a valid load upstream",
            Insert,
            json!({"id": A_VALID_UUID, "name": "my_service", "hash_on": "header", "hash_on_header": "X-Balance",
                   "hash_fallback": "cookie", "hash_on_cookie": "a_cookie"}),
            vec![Ok],
        ),
        // "invalid name produces error" (spec asserts errs.name); messages from upstreams.lua validate_name
        case("invalid name 1234", Insert, json!({"name": "1234"}),
             vec![Err(json!({"name": "Invalid name ('1234'); must be a valid hostname"}))]),
        case("invalid name 'fafa fafa'", Insert, json!({"name": "fafa fafa"}),
             vec![Err(json!({"name": "Invalid name ('fafa fafa'); must be a valid hostname"}))]),
        case("invalid name 192.168.0.1", Insert, json!({"name": "192.168.0.1"}),
             vec![Err(json!({"name": "Invalid name ('192.168.0.1'); no ip addresses allowed"}))]),
        case("invalid name myserver:8000", Insert, json!({"name": "myserver:8000"}),
             vec![Err(json!({"name": "Invalid name ('myserver:8000'); no port allowed"}))]),
        case("invalid hash_on_cookie produces error", Insert, json!({"hash_on_cookie": "a cookie"}),
             vec![Has("/hash_on_cookie")]),
        case("invalid healthchecks.active.timeout", Insert, json!({"healthchecks": {"active": {"timeout": -1}}}),
             vec![Has("/healthchecks/active/timeout")]),
        case("invalid healthchecks.active.concurrency", Insert,
             json!({"healthchecks": {"active": {"concurrency": -1}}}),
             vec![Has("/healthchecks/active/concurrency")]),
        // "invalid healthchecks.active.headers produces error": see
        // `upstreams_invalid_healthchecks_active_headers` (discrepancy)
        case("invalid healthchecks.active.http_path", Insert,
             json!({"healthchecks": {"active": {"http_path": "potato"}}}),
             vec![Has("/healthchecks/active/http_path")]),
        case("invalid healthchecks.active.healthy.interval", Insert,
             json!({"healthchecks": {"active": {"healthy": {"interval": -1}}}}),
             vec![Has("/healthchecks/active/healthy/interval")]),
        case("invalid healthchecks.active.healthy.successes", Insert,
             json!({"healthchecks": {"active": {"healthy": {"successes": -1}}}}),
             vec![Has("/healthchecks/active/healthy/successes")]),
        case("invalid healthchecks.active.healthy.http_statuses", Insert,
             json!({"healthchecks": {"active": {"healthy": {"http_statuses": "potato"}}}}),
             vec![Has("/healthchecks/active/healthy/http_statuses")]),
        // conditional checks (spec asserts the then_field); full tables derived from the
        // `conditional` entity checker (REQUIRED on then_field + CONDITIONAL in @entity)
        case("hash_on = 'header' makes hash_on_header required", Insert, json!({"hash_on": "header"}),
             vec![Err(json!({"name": REQUIRED, "hash_on_header": REQUIRED, "@entity": cond("hash_on")}))]),
        case("hash_fallback = 'header' makes hash_fallback_header required", Insert,
             json!({"hash_fallback": "header"}),
             vec![Has("/hash_fallback_header")]),
        case("hash_on = 'cookie' makes hash_on_cookie required", Insert, json!({"hash_on": "cookie"}),
             vec![Err(json!({"name": REQUIRED, "hash_on_cookie": REQUIRED, "@entity": cond("hash_on")}))]),
        case("hash_fallback = 'cookie' makes hash_on_cookie required", Insert, json!({"hash_fallback": "cookie"}),
             vec![Has("/hash_on_cookie")]),
        case("hash_on = 'none' requires that hash_fallback is also none", Insert,
             json!({"hash_on": "none", "hash_fallback": "header"}),
             vec![Has("/hash_fallback"), At("/hash_fallback", json!("expected one of: none"))]),
        case("hash_on = 'cookie' requires that hash_fallback is also none", Insert,
             json!({"hash_on": "cookie", "hash_fallback": "header"}),
             vec![Has("/hash_fallback"), At("/hash_fallback", json!("expected one of: none"))]),
        case("hash_on must be different from hash_fallback (consumer)", Insert,
             json!({"hash_on": "consumer", "hash_fallback": "consumer"}),
             vec![Err(json!({"name": REQUIRED, "hash_fallback": fallback_not_consumer, "@entity": cond("hash_on")}))]),
        case("hash_on must be different from hash_fallback (ip)", Insert,
             json!({"hash_on": "ip", "hash_fallback": "ip"}),
             vec![At("/hash_fallback", json!(fallback_not_ip))]),
        case("hash_on must be different from hash_fallback (path)", Insert,
             json!({"hash_on": "path", "hash_fallback": "path"}),
             vec![At("/hash_fallback", json!(fallback_not_path))]),
        case("hash_on = 'query_arg' makes hash_on_query_arg required", Insert, json!({"hash_on": "query_arg"}),
             vec![Has("/hash_on_query_arg")]),
        case("hash_fallback = 'query_arg' makes hash_fallback_query_arg required", Insert,
             json!({"hash_on": "ip", "hash_fallback": "query_arg"}),
             vec![Has("/hash_fallback_query_arg")]),
        case(
            "hash_on and hash_fallback must be different query args",
            Insert,
            json!({"hash_on": "query_arg", "hash_on_query_arg": "same", "hash_fallback": "query_arg",
                   "hash_fallback_query_arg": "same"}),
            vec![At("/@entity", json!([
                "values of these fields must be distinct: 'hash_on_query_arg', 'hash_fallback_query_arg'"
            ]))],
        ),
        case("hash_on_query_arg must not be an empty string", Insert,
             json!({"name": "test", "hash_on": "query_arg", "hash_on_query_arg": ""}),
             vec![Has("/hash_on_query_arg"),
                  Err(json!({"hash_on_query_arg": "length must be at least 1", "@entity": cond("hash_on")}))]),
        case("hash_fallback_query_arg must not be an empty string", Insert,
             json!({"name": "test", "hash_on": "query_arg", "hash_on_query_arg": "ok", "hash_fallback": "query_arg",
                    "hash_fallback_query_arg": ""}),
             vec![Has("/hash_fallback_query_arg")]),
        case(
            "hash_on and hash_fallback must be different uri captures",
            Insert,
            json!({"hash_on": "uri_capture", "hash_on_uri_capture": "same", "hash_fallback": "uri_capture",
                   "hash_fallback_uri_capture": "same"}),
            vec![At("/@entity", json!([
                "values of these fields must be distinct: 'hash_on_uri_capture', 'hash_fallback_uri_capture'"
            ]))],
        ),
        case("hash_on_uri_capture must not be an empty string", Insert,
             json!({"name": "test", "hash_on": "uri_capture", "hash_on_uri_capture": ""}),
             vec![Has("/hash_on_uri_capture")]),
        case("hash_fallback_uri_capture must not be an empty string", Insert,
             json!({"name": "test", "hash_on": "uri_capture", "hash_on_uri_capture": "ok",
                    "hash_fallback": "uri_capture", "hash_fallback_uri_capture": ""}),
             vec![Has("/hash_fallback_uri_capture")]),
        case("produces set use_srv_name flag", Insert, json!({"name": "www.example.com", "use_srv_name": true}),
             vec![Ok]),
        // describe("name attribute") -- Raw validation
        case("requires a name", Raw, json!({}), vec![Err(json!({"name": REQUIRED}))]),
        case("name: no ip addresses", Raw, json!({"name": "123.123.123.123"}),
             vec![Err(json!({"name": "Invalid name ('123.123.123.123'); no ip addresses allowed"}))]),
        case("name: must be a valid hostname", Raw, json!({"name": "\\\\bad\\\\////name////"}),
             vec![Err(json!({"name": "Invalid name ('\\\\bad\\\\////name////'); must be a valid hostname"}))]),
        case("name: no port", Raw, json!({"name": "name:80"}),
             vec![Err(json!({"name": "Invalid name ('name:80'); no port allowed"}))]),
        case("accepts valid names", Raw, json!({"name": "valid.host.name"}), vec![Ok]),
        // describe("upstream attribute") (host_header)
        case("host_header http://ahostname.test", Raw, json!({"name": "host.test", "host_header": "http://ahostname.test"}),
             vec![Err(json!({"host_header": "invalid hostname: http://ahostname.test"}))]),
        case("host_header ahostname-", Raw, json!({"name": "host.test", "host_header": "ahostname-"}),
             vec![Err(json!({"host_header": "invalid hostname: ahostname-"}))]),
        case("host_header 'a hostname'", Raw, json!({"name": "host.test", "host_header": "a hostname"}),
             vec![Err(json!({"host_header": "invalid hostname: a hostname"}))]),
        case("host_header ahostname", Raw, json!({"name": "host.test", "host_header": "ahostname"}), vec![Ok]),
        case("host_header a.hostname.test", Raw, json!({"name": "host.test", "host_header": "a.hostname.test"}),
             vec![Ok]),
    ]
}

#[test]
fn upstreams_validation() {
    run(&entities::upstreams(), upstream_cases());
}

/// `it("produces defaults")` / `it("produces set use_srv_name flag")`.
#[test]
fn upstreams_produces_defaults() {
    let s = entities::upstreams();
    let u = s
        .process_auto_fields(
            &obj(&json!({"name": "www.example.com", "use_srv_name": true})),
            Context::Insert,
            false,
        )
        .unwrap();
    assert_eq!(s.validate(&u, true, false), Ok(()));
    assert_eq!(u["name"], json!("www.example.com"));
    assert_eq!(u["use_srv_name"], json!(true));

    let u = s
        .process_auto_fields(&obj(&json!({"name": "www.example.com"})), Context::Insert, false)
        .unwrap();
    assert_eq!(s.validate(&u, true, false), Ok(()));
    assert!(u["id"].as_str().is_some_and(is_uuid), "id: {}", u["id"]);
    let want = [
        ("name", json!("www.example.com")),
        ("hash_on", json!("none")),
        ("hash_fallback", json!("none")),
        ("hash_on_cookie_path", json!("/")),
        ("slots", json!(10000)),
        ("use_srv_name", json!(false)),
    ];
    for (k, v) in want {
        assert_eq!(u.get(k), Some(&v), "field {k}");
    }
    // assert.same(u.healthchecks, {...}): the record's `default` table, as is (no `threshold`,
    // no `https_sni`/`headers`: the healthchecks record is not required, so Kong does not
    // recurse into it and returns the default copy)
    let expected = json!({
        "active": {
            "type": "http",
            "timeout": 1,
            "concurrency": 10,
            "http_path": "/",
            "https_verify_certificate": true,
            "healthy": {"interval": 0, "http_statuses": [200, 302], "successes": 0},
            "unhealthy": {"interval": 0, "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
                          "tcp_failures": 0, "timeouts": 0, "http_failures": 0},
        },
        "passive": {
            "type": "http",
            "healthy": {"http_statuses": [200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                                          300, 301, 302, 303, 304, 305, 306, 307, 308],
                        "successes": 0},
            "unhealthy": {"http_statuses": [429, 500, 503], "tcp_failures": 0, "timeouts": 0, "http_failures": 0},
        },
    });
    assert_eq!(u["healthchecks"], expected);
}

/// `describe("healthchecks attribute")` / `it("rejects invalid configurations")`: validates
/// `{name = "x", healthchecks = test}` as given and walks the error table down to its (single)
/// leaf, which must contain the message.
#[test]
fn upstreams_healthchecks_rejects_invalid_configurations() {
    let seconds = "value should be between 0 and 65535";
    let pos_integer = "value should be between 1 and 2147483648";
    let zero_integer = "value should be between 0 and 255";
    let status_code = "value should be between 100 and 999";
    let integer = "expected an integer";
    let boolean = "expected a boolean";
    let number = "expected a number";
    let array = "expected an array";
    let len_min_default = "length must be at least 1";
    let invalid_host = "invalid value: ";
    let invalid_host_port = "must not have a port";
    let invalid_ip = "must not be an IP";
    let threshold = "value should be between 0 and 100";
    let tests: Vec<(Value, &str)> = vec![
        (json!({"active": {"timeout": -1}}), seconds),
        (json!({"active": {"timeout": 1e+42}}), seconds),
        (json!({"active": {"concurrency": 0.5}}), integer),
        (json!({"active": {"concurrency": 0}}), pos_integer),
        (json!({"active": {"concurrency": -10}}), pos_integer),
        (json!({"active": {"http_path": ""}}), len_min_default),
        (json!({"active": {"http_path": "ovo"}}), "should start with: /"),
        (json!({"active": {"https_sni": "127.0.0.1"}}), invalid_ip),
        (json!({"active": {"https_sni": "127.0.0.1:8080"}}), invalid_ip),
        (json!({"active": {"https_sni": "/example"}}), invalid_host),
        (json!({"active": {"https_sni": ".example"}}), invalid_host),
        (json!({"active": {"https_sni": "example:"}}), invalid_host),
        (json!({"active": {"https_sni": "mock;bin"}}), invalid_host),
        (json!({"active": {"https_sni": "example.com/org"}}), invalid_host),
        (json!({"active": {"https_sni": "example-.org"}}), invalid_host),
        (json!({"active": {"https_sni": "example.org-"}}), invalid_host),
        (json!({"active": {"https_sni": "hello..example.com"}}), invalid_host),
        (json!({"active": {"https_sni": "hello-.example.com"}}), invalid_host),
        (json!({"active": {"https_sni": "example.com:1234"}}), invalid_host_port),
        (json!({"active": {"https_verify_certificate": "ovo"}}), boolean),
        // `headers = 0`, `{ 0 }`, `{ "" }` are in `healthchecks_non_map_headers` (discrepancy)
        (json!({"active": {"headers": {"x-header": 123}}}), array),
        (json!({"active": {"healthy": {"interval": -1}}}), seconds),
        (json!({"active": {"healthy": {"interval": 1e+42}}}), seconds),
        (json!({"active": {"healthy": {"http_statuses": 404}}}), array),
        (json!({"active": {"healthy": {"http_statuses": ["ovo"]}}}), integer),
        (json!({"active": {"healthy": {"http_statuses": [-1]}}}), status_code),
        (json!({"active": {"healthy": {"http_statuses": [99]}}}), status_code),
        (json!({"active": {"healthy": {"http_statuses": [1000]}}}), status_code),
        (json!({"active": {"healthy": {"http_statuses": [111.314]}}}), integer),
        (json!({"active": {"healthy": {"successes": 0.5}}}), integer),
        (json!({"active": {"unhealthy": {"timeouts": 1}}, "threshold": -1}), threshold),
        (json!({"active": {"unhealthy": {"timeouts": 1}}, "threshold": 101}), threshold),
        (json!({"active": {"unhealthy": {"timeouts": 1}}, "threshold": "50"}), number),
        (json!({"active": {"unhealthy": {"timeouts": 1}}, "threshold": true}), number),
        (json!({"active": {"healthy": {"successes": -1}}}), zero_integer),
        (json!({"active": {"healthy": {"successes": 256}}}), zero_integer),
        (json!({"active": {"unhealthy": {"interval": -1}}}), seconds),
        (json!({"active": {"unhealthy": {"interval": 1e+42}}}), seconds),
        (json!({"active": {"unhealthy": {"http_statuses": 404}}}), array),
        (json!({"active": {"unhealthy": {"http_statuses": ["ovo"]}}}), integer),
        (json!({"active": {"unhealthy": {"http_statuses": [-1]}}}), status_code),
        (json!({"active": {"unhealthy": {"http_statuses": [99]}}}), status_code),
        (json!({"active": {"unhealthy": {"http_statuses": [1000]}}}), status_code),
        (json!({"active": {"unhealthy": {"tcp_failures": 0.5}}}), integer),
        (json!({"active": {"unhealthy": {"tcp_failures": 256}}}), zero_integer),
        (json!({"active": {"unhealthy": {"tcp_failures": -1}}}), zero_integer),
        (json!({"active": {"unhealthy": {"timeouts": 0.5}}}), integer),
        (json!({"active": {"unhealthy": {"timeouts": 256}}}), zero_integer),
        (json!({"active": {"unhealthy": {"timeouts": -1}}}), zero_integer),
        (json!({"active": {"unhealthy": {"http_failures": 0.5}}}), integer),
        (json!({"active": {"unhealthy": {"http_failures": -1}}}), zero_integer),
        (json!({"active": {"unhealthy": {"http_failures": 256}}}), zero_integer),
        (json!({"passive": {"healthy": {"http_statuses": 404}}}), array),
        (json!({"passive": {"healthy": {"http_statuses": ["ovo"]}}}), integer),
        (json!({"passive": {"healthy": {"http_statuses": [-1]}}}), status_code),
        (json!({"passive": {"healthy": {"http_statuses": [99]}}}), status_code),
        (json!({"passive": {"healthy": {"http_statuses": [1000]}}}), status_code),
        (json!({"passive": {"healthy": {"successes": 0.5}}}), integer),
        (json!({"passive": {"healthy": {"successes": -1}}}), zero_integer),
        (json!({"passive": {"unhealthy": {"http_statuses": 404}}}), array),
        (json!({"passive": {"unhealthy": {"http_statuses": ["ovo"]}}}), integer),
        (json!({"passive": {"unhealthy": {"http_statuses": [-1]}}}), status_code),
        (json!({"passive": {"unhealthy": {"http_statuses": [99]}}}), status_code),
        (json!({"passive": {"unhealthy": {"http_statuses": [1000]}}}), status_code),
        (json!({"passive": {"unhealthy": {"tcp_failures": 0.5}}}), integer),
        (json!({"passive": {"unhealthy": {"tcp_failures": -1}}}), zero_integer),
        (json!({"passive": {"unhealthy": {"tcp_failures": 256}}}), zero_integer),
        (json!({"passive": {"unhealthy": {"timeouts": 0.5}}}), integer),
        (json!({"passive": {"unhealthy": {"timeouts": 256}}}), zero_integer),
        (json!({"passive": {"unhealthy": {"timeouts": -1}}}), zero_integer),
        (json!({"passive": {"unhealthy": {"http_failures": 0.5}}}), integer),
        (json!({"passive": {"unhealthy": {"http_failures": -1}}}), zero_integer),
        (json!({"passive": {"unhealthy": {"http_failures": 256}}}), zero_integer),
        (json!({"passive": {"unhealthy": {"timeouts": 1}}, "threshold": -1}), threshold),
        (json!({"passive": {"unhealthy": {"timeouts": 1}}, "threshold": 101}), threshold),
        (json!({"passive": {"unhealthy": {"timeouts": 1}}, "threshold": "50"}), number),
        (json!({"passive": {"unhealthy": {"timeouts": 1}}, "threshold": true}), number),
    ];
    check_healthcheck_leaves(tests);
}

fn leaves(v: &Value, path: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((path, s.clone())),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                if !x.is_null() {
                    leaves(x, format!("{path}/{i}"), out);
                }
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                leaves(x, format!("{path}/{k}"), out);
            }
        }
        _ => out.push((path, v.to_string())),
    }
}

/// Validates `{name = "x", healthchecks = test}` as given (Raw, full check) and walks the error
/// table down to its single leaf, which must contain the message (the spec's `repeat ... until`
/// loop over `next(leaf)`).
fn check_healthcheck_leaves(tests: Vec<(Value, &str)>) {
    let s = entities::upstreams();
    let total = tests.len();
    let mut failures = Vec::new();
    for (hc, msg) in tests {
        let input = obj(&json!({"name": "x", "healthchecks": hc}));
        match s.validate(&input, true, false) {
            Ok(()) => failures.push(format!("{hc}: expected an error containing {msg:?}, got ok")),
            Err(e) => {
                let e = e.to_json();
                let mut l = Vec::new();
                leaves(&e, String::new(), &mut l);
                let ok =
                    l.len() == 1 && l[0].0.starts_with("/healthchecks/") && l[0].1.contains(msg);
                if !ok {
                    failures
                        .push(format!("{hc}: expected a single leaf containing {msg:?}, got {e}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The three `healthchecks.active.headers` cases of `it("rejects invalid configurations")`.
/// Kong keeps a non-table `headers` value through `process_auto_fields` (init.lua
/// adjust_field_for_context only rewrites tables) and `validate_field` rejects it ("expected a
/// map" / key "expected a string"). Turnpike's record validation runs `process_auto_fields`
/// first, which drops a non-object map value and replaces it with null, so they pass.
#[test]
fn healthchecks_non_map_headers() {
    check_healthcheck_leaves(vec![
        (json!({"active": {"headers": 0}}), "expected a map"),
        (json!({"active": {"headers": [0]}}), "expected a string"),
        (json!({"active": {"headers": [""]}}), "expected a string"),
    ]);
}

/// `it("invalid healthchecks.active.headers produces error")` (same cause as above).
#[test]
fn upstreams_invalid_healthchecks_active_headers() {
    run(
        &entities::upstreams(),
        vec![case(
            "invalid healthchecks.active.headers",
            Prep::Insert,
            json!({"healthchecks": {"active": {"headers": [114514]}}}),
            vec![
                Expect::Has("/healthchecks/active/headers"),
                Expect::Err(
                    json!({"name": REQUIRED, "healthchecks": {"active": {"headers": "expected a string"}}}),
                ),
            ],
        )],
    );
}

/// `it("accepts inputs with the correct values")`.
#[test]
fn upstreams_healthchecks_accepts_correct_values() {
    let tests = [
        json!({"active": {"timeout": 0.5}}),
        json!({"active": {"timeout": 1}}),
        json!({"active": {"concurrency": 2}}),
        json!({"active": {"http_path": "/"}}),
        json!({"active": {"http_path": "/test"}}),
        json!({"active": {"https_sni": "example.com"}}),
        json!({"active": {"https_sni": "example.test."}}),
        json!({"active": {"https_verify_certificate": false}}),
        json!({"active": {"healthy": {"interval": 0}}}),
        json!({"active": {"healthy": {"http_statuses": [200, 300]}}}),
        json!({"active": {"healthy": {"successes": 2}}}),
        json!({"active": {"healthy": {"successes": 255}}}),
        json!({"active": {"unhealthy": {"interval": 0}}}),
        json!({"active": {"unhealthy": {"http_statuses": [404]}}}),
        json!({"active": {"unhealthy": {"tcp_failures": 3}}}),
        json!({"active": {"unhealthy": {"tcp_failures": 255}}}),
        json!({"active": {"unhealthy": {"timeouts": 9}}}),
        json!({"active": {"unhealthy": {"timeouts": 255}}}),
        json!({"active": {"unhealthy": {"http_failures": 2}}}),
        json!({"active": {"unhealthy": {"http_failures": 2}}, "threshold": 0}),
        json!({"active": {"unhealthy": {"http_failures": 2}}, "threshold": 50.50}),
        json!({"active": {"unhealthy": {"http_failures": 2}}, "threshold": 100}),
        json!({"passive": {"healthy": {"http_statuses": [200, 201]}}}),
        json!({"passive": {"healthy": {"successes": 2}}}),
        json!({"passive": {"healthy": {"successes": 255}}}),
        json!({"passive": {"unhealthy": {"http_statuses": [400, 500]}}}),
        json!({"passive": {"unhealthy": {"tcp_failures": 8}}}),
        json!({"passive": {"unhealthy": {"tcp_failures": 255}}}),
        json!({"passive": {"unhealthy": {"timeouts": 1}}}),
        json!({"passive": {"unhealthy": {"timeouts": 255}}}),
        json!({"passive": {"unhealthy": {"http_failures": 2}}}),
        json!({"passive": {"unhealthy": {"http_failures": 255}}}),
        json!({"passive": {"unhealthy": {"http_failures": 2}}, "threshold": 0}),
        json!({"passive": {"unhealthy": {"http_failures": 2}}, "threshold": 50.50}),
        json!({"passive": {"unhealthy": {"http_failures": 2}}, "threshold": 100}),
    ];
    let cases = tests
        .into_iter()
        .map(|hc| {
            case(
                format!("healthchecks {hc}"),
                Prep::Raw,
                json!({"name": "x", "healthchecks": hc}),
                vec![Expect::Ok],
            )
        })
        .collect();
    run(&entities::upstreams(), cases);
}

// ---- targets ----------------------------------------------------------------------------

/// `describe("targets.target")`: `validate(b)` is `Targets:validate(Targets:process_auto_fields(b, "insert"))`.
#[test]
fn targets_target() {
    let upstream = json!({"id": "a4fbd24e-6a52-4937-bd78-2536713072d2"});
    let mut cases: Vec<Case> = ["valid.name", "valid.name:8080", "12.34.56.78", "1.2.3.4:123"]
        .into_iter()
        .map(|t| {
            case(
                format!("target {t}"),
                Prep::Insert,
                json!({"target": t, "upstream": upstream}),
                vec![Expect::Ok],
            )
        })
        .collect();
    cases.push(case(
        "bad target",
        Prep::Insert,
        json!({"target": "\\\\bad\\\\////name////", "upstream": upstream}),
        vec![Expect::Err(json!({
            "target": "Invalid target ('\\\\bad\\\\////name////'); not a valid hostname or ip address"
        }))],
    ));
    run(&entities::targets(), cases);
}

/// Derived (not in the spec): the `algorithm`/`hash_on` shorthands of `upstreams.lua`
/// (algorithm runs first; least-connections/latency null `hash_on`, which the `hash_on`
/// shorthand then turns into "none"; a non-none `hash_on` forces consistent-hashing).
#[test]
fn upstreams_algorithm_and_hash_on_shorthands() {
    let s = entities::upstreams();
    let cases = [
        (json!({"name": "a.b", "hash_on": "ip"}), "consistent-hashing", "ip"),
        (json!({"name": "a.b", "hash_on": "none"}), "round-robin", "none"),
        (json!({"name": "a.b", "algorithm": "latency"}), "latency", "none"),
        (
            json!({"name": "a.b", "algorithm": "least-connections", "hash_on": "header"}),
            "least-connections",
            "none",
        ),
        (json!({"name": "a.b", "algorithm": "round-robin"}), "round-robin", "none"),
    ];
    let mut failures = Vec::new();
    for (input, algorithm, hash_on) in cases {
        let u = s.process_auto_fields(&obj(&input), Context::Insert, false).unwrap();
        if u["algorithm"] != json!(algorithm) || u["hash_on"] != json!(hash_on) {
            failures.push(format!(
                "{input}: algorithm = {}, hash_on = {}",
                u["algorithm"], u["hash_on"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
