//! The credential entities the bundled authentication plugins add to the data model, as Kong
//! 3.9 declares them in `kong/plugins/*/daos.lua`: `keyauth_credentials`,
//! `basicauth_credentials`, `jwt_secrets`, `hmacauth_credentials` and `acls`.
//!
//! Each belongs to a consumer (a required foreign key, deleted with it), is workspaceable,
//! and has Kong's Admin API names, endpoint key and cache key. Generated secrets use the
//! schema's `auto` strings (Kong's `random_string`); basic-auth passwords are hashed by an
//! on-write transformation ([`basicauth_hash`]).
//!
//! Only schema definitions live here: the store and the Admin API build the tables and
//! routes from them; the plugins' request-time code reads the entities from the snapshot.

use std::io::Cursor;

use serde_json::{json, Value};
use turnpike_core::lua::LuaPattern;
use turnpike_core::schema::{
    Custom, Entity, EntityCheck, Field, FieldMatch, OnDelete, Schema, Transformation,
};
use turnpike_core::typedefs;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::{PublicKey, RSAPublicKey};
use x509_parser::x509::SubjectPublicKeyInfo;

/// The credential entities, in the order Kong loads their plugins' DAOs.
pub fn credential_entities() -> Vec<Schema> {
    vec![
        keyauth_credentials(),
        basicauth_credentials(),
        jwt_secrets(),
        hmacauth_credentials(),
        acls(),
    ]
}

/// Kong's stored form of a basic-auth password (`kong/plugins/basic-auth/crypto.lua`): the
/// password salted with the consumer id, `hex(sha1(password .. consumer_id))`, lowercase.
pub fn basicauth_hash(password: &str, consumer_id: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(password.as_bytes());
    ctx.update(consumer_id.as_bytes());
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A credential entity: `id`, `created_at` and the owning `consumer`, workspaceable, with its
/// Admin API collection names.
fn credential(name: &str, api_name: Option<&'static str>, nested: Option<&'static str>) -> Schema {
    let mut s = Schema::entity(name)
        .field("id", typedefs::uuid())
        .field("created_at", typedefs::auto_timestamp_s())
        .field("consumer", Field::foreign("consumers").required().on_delete(OnDelete::Cascade));
    s.admin_api_name = api_name;
    s.admin_api_nested_name = nested;
    s.workspaceable = true;
    s
}

fn keyauth_credentials() -> Schema {
    let mut s = credential("keyauth_credentials", Some("key-auths"), Some("key-auth"))
        .field("key", Field::string().unique().auto())
        .field("tags", typedefs::tags());
    s.ttl = true;
    s.endpoint_key = Some("key");
    s.cache_key = Some(vec!["key"]);
    s
}

/// The `on_write` transformation of `password` (needs `consumer.id`).
fn hash_password(args: &[&Value]) -> Result<Entity, String> {
    // Kong salts a missing password as if it were empty.
    let password = args.first().and_then(|v| v.as_str()).unwrap_or_default();
    let consumer_id = args.get(1).and_then(|v| v.as_str()).ok_or("consumer id is not a string")?;
    let mut out = Entity::new();
    out.insert("password".into(), json!(basicauth_hash(password, consumer_id)));
    Ok(out)
}

fn basicauth_credentials() -> Schema {
    let mut s = credential("basicauth_credentials", Some("basic-auths"), Some("basic-auth"))
        .field("username", Field::string().required().unique())
        .field("password", Field::string().required().encrypted())
        .field("tags", typedefs::tags())
        .transformation(Transformation {
            input: vec!["password"],
            needs: vec!["consumer.id"],
            on_write: Some(hash_password),
            on_read: None,
        });
    s.endpoint_key = Some("username");
    s.cache_key = Some(vec!["username"]);
    s
}

/// `jwt_secrets.algorithm` values.
const JWT_ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA",
];

/// The algorithms whose credential must carry `rsa_public_key`. Kong leaves the ES* family
/// out of this list, so an ES256 secret without a key is accepted.
const JWT_KEYED_ALGORITHMS: &[&str] =
    &["^RS256$", "^RS384$", "^RS512$", "^PS256$", "^PS384$", "^PS512$", "^EdDSA$"];

/// Algorithm OIDs OpenSSL loads that `x509-parser` does not decode: Ed25519, Ed448, X25519,
/// X448 and RSASSA-PSS.
const OTHER_KEY_OIDS: &[&str] =
    &["1.3.101.112", "1.3.101.113", "1.3.101.110", "1.3.101.111", "1.2.840.113549.1.1.10"];

