//! The change feed: every configuration write increments `config_version` in its transaction,
//! and every store on the same database notices — at once on the writing store, by
//! LISTEN/NOTIFY or by polling on the others. SQLite always; PostgreSQL when
//! `TURNPIKE_TEST_PG_URL` is set (CI sets it and requires it).
//!
//! No test asserts on timing: changes must arrive before generous deadlines, and waits are
//! polling loops with a deadline.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Executor;
use tokio::sync::watch;
use turnpike_core::errors::ErrorCode;
use turnpike_core::schema::Entity;
use turnpike_plugin_api::{registry, PluginSelection};
use turnpike_store::{
    migrations, testing, DbConfig, Key, PgConfig, SqlStore, Store, StoreError, WatcherConfig,
};

/// How long a change may take to arrive before a test fails. Far above the goals (100 ms on
/// the writing node, 1 s elsewhere): this catches "never", not "slow".
const DEADLINE: Duration = Duration::from_secs(5);
/// A poll interval that never elapses during a test: only LISTEN/NOTIFY can deliver.
const NEVER: Duration = Duration::from_secs(3600);

fn obj(v: Value) -> Entity {
    v.as_object().cloned().expect("object")
}

async fn open_store(cfg: &DbConfig) -> Arc<SqlStore> {
    let reg = Arc::new(registry(&PluginSelection::bundled()));
    Arc::new(SqlStore::open(cfg, reg).await.expect("open"))
}

async fn bootstrapped(cfg: &DbConfig) -> Arc<SqlStore> {
    migrations::bootstrap(cfg).await.expect("bootstrap");
    open_store(cfg).await
}

fn sqlite_cfg(dir: &tempfile::TempDir) -> DbConfig {
    DbConfig::Sqlite { path: dir.path().join("turnpike.db") }
}

/// A fresh PostgreSQL schema, or `None` when PostgreSQL tests may be skipped.
async fn pg_cfg() -> Option<(PgConfig, DbConfig)> {
    let url = testing::pg_url()?;
    let pg = testing::scratch_schema(&url).await;
    Some((pg.clone(), DbConfig::Postgres(pg)))
}

/// Waits until `rx` ticks (the caller marked the current value seen before the write).
async fn ticks(rx: &mut watch::Receiver<u64>, what: &str) {
    tokio::time::timeout(DEADLINE, rx.changed())
        .await
        .unwrap_or_else(|_| panic!("{what}: no change within {DEADLINE:?}"))
        .expect("the store is alive");
}

/// Polls `check` until it holds, failing after the deadline.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn add_service(s: &dyn Store, name: &str) -> String {
    let svc = s.insert("services", obj(json!({"name": name, "host": "up.test"}))).await.unwrap();
    svc["id"].as_str().unwrap().to_owned()
}

// ---- the counter -----------------------------------------------------------------------

/// What a store's version and `changes()` should say after each write.
struct Expect<'a> {
    store: &'a dyn Store,
    version: u64,
    rx: watch::Receiver<u64>,
}

impl Expect<'_> {
    /// The write committed: one more, and a tick at once (no watcher runs here).
    async fn wrote(&mut self, what: &str) {
        self.version += 1;
        assert_eq!(self.store.config_version().await.unwrap(), self.version, "{what}: +1");
        assert!(self.rx.has_changed().unwrap(), "{what} ticks changes() at once");
        self.rx.borrow_and_update();
    }

    /// The write failed or had nothing to do.
    async fn unchanged(&mut self, what: &str) {
        assert_eq!(self.store.config_version().await.unwrap(), self.version, "{what}: same");
        assert!(!self.rx.has_changed().unwrap(), "{what} does not tick changes()");
    }
}

