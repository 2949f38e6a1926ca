//! Kong's Admin API specs for consumers and plugins, ported to the real binary:
//! `spec/02-integration/04-admin_api/03-consumers_routes_spec.lua` and
//! `04-plugins_routes_spec.lua` (Kong 3.9), entity-level behaviour only: plugin configs are
//! generic JSON objects in Turnpike for now, so the spec's `rewriter` fixture plugin is
//! replaced by a bundled plugin and config-schema cases are left out.

use serde_json::{json, Value};
use turnpike_test::{
    create, databases, escape_uri, expect, gateway, get_with_bad_body, new_uuid, raw_get, s, send,
    walk_pages, without, Client, ALL, FORM_JSON,
};

/// The username style of Kong's spec (`gensym`): contains a space, for urlencoding.
fn gensym(tag: &str) -> String {
    format!("abc def {tag}")
}

const AT_LEAST_ONE: &str =
    "at least one of these fields must be non-empty: 'custom_id', 'username'";

/// A consumer-scoped bundled plugin with no required configuration (stands in for the
/// spec's custom `rewriter` plugin).
const CPLUGIN: &str = "request-termination";

// ---- /consumers --------------------------------------------------------------------------

/// 03-consumers_routes_spec.lua:58-199 ("POST").
#[tokio::test]
async fn consumers_post() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        for ct in ALL {
            let case = format!("{}/{ct:?}", db.name());
            let username = gensym(&format!("{ct:?}"));
            let res = send(&a, ct, "POST", "/consumers", &json!({"username": username})).await;
            let j = expect(&res, 201, &format!("{case}: creates a consumer"));
            assert_eq!(j["username"], json!(username), "{case}");
            assert!(j["created_at"].is_i64() && j["id"].is_string(), "{case}: {j}");

            let res = send(&a, ct, "POST", "/consumers", &json!({})).await;
            let j = expect(&res, 400, &format!("{case}: invalid input"));
            assert_eq!(j["name"], "schema violation", "{case}");
            assert_eq!(j["fields"]["@entity"], json!([AT_LEAST_ONE]), "{case}");

            let existing = create(
                &a,
                "/consumers",
                json!({"username": format!("taken-{ct:?}"), "custom_id": format!("cid-{ct:?}")}),
                &case,
            )
            .await;
            let res =
                send(&a, ct, "POST", "/consumers", &json!({"username": existing["username"]}))
                    .await;
            let j = expect(&res, 409, &format!("{case}: conflicting username"));
            assert_eq!(j["name"], "unique constraint violation", "{case}");
            assert_eq!(
                j["message"],
                json!(format!(
                    "UNIQUE violation detected on '{{username=\"{}\"}}'",
                    s(&existing["username"])
                )),
                "{case}"
            );
            let res = send(
                &a,
                ct,
                "POST",
                "/consumers",
                &json!({"username": "tom", "custom_id": existing["custom_id"]}),
            )
            .await;
            let j = expect(&res, 409, &format!("{case}: conflicting custom_id"));
            assert_eq!(j["name"], "unique constraint violation", "{case}");
            assert_eq!(
                j["message"],
                json!(format!(
                    "UNIQUE violation detected on '{{custom_id=\"{}\"}}'",
                    s(&existing["custom_id"])
                )),
                "{case}"
            );
        }
        let case = db.name();
        let res = a
            .request("POST", "/consumers", &[("content-type", "invalid")], "{\"hello\": \"world\"}")
            .await;
        expect(&res, 415, &format!("{case}: invalid content-type"));
        let res = a.request("POST", "/consumers", &[], "invalid").await;
        expect(&res, 415, &format!("{case}: missing content-type with body"));
        let res =
            a.request("POST", "/consumers", &[("content-type", "application/json")], "").await;
        assert_eq!(
            expect(&res, 400, &format!("{case}: missing JSON body")),
            json!({"message": "Cannot parse JSON body"})
        );
        let res = a
            .request(
                "POST",
                "/consumers",
                &[("content-type", "application/x-www-form-urlencoded")],
                "",
            )
            .await;
        let j = expect(&res, 400, &format!("{case}: missing form body"));
        assert_eq!(
            (&j["name"], &j["fields"]["@entity"]),
            (&json!("schema violation"), &json!([AT_LEAST_ONE])),
            "{case}"
        );
        let res = a.request("POST", "/consumers", &[], "").await;
        let j = expect(&res, 400, &format!("{case}: missing body without content-type"));
        assert_eq!(
            (&j["name"], &j["fields"]["@entity"]),
            (&json!("schema violation"), &json!([AT_LEAST_ONE])),
            "{case}"
        );
    }
}

/// 03-consumers_routes_spec.lua:162-174 (and arguments.lua:556-566): `multipart/form-data` without a boundary and
/// without a body is an empty argument set in Kong (schema violation), not a decoding error.
#[tokio::test]
async fn consumers_post_multipart_without_body() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let res =
            a.request("POST", "/consumers", &[("content-type", "multipart/form-data")], "").await;
        let j = expect(&res, 400, &format!("{case}: missing multipart body"));
        assert_eq!(
            (&j["name"], &j["fields"]["@entity"]),
            (&json!("schema violation"), &json!([AT_LEAST_ONE])),
            "{case}: {j}"
        );
    }
}

