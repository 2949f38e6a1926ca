//! DB-less mode (`database = off`): the configuration is a declarative document, loaded at
//! start from `declarative_config` / `declarative_config_string` and replaced whole by
//! `POST /config`.
//!
//! A load parses and validates the document off the event loops, then applies it in two
//! halves at once: the proxy configuration is compiled straight from the flattened entities
//! and published atomically (in-flight requests finish on the old one), and the embedded
//! database that serves the Admin API's reads is rewritten in one transaction. One load runs
//! at a time; a second one meanwhile is refused (429), as Kong refuses it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{Context as _, Result};
use md5::{Digest, Md5};
use serde_json::{Map, Value};
use turnpike_admin::{Declarative, DeclarativeInput, LoadError, Loaded};
use turnpike_core::declarative::{self, DeclarativeError, Flat, Limits};
use turnpike_core::entities::Registry;
use turnpike_core::snapshot::Snapshot;
use turnpike_proxy::{ProxyConfig, ProxySettings, Publisher};
use turnpike_store::SqlStore;

/// The hash before any configuration (Kong's `DECLARATIVE_EMPTY_CONFIG_HASH`).
pub(crate) const EMPTY_HASH: &str = "00000000000000000000000000000000";

pub(crate) struct DbLess {
    store: Arc<SqlStore>,
    registry: Arc<Registry>,
    settings: Arc<ProxySettings>,
    publisher: OnceLock<Publisher>,
    hash: Mutex<String>,
    loading: tokio::sync::Mutex<()>,
    version: AtomicU64,
    limits: Limits,
}

/// Runs CPU-heavy configuration work (parsing, validating, compiling) on a thread of its own
/// with a lower scheduling priority than the proxy's workers: on a busy node a reload takes a
/// little longer instead of taking CPU from requests. (On Linux the priority is per thread.)
async fn background<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("config-load".into())
        .spawn(move || {
            let _ = rustix::process::setpriority_process(None, 10);
            let _ = tx.send(f());
        })
        .map_err(|e| format!("cannot start the configuration thread: {e}"))?;
    rx.await.map_err(|_| "the configuration thread failed".to_owned())
}

fn md5_hex(bytes: &[u8]) -> String {
    let digest = Md5::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The entities as Kong's `POST /config` returns them: by type, then by id (serialized
/// straight from the rows, without a copy of them).
struct EntitiesBody<'a>(&'a Flat);

struct ById<'a>(&'a [Map<String, Value>]);

impl serde::Serialize for ById<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            self.0.iter().map(|r| (r.get("id").and_then(Value::as_str).unwrap_or_default(), r)),
        )
    }
}

impl serde::Serialize for EntitiesBody<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.entities.iter().map(|(name, rows)| (name, ById(rows))))
    }
}

fn entities_body(flat: &Flat) -> Vec<u8> {
    serde_json::to_vec(&EntitiesBody(flat)).unwrap_or_default()
}

/// A snapshot straight from the flattened entities (no database round trip).
pub(crate) fn snapshot_of(flat: &Flat, version: u64) -> Result<Snapshot> {
    Ok(Snapshot::from_rows(version, |name| flat.rows(name))?)
}

impl DbLess {
    pub(crate) fn new(
        store: Arc<SqlStore>,
        registry: Arc<Registry>,
        settings: Arc<ProxySettings>,
    ) -> Self {
        Self {
            store,
            registry,
            settings,
            publisher: OnceLock::new(),
            hash: Mutex::new(EMPTY_HASH.to_owned()),
            loading: tokio::sync::Mutex::new(()),
            version: AtomicU64::new(1),
            limits: Limits::default(),
        }
    }

    /// Hands over the running proxy's publisher (the first configuration was built before
    /// the proxy started).
    pub(crate) fn set_publisher(&self, p: Publisher) {
        let _ = self.publisher.set(p);
    }

