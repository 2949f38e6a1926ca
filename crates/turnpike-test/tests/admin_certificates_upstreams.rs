//! Kong's Admin API integration specs for certificates, SNIs, CA certificates, upstreams and
//! targets, ported to the real `turnpike` binary on every database:
//!
//! * `spec/02-integration/04-admin_api/06-certificates_routes_spec.lua`
//! * `spec/02-integration/04-admin_api/16-ca_certificates_routes_spec.lua`
//! * `spec/02-integration/04-admin_api/07-upstreams_routes_spec.lua`
//! * `spec/02-integration/04-admin_api/08-targets_routes_spec.lua` (without `/health` and the
//!   `healthy`/`unhealthy` endpoints, which are not implemented yet)
//!
//! Kong's SSL fixtures are replaced by ours (`fixtures/tls`): `rsa` is Kong's `cert`/`key`,
//! `leaf` its `cert_alt`/`key_alt` (another RSA pair), `ecdsa` its `cert_ecdsa`/`key_ecdsa`,
//! `ecdsa2` its `cert_alt_ecdsa`/`key_alt_ecdsa`, `ca` its `cert_ca`, `expired-ca` an expired
//! certificate and `leaf` a certificate without the CA basic constraint.

use serde_json::{json, Value};
use turnpike_test::{
    databases, escape_uri, expect_or_empty, gateway, new_uuid, send_fields, tls_fixture,
    walk_pages, without, Client, Resp,
};

/// The content types Kong's `it_content_types` runs every case with.
const CONTENT_TYPES: [&str; 3] = ["form", "multipart", "json"];

// ---- helpers -------------------------------------------------------------------------------

/// Flattens a JSON body into form pairs the way Kong's test client encodes tables: nested
/// objects as dotted keys, arrays as repeated keys (form) or `key[n]` parts (multipart).
fn form_pairs(prefix: &str, v: &Value, multipart: bool, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                form_pairs(&key, x, multipart, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let key =
                    if multipart { format!("{prefix}[{}]", i + 1) } else { prefix.to_owned() };
                form_pairs(&key, x, multipart, out);
            }
        }
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        Value::Null => out.push((prefix.to_owned(), String::new())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// Sends `body` with `method` encoded as `ct` (`form`, `multipart` or `json`).
async fn send(c: &Client, method: &str, path: &str, ct: &str, body: &Value) -> Resp {
    if ct == "json" {
        return c.send_json(method, path, body).await;
    }
    let mut pairs = Vec::new();
    form_pairs("", body, ct == "multipart", &mut pairs);
    send_fields(c, ct == "multipart", method, path, &pairs).await
}

struct Fx {
    cert: String,
    key: String,
    cert_alt: String,
    key_alt: String,
    cert_ecdsa: String,
    key_ecdsa: String,
    cert_alt_ecdsa: String,
    key_alt_ecdsa: String,
    other_key: String,
    ca: String,
    expired: String,
    non_ca: String,
}

fn fx() -> Fx {
    Fx {
        cert: tls_fixture("rsa.crt"),
        key: tls_fixture("rsa.key"),
        cert_alt: tls_fixture("leaf.crt"),
        key_alt: tls_fixture("leaf.key"),
        cert_ecdsa: tls_fixture("ecdsa.crt"),
        key_ecdsa: tls_fixture("ecdsa.key"),
        cert_alt_ecdsa: tls_fixture("ecdsa2.crt"),
        key_alt_ecdsa: tls_fixture("ecdsa2.key"),
        other_key: tls_fixture("other.key"),
        ca: tls_fixture("ca.crt"),
        expired: tls_fixture("expired-ca.crt"),
        non_ca: tls_fixture("leaf.crt"),
    }
}

/// Unique SNI names (`name0001.test`, ...), like the spec's `get_name`.
struct Names(u32);

impl Names {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("name{:04}.test", self.0)
    }
}

struct Certs<'a> {
    c: &'a Client,
    fx: &'a Fx,
    names: Names,
    db: &'static str,
}

impl Certs<'_> {
    /// `add_certificate`: validates, then creates a certificate with two new SNIs.
    async fn add(&mut self) -> (Value, Vec<String>) {
        let names = vec![self.names.next(), self.names.next()];
        let body = json!({ "cert": self.fx.cert, "key": self.fx.key, "snis": names });
        let res = self.c.post_json("/schemas/certificates/validate", &body).await;
        let v = expect_or_empty(&res, 200, &format!("{}: add_certificate validate", self.db));
        assert_eq!(v["message"], "schema validation successful");
        let res = self.c.post_json("/certificates", &body).await;
        (expect_or_empty(&res, 201, &format!("{}: add_certificate", self.db)), names)
    }

    /// `add_certificate_with_alt_cert`.
    async fn add_with_alt(&mut self) -> (Value, Vec<String>) {
        let names = vec![self.names.next(), self.names.next()];
        let body = json!({
            "cert": self.fx.cert, "key": self.fx.key,
            "cert_alt": self.fx.cert_ecdsa, "key_alt": self.fx.key_ecdsa,
            "snis": names,
        });
        let res = self.c.post_json("/certificates", &body).await;
        (expect_or_empty(&res, 201, &format!("{}: add_certificate_with_alt_cert", self.db)), names)
    }

    /// `get_certificates`: the collection without `updated_at`.
    async fn list(&self) -> Value {
        let res = self.c.get("/certificates").await;
        let mut v = expect_or_empty(&res, 200, &format!("{}: GET /certificates", self.db));
        for cert in v["data"].as_array_mut().expect("data array") {
            cert.as_object_mut().unwrap().remove("updated_at");
        }
        v
    }

    fn all_snis(list: &Value) -> Vec<String> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["snis"].as_array().cloned().unwrap_or_default())
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    }
}

fn error_body(message: &str, fields: Value) -> Value {
    json!({ "code": 2, "name": "schema violation", "message": message, "fields": fields })
}

// ---- /certificates -------------------------------------------------------------------------

#[tokio::test]
async fn certificates_collection_and_post() {
    let fx = fx();
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        let d = db.name();
        let mut certs = Certs { c: &c, fx: &fx, names: Names(0), db: d };

        // GET retrieves all certificates with snis (150 of them)
        let my_snis: Vec<String> = (1..=150).map(|i| format!("my-sni-{i:03}.test")).collect();
        let res = c
            .post_json("/certificates", &json!({ "cert": fx.cert, "key": fx.key, "snis": my_snis }))
            .await;
        expect_or_empty(&res, 201, &format!("{d}: POST with 150 snis"));
        let list = certs.list().await;
        let data = list["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{d}: one certificate");
        assert!(data[0]["cert"].is_string() && data[0]["key"].is_string(), "{d}: cert/key");
        assert_eq!(data[0]["cert_alt"], Value::Null, "{d}: cert_alt");
        assert_eq!(data[0]["key_alt"], Value::Null, "{d}: key_alt");
        assert_eq!(data[0]["snis"], json!(my_snis), "{d}: 150 snis listed");
        let id = data[0]["id"].as_str().unwrap().to_owned();
        expect_or_empty(&c.delete(&format!("/certificates/{id}")).await, 204, d);

        // POST returns a conflict when duplicated snis are present in the request
        let (n1, n2) = (certs.names.next(), certs.names.next());
        let res = c
            .post_json(
                "/certificates",
                &json!({ "cert": fx.cert, "key": fx.key, "snis": [n1, n2, n1] }),
            )
            .await;
        let v = expect_or_empty(&res, 400, &format!("{d}: duplicated snis"));
        assert_eq!(v["message"], format!("schema violation (snis: {n1} is duplicated)"));
        let all = Certs::all_snis(&certs.list().await);
        assert!(!all.contains(&n1) && !all.contains(&n2), "{d}: nothing added: {all:?}");
        assert_eq!(certs.list().await["data"], json!([]), "{d}: no certificate added");

        // POST returns a conflict when a pre-existing sni is detected
        let (n1, n2) = (certs.names.next(), certs.names.next());
        let res = c
            .post_json("/certificates", &json!({ "cert": fx.cert, "key": fx.key, "snis": [n1] }))
            .await;
        let first = expect_or_empty(&res, 201, &format!("{d}: first certificate"));
        let res = c
            .post_json(
                "/certificates",
                &json!({ "cert": fx.cert, "key": fx.key, "snis": [n1, n2] }),
            )
            .await;
        let v = expect_or_empty(&res, 400, &format!("{d}: pre-existing sni"));
        assert_eq!(
            v,
            error_body(
                &format!(
                    "schema violation (snis: {n1} already associated with existing certificate '{}')",
                    first["id"].as_str().unwrap()
                ),
                json!({ "snis": format!(
                    "{n1} already associated with existing certificate '{}'",
                    first["id"].as_str().unwrap()
                ) })
            ),
            "{d}: pre-existing sni body"
        );
        let list = certs.list().await;
        assert!(!Certs::all_snis(&list).contains(&n2), "{d}: {n2} not added");
        assert_eq!(list["data"].as_array().unwrap().len(), 1, "{d}: no second certificate");

        for ct in CONTENT_TYPES {
            // creates a certificate and returns it with the snis pseudo-property
            let (n1, n2) = (certs.names.next(), certs.names.next());
            let res = send(
                &c,
                "POST",
                "/certificates",
                ct,
                &json!({ "cert": fx.cert, "key": fx.key, "snis": [n1, n2] }),
            )
            .await;
            let v = expect_or_empty(&res, 201, &format!("{d}: create with snis [{ct}]"));
            assert_eq!(v["cert"], json!(fx.cert), "{d} [{ct}]: cert kept verbatim");
            assert_eq!(v["key"], json!(fx.key), "{d} [{ct}]: key kept verbatim");
            assert_eq!(v["cert_alt"], Value::Null, "{d} [{ct}]");
            assert_eq!(v["key_alt"], Value::Null, "{d} [{ct}]");
            assert_eq!(v["snis"], json!([n1, n2]), "{d} [{ct}]: snis");

            // returns snis as [] when none is set
            let res =
                send(&c, "POST", "/certificates", ct, &json!({ "cert": fx.cert, "key": fx.key }))
                    .await;
            let v = expect_or_empty(&res, 201, &format!("{d}: create without snis [{ct}]"));
            assert_eq!(v["cert_alt"], Value::Null, "{d} [{ct}]");
            assert!(res.text().contains("\"snis\":[]"), "{d} [{ct}]: snis as []: {}", res.text());
        }

        // snis are returned sorted (Kong's parse_name_list sorts the list)
        let res = c
            .post_json(
                "/certificates",
                &json!({ "cert": fx.cert, "key": fx.key, "snis": ["zz-sorted.test", "aa-sorted.test"] }),
            )
            .await;
        let v = expect_or_empty(&res, 201, &format!("{d}: unsorted snis"));
        assert_eq!(v["snis"], json!(["aa-sorted.test", "zz-sorted.test"]), "{d}: snis sorted");
    }
}