/// 03-consumers_routes_spec.lua:201-319 ("GET") and 320-333 (405).
#[tokio::test]
async fn consumers_list() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        for i in 1..=10 {
            create(
                &a,
                "/consumers",
                json!({"username": format!("consumer-{i}"), "custom_id": format!("custom-{i}")}),
                case,
            )
            .await;
        }
        let j = expect(&a.get("/consumers").await, 200, case);
        assert_eq!(j["data"].as_array().unwrap().len(), 10, "{case}: first page");
        assert_eq!(j["next"], Value::Null, "{case}");

        walk_pages(&a, "/consumers", 3, 10, case, |_, _| {}).await;

        // custom_id filter
        let unempty = json!({"message": "custom_id must be an unempty string"});
        assert_eq!(
            expect(&a.get("/consumers?custom_id=").await, 400, &format!("{case}: empty custom_id")),
            unempty
        );
        assert_eq!(
            expect(&a.get("/consumers?custom_id").await, 400, &format!("{case}: bare custom_id")),
            unempty
        );

        let custom_id = gensym("custom");
        let c = create(&a, "/consumers", json!({"custom_id": custom_id}), case).await;
        let j = expect(
            &a.get(&format!("/consumers?custom_id={}", escape_uri(&custom_id))).await,
            200,
            case,
        );
        assert_eq!(j, json!({"data": [c], "next": null}), "{case}: filter by custom_id");

        let uuid_like = new_uuid();
        let c = create(&a, "/consumers", json!({"custom_id": uuid_like}), case).await;
        let j = expect(&a.get(&format!("/consumers?custom_id={uuid_like}")).await, 200, case);
        assert_eq!(j["data"], json!([c]), "{case}: filter by uuid-like custom_id");

        let res = a.get("/consumers?custom_id=does-not-exist").await;
        expect(&res, 200, case);
        assert!(res.text().contains(r#""data":[]"#), "{case}: {}", res.text());

        let j = expect(&a.get("/consumers?tags=").await, 400, &format!("{case}: empty tags"));
        assert_eq!(j["message"], "invalid option (tags: cannot be null)", "{case}");

        for m in ["DELETE", "PATCH"] {
            let res = a.send_json(m, "/consumers", &json!({})).await;
            assert_eq!(
                expect(&res, 405, &format!("{case}: {m}")),
                json!({"message": "Method not allowed"})
            );
        }
    }
}

/// 03-consumers_routes_spec.lua:335-380 ("/consumers/{consumer}" GET).
#[tokio::test]
async fn consumers_get_one() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let c = create(&a, "/consumers", json!({"username": gensym("1"), "custom_id": "c1"}), case)
            .await;
        assert_eq!(
            expect(
                &a.get(&format!("/consumers/{}", s(&c["id"]))).await,
                200,
                &format!("{case}: by id")
            ),
            c
        );
        let res = a.get(&format!("/consumers/{}", escape_uri(s(&c["username"])))).await;
        assert_eq!(expect(&res, 200, &format!("{case}: by urlencoded username")), c);
        let u = create(&a, "/consumers", json!({"username": "円"}), case).await;
        assert_eq!(
            raw_get(&a, "/consumers/円").await,
            (200, u.clone()),
            "{case}: raw utf-8 username"
        );
        assert_eq!(expect(&a.get("/consumers/%E5%86%86").await, 200, &format!("{case}: utf-8")), u);
        assert_eq!(
            expect(&a.get("/consumers/_inexistent_").await, 404, case),
            json!({"message": "Not found"})
        );
    }
}

