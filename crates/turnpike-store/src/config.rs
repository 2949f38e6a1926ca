//! Database settings (Kong's `database`, `pg_*` keys).

use std::fmt;
use std::path::PathBuf;

/// Which database to use and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub enum DbConfig {
    /// The embedded default: one SQLite file (WAL mode), no setup.
    Sqlite {
        path: PathBuf,
    },
    Postgres(PgConfig),
}

impl fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbConfig::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
            DbConfig::Postgres(pg) => pg.fmt(f),
        }
    }
}

/// PostgreSQL settings; the password never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct PgConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    /// `pg_schema`: the schema (search path) holding Turnpike's tables.
    pub schema: Option<String>,
    pub ssl: bool,
    pub ssl_verify: bool,
    pub timeout_ms: u64,
    pub max_connections: u32,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 5432,
            user: "kong".into(),
            password: None,
            database: "kong".into(),
            schema: None,
            ssl: false,
            ssl_verify: false,
            timeout_ms: 5000,
            max_connections: 10,
        }
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "******"))
            .field("database", &self.database)
            .field("ssl", &self.ssl)
            .finish()
    }
}

impl PgConfig {
    /// Parses `postgres://user:password@host:port/database` (used by tests and `pg_url`-style
    /// settings).
    pub fn from_url(s: &str) -> Result<Self, String> {
        let u = url::Url::parse(s).map_err(|e| format!("invalid PostgreSQL URL: {e}"))?;
        if u.scheme() != "postgres" && u.scheme() != "postgresql" {
            return Err(format!("invalid PostgreSQL URL scheme '{}'", u.scheme()));
        }
        let decode = |v: &str| percent_decode(v);
        let mut c = PgConfig {
            host: u.host_str().unwrap_or("127.0.0.1").to_owned(),
            port: u.port().unwrap_or(5432),
            user: if u.username().is_empty() { "postgres".into() } else { decode(u.username()) },
            password: u.password().map(decode),
            database: u.path().trim_start_matches('/').to_owned(),
            ..PgConfig::default()
        };
        if c.database.is_empty() {
            c.database = c.user.clone();
        }
        for (k, v) in u.query_pairs() {
            match &*k {
                "sslmode" => c.ssl = v != "disable",
                "schema" => c.schema = Some(v.into_owned()),
                _ => {}
            }
        }
        Ok(c)
    }

    /// The connection URL given to the driver (the store's pools and the change watcher's
    /// LISTEN connection all connect with it).
    pub(crate) fn to_url(&self) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let auth = match &self.password {
            Some(p) => format!("{}:{}", enc(&self.user), enc(p)),
            None => enc(&self.user),
        };
        let sslmode = match (self.ssl, self.ssl_verify) {
            (false, _) => "disable",
            (true, false) => "require",
            (true, true) => "verify-full",
        };
        // No `connect_timeout`: sqlx ignores it (with a warning on every connection attempt,
        // which floods the log while the database is down); the pools' `acquire_timeout`,
        // from `timeout_ms`, bounds connecting instead.
        let mut url = format!(
            "postgres://{auth}@{}:{}/{}?sslmode={sslmode}&application_name=turnpike",
            self.host,
            self.port,
            enc(&self.database),
        );
        if let Some(schema) = &self.schema {
            url.push_str("&options=");
            url.push_str(&enc(&format!("-c search_path={schema}")));
        }
        url
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_hides_passwords() {
        let c = PgConfig::from_url("postgres://po%40stgres:s3cr%2Ft@db.local:6543/test").unwrap();
        assert_eq!(c.user, "po@stgres");
        assert_eq!(c.password.as_deref(), Some("s3cr/t"));
        assert_eq!(c.port, 6543);
        assert_eq!(c.database, "test");
        assert!(!format!("{c:?}").contains("s3cr"));
        assert!(c.to_url().contains("s3cr%2Ft"));
    }
}
