//! The endpoints Kong customises (`kong/api/routes/*.lua`): certificates addressed by SNI,
//! targets under their upstream, consumers by `custom_id`, plugin updates and schemas, tags.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{json, Map, Value};
use turnpike_core::entities::Registry;
use turnpike_core::errors::DaoError;
use turnpike_store::{Key, PageRequest};

use crate::args::{decode_pairs, infer, MapSyntax};
use crate::entity::{key_for, next_link, page_body, page_request, Endpoint, Kind};
use crate::http::{dao_error, message, no_content, not_found, ok, BodyKind, HResult, OrRespond};
use crate::{handler, Ctx, Routes};

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

fn endpoint(registry: &Registry, name: &str, kind: Kind) -> Arc<Endpoint> {
    let schema = registry.get(name).cloned().unwrap_or_default();
    Arc::new(Endpoint { schema, kind })
}

// ---- certificates ------------------------------------------------------------------------

/// `prepare_params`: a certificate may be addressed by one of its SNIs. Returns the SNI name
/// used, if any.
async fn certificate_by_sni(ctx: &mut Ctx) -> HResult<Option<String>> {
    let raw = ctx.params.get("certificates").cloned().unwrap_or_default();
    if is_uuid(&raw) {
        return Ok(None);
    }
    let sni =
        ctx.app.store.select("snis", &Key::Field("name".into(), json!(raw))).await.or_respond()?;
    let id = match sni {
        Some(s) => s["certificate"]["id"].as_str().unwrap_or_default().to_owned(),
        None if ctx.input.method == Method::PUT => uuid::Uuid::new_v4().to_string(),
        None => return Err(message(StatusCode::NOT_FOUND, "SNI not found")),
    };
    ctx.params.insert("certificates".into(), id);
    Ok(Some(raw))
}

/// `prepare_args`: on PUT the SNI used in the URL joins the list; PUT without `snis` clears it.
fn certificate_args(ctx: &Ctx, name: Option<&str>) -> HResult<Map<String, Value>> {
    let schema = ctx.app.store.registry().get("certificates").cloned().unwrap_or_default();
    let mut args = ctx.input.post_args(Some(&schema))?;
    let is_put = ctx.input.method == Method::PUT;
    match args.get("snis").cloned() {
        Some(Value::Array(mut items)) => {
            if let Some(n) = name {
                if is_put && !items.iter().any(|i| i.as_str() == Some(n)) {
                    items.push(json!(n));
                }
            }
            args.insert("snis".into(), Value::Array(items));
        }
        Some(Value::String(s)) => {
            let list = match name {
                Some(n) if is_put && n != s => json!([s, n]),
                _ => json!([s]),
            };
            args.insert("snis".into(), list);
        }
        None if is_put => {
            args.insert("snis".into(), Value::Null);
        }
        _ => {}
    }
    Ok(args)
}

