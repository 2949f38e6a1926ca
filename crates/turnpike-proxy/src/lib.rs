//! Turnpike's data plane: the proxy listeners, TLS by SNI, HTTP/1.1 and HTTP/2 towards
//! clients, routing with Kong's rules, and HTTP/1.1, HTTP/2 (gRPC) and TLS towards upstreams.
//!
//! The crate reads configuration, it never fetches it: the caller compiles a
//! [`turnpike_core::snapshot::Snapshot`] into a [`ProxyConfig`] (off the request path) and
//! publishes it with [`Proxy::publish`]; each request runs on the configuration that was
//! current when it started. It must not depend on the store, the Admin API, axum or sqlx.
//!
//! Layout: [`settings`] (node settings from `kong.conf`), `config` (the compiled entities),
//! `server` (listeners, workers, client connections), `h1` (the HTTP/1 wire format), `body`
//! (request bodies), `proxy` (what happens to a request, Kong's phases), `headers` and `errors`
//! (what Kong adds and answers), `upstream` and `upstream_h2` (upstream connections), `tls`.

mod body;
mod config;
mod errors;
mod h1;
mod headers;
mod plugins;
mod proxy;
mod server;
pub mod settings;
mod timer;
mod tls;
mod transport;
mod upstream;
mod upstream_h2;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use turnpike_core::stats::ServerStats;

pub use config::{CompileError, ProxyConfig};
pub use settings::ProxySettings;

/// What the workers are told to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Running,
    /// Stop accepting, let in-flight requests finish within the drain time.
    Graceful,
    /// Close everything now.
    Immediate,
}

/// State shared by all workers.
pub(crate) struct Shared {
    pub(crate) config: ArcSwap<ProxyConfig>,
    pub(crate) stats: Arc<ServerStats>,
    pub(crate) stop: watch::Sender<Stop>,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("default certificate: {0}")]
    Certificate(String),
    #[error("cannot start a worker thread: {0}")]
    Thread(std::io::Error),
}

/// A running data plane.
pub struct Proxy {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    addrs: Vec<SocketAddr>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("addrs", &self.addrs).finish_non_exhaustive()
    }
}

impl Proxy {
    /// Binds the listeners and starts the workers, serving `initial` until something else is
    /// published. Listener errors are reported here, before any worker runs.
    pub fn start(
        settings: ProxySettings,
        initial: ProxyConfig,
        stats: Arc<ServerStats>,
    ) -> Result<Self, StartError> {
        let settings = Arc::new(settings);
        let (stop, _) = watch::channel(Stop::Running);
        let shared = Arc::new(Shared { config: ArcSwap::from_pointee(initial), stats, stop });
        let default_cert = if settings.listeners.iter().any(|l| l.ssl) {
            let Some((cert, key)) = &settings.ssl_cert else {
                return Err(StartError::Certificate(
                    "an ssl listener needs ssl_cert and ssl_cert_key".into(),
                ));
            };
            let read = |p: &std::path::Path| {
                std::fs::read_to_string(p)
                    .map_err(|e| StartError::Certificate(format!("{}: {e}", p.display())))
            };
            Some(
                tls::CertPair::load(&read(cert)?, &read(key)?, None)
                    .map_err(StartError::Certificate)?,
            )
        } else {
            None
        };

        let workers = settings.workers.max(1);
        let mut per_worker: Vec<Vec<server::WorkerListener>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut addrs = Vec::new();
        for spec in &settings.listeners {
            let tls = match (&default_cert, spec.ssl) {
                (Some(cert), true) => Some(tokio_rustls::TlsAcceptor::from(
                    tls::server_config(shared.clone(), cert.clone(), spec.http2)
                        .map_err(StartError::Certificate)?,
                )),
                _ => None,
            };
            let backlog = spec.backlog.unwrap_or(511);
            let bind_err = |source| StartError::Bind { addr: spec.addr, source };
            // one socket per worker with SO_REUSEPORT (the kernel spreads connections), or one
            // socket shared by all workers
            let first = server::bind(spec.addr, backlog, workers > 1 && spec.reuseport)
                .map_err(bind_err)?;
            let actual = first.local_addr().map_err(bind_err)?;
            addrs.push(actual);
            let mut sockets = vec![first];
            for _ in 1..workers {
                let s = if spec.reuseport {
                    server::bind(actual, backlog, true).map_err(bind_err)?
                } else {
                    sockets[0].try_clone().map_err(bind_err)?
                };
                sockets.push(s);
            }
            for (w, socket) in sockets.into_iter().enumerate() {
                per_worker[w].push(server::WorkerListener {
                    spec: spec.clone(),
                    socket,
                    tls: tls.clone(),
                });
            }
        }

        let mut threads = Vec::new();
        for (i, listeners) in per_worker.into_iter().enumerate() {
            let settings = settings.clone();
            let shared = shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("turnpike-worker-{i}"))
                .spawn(move || server::run_worker(i, settings, shared, listeners))
                .map_err(StartError::Thread)?;
            threads.push(t);
        }
        Ok(Self { shared, threads, addrs })
    }

    /// The bound addresses, in `proxy_listen` order (with real ports when 0 was asked).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Makes `config` the configuration of every request that starts from now on.
    pub fn publish(&self, config: ProxyConfig) {
        self.shared.config.store(Arc::new(config));
    }

    /// The version of the configuration in service.
    pub fn config_version(&self) -> u64 {
        self.shared.config.load().version
    }

    /// Stops accepting and waits for the workers: gracefully (in-flight requests get the drain
    /// time to finish) or at once. Blocks the calling thread until the workers are gone.
    pub fn shutdown(self, graceful: bool) {
        let _ = self.shared.stop.send(if graceful { Stop::Graceful } else { Stop::Immediate });
        for t in self.threads {
            let _ = t.join();
        }
    }

    /// A handle that publishes configurations without owning the [`Proxy`].
    pub fn publisher(&self) -> Publisher {
        Publisher(self.shared.clone())
    }

    /// A handle that can escalate a graceful stop to an immediate one from elsewhere.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.shared.clone())
    }
}

/// Escalates or starts a stop without owning the [`Proxy`].
#[derive(Clone)]
pub struct Stopper(Arc<Shared>);

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stopper")
    }
}

impl Stopper {
    pub fn stop(&self, graceful: bool) {
        let _ = self.0.stop.send(if graceful { Stop::Graceful } else { Stop::Immediate });
    }
}

/// Publishes configurations to a running proxy.
#[derive(Clone)]
pub struct Publisher(Arc<Shared>);

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Publisher")
    }
}

impl Publisher {
    /// Makes `config` the configuration of every request that starts from now on.
    pub fn publish(&self, config: ProxyConfig) {
        self.0.config.store(Arc::new(config));
    }

    /// The version of the configuration in service.
    pub fn version(&self) -> u64 {
        self.0.config.load().version
    }
}
