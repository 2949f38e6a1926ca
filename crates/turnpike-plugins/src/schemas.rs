//! The configuration subschemas of the bundled plugins, as Kong 3.9 defines them in
//! `kong/plugins/<name>/schema.lua`: which top-level plugin fields a plugin restricts
//! (`consumer`, `protocols`) and its `config` record with every field's type, default,
//! required-ness, validators and entity checks, with Kong's messages.
//!
//! A subschema is merged into the `plugins` entity by `turnpike_core::entities::plugins`, so
//! validating a plugin through it yields the Admin API's errors
//! (`{"config": {"field": "message"}}`, entity checks under `@entity`).
//!
//! Only schema definitions live here: no plugin behaviour, no store or Admin API code.
//! Like Kong's entity loader (`make_records_required`), every `config` record is required, so
//! that an omitted `config` is filled with its defaults.

use serde_json::{json, Value};
use turnpike_core::schema::{EntityCheck, Field, FieldMatch, Schema};
use turnpike_core::typedefs;

/// The plugins with a subschema in this module, in Kong's priority order.
pub const NAMES: &[&str] = &[
    "bot-detection",
    "cors",
    "jwt",
    "key-auth",
    "basic-auth",
    "hmac-auth",
    "ip-restriction",
    "request-size-limiting",
    "acl",
    "request-termination",
];

/// The subschema of the named plugin (`kong/plugins/<name>/schema.lua`), or `None` for a
/// plugin this module does not define.
pub fn plugin_schema(name: &str) -> Option<Schema> {
    let schema = match name {
        "key-auth" => key_auth(),
        "basic-auth" => basic_auth(),
        "jwt" => jwt(),
        "hmac-auth" => hmac_auth(),
        "acl" => acl(),
        "cors" => cors(),
        "ip-restriction" => ip_restriction(),
        "bot-detection" => bot_detection(),
        "request-size-limiting" => request_size_limiting(),
        "request-termination" => request_termination(),
        _ => return None,
    };
    Some(schema)
}

/// An empty subschema named after its plugin.
fn named(name: &str) -> Schema {
    let mut s = Schema::record();
    s.name = name.to_owned();
    s
}

/// The `config` field: a required record, so that defaults are filled when it is omitted.
fn config(fields: Schema) -> Field {
    Field::record(fields).required()
}

/// A plugin that cannot be scoped to a consumer (`typedefs.no_consumer`), on HTTP protocols only
/// (the authentication plugins, acl, cors, bot-detection).
fn no_consumer_http(name: &str, fields: Schema) -> Schema {
    named(name)
        .field("consumer", typedefs::no_consumer())
        .field("protocols", typedefs::protocols_http())
        .field("config", config(fields))
}

fn boolean(default: bool) -> Field {
    Field::boolean().required().default(json!(default))
}

fn strings() -> Field {
    Field::array(Field::string())
}

fn key_auth() -> Schema {
    no_consumer_http(
        "key-auth",
        Schema::record()
            .field(
                "key_names",
                Field::array(typedefs::header_name()).required().default(json!(["apikey"])),
            )
            .field("hide_credentials", boolean(false))
            .field("anonymous", Field::string())
            .field("key_in_header", boolean(true))
            .field("key_in_query", boolean(true))
            .field("key_in_body", boolean(false))
            .field("run_on_preflight", boolean(true))
            .field("realm", Field::string().optional()),
    )
}

fn basic_auth() -> Schema {
    no_consumer_http(
        "basic-auth",
        Schema::record()
            .field("anonymous", Field::string())
            .field("hide_credentials", boolean(false))
            .field("realm", Field::string().required().default(json!("service"))),
    )
}