fn install_certificates(routes: &mut Routes, registry: &Registry) {
    let ep = endpoint(registry, "certificates", Kind::Entity);
    let path = "/certificates/{certificates}";
    routes.on(
        path,
        Method::GET,
        handler(|mut ctx: Ctx| async move {
            certificate_by_sni(&mut ctx).await?;
            let id = ctx.params["certificates"].clone();
            match ctx
                .app
                .store
                .select("certificates", &key_for(&turnpike_core::entities::certificates(), &id))
                .await
                .or_respond()?
            {
                Some(c) => Ok(ok(&Value::Object(c))),
                None => Err(dao_error(&DaoError::not_found(&json!({ "id": id })))),
            }
        }),
    );
    routes.on(
        path,
        Method::PUT,
        handler(|mut ctx: Ctx| async move {
            let name = certificate_by_sni(&mut ctx).await?;
            let args = certificate_args(&ctx, name.as_deref())?;
            let key = Key::Id(ctx.params["certificates"].clone());
            let c = ctx.app.store.upsert("certificates", &key, args).await.or_respond()?;
            Ok(ok(&Value::Object(c)))
        }),
    );
    routes.on(
        path,
        Method::PATCH,
        handler(|mut ctx: Ctx| async move {
            let name = certificate_by_sni(&mut ctx).await?;
            let args = certificate_args(&ctx, name.as_deref())?;
            let key = Key::Id(ctx.params["certificates"].clone());
            let c = ctx.app.store.update("certificates", &key, args).await.or_respond()?;
            Ok(ok(&Value::Object(c)))
        }),
    );
    let del = ep.clone();
    routes.on(
        path,
        Method::DELETE,
        handler(move |mut ctx: Ctx| {
            let ep = del.clone();
            async move {
                certificate_by_sni(&mut ctx).await?;
                ep.delete(ctx).await
            }
        }),
    );

    let coll = endpoint(
        registry,
        "snis",
        Kind::NestedCollection {
            parent: registry.get("certificates").cloned().unwrap_or_default(),
            field: "certificate".into(),
        },
    );
    let nested = endpoint(
        registry,
        "snis",
        Kind::NestedEntity {
            parent: registry.get("certificates").cloned().unwrap_or_default(),
            field: "certificate".into(),
        },
    );
    for (path, ep) in [
        ("/certificates/{certificates}/snis", coll),
        ("/certificates/{certificates}/snis/{snis}", nested),
    ] {
        let is_collection = matches!(ep.kind, Kind::NestedCollection { .. });
        let methods: &[Method] = if is_collection {
            &[Method::GET, Method::POST]
        } else {
            &[Method::GET, Method::PUT, Method::PATCH, Method::DELETE]
        };
        for m in methods {
            let ep = ep.clone();
            let m2 = m.clone();
            routes.on(
                path,
                m.clone(),
                handler(move |mut ctx: Ctx| {
                    let ep = ep.clone();
                    let m = m2.clone();
                    async move {
                        certificate_by_sni(&mut ctx).await?;
                        match m {
                            Method::GET => ep.get(ctx).await,
                            Method::POST => ep.post(ctx).await,
                            Method::PUT => ep.put(ctx).await,
                            Method::PATCH => ep.patch(ctx, None).await,
                            _ => ep.delete(ctx).await,
                        }
                    }
                }),
            );
        }
    }
    routes.disable("/snis/{snis}/certificate");
}

// ---- targets -----------------------------------------------------------------------------

async fn upstream_target(ctx: &Ctx) -> HResult<Map<String, Value>> {
    let store = &ctx.app.store;
    let upstreams = store.registry().get("upstreams").cloned().unwrap_or_default();
    let raw_up = ctx.params.get("upstreams").cloned().unwrap_or_default();
    let upstream = store
        .select("upstreams", &key_for(&upstreams, &raw_up))
        .await
        .or_respond()?
        .ok_or_else(not_found)?;
    let raw = ctx.params.get("targets").cloned().unwrap_or_default();
    let target = if is_uuid(&raw) {
        store.select("targets", &Key::Id(raw)).await.or_respond()?
    } else {
        let mut req = PageRequest::new(turnpike_store::MAX_PAGE_SIZE);
        req.foreign =
            Some(("upstream".into(), upstream["id"].as_str().unwrap_or_default().to_owned()));
        req.raw = true;
        let mut found = None;
        loop {
            let page = store.page("targets", &req).await.or_respond()?;
            if let Some(t) =
                page.data.into_iter().find(|t| t["target"].as_str() == Some(raw.as_str()))
            {
                found = Some(t);
                break;
            }
            match page.offset {
                Some(o) => req.offset = Some(o),
                None => break,
            }
        }
        found
    };
    match target {
        Some(t) if t["upstream"]["id"] == upstream["id"] => Ok(t),
        _ => Err(not_found()),
    }
}