fn spki_is_loadable(der: &[u8]) -> bool {
    let Ok((_, spki)) = SubjectPublicKeyInfo::from_der(der) else { return false };
    match spki.parsed() {
        Ok(PublicKey::RSA(k)) => !k.modulus.is_empty() && !k.exponent.is_empty(),
        Ok(PublicKey::EC(p)) => !p.data().is_empty(),
        Ok(PublicKey::DSA(_)) => true,
        Ok(PublicKey::Unknown(_)) => {
            OTHER_KEY_OIDS.contains(&spki.algorithm.algorithm.to_id_string().as_str())
        }
        Ok(PublicKey::GostR3410(_) | PublicKey::GostR3410_2012(_)) | Err(_) => false,
    }
}

/// Whether the text holds a key OpenSSL's `pkey.new` would load: a PEM public key (SPKI or
/// PKCS#1 RSA) or a PEM private key.
fn is_loadable_key(text: &str) -> bool {
    let Ok((pem, _)) = Pem::read(Cursor::new(text.as_bytes())) else { return false };
    match pem.label.as_str() {
        "PUBLIC KEY" => spki_is_loadable(&pem.contents),
        "RSA PUBLIC KEY" => RSAPublicKey::from_der(&pem.contents)
            .is_ok_and(|(_, k)| !k.modulus.is_empty() && !k.exponent.is_empty()),
        "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
            turnpike_core::pki::private_key_spki(text).is_ok()
        }
        _ => false,
    }
}

/// `validate_ssl_key` of the jwt DAO, with its message.
fn validate_rsa_public_key(v: &Value) -> Result<(), String> {
    if v.as_str().is_some_and(is_loadable_key) {
        Ok(())
    } else {
        Err("invalid key".into())
    }
}

fn jwt_secrets() -> Schema {
    let mut if_keyed = FieldMatch::new();
    if_keyed.v.match_any = Some((
        JWT_KEYED_ALGORITHMS.iter().map(|p| LuaPattern::new(*p)).collect(),
        // Kong gives no message: the pattern only selects when the check applies.
        String::new(),
    ));
    let mut then_key = FieldMatch::new().required();
    then_key.v.custom = Some(Custom(validate_rsa_public_key));
    let mut s = credential("jwt_secrets", Some("jwts"), Some("jwt"))
        .field("key", Field::string().unique().auto())
        .field("secret", Field::string().auto())
        .field("rsa_public_key", Field::string())
        .field(
            "algorithm",
            Field::string().default(json!("HS256")).one_of(JWT_ALGORITHMS.iter().copied()),
        )
        .field("tags", typedefs::tags())
        .check(EntityCheck::conditional("algorithm", if_keyed, "rsa_public_key", then_key));
    s.endpoint_key = Some("key");
    s.cache_key = Some(vec!["key"]);
    s
}

fn hmacauth_credentials() -> Schema {
    let mut s = credential("hmacauth_credentials", Some("hmac-auths"), Some("hmac-auth"))
        .field("username", Field::string().required().unique())
        .field("secret", Field::string().auto())
        .field("tags", typedefs::tags());
    s.endpoint_key = Some("username");
    s.cache_key = Some(vec!["username"]);
    s
}

