//! Kong's Admin API specs for tags and foreign-entity endpoints, ported to the real binary:
//! `spec/02-integration/04-admin_api/14-tags_spec.lua` and `17-foreign-entity_spec.lua`
//! (Kong 3.9). Every case runs on every database.

use serde_json::{json, Value};
use turnpike_test::{
    create, databases, escape_uri, expect, gateway, get_with_bad_body, new_uuid, s, send, Client,
    ALL, FORM_JSON,
};

/// Percent-encoded 🦍.
const GORILLA: &str = "%F0%9F%A6%8D";

fn contains(tags: &Value, t: &str) -> bool {
    tags.as_array().is_some_and(|a| a.iter().any(|x| x == t))
}

// ---- /entities?tags= ---------------------------------------------------------------------

/// 14-tags_spec.lua:9-176 ("/entities?tags=").
#[tokio::test]
async fn tags_filter_entities() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        for i in 1..=2 {
            let tags = json!(["corp_ a", format!("consumer_ {i}"), "🦍"]);
            let c = create(
                &a,
                "/consumers",
                json!({"username": format!("adminapi-filter-by-tag-{i}"), "tags": tags}),
                case,
            )
            .await;
            assert_eq!(c["tags"], tags, "{case}: tags kept in order");
            create(
                &a,
                "/plugins",
                json!({"name": "request-termination", "consumer": {"id": c["id"]}, "tags": ["corp_ a", format!("consumer_ {i}")]}),
                case,
            )
            .await;
        }

        let j =
            expect(&a.get("/consumers?tags=corp_%20a").await, 200, &format!("{case}: single tag"));
        assert_eq!(j["data"].as_array().unwrap().len(), 2, "{case}: single tag");
        for c in j["data"].as_array().unwrap() {
            assert!(contains(&c["tags"], "corp_ a"), "{case}: {c}");
        }

        let j = expect(
            &a.get(&format!("/consumers?tags={GORILLA}")).await,
            200,
            &format!("{case}: unicode tag"),
        );
        assert_eq!(j["data"].as_array().unwrap().len(), 2, "{case}: unicode tag");
        for c in j["data"].as_array().unwrap() {
            assert!(contains(&c["tags"], "🦍"), "{case}: {c}");
        }

        let j = expect(&a.get("/consumers?tags=").await, 400, &format!("{case}: empty tag"));
        assert_eq!(j["message"], "invalid option (tags: cannot be null)", "{case}");

        let j =
            expect(&a.get("/consumers?tags=''").await, 200, &format!("{case}: empty string tag"));
        assert_eq!(j["data"], json!([]), "{case}: empty string tag");

        let j = expect(
            &a.get("/consumers?tags=corp_%20a,consumer_%201").await,
            200,
            &format!("{case}: AND"),
        );
        assert_eq!(j["data"].as_array().unwrap().len(), 1, "{case}: AND");
        let tags = &j["data"][0]["tags"];
        assert_eq!(tags.as_array().unwrap().len(), 3, "{case}: AND tags");
        assert!(
            contains(tags, "corp_ a") && contains(tags, "consumer_ 1") && contains(tags, "🦍"),
            "{case}: {tags}"
        );

        let j = expect(
            &a.get("/consumers?tags=consumer_%202/consumer_%201").await,
            200,
            &format!("{case}: OR"),
        );
        assert_eq!(j["data"].as_array().unwrap().len(), 2, "{case}: OR");

        // tags are ignored on nested collections (#6779)
        let j = expect(
            &a.get("/consumers/adminapi-filter-by-tag-1/plugins?tags=consumer_%202").await,
            200,
            &format!("{case}: nested"),
        );
        assert_eq!(j["data"].as_array().unwrap().len(), 1, "{case}: nested ignores tags");
        let tags = &j["data"][0]["tags"];
        assert!(
            contains(tags, "corp_ a")
                && contains(tags, "consumer_ 1")
                && !contains(tags, "consumer_ 2"),
            "{case}: {tags}"
        );

        for q in [
            "consumer_%203,consumer_%202/consumer_%201",
            "consumer_%203/consumer_%202,consumer_%201",
        ] {
            let j = expect(
                &a.get(&format!("/consumers?tags={q}")).await,
                400,
                &format!("{case}: invalid filter {q}"),
            );
            assert_eq!(j["message"], "invalid option (tags: invalid filter syntax)", "{case}: {q}");
        }

        let j =
            expect(&a.get("/consumers?tags=corp_%20a&size=1").await, 200, &format!("{case}: next"));
        assert_eq!(j["data"].as_array().unwrap().len(), 1, "{case}: next");
        assert!(
            s(&j["next"]).contains("tags=corp_%20a"),
            "{case}: next keeps the tags: {}",
            j["next"]
        );
        // following the next link ends the walk
        let j2 = expect(&a.get(s(&j["next"])).await, 200, &format!("{case}: follow next"));
        assert_eq!(j2["data"].as_array().unwrap().len(), 1, "{case}: second page");
        assert_ne!(j2["data"][0]["id"], j["data"][0]["id"], "{case}: second page differs");
    }
}