fn install_targets(routes: &mut Routes, registry: &Registry) {
    let path = "/upstreams/{upstreams}/targets/{targets}";
    routes.on(
        path,
        Method::GET,
        handler(|ctx: Ctx| async move {
            let t = upstream_target(&ctx).await?;
            Ok(ok(&Value::Object(t)))
        }),
    );
    for m in [Method::PATCH, Method::PUT] {
        routes.on(
            path,
            m,
            handler(|ctx: Ctx| async move {
                let t = upstream_target(&ctx).await?;
                let schema = ctx.app.store.registry().get("targets").cloned().unwrap_or_default();
                let args = ctx.input.post_args(Some(&schema))?;
                let id = Key::Id(t["id"].as_str().unwrap_or_default().to_owned());
                let e = ctx.app.store.update("targets", &id, args).await.or_respond()?;
                Ok(ok(&Value::Object(e)))
            }),
        );
    }
    routes.on(
        path,
        Method::DELETE,
        handler(|ctx: Ctx| async move {
            let t = upstream_target(&ctx).await?;
            let id = Key::Id(t["id"].as_str().unwrap_or_default().to_owned());
            ctx.app.store.delete("targets", &id).await.or_respond()?;
            Ok(no_content())
        }),
    );

    let all = endpoint(
        registry,
        "targets",
        Kind::NestedCollection {
            parent: registry.get("upstreams").cloned().unwrap_or_default(),
            field: "upstream".into(),
        },
    );
    routes.on(
        "/upstreams/{upstreams}/targets/all",
        Method::GET,
        handler(move |ctx: Ctx| {
            let ep = all.clone();
            async move {
                let store = &ctx.app.store;
                let upstreams = store.registry().get("upstreams").cloned().unwrap_or_default();
                let raw_up = ctx.params.get("upstreams").cloned().unwrap_or_default();
                let up = store
                    .select("upstreams", &key_for(&upstreams, &raw_up))
                    .await
                    .or_respond()?
                    .ok_or_else(not_found)?;
                let mut req = page_request(&ctx, &ep.schema, false)?;
                req.foreign =
                    Some(("upstream".into(), up["id"].as_str().unwrap_or_default().to_owned()));
                req.raw = true;
                let page = store.page("targets", &req).await.or_respond()?;
                let next = page.offset.as_deref().map(|o| {
                    format!("/upstreams/{raw_up}/targets/all?offset={}", crate::http::escape_uri(o))
                });
                Ok(ok(&page_body(page, next)))
            }
        }),
    );
    routes.disable("/targets");
    routes.disable("/targets/{targets}");
    routes.disable("/targets/{targets}/upstream");
}

// ---- consumers ---------------------------------------------------------------------------

fn install_consumers(routes: &mut Routes, registry: &Registry) {
    let ep = endpoint(registry, "consumers", Kind::Collection);
    routes.on(
        "/consumers",
        Method::GET,
        handler(move |ctx: Ctx| {
            let ep = ep.clone();
            async move {
                if !ctx.input.query.iter().any(|(k, _)| k == "custom_id") {
                    return ep.get(ctx).await;
                }
                let custom_id = ctx.input.query_arg("custom_id").unwrap_or_default();
                if custom_id.is_empty() {
                    return Ok(message(
                        StatusCode::BAD_REQUEST,
                        "custom_id must be an unempty string",
                    ));
                }
                let found = ctx
                    .app
                    .store
                    .select("consumers", &Key::Field("custom_id".into(), json!(custom_id)))
                    .await
                    .or_respond()?;
                let data: Vec<Value> = found.into_iter().map(Value::Object).collect();
                Ok(ok(&json!({ "data": data, "next": null })))
            }
        }),
    );
}

// ---- plugins -----------------------------------------------------------------------------

/// `patch_plugin`: form bodies can only be coerced once the plugin's name is known.
async fn plugin_patch_args(ctx: &Ctx, ep: &Endpoint) -> HResult<Map<String, Value>> {
    let schema = ctx.app.store.registry().get("plugins").cloned().unwrap_or_default();
    let mut post = match &ctx.input.body {
        BodyKind::Form(pairs) => decode_pairs(pairs.clone(), MapSyntax::Allowed),
        _ => ctx.input.post_args(None)?,
    };
    if !post.contains_key("name") {
        let raw = ctx.params.get("plugins").cloned().unwrap_or_default();
        let plugin = ctx.app.store.select("plugins", &key_for(&schema, &raw)).await.or_respond()?;
        let Some(plugin) = plugin else { return Err(not_found()) };
        post.insert("name".into(), plugin["name"].clone());
    }
    let _ = ep;
    if ctx.input.is_form() {
        post = infer(post, &schema);
    }
    Ok(post)
}