/// 03-consumers_routes_spec.lua:382-478 ("PATCH").
#[tokio::test]
async fn consumers_patch() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        for ct in ALL {
            let case = format!("{}/{ct:?}", db.name());
            let c = create(&a, "/consumers", json!({"username": gensym(&format!("p1-{ct:?}")), "custom_id": format!("p1-{ct:?}")}), &case).await;
            let new_username = gensym(&format!("p1-new-{ct:?}"));
            let res = send(
                &a,
                ct,
                "PATCH",
                &format!("/consumers/{}", s(&c["id"])),
                &json!({"username": new_username}),
            )
            .await;
            let j = expect(&res, 200, &format!("{case}: updates by id"));
            assert_eq!((&j["username"], &j["id"]), (&json!(new_username), &c["id"]), "{case}");
            assert_eq!(
                expect(&a.get(&format!("/consumers/{}", s(&c["id"]))).await, 200, &case),
                j,
                "{case}: in db"
            );

            let c = create(&a, "/consumers", json!({"username": gensym(&format!("p2-{ct:?}")), "custom_id": format!("p2-{ct:?}")}), &case).await;
            let new_username = gensym(&format!("p2-new-{ct:?}"));
            let res = send(
                &a,
                ct,
                "PATCH",
                &format!("/consumers/{}", escape_uri(s(&c["username"]))),
                &json!({"username": new_username}),
            )
            .await;
            let j = expect(&res, 200, &format!("{case}: updates by username"));
            assert_eq!((&j["username"], &j["id"]), (&json!(new_username), &c["id"]), "{case}");
            assert_eq!(
                expect(&a.get(&format!("/consumers/{}", s(&c["id"]))).await, 200, &case),
                j,
                "{case}: in db"
            );

            let c = create(&a, "/consumers", json!({"username": gensym(&format!("p3-{ct:?}")), "custom_id": format!("p3-{ct:?}")}), &case).await;
            let res = send(
                &a,
                ct,
                "PATCH",
                &format!("/consumers/{}", escape_uri(s(&c["username"]))),
                &json!({"username": c["username"], "custom_id": c["custom_id"]}),
            )
            .await;
            let j = expect(&res, 200, &format!("{case}: updates with previous values"));
            assert_eq!(
                (&j["username"], &j["custom_id"], &j["id"]),
                (&c["username"], &c["custom_id"], &c["id"]),
                "{case}"
            );
            assert_eq!(
                expect(&a.get(&format!("/consumers/{}", s(&c["id"]))).await, 200, &case),
                j,
                "{case}: in db"
            );

            let res =
                send(&a, ct, "PATCH", "/consumers/_inexistent_", &json!({"username": gensym("x")}))
                    .await;
            expect(&res, 404, &format!("{case}: 404 if not found"));
        }
        let case = db.name();
        let c = create(&a, "/consumers", json!({"username": "patch-errors"}), case).await;
        let path = format!("/consumers/{}", s(&c["id"]));
        expect(
            &a.request("PATCH", &path, &[("content-type", "invalid")], "{\"hello\": \"world\"}")
                .await,
            415,
            &format!("{case}: 415 invalid content-type"),
        );
        expect(
            &a.request("PATCH", &path, &[], "invalid").await,
            415,
            &format!("{case}: 415 missing content-type"),
        );
        let res = a.request("PATCH", &path, &[("content-type", "application/json")], "").await;
        assert_eq!(
            expect(&res, 400, &format!("{case}: missing JSON body")),
            json!({"message": "Cannot parse JSON body"})
        );
    }
}

/// 03-consumers_routes_spec.lua:480-590 ("PUT").
#[tokio::test]
async fn consumers_put() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        for ct in ALL {
            let case = format!("{}/{ct:?}", db.name());
            let custom_id = gensym(&format!("put-{ct:?}"));
            let id = new_uuid();
            let res =
                send(&a, ct, "PUT", &format!("/consumers/{id}"), &json!({"custom_id": custom_id}))
                    .await;
            let j = expect(&res, 200, &format!("{case}: creates if not exists"));
            assert_eq!((&j["custom_id"], &j["id"]), (&json!(custom_id), &json!(id)), "{case}");

            let name = gensym(&format!("put-name-{ct:?}"));
            let res =
                send(&a, ct, "PUT", &format!("/consumers/{}", escape_uri(&name)), &json!({})).await;
            let j = expect(&res, 200, &format!("{case}: creates if not exists by username"));
            assert_eq!((&j["username"], &j["custom_id"]), (&json!(name), &Value::Null), "{case}");

            let c = create(&a, "/consumers", json!({"username": gensym(&format!("r1-{ct:?}")), "custom_id": format!("r1-{ct:?}")}), &case).await;
            let new_username = gensym(&format!("r1-new-{ct:?}"));
            let res = send(
                &a,
                ct,
                "PUT",
                &format!("/consumers/{}", s(&c["id"])),
                &json!({"username": new_username}),
            )
            .await;
            let j = expect(&res, 200, &format!("{case}: replaces if found"));
            assert_eq!(
                (&j["username"], &j["custom_id"]),
                (&json!(new_username), &Value::Null),
                "{case}"
            );
            assert_eq!(
                expect(&a.get(&format!("/consumers/{}", s(&c["id"]))).await, 200, &case),
                j,
                "{case}: in db"
            );

            let c = create(&a, "/consumers", json!({"username": gensym(&format!("r2-{ct:?}")), "custom_id": format!("r2-{ct:?}")}), &case).await;
            let path = format!("/consumers/{}", escape_uri(s(&c["username"])));
            let new_custom_id = gensym(&format!("r2-new-{ct:?}"));
            let res = send(&a, ct, "PUT", &path, &json!({"custom_id": new_custom_id})).await;
            let j = expect(&res, 200, &format!("{case}: replaces if found by username"));
            assert_eq!(
                (&j["username"], &j["custom_id"], &j["id"]),
                (&c["username"], &json!(new_custom_id), &c["id"]),
                "{case}"
            );
            let res = send(&a, ct, "PUT", &path, &json!({})).await;
            let j = expect(&res, 200, &format!("{case}: replaces by username with empty body"));
            assert_eq!(
                (&j["username"], &j["custom_id"], &j["id"]),
                (&c["username"], &Value::Null, &c["id"]),
                "{case}"
            );

            let res = send(&a, ct, "PUT", &format!("/consumers/{}", new_uuid()), &json!({})).await;
            assert_eq!(
                expect(&res, 400, &format!("{case}: invalid input")),
                json!({
                    "code": 2, "name": "schema violation",
                    "fields": {"@entity": [AT_LEAST_ONE]},
                    "message": format!("schema violation ({AT_LEAST_ONE})")
                }),
                "{case}: invalid input"
            );
        }
        let c = create(&a, "/consumers", json!({"username": "malformed"}), db.name()).await;
        let res = a
            .request(
                "PUT",
                &format!("/consumers/{}", s(&c["id"])),
                &[("content-type", "application/json")],
                "{\"hello\": \"world\"",
            )
            .await;
        assert_eq!(res.status, 400, "{}: malformed JSON", db.name());
        assert_eq!(res.text(), r#"{"message":"Cannot parse JSON body"}"#);
    }
}