/// Each committed configuration write adds exactly one to the version (whatever it cascades
/// to); writes that fail or change nothing leave it alone. The writing store ticks at once.
async fn version_story(s: &dyn Store) {
    let version = s.config_version().await.unwrap();
    let mut e = Expect { store: s, version, rx: s.changes() };

    let id = add_service(s, "versioned").await;
    e.wrote("insert").await;

    let dup = s
        .insert("services", obj(json!({"name": "versioned", "host": "x.test"})))
        .await
        .unwrap_err();
    assert_eq!(dup.code, ErrorCode::UniqueViolation);
    e.unchanged("a unique violation").await;

    let invalid = s.insert("services", obj(json!({"name": "bad", "port": 0}))).await.unwrap_err();
    assert_eq!(invalid.code, ErrorCode::SchemaViolation);
    e.unchanged("a schema violation").await;

    s.update("services", &Key::Id(id.clone()), obj(json!({"retries": 2}))).await.unwrap();
    e.wrote("update").await;

    let missing = s
        .update("services", &Key::Id(uuid::Uuid::new_v4().to_string()), obj(json!({"retries": 1})))
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);
    e.unchanged("an update of a missing entity").await;

    let put = Key::Field("name".into(), json!("put-me"));
    s.upsert("services", &put, obj(json!({"host": "a.test"}))).await.unwrap();
    e.wrote("upsert (create)").await;
    s.upsert("services", &put, obj(json!({"host": "b.test"}))).await.unwrap();
    e.wrote("upsert (replace)").await;

    // tags live in their own table: writing them is part of the same single increment
    s.update("services", &put, obj(json!({"tags": ["a", "b"]}))).await.unwrap();
    e.wrote("update of tags").await;

    // a route restricts its service's deletion; the failed delete changes nothing
    let route =
        s.insert("routes", obj(json!({"paths": ["/v"], "service": {"id": id}}))).await.unwrap();
    e.wrote("insert of a route").await;
    s.insert("plugins", obj(json!({"name": "key-auth", "route": {"id": route["id"]}})))
        .await
        .unwrap();
    e.wrote("insert of a plugin").await;
    let restricted = s.delete("services", &Key::Id(id.clone())).await.unwrap_err();
    assert_eq!(restricted.code, ErrorCode::ForeignKeyViolation);
    e.unchanged("a restricted delete").await;

    // a delete that cascades (the route's plugin) is one write
    s.delete("routes", &Key::Id(route["id"].as_str().unwrap().into())).await.unwrap();
    e.wrote("delete with cascade").await;
    assert!(s.all("plugins").await.unwrap().is_empty());

    s.delete("services", &Key::Id(id.clone())).await.unwrap();
    e.wrote("delete").await;
    s.delete("services", &Key::Id(id)).await.unwrap();
    e.unchanged("deleting a missing entity").await;

    // an upstream and its targets: the cascade is still a single write
    let up = s.insert("upstreams", obj(json!({"name": "versioned-up"}))).await.unwrap();
    e.wrote("insert of an upstream").await;
    s.insert("targets", obj(json!({"target": "10.0.0.1:80", "upstream": {"id": up["id"]}})))
        .await
        .unwrap();
    e.wrote("insert of a target").await;
    s.delete("upstreams", &Key::Field("name".into(), json!("versioned-up"))).await.unwrap();
    e.wrote("delete of an upstream with targets").await;
    s.delete("services", &put).await.unwrap();
    e.wrote("delete by name").await;
}

#[tokio::test]
async fn every_write_counts_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = bootstrapped(&sqlite_cfg(&dir)).await;
    assert_eq!(store.config_version().await.unwrap(), 0);
    version_story(&*store).await;
}

#[tokio::test]
async fn every_write_counts_once_on_postgres() {
    let Some((pg, cfg)) = pg_cfg().await else { return };
    let store = bootstrapped(&cfg).await;
    assert_eq!(store.config_version().await.unwrap(), 0);
    let channel = store.notify_channel().unwrap();
    assert_eq!(channel, format!("turnpike_config_{}", pg.schema.as_deref().unwrap()));
    version_story(&*store).await;
    store.close().await;
    testing::drop_schema(&pg).await;
}

// ---- migrations ------------------------------------------------------------------------

