//! `request-size-limiting` (`kong/plugins/request-size-limiting/handler.lua`): refuses
//! request bodies over `allowed_payload_size`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use turnpike_plugin_api::{BuildEnv, Ctx, Exit, Phase, Plugin, PluginFactory};

use crate::auth;

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default = "default_size")]
    allowed_payload_size: u64,
    #[serde(default = "megabytes")]
    size_unit: String,
    #[serde(default)]
    require_content_length: bool,
}

fn default_size() -> u64 {
    128
}

fn megabytes() -> String {
    "megabytes".into()
}

pub(crate) struct Factory;

impl PluginFactory for Factory {
    bundled_meta!("request-size-limiting");
    fn build(&self, config: &Value, _env: &BuildEnv<'_>) -> Result<Arc<dyn Plugin>, String> {
        let conf: Config = auth::config(config)?;
        let unit: u64 = match conf.size_unit.as_str() {
            "bytes" => 1,
            "kilobytes" => 1024,
            _ => 1_048_576,
        };
        let limit = conf.allowed_payload_size.saturating_mul(unit);
        Ok(Arc::new(SizeLimit { limit, require_content_length: conf.require_content_length }))
    }
}

struct SizeLimit {
    limit: u64,
    require_content_length: bool,
}

impl Plugin for SizeLimit {
    fn access(&self, ctx: &mut Ctx<'_>) -> Phase {
        let cl =
            ctx.request.header_str("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        match cl {
            Some(n) if n > self.limit => {
                let expect = ctx
                    .request
                    .header_str("expect")
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"));
                Err(Exit::error(if expect { 417 } else { 413 }, "Request size limit exceeded"))
            }
            Some(_) => Ok(()),
            None => {
                let chunked = ctx.request.header_str("transfer-encoding") == Some("chunked");
                if self.require_content_length && !chunked {
                    return Err(Exit::error(411, "A valid Content-Length header is required"));
                }
                // a body without a length is measured as it streams (Kong reads it whole)
                let limit = ctx.state.body_limit.map_or(self.limit, |l| l.min(self.limit));
                ctx.state.body_limit = Some(limit);
                Ok(())
            }
        }
    }
}
