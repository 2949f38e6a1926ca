//! `request-termination` (`kong/plugins/request-termination/handler.lua`): answers every
//! request (or those carrying the `trigger` header or query argument) with a fixed response.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use turnpike_plugin_api::{BuildEnv, Ctx, Exit, ExitBody, Phase, Plugin, PluginFactory};

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
    fn name(&self) -> &'static str {
        "request-termination"
    }
    fn priority(&self) -> i64 {
        2
    }
    fn schema(&self) -> turnpike_core::schema::Schema {
        crate::schemas::plugin_schema("request-termination").unwrap_or_default()
    }
    fn build(&self, config: &Value, _env: &BuildEnv<'_>) -> Result<Arc<dyn Plugin>, String> {
        let conf: Config = auth::config(config)?;
        Ok(Arc::new(Termination { conf }))
    }
}

struct Termination {
    conf: Config,
}

impl Termination {
    fn echo(&self, ctx: &Ctx<'_>, message: Option<&str>) -> Value {
        let mut headers = serde_json::Map::new();
        let mut names: Vec<String> = Vec::new();
        for name in ["host", "user-agent", "accept", "content-type", "content-length"] {
            if ctx.request.header(name).is_some() {
                names.push(name.to_owned());
            }
        }
        for n in names {
            if let Some(v) = ctx.request.header_str(&n) {
                headers.insert(n, Value::String(v.to_owned()));
            }
        }
        let query: serde_json::Map<String, Value> =
            ctx.request.query_args().into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        json!({
            "message": message,
            "request": {
                "scheme": ctx.request.forwarded_scheme(),
                "headers": headers,
                "query": query,
                "method": ctx.request.method(),
                "path": ctx.request.path(),
            },
            "matched_route": { "id": ctx.route_id },
            "matched_service": ctx.service_id.map(|id| json!({ "id": id })),
        })
    }
}

impl Plugin for Termination {
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