/// 03-consumers_routes_spec.lua:592-611 ("DELETE").
#[tokio::test]
async fn consumers_delete() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let c = create(&a, "/consumers", json!({"username": "del-by-id"}), case).await;
        expect(
            &a.delete(&format!("/consumers/{}", s(&c["id"]))).await,
            204,
            &format!("{case}: by id"),
        );
        expect(&a.get(&format!("/consumers/{}", s(&c["id"]))).await, 404, &format!("{case}: gone"));
        let c = create(&a, "/consumers", json!({"username": gensym("del")}), case).await;
        expect(
            &a.delete(&format!("/consumers/{}", escape_uri(s(&c["username"])))).await,
            204,
            &format!("{case}: by username"),
        );
        expect(
            &a.get(&format!("/consumers/{}", s(&c["id"]))).await,
            404,
            &format!("{case}: gone by username"),
        );
    }
}

// ---- /consumers/{consumer}/plugins ------------------------------------------------------

/// 03-consumers_routes_spec.lua:614-760 ("/consumers/{username_or_id}/plugins").
#[tokio::test]
async fn consumers_plugins_collection() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        for ct in FORM_JSON {
            let case = format!("{}/{ct:?}", db.name());
            for by_username in [false, true] {
                let c = create(
                    &a,
                    "/consumers",
                    json!({"username": gensym(&format!("{ct:?}-{by_username}"))}),
                    &case,
                )
                .await;
                let key = if by_username {
                    escape_uri(s(&c["username"]))
                } else {
                    s(&c["id"]).to_owned()
                };
                let res = send(
                    &a,
                    ct,
                    "POST",
                    &format!("/consumers/{key}/plugins"),
                    &json!({"name": CPLUGIN}),
                )
                .await;
                let j = expect(
                    &res,
                    201,
                    &format!("{case}: creates a plugin (by username: {by_username})"),
                );
                assert_eq!(
                    (&j["name"], &j["consumer"]),
                    (&json!(CPLUGIN), &json!({"id": c["id"]})),
                    "{case}"
                );
                assert_eq!((&j["service"], &j["route"]), (&Value::Null, &Value::Null), "{case}");
            }
        }
        for ct in ALL {
            let case = format!("{}/{ct:?}", db.name());
            let c = create(&a, "/consumers", json!({"username": format!("errors-{ct:?}")}), &case)
                .await;
            let path = format!("/consumers/{}/plugins", s(&c["id"]));
            let res = send(&a, ct, "POST", &path, &json!({})).await;
            assert_eq!(
                expect(&res, 400, &format!("{case}: invalid input")),
                json!({
                    "code": 2, "name": "schema violation",
                    "fields": {"name": "required field missing"},
                    "message": "schema violation (name: required field missing)"
                }),
                "{case}: invalid input"
            );
            expect(&send(&a, ct, "POST", &path, &json!({"name": CPLUGIN})).await, 201, &case);
            let res = send(&a, ct, "POST", &path, &json!({"name": CPLUGIN})).await;
            assert_eq!(
                expect(&res, 409, &format!("{case}: conflict")),
                json!({
                    "code": 5, "name": "unique constraint violation",
                    "message": format!(
                        "UNIQUE violation detected on '{{consumer={{id=\"{}\"}},name=\"{CPLUGIN}\",route=null,service=null}}'",
                        s(&c["id"])
                    ),
                    "fields": {"name": CPLUGIN, "consumer": {"id": c["id"]}, "route": null, "service": null}
                }),
                "{case}: conflict"
            );
        }
        let case = db.name();
        let c = create(&a, "/consumers", json!({"username": "lister"}), case).await;
        let p = create(
            &a,
            &format!("/consumers/{}/plugins", s(&c["id"])),
            json!({"name": CPLUGIN}),
            case,
        )
        .await;
        let j = expect(&a.get(&format!("/consumers/{}/plugins", s(&c["id"]))).await, 200, case);
        assert_eq!(j, json!({"data": [p], "next": null}), "{case}: first page");
        expect(
            &get_with_bad_body(&a, &format!("/consumers/{}/plugins", s(&c["id"]))).await,
            200,
            &format!("{case}: invalid body"),
        );
        let res = a
            .post_json(&format!("/consumers/{}/plugins", new_uuid()), &json!({"name": CPLUGIN}))
            .await;
        expect(&res, 404, &format!("{case}: unknown consumer"));
    }
}