/// A database bootstrapped before `001_config_version` gets the counter with `migrations up`.
async fn upgrade_story(cfg: &DbConfig) {
    migrations::bootstrap(cfg).await.unwrap();
    {
        // turn the database back into one that only ran 000_base
        let mut conn = testing::raw_connection(cfg).await;
        conn.execute("DROP TABLE config_version").await.unwrap();
        conn.execute("DELETE FROM schema_migrations WHERE name = '001_config_version'")
            .await
            .unwrap();
    }
    assert_eq!(
        migrations::state(cfg).await.unwrap(),
        migrations::State::Pending(vec!["001_config_version".into()])
    );
    let reg = Arc::new(registry(&PluginSelection::bundled()));
    let refused = SqlStore::open(cfg, reg).await.unwrap_err();
    assert!(matches!(refused, StoreError::PendingMigrations(ref p) if p == "001_config_version"));
    assert_eq!(migrations::up(cfg, false).await.unwrap(), ["001_config_version"]);
    assert_eq!(migrations::state(cfg).await.unwrap(), migrations::State::UpToDate);
    let store = open_store(cfg).await;
    assert_eq!(store.config_version().await.unwrap(), 0);
    add_service(&*store, "after-upgrade").await;
    assert_eq!(store.config_version().await.unwrap(), 1);
    store.close().await;
}

#[tokio::test]
async fn existing_databases_upgrade_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    upgrade_story(&sqlite_cfg(&dir)).await;
}

#[tokio::test]
async fn existing_databases_upgrade_on_postgres() {
    let Some((pg, cfg)) = pg_cfg().await else { return };
    upgrade_story(&cfg).await;
    testing::drop_schema(&pg).await;
}

// ---- other nodes -----------------------------------------------------------------------

#[tokio::test]
async fn notify_reaches_other_stores_on_postgres() {
    let Some((pg, cfg)) = pg_cfg().await else { return };
    let a = bootstrapped(&cfg).await;
    let b = open_store(&cfg).await;
    // B polls once after connecting and then never again: writes must come by NOTIFY
    let watcher = b.spawn_change_watcher(WatcherConfig { poll_interval: NEVER, listen: true });
    eventually("B listens", || async { watcher.is_listening() }).await;

    let mut rx = b.changes();
    // Three writes, each awaited: the one poll after connecting can explain one tick at most.
    for i in 0..3 {
        rx.borrow_and_update();
        add_service(&*a, &format!("notified-{i}")).await;
        ticks(&mut rx, &format!("B notices write {i} of A")).await;
    }
    assert_eq!(b.config_version().await.unwrap(), a.config_version().await.unwrap());
    assert_eq!(b.all("services").await.unwrap().len(), 3, "B reads what A wrote");
    assert!(!watcher.is_finished());

    // another schema of the same database uses another channel and hears nothing of it
    let (other_pg, other_cfg) = pg_cfg().await.unwrap();
    let other = bootstrapped(&other_cfg).await;
    assert_ne!(other.notify_channel(), a.notify_channel());

    a.close().await;
    b.close().await;
    other.close().await;
    eventually("the watcher stops with its store", || async { watcher.is_finished() }).await;
    testing::drop_schema(&pg).await;
    testing::drop_schema(&other_pg).await;
}

#[tokio::test]
async fn polling_is_the_fallback_on_postgres() {
    let Some((pg, cfg)) = pg_cfg().await else { return };
    let a = bootstrapped(&cfg).await;
    let b = open_store(&cfg).await;
    let watcher = b.spawn_change_watcher(WatcherConfig::polling(Duration::from_millis(50)));
    let mut rx = b.changes();
    for i in 0..2 {
        rx.borrow_and_update();
        add_service(&*a, &format!("polled-{i}")).await;
        ticks(&mut rx, &format!("B polls write {i} of A")).await;
        assert!(!watcher.is_listening(), "listen is off");
    }
    assert_eq!(b.config_version().await.unwrap(), 2);
    a.close().await;
    b.close().await;
    testing::drop_schema(&pg).await;
}

