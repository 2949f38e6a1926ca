//! Configuration: Kong's `kong.conf` keys, read from a `key = value` file and overridden by
//! `TURNPIKE_<KEY>` or `KONG_<KEY>` environment variables (in that order of precedence).
//!
//! Parsed once into [`Config`]; every value is checked here, with errors that name the key.
//! Secrets (`pg_password`) never appear in `Debug` output, logs or `GET /`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use turnpike_plugin_api::PluginSelection;
use turnpike_store::{DbConfig, PgConfig};

/// Keys whose values are secrets.
const SECRET_KEYS: &[&str] =
    &["pg_password", "pg_ro_password", "cluster_cert_key", "ssl_cert_key", "admin_ssl_cert_key"];

/// Kong's defaults for the keys Turnpike understands.
const DEFAULTS: &[(&str, &str)] = &[
    ("prefix", "."),
    ("log_level", "info"),
    ("log_format", "text"),
    (
        "proxy_listen",
        "0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 ssl reuseport backlog=16384",
    ),
    (
        "admin_listen",
        "127.0.0.1:8001 reuseport backlog=16384, 127.0.0.1:8444 http2 ssl reuseport backlog=16384",
    ),
    ("status_listen", "127.0.0.1:8100"),
    ("database", "sqlite"),
    ("sqlite_file", "turnpike.db"),
    ("pg_host", "127.0.0.1"),
    ("pg_port", "5432"),
    ("pg_timeout", "5000"),
    ("pg_user", "kong"),
    ("pg_database", "kong"),
    ("pg_ssl", "off"),
    ("pg_ssl_verify", "off"),
    ("pg_max_concurrent_queries", "0"),
    ("plugins", "bundled"),
    ("router_flavor", "traditional_compatible"),
    ("role", "traditional"),
    ("trusted_ips", ""),
    ("real_ip_header", "X-Real-IP"),
    ("real_ip_recursive", "off"),
    ("headers", "server_tokens, latency_tokens, X-Kong-Request-Id"),
    ("declarative_config", ""),
    ("declarative_config_string", ""),
];

/// Keys accepted but not (yet) acted upon: Kong/nginx tuning that has no meaning here.
fn is_known_ignored(key: &str) -> bool {
    key.starts_with("nginx_")
        || key.starts_with("lua_")
        || key.starts_with("mem_cache")
        || key.starts_with("proxy_access_log")
        || key.starts_with("proxy_error_log")
        || key.starts_with("admin_access_log")
        || key.starts_with("admin_error_log")
        || matches!(
            key,
            "anonymous_reports"
                | "nginx_worker_processes"
                | "db_update_frequency"
                | "db_update_propagation"
                | "db_cache_ttl"
                | "node_id"
                | "admin_gui_listen"
                | "admin_gui_url"
                | "admin_gui_origin"
                | "pg_schema"
                | "pg_password"
                | "dns_order"
                | "dns_hostsfile"
                | "cluster_listen"
        )
}

/// One entry of a `*_listen` setting: `127.0.0.1:8001 ssl http2 reuseport backlog=16384`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Listener {
    pub(crate) addr: SocketAddr,
    pub(crate) ssl: bool,
    pub(crate) http2: bool,
    pub(crate) reuseport: bool,
    pub(crate) backlog: Option<u32>,
    pub(crate) raw: String,
}

/// Parses a listen setting; `off` gives no listeners.
pub(crate) fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>> {
    let value = value.trim();
    if value.is_empty() || value == "off" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let mut parts = entry.split_whitespace();
        let addr_s = parts.next().unwrap_or_default();
        let addr: SocketAddr =
            parse_addr(addr_s).with_context(|| format!("{key}: invalid address '{addr_s}'"))?;
        let mut l = Listener {
            addr,
            ssl: false,
            http2: false,
            reuseport: false,
            backlog: None,
            raw: entry.to_owned(),
        };
        for flag in parts {
            match flag {
                "ssl" => l.ssl = true,
                "http2" => l.http2 = true,
                "reuseport" => l.reuseport = true,
                "deferred" | "bind" => {}
                "proxy_protocol" => {
                    bail!("{key}: the proxy_protocol flag is not supported yet ('{entry}')")
                }
                f if f.starts_with("backlog=") => {
                    let n = f["backlog=".len()..]
                        .parse::<u32>()
                        .ok()
                        .with_context(|| format!("{key}: invalid backlog in '{entry}'"))?;
                    l.backlog = Some(n);
                }
                f if f.starts_with("ipv6only=") || f.starts_with("so_keepalive=") => {}
                other => bail!("{key}: unknown listener flag '{other}' in '{entry}'"),
            }
        }
        out.push(l);
    }
    Ok(out)
}

