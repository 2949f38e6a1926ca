//! Structured logs (text or JSON) with Kong's log levels, changeable at run time through
//! `/debug/node/log-level`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

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
    configured: String,
    generation: AtomicU64,
    me: OnceLock<Weak<LogHandle>>,
}

impl turnpike_admin::LogControl for LogHandle {
    fn level(&self) -> String {
        self.level.lock().map(|l| l.clone()).unwrap_or_else(|_| "info".into())
    }

    fn set_level(&self, level: &str, timeout_secs: u64) -> Result<(), String> {
        self.apply(level)?;
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(level, timeout_secs, "log level changed");
        if timeout_secs > 0 {
            // Kong's dynamic log level is temporary: back to the configured level afterwards
            let configured = self.configured.clone();
            let me = self.me.get().and_then(std::sync::Weak::upgrade);
            if let (Ok(rt), Some(me)) = (tokio::runtime::Handle::try_current(), me) {
                rt.spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(timeout_secs)).await;
                    if me.generation.load(Ordering::SeqCst) == generation {
                        let _ = me.apply(&configured);
                        tracing::info!(level = %configured, "log level restored");
                    }
                });
            }
        }
        Ok(())
    }
}

impl LogHandle {
    fn apply(&self, level: &str) -> Result<(), String> {
        if !LOG_LEVELS.contains(&level) {
            return Err(format!("unknown log level: {level}"));
        }
        let filter = EnvFilter::try_new(directive(level)).map_err(|e| e.to_string())?;
        self.handle.reload(filter).map_err(|e| e.to_string())?;
        if let Ok(mut l) = self.level.lock() {
            *l = level.to_owned();
        }
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
    let h = Arc::new(LogHandle {
        handle,
        level: Mutex::new(cfg.log_level.clone()),
        configured: cfg.log_level.clone(),
        generation: AtomicU64::new(0),
        me: OnceLock::new(),
    });
    let _ = h.me.set(Arc::downgrade(&h));
    Ok(h)
}
