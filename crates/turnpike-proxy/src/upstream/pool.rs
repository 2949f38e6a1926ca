//! The keepalive pool of one worker: idle upstream connections by peer address and TLS
//! identity (Kong segments its pools by destination address, port and SNI the same way).
//! Most recently used first, so that a light load keeps few connections warm.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::time::Instant;

use super::UpConn;
use crate::settings::PoolSettings;
use crate::tls::ClientTlsKey;

/// What makes two upstream connections interchangeable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub(crate) addr: SocketAddr,
    /// TLS settings and server name, for https/grpcs.
    pub(crate) tls: Option<(ClientTlsKey, String)>,
}

/// Idle connections of one worker.
pub(crate) struct Pool {
    settings: PoolSettings,
    idle: RefCell<HashMap<PoolKey, Vec<UpConn>>>,
}

impl Pool {
    pub(crate) fn new(settings: PoolSettings) -> Self {
        Self { settings, idle: RefCell::new(HashMap::new()) }
    }

    /// An idle connection to `key` that is still usable, if any. Stale ones (closed by the
    /// peer, idle too long) are dropped on the way.
    pub(crate) fn take(&self, key: &PoolKey) -> Option<UpConn> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(key)?;
        let now = crate::timer::now();
        while let Some(mut conn) = list.pop() {
            if now.duration_since(conn.idle_since) < self.settings.idle_timeout
                && !conn.io.is_stale()
            {
                conn.reused = true;
                return Some(conn);
            }
        }
        None
    }

    /// Returns a connection after a complete exchange.
    pub(crate) fn put(&self, mut conn: UpConn) {
        let s = &self.settings;
        if s.pool_size == 0 || (s.max_requests > 0 && conn.served >= s.max_requests) {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(conn.key.clone()).or_default();
        if list.len() >= s.pool_size {
            return;
        }
        conn.idle_since = crate::timer::now();
        list.push(conn);
    }

    /// Drops connections idle for longer than the idle timeout (run periodically).
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        let timeout = self.settings.idle_timeout;
        self.idle.borrow_mut().retain(|_, list| {
            list.retain(|c| now.duration_since(c.idle_since) < timeout && !c.io.is_stale());
            !list.is_empty()
        });
    }

    /// Closes every idle connection (at shutdown).
    pub(crate) fn clear(&self) {
        self.idle.borrow_mut().clear();
    }
}