fn jwt() -> Schema {
    no_consumer_http(
        "jwt",
        Schema::record()
            .field("uri_param_names", Field::set(Field::string()).default(json!(["jwt"])))
            .field("cookie_names", Field::set(Field::string()).default(json!([])))
            .field("key_claim_name", Field::string().default(json!("iss")))
            .field("secret_is_base64", boolean(false))
            .field("claims_to_verify", Field::set(Field::string().one_of(["exp", "nbf"])))
            .field("anonymous", Field::string())
            .field("run_on_preflight", boolean(true))
            .field(
                "maximum_expiration",
                Field::number().default(json!(0)).between(0.0, 31_536_000.0),
            )
            .field("header_names", Field::set(Field::string()).default(json!(["authorization"])))
            .field("realm", Field::string().optional()),
    )
    // A positive maximum_expiration is only enforced through the `exp` claim. An absent
    // claims_to_verify passes, as in Kong: the `then` match is not `required`.
    .check(EntityCheck::conditional(
        "config.maximum_expiration",
        FieldMatch::new().gt(0.0),
        "config.claims_to_verify",
        FieldMatch::new().contains(json!("exp")),
    ))
}

const HMAC_ALGORITHMS: &[&str] = &["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"];

fn hmac_auth() -> Schema {
    no_consumer_http(
        "hmac-auth",
        Schema::record()
            .field("hide_credentials", boolean(false))
            .field("clock_skew", Field::number().default(json!(300)).gt(0.0))
            .field("anonymous", Field::string())
            .field("validate_request_body", boolean(false))
            .field("enforce_headers", strings().default(json!([])))
            .field(
                "algorithms",
                Field::array(Field::string().one_of(HMAC_ALGORITHMS.iter().copied()))
                    .default(json!(HMAC_ALGORITHMS)),
            )
            .field("realm", Field::string().optional()),
    )
}

fn acl() -> Schema {
    no_consumer_http(
        "acl",
        Schema::record()
            .field("allow", strings())
            .field("deny", strings())
            .field("hide_groups_header", boolean(false))
            .field("always_use_authenticated_groups", boolean(false)),
    )
    .check(EntityCheck::only_one_of(&["config.allow", "config.deny"]))
    .check(EntityCheck::at_least_one_of(&["config.allow", "config.deny"]))
}

const CORS_METHODS: &[&str] =
    &["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"];

/// An origin is `*` or something that compiles as a regex (plain hosts do).
fn validate_asterisk_or_regex(v: &Value) -> Result<(), String> {
    let origin = v.as_str().unwrap_or_default();
    if origin == "*" || regex::Regex::new(origin).is_ok() {
        Ok(())
    } else {
        Err(format!("'{origin}' is not a valid regex"))
    }
}

fn cors() -> Schema {
    no_consumer_http(
        "cors",
        Schema::record()
            .field("origins", Field::array(Field::string().custom(validate_asterisk_or_regex)))
            .field("headers", strings())
            .field("exposed_headers", strings())
            .field(
                "methods",
                Field::array(Field::string().one_of(CORS_METHODS.iter().copied()))
                    .default(json!(CORS_METHODS)),
            )
            .field("max_age", Field::number())
            .field("credentials", boolean(false))
            .field("private_network", boolean(false))
            .field("preflight_continue", boolean(false)),
    )
}

fn ip_restriction() -> Schema {
    // Scopable to a consumer and usable on streams: only the protocols default changes.
    named("ip-restriction")
        .field(
            "protocols",
            typedefs::protocols().default(json!(["http", "https", "tcp", "tls", "grpc", "grpcs"])),
        )
        .field(
            "config",
            config(
                Schema::record()
                    .field("allow", Field::array(typedefs::ip_or_cidr()))
                    .field("deny", Field::array(typedefs::ip_or_cidr()))
                    .field("status", Field::number().optional())
                    .field("message", Field::string().optional()),
            ),
        )
        .check(EntityCheck::at_least_one_of(&["config.allow", "config.deny"]))
}

fn bot_detection() -> Schema {
    no_consumer_http(
        "bot-detection",
        Schema::record()
            .field("allow", Field::array(Field::string().is_regex()).default(json!([])))
            .field("deny", Field::array(Field::string().is_regex()).default(json!([]))),
    )
}

/// `size_unit` values; the first is the default.
const SIZE_UNITS: &[&str] = &["megabytes", "kilobytes", "bytes"];

