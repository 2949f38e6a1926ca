//! `routes` (`routes.lua`, `routes_subschemas.lua`) with the classic (traditional_compatible)
//! fields. The subschema is selected by the first protocol: http/https, stream, or grpc.

use std::sync::Arc;

use serde_json::json;

use crate::schema::{EntityCheck, Field, FieldMatch, Schema};
use crate::typedefs;

fn list(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn at_least_one_of_when(
    contains: &str,
    then: &[&str],
    then_err: &str,
    else_contains: Option<(&str, &[&str], &str)>,
) -> EntityCheck {
    let (else_match, else_then, else_err) = match else_contains {
        Some((c, names, err)) => {
            (Some(FieldMatch::new().contains(json!(c))), list(names), Some(err.to_owned()))
        }
        None => (None, Vec::new(), None),
    };
    EntityCheck::ConditionalAtLeastOneOf {
        if_field: "protocols".into(),
        if_match: FieldMatch::new().contains(json!(contains)),
        then_at_least_one_of: list(then),
        then_err: Some(then_err.to_owned()),
        else_match,
        else_then_at_least_one_of: else_then,
        else_then_err: else_err,
    }
}

fn stream_check(protocols: &[&str], then: &[&str], then_err: &str) -> EntityCheck {
    EntityCheck::ConditionalAtLeastOneOf {
        if_field: "protocols".into(),
        if_match: FieldMatch::new().elements(Field::string().one_of(protocols.iter().copied())),
        then_at_least_one_of: list(then),
        then_err: Some(then_err.to_owned()),
        else_match: None,
        else_then_at_least_one_of: Vec::new(),
        else_then_err: None,
    }
}

fn http_subschema() -> Schema {
    Schema::record()
        .field(
            "sources",
            typedefs::sources()
                .eq_null()
                .err("cannot set 'sources' when 'protocols' is 'http' or 'https'"),
        )
        .field(
            "destinations",
            typedefs::destinations()
                .eq_null()
                .err("cannot set 'destinations' when 'protocols' is 'http' or 'https'"),
        )
        .check(at_least_one_of_when(
            "https",
            &["methods", "hosts", "headers", "paths", "snis"],
            "must set one of %s when 'protocols' is 'https'",
            Some((
                "http",
                &["methods", "hosts", "headers", "paths"],
                "must set one of %s when 'protocols' is 'http'",
            )),
        ))
}

fn stream_subschema() -> Schema {
    let err = |f: &str| {
        format!("cannot set '{f}' when 'protocols' is 'tcp', 'tls', 'tls_passthrough' or 'udp'")
    };
    Schema::record()
        .field("methods", typedefs::methods().eq_null().err(err("methods")))
        .field("hosts", typedefs::hosts().eq_null().err(err("hosts")))
        .field("paths", typedefs::router_paths().eq_null().err(err("paths")))
        .field("headers", typedefs::headers().eq_null().err(err("headers")))
        .check(stream_check(
            &["tcp", "tls", "udp"],
            &["sources", "destinations", "snis"],
            "must set one of %s when 'protocols' is 'tcp', 'tls' or 'udp'",
        ))
        .check(stream_check(
            &["tls_passthrough"],
            &["snis"],
            "must set snis when 'protocols' is 'tls_passthrough'",
        ))
}

fn grpc_subschema() -> Schema {
    let err = |f: &str| format!("cannot set '{f}' when 'protocols' is 'grpc' or 'grpcs'");
    Schema::record()
        .field(
            "strip_path",
            Field::boolean()
                .required()
                .default(json!(false))
                .ne(json!(true))
                .err(err("strip_path")),
        )
        .field("methods", typedefs::methods().eq_null().err(err("methods")))
        .field("sources", typedefs::sources().eq_null().err(err("sources")))
        .field("destinations", typedefs::sources().eq_null().err(err("destinations")))
        .check(at_least_one_of_when(
            "grpcs",
            &["hosts", "headers", "paths", "snis"],
            "must set one of %s when 'protocols' is 'grpcs'",
            Some((
                "grpc",
                &["hosts", "headers", "paths"],
                "must set one of %s when 'protocols' is 'grpc'",
            )),
        ))
}

fn path_handling_check(_: &crate::schema::Entity) -> Result<(), String> {
    // Kong only logs a deprecation for v1 here.
    Ok(())
}

pub(super) fn schema() -> Schema {
    let mut s = Schema::entity("routes")
        .field("id", typedefs::uuid())
        .field("created_at", typedefs::auto_timestamp_s())
        .field("updated_at", typedefs::auto_timestamp_s())
        .field("name", typedefs::utf8_name())
        .field(
            "protocols",
            Field::set(typedefs::protocol())
                .len_min(1)
                .required()
                .mutually_exclusive_subsets(&[
                    &["http", "https"],
                    &["tcp", "tls", "udp"],
                    &["tls_passthrough"],
                    &["grpc", "grpcs"],
                ])
                .default(json!(["http", "https"])),
        )
        .field(
            "https_redirect_status_code",
            Field::integer().one_of([426, 301, 302, 307, 308]).default(json!(426)).required(),
        )
        .field("strip_path", Field::boolean().required().default(json!(true)))
        .field("preserve_host", Field::boolean().required().default(json!(false)))
        .field("request_buffering", Field::boolean().required().default(json!(true)))
        .field("response_buffering", Field::boolean().required().default(json!(true)))
        .field("tags", typedefs::tags())
        .field("service", Field::foreign("services"))
        .field("snis", Field::set(typedefs::wildcard_host()))
        .field("sources", typedefs::sources())
        .field("destinations", typedefs::destinations())
        .field("methods", typedefs::methods())
        .field("hosts", typedefs::hosts())
        .field("paths", typedefs::router_paths())
        .field(
            "headers",
            Field::map(
                typedefs::header_name().match_none(
                    "^[Hh][Oo][Ss][Tt]$",
                    "cannot contain 'host' header, which must be specified in the 'hosts' attribute",
                ),
                Field::array(Field::string()),
            ),
        )
        .field("regex_priority", Field::integer().default(json!(0)))
        .field("path_handling", Field::string().default(json!("v0")).one_of(["v0", "v1"]))
        .check(
            EntityCheck::conditional(
                "protocols",
                FieldMatch::new().elements(
                    Field::string().not_one_of(["grpcs", "https", "tls", "tls_passthrough"]),
                ),
                "snis",
                FieldMatch::new().len_eq(0),
            )
            .with_then_err(
                "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'",
            ),
        )
        .check(EntityCheck::custom(&["path_handling"], path_handling_check));
    s.endpoint_key = Some("name");
    s.workspaceable = true;
    s.subschema_key = Some("protocols");
    let http = Arc::new(http_subschema());
    let stream = Arc::new(stream_subschema());
    let grpc = Arc::new(grpc_subschema());
    for p in ["http", "https"] {
        s.subschemas.insert(p.into(), http.clone());
    }
    for p in ["tcp", "tls", "udp", "tls_passthrough"] {
        s.subschemas.insert(p.into(), stream.clone());
    }
    for p in ["grpc", "grpcs"] {
        s.subschemas.insert(p.into(), grpc.clone());
    }
    s
}
