//! The SQL backends: connection pools for SQLite and PostgreSQL behind sqlx's `Any` driver,
//! a small query builder that writes each dialect's placeholders, and the mapping of
//! constraint violations to Kong's errors.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::AnyConnection;
use sqlx::{AnyPool, Row};
use tokio::sync::watch;
use turnpike_core::entities::Registry;
use turnpike_core::errors::DaoError;
use turnpike_core::schema::{Entity, Schema};

use crate::config::{DbConfig, PgConfig};
use crate::error::StoreError;
use crate::feed::{channel_name, read_version, ChangeFeed};

/// The SQL dialect of a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound query parameter.
#[derive(Clone, Debug)]
pub(crate) enum P {
    T(Option<String>),
    I(i64),
}

/// A query under construction, with placeholders in the dialect's syntax.
pub(crate) struct Q {
    sql: String,
    params: Vec<P>,
    dialect: Dialect,
}

impl Q {
    pub(crate) fn new(dialect: Dialect, sql: &str) -> Self {
        Self { sql: sql.to_owned(), params: Vec::new(), dialect }
    }

    pub(crate) fn sql(&mut self, s: &str) -> &mut Self {
        self.sql.push_str(s);
        self
    }

    /// Appends a placeholder bound to `p`.
    pub(crate) fn arg(&mut self, p: P) -> &mut Self {
        self.params.push(p);
        match self.dialect {
            Dialect::Sqlite => self.sql.push('?'),
            Dialect::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.params.len().to_string());
            }
        }
        self
    }

    pub(crate) fn text(&mut self, s: impl Into<String>) -> &mut Self {
        self.arg(P::T(Some(s.into())))
    }

    /// `(?, ?, ?)` for a list of strings.
    pub(crate) fn text_list(&mut self, items: &[String]) -> &mut Self {
        self.sql.push('(');
        for (i, s) in items.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.text(s.clone());
        }
        self.sql.push(')');
        self
    }

    fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.sql);
        for p in &self.params {
            q = match p {
                P::T(v) => q.bind(v.clone()),
                P::I(v) => q.bind(*v),
            };
        }
        q
    }

    pub(crate) async fn execute(&self, conn: &mut AnyConnection) -> Result<u64, sqlx::Error> {
        Ok(self.query().execute(conn).await?.rows_affected())
    }

    pub(crate) async fn fetch_all(
        &self,
        conn: &mut AnyConnection,
    ) -> Result<Vec<AnyRow>, sqlx::Error> {
        self.query().fetch_all(conn).await
    }

    pub(crate) async fn fetch_optional(
        &self,
        conn: &mut AnyConnection,
    ) -> Result<Option<AnyRow>, sqlx::Error> {
        self.query().fetch_optional(conn).await
    }
}

/// Reads the `entity` column (JSON text) of a row.
pub(crate) fn row_entity(row: &AnyRow, col: &str) -> Result<Entity, DaoError> {
    let text: String = row.try_get(col).map_err(db_error)?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(o)) => Ok(o),
        _ => Err(DaoError::database_error("stored entity is not a JSON object")),
    }
}

/// Any database failure that is not a constraint violation: logged, answered with a 500.
pub(crate) fn db_error(e: sqlx::Error) -> DaoError {
    tracing::error!(error = %e, "database error");
    DaoError::database_error(e.to_string())
}

/// The constraint a database error violated, as (kind, column).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Violation {
    Unique(String),
    ForeignKey(Option<String>),
}

/// Classifies a unique / foreign-key violation and extracts the column involved.
pub(crate) fn violation(e: &sqlx::Error, table: &str) -> Option<Violation> {
    let sqlx::Error::Database(db) = e else { return None };
    let msg = db.message();
    match db.kind() {
        sqlx::error::ErrorKind::UniqueViolation => {
            // PostgreSQL: constraint "<table>_<col>_key" / "<table>_pkey";
            // SQLite: "UNIQUE constraint failed: <table>.<col>".
            if let Some(c) = db.constraint() {
                let col = c
                    .strip_prefix(&format!("{table}_"))
                    .map(|rest| {
                        if rest == "pkey" {
                            "id".to_owned()
                        } else {
                            rest.strip_suffix("_key").unwrap_or(rest).to_owned()
                        }
                    })
                    .unwrap_or_else(|| c.to_owned());
                return Some(Violation::Unique(col));
            }
            let col = msg
                .rsplit_once(&format!("{table}."))
                .map(|(_, c)| c.split(',').next().unwrap_or(c).trim().to_owned())
                .unwrap_or_default();
            Some(Violation::Unique(col))
        }
        sqlx::error::ErrorKind::ForeignKeyViolation => {
            let col = db.constraint().and_then(|c| {
                c.strip_prefix(&format!("{table}_"))
                    .and_then(|r| r.strip_suffix("_id_fkey"))
                    .map(str::to_owned)
            });
            Some(Violation::ForeignKey(col))
        }
        _ => None,
    }
}