fn parse_addr(s: &str) -> Result<SocketAddr> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    // `*:8000` and a bare port mean all interfaces
    let (host, port) = s.rsplit_once(':').unwrap_or(("0.0.0.0", s));
    let host = if host == "*" || host.is_empty() {
        "0.0.0.0"
    } else {
        host.trim_matches(|c| c == '[' || c == ']')
    };
    let port: u16 = port.parse().context("invalid port")?;
    Ok(SocketAddr::new(host.parse().context("invalid host")?, port))
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.trim() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        other => bail!("{key} must be a boolean (on/off), got '{other}'"),
    }
}

/// Reads a kong.conf-style file: `key = value`, `#` comments (`\#` for a literal `#`).
pub(crate) fn parse_conf(text: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let mut clean = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\' && chars.peek() == Some(&'#') {
                clean.push('#');
                chars.next();
            } else if c == '#' {
                break;
            } else {
                clean.push(c);
            }
        }
        let clean = clean.trim();
        if clean.is_empty() {
            continue;
        }
        let Some((k, v)) = clean.split_once('=') else {
            bail!("line {}: expected 'key = value', got '{clean}'", n + 1);
        };
        out.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    Ok(out)
}

/// The node's configuration.
#[derive(Clone)]
pub(crate) struct Config {
    values: BTreeMap<String, String>,
    pub(crate) prefix: PathBuf,
    pub(crate) log_level: String,
    pub(crate) log_json: bool,
    pub(crate) proxy_listen: Vec<Listener>,
    pub(crate) proxy: turnpike_proxy::ProxySettings,
    pub(crate) admin_listen: Vec<Listener>,
    pub(crate) status_listen: Vec<Listener>,
    pub(crate) database: DbConfig,
    pub(crate) db_off: bool,
    pub(crate) plugins: PluginSelection,
    pub(crate) router_flavor: String,
    pub(crate) role: String,
    pub(crate) node_id: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("prefix", &self.prefix)
            .field("database", &self.database)
            .field("admin_listen", &self.admin_listen)
            .field("proxy_listen", &self.proxy_listen)
            .finish_non_exhaustive()
    }
}

pub(crate) const LOG_LEVELS: &[&str] =
    &["debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"];