/// 03-consumers_routes_spec.lua:763-1028 ("/consumers/{username_or_id}/plugins/{plugin}").
#[tokio::test]
async fn consumers_plugins_entity() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let c = create(&a, "/consumers", json!({"username": gensym("owner")}), case).await;
        let cid = s(&c["id"]).to_owned();
        let p =
            create(&a, &format!("/consumers/{cid}/plugins"), json!({"name": CPLUGIN}), case).await;
        let ppath = format!("/consumers/{cid}/plugins/{}", s(&p["id"]));
        assert_eq!(expect(&a.get(&ppath).await, 200, &format!("{case}: by id")), p);
        let res = a
            .get(&format!("/consumers/{}/plugins/{}", escape_uri(s(&c["username"])), s(&p["id"])))
            .await;
        assert_eq!(expect(&res, 200, &format!("{case}: by username with spaces")), p);
        let wrong = create(
            &a,
            "/consumers",
            json!({"custom_id": "wc", "username": "wrong-consumer"}),
            case,
        )
        .await;
        let res = a.get(&format!("/consumers/{}/plugins/{}", s(&wrong["id"]), s(&p["id"]))).await;
        expect(&res, 404, &format!("{case}: only retrieves through the right consumer"));
        expect(&get_with_bad_body(&a, &ppath).await, 200, &format!("{case}: invalid body"));

        // PATCH (plugin-agnostic fields instead of the spec's `config.value`)
        for ct in FORM_JSON {
            let case = format!("{}/{ct:?}", db.name());
            let owner =
                create(&a, "/consumers", json!({"username": format!("patch-{ct:?}")}), &case).await;
            let oid = s(&owner["id"]);
            let p = create(
                &a,
                &format!("/consumers/{oid}/plugins"),
                json!({"name": CPLUGIN, "instance_name": format!("patch-{ct:?}")}),
                &case,
            )
            .await;
            let path = format!("/consumers/{oid}/plugins/{}", s(&p["id"]));
            let res = send(
                &a,
                ct,
                "PATCH",
                &path,
                &json!({"tags": ["updated"], "instance_name": format!("patched-{ct:?}")}),
            )
            .await;
            let j = expect(&res, 200, &format!("{case}: updates if found"));
            assert_eq!((&j["tags"], &j["id"]), (&json!(["updated"]), &p["id"]), "{case}");
            assert_eq!(j["instance_name"], json!(format!("patched-{ct:?}")), "{case}");
            assert_eq!(
                expect(&a.get(&format!("/plugins/{}", s(&p["id"]))).await, 200, &case),
                j,
                "{case}: in db"
            );
        }
        for ct in ALL {
            let case = format!("{}/{ct:?}", db.name());
            let other =
                create(&a, "/consumers", json!({"username": format!("enabled-{ct:?}")}), &case)
                    .await;
            let p = create(
                &a,
                &format!("/consumers/{}/plugins", s(&other["id"])),
                json!({"name": CPLUGIN}),
                &case,
            )
            .await;
            let path = format!("/consumers/{}/plugins/{}", s(&other["id"]), s(&p["id"]));
            let res =
                send(&a, ct, "PATCH", &path, &json!({"name": CPLUGIN, "enabled": false})).await;
            assert_eq!(
                expect(&res, 200, &format!("{case}: updates enabled"))["enabled"],
                false,
                "{case}"
            );
            assert_eq!(
                expect(&a.get(&format!("/plugins/{}", s(&p["id"]))).await, 200, &case)["enabled"],
                false
            );

            let res = send(
                &a,
                ct,
                "PATCH",
                &format!("/consumers/{cid}/plugins/b6cca0aa-4537-11e5-af97-23a06d98af51"),
                &json!({}),
            )
            .await;
            expect(&res, 404, &format!("{case}: PATCH 404"));

            let res = send(&a, ct, "PATCH", &path, &json!({"name": "foo"})).await;
            let j = expect(&res, 400, &format!("{case}: PATCH invalid name"));
            assert_eq!(j["name"], "schema violation", "{case}");
            assert_eq!(
                j["fields"]["name"],
                "plugin 'foo' not enabled; add it to the 'plugins' configuration property",
                "{case}"
            );
        }

        // PUT
        for ct in FORM_JSON {
            let case = format!("{}/{ct:?}", db.name());
            let other =
                create(&a, "/consumers", json!({"username": format!("put-{ct:?}")}), &case).await;
            let oid = s(&other["id"]).to_owned();
            let plugin_id = new_uuid();
            let res = send(
                &a,
                ct,
                "PUT",
                &format!("/consumers/{oid}/plugins/{plugin_id}"),
                &json!({"name": CPLUGIN, "tags": ["put"]}),
            )
            .await;
            let j = expect(&res, 200, &format!("{case}: PUT creates if not found"));
            assert_eq!(
                (&j["id"], &j["consumer"], &j["tags"]),
                (&json!(plugin_id), &json!({"id": oid}), &json!(["put"])),
                "{case}"
            );
            assert_eq!(
                expect(&a.get(&format!("/plugins/{plugin_id}")).await, 200, &case),
                j,
                "{case}: in db"
            );

            let res = send(
                &a,
                ct,
                "PUT",
                &format!("/consumers/{oid}/plugins/{plugin_id}"),
                &json!({"name": CPLUGIN, "tags": ["updated"]}),
            )
            .await;
            let j = expect(&res, 200, &format!("{case}: PUT updates if found"));
            assert_eq!(
                (&j["id"], &j["consumer"], &j["tags"]),
                (&json!(plugin_id), &json!({"id": oid}), &json!(["updated"])),
                "{case}"
            );
            assert_eq!(
                expect(&a.get(&format!("/plugins/{plugin_id}")).await, 200, &case),
                j,
                "{case}: in db"
            );
        }

        // DELETE
        expect(&a.delete(&ppath).await, 204, &format!("{case}: deletes"));
        expect(
            &a.get(&format!("/plugins/{}", s(&p["id"]))).await,
            404,
            &format!("{case}: deleted"),
        );
        let res = a
            .delete(&format!("/consumers/{cid}/plugins/fafafafa-1234-baba-5678-cececececece"))
            .await;
        expect(&res, 404, &format!("{case}: DELETE 404"));
    }
}

