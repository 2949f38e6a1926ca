//! Schema migrations, one SQL script per backend and step.
//!
//! `bootstrap` creates the bookkeeping table, runs every migration and creates the default
//! workspace; `up` runs pending migrations; `list` shows what ran; `reset` drops everything.
//! A migration runs in one transaction together with its bookkeeping row.

use sqlx::AnyConnection;
use sqlx::Row;

use crate::config::DbConfig;
use crate::error::StoreError;
use crate::sql::{connect, Dialect, Q};

/// One migration step.
pub struct Migration {
    pub name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "000_base",
        sqlite: include_str!("../migrations/sqlite/000_base.sql"),
        postgres: include_str!("../migrations/postgres/000_base.sql"),
    },
    Migration {
        name: "001_config_version",
        sqlite: include_str!("../migrations/sqlite/001_config_version.sql"),
        postgres: include_str!("../migrations/postgres/001_config_version.sql"),
    },
    Migration {
        name: "002_plugin_credentials",
        sqlite: include_str!("../migrations/sqlite/002_plugin_credentials.sql"),
        postgres: include_str!("../migrations/postgres/002_plugin_credentials.sql"),
    },
];

/// Where a database stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    NeedsBootstrap,
    Pending(Vec<String>),
    UpToDate,
}

/// An executed migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    pub name: String,
    pub executed_at: i64,
}

fn statements(script: &str) -> Vec<String> {
    let without_comments: String =
        script.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
    without_comments.split(';').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
}

async fn has_meta(conn: &mut AnyConnection, d: Dialect) -> Result<bool, StoreError> {
    let sql = match d {
        Dialect::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        }
        Dialect::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
        }
    };
    Ok(Q::new(d, sql).fetch_optional(conn).await?.is_some())
}

async fn executed_on(conn: &mut AnyConnection, d: Dialect) -> Result<Vec<Executed>, StoreError> {
    let rows = Q::new(d, "SELECT name, executed_at FROM schema_migrations ORDER BY name")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok(Executed { name: r.try_get(0)?, executed_at: r.try_get(1)? }))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(StoreError::from)
}

pub(crate) async fn state_on(conn: &mut AnyConnection, d: Dialect) -> Result<State, StoreError> {
    if !has_meta(conn, d).await? {
        return Ok(State::NeedsBootstrap);
    }
    let done: Vec<String> = executed_on(conn, d).await?.into_iter().map(|e| e.name).collect();
    let pending: Vec<String> = MIGRATIONS
        .iter()
        .filter(|m| !done.iter().any(|d| d == m.name))
        .map(|m| m.name.to_owned())
        .collect();
    Ok(if pending.is_empty() { State::UpToDate } else { State::Pending(pending) })
}

async fn run_one(conn: &mut AnyConnection, d: Dialect, m: &Migration) -> Result<(), StoreError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    let script = match d {
        Dialect::Sqlite => m.sqlite,
        Dialect::Postgres => m.postgres,
    };
    for stmt in statements(script) {
        Q::new(d, &stmt).execute(&mut tx).await?;
    }
    Q::new(d, "INSERT INTO schema_migrations (name, executed_at) VALUES (")
        .text(m.name)
        .sql(", ")
        .arg(crate::sql::P::I(turnpike_core::time::now_s()))
        .sql(")")
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn run_pending(conn: &mut AnyConnection, d: Dialect) -> Result<Vec<String>, StoreError> {
    let done: Vec<String> = executed_on(conn, d).await?.into_iter().map(|e| e.name).collect();
    let mut ran = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.iter().any(|d| d == m.name)) {
        run_one(conn, d, m).await?;
        ran.push(m.name.to_owned());
    }
    ensure_default_workspace(conn, d).await?;
    Ok(ran)
}