fn request_size_limiting() -> Schema {
    named("request-size-limiting").field("protocols", typedefs::protocols_http()).field(
        "config",
        config(
            Schema::record()
                .field("allowed_payload_size", Field::integer().default(json!(128)))
                .field(
                    "size_unit",
                    Field::string()
                        .required()
                        .default(json!(SIZE_UNITS[0]))
                        .one_of(SIZE_UNITS.iter().copied()),
                )
                .field("require_content_length", boolean(false)),
        ),
    )
}

/// Kong's `is_present`: a non-empty string.
fn is_present(config: &Value, key: &str) -> bool {
    config.get(key).and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

/// The `config` record's own validator: `message` excludes a raw `body`/`content_type`,
/// `content_type` needs a `body`, and `echo` excludes both.
fn validate_termination(config: &Value) -> Result<(), String> {
    let message = is_present(config, "message");
    let content_type = is_present(config, "content_type");
    let body = is_present(config, "body");
    if message && (content_type || body) {
        return Err("message cannot be used with content_type or body".into());
    }
    if content_type && !body {
        return Err("content_type requires a body".into());
    }
    let echo = config.get("echo").and_then(Value::as_bool).unwrap_or(false);
    if echo && (content_type || body) {
        return Err("echo cannot be used with content_type and body".into());
    }
    Ok(())
}

fn request_termination() -> Schema {
    let fields = Schema::record()
        .field("status_code", Field::integer().required().default(json!(503)).between(100.0, 599.0))
        .field("message", Field::string())
        .field("content_type", Field::string())
        .field("body", Field::string())
        .field("echo", boolean(false))
        .field("trigger", typedefs::header_name());
    named("request-termination")
        .field("protocols", typedefs::protocols_http())
        .field("config", config(fields).custom(validate_termination))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Value};
    use turnpike_core::entities;
    use turnpike_core::schema::{Context, Entity};

    use super::{plugin_schema, NAMES};

    /// Validates a plugin entity `{name, config, ...extra}` as the Admin API does on insert:
    /// `process_auto_fields` then a full `validate`, through the `plugins` entity schema.
    fn validate(name: &str, config: Value, extra: Value) -> Result<Entity, Value> {
        let sub = plugin_schema(name).unwrap();
        let plugins = entities::plugins(vec![(name.to_owned(), Arc::new(sub))]);
        let mut input = json!({ "name": name, "config": config }).as_object().unwrap().clone();
        if let Value::Object(extra) = extra {
            input.extend(extra);
        }
        let entity =
            plugins.process_auto_fields(&input, Context::Insert, false).map_err(|e| e.to_json())?;
        plugins.validate(&entity, true, false).map_err(|e| e.to_json())?;
        Ok(entity)
    }

    fn config_of(name: &str, config: Value) -> Value {
        match validate(name, config, Value::Null) {
            Ok(entity) => entity["config"].clone(),
            Err(e) => panic!("{name}: unexpected errors {e}"),
        }
    }

    fn errors_of(name: &str, config: Value) -> Value {
        errors_with(name, config, Value::Null)
    }

    fn errors_with(name: &str, config: Value, extra: Value) -> Value {
        match validate(name, config, extra) {
            Ok(entity) => panic!("{name}: expected errors, got {}", Value::Object(entity)),
            Err(e) => e,
        }
    }

    const HTTP: &[&str] = &["grpc", "grpcs", "http", "https"];

    #[test]
    fn every_name_has_a_schema_and_others_do_not() {
        for name in NAMES {
            assert!(plugin_schema(name).is_some(), "{name}");
        }
        assert!(plugin_schema("rate-limiting").is_none());
        assert!(plugin_schema("").is_none());
    }

    #[test]
    fn defaults_are_kongs() {
        // (plugin, minimal config, the config Kong stores)
        let cases = [
            (
                "key-auth",
                json!({}),
                json!({
                    "key_names": ["apikey"], "hide_credentials": false, "anonymous": null,
                    "key_in_header": true, "key_in_query": true, "key_in_body": false,
                    "run_on_preflight": true, "realm": null
                }),
            ),
            (
                "basic-auth",
                json!({}),
                json!({ "anonymous": null, "hide_credentials": false, "realm": "service" }),
            ),
            (
                "jwt",
                json!({}),
                json!({
                    "uri_param_names": ["jwt"], "cookie_names": [], "key_claim_name": "iss",
                    "secret_is_base64": false, "claims_to_verify": null, "anonymous": null,
                    "run_on_preflight": true, "maximum_expiration": 0,
                    "header_names": ["authorization"], "realm": null
                }),
            ),
            (
                "hmac-auth",
                json!({}),
                json!({
                    "hide_credentials": false, "clock_skew": 300, "anonymous": null,
                    "validate_request_body": false, "enforce_headers": [],
                    "algorithms": ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"],
                    "realm": null
                }),
            ),
            (
                "acl",
                json!({ "allow": ["admins"] }),
                json!({
                    "allow": ["admins"], "deny": null, "hide_groups_header": false,
                    "always_use_authenticated_groups": false
                }),
            ),
            (
                "cors",
                json!({}),
                json!({
                    "origins": null, "headers": null, "exposed_headers": null,
                    "methods": ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS",
                                "TRACE", "CONNECT"],
                    "max_age": null, "credentials": false, "private_network": false,
                    "preflight_continue": false
                }),
            ),
            (
                "ip-restriction",
                json!({ "deny": ["10.0.0.0/8"] }),
                json!({ "allow": null, "deny": ["10.0.0.0/8"], "status": null, "message": null }),
            ),
            ("bot-detection", json!({}), json!({ "allow": [], "deny": [] })),
            (
                "request-size-limiting",
                json!({}),
                json!({
                    "allowed_payload_size": 128, "size_unit": "megabytes",
                    "require_content_length": false
                }),
            ),
            (
                "request-termination",
                json!({}),
                json!({
                    "status_code": 503, "message": null, "content_type": null, "body": null,
                    "echo": false, "trigger": null
                }),
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(config_of(name, input), expected, "{name}");
        }
    }

    #[test]
    fn omitted_config_is_filled_with_defaults() {
        let sub = plugin_schema("basic-auth").unwrap();
        let plugins = entities::plugins(vec![("basic-auth".to_owned(), Arc::new(sub))]);
        let input = json!({ "name": "basic-auth" }).as_object().unwrap().clone();
        let entity = plugins.process_auto_fields(&input, Context::Insert, false).unwrap();
        plugins.validate(&entity, true, false).unwrap();
        assert_eq!(
            entity["config"],
            json!({ "anonymous": null, "hide_credentials": false, "realm": "service" })
        );
    }

    #[test]
    fn protocols_defaults() {
        for name in NAMES {
            let config = match *name {
                "acl" => json!({ "allow": ["a"] }),
                "ip-restriction" => json!({ "allow": ["127.0.0.1"] }),
                _ => json!({}),
            };
            let entity = validate(name, config, Value::Null).unwrap();
            let expected = if *name == "ip-restriction" {
                json!(["http", "https", "tcp", "tls", "grpc", "grpcs"])
            } else {
                json!(HTTP)
            };
            assert_eq!(entity["protocols"], expected, "{name}");
        }
    }

    #[test]
    fn auth_plugins_cannot_be_scoped_to_a_consumer() {
        let consumer = json!({ "consumer": { "id": "6c8b8a4e-6b8e-4a3e-9f3b-7d8e2a1c0b5f" } });
        for name in ["key-auth", "basic-auth", "jwt", "hmac-auth", "acl", "cors", "bot-detection"] {
            let config = if name == "acl" { json!({ "allow": ["a"] }) } else { json!({}) };
            assert_eq!(
                errors_with(name, config, consumer.clone()),
                json!({ "consumer": "value must be null" }),
                "{name}"
            );
        }
        for (name, config) in [
            ("ip-restriction", json!({ "allow": ["127.0.0.1"] })),
            ("request-size-limiting", json!({})),
            ("request-termination", json!({})),
        ] {
            assert!(validate(name, config, consumer.clone()).is_ok(), "{name}");
        }
    }

    #[test]
    fn stream_protocols_only_for_ip_restriction() {
        assert_eq!(
            errors_with("key-auth", json!({}), json!({ "protocols": ["tcp"] })),
            json!({ "protocols": ["expected one of: grpc, grpcs, http, https"] })
        );
        assert!(validate(
            "ip-restriction",
            json!({ "allow": ["::1"] }),
            json!({ "protocols": ["tcp"] })
        )
        .is_ok());
    }

    #[test]
    fn kongs_error_messages() {
        // (plugin, config, the Admin API's `fields`)
        let cases = [
            (
                "key-auth",
                json!({ "key_names": ["hello\\world"] }),
                json!({ "config": { "key_names": [
                    "bad header name 'hello\\world', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
                ] } }),
            ),
            (
                "key-auth",
                json!({ "key_in_body": "yes" }),
                json!({ "config": { "key_in_body": "expected a boolean" } }),
            ),
            (
                "basic-auth",
                json!({ "realm": null }),
                json!({ "config": { "realm": "required field missing" } }),
            ),
            (
                "jwt",
                json!({ "maximum_expiration": -1, "claims_to_verify": ["exp", "nbf"] }),
                json!({ "config": {
                    "maximum_expiration": "value should be between 0 and 31536000"
                } }),
            ),
            (
                "jwt",
                json!({ "maximum_expiration": 60, "claims_to_verify": ["nbf"] }),
                json!({
                    "config": { "claims_to_verify": "expected to contain: exp" },
                    "@entity": [
                        "failed conditional validation given value of field 'config.maximum_expiration'"
                    ]
                }),
            ),
            (
                "jwt",
                json!({ "claims_to_verify": ["iat"] }),
                json!({ "config": { "claims_to_verify": ["expected one of: exp, nbf"] } }),
            ),
            (
                "hmac-auth",
                json!({ "clock_skew": -10 }),
                json!({ "config": { "clock_skew": "value must be greater than 0" } }),
            ),
            (
                "hmac-auth",
                json!({ "algorithms": ["sha1024"] }),
                json!({ "config": { "algorithms": [
                    "expected one of: hmac-sha1, hmac-sha256, hmac-sha384, hmac-sha512"
                ] } }),
            ),
            (
                "acl",
                json!({}),
                json!({ "@entity": [
                    "exactly one of these fields must be non-empty: 'config.allow', 'config.deny'",
                    "at least one of these fields must be non-empty: 'config.allow', 'config.deny'"
                ] }),
            ),
            (
                "acl",
                json!({ "allow": ["a"], "deny": ["b"] }),
                json!({ "@entity": [
                    "exactly one of these fields must be non-empty: 'config.allow', 'config.deny'"
                ] }),
            ),
            (
                "cors",
                json!({ "origins": [".*.example.com", "invalid_(regex"] }),
                json!({ "config": { "origins": [null, "'invalid_(regex' is not a valid regex"] } }),
            ),
            (
                "cors",
                json!({ "methods": ["FAKE"] }),
                json!({ "config": { "methods": [
                    "expected one of: GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS, TRACE, CONNECT"
                ] } }),
            ),
            (
                "ip-restriction",
                json!({ "allow": 12 }),
                json!({ "config": { "allow": "expected an array" } }),
            ),
            (
                "ip-restriction",
                json!({ "allow": ["127.0.0.1/32", "127.0.0.2/32", "hello"] }),
                json!({ "config": {
                    "allow": [null, null, "invalid ip or cidr range: 'hello'"]
                } }),
            ),
            (
                "ip-restriction",
                json!({ "allow": [], "deny": [] }),
                json!({ "@entity": [
                    "at least one of these fields must be non-empty: 'config.allow', 'config.deny'"
                ] }),
            ),
            (
                "bot-detection",
                json!({ "deny": ["(unclosed"] }),
                json!({ "config": { "deny": ["not a valid regex: (unclosed"] } }),
            ),
            (
                "request-size-limiting",
                json!({ "size_unit": "gigabytes" }),
                json!({ "config": {
                    "size_unit": "expected one of: megabytes, kilobytes, bytes"
                } }),
            ),
            (
                "request-size-limiting",
                json!({ "allowed_payload_size": 1.5 }),
                json!({ "config": { "allowed_payload_size": "expected an integer" } }),
            ),
            (
                "request-termination",
                json!({ "status_code": "abcd" }),
                json!({ "config": { "status_code": "expected an integer" } }),
            ),
            (
                "request-termination",
                json!({ "status_code": null }),
                json!({ "config": { "status_code": "required field missing" } }),
            ),
            (
                "request-termination",
                json!({ "status_code": 99 }),
                json!({ "config": { "status_code": "value should be between 100 and 599" } }),
            ),
            (
                "request-termination",
                json!({ "status_code": 600 }),
                json!({ "config": { "status_code": "value should be between 100 and 599" } }),
            ),
            (
                "request-termination",
                json!({ "message": "error", "body": "test" }),
                json!({ "config": "message cannot be used with content_type or body" }),
            ),
            (
                "request-termination",
                json!({ "message": "error", "content_type": "text/html" }),
                json!({ "config": "message cannot be used with content_type or body" }),
            ),
            (
                "request-termination",
                json!({ "content_type": "text/html" }),
                json!({ "config": "content_type requires a body" }),
            ),
            (
                "request-termination",
                json!({ "echo": true, "content_type": "text/html", "body": "<h1>x</h1>" }),
                json!({ "config": "echo cannot be used with content_type and body" }),
            ),
            (
                "request-termination",
                json!({ "trigger": "bad header" }),
                json!({ "config": { "trigger":
                    "bad header name 'bad header', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
                } }),
            ),
            (
                "key-auth",
                json!({ "no_such_field": true }),
                json!({ "config": { "no_such_field": "unknown field" } }),
            ),
        ];
        for (name, config, expected) in cases {
            assert_eq!(errors_of(name, config.clone()), expected, "{name} {config}");
        }
    }

    #[test]
    fn valid_configs_kong_accepts() {
        let cases = [
            ("jwt", json!({ "maximum_expiration": 60, "claims_to_verify": ["exp", "nbf"] })),
            // an absent claims_to_verify does not trip the conditional check
            ("jwt", json!({ "maximum_expiration": 60 })),
            ("cors", json!({ "origins": ["*"] })),
            ("cors", json!({ "origins": ["example.com", ".*\\.example(?:-foo)?\\.com"] })),
            ("ip-restriction", json!({ "allow": ["127.0.0.1/8"], "status": 403, "message": "no" })),
            ("ip-restriction", json!({ "allow": ["::/0", "::/128"], "deny": ["10.0.0.1"] })),
            ("request-termination", json!({ "status_code": 404, "message": "Not found" })),
            ("request-termination", json!({ "content_type": "text/html", "body": "<h1>x</h1>" })),
            ("request-termination", json!({ "body": "<h1>Not found</h1>" })),
            ("request-termination", json!({ "echo": true, "trigger": "header_name" })),
            ("request-size-limiting", json!({ "allowed_payload_size": 10, "size_unit": "bytes" })),
            ("hmac-auth", json!({ "clock_skew": 10, "enforce_headers": ["date"] })),
            ("bot-detection", json!({ "deny": ["^curl/"] })),
            ("key-auth", json!({ "key_names": ["hello-world", "x_api_key"] })),
        ];
        for (name, config) in cases {
            assert!(validate(name, config.clone(), Value::Null).is_ok(), "{name} {config}");
        }
    }

    #[test]
    fn sets_drop_duplicates() {
        let config = config_of("jwt", json!({ "header_names": ["x", "x", "y"] }));
        assert_eq!(config["header_names"], json!(["x", "y"]));
    }
}
