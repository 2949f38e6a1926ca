//! `certificates`, `snis` and `ca_certificates`.

use serde_json::{json, Value};

use crate::pki;
use crate::schema::{Entity, EntityCheck, Field, Schema, Transformation};
use crate::typedefs;

fn str_of<'a>(e: &'a Entity, k: &str) -> Option<&'a str> {
    e.get(k).and_then(Value::as_str)
}

fn cert_matches_key(e: &Entity) -> Result<(), String> {
    match (str_of(e, "cert"), str_of(e, "key")) {
        (Some(c), Some(k)) if !pki::certificate_matches_key(c, k) => {
            Err("certificate does not match key".into())
        }
        _ => Ok(()),
    }
}

fn cert_alt_matches_key(e: &Entity) -> Result<(), String> {
    match (str_of(e, "cert_alt"), str_of(e, "key_alt")) {
        (Some(c), Some(k)) if !pki::certificate_matches_key(c, k) => {
            Err("alternative certificate does not match key".into())
        }
        _ => Ok(()),
    }
}

fn cert_types_differ(e: &Entity) -> Result<(), String> {
    if let (Some(c), Some(alt)) = (str_of(e, "cert"), str_of(e, "cert_alt")) {
        if pki::certificate_key_type(c) == pki::certificate_key_type(alt) {
            return Err(
                "certificate and alternative certificate need to have different type \
                        (e.g. RSA and ECDSA), the provided certificates were both of the same type"
                    .into(),
            );
        }
    }
    Ok(())
}

pub(super) fn certificates() -> Schema {
    let mut s = Schema::entity("certificates")
        .field("id", typedefs::uuid())
        .field("created_at", typedefs::auto_timestamp_s())
        .field("updated_at", typedefs::auto_timestamp_s())
        .field("cert", typedefs::certificate().required().referenceable())
        .field("key", typedefs::key().required().referenceable().encrypted())
        .field("cert_alt", typedefs::certificate().referenceable())
        .field("key_alt", typedefs::key().referenceable().encrypted())
        .field("tags", typedefs::tags())
        .field("snis", Field::array(typedefs::wildcard_host()).transient())
        .check(EntityCheck::mutually_required(&["cert_alt", "key_alt"]))
        .check(EntityCheck::custom(&["cert", "key"], cert_matches_key))
        .check(EntityCheck::custom(&["cert_alt", "key_alt"], cert_alt_matches_key))
        .check(EntityCheck::custom(&["cert", "cert_alt"], cert_types_differ));
    s.workspaceable = true;
    s
}

pub(super) fn snis() -> Schema {
    let mut s = Schema::entity("snis")
        .field("id", typedefs::uuid())
        .field("name", typedefs::wildcard_host().required().unique().unique_across_ws())
        .field("created_at", typedefs::auto_timestamp_s())
        .field("updated_at", typedefs::auto_timestamp_s())
        .field("tags", typedefs::tags())
        .field("certificate", Field::foreign("certificates").required());
    s.endpoint_key = Some("name");
    s.workspaceable = true;
    s
}

fn check_ca(e: &Entity) -> Result<(), String> {
    match str_of(e, "cert") {
        Some(c) => pki::check_ca_certificate(c, crate::time::now_s()),
        None => Ok(()),
    }
}

fn digest(args: &[&Value]) -> Result<Entity, String> {
    let cert = args.first().and_then(|v| v.as_str()).unwrap_or_default();
    let d = pki::certificate_digest(cert).ok_or("cannot create digest value of certificate")?;
    let mut out = Entity::new();
    out.insert("cert_digest".into(), json!(d));
    Ok(out)
}

pub(super) fn ca_certificates() -> Schema {
    Schema::entity("ca_certificates")
        .field("id", typedefs::uuid())
        .field("created_at", typedefs::auto_timestamp_s())
        .field("updated_at", typedefs::auto_timestamp_s())
        .field("cert", typedefs::certificate().required())
        .field("cert_digest", Field::string().unique())
        .field("tags", typedefs::tags())
        .transformation(Transformation {
            input: vec!["cert"],
            needs: vec![],
            on_write: Some(digest),
            on_read: None,
        })
        .check(EntityCheck::custom(&["cert"], check_ca))
}