#[tokio::test]
async fn a_lost_listen_connection_is_replaced_on_postgres() {
    let Some((pg, cfg)) = pg_cfg().await else { return };
    let a = bootstrapped(&cfg).await;
    let b = open_store(&cfg).await;
    let watcher = b.spawn_change_watcher(WatcherConfig { poll_interval: NEVER, listen: true });
    eventually("B listens", || async { watcher.is_listening() }).await;

    let listen_sql = format!("LISTEN \"{}\"", b.notify_channel().unwrap());
    let mut admin = testing::raw_connection(&cfg).await;
    let listener_pid = || {
        let q = sqlx::query_scalar::<_, i32>(
            "SELECT pid FROM pg_stat_activity WHERE query = $1 ORDER BY backend_start DESC",
        )
        .bind(listen_sql.clone());
        q
    };
    let first: i32 = listener_pid().fetch_one(&mut admin).await.expect("B's LISTEN backend");
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(killed);

    // a write while B may be reconnecting: the check after reconnecting catches it
    let mut rx = b.changes();
    rx.borrow_and_update();
    add_service(&*a, "during-reconnect").await;
    ticks(&mut rx, "B notices a write made while its listener was gone").await;

    // B listens again, on a new connection, and NOTIFY works there
    let mut second = first;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while second == first || !watcher.is_listening() {
        assert!(tokio::time::Instant::now() < deadline, "B did not LISTEN again");
        tokio::time::sleep(Duration::from_millis(10)).await;
        second = listener_pid().fetch_optional(&mut admin).await.unwrap().unwrap_or(first);
    }
    for i in 0..2 {
        rx.borrow_and_update();
        add_service(&*a, &format!("after-reconnect-{i}")).await;
        ticks(&mut rx, &format!("B notices write {i} after reconnecting")).await;
    }
    assert!(!watcher.is_finished());
    a.close().await;
    b.close().await;
    drop(admin);
    testing::drop_schema(&pg).await;
}

#[tokio::test]
async fn stores_on_one_sqlite_file_notice_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = sqlite_cfg(&dir);
    let a = bootstrapped(&cfg).await;
    let b = open_store(&cfg).await;
    let every = WatcherConfig { poll_interval: Duration::from_millis(20), listen: true };
    let wa = a.spawn_change_watcher(every.clone());
    let wb = b.spawn_change_watcher(every);
    let (mut ra, mut rb) = (a.changes(), b.changes());

    rb.borrow_and_update();
    add_service(&*a, "from-a").await;
    ticks(&mut rb, "B notices A's write").await;

    ra.borrow_and_update();
    add_service(&*b, "from-b").await;
    ticks(&mut ra, "A notices B's write").await;

    assert_eq!(a.config_version().await.unwrap(), 2);
    assert!(!wa.is_listening() && !wb.is_listening(), "SQLite has no LISTEN");
    a.close().await;
    b.close().await;
    eventually("watchers stop with their stores", || async {
        wa.is_finished() && wb.is_finished()
    })
    .await;
}

// ---- outages ---------------------------------------------------------------------------

/// Log lines written while a test runs (this thread only).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn count(&self, needle: &str) -> usize {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes).lines().filter(|l| l.contains(needle)).count()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const POLL_FAILED: &str = "config change feed: poll failed";
const UNREADABLE: &str = "config change feed: cannot read the configuration version";
const RECOVERED: &str = "config change feed: database reachable again";

/// While the counter cannot be read, the watcher warns once, keeps trying, and picks up
/// changes again once it can. (The table is renamed away: a database outage as the watcher
/// sees it, without stopping a server other tests share.)
async fn outage_story(cfg: &DbConfig) {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    // current-thread runtime: the watcher task runs on this thread and logs here
    let _guard = tracing::subscriber::set_default(subscriber);

    let a = bootstrapped(cfg).await;
    let b = open_store(cfg).await;
    let watcher = b.spawn_change_watcher(WatcherConfig::polling(Duration::from_millis(20)));
    let mut rb = b.changes();
    add_service(&*a, "before").await;
    ticks(&mut rb, "B notices a write before the outage").await;

    let mut raw = testing::raw_connection(cfg).await;
    raw.execute("ALTER TABLE config_version RENAME TO config_version_away").await.unwrap();
    eventually("several polls fail", || async { logs.count(POLL_FAILED) >= 4 }).await;
    assert_eq!(logs.count(UNREADABLE), 1, "one warning per outage");
    assert!(!watcher.is_finished(), "errors do not stop the watcher");
    assert!(b.ping().await, "the store itself keeps answering");

    raw.execute("ALTER TABLE config_version_away RENAME TO config_version").await.unwrap();
    eventually("the watcher recovers", || async { logs.count(RECOVERED) == 1 }).await;
    rb.borrow_and_update();
    add_service(&*a, "after").await;
    ticks(&mut rb, "B notices a write after the outage").await;

    // a second outage is a new one: one more warning
    raw.execute("ALTER TABLE config_version RENAME TO config_version_away").await.unwrap();
    eventually("the second outage is reported", || async { logs.count(UNREADABLE) == 2 }).await;
    raw.execute("ALTER TABLE config_version_away RENAME TO config_version").await.unwrap();
    eventually("the watcher recovers again", || async { logs.count(RECOVERED) == 2 }).await;
    drop(raw);
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn outages_warn_once_and_do_not_stop_the_watcher_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    outage_story(&sqlite_cfg(&dir)).await;
}

