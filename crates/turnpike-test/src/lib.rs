//! Turnpike's test harness: start the real `turnpike` binary on port 0 against a fresh
//! database, talk to it over HTTP, and read fixtures.
//!
//! ```no_run
//! # async fn t() {
//! use turnpike_test::{Gateway, Db};
//! let gw = Gateway::builder().db(Db::Sqlite).start().await;
//! let res = gw.admin().post_form("/services", &[("name", "s"), ("url", "http://up.test")]).await;
//! assert_eq!(res.status, 201);
//! # }
//! ```
//!
//! The Admin API tests ported from Kong's specs share the helpers of the `api` module
//! (re-exported here): [`send`] a JSON value as JSON, form or multipart ([`Ct`]), [`expect`] a
//! status and get the JSON body, [`create`] fixtures, [`escape_uri`], [`raw_get`] and so on.

mod api;
mod client;
mod gateway;
pub mod net;
mod upstream;

pub use api::{
    assert_kong_error, create, escape_uri, expect, expect_or_empty, flatten, gateway,
    get_with_bad_body, is_uuid, listeners, new_uuid, raw_get, route_to, s, send, send_fields,
    settle, stable_headers, until_routed, until_status, upstream_seen, walk_pages, without, Ct,
    ALL, FORM_JSON,
};
pub use client::{form_urlencode, multipart_body, Client, Resp};
pub use gateway::{binary, pg_env, Db, Gateway, GatewayBuilder};
pub use upstream::{grpc_frame, raw_exchange, websocket_accept, Upstream, UpstreamBuilder};

/// Reads a TLS fixture (see `fixtures/tls/gen.sh`).
pub fn tls_fixture(name: &str) -> String {
    let path = format!("{}/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The databases a story should run against: SQLite always, PostgreSQL when configured
/// (required in CI, see `turnpike_store::testing`).
pub fn databases() -> Vec<Db> {
    let mut dbs = vec![Db::Sqlite];
    if let Some(url) = turnpike_store::testing::pg_url() {
        dbs.push(Db::Postgres(url));
    }
    dbs
}
