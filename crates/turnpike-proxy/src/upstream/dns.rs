//! Name resolution for service hosts, cached per worker.
//!
//! A stopgap until the balancer brings its own DNS client: names are resolved with the
//! system resolver (`getaddrinfo` on tokio's blocking pool, never on the event loop) and
//! kept for a fixed time, since `getaddrinfo` reports no TTL. A failed lookup keeps serving
//! the last good answer for a while (Kong's `dns_stale_ttl` does the same).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

use super::UpError;

const TTL: Duration = Duration::from_secs(30);
const STALE_TTL: Duration = Duration::from_secs(3600);

struct Entry {
    addrs: Vec<SocketAddr>,
    expires: Instant,
    next: usize,
}

/// Per-worker cache of resolved names.
#[derive(Default)]
pub(crate) struct DnsCache {
    entries: RefCell<HashMap<(String, u16), Entry>>,
}

impl DnsCache {
    /// The address to try for `host:port`: an IP literal as is, a name from the cache or a
    /// fresh lookup, rotating through the addresses of a name.
    pub(crate) async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, UpError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let key = (host.to_ascii_lowercase(), port);
        let now = Instant::now();
        if let Some(addr) = self.pick(&key, |e| e.expires > now) {
            return Ok(addr);
        }
        let looked_up = tokio::net::lookup_host((key.0.clone(), port)).await;
        match looked_up {
            Ok(addrs) => {
                let mut addrs: Vec<SocketAddr> = addrs.collect();
                // prefer IPv4 first, as Kong's default `dns_order` does for A records
                addrs.sort_by_key(|a| a.is_ipv6());
                addrs.dedup();
                if addrs.is_empty() {
                    return Err(UpError::Dns(format!("{host}: no address")));
                }
                let first = addrs[0];
                self.entries.borrow_mut().insert(key, Entry { addrs, expires: now + TTL, next: 1 });
                Ok(first)
            }
            Err(e) => {
                // serve a stale answer rather than fail
                self.pick(&key, |e| e.expires + STALE_TTL > now)
                    .ok_or_else(|| UpError::Dns(format!("{host}: {e}")))
            }
        }
    }

    fn pick(&self, key: &(String, u16), usable: impl Fn(&Entry) -> bool) -> Option<SocketAddr> {
        let mut entries = self.entries.borrow_mut();
        let e = entries.get_mut(key).filter(|e| usable(e))?;
        let addr = e.addrs[e.next % e.addrs.len()];
        e.next = e.next.wrapping_add(1);
        Some(addr)
    }
}