#[tokio::test]
async fn certificates_get_and_put() {
    let fx = fx();
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        let d = db.name();
        let mut certs = Certs { c: &c, fx: &fx, names: Names(0), db: d };

        // GET retrieves a certificate by id
        let (cert, names) = certs.add().await;
        let id = cert["id"].as_str().unwrap();
        let v = expect_or_empty(
            &c.get(&format!("/certificates/{id}")).await,
            200,
            &format!("{d}: by id"),
        );
        assert!(v["cert"].is_string() && v["key"].is_string(), "{d}: by id cert/key");
        assert_eq!(v["cert_alt"], Value::Null, "{d}: by id cert_alt");
        assert_eq!(v["key_alt"], Value::Null, "{d}: by id key_alt");
        assert_eq!(v["snis"], json!(names), "{d}: by id snis");
        assert_eq!(v, cert, "{d}: GET by id equals the created certificate");

        // ... with alternate certificate
        let (cert, names) = certs.add_with_alt().await;
        let id = cert["id"].as_str().unwrap();
        let v = expect_or_empty(
            &c.get(&format!("/certificates/{id}")).await,
            200,
            &format!("{d}: alt by id"),
        );
        assert_eq!(v["cert_alt"], json!(fx.cert_ecdsa), "{d}: alt by id cert_alt");
        assert_eq!(v["key_alt"], json!(fx.key_ecdsa), "{d}: alt by id key_alt");
        assert_eq!(v["snis"], json!(names), "{d}: alt by id snis");

        // retrieves a certificate by sni (both names give the same certificate)
        for alt in [false, true] {
            let (cert, names) = if alt { certs.add_with_alt().await } else { certs.add().await };
            let ctx = format!("{d}: by sni (alt={alt})");
            let v1 =
                expect_or_empty(&c.get(&format!("/certificates/{}", names[0])).await, 200, &ctx);
            let v2 =
                expect_or_empty(&c.get(&format!("/certificates/{}", names[1])).await, 200, &ctx);
            assert_eq!(v1, v2, "{ctx}: same certificate by either sni");
            assert_eq!(v1["id"], cert["id"], "{ctx}: id");
            assert_eq!(v1["snis"], json!(names), "{ctx}: snis");
            assert_eq!(v1["cert_alt"].is_string(), alt, "{ctx}: cert_alt");
            assert_eq!(v1["key_alt"].is_string(), alt, "{ctx}: key_alt");
        }

        // returns 404 for a random non-existing uuid
        let u = new_uuid();
        let v = expect_or_empty(
            &c.get(&format!("/certificates/{u}")).await,
            404,
            &format!("{d}: random uuid"),
        );
        assert_eq!(
            v,
            json!({
                "code": 6, "name": "not found",
                "message": format!("could not find the entity with primary key '{{id=\"{u}\"}}'"),
                "fields": { "id": u }
            }),
            "{d}: random uuid body (select_with_name_list not_found)"
        );
        // returns 404 for a random non-existing sni
        let v = expect_or_empty(
            &c.get("/certificates/doesntexist.test").await,
            404,
            &format!("{d}: random sni"),
        );
        assert_eq!(v, json!({ "message": "SNI not found" }), "{d}: random sni body");

        // PUT creates if not found
        let n1 = certs.names.next();
        let id = new_uuid();
        let res = c
            .put_json(
                &format!("/certificates/{id}"),
                &json!({ "cert": fx.cert, "key": fx.key, "snis": [n1] }),
            )
            .await;
        let v = expect_or_empty(&res, 200, &format!("{d}: PUT creates"));
        assert_eq!(v["id"], json!(id), "{d}: PUT creates with the id of the URL");
        assert_eq!(v["cert"], json!(fx.cert), "{d}: PUT creates cert");
        assert_eq!(v["cert_alt"], Value::Null, "{d}: PUT creates cert_alt");
        assert_eq!(v["key_alt"], Value::Null, "{d}: PUT creates key_alt");
        assert_eq!(v["snis"], json!([n1]), "{d}: PUT creates snis");
        let in_db = expect_or_empty(&c.get(&format!("/certificates/{id}")).await, 200, d);
        assert_eq!(v, in_db, "{d}: PUT creates, stored");

        // PUT creates a new sni when provided in the url
        let (n1, n2) = (certs.names.next(), certs.names.next());
        let res = c
            .put_json(
                &format!("/certificates/{n1}"),
                &json!({ "cert": fx.cert, "key": fx.key, "snis": [n2] }),
            )
            .await;
        let v = expect_or_empty(&res, 200, &format!("{d}: PUT by new sni"));
        assert_eq!(v["cert"], json!(fx.cert), "{d}: PUT by new sni cert");
        assert_eq!(v["snis"], json!([n1, n2]), "{d}: PUT by new sni snis");
        let in_db = expect_or_empty(&c.get(&format!("/certificates/{n1}")).await, 200, d);
        assert_eq!(v, in_db, "{d}: PUT by new sni, stored");

        // ... with the sni duplicated in url and body
        let (n1, n2) = (certs.names.next(), certs.names.next());
        let res = c
            .put_json(
                &format!("/certificates/{n1}"),
                &json!({ "cert": fx.cert, "key": fx.key, "snis": [n1, n2] }),
            )
            .await;
        let v = expect_or_empty(&res, 200, &format!("{d}: PUT sni in url and body"));
        assert_eq!(v["snis"], json!([n1, n2]), "{d}: PUT sni in url and body snis");
        let in_db = expect_or_empty(
            &c.get(&format!("/certificates/{}", v["id"].as_str().unwrap())).await,
            200,
            d,
        );
        assert_eq!(v, in_db, "{d}: PUT sni in url and body, stored");

        // PUT upserts if found (snis are cleared when not given)
        let (cert, _) = certs.add().await;
        let id = cert["id"].as_str().unwrap();
        let res = c
            .put_json(
                &format!("/certificates/{id}"),
                &json!({ "cert": fx.cert_alt, "key": fx.key_alt }),
            )
            .await;
        let v = expect_or_empty(&res, 200, &format!("{d}: PUT upserts"));
        assert_eq!(v["cert"], json!(fx.cert_alt), "{d}: PUT upserts cert");
        assert_eq!(v["key"], json!(fx.key_alt), "{d}: PUT upserts key");
        assert_eq!(v["cert_alt"], Value::Null, "{d}: PUT upserts cert_alt");
        assert_eq!(v["snis"], json!([]), "{d}: PUT upserts clears snis");
        // Kong's upsert fills created_at anew and its SQL sets every column from the new row,
        // so a PUT over an existing entity carries the time of the PUT
        assert!(v["created_at"].as_i64() >= cert["created_at"].as_i64(), "{d}: created_at");
        assert!(v["updated_at"].as_i64() >= cert["updated_at"].as_i64(), "{d}: updated_at");
        let in_db = expect_or_empty(&c.get(&format!("/certificates/{id}")).await, 200, d);
        assert_eq!(v, in_db, "{d}: PUT upserts, stored");

        // PUT upserts if found with alternate certificate
        let (cert, _) = certs.add_with_alt().await;
        let id = cert["id"].as_str().unwrap();
        let res = c
            .put_json(
                &format!("/certificates/{id}"),
                &json!({
                    "cert": fx.cert_alt, "key": fx.key_alt,
                    "cert_alt": fx.cert_alt_ecdsa, "key_alt": fx.key_alt_ecdsa,
                }),
            )
            .await;
        let v = expect_or_empty(&res, 200, &format!("{d}: PUT upserts alt"));
        assert_eq!(v["cert"], json!(fx.cert_alt), "{d}: PUT upserts alt cert");
        assert_eq!(v["key"], json!(fx.key_alt), "{d}: PUT upserts alt key");
        assert_eq!(v["cert_alt"], json!(fx.cert_alt_ecdsa), "{d}: PUT upserts alt cert_alt");
        assert_eq!(v["key_alt"], json!(fx.key_alt_ecdsa), "{d}: PUT upserts alt key_alt");
        assert_eq!(v["snis"], json!([]), "{d}: PUT upserts alt snis");
        let in_db = expect_or_empty(&c.get(&format!("/certificates/{id}")).await, 200, d);
        assert_eq!(v, in_db, "{d}: PUT upserts alt, stored");

        // invalid input, with exact Kong bodies
        let before = certs.list().await;
        let cases: Vec<(&str, &str, String, Value, Value)> = vec![
            (
                "PUT missing params",
                "PUT",
                format!("/certificates/{}", new_uuid()),
                json!({}),
                error_body(
                    "2 schema violations (cert: required field missing; key: required field missing)",
                    json!({ "cert": "required field missing", "key": "required field missing" }),
                ),
            ),
            (
                "PUT cert_alt without key_alt",
                "PUT",
                format!("/certificates/{}", new_uuid()),
                json!({ "cert": fx.cert, "key": fx.key, "cert_alt": fx.cert_ecdsa }),
                error_body(
                    "schema violation (all or none of these fields must be set: 'cert_alt', 'key_alt')",
                    json!({ "@entity": ["all or none of these fields must be set: 'cert_alt', 'key_alt'"] }),
                ),
            ),
            (
                "POST mismatched key",
                "POST",
                "/certificates".into(),
                json!({ "cert": fx.cert, "key": fx.other_key }),
                error_body(
                    "schema violation (certificate does not match key)",
                    json!({ "@entity": ["certificate does not match key"] }),
                ),
            ),
            (
                "POST mismatched alternative key",
                "POST",
                "/certificates".into(),
                json!({
                    "cert": fx.cert, "key": fx.key,
                    "cert_alt": fx.cert_ecdsa, "key_alt": fx.key_alt_ecdsa,
                }),
                error_body(
                    "schema violation (alternative certificate does not match key)",
                    json!({ "@entity": ["alternative certificate does not match key"] }),
                ),
            ),
            (
                "POST non-distinct certificate types",
                "POST",
                "/certificates".into(),
                json!({ "cert": fx.cert, "key": fx.key, "cert_alt": fx.cert_alt, "key_alt": fx.key_alt }),
                error_body(
                    "schema violation (certificate and alternative certificate need to have different type (e.g. RSA and ECDSA), the provided certificates were both of the same type)",
                    json!({ "@entity": ["certificate and alternative certificate need to have different type (e.g. RSA and ECDSA), the provided certificates were both of the same type"] }),
                ),
            ),
        ];
        for (name, method, path, body, want) in cases {
            let res = c.send_json(method, &path, &body).await;
            let v = expect_or_empty(&res, 400, &format!("{d}: {name}"));
            assert_eq!(v, want, "{d}: {name}: body");
        }
        assert_eq!(certs.list().await, before, "{d}: invalid input left the store unchanged");
    }
}