    /// Parses and validates a document (CPU-bound: on the blocking pool).
    /// Returns the flattened configuration, its hash, and the response body (all built on
    /// the configuration thread).
    async fn flatten(
        &self,
        input: DeclarativeInput,
    ) -> Result<(Flat, String, Vec<u8>), DeclarativeError> {
        let registry = self.registry.clone();
        let limits = self.limits;
        background(move || match input {
            DeclarativeInput::Text(text) => {
                let hash = md5_hex(&text);
                let flat = declarative::load(&text, &registry, &limits)?;
                let body = entities_body(&flat);
                Ok((flat, hash, body))
            }
            DeclarativeInput::Document(doc) => {
                let flat = declarative::flatten(doc, &registry)?;
                let body = entities_body(&flat);
                let hash = md5_hex(&body);
                Ok((flat, hash, body))
            }
        })
        .await
        .unwrap_or_else(|e| Err(DeclarativeError::Parse(declarative::ParseError::Syntax(e))))
    }

    /// Applies a validated configuration: the proxy's and the Admin API's, together.
    async fn apply(&self, flat: Flat, hash: String) -> Result<(), String> {
        let started = Instant::now();
        let version = self.version.fetch_add(1, Ordering::Relaxed) + 1;
        let flat = Arc::new(flat);
        let compile = {
            let flat = flat.clone();
            let settings = self.settings.clone();
            background(move || -> Result<ProxyConfig, String> {
                let snap = snapshot_of(&flat, version).map_err(|e| format!("{e:#}"))?;
                ProxyConfig::compile(&snap, &settings).map_err(|e| e.to_string())
            })
        };
        let import = self.store.import(&flat, true);
        let (compiled, imported) = tokio::join!(compile, import);
        let config = compiled??;
        let n = imported.map_err(|e| e.message)?;
        if let Some(p) = self.publisher.get() {
            p.publish(config);
        }
        *self.hash.lock().unwrap_or_else(|e| e.into_inner()) = hash;
        tracing::info!(
            entities = n,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "declarative configuration loaded"
        );
        Ok(())
    }

    /// The first configuration, before the proxy starts: returns it compiled.
    pub(crate) async fn initial(&self, text: Option<Vec<u8>>) -> Result<ProxyConfig> {
        let flat = match text {
            Some(t) => {
                let (flat, hash, _) = self
                    .flatten(DeclarativeInput::Text(t))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .context("the declarative configuration is invalid")?;
                self.store
                    .import(&flat, true)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
                *self.hash.lock().unwrap_or_else(|e| e.into_inner()) = hash;
                flat
            }
            None => Flat::default(),
        };
        let snap = snapshot_of(&flat, 1)?;
        let settings = self.settings.clone();
        let config = tokio::task::spawn_blocking(move || ProxyConfig::compile(&snap, &settings))
            .await
            .context("the configuration build panicked")??;
        Ok(config)
    }
}

impl Declarative for DbLess {
    fn load(
        &self,
        input: DeclarativeInput,
        check_hash: bool,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Loaded, LoadError>> + Send + '_>>
    {
        Box::pin(async move {
            let Ok(_guard) = self.loading.try_lock() else {
                return Err(LoadError::Busy { retry_after: 1 });
            };
            if check_hash {
                if let DeclarativeInput::Text(t) = &input {
                    if md5_hex(t) == self.hash() {
                        return Ok(Loaded::Unchanged);
                    }
                }
            }
            let (flat, hash, body) = self.flatten(input).await.map_err(LoadError::Invalid)?;
            if check_hash && hash == self.hash() {
                return Ok(Loaded::Unchanged);
            }
            self.apply(flat, hash).await.map_err(LoadError::Failed)?;
            Ok(Loaded::Entities(body))
        })
    }

    fn hash(&self) -> String {
        self.hash.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn export(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + '_>>
    {
        Box::pin(async move { crate::export::export_yaml(&*self.store).await })
    }
}
