//! Errors of store set-up and migrations (request-level errors are `DaoError`s).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("could not open the database: {0}")]
    Open(String),
    #[error("Database needs bootstrapping; run 'turnpike migrations bootstrap'")]
    NeedsBootstrap,
    #[error("New migrations available ({0}); run 'turnpike migrations up' to proceed")]
    PendingMigrations(String),
    #[error("{0}")]
    Other(String),
}