/// A store on SQLite or PostgreSQL.
pub struct SqlStore {
    pub(crate) registry: Arc<Registry>,
    pub(crate) dialect: Dialect,
    /// Writes (and reads inside write transactions). One connection for SQLite, which
    /// serializes writers anyway.
    pub(crate) writer: AnyPool,
    /// Reads.
    pub(crate) reader: AnyPool,
    pub(crate) ws_id: String,
    /// What `changes()` hands out, and the newest configuration version announced on it.
    pub(crate) feed: Arc<ChangeFeed>,
    /// The PostgreSQL settings the pools were opened with (the change watcher's LISTEN
    /// connection uses them too).
    pub(crate) pg: Option<PgConfig>,
    /// The PostgreSQL NOTIFY channel of this store's schema.
    pub(crate) channel: Option<String>,
    /// Tells change watchers to stop (on `close`; dropping the store closes the channel).
    pub(crate) shutdown: watch::Sender<()>,
    /// DB-less mode: the database only mirrors the declarative configuration for the Admin
    /// API's reads; `backend()` says `off` and only [`SqlStore::import`] writes.
    pub(crate) dbless: bool,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").field("dialect", &self.dialect).finish()
    }
}

/// Opens connection pools for the configured database (no schema checks).
pub(crate) async fn connect(cfg: &DbConfig) -> Result<(Dialect, AnyPool, AnyPool), StoreError> {
    sqlx::any::install_default_drivers();
    match cfg {
        DbConfig::Sqlite { path } => {
            if let Some(parent) = path.parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StoreError::Open(format!("{}: {e}", parent.display())))?;
                }
            }
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let setup = |max: u32| {
                AnyPoolOptions::new()
                    .max_connections(max)
                    .min_connections(0)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            Ok(())
                        })
                    })
            };
            let writer = setup(1)
                .connect(&url)
                .await
                .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
            let reader = setup(4)
                .connect(&url)
                .await
                .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
            Ok((Dialect::Sqlite, writer, reader))
        }
        DbConfig::Postgres(pg) => {
            let pool = AnyPoolOptions::new()
                .max_connections(pg.max_connections.max(2))
                .acquire_timeout(Duration::from_millis(pg.timeout_ms.max(1000)))
                .connect(&pg.to_url())
                .await
                .map_err(|e| StoreError::Open(format!("{}:{}: {e}", pg.host, pg.port)))?;
            Ok((Dialect::Postgres, pool.clone(), pool))
        }
    }
}

impl SqlStore {
    /// Connects and checks that the schema is bootstrapped and up to date.
    pub async fn open(cfg: &DbConfig, registry: Arc<Registry>) -> Result<Self, StoreError> {
        let (dialect, writer, reader) = connect(cfg).await?;
        let mut conn = writer.acquire().await?;
        match crate::migrations::state_on(&mut conn, dialect).await? {
            crate::migrations::State::NeedsBootstrap => return Err(StoreError::NeedsBootstrap),
            crate::migrations::State::Pending(p) => {
                return Err(StoreError::PendingMigrations(p.join(", ")))
            }
            crate::migrations::State::UpToDate => {}
        }
        let ws_id = crate::migrations::default_workspace(&mut conn, dialect).await?;
        let version = read_version(&mut conn, dialect).await?;
        let channel = match dialect {
            Dialect::Sqlite => None,
            Dialect::Postgres => {
                // the schema the tables live in, whether `pg_schema` names it or not
                let row = Q::new(dialect, "SELECT CAST(current_schema() AS TEXT)")
                    .fetch_optional(&mut conn)
                    .await?;
                let schema: Option<String> = match row {
                    Some(r) => r.try_get(0)?,
                    None => None,
                };
                Some(channel_name(schema.as_deref().unwrap_or("public")))
            }
        };
        drop(conn);
        let pg = match cfg {
            DbConfig::Postgres(pg) => Some(pg.clone()),
            DbConfig::Sqlite { .. } => None,
        };
        let (shutdown, _) = watch::channel(());
        Ok(Self {
            registry,
            dialect,
            writer,
            reader,
            ws_id,
            feed: Arc::new(ChangeFeed::new(version)),
            pg,
            channel,
            shutdown,
            dbless: false,
        })
    }

    /// A store for DB-less mode: a fresh embedded database at `path` (any previous file is
    /// removed) that holds the declarative configuration for the Admin API's reads.
    pub async fn open_dbless(
        path: &std::path::Path,
        registry: Arc<Registry>,
    ) -> Result<Self, StoreError> {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(std::path::PathBuf::from(p));
        }
        let cfg = DbConfig::Sqlite { path: path.to_owned() };
        crate::migrations::up(&cfg, true).await?;
        let mut store = Self::open(&cfg, registry).await?;
        store.dbless = true;
        Ok(store)
    }

    /// The schema of an entity known to this store.
    pub(crate) fn schema(&self, name: &str) -> Result<Arc<Schema>, DaoError> {
        self.registry
            .get(name)
            .cloned()
            .ok_or_else(|| DaoError::database_error(format!("unknown entity '{name}'")))
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The PostgreSQL channel on which configuration writes are announced
    /// (`turnpike_config_<schema>`, see [`SqlStore::spawn_change_watcher`]); `None` on SQLite.
    pub fn notify_channel(&self) -> Option<&str> {
        self.channel.as_deref()
    }

    /// Stops the change watchers and closes the pools (used by tests and on shutdown).
    pub async fn close(&self) {
        self.shutdown.send_replace(());
        self.writer.close().await;
        self.reader.close().await;
    }
}
