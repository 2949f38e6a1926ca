//! Structured logs (text or JSON) with Kong's log levels, changeable at run time through
//! `/debug/node/log-level`.

use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::config::{Config, LOG_LEVELS};

/// Kong's nginx levels mapped onto tracing's.
fn directive(level: &str) -> String {
    let base = match level {
        "debug" => "debug",
        "info" | "notice" => "info",
        "warn" => "warn",
        _ => "error",
    };
    // sqlx and hyper are chatty below warn
    format!("{base},sqlx=warn,hyper=warn,h2=warn")
}

/// Owns the reloadable filter.
pub(crate) struct LogHandle {
    handle: reload::Handle<EnvFilter, Registry>,
    level: Mutex<String>,
}

impl turnpike_admin::LogControl for LogHandle {
    fn level(&self) -> String {
        self.level.lock().map(|l| l.clone()).unwrap_or_else(|_| "info".into())
    }

    fn set_level(&self, level: &str) -> Result<(), String> {
        if !LOG_LEVELS.contains(&level) {
            return Err(format!("unknown log level: {level}"));
        }
        let filter = EnvFilter::try_new(directive(level)).map_err(|e| e.to_string())?;
        self.handle.reload(filter).map_err(|e| e.to_string())?;
        if let Ok(mut l) = self.level.lock() {
            *l = level.to_owned();
        }
        tracing::info!(level, "log level changed");
        Ok(())
    }
}

pub(crate) fn init(cfg: &Config) -> Result<Arc<LogHandle>> {
    let filter = EnvFilter::try_new(directive(&cfg.log_level)).context("invalid log level")?;
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    if cfg.log_json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
            .ok();
    } else {
        use std::io::IsTerminal;
        let ansi = std::io::stderr().is_terminal();
        registry
            .with(tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr))
            .try_init()
            .ok();
    }
    Ok(Arc::new(LogHandle { handle, level: Mutex::new(cfg.log_level.clone()) }))
}
