//! Starting the real `turnpike` binary for end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use turnpike_store::PgConfig;

use crate::client::Client;

/// Which database a gateway runs on.
#[derive(Clone, Debug)]
pub enum Db {
    /// A fresh SQLite file in the gateway's prefix.
    Sqlite,
    /// A fresh schema in the PostgreSQL database at this URL.
    Postgres(String),
}

impl Db {
    pub fn name(&self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}

/// The path of the `turnpike` binary, built once per test process with the same cargo.
///
/// `TURNPIKE_BIN` overrides it.
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("TURNPIKE_BIN") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let manifest = format!("{}/../../Cargo.toml", env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "turnpike",
                "--bin",
                "turnpike",
                "--message-format=json",
                "--manifest-path",
            ])
            .arg(&manifest)
            .stderr(Stdio::inherit())
            .output()
            .expect("cannot run cargo to build the turnpike binary");
        assert!(out.status.success(), "building the turnpike binary failed");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                if v["reason"] == "compiler-artifact" && v["target"]["name"] == "turnpike" {
                    if let Some(exe) = v["executable"].as_str() {
                        return PathBuf::from(exe);
                    }
                }
            }
        }
        panic!("cargo did not report the turnpike executable");
    })
    .clone()
}

/// Configures and starts a gateway.
pub struct GatewayBuilder {
    db: Db,
    env: Vec<(String, String)>,
    prefix: Option<TempDir>,
    shared: Option<PgConfig>,
}

impl GatewayBuilder {
    /// Runs on the same PostgreSQL database and schema as `other` (a second node of a
    /// cluster); `other` keeps ownership of the schema.
    pub fn same_db_as(mut self, other: &Gateway) -> Self {
        self.shared = Some(other.pg.clone().expect("the other gateway runs on PostgreSQL"));
        self
    }

    pub fn db(mut self, db: Db) -> Self {
        self.db = db;
        self
    }

    /// Sets a configuration key (as `TURNPIKE_<KEY>`).
    pub fn conf(mut self, key: &str, value: &str) -> Self {
        self.env.push((format!("TURNPIKE_{}", key.to_ascii_uppercase()), value.to_owned()));
        self
    }

    /// Sets a raw environment variable (e.g. `KONG_LOG_LEVEL`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Reuses a prefix directory (to restart on the same SQLite file).
    pub fn prefix(mut self, dir: TempDir) -> Self {
        self.prefix = Some(dir);
        self
    }

    /// Starts the binary and waits until its listeners are up; panics with its log otherwise.
    pub async fn start(self) -> Gateway {
        let prefix = match self.prefix {
            Some(p) => p,
            None => tempfile::tempdir().expect("temp prefix"),
        };
        let mut pg = None;
        let mut env: Vec<(String, String)> = vec![
            ("TURNPIKE_ADMIN_LISTEN".into(), "127.0.0.1:0".into()),
            ("TURNPIKE_STATUS_LISTEN".into(), "127.0.0.1:0".into()),
            ("TURNPIKE_PROXY_LISTEN".into(), "127.0.0.1:0".into()),
            ("TURNPIKE_LOG_LEVEL".into(), "debug".into()),
        ];
        if let Some(shared) = &self.shared {
            env.extend(pg_env(shared));
        } else if let Db::Postgres(url) = &self.db {
            let cfg = turnpike_store::testing::scratch_schema(url).await;
            env.extend(pg_env(&cfg));
            pg = Some(cfg);
        }
        env.extend(self.env);
        let mut gw = Gateway {
            child: None,
            prefix,
            pg,
            env,
            admin: None,
            status: None,
            proxy: None,
            proxies: Vec::new(),
        };
        gw.spawn(&["--run-migrations"]).await;
        gw
    }
}