fn install_plugins(routes: &mut Routes, registry: &Registry) {
    let plugins = registry.get("plugins").cloned().unwrap_or_default();
    let mut patch_endpoints = vec![(
        "/plugins/{plugins}".to_owned(),
        Arc::new(Endpoint { schema: plugins.clone(), kind: Kind::Entity }),
    )];
    for (field, reference, _) in plugins.foreign_fields() {
        let Some(parent) = registry.get(reference) else { continue };
        patch_endpoints.push((
            format!("/{}/{{{}}}/plugins/{{plugins}}", parent.api_name(), parent.name),
            Arc::new(Endpoint {
                schema: plugins.clone(),
                kind: Kind::NestedEntity { parent: parent.clone(), field: field.to_owned() },
            }),
        ));
    }
    for (path, ep) in patch_endpoints {
        routes.on(
            &path,
            Method::PATCH,
            handler(move |ctx: Ctx| {
                let ep = ep.clone();
                async move {
                    let args = plugin_patch_args(&ctx, &ep).await?;
                    ep.patch(ctx, Some(args)).await
                }
            }),
        );
    }
    routes.on(
        "/plugins/schema/{name}",
        Method::GET,
        handler(|ctx: Ctx| async move {
            let name = ctx.params.get("name").cloned().unwrap_or_default();
            let registry = ctx.app.store.registry();
            let sub = registry.get("plugins").and_then(|p| p.subschemas.get(&name).cloned());
            let Some(sub) = sub else {
                return Ok(message(StatusCode::NOT_FOUND, &format!("No plugin named '{name}'")));
            };
            let config = sub.fields.get("config").map(|f| f.to_json()).unwrap_or_else(|| json!({}));
            let fields = config.get("fields").cloned().unwrap_or_else(|| json!([]));
            let checks = config.get("entity_checks").cloned().unwrap_or_else(|| json!([]));
            Ok(ok(&json!({ "fields": fields, "entity_checks": checks })))
        }),
    );
    routes.on(
        "/plugins/enabled",
        Method::GET,
        handler(|ctx: Ctx| async move {
            Ok(ok(&json!({ "enabled_plugins": ctx.app.plugins.names() })))
        }),
    );
}

// ---- tags --------------------------------------------------------------------------------

fn install_tags(routes: &mut Routes) {
    routes.on(
        "/tags",
        Method::GET,
        handler(|ctx: Ctx| async move {
            let size =
                PageRequest::parse_size(ctx.input.query_arg("size").as_deref()).or_respond()?;
            let offset = ctx.input.query_arg("offset");
            let page = ctx.app.store.page_tags(None, size, offset.as_deref()).await.or_respond()?;
            let next = next_link(&ctx, "/tags", page.offset.as_deref());
            Ok(ok(&page_body(page, next)))
        }),
    );
    routes.on(
        "/tags/{tags}",
        Method::GET,
        handler(|ctx: Ctx| async move {
            let tag = ctx.params.get("tags").cloned().unwrap_or_default();
            let size =
                PageRequest::parse_size(ctx.input.query_arg("size").as_deref()).or_respond()?;
            let offset = ctx.input.query_arg("offset");
            let page =
                ctx.app.store.page_tags(Some(&tag), size, offset.as_deref()).await.or_respond()?;
            let next = page.offset.as_deref().map(|o| {
                format!(
                    "/tags/{}?offset={}",
                    crate::http::escape_uri(&tag),
                    crate::http::escape_uri(o)
                )
            });
            Ok(ok(&page_body(page, next)))
        }),
    );
}

pub(crate) fn install(routes: &mut Routes, registry: &Registry) {
    install_certificates(routes, registry);
    install_targets(routes, registry);
    install_consumers(routes, registry);
    install_plugins(routes, registry);
    install_tags(routes);
}
