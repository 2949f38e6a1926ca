//! Turnpike's entity model: Kong-compatible schemas, validation and error bodies.
//!
//! This crate owns what an entity *is*: the fields, defaults, constraints and messages of
//! Kong 3.x's services, routes, consumers, plugins, upstreams, targets, certificates, SNIs, CA
//! certificates, keys, vaults and tags ([`entities`]), the schema engine that validates them
//! ([`schema`]), Kong's DAO error shapes ([`errors`]) and the small parsers they rely on
//! ([`net`], [`uri`], [`pki`]).
//!
//! It must not depend on tokio, sqlx or any HTTP server: the store, the Admin API and the data
//! plane all build on it.

pub mod entities;
pub mod errors;
pub mod lua;
pub mod net;
pub mod pki;
pub mod random;
pub mod schema;
pub mod time;
pub mod typedefs;
pub mod uri;
pub mod vault;

/// The Kong version whose behaviour Turnpike reproduces; reported as `version` in `GET /`
/// so that decK and other clients pick the 3.x formats.
pub const KONG_COMPAT_VERSION: &str = "3.9.1";

/// Turnpike's own version.
pub const TURNPIKE_VERSION: &str = env!("CARGO_PKG_VERSION");
