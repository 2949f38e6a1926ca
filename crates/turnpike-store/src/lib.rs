//! Turnpike's datastore: the [`Store`] trait, its SQL backends (SQLite, the embedded default,
//! and PostgreSQL), migrations, and the DAO layer that gives every write Kong's semantics.
//!
//! The DAO layer ([`dao`]) validates with the schemas of `turnpike-core`, resolves foreign keys
//! given by endpoint key, enforces restrict/cascade on delete, keeps the `tags` index, and maps
//! database constraint violations to Kong's error bodies. Every write runs in one transaction:
//! a failed write leaves the store unchanged.
//!
//! Every write that changes configuration also increments the database's `config_version` in
//! its transaction (and, on PostgreSQL, sends a notification at commit), so that every node
//! can rebuild its configuration: [`Store::changes`] ticks at once for writes through this
//! store, and, with [`SqlStore::spawn_change_watcher`] running, for writes by other nodes.
//!
//! This is the only crate that speaks SQL. It must not depend on the Admin API or the proxy.

mod config;
mod dao;
mod error;
mod feed;
pub mod migrations;
mod page;
mod sql;
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::watch;
use turnpike_core::entities::Registry;
use turnpike_core::errors::DaoError;
use turnpike_core::schema::Entity;

pub use config::{DbConfig, PgConfig};
pub use error::StoreError;
pub use feed::{ChangeWatcher, WatcherConfig};
pub use page::{Page, PageRequest, TagFilter, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use sql::{Dialect, SqlStore};

/// How an entity is addressed: by primary key or by a unique field (the endpoint key).
#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    Id(String),
    Field(String, Value),
}

impl Key {
    /// The key as Kong prints it in not-found errors (`{id="…"}` / `{name="…"}`).
    pub fn to_json(&self) -> Value {
        match self {
            Key::Id(id) => serde_json::json!({ "id": id }),
            Key::Field(f, v) => serde_json::json!({ f.as_str(): v }),
        }
    }
}

/// Which backend a store runs on (reported as `configuration.database`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// DB-less: read-only, configuration from a declarative file.
    Off,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Off => "off",
        }
    }
}

/// The datastore, as the Admin API and the configuration builder see it.
///
/// Entity names are schema names (`services`, `key_sets`); inputs are request bodies already
/// decoded into JSON; outputs are shaped for the API (every field present, unset ones null).
#[async_trait]
pub trait Store: Send + Sync {
    fn registry(&self) -> &Arc<Registry>;
    fn backend(&self) -> Backend;

    /// Reads one entity; `Ok(None)` when it does not exist.
    async fn select(&self, entity: &str, key: &Key) -> Result<Option<Entity>, DaoError>;

    /// Reads a page of a collection (optionally the children of one parent, or filtered by tags).
    async fn page(&self, entity: &str, req: &PageRequest) -> Result<Page, DaoError>;

    /// Creates an entity (`POST`).
    async fn insert(&self, entity: &str, input: Entity) -> Result<Entity, DaoError>;

    /// Partially updates an entity (`PATCH`); not-found is an error.
    async fn update(&self, entity: &str, key: &Key, input: Entity) -> Result<Entity, DaoError>;

    /// Creates or replaces an entity (`PUT`).
    async fn upsert(&self, entity: &str, key: &Key, input: Entity) -> Result<Entity, DaoError>;

    /// Deletes an entity (and its cascading children); deleting a missing entity succeeds.
    async fn delete(&self, entity: &str, key: &Key) -> Result<(), DaoError>;

    /// `GET /tags` and `GET /tags/{tag}`.
    async fn page_tags(
        &self,
        tag: Option<&str>,
        size: usize,
        offset: Option<&str>,
    ) -> Result<Page, DaoError>;

    /// Every row of one entity, for snapshot building and export.
    async fn all(&self, entity: &str) -> Result<Vec<Entity>, DaoError>;

    /// Whether the database answers.
    async fn ping(&self) -> bool;

    /// The configuration version: a counter in the database that every configuration write
    /// increments, on any node, in the transaction that makes the change.
    async fn config_version(&self) -> Result<u64, DaoError>;

    /// Ticks when this node learns that the configuration changed: at once when a write through
    /// this store commits, and (with a change watcher running, see
    /// [`SqlStore::spawn_change_watcher`]) when another node's write is noticed. The value only
    /// counts ticks; read [`Store::config_version`] for the version. The config path listens
    /// to it.
    fn changes(&self) -> watch::Receiver<u64>;
}
