//! The config path of a node with a database: watch the store's change feed, load every
//! entity the data plane needs, build a snapshot, compile it off the event loops and publish
//! it to the proxy. A failed rebuild (database down, an entity that does not compile) keeps
//! the configuration in service and is retried on the next change or poll.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::sync::watch;
use turnpike_core::snapshot::{Snapshot, SNAPSHOT_ENTITIES};
use turnpike_proxy::{ProxyConfig, ProxySettings, Publisher};
use turnpike_store::{SqlStore, Store as _};

/// Loads the entities of a snapshot from the store.
pub(crate) async fn load_snapshot(store: &SqlStore, version: u64) -> Result<Snapshot> {
    let mut rows = std::collections::HashMap::new();
    for entity in SNAPSHOT_ENTITIES {
        if store.registry().get(entity).is_none() {
            continue; // the entity of a plugin this node does not enable
        }
        let list = store
            .all(entity)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))
            .with_context(|| format!("cannot load {entity}"))?;
        rows.insert(*entity, list.into_iter().map(serde_json::Value::Object).collect::<Vec<_>>());
    }
    Ok(Snapshot::from_entities(version, |name| rows.remove(name).unwrap_or_default())?)
}

/// Builds a compiled configuration (the CPU-bound part runs on the blocking pool).
pub(crate) async fn build(
    store: &SqlStore,
    settings: &Arc<ProxySettings>,
    version: u64,
) -> Result<ProxyConfig> {
    let started = Instant::now();
    let snapshot = load_snapshot(store, version).await?;
    let loaded = started.elapsed();
    let settings = settings.clone();
    let config = tokio::task::spawn_blocking(move || ProxyConfig::compile(&snapshot, &settings))
        .await
        .context("the configuration build panicked")??;
    tracing::debug!(
        version,
        load_ms = loaded.as_millis() as u64,
        compile_ms = (started.elapsed() - loaded).as_millis() as u64,
        "configuration built"
    );
    Ok(config)
}

/// Rebuilds and publishes the configuration whenever the store reports a change.
pub(crate) async fn run(
    store: Arc<SqlStore>,
    settings: Arc<ProxySettings>,
    publisher: Publisher,
    mut changes: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut version = publisher.version();
    // a rebuild that failed is tried again after a while even without a new change
    let mut retry: Option<Duration> = None;
    loop {
        let wait_retry = async {
            match retry {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            _ = wait_retry => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        changes.borrow_and_update();
        version += 1;
        let started = Instant::now();
        match build(&store, &settings, version).await {
            Ok(config) => {
                let routes = config.route_count();
                publisher.publish(config);
                retry = None;
                tracing::info!(
                    version,
                    routes,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "configuration updated"
                );
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "configuration update failed; serving the previous one");
                retry = Some(Duration::from_secs(2));
            }
        }
    }
}