/// The `next` link of a tag-filtered page, exactly as endpoints.lua:324-345 builds it:
/// `/consumers?offset=<escaped>&tags=<escaped>&size=<size>`.
#[tokio::test]
async fn tags_filter_next_link_format() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        for i in 1..=2 {
            create(
                &a,
                "/consumers",
                json!({"username": format!("u{i}"), "tags": ["corp_ a"]}),
                case,
            )
            .await;
        }
        let j = expect(&a.get("/consumers?tags=corp_%20a&size=1").await, 200, case);
        let o = s(&j["offset"]).to_owned();
        assert_eq!(
            j["next"],
            json!(format!("/consumers?offset={}&tags=corp_%20a&size=1", escape_uri(&o))),
            "{case}"
        );
    }
}

/// 14-tags_spec.lua:149-157: a tag filter that is not valid UTF-8 (`string.char(255)`,
/// sent percent-encoded) fails the tag regexes of endpoints.lua:44-52 -> 400.
#[tokio::test]
async fn tags_filter_invalid_utf8() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        create(&a, "/consumers", json!({"username": "tagged", "tags": ["corp_ a"]}), case).await;
        let j = expect(
            &a.get("/consumers?tags=%FF").await,
            400,
            &format!("{case}: invalid filter %FF"),
        );
        assert_eq!(j["message"], "invalid option (tags: invalid filter syntax)", "{case}");
    }
}

// ---- /tags -------------------------------------------------------------------------------

/// 14-tags_spec.lua:178-266 ("/tags").
#[tokio::test]
async fn tags_endpoint() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let mut consumers = Vec::new();
        for i in 1..=2 {
            let tags = json!(["corp_ a", format!("consumer_ {i}")]);
            let c = create(
                &a,
                "/consumers",
                json!({"username": format!("adminapi-filter-by-tag-{i}"), "tags": tags}),
                case,
            )
            .await;
            assert_eq!(c["tags"], tags, "{case}");
            consumers.push(c);
        }

        let j = expect(&a.get("/tags").await, 200, &format!("{case}: /tags"));
        let data = j["data"].as_array().unwrap();
        assert_eq!(data.len(), 4, "{case}: /tags: {j}");
        for row in data {
            let mut keys: Vec<&String> = row.as_object().unwrap().keys().collect();
            keys.sort();
            assert_eq!(keys, ["entity_id", "entity_name", "tag"], "{case}: tag row shape {row}");
            assert_eq!(row["entity_name"], "consumers", "{case}: {row}");
            assert!(consumers.iter().any(|c| c["id"] == row["entity_id"]), "{case}: {row}");
        }
        assert_eq!(j["next"], Value::Null, "{case}");

        let j = expect(&a.get("/tags/corp_%20a").await, 200, &format!("{case}: /tags/:tag"));
        assert_eq!(j["data"].as_array().unwrap().len(), 2, "{case}: /tags/corp_ a");
        for row in j["data"].as_array().unwrap() {
            assert_eq!(row["tag"], "corp_ a", "{case}: {row}");
        }
        let j = expect(&a.get("/tags/does-not-exist").await, 200, &format!("{case}: unknown tag"));
        assert_eq!(j, json!({"data": [], "next": null}), "{case}: unknown tag");

        for q in ["not_a_tag", "invalid@tag"] {
            let j = expect(
                &a.get(&format!("/tags?tags={q}")).await,
                200,
                &format!("{case}: /tags?tags={q}"),
            );
            assert_eq!(j["data"].as_array().unwrap().len(), 4, "{case}: /tags ignores ?tags={q}");
            let j = expect(
                &a.get(&format!("/tags/corp_%20a?tags={q}")).await,
                200,
                &format!("{case}: /tags/:tag?tags={q}"),
            );
            assert_eq!(
                j["data"].as_array().unwrap().len(),
                2,
                "{case}: /tags/:tag ignores ?tags={q}"
            );
        }

        // pagination of /tags
        let j = expect(&a.get("/tags?size=3").await, 200, case);
        assert_eq!(j["data"].as_array().unwrap().len(), 3, "{case}: /tags?size=3");
        let o = s(&j["offset"]).to_owned();
        assert_eq!(
            j["next"],
            json!(format!("/tags?offset={}&size=3", escape_uri(&o))),
            "{case}: /tags next"
        );
        let j2 = expect(&a.get(s(&j["next"])).await, 200, case);
        assert_eq!(j2["data"].as_array().unwrap().len(), 1, "{case}: /tags last page");
        assert_eq!(j2["next"], Value::Null, "{case}");

        // deleting an entity removes its tags; updating replaces them
        expect(&a.delete(&format!("/consumers/{}", s(&consumers[0]["id"]))).await, 204, case);
        let j = expect(&a.get("/tags").await, 200, case);
        assert_eq!(
            j["data"].as_array().unwrap().len(),
            2,
            "{case}: tags of a deleted entity are gone: {j}"
        );
        expect(
            &a.patch_json(
                &format!("/consumers/{}", s(&consumers[1]["id"])),
                &json!({"tags": ["fresh"]}),
            )
            .await,
            200,
            case,
        );
        let j = expect(&a.get("/tags").await, 200, case);
        assert_eq!(
            j["data"],
            json!([{"entity_name": "consumers", "entity_id": consumers[1]["id"], "tag": "fresh"}]),
            "{case}: tags replaced on update"
        );
    }
}

