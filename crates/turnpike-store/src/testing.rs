//! Helpers for tests that need a real database: a scratch PostgreSQL schema per test, so
//! that tests run in parallel against one database without seeing each other's rows.

use sqlx::Executor;

use crate::config::{DbConfig, PgConfig};

/// Environment variable holding the PostgreSQL URL for tests.
pub const PG_URL_ENV: &str = "TURNPIKE_TEST_PG_URL";
/// When set (CI sets it), a missing service URL fails the test instead of skipping it.
pub const REQUIRE_ENV: &str = "TURNPIKE_REQUIRE_SERVICES";

/// The PostgreSQL URL for tests, or `None` when tests may skip PostgreSQL.
/// Panics when services are required but the URL is missing.
pub fn pg_url() -> Option<String> {
    match std::env::var(PG_URL_ENV) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
                panic!("{PG_URL_ENV} must be set when {REQUIRE_ENV}=1");
            }
            eprintln!("note: {PG_URL_ENV} is not set; skipping PostgreSQL");
            None
        }
    }
}

/// Creates a fresh schema in the database at `url` and returns settings that use it.
pub async fn scratch_schema(url: &str) -> PgConfig {
    let mut cfg = PgConfig::from_url(url).expect("valid PostgreSQL URL");
    let name = format!("tp_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let mut conn: sqlx::AnyConnection = sqlx::Connection::connect(&cfg.to_url())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {}: {e}", cfg.host));
    conn.execute(format!("CREATE SCHEMA {name}").as_str()).await.expect("create schema");
    cfg.schema = Some(name);
    cfg
}

/// Drops a scratch schema created by [`scratch_schema`].
pub async fn drop_schema(cfg: &PgConfig) {
    let Some(schema) = &cfg.schema else { return };
    let mut base = cfg.clone();
    base.schema = None;
    if let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(&base.to_url()).await {
        let _ = conn.execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str()).await;
    }
}

/// A plain connection to the database `cfg` points at (the scratch schema on the search path),
/// for tests that need to look at or tamper with the database behind a store's back.
pub async fn raw_connection(cfg: &DbConfig) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    let url = match cfg {
        DbConfig::Sqlite { path } => format!("sqlite://{}", path.display()),
        DbConfig::Postgres(pg) => pg.to_url(),
    };
    <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {cfg:?}: {e}"))
}
