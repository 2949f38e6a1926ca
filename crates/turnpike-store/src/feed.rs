//! The change feed: how every node learns that the configuration changed.
//!
//! The `config_version` table (migration `001_config_version`) holds one counter. Every write
//! that changes configuration increments it in its own transaction ([`next_version`]); on
//! PostgreSQL the same transaction queues `pg_notify(<channel>, <new version>)`, which PostgreSQL
//! delivers at commit to every session listening on the channel. The channel is named after the
//! schema ([`channel_name`]), so stores on different schemas of one database stay apart.
//!
//! A [`ChangeFeed`] turns versions into ticks of the store's `watch` channel
//! ([`crate::Store::changes`]). A version newer than every version seen so far ticks it once,
//! whoever sees it first: the writing store right after its commit, the PostgreSQL listener, or
//! a poll. So a local write is announced at once and not a second time when its own
//! notification comes back.
//!
//! [`SqlStore::spawn_change_watcher`] follows the writes of other nodes (LISTEN on PostgreSQL,
//! polling everywhere as the fallback). This module only counts; it knows nothing of entities.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{AnyConnection, AnyPool, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use crate::sql::{Dialect, SqlStore, P, Q};

/// Prefix of the PostgreSQL NOTIFY channel; the schema name follows.
const CHANNEL_PREFIX: &str = "turnpike_config_";
/// PostgreSQL truncates identifiers (and rejects `pg_notify` channels) beyond 63 bytes.
const MAX_CHANNEL_LEN: usize = 63;
/// The shortest poll interval accepted, so that a zero interval cannot spin.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// The longest poll interval accepted (keeps deadline arithmetic far from overflow).
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Polls that fail back off up to this (or the poll interval, if longer).
const POLL_RETRY_MAX: Duration = Duration::from_secs(5);
/// LISTEN reconnection attempts back off from this...
const LISTEN_RETRY_MIN: Duration = Duration::from_millis(250);
/// ... up to this.
const LISTEN_RETRY_MAX: Duration = Duration::from_secs(10);
/// A LISTEN connection that lived this long before it was lost is reconnected at once, with a
/// fresh backoff; one lost sooner keeps backing off, so a flapping connection cannot spin.
const LISTEN_STABLE: Duration = Duration::from_secs(30);

/// The PostgreSQL NOTIFY channel of a schema: `turnpike_config_<schema>`, made of lower-case
/// ASCII letters, digits and `_`, at most 63 bytes. A schema name that had to be changed to fit
/// (other characters, upper case, length) gets a hash of the original name appended, so that
/// two schemas do not share a channel.
pub(crate) fn channel_name(schema: &str) -> String {
    let clean: String = schema
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' { c } else { '_' })
        .collect();
    let name = format!("{CHANNEL_PREFIX}{clean}");
    if clean == schema && name.len() <= MAX_CHANNEL_LEN {
        return name;
    }
    // FNV-1a: stable across builds and platforms, which `std`'s hasher does not promise.
    let hash = schema
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let suffix = format!("_{hash:016x}");
    let keep = MAX_CHANNEL_LEN - CHANNEL_PREFIX.len() - suffix.len();
    let clean: String = clean.chars().take(keep).collect();
    format!("{CHANNEL_PREFIX}{clean}{suffix}")
}

fn to_version(v: i64) -> Result<u64, sqlx::Error> {
    u64::try_from(v).map_err(|_| sqlx::Error::Decode("config_version is negative".into()))
}