/// 14-tags_spec.lua:241-249: `/tags/<0xFF>` is 400 with the tag validation message of
/// dao/tags.lua page_by_tag -> errors:invalid_unique('tag', err) (typedefs.lua:111).
#[tokio::test]
async fn tags_endpoint_invalid_utf8() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let j = expect(&a.get("/tags/%FF").await, 400, &format!("{case}: invalid utf-8"));
        assert!(j["message"].as_str().is_some_and(|m| m.contains("invalid utf-8")), "{case}: {j}");
        assert_eq!(
            j,
            json!({"code": 10, "name": "invalid unique tag", "message": "invalid utf-8 character sequence detected at position 1"}),
            "{case}"
        );
    }
}

// ---- foreign entity endpoints ------------------------------------------------------------

// 17-foreign-entity_spec.lua drives Kong's `foreign_references.same -> foreign_entities`
// fixture (a custom plugin DAO). Turnpike has no custom DAOs, so the same generic endpoint
// (`/{entities}/{entity}/{foreign_field}`, endpoints.lua get/patch/delete_entity_endpoint
// with is_foreign_entity_endpoint) is driven through core relations: `plugins.consumer`,
// `plugins.service`, with the plugin's `instance_name` as the endpoint key.

async fn consumer_plugin(a: &Client, username: &str, iname: &str, case: &str) -> (Value, Value) {
    let c = create(a, "/consumers", json!({"username": username}), case).await;
    let p = create(
        a,
        "/plugins",
        json!({"name": "request-termination", "instance_name": iname, "consumer": {"id": c["id"]}}),
        case,
    )
    .await;
    (c, p)
}

/// 17-foreign-entity_spec.lua:71-126 ("GET").
#[tokio::test]
async fn foreign_entity_get() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let (c, p) = consumer_plugin(&a, "foreign-entity", "foreign-reference", case).await;
        let res = a.get(&format!("/plugins/{}/consumer", s(&p["id"]))).await;
        assert_eq!(expect(&res, 200, &format!("{case}: by id")), c);
        let res = a.get("/plugins/foreign-reference/consumer").await;
        assert_eq!(expect(&res, 200, &format!("{case}: by name")), c);
        let res = a.get(&format!("/plugins/{}/consumer", new_uuid())).await;
        assert_eq!(expect(&res, 404, &format!("{case}: 404")), json!({"message": "Not found"}));
        expect(
            &a.get("/plugins/my-in-existent-foreign-reference/consumer").await,
            404,
            &format!("{case}: 404 by name"),
        );
        expect(
            &get_with_bad_body(&a, &format!("/plugins/{}/consumer", s(&p["id"]))).await,
            200,
            &format!("{case}: invalid body"),
        );
        // a reference that is null
        let global = create(&a, "/plugins", json!({"name": "cors"}), case).await;
        expect(
            &a.get(&format!("/plugins/{}/consumer", s(&global["id"]))).await,
            404,
            &format!("{case}: null reference"),
        );
        // another relation of the same entity
        let svc = create(&a, "/services", json!({"host": "example.com"}), case).await;
        let sp =
            create(&a, "/plugins", json!({"name": "key-auth", "service": {"id": svc["id"]}}), case)
                .await;
        assert_eq!(
            expect(&a.get(&format!("/plugins/{}/service", s(&sp["id"]))).await, 200, case),
            svc,
            "{case}: /plugins/:p/service"
        );
        expect(
            &a.get(&format!("/plugins/{}/route", s(&sp["id"]))).await,
            404,
            &format!("{case}: /plugins/:p/route null"),
        );
    }
}

