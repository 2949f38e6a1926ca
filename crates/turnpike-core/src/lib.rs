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

pub mod declarative;
pub mod entities;
pub mod errors;
pub mod lua;
pub mod net;
pub mod pki;
pub mod random;
pub mod schema;
pub mod snapshot;
pub mod time;
pub mod typedefs;
pub mod uri;
pub mod vault;

/// The Kong version whose behaviour Turnpike reproduces; reported as `version` in `GET /`
/// so that decK and other clients pick the 3.x formats.
pub const KONG_COMPAT_VERSION: &str = "3.9.1";

/// Turnpike's own version.
pub const TURNPIKE_VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod stats {
    //! Server counters shared by the listeners and reported by `GET /status`.

    use std::sync::atomic::{AtomicU64, Ordering};

    /// nginx-style connection and request counters.
    #[derive(Debug, Default)]
    pub struct ServerStats {
        pub total_requests: AtomicU64,
        pub connections_accepted: AtomicU64,
        pub connections_handled: AtomicU64,
        pub connections_active: AtomicU64,
        pub connections_reading: AtomicU64,
        pub connections_writing: AtomicU64,
    }

    impl ServerStats {
        pub fn snapshot(&self) -> serde_json::Value {
            let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
            let active = g(&self.connections_active);
            let reading = g(&self.connections_reading);
            let writing = g(&self.connections_writing);
            serde_json::json!({
                "total_requests": g(&self.total_requests),
                "connections_active": active,
                "connections_accepted": g(&self.connections_accepted),
                "connections_handled": g(&self.connections_handled),
                "connections_reading": reading,
                "connections_writing": writing,
                "connections_waiting": active.saturating_sub(reading + writing),
            })
        }
    }
}