#[tokio::test]
async fn certificates_patch_and_delete() {
    let fx = fx();
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        let d = db.name();
        let mut certs = Certs { c: &c, fx: &fx, names: Names(0), db: d };

        for ct in CONTENT_TYPES {
            // updates a certificate by cert id / by sni
            for by_sni in [false, true] {
                let ctx = format!("{d}: PATCH by {} [{ct}]", if by_sni { "sni" } else { "id" });
                let (cert, names) = certs.add().await;
                let key =
                    if by_sni { names[0].clone() } else { cert["id"].as_str().unwrap().into() };
                let res = send(
                    &c,
                    "PATCH",
                    &format!("/certificates/{key}"),
                    ct,
                    &json!({ "cert": fx.cert_alt, "key": fx.key_alt }),
                )
                .await;
                let v = expect_or_empty(&res, 200, &ctx);
                assert_eq!(v["cert"], json!(fx.cert_alt), "{ctx}: cert");
                assert_eq!(v["key"], json!(fx.key_alt), "{ctx}: key");
                assert_eq!(v["cert_alt"], Value::Null, "{ctx}: cert_alt");
                assert_eq!(v["key_alt"], Value::Null, "{ctx}: key_alt");
                assert_eq!(v["snis"], json!(names), "{ctx}: snis kept");

                // ... with alternate certificate
                let (cert, names) = certs.add_with_alt().await;
                let key =
                    if by_sni { names[0].clone() } else { cert["id"].as_str().unwrap().into() };
                let res = send(
                    &c,
                    "PATCH",
                    &format!("/certificates/{key}"),
                    ct,
                    &json!({
                        "cert": fx.cert_alt, "key": fx.key_alt,
                        "cert_alt": fx.cert_alt_ecdsa, "key_alt": fx.key_alt_ecdsa,
                    }),
                )
                .await;
                let v = expect_or_empty(&res, 200, &format!("{ctx} alt"));
                assert_eq!(v["cert"], json!(fx.cert_alt), "{ctx} alt: cert");
                assert_eq!(v["key"], json!(fx.key_alt), "{ctx} alt: key");
                assert_eq!(v["cert_alt"], json!(fx.cert_alt_ecdsa), "{ctx} alt: cert_alt");
                assert_eq!(v["key_alt"], json!(fx.key_alt_ecdsa), "{ctx} alt: key_alt");

                // update returns the full certificate
                for alt in [false, true] {
                    let (cert, names) =
                        if alt { certs.add_with_alt().await } else { certs.add().await };
                    let key =
                        if by_sni { names[0].clone() } else { cert["id"].as_str().unwrap().into() };
                    let res =
                        send(&c, "PATCH", &format!("/certificates/{key}"), ct, &json!({})).await;
                    let v = expect_or_empty(&res, 200, &format!("{ctx}: empty PATCH (alt={alt})"));
                    assert_eq!(
                        without(&v, &["updated_at"]),
                        without(&cert, &["updated_at"]),
                        "{ctx}: empty PATCH returns the full certificate (alt={alt})"
                    );
                }
            }
        }

        // returns 404 for a random non-existing id
        let n1 = certs.names.next();
        let res = c
            .patch_json(
                &format!("/certificates/{}", new_uuid()),
                &json!({ "cert": fx.cert, "key": fx.key, "snis": [n1] }),
            )
            .await;
        expect_or_empty(&res, 404, &format!("{d}: PATCH random id"));
        assert!(!Certs::all_snis(&certs.list().await).contains(&n1), "{d}: {n1} not added");
        // ... and for a random non-existing sni
        let res = c.patch_json("/certificates/nope-nope.test", &json!({ "snis": [n1] })).await;
        let v = expect_or_empty(&res, 404, &format!("{d}: PATCH random sni"));
        assert_eq!(v, json!({ "message": "SNI not found" }), "{d}: PATCH random sni body");

        // updates snis associated with a certificate (with and without alternate certificate)
        for alt in [false, true] {
            let (cert, _) = if alt { certs.add_with_alt().await } else { certs.add().await };
            let id = cert["id"].as_str().unwrap();
            let n1 = certs.names.next();
            let before = certs.list().await;
            let res = c.patch_json(&format!("/certificates/{id}"), &json!({ "snis": [n1] })).await;
            let v = expect_or_empty(&res, 200, &format!("{d}: PATCH snis (alt={alt})"));
            assert_eq!(v["snis"], json!([n1]), "{d}: PATCH snis (alt={alt})");
            let after = certs.list().await;
            let (b, a) = (before["data"].as_array().unwrap(), after["data"].as_array().unwrap());
            assert_eq!(a.len(), b.len(), "{d}: no certificate added (alt={alt})");
            for (x, y) in b.iter().zip(a) {
                if y["id"] == json!(id) {
                    assert_eq!(y["snis"], json!([n1]), "{d}: snis replaced (alt={alt})");
                } else {
                    assert_eq!(
                        y["snis"], x["snis"],
                        "{d}: other certificates untouched (alt={alt})"
                    );
                }
            }
        }

        // updates only the certificate if no snis are specified
        let (cert, names) = certs.add().await;
        let id = cert["id"].as_str().unwrap();
        let res = c
            .patch_json(&format!("/certificates/{id}"), &json!({ "cert": fx.cert, "key": fx.key }))
            .await;
        let v = expect_or_empty(&res, 200, &format!("{d}: PATCH cert only"));
        assert_eq!(v["snis"], json!(names), "{d}: PATCH cert only keeps snis");
        assert_eq!(v["cert"], json!(fx.cert), "{d}: PATCH cert only cert");
        let stored = expect_or_empty(&c.get(&format!("/certificates/{id}")).await, 200, d);
        assert_eq!(stored["key"], json!(fx.key), "{d}: PATCH cert only stored");
        assert_eq!(stored["cert_alt"], Value::Null, "{d}: PATCH cert only stored cert_alt");

        // returns a conflict when duplicated snis are present in the request
        let (cert, _) = certs.add().await;
        let before = certs.list().await;
        let n1 = certs.names.next();
        let res = c
            .patch_json(
                &format!("/certificates/{}", cert["id"].as_str().unwrap()),
                &json!({ "snis": [n1, n1] }),
            )
            .await;
        let v = expect_or_empty(&res, 400, &format!("{d}: PATCH duplicated snis"));
        assert_eq!(v["message"], format!("schema violation (snis: {n1} is duplicated)"));
        assert_eq!(certs.list().await, before, "{d}: PATCH duplicated snis changed nothing");

        // returns a conflict when a pre-existing sni is associated with another certificate
        let (cert, _) = certs.add().await;
        let (cert2, names2) = certs.add().await;
        let before = certs.list().await;
        let res = c
            .patch_json(
                &format!("/certificates/{}", cert["id"].as_str().unwrap()),
                &json!({ "snis": names2 }),
            )
            .await;
        let v = expect_or_empty(&res, 400, &format!("{d}: PATCH snis of another certificate"));
        assert_eq!(
            v["message"],
            format!(
                "schema violation (snis: {} already associated with existing certificate '{}')",
                names2[0],
                cert2["id"].as_str().unwrap()
            ),
            "{d}: PATCH snis of another certificate message"
        );
        assert_eq!(certs.list().await, before, "{d}: PATCH conflicting snis changed nothing");

        // deletes all snis from a certificate if snis field is JSON null
        let (cert, _) = certs.add().await;
        let id = cert["id"].as_str().unwrap();
        let before = certs.list().await;
        let res = c.patch_json(&format!("/certificates/{id}"), &json!({ "snis": null })).await;
        expect_or_empty(&res, 200, &format!("{d}: PATCH snis null"));
        assert!(res.text().contains("\"snis\":[]"), "{d}: PATCH snis null body: {}", res.text());
        let after = certs.list().await;
        assert_eq!(
            after["data"].as_array().unwrap().len(),
            before["data"].as_array().unwrap().len()
        );
        for (x, y) in
            before["data"].as_array().unwrap().iter().zip(after["data"].as_array().unwrap())
        {
            if y["id"] == json!(id) {
                assert_eq!(y["snis"], json!([]), "{d}: snis deleted");
            } else {
                assert_eq!(y["snis"], x["snis"], "{d}: other certificates untouched");
            }
        }
        let res = c.get("/snis?size=1000").await;
        let snis = expect_or_empty(&res, 200, d);
        assert!(
            snis["data"].as_array().unwrap().iter().all(|s| s["certificate"]["id"] != json!(id)),
            "{d}: the SNI entities of the certificate are gone"
        );

        // DELETE deletes a certificate and all related snis (by sni, by id)
        for by_sni in [true, false] {
            let before = certs.list().await;
            let (cert, names) = certs.add().await;
            let key = if by_sni { names[0].clone() } else { cert["id"].as_str().unwrap().into() };
            let res = c.delete(&format!("/certificates/{key}")).await;
            expect_or_empty(&res, 204, &format!("{d}: DELETE by sni={by_sni}"));
            assert_eq!(certs.list().await, before, "{d}: DELETE by sni={by_sni} restores the list");
            let res = c.get(&format!("/snis/{}", names[1])).await;
            expect_or_empty(&res, 404, &format!("{d}: DELETE by sni={by_sni} removed the snis"));
        }
        // DELETE of an unknown sni answers like GET
        let v = expect_or_empty(&c.delete("/certificates/nope-nope.test").await, 404, d);
        assert_eq!(v, json!({ "message": "SNI not found" }), "{d}: DELETE unknown sni");
        // DELETE of an unknown id is idempotent
        expect_or_empty(&c.delete(&format!("/certificates/{}", new_uuid())).await, 204, d);
    }
}

