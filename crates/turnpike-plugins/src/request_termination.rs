//! `request-termination` (`kong/plugins/request-termination/handler.lua`): answers every
//! request (or those carrying the `trigger` header or query argument) with a fixed response.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use turnpike_plugin_api::phase::{body_kind, parse_args, BodyKind};
use turnpike_plugin_api::{BuildEnv, Ctx, Exit, ExitBody, NodeInfo, Phase, Plugin, PluginFactory};

use crate::auth;

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default = "unavailable")]
    status_code: u16,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    echo: bool,
    #[serde(default)]
    trigger: Option<String>,
}

fn unavailable() -> u16 {
    503
}

/// Kong's default message for a status (`DEFAULT_RESPONSE`).
fn default_message(status: u16) -> Option<&'static str> {
    Some(match status {
        401 => "Unauthorized",
        404 => "Not found",
        405 => "Method not allowed",
        500 => "An unexpected error occurred",
        502 => "Bad Gateway",
        503 => "Service unavailable",
        _ => return None,
    })
}

pub(crate) struct Factory;

impl PluginFactory for Factory {
    bundled_meta!("request-termination");
    fn build(&self, config: &Value, env: &BuildEnv<'_>) -> Result<Arc<dyn Plugin>, String> {
        let conf: Config = auth::config(config)?;
        Ok(Arc::new(Termination { conf, node: env.node.clone() }))
    }
}

struct Termination {
    conf: Config,
    node: NodeInfo,
}

impl Termination {
    /// Kong's `echo` body: the request as the gateway saw it.
    fn echo(&self, ctx: &Ctx<'_>, message: Option<&str>) -> Value {
        let r = ctx.request;
        // header names lowercase; a repeated header becomes an array (`kong.request.get_headers`)
        let mut headers = serde_json::Map::new();
        r.for_each_header(&mut |name, value| {
            let name = name.to_ascii_lowercase();
            let value = Value::String(String::from_utf8_lossy(value).into_owned());
            match headers.get_mut(&name) {
                Some(Value::Array(list)) => list.push(value),
                Some(first) => *first = Value::Array(vec![first.take(), value]),
                None => {
                    headers.insert(name, value);
                }
            }
        });
        let mut query = serde_json::Map::new();
        for (k, v) in r.query_args() {
            let v = Value::String(v);
            match query.get_mut(&k) {
                Some(Value::Array(list)) => list.push(v),
                Some(first) => *first = Value::Array(vec![first.take(), v]),
                None => {
                    query.insert(k, v);
                }
            }
        }
        let raw_body = r.body().map(|b| String::from_utf8_lossy(b).into_owned());
        let body = r.body().and_then(|b| match body_kind(r.header_str("content-type")) {
            Some(BodyKind::Json) => serde_json::from_slice::<Value>(b).ok(),
            Some(BodyKind::Form) => Some(Value::Object(
                parse_args(std::str::from_utf8(b).unwrap_or_default())
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            )),
            None => None,
        });
        let mut echo = json!({
            "message": message,
            "kong": {
                "node_id": self.node.id,
                "worker_pid": std::process::id(),
                "hostname": self.node.hostname,
            },
            "request": {
                "scheme": r.forwarded_scheme(),
                "host": r.host(),
                "port": r.port(),
                "headers": headers,
                "query": query,
                "raw_body": raw_body,
                "method": r.method(),
                "path": r.path(),
                "uri_captures": { "named": {}, "unnamed": [] },
            },
            "matched_route": { "id": ctx.route_id },
            "matched_service": ctx.service_id.map(|id| json!({ "id": id })),
        });
        // `kong.request.get_body()` is nil for a body it cannot decode: the key is absent
        if let (Some(b), Some(req)) = (body, echo.get_mut("request").and_then(Value::as_object_mut))
        {
            req.insert("body".into(), b);
        }
        echo
    }
}

impl Plugin for Termination {
    fn needs_body(&self) -> bool {
        self.conf.echo
    }

    fn access(&self, ctx: &mut Ctx<'_>) -> Phase {
        let status = self.conf.status_code;
        if let Some(trigger) = &self.conf.trigger {
            let in_header = ctx.request.header(trigger).is_some();
            let in_query = ctx.request.query_args().iter().any(|(k, _)| k == trigger);
            if !in_header && !in_query {
                return Ok(());
            }
        }
        let message = self.conf.message.as_deref().or(default_message(status));
        if self.conf.echo {
            return Err(Exit::json(status, self.echo(ctx, message)));
        }
        if let Some(body) = &self.conf.body {
            return Err(Exit {
                status,
                headers: Vec::new(),
                body: ExitBody::Raw {
                    content_type: self.conf.content_type.clone(),
                    body: body.as_bytes().to_vec(),
                },
            });
        }
        match message {
            Some(m) => Err(Exit::json(status, json!({ "message": m }))),
            None => Err(Exit { status, headers: Vec::new(), body: ExitBody::Empty }),
        }
    }
}