// ---- /plugins ----------------------------------------------------------------------------

/// 04-plugins_routes_spec.lua:40-51 ("/plugins/enabled").
#[tokio::test]
async fn plugins_enabled() {
    for db in databases() {
        let gw = gateway(&db).await;
        let j = expect(&gw.admin().get("/plugins/enabled").await, 200, db.name());
        let list = j["enabled_plugins"].as_array().unwrap_or_else(|| panic!("{}: {j}", db.name()));
        assert!(!list.is_empty() && list.contains(&json!("key-auth")), "{}: {j}", db.name());
    }
}

/// The fixture of 04-plugins_routes_spec.lua:53-100: three services with a route and a
/// key-auth plugin each (instance names `key-auth-1..3`), a fourth with instance name `円`.
async fn plugins_fixture(a: &Client, case: &str) -> Vec<Value> {
    let mut plugins = Vec::new();
    for i in 1..=4 {
        let svc = create(a, "/services", json!({"name": format!("service-{i}"), "protocol": "http", "host": "127.0.0.1", "port": 15555}), case).await;
        if i < 4 {
            create(
                a,
                "/routes",
                json!({"service": {"id": svc["id"]}, "hosts": [format!("route_{i}.test")]}),
                case,
            )
            .await;
        }
        let iname = if i < 4 { format!("key-auth-{i}") } else { "円".to_owned() };
        plugins.push(
            create(
                a,
                "/plugins",
                json!({"name": "key-auth", "instance_name": iname, "service": {"id": svc["id"]}, "config": {"key_names": ["testkey"]}}),
                case,
            )
            .await,
        );
    }
    plugins
}

/// 04-plugins_routes_spec.lua:102-168 ("/plugins" GET, 405, "/plugins/{plugin}" GET).
#[tokio::test]
async fn plugins_get() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let plugins = plugins_fixture(&a, case).await;
        let j = expect(&a.get("/plugins").await, 200, case);
        assert_eq!(j["data"].as_array().unwrap().len(), 4, "{case}: all plugins");
        for m in ["DELETE", "PATCH"] {
            let res = a.send_json(m, "/plugins", &json!({})).await;
            assert_eq!(
                expect(&res, 405, &format!("{case}: {m}")),
                json!({"message": "Method not allowed"})
            );
        }
        assert_eq!(
            expect(&a.get(&format!("/plugins/{}", s(&plugins[0]["id"]))).await, 200, case),
            plugins[0],
            "{case}: by id"
        );
        assert_eq!(
            expect(&a.get("/plugins/key-auth-1").await, 200, case),
            plugins[0],
            "{case}: by instance_name"
        );
        expect(
            &a.get("/plugins/f4aecadc-05c7-11e6-8d41-1f3b3d5fa15c").await,
            404,
            &format!("{case}: 404"),
        );
        expect(&a.get("/plugins/not-found").await, 404, &format!("{case}: 404 by instance_name"));
        assert_eq!(
            expect(&a.get("/plugins/%E5%86%86").await, 200, case),
            plugins[3],
            "{case}: utf-8 instance_name"
        );
        assert_eq!(
            raw_get(&a, "/plugins/円").await,
            (200, plugins[3].clone()),
            "{case}: raw utf-8 instance_name"
        );
    }
}

/// 04-plugins_routes_spec.lua:171-252 ("PUT").
#[tokio::test]
async fn plugins_put() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let svc = create(&a, "/services", json!({"host": "example.com"}), case).await;
        create(&a, "/routes", json!({"paths": ["/mypath"], "service": {"id": svc["id"]}}), case)
            .await;
        let id = new_uuid();
        let res = a
            .put_json(
                &format!("/plugins/{id}"),
                &json!({"name": "key-auth", "service": {"id": svc["id"]}}),
            )
            .await;
        let j = expect(&res, 200, &format!("{case}: creates a plugin"));
        assert_eq!((&j["id"], &j["service"]), (&json!(id), &json!({"id": svc["id"]})), "{case}");

        let svc = create(&a, "/services", json!({"host": "example.com"}), case).await;
        let iname = format!("name-{}", new_uuid());
        let res = a
            .put_json(
                &format!("/plugins/{iname}"),
                &json!({"name": "key-auth", "service": {"id": svc["id"]}}),
            )
            .await;
        let j = expect(&res, 200, &format!("{case}: creates by instance_name"));
        assert_eq!(j["instance_name"], json!(iname), "{case}");

        let svc = create(&a, "/services", json!({"host": "example.com"}), case).await;
        let iname = format!("name-{}", new_uuid());
        let body = |k: &str| json!({"name": "key-auth", "service": {"id": svc["id"]}, "config": {"key_names": [k]}});
        let first =
            expect(&a.put_json(&format!("/plugins/{iname}"), &body("testkey")).await, 200, case);
        let j = expect(
            &a.put_json(&format!("/plugins/{iname}"), &body("testkey2")).await,
            200,
            &format!("{case}: upsert by instance_name"),
        );
        assert_eq!(j["id"], first["id"], "{case}: upsert keeps the id");
        assert_eq!(j["config"]["key_names"], json!(["testkey2"]), "{case}");
        assert_eq!(
            expect(&a.get(&format!("/plugins/{}", s(&first["id"]))).await, 200, case),
            j,
            "{case}: in db"
        );
    }
}