fn acls() -> Schema {
    // No endpoint key and no custom API names: `/consumers/{c}/acls/{group}` accepting a group
    // name is a special route of Kong's acl plugin (`kong/plugins/acl/api.lua`).
    let mut s = credential("acls", None, None)
        .field("group", Field::string().required())
        .field("tags", typedefs::tags());
    s.cache_key = Some(vec!["consumer", "group"]);
    s
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use turnpike_core::schema::{Context, Entity, OnDelete, Schema};

    use super::{basicauth_hash, credential_entities};

    const CONSUMER: &str = "6c8b8a4e-6b8e-4a3e-9f3b-7d8e2a1c0b5f";

    const RSA_SPKI: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDWmRgZM6eMSCW207cOnrbi7vD2
JFHnMWHRvB9xv6GYJMeX7zEjZftlThdCETlRNGdWmbAfAz+7XxmE3+PBWtCrxHBJ
1KivxePOftVelj1T/3rrtJJGnf3YHYzKCpSwH66UweFd7Sdd65oBCgWN6QkzsyNK
ib+SIb9M/NCBp0nRUQIDAQAB
-----END PUBLIC KEY-----
";

    const RSA_PKCS1: &str = "-----BEGIN RSA PUBLIC KEY-----
MIGJAoGBANaZGBkzp4xIJbbTtw6etuLu8PYkUecxYdG8H3G/oZgkx5fvMSNl+2VO
F0IROVE0Z1aZsB8DP7tfGYTf48Fa0KvEcEnUqK/F485+1V6WPVP/euu0kkad/dgd
jMoKlLAfrpTB4V3tJ13rmgEKBY3pCTOzI0qJv5Ihv0z80IGnSdFRAgMBAAE=
-----END RSA PUBLIC KEY-----
";

    const EC_SPKI: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEjna1CUB4ytehx9pZ++vzAxpu8CWE
GqGURoaiIGQymRzPyUTE2KIIiWGUGO+vRiCHzeEvlo5nkAC53o6pLhewYA==
-----END PUBLIC KEY-----
";

    const ED25519_SPKI: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAbs9RefCeAGtCRBcKDJF6TVQiDOeFfxH5yJ2TI2UY5O8=
-----END PUBLIC KEY-----
";

    const ED25519_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOK7m+cTEq4HVIZqT6gtntuiO0Ld7SAmN0pA8r04GBos
-----END PRIVATE KEY-----
";

    fn schema(name: &str) -> Schema {
        credential_entities().into_iter().find(|s| s.name == name).unwrap()
    }

    fn obj(v: Value) -> Entity {
        v.as_object().unwrap().clone()
    }

    /// Insert as the DAO does: auto fields and defaults, full validation, transformations.
    fn insert(name: &str, input: Value) -> Result<Entity, Value> {
        let s = schema(name);
        let input = obj(input);
        let e = s.process_auto_fields(&input, Context::Insert, false).map_err(|e| e.to_json())?;
        s.validate_with(&e, true, false, Some(&input), None).map_err(|e| e.to_json())?;
        s.transform(&e, Some(&input), Context::Insert).map_err(Value::String)
    }

    fn is_random_string(v: &Value) -> bool {
        v.as_str().is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
    }

    #[test]
    fn names_and_keys() {
        // (entity, Admin API name, nested name, endpoint key, cache key, ttl)
        let cases = [
            ("keyauth_credentials", "key-auths", "key-auth", Some("key"), vec!["key"], true),
            (
                "basicauth_credentials",
                "basic-auths",
                "basic-auth",
                Some("username"),
                vec!["username"],
                false,
            ),
            ("jwt_secrets", "jwts", "jwt", Some("key"), vec!["key"], false),
            (
                "hmacauth_credentials",
                "hmac-auths",
                "hmac-auth",
                Some("username"),
                vec!["username"],
                false,
            ),
            ("acls", "acls", "acls", None, vec!["consumer", "group"], false),
        ];
        assert_eq!(credential_entities().len(), cases.len());
        for (name, api, nested, endpoint_key, cache_key, ttl) in cases {
            let s = schema(name);
            assert_eq!(s.api_name(), api, "{name}");
            assert_eq!(s.api_nested_name(), nested, "{name}");
            assert_eq!(s.endpoint_key, endpoint_key, "{name}");
            assert_eq!(s.cache_key, Some(cache_key), "{name}");
            assert_eq!(s.ttl, ttl, "{name}");
            assert!(s.workspaceable, "{name}");
            assert_eq!(s.primary_key, vec!["id"], "{name}");
            let fks: Vec<_> = s.foreign_fields().collect();
            assert_eq!(fks, vec![("consumer", "consumers", OnDelete::Cascade)], "{name}");
            assert!(s.fields["consumer"].required, "{name}");
            for f in ["id", "created_at", "tags"] {
                assert!(s.fields.contains_key(f), "{name}.{f}");
            }
            assert!(!s.fields.contains_key("updated_at"), "{name}");
        }
    }

    #[test]
    fn consumer_is_required() {
        for s in credential_entities() {
            let input = match s.name.as_str() {
                "basicauth_credentials" => json!({ "username": "u", "password": "p" }),
                "hmacauth_credentials" => json!({ "username": "u" }),
                "acls" => json!({ "group": "g" }),
                _ => json!({}),
            };
            let mut expected = json!({ "consumer": "required field missing" });
            if s.name == "basicauth_credentials" {
                // Kong's transformation check also reports the missing `needs` field
                expected["@entity"] =
                    json!(["all or none of these fields must be set: 'password', 'consumer.id'"]);
            }
            assert_eq!(insert(&s.name, input).unwrap_err(), expected, "{}", s.name);
        }
    }

    #[test]
    fn generated_values() {
        let consumer = json!({ "id": CONSUMER });

        let e = insert("keyauth_credentials", json!({ "consumer": consumer })).unwrap();
        assert!(is_random_string(&e["key"]), "{}", e["key"]);
        assert!(e["id"].as_str().is_some_and(|id| id.len() == 36));
        assert!(e["created_at"].as_i64().is_some_and(|t| t > 0));
        assert_eq!(e["tags"], Value::Null);

        let e = insert("jwt_secrets", json!({ "consumer": consumer })).unwrap();
        assert!(is_random_string(&e["key"]));
        assert!(is_random_string(&e["secret"]));
        assert_ne!(e["key"], e["secret"]);
        assert_eq!(e["algorithm"], json!("HS256"));
        assert_eq!(e["rsa_public_key"], Value::Null);

        let e = insert("hmacauth_credentials", json!({ "consumer": consumer, "username": "u" }))
            .unwrap();
        assert!(is_random_string(&e["secret"]));

        // given values are kept
        let e = insert(
            "jwt_secrets",
            json!({ "consumer": consumer, "key": "bob2", "secret": "tooshort" }),
        )
        .unwrap();
        assert_eq!((&e["key"], &e["secret"]), (&json!("bob2"), &json!("tooshort")));

        let e = insert("acls", json!({ "consumer": consumer, "group": "admins" })).unwrap();
        assert_eq!(e["group"], json!("admins"));
    }

    #[test]
    fn basicauth_hash_is_kongs() {
        // hex(sha1("pass123" .. "id123")), computed independently with `sha1sum`
        assert_eq!(basicauth_hash("pass123", "id123"), "fc4f9b44781125d2ebd9c08e402d78501c59535b");
        // Kong hashes a missing password as the consumer id alone
        assert_eq!(basicauth_hash("", CONSUMER), "8d8d838a91f94c7dede0a73870f76b9aab6703d2");
        assert_eq!(basicauth_hash("secret", CONSUMER), "ac0c10d12c4c9f6a26ba2e7a2c7cf23a996e90bf");
    }

    #[test]
    fn basicauth_password_is_hashed_on_write() {
        let e = insert(
            "basicauth_credentials",
            json!({ "consumer": { "id": CONSUMER }, "username": "bob", "password": "secret" }),
        )
        .unwrap();
        assert_eq!(e["password"], json!("ac0c10d12c4c9f6a26ba2e7a2c7cf23a996e90bf"));
        assert_eq!(e["username"], json!("bob"));

        let err = insert(
            "basicauth_credentials",
            json!({ "consumer": { "id": CONSUMER }, "username": "bob" }),
        )
        .unwrap_err();
        assert_eq!(err, json!({ "password": "required field missing" }));
    }

    #[test]
    fn jwt_keys_for_asymmetric_algorithms() {
        let consumer = json!({ "id": CONSUMER });
        for (algorithm, key) in [
            ("RS256", RSA_SPKI),
            ("RS512", RSA_PKCS1),
            ("PS256", RSA_SPKI),
            ("EdDSA", ED25519_SPKI),
            ("EdDSA", ED25519_PRIVATE),
            ("ES256", EC_SPKI),
        ] {
            let input =
                json!({ "consumer": consumer, "algorithm": algorithm, "rsa_public_key": key });
            assert!(insert("jwt_secrets", input).is_ok(), "{algorithm}");
        }
        // the form-urlencoded fixture of Kong's tests uses CRLF line ends
        let crlf = RSA_SPKI.replace('\n', "\r\n");
        let input = json!({ "consumer": consumer, "algorithm": "RS256", "rsa_public_key": crlf });
        assert!(insert("jwt_secrets", input).is_ok());
        // Kong does not require a key for the ES family nor check it for HS*
        let input = json!({ "consumer": consumer, "algorithm": "ES256" });
        assert!(insert("jwt_secrets", input).is_ok());
        let input = json!({ "consumer": consumer, "algorithm": "HS256", "rsa_public_key": "x" });
        assert!(insert("jwt_secrets", input).is_ok());
    }

    #[test]
    fn jwt_bad_keys_are_refused_with_kongs_messages() {
        let consumer = json!({ "id": CONSUMER });
        let conditional = "failed conditional validation given value of field 'algorithm'";
        let truncated = &RSA_SPKI[..RSA_SPKI.len() - 40];
        let corrupt = RSA_SPKI.replace("MIGf", "MIGg");
        let certificate_label = RSA_SPKI.replace("PUBLIC KEY", "CERTIFICATE");
        for bad in ["test", truncated, corrupt.as_str(), certificate_label.as_str()] {
            let input =
                json!({ "consumer": consumer, "algorithm": "RS256", "rsa_public_key": bad });
            assert_eq!(
                insert("jwt_secrets", input).unwrap_err(),
                json!({ "rsa_public_key": "invalid key", "@entity": [conditional] }),
                "{bad}"
            );
        }
        let input = json!({ "consumer": consumer, "key": "bob5", "algorithm": "RS256" });
        assert_eq!(
            insert("jwt_secrets", input).unwrap_err(),
            json!({ "rsa_public_key": "required field missing", "@entity": [conditional] })
        );
        let input = json!({ "consumer": consumer, "algorithm": "RS1024" });
        assert_eq!(
            insert("jwt_secrets", input).unwrap_err(),
            json!({ "algorithm": "expected one of: HS256, HS384, HS512, RS256, RS384, RS512, \
                ES256, ES384, ES512, PS256, PS384, PS512, EdDSA" })
        );
    }
}