/// Increments `config_version` inside the caller's transaction and, on PostgreSQL, queues the
/// notification that announces the new version at commit. Returns the new version.
///
/// Run it last in the transaction: the row lock it takes is held until commit, which makes
/// concurrent writers commit in version order (so notifications arrive in order too).
pub(crate) async fn next_version(
    conn: &mut AnyConnection,
    dialect: Dialect,
    channel: Option<&str>,
) -> Result<u64, sqlx::Error> {
    // An upsert rather than an UPDATE, so that a missing row cannot make every write fail.
    let row = Q::new(
        dialect,
        "INSERT INTO config_version (id, version) VALUES (1, 1) \
         ON CONFLICT (id) DO UPDATE SET version = config_version.version + 1 \
         RETURNING version",
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(sqlx::Error::RowNotFound)?;
    let version = to_version(row.try_get(0)?)?;
    if let (Dialect::Postgres, Some(channel)) = (dialect, channel) {
        // `pg_notify` returns `void`, which the `Any` driver cannot decode: select a constant.
        Q::new(dialect, "SELECT 1 FROM pg_notify(")
            .text(channel)
            .sql(", ")
            .arg(P::T(Some(version.to_string())))
            .sql(")")
            .execute(conn)
            .await?;
    }
    Ok(version)
}

/// Reads the current configuration version (0 if the row is missing).
pub(crate) async fn read_version(
    conn: &mut AnyConnection,
    dialect: Dialect,
) -> Result<u64, sqlx::Error> {
    let row = Q::new(dialect, "SELECT version FROM config_version WHERE id = 1")
        .fetch_optional(conn)
        .await?;
    match row {
        Some(r) => to_version(r.try_get(0)?),
        None => Ok(0),
    }
}

/// The store's side of the feed: the `watch` channel handed out by `changes()` and the newest
/// configuration version announced on it.
#[derive(Debug)]
pub(crate) struct ChangeFeed {
    ticks: watch::Sender<u64>,
    seen: AtomicU64,
}

impl ChangeFeed {
    /// A feed whose listeners have seen `version` (the version when the store opened).
    pub(crate) fn new(version: u64) -> Self {
        let (ticks, _) = watch::channel(0);
        Self { ticks, seen: AtomicU64::new(version) }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.ticks.subscribe()
    }

    /// Announces `version` unless a version at least as new was announced already; returns
    /// whether it did. Versions commit in order, so an older one is covered by the newer one.
    pub(crate) fn observe(&self, version: u64) -> bool {
        let newer = self.seen.fetch_max(version, Ordering::AcqRel) < version;
        if newer {
            self.tick();
        }
        newer
    }

    /// The counter went backwards (the database was reset and bootstrapped again): announce
    /// and start over from `version`.
    fn restart(&self, version: u64) {
        self.seen.store(version, Ordering::Release);
        self.tick();
    }

    fn tick(&self) {
        self.ticks.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Settings of [`SqlStore::spawn_change_watcher`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatcherConfig {
    /// How often the watcher reads `config_version`. Polling is the only way to notice other
    /// nodes' writes on SQLite or with `listen` off, and the safety net for notifications lost
    /// while a LISTEN connection was down. Clamped to 10 ms ..= 1 day. Default: 1 s.
    pub poll_interval: Duration,
    /// Whether to LISTEN for the notifications that writes send on PostgreSQL (ignored on
    /// SQLite). Turn it off where LISTEN cannot work, e.g. behind a connection pooler in
    /// transaction mode; changes then arrive by polling only. Default: on.
    pub listen: bool,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        Self { poll_interval: Duration::from_secs(1), listen: true }
    }
}

impl WatcherConfig {
    /// Polling only, every `poll_interval` (no LISTEN connection).
    pub fn polling(poll_interval: Duration) -> Self {
        Self { poll_interval, listen: false }
    }
}

/// A running change watcher (see [`SqlStore::spawn_change_watcher`]).
///
/// Dropping the handle leaves the watcher running; it stops when the store is closed or
/// dropped, or on [`ChangeWatcher::abort`].
#[derive(Debug)]
pub struct ChangeWatcher {
    task: JoinHandle<()>,
    listening: Arc<AtomicBool>,
}

impl ChangeWatcher {
    /// Whether the watcher holds a LISTEN connection right now. Always false on SQLite and with
    /// [`WatcherConfig::listen`] off; false on PostgreSQL while (re)connecting.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Whether the watcher has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the watcher.
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl SqlStore {
    /// Starts a background task that makes [`crate::Store::changes`] tick when another node
    /// (or another store on the same database) changes the configuration. Call it once per
    /// store, inside a tokio runtime.
    ///
    /// On PostgreSQL with [`WatcherConfig::listen`] on, the task LISTENs on
    /// [`SqlStore::notify_channel`] over a connection of its own, opened with the store's
    /// settings (host, TLS, schema), and ticks when a notification carries a version newer than
    /// the newest one seen. On every backend it also reads `config_version` every
    /// [`WatcherConfig::poll_interval`] and ticks when it moved. Right after each
    /// (re)connection of the LISTEN connection it reads the version too, to catch
    /// notifications sent while it was down.
    ///
    /// Errors never stop the task: it logs one `warn` per outage (the database does not
    /// answer; or it answers but LISTEN fails, so changes arrive by polling), one `info` when it
    /// is over, and retries with backoff. Meanwhile `changes()` just stays quiet, and the node
    /// keeps its current configuration. The task ends when the store is closed or dropped.
    pub fn spawn_change_watcher(&self, config: WatcherConfig) -> ChangeWatcher {
        let listen = match (&self.pg, &self.channel, config.listen) {
            (Some(pg), Some(channel), true) => Some(ListenTarget {
                // the very URL the store's pools were opened with, parsed by the same driver
                options: PgConnectOptions::from_str(&pg.to_url()).map_err(|e| e.to_string()),
                channel: channel.clone(),
                timeout: Duration::from_millis(pg.timeout_ms.max(1000)),
            }),
            _ => None,
        };
        let poll_interval = config.poll_interval.clamp(MIN_POLL_INTERVAL, MAX_POLL_INTERVAL);
        let listening = Arc::new(AtomicBool::new(false));
        let watcher = Watcher {
            reader: self.reader.clone(),
            dialect: self.dialect,
            feed: Arc::clone(&self.feed),
            listen,
            poll_interval,
            shutdown: self.shutdown.subscribe(),
            listening: Arc::clone(&listening),
        };
        ChangeWatcher { task: tokio::spawn(watcher.run()), listening }
    }
}

/// Where and how to LISTEN.
struct ListenTarget {
    options: Result<PgConnectOptions, String>,
    channel: String,
    timeout: Duration,
}

/// A live LISTEN connection.
struct Listener {
    inner: PgListener,
    since: Instant,
}

/// Exponential backoff between `min` and `max`.
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Self { min, max, next: min }
    }

    fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = d.saturating_mul(2).min(self.max);
        d
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// The state of the watcher task.
struct Watcher {
    reader: AnyPool,
    dialect: Dialect,
    feed: Arc<ChangeFeed>,
    listen: Option<ListenTarget>,
    poll_interval: Duration,
    /// Fires (or closes) when the store is closed (or dropped).
    shutdown: watch::Receiver<()>,
    listening: Arc<AtomicBool>,
}

/// Waits for the next notification; never resolves without a listener.
async fn recv(listener: &mut Option<Listener>) -> Result<Option<String>, sqlx::Error> {
    match listener {
        Some(l) => Ok(l.inner.try_recv().await?.map(|n| n.payload().to_owned())),
        None => std::future::pending().await,
    }
}

impl Watcher {
    async fn run(mut self) {
        let mut listener: Option<Listener> = None;
        let mut listen_at = Instant::now();
        let mut listen_backoff = Backoff::new(LISTEN_RETRY_MIN, LISTEN_RETRY_MAX);
        // A LISTEN failure not yet told apart (by the next poll) from a database outage.
        let mut listen_problem: Option<String> = None;
        let mut listen_warned = false;
        let mut poll_at = Instant::now();
        let mut poll_backoff =
            Backoff::new(self.poll_interval, self.poll_interval.max(POLL_RETRY_MAX));
        let mut last_polled: Option<u64> = None;
        let mut db_warned = false;

        loop {
            // `biased`: connect the listener before the first poll, so the poll that follows a
            // (re)connection covers everything the listener may have missed.
            tokio::select! {
                biased;
                _ = self.shutdown.changed() => break,
                received = recv(&mut listener), if listener.is_some() => match received {
                    Ok(Some(payload)) => match payload.parse::<u64>() {
                        Ok(version) => {
                            self.feed.observe(version);
                        }
                        Err(_) => poll_at = Instant::now(),
                    },
                    // The connection is gone; notifications sent until it is back are lost,
                    // hence the poll after reconnecting.
                    Ok(None) | Err(_) => {
                        let lived = listener.take().map(|l| l.since.elapsed()).unwrap_or_default();
                        if lived >= LISTEN_STABLE {
                            listen_backoff.reset();
                            listen_at = Instant::now();
                        } else {
                            listen_at = Instant::now() + listen_backoff.next();
                        }
                        self.listening.store(false, Ordering::Release);
                        tracing::debug!("config change feed: LISTEN connection lost; reconnecting");
                    }
                },
                _ = sleep_until(listen_at), if listener.is_none() && self.listen.is_some() => {
                    let Some(target) = &self.listen else { continue };
                    match connect_listener(target).await {
                        Ok(l) => {
                            listener = Some(Listener { inner: l, since: Instant::now() });
                            self.listening.store(true, Ordering::Release);
                            listen_problem = None;
                            if listen_warned {
                                tracing::info!("config change feed: listening for changes again");
                                listen_warned = false;
                            }
                            poll_at = Instant::now();
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "config change feed: cannot LISTEN");
                            if listen_problem.is_none() && !db_warned {
                                // let a poll tell whether the database itself is down
                                poll_at = Instant::now();
                            }
                            listen_problem = Some(e.to_string());
                            listen_at = Instant::now() + listen_backoff.next();
                        }
                    }
                },
                _ = sleep_until(poll_at) => {
                    match self.poll().await {
                        Ok(version) => {
                            if db_warned {
                                tracing::info!("config change feed: database reachable again");
                                db_warned = false;
                            }
                            if let (Some(problem), false) = (&listen_problem, listen_warned) {
                                tracing::warn!(
                                    error = %problem,
                                    poll_interval_ms = self.poll_interval.as_millis() as u64,
                                    "config change feed: cannot LISTEN for changes; \
                                     relying on polling until it can"
                                );
                                listen_warned = true;
                            }
                            match last_polled {
                                Some(last) if version < last => {
                                    tracing::info!(
                                        version,
                                        last,
                                        "config change feed: config_version went backwards \
                                         (database reset?); reloading"
                                    );
                                    self.feed.restart(version);
                                }
                                _ => {
                                    self.feed.observe(version);
                                }
                            }
                            last_polled = Some(version);
                            poll_backoff.reset();
                            poll_at = Instant::now() + self.poll_interval;
                        }
                        Err(sqlx::Error::PoolClosed) => break,
                        Err(e) => {
                            tracing::debug!(error = %e, "config change feed: poll failed");
                            if !db_warned {
                                tracing::warn!(
                                    error = %e,
                                    "config change feed: cannot read the configuration \
                                     version; keeping the current configuration until the \
                                     database answers"
                                );
                                db_warned = true;
                            }
                            // part of the outage, not a LISTEN problem of its own
                            listen_problem = None;
                            poll_at = Instant::now() + poll_backoff.next();
                        }
                    }
                },
            }
        }
        self.listening.store(false, Ordering::Release);
    }

    async fn poll(&self) -> Result<u64, sqlx::Error> {
        let mut conn = self.reader.acquire().await?;
        read_version(&mut conn, self.dialect).await
    }
}

/// Opens a LISTEN connection on the target's channel.
async fn connect_listener(target: &ListenTarget) -> Result<PgListener, sqlx::Error> {
    let options = match &target.options {
        Ok(o) => o.clone(),
        Err(e) => return Err(sqlx::Error::Configuration(e.clone().into())),
    };
    let attempt = async {
        // A pool of one, private to the listener: PgListener connects through a pool.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(target.timeout)
            .connect_lazy_with(options);
        let mut l = PgListener::connect_with(&pool).await?;
        // report a lost connection at once; the watcher reconnects with backoff
        l.eager_reconnect(false);
        l.ignore_pool_close_event(true);
        l.listen(&target.channel).await?;
        Ok(l)
    };
    tokio::time::timeout(target.timeout * 2, attempt)
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_are_valid_and_distinct() {
        assert_eq!(channel_name("public"), "turnpike_config_public");
        assert_eq!(
            channel_name("tp_0123456789abcdef0123456789abcdef"),
            "turnpike_config_tp_0123456789abcdef0123456789abcdef"
        );
        let odd = ["My-Schema", "my_schema_", "ünï", &"x".repeat(63), &"x".repeat(64)];
        let names: Vec<String> = odd.iter().map(|s| channel_name(s)).collect();
        for n in &names {
            assert!(n.len() <= MAX_CHANNEL_LEN, "{n}");
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        }
        assert_ne!(channel_name("My-Schema"), channel_name("my_schema"));
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn a_version_ticks_once() {
        let feed = ChangeFeed::new(3);
        let rx = feed.subscribe();
        assert!(!feed.observe(3), "the version at open is not news");
        assert!(feed.observe(5));
        assert!(!feed.observe(4), "covered by 5");
        assert!(!feed.observe(5), "the echo of a local write");
        assert_eq!(*rx.borrow(), 1);
        feed.restart(1);
        assert!(feed.observe(2));
        assert_eq!(*rx.borrow(), 3);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(1));
        let seq: Vec<u128> = (0..5).map(|_| b.next().as_millis()).collect();
        assert_eq!(seq, [250, 500, 1000, 1000, 1000]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(250));
    }
}