/// 04-plugins_routes_spec.lua:255-404 ("PATCH", "DELETE").
#[tokio::test]
async fn plugins_patch_delete() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let plugins = plugins_fixture(&a, case).await;
        let p1 = s(&plugins[0]["id"]).to_owned();
        let p2 = s(&plugins[1]["id"]).to_owned();

        let j = expect(
            &a.patch_json(&format!("/plugins/{p1}"), &json!({"enabled": false})).await,
            200,
            &format!("{case}: PATCH by id"),
        );
        assert_eq!(j["enabled"], false, "{case}");
        assert_eq!(expect(&a.get(&format!("/plugins/{p1}")).await, 200, case), j, "{case}: in db");

        let j = expect(
            &a.patch_json("/plugins/key-auth-2", &json!({"enabled": false})).await,
            200,
            &format!("{case}: PATCH by instance_name"),
        );
        assert_eq!((&j["enabled"], &j["id"]), (&json!(false), &json!(p2)), "{case}");
        assert_eq!(expect(&a.get(&format!("/plugins/{p2}")).await, 200, case), j, "{case}: in db");

        let mut body = without(&j, &["created_at", "updated_at"]);
        body["enabled"] = json!(true);
        let j = expect(
            &a.patch_json(&format!("/plugins/{p2}"), &body).await,
            200,
            &format!("{case}: PATCH bis"),
        );
        assert_eq!(j["enabled"], true, "{case}");

        let j = expect(
            &a.patch_json(&format!("/plugins/{p2}"), &json!({"service": null})).await,
            200,
            &format!("{case}: removing fk"),
        );
        assert_eq!(j["service"], Value::Null, "{case}");
        assert_eq!(expect(&a.get(&format!("/plugins/{p2}")).await, 200, case), j, "{case}: in db");

        expect(
            &a.patch_json(&format!("/plugins/{p2}"), &json!({"tags": null})).await,
            200,
            &format!("{case}: does not infer json input"),
        );

        let before = expect(&a.get(&format!("/plugins/{p1}")).await, 200, case);
        let res = a.patch_json(&format!("/plugins/{p1}"), &json!({"foo": "bar"})).await;
        assert_eq!(
            expect(&res, 400, &format!("{case}: invalid input")),
            json!({"message": "schema violation (foo: unknown field)", "name": "schema violation", "fields": {"foo": "unknown field"}, "code": 2})
        );
        let res = a.patch_json(&format!("/plugins/{p1}"), &json!({"config": "bar"})).await;
        assert_eq!(
            expect(&res, 400, &format!("{case}: invalid config")),
            json!({"message": "schema violation (config: expected a record)", "name": "schema violation", "fields": {"config": "expected a record"}, "code": 2})
        );
        let after = expect(&a.get(&format!("/plugins/{p1}")).await, 200, case);
        assert_eq!(after, before, "{case}: unchanged after invalid input");
        assert_eq!(after["config"]["key_names"], json!(["testkey"]), "{case}");

        expect(
            &a.patch_json(
                "/plugins/f4aecadc-05c7-11e6-8d41-1f3b3d5fa15c",
                &json!({"enabled": false}),
            )
            .await,
            404,
            &format!("{case}: PATCH 404"),
        );

        expect(
            &a.delete(&format!("/plugins/{}", s(&plugins[2]["id"]))).await,
            204,
            &format!("{case}: delete by id"),
        );
        expect(
            &a.get(&format!("/plugins/{}", s(&plugins[2]["id"]))).await,
            404,
            &format!("{case}: deleted by id"),
        );
        expect(
            &a.delete("/plugins/%E5%86%86").await,
            204,
            &format!("{case}: delete by instance_name"),
        );
        expect(
            &a.get("/plugins/%E5%86%86").await,
            404,
            &format!("{case}: deleted by instance_name"),
        );
        expect(
            &a.delete("/plugins/f4aecadc-05c7-11e6-8d41-1f3b3d5fa15c").await,
            204,
            &format!("{case}: delete 404 -> 204"),
        );
        expect(
            &a.delete("/plugins/not-found").await,
            204,
            &format!("{case}: delete by name 404 -> 204"),
        );
    }
}