async fn ensure_default_workspace(conn: &mut AnyConnection, d: Dialect) -> Result<(), StoreError> {
    let existing = Q::new(d, "SELECT id FROM workspaces WHERE name = ")
        .text("default")
        .fetch_optional(conn)
        .await?;
    if existing.is_none() {
        let id = uuid::Uuid::new_v4().to_string();
        let now = turnpike_core::time::now_s();
        let entity = serde_json::json!({
            "id": id, "name": "default", "comment": null, "created_at": now, "updated_at": now,
            "meta": {}, "config": {}
        });
        Q::new(d, "INSERT INTO workspaces (id, name, entity) VALUES (")
            .text(id)
            .sql(", ")
            .text("default")
            .sql(", ")
            .text(entity.to_string())
            .sql(")")
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// The id of the default workspace.
pub(crate) async fn default_workspace(
    conn: &mut AnyConnection,
    d: Dialect,
) -> Result<String, StoreError> {
    let row = Q::new(d, "SELECT id FROM workspaces WHERE name = ")
        .text("default")
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NeedsBootstrap)?;
    Ok(row.try_get(0)?)
}

/// Where the configured database stands.
pub async fn state(cfg: &DbConfig) -> Result<State, StoreError> {
    let (d, writer, _) = connect(cfg).await?;
    let mut conn = writer.acquire().await?;
    state_on(&mut conn, d).await
}

/// Creates the schema from scratch. Fails if the database is already bootstrapped.
pub async fn bootstrap(cfg: &DbConfig) -> Result<Vec<String>, StoreError> {
    let (d, writer, _) = connect(cfg).await?;
    let mut conn = writer.acquire().await?;
    if has_meta(&mut conn, d).await? {
        return Err(StoreError::Other(
            "Database already bootstrapped; run 'turnpike migrations up' for new migrations".into(),
        ));
    }
    Q::new(
        d,
        "CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, executed_at BIGINT NOT NULL)",
    )
    .execute(&mut conn)
    .await?;
    run_pending(&mut conn, d).await
}

/// Runs pending migrations (bootstrapping first if needed when `bootstrap_if_needed`).
pub async fn up(cfg: &DbConfig, bootstrap_if_needed: bool) -> Result<Vec<String>, StoreError> {
    let (d, writer, _) = connect(cfg).await?;
    let mut conn = writer.acquire().await?;
    if !has_meta(&mut conn, d).await? {
        if !bootstrap_if_needed {
            return Err(StoreError::NeedsBootstrap);
        }
        drop(conn);
        writer.close().await;
        return bootstrap(cfg).await;
    }
    run_pending(&mut conn, d).await
}

/// Executed and pending migrations.
pub async fn list(cfg: &DbConfig) -> Result<(Vec<Executed>, Vec<String>), StoreError> {
    let (d, writer, _) = connect(cfg).await?;
    let mut conn = writer.acquire().await?;
    if !has_meta(&mut conn, d).await? {
        return Err(StoreError::NeedsBootstrap);
    }
    let executed = executed_on(&mut conn, d).await?;
    let pending = MIGRATIONS
        .iter()
        .filter(|m| !executed.iter().any(|e| e.name == m.name))
        .map(|m| m.name.to_owned())
        .collect();
    Ok((executed, pending))
}

/// Drops every table Turnpike created.
pub async fn reset(cfg: &DbConfig) -> Result<(), StoreError> {
    let (d, writer, _) = connect(cfg).await?;
    let mut conn = writer.acquire().await?;
    let sql = match d {
        Dialect::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        Dialect::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
    };
    let tables: Vec<String> = Q::new(d, sql)
        .fetch_all(&mut conn)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    let ours: Vec<&String> = tables
        .iter()
        .filter(|t| {
            *t == "schema_migrations"
                || MIGRATIONS.iter().any(|m| {
                    m.sqlite.contains(&format!("CREATE TABLE {t} "))
                        || m.postgres.contains(&format!("CREATE TABLE {t} "))
                })
        })
        .collect();
    if d == Dialect::Sqlite {
        Q::new(d, "PRAGMA foreign_keys = OFF").execute(&mut conn).await?;
    }
    for t in ours {
        let stmt = match d {
            Dialect::Sqlite => format!("DROP TABLE IF EXISTS \"{t}\""),
            Dialect::Postgres => format!("DROP TABLE IF EXISTS \"{t}\" CASCADE"),
        };
        Q::new(d, &stmt).execute(&mut conn).await?;
    }
    if d == Dialect::Sqlite {
        Q::new(d, "PRAGMA foreign_keys = ON").execute(&mut conn).await?;
    }
    Ok(())
}