#[tokio::test]
async fn certificate_snis_and_snis() {
    let fx = fx();
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        let d = db.name();
        let mut certs = Certs { c: &c, fx: &fx, names: Names(0), db: d };

        // POST /certificates/:certificate/snis errors: certificate doesn't exist
        let res = c
            .post_json(
                "/certificates/585e4c16-c656-11e6-8db9-5f512d8a12cd/snis",
                &json!({ "name": certs.names.next() }),
            )
            .await;
        let v = expect_or_empty(&res, 404, &format!("{d}: snis of a missing certificate"));
        assert_eq!(v, json!({ "message": "Not found" }), "{d}: snis of a missing certificate");

        for ct in CONTENT_TYPES {
            // creates a sni using a certificate id / a sni to id the certificate
            for by_sni in [false, true] {
                let (cert, names) = certs.add().await;
                let key =
                    if by_sni { names[0].clone() } else { cert["id"].as_str().unwrap().into() };
                let n1 = certs.names.next();
                let res = send(
                    &c,
                    "POST",
                    &format!("/certificates/{key}/snis"),
                    ct,
                    &json!({ "name": n1 }),
                )
                .await;
                let v =
                    expect_or_empty(&res, 201, &format!("{d}: POST snis by sni={by_sni} [{ct}]"));
                assert_eq!(v["name"], json!(n1), "{d}: POST snis by sni={by_sni} [{ct}]");
                assert_eq!(v["certificate"]["id"], cert["id"], "{d}: POST snis [{ct}] certificate");
            }
        }

        // returns a conflict when an sni already exists
        let (cert, names) = certs.add().await;
        let res = c
            .post_json(
                &format!("/certificates/{}/snis", cert["id"].as_str().unwrap()),
                &json!({ "name": names[0] }),
            )
            .await;
        let v = expect_or_empty(&res, 409, &format!("{d}: existing sni"));
        assert_eq!(v["name"], "unique constraint violation", "{d}: existing sni");
        assert_eq!(v["fields"], json!({ "name": names[0] }), "{d}: existing sni fields");

        // GET retrieves a list of snis
        let res = c.post_json("/certificates", &json!({ "cert": fx.cert, "key": fx.key })).await;
        let bare = expect_or_empty(&res, 201, d);
        let bare_id = bare["id"].as_str().unwrap().to_owned();
        let n1 = certs.names.next();
        let res =
            c.post_json("/snis", &json!({ "name": n1, "certificate": { "id": bare_id } })).await;
        expect_or_empty(&res, 201, &format!("{d}: POST /snis"));
        let v = expect_or_empty(&c.get(&format!("/certificates/{bare_id}/snis")).await, 200, d);
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{d}: list of snis");
        assert_eq!(data[0]["name"], json!(n1), "{d}: list of snis name");
        assert_eq!(data[0]["certificate"]["id"], json!(bare_id), "{d}: list of snis certificate");
        assert_eq!(v["next"], Value::Null, "{d}: list of snis next");
        // ... also addressed by sni
        let v2 = expect_or_empty(&c.get(&format!("/certificates/{n1}/snis")).await, 200, d);
        assert_eq!(v2, v, "{d}: list of snis by sni");
        // nested sni entity
        let sni = data[0].clone();
        let v = expect_or_empty(
            &c.get(&format!("/certificates/{bare_id}/snis/{n1}")).await,
            200,
            &format!("{d}: nested sni"),
        );
        assert_eq!(v, sni, "{d}: nested sni");
        let other = expect_or_empty(
            &c.get(&format!("/certificates/{}/snis/{n1}", cert["id"].as_str().unwrap())).await,
            404,
            d,
        );
        assert_eq!(
            other,
            json!({ "message": "Not found" }),
            "{d}: nested sni of another certificate"
        );

        // /snis wildcard: prefix, suffix, invalid
        let (cert, _) = certs.add().await;
        let cid = cert["id"].as_str().unwrap().to_owned();
        let n1 = certs.names.next();
        for name in [format!("*.{n1}"), format!("{n1}.*")] {
            let res =
                c.post_json("/snis", &json!({ "name": name, "certificate": { "id": cid } })).await;
            let v = expect_or_empty(&res, 201, &format!("{d}: wildcard {name}"));
            assert_eq!(v["name"], json!(name), "{d}: wildcard {name}");
            assert_eq!(v["certificate"]["id"], json!(cid), "{d}: wildcard {name} certificate");
        }
        let res = c
            .post_json("/snis", &json!({ "name": "*.wildcard.*", "certificate": { "id": cid } }))
            .await;
        let v = expect_or_empty(&res, 400, &format!("{d}: invalid wildcard"));
        assert_eq!(
            v["fields"]["name"], "only one wildcard must be specified",
            "{d}: invalid wildcard"
        );

        // GET retrieves a wildcard SNI using the (escaped) name
        let res = c
            .post_json("/snis", &json!({ "name": "*.wildcard.test", "certificate": { "id": cid } }))
            .await;
        expect_or_empty(&res, 201, d);
        let v = expect_or_empty(
            &c.get("/snis/%2A.wildcard.test").await,
            200,
            &format!("{d}: GET wildcard"),
        );
        assert_eq!(v["name"], "*.wildcard.test", "{d}: GET wildcard");

        // GET retrieves a sni using the name / the id
        let (cert, names) = certs.add().await;
        let v = expect_or_empty(&c.get(&format!("/snis/{}", names[0])).await, 200, d);
        assert_eq!(v["name"], json!(names[0]), "{d}: sni by name");
        assert_eq!(v["certificate"]["id"], cert["id"], "{d}: sni by name certificate");
        let sid = v["id"].as_str().unwrap().to_owned();
        let v2 = expect_or_empty(&c.get(&format!("/snis/{sid}")).await, 200, d);
        assert_eq!(v2, v, "{d}: sni by id");

        // PUT creates if not found
        let n1 = certs.names.next();
        let id = new_uuid();
        let res = c
            .put_json(
                &format!("/snis/{id}"),
                &json!({ "certificate": { "id": cert["id"] }, "name": n1 }),
            )
            .await;
        let v = expect_or_empty(&res, 200, &format!("{d}: PUT /snis creates"));
        assert_eq!(v["name"], json!(n1), "{d}: PUT /snis creates name");
        assert_eq!(v["id"], json!(id), "{d}: PUT /snis creates id");
        assert_eq!(
            expect_or_empty(&c.get(&format!("/snis/{id}")).await, 200, d),
            v,
            "{d}: PUT /snis stored"
        );

        // PUT updates if found
        let n2 = certs.names.next();
        let res = c
            .put_json(
                &format!("/snis/{id}"),
                &json!({ "name": n2, "certificate": { "id": cert["id"] } }),
            )
            .await;
        let v2 = expect_or_empty(&res, 200, &format!("{d}: PUT /snis updates"));
        assert_eq!(v2["name"], json!(n2), "{d}: PUT /snis updates name");
        // an upsert sets created_at anew, as Kong's does (see the certificates case)
        assert!(v2["created_at"].as_i64() >= v["created_at"].as_i64(), "{d}: PUT /snis created_at");
        assert_eq!(
            expect_or_empty(&c.get(&format!("/snis/{id}")).await, 200, d),
            v2,
            "{d}: PUT /snis updated"
        );
        expect_or_empty(
            &c.get(&format!("/snis/{n1}")).await,
            404,
            &format!("{d}: old sni name gone"),
        );

        // PUT handles invalid input
        let before = expect_or_empty(&c.get("/snis?size=1000").await, 200, d);
        let res = c.put_json(&format!("/snis/{}", new_uuid()), &json!({})).await;
        let v = expect_or_empty(&res, 400, &format!("{d}: PUT /snis invalid"));
        assert_eq!(
            v,
            error_body(
                "2 schema violations (certificate: required field missing; name: required field missing)",
                json!({ "certificate": "required field missing", "name": "required field missing" }),
            ),
            "{d}: PUT /snis invalid body"
        );
        assert_eq!(
            expect_or_empty(&c.get("/snis?size=1000").await, 200, d),
            before,
            "{d}: unchanged"
        );

        // PATCH updates a sni (moves it to another certificate), with and without alt cert
        for alt in [false, true] {
            let (cert, names) = certs.add().await;
            let body = if alt {
                json!({
                    "cert": fx.cert_alt, "key": fx.key_alt,
                    "cert_alt": fx.cert_alt_ecdsa, "key_alt": fx.key_alt_ecdsa,
                })
            } else {
                json!({ "cert": fx.cert_alt, "key": fx.key_alt })
            };
            let cert2 = expect_or_empty(&c.post_json("/certificates", &body).await, 201, d);
            let res = c
                .patch_json(
                    &format!("/snis/{}", names[0]),
                    &json!({ "certificate": { "id": cert2["id"] } }),
                )
                .await;
            let v = expect_or_empty(&res, 200, &format!("{d}: PATCH /snis (alt={alt})"));
            assert_eq!(v["certificate"]["id"], cert2["id"], "{d}: PATCH /snis (alt={alt})");
            let v = expect_or_empty(
                &c.get(&format!("/certificates/{}", cert["id"].as_str().unwrap())).await,
                200,
                d,
            );
            assert_eq!(v["snis"], json!([names[1]]), "{d}: first certificate keeps one sni");
            let v = expect_or_empty(
                &c.get(&format!("/certificates/{}", cert2["id"].as_str().unwrap())).await,
                200,
                d,
            );
            assert_eq!(v["snis"], json!([names[0]]), "{d}: second certificate got the sni");
        }

        // DELETE deletes a sni
        let (cert, _) = certs.add().await;
        let n1 = certs.names.next();
        let res =
            c.post_json("/snis", &json!({ "name": n1, "certificate": { "id": cert["id"] } })).await;
        expect_or_empty(&res, 201, d);
        expect_or_empty(
            &c.delete(&format!("/snis/{n1}")).await,
            204,
            &format!("{d}: DELETE /snis"),
        );
        expect_or_empty(&c.get(&format!("/snis/{n1}")).await, 404, &format!("{d}: deleted sni"));
        let v = expect_or_empty(
            &c.get(&format!("/certificates/{}", cert["id"].as_str().unwrap())).await,
            200,
            d,
        );
        assert!(!v["snis"].as_array().unwrap().contains(&json!(n1)), "{d}: sni left the list");

        // /snis/:snis/certificate is disabled (endpoints.disable)
        for method in ["GET", "PUT", "PATCH", "DELETE"] {
            let res =
                c.request(method, &format!("/snis/{}/certificate", names_of(&v)[0]), &[], "").await;
            let v = expect_or_empty(&res, 404, &format!("{d}: {method} /snis/:snis/certificate"));
            assert_eq!(v, json!({ "message": "Not found" }), "{d}: {method} disabled endpoint");
        }
    }
}

