//! One worker: an OS thread with its own single-threaded event loop, its own listening sockets
//! (or its share of them), its own upstream pools and caches. Workers share nothing on the
//! request path but the published configuration, which they read without locking.
//!
//! This is nginx's model (one event loop per core, no work stealing, no cross-thread wakeups),
//! chosen because it costs the least CPU per request; see docs/architecture.md.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use crate::config::ProxyConfig;
use crate::settings::ProxySettings;
use crate::upstream::{DnsCache, Pool};
use crate::Shared;

/// Per-worker state.
pub(crate) struct Worker {
    pub(crate) settings: Arc<ProxySettings>,
    pub(crate) shared: Arc<Shared>,
    /// The configuration last seen.
    current: RefCell<ConfigRef>,
    pub(crate) pool: Rc<Pool>,
    pub(crate) dns: DnsCache,
    pub(crate) h2: crate::upstream_h2::H2Clients,
    /// Set when the worker stops accepting; connections finish their current request and close.
    pub(crate) draining: Cell<bool>,
    /// Wakes HTTP/2 connections when draining starts.
    pub(crate) drain_notify: Notify,
    /// Open client connections.
    pub(crate) conns: Conns,
    date: RefCell<(tokio::time::Instant, [u8; 29])>,
    rng: RefCell<fastrand::Rng>,
}

impl Worker {
    pub(crate) fn new(settings: Arc<ProxySettings>, shared: Arc<Shared>) -> Self {
        let current = RefCell::new(ConfigRef(Rc::new(shared.config.load_full())));
        Self {
            pool: Rc::new(Pool::new(settings.upstream_keepalive)),
            settings,
            shared,
            current,
            dns: DnsCache::default(),
            h2: crate::upstream_h2::H2Clients::default(),
            draining: Cell::new(false),
            drain_notify: Notify::new(),
            conns: Conns::default(),
            date: RefCell::new((tokio::time::Instant::now() - Duration::from_secs(2), [0; 29])),
            rng: RefCell::new(fastrand::Rng::new()),
        }
    }

    /// The configuration for a new request. Checking for a newer one is a single atomic load;
    /// handing it out is a non-atomic reference count increment.
    pub(crate) fn config(&self) -> ConfigRef {
        let published = self.shared.config.load();
        let mut current = self.current.borrow_mut();
        if !Arc::ptr_eq(&published, &current.0) {
            *current = ConfigRef(Rc::new(arc_swap::Guard::into_inner(published)));
        }
        current.clone()
    }

    /// The `Date` header value, formatted again when the second may have changed.
    pub(crate) fn date(&self) -> [u8; 29] {
        let mut cached = self.date.borrow_mut();
        let now = crate::timer::now();
        if now.saturating_duration_since(cached.0) >= Duration::from_millis(250) {
            let s = httpdate::fmt_http_date(SystemTime::now());
            if s.len() == 29 {
                cached.1.copy_from_slice(s.as_bytes());
                cached.0 = now;
            }
        }
        cached.1
    }

    /// A new request id: 32 lowercase hex digits (nginx's `$request_id`).
    pub(crate) fn request_id(&self) -> [u8; 32] {
        let mut rng = self.rng.borrow_mut();
        let (a, b) = (rng.u64(..), rng.u64(..));
        let mut out = [0u8; 32];
        for (i, byte) in a.to_be_bytes().iter().chain(b.to_be_bytes().iter()).enumerate() {
            out[i * 2] = HEX[usize::from(byte >> 4)];
            out[i * 2 + 1] = HEX[usize::from(byte & 0xf)];
        }
        out
    }

    /// Periodic housekeeping: idle upstream connections past their timeout are closed.
    pub(crate) async fn housekeeping(self: Rc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.pool.sweep();
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A request's handle on the configuration it runs with. The `Rc` around the shared `Arc` is
/// deliberate: handing it to a request is a non-atomic increment, where cloning the `Arc`
/// would make every worker write the same cache line on every request.
#[derive(Clone, Debug)]
#[allow(clippy::redundant_allocation)]
pub(crate) struct ConfigRef(Rc<Arc<ProxyConfig>>);

impl std::ops::Deref for ConfigRef {
    type Target = ProxyConfig;

    fn deref(&self) -> &ProxyConfig {
        &self.0
    }
}

/// The client connections of a worker, each idle or busy, so that a drain can close the idle
/// ones at once (aborting their tasks) while busy ones finish their request. Marking a
/// connection idle or busy is a plain write; nothing is registered per request.
#[derive(Default)]
pub(crate) struct Conns {
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<usize>>,
    count: Cell<usize>,
}

#[derive(Default)]
struct Slot {
    idle: bool,
    abort: Option<tokio::task::AbortHandle>,
}

impl Conns {
    fn register(&self) -> usize {
        self.count.set(self.count.get() + 1);
        let mut slots = self.slots.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(i) => {
                slots[i] = Slot::default();
                i
            }
            None => {
                slots.push(Slot::default());
                slots.len() - 1
            }
        }
    }

    fn release(&self, i: usize) {
        self.count.set(self.count.get() - 1);
        if let Some(s) = self.slots.borrow_mut().get_mut(i) {
            *s = Slot::default();
        }
        self.free.borrow_mut().push(i);
    }

    pub(crate) fn set_abort(&self, i: usize, h: tokio::task::AbortHandle) {
        if let Some(s) = self.slots.borrow_mut().get_mut(i) {
            s.abort = Some(h);
        }
    }

    pub(crate) fn set_idle(&self, i: usize, idle: bool) {
        if let Some(s) = self.slots.borrow_mut().get_mut(i) {
            s.idle = idle;
        }
    }

    /// Aborts every idle connection.
    pub(crate) fn abort_idle(&self) {
        for s in self.slots.borrow().iter().filter(|s| s.idle) {
            if let Some(h) = &s.abort {
                h.abort();
            }
        }
    }

    /// Open connections.
    pub(crate) fn len(&self) -> usize {
        self.count.get()
    }
}

/// A connection's place in [`Conns`], released when the connection ends.
pub(crate) struct ConnGuard {
    pub(crate) worker: Rc<Worker>,
    pub(crate) slot: usize,
}

impl ConnGuard {
    pub(crate) fn new(worker: Rc<Worker>) -> Self {
        let slot = worker.conns.register();
        Self { worker, slot }
    }

    pub(crate) fn set_idle(&self, idle: bool) {
        self.worker.conns.set_idle(self.slot, idle);
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.worker.conns.release(self.slot);
    }
}