/// The environment (`TURNPIKE_DATABASE`, `TURNPIKE_PG_*`) that points the binary at a
/// PostgreSQL database and schema.
pub fn pg_env(cfg: &PgConfig) -> Vec<(String, String)> {
    let mut env = vec![
        ("TURNPIKE_DATABASE".into(), "postgres".into()),
        ("TURNPIKE_PG_HOST".into(), cfg.host.clone()),
        ("TURNPIKE_PG_PORT".into(), cfg.port.to_string()),
        ("TURNPIKE_PG_USER".into(), cfg.user.clone()),
        ("TURNPIKE_PG_DATABASE".into(), cfg.database.clone()),
    ];
    if let Some(p) = &cfg.password {
        env.push(("TURNPIKE_PG_PASSWORD".into(), p.clone()));
    }
    if let Some(s) = &cfg.schema {
        env.push(("TURNPIKE_PG_SCHEMA".into(), s.clone()));
    }
    env
}

/// A running gateway; stopped (and its scratch schema dropped) when dropped.
pub struct Gateway {
    child: Option<Child>,
    prefix: TempDir,
    pg: Option<PgConfig>,
    env: Vec<(String, String)>,
    admin: Option<String>,
    status: Option<String>,
    proxy: Option<String>,
    proxies: Vec<String>,
}

impl Gateway {
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder { db: Db::Sqlite, env: Vec::new(), prefix: None, shared: None }
    }

    pub fn prefix(&self) -> &Path {
        self.prefix.path()
    }

    /// The environment the binary runs with (database settings included), for running other
    /// `turnpike` commands against the same node.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    pub fn admin_url(&self) -> &str {
        self.admin.as_deref().expect("admin listener")
    }

    pub fn admin(&self) -> Client {
        Client::new(self.admin_url())
    }

    pub fn status(&self) -> Client {
        Client::new(self.status.as_deref().expect("status listener"))
    }

    pub fn proxy_url(&self) -> Option<&str> {
        self.proxy.as_deref()
    }

    /// A client of the first proxy listener.
    pub fn proxy(&self) -> Client {
        Client::new(self.proxy.as_deref().expect("proxy listener"))
    }

    /// Every proxy listener's address (`host:port`), in `proxy_listen` order.
    pub fn proxy_addrs(&self) -> &[String] {
        &self.proxies
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.prefix.path().join("test.log")).unwrap_or_default()
    }

    /// Runs another `turnpike` command with this gateway's prefix and environment.
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(binary());
        cmd.args(args).arg("-p").arg(self.prefix.path());
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.output().expect("run turnpike")
    }

    async fn spawn(&mut self, extra: &[&str]) {
        let listeners = self.prefix.path().join("turnpike.listeners");
        let _ = std::fs::remove_file(&listeners);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.prefix.path().join("test.log"))
            .expect("log file");
        let mut cmd = Command::new(binary());
        cmd.arg("start").arg("-p").arg(self.prefix.path()).args(extra);
        cmd.env_clear();
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.stdout(log.try_clone().expect("log")).stderr(log).stdin(Stdio::null());
        let child = cmd.spawn().expect("spawn turnpike");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&listeners) {
                if let Ok(v) = serde_json::from_str::<Value>(&text) {
                    let first = |k: &str| {
                        v[k].as_array()
                            .and_then(|a| a.first())
                            .and_then(Value::as_str)
                            .map(|a| format!("http://{a}"))
                    };
                    self.admin = first("admin");
                    self.status = first("status");
                    self.proxy = first("proxy");
                    self.proxies = v["proxy"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                        .unwrap_or_default();
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("turnpike exited with {status} during start-up; log:\n{}", self.log());
            }
            if Instant::now() > deadline {
                panic!("turnpike did not start within 60s; log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops and starts the binary again on the same prefix and database.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn(&[]).await;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pg) = self.pg.take() {
            // best effort: the schema is uniquely named, a leftover harms nothing
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(turnpike_store::testing::drop_schema(&pg));
                }
            })
            .join();
        }
    }
}
