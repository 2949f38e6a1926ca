//! `key_sets`, `keys`, `vaults`, `tags` and the internal `workspaces`.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::schema::{Entity, EntityCheck, Field, OnDelete, Schema};
use crate::typedefs;

pub(super) fn key_sets() -> Schema {
    let mut s = Schema::entity("key_sets")
        .field("id", typedefs::uuid())
        .field("name", Field::string().unique())
        .field("tags", typedefs::tags())
        .field("created_at", typedefs::auto_timestamp_s())
        .field("updated_at", typedefs::auto_timestamp_s());
    s.admin_api_name = Some("key-sets");
    s.endpoint_key = Some("name");
    s.workspaceable = true;
    s
}

fn validate_pem_keys(v: &Value) -> Result<(), String> {
    let public = v.get("public_key").and_then(Value::as_str);
    let private = v.get("private_key").and_then(Value::as_str);
    if public.is_some_and(crate::vault::is_reference)
        || private.is_some_and(crate::vault::is_reference)
    {
        return Ok(());
    }
    let public_der = match public {
        Some(p) => Some(crate::pki::public_key_spki(p).ok_or("could not load public key")?),
        None => None,
    };
    let private_der = match private {
        Some(p) => Some(
            crate::pki::private_key_spki(p)
                .map_err(|e| format!("could not load private key{e}"))?,
        ),
        None => None,
    };
    if let (Some(a), Some(b)) = (public_der, private_der) {
        if a != b {
            return Err("public key does not match private key".into());
        }
    }
    Ok(())
}

fn pem_record() -> Field {
    Field::record(
        Schema::record()
            .field("private_key", Field::string().referenceable().encrypted())
            .field("public_key", Field::string().referenceable())
            .check(EntityCheck::at_least_one_of(&["private_key", "public_key"])),
    )
    .custom(validate_pem_keys)
}

fn check_key(e: &Entity) -> Result<(), String> {
    if let Some(jwk) = e.get("jwk").and_then(Value::as_str) {
        if crate::vault::is_reference(jwk) {
            return Ok(());
        }
        let parsed: Value =
            serde_json::from_str(jwk).map_err(|_| "could not json decode jwk string".to_owned())?;
        if parsed.get("kid") != e.get("kid") {
            return Err("kid in jwk.kid must be equal to keys.kid".into());
        }
        if !crate::pki::jwk_is_usable(&parsed) {
            return Err("could not load JWK, likely not a valid key".into());
        }
    }
    if let Some(pem) = e.get("pem").and_then(Value::as_object) {
        let set = |k: &str| pem.get(k).is_some_and(|v| !v.is_null());
        if !set("private_key") && !set("public_key") {
            return Err("need to supply a PEM formatted public and/or private key.".into());
        }
    }
    Ok(())
}

pub(super) fn keys() -> Schema {
    let mut s = Schema::entity("keys")
        .field("id", typedefs::uuid())
        .field("set", Field::foreign("key_sets").on_delete(OnDelete::Cascade))
        .field("name", Field::string().unique())
        .field("kid", Field::string().required())
        .field("jwk", Field::string().referenceable().encrypted())
        .field("pem", pem_record())
        .field("tags", typedefs::tags())
        .field("created_at", typedefs::auto_timestamp_s())
        .field("updated_at", typedefs::auto_timestamp_s())
        .check(EntityCheck::mutually_exclusive(&["jwk", "pem"]))
        .check(EntityCheck::at_least_one_of(&["jwk", "pem"]))
        .check(EntityCheck::custom(&["jwk", "pem", "kid"], check_key));
    s.endpoint_key = Some("name");
    s.cache_key = Some(vec!["kid", "set"]);
    s.workspaceable = true;
    s
}

/// Vaults bundled with the open-source edition.
pub(super) const BUNDLED_VAULTS: &[&str] = &["env"];

pub(super) fn vaults() -> Schema {
    let env = Schema::record().field(
        "config",
        Field::record(
            Schema::record().field("prefix", Field::string().matches("^[%a_-][%a%d_-]*$")),
        ),
    );
    let mut s = Schema::entity("vaults")
        .field("id", typedefs::uuid())
        .field(
            "prefix",
            Field::string()
                .required()
                .unique()
                .unique_across_ws()
                .matches("^[a-z][a-z%d-]-[a-z%d]+$")
                .not_one_of(BUNDLED_VAULTS.iter().copied()),
        )
        .field("name", Field::string().required())
        .field("description", Field::string())
        .field("config", Field::record(Schema::record()).abstract_())
        .field("created_at", typedefs::auto_timestamp_s())
        .field("updated_at", typedefs::auto_timestamp_s())
        .field("tags", typedefs::tags());
    s.table_name = Some("sm_vaults");
    s.admin_api_name = Some("vaults");
    s.endpoint_key = Some("prefix");
    s.cache_key = Some(vec!["prefix"]);
    s.workspaceable = true;
    s.subschema_key = Some("name");
    s.subschema_error = Some("vault '%s' is not installed");
    s.subschemas.insert("env".into(), Arc::new(env));
    s
}

pub(super) fn tags() -> Schema {
    let mut s = Schema::entity("tags")
        .field("tag", typedefs::tag())
        .field("entity_name", Field::string().required())
        .field("entity_id", typedefs::uuid().required());
    s.primary_key = vec!["tag"];
    s.endpoint_key = Some("tag");
    s.db_export = false;
    s
}

pub(super) fn workspaces() -> Schema {
    let mut s = Schema::entity("workspaces")
        .field("id", typedefs::uuid())
        .field("name", typedefs::utf8_name().required())
        .field("comment", Field::string())
        .field("created_at", typedefs::auto_timestamp_s())
        .field("updated_at", typedefs::auto_timestamp_s())
        .field("meta", Field::record(Schema::record()).default(json!({})))
        .field("config", Field::record(Schema::record()).default(json!({})));
    s.endpoint_key = Some("name");
    s.cache_key = Some(vec!["name"]);
    s.generate_admin_api = false;
    s
}