/// 04-plugins_routes_spec.lua:406-470 ("/schemas/plugins/{plugin}"), entity level only.
#[tokio::test]
async fn plugins_schemas() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let j = expect(&a.get("/plugins/enabled").await, 200, case);
        for name in j["enabled_plugins"].as_array().unwrap() {
            let name = s(name);
            let j = expect(
                &a.get(&format!("/schemas/plugins/{name}")).await,
                200,
                &format!("{case}: schema of {name}"),
            );
            assert!(
                j["fields"].is_array() && j["entity_checks"].is_array(),
                "{case}: schema of {name}: {j}"
            );
        }
        let res = a.get("/schemas/plugins/foobar").await;
        assert_eq!(expect(&res, 404, case), json!({"message": "No plugin named 'foobar'"}));
    }
}

/// Plugin uniqueness and scoping as the DAO enforces them (plugins.lua `cache_key` of
/// name/route/service/consumer, unique `instance_name`; errors.lua unique_violation).
#[tokio::test]
async fn plugins_uniqueness_and_scoping() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let svc = create(&a, "/services", json!({"host": "example.com"}), case).await;
        let route =
            create(&a, "/routes", json!({"paths": ["/p"], "service": {"id": svc["id"]}}), case)
                .await;
        let c = create(&a, "/consumers", json!({"username": "scoped"}), case).await;

        // the same plugin at different scopes is fine
        let scopes = [
            json!({}),
            json!({"service": {"id": svc["id"]}}),
            json!({"route": {"id": route["id"]}}),
            json!({"consumer": {"id": c["id"]}}),
            json!({"service": {"id": svc["id"]}, "consumer": {"id": c["id"]}}),
            json!({"route": {"id": route["id"]}, "consumer": {"id": c["id"]}}),
            json!({"route": {"id": route["id"]}, "service": {"id": svc["id"]}}),
        ];
        for scope in &scopes {
            let mut body = scope.clone();
            body["name"] = json!(CPLUGIN);
            let j = expect(
                &a.post_json("/plugins", &body).await,
                201,
                &format!("{case}: scope {scope}"),
            );
            for f in ["service", "route", "consumer"] {
                let want = scope.get(f).cloned().unwrap_or(Value::Null);
                assert_eq!(j[f], want, "{case}: scope {scope}: {f}");
            }
        }
        // twice at the same scope conflicts
        let res = a.post_json("/plugins", &json!({"name": CPLUGIN})).await;
        assert_eq!(
            expect(&res, 409, &format!("{case}: global duplicate")),
            json!({
                "code": 5, "name": "unique constraint violation",
                "message": format!("UNIQUE violation detected on '{{consumer=null,name=\"{CPLUGIN}\",route=null,service=null}}'"),
                "fields": {"consumer": null, "name": CPLUGIN, "route": null, "service": null}
            })
        );
        // instance_name is unique
        create(&a, "/plugins", json!({"name": "cors", "instance_name": "shared"}), case).await;
        let res = a
            .post_json("/plugins", &json!({"name": "correlation-id", "instance_name": "shared"}))
            .await;
        assert_eq!(
            expect(&res, 409, &format!("{case}: instance_name duplicate")),
            json!({
                "code": 5, "name": "unique constraint violation",
                "message": "UNIQUE violation detected on '{instance_name=\"shared\"}'",
                "fields": {"instance_name": "shared"}
            })
        );
        // unknown plugin name, unknown parent
        let res = a.post_json("/plugins", &json!({"name": "foo"})).await;
        let j = expect(&res, 400, &format!("{case}: unknown plugin"));
        assert_eq!(
            j["fields"]["name"],
            "plugin 'foo' not enabled; add it to the 'plugins' configuration property",
            "{case}"
        );
        let res = a
            .post_json(&format!("/services/{}/plugins", new_uuid()), &json!({"name": "key-auth"}))
            .await;
        assert_eq!(
            expect(&res, 404, &format!("{case}: unknown service")),
            json!({"message": "Not found"})
        );
        let res = a
            .post_json(&format!("/routes/{}/plugins", new_uuid()), &json!({"name": "key-auth"}))
            .await;
        assert_eq!(
            expect(&res, 404, &format!("{case}: unknown route")),
            json!({"message": "Not found"})
        );
        // a plugin referencing a missing service
        let missing = new_uuid();
        let res =
            a.post_json("/plugins", &json!({"name": "key-auth", "service": {"id": missing}})).await;
        assert_eq!(
            expect(&res, 400, &format!("{case}: missing foreign service")),
            json!({
                "code": 4, "name": "foreign key violation",
                "message": format!("the foreign key '{{id=\"{missing}\"}}' does not reference an existing 'services' entity."),
                "fields": {"service": {"id": missing}}
            })
        );
        // defaults of a plugin entity
        let j = create(&a, "/plugins", json!({"name": "basic-auth"}), case).await;
        assert_eq!(
            (&j["enabled"], &j["instance_name"], &j["tags"]),
            (&json!(true), &Value::Null, &Value::Null),
            "{case}: defaults {j}"
        );
        assert!(j["protocols"].is_array() && j["config"].is_object(), "{case}: defaults {j}");
    }
}