impl Config {
    /// Loads defaults, then `file`, then the environment (`env` is injectable for tests).
    pub(crate) fn load(
        file: Option<&Path>,
        env: &[(String, String)],
        prefix_override: Option<&Path>,
    ) -> Result<Self> {
        let mut values: BTreeMap<String, String> = DEFAULTS
            .iter()
            .chain(crate::proxy_conf::DEFAULTS)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let parsed = parse_conf(&text).with_context(|| format!("in {}", path.display()))?;
            for (k, v) in parsed {
                values.insert(k, v);
            }
        }
        // KONG_ first, then TURNPIKE_ so that ours win
        for prefix in ["KONG_", "TURNPIKE_"] {
            for (k, v) in env {
                if let Some(key) = k.strip_prefix(prefix) {
                    values.insert(key.to_ascii_lowercase(), v.clone());
                }
            }
        }
        if let Some(p) = prefix_override {
            values.insert("prefix".into(), p.display().to_string());
        }
        Self::from_values(values)
    }

    fn get(values: &BTreeMap<String, String>, k: &str) -> String {
        values.get(k).cloned().unwrap_or_default()
    }

    fn from_values(values: BTreeMap<String, String>) -> Result<Self> {
        for k in values.keys() {
            let known = DEFAULTS.iter().any(|(d, _)| d == k)
                || crate::proxy_conf::DEFAULTS.iter().any(|(d, _)| d == k)
                || is_known_ignored(k)
                || k.starts_with("pg_");
            if !known {
                tracing::warn!(key = %k, "unknown configuration key ignored");
            }
        }
        let g = |k: &str| Self::get(&values, k);
        let prefix = PathBuf::from(g("prefix"));
        let log_level = g("log_level");
        if !LOG_LEVELS.contains(&log_level.as_str()) {
            bail!(
                "log_level has an invalid value: '{log_level}' (expected one of: {})",
                LOG_LEVELS.join(", ")
            );
        }
        let log_json = match g("log_format").as_str() {
            "json" => true,
            "text" => false,
            other => bail!("log_format must be 'text' or 'json', got '{other}'"),
        };
        let db_off;
        let database = match g("database").as_str() {
            "sqlite" => {
                db_off = false;
                let file = PathBuf::from(g("sqlite_file"));
                let path = if file.is_absolute() { file } else { prefix.join(file) };
                DbConfig::Sqlite { path }
            }
            "postgres" => {
                db_off = false;
                let num = |k: &str| -> Result<u64> {
                    g(k).parse::<u64>()
                        .with_context(|| format!("{k} must be a number, got '{}'", g(k)))
                };
                let port = num("pg_port")?;
                let port = u16::try_from(port)
                    .ok()
                    .filter(|p| *p > 0)
                    .context("pg_port must be a port number")?;
                let pool = num("pg_max_concurrent_queries")?;
                DbConfig::Postgres(PgConfig {
                    host: g("pg_host"),
                    port,
                    user: g("pg_user"),
                    password: values.get("pg_password").filter(|p| !p.is_empty()).cloned(),
                    database: g("pg_database"),
                    schema: values.get("pg_schema").filter(|p| !p.is_empty()).cloned(),
                    ssl: parse_bool("pg_ssl", &g("pg_ssl"))?,
                    ssl_verify: parse_bool("pg_ssl_verify", &g("pg_ssl_verify"))?,
                    timeout_ms: num("pg_timeout")?,
                    max_connections: if pool == 0 { 10 } else { pool as u32 },
                })
            }
            "off" => {
                db_off = true;
                DbConfig::Sqlite { path: prefix.join(g("sqlite_file")) }
            }
            other => bail!("database has an invalid value: '{other}' (sqlite, postgres, off)"),
        };
        let router_flavor = g("router_flavor");
        let role = g("role");
        if role != "traditional" {
            bail!("role has an unsupported value: '{role}' (hybrid mode is not available yet)");
        }
        let plugins =
            PluginSelection::parse(&g("plugins")).map_err(|e| anyhow::anyhow!("plugins: {e}"))?;
        let proxy_listen = parse_listeners("proxy_listen", &g("proxy_listen"))?;
        let proxy = crate::proxy_conf::settings(&values, &proxy_listen)?;
        Ok(Self {
            proxy,
            proxy_listen,
            admin_listen: parse_listeners("admin_listen", &g("admin_listen"))?,
            status_listen: parse_listeners("status_listen", &g("status_listen"))?,
            node_id: values.get("node_id").filter(|v| !v.is_empty()).cloned(),
            values,
            prefix,
            log_level,
            log_json,
            database,
            db_off,
            plugins,
            router_flavor,
            role,
        })
    }

    /// DB-less mode's first configuration: `declarative_config` (a file) or
    /// `declarative_config_string`; `None` starts empty.
    pub(crate) fn declarative_text(&self) -> Result<Option<Vec<u8>>> {
        if let Some(path) = self.values.get("declarative_config").filter(|v| !v.is_empty()) {
            // relative to the working directory, as Kong resolves it
            let path = PathBuf::from(path);
            let text = std::fs::read(&path)
                .with_context(|| format!("cannot read declarative_config {}", path.display()))?;
            return Ok(Some(text));
        }
        Ok(self
            .values
            .get("declarative_config_string")
            .filter(|v| !v.is_empty())
            .map(|s| s.as_bytes().to_vec()))
    }

    /// `database` as Kong reports it in `GET /` (`configuration.database`).
    pub(crate) fn database_name(&self) -> &str {
        if self.db_off {
            "off"
        } else {
            match self.database {
                DbConfig::Sqlite { .. } => "sqlite",
                DbConfig::Postgres(_) => "postgres",
            }
        }
    }

    /// The configuration as `GET /` shows it: every key, secrets redacted, lists as arrays.
    pub(crate) fn sanitized(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.values {
            let value = if SECRET_KEYS.contains(&k.as_str()) {
                json!("******")
            } else if k.ends_with("_listen")
                || k == "plugins"
                || k == "trusted_ips"
                || k == "headers"
            {
                json!(v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>())
            } else {
                json!(v)
            };
            m.insert(k.clone(), value);
        }
        m.insert("database".into(), json!(self.database_name()));
        m.insert("router_flavor".into(), json!(self.router_flavor));
        m.insert("role".into(), json!(self.role));
        m.insert("prefix".into(), json!(self.prefix.display().to_string()));
        let loaded: serde_json::Map<String, Value> =
            self.plugins.names().iter().map(|n| (n.clone(), json!(true))).collect();
        m.insert("loaded_plugins".into(), Value::Object(loaded));
        Value::Object(m)
    }

    pub(crate) fn pid_file(&self) -> PathBuf {
        self.prefix.join("turnpike.pid")
    }

    pub(crate) fn listeners_file(&self) -> PathBuf {
        self.prefix.join("turnpike.listeners")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn parses_conf_files() {
        let m = parse_conf("# comment\n  database = postgres  \npg_password = a\\#b # trailing\n\nlog_level=debug\n").unwrap();
        assert_eq!(m["database"], "postgres");
        assert_eq!(m["pg_password"], "a#b");
        assert_eq!(m["log_level"], "debug");
        assert!(parse_conf("nonsense").is_err());
    }

    #[test]
    fn env_overrides_and_defaults() {
        let c = Config::load(
            None,
            &env(&[("KONG_LOG_LEVEL", "debug"), ("TURNPIKE_ADMIN_LISTEN", "127.0.0.1:0")]),
            None,
        )
        .unwrap();
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.admin_listen.len(), 1);
        assert_eq!(c.admin_listen[0].addr.port(), 0);
        assert_eq!(c.proxy_listen.len(), 2);
        assert!(c.proxy_listen[1].ssl && c.proxy_listen[1].http2);
        assert_eq!(c.database_name(), "sqlite");
        let both = Config::load(
            None,
            &env(&[("KONG_LOG_LEVEL", "debug"), ("TURNPIKE_LOG_LEVEL", "warn")]),
            None,
        )
        .unwrap();
        assert_eq!(both.log_level, "warn");
    }

    #[test]
    fn secrets_are_redacted() {
        let c = Config::load(
            None,
            &env(&[("KONG_DATABASE", "postgres"), ("KONG_PG_PASSWORD", "hunter2")]),
            None,
        )
        .unwrap();
        let s = c.sanitized().to_string();
        assert!(!s.contains("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.sanitized()["pg_password"], "******");
    }

    #[test]
    fn rejects_bad_values() {
        for (k, v) in [
            ("KONG_LOG_LEVEL", "loud"),
            ("KONG_DATABASE", "cassandra"),
            ("KONG_ADMIN_LISTEN", "nowhere"),
            ("KONG_ADMIN_LISTEN", "127.0.0.1:8001 quic"),
            ("KONG_PLUGINS", "bundled,unknown-plugin"),
            ("KONG_PG_SSL", "maybe"),
        ] {
            let env = env(&[(k, v)]);
            let env = if k == "KONG_PG_SSL" {
                [env, vec![("KONG_DATABASE".into(), "postgres".into())]].concat()
            } else {
                env
            };
            assert!(Config::load(None, &env, None).is_err(), "{k}={v} must be rejected");
        }
        assert!(Config::load(None, &env(&[("KONG_ADMIN_LISTEN", "off")]), None)
            .unwrap()
            .admin_listen
            .is_empty());
    }
}