/// 17-foreign-entity_spec.lua:128-222 ("PATCH").
#[tokio::test]
async fn foreign_entity_patch() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        for ct in FORM_JSON {
            let case = format!("{}/{ct:?}", db.name());
            for by_name in [false, true] {
                let iname = format!("ref-{ct:?}-{by_name}");
                let (c, p) =
                    consumer_plugin(&a, &format!("fe-{ct:?}-{by_name}"), &iname, &case).await;
                let key = if by_name { iname.clone() } else { s(&p["id"]).to_owned() };
                let edited = format!("name-{}", s(&c["username"]));
                let res = send(
                    &a,
                    ct,
                    "PATCH",
                    &format!("/plugins/{key}/consumer"),
                    &json!({"username": edited}),
                )
                .await;
                let j =
                    expect(&res, 200, &format!("{case}: updates if found (by name: {by_name})"));
                assert_eq!((&j["username"], &j["id"]), (&json!(edited), &c["id"]), "{case}");
                assert_eq!(
                    expect(&a.get(&format!("/consumers/{}", s(&c["id"]))).await, 200, &case),
                    j,
                    "{case}: in db"
                );
            }
        }
        for ct in ALL {
            let case = format!("{}/{ct:?}", db.name());
            let res = send(
                &a,
                ct,
                "PATCH",
                &format!("/plugins/{}/consumer", new_uuid()),
                &json!({"username": "edited"}),
            )
            .await;
            expect(&res, 404, &format!("{case}: 404 if not found"));

            // invalid input on the referenced entity
            let svc = create(&a, "/services", json!({"host": "example.com"}), &case).await;
            let sp = create(
                &a,
                "/plugins",
                json!({"name": "key-auth", "service": {"id": svc["id"]}}),
                &case,
            )
            .await;
            let res = send(
                &a,
                ct,
                "PATCH",
                &format!("/plugins/{}/service", s(&sp["id"])),
                &json!({"port": "foobar"}),
            )
            .await;
            assert_eq!(
                expect(&res, 400, &format!("{case}: invalid input")),
                json!({
                    "code": 2, "name": "schema violation",
                    "message": "schema violation (port: expected an integer)",
                    "fields": {"port": "expected an integer"}
                }),
                "{case}: invalid input"
            );
            assert_eq!(
                expect(&a.get(&format!("/services/{}", s(&svc["id"]))).await, 200, &case),
                svc,
                "{case}: unchanged"
            );
        }
    }
}