fn names_of(cert: &Value) -> Vec<String> {
    cert["snis"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

// ---- /ca_certificates ----------------------------------------------------------------------

#[tokio::test]
async fn ca_certificates() {
    let fx = fx();
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        let d = db.name();
        let msg = |res: &Resp, status: u16, ctx: &str| -> String {
            let v = expect_or_empty(res, status, &format!("{d}: {ctx}"));
            v["message"].as_str().unwrap_or_default().to_owned()
        };
        const NOT_CA: &str = "schema violation (certificate does not appear to be a CA because it is missing the \"CA\" basic constraint)";
        const EXPIRED: &str =
            "schema violation (certificate expired, \"Not After\" time is in the past)";

        // GET
        let v = expect_or_empty(&c.get("/ca_certificates").await, 200, d);
        assert_eq!(v, json!({ "data": [], "next": null }), "{d}: empty list");
        let res = c.post_json("/ca_certificates", &json!({ "cert": fx.ca })).await;
        let ca = expect_or_empty(&res, 201, &format!("{d}: POST CA"));
        assert_eq!(ca["cert"], json!(fx.ca), "{d}: POST CA cert");
        assert!(ca["cert_digest"].as_str().is_some_and(|s| s.len() == 64), "{d}: cert_digest");
        let v = expect_or_empty(&c.get("/ca_certificates").await, 200, d);
        assert_eq!(v["data"].as_array().unwrap().len(), 1, "{d}: one CA");
        assert_eq!(v["data"][0]["cert"], json!(fx.ca), "{d}: listed CA cert");

        // the same CA twice violates the unique digest
        let res = c.post_json("/ca_certificates", &json!({ "cert": fx.ca })).await;
        let v = expect_or_empty(&res, 409, &format!("{d}: duplicate CA"));
        assert_eq!(v["name"], "unique constraint violation", "{d}: duplicate CA");
        assert_eq!(
            v["fields"],
            json!({ "cert_digest": ca["cert_digest"] }),
            "{d}: duplicate CA fields"
        );

        // POST errors
        let before = expect_or_empty(&c.get("/ca_certificates").await, 200, d);
        let cases: Vec<(&str, Value, &str)> = vec![
            ("missing field", json!({}), "schema violation (cert: required field missing)"),
            ("non CA cert", json!({ "cert": fx.non_ca }), NOT_CA),
            ("expired cert", json!({ "cert": fx.expired }), EXPIRED),
            (
                "multiple certs",
                json!({ "cert": format!("{}\n{}", fx.ca, fx.ca) }),
                "schema violation (please submit only one certificate at a time)",
            ),
        ];
        for (name, body, want) in &cases {
            let res = c.post_json("/ca_certificates", body).await;
            assert_eq!(msg(&res, 400, &format!("POST {name}")), *want, "{d}: POST {name}");
        }
        assert_eq!(
            expect_or_empty(&c.get("/ca_certificates").await, 200, d),
            before,
            "{d}: POST errors"
        );

        // DELETE: not allowed while referenced by a service
        let id = ca["id"].as_str().unwrap().to_owned();
        let res = c
            .post_json(
                "/services/",
                &json!({ "url": "https://upstream.test:443", "protocol": "https", "ca_certificates": [id] }),
            )
            .await;
        let svc = expect_or_empty(&res, 201, &format!("{d}: service referencing the CA"));
        let res = c.delete(&format!("/ca_certificates/{id}")).await;
        assert_eq!(
            msg(&res, 400, "DELETE referenced CA"),
            format!(
                "ca certificate {id} is still referenced by services (id = {})",
                svc["id"].as_str().unwrap()
            ),
            "{d}: DELETE referenced CA message"
        );
        expect_or_empty(
            &c.get(&format!("/ca_certificates/{id}")).await,
            200,
            &format!("{d}: CA kept"),
        );
        expect_or_empty(
            &c.delete(&format!("/services/{}", svc["id"].as_str().unwrap())).await,
            204,
            d,
        );
        // DELETE works
        expect_or_empty(
            &c.delete(&format!("/ca_certificates/{id}")).await,
            204,
            &format!("{d}: DELETE CA"),
        );
        let v = expect_or_empty(&c.get("/ca_certificates").await, 200, d);
        assert_eq!(v["data"], json!([]), "{d}: CA deleted");

        // PATCH
        let ca = expect_or_empty(
            &c.post_json("/ca_certificates", &json!({ "cert": fx.ca })).await,
            201,
            d,
        );
        let id = ca["id"].as_str().unwrap().to_owned();
        for (name, body, want) in [
            ("non CA cert", json!({ "cert": fx.non_ca }), NOT_CA),
            ("expired cert", json!({ "cert": fx.expired }), EXPIRED),
        ] {
            let res = c.patch_json(&format!("/ca_certificates/{id}"), &body).await;
            assert_eq!(msg(&res, 400, &format!("PATCH {name}")), want, "{d}: PATCH {name}");
        }
        let res = c.patch_json(&format!("/ca_certificates/{id}"), &json!({ "cert": fx.ca })).await;
        let v = expect_or_empty(&res, 200, &format!("{d}: PATCH works"));
        assert!(v["updated_at"].as_i64() >= ca["updated_at"].as_i64(), "{d}: PATCH updated_at");
        assert_eq!(v["created_at"], ca["created_at"], "{d}: PATCH created_at");
        assert_eq!(v["cert"], json!(fx.ca), "{d}: PATCH cert");

        // PUT
        for (name, body, want) in [
            ("missing field", json!({}), "schema violation (cert: required field missing)"),
            ("non CA cert", json!({ "cert": fx.non_ca }), NOT_CA),
            ("expired cert", json!({ "cert": fx.expired }), EXPIRED),
        ] {
            let res = c.put_json(&format!("/ca_certificates/{id}"), &body).await;
            assert_eq!(msg(&res, 400, &format!("PUT {name}")), want, "{d}: PUT {name}");
        }
        let res = c.put_json(&format!("/ca_certificates/{id}"), &json!({ "cert": fx.ca })).await;
        expect_or_empty(&res, 200, &format!("{d}: PUT updates existing cert"));
        let v = expect_or_empty(&c.get("/ca_certificates").await, 200, d);
        assert_eq!(v["data"].as_array().unwrap().len(), 1, "{d}: PUT updated in place");
        assert_eq!(v["data"][0]["cert"], json!(fx.ca), "{d}: PUT updated cert");
        expect_or_empty(&c.delete(&format!("/ca_certificates/{id}")).await, 204, d);
        // PUT creates new cert when uuid does not exist
        let new_id = "123e4567-e89b-12d3-a456-426655440000";
        let res =
            c.put_json(&format!("/ca_certificates/{new_id}"), &json!({ "cert": fx.ca })).await;
        expect_or_empty(&res, 200, &format!("{d}: PUT creates"));
        let v = expect_or_empty(&c.get(&format!("/ca_certificates/{new_id}")).await, 200, d);
        assert_eq!(v["cert"], json!(fx.ca), "{d}: PUT created cert");
        assert_eq!(v["id"], json!(new_id), "{d}: PUT created id");
    }
}

// ---- /upstreams ----------------------------------------------------------------------------

#[tokio::test]
async fn upstreams_post_and_put() {
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        let d = db.name();

        // malformed JSON body
        let res = c
            .request(
                "POST",
                "/upstreams",
                &[("content-type", "application/json")],
                "{\"hello\": \"world\"",
            )
            .await;
        assert_eq!(res.status, 400, "{d}: malformed JSON");
        assert_eq!(
            res.text(),
            r#"{"message":"Cannot parse JSON body"}"#,
            "{d}: malformed JSON body"
        );

        for ct in CONTENT_TYPES {
            let ctx = |case: &str| format!("{d}: {case} [{ct}]");
            let cleanup = |v: &Value| format!("/upstreams/{}", v["id"].as_str().unwrap());

            // creates an upstream with defaults
            let res = send(&c, "POST", "/upstreams", ct, &json!({ "name": "my.upstream" })).await;
            let v = expect_or_empty(&res, 201, &ctx("defaults"));
            assert_eq!(v["name"], "my.upstream", "{}", ctx("defaults"));
            assert!(v["created_at"].is_number() && v["id"].is_string(), "{}", ctx("defaults"));
            assert_eq!(v["slots"], 10000, "{}", ctx("defaults slots"));
            assert_eq!(v["hash_on"], "none", "{}", ctx("defaults hash_on"));
            assert_eq!(v["hash_fallback"], "none", "{}", ctx("defaults hash_fallback"));
            assert_eq!(v["hash_on_header"], Value::Null, "{}", ctx("defaults hash_on_header"));
            assert_eq!(v["hash_fallback_header"], Value::Null, "{}", ctx("defaults"));
            assert_eq!(v["algorithm"], "round-robin", "{}", ctx("defaults algorithm"));
            assert_eq!(v["hash_on_cookie_path"], "/", "{}", ctx("defaults cookie path"));
            assert_eq!(v["use_srv_name"], false, "{}", ctx("defaults use_srv_name"));
            assert_eq!(v["healthchecks"]["active"]["healthy"]["http_statuses"], json!([200, 302]));
            expect_or_empty(&c.delete(&cleanup(&v)).await, 204, d);

            // creates an upstream without defaults
            let body = json!({
                "name": "my.upstream", "slots": 10, "hash_on": "consumer", "hash_fallback": "ip",
                "hash_on_header": "HeaderName", "hash_fallback_header": "HeaderFallback",
            });
            let v = expect_or_empty(
                &send(&c, "POST", "/upstreams", ct, &body).await,
                201,
                &ctx("no defaults"),
            );
            for (k, want) in body.as_object().unwrap() {
                assert_eq!(&v[k], want, "{}: {k}", ctx("no defaults"));
            }
            expect_or_empty(&c.delete(&cleanup(&v)).await, 204, d);

            // creates an upstream with hash_on cookie parameters
            let body = json!({
                "name": "my.upstream", "hash_on": "cookie",
                "hash_on_cookie": "CookieName1", "hash_on_cookie_path": "/foo",
            });
            let v = expect_or_empty(
                &send(&c, "POST", "/upstreams", ct, &body).await,
                201,
                &ctx("cookie"),
            );
            for (k, want) in body.as_object().unwrap() {
                assert_eq!(&v[k], want, "{}: {k}", ctx("cookie"));
            }
            expect_or_empty(&c.delete(&cleanup(&v)).await, 204, d);

            // creates an upstream with 2 header hashes
            let body = json!({
                "name": "my.upstream", "slots": 10, "hash_on": "header", "hash_fallback": "header",
                "hash_on_header": "HeaderName1", "hash_fallback_header": "HeaderName2",
            });
            let v = expect_or_empty(
                &send(&c, "POST", "/upstreams", ct, &body).await,
                201,
                &ctx("2 headers"),
            );
            for (k, want) in body.as_object().unwrap() {
                assert_eq!(&v[k], want, "{}: {k}", ctx("2 headers"));
            }
            expect_or_empty(&c.delete(&cleanup(&v)).await, 204, d);

            // creates an upstream with 65536 slots
            let body = json!({ "name": "my.upstream", "slots": 65536 });
            let v = expect_or_empty(
                &send(&c, "POST", "/upstreams", ct, &body).await,
                201,
                &ctx("max slots"),
            );
            assert_eq!(v["slots"], 65536, "{}", ctx("max slots"));
            expect_or_empty(&c.delete(&cleanup(&v)).await, 204, d);

            // creates an upstream with host header
            let body = json!({ "name": "my.upstream", "host_header": "localhost" });
            let v = expect_or_empty(
                &send(&c, "POST", "/upstreams", ct, &body).await,
                201,
                &ctx("host header"),
            );
            assert_eq!(v["host_header"], "localhost", "{}", ctx("host header"));
            assert_eq!(v["slots"], 10000, "{}", ctx("host header slots"));
            expect_or_empty(&c.delete(&cleanup(&v)).await, 204, d);

            // handles invalid input
            let cond = |field: &str| {
                json!([format!("failed conditional validation given value of field '{field}'")])
            };
            let bad_header = "bad header name 'not a <> valid <> header name', allowed characters are A-Z, a-z, 0-9, '_', and '-'";
            let bad_cookie = r#"contains one or more invalid characters. ASCII control characters (0-31;127), space, tab and the characters ()<>@,;:\"/?={}[] are not allowed."#;
            let cases: Vec<(&str, Value, Value)> = vec![
                (
                    "missing name",
                    json!({ "slots": 50 }),
                    json!({ "name": "required field missing" }),
                ),
                (
                    "invalid name",
                    json!({ "name": "some invalid host name" }),
                    json!({ "name": "Invalid name ('some invalid host name'); must be a valid hostname" }),
                ),
                (
                    "invalid slots",
                    json!({ "name": "my.upstream", "slots": 65537 }),
                    json!({ "slots": "value should be between 10 and 65536" }),
                ),
                (
                    "invalid hash_on",
                    json!({ "name": "my.upstream", "hash_on": "something that is invalid" }),
                    json!({ "hash_on": "expected one of: none, consumer, ip, header, cookie, path, query_arg, uri_capture" }),
                ),
                (
                    "invalid hash_fallback",
                    json!({ "name": "my.upstream", "hash_on": "consumer", "hash_fallback": "something that is invalid" }),
                    json!({ "@entity": cond("hash_on"), "hash_fallback": "expected one of: none, ip, header, cookie, path, query_arg, uri_capture" }),
                ),
                (
                    "same hash entries",
                    json!({ "name": "my.upstream", "hash_on": "consumer", "hash_fallback": "consumer" }),
                    json!({ "@entity": cond("hash_on"), "hash_fallback": "expected one of: none, ip, header, cookie, path, query_arg, uri_capture" }),
                ),
                (
                    "same headers",
                    json!({ "name": "my.upstream", "hash_on": "header", "hash_fallback": "header", "hash_on_header": "headername", "hash_fallback_header": "headername" }),
                    json!({ "@entity": ["values of these fields must be distinct: 'hash_on_header', 'hash_fallback_header'"] }),
                ),
                (
                    "cookie with hash_fallback",
                    json!({ "name": "my.upstream", "hash_on": "cookie", "hash_on_cookie": "cookiename", "hash_fallback": "header", "hash_fallback_header": "Cool-Header" }),
                    json!({ "@entity": cond("hash_on"), "hash_fallback": "expected one of: none" }),
                ),
                (
                    "no header name",
                    json!({ "name": "my.upstream", "hash_on": "header", "hash_fallback": "header", "hash_fallback_header": "HeaderName" }),
                    json!({ "@entity": cond("hash_on"), "hash_on_header": "required field missing" }),
                ),
                (
                    "no fallback header name",
                    json!({ "name": "my.upstream", "hash_on": "consumer", "hash_fallback": "header" }),
                    json!({ "@entity": cond("hash_fallback"), "hash_fallback_header": "required field missing" }),
                ),
                (
                    "invalid cookie path",
                    json!({ "name": "my.upstream", "hash_on": "cookie", "hash_on_cookie": "hashme", "hash_on_cookie_path": "not a path" }),
                    json!({ "hash_on_cookie_path": "should start with: /" }),
                ),
                (
                    "invalid cookie path in hash fallback",
                    json!({ "name": "my.upstream", "hash_on": "consumer", "hash_fallback": "cookie", "hash_on_cookie": "my-cookie", "hash_on_cookie_path": "not a path" }),
                    json!({ "hash_on_cookie_path": "should start with: /" }),
                ),
            ];
            for (name, body, fields) in cases {
                let v = expect_or_empty(
                    &send(&c, "POST", "/upstreams", ct, &body).await,
                    400,
                    &ctx(name),
                );
                assert_eq!(v["name"], "schema violation", "{}", ctx(name));
                assert_eq!(v["code"], 2, "{}", ctx(name));
                assert_eq!(v["fields"], fields, "{}: fields", ctx(name));
            }
            for (name, body, field, want) in [
                (
                    "invalid header",
                    json!({ "name": "my.upstream", "hash_on": "header", "hash_fallback": "consumer", "hash_on_header": "not a <> valid <> header name" }),
                    "hash_on_header",
                    bad_header,
                ),
                (
                    "invalid fallback header",
                    json!({ "name": "my.upstream", "hash_on": "consumer", "hash_fallback": "header", "hash_fallback_header": "not a <> valid <> header name" }),
                    "hash_fallback_header",
                    bad_header,
                ),
                (
                    "invalid cookie",
                    json!({ "name": "my.upstream", "hash_on": "cookie", "hash_on_cookie": "not a <> valid <> cookie name" }),
                    "hash_on_cookie",
                    bad_cookie,
                ),
                (
                    "invalid cookie in hash fallback",
                    json!({ "name": "my.upstream", "hash_on": "consumer", "hash_fallback": "cookie", "hash_on_cookie": "not a <> valid <> cookie name" }),
                    "hash_on_cookie",
                    bad_cookie,
                ),
            ] {
                let v = expect_or_empty(
                    &send(&c, "POST", "/upstreams", ct, &body).await,
                    400,
                    &ctx(name),
                );
                assert_eq!(v["fields"][field], want, "{}", ctx(name));
            }
            let v = expect_or_empty(&c.get("/upstreams").await, 200, d);
            assert_eq!(v["data"], json!([]), "{}", ctx("invalid input created nothing"));

            // returns 409 on conflict
            let v = expect_or_empty(
                &send(&c, "POST", "/upstreams", ct, &json!({ "name": "my.upstream" })).await,
                201,
                &ctx("conflict, first"),
            );
            let res = send(&c, "POST", "/upstreams", ct, &json!({ "name": "my.upstream" })).await;
            let e = expect_or_empty(&res, 409, &ctx("conflict"));
            assert_eq!(e["name"], "unique constraint violation", "{}", ctx("conflict"));
            assert_eq!(e["fields"], json!({ "name": "my.upstream" }), "{}", ctx("conflict fields"));
            assert_eq!(
                e["message"],
                "UNIQUE violation detected on '{name=\"my.upstream\"}'",
                "{}",
                ctx("conflict message")
            );
            expect_or_empty(&c.delete(&cleanup(&v)).await, 204, d);

            // PUT creates if not exists
            let res = send(
                &c,
                "PUT",
                "/upstreams/my-upstream",
                ct,
                &json!({ "created_at": 1461276890000_i64 }),
            )
            .await;
            let v = expect_or_empty(&res, 200, &ctx("PUT creates"));
            assert_eq!(v["name"], "my-upstream", "{}", ctx("PUT creates name"));
            assert!(v["created_at"].is_number() && v["id"].is_string(), "{}", ctx("PUT creates"));
            assert!(v["slots"].is_number(), "{}", ctx("PUT creates slots"));
            expect_or_empty(&c.delete(&cleanup(&v)).await, 204, d);

            // PUT replaces if exists
            let res =
                send(&c, "POST", "/upstreams", ct, &json!({ "name": "my-upstream", "slots": 100 }))
                    .await;
            let v = expect_or_empty(&res, 201, &ctx("PUT replaces, create"));
            let res = send(
                &c,
                "PUT",
                &cleanup(&v),
                ct,
                &json!({ "name": "my-new-upstream", "slots": 123, "created_at": v["created_at"] }),
            )
            .await;
            let u = expect_or_empty(&res, 200, &ctx("PUT replaces"));
            assert_eq!(u["name"], "my-new-upstream", "{}", ctx("PUT replaces name"));
            assert_eq!(u["slots"], 123, "{}", ctx("PUT replaces slots"));
            assert_eq!(u["id"], v["id"], "{}", ctx("PUT replaces id"));
            expect_or_empty(
                &c.get("/upstreams/my-upstream").await,
                404,
                &ctx("PUT replaced the old name"),
            );
            expect_or_empty(&c.delete(&cleanup(&v)).await, 204, d);

            // PUT errors
            let res =
                send(&c, "PUT", "/upstreams/00000000-0000-0000-0000-000000000001", ct, &json!({}))
                    .await;
            let v = expect_or_empty(&res, 400, &ctx("PUT missing name"));
            assert_eq!(
                v["message"],
                "schema violation (name: required field missing)",
                "{}",
                ctx("PUT missing name")
            );
            let res = send(
                &c,
                "PUT",
                "/upstreams/1.2.3.4",
                ct,
                &json!({ "created_at": 1461276890000_i64 }),
            )
            .await;
            let v = expect_or_empty(&res, 400, &ctx("PUT ip name"));
            assert_eq!(
                v["message"],
                "Invalid name ('1.2.3.4'); no ip addresses allowed",
                "{}",
                ctx("PUT ip name")
            );
            let v = expect_or_empty(&c.get("/upstreams").await, 200, d);
            assert_eq!(v["data"], json!([]), "{}", ctx("PUT errors created nothing"));
        }
    }
}