#[tokio::test]
async fn outages_warn_once_and_do_not_stop_the_watcher_on_postgres() {
    let Some((pg, cfg)) = pg_cfg().await else { return };
    outage_story(&cfg).await;
    testing::drop_schema(&pg).await;
}

/// A TCP relay in front of PostgreSQL that a test can cut and restore: a database outage for
/// the stores that connect through it, without touching the server other tests share.
struct Relay {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays `127.0.0.1:port` (0: any free port) to `upstream`.
    async fn start(port: u16, upstream: (String, u16)) -> Relay {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            // dropping the set (when the task is aborted) cuts every relayed connection
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut down, _)) = listener.accept().await {
                let upstream = upstream.clone();
                conns.spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
            }
        });
        Relay { port, task }
    }

    /// Cuts every connection and refuses new ones.
    async fn stop(self) -> u16 {
        self.task.abort();
        let _ = self.task.await;
        self.port
    }
}

const NO_LISTEN: &str = "config change feed: cannot LISTEN for changes";

/// PostgreSQL goes away under a node and comes back: the node keeps running without
/// updates, warns once, and catches up with what was written meanwhile.
#[tokio::test]
async fn a_database_outage_is_survived_on_postgres() {
    let Some((pg, cfg)) = pg_cfg().await else { return };
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A talks to the database directly; B through the relay
    let a = bootstrapped(&cfg).await;
    let upstream = (pg.host.clone(), pg.port);
    let relay = Relay::start(0, upstream.clone()).await;
    let via_relay =
        PgConfig { host: "127.0.0.1".into(), port: relay.port, timeout_ms: 1000, ..pg.clone() };
    let b = open_store(&DbConfig::Postgres(via_relay)).await;
    // no polling after the first: what B learns comes by NOTIFY or the check on reconnecting
    let watcher = b.spawn_change_watcher(WatcherConfig { poll_interval: NEVER, listen: true });
    eventually("B listens", || async { watcher.is_listening() }).await;
    let mut rx = b.changes();
    rx.borrow_and_update();
    add_service(&*a, "before-outage").await;
    ticks(&mut rx, "B notices a write before the outage").await;

    let port = relay.stop().await;
    eventually("B loses its listener", || async { !watcher.is_listening() }).await;
    eventually("B warns", || async { logs.count(UNREADABLE) == 1 }).await;
    assert!(!b.ping().await, "B's database is gone");
    let refused = b.insert("services", obj(json!({"host": "x.test"}))).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::DatabaseError, "writes fail while the database is gone");
    add_service(&*a, "during-outage").await;
    assert!(!watcher.is_finished(), "the outage does not stop the watcher");
    rx.borrow_and_update();

    let relay = Relay::start(port, upstream).await;
    // the listener retries with a backoff capped at 10 s: a deadline above that
    tokio::time::timeout(Duration::from_secs(30), rx.changed())
        .await
        .expect("B catches up with the write made during the outage")
        .unwrap();
    assert_eq!(b.all("services").await.unwrap().len(), 2);
    eventually("B listens again", || async { watcher.is_listening() }).await;
    rx.borrow_and_update();
    add_service(&*a, "after-outage").await;
    ticks(&mut rx, "B notices a write after the outage").await;

    assert_eq!(logs.count(UNREADABLE), 1, "one warning per outage");
    assert_eq!(logs.count(NO_LISTEN), 0, "LISTEN itself never failed while the database answered");
    assert_eq!(logs.count(RECOVERED), 1);
    a.close().await;
    b.close().await;
    relay.stop().await;
    testing::drop_schema(&pg).await;
}
