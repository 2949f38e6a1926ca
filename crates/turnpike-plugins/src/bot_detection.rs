//! `bot-detection` (`kong/plugins/bot-detection/handler.lua`): refuses User-Agents that match
//! the deny list or Kong's built-in bot rules, unless the allow list matches.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use turnpike_plugin_api::{BuildEnv, Ctx, Exit, Phase, Plugin, PluginFactory};

use crate::auth;
use crate::bot_rules::{BotDetector, BotVerdict};

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    allow: Option<Vec<String>>,
    #[serde(default)]
    deny: Option<Vec<String>>,
}

pub(crate) struct Factory;

impl PluginFactory for Factory {
    bundled_meta!("bot-detection");
    fn build(&self, config: &Value, _env: &BuildEnv<'_>) -> Result<Arc<dyn Plugin>, String> {
        let conf: Config = auth::config(config)?;
        let detector = BotDetector::new(
            conf.allow.as_deref().unwrap_or_default(),
            conf.deny.as_deref().unwrap_or_default(),
        )?;
        Ok(Arc::new(Bots(detector)))
    }
}

struct Bots(BotDetector);

impl Plugin for Bots {
    fn access(&self, ctx: &mut Ctx<'_>) -> Phase {
        let mut values: Vec<Vec<u8>> = Vec::new();
        ctx.request.header_values("user-agent", &mut |v| values.push(v.to_vec()));
        match self.0.verdict(&values) {
            BotVerdict::Pass => Ok(()),
            BotVerdict::Reject { status, message } => Err(Exit::error(status, message)),
        }
    }
}