#[tokio::test]
async fn upstreams_get_and_delete() {
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        let d = db.name();

        // empty results: data property is an empty array
        let res = c.get("/upstreams").await;
        assert_eq!(
            expect_or_empty(&res, 200, d),
            json!({ "data": [], "next": null }),
            "{d}: empty"
        );
        assert!(res.text().contains("\"data\":[]"), "{d}: data as []");

        for i in 1..=10 {
            let res =
                c.post_json("/upstreams", &json!({ "name": format!("upstream-{i}.test") })).await;
            expect_or_empty(&res, 201, d);
        }
        // retrieves the first page
        let v = expect_or_empty(&c.get("/upstreams").await, 200, d);
        assert_eq!(v["data"].as_array().unwrap().len(), 10, "{d}: first page");
        assert_eq!(v["next"], Value::Null, "{d}: first page next");
        assert!(v.get("offset").is_none(), "{d}: no offset on the last page");

        // paginates a set
        let mut seen = std::collections::BTreeSet::new();
        walk_pages(&c, "/upstreams", 3, 10, d, |i, v| {
            for u in v["data"].as_array().unwrap() {
                assert!(
                    seen.insert(u["id"].as_str().unwrap().to_owned()),
                    "{d}: page {i} repeats {u}"
                );
            }
            let offset = v["offset"].as_str();
            if i < 4 {
                let o = offset.unwrap_or_else(|| panic!("{d}: page {i} has an offset"));
                assert_eq!(
                    v["next"],
                    json!(format!("/upstreams?offset={}&size=3", escape_uri(o))),
                    "{d}: page {i} next link"
                );
            } else {
                assert_eq!(offset, None, "{d}: last page has no offset");
                assert_eq!(v["next"], Value::Null, "{d}: last page next");
            }
        })
        .await;
        assert_eq!(seen.len(), 10, "{d}: pages cover every upstream");

        // ignores filters
        expect_or_empty(&c.get("/upstreams?foo=bar").await, 200, &format!("{d}: ignores filters"));
        // ignores an invalid body
        let res = c
            .request(
                "GET",
                "/upstreams",
                &[("content-type", "application/json")],
                "this fails if decoded as json",
            )
            .await;
        expect_or_empty(&res, 200, &format!("{d}: ignores an invalid body"));
        // returns bad request for empty tags
        let v = expect_or_empty(&c.get("/upstreams?tags=").await, 400, &format!("{d}: empty tags"));
        assert_eq!(v["message"], "invalid option (tags: cannot be null)", "{d}: empty tags");

        // regression: page size 1
        let v = expect_or_empty(&c.get("/upstreams?size=1").await, 200, d);
        assert_eq!(v["data"].as_array().unwrap().len(), 1, "{d}: size=1");
        let o = v["offset"].as_str().unwrap_or_else(|| panic!("{d}: size=1 offset")).to_owned();
        let v2 = expect_or_empty(
            &c.get(&format!("/upstreams?size=1&offset={}", escape_uri(&o))).await,
            200,
            d,
        );
        assert_eq!(v2["data"].as_array().unwrap().len(), 1, "{d}: size=1 second page");
        assert!(v2["offset"].is_string(), "{d}: size=1 second page offset");
        assert_ne!(v2["data"][0]["id"], v["data"][0]["id"], "{d}: size=1 pages differ");
        let v = expect_or_empty(&c.get("/upstreams?size=2").await, 200, d);
        assert_eq!(v["data"].as_array().unwrap().len(), 2, "{d}: size=2");
        assert!(v["offset"].is_string(), "{d}: size=2 offset");

        // DELETE by id, by name
        for by_name in [false, true] {
            let res =
                c.post_json("/upstreams", &json!({ "name": "my-upstream", "slots": 100 })).await;
            let v = expect_or_empty(&res, 201, d);
            let key =
                if by_name { "my-upstream".into() } else { v["id"].as_str().unwrap().to_owned() };
            expect_or_empty(
                &c.delete(&format!("/upstreams/{key}")).await,
                204,
                &format!("{d}: DELETE by_name={by_name}"),
            );
            expect_or_empty(
                &c.get(&format!("/upstreams/{}", v["id"].as_str().unwrap())).await,
                404,
                d,
            );
        }

        // after deleting its targets (regression test for #4317)
        expect_or_empty(
            &c.post_json("/upstreams", &json!({ "name": "my-upstream", "slots": 100 })).await,
            201,
            d,
        );
        let res = c
            .post_json("/upstreams/my-upstream/targets", &json!({ "target": "127.0.0.1:8000" }))
            .await;
        expect_or_empty(&res, 201, d);
        let res = c
            .request(
                "DELETE",
                "/upstreams/my-upstream/targets/127.0.0.1:8000",
                &[("content-type", "application/json")],
                "",
            )
            .await;
        expect_or_empty(&res, 204, &format!("{d}: DELETE target"));
        expect_or_empty(
            &c.get("/upstreams/my-upstream").await,
            200,
            &format!("{d}: upstream kept"),
        );
        expect_or_empty(
            &c.delete("/upstreams/my-upstream").await,
            204,
            &format!("{d}: DELETE upstream"),
        );

        // can delete an upstream with targets (and its targets go with it)
        expect_or_empty(
            &c.post_json("/upstreams", &json!({ "name": "my-upstream", "slots": 100 })).await,
            201,
            d,
        );
        let res = c
            .post_json("/upstreams/my-upstream/targets", &json!({ "target": "127.0.0.1:8000" }))
            .await;
        let t = expect_or_empty(&res, 201, d);
        expect_or_empty(
            &c.delete("/upstreams/my-upstream").await,
            204,
            &format!("{d}: DELETE with targets"),
        );
        expect_or_empty(&c.get("/upstreams/my-upstream").await, 404, d);
        let res = c.post_json("/upstreams", &json!({ "name": "my-upstream" })).await;
        let again = expect_or_empty(&res, 201, d);
        let v = expect_or_empty(&c.get("/upstreams/my-upstream/targets/all").await, 200, d);
        assert_eq!(v["data"], json!([]), "{d}: targets deleted with their upstream ({t})");
        expect_or_empty(
            &c.delete(&format!("/upstreams/{}", again["id"].as_str().unwrap())).await,
            204,
            d,
        );

        // returns 405 on invalid method
        let res =
            c.request("DELETE", "/upstreams", &[("content-type", "application/json")], "").await;
        assert_eq!(
            expect_or_empty(&res, 405, d),
            json!({ "message": "Method not allowed" }),
            "{d}: 405"
        );
    }
}