/// 17-foreign-entity_spec.lua:224-283 ("DELETE"), and PUT on the same endpoint
/// (endpoints.lua put_entity_endpoint: creates and associates when the reference is null).
#[tokio::test]
async fn foreign_entity_delete_put() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let (c, p) = consumer_plugin(&a, "foreign-entity", "foreign-reference", case).await;
        let res = a.delete(&format!("/plugins/{}/consumer", s(&p["id"]))).await;
        assert_eq!(
            expect(&res, 405, &format!("{case}: DELETE referenced")),
            json!({"message": "Method not allowed"})
        );
        expect(
            &a.get(&format!("/consumers/{}", s(&c["id"]))).await,
            200,
            &format!("{case}: still there"),
        );
        let res = a.delete(&format!("/consumers/{}/plugins/{}", new_uuid(), new_uuid())).await;
        expect(&res, 404, &format!("{case}: DELETE non-existing parent"));
        expect(
            &a.delete(&format!("/plugins/{}/consumer", new_uuid())).await,
            404,
            &format!("{case}: DELETE non-existing reference"),
        );
        expect(
            &a.delete("/plugins/in-existent-route/consumer").await,
            404,
            &format!("{case}: DELETE by name"),
        );
        // a plugin of another consumer addressed through the wrong parent
        let other = create(&a, "/consumers", json!({"username": "other"}), case).await;
        let res =
            a.delete(&format!("/consumers/{}/plugins/{}", s(&other["id"]), s(&p["id"]))).await;
        expect(&res, 404, &format!("{case}: DELETE through wrong parent"));
        expect(
            &a.get(&format!("/plugins/{}", s(&p["id"]))).await,
            200,
            &format!("{case}: not deleted through wrong parent"),
        );

        // PUT on a null reference creates the entity and associates it (a plugin that can be
        // scoped to a consumer)
        let global = create(&a, "/plugins", json!({"name": "request-termination"}), case).await;
        let res = a
            .put_json(
                &format!("/plugins/{}/consumer", s(&global["id"])),
                &json!({"username": "put-created"}),
            )
            .await;
        let j = expect(&res, 200, &format!("{case}: PUT creates"));
        assert_eq!(j["username"], "put-created", "{case}");
        let g = expect(&a.get(&format!("/plugins/{}", s(&global["id"]))).await, 200, case);
        assert_eq!(g["consumer"], json!({"id": j["id"]}), "{case}: associated");
        // PUT on an existing reference replaces it (same id)
        let res = a
            .put_json(
                &format!("/plugins/{}/consumer", s(&p["id"])),
                &json!({"custom_id": "replaced"}),
            )
            .await;
        let j = expect(&res, 200, &format!("{case}: PUT replaces"));
        assert_eq!(
            (&j["id"], &j["username"], &j["custom_id"]),
            (&c["id"], &Value::Null, &json!("replaced")),
            "{case}"
        );
        expect(
            &a.put_json(&format!("/plugins/{}/consumer", new_uuid()), &json!({"username": "x"}))
                .await,
            404,
            &format!("{case}: PUT 404"),
        );
    }
}

/// Nested entity endpoints check the parent (endpoints.lua get/patch_entity_endpoint:
/// the child's foreign key must match the parent, else 404).
#[tokio::test]
async fn nested_entity_parent_checks() {
    for db in databases() {
        let gw = gateway(&db).await;
        let a = gw.admin();
        let case = db.name();
        let s1 = create(&a, "/services", json!({"name": "s1", "host": "example.com"}), case).await;
        create(&a, "/services", json!({"name": "s2", "host": "example.com"}), case).await;
        let r = create(
            &a,
            "/routes",
            json!({"name": "r1", "paths": ["/r1"], "service": {"id": s1["id"]}}),
            case,
        )
        .await;
        let rid = s(&r["id"]);
        assert_eq!(
            expect(&a.get(&format!("/services/s1/routes/{rid}")).await, 200, case),
            r,
            "{case}: right parent"
        );
        assert_eq!(
            expect(&a.get("/services/s1/routes/r1").await, 200, case),
            r,
            "{case}: right parent by name"
        );
        expect(
            &a.get(&format!("/services/s2/routes/{rid}")).await,
            404,
            &format!("{case}: GET wrong parent"),
        );
        expect(
            &a.patch_json(&format!("/services/s2/routes/{rid}"), &json!({"paths": ["/x"]})).await,
            404,
            &format!("{case}: PATCH wrong parent"),
        );
        expect(
            &a.delete(&format!("/services/s2/routes/{rid}")).await,
            404,
            &format!("{case}: DELETE wrong parent"),
        );
        expect(
            &a.get(&format!("/services/{}/routes/{rid}", new_uuid())).await,
            404,
            &format!("{case}: GET unknown parent"),
        );
        expect(
            &a.get(&format!("/services/{}/routes", new_uuid())).await,
            404,
            &format!("{case}: list unknown parent"),
        );
        assert_eq!(
            expect(&a.get(&format!("/routes/{rid}")).await, 200, case),
            r,
            "{case}: untouched"
        );
        let j = expect(
            &a.patch_json(&format!("/services/s1/routes/{rid}"), &json!({"paths": ["/y"]})).await,
            200,
            case,
        );
        assert_eq!(
            (&j["paths"], &j["service"]),
            (&json!(["/y"]), &json!({"id": s1["id"]})),
            "{case}: PATCH right parent"
        );
        expect(
            &a.delete("/services/s1/routes/r1").await,
            204,
            &format!("{case}: DELETE right parent"),
        );
        expect(&a.get(&format!("/routes/{rid}")).await, 404, &format!("{case}: deleted"));
    }
}
