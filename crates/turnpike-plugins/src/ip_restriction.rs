//! `ip-restriction` (`kong/plugins/ip-restriction/handler.lua`): allow or deny by the
//! client address (the forwarded one when the peer is trusted). Matching is in
//! [`crate::ip_match`].

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use turnpike_plugin_api::{BuildEnv, Ctx, Exit, Phase, Plugin, PluginFactory};

use crate::auth;
use crate::ip_match::IpRestriction;

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    allow: Option<Vec<String>>,
    #[serde(default)]
    deny: Option<Vec<String>>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    message: Option<String>,
}

pub(crate) struct Factory;

impl PluginFactory for Factory {
    bundled_meta!("ip-restriction");
    fn build(&self, config: &Value, _env: &BuildEnv<'_>) -> Result<Arc<dyn Plugin>, String> {
        let conf: Config = auth::config(config)?;
        let r = IpRestriction::new(
            conf.allow.as_deref(),
            conf.deny.as_deref(),
            conf.status,
            conf.message,
        )?;
        Ok(Arc::new(Restrict(r)))
    }
}

struct Restrict(IpRestriction);

impl Plugin for Restrict {
    fn access(&self, ctx: &mut Ctx<'_>) -> Phase {
        match self.0.check(Some(ctx.request.client_ip())) {
            None => Ok(()),
            Some(r) => Err(Exit::error(r.status, r.message)),
        }
    }
}