// ---- /upstreams/{upstream}/targets ---------------------------------------------------------

#[tokio::test]
async fn targets() {
    for db in databases() {
        let gw = gateway(&db).await;
        let c = gw.admin();
        let d = db.name();
        let mut n = 0;
        let mut new_upstream = || {
            n += 1;
            format!("upstream-{n}.test")
        };
        async fn create(c: &Client, name: &str) -> Value {
            let res = c.post_json("/upstreams", &json!({ "name": name, "slots": 10 })).await;
            expect_or_empty(&res, 201, &format!("create upstream {name}"))
        }

        // /targets returns a 404
        let v = expect_or_empty(&c.get("/targets").await, 404, &format!("{d}: /targets"));
        assert_eq!(v["message"], "Not found", "{d}: /targets");

        // malformed JSON body
        let up = new_upstream();
        create(&c, &up).await;
        let res = c
            .request(
                "POST",
                &format!("/upstreams/{up}/targets/"),
                &[("content-type", "application/json")],
                "{\"hello\": \"world\"",
            )
            .await;
        assert_eq!(
            expect_or_empty(&res, 400, d),
            json!({ "message": "Cannot parse JSON body" }),
            "{d}: malformed"
        );

        for ct in CONTENT_TYPES {
            let ctx = |case: &str| format!("{d}: {case} [{ct}]");
            // creates a target with defaults
            let up = new_upstream();
            create(&c, &up).await;
            let path = format!("/upstreams/{up}/targets/");
            let v = expect_or_empty(
                &send(&c, "POST", &path, ct, &json!({ "target": "konghq.test" })).await,
                201,
                &ctx("defaults"),
            );
            assert_eq!(v["target"], "konghq.test:8000", "{}", ctx("defaults target"));
            assert!(v["created_at"].is_number() && v["id"].is_string(), "{}", ctx("defaults"));
            assert_eq!(v["weight"], 100, "{}", ctx("defaults weight"));

            // creates a target without defaults
            let up = new_upstream();
            let upv = create(&c, &up).await;
            let path = format!("/upstreams/{up}/targets/");
            let body = json!({ "target": "konghq.test:123", "weight": 99 });
            let v = expect_or_empty(
                &send(&c, "POST", &path, ct, &body).await,
                201,
                &ctx("no defaults"),
            );
            assert_eq!(v["target"], "konghq.test:123", "{}", ctx("no defaults target"));
            assert_eq!(v["weight"], 99, "{}", ctx("no defaults weight"));
            assert_eq!(
                v["upstream"],
                json!({ "id": upv["id"] }),
                "{}",
                ctx("no defaults upstream")
            );

            // creates a target with weight = 0
            let up = new_upstream();
            create(&c, &up).await;
            let path = format!("/upstreams/{up}/targets/");
            let body = json!({ "target": "zero.weight.test:8080", "weight": 0 });
            let v =
                expect_or_empty(&send(&c, "POST", &path, ct, &body).await, 201, &ctx("weight 0"));
            assert_eq!(v["weight"], 0, "{}", ctx("weight 0"));
            let v2 = expect_or_empty(
                &c.get(&format!("/upstreams/{up}/targets/zero.weight.test:8080")).await,
                200,
                &ctx("weight 0 GET"),
            );
            assert_eq!(v2, v, "{}", ctx("weight 0 GET equals"));

            // handles invalid input
            let up = new_upstream();
            create(&c, &up).await;
            let path = format!("/upstreams/{up}/targets/");
            for (name, body, fields) in [
                (
                    "missing target",
                    json!({ "weight": 0 }),
                    json!({ "target": "required field missing" }),
                ),
                (
                    "invalid target",
                    json!({ "target": "some invalid host name" }),
                    json!({ "target": "Invalid target; not a valid hostname or ip address" }),
                ),
                (
                    "invalid weight",
                    json!({ "target": "konghq.test", "weight": 65536 }),
                    json!({ "weight": "value should be between 0 and 65535" }),
                ),
            ] {
                let v = expect_or_empty(&send(&c, "POST", &path, ct, &body).await, 400, &ctx(name));
                assert_eq!(v["name"], "schema violation", "{}", ctx(name));
                assert_eq!(v["fields"], fields, "{}", ctx(name));
            }
            // returns 405 on PUT, PATCH, DELETE
            for method in ["PUT", "PATCH", "DELETE"] {
                let res = send(&c, method, &path, ct, &json!({ "target": "konghq.test" })).await;
                let v = expect_or_empty(&res, 405, &ctx(method));
                assert_eq!(v, json!({ "message": "Method not allowed" }), "{}", ctx(method));
            }
            let v = expect_or_empty(&c.get(&format!("/upstreams/{up}/targets/all")).await, 200, d);
            assert_eq!(v["data"], json!([]), "{}", ctx("invalid input created nothing"));

            // fails to create duplicated targets
            let body = json!({ "target": "single-target.test:8080", "weight": 1 });
            let v = expect_or_empty(
                &send(&c, "POST", &path, ct, &body).await,
                201,
                &ctx("first target"),
            );
            assert_eq!(v["weight"], 1, "{}", ctx("first target weight"));
            let body = json!({ "target": "single-target.test:8080", "weight": 100 });
            let v = expect_or_empty(
                &send(&c, "POST", &path, ct, &body).await,
                409,
                &ctx("duplicated target"),
            );
            assert_eq!(v["name"], "unique constraint violation", "{}", ctx("duplicated target"));
        }

        // GET shows all targets, with and without ending slash
        let up = new_upstream();
        let upv = create(&c, &up).await;
        let mut apis = Vec::new();
        for (t, w) in [("api-1:80", 10), ("api-2:80", 0), ("api-3:80", 50), ("api-4:80", 10)] {
            let res = c
                .post_json(
                    &format!("/upstreams/{up}/targets"),
                    &json!({ "target": t, "weight": w }),
                )
                .await;
            apis.push(expect_or_empty(&res, 201, d));
        }
        let by_target = |list: &Value| -> std::collections::BTreeMap<String, Value> {
            list.as_array()
                .unwrap()
                .iter()
                .map(|t| (t["target"].as_str().unwrap().to_owned(), t.clone()))
                .collect()
        };
        let want = by_target(&json!(apis));
        for append in ["", "/"] {
            let v =
                expect_or_empty(&c.get(&format!("/upstreams/{up}/targets{append}")).await, 200, d);
            assert_eq!(v["data"].as_array().unwrap().len(), 4, "{d}: targets{append}");
            assert_eq!(by_target(&v["data"]), want, "{d}: targets{append} content");
        }
        // ... also addressed by upstream id
        let v = expect_or_empty(
            &c.get(&format!("/upstreams/{}/targets", upv["id"].as_str().unwrap())).await,
            200,
            d,
        );
        assert_eq!(by_target(&v["data"]), want, "{d}: targets by upstream id");
        // empty results
        let empty = new_upstream();
        create(&c, &empty).await;
        let res = c.get(&format!("/upstreams/{empty}/targets")).await;
        expect_or_empty(&res, 200, d);
        assert!(res.text().contains("\"data\":[]"), "{d}: empty targets: {}", res.text());
        // unknown upstream
        let v = expect_or_empty(&c.get("/upstreams/nope.test/targets").await, 404, d);
        assert_eq!(v, json!({ "message": "Not found" }), "{d}: targets of an unknown upstream");

        // /targets/all
        let up = new_upstream();
        create(&c, &up).await;
        for i in 1..=10 {
            let res = c
                .post_json(
                    &format!("/upstreams/{up}/targets"),
                    &json!({ "target": format!("api-{i}:80"), "weight": 100 }),
                )
                .await;
            expect_or_empty(&res, 201, d);
        }
        let all = format!("/upstreams/{up}/targets/all");
        let v = expect_or_empty(&c.get(&all).await, 200, d);
        assert_eq!(v["data"].as_array().unwrap().len(), 10, "{d}: all, first page");
        let v = expect_or_empty(&c.get(&format!("{all}?size=3")).await, 200, d);
        let o = v["offset"].as_str().unwrap_or_else(|| panic!("{d}: all offset is a string: {v}"));
        assert_eq!(
            v["next"],
            json!(format!("{all}?offset={}", escape_uri(o))),
            "{d}: all next url"
        );
        let mut seen = std::collections::BTreeSet::new();
        let offset = walk_pages(&c, &all, 3, 10, &format!("{d}: all"), |i, v| {
            for t in v["data"].as_array().unwrap() {
                assert!(
                    seen.insert(t["id"].as_str().unwrap().to_owned()),
                    "{d}: all page {i} repeats"
                );
            }
        })
        .await;
        assert_eq!(offset, None, "{d}: all, last page has no offset");
        expect_or_empty(
            &c.get(&format!("{all}?foo=bar")).await,
            200,
            &format!("{d}: all ignores filters"),
        );
        let res = c
            .request(
                "GET",
                &all,
                &[("content-type", "application/json")],
                "this fails if decoded as json",
            )
            .await;
        expect_or_empty(&res, 200, &format!("{d}: all ignores an invalid body"));
        let res = c.get(&format!("/upstreams/{empty}/targets/all")).await;
        assert_eq!(
            expect_or_empty(&res, 200, d),
            json!({ "data": [], "next": null }),
            "{d}: all, empty"
        );
        assert!(res.text().contains("\"data\":[]"), "{d}: all, empty as []");

        // /upstreams/{upstream}/targets/{target}: every combination of valid and invalid
        // upstream and target (adapted from the healthy/unhealthy spec to GET)
        let other = new_upstream();
        create(&c, &other).await;
        let wrong = expect_or_empty(
            &c.post_json(
                &format!("/upstreams/{other}/targets"),
                &json!({ "target": "localhost:8192", "weight": 10 }),
            )
            .await,
            201,
            d,
        );
        let up = new_upstream();
        let upv = create(&c, &up).await;
        let target = expect_or_empty(
            &c.post_json(
                &format!("/upstreams/{up}/targets"),
                &json!({ "target": "localhost:8192", "weight": 10 }),
            )
            .await,
            201,
            d,
        );
        let ups =
            [new_uuid(), "invalid".into(), up.clone(), upv["id"].as_str().unwrap().to_owned()];
        let tgts = [
            new_uuid(),
            "invalid:1234".into(),
            wrong["id"].as_str().unwrap().to_owned(),
            "localhost:8192".into(),
            target["id"].as_str().unwrap().to_owned(),
        ];
        for (i, u) in ups.iter().enumerate() {
            for (j, t) in tgts.iter().enumerate() {
                let path = format!("/upstreams/{u}/targets/{t}");
                let res = c.get(&path).await;
                if i >= 2 && j >= 3 {
                    assert_eq!(
                        expect_or_empty(&res, 200, &format!("{d}: {path}")),
                        target,
                        "{d}: {path}"
                    );
                } else {
                    assert_eq!(
                        expect_or_empty(&res, 404, &format!("{d}: {path}")),
                        json!({ "message": "Not found" }),
                        "{d}: {path}"
                    );
                }
            }
        }

        // GET returns the target entity
        let up = new_upstream();
        create(&c, &up).await;
        let t1 = expect_or_empty(
            &c.post_json(
                &format!("/upstreams/{up}/targets"),
                &json!({ "target": "api-1:80", "weight": 10 }),
            )
            .await,
            201,
            d,
        );
        let t2 = expect_or_empty(
            &c.post_json(
                &format!("/upstreams/{up}/targets"),
                &json!({ "target": "api-2:80", "weight": 10 }),
            )
            .await,
            201,
            d,
        );
        let v = expect_or_empty(&c.get(&format!("/upstreams/{up}/targets/api-2:80")).await, 200, d);
        assert_eq!(v, t2, "{d}: GET target entity");

        // PATCH is allowed and works
        let res = c
            .patch_json(&format!("/upstreams/{up}/targets/api-2:80"), &json!({ "weight": 659 }))
            .await;
        let v = expect_or_empty(&res, 200, &format!("{d}: PATCH target"));
        assert_eq!(v["id"], t2["id"], "{d}: PATCH target id");
        assert_eq!(v["target"], "api-2:80", "{d}: PATCH target target");
        assert_eq!(v["weight"], 659, "{d}: PATCH target weight");
        assert!(v["updated_at"].as_f64() >= t2["updated_at"].as_f64(), "{d}: PATCH updated_at");
        let v = expect_or_empty(&c.get(&format!("/upstreams/{up}/targets/api-2:80")).await, 200, d);
        assert_eq!(v["weight"], 659, "{d}: PATCH target stored");

        // PUT updates target (by id)
        let res = c
            .put_json(
                &format!("/upstreams/{up}/targets/{}", t2["id"].as_str().unwrap()),
                &json!({ "target": "api-2:801" }),
            )
            .await;
        expect_or_empty(&res, 200, &format!("{d}: PUT target by id"));
        let v = expect_or_empty(
            &c.get(&format!("/upstreams/{up}/targets/{}", t2["id"].as_str().unwrap())).await,
            200,
            d,
        );
        assert_eq!(v["target"], "api-2:801", "{d}: PUT target by id target");
        assert_eq!(v["id"], t2["id"], "{d}: PUT target by id keeps id");
        assert_eq!(v["created_at"], t2["created_at"], "{d}: PUT target by id keeps created_at");
        // PUT updates target (by target)
        let res = c
            .put_json(
                &format!("/upstreams/{up}/targets/api-1:80"),
                &json!({ "target": "api-1:801" }),
            )
            .await;
        let tgt = expect_or_empty(&res, 200, &format!("{d}: PUT target by target"));
        expect_or_empty(
            &c.get(&format!("/upstreams/{up}/targets/api-1:80")).await,
            404,
            &format!("{d}: old target gone"),
        );
        let v =
            expect_or_empty(&c.get(&format!("/upstreams/{up}/targets/api-1:801")).await, 200, d);
        assert_eq!(v, tgt, "{d}: PUT target by target stored");
        assert_eq!(v["id"], t1["id"], "{d}: PUT target by target keeps id");

        // DELETE actually deletes targets (by target, by id)
        for by_id in [false, true] {
            let up = new_upstream();
            create(&c, &up).await;
            expect_or_empty(
                &c.post_json(
                    &format!("/upstreams/{up}/targets"),
                    &json!({ "target": "api-1:80", "weight": 10 }),
                )
                .await,
                201,
                d,
            );
            let t = expect_or_empty(
                &c.post_json(
                    &format!("/upstreams/{up}/targets"),
                    &json!({ "target": "api-2:80", "weight": 10 }),
                )
                .await,
                201,
                d,
            );
            let v = expect_or_empty(&c.get(&format!("/upstreams/{up}/targets/all")).await, 200, d);
            assert_eq!(v["data"].as_array().unwrap().len(), 2, "{d}: two targets");
            let key = if by_id { t["id"].as_str().unwrap().to_owned() } else { "api-2:80".into() };
            expect_or_empty(
                &c.delete(&format!("/upstreams/{up}/targets/{key}")).await,
                204,
                &format!("{d}: DELETE target by_id={by_id}"),
            );
            let v = expect_or_empty(&c.get(&format!("/upstreams/{up}/targets/all")).await, 200, d);
            assert_eq!(
                v["data"].as_array().unwrap().len(),
                1,
                "{d}: one target left (by_id={by_id})"
            );
            let v = expect_or_empty(&c.get(&format!("/upstreams/{up}/targets")).await, 200, d);
            assert_eq!(
                v["data"].as_array().unwrap().len(),
                1,
                "{d}: one active target (by_id={by_id})"
            );
            assert_eq!(
                v["data"][0]["target"], "api-1:80",
                "{d}: the remaining target (by_id={by_id})"
            );
            // deleting it again: the target no longer exists
            let v =
                expect_or_empty(&c.delete(&format!("/upstreams/{up}/targets/{key}")).await, 404, d);
            assert_eq!(v, json!({ "message": "Not found" }), "{d}: DELETE missing target");
        }

        // the disabled /targets endpoints
        let t1_id = t1["id"].as_str().unwrap();
        for path in [
            "/targets".to_owned(),
            format!("/targets/{t1_id}"),
            format!("/targets/{t1_id}/upstream"),
        ] {
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let res = c.request(method, &path, &[], "").await;
                assert_eq!(
                    expect_or_empty(&res, 404, &format!("{d}: {method} {path}")),
                    json!({ "message": "Not found" }),
                    "{d}: {method} {path}"
                );
            }
        }
    }
}
